"""Oracle: samples from a difficulty window that moves forward with success."""

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.benchmarks.toy import run_toy

BOX = spaces.Box(0.0, 1.0, (2,), dtype=np.float64)


def first_coordinate(tasks):
    """Difficulty = the first coordinate of a task in [0, 1]^2; the right fifth is unfeasible."""
    x = np.asarray(tasks, dtype=np.float64).reshape(-1, 2)[:, 0]
    return np.where(x > 0.8, np.inf, x)


def oracle(**kwargs):
    teacher = teachgym.make_teacher("oracle", BOX, seed=0, **kwargs)
    teacher.bind(difficulty=first_coordinate)
    return teacher


def test_sampling_without_a_difficulty_function_raises_a_clear_error():
    teacher = teachgym.make_teacher("oracle", BOX, seed=0)
    with pytest.raises(ValueError, match=r"bind\(difficulty=...\)"):
        teacher.sample()


def test_samples_lie_in_the_difficulty_window():
    teacher = oracle(window=0.2)
    tasks = np.array(teacher.sample_batch(500))
    assert (tasks[:, 0] <= 0.2).all()
    assert tasks[:, 0].max() > 0.18 and tasks[:, 1].min() < 0.02 and tasks[:, 1].max() > 0.98  # uniform in it


def test_the_window_advances_one_step_after_step_rate_successes_and_never_on_failure():
    teacher = oracle(window=0.2, step=0.05, step_rate=50, score_threshold=0.75)
    for _ in range(200):
        teacher.update(teacher.sample(), 0.5)
    assert teacher.position == 0.0
    for _ in range(49):
        teacher.update(teacher.sample(), 1.0)
    assert teacher.position == 0.0
    teacher.update(teacher.sample(), 1.0)
    assert teacher.position == pytest.approx(0.05)
    tasks = np.array(teacher.sample_batch(300))
    assert (tasks[:, 0] >= 0.05).all() and (tasks[:, 0] <= 0.25).all()


def test_the_window_stops_at_the_hardest_feasible_tasks():
    teacher = oracle(window=0.2, step=0.1, step_rate=10)
    for _ in range(500):
        teacher.update(teacher.sample(), 1.0)
    assert teacher.position == pytest.approx(0.8)
    # [0.8, 1.0] holds only x = 0.8: the oracle falls back on the nearest feasible proposal.
    tasks = np.array(teacher.sample_batch(20))
    assert np.isfinite(first_coordinate(tasks)).all() and (tasks[:, 0] > 0.7).all()


def test_state_round_trip_continues_identically():
    a = oracle(step_rate=20)
    rng = np.random.default_rng(0)
    for _ in range(250):
        task = a.sample()
        a.update(task, float(rng.random() > 0.1))
    b = teachgym.make_teacher("oracle", BOX, seed=5, step_rate=20)
    b.bind(difficulty=first_coordinate)
    b.load_state_dict(a.state_dict())
    for _ in range(300):
        ta, tb = a.sample(), b.sample()
        np.testing.assert_array_equal(ta, tb)
        score = float(rng.random() > 0.1)
        a.update(ta, score)
        b.update(tb, score)


@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_beats_random_on_the_grid_student_at_a_small_budget(seed):
    random = run_toy("random", "default", seed, episodes=4000, eval_every=4000)
    best = run_toy("oracle", "default", seed, episodes=4000, eval_every=4000)
    assert random["mastered_pct"][-1] <= 1.0
    assert best["mastered_pct"][-1] >= 20.0
