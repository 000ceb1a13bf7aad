"""TeachMyAgent's Parkour (Romac et al. 2021) for gymnasium 1.x.

Importing this package registers ``teachgym/Parkour-v0`` (2000 steps per episode). Choose the
body with ``gym.make("teachgym/Parkour-v0", body=name)``; names are the keys of
:data:`PARKOUR_BODIES` (the walkers of :mod:`teachgym.envs.walkers`, the climbing chimpanzee
and the fish). See :class:`~teachgym.envs.parkour.env.ParkourEnv`. ``cppn_weights=PATH`` reads
TeachMyAgent's trained CPPN from the user's copy of its checkpoint (then the terrains are its own),
``task_dims=8`` gives its 8-D task, and ``test_set(PATH)`` reads the user's copy of its test sets.
"""

import gymnasium as gym

from teachgym.envs.parkour.bodies import PARKOUR_BODIES, ParkourBody
from teachgym.envs.parkour.env import ParkourEnv

MAX_EPISODE_STEPS = 2000

if "teachgym/Parkour-v0" not in gym.registry:  # importlib.reload must not warn about re-registering
    gym.register(id="teachgym/Parkour-v0", entry_point="teachgym.envs.parkour.env:ParkourEnv",
                 max_episode_steps=MAX_EPISODE_STEPS)

__all__ = ["PARKOUR_BODIES", "ParkourBody", "ParkourEnv"]
