"""Run any teacher on any task space.

* :class:`CellAdapter` lets a discrete (bandit) teacher drive a ``Box``: the box is cut into a
  grid of cells, the inner teacher picks a cell (``MultiDiscrete``) and the task is drawn
  uniformly inside it; an episode is reported to the inner teacher as its cell.
* :class:`EmbeddingAdapter` lets a continuous teacher drive a ``Discrete`` / ``MultiDiscrete``
  space: each integer ``i`` is embedded as the interval ``[i - 0.5, i + 0.5]`` of a ``Box``, the
  inner teacher's continuous task is rounded to the nearest integer, and an episode is reported
  as the integer itself.

``make_teacher(name, space, adapt=True)`` applies the right one when the teacher does not
support the space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task, TaskSpace
from teachgym.teacher import Teacher, make_teacher, teacher_class


class _Adapter(Teacher):
    """Common part: an inner teacher on another space, state and hooks forwarded."""

    def __init__(self, task_space, seed, task_names, teacher: str, teacher_kwargs: dict | None) -> None:
        super().__init__(task_space, seed, task_names)
        self.teacher = teacher
        self.teacher_kwargs = dict(teacher_kwargs or {})
        self.name = f"{teacher}@{type(self).__name__}"
        inner_seed = np.random.SeedSequence(int(self.rng.integers(2**63)))
        self.inner = make_teacher(teacher, self._inner_space(), seed=inner_seed, **self.teacher_kwargs)

    def _inner_space(self) -> spaces.Space:
        raise NotImplementedError

    def _to_outer(self, inner_tasks: np.ndarray) -> np.ndarray:
        """Representative outer tasks (stacked) for stacked inner tasks (for the hooks)."""
        raise NotImplementedError

    def bind(
        self,
        value_estimate: Callable[[np.ndarray], np.ndarray] | None = None,
        difficulty: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        super().bind(value_estimate, difficulty)
        self.inner.bind(self._through_outer(value_estimate), self._through_outer(difficulty))

    def _through_outer(self, fn: Callable[[np.ndarray], np.ndarray] | None) -> Callable | None:
        """``fn`` of outer tasks as a function of inner tasks."""
        if fn is None:
            return None
        return lambda tasks: fn(self._to_outer(np.asarray(tasks)))

    def _inner_update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        """Report to the inner teacher; task and score are valid by construction, so the inner
        teacher's own validation is skipped (it would run on every episode)."""
        self.inner._update(vector, score, info)
        self.inner.n_updates += 1

    def _end_batch(self) -> None:
        self.inner._end_batch()

    @property
    def train_on_last_sample(self) -> bool:
        return self.inner.train_on_last_sample

    def _state(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict()}

    def _load(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])


class CellAdapter(_Adapter):
    """A discrete teacher on a ``Box`` task space through a grid of cells.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher` (a bounded ``Box``).
    teacher
        Registered name of the discrete teacher.
    cells_per_dim
        Cells along each dimension (one number for all, or one per dimension). Default: 10 per
        dimension while that makes at most ``max_cells`` cells, else the largest equal number
        (at least 2) that does, so that a 10-D space gets 2^10 cells rather than 10^10.
    teacher_kwargs
        Hyper-parameters of the inner teacher.
    max_cells
        Largest number of cells (arms) the adapter creates.
    """

    supported_spaces = (spaces.Box,)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        teacher: str = "exp3",
        cells_per_dim: int | Sequence[int] | None = None,
        teacher_kwargs: dict | None = None,
        max_cells: int = 10_000,
    ) -> None:
        space = TaskSpace(task_space, task_names)
        if cells_per_dim is None:
            per_dim = 10 if 10**space.dim <= max_cells else max(2, int(np.floor(max_cells ** (1.0 / space.dim) + 1e-9)))
            cells = np.full(space.dim, per_dim, dtype=np.int64)
        else:
            cells = np.broadcast_to(np.asarray(cells_per_dim, dtype=np.int64), (space.dim,))
        if (cells < 1).any():
            raise ValueError(f"cells_per_dim must be positive integers, got {cells_per_dim!r}")
        if float(np.prod(cells.astype(np.float64))) > max_cells:
            raise ValueError(
                f"{' x '.join(map(str, cells.tolist()))} cells is more than max_cells={max_cells}; "
                "use fewer cells per dimension"
            )
        self.max_cells = int(max_cells)
        self._cells = cells.copy()
        self.cells_per_dim = cells_per_dim if cells_per_dim is None or isinstance(cells_per_dim, int) else tuple(int(c) for c in cells_per_dim)
        super().__init__(space, seed, task_names, teacher, teacher_kwargs)

    def _inner_space(self) -> spaces.Space:
        return spaces.MultiDiscrete(self._cells)

    def _cell_of(self, vector: np.ndarray) -> np.ndarray:
        unit = self.task_space.normalise(vector)
        return np.minimum((unit * self._cells).astype(np.int64), self._cells - 1)

    def _to_outer(self, inner_tasks: np.ndarray) -> np.ndarray:
        centres = (inner_tasks.reshape(-1, self.task_space.dim) + 0.5) / self._cells
        return self.task_space.tasks(self.task_space.denormalise(centres))

    def _sample(self) -> Task:
        cell = np.asarray(self.inner.sample(), dtype=np.float64)
        unit = (cell + self.rng.random(self.task_space.dim)) / self._cells
        return self.task_space.task(self.task_space.denormalise(unit))

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        self._inner_update(self._cell_of(vector).astype(np.float64), score, info)


class EmbeddingAdapter(_Adapter):
    """A continuous teacher on a ``Discrete`` / ``MultiDiscrete`` space through an embedding.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher` (``Discrete`` or ``MultiDiscrete``).
    teacher
        Registered name of the continuous teacher.
    teacher_kwargs
        Hyper-parameters of the inner teacher.
    """

    supported_spaces = (spaces.Discrete, spaces.MultiDiscrete)

    def __init__(self, task_space, seed=None, task_names=None, teacher: str = "alp-gmm", teacher_kwargs: dict | None = None) -> None:
        super().__init__(task_space, seed, task_names, teacher, teacher_kwargs)

    def _inner_space(self) -> spaces.Space:
        return spaces.Box(self.task_space.low - 0.5, self.task_space.high + 0.5, dtype=np.float64)

    def _to_outer(self, inner_tasks: np.ndarray) -> np.ndarray:
        vectors = inner_tasks.reshape(-1, self.task_space.dim)
        return self.task_space.tasks(np.clip(np.rint(vectors), self.task_space.low, self.task_space.high))

    def _sample(self) -> Task:
        x = np.asarray(self.inner.sample(), dtype=np.float64)
        return self.task_space.task(np.clip(np.rint(x), self.task_space.low, self.task_space.high))

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        self._inner_update(vector, score, info)


def adapt_teacher(
    name: str,
    task_space: spaces.Space | TaskSpace,
    seed: int | np.random.SeedSequence | None = None,
    task_names: Sequence[str] | None = None,
    cells_per_dim: int | Sequence[int] | None = None,
    **hparams: Any,
) -> Teacher:
    """The teacher ``name`` on ``task_space``, through an adapter if it does not support it."""
    space = TaskSpace(task_space, task_names)
    cls = teacher_class(name)
    if isinstance(space.space, cls.supported_spaces):
        return make_teacher(name, space, seed=seed, **hparams)
    if space.is_box:
        return CellAdapter(space, seed, teacher=name, cells_per_dim=cells_per_dim, teacher_kwargs=hparams)
    if spaces.Box in cls.supported_spaces:
        return EmbeddingAdapter(space, seed, teacher=name, teacher_kwargs=hparams)
    kinds = ", ".join(t.__name__ for t in cls.supported_spaces)
    raise ValueError(f"teacher {name!r} supports {kinds}; no adapter reaches {space.space!r}")
