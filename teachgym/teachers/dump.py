"""DUMP: distribution-level curriculum for RL post-training, a UCB bandit over |advantage|.

Wang, Cui, Li, Wan & Zhao, "DUMP: Automated Distribution-Level Curriculum Learning for RL-based
LLM Post-training", 2025 (arXiv:2504.09710; code: github.com/ZhentingWang/DUMP). Each distribution
(here: each task of a Discrete / MultiDiscrete space, e.g. a source x difficulty level) is an arm
whose learnability is the expected absolute advantage of its samples, estimated over a sliding
window of the last ``window`` |advantages| it produced. An arm's score is the UCB

    UCB_j = mean(|A| over the window of j) + c * sqrt(2 ln(N + 1) / (n_j + 1))

with ``n_j`` the samples (advantages) arm ``j`` has produced and ``N = sum_j n_j``; arms are drawn
from ``softmax(UCB / τ)``. The paper writes the bonus as ``sqrt(2 ln N / n_j)``; the authors' code
adds 1 to both counts so that unseen arms get a finite bonus, and uses ``window = 300``,
``τ = 0.1``, ``c = 1``: these are the defaults here.

A sample's values are its ``advantages`` when the student reports them (``update(task, score,
advantages=[...])`` / ``update_batch(..., infos=[{"advantages": [...]}, ...])``: the GRPO advantages
of a prompt's rollouts, each one sample); without them, one value ``|score - previous score of the
arm|`` (0 on an arm's first sample), as :class:`~teachgym.teachers.sec.SEC` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher
from teachgym.teachers._arms import draw_arm
from teachgym.teachers.sec import _advantages


@register_teacher("dump")
class DUMP(Teacher):
    """UCB over the windowed mean |advantage| of each category, softmax sampling.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    window
        |advantage| values per arm the learnability is averaged over (the most recent ones).
    temperature
        Softmax temperature τ over the UCB scores.
    exploration
        Weight ``c`` of the exploration bonus.
    """

    supported_spaces = (spaces.Discrete, spaces.MultiDiscrete)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        window: int = 300,
        temperature: float = 0.1,
        exploration: float = 1.0,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        if isinstance(window, bool) or not (isinstance(window, (int, np.integer)) and window >= 1):
            raise ValueError(f"window must be a positive integer, got {window!r}")
        if not temperature > 0.0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if not exploration >= 0.0 or not np.isfinite(exploration):
            raise ValueError(f"exploration must be a finite number >= 0, got {exploration!r}")
        self.window, self.temperature, self.exploration = int(window), float(temperature), float(exploration)
        self.n_arms = self.task_space.count_arms(self.name)
        self._values = np.zeros((self.n_arms, self.window))  # ring buffer of |A| per arm
        self._filled = np.zeros(self.n_arms, dtype=np.int64)  # values in the buffer (<= window)
        self._pos = np.zeros(self.n_arms, dtype=np.int64)  # next slot to write
        self.counts = np.zeros(self.n_arms, dtype=np.int64)  # n_j: every sample ever, not only the window's
        self._previous = np.full(self.n_arms, np.nan)  # last score of each arm (the fallback signal)
        self._cum: np.ndarray | None = None

    # ---------------------------------------------------------------- scores
    def learnability(self) -> np.ndarray:
        """Mean |advantage| over each arm's window (0 for an arm with no sample yet)."""
        sums = self._values.sum(1)
        return np.divide(sums, self._filled, out=np.zeros(self.n_arms), where=self._filled > 0)

    def ucb(self) -> np.ndarray:
        """``learnability + c * sqrt(2 ln(N + 1) / (n_j + 1))`` per arm."""
        total = float(self.counts.sum())
        return self.learnability() + self.exploration * np.sqrt(2.0 * np.log(total + 1.0) / (self.counts + 1.0))

    def probabilities(self) -> np.ndarray:
        """``softmax(UCB / τ)``."""
        scores = self.ucb()
        z = np.exp((scores - scores.max()) / self.temperature)
        return z / z.sum()

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> Task:
        if self._cum is None:
            self._cum = np.cumsum(self.probabilities())
        return self.task_space.from_index(draw_arm(self.rng, self._cum))

    # ---------------------------------------------------------------- learning
    def update_batch(self, tasks, scores, infos=None) -> None:
        """Report a batch; the advantages of every info are checked before any episode is applied."""
        for info in infos or ():
            _advantages(info)
        super().update_batch(tasks, scores, infos)

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        arm = self.task_space.arm(vector)
        adv = _advantages(info)
        previous = self._previous[arm]
        self._previous[arm] = score
        if adv is not None:
            values = np.abs(adv).ravel()
        else:
            values = np.array([0.0 if np.isnan(previous) else abs(score - previous)])
        for value in values[-self.window:]:  # older values of one report would be pushed out anyway
            self._values[arm, self._pos[arm]] = value
            self._pos[arm] = (self._pos[arm] + 1) % self.window
        self._filled[arm] = min(self._filled[arm] + len(values), self.window)
        self.counts[arm] += len(values)
        self._cum = None

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {"values": self._values.copy(), "filled": self._filled.copy(), "pos": self._pos.copy(),
                "counts": self.counts.copy(), "previous": self._previous.copy()}

    def _load(self, state: dict[str, Any]) -> None:
        values = np.asarray(state["values"], dtype=np.float64).reshape(self.n_arms, self.window).copy()
        filled, pos, counts = (np.asarray(state[k], dtype=np.int64).reshape(self.n_arms).copy()
                               for k in ("filled", "pos", "counts"))
        previous = np.asarray(state["previous"], dtype=np.float64).reshape(self.n_arms).copy()
        if np.any(filled < 0) or np.any(filled > self.window) or np.any(pos < 0) or np.any(pos >= self.window):
            raise ValueError(f"DUMP state does not fit window={self.window}")
        self._values, self._filled, self._pos, self.counts, self._previous = values, filled, pos, counts, previous
        self._cum = None
