"""EXP3 and EXP3.S: the probabilities and weights of Auer et al., and a curriculum that beats Random."""

import numpy as np
import pytest
from conftest import drive, score_streams, task_spaces
from conftest import skills_mastered as mastered
from gymnasium import spaces
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import teachgym
from teachgym.io import load_state, save_state

NAMES = ["exp3", "exp3s"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(space=task_spaces(), scores=score_streams(), seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("name", NAMES)
def test_every_sampled_task_lies_in_random_discrete_spaces(name, space, scores, seed):
    assume(not isinstance(space, spaces.Box))
    teacher = teachgym.make_teacher(name, space, seed=seed)
    for i in range(60):
        task = teacher.sample()
        assert space.contains(task), (task, space)
        teacher.update(task, scores[i % len(scores)])
    assert np.all(np.isfinite(teacher.probabilities())) and teacher.probabilities().sum() == pytest.approx(
        1.0
    )
    assert all(space.contains(t) for t in teacher.sample_batch(5))


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_identical_next_samples(name, tmp_path):
    space = spaces.MultiDiscrete([3, 4])
    original = teachgym.make_teacher(name, space, seed=3)
    drive(original, 137, np.random.default_rng(1))
    save_state(tmp_path / "t.npz", original.state_dict())
    clone = teachgym.make_teacher(name, space, seed=99)
    clone.load_state_dict(load_state(tmp_path / "t.npz"))
    np.testing.assert_array_equal(
        drive(original, 500, np.random.default_rng(5)), drive(clone, 500, np.random.default_rng(5))
    )


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_scores_raise_and_change_nothing(name):
    teacher = teachgym.make_teacher(name, spaces.Discrete(4), seed=0)
    drive(teacher, 20, np.random.default_rng(0))
    before = teacher.probabilities()
    for bad in (float("nan"), float("-inf")):
        with pytest.raises(ValueError, match="finite"):
            teacher.update(1, bad)
    np.testing.assert_array_equal(teacher.probabilities(), before)
    assert teacher.n_updates == 20


def test_exp3_probabilities_match_the_formula_on_a_hand_computed_example():
    gamma = 0.3
    teacher = teachgym.make_teacher("exp3", spaces.Discrete(3), seed=0, gamma=gamma, reward="score")
    np.testing.assert_allclose(teacher.probabilities(), [1 / 3] * 3)
    teacher.update(0, 0.0)  # running range [0, 0]: reward 0, nothing changes
    teacher.update(1, 1.0)  # range [0, 1]: reward 1 drawn with p = 1/3: log w1 += 0.3 * 3 / 3
    w = np.array([1.0, np.exp(gamma), 1.0])
    np.testing.assert_allclose(teacher.probabilities(), (1 - gamma) * w / w.sum() + gamma / 3)
    p2 = (1 - gamma) / w.sum() + gamma / 3
    teacher.update(2, 0.5)  # reward 0.5 drawn with p2: log w2 += 0.3 * (0.5 / p2) / 3
    w[2] = np.exp(gamma * (0.5 / p2) / 3)
    np.testing.assert_allclose(teacher.log_weights, np.log(w))
    np.testing.assert_allclose(teacher.probabilities(), (1 - gamma) * w / w.sum() + gamma / 3)


def test_exp3s_shares_weight_as_auer_et_al_and_keeps_abandoned_arms_alive():
    gamma, alpha = 0.3, 0.05
    teacher = teachgym.make_teacher(
        "exp3s", spaces.Discrete(3), seed=0, gamma=gamma, alpha=alpha, reward="score"
    )
    teacher.update(1, 0.0)
    teacher.update(0, 1.0)  # reward 1, p0 = 1/3
    w = np.full(3, 1 / 3) + np.e * alpha / 3
    w[0] = np.exp(gamma * 3 / 3) / 3 + np.e * alpha / 3
    np.testing.assert_allclose(teacher.probabilities(), (1 - gamma) * w / w.sum() + gamma / 3)

    def share_of_others(name):
        t = teachgym.make_teacher(name, spaces.Discrete(3), seed=0, gamma=0.1, reward="score")
        for _ in range(300):
            t.update(0, 1.0)
            t.update(1, 0.0)
        return t.probabilities()[1:].sum()

    assert share_of_others("exp3s") > 2 * share_of_others("exp3")


def test_progress_reward_is_the_absolute_change_of_the_arms_score():
    teacher = teachgym.make_teacher("exp3", spaces.Discrete(2), seed=0)
    teacher.update(0, 0.9)  # first score of arm 0: no progress measured, no change
    np.testing.assert_array_equal(teacher.log_weights, [0.0, 0.0])
    teacher.update(0, 0.4)  # |0.4 - 0.9| = 0.5, alone in the running range: rescaled to 0
    teacher.update(1, 0.0)
    teacher.update(1, 1.0)  # |Δ| = 1, range [0.5, 1]: reward 1
    assert teacher.log_weights[0] == 0.0 and teacher.log_weights[1] > 0.0


@pytest.mark.parametrize(
    "name, variant, margin",
    [("exp3", "forgetting", 0.08), ("exp3s", "forgetting", 0.08), ("exp3s", "default", 0.05)],
)
def test_exp3_beats_random_on_the_skills_student_at_a_small_budget(name, variant, margin):
    random = np.mean([mastered("random", variant, seed) for seed in range(3)])
    bandit = np.mean([mastered(name, variant, seed) for seed in range(3)])
    assert bandit >= random + margin, (bandit, random)
