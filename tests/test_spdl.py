"""SPDL: the context distribution moves toward the target as values rise, within the KL bound."""

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.teachers.spdl import _Gaussian, _kl

BOX = spaces.Box(np.array([0.0, 0.0]), np.array([3.0, 6.0]), dtype=np.float64)


def spdl(value=None, **kwargs):
    teacher = teachgym.make_teacher("spdl", BOX, seed=0, **{"update_frequency": 50, **kwargs})
    if value is not None:
        teacher.bind(value_estimate=value)
    return teacher


def run(teacher, episodes, score=lambda task: 0.0):
    """Drive ``episodes`` episodes; return (KL to target, KL(old || new)) after each update."""
    trace = []
    for i in range(episodes):
        before = _Gaussian(teacher.mean.copy(), teacher.chol.copy())
        task = teacher.sample()
        teacher.update(task, score(task))
        if (i + 1) % teacher.update_frequency == 0:
            step = _kl(before, _Gaussian(teacher.mean, teacher.chol), False)[0]
            trace.append((teacher.kl_to_target(), step))
    return np.array(trace)


def test_high_values_move_the_distribution_to_the_target_one_bounded_step_at_a_time():
    teacher = spdl(value=lambda tasks: np.ones(len(tasks)), max_kl=0.1)
    trace = run(teacher, 50 * 60)
    assert (np.diff(trace[:, 0]) <= 1e-12).all()  # KL to the target never grows
    assert (trace[:, 1] <= 0.1 + 1e-9).all()  # each step respects the KL bound
    assert trace[:, 1].max() > 0.05  # and is not trivially small
    assert trace[-1, 0] < 1e-3
    np.testing.assert_allclose(teacher.mean, [0.5, 0.5], atol=0.02)
    np.testing.assert_allclose(np.diag(teacher.chol), 1 / np.sqrt(12), atol=0.02)


def test_a_smaller_kl_bound_moves_more_slowly():
    fast = run(spdl(value=lambda t: np.ones(len(t)), max_kl=0.2), 500)[-1, 0]
    slow = run(spdl(value=lambda t: np.ones(len(t)), max_kl=0.02), 500)[-1, 0]
    assert slow > fast + 0.5


def test_values_below_the_threshold_keep_the_distribution_where_it_is():
    teacher = spdl(value=lambda tasks: np.zeros(len(tasks)))
    start = teacher.kl_to_target()
    run(teacher, 500)
    assert teacher.kl_to_target() == start and not teacher.above_threshold


def test_expansion_keeps_the_expected_value_near_the_threshold_and_spreads_where_value_allows():
    """V = 1 on the lowest tenth of the first dimension whatever the second: q must stay low on
    the first dimension and spread along the second."""

    def value(tasks):
        return (np.asarray(tasks)[:, 0] < 0.3).astype(float)

    teacher = spdl(value=value, performance_threshold=0.5, update_frequency=100)
    run(teacher, 6000)
    assert teacher.above_threshold and teacher.kl_to_target() > 0.5
    cov = teacher.chol @ teacher.chol.T
    assert teacher.mean[1] > teacher.mean[0] + 0.04 and cov[1, 1] > cov[0, 0]
    rng = np.random.default_rng(0)
    unit = np.clip(teacher.mean + rng.standard_normal((20000, 2)) @ teacher.chol.T, 0, 1)
    # The threshold binds on an importance-sampling estimate from 100 contexts: some slack.
    assert value(unit * [3.0, 6.0]).mean() > 0.3


def test_below_threshold_at_first_the_step_maximises_the_expected_value():
    """V grows with the first coordinate; the mean must move up along it."""
    teacher = spdl(value=lambda tasks: 0.1 * np.asarray(tasks)[:, 0] / 3.0, initial_mean=[1.5, 3.0])
    run(teacher, 1000)
    assert not teacher.above_threshold
    assert teacher.mean[0] > 0.6  # from 0.5, along the gradient of V


def test_without_a_value_estimate_reported_scores_drive_the_same_expansion():
    teacher = spdl()
    trace = run(teacher, 50 * 30, score=lambda task: 1.0)
    assert trace[-1, 0] < 0.5 * trace[0, 0]


def test_samples_stay_inside_the_space_for_any_score_magnitude():
    teacher = spdl(update_frequency=10)
    for i in range(300):
        task = teacher.sample()
        assert BOX.contains(task)
        teacher.update(task, (1e15, -1e15, 0.0)[i % 3])


def test_state_round_trip_continues_identically():
    a = spdl(value=lambda t: np.ones(len(t)))
    run(a, 275)
    b = spdl(value=lambda t: np.ones(len(t)))
    b.load_state_dict(a.state_dict())
    for _ in range(300):
        ta, tb = a.sample(), b.sample()
        np.testing.assert_array_equal(ta, tb)
        a.update(ta, 0.5)
        b.update(tb, 0.5)


def test_invalid_hyper_parameters_raise():
    with pytest.raises(ValueError, match="max_kl"):
        teachgym.make_teacher("spdl", BOX, max_kl=0.0)
    with pytest.raises(ValueError, match="initial_mean"):
        teachgym.make_teacher("spdl", BOX, initial_mean=[5.0, 0.0])
