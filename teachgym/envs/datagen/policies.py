"""Policies that act in the data-generation envs: the teacher adapter and DataEnvGym's baselines.

A policy has ``act(observation, info) -> action`` and ``observe(observation, reward, info)``;
:func:`run_episode` loops one episode. :class:`TeacherPolicy` lets any teachgym teacher drive
data generation: it samples one (skill, difficulty) task per example of the budget, turns the
batch into the level's action (:meth:`DataGenEnv.action_from_tasks`) and reports back, once per
(skill, difficulty) it chose, the validation accuracy there (``feedback="accuracy"``: teachers
compute learning progress themselves) or its change (``feedback="gain"``).
Baselines: :class:`RandomAllocationPolicy` (a Dirichlet-random allocation each iteration),
:class:`BalancedFillPolicy` (every skill and difficulty the same share) and
:class:`AlternatingPolicy` (skill tree: Explore the weakest skill, then Exploit by weakness).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from teachgym.envs.datagen.env import DataGenEnv, allocate
from teachgym.teacher import Teacher, make_teacher, parse_teacher_spec


def _env(env: Any) -> DataGenEnv:
    inner = getattr(env, "unwrapped", env)
    if not isinstance(inner, DataGenEnv):
        raise ValueError(f"expected a DataGen env, got {env!r}")
    return inner


class TeacherPolicy:
    """Any teachgym teacher over the env's ``task_space`` (``(skill, difficulty)`` per example).

    Parameters
    ----------
    teacher
        A teacher spec (``"alp-gmm:fit_rate=36"``) or a :class:`~teachgym.teacher.Teacher`.
    env
        The DataGen env (any level).
    feedback
        ``"accuracy"``: validation accuracy of each chosen (skill, difficulty) after training;
        ``"gain"``: its change over the iteration.
    seed
        Seed of the teacher.
    """

    def __init__(self, teacher: str | Teacher, env: Any, feedback: str = "accuracy", seed: int | None = None, **hparams: Any) -> None:
        if feedback not in ("accuracy", "gain"):
            raise ValueError(f"feedback must be 'accuracy' or 'gain', got {feedback!r}")
        self.env, self.feedback = _env(env), feedback
        if isinstance(teacher, Teacher):
            self.teacher = teacher
        else:
            name, spec = parse_teacher_spec(teacher)
            self.teacher = make_teacher(name, self.env.task_space, seed=seed, task_names=self.env.task_names, adapt=True, **{**spec, **hparams})
        self._chosen: np.ndarray | None = None
        self._before: np.ndarray | None = None

    def act(self, observation: Any, info: dict[str, Any]) -> Any:
        tasks = np.asarray(self.teacher.sample_batch(self.env.budget), dtype=np.int64).reshape(-1, 2)
        self._chosen = np.unique(tasks, axis=0)
        self._before = np.asarray(info["accuracy_by_level"], dtype=np.float64)
        return self.env.action_from_tasks(tasks)

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        if self._chosen is None:
            return
        after = np.asarray(info["accuracy_by_level"], dtype=np.float64)
        value = after - self._before if self.feedback == "gain" else after
        scores = [float(value[s, lvl]) for s, lvl in self._chosen]
        self.teacher.update_batch(list(self._chosen), scores)
        self._chosen = None


class RandomAllocationPolicy:
    """A fresh random allocation every iteration (weights ~ Dirichlet(1))."""

    def __init__(self, env: Any, seed: int | None = None) -> None:
        self.env, self.rng = _env(env), np.random.default_rng(seed)

    def act(self, observation: Any, info: dict[str, Any]) -> Any:
        d = self.env.domain
        weights = self.rng.dirichlet(np.ones(d.n_skills * d.n_levels)).reshape(d.n_skills, d.n_levels)
        counts = allocate(weights, self.env.budget)
        tasks = [(s, lvl) for (s, lvl), c in np.ndenumerate(counts) for _ in range(c)]
        return self.env.action_from_tasks(tasks or [(0, 0)])

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        pass


class BalancedFillPolicy:
    """The same share of the budget for every (skill, difficulty)."""

    def __init__(self, env: Any, seed: int | None = None) -> None:
        self.env = _env(env)

    def act(self, observation: Any, info: dict[str, Any]) -> Any:
        d = self.env.domain
        counts = allocate(np.ones((d.n_skills, d.n_levels)), self.env.budget)
        return self.env.action_from_tasks([(s, lvl) for (s, lvl), c in np.ndenumerate(counts) for _ in range(c)])

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        pass


class AlternatingPolicy:
    """Skill tree: Explore and Exploit in turn.

    Explore discovers a subskill of the weakest skill that still has hidden ones; Exploit (and
    the allocation of an Explore) gives each discovered subskill a share ∝ ``1 - accuracy + floor``.
    """

    def __init__(self, env: Any, seed: int | None = None, floor: float = 0.1) -> None:
        self.env, self.floor = _env(env), float(floor)
        if self.env.level != "skill_tree":
            raise ValueError(f"AlternatingPolicy acts on the skill-tree level, got {self.env.level!r}")

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
        discovered = np.asarray(observation["discovered"], dtype=bool)
        explore = observation["iteration"] % 2 == 0
        hidden = ~discovered.all(1)
        skill = 0
        if explore and hidden.any():
            acc = np.where(hidden, observation["skill_accuracy"], np.inf)
            skill = int(np.argmin(acc))
            discovered = discovered.copy()
            discovered[skill, np.flatnonzero(~discovered[skill])[0]] = True
        weights = (1.0 - np.asarray(observation["accuracy"]) + self.floor) * discovered
        return {"explore": int(explore and hidden.any()), "skill": skill, "allocation": (weights / weights.sum()).astype(np.float32)}

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        pass


def run_episode(env: Any, policy: Any, seed: int | None = None) -> list[dict[str, Any]]:
    """One episode; returns the info of the reset and of every step (with ``reward``)."""
    obs, info = env.reset(seed=seed)
    infos = [dict(info, reward=0.0)]
    done = False
    while not done:
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        policy.observe(obs, reward, info)
        infos.append(dict(info, reward=reward))
        done = terminated or truncated
    return infos


POLICIES = {"random-allocation": RandomAllocationPolicy, "balanced-fill": BalancedFillPolicy, "alternating": AlternatingPolicy}
