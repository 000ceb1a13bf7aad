"""Run TeachMyAgent's own Stump Tracks and teachgym's side by side, step for step (not a pytest file).

    python tests/teachmyagent_side_by_side.py PATH [BODY ...]

PATH is a checkout of flowersteam/TeachMyAgent (the folder that holds ``TeachMyAgent/``); only its
Stump Tracks env and bodies are imported, with ``gym`` shimmed onto gymnasium. For each body
(default: all of teachgym's walkers), 18 Stump Tracks episodes (6 tasks x (2 seeds + 1 run with
a constant push on the hull toward the stumps)) and 3 Hexagon Tracks episodes: the original
builds its terrain, teachgym is reset with that exact level (ground points, obstacle polygons as
Box2D holds them, start push), both get the same random actions, and every observation, reward
and end is compared (foot-contact flags aside: teachgym's is a count, see
``test_walkers_teachmyagent.py``). TeachMyAgent's hexagons carry no userData, so its contact
listener raises on the first touch of one; hexagon episodes are compared up to that step.
Prints one line per body and exits 1 if any episode diverged.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import gymnasium as gym
import numpy as np

import teachgym  # noqa: F401  (registers the envs)
from teachgym.envs.walkers import BODIES

TASKS = ((0.0, 6.0), (1.5, 3.0), (3.0, 0.5), (0.5, 1.5), (2.25, 4.5), (1.0, 0.0))
TOLERANCE = 1e-5  # float32 rounding is ~1e-7; a divergence grows far past this within steps


def import_original(root: Path):
    """TeachMyAgent's ParametricContinuousStumpTracks, without its package imports (TensorFlow)."""
    gym_shim = types.ModuleType("gym")
    gym_shim.Env, gym_shim.spaces = gym.Env, gym.spaces
    utils = types.ModuleType("gym.utils")
    seeding = types.ModuleType("gym.utils.seeding")
    seeding.np_random = lambda seed=None: (np.random.RandomState(seed), seed)
    utils.seeding, utils.colorize = seeding, lambda text, *args, **kwargs: text
    utils.EzPickle = type("EzPickle", (), {"__init__": lambda self, *args, **kwargs: None})
    gym_shim.utils = utils
    sys.modules.update({"gym": gym_shim, "gym.utils": utils, "gym.utils.seeding": seeding})
    for name in ("TeachMyAgent", "TeachMyAgent.environments", "TeachMyAgent.environments.envs"):
        package = types.ModuleType(name)
        package.__path__ = [str(root.joinpath(*name.split(".")))]
        sys.modules[name] = package
    from TeachMyAgent.environments.envs.parametric_continuous_stump_tracks import (
        ParametricContinuousStumpTracks,
    )

    return ParametricContinuousStumpTracks


class LoggedRandomState(np.random.RandomState):
    """The original env's RNG, keeping its last uniform draw (the start push is the last one)."""

    def uniform(self, *args, **kwargs):
        self.last_uniform = super().uniform(*args, **kwargs)
        return self.last_uniform


def episode(original_cls, body: str, task, seed: int, push: bool, hexagon: bool, steps: int = 300):
    """Worst |observation difference|, first diverging step (None if none), steps compared."""
    original = original_cls(body)
    if hexagon:
        np.random.seed(seed)  # TeachMyAgent's hexagons draw from numpy's global RNG
        original.set_environment(poly_shape=list(task))
    else:
        original.set_environment(stump_height=task[0], obstacle_spacing=task[1])
    original.np_random = LoggedRandomState(seed)
    expected = original.reset()
    obstacles = [b.fixtures[0].shape.vertices for b in reversed(original.terrain)
                 if type(b.fixtures[0].shape).__name__ == "b2PolygonShape"]
    level = {"ground": np.stack([original.terrain_x, original.terrain_y], axis=1), "obstacles": obstacles,
             "push": float(original.np_random.last_uniform)}
    ours = gym.make("teachgym/HexagonTracks-v0" if hexagon else "teachgym/StumpTracks-v0", body=body).unwrapped
    obs, _ = ours.reset(options={"level": level})
    force = sum(b.mass for b in original.walker_body.body_parts) * 10 * np.array([0.4, 0.95])
    rng = np.random.default_rng(seed)
    worst, first = 0.0, None
    reward = expected_reward = 0.0
    done = expected_done = False
    for k in range(steps + 1):
        diff = np.abs(obs.astype(np.float64) - np.asarray(expected))
        diff[diff == 1.0] = 0.0  # a contact flag read as count vs last event
        worst = max(worst, float(diff.max()))
        if first is None and (diff.max() > TOLERANCE or abs(reward - expected_reward) > 1e-4 or done != expected_done):
            first = k
        if k == steps or done or expected_done:
            return worst, first, k
        action = rng.uniform(-1, 1, ours.action_space.shape)
        if push:
            original.walker_body.reference_head_object.ApplyForceToCenter(tuple(force), True)
            ours._head.ApplyForceToCenter(tuple(force), True)
        try:
            expected, expected_reward, expected_done, _ = original.step(action)
        except AttributeError:  # the original's listener met a hexagon (no userData)
            return worst, first, k
        obs, reward, done, _, _ = ours.step(action)


def main(argv: list[str]) -> int:
    if not argv or not (Path(argv[0]) / "TeachMyAgent").is_dir():
        print(__doc__)
        return 2
    original_cls = import_original(Path(argv[0]).resolve())
    diverged = 0
    for body in argv[1:] or list(BODIES):
        runs = [(task, seed, push, False) for task in TASKS for seed, push in ((0, False), (1, False), (0, True))]
        runs += [(np.random.default_rng(seed).uniform(0, 4, 12), seed, push, True)
                 for seed, push in ((0, False), (1, True), (2, True))]
        results = [episode(original_cls, body, *run) for run in runs]
        bad = [run for run, (_, first, _) in zip(runs, results) if first is not None]
        diverged += len(bad)
        print(f"{body}: {len(runs)} episodes, {sum(n for _, _, n in results)} steps compared, "
              f"worst |obs difference| {max(w for w, _, _ in results):.2e}, diverged: {len(bad)}")
    return 1 if diverged else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
