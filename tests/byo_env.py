"""A user's own env, as `teachgym train --env byo_env:ByoLine-v0` finds it: importing this module
registers it with gymnasium. It has what teachgym needs (``task_space`` and ``task_names`` on the
env, the task from ``reset(options={"task": ...})``, ``info["success"]`` at the end) and no
``test_set()``, so a run needs ``--test-set``. Its actions are discrete: ``--algo auto`` is PPO.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ByoLine(gym.Env):
    """Walk a point along a line to ``target`` in 8 steps (actions: left, stay, right); ``noise``
    jitters each move. Success: ending within 0.25 of the target."""

    task_names = ("target", "noise")
    score_range = (-20.0, 0.0)  # the returns of 8 steps, each minus the distance to the target

    def __init__(self, episode_steps: int = 8) -> None:
        self.task_space = spaces.Box(np.array([0.0, 0.0]), np.array([2.0, 0.5]), dtype=np.float64)
        self.observation_space = spaces.Box(-10.0, 10.0, (2,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.episode_steps = episode_steps
        self.task = np.array([1.0, 0.0])
        self.position = 0.0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options and "task" in options:
            self.task = np.asarray(options["task"], dtype=np.float64)
        self.position, self.t = 0.0, 0
        return self._obs(), {"task": self.task.copy()}

    def _obs(self) -> np.ndarray:
        return np.array([self.position, self.task[0]], dtype=np.float32)

    def step(self, action: Any):
        self.position += 0.25 * (int(action) - 1) + self.task[1] * float(self.np_random.normal())
        self.t += 1
        distance = abs(self.position - self.task[0])
        done = self.t >= self.episode_steps
        info: dict[str, Any] = {"task": self.task.copy()}
        if done:
            info["success"] = bool(distance < 0.25)
        return self._obs(), -distance, False, done, info


gym.register("ByoLine-v0", entry_point=ByoLine, max_episode_steps=8)
