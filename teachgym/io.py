"""Atomic, pickle-free persistence: JSON for structure, ``.npz`` for arrays, CSV for tables.

Every write goes to a temporary file in the target's folder, is flushed to disk and moved into
place with ``os.replace`` (the folder flushed too), so a crash — of the process or of the machine —
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

_ARRAY_KEY = "__ndarray__"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created like any new file (mode 0666 minus the umask): mkstemp's 0600 would survive the
    # rename and hide results from the other users of a shared folder.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    open(tmp, "x").close()
    try:
        yield Path(tmp)
        fsync(tmp)
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fsync(path: str | os.PathLike) -> None:
    """Flush a file's data to disk (~0.3 ms here)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename in it) to disk where the system allows it.

    Best effort: Windows cannot open a folder this way and some network file systems refuse it;
    the rename itself has happened by then, so it is not reported as a failed write.
    """
    if os.name == "nt":
        return
    try:
        fsync(path)
    except OSError:
        pass


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Write a JSON-able value (numpy scalars allowed) atomically."""
    write_text(path, json.dumps(value, indent=2, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save a state dict (JSON-able values and numpy arrays) as one ``.npz`` file, no pickle.

    The arrays are stored as npz members; everything else as a JSON document member that
    refers to them by name.
    """
    arrays: dict[str, np.ndarray] = {}

    def pack(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {_ARRAY_KEY: key}
        if isinstance(value, dict):
            return {str(k): pack(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [pack(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    doc = json.dumps(pack(state))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, __json__=np.frombuffer(doc.encode(), dtype=np.uint8), **arrays)


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load what :func:`save_state` wrote (``allow_pickle=False``).

    The file is not trusted: anything but an uncompressed npz of plain arrays whose JSON
    member is a table referring to exactly those arrays is refused.

    Raises
    ------
    ValueError
        With the path and what is wrong: unreadable, empty, truncated or not an npz file,
        compressed or encrypted members (``save_state`` writes neither; a compressed member
        could expand without bound), a JSON document that is malformed, nested too deeply or
        refers to arrays that are missing, or members that nothing refers to.
    """
    try:
        fh = open(path, "rb")
    except OSError as err:
        raise ValueError(f"cannot read state file {path}: {err.strerror or err}") from err
    with fh:
        try:
            arrays = _read_arrays(fh)
        except (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError,
                zipfile.BadZipFile) as err:  # what zipfile and numpy's header parser raise on damaged files
            what = str(err) or ("it ends too early (truncated)" if isinstance(err, EOFError) else type(err).__name__)
            raise ValueError(f"{path} is not a teachgym state file: {what}") from err
    raw = arrays.pop("__json__", None)
    if raw is None:
        raise ValueError(f"{path} is not a teachgym state file (no __json__ member)")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path} is not a teachgym state file: its __json__ member is {raw.dtype} {raw.shape}, expected uint8 text")
    used: set[str] = set()

    def unpack(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {_ARRAY_KEY}:
                key = value[_ARRAY_KEY]
                if not isinstance(key, str) or key not in arrays or key in used:
                    raise ValueError(f"it refers to array {key!r}, which is missing (or referred to twice)")
                used.add(key)
                return arrays[key]
            return {k: unpack(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unpack(v) for v in value]
        return value

    try:
        doc = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError(f"its JSON document is a {type(doc).__name__}, expected a table")
        state = unpack(doc)
    except RecursionError:
        raise ValueError(f"{path} is not a teachgym state file: its JSON document is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path} is not a teachgym state file: {err}") from err
    if set(arrays) - used:
        raise ValueError(f"{path} is not a teachgym state file: members {sorted(set(arrays) - used)[:5]} are referred to by nothing")
    return state


def _read_arrays(fh: BinaryIO) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed, unencrypted npz file of plain (non-object) arrays.

    Each member's header is checked against the member's real size before anything is
    allocated, so a forged shape cannot ask for more memory than the file holds.
    """
    arrays: dict[str, np.ndarray] = {}
    real_size = os.fstat(fh.fileno()).st_size  # the directory's sizes are claims; this is not
    with zipfile.ZipFile(fh) as archive:
        for info in archive.infolist():
            name = info.filename
            if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                raise ValueError(f"member {name!r} is compressed or encrypted; save_state writes neither")
            if not name.endswith(".npy") or name[:-4] in arrays:
                raise ValueError(f"member {name!r} is not an array (.npy) or appears twice")
            with archive.open(info) as member:
                version = npy_format.read_magic(member)
                if version == (1, 0):
                    shape, fortran, dtype = npy_format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, fortran, dtype = npy_format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"member {name!r} has .npy format {version}, expected 1.0 or 2.0")
                if dtype.hasobject:
                    raise ValueError(f"member {name!r} holds Python objects; only plain arrays are read")
                count = math.prod(shape)
                nbytes = count * dtype.itemsize
                if nbytes > min(info.file_size, real_size):
                    raise ValueError(f"member {name!r} claims shape {shape} of {dtype}, more than its {info.file_size} bytes")
                array = np.empty(count, dtype=dtype)
                got = member.readinto(array.view(np.uint8)) if nbytes else 0
                if got != nbytes or member.read(1):
                    raise ValueError(f"member {name!r} does not hold exactly the {nbytes} bytes of shape {shape}")
            arrays[name[:-4]] = array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
    return arrays


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """The JSON-able state of a numpy generator (a copy)."""
    return json.loads(json.dumps(rng.bit_generator.state))


def load_generator_state(rng: np.random.Generator, state: Any, what: str = "generator") -> None:
    """Set ``rng`` to a state from :func:`generator_state`.

    Raises ``ValueError`` (``rng`` unchanged) for a state of another kind of bit generator or a
    malformed one.
    """
    kind = rng.bit_generator.state["bit_generator"]
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        got = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{what}: expected the state of a {kind} generator, got {got!r}")
    trial = type(rng.bit_generator)()
    try:
        trial.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise ValueError(f"{what}: malformed {kind} state ({err})") from None
    rng.bit_generator.state = trial.state
