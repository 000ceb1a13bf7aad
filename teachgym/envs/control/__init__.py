"""Contextual classic control: gymnasium's own envs with their physics set per task.

Importing this package registers, under the originals' time limits:

- ``teachgym/ContextualCartPole-v0``: pole length, pole mass, cart mass, gravity, push force;
- ``teachgym/ContextualPendulum-v0``: length, mass, gravity;
- ``teachgym/ContextualMountainCarContinuous-v0``: engine power, goal position;
- ``teachgym/ContextualLunarLander-v0`` (continuous actions): gravity, wind, turbulence.

All four are one class, :class:`ContextualControlEnv`, reading a :class:`ControlFamily` table
(:data:`FAMILIES`). ``gym.make(id, context_obs=True)`` appends the normalised task to the
observation; ``gym.make(id, task=...)`` changes the task of resets that pass none;
``gym.make(id, task_low={...}, task_high={...})`` changes the task ranges (the test set is the
shipped one mapped into them; see :func:`with_task_ranges`).
"""

import gymnasium as gym

from teachgym.envs.control.contextual import (
    ContextualControlEnv,
    ControlFamily,
    GoalReached,
    MeanOfLastAtLeast,
    ReturnAtLeast,
    SuccessCriterion,
    TaskDimension,
    design_test_set,
    load_test_set,
    rescale_test_set,
    with_task_ranges,
)
from teachgym.envs.control.families import FAMILIES, get_family

for _name, _family in FAMILIES.items():
    if _family.env_id not in gym.registry:  # importlib.reload must not warn about re-registering
        _original = gym.spec(_family.base_id)
        gym.register(
            id=_family.env_id,
            entry_point="teachgym.envs.control.contextual:ContextualControlEnv",
            max_episode_steps=_original.max_episode_steps,
            reward_threshold=_original.reward_threshold,
            kwargs={"family": _name},
        )

__all__ = [
    "FAMILIES",
    "ContextualControlEnv",
    "ControlFamily",
    "GoalReached",
    "MeanOfLastAtLeast",
    "ReturnAtLeast",
    "SuccessCriterion",
    "TaskDimension",
    "design_test_set",
    "get_family",
    "load_test_set",
    "rescale_test_set",
    "with_task_ranges",
]
