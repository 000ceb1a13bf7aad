import io
import os
import re
import zipfile

import numpy as np
import pytest

from teachgym.io import load_state, save_state, write_json


def test_state_files_round_trip_nested_arrays_without_pickle(tmp_path):
    state = {"a": np.arange(5.0), "b": {"c": [1, 2, {"d": np.ones((2, 2), dtype=np.int32)}]}, "e": None, "big": 2**100}
    save_state(tmp_path / "s.npz", state)
    back = load_state(tmp_path / "s.npz")
    np.testing.assert_array_equal(back["a"], state["a"])
    np.testing.assert_array_equal(back["b"]["c"][2]["d"], state["b"]["c"][2]["d"])
    assert back["e"] is None and back["big"] == 2**100
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:  # no object arrays inside
        assert all(data[k].dtype != object for k in data.files)


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    write_json(tmp_path / "x.json", {"v": 1})
    with pytest.raises(TypeError):
        write_json(tmp_path / "x.json", {"v": object()})
    assert (tmp_path / "x.json").read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_loading_a_foreign_file_is_a_clear_error(tmp_path):
    (tmp_path / "f.npz").write_text("not a state")
    with pytest.raises(ValueError, match="not a teachgym state file"):
        load_state(tmp_path / "f.npz")


def test_atomic_writes_get_the_permissions_of_any_new_file(tmp_path):
    """Not mkstemp's owner-only 0600: results in a shared folder stay readable by its users."""
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------ hostile state files
def _npz(path, **members):
    """An npz file written by numpy itself (not by save_state), with the given members."""
    with open(path, "wb") as fh:
        np.savez(fh, **members)
    return path


def _doc(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def _state_bytes(tmp_path) -> bytes:
    state = {"a": np.arange(5.0), "b": {"c": [1, np.ones((2, 3), dtype=np.int32)]}, "name": "x"}
    save_state(tmp_path / "good.npz", state)
    return (tmp_path / "good.npz").read_bytes()


def test_an_empty_file_is_a_value_error_naming_the_path(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz is not a teachgym state file"):
        load_state(tmp_path / "empty.npz")


def test_every_truncation_of_a_state_file_is_a_value_error(tmp_path):
    raw = _state_bytes(tmp_path)
    path = tmp_path / "cut.npz"
    for n in range(len(raw)):  # every cut point, the header's and the arrays' alike
        path.write_bytes(raw[:n])
        with pytest.raises(ValueError, match=r"cut\.npz"):
            load_state(path)


def test_flipped_or_random_bytes_give_a_value_error_or_the_state_never_another_exception(tmp_path):
    raw = _state_bytes(tmp_path)
    path = tmp_path / "bad.npz"
    rng = np.random.default_rng(0)
    blobs = [bytes(rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8)) for _ in range(50)]
    blobs.append(b"PK\x03\x04" + blobs[-1])
    for i in range(0, len(raw), 3):
        flipped = bytearray(raw)
        flipped[i] ^= 0xFF
        blobs.append(bytes(flipped))
    refused = 0
    for blob in blobs:
        path.write_bytes(blob)
        try:
            state = load_state(path)
        except ValueError as err:
            assert "bad.npz" in str(err)
            refused += 1
        else:  # bytes no check covers (e.g. a timestamp): the structure is still the saved one
            assert set(state) == {"a", "b", "name"}
    assert refused > len(blobs) // 2


@pytest.mark.parametrize(
    "members, message",
    [
        ({"__json__": _doc('{"a": {"__ndarray__": "a9"}}')}, "'a9', which is missing"),
        ({"__json__": _doc('{"a": {"__ndarray__": 5}}')}, "5, which is missing"),
        ({"__json__": _doc('{"a": {"__ndarray__": ["a0"]}}'), "a0": np.ones(2)}, "missing"),
        ({"__json__": _doc('{"a": {"__ndarray__": "a0"}, "b": {"__ndarray__": "a0"}}'), "a0": np.ones(2)}, "twice"),
        ({"__json__": _doc('{"a": 1}'), "a0": np.ones(2)}, r"\['a0'\] are referred to by nothing"),
        ({"__json__": _doc("[" * 100_000 + "]" * 100_000)}, "nested too deeply"),
        ({"__json__": _doc('{"a": ' + "[" * 5_000 + "]" * 5_000 + "}")}, "nested too deeply"),
        ({"__json__": _doc("[1, 2]")}, "expected a table"),
        ({"__json__": _doc("{bad")}, "Expecting property name"),
        ({"__json__": np.frombuffer(b"\xff\xfe", dtype=np.uint8)}, "utf-8"),
        ({"__json__": np.arange(4.0)}, "expected uint8 text"),
        ({"__json__": _doc('{"n": ' + "9" * 5000 + "}")}, "digits"),
        ({"a0": np.ones(2)}, "no __json__ member"),
    ],
)
def test_a_tampered_npz_is_a_value_error_saying_what_is_wrong(tmp_path, members, message):
    path = _npz(tmp_path / "t.npz", **members)
    with pytest.raises(ValueError, match=r"t\.npz") as err:
        load_state(path)
    assert re.search(message, str(err.value)), str(err.value)


def test_compressed_members_and_forged_shapes_are_refused_before_any_allocation(tmp_path):
    path = tmp_path / "c.npz"
    np.savez_compressed(path, __json__=_doc("{}"), a0=np.zeros(10**6))  # could be a zip bomb
    with pytest.raises(ValueError, match="compressed"):
        load_state(path)
    # A header claiming 10^12 float64s (8 TB) over a member of 40 bytes, with a valid CRC:
    # refused from the header, before anything is allocated.
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.arange(5.0))
    old_header = buf.getvalue()[: -40]
    claim = old_header.replace(b"(5,)", b"(1000000000000,)")
    claim = claim[: claim.index(b"}") + 1] + b" " * (len(old_header) - claim.index(b"}") - 2) + b"\n"
    json_member = io.BytesIO()
    np.lib.format.write_array(json_member, _doc('{"a": {"__ndarray__": "a0"}}'))
    with zipfile.ZipFile(tmp_path / "forged.npz", "w") as archive:
        archive.writestr("__json__.npy", json_member.getvalue())
        archive.writestr("a0.npy", claim + buf.getvalue()[-40:])
    with pytest.raises(ValueError, match=r"forged\.npz.*claims shape \(1000000000000,\)"):
        load_state(tmp_path / "forged.npz")


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = _npz(tmp_path / "o.npz", __json__=_doc('{"a": {"__ndarray__": "a0"}}'), a0=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        load_state(path)


def test_a_missing_or_unreadable_state_file_is_a_value_error_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="cannot read state file .*nope.npz: No such file"):
        load_state(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="Is a directory"):
        load_state(tmp_path)


def test_state_files_keep_dtypes_shapes_and_memory_order(tmp_path):
    state = {
        "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "e": np.zeros((0, 3)), "s": np.array(["ab", "c"]),
        "t": np.array(["2020-01-01"], dtype="datetime64[D]"), "z": np.zeros((), dtype=np.complex64),
    }
    save_state(tmp_path / "s.npz", state)
    back = load_state(tmp_path / "s.npz")
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        np.testing.assert_array_equal(back[key], value)
        assert back[key].flags.writeable
