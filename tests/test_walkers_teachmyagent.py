"""Stump Tracks against TeachMyAgent's own code: 54 recorded episodes replayed step for step.

The recordings (``../shared/teachmyagent/trajectories/``, see its README) were made with
TeachMyAgent's ``ParametricContinuousStumpTracks``: 3 bodies x 6 tasks x 3 runs, with the
realised terrain, the start push, the actions and everything the original returned. Each
episode is rebuilt here from its recorded level (``reset(options={"level": ...})``, no RNG) and
its actions replayed; observations, rewards, ends and the five body parts' states must equal the
recording to float32 rounding at every step.

One deliberate difference is mapped, not hidden: teachgym's foot-contact observation is 1 while
the foot touches any terrain fixture (a count of contacts), TeachMyAgent's is the last contact
event (set on a begin, cleared on any end, so it reads 0 while a foot still stands on a second
fixture). The test records the original's flag with a listener that does what TeachMyAgent's
does and checks that flag against the recording, and teachgym's observation against the count.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import teachgym  # noqa: F401  (registers the envs)
from teachgym.envs.walkers import env as walker_env
from teachgym.envs.walkers.env import TERRAIN_HEIGHT, TERRAIN_STEP
from teachgym.envs.walkers.tracks import stump_level, stump_passes

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "teachmyagent"
TRAJECTORIES = SHARED / "trajectories"
FILES = sorted(TRAJECTORIES.glob("stumps_*.npz")) if TRAJECTORIES.is_dir() else []
pytestmark = pytest.mark.skipif(
    not FILES, reason=f"TeachMyAgent's reference data is not at {SHARED} (clone shared/ beside the repository)"
)
STUMPS = "teachgym/StumpTracks-v0"
FEET = (8, 13)  # the two lower legs' contact flags in the 24-value observation
# float32 rounding: teachgym's observation is float32, TeachMyAgent's the float64 of the same
# Box2D (float32) values, so the two may differ by half a float32 step of the value.
RTOL, ATOL = 2.0**-23, 1e-7


def recorded_level(z: np.lib.npyio.NpzFile) -> dict:
    """The recorded terrain and push as a level (what the original built, corner by corner)."""
    stumps = [[[a, bottom], [b, bottom], [b, top], [a, top]]
              for a, b, bottom, top in zip(z["stump_x"], z["stump_x_right"], z["stump_y_bottom"], z["stump_y_top"])]
    return {"task": z["task"].tolist(), "ground": np.stack([z["ground_x"], z["ground_y"]], axis=1).tolist(),
            "obstacles": stumps, "push": float(z["init_push_force"])}


class OriginalFlags(walker_env._Contacts):
    """teachgym's contact counter that also keeps TeachMyAgent's flag (the last begin / end)."""

    def __init__(self, watched, critical):
        super().__init__(watched, critical)
        self.flag = [0] * len(watched)

    def BeginContact(self, contact):  # noqa: N802
        super().BeginContact(contact)
        for k in (contact.fixtureA.userData, contact.fixtureB.userData):
            if k is not None:
                self.flag[k] = 1

    def EndContact(self, contact):  # noqa: N802
        super().EndContact(contact)
        for k in (contact.fixtureA.userData, contact.fixtureB.userData):
            if k is not None:
                self.flag[k] = 0


def body_states(env) -> np.ndarray:
    """x, y, angle, vx, vy, omega of each part, in the recording's order (hull, then the legs)."""
    return np.array([[b.position.x, b.position.y, b.angle, b.linearVelocity.x, b.linearVelocity.y,
                      b.angularVelocity] for b in env._bodies])


def test_all_54_recorded_episodes_are_there():
    assert len(FILES) == 54
    bodies = {str(np.load(f)["body"]) for f in FILES}
    assert bodies == {"classic_bipedal", "small_bipedal", "old_classic_bipedal"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_stump_generator_makes_teachmyagents_terrain_from_the_same_draws(path):
    z = np.load(path)
    mean, spacing = z["task"]
    passes = stump_passes(spacing, 20 * TERRAIN_STEP)
    level = stump_level(passes, z["stump_height_drawn"])
    stumps = level["obstacles"]
    assert len(stumps) == int(z["n_stumps"])
    # Bit for bit: positions summed pass by pass in float64 as the original does.
    assert np.array_equal(stumps[:, 0, 0], z["stump_x"]) and np.array_equal(stumps[:, 1, 0], z["stump_x_right"])
    assert np.array_equal(stumps[:, 0, 1], z["stump_y_bottom"]) and np.array_equal(stumps[:, 2, 1], z["stump_y_top"])
    assert np.array_equal(level["ground"][:, 0], z["ground_x"]) and np.array_equal(level["ground"][:, 1], z["ground_y"])

    # Box2D stores the same polygons (its own vertex order), the walker starts where the
    # original's did, and weighs the same.
    env = gym.make(STUMPS, body=str(z["body"])).unwrapped
    env.reset(options={"level": recorded_level(z)})
    boxes = np.array([b.fixtures[0].shape.vertices for b in env._terrain[: len(stumps)]])
    assert np.array_equal(boxes.astype(np.float32), z["stump_vertices"].astype(np.float32))
    start_x, start_y = z["init_hull_position"]
    assert np.float32(env._startpad / 2) == np.float32(start_x)
    assert np.float32(TERRAIN_HEIGHT + env._blueprint.stand_height) == np.float32(start_y)
    assert sum(b.mass for b in env._bodies) * 10 == pytest.approx(float(z["walker_weight"]), rel=1e-6)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_replaying_a_recorded_episode_gives_teachmyagents_observations_rewards_and_ends(path, monkeypatch):
    monkeypatch.setattr(walker_env, "_Contacts", OriginalFlags)
    z = np.load(path)
    env = gym.make(STUMPS, body=str(z["body"])).unwrapped
    obs, info = env.reset(options={"level": recorded_level(z)})
    assert np.array_equal(info["task"], z["task"])
    force = tuple(z["external_force"].tolist()) if bool(z["external_force_applied"]) else None
    feet = [m.foot for m in env._blueprint.motors if m.foot >= 0]
    mapped = 0  # steps where teachgym's count and TeachMyAgent's flag read differently

    def check(k: int, obs: np.ndarray) -> None:
        nonlocal mapped
        expected = z["observations"][k]
        where = f"{path.stem}, observation {k}"
        rest = np.setdiff1d(np.arange(24), FEET)
        np.testing.assert_allclose(obs[rest], expected[rest], rtol=RTOL, atol=ATOL, err_msg=where)
        np.testing.assert_allclose(body_states(env), z["body_states"][k], rtol=RTOL, atol=ATOL, err_msg=where)
        flags = [env._contacts.flag[f] for f in feet]
        counts = [env._contacts.touching[f] for f in feet]
        assert flags == expected[list(FEET)].tolist(), where  # the original's flag, as recorded
        assert obs[list(FEET)].tolist() == [float(c > 0) for c in counts], where  # teachgym's: touching
        mapped += flags != [float(c > 0) for c in counts]

    check(0, obs)
    steps = len(z["actions"])
    for k, action in enumerate(z["actions"]):
        if force is not None:  # the recording's push toward the stumps, before every step
            env._head.ApplyForceToCenter(force, True)
        obs, reward, terminated, truncated, _ = env.step(action)
        check(k + 1, obs)
        assert reward == pytest.approx(z["rewards"][k], rel=1e-9, abs=1e-9), f"{path.stem}, reward {k}"
        assert terminated == z["terminated"][k] and not truncated, f"{path.stem}, step {k}"
        assert env._contacts.fallen == z["head_contact"][k], f"{path.stem}, step {k}"
    assert terminated or steps == 400  # the recording ends where the original's episode did
    assert mapped <= steps // 20  # a foot on two fixtures at once is rare


def test_a_level_read_from_an_episode_replays_it_exactly_through_json():
    """``level()`` is plain JSON, and a reset with it repeats the episode it was read from."""
    env = gym.make(STUMPS, body="classic_bipedal").unwrapped
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (150, 4))

    def run():
        out = []
        for a in actions:
            obs, reward, term, _, _ = env.step(a)
            out.append(np.append(obs, reward))
            if term:
                break
        return np.array(out)

    first_obs, _ = env.reset(seed=3, options={"task": [2.0, 1.0]})
    first = run()
    level = json.loads(json.dumps(env.level()))
    env.reset(seed=4, options={"task": [0.0, 6.0]})  # another episode in between
    obs, info = env.reset(options={"level": level})
    assert np.array_equal(info["task"], [2.0, 1.0]) and np.array_equal(obs, first_obs)
    assert np.array_equal(run(), first)
    assert json.loads(json.dumps(env.level())) == level
