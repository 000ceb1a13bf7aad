"""Simulated students: no RL, instant, for benchmarking teachers.

:class:`GridStudent` is the toy student of teachDeepRL (Portelas et al. 2019): the first two
dimensions of a [0, 1]^d task space are cut into ``cells_per_dim`` cells each. Training on a task
raises the competence (0..100) of its cell by one, but only for the origin cell or for a cell
with a "previous" neighbour (every index equal or one less, diagonals included) whose competence
is at least ``prerequisite``. A cell is mastered when its competence exceeds
``mastery_threshold``; the score of an episode is the cell's competence / ``max_competence``.

The challenge variants of TeachMyAgent (Romac et al. 2021) are options of the same class and are
named in :data:`GRID_VARIANTS`: distractor dimensions, a mostly unfeasible or mostly trivial
space, a forgetting student and rugged difficulty.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task, TaskSpace

#: The challenge variants, as constructor arguments of :class:`GridStudent`.
GRID_VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    # 8 extra dimensions that change nothing.
    "distractors": {"n_distractor_dims": 8},
    # The grid fills [0, 0.4]^2; the other 84% of the space can never be learnt.
    "mostly_unfeasible": {"grid_extent": 0.4, "outside": "unfeasible"},
    # The grid fills [0, 0.4]^2; the other 84% is already mastered (score 1, nothing to learn).
    "mostly_trivial": {"grid_extent": 0.4, "outside": "trivial"},
    # Every competence goes back to 0 every 5,000 episodes.
    "forgetting": {"forget_every": 5000},
    # Blocks of 2x2 cells are shuffled: neighbours in task space are not neighbours in skill.
    "rugged": {"rugged_block": 2},
}


class GridStudent:
    """The teachDeepRL grid student and its challenge variants.

    Parameters
    ----------
    n_dims
        Dimensions that carry the grid (the paper: 2).
    cells_per_dim
        Cells per grid dimension (the paper: 10).
    n_distractor_dims
        Extra task dimensions that change nothing.
    prerequisite
        Competence a previous neighbour needs for a cell to be learnable.
    mastery_threshold
        A cell is mastered when its competence is strictly above this.
    max_competence
        Competence cap; the score is competence / max_competence.
    grid_extent
        The grid fills [0, grid_extent] on each grid dimension; the rest of [0, 1] is ``outside``.
    outside
        ``"unfeasible"``: score 0 and nothing to learn; ``"trivial"``: score 1, nothing to learn.
    forget_every
        If set, every competence is reset to 0 before each multiple of this many episodes.
    rugged_block
        If set, blocks of ``rugged_block`` cells per dimension are shuffled (with ``seed``).
    seed
        Seed of the student's own generator (used by ``rugged_block``).
    """

    def __init__(
        self,
        n_dims: int = 2,
        cells_per_dim: int = 10,
        n_distractor_dims: int = 0,
        prerequisite: float = 75.0,
        mastery_threshold: float = 75.0,
        max_competence: int = 100,
        grid_extent: float = 1.0,
        outside: Literal["unfeasible", "trivial"] = "unfeasible",
        forget_every: int | None = None,
        rugged_block: int | None = None,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        if n_dims < 1 or cells_per_dim < 1 or n_distractor_dims < 0:
            raise ValueError(
                "n_dims and cells_per_dim must be >= 1 and n_distractor_dims >= 0, got "
                f"{n_dims}, {cells_per_dim}, {n_distractor_dims}"
            )
        if not 0.0 < grid_extent <= 1.0:
            raise ValueError(f"grid_extent must lie in (0, 1], got {grid_extent!r}")
        if outside not in ("unfeasible", "trivial"):
            raise ValueError(f"outside must be 'unfeasible' or 'trivial', got {outside!r}")
        if forget_every is not None and forget_every < 1:
            raise ValueError(f"forget_every must be a positive number of episodes, got {forget_every!r}")
        if rugged_block is not None and (rugged_block < 1 or cells_per_dim % rugged_block):
            raise ValueError(f"rugged_block must divide cells_per_dim={cells_per_dim}, got {rugged_block!r}")
        self.n_dims, self.cells_per_dim = int(n_dims), int(cells_per_dim)
        self.n_distractor_dims = int(n_distractor_dims)
        self.prerequisite, self.mastery_threshold = float(prerequisite), float(mastery_threshold)
        self.max_competence = int(max_competence)
        self.grid_extent, self.outside = float(grid_extent), outside
        self.forget_every, self.rugged_block = forget_every, rugged_block
        self.rng = np.random.default_rng(seed)

        total = self.n_dims + self.n_distractor_dims
        self.task_space = spaces.Box(0.0, 1.0, shape=(total,), dtype=np.float64)
        names = [f"grid_{i}" for i in range(self.n_dims)] + [f"distractor_{i}" for i in range(self.n_distractor_dims)]
        self.task_names = tuple(names)
        self._space = TaskSpace(self.task_space, self.task_names)
        shape = (self.cells_per_dim,) * self.n_dims
        self._cell_of_position = self._layout(shape)  # task-space cell -> grid cell (flat)
        self._previous = [self._previous_cells(c, shape) for c in range(int(np.prod(shape)))]
        self._competence = [0] * int(np.prod(shape))
        self.n_episodes = 0

    def _layout(self, shape: tuple[int, ...]) -> list[int]:
        """Grid cell trained by each task-space cell: the identity, or shuffled blocks."""
        cells = np.arange(int(np.prod(shape))).reshape(shape)
        if self.rugged_block is None:
            return cells.ravel().tolist()
        b = self.rugged_block
        nb = self.cells_per_dim // b
        blocks = list(itertools.product(range(nb), repeat=self.n_dims))
        order = self.rng.permutation(len(blocks))
        out = np.empty_like(cells)
        for src, dst in zip(blocks, (blocks[i] for i in order)):
            s = tuple(slice(i * b, (i + 1) * b) for i in src)
            d = tuple(slice(i * b, (i + 1) * b) for i in dst)
            out[s] = cells[d]
        return out.ravel().tolist()

    @staticmethod
    def _previous_cells(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
        idx = np.unravel_index(flat, shape)
        prev = []
        for offs in itertools.product((0, -1), repeat=len(shape)):
            cand = tuple(i + o for i, o in zip(idx, offs))
            if any(offs) and min(cand) >= 0:
                prev.append(int(np.ravel_multi_index(cand, shape)))
        return tuple(prev)

    # ------------------------------------------------------------------ public
    def train(self, task: Task) -> float:
        """Train one episode on ``task``; returns the score in [0, 1]."""
        x = self._space.vector(task)
        if self.forget_every is not None and self.n_episodes and self.n_episodes % self.forget_every == 0:
            self._competence = [0] * len(self._competence)
        self.n_episodes += 1
        grid = x[: self.n_dims]
        if (grid >= self.grid_extent).any() and self.grid_extent < 1.0:
            return 0.0 if self.outside == "unfeasible" else 1.0
        cells = np.minimum((grid / self.grid_extent * self.cells_per_dim).astype(np.int64), self.cells_per_dim - 1)
        cell = self._cell_of_position[int(np.ravel_multi_index(cells, (self.cells_per_dim,) * self.n_dims))]
        comp = self._competence
        if comp[cell] < self.max_competence and (
            cell == 0 or any(comp[p] >= self.prerequisite for p in self._previous[cell])
        ):
            comp[cell] += 1
        return comp[cell] / self.max_competence

    def evaluate(self, task: Task) -> float:
        """Score of an episode on ``task`` without learning (no time passes either)."""
        return float(self.value_estimate(self._space.vector(task)[None])[0])

    def mastered_fraction(self) -> float:
        """Fraction of grid cells whose competence exceeds ``mastery_threshold``."""
        return sum(c > self.mastery_threshold for c in self._competence) / len(self._competence)

    def _cells(self, tasks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid cell (flat) of each task, and whether the task lies inside the grid."""
        grid = np.asarray(tasks, dtype=np.float64).reshape(-1, self._space.dim)[:, : self.n_dims]
        inside = (grid < self.grid_extent).all(1) | (self.grid_extent >= 1.0)
        idx = np.minimum((grid / self.grid_extent * self.cells_per_dim).astype(np.int64), self.cells_per_dim - 1)
        flat = np.ravel_multi_index(tuple(np.clip(idx, 0, self.cells_per_dim - 1).T), (self.cells_per_dim,) * self.n_dims)
        return np.asarray(self._cell_of_position)[flat], inside

    def value_estimate(self, tasks: np.ndarray) -> np.ndarray:
        """Expected score on each task (``(n, dim)``): the competence the student has there now."""
        cells, inside = self._cells(tasks)
        comp = np.asarray(self._competence, dtype=np.float64)[cells] / self.max_competence
        return np.where(inside, comp, 0.0 if self.outside == "unfeasible" else 1.0)

    def difficulty(self, tasks: np.ndarray) -> np.ndarray:
        """Difficulty in [0, 1] of each task: prerequisite depth of its cell / the deepest depth.

        The depth of a cell is its largest index (the number of cells on the shortest chain of
        prerequisites from the origin); outside the grid, unfeasible tasks get ``inf`` and
        trivial ones 0.
        """
        cells, inside = self._cells(tasks)
        depth = np.array(np.unravel_index(cells, (self.cells_per_dim,) * self.n_dims)).max(0)
        diff = depth / max(self.cells_per_dim - 1, 1)
        return np.where(inside, diff, np.inf if self.outside == "unfeasible" else 0.0)

    def teacher_hooks(self) -> dict[str, Any]:
        """What :meth:`teachgym.teacher.Teacher.bind` takes from this student."""
        return {"value_estimate": self.value_estimate, "difficulty": self.difficulty}

    @property
    def competence(self) -> np.ndarray:
        """Competence of every grid cell, shaped like the grid."""
        return np.array(self._competence).reshape((self.cells_per_dim,) * self.n_dims)


def make_grid_student(variant: str = "default", seed: int | np.random.SeedSequence | None = None, **overrides: Any) -> GridStudent:
    """A :class:`GridStudent` configured as one of :data:`GRID_VARIANTS` (plus ``overrides``)."""
    if variant not in GRID_VARIANTS:
        raise ValueError(f"unknown grid variant {variant!r}; expected one of {sorted(GRID_VARIANTS)}")
    return GridStudent(**{**GRID_VARIANTS[variant], **overrides}, seed=seed)
