"""Category-level online difficulty filtering: draw only categories of intermediate pass rate.

Bae, Hong, Lee & Kim, "Online Difficulty Filtering for Reasoning Oriented Reinforcement Learning",
2025 (arXiv:2504.03380). With GRPO, a prompt the policy always or never solves gives every rollout
the same reward, hence zero advantage and no gradient; the expected gain grows with the variance
``p (1 - p)`` of the pass rate. The filter keeps the prompts whose pass rate over ``n`` rollouts
lies strictly between ``low`` and ``high`` ((0, 1) by default; a band around 0.5 such as
(0.25, 0.75) is the "balanced" variant) and fills batches with them.

This teacher filters *categories* (tasks of a Discrete / MultiDiscrete space: difficulty levels,
families), not prompts: it estimates each category's pass rate from its past results and draws
categories, so it works through the teacher API in any loop, including one that cannot roll out
a prompt before deciding to train on it. The paper's filter works per prompt, on the pass rate of
that prompt's own rollouts, and oversamples to fill the batch:
:class:`~teachgym.students.online_filter.OnlineDifficultyFilter` (``online-filter`` in the
reasoning suite).

Here the pass rate of each task is estimated from its last ``n_rollouts`` results (a pass is
``score >= success_threshold``, or the clipped score itself with ``None``). The kept set is
rebuilt at the end of every batch (the end of ``update_batch``, or every ``batch_size`` single
updates). Tasks come uniformly from the kept set; with probability ``retest_prob``, or while the
kept set is empty, a task outside it is drawn uniformly instead, so that tasks whose difficulty
has changed (learnt, forgotten, unlocked) are re-tested.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher


@register_teacher("difficulty-filter")
class DifficultyFilter(Teacher):
    """Category-level online difficulty filtering over the tasks of a Discrete or MultiDiscrete space.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    n_rollouts
        Results per task the pass rate is estimated from (the GRPO group size n).
    low, high
        A task is kept when ``low < pass rate < high``.
    retest_prob
        Probability of drawing a task outside the kept set.
    batch_size
        Single updates between two rebuilds of the kept set.
    success_threshold
        A score at least this is a pass; ``None``: scores are pass rates in [0, 1].
    """

    supported_spaces = (spaces.Discrete, spaces.MultiDiscrete)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        n_rollouts: int = 8,
        low: float = 0.0,
        high: float = 1.0,
        retest_prob: float = 0.1,
        batch_size: int = 64,
        success_threshold: float | None = None,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        for name, value in (("n_rollouts", n_rollouts), ("batch_size", batch_size)):
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"expected 0 <= low < high <= 1, got low={low!r}, high={high!r}")
        if not 0.0 <= retest_prob <= 1.0:
            raise ValueError(f"retest_prob must lie in [0, 1], got {retest_prob!r}")
        if success_threshold is not None and not np.isfinite(success_threshold):
            raise ValueError(f"success_threshold must be a finite number or None, got {success_threshold!r}")
        self.n_rollouts, self.batch_size = int(n_rollouts), int(batch_size)
        self.low, self.high, self.retest_prob = float(low), float(high), float(retest_prob)
        self.success_threshold = None if success_threshold is None else float(success_threshold)
        self.n_tasks = self.task_space.count_arms(self.name)
        self._results = np.zeros((self.n_tasks, self.n_rollouts))  # ring buffer of passes per task
        self._counts = np.zeros(self.n_tasks, dtype=np.int64)
        self._pos = np.zeros(self.n_tasks, dtype=np.int64)
        self.kept = np.zeros(self.n_tasks, dtype=bool)
        self._kept_idx = np.zeros(0, dtype=np.int64)
        self._other_idx = np.arange(self.n_tasks)
        self._in_batch = 0

    def pass_rates(self) -> np.ndarray:
        """Estimated pass rate of each task (NaN for a task never tried)."""
        with np.errstate(invalid="ignore"):
            return np.where(self._counts > 0, self._results.sum(1) / self._counts, np.nan)

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> Task:
        pool = self._kept_idx
        if len(pool) == 0 or (len(self._other_idx) and self.rng.random() < self.retest_prob):
            pool = self._other_idx
        return self.task_space.from_index(int(pool[self.rng.integers(len(pool))]))

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        task = self.task_space.arm(vector)
        passed = (
            min(max(score, 0.0), 1.0)
            if self.success_threshold is None
            else float(score >= self.success_threshold)
        )
        p = self._pos[task]
        self._results[task, p] = passed
        self._pos[task] = (p + 1) % self.n_rollouts
        self._counts[task] = min(self._counts[task] + 1, self.n_rollouts)
        self._in_batch += 1
        if self._in_batch >= self.batch_size:
            self._end_batch()

    def _end_batch(self) -> None:
        """Rebuild the kept set from the current pass-rate estimates."""
        rates = self.pass_rates()
        with np.errstate(invalid="ignore"):
            self.kept = (rates > self.low) & (rates < self.high)  # NaN (untried) is never kept
        self._kept_idx = np.flatnonzero(self.kept)
        self._other_idx = np.flatnonzero(~self.kept)
        self._in_batch = 0

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            "results": self._results.copy(),
            "counts": self._counts.copy(),
            "pos": self._pos.copy(),
            "kept": self.kept.copy(),
            "in_batch": self._in_batch,
        }

    def _load(self, state: dict[str, Any]) -> None:
        results = np.asarray(state["results"], dtype=np.float64).reshape(self.n_tasks, self.n_rollouts).copy()
        counts, pos = (
            np.asarray(state[k], dtype=np.int64).reshape(self.n_tasks).copy() for k in ("counts", "pos")
        )
        kept = np.asarray(state["kept"], dtype=bool).reshape(self.n_tasks).copy()
        self._results, self._counts, self._pos, self.kept = results, counts, pos, kept
        self._kept_idx, self._other_idx = np.flatnonzero(kept), np.flatnonzero(~kept)
        self._in_batch = int(state["in_batch"])
