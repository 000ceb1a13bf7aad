"""ADR: Automatic Domain Randomisation.

OpenAI et al., "Solving Rubik's Cube with a Robot Hand", 2019; as adapted to task spaces by
TeachMyAgent (Romac et al. 2021). Tasks are drawn uniformly from a box that starts as a single
task; with probability ``boundary_sampling_p`` one dimension is pinned to its lower or upper
bound, and the scores of such boundary tasks fill a queue per bound. When a queue is full, the
bound moves outward by ``step_size`` if its mean score is at least ``expand_threshold`` and inward
if it is at most ``shrink_threshold``; the queue is then emptied.

Scores and thresholds: the thresholds are in the units of the scores the teacher is given. An
env that declares a ``score_range`` (walkers: (-150, 350)) reaches the teacher rescaled to
[0, 1] by :class:`~teachgym.CurriculumWrapper`, and the defaults are for such scores: expand at
0.75 (a mastered task: return 230 of a walker is 0.76) and shrink at 0.3 (a return of 0 on
(-150, 350), TeachMyAgent's shrink threshold: the student gets nowhere on that bound). With
``score_range`` given, the thresholds are read as raw returns instead and mapped to [0, 1] the
wrapper's way, so TeachMyAgent's thresholds can be written as it writes them (0 and 180).

Steps: ``step_size`` is a fraction of each dimension's range (``step_units="range"``) or, as in
TeachMyAgent, a length in task units (``step_units="task"``). On Stump Tracks' ranges 3 and 6,
TeachMyAgent's step 0.1 is 1/30 and 1/60 of them, where a range fraction of 0.1 moves 0.3 and 0.6.

The ``"teachmyagent"`` preset is TeachMyAgent's benchmark setting
(``TeachMyAgent/run_utils/teacher_args_handler.py``, the ADR arguments, unchanged by
``benchmark_scripts/full_benchmark_ADR.txt``; the algorithm in ``TeachMyAgent/teachers/algos/adr.py``):
boundary sampling 0.7, step 0.1 in task units, thresholds 0 and 180 in raw return on
(-150, 350) (Stump Tracks' ``env_reward_lb/ub`` in ``run_utils/environment_args_handler.py``;
Parkour's is (-150, 360): override ``score_range``), queue of 10, a random initial task (its
"low expert knowledge" runs; with more knowledge it starts at the expert's mean, for Stump Tracks
(0, 6): pass ``initial_task``), and its boundary rule: unless both bounds of the chosen dimension
sit at the space's limits, either bound is pinned with probability 0.5, even one that cannot move
(``pin_capped_bounds``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from teachgym.teacher import Teacher, register_teacher
from teachgym.wrappers import rescale_score


@register_teacher("adr")
class ADR(Teacher):
    """Automatic Domain Randomisation for bounded ``Box`` task spaces.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    initial_task
        The task the box starts from (a flat list in task units). ``None``: the lower bounds of
        the space, i.e. no knowledge of where easy tasks lie beyond "start at the low corner";
        ``"random"``: a uniform draw from the space (TeachMyAgent without an expert's
        distribution).
    boundary_sampling_p
        Probability that a sampled task has one dimension pinned to a bound.
    step_size
        How far a bound moves: a fraction of the dimension's range, or task units (``step_units``).
    step_units
        ``"range"`` (fraction of each range) or ``"task"`` (task units, as TeachMyAgent).
    queue_len
        Scores per bound before it may move.
    expand_threshold
        A full queue whose mean score is at least this moves its bound outward.
    shrink_threshold
        A full queue whose mean score is at most this moves its bound inward.
    score_range
        ``None``: the thresholds are in the units of the scores the teacher is given. ``(lo,
        hi)``: they are raw returns of an env with that ``score_range``, whose scores reach the
        teacher rescaled to [0, 1]; they are mapped the same way.
    pin_capped_bounds
        When the chosen dimension has one bound at the space's limit: ``False`` pins the other
        bound, ``True`` pins either with probability 0.5 (TeachMyAgent's code). With both at the
        limits, no bound is pinned.
    """

    supported_spaces = (spaces.Box,)
    PRESETS = {
        "teachmyagent": {
            "initial_task": "random",
            "boundary_sampling_p": 0.7,
            "step_size": 0.1,
            "step_units": "task",
            "queue_len": 10,
            "expand_threshold": 180.0,
            "shrink_threshold": 0.0,
            "score_range": (-150.0, 350.0),
            "pin_capped_bounds": True,
        },
    }

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        initial_task: list[float] | Literal["random"] | None = None,
        boundary_sampling_p: float = 0.5,
        step_size: float = 0.1,
        step_units: str = "range",
        queue_len: int = 10,
        expand_threshold: float = 0.75,
        shrink_threshold: float = 0.3,
        score_range: tuple[float, float] | None = None,
        pin_capped_bounds: bool = False,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        space = self.task_space
        if initial_task is None:
            start = space.low.copy()
        elif isinstance(initial_task, str):
            if initial_task != "random":
                raise ValueError(f"initial_task must be a task, None or 'random', got {initial_task!r}")
            start = space.denormalise(self.rng.random(space.dim))
        else:
            try:
                start = space.vector(np.asarray(initial_task, dtype=np.float64).reshape(space.shape))
            except ValueError as err:
                raise ValueError(f"initial_task must be a task of the space: {err}") from None
            initial_task = start.tolist()
        if not 0.0 <= boundary_sampling_p <= 1.0:
            raise ValueError(f"boundary_sampling_p must lie in [0, 1], got {boundary_sampling_p!r}")
        if step_units not in ("range", "task"):
            raise ValueError(f"step_units must be 'range' or 'task', got {step_units!r}")
        if step_units == "range" and not 0.0 < step_size <= 1.0:
            raise ValueError(f"step_size must lie in (0, 1] (a fraction of each range), got {step_size!r}")
        if not 0.0 < step_size < np.inf:
            raise ValueError(f"step_size must be a positive number (task units), got {step_size!r}")
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
        if score_range is not None:
            lo, hi = (float(v) for v in score_range)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"score_range must be (low, high) with finite low < high, got {score_range!r}")
            score_range = (lo, hi)
        self.initial_task = initial_task
        self.boundary_sampling_p = float(boundary_sampling_p)
        self.step_size = float(step_size)
        self.step_units = step_units
        self.queue_len = int(queue_len)
        self.expand_threshold = float(expand_threshold)
        self.shrink_threshold = float(shrink_threshold)
        self.score_range = score_range
        self.pin_capped_bounds = bool(pin_capped_bounds)
        # What the queues' means are compared with, in the units of the scores received.
        self._expand_at, self._shrink_at = (
            rescale_score(t, score_range) if score_range is not None else t
            for t in (self.expand_threshold, self.shrink_threshold)
        )
        if self._shrink_at >= self._expand_at:  # both past the same end of the range
            raise ValueError(
                f"the thresholds {shrink_threshold!r} and {expand_threshold!r} map to the same score on "
                f"score_range {score_range!r}; expected them inside it"
            )
        width = np.where(space.high > space.low, space.high - space.low, 1.0)  # as TaskSpace.normalise
        steps = np.full(space.dim, self.step_size) if step_units == "range" else self.step_size / width
        self._steps: list[float] = steps.tolist()  # per dimension, in normalised units
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
            # A bound already at the edge of the space cannot expand: test the other one
            # (TeachMyAgent still picks either while one of them is free).
            if (lower_free and upper_free) or (self.pin_capped_bounds and (lower_free or upper_free)):
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
        dim, expand, shrink = self.task_space.dim, self._expand_at, self._shrink_at
        moved = False
        for i, v in enumerate(vector.tolist()):
            step = self._steps[i]
            # As in the paper, a task counts for every bound it sits on (both while lower == upper).
            if v == self._lower_values[i]:
                mean = self._push(i, score)
                if mean is not None:
                    if mean >= expand:
                        self.lower[i] = max(self.lower[i] - step, 0.0)
                    elif mean <= shrink:
                        self.lower[i] = min(self.lower[i] + step, self.upper[i])
                    moved = True
            if v == self._upper_values[i]:
                mean = self._push(dim + i, score)
                if mean is not None:
                    if mean >= expand:
                        self.upper[i] = min(self.upper[i] + step, 1.0)
                    elif mean <= shrink:
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
        return math.fsum(queue) / len(queue)  # exact sum: ten scores of 0.3 average to 0.3, not above

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
