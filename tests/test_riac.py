"""RIAC: regions split where learning progress differs, within size and width limits."""

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.benchmarks.toy import run_toy
from teachgym.io import load_state, save_state

BOX = spaces.Box(0.0, 1.0, (2,))


def brute_force_alp(scores, window=200):
    """teachDeepRL's region ALP: |mean of the older half - mean of the newer half| of the window."""
    if len(scores) <= 2:
        return 0.0
    w = min(len(scores), window)
    h = w // 2
    return abs(np.mean(scores[-w:-h]) - np.mean(scores[-h:]))


def progress_on_the_left(teacher, episodes, rng, edge=0.3):
    """Uniform tasks; the score rises with time where x0 < edge and is 0 elsewhere."""
    for i in range(episodes):
        task = rng.random(2)
        teacher.update(task, i / episodes if task[0] < edge else 0.0)


def test_the_first_split_cuts_where_progress_starts_to_differ():
    teacher = teachgym.make_teacher("riac", BOX, seed=0)
    progress_on_the_left(teacher, 201, np.random.default_rng(0))
    regions = teacher.regions()
    assert len(regions) == 3 and not regions[0]["leaf"] and regions[1]["leaf"] and regions[2]["leaf"]
    cut_axis = int(np.flatnonzero(regions[1]["high"] < 1.0)[0])
    assert cut_axis == 0 and 0.15 < regions[1]["high"][0] < 0.45  # near the edge at 0.3
    assert regions[1]["alp"] > 5 * regions[2]["alp"]  # the left child holds the progress


def test_regions_respect_max_size_and_min_width_and_partition_their_parent():
    teacher = teachgym.make_teacher("riac", BOX, seed=1, max_region_size=60, min_region_population=5)
    rng = np.random.default_rng(1)
    for i in range(3000):
        task = teacher.sample()
        teacher.update(task, float(np.sin(8 * task[0] + i / 300) + rng.random()))
        if i % 97 == 0:
            for r in teacher.regions():
                assert r["size"] <= (60 if r["leaf"] else 61)
    regions = teacher.regions()
    assert len(regions) > 15
    for i, r in enumerate(regions):
        assert (r["high"] - r["low"] >= 1 / 15 - 1e-12).all()
        if not r["leaf"]:
            lo, hi = regions[teacher._child[i]], regions[teacher._child[i] + 1]
            np.testing.assert_array_equal(lo["low"], r["low"])
            np.testing.assert_array_equal(hi["high"], r["high"])
            (axis,) = np.flatnonzero(lo["high"] != r["high"])  # one cut on one axis
            np.testing.assert_array_equal(np.flatnonzero(hi["low"] != r["low"]), [axis])
            assert lo["high"][axis] == hi["low"][axis] == teacher._cut[i]


def test_region_alp_equals_the_windowed_half_means_definition():
    teacher = teachgym.make_teacher("riac", BOX, seed=2, max_region_size=50, alp_window_size=30, min_region_population=3)
    rng = np.random.default_rng(2)
    for _ in range(1500):
        teacher.update(teacher.sample(), float(rng.random() ** 3))
    for i, r in enumerate(teacher.regions()):
        window = teacher._scores[i][teacher._start[i]:]
        assert r["size"] == len(window)
        assert r["alp"] == pytest.approx(brute_force_alp(np.array(window), 30), abs=1e-12)


def test_a_full_region_without_a_valid_cut_forgets_its_oldest_quarter():
    teacher = teachgym.make_teacher("riac", BOX, seed=0)
    for i in range(201):  # one point: no cut leaves 10 episodes on each side
        teacher.update([0.5, 0.5], i / 200)
    (root,) = teacher.regions()
    assert root["leaf"] and root["size"] == 201 - 50


def test_samples_concentrate_where_learning_progress_is():
    teacher = teachgym.make_teacher("riac", BOX, seed=3)
    corner = []
    for i in range(3000):
        task = teacher.sample()
        in_corner = bool((task < 0.5).all())
        corner.append(in_corner)
        teacher.update(task, (i % 1000) / 1000 if in_corner else 0.0)  # progress in the corner only
    assert np.mean(corner[-1500:]) > 0.6  # uniform sampling would give 25%


@pytest.mark.parametrize("via_file", [False, True])
def test_state_dict_round_trip_gives_identical_next_samples(via_file, tmp_path):
    rng = np.random.default_rng(1)
    original = teachgym.make_teacher("riac", BOX, seed=3, max_region_size=40, min_region_population=4)
    for _ in range(1337):  # many splits, compacted histories, a partly used block of random numbers
        original.update(original.sample(), float(rng.random()))
    state = original.state_dict()
    if via_file:
        save_state(tmp_path / "riac.npz", state)
        state = load_state(tmp_path / "riac.npz")
    clone = teachgym.make_teacher("riac", BOX, seed=99, max_region_size=40, min_region_population=4)
    clone.load_state_dict(state)
    a, b = [], []
    for teacher, out in ((original, a), (clone, b)):
        scores = np.random.default_rng(5)
        for _ in range(1000):
            out.append(teacher.sample())
            teacher.update(out[-1], float(scores.random()))
    np.testing.assert_array_equal(np.array(a), np.array(b))
    assert clone.n_regions == original.n_regions


@pytest.mark.parametrize("scores", [[0.0], [1e300, -1e300, 0.0], [5.0, -3.0, 1e-9]])
def test_samples_stay_inside_the_space_whatever_the_scores(scores):
    space = spaces.Box(np.array([-2.0, 10.0, 0.0], dtype=np.float32), np.array([3.0, 10.5, 1e-3], dtype=np.float32))
    teacher = teachgym.make_teacher("riac", space, seed=0, max_region_size=20, min_region_population=2)
    for i in range(400):
        task = teacher.sample()
        assert space.contains(task), task
        teacher.update(task, scores[i % len(scores)])


def test_invalid_hyper_parameters_raise_value_error():
    bad = ({"max_region_size": 1}, {"min_region_population": 150}, {"min_region_width": 0.6},
           {"random_task_ratio": 0.95}, {"discard_ratio": 0.0}, {"sampling_in_leaves_only": 1})
    for kwargs in bad:
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            teachgym.make_teacher("riac", BOX, **kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_riac_beats_random_on_the_grid_student_at_a_small_budget(seed):
    random = run_toy("random", "default", seed, episodes=3000, eval_every=3000)
    riac = run_toy("riac", "default", seed, episodes=3000, eval_every=3000)
    assert random["mastered_pct"][-1] <= 1.0
    assert riac["mastered_pct"][-1] >= 3.0
