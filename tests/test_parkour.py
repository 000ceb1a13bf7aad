"""Parkour: CPPN terrain, water that drowns walkers and carries fish, creepers that climbers grasp."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import teachgym  # noqa: F401  (registers the envs)
from teachgym.benchmarks.fuzz import fuzz_envs
from teachgym.envs.parkour import PARKOUR_BODIES
from teachgym.envs.parkour.cppn import WEIGHTS_FILE, WEIGHTS_SEED, make_weights
from teachgym.envs.parkour.env import TEST_SETS
from teachgym.envs.parkour.terrain import CEILING_OFFSET, GROUND_LIMIT
from teachgym.envs.parkour.test_sets import draw_test_set
from teachgym.envs.walkers.env import TERRAIN_HEIGHT, TERRAIN_STEP

PARKOUR = "teachgym/Parkour-v0"
CHIMP = "climbing_profile_chimpanzee"
DRY, FLOODED = [-0.15, 0.8, 0.1, 0.0, 0.0, 5.0], [-0.15, 0.8, 0.1, 1.0, 0.0, 5.0]
# (observation, action) sizes: 6 head values, angle and speed per motor, one contact per foot
# (fins, hands), two values per hand, 10 lidar fractions and 10 surface kinds.
SIZES = {"classic_bipedal": (36, 4), "spider": (54, 12), CHIMP: (54, 12), "fish": (38, 4)}
HOLD = np.r_[np.zeros(10), 1.0, 1.0]  # chimpanzee: motors idle, both hands grasping
RELEASE = np.r_[np.zeros(10), -1.0, -1.0]


def make(body, **kwargs):
    return gym.make(PARKOUR, body=body, **kwargs).unwrapped


def tail_beat(t, period=12):
    s = float(np.sign(np.sin(2 * np.pi * t / period)))
    return np.array([s, -s, s, 0.0])


@pytest.mark.parametrize("body", sorted(PARKOUR_BODIES))
def test_every_body_steps_with_finite_observations_inside_the_space(body):
    env = make(body)
    obs, _ = env.reset(seed=0, options={"task": env.task_space.high})
    if body in SIZES:
        assert (obs.shape, env.action_space.shape) == (SIZES[body][:1], SIZES[body][1:])
    for _ in range(20):
        obs, reward, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(reward)


@pytest.mark.parametrize("body", ["classic_bipedal", CHIMP, "fish"])
def test_parkour_passes_gymnasiums_env_checker(body, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with pytest.warns(UserWarning, match="infinity"):  # unbounded angles and speeds, as in TeachMyAgent
        check_env(gym.make(PARKOUR, body=body, render_mode="rgb_array").unwrapped)


def test_the_cppn_input_vector_shapes_ground_and_ceiling_from_a_flat_start():
    with np.load(WEIGHTS_FILE) as shipped:
        assert all(np.array_equal(shipped[k], w) for k, w in make_weights(WEIGHTS_SEED).items())
    env = make("classic_bipedal")
    env.reset(seed=0, options={"task": DRY})
    a = env.terrain
    env.reset(seed=5, options={"task": DRY})
    assert np.array_equal(env.terrain.ground, a.ground)  # the terrain is the task's, not the seed's
    env.reset(seed=0, options={"task": [0.05, 0.6, 0.3, 0.0, 0.0, 5.0]})
    b = env.terrain
    assert np.abs(a.ground - b.ground).max() > 1.0 and np.abs(a.ceiling - b.ceiling).max() > 1.0
    for t in (a, b):
        pad = t.x < env._startpad * TERRAIN_STEP
        assert np.allclose(t.ground[pad], TERRAIN_HEIGHT) and np.allclose(t.ceiling[pad], TERRAIN_HEIGHT + CEILING_OFFSET)
        assert np.all(t.ceiling >= t.ground) and t.ground.std() > 0.5
        assert np.diff(t.x).max() < TERRAIN_STEP + 1e-9 and t.x[-1] > 90


def test_water_level_and_creepers_follow_the_task():
    env = make("classic_bipedal")
    for water, height, spacing in [(0.0, 0.0, 5.0), (0.5, 2.0, 1.0), (1.0, 4.0, 0.0)]:
        env.reset(seed=0, options={"task": [-0.15, 0.8, 0.1, water, height, spacing]})
        t = env.terrain
        assert np.isclose(t.water_y, GROUND_LIMIT + max(0.01, water) * (t.ceiling.max() - GROUND_LIMIT))
        lengths = t.creepers[:, 3] - t.creepers[:, 2]
        assert lengths.min() >= 0.2 - 1e-9
        if height >= 2:
            assert abs(lengths.mean() - height) < 0.05 and 0.05 < lengths.std() < 0.15
        gaps = np.diff(t.creepers[:, 0])
        assert np.all(gaps >= max(spacing, TERRAIN_STEP) - 1e-9) and np.all(gaps <= spacing + 2 * TERRAIN_STEP + 1e-9)
        assert np.allclose(t.creepers[:, 3], np.maximum(np.interp(t.creepers[:, 0], t.x, t.ceiling),
                                                        np.interp(t.creepers[:, 0] + TERRAIN_STEP, t.x, t.ceiling)))


def test_a_walker_drowns_after_600_steps_under_water_and_its_motors_stop():
    env = make("classic_bipedal")
    env.reset(seed=0, options={"task": FLOODED})
    for step in range(1, 602):
        obs, _, term, _, info = env.step(np.ones(4))
        assert obs[4] == 1.0 and not term  # head under water from the start
        assert info["dead"] is (step > 600) and obs[5] == (step > 601)
    twin = make("classic_bipedal")
    twin.reset(seed=0, options={"task": FLOODED})
    for _ in range(601):
        twin.step(np.ones(4))
    for _ in range(30):  # dead: whatever the actions, both bodies just sink the same way
        assert np.array_equal(env.step(np.ones(4))[0], twin.step(-np.ones(4))[0])
    env.reset(seed=0, options={"task": DRY})
    for _ in range(700):
        obs, _, _, _, info = env.step(np.ones(4))
    assert obs[4] == 0.0 and not info["dead"]


def test_the_amphibious_bipedal_lives_in_water_and_out_of_it():
    """TeachMyAgent's amphibian: the classic bipedal's shape at the density of water never drowns
    (the classic bipedal does after 600 steps) and floats where the classic bipedal sinks."""
    heights = {}
    for body in ("amphibious_bipedal", "classic_bipedal"):
        env = make(body)
        assert env.kind == ("amphibian" if body.startswith("amph") else "walker")
        env.reset(seed=0, options={"task": FLOODED})
        for _ in range(701):
            obs, _, term, _, info = env.step(np.zeros(4))
            assert not term
        heights[body] = env._head.position.y
        assert info["dead"] is (body == "classic_bipedal") and obs[4] in (0.0, 1.0)
    assert heights["amphibious_bipedal"] > heights["classic_bipedal"] + 1.0
    amphibian = make("amphibious_bipedal")
    assert amphibian.parkour_body.lidar == "full"
    assert amphibian.test_set().shape == (100, 6)


def test_water_floats_an_idle_fish_that_suffocates_out_of_it():
    env = make("fish")
    env.reset(seed=0, options={"task": FLOODED})
    y0 = env._head.position.y
    for _ in range(300):
        obs, *_ = env.step(np.zeros(4))
    assert env._head.position.y - y0 > 0.5 and obs[4] == 1.0  # density 0.99 in water of 1.0: rises
    env.reset(seed=0, options={"task": DRY})
    for step in range(1, 602):
        obs, _, _, _, info = env.step(np.zeros(4))
        assert info["dead"] is (step > 600)
    assert env._head.position.y < y0  # no water: it fell to the ground


def test_water_drag_slows_a_body_that_moves_through_it():
    def speed_after(task):
        env = make("fish")
        env.reset(seed=0, options={"task": task})
        for part in env._bodies:  # thrown forward at 6 m/s, a metre above the ground
            part.linearVelocity = (6.0, 0.0)
        for _ in range(10):
            env.step(np.zeros(4))
        return env._head.linearVelocity.x

    assert speed_after(FLOODED) < 0.8 * speed_after(DRY) and speed_after(DRY) > 5.9


def test_the_fishs_tail_segments_are_teachmyagents_trapezoids():
    """TeachMyAgent's BODY_P1..P3 (pixels, each centred on its segment, head towards +x): water drag
    and lift act on their slanted edges, which boxes would not have."""
    tail = [((-8, 9), (8, 12), (8, -12), (-8, -9)), ((-8, 4), (8, 9), (8, -9), (-8, -4)),
            ((-4, 2), (4, 4), (4, -4), (-4, -2))]
    env = make("fish")
    parts = env._blueprint.parts
    for k, polygon in zip((1, 2, 3), tail):
        part = parts[k]
        c, s = np.cos(part.angle), np.sin(part.angle)
        world = sorted((round((c * x - s * y) * 30, 4), round((s * x + c * y) * 30, 4))
                       for x, y in part.fixtures[0].shape.vertices)
        assert world == sorted((float(x), float(y)) for x, y in polygon)
        assert part.fixtures[0].density == pytest.approx(0.99) and part.fixtures[0].userData == k
    assert [len(p) for p in env._polygons] == [6, 4, 4, 4, 4]  # what the water acts on
    env.reset(seed=0, options={"task": FLOODED})
    assert env._head.position.y == pytest.approx(TERRAIN_HEIGHT + 9 / 30 + 1, abs=0.01)  # TeachMyAgent's start
    body = env._bodies[1]  # built with the trapezoid: its edges, in the world, rise 9 and 12 px
    heights = sorted(abs((body.transform * v).y - body.position.y) * 30 for v in body.fixtures[0].shape.vertices)
    assert heights == pytest.approx([9, 9, 12, 12], abs=0.5)


def test_a_fish_swims_forward_by_beating_its_tail_and_flops_on_land():
    def distance(task, policy):
        env = make("fish")
        env.reset(seed=0, options={"task": task})
        x0 = env._head.position.x
        for t in range(400):
            env.step(policy(t))
        return env._head.position.x - x0

    assert distance(FLOODED, tail_beat) > 4.0
    assert abs(distance(FLOODED, lambda t: np.zeros(4))) < 0.5
    assert distance(DRY, tail_beat) < 1.0


def test_a_climber_hangs_from_the_ceiling_and_falls_when_it_lets_go():
    env = make(CHIMP)
    obs, _ = env.reset(seed=0)
    assert list(obs[30:34]) == [1, 1, 1, 1]  # both hands touch the ceiling and hold it
    for _ in range(300):
        obs, _, term, *_ = env.step(HOLD)
        assert not term
    assert env._head.position.y > TERRAIN_HEIGHT + CEILING_OFFSET - 3
    for _ in range(300):
        obs, reward, term, *_ = env.step(RELEASE)
        if term:
            break
    assert term and reward == -100.0 and list(obs[31:34:2]) == [0, 0]


@pytest.mark.parametrize("creepers,caught", [(4.0, True), (0.0, False)])
def test_a_falling_climber_grasps_a_creeper_it_touches(creepers, caught):
    env = make(CHIMP)
    env.reset(seed=0, options={"task": [-0.15, 0.8, 0.1, 0.0, creepers, 0.0]})
    for _ in range(40):  # let go and fall 3 m below the ceiling
        env.step(RELEASE)
    for _ in range(300):
        obs, reward, term, *_ = env.step(HOLD)
        if term:
            break
    assert term is not caught
    if caught:  # held by a joint to a creeper, well below the ceiling
        anchors = [g.anchorA for g in env._grips]
        assert all(a.y < env.terrain.ceiling_at(a.x) - 1.0 for a in anchors) and list(obs[30:34]) == [1, 1, 1, 1]
    else:
        assert reward == -100.0


def test_lidar_surfaces_tell_water_and_creepers_apart():
    env = make("classic_bipedal")
    env.reset(seed=0, options={"task": DRY})
    top = env.terrain.ceiling.max()
    level = (4.6 - GROUND_LIMIT) / (top - GROUND_LIMIT)  # water 1.3 m above the start pad
    obs, _ = env.reset(seed=0, options={"task": [-0.15, 0.8, 0.1, level, 0.0, 5.0]})
    assert obs[4] == 0.0 and obs[-10] == -1.0 and 0.0 < obs[-20] < 0.5  # straight down: the water
    chimp = make(CHIMP)
    obs, _ = chimp.reset(seed=0, options={"task": [-0.15, 0.8, 0.1, 0.0, 4.0, 0.0]})
    assert 1.0 in obs[-10:] and -1.0 not in obs[-10:]
    obs, _ = chimp.reset(seed=0, options={"task": [-0.15, 0.8, 0.1, 0.0, 0.0, 5.0]})
    assert 1.0 not in obs[-4:]  # looking up at a bare ceiling


def test_same_seed_and_task_repeat_the_trajectory():
    def run(body, seed):
        env = make(body)
        rng = np.random.default_rng(0)
        out = [env.reset(seed=seed, options={"task": [-0.3, 0.7, 0.0, 0.95, 2.0, 1.0]})[0]]
        for _ in range(150):
            out.append(env.step(rng.uniform(-1, 1, env.action_space.shape))[0])
        return np.array(out)

    assert np.array_equal(run("fish", 3), run("fish", 3))
    assert np.array_equal(run(CHIMP, 3), run(CHIMP, 3)) and not np.array_equal(run(CHIMP, 3), run(CHIMP, 4))


def test_test_sets_are_fixed_inside_the_task_space_and_drawn_by_their_recipe():
    fish = make("fish")
    for name in TEST_SETS:
        tasks = fish.test_set(name)
        assert tasks.shape == (100, 6) and all(fish.task_space.contains(t) for t in tasks)
        assert np.array_equal(tasks, draw_test_set(name))
    assert fish.test_set()[:, 3].min() >= 0.9 > fish.test_set("walking")[:, 3].max()  # the body's own set
    assert np.array_equal(make(CHIMP).test_set(), draw_test_set("climbing"))
    assert np.array_equal(make("spider").test_set(), draw_test_set("walking"))
    with pytest.raises(ValueError, match="walking"):
        fish.test_set("flying")


def test_invalid_tasks_bodies_and_actions_are_refused():
    with pytest.raises(ValueError, match="fish"):
        gym.make(PARKOUR, body="octopus")
    env = make(CHIMP)
    with pytest.raises(ValueError, match="outside the task space"):
        env.reset(options={"task": [1.5, 0.8, 0.1, 0.0, 0.0, 5.0]})  # TeachMyAgent's inputs: [-1, 1]
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        env.step(np.zeros(10))
    assert env.reset(seed=0)[1]["task"].tolist() == DRY
    assert make("fish").reset(seed=0)[1]["task"][3] == 1.0  # swimmers start in water by default


def test_rgb_frames_show_the_creepers_the_water_and_the_body():
    from teachgym.envs.parkour.render import CREEPER

    env = gym.make(PARKOUR, body=CHIMP, render_mode="rgb_array")
    env.reset(seed=0, options={"task": [-0.15, 0.8, 0.1, 0.0, 3.0, 1.0]})
    frame = env.render()
    assert frame.shape == (400, 600, 3) and (np.abs(frame.astype(int) - CREEPER).sum(axis=2) == 0).sum() > 500
    fish = gym.make(PARKOUR, body="fish", render_mode="rgb_array")
    fish.reset(seed=0, options={"task": DRY})
    dry = fish.render()
    fish.reset(seed=0, options={"task": FLOODED})
    wet = fish.render()
    assert wet[:, :, 2].mean() > dry[:, :, 2].mean() - 1 and (wet[:, :, 0].astype(int) < dry[:, :, 0] - 30).mean() > 0.3
    env.close()
    fish.close()


def test_fuzzing_every_body_over_the_task_space_finds_no_problem():
    specs = [(PARKOUR, {"body": body}) for body in sorted(PARKOUR_BODIES)]
    table = fuzz_envs(specs, episodes_per_env=6, max_steps=80, seed=0)
    assert table["failures"].sum() == 0, table["first_failure"].tolist()
    assert (table["corner_episodes"] >= 2).all()


def test_a_walkers_frame_shows_the_ceiling_and_the_creepers_above_it():
    """TeachMyAgent's camera, 30 px/m with the head a fifth from the bottom, shows 13 m of height:
    the ceiling 20 m above a walker and the creepers hanging from it were never in view."""
    from teachgym.envs.parkour.render import CREEPER, ROCK

    env = gym.make(PARKOUR, body="classic_bipedal", render_mode="rgb_array")
    env.reset(seed=0, options={"task": [-0.15, 0.8, 0.1, 0.0, 2.0, 1.0]})
    for _ in range(30):
        env.step(env.action_space.sample())
    frame = env.render().astype(int)
    for colour in (ROCK, CREEPER):
        assert (np.abs(frame - colour).sum(axis=2) == 0).sum() > 300, colour
    ground = (np.abs(frame - (102, 153, 76)).sum(axis=2) == 0).sum()
    assert ground > 300  # and the ground under the walker
    env.close()


@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_water_level_for_floods_that_fraction_of_the_walkable_height(fraction):
    """``water_level`` stays TeachMyAgent's (fraction of the height from the world's bottom, so
    0.6 is dry); ``water_level_for`` gives the value that floods a fraction of ground-to-ceiling."""
    for dims, scale in ((6, 10.0), (8, 20.0)):
        env = make("classic_bipedal", task_dims=dims)
        task = np.array(env.default_task)
        if dims == 8:
            task[7] = scale
        task[3] = env.water_level_for(fraction, task)
        env.reset(seed=0, options={"task": task})
        t = env.terrain
        assert abs(t.flooded_fraction - fraction) < 1e-9
        expected = t.ground.min() + fraction * (t.ceiling.max() - t.ground.min())
        assert abs(t.water_y - expected) < 1e-6  # the physics' surface, built by TeachMyAgent's formula
    task[3] = 0.6
    env.reset(seed=0, options={"task": task})
    assert env.terrain.flooded_fraction == 0.0  # what the issue saw: 0.6 shows no water
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        env.water_level_for(1.5)
