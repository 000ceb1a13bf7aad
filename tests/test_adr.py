"""ADR: bounds move on full queues of boundary scores, samples stay in the current box."""

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.benchmarks.toy import run_toy

BOX = spaces.Box(np.array([0.0, -2.0]), np.array([10.0, 2.0]), dtype=np.float64)


def boundary_task(teacher, dim, upper):
    """A task with dimension ``dim`` on the lower or upper bound (others inside the box)."""
    lower, high = teacher.bounds()
    task = 0.5 * (lower + high)
    task[dim] = high[dim] if upper else lower[dim]
    return task


def test_starts_as_the_single_initial_task_at_the_lower_bounds():
    teacher = teachgym.make_teacher("adr", BOX, seed=0)
    lower, upper = teacher.bounds()
    np.testing.assert_array_equal(lower, BOX.low)
    np.testing.assert_array_equal(upper, BOX.low)
    assert all(np.array_equal(t, BOX.low) for t in teacher.sample_batch(20))


def test_a_full_queue_of_high_scores_expands_the_bound_by_one_step():
    teacher = teachgym.make_teacher("adr", BOX, seed=0, initial_task=[5.0, 0.0])
    for _ in range(9):
        teacher.update(boundary_task(teacher, 0, upper=True), 1.0)
        assert teacher.bounds()[1][0] == 5.0  # the queue is not full yet
    teacher.update(boundary_task(teacher, 0, upper=True), 1.0)
    lower, upper = teacher.bounds()
    assert upper[0] == pytest.approx(6.0)  # step 0.1 of the range 10
    assert lower[0] == pytest.approx(4.0)  # lower == upper: the task sat on both bounds
    assert upper[1] == pytest.approx(0.4) and lower[1] == pytest.approx(-0.4)


def test_a_full_queue_of_low_scores_shrinks_the_bound_back():
    teacher = teachgym.make_teacher("adr", BOX, seed=0, initial_task=[5.0, 0.0])
    for _ in range(10):
        teacher.update(boundary_task(teacher, 0, upper=True), 1.0)
    for _ in range(10):
        teacher.update(boundary_task(teacher, 0, upper=True), 0.0)
    lower, upper = teacher.bounds()
    assert upper[0] == pytest.approx(5.0) and lower[0] == pytest.approx(4.0)


def test_middling_scores_and_interior_tasks_leave_the_bounds_alone():
    teacher = teachgym.make_teacher("adr", BOX, seed=0, initial_task=[5.0, 0.0])
    for _ in range(10):
        teacher.update(boundary_task(teacher, 0, upper=True), 1.0)
    before = teacher.bounds()
    for _ in range(30):
        teacher.update(boundary_task(teacher, 0, upper=True), 0.5)
        teacher.update([5.2, 0.1], 1.0)
    np.testing.assert_array_equal(teacher.bounds()[0], before[0])
    np.testing.assert_array_equal(teacher.bounds()[1], before[1])


def test_with_perfect_scores_the_box_grows_to_the_whole_space_and_no_further():
    teacher = teachgym.make_teacher("adr", BOX, seed=0)
    for _ in range(2000):
        task = teacher.sample()
        teacher.update(task, 1.0)
        lower, upper = teacher.bounds()
        assert (lower >= BOX.low).all() and (upper <= BOX.high).all()
    np.testing.assert_allclose(lower, BOX.low)
    np.testing.assert_allclose(upper, BOX.high)


def test_about_half_of_the_samples_lie_on_a_free_bound_and_all_inside_the_box():
    teacher = teachgym.make_teacher("adr", BOX, seed=1, initial_task=[5.0, 0.0])
    for dim in (0, 1):
        for upper in (True, False):
            for _ in range(10):
                teacher.update(boundary_task(teacher, dim, upper), 1.0)
    lower, upper = teacher.bounds()
    tasks = np.array(teacher.sample_batch(4000))
    assert ((tasks >= lower) & (tasks <= upper)).all()
    on_bound = ((tasks == lower) | (tasks == upper)).any(1)
    assert 0.45 < on_bound.mean() < 0.55


def test_invalid_hyper_parameters_raise():
    with pytest.raises(ValueError, match="shrink_threshold < expand_threshold"):
        teachgym.make_teacher("adr", BOX, expand_threshold=0.2, shrink_threshold=0.5)
    with pytest.raises(ValueError, match="initial_task"):
        teachgym.make_teacher("adr", BOX, initial_task=[20.0, 0.0])
    with pytest.raises(ValueError, match="queue_len"):
        teachgym.make_teacher("adr", BOX, queue_len=0)


def test_state_round_trip_continues_identically():
    a = teachgym.make_teacher("adr", BOX, seed=3)
    rng = np.random.default_rng(0)
    for _ in range(333):
        task = a.sample()
        a.update(task, float(rng.random() > 0.2))
    b = teachgym.make_teacher("adr", BOX, seed=7)
    b.load_state_dict(a.state_dict())
    for _ in range(300):
        ta, tb = a.sample(), b.sample()
        np.testing.assert_array_equal(ta, tb)
        score = float(rng.random() > 0.3)
        a.update(ta, score)
        b.update(tb, score)


def test_adr_beats_random_on_the_grid_student_at_a_small_budget():
    random = run_toy("random", "default", 0, episodes=4000, eval_every=4000)
    adr = run_toy("adr", "default", 0, episodes=4000, eval_every=4000)
    assert adr["mastered_pct"][-1] >= random["mastered_pct"][-1] + 5.0
