"""Task spaces: validation, normalisation and names of dimensions.

A task space is a :mod:`gymnasium.spaces` ``Box`` (bounded), ``Discrete`` or ``MultiDiscrete``.
:class:`TaskSpace` wraps one with the names of its dimensions and converts between the forms a
user types (arrays, lists, ints, dicts by name) and the canonical task a teacher returns.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

Task = Any  # np.ndarray for Box / MultiDiscrete, np.int64 for Discrete

SUPPORTED = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)
#: Most tasks of a discrete space a per-task (bandit) teacher accepts: 10^7 arms are 80 MB per array.
MAX_ARMS = 10_000_000


def describe_space(space: spaces.Space) -> dict:
    """A JSON-able description of ``space``, used to check that saved state fits a teacher."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": space.low.astype(float).ravel().tolist(),
            "high": space.high.astype(float).ravel().tolist(),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.astype(int).ravel().tolist(),
            "shape": list(space.nvec.shape),
            "start": space.start.astype(int).ravel().tolist(),
        }
    raise ValueError(_unsupported(space))


def did_you_mean(word: Any, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss of ``word`` among ``known``, else ``""``."""
    if not isinstance(word, str) or len(word) > 200:  # a guess for a name that long costs more than it helps
        return ""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_option_keys(options: Mapping[str, Any] | None, known: Iterable[str], owner: str,
                      strict: bool = True) -> None:
    """Refuse ``reset`` option keys nobody reads: ``{"tasks": ...}`` would silently play the default task.

    Parameters
    ----------
    options
        The ``options`` given to ``reset``.
    known
        The keys ``owner`` reads.
    owner
        Named in the message (the env's class name).
    strict
        Refuse every unknown key; otherwise only near misses of a known one (an env that passes
        other keys on to another env's ``reset``).

    Raises
    ------
    ValueError
        Naming the key, the nearest known key and all known keys.
    """
    if not options:
        return
    known = sorted(known)
    for key in options:
        if key in known:
            continue
        near = did_you_mean(key, known)
        if strict or near:
            raise ValueError(f"unknown reset option {key!r}{near}; {owner} reads {known}")


def space_mismatch(ours: spaces.Space, theirs: spaces.Space) -> str | None:
    """Why two task spaces differ, or None when they hold the same tasks.

    Compares the kind, the shape and the bounds (Box: the values after casting both to the
    narrower float dtype, so a float32 Box and a float64 Box with the same bounds match; the
    dtype is named only when the bounds differ and the dtypes too). ``ours`` and ``theirs``
    name the teacher's space and the env's in the message.
    """
    for space in (ours, theirs):
        if not isinstance(space, SUPPORTED):
            raise ValueError(_unsupported(space))
    if type(ours) is not type(theirs):
        return f"the teacher's space is a {type(ours).__name__}, the env's a {type(theirs).__name__}"
    if isinstance(ours, spaces.Discrete):
        if (int(ours.n), int(ours.start)) != (int(theirs.n), int(theirs.start)):
            return (f"the teacher's space holds {ours.n} tasks from {ours.start}, "
                    f"the env's {theirs.n} from {theirs.start}")
        return None
    if isinstance(ours, spaces.MultiDiscrete):
        a_lo, b_lo = ours.start.astype(np.int64), theirs.start.astype(np.int64)
        a_hi, b_hi = a_lo + ours.nvec.astype(np.int64) - 1, b_lo + theirs.nvec.astype(np.int64) - 1
    else:
        a_lo, a_hi, b_lo, b_hi = ours.low, ours.high, theirs.low, theirs.high
    if ours.shape != theirs.shape:
        return f"the teacher's space has shape {ours.shape}, the env's {theirs.shape}"
    if isinstance(ours, spaces.Box):
        narrow = min((ours.dtype, theirs.dtype), key=lambda d: (d.kind != "f", d.itemsize))
        narrow = narrow if narrow.kind == "f" else np.dtype(np.float64)
        a_lo, a_hi, b_lo, b_hi = (np.asarray(v, dtype=np.float64).astype(narrow) for v in (a_lo, a_hi, b_lo, b_hi))
    differ = np.flatnonzero((a_lo.ravel() != b_lo.ravel()) | (a_hi.ravel() != b_hi.ravel()))
    if differ.size == 0:
        return None
    i = int(differ[0])
    dtypes = (f" (dtypes: the teacher's {ours.dtype}, the env's {theirs.dtype})"
              if isinstance(ours, spaces.Box) and ours.dtype != theirs.dtype else "")
    return (f"bounds differ in {differ.size} dimension(s), first in dimension {i}: the teacher's "
            f"[{a_lo.ravel()[i].item()!r}, {a_hi.ravel()[i].item()!r}], the env's "
            f"[{b_lo.ravel()[i].item()!r}, {b_hi.ravel()[i].item()!r}]{dtypes}")


def _unsupported(space: object) -> str:
    return (
        "task_space must be a gymnasium.spaces Box (with finite bounds), Discrete or "
        f"MultiDiscrete, got {space!r}"
    )


class TaskSpace:
    """A gymnasium space with named dimensions and fast task validation.

    Parameters
    ----------
    space
        ``Box`` with finite bounds, ``Discrete`` or ``MultiDiscrete``.
    names
        One name per dimension (``Box``/``MultiDiscrete``: per element of the flattened space;
        ``Discrete``: one name). Defaults to ``("x0", "x1", ...)``.

    Notes
    -----
    Internally a task is a flat float64 *vector*: the Box's values, the MultiDiscrete's
    integers, or the Discrete's one integer. ``normalise`` maps a vector to [0, 1]^d.
    """

    def __init__(self, space: spaces.Space, names: Sequence[str] | None = None) -> None:
        if isinstance(space, TaskSpace):
            names = names if names is not None else space.names
            space = space.space
        if not isinstance(space, SUPPORTED):
            raise ValueError(_unsupported(space))
        self.space = space
        if isinstance(space, spaces.Box):
            low = space.low.astype(np.float64).ravel()
            high = space.high.astype(np.float64).ravel()
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                raise ValueError(f"a Box task space needs finite bounds, got {space!r}")
            # Teachers normalise by high - low: a width past float64's range (e.g. bounds
            # -1.8e308..1.7e308) would turn every normalised task into inf or NaN.
            with np.errstate(over="ignore"):
                width = high - low
            if not np.all(np.isfinite(width)):
                raise ValueError(
                    f"a Box task space needs a finite width high - low (at most {np.finfo(np.float64).max:.3g}) "
                    f"in every dimension, got {space!r}"
                )
            self.shape = space.shape
            self.dtype = space.dtype
        elif isinstance(space, spaces.Discrete):
            low = np.array([float(space.start)])
            high = np.array([float(space.start + space.n - 1)])
            self.shape = ()
            self.dtype = np.dtype(np.int64)
        else:
            low = space.start.astype(np.float64).ravel()
            high = (space.start + space.nvec - 1).astype(np.float64).ravel()
            self.shape = space.nvec.shape
            self.dtype = np.dtype(np.int64)
        self.low, self.high = low, high
        self._low_list, self._high_list = low.tolist(), high.tolist()
        self._integral = not isinstance(space, spaces.Box)
        if self._integral:
            dims = (high - low + 1).astype(np.int64)
            self._strides = np.cumprod(np.r_[dims[1:], 1][::-1])[::-1].astype(np.float64)
            self._by_index: dict[int, Task] = {}
        self.dim = low.size
        self._width = np.where(high > low, high - low, 1.0)
        if names is None:
            names = tuple(f"x{i}" for i in range(self.dim))
        names = tuple(str(n) for n in names)
        if len(names) != self.dim or len(set(names)) != len(names):
            raise ValueError(
                f"task_names must be {self.dim} distinct names (one per dimension), got {names!r}"
            )
        self.names = names

    # ------------------------------------------------------------------ kinds
    @property
    def is_box(self) -> bool:
        return isinstance(self.space, spaces.Box)

    @property
    def is_discrete(self) -> bool:
        """True for Discrete and MultiDiscrete."""
        return not self.is_box

    @property
    def n_tasks(self) -> int:
        """Number of distinct tasks of a discrete space (``ValueError`` for a Box)."""
        if self.is_box:
            raise ValueError("a Box task space has no finite number of tasks")
        return int(np.prod(self.high - self.low + 1))

    def count_arms(self, teacher: str) -> int:
        """:attr:`n_tasks`, for a teacher that keeps arrays with one row per task.

        Raises
        ------
        ValueError
            Past :data:`MAX_ARMS` tasks: arrays that size would exhaust memory (10^12 tasks
            asked for terabytes) and flat indices past 2^53 lose precision.
        """
        n = self.n_tasks
        if n > MAX_ARMS:
            raise ValueError(
                f"teacher {teacher!r} keeps state per task and {self.space!r} has {n:,} tasks; "
                f"expected at most {MAX_ARMS:,} (use a coarser space, or a continuous teacher with adapt=True)"
            )
        return n

    # ------------------------------------------------------------ conversions
    def vector(self, task: Task) -> np.ndarray:
        """Validate ``task`` and return it as a flat float64 vector.

        Raises
        ------
        ValueError
            If the task has the wrong shape, is not a number, is not an integer in a discrete
            space, or lies outside the space.
        """
        if not isinstance(task, np.ndarray) and isinstance(task, Mapping):
            task = self._from_mapping(task)
        try:
            raw = np.asarray(task)
            # Real numbers only: a cast to float64 would silently drop an imaginary part
            # (complex), parse text ("1.5") or count nanoseconds (datetimes).
            if raw.dtype.kind not in "biufO":
                raise TypeError(raw.dtype)
            x = raw.astype(np.float64)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int past float64's range
            raise ValueError(f"task must be numeric (real numbers) with shape {self.shape}, got {task!r}") from None
        if x.shape != self.shape and not (x.size == self.dim and x.ndim <= 1 and self.dim == 1):
            raise ValueError(f"task must have shape {self.shape}, got shape {x.shape}: {task!r}")
        x = x.reshape(self.dim)
        # Task spaces have few dimensions: a Python loop beats three numpy calls here.
        for i, (v, lo, hi) in enumerate(zip(x.tolist(), self._low_list, self._high_list)):
            if not lo <= v <= hi:  # also catches NaN
                raise ValueError(
                    f"task {x.tolist()} is outside the task space: {self.names[i]!r} (dimension {i}) "
                    f"is {v!r}, expected a value in [{lo!r}, {hi!r}] "
                    f"(bounds of {self.names}: low {self.low.tolist()}, high {self.high.tolist()})"
                )
            if self._integral and not v.is_integer():
                raise ValueError(f"task of a discrete space must be integers, got {x.tolist()}")
        return x

    def _from_mapping(self, task: Mapping) -> list:
        missing = [n for n in self.names if n not in task]
        unknown = [k for k in task if k not in self.names]
        if missing or unknown:
            raise ValueError(
                f"a task given by name needs exactly the keys {self.names}; "
                f"missing {missing}, unknown {unknown}"
            )
        return [task[n] for n in self.names]

    def task(self, vector: np.ndarray) -> Task:
        """The canonical task (an element of ``space``) for a flat vector already in bounds."""
        if self.is_box:
            inside = np.minimum(np.maximum(vector, self.low), self.high)
            return inside.astype(self.dtype).reshape(self.shape)
        ints = np.rint(vector).astype(np.int64)
        if isinstance(self.space, spaces.Discrete):
            return np.int64(ints[0])
        return ints.reshape(self.shape)

    def tasks(self, vectors: np.ndarray) -> np.ndarray:
        """Canonical tasks, stacked, for a batch of flat vectors (``(n, dim)``; in bounds for a discrete space)."""
        if not self.is_box:
            ints = np.rint(vectors).astype(np.int64).reshape(-1, self.dim)
            return ints[:, 0] if isinstance(self.space, spaces.Discrete) else ints.reshape((-1,) + self.shape)
        out = np.clip(vectors, self.low, self.high).astype(self.dtype)
        return out.reshape((len(vectors),) + self.shape)

    def as_dict(self, task: Task) -> dict[str, float]:
        """The task as ``{name: value}``."""
        return dict(zip(self.names, self.vector(task).tolist()))

    def normalise(self, vectors: np.ndarray) -> np.ndarray:
        """Map vectors (``(..., dim)``) from the space's bounds to [0, 1]."""
        return (vectors - self.low) / self._width

    def denormalise(self, unit: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalise`, clipped to the bounds."""
        return np.minimum(np.maximum(self.low + unit * self._width, self.low), self.high)

    # ----------------------------------------------------------- discrete ids
    # Bandit teachers turn tasks into arms and back on every episode: both directions are
    # kept cheap (a dot product with C-order strides; a cache of the tasks built so far).
    def index(self, task: Task) -> int:
        """Flat index (0..n_tasks-1) of a task of a discrete space (validated)."""
        return self.arm(self.vector(task))

    def arm(self, vector: np.ndarray) -> int:
        """Flat index of an already validated task vector of a discrete space."""
        return int((vector - self.low) @ self._strides)

    def from_index(self, index: int) -> Task:
        """The task with flat index ``index`` in a discrete space (a fresh copy)."""
        task = self._by_index.get(int(index))
        if task is None:
            dims = (self.high - self.low + 1).astype(np.int64)
            offs = np.array(np.unravel_index(int(index), dims), dtype=np.float64)
            task = self._by_index[int(index)] = self.task(self.low + offs)
        return task.copy() if isinstance(task, np.ndarray) else task

    def describe(self) -> dict:
        """JSON-able description (space and names)."""
        return {**describe_space(self.space), "names": list(self.names)}

    def __repr__(self) -> str:
        return f"TaskSpace({self.space!r}, names={self.names})"


def count_tasks(tasks: np.ndarray, low: np.ndarray, high: np.ndarray, bins: int = 10) -> np.ndarray:
    """Counts of ``tasks`` (``(n, dims)``) in ``bins`` equal bins per dimension: ``(dims, bins)``.

    Toy runs store one per evaluation period as ``task_counts`` (``teachgym plot``'s heatmaps);
    training logs them as ``teacher.csv``'s histograms.
    """
    low, high = np.asarray(low, dtype=float).ravel(), np.asarray(high, dtype=float).ravel()
    tasks = np.asarray(tasks, dtype=float).reshape(-1, low.size)  # no tasks: zero counts
    unit = (tasks - low) / np.where(high > low, high - low, 1.0)
    idx = np.clip((unit * bins).astype(int), 0, bins - 1)  # the upper bound falls in the last bin
    out = np.zeros((tasks.shape[1], bins), dtype=np.int64)
    for d in range(tasks.shape[1]):
        out[d] = np.bincount(idx[:, d], minlength=bins)
    return out


def check_score(score: float) -> float:
    """Return ``score`` as a float; ``ValueError`` unless it is a finite real number."""
    try:
        if isinstance(score, (complex, np.complexfloating)):
            raise TypeError(score)  # float() would drop a numpy complex's imaginary part
        value = float(score)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"score must be a finite real number, got {score!r}") from None
    if value != value or value in (float("inf"), float("-inf")) or isinstance(score, (bool, str)):
        raise ValueError(f"score must be a finite real number, got {score!r}")
    return value
