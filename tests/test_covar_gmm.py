"""Covar-GMM: mixtures on [task, relative time, score], components chosen by time-score covariance."""

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.benchmarks.toy import run_toy
from teachgym.io import load_state, save_state

BOX = spaces.Box(0.0, 1.0, (2,))


def rising_left_falling_right(teacher, episodes, rng):
    """Feed uniform tasks: on the left half the score rises with relative time, on the right it falls."""
    for i in range(episodes):
        task = rng.random(2)
        t = (i % teacher.fit_rate) / teacher.fit_rate
        teacher.update(task, t if task[0] < 0.5 else 1.0 - t)


def test_fits_every_fit_rate_episodes_on_task_relative_time_and_score():
    teacher = teachgym.make_teacher("covar-gmm", spaces.Box(-1.0, 3.0, (2,)), seed=0, fit_rate=40)
    rng = np.random.default_rng(0)
    first = None
    for i in range(119):
        teacher.update(teacher.sample(), float(rng.random()))
        if i + 1 < 40:
            assert teacher.mixture is None
        if i + 1 == 40:
            first = teacher.mixture
            assert first is not None and first.means.shape[1] == 4  # 2 task axes + time + score
        if 40 < i + 1 < 80:
            assert teacher.mixture is first
    assert teacher.mixture is not first
    rows = teacher.state_dict()["state"]["rows"]
    assert len(rows) == 119 % 40
    np.testing.assert_allclose(rows[:, 2], np.arange(len(rows)) / 40)  # relative time in the batch
    assert (rows[:, :2] >= 0).all() and (rows[:, :2] <= 1).all()  # tasks normalised


def test_components_whose_score_rises_with_time_are_preferred():
    rng = np.random.default_rng(0)
    teacher = teachgym.make_teacher("covar-gmm", BOX, seed=0, fit_rate=400)
    rising_left_falling_right(teacher, 400, rng)
    lp = teacher.learning_progress()
    left = teacher.mixture.means[:, 0] < 0.5
    assert lp[left].sum() > 0 and lp[~left].sum() < 0.1 * lp[left].sum()
    share_left = np.mean([task[0] < 0.5 for task in teacher.sample_batch(2000)])
    assert share_left > 0.75  # 20% uniform + nearly all of the 80% drawn from rising components

    both = teachgym.make_teacher("covar-gmm", BOX, seed=0, fit_rate=400, absolute_lp=True)
    rising_left_falling_right(both, 400, np.random.default_rng(0))
    share_left = np.mean([task[0] < 0.5 for task in both.sample_batch(2000)])
    assert 0.25 < share_left < 0.75  # |covariance|: falling scores count as much as rising ones


@pytest.mark.parametrize("via_file", [False, True])
def test_state_dict_round_trip_gives_identical_next_samples(via_file, tmp_path):
    rng = np.random.default_rng(1)
    original = teachgym.make_teacher("covar-gmm", BOX, seed=3, fit_rate=50)
    for _ in range(137):  # mid-batch, with a partly used queue
        original.update(original.sample(), float(rng.random()))
    state = original.state_dict()
    if via_file:
        save_state(tmp_path / "covar.npz", state)
        state = load_state(tmp_path / "covar.npz")
    clone = teachgym.make_teacher("covar-gmm", BOX, seed=99, fit_rate=50)
    clone.load_state_dict(state)
    a, b = [], []
    for teacher, out in ((original, a), (clone, b)):
        scores = np.random.default_rng(5)
        for _ in range(400):
            out.append(teacher.sample())
            teacher.update(out[-1], float(scores.random()))
    np.testing.assert_array_equal(np.array(a), np.array(b))


@pytest.mark.parametrize("scores", [[0.0], [1e300, -1e300, 0.0], [5.0, -3.0, 1e-9]])
def test_samples_stay_inside_the_space_whatever_the_scores(scores):
    space = spaces.Box(np.array([-2.0, 10.0, 0.0], dtype=np.float32), np.array([3.0, 10.5, 1e-3], dtype=np.float32))
    teacher = teachgym.make_teacher("covar-gmm", space, seed=0, fit_rate=20, potential_ks=(2, 3))
    for i in range(200):
        task = teacher.sample()
        assert space.contains(task), task
        teacher.update(task, scores[i % len(scores)])


def test_invalid_hyper_parameters_raise_value_error():
    for bad in ({"fit_rate": 1}, {"random_task_ratio": -0.1}, {"potential_ks": (2, 300)}, {"absolute_lp": "yes"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            teachgym.make_teacher("covar-gmm", BOX, **bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_covar_gmm_beats_random_on_the_grid_student_at_a_small_budget(seed):
    random = run_toy("random", "default", seed, episodes=3000, eval_every=3000)
    covar = run_toy("covar-gmm", "default", seed, episodes=3000, eval_every=3000)
    assert random["mastered_pct"][-1] <= 1.0
    assert covar["mastered_pct"][-1] >= 3.0
