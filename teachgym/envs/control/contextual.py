"""One gymnasium env class for every contextual classic-control family.

:class:`ContextualControlEnv` holds one instance of a gymnasium original (CartPole, Pendulum, ...)
and, at each ``reset``, writes the task's values onto that instance's physics attributes
(``length``, ``gravity``, ``power``, ...). What a family's task means is data, a
:class:`ControlFamily`: its dimensions (name, range, default, attribute of the original),
success criterion, score range, test-set design and the region proven unlearnable. Nothing is
copied from gymnasium and nothing outside the instance changes, so any number of envs with
different tasks share a process.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from teachgym.spaces import Task, TaskSpace, check_option_keys

# ----------------------------------------------------------------------------- success criteria


class SuccessCriterion:
    """Says, after each step, whether the episode so far counts as a success.

    Read ``info["success"]`` at the episode's last step: it is then the episode's outcome,
    whichever wrapper (a ``TimeLimit`` of any length) ends it.
    """

    def reset(self) -> None:
        """Forget the previous episode."""

    def update(self, obs: np.ndarray, reward: float, terminated: bool) -> bool:
        """Record one step; return whether the episode so far is a success."""
        raise NotImplementedError


class ReturnAtLeast(SuccessCriterion):
    """Success once the episodic return reaches ``threshold``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self._return = 0.0

    def reset(self) -> None:
        self._return = 0.0

    def update(self, obs: np.ndarray, reward: float, terminated: bool) -> bool:
        self._return += float(reward)
        return self._return >= self.threshold


class GoalReached(SuccessCriterion):
    """Success when the original env terminates by reaching its goal (MountainCar's only ending)."""

    def update(self, obs: np.ndarray, reward: float, terminated: bool) -> bool:
        return bool(terminated)


class MeanOfLastAtLeast(SuccessCriterion):
    """Success when the mean of ``obs[index]`` over the last ``window`` steps is ≥ ``threshold``."""

    def __init__(self, index: int, window: int, threshold: float) -> None:
        self.index, self.window, self.threshold = int(index), int(window), float(threshold)
        self._values: deque[float] = deque()
        self._sum = 0.0

    def reset(self) -> None:
        self._values.clear()
        self._sum = 0.0

    def update(self, obs: np.ndarray, reward: float, terminated: bool) -> bool:
        value = float(obs[self.index])
        values = self._values
        values.append(value)
        self._sum += value  # a running sum: O(1) per step; its rounding error is ~1e-14
        if len(values) > self.window:
            self._sum -= values.popleft()
        return len(values) == self.window and self._sum >= self.threshold * self.window


# ----------------------------------------------------------------------------- family description


@dataclass(frozen=True)
class TaskDimension:
    """One task dimension and how it is written onto the original env.

    Setting the task writes ``scale * value`` to the instance attribute ``attribute``.
    ``minimum`` / ``maximum`` bound the physically valid values (a mass cannot be negative, the
    MountainCar goal must lie on the track); with ``open_minimum`` the minimum itself is excluded
    (lengths and masses divide the dynamics). Custom task ranges must stay inside these bounds.
    """

    name: str
    low: float
    high: float
    default: float  # the original env's physics
    attribute: str
    scale: float = 1.0
    doc: str = ""
    minimum: float = -math.inf
    maximum: float = math.inf
    open_minimum: bool = False


@dataclass(frozen=True)
class ControlFamily:
    """Everything that makes one contextual env: the table :class:`ContextualControlEnv` reads.

    Attributes
    ----------
    env_id
        The id registered under ``teachgym/``.
    base_id, base_kwargs
        The gymnasium original, as ``gym.make(base_id, **base_kwargs)``.
    dimensions
        The task dimensions, in task-vector order.
    success
        Factory of the :class:`SuccessCriterion` of one env instance; ``success_doc`` says it.
    score_range
        The span of episodic returns a teacher's score is rescaled from (see
        :func:`teachgym.wrappers.rescale_score`), or ``None``.
    unlearnable
        ``unlearnable(task_dict) -> bool``: True where an argument (``unlearnable_doc``) shows
        that no policy succeeds on more than a small fraction of episodes. False means "not
        proven", not "learnable".
    test_set_file, test_set_design
        The shipped CSV under ``data/`` and how it was made: ``"grid"`` (centres of a 10 x 10 grid)
        or ``"halton"`` (points 1..100 of the Halton sequence in bases 2, 3, 5, ...).
    derive
        Optional ``derive(inner_env)`` recomputing quantities the original caches
        (CartPole's ``total_mass``); called after the attributes are written.
    observation_bounds
        ``{index: (low, high)}`` replacing the original's observation bounds where its physics
        does not keep them (LunarLander's height, angle and speeds leave its declared box).
    """

    env_id: str
    base_id: str
    dimensions: tuple[TaskDimension, ...]
    success: Callable[[], SuccessCriterion]
    success_doc: str
    score_range: tuple[float, float] | None
    unlearnable: Callable[[dict[str, float]], bool]
    unlearnable_doc: str
    test_set_file: str
    test_set_design: str = "halton"
    base_kwargs: Mapping[str, Any] = field(default_factory=dict)
    derive: Callable[[gym.Env], None] | None = None
    observation_bounds: Mapping[int, tuple[float, float]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    @property
    def low(self) -> np.ndarray:
        return np.array([d.low for d in self.dimensions], dtype=np.float64)

    @property
    def high(self) -> np.ndarray:
        return np.array([d.high for d in self.dimensions], dtype=np.float64)

    @property
    def default_task(self) -> np.ndarray:
        return np.array([d.default for d in self.dimensions], dtype=np.float64)


# ----------------------------------------------------------------------------- test sets


def halton(n: int, dim: int, start: int = 1) -> np.ndarray:
    """Points ``start .. start+n-1`` of the Halton sequence in [0, 1)^dim (bases: first primes)."""
    primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    if not 1 <= dim <= len(primes):
        raise ValueError(f"halton supports 1..{len(primes)} dimensions, got {dim}")
    out = np.zeros((n, dim))
    for j, base in enumerate(primes[:dim]):
        for i in range(n):
            k, f, x = start + i, 1.0, 0.0
            while k > 0:  # radical inverse of k in this base
                f /= base
                x += f * (k % base)
                k //= base
            out[i, j] = x
    return out


def design_test_set(family: ControlFamily, n: int = 100) -> np.ndarray:
    """The ``(n, dim)`` test tasks a family's design describes (what its CSV file holds)."""
    low, high = family.low, family.high
    dim = len(low)
    if family.test_set_design == "grid":
        per = round(n ** (1.0 / dim))
        if per**dim != n:
            raise ValueError(f"a grid of {n} tasks in {dim} dimensions is not square")
        centres = (np.arange(per) + 0.5) / per  # cell centres: no task on the (degenerate) bounds
        axes = [lo + centres * (hi - lo) for lo, hi in zip(low, high)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(n, dim)
    if family.test_set_design == "halton":
        return low + halton(n, dim) * (high - low)
    raise ValueError(f"test_set_design must be 'grid' or 'halton', got {family.test_set_design!r}")


def write_test_set(family: ControlFamily, path: str) -> None:
    """Write the family's designed test set as CSV (header: task names) to ``path``."""
    np.savetxt(path, design_test_set(family), delimiter=",", header=",".join(family.names),
               comments="", fmt="%.10g")


def load_test_set(family: ControlFamily) -> np.ndarray:
    """The shipped test set of ``family`` (``(100, dim)`` float64)."""
    source = resources.files("teachgym.envs.control").joinpath("data", family.test_set_file)
    with source.open("r") as handle:
        header = handle.readline().strip().split(",")
        if tuple(header) != family.names:
            raise ValueError(f"{family.test_set_file} has columns {header}, expected {family.names}")
        return np.loadtxt(handle, delimiter=",", ndmin=2)


def _range_values(family: ControlFamily, values: Any, which: str) -> dict[str, float]:
    """``task_low`` / ``task_high`` as ``{name: value}``: a dict by name (some names) or a full vector."""
    if values is None:
        return {}
    if isinstance(values, Mapping):
        unknown = sorted(set(values) - set(family.names))
        if unknown:
            raise ValueError(f"{which} names unknown task dimensions {unknown}; expected some of {family.names}")
        items = dict(values)
    else:
        vector = np.asarray(values, dtype=np.float64)
        if vector.shape != (len(family.names),):
            raise ValueError(f"{which} must be a dict by name or a vector of shape ({len(family.names)},) in "
                             f"the order {family.names}, got shape {vector.shape}")
        items = dict(zip(family.names, vector.tolist()))
    out = {}
    for name, value in items.items():
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{which}[{name!r}] must be a number, got {value!r}") from None
    return out


def with_task_ranges(family: ControlFamily, task_low: Any = None, task_high: Any = None) -> ControlFamily:
    """``family`` with the task ranges changed where ``task_low`` / ``task_high`` say.

    Each is ``None`` (keep every range), a dict ``{name: bound}`` (change only those) or a full
    vector in task order. Each new range must be finite, have ``low < high`` and stay inside the
    dimension's physically valid values (``minimum``, ``maximum``); ``ValueError`` otherwise. A
    default outside its new range is clipped into it (it is then the task of resets that pass none).
    """
    lows, highs = _range_values(family, task_low, "task_low"), _range_values(family, task_high, "task_high")
    if not lows and not highs:
        return family
    dimensions = []
    for d in family.dimensions:
        low, high = lows.get(d.name, d.low), highs.get(d.name, d.high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"the range of {d.name!r} must be finite with low < high, got [{low}, {high}]")
        below = low <= d.minimum if d.open_minimum else low < d.minimum
        if below or high > d.maximum:
            bracket = "(" if d.open_minimum else "["
            raise ValueError(f"the range of {d.name!r} must lie in {bracket}{d.minimum}, {d.maximum}] "
                             f"(physically valid values), got [{low}, {high}]")
        dimensions.append(replace(d, low=low, high=high, default=min(max(d.default, low), high)))
    return replace(family, dimensions=tuple(dimensions))


def rescale_test_set(tasks: np.ndarray, family: ControlFamily, custom: ControlFamily) -> np.ndarray:
    """Map ``family``'s test tasks affinely into ``custom``'s ranges, dimension by dimension.

    Grid centres and Halton points are affine in the ranges, so this is exactly the test set the
    family's design (:func:`design_test_set`) gives for the custom ranges.
    """
    unit = (tasks - family.low) / (family.high - family.low)
    return custom.low + unit * (custom.high - custom.low)


# ----------------------------------------------------------------------------- the env


class ContextualControlEnv(gym.Env):
    """A gymnasium control env whose physics is the task of the episode.

    Parameters
    ----------
    family
        A :class:`ControlFamily` or the name of one in
        :data:`teachgym.envs.control.families.FAMILIES` (registered ids pass it).
    context_obs
        Append the task, normalised to [0, 1] per dimension, to every observation (the
        observation space is widened accordingly).
    task
        The task of episodes whose ``reset`` passes none; default: :attr:`default_task`, the
        original env's physics.
    render_mode
        Passed to the original env.
    task_low, task_high
        Custom task ranges: ``None`` (the family's), a dict ``{name: bound}`` changing some
        dimensions, or a full vector in :attr:`task_names` order (see :func:`with_task_ranges`:
        finite, ``low < high``, inside the physically valid values, else ``ValueError``). The
        task space, the normalised context and :meth:`test_set` follow them; a default task
        outside the new ranges is clipped into them.

    Notes
    -----
    ``reset(options={"task": t})`` sets the episode's task (an array in :attr:`task_names`
    order, or a dict by name); a task outside :attr:`task_space` raises ``ValueError``. A reset
    without a task (or with ``None``) uses the constructor's ``task``. Other options go to the original's reset.
    Every ``info`` carries ``"task"`` (a float64 vector) and ``"success"``: whether the
    episode so far meets the family's criterion (read it at the last step). Observations,
    actions, rewards and terminations are the original's; :attr:`inner` is the original
    instance.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(self, family: str | ControlFamily, context_obs: bool = False, task: Any = None,
                 render_mode: str | None = None, task_low: Any = None, task_high: Any = None) -> None:
        if not isinstance(family, ControlFamily):
            from teachgym.envs.control.families import get_family  # families imports this module

            family = get_family(family)
        self.base_family = family  # the shipped ranges, which its test-set file was designed on
        family = with_task_ranges(family, task_low, task_high)
        self.family = family
        # The original's own class, made as gymnasium makes it, without its wrappers: the
        # TimeLimit and checker come once, around this env, from our registration.
        self.inner = gym.make(family.base_id, render_mode=render_mode, disable_env_checker=True,
                              max_episode_steps=-1, **family.base_kwargs).unwrapped
        self.metadata = dict(self.inner.metadata)
        self.render_mode = render_mode

        self.task_names = family.names
        self.task_space = spaces.Box(family.low, family.high, dtype=np.float64)
        self._tasks = TaskSpace(self.task_space, self.task_names)
        self.default_task = self._checked(family.default_task)
        self._fallback = self.default_task if task is None else self._checked(task)
        self.score_range = family.score_range
        self._writes = tuple((d.attribute, d.scale) for d in family.dimensions)
        self._success = family.success()

        self.context_obs = bool(context_obs)
        self.action_space = self.inner.action_space
        base = self.inner.observation_space
        if family.observation_bounds:  # an observation must lie in the space the env declares
            low, high = base.low.copy(), base.high.copy()
            for index, (lo, hi) in family.observation_bounds.items():
                low[index], high[index] = lo, hi
            base = spaces.Box(low, high, dtype=base.dtype)
        self._obs_size, dim = base.shape[0], self._tasks.dim
        self._obs_template = np.zeros(self._obs_size + dim, dtype=np.float32)
        if self.context_obs:
            self.observation_space = spaces.Box(
                np.concatenate([base.low, np.zeros(dim, np.float32)]),
                np.concatenate([base.high, np.ones(dim, np.float32)]),
                dtype=np.float32,
            )
        else:
            self.observation_space = base
        self._apply(self._fallback)

    # ------------------------------------------------------------------------- tasks
    def _checked(self, task: Task) -> np.ndarray:
        vector = self._tasks.vector(task).copy()  # ValueError naming the expected shape and bounds
        vector.flags.writeable = False  # the task in force changes only through reset
        return vector

    def _apply(self, vector: np.ndarray) -> None:
        """Write ``vector`` onto the original's physics attributes."""
        inner = self.inner
        for (attribute, scale), value in zip(self._writes, vector.tolist()):
            setattr(inner, attribute, scale * value)
        if self.family.derive is not None:
            self.family.derive(inner)
        self._task = vector
        if self.context_obs:
            # Each observation is a copy of this template with the original's part written in:
            # cheaper than np.concatenate at every step.
            self._obs_template[self._obs_size:] = self._tasks.normalise(vector)

    @property
    def task(self) -> np.ndarray:
        """The task in force (read-only float64 vector in :attr:`task_names` order)."""
        return self._task

    def test_set(self) -> np.ndarray:
        """The family's 100 fixed test tasks, shipped with the package (``(100, dim)``).

        With custom ranges, the shipped tasks mapped affinely into them (:func:`rescale_test_set`):
        the same grid or Halton design, drawn on the custom ranges.
        """
        tasks = load_test_set(self.base_family)
        if self.family is self.base_family:
            return tasks
        return rescale_test_set(tasks, self.base_family, self.family)

    def is_unlearnable(self, task: Task) -> bool:
        """Whether ``task`` lies in the family's proven-unlearnable region (see its docs)."""
        return bool(self.family.unlearnable(self._tasks.as_dict(task)))

    # ------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        # Other keys go on to the original env, which may read them: only near misses of "task" are refused.
        check_option_keys(options, ("task",), type(self).__name__, strict=False)
        options = dict(options) if options else {}
        task = options.pop("task", None)
        self._apply(self._fallback if task is None else self._checked(task))
        obs, info = self.inner.reset(seed=seed, options=options or None)
        # The original draws every random number; its generator is this env's generator.
        self._np_random = self.inner.np_random
        self._np_random_seed = self.inner.np_random_seed
        self._success.reset()
        info["task"] = self._task.copy()  # users keep infos: each gets its own array
        return (self._with_context(obs) if self.context_obs else obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.inner.step(action)
        info["task"] = self._task.copy()
        info["success"] = bool(self._success.update(obs, reward, terminated))
        if self.context_obs:
            obs = self._with_context(obs)
        return obs, reward, terminated, truncated, info

    def _with_context(self, obs: np.ndarray) -> np.ndarray:
        out = self._obs_template.copy()
        out[: self._obs_size] = obs
        return out

    def render(self):
        return self.inner.render()

    def close(self) -> None:
        self.inner.close()
