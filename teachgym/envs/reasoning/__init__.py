"""Reasoning-RL task pools (SEC-style): procedurally generated problems with verifiable answers.

Importing this package registers, one prompt per episode (``max_episode_steps=1``):

- ``teachgym/Reasoning-Arithmetic-v0``, ``teachgym/Reasoning-Countdown-v0``,
  ``teachgym/Reasoning-Sort-v0``: one family, task space ``Discrete(train_levels)``;
- ``teachgym/Reasoning-Mix-v0``: all three, task space ``MultiDiscrete([3, train_levels])``
  (family x level), the categories of the ``teachgym bench reasoning`` suite;
- ``teachgym/ReasoningGym-v0``: reasoning-gym's generators (``tasks=[...]``) x difficulty levels
  (``levels=``), :class:`~teachgym.envs.reasoning.rgym.ReasoningGymEnv` (needs the ``reasoning``
  extra; reasoning-gym is imported only when the env is built).

Keyword arguments of ``gym.make`` go to :class:`ReasoningEnv` (``train_levels``, ``test_levels``,
``pool_size``, ``test_size``, ``seed``).
"""

import gymnasium as gym

from teachgym.envs.reasoning.env import PoolEnv, ReasoningEnv
from teachgym.envs.reasoning.problems import FAMILIES, Problem, ProblemFamily, evaluate, get_family
from teachgym.envs.reasoning.rgym import (  # imports reasoning-gym only when used
    ReasoningGymEnv,
    pool_dataset,
    score_row,
)

ENV_IDS = {
    "teachgym/Reasoning-Arithmetic-v0": ("arithmetic",),
    "teachgym/Reasoning-Countdown-v0": ("countdown",),
    "teachgym/Reasoning-Sort-v0": ("sort",),
    "teachgym/Reasoning-Mix-v0": ("arithmetic", "countdown", "sort"),
}

for _id, _families in ENV_IDS.items():
    if _id not in gym.registry:  # importlib.reload must not warn about re-registering
        gym.register(
            id=_id,
            entry_point="teachgym.envs.reasoning.env:ReasoningEnv",
            max_episode_steps=1,
            kwargs={"families": _families},
        )
if "teachgym/ReasoningGym-v0" not in gym.registry:
    gym.register(id="teachgym/ReasoningGym-v0", entry_point="teachgym.envs.reasoning.rgym:ReasoningGymEnv",
                 max_episode_steps=1)

__all__ = ["ENV_IDS", "FAMILIES", "PoolEnv", "Problem", "ProblemFamily", "ReasoningEnv", "ReasoningGymEnv", "evaluate",
           "get_family", "pool_dataset", "score_row"]
