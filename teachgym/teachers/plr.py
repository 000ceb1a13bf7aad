"""PLR and Robust PLR: Prioritized Level Replay over the tasks of a discrete space.

Jiang, Grefenstette & Rocktäschel, "Prioritized Level Replay", ICML 2021; Jiang, Dennis,
Parker-Holder, Foerster, Grefenstette & Rocktäschel, "Replay-Guided Adversarial Environment
Design", NeurIPS 2021 (Robust PLR). Levels (here: tasks) are scored by how much the student still
has to learn on them; replay draws a seen level from ``(1 - ρ) P_S + ρ P_C`` where ``P_S`` ranks
the scores (``h(rank)^(1/β)``, ``h = 1/rank``) and ``P_C`` favours levels not drawn for long
(staleness). The rest of the time an unseen level is drawn uniformly. Robust PLR trains only on
replayed levels: a new level is only played to be scored (see :attr:`PLR.last_replay`).

Level score. The papers score a level by the student's value loss on it: L1 (``|GAE|``, PLR) or
positive (``max(GAE, 0)``, Robust PLR). A student that knows them reports ``info["plr_score"]``.
Otherwise the one-step proxy ``score - V(task)`` stands in for the advantage, with ``V`` the
student's value estimate when bound (:meth:`~teachgym.teacher.Teacher.bind`), read at sampling
time like the critic's predictions of a rollout (before the episode's learning; every level in
one call every ``value_every`` samples), or the teacher's own running mean of the task's scores
(step ``value_lr``) before this episode. For success/failure scores the expectation is
``2 p (1 - p)`` (L1) or ``p (1 - p)`` (positive).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task
from teachgym.teacher import Teacher, register_teacher

SCORE_FUNCTIONS = ("l1", "positive")
SCHEDULES = ("proportional", "fixed")


@register_teacher("plr")
class PLR(Teacher):
    """Prioritized Level Replay; levels are the tasks of a Discrete or MultiDiscrete space.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    temperature
        β of the rank prioritisation ``(1 / rank)^(1 / β)``.
    staleness_coef
        ρ, the weight of the staleness distribution ``P_C`` in the replay distribution.
    replay_schedule
        ``"proportional"``: replay with probability = fraction of levels seen (PLR);
        ``"fixed"``: replay with probability ``replay_prob`` once any level is seen, always once
        all are (Robust PLR).
    replay_prob
        Replay probability of the fixed schedule.
    score_function
        ``"l1"`` (mean |advantage|) or ``"positive"`` (positive value loss).
    score_alpha
        A level's score becomes ``(1 - score_alpha) old + score_alpha new`` (1: the last score).
    value_lr
        Step of the teacher's running mean score per task (the value used without a bound
        ``value_estimate``).
    value_every
        Samples between two reads of a bound ``value_estimate`` (every level in one call).
    """

    supported_spaces = (spaces.Discrete, spaces.MultiDiscrete)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        temperature: float = 0.1,
        staleness_coef: float = 0.1,
        replay_schedule: str = "proportional",
        replay_prob: float = 0.5,
        score_function: str = "l1",
        score_alpha: float = 1.0,
        value_lr: float = 0.1,
        value_every: int = 10,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        if not temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        for name, value in (("staleness_coef", staleness_coef), ("replay_prob", replay_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        for name, value in (("score_alpha", score_alpha), ("value_lr", value_lr)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
        if not (isinstance(value_every, (int, np.integer)) and value_every >= 1):
            raise ValueError(f"value_every must be a positive integer, got {value_every!r}")
        self.value_every = int(value_every)
        if replay_schedule not in SCHEDULES:
            raise ValueError(f"replay_schedule must be one of {SCHEDULES}, got {replay_schedule!r}")
        if score_function not in SCORE_FUNCTIONS:
            raise ValueError(f"score_function must be one of {SCORE_FUNCTIONS}, got {score_function!r}")
        self.temperature, self.staleness_coef = float(temperature), float(staleness_coef)
        self.replay_schedule, self.replay_prob = replay_schedule, float(replay_prob)
        self.score_function, self.score_alpha, self.value_lr = (
            score_function,
            float(score_alpha),
            float(value_lr),
        )
        self.n_levels = self.task_space.count_arms(self.name)
        self.scores = np.zeros(self.n_levels)
        self.seen = np.zeros(self.n_levels, dtype=bool)
        self._n_seen = 0
        self._values = np.full(self.n_levels, np.nan)  # running mean score per level
        self._student_values = np.full(self.n_levels, np.nan)  # last read of value_estimate
        self._value_age = 0  # samples since that read
        self._all_tasks: np.ndarray | None = None  # every level's task, stacked (built once)
        self._last_drawn = np.zeros(self.n_levels, dtype=np.int64)  # draw count when last drawn
        self._draws = 0
        self._score_cum: np.ndarray | None = None  # cumulative P_S, rebuilt when scores change
        #: Whether the last sampled task is a replay (Robust PLR trains on replays only).
        self.last_replay = True

    # ---------------------------------------------------------------- sampling
    def _replay_decision(self) -> bool:
        seen = self._n_seen / self.n_levels
        if seen == 0.0:
            return False
        if self.replay_schedule == "proportional":
            return bool(self.rng.random() < seen)
        return bool(seen >= 1.0 or self.rng.random() < self.replay_prob)

    def replay_distribution(self) -> np.ndarray:
        """``(1 - ρ) P_S + ρ P_C`` over the levels (0 for unseen ones)."""
        p_s, p_c = self._rank_weights(), self._staleness_weights()
        return (1.0 - self.staleness_coef) * p_s + self.staleness_coef * p_c

    def _staleness_weights(self) -> np.ndarray:
        """``P_C``: in proportion to the draws since each seen level was last drawn."""
        staleness = np.where(self.seen, self._draws - self._last_drawn, 0).astype(np.float64)
        total = staleness.sum()
        return staleness / total if total > 0 else self.seen / self.seen.sum()

    def _replay_level(self) -> int:
        """A draw from ``(1 - ρ) P_S + ρ P_C``, as the mixture it is (``P_S`` cached)."""
        if self.staleness_coef > 0.0 and self.rng.random() < self.staleness_coef:
            cum = np.cumsum(self._staleness_weights())
        else:
            if self._score_cum is None:
                self._score_cum = np.cumsum(self._rank_weights())
            cum = self._score_cum
        return min(int(np.searchsorted(cum, self.rng.random() * cum[-1], side="right")), self.n_levels - 1)

    def _rank_weights(self) -> np.ndarray:
        """``P_S``: ``(1 / rank)^(1 / β)`` over seen levels, rank 1 the highest score.

        Equal scores share the best of their ranks ("competition" ranking): success/failure
        scores tie often, and ranking ties by index would favour one arbitrary level.
        """
        idx = np.flatnonzero(self.seen)
        order = idx[np.argsort(-self.scores[idx], kind="stable")]
        descending = -self.scores[order]
        ranks = np.searchsorted(descending, descending, side="left") + 1  # first position of its value
        weights = np.zeros(self.n_levels)
        weights[order] = ranks ** (-1.0 / self.temperature)
        return weights / weights.sum()

    def _new_level(self) -> int:
        """A level from the "generator": uniform among the unseen ones."""
        unseen = np.flatnonzero(~self.seen)
        return (
            int(unseen[self.rng.integers(len(unseen))])
            if len(unseen)
            else int(self.rng.integers(self.n_levels))
        )

    def _read_values(self) -> None:
        """Read the bound value estimate of every level, before the episodes it will score."""
        if self.value_estimate is None or self._value_age % self.value_every:
            self._value_age += self.value_estimate is not None
            return
        if self._all_tasks is None:
            self._all_tasks = np.stack([self.task_space.from_index(i) for i in range(self.n_levels)])
        self._student_values = np.asarray(
            self.value_estimate(self._all_tasks.copy()), dtype=np.float64
        ).reshape(-1)
        self._value_age = 1

    def _sample(self) -> Task:
        self._read_values()
        self.last_replay = self._replay_decision()
        level = self._replay_level() if self.last_replay else self._new_level()
        self._draws += 1
        self._last_drawn[level] = self._draws
        return self.task_space.from_index(level)

    # ---------------------------------------------------------------- learning
    def _level_score(self, level: int, score: float, info: dict[str, Any]) -> float:
        """The episode's level score: ``info["plr_score"]``, or the value-loss proxy."""
        if "plr_score" in info:
            try:
                value = float(info["plr_score"])
            except (TypeError, ValueError):
                value = np.nan
            if not np.isfinite(value):
                raise ValueError(f"plr_score must be a finite number, got {info['plr_score']!r}")
            return value
        mean = self._values[level]
        self._values[level] = score if np.isnan(mean) else mean + self.value_lr * (score - mean)
        if self.value_estimate is not None and not np.isnan(self._student_values[level]):
            baseline = float(self._student_values[level])
        else:
            baseline = score if np.isnan(mean) else mean  # first episode: no advantage yet
        advantage = score - baseline
        return abs(advantage) if self.score_function == "l1" else max(advantage, 0.0)

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        level = self.task_space.arm(vector)
        new = self._level_score(level, score, info)
        old = self.scores[level] if self.seen[level] else new
        self.scores[level] = (1.0 - self.score_alpha) * old + self.score_alpha * new
        self._n_seen += not self.seen[level]
        self.seen[level] = True
        self._score_cum = None

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            "scores": self.scores.copy(),
            "seen": self.seen.copy(),
            "values": self._values.copy(),
            "student_values": self._student_values.copy(),
            "value_age": self._value_age,
            "last_drawn": self._last_drawn.copy(),
            "draws": self._draws,
            "last_replay": self.last_replay,
        }

    def _load(self, state: dict[str, Any]) -> None:
        scores, values, student_values = (
            np.asarray(state[k], dtype=np.float64).reshape(self.n_levels).copy()
            for k in ("scores", "values", "student_values")
        )
        seen = np.asarray(state["seen"], dtype=bool).reshape(self.n_levels).copy()
        last = np.asarray(state["last_drawn"], dtype=np.int64).reshape(self.n_levels).copy()
        self.scores, self._values, self.seen, self._last_drawn = scores, values, seen, last
        self._n_seen = int(seen.sum())
        self._student_values, self._value_age = student_values, int(state["value_age"])
        self._draws, self.last_replay = int(state["draws"]), bool(state["last_replay"])
        self._score_cum = None


@register_teacher("robust-plr")
class RobustPLR(PLR):
    """Robust PLR (PLR⊥): replay with a fixed probability, positive value loss, train on replays only.

    A new level is drawn uniformly from the whole space (the level generator), whether seen or
    not, and :attr:`last_replay` is ``False``: the student should only play it to score it (no
    gradient step; :class:`~teachgym.students.skills.SkillsStudent` has ``evaluate``). Its
    update scores the level like any other.

    Parameters
    ----------
    temperature, staleness_coef
        β = 0.3 and ρ = 0.3, the Robust PLR settings of the authors' MiniGrid runs.
    replay_prob, score_alpha, value_lr, value_every
        See :class:`PLR`; ``replay_schedule`` is ``"fixed"``.
    score_function
        Default ``"positive"`` (positive value loss), as in the paper.
    """

    @property
    def train_on_last_sample(self) -> bool:
        return self.last_replay

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        temperature: float = 0.3,
        staleness_coef: float = 0.3,
        replay_prob: float = 0.5,
        score_function: str = "positive",
        score_alpha: float = 1.0,
        value_lr: float = 0.1,
        value_every: int = 10,
    ) -> None:
        super().__init__(
            task_space,
            seed,
            task_names,
            temperature,
            staleness_coef,
            "fixed",
            replay_prob,
            score_function,
            score_alpha,
            value_lr,
            value_every,
        )

    def _replay_decision(self) -> bool:
        # The generator may produce a level already seen, so replay never becomes certain.
        return bool(self._n_seen and self.rng.random() < self.replay_prob)

    def _new_level(self) -> int:
        """A level from the generator: uniform over the whole space, seen or not."""
        return int(self.rng.integers(self.n_levels))
