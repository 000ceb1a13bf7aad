"""SFL: Sampling For Learnability, tasks drawn by the learnability p (1 - p) of their success rate.

Rutherford, Beukman, Willi, Lacerda, Hawes & Foerster, "No Regrets: Investigating and Improving
Regret Approximations for Curriculum Discovery", NeurIPS 2024. A task the student solves with
probability ``p`` has learnability ``p (1 - p)``: zero when it always or never succeeds, largest
at 0.5. SFL periodically keeps the ``buffer_size`` most learnable levels and trains on them with
probability ``1 - random_task_ratio``, on uniformly random levels otherwise.

Here levels are the tasks of a discrete space and ``p`` is estimated from the last ``window``
results on each task (success = ``score >= success_threshold``; with ``success_threshold=None``
the scores themselves, clipped to [0, 1], are success rates). The buffer is rebuilt every
``buffer_update_period`` updates; it holds only tasks of positive learnability (SFL's buffer may
be topped up with zero-learnability levels; sampling those is what the uniform share is for), and
is sampled uniformly (``sampling="topk"``) or in proportion to learnability
(``sampling="proportional"``). Until the buffer holds a task, tasks are uniform.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher

SAMPLINGS = ("topk", "proportional")


@register_teacher("sfl")
class SFL(Teacher):
    """Learnability sampling over the tasks of a Discrete or MultiDiscrete space.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    buffer_size
        Most learnable tasks kept (SFL's K).
    buffer_update_period
        Updates between two rebuilds of the buffer (SFL's T, counted in episodes here).
    random_task_ratio
        Probability of a uniform task instead of one from the buffer.
    window
        Recent results per task that estimate its success rate.
    success_threshold
        A score at least this is a success; ``None``: scores are success rates in [0, 1].
    sampling
        ``"topk"`` (uniform over the buffer, as SFL) or ``"proportional"`` (∝ learnability).
    """

    supported_spaces = (spaces.Discrete, spaces.MultiDiscrete)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        buffer_size: int = 100,
        buffer_update_period: int = 50,
        random_task_ratio: float = 0.5,
        window: int = 10,
        success_threshold: float | None = None,
        sampling: str = "topk",
    ) -> None:
        super().__init__(task_space, seed, task_names)
        for name, value in (
            ("buffer_size", buffer_size),
            ("buffer_update_period", buffer_update_period),
            ("window", window),
        ):
            if not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= random_task_ratio <= 1.0:
            raise ValueError(f"random_task_ratio must lie in [0, 1], got {random_task_ratio!r}")
        if success_threshold is not None and not np.isfinite(success_threshold):
            raise ValueError(f"success_threshold must be a finite number or None, got {success_threshold!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.buffer_size, self.buffer_update_period, self.window = (
            int(buffer_size),
            int(buffer_update_period),
            int(window),
        )
        self.random_task_ratio, self.sampling = float(random_task_ratio), sampling
        self.success_threshold = None if success_threshold is None else float(success_threshold)
        self.n_tasks = self.task_space.count_arms(self.name)
        self._results = np.zeros((self.n_tasks, self.window))  # ring buffer of successes per task
        self._counts = np.zeros(self.n_tasks, dtype=np.int64)
        self._pos = np.zeros(self.n_tasks, dtype=np.int64)
        self.buffer = np.zeros(0, dtype=np.int64)
        self._buffer_cum = np.zeros(0)

    # ---------------------------------------------------------------- sampling
    def success_rates(self) -> np.ndarray:
        """Estimated success rate of each task (NaN for a task never tried)."""
        with np.errstate(invalid="ignore"):
            return np.where(self._counts > 0, self._results.sum(1) / self._counts, np.nan)

    def learnability(self) -> np.ndarray:
        """``p (1 - p)`` of each task (0 for a task never tried)."""
        p = np.nan_to_num(self.success_rates())
        return p * (1.0 - p)

    def _sample(self) -> Task:
        if len(self.buffer) == 0 or self.rng.random() < self.random_task_ratio:
            return self.task_space.from_index(int(self.rng.integers(self.n_tasks)))
        k = int(np.searchsorted(self._buffer_cum, self.rng.random() * self._buffer_cum[-1], side="right"))
        return self.task_space.from_index(int(self.buffer[min(k, len(self.buffer) - 1)]))

    def _rebuild_buffer(self) -> None:
        """Keep the ``buffer_size`` most learnable tasks (positive learnability only)."""
        learn = self.learnability()
        order = np.argsort(-learn, kind="stable")[: self.buffer_size]
        self.buffer = order[learn[order] > 0]
        self._buffer_cum = np.cumsum(
            learn[self.buffer] if self.sampling == "proportional" else np.ones(len(self.buffer))
        )

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        task = self.task_space.arm(vector)
        if self.success_threshold is None:
            success = min(max(score, 0.0), 1.0)
        else:
            success = float(score >= self.success_threshold)
        p = self._pos[task]
        self._results[task, p] = success
        self._pos[task] = (p + 1) % self.window
        self._counts[task] = min(self._counts[task] + 1, self.window)
        if (self.n_updates + 1) % self.buffer_update_period == 0:
            self._rebuild_buffer()

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            "results": self._results.copy(),
            "counts": self._counts.copy(),
            "pos": self._pos.copy(),
            "buffer": self.buffer.copy(),
            "buffer_cum": self._buffer_cum.copy(),
        }

    def _load(self, state: dict[str, Any]) -> None:
        results = np.asarray(state["results"], dtype=np.float64).reshape(self.n_tasks, self.window).copy()
        counts, pos = (
            np.asarray(state[k], dtype=np.int64).reshape(self.n_tasks).copy() for k in ("counts", "pos")
        )
        buffer = np.asarray(state["buffer"], dtype=np.int64).reshape(-1).copy()
        cum = np.asarray(state["buffer_cum"], dtype=np.float64).reshape(-1).copy()
        if len(cum) != len(buffer) or (len(buffer) and (buffer.min() < 0 or buffer.max() >= self.n_tasks)):
            raise ValueError("buffer and buffer_cum must have one entry per buffered task index of the space")
        self._results, self._counts, self._pos = results, counts, pos
        self.buffer, self._buffer_cum = buffer, cum
