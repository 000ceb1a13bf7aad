"""Policies that act in the data-generation envs: the teacher adapter and DataEnvGym's baselines.

A policy has ``act(observation, info) -> action`` and ``observe(observation, reward, info)``;
:func:`run_episode` loops one episode. :class:`TeacherPolicy` lets any teachgym teacher drive
data generation: it samples one (skill, difficulty) task per example of the budget, turns the
batch into the level's action (:meth:`DataGenEnv.action_from_tasks`) and reports back, once per
(skill, difficulty) it chose, the validation accuracy there (``feedback="accuracy"``: teachers
compute learning progress themselves) or its change (``feedback="gain"``).
DataEnvGym's Skill-Tree baselines, as defined in its
``src/dataenvgym/gym/data_generation_agents/math/handwritten_policies.py``:
:class:`AlternatingExploreExploitPolicy`, :class:`FillBalancedSkillTreePolicy`,
:class:`RandomExploreExploitPolicy`. teachgym's own: :class:`DirichletAllocationPolicy` (a
random allocation each iteration), :class:`EvenAllocationPolicy` (every skill and difficulty the
same share), :class:`ExploreWeakestPolicy` (skill tree: Explore the weakest skill, allocate by
weakness) and :class:`NoNewDataPolicy` (the reward's control: no data after the first iteration).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np

from teachgym.envs.datagen.env import DataGenEnv, allocate
from teachgym.io import generator_state, load_generator_state
from teachgym.teacher import Teacher, make_teacher, parse_teacher_spec


def _env(env: Any) -> DataGenEnv:
    inner = getattr(env, "unwrapped", env)
    if not isinstance(inner, DataGenEnv):
        raise ValueError(f"expected a DataGen env, got {env!r}")
    return inner


class PolicyState:
    """``state_dict`` / ``load_state_dict`` of a policy between iterations, for a resumed episode:
    the JSON-able attributes named in ``state_attributes`` and the generator ``rng`` if it has one."""

    state_attributes: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """JSON-able values (a copy)."""
        state = {name: json.loads(json.dumps(getattr(self, name))) for name in self.state_attributes}
        if isinstance(getattr(self, "rng", None), np.random.Generator):
            state["rng"] = generator_state(self.rng)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; ``ValueError`` (policy unchanged) for another policy's state."""
        mine = self.state_dict()
        if not isinstance(state, dict) or set(state) != set(mine):
            raise ValueError(f"{type(self).__name__} expects a state with keys {sorted(mine)}, got {sorted(state) if isinstance(state, dict) else state!r}")
        for name in self.state_attributes:
            if type(state[name]) is not type(mine[name]) or (isinstance(mine[name], list) and len(state[name]) != len(mine[name])):
                raise ValueError(f"{type(self).__name__}: its {name} is {state[name]!r}, expected the like of {mine[name]!r}")
        if "rng" in state:
            load_generator_state(np.random.Generator(type(self.rng.bit_generator)()), state["rng"], f"{type(self).__name__}'s generator")
            load_generator_state(self.rng, state["rng"], f"{type(self).__name__}'s generator")
        for name in self.state_attributes:
            setattr(self, name, copy.deepcopy(state[name]))


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

    def state_dict(self) -> dict[str, Any]:
        """The teacher's state (between iterations: after ``observe``)."""
        if self._chosen is not None:
            raise RuntimeError("TeacherPolicy.state_dict() between act() and observe(): the teacher awaits its scores")
        return {"teacher": self.teacher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; ``ValueError`` (policy unchanged) for another teacher's state."""
        if not isinstance(state, dict) or set(state) != {"teacher"}:
            raise ValueError(f"TeacherPolicy expects a state with key 'teacher', got {state!r:.200}")
        self.teacher.load_state_dict(state["teacher"])
        self._chosen = self._before = None


class DirichletAllocationPolicy(PolicyState):
    """Skill list (or any level through :meth:`DataGenEnv.action_from_tasks`): a fresh random
    allocation over (skill, difficulty) every iteration, weights ~ Dirichlet(1). (teachgym's; not
    DataEnvGym's :class:`RandomExploreExploitPolicy`.)"""

    def __init__(self, env: Any, seed: int | None = None) -> None:
        self.env, self.rng = _env(env), np.random.default_rng(seed)

    def act(self, observation: Any, info: dict[str, Any]) -> Any:
        d = self.env.domain
        weights = self.rng.dirichlet(np.ones(d.n_skills * d.n_levels)).reshape(d.n_skills, d.n_levels)
        return self.env.action_from_tasks(_tasks(allocate(weights, self.env.budget)))

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        pass


class EvenAllocationPolicy(PolicyState):
    """The same share of the budget for every (skill, difficulty), every iteration (teachgym's;
    not DataEnvGym's :class:`FillBalancedSkillTreePolicy`)."""

    def __init__(self, env: Any, seed: int | None = None) -> None:
        self.env = _env(env)

    def act(self, observation: Any, info: dict[str, Any]) -> Any:
        d = self.env.domain
        return self.env.action_from_tasks(_tasks(allocate(np.ones((d.n_skills, d.n_levels)), self.env.budget)))

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        pass


class NoNewDataPolicy(PolicyState):
    """The control of the reward: the budget evenly spread in the first iteration, nothing after.

    Every later reward is what the env pays for no new data at all (more training on old data
    with ``student_reset="warm"``, a retraining with another batch order with ``"base"``, and
    evaluation noise): the benchmark reports it as the noise floor beside every policy's gain.
    """

    state_attributes = ("first",)

    def __init__(self, env: Any, seed: int | None = None) -> None:
        self.env = _env(env)
        if self.env.level == "skill_list":  # its weights always spend the budget
            raise ValueError("NoNewDataPolicy acts on the open-ended or skill-tree level (a skill-list action always spends the budget)")
        self.first = True

    def act(self, observation: Any, info: dict[str, Any]) -> Any:
        d = self.env.domain
        counts = allocate(np.ones((d.n_skills, d.n_levels)), self.env.budget) if self.first else np.zeros((d.n_skills, d.n_levels), np.int64)
        self.first = False
        return self.env.action_from_tasks(_tasks(counts))

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        pass


class ExploreWeakestPolicy(PolicyState):
    """Skill tree (teachgym's): every other iteration Explore one new subskill of the skill with the
    lowest validation accuracy; every subskill gets a share of the budget ∝ ``1 - accuracy + floor``
    (accuracy: the student's on the data last generated for it; 0 before any).
    """

    def __init__(self, env: Any, seed: int | None = None, floor: float = 0.1) -> None:
        self.env, self.floor = _env(env), float(floor)
        if self.env.level != "skill_tree":
            raise ValueError(f"ExploreWeakestPolicy acts on the skill-tree level, got {self.env.level!r}")

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        k, budget = self.env.domain.n_skills, self.env.budget
        sizes = np.array([len(names) for names in observation["subskills"]])
        room = sizes < self.env.max_subskills
        explore = np.zeros(k, bool)
        if observation["iteration"] % 2 == 0 and room.any():
            explore[int(np.argmin(np.where(room, observation["skill_accuracy"], np.inf)))] = True
        explore |= sizes == 0  # a skill without subskills gets its first one
        weights = [np.append(1.0 - np.asarray(observation["accuracy"][s][: sizes[s]], np.float64), [1.0] * int(explore[s])) + self.floor for s in range(k)]
        counts = allocate(np.concatenate(weights), budget)
        out, at = [], 0
        for s in range(k):
            c = counts[at: at + len(weights[s])]
            at += len(weights[s])
            a: dict[str, Any] = {"explore": int(explore[s]), "allocation": c[: sizes[s]].tolist()}
            if explore[s]:
                a.update(n_new=1, new_allocation=int(c[-1]))
            out.append(a)
        return tuple(out)

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        pass


class _SkillTreeBaseline(PolicyState):
    """DataEnvGym's action policies (``src/dataenvgym/gym/data_generation_agents/math/
    handwritten_policies.py``) decide per skill from that skill's history; ``_one`` is theirs."""

    state_attributes = ("last",)

    def __init__(self, env: Any) -> None:
        self.env = _env(env)
        if self.env.level != "skill_tree":
            raise ValueError(f"{type(self).__name__} acts on the skill-tree level, got {self.env.level!r}")
        self.last: list[str | None] = [None] * self.env.domain.n_skills  # the last action type per skill

    def _explore(self, n_new: int, allocation: int) -> dict[str, Any]:
        return {"explore": 1, "n_new": int(n_new), "new_allocation": int(allocation)}

    @staticmethod
    def _zero(allocation: np.ndarray) -> dict[str, Any]:
        """Exploit with ``data_allocation_delta = -allocation``: every allocation set to zero."""
        return {"explore": 0, "delta": (-allocation).tolist()}

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        out = []
        for s, names in enumerate(observation["subskills"]):
            n = len(names)
            a = self._one(s, n, np.asarray(observation["allocation"][s][:n], np.int64), np.asarray(observation["data"][s][:n], np.int64))
            self.last[s] = "explore" if a["explore"] else "exploit"
            out.append(a)
        return tuple(out)

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        pass


class AlternatingExploreExploitPolicy(_SkillTreeBaseline):
    """DataEnvGym's ``AlternatingExploreExploitPolicy``: per skill, Explore first; after an Explore,
    an Exploit that sets every allocation to zero; after an Exploit, Explore again; once the skill
    has ``max_data_for_skill`` examples, zero allocations for good.

    Parameters
    ----------
    n_new, new_allocation
        The Explore action: subskills added and examples for each. DataEnvGym's math example runs
        ``Explore(num_new_skills=2, data_allocation_for_new_skills=30)``; default here: 2 new
        subskills sharing the skill's part of the budget (``budget // (2 * n_skills)`` each).
    max_data_for_skill
        None: no cap (DataEnvGym's example: 200).
    """

    def __init__(self, env: Any, seed: int | None = None, n_new: int = 2, new_allocation: int | None = None,
                 max_data_for_skill: int | None = None) -> None:
        super().__init__(env)
        self.n_new = int(n_new)
        self.new_allocation = int(new_allocation if new_allocation is not None else max(1, self.env.budget // (2 * self.env.domain.n_skills)))
        self.max_data_for_skill = max_data_for_skill

    def _one(self, s: int, n: int, allocation: np.ndarray, data: np.ndarray) -> dict[str, Any]:
        if self.last[s] is None:
            return self._explore(self.n_new, self.new_allocation)
        if self.max_data_for_skill is not None and data.sum() >= self.max_data_for_skill:
            return self._zero(allocation)
        return self._zero(allocation) if self.last[s] == "explore" else self._explore(self.n_new, self.new_allocation)


class FillBalancedSkillTreePolicy(_SkillTreeBaseline):
    """DataEnvGym's ``FillBalancedSkillTreePolicy``: alternate as :class:`AlternatingExploreExploitPolicy`
    until a skill has ``max_subskills`` subskills, then Exploit to fill each subskill up to
    ``max_data_per_subskill`` examples, at most ``max_allocation_per_subskill`` per iteration
    (a full subskill gets zero).

    Defaults (DataEnvGym's examples set none): 4 subskills per skill (reached at the third
    iteration, so that a short episode fills), each allocated a quarter of the skill's part of
    the budget per iteration and filled up to four times that.
    """

    def __init__(self, env: Any, seed: int | None = None, n_new: int = 2, new_allocation: int | None = None,
                 max_subskills: int = 4, max_data_per_subskill: int | None = None,
                 max_allocation_per_subskill: int | None = None) -> None:
        super().__init__(env)
        k = self.env.domain.n_skills
        self.n_new, self.max_subskills = int(n_new), min(int(max_subskills), self.env.max_subskills)
        self.new_allocation = int(new_allocation if new_allocation is not None else max(1, self.env.budget // (2 * k)))
        self.max_allocation = int(max_allocation_per_subskill if max_allocation_per_subskill is not None
                                  else max(1, self.env.budget // (k * self.max_subskills)))
        self.max_data = int(max_data_per_subskill if max_data_per_subskill is not None else 4 * self.max_allocation)

    def _one(self, s: int, n: int, allocation: np.ndarray, data: np.ndarray) -> dict[str, Any]:
        if self.last[s] is None:
            return self._explore(self.n_new, self.new_allocation)
        if n < self.max_subskills:
            return self._zero(allocation) if self.last[s] == "explore" else self._explore(self.n_new, self.new_allocation)
        # _calculate_next_exploit_action: fill each subskill to max_data, at most max_allocation at once.
        deficit = self.max_data - (data + allocation)
        delta = np.where(data < self.max_data, np.minimum(deficit, self.max_allocation - allocation), -allocation)
        return {"explore": 0, "delta": delta.tolist()}


class RandomExploreExploitPolicy(_SkillTreeBaseline):
    """DataEnvGym's ``RandomExploreExploitPolicy``: per skill, Explore first, then Explore or Exploit
    with equal chance. Explore: 1..``max_new_skills`` subskills of 1..``max_data_for_new_skills``
    examples each; Exploit: keep at most ``max_active_subskills`` subskills active (random ones
    deactivated or activated), each active one re-allocated uniformly in 0..``max_data_per_subskill``,
    the others zero.

    DataEnvGym's defaults are kept (3 new subskills, 10 examples, 10 active);
    ``max_data_per_subskill`` (required there) defaults to ``budget // (3 * n_skills)``.
    """

    def __init__(self, env: Any, seed: int | None = None, max_data_per_subskill: int | None = None, max_new_skills: int = 3,
                 max_data_for_new_skills: int = 10, max_active_subskills: int = 10) -> None:
        super().__init__(env)
        self.rng = np.random.default_rng(seed)
        self.max_data = int(max_data_per_subskill if max_data_per_subskill is not None else max(1, self.env.budget // (3 * self.env.domain.n_skills)))
        self.max_new, self.max_new_data, self.max_active = int(max_new_skills), int(max_data_for_new_skills), int(max_active_subskills)

    def _one(self, s: int, n: int, allocation: np.ndarray, data: np.ndarray) -> dict[str, Any]:
        if self.last[s] is None or self.rng.random() < 0.5:
            return self._explore(self.rng.integers(1, self.max_new + 1), self.rng.integers(1, self.max_new_data + 1))
        active = list(np.flatnonzero(allocation > 0))
        inactive = list(np.flatnonzero(allocation == 0))
        if len(active) > self.max_active:
            off = set(self.rng.choice(active, len(active) - self.max_active, replace=False).tolist())
            active = [j for j in active if j not in off]
            inactive += sorted(off)
        if len(active) < self.max_active and inactive:
            active += self.rng.choice(inactive, min(self.max_active - len(active), len(inactive)), replace=False).tolist()
        new = np.zeros(n, np.int64)
        for j in active:
            new[j] = self.rng.integers(0, self.max_data + 1)  # current + randint(-current, max - current)
        return {"explore": 0, "delta": (new - allocation).tolist()}


def _tasks(counts: np.ndarray) -> list[tuple[int, int]]:
    """One (skill, difficulty) task per example of a count table."""
    return [(s, lvl) for (s, lvl), c in np.ndenumerate(counts) for _ in range(int(c))]


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


#: Policies by name. DataEnvGym's Skill-Tree baselines under DataEnvGym's names; teachgym's own under theirs.
POLICIES = {
    "alternating": AlternatingExploreExploitPolicy, "fill-balanced": FillBalancedSkillTreePolicy,
    "random-explore-exploit": RandomExploreExploitPolicy,
    "dirichlet-allocation": DirichletAllocationPolicy, "even-allocation": EvenAllocationPolicy,
    "explore-weakest": ExploreWeakestPolicy, "no-new-data": NoNewDataPolicy,
}
