"""SEC: the TD(0) update of every arm after each batch, softmax sampling, and a curriculum."""

import numpy as np
import pytest
from conftest import drive, score_streams, skills_mastered, task_spaces
from gymnasium import spaces
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import teachgym
from teachgym.io import load_state, save_state


def mastered(variant="default", seed=0, episodes=3000, name="sec", **hparams):
    return skills_mastered(name, variant, seed, episodes, **hparams)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(space=task_spaces(), scores=score_streams(), seed=st.integers(0, 2**32 - 1))
def test_every_sampled_task_lies_in_random_discrete_spaces(space, scores, seed):
    assume(not isinstance(space, spaces.Box))
    teacher = teachgym.make_teacher("sec", space, seed=seed, batch_size=8)
    for i in range(60):
        task = teacher.sample()
        assert space.contains(task), (task, space)
        teacher.update(task, scores[i % len(scores)])
    tasks = teacher.sample_batch(5)
    assert all(space.contains(t) for t in tasks)
    teacher.update_batch(tasks, scores[:1] * 5, infos=[{"advantages": [1.0, -1.0]}] * 5)
    assert np.all(np.isfinite(teacher.q))


def test_state_dict_round_trip_gives_identical_next_samples(tmp_path):
    space = spaces.MultiDiscrete([3, 2, 2])
    original = teachgym.make_teacher("sec", space, seed=3, batch_size=10, temperature=0.1)
    drive(original, 137, np.random.default_rng(1))  # mid-batch
    save_state(tmp_path / "t.npz", original.state_dict())
    clone = teachgym.make_teacher("sec", space, seed=99, batch_size=10, temperature=0.1)
    clone.load_state_dict(load_state(tmp_path / "t.npz"))
    np.testing.assert_array_equal(
        drive(original, 500, np.random.default_rng(5)), drive(clone, 500, np.random.default_rng(5))
    )


def test_non_finite_scores_and_advantages_raise_and_change_nothing():
    teacher = teachgym.make_teacher("sec", spaces.Discrete(3), seed=0)
    teacher.update_batch([0, 1], [0.0, 1.0], infos=[{"advantages": [1.0]}, {"advantages": [0.5]}])
    q = teacher.q.copy()
    with pytest.raises(ValueError, match="finite"):
        teacher.update(0, float("nan"))
    with pytest.raises(ValueError, match="advantages"):
        teacher.update_batch([0, 1], [0.0, 1.0], infos=[{"advantages": [1.0]}, {"advantages": [np.inf]}])
    with pytest.raises(ValueError, match="advantages"):
        teacher.update_batch([0], [0.0], infos=[{"advantages": []}])
    np.testing.assert_array_equal(teacher.q, q)
    assert teacher.n_updates == 2 and teacher._in_batch == 0


def test_q_update_matches_the_formula_on_a_hand_computed_example():
    tau = 0.5
    teacher = teachgym.make_teacher("sec", spaces.Discrete(3), seed=0, alpha=0.5, temperature=tau)
    # Batch 1: arm 0 twice (mean |A| = 1 and 0.5), arm 1 once (mean |A| = 4/3), arm 2 absent (r = 0).
    teacher.update_batch(
        [0, 0, 1],
        [0.0, 1.0, 1.0],
        infos=[{"advantages": [1.0, -1.0]}, {"advantages": 0.5}, {"advantages": [-2.0, 2.0, 0.0]}],
    )
    q = 0.5 * np.array([0.75, 4 / 3, 0.0])
    np.testing.assert_allclose(teacher.q, q)
    # Batch 2: only arm 2; arms 0 and 1 decay towards 0.
    teacher.update_batch([2], [0.0], infos=[{"advantages": [-1.0, 1.0]}])
    q = 0.5 * q + 0.5 * np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(teacher.q, q)
    expected = np.exp(q / tau) / np.exp(q / tau).sum()
    np.testing.assert_allclose(teacher.probabilities(), expected)
    draws = np.array([int(teacher.sample()) for _ in range(20000)])
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / len(draws), expected, atol=0.015)


def test_without_advantages_the_signal_is_the_absolute_score_change_of_the_arm():
    teacher = teachgym.make_teacher("sec", spaces.Discrete(2), seed=0, alpha=1.0)
    teacher.update_batch([0, 0, 0, 1], [0.2, 0.9, 0.5, 0.7])  # arm 0: 0 (first), 0.7, 0.4; arm 1: 0
    np.testing.assert_allclose(teacher.q, [(0.0 + 0.7 + 0.4) / 3, 0.0])


def test_single_updates_close_a_batch_every_batch_size_and_update_batch_is_one_batch():
    teacher = teachgym.make_teacher("sec", spaces.Discrete(2), seed=0, alpha=1.0, batch_size=3)
    teacher.update(0, 0.0, advantages=[1.0])
    teacher.update(0, 0.0, advantages=[1.0])
    np.testing.assert_array_equal(teacher.q, [0.0, 0.0])  # batch still open
    teacher.update(1, 0.0, advantages=[0.5])
    np.testing.assert_allclose(teacher.q, [1.0, 0.5])
    teacher.update_batch([1] * 7, [0.0] * 7, infos=[{"advantages": [0.25]}] * 7)  # one batch of 7
    np.testing.assert_allclose(teacher.q, [0.0, 0.25])


@pytest.mark.parametrize(
    "variant, temperature, margin", [("default", 0.4, 0.2), ("forgetting", 0.4, 0.2), ("default", 1.0, 0.03)]
)
def test_sec_beats_random_on_the_skills_student_at_a_small_budget(variant, temperature, margin):
    """τ = 0.4 is the paper's setting for maths, 1.0 its default (Countdown, Zebra)."""
    random = np.mean([mastered(variant, seed, name="random") for seed in range(3)])
    sec = np.mean([mastered(variant, seed, temperature=temperature) for seed in range(3)])
    assert sec >= random + margin, (sec, random)
