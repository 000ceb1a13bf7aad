"""Online difficulty filtering: only tasks of intermediate pass rate are kept, batch by batch."""

import numpy as np
import pytest
from conftest import drive as conftest_drive
from conftest import score_streams, task_spaces
from gymnasium import spaces
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import teachgym
from teachgym.io import load_state, save_state
from teachgym.students.skills import make_skills_student


def drive(teacher, n, rng):
    return conftest_drive(teacher, n, rng, binary=True)


def periodic(rates):
    """Deterministic pass/fail per task: task i passes on a fraction rates[i] of its episodes."""
    counts = np.zeros(len(rates))

    def score(task):
        counts[task] += 1
        return float(np.floor(counts[task] * rates[task]) > np.floor((counts[task] - 1) * rates[task]))

    return score


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(space=task_spaces(), scores=score_streams(), seed=st.integers(0, 2**32 - 1))
def test_every_sampled_task_lies_in_random_discrete_spaces(space, scores, seed):
    assume(not isinstance(space, spaces.Box))
    teacher = teachgym.make_teacher("difficulty-filter", space, seed=seed, batch_size=7, n_rollouts=3)
    for i in range(60):
        task = teacher.sample()
        assert space.contains(task), (task, space)
        teacher.update(task, scores[i % len(scores)])
    tasks = teacher.sample_batch(5)
    assert all(space.contains(t) for t in tasks)
    teacher.update_batch(tasks, scores[:1] * 5)


def test_state_dict_round_trip_gives_identical_next_samples(tmp_path):
    space = spaces.MultiDiscrete([4, 4])
    original = teachgym.make_teacher("difficulty-filter", space, seed=3, batch_size=10)
    drive(original, 137, np.random.default_rng(1))
    save_state(tmp_path / "t.npz", original.state_dict())
    clone = teachgym.make_teacher("difficulty-filter", space, seed=99, batch_size=10)
    clone.load_state_dict(load_state(tmp_path / "t.npz"))
    np.testing.assert_array_equal(
        drive(original, 500, np.random.default_rng(5)), drive(clone, 500, np.random.default_rng(5))
    )


def test_non_finite_scores_raise_and_change_nothing():
    teacher = teachgym.make_teacher("difficulty-filter", spaces.Discrete(3), seed=0)
    drive(teacher, 20, np.random.default_rng(0))
    before = teacher.pass_rates()
    with pytest.raises(ValueError, match="finite"):
        teacher.update_batch([0, 1], [1.0, float("inf")])
    np.testing.assert_array_equal(teacher.pass_rates(), before)


@pytest.mark.parametrize("low, high, kept", [(0.0, 1.0, [2, 3, 5]), (0.25, 0.75, [2])])
def test_only_tasks_of_intermediate_pass_rate_are_kept_and_sampled(low, high, kept):
    rates = [0.0, 1.0, 0.5, 0.875, 0.0, 0.125]
    score = periodic(rates)
    teacher = teachgym.make_teacher(
        "difficulty-filter", spaces.Discrete(6), seed=0, low=low, high=high, retest_prob=0.1
    )
    draws = []
    for _ in range(40):  # batches of 64
        tasks = teacher.sample_batch(64)
        teacher.update_batch(tasks, [score(int(t)) for t in tasks])
        draws += [int(t) for t in tasks]
    assert np.flatnonzero(teacher.kept).tolist() == kept
    recent = np.array(draws[-1280:])
    outside = ~np.isin(recent, kept)
    assert outside.mean() == pytest.approx(0.1, abs=0.025)  # the re-tests, spread over the others
    assert set(recent[outside].tolist()) == set(range(6)) - set(kept)


def test_the_kept_set_changes_only_at_the_end_of_a_batch():
    teacher = teachgym.make_teacher(
        "difficulty-filter", spaces.Discrete(2), seed=0, batch_size=4, n_rollouts=2
    )
    for s in (1.0, 0.0, 1.0):
        teacher.update(0, s)
    assert not teacher.kept.any()  # three updates: the batch is still open
    teacher.update(1, 1.0)
    assert teacher.kept.tolist() == [True, False]
    teacher.update_batch([1, 0, 0], [0.0, 1.0, 1.0])  # update_batch closes its batch
    assert teacher.kept.tolist() == [False, True]


def test_difficulty_filter_beats_random_on_the_skills_student():
    def mastered(name, seed):
        student_seed, teacher_seed = np.random.SeedSequence(seed).spawn(2)
        student = make_skills_student("default", seed=student_seed)
        teacher = teachgym.make_teacher(name, student.task_space, seed=teacher_seed)
        for _ in range(3000):
            task = teacher.sample()
            teacher.update(task, student.train(task))
        return student.mastered_fraction()

    assert (
        np.mean([mastered("difficulty-filter", s) for s in range(2)])
        >= np.mean([mastered("random", s) for s in range(2)]) + 0.3
    )
