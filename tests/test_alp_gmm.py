"""ALP-GMM: the paper's ALP, mixtures refitted on schedule, and a curriculum that beats Random."""

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.benchmarks.toy import run_toy


def brute_force_alps(tasks, scores, min_history=5):
    """ALP as the paper computes it, one episode at a time."""
    out = []
    for i in range(len(tasks)):
        if i <= min_history:
            out.append(0.0)
            continue
        j = np.argmin(((tasks[:i] - tasks[i]) ** 2).sum(1))
        out.append(abs(scores[i] - scores[j]))
    return np.array(out)


def test_alp_equals_the_per_episode_nearest_neighbour_definition():
    space = spaces.Box(np.array([0.0, 0.0]), np.array([3.0, 6.0]))
    teacher = teachgym.make_teacher("alp-gmm", space, seed=0, fit_rate=40, potential_ks=(2, 3))
    rng = np.random.default_rng(0)
    tasks, scores = [], []
    for _ in range(333):
        task = teacher.sample()
        score = float(rng.random())
        teacher.update(task, score)
        tasks.append(task)
        scores.append(score)
    unit = np.array(tasks) / np.array([3.0, 6.0])  # the paper's distance, in normalised space
    np.testing.assert_allclose(teacher.alps(), brute_force_alps(unit, np.array(scores)), atol=1e-12)


def test_bootstrap_is_uniform_then_mixtures_are_fitted_every_fit_rate_episodes():
    teacher = teachgym.make_teacher("alp-gmm", spaces.Box(0.0, 1.0, (2,)), seed=0, fit_rate=50)
    rng = np.random.default_rng(0)
    for i in range(149):
        teacher.update(teacher.sample(), float(rng.random()))
        if i + 1 < 50:
            assert teacher.mixture is None
        if i + 1 == 50:
            first = teacher.mixture
            assert first is not None and 2 <= first.n_components <= 10
        if 50 < i + 1 < 100:
            assert teacher.mixture is first
    assert teacher.mixture is not first


def test_samples_concentrate_where_learning_progress_is():
    """Scores change only in the lower-left corner: ALP-GMM must sample there far more than 25%."""
    teacher = teachgym.make_teacher("alp-gmm", spaces.Box(0.0, 1.0, (2,)), seed=1, fit_rate=100)
    rng = np.random.default_rng(1)
    corner = []
    for _ in range(2000):
        task = teacher.sample()
        in_corner = bool((task < 0.5).all())
        corner.append(in_corner)
        teacher.update(task, float(rng.random()) if in_corner else 0.0)
    assert np.mean(corner[-1000:]) > 0.6


def test_absurd_scores_keep_the_teacher_sampling_inside_the_space():
    space = spaces.Box(0.0, 1.0, (2,))
    teacher = teachgym.make_teacher("alp-gmm", space, seed=0, fit_rate=20, potential_ks=(2, 3))
    for i in range(100):
        task = teacher.sample()
        teacher.update(task, (1e300, -1e300, 0.0)[i % 3])
        assert space.contains(task)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alp_gmm_beats_random_on_the_grid_student_at_a_small_budget(seed):
    random = run_toy("random", "default", seed, episodes=4000, eval_every=4000)
    alp = run_toy("alp-gmm", "default", seed, episodes=4000, eval_every=4000)
    assert random["mastered_pct"][-1] <= 1.0
    assert alp["mastered_pct"][-1] >= 3.0


def test_exploit_tasks_leave_out_exploration_and_do_not_touch_the_teachers_stream():
    space = spaces.Box(0.0, 1.0, (2,))
    teacher = teachgym.make_teacher("alp-gmm", space, seed=0, fit_rate=50)
    assert teacher.exploit_tasks(10) is None  # bootstrapping: no mixture yet
    twin = teachgym.make_teacher("alp-gmm", space, seed=0, fit_rate=50)
    noise = np.random.default_rng(5).random(300)
    for i in range(300):  # progress only in the corner x < 0.2
        for t in (teacher, twin):
            task = t.sample()
            t.update(task, float(task[0] < 0.2) * noise[i])
    exploit = teacher.exploit_tasks(2000, seed=1)
    assert exploit.shape == (2000, 2) and np.all((exploit >= 0) & (exploit <= 1))
    np.testing.assert_array_equal(exploit, teacher.exploit_tasks(2000, seed=1))
    ordinary = np.array(teacher.sample_batch(2000))
    assert np.mean(exploit[:, 0] < 0.3) > np.mean(ordinary[:, 0] < 0.3)  # no 20 % uniform share
    np.testing.assert_array_equal(ordinary, np.array(twin.sample_batch(2000)))  # asking changed nothing
    with pytest.raises(ValueError, match="positive integer"):
        teacher.exploit_tasks(0)


# ---------------------------------------------------------------- TeachMyAgent's raw task units
STUMPS = spaces.Box(np.array([0.0, 0.0]), np.array([3.0, 6.0]))


def drive(teacher, episodes, score, seed=0):
    """Run ``episodes`` episodes; return the tasks and scores."""
    rng = np.random.default_rng(seed)
    tasks, scores = [], []
    for _ in range(episodes):
        task = teacher.sample()
        s = float(score(task, rng))
        teacher.update(task, s)
        tasks.append(task)
        scores.append(s)
    return np.array(tasks), np.array(scores)


def test_fit_in_task_units_uses_raw_distances_and_fits_means_in_task_units():
    """On [0, 3] x [0, 6] the nearest neighbour (hence the ALP) and the mixture are those of raw units."""
    teacher = teachgym.make_teacher(
        "alp-gmm", STUMPS, seed=0, fit_rate=40, potential_ks=(2, 3), fit_in_task_units=True
    )
    tasks, scores = drive(teacher, 333, lambda task, rng: rng.random())
    np.testing.assert_allclose(teacher.alps(), brute_force_alps(tasks, scores), atol=1e-12)
    unit_alps = brute_force_alps(tasks / [3.0, 6.0], scores)
    assert np.mean(teacher.alps() != unit_alps) > 0.1  # the units matter on this space
    means = teacher.mixture.means[:, :2]
    assert means[:, 1].max() > 1.5 and (means >= -0.5).all() and (means <= [3.5, 6.5]).all()
    last = tasks[280:320]  # the rows of the last fit (at episode 320), in task units
    np.testing.assert_allclose(
        np.average(teacher.mixture.means[:, :2], axis=0, weights=teacher.mixture.weights), last.mean(0), atol=1e-6
    )


@pytest.mark.parametrize("raw", [False, True])
def test_samples_follow_the_mixture_in_either_unit(raw):
    """Learning progress only at high stumps and any spacing: both units must sample there."""
    teacher = teachgym.make_teacher("alp-gmm", STUMPS, seed=1, fit_rate=100, fit_in_task_units=raw)

    def score(task, rng):  # progress: noisy scores where stump height > 2
        return rng.random() if task[0] > 2.0 else 0.0

    drive(teacher, 1000, score)
    tasks = np.array(teacher.sample_batch(2000))
    assert ((tasks >= STUMPS.low) & (tasks <= STUMPS.high)).all()
    assert np.mean(tasks[:, 0] > 2.0) > 0.6  # a third of the space, most of the samples
    exploit = teacher.exploit_tasks(500)
    assert np.mean(exploit[:, 0] > 2.0) > 0.7


def test_teachmyagent_preset_is_its_benchmark_setting():
    teacher = teachgym.make_teacher("alp-gmm", STUMPS, seed=0, preset="teachmyagent")
    assert teacher.fit_rate == 150 and teacher.random_task_ratio == 0.05
    assert teacher.potential_ks == tuple(range(2, 10)) and teacher.fit_in_task_units
    drive(teacher, 300, lambda task, rng: rng.random())
    assert teacher.mixture is not None and 2 <= teacher.mixture.n_components <= 9
