"""Box2D walkers: every body builds from its description, tasks shape the tracks, runs repeat."""

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import teachgym  # noqa: F401  (registers the envs)
from teachgym.envs.walkers import BODIES
from teachgym.envs.walkers.bodies import Blueprint
from teachgym.envs.walkers.env import SUCCESS_RETURN, TERRAIN_HEIGHT, TERRAIN_STEP

STUMPS, HEXAGONS = "teachgym/StumpTracks-v0", "teachgym/HexagonTracks-v0"
# (observation, action) sizes of TeachMyAgent's bodies: 4 head values, angle and speed per
# motor, one contact per foot, 10 lidar rays.
SIZES = {
    "small_bipedal": (24, 4),
    "classic_bipedal": (24, 4),
    "old_classic_bipedal": (24, 4),
    "big_quadru": (34, 8),
    "spider": (42, 12),
    "millipede": (54, 16),
    "wheel": (34, 8),
}


def rollout(env, seed, task, steps, action_seed=0):
    """Observations and rewards of ``steps`` steps with fixed random actions (resets on ends)."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed, options={"task": task})
    out = [obs]
    for _ in range(steps):
        obs, reward, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        out.append(np.append(obs, reward))
        if term or trunc:
            out.append(env.reset()[0])
    return out


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("body", sorted(BODIES))
def test_each_body_has_the_observation_and_action_sizes_of_its_description(body):
    assert set(SIZES) <= set(BODIES)
    for env_id in (STUMPS, HEXAGONS):
        env = gym.make(env_id, body=body)
        obs, info = env.reset(seed=0)
        n_obs, n_act = SIZES[body]
        assert env.observation_space.shape == obs.shape == (n_obs,)
        assert env.action_space.shape == (n_act,) and obs.dtype == np.float32
        obs, reward, term, trunc, info = env.step(env.action_space.sample())
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
        assert 0.0 <= obs[-10:].min() and obs[-10:].max() <= 1.0  # lidar fractions
        assert env.spec.max_episode_steps == 2000


@pytest.mark.parametrize("env_id,body", [(STUMPS, "classic_bipedal"), (HEXAGONS, "spider")])
def test_walker_envs_pass_gymnasiums_env_checker(env_id, body, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # check_env also opens the "human" mode
    env = gym.make(env_id, body=body, render_mode="rgb_array")
    with pytest.warns(UserWarning, match="infinity"):  # unbounded angles and speeds, as in TeachMyAgent
        check_env(env.unwrapped)


def test_same_seed_and_task_repeat_the_trajectory_even_after_other_episodes():
    first = rollout(gym.make(STUMPS, body="classic_bipedal"), 5, [2.0, 1.0], 300)
    env = gym.make(STUMPS, body="classic_bipedal")
    rollout(env, 9, [0.5, 4.0], 150, action_seed=3)
    assert same(rollout(env, 5, [2.0, 1.0], 300), first)
    assert not same(rollout(env, 6, [2.0, 1.0], 300), first)


def test_two_envs_stepped_in_turn_behave_as_each_run_alone():
    specs = [(STUMPS, "classic_bipedal", 1, [2.5, 0.5]), (HEXAGONS, "millipede", 2, [3.0] * 12),
             (STUMPS, "spider", 3, [0.0, 6.0])]
    alone = [rollout(gym.make(i, body=b), s, t, 200) for i, b, s, t in specs]
    envs = [gym.make(i, body=b) for i, b, _, _ in specs]
    rngs = [np.random.default_rng(0) for _ in specs]
    runs = [[env.reset(seed=s, options={"task": t})[0]] for env, (_, _, s, t) in zip(envs, specs)]
    for _ in range(200):
        for env, rng, run in zip(envs, rngs, runs):
            obs, reward, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            run.append(np.append(obs, reward))
            if term or trunc:
                run.append(env.reset()[0])
    assert all(same(a, b) for a, b in zip(alone, runs))
    feet = np.array([o[[8, 13]] for o in alone[0]])  # classic_bipedal's two foot contacts
    assert set(np.unique(feet)) == {0.0, 1.0}  # contacts come and go: no count leaks across episodes


def test_a_task_by_name_equals_the_same_task_by_array_and_a_reset_without_one_plays_the_default():
    env = gym.make(STUMPS)
    by_name = rollout(env, 0, {"obstacle_spacing": 2.0, "stump_height": 1.5}, 100)
    assert same(rollout(env, 0, np.array([1.5, 2.0]), 100), by_name)
    _, info = env.reset(seed=1, options={"task": [1.5, 2.0]})
    assert np.array_equal(env.step(env.action_space.sample())[4]["task"], [1.5, 2.0])
    _, info = env.reset(seed=1)
    assert np.array_equal(info["task"], env.unwrapped.default_task)
    _, info = gym.make(STUMPS).reset(seed=1)
    assert np.array_equal(info["task"], env.unwrapped.default_task)  # (0, 6): small sparse stumps
    _, info = gym.make(HEXAGONS, task=[1.0] * 12).reset()
    assert np.array_equal(info["task"], [1.0] * 12)


@pytest.mark.parametrize("task,words", [
    ([3.5, 1.0], "outside the task space"),
    ([1.0, -0.1], "outside the task space"),
    ([1.0, float("nan")], "outside the task space"),
    ([1.0, 2.0, 3.0], "shape"),
    ({"stump_height": 1.0}, "missing"),
    ({"stump_height": 1.0, "obstacle_spacing": 1.0, "roughness": 1.0}, "unknown"),
    ("easy", "numeric"),
])
def test_invalid_tasks_raise_value_errors_that_say_what_was_expected(task, words):
    env = gym.make(STUMPS)
    with pytest.raises(ValueError, match=words):
        env.reset(options={"task": task})
    with pytest.raises(ValueError, match=words):
        gym.make(STUMPS, task=task)


def test_unknown_bodies_and_wrong_actions_are_refused():
    with pytest.raises(ValueError, match="classic_bipedal"):
        gym.make(STUMPS, body="centipede")
    env = gym.make(STUMPS).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0]))


def test_stumps_follow_the_task_height_and_spacing():
    env = gym.make(STUMPS).unwrapped
    for height, spacing in [(0.0, 6.0), (1.0, 3.0), (3.0, 0.0)]:
        env.reset(seed=0, options={"task": [height, spacing]})
        stumps = np.array(env.obstacles)
        tops = (stumps[:, :, 1].max(axis=1) - TERRAIN_HEIGHT) / TERRAIN_STEP
        lefts = stumps[:, :, 0].min(axis=1)
        assert np.allclose(np.diff(lefts), TERRAIN_STEP + max(spacing, 0.01))
        if height > 0.3:  # away from the 0.05 floor, heights are N(height, 0.1)
            assert abs(tops.mean() - height) < 0.05 and 0.05 < tops.std() < 0.15
        assert tops.min() >= 0.05 - 1e-9
    assert len(stumps) > 150  # dense: a stump every 0.48 m over 84 m
    # What Box2D collides with: one static body per stump, then one per ground edge (TeachMyAgent's
    # construction), each with one fixture of friction 2.5 in the terrain's category.
    bodies = env._terrain
    assert len(bodies) == len(stumps) + len(env.level()["ground"]) - 1
    for body in bodies:
        (fixture,) = body.fixtures
        assert body.type == 0 and fixture.friction == 2.5  # static
        assert fixture.filterData.categoryBits == 0x1 and fixture.filterData.maskBits == 0xFFFF
    assert all(type(b.fixtures[0].shape).__name__ == "b2PolygonShape" for b in bodies[: len(stumps)])
    assert all(type(b.fixtures[0].shape).__name__ == "b2EdgeShape" for b in bodies[len(stumps):])
    boxes = np.array([b.fixtures[0].shape.vertices for b in bodies[: len(stumps)]])
    assert np.allclose(np.sort(boxes[:, :, 0], axis=1), np.sort(stumps[:, :, 0], axis=1), atol=1e-5)


def test_hexagon_parameters_push_the_hexagon_vertices():
    env = gym.make(HEXAGONS).unwrapped
    env.reset(seed=0)
    plain = env.obstacles
    env.reset(seed=0, options={"task": [0.0, 4.0] * 6})  # every vertex pushed up 4 steps
    tall = env.obstacles

    def height(polys):
        return np.mean([(p[:, 1].max() - TERRAIN_HEIGHT) / TERRAIN_STEP for p in polys])

    assert len(plain) == len(tall) >= 8
    assert abs(height(plain) - 0.5) < 0.2 and abs(height(tall) - 4.5) < 0.2
    env.reset(seed=0, options={"task": [4.0, 0.0] * 6})  # every vertex pushed forward 4 steps
    shift = np.mean([p[:, 0].mean() for p in env.obstacles]) - np.mean([p[:, 0].mean() for p in plain])
    assert abs(shift / TERRAIN_STEP - 4.0) < 0.2


def test_lidar_sees_tall_stumps_ahead_and_feet_report_ground_contact():
    env = gym.make(STUMPS).unwrapped
    obs, _ = env.reset(seed=0, options={"task": [3.0, 0.0]})
    for _ in range(5):
        obs, *_ = env.step(np.zeros(4))
    assert obs[-1] < 1.0 and obs[8] == obs[13] == 1.0  # farthest ray hits a stump; both feet down
    env.reset(seed=0, options={"task": [0.0, 6.0]})
    obs, *_ = env.step(np.zeros(4))
    assert obs[-1] == 1.0


def test_success_is_a_return_above_230_and_a_fall_costs_100():
    env = gym.make(STUMPS, body="classic_bipedal")
    env.reset(seed=0)
    total, steps = 0.0, 0
    while True:  # no torque: the legs fold and the hull hits the ground
        _, reward, term, trunc, info = env.step(np.zeros(4))
        total, steps = total + reward, steps + 1
        assert info["success"] is (total > SUCCESS_RETURN)
        if term or trunc:
            break
    assert term and reward == -100.0 and steps < 300 and not info["success"]

    # Carry the hull forward (a crane holding it level): the return passes 230 and stays there.
    base = env.unwrapped
    base.reset(seed=0)
    y = base._head.position.y
    total, flags = 0.0, []
    for _ in range(600):
        x = base._head.position.x
        base._head.transform = ((x, y), 0.0)
        base._head.linearVelocity, base._head.angularVelocity = (6.0, 0.0), 0.0
        _, reward, term, _, info = env.step(np.zeros(4))
        total += reward
        flags.append(info["success"])
        assert info["success"] is (total > SUCCESS_RETURN) and not term
    assert flags[0] is False and flags[-1] is True


def test_test_sets_are_fixed_and_inside_the_task_spaces():
    stumps = gym.make(STUMPS).unwrapped.test_set()
    assert stumps.shape == (100, 2)
    axes = np.linspace(0, 3, 10), np.linspace(0, 6, 10)
    assert {tuple(t) for t in stumps.round(9)} == {(a, b) for a in axes[0].round(9) for b in axes[1].round(9)}
    hexagons = gym.make(HEXAGONS).unwrapped.test_set()
    assert hexagons.shape == (100, 12) and hexagons.min() >= 0 and hexagons.max() <= 4
    assert np.array_equal(hexagons, np.random.default_rng(4222).uniform(0, 4, (100, 12)))  # documented seed
    for env_id, tasks in ((STUMPS, stumps), (HEXAGONS, hexagons)):
        space = gym.make(env_id).unwrapped.task_space
        assert all(space.contains(t) for t in tasks)


def test_rgb_array_frames_show_the_walker():
    env = gym.make(STUMPS, body="big_quadru", render_mode="rgb_array")
    env.reset(seed=0, options={"task": [1.0, 2.0]})
    frame = env.render()
    assert frame.shape == (400, 600, 3) and frame.dtype == np.uint8
    trunk = np.array(BODIES["big_quadru"].trunk_colour)
    assert (np.abs(frame.astype(int) - trunk).sum(axis=2) == 0).sum() > 500  # the hull's pixels
    for _ in range(20):
        env.step(np.ones(8))
    assert not np.array_equal(env.render(), frame)  # the legs moved
    env.close()


# TeachMyAgent's AGENT_CENTER_HEIGHT of each body in pixels (old_classic_bipedal: 2 * LEG_H, as
# its Stump Tracks starts that body), read from its bodies/walkers/*.py.
START_HEIGHTS_PX = {"small_bipedal": 37, "classic_bipedal": 71, "old_classic_bipedal": 68, "big_quadru": 105,
                    "spider": 24, "millipede": 23, "wheel": 30}


@pytest.mark.parametrize("body", sorted(START_HEIGHTS_PX))
def test_bodies_start_at_teachmyagents_height_above_the_ground(body, monkeypatch):
    assert set(START_HEIGHTS_PX) == set(BODIES)
    starts = []
    build = Blueprint.build

    def spy(self, world, x, y, push):
        starts.append((x, y))
        return build(self, world, x, y, push)

    monkeypatch.setattr(Blueprint, "build", spy)
    gym.make(STUMPS, body=body).reset(seed=0)
    (x, y), = starts
    assert (y - TERRAIN_HEIGHT) * 30 == pytest.approx(START_HEIGHTS_PX[body])
    assert x == pytest.approx(20 * TERRAIN_STEP / 2)  # the middle of the 20-step start pad


def test_the_spider_starts_with_its_feet_off_the_ground():
    env = gym.make(STUMPS, body="spider").unwrapped
    env.reset(seed=0)
    assert not any(env._contacts.touching)  # 24 px up: its lowest point is 2.6 px above the ground


def test_millipede_segments_sit_where_teachmyagent_puts_them_and_its_head_never_ends_an_episode():
    env = gym.make(STUMPS, body="millipede").unwrapped
    pieces = [part.x * 30 for part in env._blueprint.parts[:4]]
    assert pieces == pytest.approx([-40.0, -20.0, 0.0, 20.0]) and BODIES["millipede"].head == 3
    env.reset(seed=0)
    head = env._head
    touched = False
    for _ in range(200):  # press the head into the ground; TeachMyAgent's millipede lives on
        head.ApplyForceToCenter((0.0, -30 * head.mass * 10), True)
        _, reward, term, trunc, _ = env.step(np.zeros(16))
        assert not term and reward > -100
        touched |= any(c.touching and head in (c.fixtureA.body, c.fixtureB.body) for c in env._world.contacts)
    assert touched


def test_old_classic_bipedal_is_teachdeeprls_bipedalwalker_v2():
    spec = BODIES["old_classic_bipedal"]
    env = gym.make(STUMPS, body="old_classic_bipedal").unwrapped
    bp = env._blueprint
    # Legs placed 16 px above their hips (LEG_DOWN = -8 px), turned by -+0.05 rad, joints by local
    # anchors: hip (0, -8 px) on the hull, each segment's top (0, +17 px) on it, knee at its bottom.
    assert [round(p.angle, 9) for p in bp.parts[1:]] == [-0.05, -0.05, 0.05, 0.05]
    assert [round(p.y * 30, 9) for p in bp.parts[1:]] == [-9.0, -43.0, -9.0, -43.0]
    locals_px = [tuple(tuple(round(v * 30, 9) for v in a) for a in j.local) for j in bp.joints]
    assert locals_px == [((0, -8), (0, 17)), ((0, -17), (0, 17))] * 2
    assert spec.start_height == 68 and spec.critical == (0,) and spec.motors_torque == 80
    obs, _ = env.reset(seed=0)
    assert obs.shape == (24,) and env.action_space.shape == (4,)


# ------------------------------------------------------------------------------ test sets
TMA_STUMPS = Path(__file__).resolve().parents[1].parent / "shared" / "teachmyagent" / "parametric_stumps_test_set.csv"


@pytest.mark.skipif(not TMA_STUMPS.is_file(), reason=f"TeachMyAgent's test set is not at {TMA_STUMPS}")
def test_teachmyagents_stump_test_set_loads_from_the_users_copy_and_ours_stays_the_default():
    env = gym.make(STUMPS).unwrapped
    theirs = env.test_set(TMA_STUMPS)
    assert theirs.shape == (100, 2) and all(env.task_space.contains(t) for t in theirs)
    expected = np.loadtxt(TMA_STUMPS, delimiter=",", skiprows=1)
    assert np.array_equal(theirs, expected) and np.array_equal(env.test_set(str(TMA_STUMPS)), expected)
    ours = env.test_set()
    assert np.array_equal(ours, env.test_set("teachgym")) and not np.array_equal(ours, theirs)
    # Given to the constructor, it is what training's evaluation (test_set() without argument) uses.
    configured = gym.make(STUMPS, test_set=TMA_STUMPS).unwrapped
    assert np.array_equal(configured.test_set(), expected)
    assert np.array_equal(configured.test_set("teachgym"), ours)
    # ... as `teachgym train --env-kwargs body=classic_bipedal,test_set=PATH` passes it.
    from teachgym.training import parse_kwargs  # imports SB3: only this test pays for it

    kwargs = parse_kwargs([f"body=classic_bipedal,test_set={TMA_STUMPS}"])
    assert np.array_equal(gym.make(STUMPS, **kwargs).unwrapped.test_set(), expected)


@pytest.mark.parametrize("content,words", [
    (None, "not a file"),  # missing
    ("", "header"),
    ("obstacle_spacing,stump_height\n1,2\n", "header"),
    ("stump_height,obstacle_spacing\n", "0 tasks"),
    ("stump_height,obstacle_spacing\n1,2,3\n", "2 numbers a line"),
    ("stump_height,obstacle_spacing\n1\n", "2 numbers a line"),
    ("stump_height,obstacle_spacing\n1,2\n1,2,3\n", "not a number|2 numbers"),
    ("stump_height,obstacle_spacing\n1,abc\n", "not a number"),
    ("stump_height,obstacle_spacing\n1,nan\n", "outside the task space"),
    ("stump_height,obstacle_spacing\n1,inf\n", "outside the task space"),
    ("stump_height,obstacle_spacing\n4,2\n", "outside the task space"),
    ("stump_height,obstacle_spacing\n-0.5,2\n", "outside the task space"),
    ("stump_height,obstacle_spacing\n1,2\n\x00\xff\n", "ASCII"),
])
def test_bad_test_set_files_raise_value_errors_that_say_what_was_expected(tmp_path, content, words):
    path = tmp_path / "tasks.csv"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    env = gym.make(STUMPS).unwrapped
    with pytest.raises(ValueError, match=words):
        env.test_set(path)
    with pytest.raises(ValueError, match=words):
        gym.make(STUMPS, test_set=path)


def test_test_set_sources_that_are_not_files_are_refused(tmp_path):
    env = gym.make(STUMPS).unwrapped
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:  # a sparse file past the size bound: refused before it is parsed
        handle.seek(10_000_001)
        handle.write(b"\n")
    for source, words in ((tmp_path, "not a file"), (big, "larger than"), (3, "path of a CSV"),
                          ("teachmyagent", "not a file"), (["a.csv"], "path of a CSV")):
        with pytest.raises(ValueError, match=words):
            env.test_set(source)


# ------------------------------------------------------------------------------ levels
FLAT = [[0.0, TERRAIN_HEIGHT], [100.0, TERRAIN_HEIGHT]]
BOX = [[8.0, TERRAIN_HEIGHT], [8.5, TERRAIN_HEIGHT], [8.5, TERRAIN_HEIGHT + 2], [8.0, TERRAIN_HEIGHT + 2]]


@pytest.mark.parametrize("env_id,task", [(STUMPS, [1.5, 2.0]), (HEXAGONS, [1.0] * 12)])
def test_a_levels_terrain_is_what_box2d_collides_with_and_replays_through_json(env_id, task):
    env = gym.make(env_id).unwrapped
    env.reset(seed=2, options={"task": task})
    level = env.level()
    assert json.loads(json.dumps(level)) == level and level["task"] == task
    assert len(env._terrain) == len(level["obstacles"]) + len(level["ground"]) - 1
    other = gym.make(env_id).unwrapped
    obs, info = other.reset(seed=99, options={"level": json.loads(json.dumps(level))})
    assert np.array_equal(info["task"], task) and np.array_equal(obs, env.reset(options={"level": level})[0])
    assert other.level() == level
    rng = np.random.default_rng(1)
    for _ in range(100):
        action = rng.uniform(-1, 1, 4)
        a, b = env.step(action), other.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:3] == b[1:3]
        if a[2]:
            break


def test_a_hand_made_level_is_played_as_given():
    env = gym.make(STUMPS).unwrapped
    obs_at_reset, info = env.reset(options={"level": {"ground": FLAT, "obstacles": [BOX], "push": 0.0}})
    assert np.array_equal(info["task"], env.default_task)  # a level without a task plays the default one
    assert len(env._terrain) == 2 and np.allclose(env.obstacles[0], BOX)
    obs, *_ = env.step(np.zeros(4))
    assert obs[-1] < 1.0  # the farthest lidar ray sees the box 3.5 m ahead
    as_arrays = {"ground": np.array(FLAT), "obstacles": np.array([BOX]), "push": np.float32(0.0)}
    assert np.array_equal(env.reset(options={"level": as_arrays})[0], obs_at_reset)
    env.reset(options={"level": {"ground": FLAT, "obstacles": [], "push": 0.0}, "task": [3.0, 0.5]})
    assert np.array_equal(env.task, [3.0, 0.5]) and env.obstacles == []
    assert env.step(np.zeros(4))[0][-1] == 1.0


def _level(**change):
    level = {"ground": FLAT, "obstacles": [BOX], "push": 0.0}
    level.update(change)
    return {k: v for k, v in level.items() if v is not ...}


@pytest.mark.parametrize("level,words", [
    ([FLAT], "must be a dict"),
    (_level(seed=3), "unknown keys"),
    (_level(push=...), "lacks"),
    (_level(ground=...), "lacks"),
    (_level(ground=[[0.0, 3.0]]), "2 to 10000"),
    (_level(ground=[[0.0, 3.0, 1.0], [1.0, 3.0, 1.0]]), "shape"),
    (_level(ground=[[0.0, "3"], [1.0, 3.0]]), "numbers"),
    (_level(ground=[[0.0, 3.0], [1.0]]), "numbers"),
    (_level(ground=[[True, False], [False, True]]), "numbers"),
    (_level(ground=[[0.0, float("nan")], [1.0, 3.0]]), "finite"),
    (_level(ground=[[0.0, 3.0], [1e9, 3.0]]), "finite"),
    (_level(ground=[[float(i), 3.0] for i in range(10_001)]), "2 to 10000"),
    (_level(obstacles="box"), "list of at most"),
    (_level(obstacles=[BOX] * 10_001), "list of at most"),
    (_level(obstacles=[BOX[:2]]), "3 to 8"),
    (_level(obstacles=[BOX * 3]), "3 to 8"),
    (_level(obstacles=[[[10.0, 3.0], [11.0, 3.0], [12.0, 3.0]]]), "degenerate"),
    (_level(obstacles=[[[10.0, 3.0], [10.0 + 1e-5, 3.0], [10.0, 3.0 + 1e-5]]]), "degenerate"),
    (_level(obstacles=[[[0, 0], [0, 0], [0, 0]]]), "degenerate"),
    (_level(push=6.0), "push"),
    (_level(push=float("nan")), "push"),
    (_level(push="1"), "push"),
    (_level(push=True), "push"),
    (_level(task=[4.0, 1.0]), "outside the task space"),
])
def test_bad_levels_raise_value_errors_that_say_what_was_expected_and_leave_the_env_usable(level, words):
    env = gym.make(STUMPS)
    env.reset(seed=0, options={"task": [1.0, 2.0]})
    with pytest.raises(ValueError, match=words):
        env.reset(options={"level": level, "task": [2.0, 1.0]})
    assert np.array_equal(env.unwrapped.task, [1.0, 2.0])  # the episode in force is untouched
    obs, _ = env.reset(seed=0)  # still works, and as before
    assert np.array_equal(obs, gym.make(STUMPS).reset(seed=0)[0])
    with pytest.raises(gym.error.ResetNeeded):
        gym.make(STUMPS).unwrapped.level()


def _tma_spider_parts():
    """(x, y, angle) of each part of TeachMyAgent's SpiderBody, relative to its origin (metres)."""
    length, down, half = 20 / 30, 4 / 30, 10 / 30
    parts = [(0.0, 0.0, 0.0)]
    for i in (+1, -1, +1, -1):
        x, y = -i * half, -down
        for f in (0.25, 0.7, 0.9):
            angle = f * math.pi * i  # each segment points up from its joint, along its own +y
            x, y = x - math.sin(angle) * length / 2, y + math.cos(angle) * length / 2
            parts.append((x, y, angle))
            x, y = x - math.sin(angle) * length / 2, y + math.cos(angle) * length / 2
    return parts


def _tma_wheel_parts():
    """(x, y, angle) of each part of TeachMyAgent's WheelBody, relative to its origin (metres)."""
    length, half = 10 / 30, 10 / 30
    parts = [(0.0, 0.0, 0.0)]
    for jx, jy, angle in ((0, -1, 0.0), (0, 1, 0.0), (-1, 0, math.pi / 2), (1, 0, math.pi / 2)):
        x, y = jx * (length / 2 + half), jy * (length / 2 + half)
        parts += [(x, y, angle), (x + jx * length, y + jy * length, angle)]
    return parts


@pytest.mark.parametrize("body,expected", [("spider", _tma_spider_parts()), ("wheel", _tma_wheel_parts())])
def test_spider_and_wheel_parts_start_where_and_as_teachmyagent_turns_them(body, expected):
    """Same boxes, same places, and the same body angles: a box turned by pi is the same box, but
    Box2D then rounds differently and the runs drift apart (they agree step for step now)."""
    parts = Blueprint(BODIES[body]).parts
    assert [(p.x, p.y, p.angle) for p in parts] == [pytest.approx(e, abs=1e-12) for e in expected]
