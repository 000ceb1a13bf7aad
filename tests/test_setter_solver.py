"""Setter-Solver: the judge learns feasibility, the setter proposes tasks of the asked feasibility."""

import numpy as np
import pytest
from conftest import drive
from gymnasium import spaces

import teachgym

BOX = spaces.Box(np.array([0.0, 0.0]), np.array([4.0, 2.0]), dtype=np.float64)


def feasible(task):
    """The toy solver succeeds exactly on the left half of the space."""
    return float(task[0] < 2.0)


@pytest.fixture(scope="module")
def trained():
    teacher = teachgym.make_teacher("setter-solver", BOX, seed=0)
    for _ in range(1200):
        task = teacher.sample()
        teacher.update(task, feasible(task))
    return teacher


def test_the_judge_learns_where_the_solver_succeeds(trained):
    xs = np.linspace(0.1, 3.9, 20)
    grid = np.array([[x, y] for x in xs for y in np.linspace(0.1, 1.9, 5)])
    p = trained.feasibility(grid).reshape(20, 5)
    left, right = p[xs < 1.7], p[xs > 2.3]
    assert left.min() > 0.8 and right.max() < 0.2


def test_the_setter_proposes_feasible_tasks_for_high_f_and_hard_ones_for_low_f(trained):
    easy = trained._setter_sample(np.full(1000, 0.95))[0]
    hard = trained._setter_sample(np.full(1000, 0.05))[0]
    assert (easy[:, 0] < 0.5).mean() > 0.85
    assert (hard[:, 0] < 0.5).mean() < 0.35


def test_the_untrained_setter_covers_the_space_evenly():
    teacher = teachgym.make_teacher("setter-solver", BOX, seed=1)
    tasks = np.array(teacher.sample_batch(2000))
    counts, _, _ = np.histogram2d(tasks[:, 0], tasks[:, 1], bins=4, range=[[0, 4], [0, 2]])
    assert counts.min() > 0.4 * counts.mean()


def test_training_happens_every_update_frequency_episodes_and_changes_the_setter():
    teacher = teachgym.make_teacher("setter-solver", BOX, seed=0, update_frequency=30, train_steps=2)
    before = teacher.judge.arrays()
    for _ in range(29):
        teacher.update(teacher.sample(), 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(before, teacher.judge.params))
    teacher.update(teacher.sample(), 1.0)
    assert not any(np.array_equal(a, b) for a, b in zip(before, teacher.judge.params))


def test_tasks_not_proposed_by_the_setter_still_teach_the_judge():
    teacher = teachgym.make_teacher("setter-solver", BOX, seed=0, update_frequency=50)
    for i in range(300):
        task = [3.5, 1.0] if i % 2 else [0.5, 1.0]
        teacher.update(task, float(i % 2 == 0))
    p_easy, p_hard = teacher.feasibility(np.array([[0.5, 1.0], [3.5, 1.0]]))
    assert p_easy > 0.6 and p_hard < 0.4


def test_samples_stay_inside_the_space_for_any_score():
    teacher = teachgym.make_teacher("setter-solver", BOX, seed=0, update_frequency=20, train_steps=2)
    for i in range(200):
        task = teacher.sample()
        assert BOX.contains(task)
        teacher.update(task, (1e15, -1e15, 0.3)[i % 3])


def test_state_round_trip_continues_identically():
    a = teachgym.make_teacher("setter-solver", BOX, seed=0, update_frequency=40, train_steps=3)
    drive(a, 137, np.random.default_rng(0))
    b = teachgym.make_teacher("setter-solver", BOX, seed=4, update_frequency=40, train_steps=3)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(drive(a, 200, np.random.default_rng(1)), drive(b, 200, np.random.default_rng(1)))


def test_invalid_hyper_parameters_raise():
    with pytest.raises(ValueError, match="n_couplings"):
        teachgym.make_teacher("setter-solver", BOX, n_couplings=0)
    with pytest.raises(ValueError, match="setter_loss_noise_ub"):
        teachgym.make_teacher("setter-solver", BOX, setter_loss_noise_ub=2.0)
