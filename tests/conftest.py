"""Shared test helpers: a small contextual env and space strategies."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import strategies as st

import teachgym
from teachgym.students.skills import make_skills_student

# Tests that start local Ray clusters run in parallel (pytest -n 2); Ray's per-cluster auth tokens
# then collide in ~/.ray, so the tests' throw-away local clusters go without them.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


class ReachEnv(gym.Env):
    """A 1-D point must reach a goal: the task is (goal distance, step size).

    Small enough for the tests; declares ``task_space``, ``task_names`` and ``score_range``.
    """

    metadata = {"render_modes": []}
    task_names = ("goal", "step_size")
    score_range = (-10.0, 10.0)

    def __init__(self, max_steps: int = 20) -> None:
        self.task_space = spaces.Box(np.array([0.5, 0.05]), np.array([5.0, 0.5]), dtype=np.float64)
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = spaces.Discrete(2)
        self.max_steps = max_steps
        self.task = np.array([1.0, 0.2])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options and "task" in options:
            self.task = np.asarray(options["task"], dtype=np.float64)
        self.pos, self.t = 0.0, 0
        return self._obs(), {"task": self.task}

    def _obs(self):
        return np.array([self.pos, self.task[0]])

    def step(self, action):
        self.pos += self.task[1] if action == 1 else -self.task[1]
        self.t += 1
        reached = self.pos >= self.task[0]
        truncated = self.t >= self.max_steps
        info = {"task": self.task}
        if reached or truncated:
            info["success"] = bool(reached)
        return self._obs(), 1.0 if reached else -0.1, bool(reached), bool(truncated and not reached), info


@pytest.fixture
def reach_env():
    return ReachEnv()


@st.composite
def task_spaces(draw):
    """Random bounded Box, Discrete and MultiDiscrete spaces."""
    kind = draw(st.sampled_from(["box", "discrete", "multidiscrete"]))
    if kind == "box":
        d = draw(st.integers(1, 4))
        low = np.array(draw(st.lists(st.floats(-100, 100), min_size=d, max_size=d)))
        width = np.array(draw(st.lists(st.floats(1e-3, 50), min_size=d, max_size=d)))
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        return spaces.Box(low, low + width, dtype=dtype)
    if kind == "discrete":
        return spaces.Discrete(draw(st.integers(1, 12)), start=draw(st.integers(-5, 5)))
    d = draw(st.integers(1, 3))
    nvec = np.array(draw(st.lists(st.integers(1, 5), min_size=d, max_size=d)))
    start = np.array(draw(st.lists(st.integers(-3, 3), min_size=d, max_size=d)))
    return spaces.MultiDiscrete(nvec, start=start)


def score_streams():
    """Score streams: random, constant, huge, negative."""
    return st.one_of(
        st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
        st.builds(lambda v, n: [v] * n, st.floats(-1e3, 1e3), st.integers(1, 60)),
        st.lists(st.sampled_from([1e15, -1e15, 0.0, 1e-12]), min_size=1, max_size=60),
    )


def drive(teacher, n, rng, binary=False):
    """Sample and update ``n`` episodes with random scores (pass/fail if ``binary``); the tasks."""
    out = []
    for _ in range(n):
        task = teacher.sample()
        out.append(task)
        teacher.update(task, float(rng.random() < 0.5) if binary else float(rng.random()))
    return out


def skills_mastered(name, variant="default", seed=0, episodes=3000, **hparams):
    """Final mastered fraction of a skills student taught by ``name``."""
    student_seed, teacher_seed = np.random.SeedSequence(seed).spawn(2)
    student = make_skills_student(variant, seed=student_seed)
    teacher = teachgym.make_teacher(name, student.task_space, seed=teacher_seed, **hparams)
    for _ in range(episodes):
        task = teacher.sample()
        teacher.update(task, student.train(task))
    return student.mastered_fraction()
