"""Box2D walkers on parametric tracks (teachDeepRL / TeachMyAgent), for gymnasium 1.x.

Importing this package registers ``teachgym/StumpTracks-v0`` and ``teachgym/HexagonTracks-v0``
(2000 steps per episode). Choose the body with ``gym.make(id, body=name)``; names are the keys
of :data:`BODIES`. The task goes through ``reset(options={"task": ...})``, an exact terrain through
``reset(options={"level": env.unwrapped.level()})``; see
:class:`~teachgym.envs.walkers.env.WalkerTrackEnv`. Stump Tracks is built as TeachMyAgent builds
it and replays TeachMyAgent's own episodes step for step (``tests/test_walkers_teachmyagent.py``).
"""

import gymnasium as gym

from teachgym.envs.walkers.bodies import BODIES, BodySpec, Limb, Segment
from teachgym.envs.walkers.env import WalkerTrackEnv
from teachgym.envs.walkers.tracks import HexagonTracksEnv, StumpTracksEnv

MAX_EPISODE_STEPS = 2000

for _id, _entry in (
    ("teachgym/StumpTracks-v0", "teachgym.envs.walkers.tracks:StumpTracksEnv"),
    ("teachgym/HexagonTracks-v0", "teachgym.envs.walkers.tracks:HexagonTracksEnv"),
):
    if _id not in gym.registry:  # importlib.reload must not warn about re-registering
        gym.register(id=_id, entry_point=_entry, max_episode_steps=MAX_EPISODE_STEPS)

__all__ = ["BODIES", "BodySpec", "HexagonTracksEnv", "Limb", "Segment", "StumpTracksEnv", "WalkerTrackEnv"]
