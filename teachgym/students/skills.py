"""A simulated student of discrete skills with prerequisites, for bandit (discrete-space) teachers.

Where :class:`~teachgym.students.simulated.GridStudent` is the continuous-space toy of teachDeepRL,
:class:`SkillsStudent` is its discrete counterpart, in the spirit of the subtask sets of
Teacher-Student Curriculum Learning (Matiisen et al. 2017) and the problem categories of
Self-Evolving Curriculum (Chen et al. 2025): ``K`` skills linked by a prerequisite graph (a random
DAG or a chain), each with its own learning rate. Practising a skill whose prerequisites are known
raises its competence ``c`` (``c += lr * (1 - c)``: fast at first, then slower); a skill not
practised may decay (forgetting); some skills can never be learnt, and "distractor" skills have a
fixed success rate that nothing changes. An episode's score is a success (Bernoulli with
probability ``c``) or the competence with Gaussian noise, drawn from the student's own generator.

With ``n_levels > 1`` the task space is ``MultiDiscrete([skills, levels])``: level ``l`` of a
skill needs level ``l - 1`` of it and level ``l`` of each of its prerequisites.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task, TaskSpace

#: Named variants, as constructor arguments of :class:`SkillsStudent`.
SKILLS_VARIANTS: dict[str, dict[str, Any]] = {
    # 20 learnable skills on a random DAG plus 4 that can never be learnt.
    "default": {},
    # One long chain of prerequisites: skill k needs skill k - 1.
    "chain": {"graph": "chain"},
    # Competence of every skill not practised decays by 0.05% per episode.
    "forgetting": {"forget_rate": 0.0005},
    # 80 unlearnable skills next to the 20 learnable ones.
    "mostly_unfeasible": {"n_unlearnable": 80},
    # 60 useless skills whose success rate is fixed (noise a teacher may chase).
    "distractors": {"n_distractors": 60},
    # Each skill has 3 levels: a MultiDiscrete([skills, levels]) task space.
    "levels": {"n_levels": 3},
}

_CORE, _UNLEARNABLE, _DISTRACTOR = 0, 1, 2


class SkillsStudent:
    """Skills with prerequisites, learning rates, forgetting and unlearnable/useless skills.

    Parameters
    ----------
    n_skills
        Learnable skills (the ones :meth:`mastered_fraction` counts).
    n_unlearnable
        Extra skills whose competence stays 0 (score 0); no skill depends on them.
    n_distractors
        Extra skills with a fixed success rate drawn uniformly in [0.1, 0.9]; nothing changes it.
    n_levels
        Levels per skill; above 1 the task space is ``MultiDiscrete([total skills, n_levels])``.
    graph
        ``"random"``: each learnable skill (after the first) needs 1..``max_parents`` of the 3
        skills before it in a hidden order; ``"chain"``: skill k needs skill k - 1.
    max_parents
        Most prerequisites a skill has in a random graph.
    learning_rate
        ``(low, high)``: each skill's rate is drawn log-uniformly in this range.
    prerequisite
        Competence every prerequisite needs before a skill can improve.
    mastery_threshold
        A (skill, level) is mastered when its competence is strictly above this.
    forget_rate
        Fraction of its competence a (skill, level) loses per episode spent on something else.
    score
        ``"success"``: 1.0 with probability = competence, else 0.0; ``"competence"``: the
        competence plus Gaussian noise of std ``noise``, clipped to [0, 1].
    noise
        Std of the score noise for ``score="competence"``.
    seed
        Seed of the student's generators (the graph, the rates and the score noise).
    """

    def __init__(
        self,
        n_skills: int = 20,
        n_unlearnable: int = 4,
        n_distractors: int = 0,
        n_levels: int = 1,
        graph: Literal["random", "chain"] = "random",
        max_parents: int = 2,
        learning_rate: tuple[float, float] = (0.03, 0.1),
        prerequisite: float = 0.75,
        mastery_threshold: float = 0.75,
        forget_rate: float = 0.0,
        score: Literal["success", "competence"] = "success",
        noise: float = 0.05,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        if n_skills < 1 or n_unlearnable < 0 or n_distractors < 0 or n_levels < 1 or max_parents < 1:
            raise ValueError(
                "expected n_skills, n_levels, max_parents >= 1 and n_unlearnable, n_distractors >= 0; got "
                f"{n_skills}, {n_levels}, {max_parents}, {n_unlearnable}, {n_distractors}"
            )
        if graph not in ("random", "chain"):
            raise ValueError(f"graph must be 'random' or 'chain', got {graph!r}")
        low, high = (float(v) for v in learning_rate)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(
                f"learning_rate must be (low, high) with 0 < low <= high <= 1, got {learning_rate!r}"
            )
        if not (0.0 <= prerequisite <= 1.0 and 0.0 <= mastery_threshold < 1.0 and 0.0 <= forget_rate < 1.0):
            raise ValueError(
                "prerequisite must lie in [0, 1], mastery_threshold and forget_rate in [0, 1); got "
                f"{prerequisite}, {mastery_threshold}, {forget_rate}"
            )
        if score not in ("success", "competence") or noise < 0:
            raise ValueError(
                f"score must be 'success' or 'competence' and noise >= 0, got {score!r}, {noise!r}"
            )
        self.n_skills, self.n_unlearnable, self.n_distractors = (
            int(n_skills),
            int(n_unlearnable),
            int(n_distractors),
        )
        self.n_levels, self.graph, self.max_parents = int(n_levels), graph, int(max_parents)
        self.learning_rate = (low, high)
        self.prerequisite, self.mastery_threshold = float(prerequisite), float(mastery_threshold)
        self.forget_rate, self.score, self.noise = float(forget_rate), score, float(noise)
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        structure_seed, noise_seed = sequence.spawn(2)
        self.rng = np.random.default_rng(noise_seed)
        self._build(np.random.default_rng(structure_seed))
        self.n_episodes = 0

    # ----------------------------------------------------------------- structure
    def _build(self, rng: np.random.Generator) -> None:
        """Draw the graph, the rates and the hidden order of skills behind the task indices."""
        k, total, levels = (
            self.n_skills,
            self.n_skills + self.n_unlearnable + self.n_distractors,
            self.n_levels,
        )
        self.n_total = total
        parents: list[list[int]] = [[]]  # over core skills, in topological order
        for i in range(1, k):
            if self.graph == "chain":
                parents.append([i - 1])
            else:
                window = list(range(max(0, i - 3), i))
                n = int(rng.integers(1, min(self.max_parents, len(window)) + 1))
                parents.append(sorted(int(p) for p in rng.choice(window, n, replace=False)))
        depth = [0] * k
        for i in range(1, k):
            depth[i] = 1 + max(depth[p] for p in parents[i])
        kinds = [_CORE] * k + [_UNLEARNABLE] * self.n_unlearnable + [_DISTRACTOR] * self.n_distractors
        rates = np.exp(rng.uniform(math.log(self.learning_rate[0]), math.log(self.learning_rate[1]), total))
        fixed = rng.uniform(0.1, 0.9, total)
        # Task index -> internal skill: a permutation, so that indices say nothing about the order.
        internal = rng.permutation(total)
        public = np.empty(total, dtype=np.int64)
        public[internal] = np.arange(total)
        self._kind = [kinds[internal[s]] for s in range(total)]
        self._depth = np.array(
            [depth[internal[s]] if kinds[internal[s]] == _CORE else -1 for s in range(total)]
        )
        # Units are (skill, level), flat index skill * n_levels + level.
        n_units = total * levels
        self._prereqs: list[tuple[int, ...]] = []
        self._rate: list[float] = []
        self._fixed: list[float] = []
        for s in range(total):
            core = self._kind[s] == _CORE
            skill_parents = [int(public[p]) for p in parents[internal[s]]] if core else []
            for lvl in range(levels):
                pre = [s * levels + lvl - 1] if lvl > 0 else []
                pre += [p * levels + lvl for p in skill_parents]
                self._prereqs.append(tuple(pre))
                self._rate.append(float(rates[s]) if core else 0.0)
                self._fixed.append(float(fixed[s]) if self._kind[s] == _DISTRACTOR else 0.0)
        self._competence = [0.0] * n_units
        self._last = [0] * n_units  # episode count when each unit was last brought up to date
        self._core_units = np.array([u for u in range(n_units) if self._kind[u // levels] == _CORE])
        if levels == 1:
            self.task_space: spaces.Space = spaces.Discrete(total)
            self.task_names: tuple[str, ...] = ("skill",)
        else:
            self.task_space = spaces.MultiDiscrete([total, levels])
            self.task_names = ("skill", "level")
        self._space = TaskSpace(self.task_space, self.task_names)

    @property
    def learnable_skills(self) -> list[int]:
        """Task indices (skill numbers) of the learnable skills, the ones mastery counts."""
        return [s for s in range(self.n_total) if self._kind[s] == _CORE]

    def prerequisites(self, skill: int) -> list[int]:
        """Task indices of the skills that ``skill`` needs (at level 0)."""
        return sorted({p // self.n_levels for p in self._prereqs[int(skill) * self.n_levels]})

    # ------------------------------------------------------------------ public
    def _unit(self, task: Task) -> int:
        x = self._space.vector(task)
        return int(x[0]) * self.n_levels + (int(x[1]) if self.n_levels > 1 else 0)

    def _current(self, u: int) -> float:
        """Competence of unit ``u`` now, with the decay of the episodes since it was last seen."""
        c = self._competence[u]
        if self.forget_rate and c:
            c *= (1.0 - self.forget_rate) ** (self.n_episodes - self._last[u])
            self._competence[u], self._last[u] = c, self.n_episodes
        return c

    def _draw_score(self, p: float) -> float:
        if self.score == "success":
            return 1.0 if self.rng.random() < p else 0.0
        return min(1.0, max(0.0, p + self.noise * float(self.rng.standard_normal())))

    def train(self, task: Task) -> float:
        """Practise ``task`` for one episode; returns the episode's score in [0, 1]."""
        u = self._unit(task)
        kind = self._kind[u // self.n_levels]
        # Decay up to the previous episode; the unit practised now does not decay this episode.
        c = self._current(u)
        self.n_episodes += 1
        self._last[u] = self.n_episodes
        if kind == _DISTRACTOR:
            return self._draw_score(self._fixed[u])
        if kind == _CORE and all(self._current(p) >= self.prerequisite for p in self._prereqs[u]):
            c += self._rate[u] * (1.0 - c)
            self._competence[u] = c
        return self._draw_score(c)

    def evaluate(self, task: Task) -> float:
        """Score one episode on ``task`` without learning (no time passes either)."""
        return self._draw_score(self._success_probability(self._unit(task)))

    def _success_probability(self, u: int) -> float:
        return self._fixed[u] if self._kind[u // self.n_levels] == _DISTRACTOR else self._current(u)

    @property
    def competence(self) -> np.ndarray:
        """Competence now, shaped ``(total skills, n_levels)`` (distractors: their fixed rate)."""
        values = [self._success_probability(u) for u in range(len(self._competence))]
        return np.array(values).reshape(self.n_total, self.n_levels)

    def mastered_fraction(self) -> float:
        """Fraction of learnable (skill, level) pairs whose competence exceeds ``mastery_threshold``."""
        flat = self.competence.ravel()[self._core_units]
        return float(np.mean(flat > self.mastery_threshold))

    def _units_of(self, tasks: np.ndarray) -> np.ndarray:
        arr = np.asarray(tasks, dtype=np.int64).reshape(-1, self._space.dim)
        return arr[:, 0] * self.n_levels + (arr[:, 1] if self.n_levels > 1 else 0)

    def value_estimate(self, tasks: np.ndarray) -> np.ndarray:
        """Expected score on each task (stacked): its success probability now."""
        return np.array([self._success_probability(int(u)) for u in self._units_of(tasks)])

    def difficulty(self, tasks: np.ndarray) -> np.ndarray:
        """Difficulty in [0, 1]: prerequisite depth (skill depth + level) over the deepest one.

        Unlearnable and distractor skills get ``inf``: there is nothing to learn there.
        """
        units = self._units_of(tasks)
        skills, levels = units // self.n_levels, units % self.n_levels
        depth = self._depth[skills] + levels
        deepest = max(int(self._depth.max()) + self.n_levels - 1, 1)
        return np.where(self._depth[skills] >= 0, depth / deepest, np.inf)

    def teacher_hooks(self) -> dict[str, Any]:
        """What :meth:`teachgym.teacher.Teacher.bind` takes from this student."""
        return {"value_estimate": self.value_estimate, "difficulty": self.difficulty}


def make_skills_student(
    variant: str = "default", seed: int | np.random.SeedSequence | None = None, **overrides: Any
) -> SkillsStudent:
    """A :class:`SkillsStudent` configured as one of :data:`SKILLS_VARIANTS` (plus ``overrides``)."""
    if variant not in SKILLS_VARIANTS:
        raise ValueError(f"unknown skills variant {variant!r}; expected one of {sorted(SKILLS_VARIANTS)}")
    return SkillsStudent(**{**SKILLS_VARIANTS[variant], **overrides}, seed=seed)
