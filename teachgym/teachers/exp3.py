"""EXP3 and EXP3.S: adversarial bandits over tasks, rewarded by learning progress.

Auer, Cesa-Bianchi, Freund & Schapire, "The Nonstochastic Multiarmed Bandit Problem", SIAM J.
Computing 2002; used as a curriculum by Graves et al., "Automated Curriculum Learning for Neural
Networks", ICML 2017. Arm probabilities ``p = (1 - γ) w / Σw + γ / K``; after playing arm ``i``
with reward ``r`` in [0, 1], ``log w_i += γ (r / p_i) / K``. EXP3.S also shares a fraction ``α``
of the total weight among all arms at every step, so that an arm abandoned long ago can come back
when the student's learning moves (non-stationary rewards).

The reward is the learning progress ``|score - previous score of the arm|`` (``reward="progress"``;
an arm's first episode has none and changes nothing) or the raw score (``reward="score"``),
rescaled to [0, 1] with the running minimum and maximum of the raw rewards seen so far (Graves et
al. rescale with running quantiles for the same reason: the bandit's formulas assume rewards in
[0, 1]).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher
from teachgym.teachers._arms import draw_arm

REWARDS = ("progress", "score")


@register_teacher("exp3")
class EXP3(Teacher):
    """EXP3 over the tasks of a Discrete or MultiDiscrete space.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    gamma
        Exploration rate γ in (0, 1]: the uniform share of the probabilities and the step size.
    reward
        ``"progress"`` (absolute change of the arm's score) or ``"score"``.
    """

    supported_spaces = (spaces.Discrete, spaces.MultiDiscrete)

    def __init__(
        self, task_space, seed=None, task_names=None, gamma: float = 0.2, reward: str = "progress"
    ) -> None:
        super().__init__(task_space, seed, task_names)
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must lie in (0, 1], got {gamma!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        self.gamma, self.reward = float(gamma), reward
        self.n_arms = self.task_space.count_arms(self.name)
        self.log_weights = np.zeros(self.n_arms)
        self._previous = np.full(self.n_arms, np.nan)  # last score of each arm
        self._range = np.array([np.inf, -np.inf])  # running min and max of raw rewards
        self._cum: np.ndarray | None = None  # cumulative probabilities, rebuilt after each update

    # ---------------------------------------------------------------- sampling
    def probabilities(self) -> np.ndarray:
        """``p = (1 - γ) w / Σw + γ / K``."""
        w = np.exp(self.log_weights - self.log_weights.max())  # w ∝ exp(log w), kept finite
        return (1.0 - self.gamma) * w / w.sum() + self.gamma / self.n_arms

    def _sample(self) -> Task:
        if self._cum is None:
            self._cum = np.cumsum(self.probabilities())
        return self.task_space.from_index(draw_arm(self.rng, self._cum))

    # ---------------------------------------------------------------- learning
    def _raw_reward(self, arm: int, score: float) -> float | None:
        if self.reward == "score":
            return score
        previous = self._previous[arm]
        self._previous[arm] = score
        return None if np.isnan(previous) else abs(score - previous)

    def _rescale(self, raw: float) -> float:
        lo, hi = min(self._range[0], raw), max(self._range[1], raw)
        self._range = np.array([lo, hi])
        return 0.0 if hi <= lo else (raw - lo) / (hi - lo)

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        arm = self.task_space.arm(vector)
        raw = self._raw_reward(arm, score)
        if raw is None:
            return
        p = self.probabilities()  # the probabilities the arm was drawn with
        self._reweight(arm, self._rescale(raw), p)
        self._cum = None

    def _reweight(self, arm: int, reward: float, p: np.ndarray) -> None:
        """EXP3: ``log w_i += γ (r / p_i) / K`` for the played arm only."""
        self.log_weights[arm] += self.gamma * (reward / p[arm]) / self.n_arms

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            "log_weights": self.log_weights.copy(),
            "previous": self._previous.copy(),
            "range": self._range.copy(),
        }

    def _load(self, state: dict[str, Any]) -> None:
        log_w, previous = (
            np.asarray(state[k], dtype=np.float64).reshape(self.n_arms).copy()
            for k in ("log_weights", "previous")
        )
        rng_range = np.asarray(state["range"], dtype=np.float64).reshape(2).copy()
        self.log_weights, self._previous, self._range = log_w, previous, rng_range
        self._cum = None


@register_teacher("exp3s")
class EXP3S(EXP3):
    """EXP3.S (Auer et al. 2002): EXP3 whose arms share a fraction ``alpha`` of the total weight.

    ``w_i ← w_i exp(γ r̂_i / K) + (e α / K) Σ_j w_j`` with ``r̂_i = r / p_i`` for the played arm
    and 0 for the others; weights are renormalised after each step (probabilities unchanged).

    Parameters
    ----------
    gamma, reward
        See :class:`EXP3`.
    alpha
        Weight sharing α >= 0 (Auer et al. take 1/T for a horizon of T episodes; 0 gives EXP3).
    """

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        gamma: float = 0.2,
        reward: str = "progress",
        alpha: float = 0.001,
    ) -> None:
        super().__init__(task_space, seed, task_names, gamma, reward)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)

    def _reweight(self, arm: int, reward: float, p: np.ndarray) -> None:
        w = np.exp(self.log_weights - self.log_weights.max())
        w /= w.sum()
        shared = np.e * self.alpha / self.n_arms  # times Σ_j w_j = 1
        w[arm] *= np.exp(self.gamma * (reward / p[arm]) / self.n_arms)
        w += shared
        self.log_weights = np.log(w / w.sum())
