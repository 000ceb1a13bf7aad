"""ALP-Revisit: ALP measured at the same task, a curriculum that beats ALP-GMM, exact state."""

import numpy as np
import pytest
from conftest import task_spaces
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import teachgym
from teachgym.benchmarks.toy import run_toy


def test_alp_is_the_score_change_since_the_previous_visit_of_the_same_task():
    teacher = teachgym.make_teacher("alp-revisit", spaces.Box(0.0, 1.0, (2,)), seed=0, window=1)
    a, b = np.array([0.2, 0.2]), np.array([0.21, 0.2])
    teacher.update(a, 0.1)
    teacher.update(b, 0.9)  # new task: ALP-GMM's prior, the gap to its nearest task
    assert teacher.particles["alp"][1] == pytest.approx(0.8)
    teacher.update(a, 0.3)
    teacher.update(a, 0.25)
    teacher.update(b, 0.9)  # a neighbour that differs but does not change has no progress
    p = teacher.particles
    assert p["alp"].tolist() == pytest.approx([0.05, 0.0])
    assert p["visits"].tolist() == [3, 2]

    windowed = teachgym.make_teacher("alp-revisit", spaces.Box(0.0, 1.0, (2,)), seed=0, window=2)
    for score, alp in ((0.1, 0.0), (0.3, 0.2), (0.25, 0.075), (0.25, 0.025), (0.25, 0.0)):
        windowed.update(a, score)
        assert windowed.particles["alp"][0] == pytest.approx(alp)  # |now - 2 visits ago| / 2


def train_beside_a_checkerboard(progress_per_visit, episodes=3000, seed=3):
    """A checkerboard of constant scores 0 and 1 (where nearest-neighbour ALP is high at every
    edge) around one small square (1% of the space) whose score rises with practice, up to 1.
    Returns the teacher and, per episode, whether the task was in the square."""
    teacher = teachgym.make_teacher("alp-revisit", spaces.Box(0.0, 1.0, (2,)), seed=seed)
    practice, inside = 0, []
    for _ in range(episodes):
        task = teacher.sample()
        inside.append(bool((np.abs(task - 0.55) < 0.05).all()))
        if inside[-1]:
            practice += 1
            score = min(practice * progress_per_visit, 1.0)
        else:
            score = float((int(task[0] * 20) + int(task[1] * 20)) % 2)
        teacher.update(task, score)
    return teacher, np.array(inside)


def test_episodes_go_where_scores_rise_not_where_neighbouring_scores_differ():
    teacher, inside = train_beside_a_checkerboard(progress_per_visit=1 / 4000)
    assert inside[-1000:].mean() > 0.7
    p = teacher.particles
    outside = (np.abs(p["unit"] - 0.55) >= 0.05).any(1)
    assert (p["alp"][outside & (p["visits"] >= 2)] == 0.0).all()
    assert p["visits"][outside].max() <= 2  # dropped at its first revisit


def test_a_task_whose_score_stopped_rising_is_left():
    _, inside = train_beside_a_checkerboard(progress_per_visit=1 / 300)  # saturates at 300 visits
    assert inside[:1500].sum() >= 300
    assert inside[-1000:].mean() < 0.1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alp_revisit_beats_alp_gmm_on_the_grid_student_at_a_small_budget(seed):
    alp_gmm = run_toy("alp-gmm", "default", seed, episodes=3000, eval_every=3000)
    revisit = run_toy("alp-revisit", "default", seed, episodes=3000, eval_every=3000)
    assert revisit["mastered_pct"][-1] >= 15.0
    assert revisit["mastered_pct"][-1] >= alp_gmm["mastered_pct"][-1] + 10.0


def test_state_dict_round_trip_gives_identical_next_samples():
    space = spaces.Box(np.array([0.0, -1.0]), np.array([3.0, 1.0]), dtype=np.float32)
    teacher = teachgym.make_teacher("alp-revisit", space, seed=5)
    rng = np.random.default_rng(0)
    for task in space.low + rng.random((1100, 2)) * (space.high - space.low):  # arrays grow past 1024
        teacher.update(task.astype(np.float32), float(rng.random()))
    for _ in range(300):
        task = teacher.sample()
        teacher.update(task, float(task[0] > 1.0) * rng.random())
    copy = teachgym.make_teacher("alp-revisit", space, seed=99)
    copy.load_state_dict(teacher.state_dict())
    for _ in range(300):
        a, b = teacher.sample(), copy.sample()
        np.testing.assert_array_equal(a, b)
        score = float(rng.random())
        teacher.update(a, score)
        copy.update(b, score)
    np.testing.assert_array_equal(teacher.particles["alp"], copy.particles["alp"])


def test_state_of_another_shape_is_refused_and_the_teacher_unchanged():
    teacher = teachgym.make_teacher("alp-revisit", spaces.Box(0.0, 1.0, (2,)), seed=0)
    for _ in range(30):
        teacher.update(teacher.sample(), 0.5)
    state = teacher.state_dict()
    state["state"]["alp"] = state["state"]["alp"][:-1]
    before = teacher.particles
    with pytest.raises(ValueError, match="inconsistent lengths"):
        teacher.load_state_dict(state)
    np.testing.assert_array_equal(teacher.particles["alp"], before["alp"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=task_spaces(), seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 1e-9, 1e300]))
def test_samples_stay_inside_random_box_spaces(space, seed, scale):
    if not isinstance(space, spaces.Box):
        return  # the teacher supports Box spaces only
    teacher = teachgym.make_teacher("alp-revisit", space, seed=seed, bootstrap=5)
    rng = np.random.default_rng(seed)
    for _ in range(120):
        task = teacher.sample()
        assert space.contains(task)
        teacher.update(task, float(scale * rng.standard_normal()))


def test_hyper_parameters_are_validated():
    box = spaces.Box(0.0, 1.0, (2,))
    for bad in (
        {"uniform_ratio": 1.5},
        {"uniform_ratio": 0.6, "local_ratio": 0.6},
        {"sigma_min": 0.0},
        {"sigma_min": 0.5, "sigma_max": 0.1},
        {"window": 0},
    ):
        with pytest.raises(ValueError):
            teachgym.make_teacher("alp-revisit", box, **bad)
    with pytest.raises(ValueError):
        teachgym.make_teacher("alp-revisit", spaces.Discrete(4))
