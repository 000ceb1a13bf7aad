"""DUMP: UCB over the windowed mean |advantage| of each category, softmax sampling."""

import math

import numpy as np
import pytest
from conftest import drive
from gymnasium import spaces

import teachgym
from teachgym.io import load_state, save_state


def test_ucb_and_probabilities_match_a_hand_computation():
    teacher = teachgym.make_teacher("dump", spaces.Discrete(3), seed=0, window=3, temperature=0.5, exploration=1.0)
    teacher.update_batch([0, 1], [0.5, 0.25], infos=[{"advantages": [1.0, -1.0]}, {"advantages": [0.5, -0.5, 0.0, 0.0]}])
    # Arm 0: |A| = 1, 1 (2 samples); arm 1: window 3 keeps the last three, 0.5, 0, 0 (4 samples); arm 2: none.
    np.testing.assert_allclose(teacher.learnability(), [1.0, 0.5 / 3, 0.0])
    np.testing.assert_array_equal(teacher.counts, [2, 4, 0])
    n = 6  # samples over all arms
    ucb = [1.0 + math.sqrt(2 * math.log(n + 1) / 3), 0.5 / 3 + math.sqrt(2 * math.log(n + 1) / 5),
           math.sqrt(2 * math.log(n + 1) / 1)]
    np.testing.assert_allclose(teacher.ucb(), ucb)
    z = np.exp(np.array(ucb) / 0.5)
    np.testing.assert_allclose(teacher.probabilities(), z / z.sum())


def test_the_window_forgets_old_advantages_but_the_counts_do_not():
    teacher = teachgym.make_teacher("dump", spaces.Discrete(2), seed=0, window=4)
    teacher.update(0, 0.5, advantages=[2.0, 2.0, 2.0, 2.0])
    teacher.update(0, 0.5, advantages=[0.0, 0.0])
    assert teacher.learnability()[0] == pytest.approx(1.0)  # 2, 2, 0, 0
    teacher.update(0, 0.5, advantages=[0.0, 0.0])
    assert teacher.learnability()[0] == 0.0 and teacher.counts[0] == 8


def test_without_advantages_the_signal_is_the_change_of_score():
    teacher = teachgym.make_teacher("dump", spaces.Discrete(2), seed=0)
    teacher.update(1, 0.2)
    teacher.update(1, 0.7)
    np.testing.assert_allclose(teacher.learnability(), [0.0, 0.25])  # 0 first, then |0.7 - 0.2|
    assert list(teacher.counts) == [0, 2]


def test_it_moves_to_the_category_with_the_largest_advantages():
    space = spaces.MultiDiscrete([2, 3])
    teacher = teachgym.make_teacher("dump", space, seed=1)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(60):
        tasks = teacher.sample_batch(16)
        draws += [teachgym.spaces.TaskSpace(space).index(t) for t in tasks]
        # Only category 4 has a learning signal; the others always give equal rewards (|A| = 0).
        infos = [{"advantages": (rng.choice([-1.0, 1.0], 8) if teachgym.spaces.TaskSpace(space).index(t) == 4
                                 else np.zeros(8)).tolist()} for t in tasks]
        teacher.update_batch(tasks, [0.5] * 16, infos)
    late = np.bincount(draws[-320:], minlength=6) / 320
    assert late[4] > 0.9, late
    assert np.bincount(draws[:16], minlength=6).max() < 16  # all arms are explored at first


def test_state_round_trip_gives_identical_next_samples(tmp_path):
    space = spaces.MultiDiscrete([3, 2])
    original = teachgym.make_teacher("dump", space, seed=3, window=5)
    drive(original, 137, np.random.default_rng(1))
    original.update_batch(original.sample_batch(2), [0.5, 0.5], infos=[{"advantages": [1.0, -1.0]}] * 2)
    save_state(tmp_path / "t.npz", original.state_dict())
    clone = teachgym.make_teacher("dump", space, seed=99, window=5)
    clone.load_state_dict(load_state(tmp_path / "t.npz"))
    np.testing.assert_array_equal(drive(original, 300, np.random.default_rng(5)), drive(clone, 300, np.random.default_rng(5)))


def test_bad_hyper_parameters_and_advantages_are_clear_errors():
    for kwargs, match in (({"window": 0}, "window"), ({"temperature": 0.0}, "temperature"),
                          ({"exploration": -1.0}, "exploration")):
        with pytest.raises(ValueError, match=match):
            teachgym.make_teacher("dump", spaces.Discrete(2), **kwargs)
    with pytest.raises(ValueError, match="needs a task space"):
        teachgym.make_teacher("dump", spaces.Box(0, 1, (2,)), adapt=False)
    teacher = teachgym.make_teacher("dump", spaces.Discrete(2), seed=0)
    with pytest.raises(ValueError, match="advantages"):
        teacher.update_batch([0, 1], [0.0, 1.0], infos=[{"advantages": [1.0]}, {"advantages": [np.nan]}])
    assert teacher.counts.sum() == 0  # checked before any episode is applied
