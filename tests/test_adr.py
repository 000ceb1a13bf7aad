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


# ------------------------------------------------------------- thresholds, units, TeachMyAgent
WALKER_RANGE = (-150.0, 350.0)
STUMPS = spaces.Box(np.array([0.0, 0.0]), np.array([3.0, 6.0]), dtype=np.float32)


def fill_upper_queue(teacher, dim, score):
    """One full queue of ``score`` on the upper bound of ``dim`` (tasks in the space's dtype, as sampled)."""
    for _ in range(teacher.queue_len):
        teacher.update(teacher.task_space.task(boundary_task(teacher, dim, upper=True)), score)


def grown(teacher, dim=0):
    """A teacher whose upper bound of ``dim`` has expanded once (so it can also shrink)."""
    fill_upper_queue(teacher, dim, 1.0)
    return teacher.bounds()


@pytest.mark.parametrize(
    "raw_return, moves",
    [(-150.0, "shrinks"), (0.0, "shrinks"), (50.0, "stays"), (230.0, "expands")],
)
def test_default_thresholds_mean_returns_0_and_225_on_a_walker_score_range(raw_return, moves):
    """The wrapper hands scores rescaled from (-150, 350): a return of 0 (0.3) must shrink, as the
    docstring says, not only a return of -150 (0.0)."""
    from teachgym.wrappers import rescale_score

    teacher = teachgym.make_teacher("adr", BOX, seed=0, initial_task=[5.0, 0.0])
    before = grown(teacher)[1][0]
    fill_upper_queue(teacher, 0, rescale_score(raw_return, WALKER_RANGE))
    after = teacher.bounds()[1][0]
    expected = {"shrinks": before - 1.0, "stays": before, "expands": before + 1.0}[moves]
    assert after == pytest.approx(expected)


@pytest.mark.parametrize("raw_return, delta", [(-1.0, -1.0), (1.0, 0.0), (179.0, 0.0), (180.0, 1.0)])
def test_thresholds_in_raw_return_with_a_score_range(raw_return, delta):
    from teachgym.wrappers import rescale_score

    teacher = teachgym.make_teacher(
        "adr", BOX, seed=0, initial_task=[5.0, 0.0],
        expand_threshold=180.0, shrink_threshold=0.0, score_range=WALKER_RANGE,
    )
    before = grown(teacher)[1][0]
    fill_upper_queue(teacher, 0, rescale_score(raw_return, WALKER_RANGE))
    assert teacher.bounds()[1][0] == pytest.approx(before + delta)


def test_teachmyagent_preset_moves_bounds_by_0_1_in_task_units():
    teacher = teachgym.make_teacher("adr", STUMPS, seed=0, preset="teachmyagent", initial_task=[1.0, 3.0])
    assert teacher.boundary_sampling_p == 0.7 and teacher.queue_len == 10
    fill_upper_queue(teacher, 0, 0.66)  # return 180 on (-150, 350): expand
    lower, upper = teacher.bounds()
    np.testing.assert_allclose(upper, [1.1, 3.1], atol=1e-6)  # not 0.3 and 0.6: 0.1 of the ranges
    np.testing.assert_allclose(lower, [0.9, 2.9], atol=1e-6)
    fill_upper_queue(teacher, 0, 0.3)  # return 0: shrink back
    np.testing.assert_allclose(teacher.bounds()[1][0], 1.0, atol=1e-6)


def test_teachmyagent_preset_starts_at_a_random_task_of_the_space():
    starts = [teachgym.make_teacher("adr", STUMPS, seed=s, preset="teachmyagent").bounds()[0] for s in range(20)]
    starts = np.array(starts)
    assert STUMPS.contains(starts.astype(np.float32)[0]) and (starts >= 0).all() and (starts <= [3, 6]).all()
    assert len({tuple(s) for s in starts.tolist()}) == 20 and starts[:, 1].max() > 3.0
    again = teachgym.make_teacher("adr", STUMPS, seed=3, preset="teachmyagent").bounds()[0]
    np.testing.assert_array_equal(again, starts[3])


@pytest.mark.parametrize("pin_capped, expected", [(False, 0.35), (True, 0.175)])
def test_a_capped_bound_is_still_pinned_half_of_the_time_in_teachmyagents_rule(pin_capped, expected):
    """Lower bound of dimension 0 at the space's limit, upper free: TeachMyAgent pins either bound
    with probability 0.5, so the upper one gets 0.7 * 0.5 (dimension) * 0.5 of the samples."""
    teacher = teachgym.make_teacher(
        "adr", BOX, seed=0, boundary_sampling_p=0.7, pin_capped_bounds=pin_capped, initial_task=[0.0, 0.0]
    )
    grown(teacher)
    lower, upper = teacher.bounds()
    assert lower[0] == BOX.low[0] and upper[0] > lower[0]
    tasks = np.array(teacher.sample_batch(8000))
    assert np.mean(tasks[:, 0] == upper[0]) == pytest.approx(expected, abs=0.02)


def test_bad_units_ranges_and_initial_tasks_raise():
    with pytest.raises(ValueError, match="step_units"):
        teachgym.make_teacher("adr", BOX, step_units="metres")
    with pytest.raises(ValueError, match="score_range"):
        teachgym.make_teacher("adr", BOX, score_range=[350.0, -150.0])
    with pytest.raises(ValueError, match="map to the same score"):
        teachgym.make_teacher("adr", BOX, score_range=[0.0, 1.0], expand_threshold=5.0, shrink_threshold=2.0)
    with pytest.raises(ValueError, match="'random'"):
        teachgym.make_teacher("adr", BOX, initial_task="middle")
    with pytest.raises(ValueError, match="step_size"):
        teachgym.make_teacher("adr", BOX, step_size=2.0)  # a range fraction above 1
    teachgym.make_teacher("adr", BOX, step_size=2.0, step_units="task")  # 2 task units are fine
