"""The reasoning env: one prompt per episode, a verifiable answer, categories = family x level.

The task space is ``Discrete(train_levels)`` for one family and ``MultiDiscrete([n_families,
train_levels])`` for several; a task is a category. Each category has a finite training pool
(``pool_size`` problems, drawn once from the env's ``seed``), consumed in order: ``reset`` with a
task serves the category's next unused problem, as SEC's batch slots do, and a category whose
pool is used up raises ``ValueError``. The held-out test set (:meth:`ReasoningEnv.test_set`) is
drawn from its own seed, covers ``test_levels`` levels (more than the training levels: the harder
ones are never trained on) and its prompts never appear in a training pool or the supervised
warm-up data (:meth:`ReasoningEnv.warmup_set`).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from teachgym.envs.reasoning.problems import Problem, ProblemFamily, get_family
from teachgym.spaces import Task, TaskSpace, check_option_keys

_CHARSET = string.digits + string.ascii_letters + "+-*,>:= "
_STREAM_POOL, _STREAM_TEST, _STREAM_WARMUP = 0, 1, 2


class PoolEnv(gym.Env):
    """One prompt per episode from finite per-category pools; categories = family x level.

    The base of :class:`ReasoningEnv` and :class:`~teachgym.envs.reasoning.rgym.ReasoningGymEnv`:
    it holds the task space, serves each category's pool in order, keeps the held-out test set and
    runs ``reset`` / ``step``. A subclass calls :meth:`_setup`, sets ``families`` (objects with a
    ``name``) and the observation / action spaces, and fills :meth:`_pool` and
    :meth:`_test_problems` with problems that have ``prompt``, ``answer``, ``family``, ``level``
    and ``reward(answer)``.
    """

    metadata: dict[str, Any] = {"render_modes": []}
    reset_options = ("task",)  # the keys reset reads; any other is refused
    families: tuple[Any, ...]

    def _setup(self, n_families: int, train_levels: int, test_levels: int, pool_size: int, test_size: int,
               seed: int, test_seed: int, names: tuple[str, str], levels_key: str, discrete_if_one: bool) -> None:
        """Check the sizes, build the task space (``names``: its dimensions) and the bookkeeping."""
        for key, value in ((levels_key, train_levels), ("pool_size", pool_size), ("test_size", test_size)):
            if isinstance(value, bool) or not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if isinstance(test_levels, bool) or not (isinstance(test_levels, (int, np.integer)) and test_levels >= train_levels):
            raise ValueError(f"test_levels must be an integer >= {levels_key} ({train_levels}), got {test_levels!r}")
        self.train_levels, self.test_levels = int(train_levels), int(test_levels)
        self.pool_size, self.test_size = int(pool_size), int(test_size)
        self.seed, self.test_seed = int(seed), int(test_seed)
        if n_families == 1 and discrete_if_one:
            self.task_space: spaces.Space = spaces.Discrete(self.train_levels)
            self.task_names: tuple[str, ...] = (names[1],)
        else:
            self.task_space = spaces.MultiDiscrete([n_families, self.train_levels])
            self.task_names = names
        self._tasks = TaskSpace(self.task_space, self.task_names)
        self.score_range = (0.0, 1.0)
        self._test: dict[tuple[int, int], list[Any]] = {}
        self._pools: dict[tuple[int, int], list[Any]] = {}
        self._used = np.zeros((n_families, self.train_levels), dtype=np.int64)
        self._start = np.zeros_like(self._used)  # where each pool's pass began (a seeded reset moves it)
        self._problem: Any = None
        self._task = np.zeros(self._tasks.dim)

    # ----------------------------------------------------------------------- categories
    def category(self, task: Task) -> tuple[int, int]:
        """``(family index, level)`` of a task (``ValueError`` outside the task space)."""
        vector = self._tasks.vector(task)
        return (0, int(vector[0])) if len(vector) == 1 else (int(vector[0]), int(vector[1]))

    def category_name(self, task: Task) -> str:
        """``"countdown/2"`` for the category of ``task``."""
        f, level = self.category(task)
        return f"{self.families[f].name}/{level}"

    def remaining(self, task: Task) -> int:
        """Unused training problems of the category of ``task``."""
        f, level = self.category(task)
        return self.pool_size - int(self._used[f, level])

    def next_problem(self, task: Task) -> Any:
        """The category's next unused training problem.

        Raises
        ------
        ValueError
            If the task is outside the task space, or its category has no problems left.
        """
        f, level = self.category(task)
        used = int(self._used[f, level])
        if used >= self.pool_size:
            raise ValueError(
                f"category {self.families[f].name}/{level} has no problems left: all {self.pool_size} "
                "of its training pool were used; build the env with a larger pool_size"
            )
        problem = self._pool(f, level)[(int(self._start[f, level]) + used) % self.pool_size]
        self._used[f, level] = used + 1
        return problem

    def pool(self, task: Task) -> list[Any]:
        """The whole training pool of the category of ``task`` (in serving order from a fresh env)."""
        return list(self._pool(*self.category(task)))

    # ------------------------------------------------------------------------ data sets
    def test_set(self, levels: Sequence[int] | None = None) -> list[Any]:
        """Held-out problems of every family at ``levels`` (default: all ``test_levels``)."""
        levels = range(self.test_levels) if levels is None else levels
        return [p for f in range(len(self.families)) for level in levels for p in self._test_problems(f, level)]

    def _check_test_level(self, level: Any) -> None:
        if isinstance(level, bool) or not (isinstance(level, (int, np.integer)) and 0 <= level < self.test_levels):
            raise ValueError(f"test levels are 0..{self.test_levels - 1}, got {level!r}")

    def _test_prompts(self, f: int, level: int) -> set[str]:
        return {p.prompt for p in self._test_problems(f, level)} if level < self.test_levels else set()

    def _pool(self, f: int, level: int) -> list[Any]:
        """Override: the category's training pool (the same problems for one seed)."""
        raise NotImplementedError

    def _test_problems(self, f: int, level: int) -> list[Any]:
        """Override: the held-out problems of (family, level)."""
        raise NotImplementedError

    # -------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        check_option_keys(options, self.reset_options, type(self).__name__)
        super().reset(seed=seed)
        if seed is not None:  # every pool starts over, each from a point the seed draws
            self._start = self.np_random.integers(self.pool_size, size=self._used.shape)
            self._used[:] = 0
        task = (options or {}).get("task")
        if task is None:
            task = self._tasks.from_index(int(self.np_random.integers(self._tasks.n_tasks)))
        self._task = self._tasks.vector(task).copy()
        self._problem = self.next_problem(task)
        return self._problem.prompt, self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._problem is None:
            raise RuntimeError("call reset() before step()")
        if not isinstance(action, str):
            raise ValueError(f"the action is the answer text (a str), got {type(action).__name__}: {action!r}")
        reward = self._problem.reward(action)
        info = {**self._info(), "success": reward == 1.0, "score": reward, "answer": self._problem.answer}
        return self._problem.prompt, reward, True, False, info

    def _info(self) -> dict[str, Any]:
        assert self._problem is not None
        return {"task": self._tasks.task(self._task), "family": self._problem.family, "level": self._problem.level}


class ReasoningEnv(PoolEnv):
    """Procedurally generated reasoning problems with exact-answer rewards.

    Parameters
    ----------
    families
        Names of problem families (see :data:`~teachgym.envs.reasoning.problems.FAMILIES`).
    train_levels
        Levels 0..train_levels-1 form the task space (the training categories).
    test_levels
        Levels of the held-out test set (``>= train_levels``).
    pool_size
        Training problems per category.
    test_size
        Test problems per (family, level).
    seed
        Seed of the training pools (the episode RNG is seeded by ``reset(seed=...)``).
    test_seed
        Seed of the test set (fixed by default: every run is scored on the same problems).

    Notes
    -----
    ``reset(options={"task": t})`` serves the next unused problem of category ``t``; without a
    task the category is drawn uniformly. A seeded ``reset(seed=...)`` starts every pool over
    from a point that seed draws (going round to the pool's start), so a seed fixes the episodes
    that follow (gymnasium's contract) and wrappers that seed every episode still see the whole
    pool. The observation is the prompt (``spaces.Text``), the
    action the answer text; ``step`` returns reward 1.0 (correct) or 0.0, terminates, and its info
    carries ``success``, ``score`` (the reward), ``task`` and ``answer`` (a reference answer).
    """

    def __init__(
        self,
        families: str | Sequence[str] = ("arithmetic", "countdown", "sort"),
        train_levels: int = 4,
        test_levels: int = 6,
        pool_size: int = 1000,
        test_size: int = 50,
        seed: int = 0,
        test_seed: int = 12345,
    ) -> None:
        names = (families,) if isinstance(families, str) else tuple(families)
        if not names:
            raise ValueError("expected at least one problem family")
        self.families: tuple[ProblemFamily, ...] = tuple(get_family(n) for n in names)
        self._setup(len(self.families), train_levels, test_levels, pool_size, test_size, seed, test_seed,
                    ("family", "level"), "train_levels", discrete_if_one=True)
        self.observation_space = spaces.Text(max_length=64, charset=_CHARSET)
        self.action_space = spaces.Text(max_length=32, min_length=0, charset=_CHARSET)

    # ------------------------------------------------------------------------ data sets
    def warmup_set(self, n: int, level: int = 0) -> list[Problem]:
        """``n`` problems of ``level`` per family for the supervised warm-up (not from the pools)."""
        out = []
        for f in range(len(self.families)):
            rng = np.random.default_rng([self.seed, _STREAM_WARMUP, f, level])
            out += self._draw(f, level, n, rng, exclude=self._test_prompts(f, level))
        return out

    def _test_problems(self, f: int, level: int) -> list[Problem]:
        self._check_test_level(level)
        if (f, level) not in self._test:
            rng = np.random.default_rng([self.test_seed, _STREAM_TEST, f, level])
            self._test[f, level] = [self.families[f].generate(rng, level) for _ in range(self.test_size)]
        return self._test[f, level]

    def _pool(self, f: int, level: int) -> list[Problem]:
        """The category's training pool, drawn on first use (the same problems for one seed)."""
        if (f, level) not in self._pools:
            rng = np.random.default_rng([self.seed, _STREAM_POOL, f, level])
            self._pools[f, level] = self._draw(f, level, self.pool_size, rng, exclude=self._test_prompts(f, level))
        return self._pools[f, level]

    def _draw(self, f: int, level: int, n: int, rng: np.random.Generator, exclude: set[str]) -> list[Problem]:
        """``n`` problems whose prompts are not in ``exclude`` (repeats among them are allowed)."""
        out: list[Problem] = []
        for _ in range(1000 * n):
            problem = self.families[f].generate(rng, level)
            if problem.prompt not in exclude:
                out.append(problem)
                if len(out) == n:
                    return out
        raise ValueError(
            f"{self.families[f].name}/{level}: could not draw {n} problems outside the test set; "
            "use a smaller test_size"
        )
