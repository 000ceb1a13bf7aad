"""ADR: Automatic Domain Randomisation.

OpenAI et al., "Solving Rubik's Cube with a Robot Hand", 2019; as adapted to task spaces by
TeachMyAgent (Romac et al. 2021). Tasks are drawn uniformly from a box that starts as a single
task; with probability ``boundary_sampling_p`` one dimension is pinned to its lower or upper
bound, and the scores of such boundary tasks fill a queue per bound. When a queue is full, the
bound moves outward by ``step_size`` if its mean score is at least ``expand_threshold`` and inward
if it is at most ``shrink_threshold``; the queue is then emptied.

Scores and bounds: bounds live in normalised units ([0, 1] per dimension), so ``step_size = 0.1``
is a tenth of each range. The thresholds default to values for scores in [0, 1] (what a wrapped
env with a ``score_range`` reports): expand at 0.75 (a mastered task, e.g. return 230 of a walker
scaled from (-150, 350) is 0.76), shrink at 0.0 (no success at all, TeachMyAgent's return 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.teacher import Teacher, register_teacher


@register_teacher("adr")
class ADR(Teacher):
    """Automatic Domain Randomisation for bounded ``Box`` task spaces.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    initial_task
        The task the box starts from (a flat list in task units). ``None``: the lower bounds of
        the space, i.e. no knowledge of where easy tasks lie beyond "start at the low corner".
    boundary_sampling_p
        Probability that a sampled task has one dimension pinned to a bound.
    step_size
        How far a bound moves, as a fraction of the dimension's range.
    queue_len
        Scores per bound before it may move.
    expand_threshold
        A full queue whose mean score is at least this moves its bound outward.
    shrink_threshold
        A full queue whose mean score is at most this moves its bound inward.
    """

    supported_spaces = (spaces.Box,)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        initial_task: list[float] | None = None,
        boundary_sampling_p: float = 0.5,
        step_size: float = 0.1,
        queue_len: int = 10,
        expand_threshold: float = 0.75,
        shrink_threshold: float = 0.0,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        space = self.task_space
        if initial_task is None:
            start = space.low.copy()
        else:
            try:
                start = space.vector(np.asarray(initial_task, dtype=np.float64).reshape(space.shape))
            except ValueError as err:
                raise ValueError(f"initial_task must be a task of the space: {err}") from None
            initial_task = start.tolist()
        if not 0.0 <= boundary_sampling_p <= 1.0:
            raise ValueError(f"boundary_sampling_p must lie in [0, 1], got {boundary_sampling_p!r}")
        if not 0.0 < step_size <= 1.0:
            raise ValueError(f"step_size must lie in (0, 1] (a fraction of each range), got {step_size!r}")
        if isinstance(queue_len, bool) or not isinstance(queue_len, (int, np.integer)) or queue_len < 1:
            raise ValueError(f"queue_len must be a positive integer, got {queue_len!r}")
        if (
            not (np.isfinite(expand_threshold) and np.isfinite(shrink_threshold))
            or shrink_threshold >= expand_threshold
        ):
            raise ValueError(
                "expected finite thresholds with shrink_threshold < expand_threshold, got "
                f"{shrink_threshold!r} and {expand_threshold!r}"
            )
        self.initial_task = initial_task
        self.boundary_sampling_p = float(boundary_sampling_p)
        self.step_size = float(step_size)
        self.queue_len = int(queue_len)
        self.expand_threshold = float(expand_threshold)
        self.shrink_threshold = float(shrink_threshold)
        unit = space.normalise(start)
        # Python lists: the task spaces are small and per-episode numpy calls would dominate.
        self.lower: list[float] = unit.tolist()
        self.upper: list[float] = unit.tolist()
        self._queues: list[list[float]] = [[] for _ in range(2 * space.dim)]  # lower bounds, then upper
        self._refresh_bound_values()

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> np.ndarray:
        dim = self.task_space.dim
        lo, hi = np.array(self.lower), np.array(self.upper)
        unit = lo + self.rng.random(dim) * (hi - lo)
        if self.rng.random() < self.boundary_sampling_p:
            i = int(self.rng.integers(dim))
            lower_free, upper_free = self.lower[i] > 0.0, self.upper[i] < 1.0
            # A bound already at the edge of the space cannot expand: test the other one.
            if lower_free and upper_free:
                unit[i] = self.lower[i] if self.rng.random() < 0.5 else self.upper[i]
            elif lower_free:
                unit[i] = self.lower[i]
            elif upper_free:
                unit[i] = self.upper[i]
        return self.task_space.task(self.task_space.denormalise(unit))

    def _refresh_bound_values(self) -> None:
        """The bounds as a sampled task holds them (same arithmetic and dtype), for ``==`` tests."""
        space = self.task_space
        for name, unit in (("_lower_values", self.lower), ("_upper_values", self.upper)):
            task = space.task(space.denormalise(np.array(unit)))
            setattr(self, name, np.asarray(task, dtype=np.float64).ravel().tolist())

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        dim, step = self.task_space.dim, self.step_size
        moved = False
        for i, v in enumerate(vector.tolist()):
            # As in the paper, a task counts for every bound it sits on (both while lower == upper).
            if v == self._lower_values[i]:
                mean = self._push(i, score)
                if mean is not None:
                    if mean >= self.expand_threshold:
                        self.lower[i] = max(self.lower[i] - step, 0.0)
                    elif mean <= self.shrink_threshold:
                        self.lower[i] = min(self.lower[i] + step, self.upper[i])
                    moved = True
            if v == self._upper_values[i]:
                mean = self._push(dim + i, score)
                if mean is not None:
                    if mean >= self.expand_threshold:
                        self.upper[i] = min(self.upper[i] + step, 1.0)
                    elif mean <= self.shrink_threshold:
                        self.upper[i] = max(self.upper[i] - step, self.lower[i])
                    moved = True
        if moved:
            # Repeated +-0.1 drifts (0.1 * 8 -> 0.7999...); keep bounds on the step lattice.
            self.lower = [round(x, 12) for x in self.lower]
            self.upper = [round(x, 12) for x in self.upper]
            self._refresh_bound_values()

    def _push(self, q: int, score: float) -> float | None:
        """Add a score to queue ``q``; when it is full, empty it and return its mean."""
        queue = self._queues[q]
        queue.append(score)
        if len(queue) < self.queue_len:
            return None
        self._queues[q] = []
        return sum(queue) / len(queue)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The current box, in task units: ``(lower, upper)``."""
        space = self.task_space
        return space.denormalise(np.array(self.lower)), space.denormalise(np.array(self.upper))

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            "lower": np.array(self.lower),
            "upper": np.array(self.upper),
            "queues": [list(q) for q in self._queues],
        }

    def _load(self, state: dict[str, Any]) -> None:
        dim = self.task_space.dim
        lower = np.asarray(state["lower"], dtype=np.float64).reshape(dim)
        upper = np.asarray(state["upper"], dtype=np.float64).reshape(dim)
        queues = [[float(s) for s in q] for q in state["queues"]]
        if (
            len(queues) != 2 * dim
            or not (0.0 <= lower).all()
            or not (lower <= upper).all()
            or not (upper <= 1.0).all()
        ):
            raise ValueError("ADR state: expected 0 <= lower <= upper <= 1 and one queue per bound")
        self.lower, self.upper, self._queues = lower.tolist(), upper.tolist(), queues
        self._refresh_bound_values()
