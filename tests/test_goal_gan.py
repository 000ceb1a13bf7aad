"""GoalGAN: goals labelled by their success rate, a GAN that learns to propose intermediate ones."""

import numpy as np
import pytest
from conftest import drive
from gymnasium import spaces

import teachgym

BOX = spaces.Box(np.array([0.0, -1.0]), np.array([2.0, 1.0]), dtype=np.float64)


def goal_gan(**kwargs):
    return teachgym.make_teacher("goal-gan", BOX, seed=0, **kwargs)


def test_each_new_goal_is_tried_n_rollouts_times_in_a_row():
    teacher = goal_gan(p_old=0.0, n_rollouts=3)
    tasks = teacher.sample_batch(30)
    for i in range(0, 30, 3):
        assert np.array_equal(tasks[i], tasks[i + 1]) and np.array_equal(tasks[i], tasks[i + 2])
        assert not np.array_equal(tasks[i], tasks[(i + 3) % 30])


@pytest.mark.parametrize(
    ("outcomes", "label", "mastered"),
    [((1.0, 0.0), 1.0, False), ((0.6, 0.2), 1.0, False), ((1.0, 1.0), 0.0, True), ((0.0, 0.1), 0.0, False)],
)
def test_a_goal_is_labelled_intermediate_when_its_success_rate_lies_in_the_band(outcomes, label, mastered):
    teacher = goal_gan(p_old=0.0, update_size=1000)
    task = teacher.sample()
    for score in outcomes:
        teacher.update(task, score)
    assert teacher._labels == [label]
    assert len(teacher._successes) == int(mastered)


def test_reported_success_and_a_success_threshold_override_the_score():
    teacher = goal_gan(p_old=0.0, update_size=1000, success_threshold=0.9)
    task, _ = teacher.sample_batch(2)
    teacher.update(task, 0.95)  # success
    teacher.update(task, 0.5)  # failure
    other, _ = teacher.sample_batch(2)
    teacher.update(other, 0.0, success=True)
    teacher.update(other, 0.0, success=True)
    assert teacher._labels == [1.0, 0.0] and len(teacher._successes) == 1


def test_the_gan_trains_on_a_full_batch_only_if_it_holds_an_intermediate_goal():
    def weights(t):
        return t.generator.arrays()

    teacher = goal_gan(p_old=0.0, update_size=10, outer_iters=5)
    before = weights(teacher)
    for _ in range(20):
        teacher.update(teacher.sample(), 0.0)  # ten goals, all failed
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(teacher)))
    for i in range(20):
        teacher.update(teacher.sample(), float(i == 1))  # goal 0 succeeds once in two tries
    assert not all(np.array_equal(a, b) for a, b in zip(before, weights(teacher)))


def test_mastered_goals_are_replayed_with_noise_with_probability_p_old():
    teacher = goal_gan(p_old=1.0, update_size=1000)
    first = teacher.sample_batch(2)  # nothing mastered yet: a new goal, tried twice
    assert np.array_equal(first[0], first[1])
    mastered, _ = teacher.sample_batch(2)
    teacher.update(mastered, 1.0)
    teacher.update(mastered, 1.0)
    tasks = np.array(teacher.sample_batch(500))
    offset = (tasks - mastered) / (BOX.high - BOX.low)
    assert (np.abs(offset) < 5 * 0.05).all() and 0.03 < offset.std() < 0.07  # noise_level 0.05


def test_new_goals_are_uniform_until_the_gan_has_seen_an_intermediate_goal():
    teacher = goal_gan(p_old=0.0)
    tasks = np.array(teacher.sample_batch(4000))[::2]  # one of the two rollouts of each goal
    counts, _, _ = np.histogram2d(tasks[:, 0], tasks[:, 1], bins=4, range=[[0, 2], [-1, 1]])
    assert counts.min() > 0.7 * counts.mean() and not teacher.trained


def test_the_generator_learns_to_propose_goals_of_intermediate_difficulty():
    """Success probability 0.5 in the band 1.2 <= x < 1.6, 0 elsewhere (a fifth of the space)."""
    teacher = goal_gan(update_size=50, outer_iters=100, random_goal_ratio=0.1)
    for _ in range(300):
        task = teacher.sample()
        teacher.update(task, 0.5 if 1.2 <= task[0] < 1.6 else 0.0)
    unit = 0.5 * (teacher._generate(2000) + 1.0)
    assert teacher.trained and ((unit[:, 0] >= 0.6) & (unit[:, 0] < 0.8)).mean() > 0.8


def test_state_round_trip_continues_identically():
    a = goal_gan(update_size=20, outer_iters=10)
    drive(a, 137, np.random.default_rng(0))
    b = teachgym.make_teacher("goal-gan", BOX, seed=9, update_size=20, outer_iters=10)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(drive(a, 200, np.random.default_rng(1)), drive(b, 200, np.random.default_rng(1)))


def test_invalid_hyper_parameters_raise():
    with pytest.raises(ValueError, match="goid_lb <= goid_ub"):
        teachgym.make_teacher("goal-gan", BOX, goid_lb=0.8, goid_ub=0.2)
    with pytest.raises(ValueError, match="p_old"):
        teachgym.make_teacher("goal-gan", BOX, p_old=1.5)


def test_pretraining_makes_the_first_generated_goals_gather_around_the_given_task():
    teacher = goal_gan(p_old=0.0, random_goal_ratio=0.0, noise_level=0.0, pretrain_task=[0.4, 0.6],
                       pretrain_samples=500, pretrain_iters=300)
    assert not teacher.trained  # pre-training waits for the first sample: building stays instant
    goals = np.array(teacher.sample_batch(400))[::2]  # one per new goal (2 rollouts each)
    centre = np.median(goals, axis=0)
    assert np.abs(centre - [0.4, 0.6]).max() < 0.3  # uniform goals would centre on (1, 0)
    assert np.mean(np.abs(goals[:, 0] - 0.4) < 0.6) > 0.7


def test_without_pretraining_the_first_goals_are_uniform_as_before():
    teacher = goal_gan(p_old=0.0)
    assert not teacher.trained and teacher.pretrain_task is None


@pytest.mark.parametrize("preset, noise, p_old", [("teachmyagent", 0.1, 0.1), ("teachmyagent-defaults", 0.01, 0.2)])
def test_teachmyagent_presets_use_its_networks_iterations_and_pretraining(preset, noise, p_old):
    teacher = teachgym.make_teacher("goal-gan", BOX, seed=0, preset=preset, pretrain_iters=5)
    assert (teacher.noise_level, teacher.p_old) == (noise, p_old)
    assert teacher.generator_layers == (256, 256) and teacher.discriminator_layers == (128, 128)
    assert teacher.outer_iters == 250 and teacher.pretrain_task == "random" and not teacher.trained
    assert BOX.contains(teacher.sample()) and teacher.trained


def test_a_state_saved_before_pretraining_pretrains_after_loading_identically():
    a = goal_gan(pretrain_task="random", pretrain_iters=20)
    b = goal_gan(pretrain_task="random", pretrain_iters=20)
    b.load_state_dict(a.state_dict())
    for _ in range(20):
        ta, tb = a.sample(), b.sample()
        np.testing.assert_array_equal(ta, tb)
        a.update(ta, 0.5)
        b.update(tb, 0.5)


def test_bad_pretrain_task_raises():
    with pytest.raises(ValueError, match="pretrain_task"):
        goal_gan(pretrain_task="centre")
    with pytest.raises(ValueError, match="pretrain_task"):
        goal_gan(pretrain_task=[5.0, 0.0])
