"""Fuzzing the envs: every body and control env survives random tasks (corners included) and
random or extreme actions; the fuzzer itself catches NaNs, infinities, bound breaks and exceptions."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from teachgym.benchmarks.fuzz import (
    FuzzConfig,
    action_plan,
    default_env_specs,
    draw_task,
    env_label,
    fuzz_envs,
)

SPECS = default_env_specs()


@pytest.mark.parametrize("spec", SPECS, ids=[env_label(s) for s in SPECS])
def test_env_has_no_failure_on_random_tasks_and_actions(spec):
    # 16 episodes x 16 envs = 256 episodes in the suite; the first eight cover both extreme
    # corners and every action mode, the rest mix corners, faces and uniform tasks.
    table = fuzz_envs([spec], episodes_per_env=16, max_steps=60, seed=7)
    row = table.iloc[0]
    assert row["first_failure"] == "" and row["failures"] == 0
    assert row["episodes"] == 16 and row["steps"] >= 16 and row["corner_episodes"] >= 2


def test_default_config_covers_every_body_on_both_tracks_and_the_control_envs():
    from teachgym.envs.control import FAMILIES
    from teachgym.envs.walkers import BODIES

    envs = FuzzConfig().envs
    for track in ("teachgym/StumpTracks-v0", "teachgym/HexagonTracks-v0"):
        assert {kw["body"] for env, kw in envs if env == track} == set(BODIES)
    assert {f.env_id for f in FAMILIES.values()} <= {env for env, _ in envs}


# ----------------------------------------------------------------------------- the fuzzer fails when it should


class FaultyEnv(gym.Env):
    """A 2-D task env that breaks in one way (``fault``) only where ``task[0]`` is at its upper bound."""

    def __init__(self, fault: str = "none") -> None:
        self.fault = fault
        self.task_space = spaces.Box(0.0, 1.0, (2,), dtype=np.float64)
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.task = np.asarray(options["task"], dtype=np.float64)
        self.t = 0
        return np.zeros(2, np.float32), {"task": self.task.copy()}

    def step(self, action):
        self.t += 1
        obs, reward, info = np.full(2, 0.5 * float(action[0]), np.float32), 0.0, {"task": self.task.copy()}
        if self.task[0] == 1.0 and self.t == 3:  # only an edge task, late in the episode, breaks
            if self.fault == "nan_observation":
                obs[1] = np.nan
            elif self.fault == "inf_reward":
                reward = np.inf
            elif self.fault == "outside_bounds":
                obs[0] = 1.5
            elif self.fault == "missing_task":
                del info["task"]
            elif self.fault == "exception":
                raise RuntimeError("boom")
        return obs, reward, False, self.t >= 10, info


@pytest.mark.parametrize("fault, message", [
    ("nan_observation", "non-finite observation"),
    ("inf_reward", "non-finite reward"),
    ("outside_bounds", "outside observation_space"),
    ("missing_task", "no 'task'"),
    ("exception", "RuntimeError: boom"),
])
def test_fuzzer_reports_a_broken_env_with_the_task_that_breaks_it(fault, message):
    table = fuzz_envs([(FaultyEnv, {"fault": fault}), (FaultyEnv, {})], episodes_per_env=20, max_steps=10, seed=0)
    broken, clean = table.iloc[0], table.iloc[1]
    assert clean["failures"] == 0 and clean["steps"] == 200
    assert broken["episodes"] == 20 and broken["failures"] >= 1  # at least the all-high corner
    assert message in broken["first_failure"] and "step 3" in broken["first_failure"]
    assert "task [1.0, 1.0] (corner)" in broken["first_failure"]  # episode 1 is the all-high corner


def test_fuzzer_records_an_env_that_cannot_be_made_and_goes_on():
    def unmakeable():
        raise ValueError("no such body")

    table = fuzz_envs([(unmakeable, {}), (FaultyEnv, {})], episodes_per_env=5, max_steps=5)
    assert table["failures"].tolist() == [5, 0]
    assert "no such body" in table["first_failure"].iloc[0]


def test_fuzz_runs_repeat_for_a_seed():
    spec = [("teachgym/StumpTracks-v0", {"body": "small_bipedal"})]
    a, b = (fuzz_envs(spec, 6, 40, seed=3).drop(columns="seconds") for _ in range(2))
    assert a.equals(b)


# ----------------------------------------------------------------------------- tasks and actions


def test_tasks_cover_both_extreme_corners_faces_and_the_interior_and_stay_in_bounds():
    space = spaces.Box(np.array([0.0, -2.0, 1.0]), np.array([3.0, 2.0, 1.5]), dtype=np.float64)
    rng = np.random.default_rng(0)
    draws = [draw_task(space, i, rng) for i in range(400)]
    tasks = np.array([t for t, _ in draws])
    kinds = [k for _, k in draws]
    assert np.array_equal(tasks[0], space.low) and np.array_equal(tasks[1], space.high)
    assert all(space.contains(t) for t in tasks)
    on_bound = (tasks == space.low) | (tasks == space.high)
    for kind, bound in zip(kinds, on_bound):
        assert (kind == "corner") == bound.all() or kind == "face"
        assert kind != "face" or bound.any()
    assert 60 < kinds.count("corner") < 140 and 60 < kinds.count("face") < 140
    assert len({tuple(t) for t, k in zip(tasks, kinds) if k == "corner"}) == 8  # every corner of a 3-D box


def test_extreme_action_plans_hit_the_bounds_of_box_and_discrete_spaces():
    rng = np.random.default_rng(0)
    box = spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
    assert np.all(np.array(action_plan(box, "high", 4, rng)) == 1.0)
    assert np.all(np.array(action_plan(box, "low", 4, rng)) == -1.0)
    alternating = np.array(action_plan(box, "alternating", 2, rng))
    assert alternating.tolist() == [[1, -1, 1], [-1, 1, -1]]
    random = np.array(action_plan(box, "random", 500, rng))
    assert random.dtype == np.float32 and all(box.contains(a) for a in random) and random.std() > 0.4
    discrete = spaces.Discrete(3, start=1)
    assert action_plan(discrete, "high", 2, rng) == [3, 3] and action_plan(discrete, "low", 2, rng) == [1, 1]
    assert action_plan(discrete, "alternating", 3, rng) == [3, 1, 3]
    assert set(action_plan(discrete, "random", 200, rng)) == {1, 2, 3}


def test_contextual_lunar_lander_declares_an_observation_space_its_climbs_and_spins_stay_in():
    # Found by the fuzzer: gymnasium's box (|y| <= 2.5, |angle| <= 2 pi) does not hold under low
    # gravity with the main engine on; the contextual env widens the bounds nothing keeps.
    env = gym.make("teachgym/ContextualLunarLander-v0", disable_env_checker=True)
    obs, _ = env.reset(seed=0, options={"task": [1.0, 0.0, 0.0]})
    highest = obs[1]
    for t in range(300):
        obs, _, terminated, truncated, _ = env.step(np.array([1.0, 1.0 if t % 20 < 10 else -1.0], np.float32))
        assert env.observation_space.contains(obs)
        highest = max(highest, obs[1])
        if terminated or truncated:
            break
    assert highest > 2.5  # the climb the original's box forbids
