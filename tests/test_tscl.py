"""TSCL (Matiisen et al.): the four teachers' learning-progress estimates, policies, and curricula."""

import numpy as np
import pytest
from conftest import drive, score_streams, task_spaces
from conftest import skills_mastered as mastered
from gymnasium import spaces
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import teachgym
from teachgym.io import load_state, save_state

NAMES = ["tscl-online", "tscl-naive", "tscl-window", "tscl-sampling"]


# ------------------------------------------------------------------ the contract
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(
    space=task_spaces(),
    scores=score_streams(),
    seed=st.integers(0, 2**32 - 1),
    policy=st.sampled_from(["eps-greedy", "boltzmann", "thompson"]),
)
@pytest.mark.parametrize("name", NAMES)
def test_every_sampled_task_lies_in_random_discrete_spaces(name, space, scores, seed, policy):
    assume(not isinstance(space, spaces.Box))
    small = {} if name == "tscl-online" else {"window_size": 3}
    teacher = teachgym.make_teacher(name, space, seed=seed, policy=policy, **small)
    for i in range(60):
        task = teacher.sample()
        assert space.contains(task), (task, space)
        teacher.update(task, scores[i % len(scores)])
    tasks = teacher.sample_batch(7)
    assert all(space.contains(t) for t in tasks)
    teacher.update_batch(tasks, [scores[0]] * 7)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_identical_next_samples(name, tmp_path):
    space = spaces.MultiDiscrete([4, 3], start=[1, -1])
    original = teachgym.make_teacher(name, space, seed=3)
    drive(original, 137, np.random.default_rng(1))  # mid-run for Naive
    save_state(tmp_path / "t.npz", original.state_dict())
    clone = teachgym.make_teacher(name, space, seed=99)
    clone.load_state_dict(load_state(tmp_path / "t.npz"))
    a = drive(original, 500, np.random.default_rng(5))
    b = drive(clone, 500, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_raise_and_change_nothing(name, bad):
    teacher = teachgym.make_teacher(name, spaces.Discrete(5), seed=0)
    drive(teacher, 20, np.random.default_rng(0))
    task = teacher.sample()  # sampling may move the teacher (Naive's run); updating must not
    before = teacher.state_dict()
    with pytest.raises(ValueError, match="finite"):
        teacher.update(task, bad)
    with pytest.raises(ValueError, match="finite"):
        teacher.update_batch([1, 2], [0.5, bad])
    after = teacher.state_dict()
    assert after["n_updates"] == before["n_updates"] == 20
    for key, value in before["state"].items():
        np.testing.assert_array_equal(after["state"][key], value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("policy", ["eps-greedy", "boltzmann", "thompson"])
@pytest.mark.parametrize("huge", [1e155, 1.7e308])
def test_absurdly_large_scores_neither_raise_nor_break_the_teacher(name, policy, huge, tmp_path):
    """Scores near 1e155 overflowed the slope's squares (OverflowError) and left Naive and
    Window raising on every later update of that arm."""
    teacher = teachgym.make_teacher(name, spaces.Discrete(3), seed=0, policy=policy)
    rng = np.random.default_rng(0)
    for _ in range(60):
        teacher.update(teacher.sample(), float(rng.choice([-1.0, 1.0])) * huge)
    for i in range(300):  # ordinary scores afterwards: every arm keeps learning
        task = teacher.sample()
        assert teacher.task_space.space.contains(task)
        teacher.update(task, 0.001 * i * (int(task) + 1))
    assert teacher.n_updates == 360
    assert not np.isnan(teacher._values(False)).any()
    save_state(tmp_path / "t.npz", teacher.state_dict())  # and the state still round-trips
    clone = teachgym.make_teacher(name, spaces.Discrete(3), seed=1, policy=policy)
    clone.load_state_dict(load_state(tmp_path / "t.npz"))
    np.testing.assert_array_equal(drive(clone, 50, np.random.default_rng(2)), drive(teacher, 50, np.random.default_rng(2)))


def test_window_slope_of_huge_scores_is_the_scaled_slope_of_ordinary_ones():
    small = teachgym.make_teacher("tscl-window", spaces.Discrete(2), seed=0, window_size=5)
    huge = teachgym.make_teacher("tscl-window", spaces.Discrete(2), seed=0, window_size=5)
    rng = np.random.default_rng(0)
    for _ in range(40):
        arm, score = int(rng.integers(2)), float(rng.random())
        small.update(arm, score)
        huge.update(arm, score * 2.0**600)  # 4e180: squares overflowed before
    np.testing.assert_array_equal(huge._slopes, small._slopes * 2.0**600)  # exact: scaled by powers of two
    np.testing.assert_array_equal(huge._errors, small._errors * 2.0**600)


def test_only_discrete_spaces_and_known_policies_are_accepted():
    with pytest.raises(ValueError, match="Discrete"):
        teachgym.make_teacher("tscl-window", spaces.Box(0.0, 1.0, (2,)))
    with pytest.raises(ValueError, match="policy"):
        teachgym.make_teacher("tscl-online", spaces.Discrete(3), policy="greedy")
    with pytest.raises(ValueError, match="window_size"):
        teachgym.make_teacher("tscl-sampling", spaces.Discrete(3), window_size=1)


# ------------------------------------------------------------ the four estimates
def test_online_q_is_the_running_average_of_score_changes():
    teacher = teachgym.make_teacher("tscl-online", spaces.Discrete(3), seed=0, lr=0.1)
    for score in (0.2, 0.5, 0.4, 0.9):
        teacher.update(1, score)
    q = 0.0
    for delta in (0.3, -0.1, 0.5):  # the first score has no previous one
        q += 0.1 * (delta - q)
    assert teacher.q[1] == pytest.approx(q) and teacher.q[0] == teacher.q[2] == 0.0


def test_window_value_is_the_least_squares_slope_of_the_last_scores_over_time():
    teacher = teachgym.make_teacher("tscl-window", spaces.Discrete(3), seed=0, window_size=5)
    rng = np.random.default_rng(0)
    history = {0: [], 1: [], 2: []}
    for t in range(60):
        arm, score = int(rng.integers(3)), float(rng.random())
        teacher.update(arm, score)
        history[arm].append((t, score))
    for arm, rows in history.items():
        times, scores = np.array(rows[-5:]).T
        assert teacher._slopes[arm] == pytest.approx(np.polyfit(times, scores, 1)[0])


def test_naive_plays_one_arm_for_a_run_then_learns_the_slope_of_the_run():
    teacher = teachgym.make_teacher("tscl-naive", spaces.Discrete(4), seed=0, window_size=4, lr=0.5)
    run = [teacher.sample() for _ in range(4)]
    assert len(set(int(t) for t in run)) == 1
    scores = [0.1, 0.3, 0.2, 0.6]
    for task, score in zip(run, scores):
        teacher.update(task, score)
    assert teacher.q[int(run[0])] == pytest.approx(0.5 * np.polyfit(range(4), scores, 1)[0])
    assert int(teacher.sample()) != int(run[0])  # arms never played are tried first


def test_sampling_thompson_draws_are_stored_score_changes():
    teacher = teachgym.make_teacher("tscl-sampling", spaces.Discrete(3), seed=0, window_size=3)
    for score in (0.0, 0.1, 0.4, 0.2, 0.9):
        teacher.update(0, score)
    teacher.update(1, 0.5)  # one score: no change stored yet
    draws = np.array([teacher._values(thompson=True) for _ in range(300)])
    assert set(np.round(draws[:, 0], 6)) == {0.3, -0.2, 0.7}  # the last three changes only
    assert np.isinf(draws[:, 1:]).all()


def test_absolute_progress_draws_the_teacher_to_forgetting():
    def greedy_arm(absolute):
        teacher = teachgym.make_teacher(
            "tscl-online", spaces.Discrete(2), seed=0, policy="eps-greedy", epsilon=0.0, absolute=absolute
        )
        for i in range(10):
            teacher.update(0, 1.0 - 0.1 * i)  # arm 0 is being forgotten
            teacher.update(1, 0.5)  # arm 1 is flat
        return {int(teacher.sample()) for _ in range(20)}

    assert greedy_arm(True) == {0} and greedy_arm(False) == {1}


def test_boltzmann_prefers_progress_in_proportion_to_the_temperature():
    def share_of_arm_0(temperature):
        teacher = teachgym.make_teacher("tscl-window", spaces.Discrete(2), seed=0, temperature=temperature)
        for t in range(5):
            teacher.update(0, 0.01 * t)
            teacher.update(1, 0.005 * t)
        return np.mean([int(teacher.sample()) == 0 for _ in range(2000)])

    assert share_of_arm_0(0.0004) > 0.95 and 0.5 < share_of_arm_0(0.01) < 0.7


# --------------------------------------------------------------- the curriculum
@pytest.mark.parametrize(
    "name, variant, margin",
    [
        ("tscl-online", "default", 0.3),
        ("tscl-window", "default", 0.3),
        ("tscl-sampling", "default", 0.3),
        ("tscl-sampling", "forgetting", 0.2),
        ("tscl-naive", "chain", 0.05),  # the weakest of the four: each run costs window_size episodes
    ],
)
def test_tscl_beats_random_on_the_skills_student_at_a_small_budget(name, variant, margin):
    random = np.mean([mastered("random", variant, seed) for seed in range(3)])
    tscl = np.mean([mastered(name, variant, seed) for seed in range(3)])
    assert tscl >= random + margin, (tscl, random)
