import os

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
