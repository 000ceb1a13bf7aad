"""Gymnasium wrappers that put a teacher in charge of an env's task."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from teachgym.spaces import Task, TaskSpace, check_option_keys, space_mismatch
from teachgym.teacher import Teacher


def env_task_space(env: gym.Env) -> TaskSpace:
    """The task space an env declares (``env.unwrapped.task_space`` and ``task_names``).

    Raises
    ------
    ValueError
        If the env declares no ``task_space``.
    """
    base = env.unwrapped
    space = getattr(base, "task_space", None)
    if space is None:
        raise ValueError(
            f"{type(base).__name__} declares no task_space; a curriculum env needs "
            "`task_space` (a gymnasium space) and takes the task through reset(options={'task': ...})"
        )
    return TaskSpace(space, getattr(base, "task_names", None))


def check_same_space(teacher_space: TaskSpace, env_space: TaskSpace) -> None:
    """``ValueError`` naming the difference when a teacher's task space is not the env's."""
    why = space_mismatch(teacher_space.space, env_space.space)
    if why is not None:
        raise ValueError(
            f"the teacher's task space {teacher_space.space!r} differs from the env's {env_space.space!r}: {why}"
        )


def check_reset_options(options: dict[str, Any], env: gym.Env, extra: Iterable[str] = ()) -> None:
    """Refuse reset option keys the env would silently ignore (``{"tasks": ...}`` for ``"task"``).

    An env that declares ``reset_options`` (a tuple of the keys its ``reset`` reads) gets every
    other key refused; for one that does not, only near misses of ``"task"`` and of ``extra``
    are refused (an env of one's own may read keys we cannot know).
    """
    declared = getattr(env.unwrapped, "reset_options", None)
    check_option_keys(options, {"task", *extra, *(declared or ())}, type(env.unwrapped).__name__,
                      strict=declared is not None)


def check_score_range(score_range: Any) -> tuple[float, float] | None:
    """``score_range`` as ``(low, high)`` floats, finite with low < high, or None."""
    if score_range is None:
        return None
    try:
        lo, hi = (float(v) for v in score_range)
    except (TypeError, ValueError):
        raise ValueError(f"score_range must be (low, high), two numbers, got {score_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"score_range must be (low, high) finite with low < high, got {score_range!r}")
    return lo, hi


def rescale_score(value: float, score_range: tuple[float, float] | None) -> float:
    """``value`` mapped from ``score_range`` to [0, 1] (clipped), or unchanged without a range."""
    if score_range is None:
        return float(value)
    lo, hi = score_range
    return float(min(max((value - lo) / (hi - lo), 0.0), 1.0))


class EpisodeReporter(gym.Wrapper):
    """Base of the curriculum wrappers: tracks the return and reports each episode's score once.

    Subclasses set ``_task``, ``_return``, ``_reported`` and ``score_range`` at reset and
    implement :meth:`_report`. An env's ``info["success"]`` at the episode's end goes to the
    teacher too, as ``update(task, score, success=...)`` (GoalGAN and Setter-Solver read it).

    Two mistakes that would starve the teacher in silence are said once per wrapper: scores
    outside [0, 1] without a ``score_range`` (most teachers' thresholds assume [0, 1]), and an
    episode reset before its end reached the wrapper (a ``TimeLimit`` placed outside it).
    """

    _task: Task | None = None
    score_range: tuple[float, float] | None = None
    _warned_scale = False
    _warned_unfinished = False
    _steps = 0
    #: episodes reset before their end was seen, so never reported to the teacher
    n_unfinished = 0

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._task is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._steps += 1
        info.setdefault("task", self._task)
        if (terminated or truncated) and not self._reported:
            self._reported = True
            raw = info["score"] if "score" in info else self._return
            info["teacher_score"] = score = rescale_score(raw, self.score_range)
            if self.score_range is None and not 0.0 <= score <= 1.0 and not self._warned_scale:
                self._warned_scale = True
                warnings.warn(
                    f"{type(self.env.unwrapped).__name__} gave an episode score of {score:.4g} and declares no "
                    "score_range: the teacher gets raw returns, while most teachers' thresholds and "
                    "learning-progress scales assume scores in [0, 1]. Declare score_range = (low, high) on "
                    "the env, or pass score_range=(low, high) to the wrapper, to have scores rescaled to [0, 1]",
                    UserWarning, stacklevel=2)
            self._report(score, {"success": bool(info["success"])} if "success" in info else {})
        return obs, reward, terminated, truncated, info

    def _start_episode(self) -> None:
        """Book-keeping at each reset: notice an episode abandoned before its end was seen."""
        if self._task is not None and not self._reported and self._steps > 0:
            self.n_unfinished += 1
            if not self._warned_unfinished:
                self._warned_unfinished = True
                warnings.warn(
                    f"{type(self).__name__} was reset after {self._steps} steps of an episode whose end it "
                    "never saw, so the teacher got no score for it. If a TimeLimit (or another wrapper that "
                    "ends episodes) is placed outside the curriculum wrapper, its truncation never reaches "
                    "it and the teacher gets no updates at all: put the TimeLimit inside, e.g. "
                    "CurriculumWrapper(gym.make(env_id), teacher) or "
                    "CurriculumWrapper(TimeLimit(MyEnv(), max_episode_steps), teacher)",
                    UserWarning, stacklevel=3)
        self._return, self._reported, self._steps = 0.0, False, 0

    def _report(self, score: float, extras: dict[str, Any]) -> None:
        """Hand the episode's score (and ``extras``, e.g. ``success``) to the teacher."""
        raise NotImplementedError


class CurriculumWrapper(EpisodeReporter):
    """Let a teacher choose the task of every episode and learn from its score.

    At each ``reset`` the wrapper draws ``teacher.sample()`` (unless the caller passes
    ``options={"task": ...}``) and hands it to the env. When the episode ends it reports the score
    to the teacher: ``info["score"]`` where the env gives one, the episodic return otherwise,
    rescaled to [0, 1] when the env declares ``score_range``, with the env's ``info["success"]``
    at that step, when it gives one, as ``success=``. Every ``info`` carries ``info["task"]``.

    Parameters
    ----------
    env
        An env with ``task_space`` (and optionally ``task_names``, ``score_range``) on its
        unwrapped instance, taking the task through ``reset(options={"task": ...})``.
    teacher
        The teacher, in this process; its task space must hold the same tasks as the env's
        (same kind, shape and bounds; a float32 and a float64 Box with equal bounds match).
        For several env processes use :func:`teachgym.make_vec_env`: a teacher pickled into a
        worker is a copy, and refuses to run there.
    update_on_given_tasks
        Whether episodes on a task the caller passed (not sampled) are reported to the teacher.
    score_range
        ``(low, high)`` of the episode scores, rescaled to [0, 1] for the teacher; default: the
        env's ``score_range``, else raw scores (with a warning the first time one leaves [0, 1]).

    Notes
    -----
    A ``TimeLimit`` must be inside the wrapper (``gym.make`` puts it there): one outside ends
    episodes the wrapper never sees end; it warns at the next reset.
    """

    def __init__(self, env: gym.Env, teacher: Teacher, update_on_given_tasks: bool = True,
                 score_range: tuple[float, float] | None = None) -> None:
        super().__init__(env)
        space = env_task_space(env)
        check_same_space(teacher.task_space, space)
        self.teacher = teacher
        self.task_space = space
        self.update_on_given_tasks = update_on_given_tasks
        self.score_range = check_score_range(
            score_range if score_range is not None else getattr(env.unwrapped, "score_range", None))
        self._task: Task | None = None
        self._from_teacher = False
        self._return = 0.0
        self._reported = True
        self.episode_scores: list[float] = []  # scores reported to the teacher, in order

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        check_reset_options(options, self.env)
        self._start_episode()
        if "task" in options:
            self._task = self.task_space.task(self.task_space.vector(options["task"]))
            self._from_teacher = False
        else:
            self._task = self.teacher.sample()
            self._from_teacher = True
        options["task"] = self._task
        obs, info = self.env.reset(seed=seed, options=options)
        info.setdefault("task", self._task)
        return obs, info

    def _report(self, score: float, extras: dict[str, Any]) -> None:
        if self._from_teacher or self.update_on_given_tasks:
            self.teacher.update(self._task, score, **extras)
            self.episode_scores.append(score)

    @property
    def task(self) -> Task | None:
        """The task of the current episode."""
        return self._task

