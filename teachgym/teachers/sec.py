"""SEC: Self-Evolving Curriculum, a non-stationary bandit over problem categories.

Chen et al., "Self-Evolving Curriculum for LLM Reasoning", 2025 (arXiv:2505.14970). Each
category (here: each task of a Discrete / MultiDiscrete space) is an arm whose reward is the mean
absolute advantage of its samples in the last batch, a proxy of immediate learning gain. After
each batch, ``Q ← (1 - α) Q + α r`` for every arm (an arm absent from the batch gets ``r = 0``);
categories are drawn from ``softmax(Q / τ)``. The paper runs ``α = 0.5`` and τ from 0.2 to 1.0
(1.0 on Countdown and Zebra, 0.4 on math, 0.2 for the two-dimensional arms).

A sample's learning signal is the mean of ``|advantages|`` when the student reports them (GRPO
advantages of the rollouts of one prompt, or per token: ``update(task, score,
advantages=[...])`` / ``update_batch(..., infos=[{"advantages": [...]}, ...])``); without them it
is ``|score - previous score of the arm|`` (0 on an arm's first sample), the progress a single
episode shows. A batch ends at the end of ``update_batch`` or after ``batch_size`` single updates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher
from teachgym.teachers._arms import draw_arm


@register_teacher("sec")
class SEC(Teacher):
    """Self-Evolving Curriculum over the tasks of a Discrete or MultiDiscrete space.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    alpha
        TD(0) step α of ``Q ← (1 - α) Q + α r``.
    temperature
        Softmax temperature τ of the sampling distribution.
    batch_size
        Single updates (``update``) that make a batch; ``update_batch`` always closes one.
    """

    supported_spaces = (spaces.Discrete, spaces.MultiDiscrete)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        alpha: float = 0.5,
        temperature: float = 1.0,
        batch_size: int = 32,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
        if not temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.alpha, self.temperature, self.batch_size = float(alpha), float(temperature), int(batch_size)
        self.n_arms = self.task_space.count_arms(self.name)
        self.q = np.zeros(self.n_arms)
        self._previous = np.full(self.n_arms, np.nan)  # last score of each arm (the fallback signal)
        self._batch_sum = np.zeros(self.n_arms)  # per arm: sum of the batch's learning signals
        self._batch_count = np.zeros(self.n_arms, dtype=np.int64)
        self._in_batch = 0  # single updates since the batch began
        self._whole_batch = False  # inside update_batch: the call is the batch
        self._cum: np.ndarray | None = None

    # ---------------------------------------------------------------- sampling
    def probabilities(self) -> np.ndarray:
        """``softmax(Q / τ)``."""
        z = np.exp((self.q - self.q.max()) / self.temperature)
        return z / z.sum()

    def _sample(self) -> Task:
        if self._cum is None:
            self._cum = np.cumsum(self.probabilities())
        return self.task_space.from_index(draw_arm(self.rng, self._cum))

    # ---------------------------------------------------------------- learning
    def _signal(self, arm: int, score: float, info: dict[str, Any]) -> float:
        """Mean |advantage| of the sample, or |Δscore| of its arm without advantages."""
        adv = _advantages(info)
        previous = self._previous[arm]
        self._previous[arm] = score
        if adv is not None:
            return float(np.abs(adv).mean())
        return 0.0 if np.isnan(previous) else abs(score - previous)

    def update_batch(self, tasks, scores, infos=None) -> None:
        """Report one batch; it is one SEC batch whatever its size (``batch_size`` is not applied).

        The advantages of every info are checked before any episode is applied.
        """
        for info in infos or ():
            _advantages(info)
        self._whole_batch = True
        try:
            super().update_batch(tasks, scores, infos)
        finally:
            self._whole_batch = False

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        arm = self.task_space.arm(vector)
        self._batch_sum[arm] += self._signal(arm, score, info)
        self._batch_count[arm] += 1
        self._in_batch += 1
        if self._in_batch >= self.batch_size and not self._whole_batch:
            self._end_batch()

    def _end_batch(self) -> None:
        """TD(0) for every arm: the batch's mean signal, 0 for arms it did not draw."""
        if self._in_batch == 0:
            return
        rewards = self._batch_sum / np.maximum(self._batch_count, 1)
        self.q = (1.0 - self.alpha) * self.q + self.alpha * rewards
        self._batch_sum[:] = 0.0
        self._batch_count[:] = 0
        self._in_batch = 0
        self._cum = None

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            "q": self.q.copy(),
            "previous": self._previous.copy(),
            "batch_sum": self._batch_sum.copy(),
            "batch_count": self._batch_count.copy(),
            "in_batch": self._in_batch,
        }

    def _load(self, state: dict[str, Any]) -> None:
        q, previous, batch_sum = (
            np.asarray(state[k], dtype=np.float64).reshape(self.n_arms).copy()
            for k in ("q", "previous", "batch_sum")
        )
        count = np.asarray(state["batch_count"], dtype=np.int64).reshape(self.n_arms).copy()
        self.q, self._previous, self._batch_sum, self._batch_count = q, previous, batch_sum, count
        self._in_batch = int(state["in_batch"])
        self._cum = None


def _advantages(info: dict[str, Any]) -> np.ndarray | None:
    """The ``advantages`` of an info as a non-empty finite array, ``None`` when absent."""
    if info.get("advantages") is None:
        return None
    try:
        adv = np.asarray(info["advantages"], dtype=np.float64)
    except (TypeError, ValueError):
        adv = np.array([np.nan])
    if adv.size == 0 or not np.all(np.isfinite(adv)):
        raise ValueError(
            f"advantages must be a non-empty sequence of finite numbers, got {info['advantages']!r}"
        )
    return adv
