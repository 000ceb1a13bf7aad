import numpy as np
import pytest
from gymnasium import spaces

from teachgym.spaces import TaskSpace, check_score


def test_box_task_accepts_arrays_lists_and_dicts_by_name():
    ts = TaskSpace(spaces.Box(0.0, 3.0, (2,)), ("stump_height", "obstacle_spacing"))
    assert ts.vector([1.2, 3.0]).tolist() == pytest.approx([1.2, 3.0])
    assert ts.vector({"obstacle_spacing": 3.0, "stump_height": 1.2}).tolist() == pytest.approx([1.2, 3.0])


@pytest.mark.parametrize(
    "task, message",
    [
        ([1.0, 4.0], "outside the task space"),
        ([1.0], "shape"),
        ([[1.0, 2.0]], "shape"),
        ([np.nan, 1.0], "outside the task space"),
        ("abc", "numeric"),
        ({"stump_height": 1.0}, "missing"),
        ({"stump_height": 1.0, "obstacle_spacing": 1.0, "wind": 2.0}, "unknown"),
    ],
)
def test_bad_tasks_raise_value_error_saying_what_was_expected(task, message):
    ts = TaskSpace(spaces.Box(0.0, 3.0, (2,)), ("stump_height", "obstacle_spacing"))
    with pytest.raises(ValueError, match=message):
        ts.vector(task)


def test_discrete_spaces_reject_non_integers_and_round_trip_indices():
    ts = TaskSpace(spaces.MultiDiscrete([3, 4], start=[1, -2]))
    with pytest.raises(ValueError, match="integers"):
        ts.vector([1.5, 0])
    seen = {ts.index(ts.from_index(i)) for i in range(ts.n_tasks)}
    assert seen == set(range(12))
    d = TaskSpace(spaces.Discrete(5, start=2))
    assert d.space.contains(d.from_index(4)) and int(d.from_index(4)) == 6


@pytest.mark.parametrize("space", [spaces.Box(0, np.inf, (2,)), spaces.Dict({}), "box"])
def test_unbounded_or_unsupported_spaces_are_rejected(space):
    with pytest.raises(ValueError, match="task space|task_space"):
        TaskSpace(space)


def test_names_must_match_dimensions():
    with pytest.raises(ValueError, match="2 distinct names"):
        TaskSpace(spaces.Box(0, 1, (2,)), ("a",))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "1.0", None, True])
def test_check_score_rejects_non_finite_and_non_numbers(bad):
    with pytest.raises(ValueError, match="finite real number"):
        check_score(bad)


def test_normalise_maps_bounds_to_unit_cube():
    ts = TaskSpace(spaces.Box(np.array([0.0, -2.0]), np.array([3.0, 2.0])))
    assert ts.normalise(np.array([3.0, -2.0])).tolist() == [1.0, 0.0]
    assert ts.denormalise(np.array([0.5, 0.5])).tolist() == [1.5, 0.0]


@pytest.mark.parametrize("low, high", [(-1.7e308, 1.7e308), (-1e308, 1e308), (-1.79e308, 1e306)])
def test_a_box_whose_width_overflows_float64_is_rejected(low, high):
    with pytest.raises(ValueError, match="finite width"):
        TaskSpace(spaces.Box(low, high, (2,), dtype=np.float64))


BOX_TEACHERS = ["random", "alp-gmm", "riac", "covar-gmm", "adr", "alp-revisit"]


@pytest.mark.parametrize("name", BOX_TEACHERS)
def test_teachers_refuse_an_overflowing_box_and_sample_finite_tasks_on_a_wide_one(name):
    from teachgym import make_teacher

    with pytest.raises(ValueError, match="finite width"):
        make_teacher(name, spaces.Box(-1.7e308, 1.7e308, (2,), dtype=np.float64), seed=0)
    wide = spaces.Box(-8e307, 8e307, (2,), dtype=np.float64)  # width 1.6e308: still finite
    hparams = {"fit_rate": 20} if name in ("alp-gmm", "covar-gmm") else {}
    teacher = make_teacher(name, wide, seed=0, **hparams)
    rng = np.random.default_rng(0)
    for _ in range(60):
        task = teacher.sample()
        assert np.all(np.isfinite(task)) and wide.contains(task)
        teacher.update(task, float(rng.uniform()))


@pytest.mark.parametrize(
    "task",
    [
        np.array([1.0 + 2.0j, 1.0]),
        np.array([1.0 + 0.0j, 1.0]),  # even a zero imaginary part: the dtype is not real
        [np.complex128(1.0), 1.0],
        np.array(["1.0", "2.0"]),
        np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"),
        [10**400, 1.0],  # OverflowError before
        np.array([10**400, 1], dtype=object),
    ],
)
def test_non_real_task_arrays_are_rejected(task):
    ts = TaskSpace(spaces.Box(0.0, 3.0, (2,)))
    with pytest.raises(ValueError, match="real numbers"):
        ts.vector(task)


@pytest.mark.parametrize("name", ["random", "alp-gmm", "riac"])
def test_teachers_refuse_complex_tasks_and_keep_working(name):
    from teachgym import make_teacher

    teacher = make_teacher(name, spaces.Box(0.0, 1.0, (2,)), seed=0)
    with pytest.raises(ValueError, match="real numbers"):
        teacher.update(np.array([0.5 + 0.5j, 0.5]), 1.0)
    with pytest.raises(ValueError, match="real numbers"):
        teacher.update_batch([np.array([0.5, 0.5]), np.array([0.5j, 0.5])], [1.0, 1.0])
    assert teacher.n_updates == 0  # the batch was validated before any episode was applied
    teacher.update(teacher.sample(), 0.5)
    assert teacher.n_updates == 1


@pytest.mark.parametrize("bad", [1 + 0j, np.complex128(0.5), np.complex64(1.0), 10**400])
def test_check_score_rejects_complex_numbers_and_ints_past_float64(bad):
    with pytest.raises(ValueError, match="finite real number"):
        check_score(bad)


def test_a_float32_and_a_float64_box_with_the_same_bounds_hold_the_same_tasks():
    from teachgym.spaces import space_mismatch

    f32 = spaces.Box(np.array([0.0, 0.1]), np.array([3.0, 6.1]), dtype=np.float32)
    f64 = spaces.Box(np.array([0.0, 0.1]), np.array([3.0, 6.1]), dtype=np.float64)
    assert space_mismatch(f32, f64) is None and space_mismatch(f64, f32) is None
    other = spaces.Box(np.array([0.0, 0.1]), np.array([3.0, 6.0]), dtype=np.float64)
    why = space_mismatch(f32, other)
    assert "dimension 1" in why and "6.0" in why and "float32" in why and "float64" in why
    # the dtype is named only where it can matter: same dtypes, different bounds say nothing of it
    assert "dtype" not in space_mismatch(f64, other)
    assert "shape" in space_mismatch(f64, spaces.Box(0.0, 1.0, (3,)))
    assert "Discrete" in space_mismatch(f64, spaces.Discrete(3))
    assert space_mismatch(spaces.Discrete(3, start=1), spaces.Discrete(3, start=1)) is None
    assert "from 0" in space_mismatch(spaces.Discrete(3, start=1), spaces.Discrete(3))
    assert space_mismatch(spaces.MultiDiscrete([2, 3]), spaces.MultiDiscrete([2, 4])) is not None


def test_an_out_of_space_task_names_the_dimension_its_value_and_bounds():
    space = TaskSpace(spaces.Box(np.array([0.0, 0.0]), np.array([3.0, 6.0])), ["stump_height", "spacing"])
    with pytest.raises(ValueError, match=r"'spacing' \(dimension 1\) is 7\.5, expected a value in \[0\.0, 6\.0\]"):
        space.vector([1.0, 7.5])
    with pytest.raises(ValueError, match=r"'stump_height' \(dimension 0\) is nan"):
        space.vector([float("nan"), 1.0])
