"""SFL: learnability p(1 - p) from recent results, the top-k buffer and its uniform share."""

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
@given(
    space=task_spaces(),
    scores=score_streams(),
    seed=st.integers(0, 2**32 - 1),
    sampling=st.sampled_from(["topk", "proportional"]),
)
def test_every_sampled_task_lies_in_random_discrete_spaces(space, scores, seed, sampling):
    assume(not isinstance(space, spaces.Box))
    teacher = teachgym.make_teacher(
        "sfl", space, seed=seed, buffer_update_period=7, buffer_size=3, sampling=sampling
    )
    for i in range(60):
        task = teacher.sample()
        assert space.contains(task), (task, space)
        teacher.update(task, scores[i % len(scores)])
    assert all(space.contains(t) for t in teacher.sample_batch(5))


@pytest.mark.parametrize("sampling", ["topk", "proportional"])
def test_state_dict_round_trip_gives_identical_next_samples(sampling, tmp_path):
    space = spaces.MultiDiscrete([4, 4])
    original = teachgym.make_teacher("sfl", space, seed=3, sampling=sampling, buffer_update_period=20)
    drive(original, 137, np.random.default_rng(1))
    save_state(tmp_path / "t.npz", original.state_dict())
    clone = teachgym.make_teacher("sfl", space, seed=99, sampling=sampling, buffer_update_period=20)
    clone.load_state_dict(load_state(tmp_path / "t.npz"))
    np.testing.assert_array_equal(
        drive(original, 500, np.random.default_rng(5)), drive(clone, 500, np.random.default_rng(5))
    )


def test_non_finite_scores_raise_and_change_nothing():
    teacher = teachgym.make_teacher("sfl", spaces.Discrete(3), seed=0)
    drive(teacher, 20, np.random.default_rng(0))
    before = teacher.success_rates()
    with pytest.raises(ValueError, match="finite"):
        teacher.update(1, float("nan"))
    np.testing.assert_array_equal(teacher.success_rates(), before)


def test_learnability_is_p_times_one_minus_p_over_the_last_window_results():
    teacher = teachgym.make_teacher("sfl", spaces.Discrete(4), seed=0, window=4)
    for s in (1, 1, 1, 1):
        teacher.update(0, s)
    for s in (0, 0, 0, 0):
        teacher.update(1, s)
    for s in (1, 1, 1, 1, 0, 1, 0, 0):  # only the last four count: p = 0.25
        teacher.update(2, s)
    np.testing.assert_allclose(teacher.learnability(), [0.0, 0.0, 0.1875, 0.0])
    assert np.isnan(teacher.success_rates()[3])
    graded = teachgym.make_teacher("sfl", spaces.Discrete(1), seed=0, success_threshold=0.5)
    for s in (0.7, 0.2):
        graded.update(0, s)
    assert graded.success_rates()[0] == 0.5


@pytest.mark.parametrize("sampling", ["topk", "proportional"])
def test_the_buffer_holds_the_most_learnable_tasks_and_gets_its_share_of_samples(sampling):
    rates = [0.0, 1.0, 0.5, 0.25, 0.0, 0.125]
    score = periodic(rates)
    teacher = teachgym.make_teacher(
        "sfl",
        spaces.Discrete(6),
        seed=0,
        buffer_size=2,
        window=8,
        buffer_update_period=30,
        random_task_ratio=0.3,
        sampling=sampling,
    )
    draws = []
    for _ in range(6000):
        task = int(teacher.sample())
        draws.append(task)
        teacher.update(task, score(task))
    assert sorted(teacher.buffer.tolist()) == [2, 3]
    share = np.bincount(draws[-3000:], minlength=6) / 3000
    assert share[[2, 3]].sum() == pytest.approx(0.7 + 0.3 * 2 / 6, abs=0.03)
    ratio = share[2] / share[3]
    expected = (
        (0.7 * 0.25 / (0.25 + 0.1875) + 0.05) / (0.7 * 0.1875 / (0.25 + 0.1875) + 0.05)
        if sampling == "proportional"
        else 1.0
    )
    assert ratio == pytest.approx(expected, rel=0.1)


def test_sfl_beats_random_on_the_skills_student():
    def mastered(name, seed):
        student_seed, teacher_seed = np.random.SeedSequence(seed).spawn(2)
        student = make_skills_student("default", seed=student_seed)
        teacher = teachgym.make_teacher(name, student.task_space, seed=teacher_seed)
        for _ in range(3000):
            task = teacher.sample()
            teacher.update(task, student.train(task))
        return student.mastered_fraction()

    assert (
        np.mean([mastered("sfl", s) for s in range(2)])
        >= np.mean([mastered("random", s) for s in range(2)]) + 0.3
    )
