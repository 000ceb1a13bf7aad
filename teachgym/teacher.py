"""The :class:`Teacher` base class and the teacher registry.

A teacher chooses tasks (``sample``) and learns from the scores a student gets on them
(``update``). The base class does validation, seeding, batching and state handling once; a
teacher subclass fills ``_sample``, ``_update`` and, where it has state, ``_state`` / ``_load``.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from teachgym.hints import UNCHECKED, describe_hint, matches_hint, type_hints
from teachgym.spaces import Task, TaskSpace, check_score, did_you_mean

_REGISTRY: dict[str, type[Teacher]] = {}  # filled at import time by @register_teacher only

STATE_VERSION = 1

_PRESET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def register_teacher(name: str):
    """Class decorator: make a teacher available to :func:`make_teacher` under ``name``."""

    def decorate(cls: type[Teacher]) -> type[Teacher]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"teacher name {name!r} is already registered")
        cls.name = name
        for preset, values in cls.PRESETS.items():  # a bad preset fails at import, not in a run
            if not _PRESET_NAME.fullmatch(preset):
                raise ValueError(f"teacher {name!r}: preset name {preset!r} must match {_PRESET_NAME.pattern}")
            check_hparams(cls, values)
        _REGISTRY[name] = cls
        return cls

    return decorate


def list_teachers() -> list[str]:
    """Names of every registered teacher, sorted."""
    return sorted(_REGISTRY)


def teacher_class(name: str) -> type[Teacher]:
    """The class registered under ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown teacher {name!r}{did_you_mean(name, list_teachers())}; expected one of {list_teachers()}"
        ) from None


def make_teacher(
    name: str,
    task_space: spaces.Space | TaskSpace,
    seed: int | np.random.SeedSequence | None = None,
    task_names: Sequence[str] | None = None,
    adapt: bool = False,
    preset: str | None = None,
    **hparams: Any,
) -> Teacher:
    """Build the teacher registered under ``name``.

    Parameters
    ----------
    name
        A name from :func:`list_teachers`, e.g. ``"alp-gmm"``, or a spec as the CLI takes it,
        ``"name[@preset]:key=value+key=value"`` (:func:`parse_teacher_spec`), e.g.
        ``"alp-gmm:fit_rate=100"``; ``preset`` and ``hparams`` override the spec's values.
    task_space
        The space tasks are drawn from.
    seed
        Seed of the teacher's own ``numpy.random.Generator``.
    task_names
        Names of the task dimensions (for dict tasks and plots).
    adapt
        If the teacher does not support the space, run it through an adapter
        (:mod:`teachgym.adapters`: a grid of cells for discrete teachers on a Box, ``cells_per_dim``
        cells per dimension, default 10 while that makes at most 10,000 cells; an embedding for continuous teachers on discrete spaces).
    preset
        A named set of hyper-parameters from the teacher's ``PRESETS`` (e.g. ``"teachmyagent"``);
        ``hparams`` override it.
    **hparams
        Hyper-parameters; anything neither given nor in the preset keeps the class default.

    Raises
    ------
    ValueError
        Unknown teacher, preset or hyper-parameter, unsupported space, invalid hyper-parameter value,
        ``cells_per_dim`` where no cell adapter is used.
    """
    if isinstance(name, str) and ("@" in name or ":" in name):
        name, spec_hparams = parse_teacher_spec(name)
        hparams = {**spec_hparams, **hparams}
    if "cells_per_dim" in hparams:
        # Only the cell adapter (a discrete teacher on a Box, adapt=True) has cells; anywhere
        # else the value would be dropped without effect.
        cls, space = teacher_class(name), TaskSpace(task_space, task_names)
        if not adapt or isinstance(space.space, cls.supported_spaces) or not space.is_box:
            why = ("adapt=False" if not adapt else
                   f"it supports {type(space.space).__name__} spaces itself" if isinstance(space.space, cls.supported_spaces)
                   else "the task space is discrete")
            raise ValueError(
                f"teacher {name!r}: cells_per_dim applies only to a discrete teacher run on a Box through "
                f"the cell adapter (adapt=True); here no adapter is used ({why}): drop cells_per_dim"
            )
    if preset is not None:
        hparams = {**teacher_class(name).preset(preset), **hparams}
    if adapt:
        from teachgym.adapters import adapt_teacher  # the adapters build on this module

        return adapt_teacher(name, task_space, seed, task_names, **hparams)
    cls = teacher_class(name)
    try:  # names and types are checked by Teacher.__new__, ranges by the constructor
        return cls(task_space, seed=seed, task_names=task_names, **hparams)
    except ValueError as err:  # the constructors' range checks: say whose hyper-parameter it is
        if str(err).startswith(f"teacher {name!r}"):
            raise
        raise ValueError(f"teacher {name!r}: {err}") from err


def parse_teacher_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name[@preset]:key=value+key=value"`` into the name and hyper-parameters.

    Values are read as JSON where they parse (numbers, lists, true/false), as strings otherwise;
    e.g. ``"alp-gmm:fit_backend=sklearn+fit_rate=100"``. A preset's values come first and the
    spec's own override them: ``"alp-gmm@teachmyagent:fit_rate=100"`` is TeachMyAgent's settings
    with a fit every 100 episodes.
    """
    if not isinstance(spec, str):
        raise ValueError(f"a teacher spec must be a string like 'name@preset:key=value', got {spec!r}")
    head, _, rest = spec.partition(":")
    name, at, preset = head.partition("@")
    kwargs: dict[str, Any] = dict(teacher_class(name).preset(preset)) if at else {}
    for item in filter(None, rest.split("+")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"teacher spec {spec!r}: expected name:key=value+key=value, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            kwargs[key] = value
    check_hparams(teacher_class(name), kwargs)
    return name, kwargs


def describe_presets(name: str) -> dict[str, dict[str, Any]]:
    """Every preset of the teacher ``name`` with its values (a copy), for listings."""
    cls = teacher_class(name)
    return {preset: cls.preset(preset) for preset in sorted(cls.PRESETS)}


def check_hparams(cls: type[Teacher], hparams: dict[str, Any]) -> None:
    """Check hyper-parameter names and types against the constructor of ``cls``.

    The expected type of each is its annotation in the constructor's signature, or the type
    of its default where it has none. Ranges (a probability in [0, 1], a size >= 1) are the
    constructors' own checks.

    Raises
    ------
    ValueError
        Naming the teacher, the hyper-parameter, the expected type and the value given.
    """
    if not hparams:
        return
    known = cls.default_hparams()
    unknown = sorted(set(hparams) - set(known), key=str)
    if unknown:
        hints = "".join(did_you_mean(k, sorted(known)) for k in unknown)
        raise ValueError(
            f"teacher {cls.name!r}: unknown hyper-parameter(s) {unknown}{hints}; expected some of {sorted(known)}"
        )
    hints = type_hints(cls.__init__)
    for key, value in hparams.items():
        hint = hints.get(key, UNCHECKED)
        if hint is UNCHECKED:
            default = known[key]
            hint = type(default) if type(default) in (bool, int, float, str) else UNCHECKED
        if hint is not UNCHECKED and not matches_hint(value, hint):
            raise ValueError(
                f"teacher {cls.name!r}: hyper-parameter {key} must be {describe_hint(hint)}, got {value!r} "
                f"(default: {known[key]!r})"
            )


class Teacher:
    """Base class of every curriculum teacher.

    Parameters
    ----------
    task_space
        ``gymnasium.spaces`` Box (bounded), Discrete or MultiDiscrete, or a :class:`TaskSpace`.
    seed
        Seed of the teacher's own generator (``self.rng``); the global RNG is never used.
    task_names
        Names of the task dimensions.

    Notes
    -----
    Subclasses store each constructor hyper-parameter as an attribute of the same name, so that
    :meth:`default_hparams` and :meth:`hparams` read them from the signature.
    """

    name: ClassVar[str] = "teacher"
    #: Named sets of hyper-parameters (e.g. ``{"teachmyagent": {...}}``): data, checked against
    #: the constructor's type hints when the class is registered; ``make_teacher(..., preset=)``
    #: and specs ``"name@preset"`` read them.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Space types a teacher accepts.
    supported_spaces: ClassVar[tuple[type, ...]] = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)
    _BASE_ARGS: ClassVar[frozenset] = frozenset({"self", "task_space", "seed", "task_names"})

    def __new__(cls, *args: Any, **kwargs: Any) -> Teacher:
        # The one place hyper-parameter types are checked, before any constructor runs, for
        # make_teacher and direct construction alike (copy and unpickling pass no arguments).
        if args or kwargs:
            signature = inspect.signature(cls.__init__)
            params = signature.parameters
            try:
                given = signature.bind_partial(None, *args, **kwargs).arguments
            except TypeError:
                given = kwargs  # an unknown keyword: check_hparams names it
            plain = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            check_hparams(cls, {k: v for k, v in given.items() if k not in cls._BASE_ARGS
                                and (k not in params or params[k].kind in plain)})
        teacher = super().__new__(cls)
        # The process the teacher belongs to. Unpickling runs __new__ too but then restores the
        # creator's pid from __dict__: a copy carried into another process (pickled into a
        # SubprocVecEnv worker, or forked) knows it is one (see _check_process).
        teacher._owner_pid = os.getpid()
        return teacher

    def __init__(
        self,
        task_space: spaces.Space | TaskSpace,
        seed: int | np.random.SeedSequence | None = None,
        task_names: Sequence[str] | None = None,
    ) -> None:
        self.task_space = TaskSpace(task_space, task_names)
        if not isinstance(self.task_space.space, self.supported_spaces):
            kinds = ", ".join(t.__name__ for t in self.supported_spaces)
            raise ValueError(
                f"teacher {self.name!r} needs a task space of type {kinds}; "
                f"got {self.task_space.space!r}"
            )
        try:
            self.rng = np.random.default_rng(seed)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"seed must be a non-negative integer, a numpy SeedSequence or None, got {seed!r}"
            ) from err
        self.n_updates = 0
        self.value_estimate: Callable[[np.ndarray], np.ndarray] | None = None
        self.difficulty: Callable[[np.ndarray], np.ndarray] | None = None

    def bind(
        self,
        value_estimate: Callable[[np.ndarray], np.ndarray] | None = None,
        difficulty: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """Give the teacher what a student or env knows about tasks; most teachers need neither.

        Parameters
        ----------
        value_estimate
            Maps tasks (canonical form, stacked: ``(n, *shape)``) to the student's expected score
            on each (SPDL uses it; an RL student's value function, a simulated student's
            competence).
        difficulty
            Maps tasks (stacked) to a difficulty in [0, 1], 0 easiest, ``inf`` unfeasible (the
            oracle teacher uses it).
        """
        if value_estimate is not None:
            self.value_estimate = value_estimate
        if difficulty is not None:
            self.difficulty = difficulty

    @property
    def train_on_last_sample(self) -> bool:
        """Whether the student should learn from the episode of the last sampled task.

        True for every teacher but robust PLR, which has new levels played only to score them;
        students and runners then evaluate without a learning step.
        """
        return True

    # ------------------------------------------------------------ hyper-params
    @classmethod
    def preset(cls, name: str) -> dict[str, Any]:
        """The hyper-parameters of preset ``name`` (a deep copy).

        Raises
        ------
        ValueError
            For an unknown preset, listing the known ones.
        """
        if not isinstance(name, str) or name not in cls.PRESETS:
            raise ValueError(
                f"teacher {cls.name!r} has no preset {name!r}{did_you_mean(name, sorted(cls.PRESETS))}; "
                f"expected one of {sorted(cls.PRESETS)}"
            )
        return copy.deepcopy(cls.PRESETS[name])

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        """Hyper-parameters and their defaults, read from the constructor's signature."""
        params = inspect.signature(cls.__init__).parameters
        plain = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return {
            k: p.default for k, p in params.items() if k not in cls._BASE_ARGS and p.kind in plain
        }

    def hparams(self) -> dict[str, Any]:
        """The hyper-parameters in force."""
        return {k: getattr(self, k) for k in self.default_hparams()}

    # ------------------------------------------------------------------ public
    def _check_process(self) -> None:
        """Refuse to run in a process other than the one the teacher was built in.

        A teacher pickled (or forked) into an env worker is a copy: the learner's teacher would
        never see that worker's episodes, and nothing would say so.
        """
        owner = getattr(self, "_owner_pid", None)
        if owner is not None and owner != os.getpid():
            raise RuntimeError(
                f"this {self.name!r} teacher was built in process {owner} and is used in process "
                f"{os.getpid()}: it is a copy (e.g. pickled into a SubprocVecEnv / AsyncVectorEnv worker "
                "inside a CurriculumWrapper), so its updates would never reach the learner's teacher. "
                "Use teachgym.make_vec_env(env_id_or_fn, teacher, n_envs) to give every worker a link to "
                "the one teacher (or teachgym.vector.TeacherServer and its client(i)); to move a teacher "
                "on purpose, build one in the new process and load_state_dict(old.state_dict())"
            )

    def sample(self) -> Task:
        """Draw the next task; always an element of the task space."""
        self._check_process()
        return self._sample()

    def exploit_tasks(self, n: int, seed: int = 0) -> np.ndarray | None:
        """``n`` task vectors from the teacher's non-exploratory distribution; None if it has none.

        The exploration share (ALP-GMM's and Covar-GMM's ``random_task_ratio``) is left out. The
        draws come from a generator made from ``seed``, never from the teacher's own, so asking
        changes nothing in the teacher's samples (the training loop logs them at evaluations).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        unit = self._exploit_unit(np.random.default_rng(seed), int(n))
        return None if unit is None else self.task_space.denormalise(unit)

    def _exploit_unit(self, rng: np.random.Generator, n: int) -> np.ndarray | None:
        """Override: ``n`` points of [0, 1]^dim from the non-exploratory distribution, or None."""
        return None

    def sample_batch(self, n: int) -> np.ndarray:
        """Draw ``n`` tasks, stacked like :meth:`sample`'s: an array of shape ``(n, *shape)``
        (Box, MultiDiscrete: ``(n, dim)`` for a flat space) or ``(n,)`` (Discrete), in the
        task space's dtype; row ``i`` is the ``i``-th draw."""
        self._check_process()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        tasks = [self._sample() for _ in range(int(n))]
        if not tasks:
            return np.empty((0, *self.task_space.shape), dtype=self.task_space.dtype)
        return np.stack([np.asarray(t) for t in tasks])

    def update(self, task: Task, score: float, **info: Any) -> None:
        """Tell the teacher that the student scored ``score`` on ``task``.

        ``info`` carries optional extras a student reports (e.g. ``advantages``); teachers that do
        not use them ignore them.
        """
        self._check_process()
        vector = self.task_space.vector(task)
        value = check_score(score)
        self._update(vector, value, info)
        self.n_updates += 1

    def update_batch(
        self,
        tasks: Sequence[Task],
        scores: Sequence[float],
        infos: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Report a batch of episodes; all are validated before any is applied.

        Batch-wise teachers (SEC, difficulty filtering) close their batch at the end of the call.
        """
        self._check_process()
        infos = [{}] * len(tasks) if infos is None else list(infos)
        if not len(tasks) == len(scores) == len(infos):
            raise ValueError(
                f"got {len(tasks)} tasks, {len(scores)} scores and {len(infos)} infos; expected equal lengths"
            )
        checked = [(self.task_space.vector(t), check_score(s)) for t, s in zip(tasks, scores)]
        for (vector, value), info in zip(checked, infos):
            self._update(vector, value, dict(info))
            self.n_updates += 1
        self._end_batch()

    # ------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: JSON-able values and numpy arrays, no pickle."""
        return {
            "teacher": self.name,
            "version": STATE_VERSION,
            "task_space": self.task_space.describe(),
            "hparams": _jsonable(self.hparams()),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "n_updates": self.n_updates,
            "state": self._state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`.

        Raises
        ------
        ValueError
            If the state belongs to another teacher, space or hyper-parameters, or is malformed;
            the teacher is then unchanged.
        """
        if not isinstance(state, dict) or "teacher" not in state:
            raise ValueError(f"expected a teacher state_dict (a dict with key 'teacher'), got {type(state).__name__}")
        for key, mine in (
            ("teacher", self.name),
            ("version", STATE_VERSION),
            ("task_space", self.task_space.describe()),
            ("hparams", _jsonable(self.hparams())),
        ):
            if _jsonable(state.get(key)) != mine:
                raise ValueError(
                    f"state_dict does not fit this teacher: its {key!r} is {state.get(key)!r}, "
                    f"expected {mine!r}"
                )
        backup = self.state_dict()
        try:
            rng_state = state["rng"]
            if rng_state.get("bit_generator") != self.rng.bit_generator.state["bit_generator"]:
                raise ValueError("state_dict's generator is of another kind")
            self._load(state["state"])
            self.rng.bit_generator.state = copy.deepcopy(rng_state)
            self.n_updates = int(state["n_updates"])
        except Exception as err:
            self._load(backup["state"])
            self.rng.bit_generator.state = backup["rng"]
            self.n_updates = backup["n_updates"]
            raise ValueError(f"malformed teacher state_dict: {err}") from err

    # ------------------------------------------------------------ subclass API
    def _sample(self) -> Task:
        raise NotImplementedError

    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        """Learn from one episode; ``vector`` is the validated flat task."""

    def _end_batch(self) -> None:
        """Called after the episodes of one ``update_batch`` call have been applied."""

    def _state(self) -> dict[str, Any]:
        """Subclass state (JSON-able values and numpy arrays)."""
        return {}

    def _load(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state` returned."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task_space.space!r}, n_updates={self.n_updates})"


def _jsonable(value: Any) -> Any:
    """Plain-Python form of hyper-parameter values, for comparison and JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
