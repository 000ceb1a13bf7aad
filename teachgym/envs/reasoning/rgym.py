"""reasoning-gym task pools: its procedural generators as categories (generator x difficulty level).

reasoning-gym (Stojanovski et al., 2025; PyPI ``reasoning-gym``, Apache-2.0) has 100+ dataset
generators with verifiers (``score_answer``) and, for most of them, a curriculum: a list of
attributes (number of terms, digits, ...) with one value per difficulty level. Level ``k`` of a
generator here is that curriculum at global level ``k`` (``set_global_level(k)``: each attribute at
its ``k``-th value, or its last when it has fewer), turned into a dataset config by reasoning-gym's
own ``generate_configuration``; ``level_mode`` picks how a range attribute reads level ``k``:
``"inclusive"`` (reasoning-gym's default: from the easiest value up to the ``k``-th) or
``"upper_bound"`` (the ``k``-th value only, so levels do not overlap).

:class:`ReasoningGymEnv` has the interface of :class:`~teachgym.envs.reasoning.ReasoningEnv`
(task space ``MultiDiscrete([generators, levels])``, finite training pools served in order, a
held-out test set with harder levels, a warm-up set), so the ``reasoning`` suite runs on it
(``teachgym bench reasoning --source reasoning-gym``). :func:`pool_dataset` gives the same pools as
rows (``prompt``, ``answer``, ``category`` = ``"generator/level"``, ...) for a trainer that wants a
dataset, e.g. TRL's ``GRPOTrainer`` with a category-level curriculum.

Rewards come from the generator's ``score_answer``. Some verifiers give partial credit (an answer
that contains the reference scores ``len(reference) / len(answer)``); by default the reward is
1.0 only when the verifier gives full marks and 0.0 otherwise, so pass rates are pass rates;
``partial_credit=True`` passes the verifier's score through. Every pool is drawn from seeds derived
from the env's ``seed``, the generator's name and the level (reasoning-gym seeds each item with
``Random(seed + index)``), so one seed gives the same problems on every machine.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.envs.reasoning.env import PoolEnv
from teachgym.spaces import TaskSpace

#: Generators with short answers and the problem at the end of the prompt (a char-level student
#: keeps a long prompt's end). Measured with the small GRPO student (docs/results/reasoning_gym):
#: 300 warm-up steps on level 0 reach 95-100 % on spell_backward/0 but 0-15 % on the arithmetic
#: ones, and 100 GRPO steps of 8 prompts move no held-out accuracy beyond noise.
DEFAULT_TASKS = ("chain_sum", "basic_arithmetic", "spell_backward")
LEVEL_MODES = ("inclusive", "upper_bound")
_STREAM_POOL, _STREAM_TEST, _STREAM_WARMUP = 0, 1, 2
# Any character up to CJK punctuation: reasoning-gym prompts hold "×", "→", box drawing, ...
_CHARSET = "\t\n" + "".join(chr(c) for c in range(32, 0x3000))
_MAX_TEXT = 16_384


def _reasoning_gym() -> Any:
    try:
        import reasoning_gym
        from reasoning_gym import factory
    except ImportError as err:  # an optional dependency: say which extra brings it
        raise ImportError(
            "the reasoning-gym pools need the reasoning-gym package: pip install 'teachgym[reasoning]'"
        ) from err
    return reasoning_gym, factory


@dataclass(frozen=True, eq=False)
class RGProblem:
    """One reasoning-gym item: prompt, reference answer and what its verifier needs.

    ``family`` is the generator's name and ``level`` its difficulty level (the names
    :class:`~teachgym.envs.reasoning.Problem` uses, so the reasoning suite reads both alike).
    """

    family: str
    level: int
    prompt: str
    answer: str
    entry: dict[str, Any] = field(repr=False)
    scorer: Callable[[str | None, dict[str, Any]], float] = field(repr=False)
    partial_credit: bool = False

    def score(self, answer: str) -> float:
        """The verifier's score in [0, 1] (``ValueError`` if it returns anything else); the answer is
        model output, cut at 16,384 characters before any verifier parses it."""
        value = self.scorer(answer[:_MAX_TEXT], self.entry)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{self.family}'s score_answer returned {value!r}; expected a number in [0, 1]")
        return float(value)

    def reward(self, answer: str) -> float:
        """1.0 for full marks, else 0.0; the verifier's score itself with ``partial_credit``."""
        value = self.score(answer)
        return value if self.partial_credit else float(value >= 1.0)


class ReasoningGymEnv(PoolEnv):
    """reasoning-gym generators as a task space of (generator, difficulty level) categories.

    Parameters
    ----------
    tasks
        reasoning-gym dataset names (each must have a curriculum in reasoning-gym).
    levels
        Training levels 0..levels-1 form the task space.
    test_levels
        Levels of the held-out test set (``>= levels``; the harder ones are never trained on).
        Every generator needs that many curriculum levels.
    pool_size
        Training problems per category.
    test_size
        Test problems per (generator, level).
    seed
        Seed of the training pools and the warm-up set.
    test_seed
        Seed of the test set (fixed by default: every run is scored on the same problems).
    level_mode
        How a range attribute reads a level: ``"inclusive"`` or ``"upper_bound"`` (module docstring).
    partial_credit
        Reward = the verifier's score instead of full marks or nothing.

    Notes
    -----
    As :class:`~teachgym.envs.reasoning.ReasoningEnv` (the shared
    :class:`~teachgym.envs.reasoning.env.PoolEnv`): ``reset(options={"task": t})`` serves the next
    unused problem of category ``t`` (a category whose pool is used up raises ``ValueError``);
    without a task the category is drawn uniformly. A seeded reset starts every pool over from a
    point the seed draws. The observation is the prompt, the action the answer text; ``step``
    terminates with the reward, and its info carries ``success`` (full marks), ``score`` (the
    reward), ``task``, ``family``, ``level`` and ``answer``. The task space is
    ``MultiDiscrete([generators, levels])`` even for one generator.
    """

    def __init__(
        self,
        tasks: str | Sequence[str] = DEFAULT_TASKS,
        levels: int = 3,
        test_levels: int = 4,
        pool_size: int = 1000,
        test_size: int = 50,
        seed: int = 0,
        test_seed: int = 12345,
        level_mode: str = "inclusive",
        partial_credit: bool = False,
    ) -> None:
        _, factory = _reasoning_gym()
        names = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"expected at least one reasoning-gym dataset name, each once; got {names!r}")
        if level_mode not in LEVEL_MODES:
            raise ValueError(f"level_mode must be one of {LEVEL_MODES}, got {level_mode!r}")
        self._setup(len(names), levels, test_levels, pool_size, test_size, seed, test_seed, ("generator", "level"),
                    "levels", discrete_if_one=False)
        for name in names:
            if name not in factory.DATASETS:
                raise ValueError(f"unknown reasoning-gym dataset {name!r}; expected one of {sorted(factory.DATASETS)}")
            if name not in factory.CURRICULA:
                raise ValueError(f"reasoning-gym dataset {name!r} has no curriculum, so no difficulty levels; "
                                 f"pick one of {sorted(factory.CURRICULA)}")
            available = max(len(a.levels) for a in factory.create_curriculum(name).attributes.values())
            if available < self.test_levels:
                raise ValueError(f"reasoning-gym's curriculum of {name!r} has {available} levels; "
                                 f"test_levels={test_levels} needs at least that many")
        self.task_ids = names
        self.families = tuple(_Family(n) for n in names)  # .name, as the reasoning suite reads them
        self.level_mode, self.partial_credit = level_mode, bool(partial_credit)
        self.observation_space = spaces.Text(max_length=_MAX_TEXT, charset=_CHARSET)
        self.action_space = spaces.Text(max_length=_MAX_TEXT, min_length=0, charset=_CHARSET)

    # ---------------------------------------------------------------------- levels
    def config(self, generator: str, level: int) -> Any:
        """reasoning-gym's dataset config of ``generator`` at ``level`` (seed and size unset)."""
        _, factory = _reasoning_gym()
        from reasoning_gym.coaching.base_curriculum import DefaultCurriculumContext, RangeAttributeMode

        curriculum = factory.create_curriculum(generator)
        curriculum.set_global_level(int(level))
        mode = RangeAttributeMode.INCLUSIVE if self.level_mode == "inclusive" else RangeAttributeMode.UPPER_BOUND
        return curriculum.generate_configuration(context=DefaultCurriculumContext(mode=mode))

    def warmup_set(self, n: int, level: int = 0) -> list[RGProblem]:
        """``n`` problems of ``level`` per generator for a supervised warm-up (not from the pools)."""
        out: list[RGProblem] = []
        for g in range(len(self.task_ids)):
            out += self._draw(g, level, n, _STREAM_WARMUP, self.seed, exclude=self._test_prompts(g, level))
        return out

    def _test_problems(self, g: int, level: int) -> list[RGProblem]:
        self._check_test_level(level)
        if (g, level) not in self._test:
            self._test[g, level] = self._draw(g, int(level), self.test_size, _STREAM_TEST, self.test_seed, set())
        return self._test[g, level]

    def _pool(self, g: int, level: int) -> list[RGProblem]:
        if (g, level) not in self._pools:
            self._pools[g, level] = self._draw(g, level, self.pool_size, _STREAM_POOL, self.seed,
                                               exclude=self._test_prompts(g, level))
        return self._pools[g, level]

    def _dataset(self, g: int, level: int, stream: int, seed: int, size: int) -> Any:
        """The generator's dataset at ``level``, seeded from (seed, stream, name, level), ``size`` items."""
        _, factory = _reasoning_gym()
        name = self.task_ids[g]
        config = self.config(name, level)
        config.seed = int(np.random.SeedSequence([seed, stream, zlib.crc32(name.encode()), level]).generate_state(1)[0])
        config.size = size  # some generators make their items up front
        return factory.DATASETS[name][0](config=config)

    def _draw(self, g: int, level: int, n: int, stream: int, seed: int, exclude: set[str]) -> list[RGProblem]:
        """Items 0, 1, ... of the derived dataset whose prompts are not in ``exclude`` (repeats allowed)."""
        size = 4 * n + 64  # room for the items the test set takes out
        dataset, out, name = self._dataset(g, level, stream, seed, size), [], self.task_ids[g]
        for index in range(size):
            entry = dataset[index]
            if entry["question"] in exclude:
                continue
            out.append(RGProblem(name, level, str(entry["question"]), str(entry["answer"]), entry,
                                 dataset.score_answer, self.partial_credit))
            if len(out) == n:
                return out
        raise ValueError(f"{name}/{level}: could not draw {n} problems outside the test set ({len(exclude)} prompts); "
                         "use a smaller test_size")


@dataclass(frozen=True)
class _Family:
    name: str


def pool_dataset(
    tasks: str | Sequence[str] = DEFAULT_TASKS,
    levels: int = 3,
    pool_size: int = 1000,
    seed: int = 0,
    as_hf: bool = False,
    **env_kwargs: Any,
) -> list[dict[str, Any]] | Any:
    """The training pools of :class:`ReasoningGymEnv` as rows, one per problem.

    Columns: ``prompt``, ``answer``, ``category`` (``"generator/level"``, the column a
    category-level curriculum draws from), ``generator``, ``level``, ``category_index`` (the flat
    index of the category in the env's ``MultiDiscrete([generators, levels])`` task space) and
    ``metadata`` (reasoning-gym's metadata as JSON text: generators differ in its fields, and a
    column of one type keeps a ``datasets.Dataset`` schema simple). :func:`score_row` scores an
    answer to a row with the generator's own verifier.

    Parameters
    ----------
    tasks, levels, pool_size, seed, **env_kwargs
        As :class:`ReasoningGymEnv` (``test_levels``, ``test_size``, ``level_mode``, ...): the rows
        are the pools that env serves, the test set held out of them.
    as_hf
        Return a ``datasets.Dataset`` (needs the ``datasets`` package) instead of a list of dicts.
    """
    env = ReasoningGymEnv(tasks, levels, pool_size=pool_size, seed=seed, **env_kwargs)
    space = TaskSpace(env.task_space)
    rows = []
    for g, name in enumerate(env.task_ids):
        for level in range(env.train_levels):
            index = space.index(np.array([g, level]))
            rows += [{"prompt": p.prompt, "answer": p.answer, "category": f"{name}/{level}", "generator": name,
                      "level": level, "category_index": index, "metadata": json.dumps(p.entry.get("metadata", {}),
                                                                                      default=str)}
                     for p in env._pool(g, level)]
    if not as_hf:
        return rows
    try:
        import datasets
    except ImportError as err:
        raise ImportError("as_hf=True needs the datasets package (pip install datasets)") from err
    return datasets.Dataset.from_list(rows)


def score_row(row: dict[str, Any], answer: str, partial_credit: bool = False) -> float:
    """Score ``answer`` to a row of :func:`pool_dataset` with its generator's verifier.

    1.0 for full marks, else 0.0 (the verifier's score with ``partial_credit``). The answer is cut
    at 16,384 characters: it is model output, and verifiers parse it.
    """
    _, factory = _reasoning_gym()
    name = row.get("generator")
    if name not in factory.DATASETS:
        raise ValueError(f"row has no known reasoning-gym generator (got {name!r})")
    if not isinstance(answer, str):
        raise ValueError(f"answer must be a str, got {type(answer).__name__}")
    metadata = row.get("metadata", "{}")
    entry = {"question": row.get("prompt", ""), "answer": str(row["answer"]),
             "metadata": json.loads(metadata) if isinstance(metadata, str) else dict(metadata)}
    problem = RGProblem(name, int(row.get("level", 0)), entry["question"], entry["answer"], entry,
                        factory.get_score_answer_fn(name), partial_credit)
    return problem.reward(answer)
