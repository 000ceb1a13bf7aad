"""Gymnasium wrappers that put a teacher in charge of an env's task."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym

from teachgym.spaces import Task, TaskSpace, describe_space
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
    """

    _task: Task | None = None
    score_range: tuple[float, float] | None = None

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._task is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        info.setdefault("task", self._task)
        if (terminated or truncated) and not self._reported:
            self._reported = True
            raw = info["score"] if "score" in info else self._return
            info["teacher_score"] = score = rescale_score(raw, self.score_range)
            self._report(score, {"success": bool(info["success"])} if "success" in info else {})
        return obs, reward, terminated, truncated, info

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
        The teacher; its task space must equal the env's.
    update_on_given_tasks
        Whether episodes on a task the caller passed (not sampled) are reported to the teacher.
    """

    def __init__(self, env: gym.Env, teacher: Teacher, update_on_given_tasks: bool = True) -> None:
        super().__init__(env)
        space = env_task_space(env)
        if describe_space(space.space) != describe_space(teacher.task_space.space):
            raise ValueError(
                f"the teacher's task space {teacher.task_space.space!r} differs from the env's "
                f"{space.space!r}"
            )
        self.teacher = teacher
        self.task_space = space
        self.update_on_given_tasks = update_on_given_tasks
        self.score_range = getattr(env.unwrapped, "score_range", None)
        self._task: Task | None = None
        self._from_teacher = False
        self._return = 0.0
        self._reported = True
        self.episode_scores: list[float] = []  # scores reported to the teacher, in order

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        if "task" in options:
            self._task = self.task_space.task(self.task_space.vector(options["task"]))
            self._from_teacher = False
        else:
            self._task = self.teacher.sample()
            self._from_teacher = True
        options["task"] = self._task
        obs, info = self.env.reset(seed=seed, options=options)
        self._return, self._reported = 0.0, False
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

