"""Contextual classic control: gymnasium's envs with their physics set per task."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.box2d.lunar_lander import heuristic
from gymnasium.utils.env_checker import check_env

import teachgym
from teachgym.envs.control import FAMILIES, design_test_set
from teachgym.wrappers import CurriculumWrapper

CARTPOLE = "teachgym/ContextualCartPole-v0"
PENDULUM = "teachgym/ContextualPendulum-v0"
MOUNTAIN_CAR = "teachgym/ContextualMountainCarContinuous-v0"
LANDER = "teachgym/ContextualLunarLander-v0"
FAMILY_LIST = list(FAMILIES.values())
IDS = [f.env_id for f in FAMILY_LIST]


def rollout(env, policy, seed, task=None, options=None, max_steps=None):
    """Observations, rewards and the last info of one episode (or ``max_steps`` steps)."""
    opts = dict(options or {})
    if task is not None:
        opts["task"] = task
    obs, info = env.reset(seed=seed, options=opts or None)
    observations, rewards, n = [obs], [], 0
    done = False
    while not done and (max_steps is None or n < max_steps):
        obs, reward, term, trunc, info = env.step(policy(obs))
        observations.append(obs)
        rewards.append(reward)
        done, n = term or trunc, n + 1
    return np.array(observations), np.array(rewards), info


def replay(actions):
    """A policy that plays ``actions`` in order, whatever it observes."""
    it = iter(actions)
    return lambda obs: next(it)


def pd_cartpole(obs):
    return int(obs[2] + 0.5 * obs[3] > 0)


def pump(obs):  # bang-bang energy pumping: push along the velocity
    return np.array([1.0 if obs[1] >= 0 else -1.0], np.float32)


def zero_torque(obs):
    return np.zeros(1, np.float32)


# ----------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("family", FAMILY_LIST, ids=lambda f: f.env_id)
def test_each_id_declares_its_task_space_names_score_range_and_original_time_limit(family):
    env = gym.make(family.env_id)
    base = env.unwrapped
    assert isinstance(base.task_space, gym.spaces.Box) and base.task_space.shape == (len(family.dimensions),)
    assert base.task_names == tuple(d.name for d in family.dimensions)
    np.testing.assert_array_equal(base.task_space.low, [d.low for d in family.dimensions])
    assert base.task_space.contains(base.default_task)
    assert base.score_range is not None and base.score_range[0] < base.score_range[1]
    assert env.spec.max_episode_steps == gym.spec(family.base_id).max_episode_steps
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["task"], base.default_task)


@pytest.mark.parametrize("family", FAMILY_LIST, ids=lambda f: f.env_id)
def test_the_default_task_replays_the_gymnasium_original_exactly(family):
    ours, original = gym.make(family.env_id), gym.make(family.base_id, **family.base_kwargs)
    ours.action_space.seed(3)
    actions = [ours.action_space.sample() for _ in range(120)]
    obs_a, _ = ours.reset(seed=7)
    obs_b, _ = original.reset(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    for action in actions:
        a, b = ours.step(action), original.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
        if a[2] or a[3]:
            break


def test_a_task_by_dict_or_array_sets_the_originals_physics_attributes():
    env = gym.make(CARTPOLE)
    task = {"pole_length": 2.0, "pole_mass": 0.5, "cart_mass": 3.0, "gravity": 20.0, "force_mag": 4.0}
    _, info = env.reset(seed=0, options={"task": task})
    inner = env.unwrapped.inner
    assert (inner.length, inner.masspole, inner.masscart, inner.gravity, inner.force_mag) == (1.0, 0.5, 3.0, 20.0, 4.0)
    assert inner.total_mass == 3.5 and inner.polemass_length == 0.5  # derived sums follow the task
    assert info["task"].tolist() == [2.0, 0.5, 3.0, 20.0, 4.0]

    lander = gym.make(LANDER)
    lander.reset(seed=0, options={"task": np.array([15.0, 5.0, 0.0])})
    inner = lander.unwrapped.inner
    assert inner.gravity == -15.0 and inner.world.gravity[1] == -15.0
    assert inner.enable_wind and inner.wind_power == 5.0
    lander.reset(seed=0)  # no task: back to the original's physics, wind off
    assert inner.gravity == -10.0 and not inner.enable_wind


def test_a_reset_without_task_uses_the_constructor_task_or_the_original_physics():
    env = gym.make(PENDULUM, task={"length": 0.5, "mass": 2.0, "gravity": 5.0})
    _, info = env.reset(seed=0, options={"task": [1.5, 1.0, 20.0]})
    assert info["task"].tolist() == [1.5, 1.0, 20.0]
    _, info = env.reset(seed=1)
    assert info["task"].tolist() == [0.5, 2.0, 5.0] and env.unwrapped.inner.g == 5.0
    _, info = gym.make(PENDULUM).reset(seed=0)
    assert info["task"].tolist() == [1.0, 1.0, 10.0]


@pytest.mark.parametrize(
    "task, message",
    [
        ([0.5, 1.0, 10.0, 1.0], "shape"),
        ([5.0, 1.0, 10.0], "outside the task space"),
        ([1.0, float("nan"), 10.0], "outside the task space"),
        ({"length": 1.0, "mass": 1.0}, "missing"),
        ({"length": 1.0, "mass": 1.0, "gravity": 9.0, "g": 1.0}, "unknown"),
        ("heavy", "numeric"),
    ],
)
def test_a_bad_task_raises_a_value_error_saying_what_was_expected(task, message):
    env = gym.make(PENDULUM)
    with pytest.raises(ValueError, match=message):
        env.reset(options={"task": task})
    with pytest.raises(ValueError, match=message):
        gym.make(PENDULUM, task=task)


def test_an_unknown_family_is_a_value_error():
    with pytest.raises(ValueError, match="expected one of"):
        teachgym.envs.control.ContextualControlEnv("acrobot")


# ----------------------------------------------------------------------------- physics really change


def test_higher_gravity_or_shorter_pole_makes_the_cartpole_fall_sooner():
    env = gym.make(CARTPOLE)

    def steps(**change):  # alternate pushes (zero mean): the pole falls under gravity alone
        task = dict(zip(env.unwrapped.task_names, env.unwrapped.default_task.tolist())) | change
        return len(rollout(env, replay([0, 1] * 250), seed=4, task=task)[1])

    assert steps(gravity=40.0) < steps(gravity=9.8) < steps(gravity=2.0)
    assert steps(pole_length=0.2) < steps(pole_length=3.0)


def test_pendulum_gravity_length_and_mass_change_its_motion():
    env = gym.make(PENDULUM)
    near_top = {"x_init": 0.2, "y_init": 0.0}  # starts within 0.2 rad of upright, at rest

    def fallen(task, policy=zero_torque):  # 1 - cos θ after 10 steps from the same start
        return 1 - rollout(env, policy, seed=1, task=task, options=near_top, max_steps=10)[0][-1, 0]

    assert fallen([1.0, 1.0, 20.0]) > fallen([1.0, 1.0, 10.0]) > fallen([1.0, 1.0, 2.0])
    assert fallen([0.3, 1.0, 10.0]) > fallen([2.0, 1.0, 10.0])
    push = lambda obs: np.array([2.0], np.float32)  # noqa: E731
    assert fallen([1.0, 0.5, 2.0], push) != fallen([1.0, 3.0, 2.0], push)  # the torque moves a light bob more


def test_mountain_car_power_and_goal_change_the_climb():
    env = gym.make(MOUNTAIN_CAR)
    right = lambda obs: np.array([1.0], np.float32)  # noqa: E731
    high = rollout(env, right, seed=0, task=[0.002, 0.45], max_steps=30)[0][-1]
    low = rollout(env, right, seed=0, task=[0.0005, 0.45], max_steps=30)[0][-1]
    assert high[1] > low[1] and high[0] > low[0]
    near = rollout(env, pump, seed=0, task=[0.0015, -0.1])[1]
    far = rollout(env, pump, seed=0, task=[0.0015, 0.45])[1]
    assert len(near) < len(far)


def test_lander_gravity_pulls_harder_and_wind_pushes_sideways():
    env = gym.make(LANDER)
    idle = lambda obs: np.zeros(2, np.float32)  # noqa: E731
    heavy = rollout(env, idle, seed=2, task=[20.0, 0.0, 0.0], max_steps=30)[0][-1]
    light = rollout(env, idle, seed=2, task=[2.0, 0.0, 0.0], max_steps=30)[0][-1]
    assert heavy[3] < light[3] and heavy[1] < light[1]  # falls faster, is lower
    calm = rollout(env, idle, seed=2, task=[10.0, 0.0, 0.0], max_steps=30)[0][-1]
    windy = rollout(env, idle, seed=2, task=[10.0, 20.0, 0.0], max_steps=30)[0][-1]
    assert abs(windy[2] - calm[2]) > 0.05  # horizontal speed differs


# ----------------------------------------------------------------------------- observations, checks


@pytest.mark.parametrize("family", FAMILY_LIST, ids=lambda f: f.env_id)
def test_context_obs_appends_the_normalised_task(family):
    plain, ctx = gym.make(family.env_id), gym.make(family.env_id, context_obs=True)
    n, dim = plain.observation_space.shape[0], len(family.dimensions)
    assert ctx.observation_space.shape == (n + dim,)
    np.testing.assert_array_equal(ctx.observation_space.low[n:], 0.0)
    np.testing.assert_array_equal(ctx.observation_space.high[n:], 1.0)
    task = family.low + np.linspace(0.1, 0.9, dim) * (family.high - family.low)
    obs_p, _ = plain.reset(seed=5, options={"task": task})
    obs_c, _ = ctx.reset(seed=5, options={"task": task})
    np.testing.assert_array_equal(obs_c[:n], obs_p)
    np.testing.assert_allclose(obs_c[n:], np.linspace(0.1, 0.9, dim), atol=1e-6)
    obs_c = ctx.step(ctx.action_space.sample())[0]
    assert obs_c.dtype == np.float32 and ctx.observation_space.contains(obs_c)
    np.testing.assert_allclose(obs_c[n:], np.linspace(0.1, 0.9, dim), atol=1e-6)


@pytest.mark.parametrize("context_obs", [False, True])
@pytest.mark.parametrize("family", FAMILY_LIST, ids=lambda f: f.env_id)
def test_gymnasium_check_env_passes(family, context_obs):
    check_env(gym.make(family.env_id, context_obs=context_obs).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("family", FAMILY_LIST, ids=lambda f: f.env_id)
def test_same_seed_and_task_give_the_same_trajectory(family):
    env = gym.make(family.env_id)
    task = family.low + 0.3 * (family.high - family.low)  # wind on for the lander
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(80)]

    def run():
        return rollout(env, replay(actions), seed=11, task=task, max_steps=80)

    (obs1, rew1, _), (obs2, rew2, _) = run(), run()
    np.testing.assert_array_equal(obs1, obs2)
    np.testing.assert_array_equal(rew1, rew2)


def test_two_envs_with_different_tasks_in_one_process_do_not_interfere():
    import gymnasium.envs.box2d.lunar_lander as lander_module

    constants = {k: v for k, v in vars(lander_module).items() if isinstance(v, (int, float))}
    tasks = ([2.0, 15.0, 1.5], [24.0, 0.0, 0.0])
    env_a, env_b = gym.make(LANDER), gym.make(LANDER)
    env_a.action_space.seed(0)
    actions = [env_a.action_space.sample() for _ in range(60)]
    alone = [rollout(gym.make(LANDER), replay(actions), 3, t, max_steps=60)[0] for t in tasks]
    obs = [env_a.reset(seed=3, options={"task": tasks[0]})[0], env_b.reset(seed=3, options={"task": tasks[1]})[0]]
    together = [[obs[0]], [obs[1]]]
    for action in actions:  # interleaved steps
        together[0].append(env_a.step(action)[0])
        together[1].append(env_b.step(action)[0])
    for solo, mixed in zip(alone, together):
        np.testing.assert_array_equal(solo, np.array(mixed)[: len(solo)])
    assert {k: v for k, v in vars(lander_module).items() if isinstance(v, (int, float))} == constants
    assert gym.make("LunarLander-v3").unwrapped.gravity == -10.0


def test_every_step_info_carries_its_own_copy_of_the_task():
    env = gym.make(MOUNTAIN_CAR)
    _, info0 = env.reset(seed=0, options={"task": [0.001, 0.3]})
    info1 = env.step(np.zeros(1, np.float32))[4]
    info1["task"][0] = 99.0  # a user's edit changes neither the env nor other infos
    assert info0["task"].tolist() == [0.001, 0.3] and env.unwrapped.task.tolist() == [0.001, 0.3]
    assert env.unwrapped.inner.power == 0.001


# ----------------------------------------------------------------------------- test sets, success


@pytest.mark.parametrize("family", FAMILY_LIST, ids=lambda f: f.env_id)
def test_the_shipped_test_set_has_100_tasks_inside_the_space_as_designed(family):
    env = gym.make(family.env_id).unwrapped
    tasks = env.test_set()
    assert tasks.shape == (100, len(family.dimensions))
    assert all(env.task_space.contains(t) for t in tasks)
    assert len({tuple(t) for t in tasks}) == 100
    np.testing.assert_allclose(tasks, design_test_set(family), rtol=1e-9, atol=1e-12)
    # the tasks cover each dimension's range, not a corner of it
    span = (tasks.max(0) - tasks.min(0)) / (family.high - family.low)
    assert np.all(span > 0.85)


def test_success_is_reported_at_the_end_of_each_episode():
    cart = gym.make(CARTPOLE)
    assert rollout(cart, pd_cartpole, seed=0)[2]["success"]
    assert not rollout(cart, lambda obs: 1, seed=0)[2]["success"]

    pendulum = gym.make(PENDULUM)
    upright = {"x_init": 0.0, "y_init": 0.0}  # exactly upright at rest: stays there untouched
    obs, rewards, info = rollout(pendulum, zero_torque, seed=0, options=upright)
    assert len(rewards) == 200 and info["success"]
    assert not rollout(pendulum, zero_torque, seed=0)[2]["success"]

    car = gym.make(MOUNTAIN_CAR)
    assert rollout(car, pump, seed=0)[2]["success"]
    assert not rollout(car, zero_torque, seed=0)[2]["success"]

    lander = gym.make(LANDER)
    land = lambda obs: np.asarray(heuristic(lander.unwrapped.inner, obs), np.float32)  # noqa: E731
    rewards, info = rollout(lander, land, seed=0)[1:]
    assert info["success"] and rewards.sum() >= 200


def test_a_curriculum_wrapper_rescales_the_return_with_the_score_range():
    env = gym.make(CARTPOLE)
    teacher = teachgym.make_teacher("random", env.unwrapped.task_space, seed=0)
    wrapped = CurriculumWrapper(env, teacher)
    _, rewards, info = rollout(wrapped, pd_cartpole, seed=0)
    assert info["teacher_score"] == pytest.approx(rewards.sum() / 500.0)
    assert teacher.n_updates == 1


# ----------------------------------------------------------------------------- unlearnable regions


def test_mountain_car_below_the_proven_power_never_reaches_the_goal_while_default_does():
    env = gym.make(MOUNTAIN_CAR)
    base = env.unwrapped
    for goal in (0.3, 0.45):
        assert base.is_unlearnable([0.0001, goal]) and not base.is_unlearnable([0.0015, goal])
        assert not any(rollout(env, pump, seed=s, task=[0.0001, goal])[2]["success"] for s in range(3))
        assert all(rollout(env, pump, seed=s, task=[0.0015, goal])[2]["success"] for s in range(3))
    # the bound is tight: 10 % above it the pumping policy gets there
    wall = (math.sin(3 * 0.45) - math.sin(3 * -1.2)) * 0.0025 / 3 / (0.45 + 1.2)
    assert rollout(env, pump, seed=0, task=[1.1 * wall, 0.45])[2]["success"]
    assert not rollout(env, pump, seed=0, task=[0.97 * wall, 0.45])[2]["success"]


def test_cartpole_with_too_little_force_for_its_gravity_falls_from_almost_every_start():
    env = gym.make(CARTPOLE)
    weak = [1.0, 1.0, 4.0, 50.0, 0.5]  # force / (total mass * gravity) = 0.002
    assert env.unwrapped.is_unlearnable(weak) and not env.unwrapped.is_unlearnable(env.unwrapped.default_task)
    assert sum(rollout(env, pd_cartpole, seed=s, task=weak)[2]["success"] for s in range(10)) <= 2
    assert all(rollout(env, pd_cartpole, seed=s)[2]["success"] for s in range(3))


def test_lander_under_gravity_beyond_its_engine_crashes_even_when_braking_at_full_thrust():
    env = gym.make(LANDER)
    assert env.unwrapped.is_unlearnable([22.0, 0.0, 0.0]) and not env.unwrapped.is_unlearnable([15.0, 20.0, 2.0])

    def brake(obs):
        action = np.asarray(heuristic(env.unwrapped.inner, obs), np.float32)
        if obs[3] < -0.2:  # falling: main engine at full thrust
            action[0] = 1.0
        return action

    for seed in range(2):
        rewards, info = rollout(env, brake, seed=seed, task=[22.0, 0.0, 0.0])[1:]
        assert not info["success"] and env.unwrapped.inner.game_over  # crashed
    assert rollout(env, brake, seed=0, task=[15.0, 0.0, 0.0])[2]["success"]


def test_pendulum_too_heavy_for_its_torque_cannot_swing_up():
    env = gym.make(PENDULUM)
    heavy = [1.0, 2.0, 20.0]
    assert env.unwrapped.is_unlearnable(heavy) and not env.unwrapped.is_unlearnable([1.0, 1.0, 10.0])

    def swing(obs, m=2.0, length=1.0, g=20.0):  # energy pumping toward the upright energy
        cos, _, speed = obs
        energy = m * length**2 / 6 * speed**2 + m * g * length / 2 * cos
        upright = m * g * length / 2
        return np.array([2.0 * np.sign(speed or 1.0) * (1 if energy < upright else -1)], np.float32)

    for seed in range(8):
        obs, _, info = rollout(env, swing, seed=seed, task=heavy)
        assert not info["success"]
        if obs[0, 0] < 0.5:  # started more than 60° from upright: never even gets that high again
            assert obs[1:, 0].max() < 0.5
    light = [rollout(env, lambda o: swing(o, 1.0, 1.0, 10.0), seed=s)[0][:, 0].max() for s in range(4)]
    assert min(light) > 0.95


def test_mean_of_last_success_looks_only_at_the_last_window_of_steps():
    criterion = teachgym.envs.control.MeanOfLastAtLeast(index=0, window=50, threshold=0.95)
    upright, down = np.ones(1), np.zeros(1)
    assert not any(criterion.update(upright, 0.0, False) for _ in range(49))  # window not full yet
    assert criterion.update(upright, 0.0, False)
    assert criterion.update(down, 0.0, False) and criterion.update(down, 0.0, False)  # 48/50
    assert not criterion.update(down, 0.0, False)  # 47/50 < 0.95
    later = [criterion.update(upright, 0.0, False) for _ in range(60)]
    assert later.index(True) == 47 and all(later[47:])  # 48/50 once the first down left the window
    criterion.reset()
    assert not criterion.update(upright, 0.0, False)


# ----------------------------------------------------------------------------- custom task ranges


def test_custom_ranges_by_name_or_vector_set_the_task_space_and_the_context():
    by_name = gym.make(CARTPOLE, context_obs=True, task_low={"force_mag": 0.01}, task_high={"force_mag": 3.0})
    family = FAMILIES["cartpole"]
    low, high = family.low.copy(), family.high.copy()
    low[4], high[4] = 0.01, 3.0
    by_vector = gym.make(CARTPOLE, context_obs=True, task_low=low, task_high=high)
    for env in (by_name, by_vector):
        np.testing.assert_array_equal(env.unwrapped.task_space.low, low)
        np.testing.assert_array_equal(env.unwrapped.task_space.high, high)
    # a push below the shipped range is now a task, written onto the original's physics
    task = [1.0, 0.1, 1.0, 9.8, 0.05]
    obs, _ = by_name.reset(seed=0, options={"task": task})
    assert by_name.unwrapped.inner.force_mag == 0.05
    np.testing.assert_allclose(obs[-1], (0.05 - 0.01) / (3.0 - 0.01), atol=1e-6)  # normalised in the new range
    with pytest.raises(ValueError, match="outside the task space"):
        gym.make(CARTPOLE).reset(options={"task": task})
    with pytest.raises(ValueError, match="outside the task space"):  # 10 N is beyond the custom range
        by_name.reset(options={"task": [1.0, 0.1, 1.0, 9.8, 10.0]})


def test_a_default_task_outside_the_custom_range_is_clipped_into_it():
    env = gym.make(CARTPOLE, task_high={"force_mag": 3.0}).unwrapped  # the original pushes with 10 N
    np.testing.assert_array_equal(env.default_task, [1.0, 0.1, 1.0, 9.8, 3.0])
    env.reset(seed=0)
    assert env.inner.force_mag == 3.0


@pytest.mark.parametrize("family", FAMILY_LIST, ids=lambda f: f.env_id)
def test_the_test_set_of_custom_ranges_is_the_design_drawn_on_them(family):
    # shrink every range to its middle half: the test set must follow, keeping the design
    low = family.low + 0.25 * (family.high - family.low)
    high = family.low + 0.75 * (family.high - family.low)
    env = gym.make(family.env_id, task_low=low, task_high=high).unwrapped
    tasks = env.test_set()
    assert tasks.shape == (100, len(family.dimensions))
    assert all(env.task_space.contains(t) for t in tasks)
    custom = teachgym.envs.control.with_task_ranges(family, low, high)
    np.testing.assert_allclose(tasks, design_test_set(custom), rtol=1e-9, atol=1e-12)
    span = (tasks.max(0) - tasks.min(0)) / (high - low)
    assert np.all(span > 0.85)
    assert not np.allclose(tasks, gym.make(family.env_id).unwrapped.test_set())


def test_a_wider_force_range_puts_more_of_the_cartpole_test_set_in_the_unlearnable_region():
    shipped = gym.make(CARTPOLE).unwrapped
    weak = gym.make(CARTPOLE, task_low={"force_mag": 0.01}, task_high={"force_mag": 3.0}).unwrapped
    share = [np.mean([env.is_unlearnable(t) for t in env.test_set()]) for env in (shipped, weak)]
    assert share[0] < 0.05 < 0.15 < share[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task_low": {"force": 1.0}}, "unknown task dimensions"),
        ({"task_low": [0.1, 0.1]}, r"shape \(5,\)"),
        ({"task_low": {"force_mag": "weak"}}, "must be a number"),
        ({"task_low": {"force_mag": 5.0}, "task_high": {"force_mag": 2.0}}, "low < high"),
        ({"task_high": {"gravity": float("inf")}}, "finite"),
        ({"task_low": {"cart_mass": 0.0}}, r"must lie in \(0.0, inf\]"),
        ({"task_low": {"force_mag": -1.0}}, r"must lie in \[0.0, inf\]"),
    ],
)
def test_bad_task_ranges_raise_a_value_error_saying_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(CARTPOLE, **kwargs)


def test_the_mountain_car_goal_range_must_stay_on_the_track():
    with pytest.raises(ValueError, match=r"\(-1.2, 0.6\]"):
        gym.make(MOUNTAIN_CAR, task_high={"goal_position": 0.7})
    env = gym.make(MOUNTAIN_CAR, task_high={"goal_position": 0.6}).unwrapped
    assert env.task_space.high[1] == 0.6
