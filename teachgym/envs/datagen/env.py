"""DataEnvGym-style teacher environments: an episode is a loop of data generation and training.

Khan et al., "DataEnvGym: Data Generation Agents in Teacher Environments with Student Feedback"
(ICLR 2025). Each ``step``: the action (a data-generation plan) becomes task specifications →
the engine writes examples (at most ``budget`` per step) → items for a skill, level or subskill
that was not requested are dropped (``off_plan``) → the quality check, in tiers
(:mod:`~teachgym.envs.datagen.verifiers`: format, claimed level, template / math equivalence /
code run in the sandbox / VQA scene, optional LLM judge), drops the rest of the wrong ones →
the student trains on all data kept so far → it is evaluated on fixed validation and test sets
(every skill x subskill x level) → observation and reward (the change in mean validation
accuracy over skills; per skill in ``info["skill_rewards"]``).

Training (``student_reset``): ``"warm"`` keeps training the same student on all data so far,
``train_steps`` more steps each iteration; ``"base"`` is DataEnvGym's protocol (its
``LlamaFactoryTrainer.train`` fine-tunes the base model again on all accumulated data every
iteration, ``src/dataenvgym/gym/trainable_predictors/math/local_llm.py``): the student is reset to
its initial weights and trained on all data so far for ``train_steps`` steps per ``budget``
examples (a fixed number of epochs), with a fresh batch order, so that the reward measures what
the data adds rather than more training on old data.

Three levels of structure (``level=``):

* ``"open_ended"``: observation = the student's validation errors as text; action = a free plan,
  a sequence of task specifications (JSON objects or free text for an LLM engine).
* ``"skill_list"``: observation = accuracy per skill and per (skill, difficulty); action = data
  allocation weights over (skill, difficulty), shape ``(n_skills, n_levels)``.
* ``"skill_tree"``: DataEnvGym's skill forest (:mod:`~teachgym.envs.datagen.skill_tree`): per
  skill a tree of free-form subskills with absolute example counts and the student's accuracy
  on the data generated for each; action = one Explore or Exploit per skill. Observation: a
  dict of ``subskills`` (per skill, the tuple of subskill names, in order), and per (skill,
  subskill slot), ``max_subskills`` slots wide: ``difficulty`` (-1: any level, or an empty
  slot), ``allocation`` (examples asked per iteration), ``generated`` (kept this iteration),
  ``data`` (kept so far), ``accuracy`` (the student's on the examples kept for it this
  iteration, answered before training on them; 0 when none), plus ``skill_accuracy``
  (validation accuracy per skill, DataEnvGym's ``past_performance``) and ``iteration``.

``info`` of a step adds to the accuracies: ``skill_rewards``, ``generated``, ``kept``,
``dropped``, ``off_plan``, ``invalid_specs``, ``train_size``, ``train_steps``, ``engine`` (the
engine's counts) and ``verify`` (per tier that decided: passed, rejected, pass rate).

:meth:`DataGenEnv.state_dict` / :meth:`DataGenEnv.load_state_dict` save and restore an episode
between steps (generator, data, skill trees, accuracies and the student's weights, optimiser and
generator; numpy arrays and JSON, no pickle): a recorded episode's checkpoint
(:mod:`~teachgym.envs.datagen.provenance`).

Every level also exposes ``task_space`` = ``MultiDiscrete([n_skills, n_levels])`` (the (skill,
difficulty) of one generated example) and :meth:`DataGenEnv.action_from_tasks`, through which any
teachgym teacher drives data generation (:class:`~teachgym.envs.datagen.policies.TeacherPolicy`).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
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
from teachgym.envs.datagen.skill_tree import MAX_NAME, SkillForest, SubskillNode, TemplateProposer
from teachgym.envs.datagen.verifiers import ChatJudge, summarise
from teachgym.io import generator_state, load_generator_state

logger = logging.getLogger(__name__)
RESETS = ("warm", "base")

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


def examples_state(examples: Sequence[Example]) -> dict[str, Any]:
    """Examples as JSON rows (skill, level, subskill, prompt, answer, meta) and their images stacked in one array."""
    images = [e.image for e in examples if e.image is not None]
    if images and len({(i.shape, i.dtype) for i in images}) > 1:
        raise ValueError("the examples' images differ in shape or dtype: they cannot be stacked in one array")
    return {
        "rows": [[e.skill, e.level, e.subskill, e.prompt, e.answer, e.meta] for e in examples],
        "has_image": [e.image is not None for e in examples],
        "images": np.stack(images) if images else np.zeros((0,), np.uint8),
    }


def examples_from_state(state: Any, domain: Domain) -> list[Example]:
    """The examples of :func:`examples_state`'s output; ``ValueError`` for rows outside ``domain`` or malformed ones."""
    if not isinstance(state, dict) or set(state) != {"rows", "has_image", "images"}:
        raise ValueError("expected examples as {'rows', 'has_image', 'images'}")
    rows, has_image, images = state["rows"], state["has_image"], state["images"]
    if not isinstance(rows, list) or not isinstance(has_image, list) or len(rows) != len(has_image) or not isinstance(images, np.ndarray):
        raise ValueError("expected as many rows as image flags, and an array of images")
    if sum(f is True for f in has_image) != (len(images) if images.ndim > 1 else 0) or not all(isinstance(f, bool) for f in has_image):
        raise ValueError("the image flags do not match the images")
    out, at = [], 0
    for row, flag in zip(rows, has_image):
        ok = isinstance(row, list) and len(row) == 6 and all(type(v) is int for v in row[:3]) and all(isinstance(v, str) for v in row[3:5])
        if not ok or not (0 <= row[0] < domain.n_skills and 0 <= row[1] < domain.n_levels and -1 <= row[2] < domain.n_subskills) \
                or not (row[5] is None or isinstance(row[5], str)):
            raise ValueError(f"malformed example row {reprlib.repr(row)}")
        image = images[at] if flag else None
        at += flag
        out.append(Example(*row[:5], image=image, meta=row[5]))
    return out


def _array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A finite float64 copy of ``value`` of ``shape``; ``ValueError`` otherwise."""
    if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype.kind not in "fiu" or not np.all(np.isfinite(value)):
        raise ValueError(f"expected {what} as finite numbers of shape {shape}")
    return value.astype(np.float64)


def _trees(value: Any, n_skills: int, max_subskills: int) -> list[list[SubskillNode]]:
    """The skill trees of a saved state; ``ValueError`` for anything but their nodes' fields."""
    fields = {f.name: f.type for f in dataclasses.fields(SubskillNode)}
    if not isinstance(value, list) or len(value) != n_skills or any(not isinstance(t, list) or len(t) > max_subskills for t in value):
        raise ValueError(f"expected {n_skills} skill trees of at most {max_subskills} subskills")
    trees = []
    for tree in value:
        nodes = []
        for node in tree:
            if not isinstance(node, dict) or set(node) != set(fields):
                raise ValueError(f"expected a subskill with fields {sorted(fields)}, got {reprlib.repr(node)}")
            counts = [node[key] for key in ("template", "allocation", "generated", "data")]
            ok = isinstance(node["name"], str) and all(type(c) is int for c in counts) and min(counts[1:]) >= 0
            ok = ok and (node["difficulty"] is None or type(node["difficulty"]) is int)
            ok = ok and (node["accuracy"] is None or (isinstance(node["accuracy"], float) and 0 <= node["accuracy"] <= 1))
            if not ok:
                raise ValueError(f"malformed subskill {reprlib.repr(node)}")
            nodes.append(SubskillNode(**node))
        trees.append(nodes)
    return trees


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
    student_reset
        ``"warm"``: the student keeps training (``train_steps`` per iteration); ``"base"``:
        retrained from its initial weights on all data each iteration (DataEnvGym's protocol;
        ``train_steps`` per ``budget`` examples of data).
    judge, judge_kwargs
        The optional last tier of the quality check: None, ``"chat"`` (a
        :class:`~teachgym.envs.datagen.verifiers.ChatJudge` with ``judge_kwargs`` as
        :class:`ChatEngine` arguments) or an object with ``judge(examples) -> list[bool | None]``.
    max_subskills
        Skill tree: most subskills per skill (default: templates x levels of the domain).
    proposer
        Skill tree: ``(domain, skill, existing_names, n, levels) -> names`` for an Explore that names no
        subskills (default :class:`~teachgym.envs.datagen.skill_tree.TemplateProposer`).

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
        student_reset: str = "warm",
        judge: Any = None,
        judge_kwargs: dict[str, Any] | None = None,
        max_subskills: int | None = None,
        proposer: Any = None,
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
        if student_reset not in RESETS:
            raise ValueError(f"unknown student_reset {student_reset!r}; expected one of {RESETS}")
        self.student_reset = student_reset
        self.data_seed = int(data_seed)
        self.engine = make_engine(d, engine, **(engine_kwargs or {}))
        self.judge = ChatJudge(d, **(judge_kwargs or {})) if judge == "chat" else judge
        if isinstance(self.judge, str) or (self.judge is not None and not callable(getattr(self.judge, "judge", None))):
            raise ValueError(f"expected judge None, 'chat' or an object with judge(examples), got {judge!r}")
        self.max_subskills = int(max_subskills if max_subskills is not None else d.n_subskills * d.n_levels)
        if self.max_subskills < 1:
            raise ValueError(f"max_subskills must be >= 1, got {max_subskills}")
        self.proposer = proposer if proposer is not None else TemplateProposer()
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
        keep = d.verify(examples, levels=False)  # drawn at their level: only the answers are in question
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
            width, big = self.max_subskills, np.iinfo(np.int32).max
            count = lambda *shape: spaces.Box(0, big, shape, np.int64)  # noqa: E731
            self.observation_space = spaces.Dict({
                "subskills": spaces.Tuple([spaces.Sequence(spaces.Text(MAX_NAME, charset=_TEXT), stack=False)] * k),
                "difficulty": spaces.Box(-1, n - 1, (k, width), np.int64), "allocation": count(k, width),
                "generated": count(k, width), "data": count(k, width), "accuracy": unit(k, width),
                "skill_accuracy": unit(k), "iteration": it,
            })
            per_skill = spaces.Dict({
                "explore": spaces.Discrete(2), "n_new": spaces.Discrete(width + 1),
                "new_allocation": spaces.Box(0, self.budget, (), np.int64), "allocation": spaces.Box(0, self.budget, (width,), np.int64),
            })
            self.action_space = spaces.Tuple([per_skill] * k)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """A new episode: a new student (from ``seed``), no data, its evaluation.

        ``options={"state": S}`` (S from :meth:`state_dict` of an episode reset with the same
        seed) continues that episode instead: the student is built as for a new one, then S is
        loaded into it and the env, and nothing is evaluated; the observation and the accuracies
        are S's. ``ValueError`` if S does not fit (the env must then be reset again).
        """
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
        # "base" retrains a copy of this initial student every iteration.
        self._initial_student = copy.deepcopy(self.student) if self.student_reset == "base" else None
        self.train_data = []
        self.iteration = 0
        self._data = np.zeros((self.domain.n_skills, self.domain.n_levels))
        self.forest = SkillForest(self.domain, self.max_subskills, self.proposer)
        if options and options.get("state") is not None:  # a saved episode, continued without evaluating again
            self.load_state_dict(options["state"])
            self.last_seconds = {}
            return self._observation(), self._info_accuracy()
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
        specs, tags, invalid = self._plan(action)
        specs, tags = self._within_budget(specs, tags)
        examples, origin, engine_stats = self._generate(specs)
        t1 = clock()
        on_plan = [self._on_plan(e, specs[i]) for e, i in zip(examples, origin)]
        verdicts: list[tuple[bool, str]] = [(False, "off_plan")] * len(examples)
        planned = [i for i, ok in enumerate(on_plan) if ok]
        for i, v in zip(planned, self.domain.verify_tiers([examples[i] for i in planned], self.judge) if planned else []):
            verdicts[i] = v
        keep = [i for i, (ok, _) in enumerate(verdicts) if ok]
        kept = [self.domain.canonical(examples[i]) for i in keep]
        t2 = clock()
        if self.level == "skill_tree":
            # DataEnvGym's perf_on_training_data: the student answers the new data before training on it.
            answers = self.student.predict(kept) if kept else []
            self.forest.record([(*tags[origin[i]], a.strip() == e.answer.strip()) for i, e, a in zip(keep, kept, answers)])
        self.train_data.extend(kept)
        for e in kept:
            self._data[e.skill, e.level] += 1
        steps = self._train()
        t3 = clock()
        before = self._val_cells.mean(axis=(1, 2))
        self._val_cells, self._errors = self._evaluate(self.validation_set, collect_errors=True)
        self._test_cells, _ = self._evaluate(self.test_set)
        t4 = clock()
        self.iteration += 1
        skill_rewards = self._val_cells.mean(axis=(1, 2)) - before
        verify = summarise(verdicts)
        info = self._info_accuracy()
        info.update(
            skill_rewards=skill_rewards, generated=len(examples), kept=len(kept), dropped=len(examples) - len(kept),
            off_plan=len(examples) - len(planned), invalid_specs=invalid, train_size=len(self.train_data),
            train_steps=steps, engine=engine_stats, verify=verify,
        )
        logger.info(
            "iteration %d: generated %d, kept %d, off-plan %d; pass rate per tier: %s", self.iteration, len(examples),
            len(kept), len(examples) - len(planned), {t: round(v["pass_rate"], 3) for t, v in verify.items()},
        )
        self.last_seconds = {"generate": t1 - t0, "verify": t2 - t1, "train": t3 - t2, "evaluate": t4 - t3}
        terminated = self.iteration >= self.iterations
        return self._observation(), float(skill_rewards.mean()), terminated, False, info

    def _train(self) -> int:
        """Train the student on all data so far (see ``student_reset``); the gradient steps taken."""
        if not self.train_data or not self.train_steps:
            return 0
        if self.student_reset == "warm":
            steps = self.train_steps
        else:
            self.student = copy.deepcopy(self._initial_student)
            if isinstance(getattr(self.student, "rng", None), np.random.Generator):  # the built-in students' batch order
                self.student.rng = np.random.default_rng(int(self.np_random.integers(2**62)))
            steps = max(1, round(self.train_steps * len(self.train_data) / self.budget))
        self.student.fit(self.train_data, steps)
        return steps

    def _generate(self, specs: list[TaskSpec]) -> tuple[list[Example], list[int], dict[str, int]]:
        """Examples of every specification, the index of the specification of each, summed engine stats."""
        examples: list[Example] = []
        origin: list[int] = []
        stats: dict[str, int] = {}
        for i, spec in enumerate(specs):
            out, st = self.engine.generate([spec], self.np_random)
            out = out[: spec.count]  # an engine may not exceed what was asked
            examples += out
            origin += [i] * len(out)
            for key, value in st.items():
                stats[key] = stats.get(key, 0) + value
        return examples, origin, stats

    @staticmethod
    def _on_plan(e: Example, spec: TaskSpec) -> bool:
        """Is ``e`` what ``spec`` asked for (skill, level, and subskill when both name one)?"""
        if spec.skill < 0:
            return True  # a free-text plan asks for nothing checkable
        return (
            e.skill == spec.skill and (spec.level is None or e.level == spec.level)
            and (spec.subskill is None or e.subskill < 0 or e.subskill == spec.subskill)
        )

    # ------------------------------------------------------------------ plans
    def _plan(self, action: Any) -> tuple[list[TaskSpec], list[Any], int]:
        """Task specifications of an action, a tag per specification (skill tree: (skill, subskill index)),
        and the number of specifications that were unusable."""
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
            parsed = [p for p in (parse_spec(t, d, default, max_chars=_MAX_TEXT) for t in texts) if p is not None]
            return parsed, [None] * len(parsed), len(texts) - len(parsed)
        if self.level == "skill_list":
            weights = self._weights(action, (d.n_skills, d.n_levels))
            counts = allocate(weights, self.budget)
            specs = [TaskSpec(s, int(c), level=lvl) for (s, lvl), c in np.ndenumerate(counts) if c]
            return specs, [None] * len(specs), 0
        invalid = self.forest.apply(action)
        requested = self.forest.requested()
        counts = np.array([c for _, _, c in requested], dtype=np.int64)
        if counts.sum() > self.budget:  # more than a step's budget: every count scaled down
            counts = allocate(counts, self.budget)
        specs, tags = [], []
        for (s, j, _), c in zip(requested, counts):
            node = self.forest.trees[s][j]
            if c:
                specs.append(TaskSpec(s, int(c), node.difficulty, node.template if node.template >= 0 else None, subskill_name=node.name))
                tags.append((s, j))
        return specs, tags, invalid

    @staticmethod
    def _weights(action: Any, shape: tuple[int, ...]) -> np.ndarray:
        try:
            w = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"expected allocation weights of shape {shape}, got {reprlib.repr(action)}") from None
        if w.shape != shape or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"expected finite non-negative allocation weights of shape {shape}, got {w.tolist()}")
        return w if w.sum() > 0 else np.ones(shape)  # all zero: spread the budget evenly

    def _within_budget(self, specs: list[TaskSpec], tags: list[Any]) -> tuple[list[TaskSpec], list[Any]]:
        """Cut the plan so that it asks for at most ``budget`` examples (first come, first served)."""
        out, left = [], self.budget
        for s in specs:
            if left <= 0:
                break
            out.append(dataclasses.replace(s, count=min(s.count, left)))
            left -= out[-1].count
        return out, tags[: len(out)]

    def action_from_tasks(self, tasks: Sequence[Any]) -> Any:
        """The action of this level that generates one example per (skill, difficulty) task.

        Skill tree: per skill, the subskills of each requested difficulty share its count
        (Exploit); a difficulty without a subskill yet is explored: a new subskill
        ``"<skill> (difficulty L)"`` (any template at that level) with that count.
        """
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
        return tuple(self._tree_action(s, counts[s].astype(np.int64)) for s in range(d.n_skills))

    def _tree_action(self, skill: int, want: np.ndarray) -> dict[str, Any]:
        tree = self.forest.trees[skill]
        alloc = np.zeros(len(tree), np.int64)
        missing = []
        for level, count in enumerate(want):
            nodes = [j for j, n in enumerate(tree) if n.difficulty == level]
            if nodes:
                alloc[nodes] += allocate(np.ones(len(nodes)), int(count))
            elif count:
                missing.append(level)
        action: dict[str, Any] = {"explore": int(bool(missing)), "allocation": alloc.tolist()}
        if missing:
            action.update(
                n_new=len(missing), names=[f"{self.skill_names[skill]} (difficulty {lvl})" for lvl in missing],
                difficulty=missing, new_allocation=[int(want[lvl]) for lvl in missing],
            )
        return action

    # ------------------------------------------------------------------ state
    def settings(self) -> dict[str, Any]:
        """The settings a saved state must share with this env (JSON)."""
        return {"domain": self.domain.name, "level": self.level, "iterations": self.iterations, "budget": self.budget,
                "n_eval": self.n_eval, "train_steps": self.train_steps, "max_errors": self.max_errors,
                "student_reset": self.student_reset, "max_subskills": self.max_subskills, "data_seed": self.data_seed}

    def state_dict(self) -> dict[str, Any]:
        """The episode after the last ``reset`` or ``step``, student included: numpy arrays and
        JSON-able values, no pickle (:func:`teachgym.io.save_state` writes it).

        Raises ``ValueError`` if the student has no ``state_dict`` (a student of one's own may not).
        """
        if self.student is None:
            raise RuntimeError("call reset() before state_dict()")
        if not callable(getattr(self.student, "state_dict", None)):
            raise ValueError(f"the student ({type(self.student).__name__}) has no state_dict(): its state cannot be saved")
        return {
            "settings": self.settings(), "np_random": generator_state(self.np_random), "iteration": self.iteration,
            "train_data": examples_state(self.train_data), "data": self._data.copy(),
            "forest": [[dataclasses.asdict(node) for node in tree] for tree in self.forest.trees],
            "val_cells": self._val_cells.copy(), "test_cells": self._test_cells.copy(), "errors": list(self._errors),
            "student": self.student.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue an episode from :meth:`state_dict`'s output, after ``reset`` with the episode's seed
        (which builds the student this state is loaded into, and the initial student of ``"base"``).

        Raises
        ------
        ValueError
            If the state is of another env's settings or student, or malformed; the env is then
            unchanged.
        """
        if self.student is None:
            raise RuntimeError("call reset() (with the episode's seed) before load_state_dict()")
        keys = {"settings", "np_random", "iteration", "train_data", "data", "forest", "val_cells", "test_cells", "errors", "student"}
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(f"expected a DataGen env state with keys {sorted(keys)}, got {sorted(state) if isinstance(state, dict) else state!r}")
        if state["settings"] != self.settings():
            raise ValueError(f"the state is of an env with settings {state['settings']}, this one has {self.settings()}")
        iteration = state["iteration"]
        if type(iteration) is not int or not 0 <= iteration <= self.iterations:
            raise ValueError(f"expected an iteration in 0..{self.iterations}, got {iteration!r}")
        d, k, m, n = self.domain, *self._shape
        data = _array(state["data"], (k, n), "data")
        val, test = (_array(state[key], (k, m, n), key) for key in ("val_cells", "test_cells"))
        if np.any(data < 0) or not all(np.all((c >= 0) & (c <= 1)) for c in (val, test)):
            raise ValueError("expected non-negative data counts and accuracies in [0, 1]")
        errors = state["errors"]
        if not isinstance(errors, list) or len(errors) > self.max_errors or not all(isinstance(e, str) for e in errors):
            raise ValueError(f"expected at most {self.max_errors} error texts")
        train_data = examples_from_state(state["train_data"], d)
        forest = SkillForest(d, self.max_subskills, self.proposer)
        forest.trees = _trees(state["forest"], k, self.max_subskills)
        load_generator_state(np.random.Generator(type(self.np_random.bit_generator)()), state["np_random"], "the env's generator")
        self.student.load_state_dict(state["student"])  # checks everything before it changes anything
        load_generator_state(self.np_random, state["np_random"], "the env's generator")
        self.iteration, self.train_data, self._data, self.forest = iteration, train_data, data, forest
        self._val_cells, self._test_cells, self._errors = val, test, list(errors)

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
            "subskills": tuple(tuple(n.name for n in tree) for tree in self.forest.trees), **self.forest.arrays(),
            "skill_accuracy": f32(self._val_cells.mean(axis=(1, 2))), "iteration": self.iteration,
        }
