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
