"""DataEnvGym-style teacher environments: an episode is a loop of data generation and training.

Khan et al., "DataEnvGym: Data Generation Agents in Teacher Environments with Student Feedback"
(ICLR 2025). Each ``step``: the action (a data-generation plan) becomes task specifications →
the engine writes examples (at most ``budget`` per step) → the quality check drops those whose
answer fails verification → the student trains on all data kept so far → it is evaluated on
fixed validation and test sets (every skill x subskill x level) → observation and reward (the
change in mean validation accuracy over skills; per skill in ``info["skill_rewards"]``).

Three levels of structure (``level=``):

* ``"open_ended"``: observation = the student's validation errors as text; action = a free plan,
  a sequence of task specifications (JSON objects or free text for an LLM engine).
* ``"skill_list"``: observation = accuracy per skill and per (skill, difficulty); action = data
  allocation weights over (skill, difficulty), shape ``(n_skills, n_levels)``.
* ``"skill_tree"``: skills -> subskills, each with a data allocation and an accuracy; action
  ``{"explore": 0/1, "skill": k, "allocation": (n_skills, n_subskills)}``: Explore discovers the
  next subskill of skill ``k`` and applies the allocation; Exploit only re-allocates.

Every level also exposes ``task_space`` = ``MultiDiscrete([n_skills, n_levels])`` (the (skill,
difficulty) of one generated example) and :meth:`DataGenEnv.action_from_tasks`, through which any
teachgym teacher drives data generation (:class:`~teachgym.envs.datagen.policies.TeacherPolicy`).
"""

from __future__ import annotations

import itertools
import json
import reprlib
import string
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from teachgym.envs.datagen.domain import Domain, Example
from teachgym.envs.datagen.engines import TaskSpec, make_engine, parse_spec

LEVELS = ("open_ended", "skill_list", "skill_tree")
_TEXT = string.printable  # letters, digits, punctuation and whitespace (newline included)
_MAX_TEXT = 600


def get_domain(name: str | Domain) -> Domain:
    """The domain called ``name`` (``"math"``, ``"code"``, ``"vqa"``), or a Domain as is."""
    if isinstance(name, Domain):
        return name
    if name == "math":
        from teachgym.envs.datagen.math_skills import MATH

        return MATH
    if name == "code":
        from teachgym.envs.datagen.code_skills import CODE

        return CODE
    if name == "vqa":
        from teachgym.envs.datagen.vqa_skills import VQA

        return VQA
    raise ValueError(f"unknown datagen domain {name!r}; expected 'math', 'code' or 'vqa'")


def allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total`` in proportion to non-negative ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    flat = w.ravel() / w.sum()
    raw = flat * total
    counts = np.floor(raw).astype(np.int64)
    rest = total - int(counts.sum())
    if rest > 0:
        counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    return counts.reshape(w.shape)


class DataGenEnv(gym.Env):
    """A teacher environment for data generation (see the module docstring).

    Parameters
    ----------
    domain
        ``"math"``, ``"code"``, ``"vqa"`` or a :class:`~teachgym.envs.datagen.domain.Domain`.
    level
        ``"open_ended"``, ``"skill_list"`` or ``"skill_tree"``.
    iterations
        Steps per episode.
    budget
        Most examples generated per step (default: the domain's).
    n_eval
        Validation and test examples per (skill, subskill, level) (default: the domain's).
    train_steps
        Gradient steps of the student per iteration, on all data so far (default: the domain's).
    engine, engine_kwargs
        ``"template"`` (offline, default), ``"chat"`` with :class:`ChatEngine` arguments, or an
        engine object.
    student
        None: the domain's default student; or a callable ``(seed, device) -> student``.
    student_kwargs
        Overrides of the default student's settings (e.g. ``{"d_model": 64}``).
    device
        ``"auto"``: CUDA when present.
    data_seed
        Seed of the validation and test sets, fixed across resets and envs so runs compare.
    max_errors
        Errors shown in an open-ended observation.

    Notes
    -----
    ``last_seconds`` holds the wall-clock seconds of the last ``reset`` / ``step`` by phase
    (generate, verify, train, evaluate); they are kept out of ``info`` so that the same seed gives
    the same infos.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        domain: str | Domain = "math",
        level: str = "skill_list",
        iterations: int = 10,
        budget: int | None = None,
        n_eval: int | None = None,
        train_steps: int | None = None,
        engine: Any = "template",
        engine_kwargs: dict[str, Any] | None = None,
        student: Any = None,
        student_kwargs: dict[str, Any] | None = None,
        device: str = "auto",
        data_seed: int = 0,
        max_errors: int | None = None,
    ) -> None:
        self.domain = d = get_domain(domain)
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
        self.level = level
        self.iterations = int(iterations)
        self.budget = int(budget if budget is not None else d.defaults["budget"])
        self.n_eval = int(n_eval if n_eval is not None else d.defaults["n_eval"])
        self.train_steps = int(train_steps if train_steps is not None else d.defaults["train_steps"])
        self.max_errors = int(max_errors if max_errors is not None else d.defaults["max_errors"])
        if min(self.iterations, self.budget, self.n_eval) < 1 or self.train_steps < 0 or self.max_errors < 0:
            raise ValueError("expected iterations, budget, n_eval >= 1 and train_steps, max_errors >= 0")
        self.engine = make_engine(d, engine, **(engine_kwargs or {}))
        self.student_factory = student
        self.student_kwargs = dict(student_kwargs or {})
        self.device = device
        self.skill_names = d.skill_names
        self.subskill_names = tuple(tuple(s.name for s in sk.subskills) for sk in d.skills)
        self.task_space = spaces.MultiDiscrete([d.n_skills, d.n_levels])
        self.task_names = ("skill", "difficulty")
        self._shape = (d.n_skills, d.n_subskills, d.n_levels)
        val_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(data_seed).spawn(2))
        self.validation_set = self._eval_set(val_rng)
        self.test_set = self._eval_set(test_rng)
        self._build_spaces()
        self.student: Any = None
        self.last_seconds: dict[str, float] = {}
        self.train_data: list[Example] = []

    # -------------------------------------------------------------- construction
    def _eval_set(self, rng: np.random.Generator) -> list[Example]:
        d = self.domain
        examples = [
            d.make_image(d.generate(s, j, lvl, rng))
            for s in range(d.n_skills) for j in range(d.n_subskills) for lvl in range(d.n_levels) for _ in range(self.n_eval)
        ]
        keep = d.verify(examples)
        if not all(keep):
            raise RuntimeError(f"{d.name}: {len(keep) - sum(keep)} template examples failed their own check")
        return examples

    def _build_spaces(self) -> None:
        k, m, n = self._shape
        unit = lambda *shape: spaces.Box(0.0, 1.0, shape, np.float32)  # noqa: E731
        it = spaces.Discrete(self.iterations + 1)
        if self.level == "open_ended":
            self.observation_space = spaces.Dict({
                "errors": spaces.Sequence(spaces.Text(_MAX_TEXT, charset=_TEXT), stack=False),
                "iteration": it,
            })
            self.action_space = spaces.Sequence(spaces.Text(_MAX_TEXT, charset=_TEXT), stack=False)
        elif self.level == "skill_list":
            self.observation_space = spaces.Dict({
                "accuracy": unit(k), "accuracy_by_level": unit(k, n),
                "data": spaces.Box(0, np.inf, (k, n), np.float32), "iteration": it,
            })
            self.action_space = unit(k, n)
        else:
            self.observation_space = spaces.Dict({
                "discovered": spaces.MultiBinary((k, m)), "allocation": unit(k, m),
                "accuracy": unit(k, m), "skill_accuracy": unit(k), "iteration": it,
            })
            self.action_space = spaces.Dict({"explore": spaces.Discrete(2), "skill": spaces.Discrete(k), "allocation": unit(k, m)})

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if options and "task" in options:
            raise ValueError(
                "a DataGen env is a teacher environment: its episodes take no task; a teacher acts "
                "through the action (DataGenEnv.action_from_tasks, envs.datagen.policies.TeacherPolicy)"
            )
        super().reset(seed=seed)
        student_seed = int(self.np_random.integers(2**62))
        if self.student_factory is None:
            self.student = self.domain.make_student(student_seed, self.device, **self.student_kwargs)
        else:
            self.student = self.student_factory(student_seed, self.device)
        self.train_data = []
        self.iteration = 0
        self._data = np.zeros((self.domain.n_skills, self.domain.n_levels))
        self._discovered = np.zeros(self._shape[:2], dtype=bool)
        self._discovered[:, 0] = True
        self._allocation = self._discovered / self._discovered.sum(1, keepdims=True) / self._shape[0]
        t0 = time.perf_counter()
        self._val_cells, self._errors = self._evaluate(self.validation_set, collect_errors=True)
        self._test_cells, _ = self._evaluate(self.test_set)
        # Timings live outside info, which must be the same for the same seed (gymnasium's contract).
        self.last_seconds = {"evaluate": time.perf_counter() - t0}
        return self._observation(), self._info_accuracy()

    def step(self, action: Any):
        if self.student is None:
            raise RuntimeError("call reset() before step()")
        clock = time.perf_counter
        t0 = clock()
        specs, invalid = self._plan(action)
        specs = self._within_budget(specs)
        examples, engine_stats = self.engine.generate(specs, self.np_random)
        examples = examples[: self.budget]
        t1 = clock()
        keep = self.domain.verify(examples) if examples else []
        kept = [e for e, ok in zip(examples, keep) if ok]
        t2 = clock()
        self.train_data.extend(kept)
        for e in kept:
            self._data[e.skill, e.level] += 1
        if self.train_data and self.train_steps:
            self.student.fit(self.train_data, self.train_steps)
        t3 = clock()
        before = self._val_cells.mean(axis=(1, 2))
        self._val_cells, self._errors = self._evaluate(self.validation_set, collect_errors=True)
        self._test_cells, _ = self._evaluate(self.test_set)
        t4 = clock()
        self.iteration += 1
        skill_rewards = self._val_cells.mean(axis=(1, 2)) - before
        info = self._info_accuracy()
        info.update(
            skill_rewards=skill_rewards, generated=len(examples), kept=len(kept), dropped=len(examples) - len(kept),
            invalid_specs=invalid, train_size=len(self.train_data), engine=engine_stats,
        )
        self.last_seconds = {"generate": t1 - t0, "verify": t2 - t1, "train": t3 - t2, "evaluate": t4 - t3}
        terminated = self.iteration >= self.iterations
        return self._observation(), float(skill_rewards.mean()), terminated, False, info

    # ------------------------------------------------------------------ plans
    def _plan(self, action: Any) -> tuple[list[TaskSpec], int]:
        """Task specifications of an action, and the number of specifications that were unusable."""
        d = self.domain
        if self.level == "open_ended":
            if isinstance(action, str):
                action = [action]
            try:
                texts = list(itertools.islice(action, self.budget + 1))
            except TypeError:
                raise ValueError(f"an open-ended action is a sequence of task specifications (strings), got {reprlib.repr(action)}") from None
            # A plan is model text: it is cut to its first `budget` specifications (the rest are not
            # read), each at most _MAX_TEXT characters (the action space's bound).
            texts = texts[: self.budget]
            default = max(1, self.budget // max(1, len(texts)))
            parsed = [parse_spec(t, d, default, max_chars=_MAX_TEXT) for t in texts]
            return [p for p in parsed if p is not None], sum(p is None for p in parsed)
        if self.level == "skill_list":
            weights = self._weights(action, (d.n_skills, d.n_levels))
            counts = allocate(weights, self.budget)
            return [TaskSpec(s, int(c), level=lvl) for (s, lvl), c in np.ndenumerate(counts) if c], 0
        if not isinstance(action, dict) or not {"explore", "skill", "allocation"} <= set(action):
            raise ValueError(f"a skill-tree action is a dict with keys explore, skill, allocation; got {action!r}")
        invalid = 0
        if int(action["explore"]):
            skill = self.domain.skill_index(int(action["skill"]))
            hidden = np.flatnonzero(~self._discovered[skill])
            if hidden.size:
                self._discovered[skill, hidden[0]] = True
            else:
                invalid = 1  # nothing left to discover under this skill
        weights = self._weights(action["allocation"], self._shape[:2]) * self._discovered
        if weights.sum() <= 0:
            weights = self._discovered.astype(np.float64)
        self._allocation = weights / weights.sum()
        counts = allocate(self._allocation, self.budget)
        return [TaskSpec(s, int(c), subskill=j) for (s, j), c in np.ndenumerate(counts) if c], invalid

    @staticmethod
    def _weights(action: Any, shape: tuple[int, ...]) -> np.ndarray:
        try:
            w = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"expected allocation weights of shape {shape}, got {reprlib.repr(action)}") from None
        if w.shape != shape or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"expected finite non-negative allocation weights of shape {shape}, got {w.tolist()}")
        return w if w.sum() > 0 else np.ones(shape)  # all zero: spread the budget evenly

    def _within_budget(self, specs: list[TaskSpec]) -> list[TaskSpec]:
        """Cut the plan so that it asks for at most ``budget`` examples (first come, first served)."""
        out, left = [], self.budget
        for s in specs:
            if left <= 0:
                break
            n = min(s.count, left)
            out.append(TaskSpec(s.skill, n, s.level, s.subskill, s.text))
            left -= n
        return out

    def action_from_tasks(self, tasks: Sequence[Any]) -> Any:
        """The action of this level that generates one example per (skill, difficulty) task."""
        d = self.domain
        arr = np.asarray(tasks, dtype=np.int64).reshape(-1, 2)
        counts = np.zeros((d.n_skills, d.n_levels))
        np.add.at(counts, (arr[:, 0], arr[:, 1]), 1.0)
        if self.level == "skill_list":
            return (counts / max(1.0, counts.sum())).astype(np.float32)
        if self.level == "open_ended":
            return tuple(
                json.dumps({"skill": self.skill_names[s], "difficulty": lvl, "count": int(c)})
                for (s, lvl), c in np.ndenumerate(counts) if c
            )
        per_skill = counts.sum(1, keepdims=True) * self._discovered / self._discovered.sum(1, keepdims=True)
        return {"explore": 0, "skill": 0, "allocation": (per_skill / max(1.0, per_skill.sum())).astype(np.float32)}

    # --------------------------------------------------------------- evaluation
    def _evaluate(self, examples: list[Example], collect_errors: bool = False) -> tuple[np.ndarray, list[str]]:
        """Accuracy per (skill, subskill, level) cell, and error texts (validation only)."""
        predictions = self.student.predict(examples)
        correct = np.array([p.strip() == e.answer.strip() for p, e in zip(predictions, examples)], dtype=np.float64)
        cells = correct.reshape(*self._shape, self.n_eval).mean(-1)
        errors: list[str] = []
        if collect_errors and self.max_errors:
            wrong = np.flatnonzero(correct == 0)
            pick = self.np_random.permutation(wrong)[: self.max_errors]
            for i in sorted(pick):
                e = examples[i]
                text = (
                    f"skill: {self.skill_names[e.skill]} | subskill: {self.subskill_names[e.skill][e.subskill]} | "
                    f"difficulty: {e.level} | question: {e.prompt} | answer: {e.answer} | student: {predictions[i]}"
                )
                errors.append("".join(c for c in text if c in _TEXT)[:_MAX_TEXT])
        return cells, errors

    @property
    def cell_accuracy(self) -> np.ndarray:
        """Validation accuracy per (skill, subskill, difficulty) cell after the last reset or step (for the records)."""
        return self._val_cells.copy()

    def _info_accuracy(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "accuracy": self._val_cells.mean(axis=(1, 2)),
            "accuracy_by_level": self._val_cells.mean(axis=1),
            "test_accuracy": self._test_cells.mean(axis=(1, 2)),
            "test_accuracy_by_level": self._test_cells.mean(axis=1),
            "test_mean_accuracy": float(self._test_cells.mean()),
        }

    def _observation(self) -> dict[str, Any]:
        f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
        if self.level == "open_ended":
            return {"errors": tuple(self._errors), "iteration": self.iteration}
        if self.level == "skill_list":
            return {
                "accuracy": f32(self._val_cells.mean(axis=(1, 2))), "accuracy_by_level": f32(self._val_cells.mean(axis=1)),
                "data": f32(self._data), "iteration": self.iteration,
            }
        return {
            "discovered": self._discovered.astype(np.int8), "allocation": f32(self._allocation),
            "accuracy": f32(self._val_cells.mean(axis=2) * self._discovered),
            "skill_accuracy": f32(self._val_cells.mean(axis=(1, 2))), "iteration": self.iteration,
        }
