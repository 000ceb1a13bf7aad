"""PLR and Robust PLR: rank prioritisation, staleness, replay schedules, level scores."""

import numpy as np
import pytest
from conftest import drive, score_streams, task_spaces
from gymnasium import spaces
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import teachgym
from teachgym.io import load_state, save_state
from teachgym.students.skills import make_skills_student

NAMES = ["plr", "robust-plr"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(space=task_spaces(), scores=score_streams(), seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("name", NAMES)
def test_every_sampled_task_lies_in_random_discrete_spaces(name, space, scores, seed):
    assume(not isinstance(space, spaces.Box))
    teacher = teachgym.make_teacher(name, space, seed=seed)
    for i in range(60):
        task = teacher.sample()
        assert space.contains(task), (task, space)
        teacher.update(task, scores[i % len(scores)])
    assert all(space.contains(t) for t in teacher.sample_batch(5))
    assert teacher.replay_distribution().sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_identical_next_samples(name, tmp_path):
    space = spaces.MultiDiscrete([5, 4])
    original = teachgym.make_teacher(name, space, seed=3)
    drive(original, 137, np.random.default_rng(1))
    save_state(tmp_path / "t.npz", original.state_dict())
    clone = teachgym.make_teacher(name, space, seed=99)
    clone.load_state_dict(load_state(tmp_path / "t.npz"))
    np.testing.assert_array_equal(
        drive(original, 500, np.random.default_rng(5)), drive(clone, 500, np.random.default_rng(5))
    )


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_scores_raise_and_change_nothing(name):
    teacher = teachgym.make_teacher(name, spaces.Discrete(6), seed=0)
    drive(teacher, 20, np.random.default_rng(0))
    before = teacher.scores.copy()
    with pytest.raises(ValueError, match="finite"):
        teacher.update(2, float("nan"))
    with pytest.raises(ValueError, match="plr_score"):
        teacher.update(2, 0.5, plr_score=float("inf"))
    np.testing.assert_array_equal(teacher.scores, before)
    assert teacher.n_updates == 20


def test_rank_prioritisation_with_temperature_and_shared_ranks_for_ties():
    beta = 0.5
    teacher = teachgym.make_teacher("plr", spaces.Discrete(5), seed=0, temperature=beta, staleness_coef=0.0)
    for level, score in enumerate([0.5, 0.2, 0.5, 0.9]):
        teacher.update(level, 0.0, plr_score=score)  # level 4 stays unseen
    weights = (1.0 / np.array([2, 4, 2, 1])) ** (1 / beta)
    np.testing.assert_allclose(teacher.replay_distribution(), np.r_[weights / weights.sum(), 0.0])


def test_staleness_mixes_in_levels_not_drawn_for_long():
    teacher = teachgym.make_teacher("plr", spaces.Discrete(3), seed=0, staleness_coef=0.3, temperature=1.0)
    for level in range(3):
        teacher.update(level, 0.0, plr_score=1.0)  # equal scores: P_S uniform
    teacher._draws, teacher._last_drawn[:] = 10, [10, 7, 4]  # staleness 0, 3, 6
    expected = 0.7 * np.full(3, 1 / 3) + 0.3 * np.array([0, 3, 6]) / 9
    np.testing.assert_allclose(teacher.replay_distribution(), expected)
    draws = []
    for _ in range(6000):
        teacher._draws, teacher._last_drawn[:] = 10, [10, 7, 4]
        teacher.last_replay = True
        draws.append(teacher._replay_level())
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / len(draws), expected, atol=0.02)


def test_proportional_schedule_draws_unseen_levels_until_replay_takes_over():
    teacher = teachgym.make_teacher("plr", spaces.Discrete(10), seed=0)
    for _ in range(200):
        seen_before = teacher.seen.copy()
        level = int(teacher.sample())
        if not teacher.last_replay:
            assert not seen_before[level]  # a new level is an unseen one
        else:
            assert seen_before[level]
        teacher.update(level, 0.5)
    assert teacher.seen.all()
    for _ in range(50):
        teacher.sample()
        assert teacher.last_replay  # all seen: always replay


def test_robust_plr_replays_with_a_fixed_probability_and_flags_levels_not_to_train_on():
    teacher = teachgym.make_teacher("robust-plr", spaces.Discrete(4), seed=0, replay_prob=0.5)
    flags, new_levels = [], []
    for _ in range(4000):
        level = int(teacher.sample())
        flags.append(teacher.last_replay)
        if not teacher.last_replay:
            new_levels.append(level)
        teacher.update(level, 0.5)  # every update scores its level, trained on or not
    assert abs(np.mean(flags) - 0.5) < 0.03
    np.testing.assert_allclose(np.bincount(new_levels, minlength=4) / len(new_levels), 0.25, atol=0.03)


def test_level_scores_are_l1_or_positive_value_loss_against_the_value_read_before_the_episode():
    for function, expected in (("l1", [0.7, 0.3]), ("positive", [0.7, 0.0])):
        value = {"now": 0.3}
        teacher = teachgym.make_teacher("plr", spaces.Discrete(2), seed=0, score_function=function)
        teacher.bind(value_estimate=lambda tasks, value=value: np.full(len(tasks), value["now"]))
        teacher.sample()  # the critic's predictions are read when the episode is drawn
        value["now"] = 0.9  # the student learnt during the episode: not the baseline
        teacher.update(0, 1.0)
        teacher.update(1, 0.0)
        np.testing.assert_allclose(teacher.scores, expected)


def test_the_value_estimate_is_read_for_all_levels_every_value_every_samples():
    calls = []

    def value_estimate(tasks):
        calls.append(np.asarray(tasks).tolist())
        return np.zeros(len(tasks))

    teacher = teachgym.make_teacher("plr", spaces.MultiDiscrete([2, 3]), seed=0, value_every=4)
    teacher.bind(value_estimate=value_estimate)
    for _ in range(9):
        teacher.update(teacher.sample(), 0.5)
    assert len(calls) == 3  # samples 1, 5 and 9
    assert sorted(map(tuple, calls[0])) == [(i, j) for i in range(2) for j in range(3)]


def test_without_a_value_estimate_the_baseline_is_the_running_mean_score():
    teacher = teachgym.make_teacher("plr", spaces.Discrete(1), seed=0, value_lr=0.5)
    teacher.update(0, 1.0)  # first episode: no baseline yet, score 0
    assert teacher.scores[0] == 0.0
    teacher.update(0, 0.0)  # baseline 1.0
    assert teacher.scores[0] == pytest.approx(1.0)
    teacher.update(0, 1.0)  # baseline 0.5
    assert teacher.scores[0] == pytest.approx(0.5)


def test_plr_beats_random_on_the_skills_student():
    def mastered(name, seed):
        student_seed, teacher_seed = np.random.SeedSequence(seed).spawn(2)
        student = make_skills_student("default", seed=student_seed)
        teacher = teachgym.make_teacher(name, student.task_space, seed=teacher_seed)
        teacher.bind(**student.teacher_hooks())
        for _ in range(3000):
            task = teacher.sample()
            teacher.update(task, student.train(task))
        return student.mastered_fraction()

    assert (
        np.mean([mastered("plr", s) for s in range(2)])
        >= np.mean([mastered("random", s) for s in range(2)]) + 0.3
    )
