"""SPDL v1: the KL-penalised natural-gradient step of Klink et al. (2019, 2020), as TeachMyAgent runs it."""

import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.teachers.spdl import _Gaussian, _kl

BOX = spaces.Box(np.array([0.0, 0.0]), np.array([3.0, 6.0]), dtype=np.float64)


def spdl_v1(value=None, **kwargs):
    teacher = teachgym.make_teacher(
        "spdl-v1", BOX, seed=0, **{"update_frequency": 50, "update_offset": 0, "initial_mean": [0.3, 0.6], **kwargs}
    )
    if value is not None:
        teacher.bind(value_estimate=value)
    return teacher


def params(mean, chol):
    """(mean, log-diagonal, off-diagonal) of a 2-D Gaussian."""
    return np.array([mean[0], mean[1], np.log(chol[0, 0]), np.log(chol[1, 1]), chol[1, 0]])


def gaussian(theta):
    chol = np.array([[np.exp(theta[2]), 0.0], [theta[4], np.exp(theta[3])]])
    return theta[:2], chol @ chol.T


def log_pdf(x, mean, cov):
    diff = x - mean
    return -0.5 * (np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
                   + np.log(np.linalg.det(cov)) + 2 * np.log(2 * np.pi))


def kl(m0, s0, m1, s1):
    """KL(N(m0, s0) || N(m1, s1)) in closed form."""
    inv = np.linalg.inv(s1)
    return 0.5 * (np.trace(inv @ s0) + (m1 - m0) @ inv @ (m1 - m0) - 2 + np.log(np.linalg.det(s1) / np.linalg.det(s0)))


def numeric_grad(f, x, h=1e-5):
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(len(x))])


def test_one_update_is_the_papers_penalised_natural_gradient_step_within_the_kl_bound():
    """Recompute the update from the paper's formulas with finite differences and compare."""

    def value(tasks):  # value rises with stump height: the step trades it against the target
        return 1.0 + np.asarray(tasks)[:, 0] / 3.0

    teacher = spdl_v1(value=value, max_kl=0.05, zeta=0.5)
    theta_q = params(teacher.mean, teacher.chol)
    contexts = []
    for _ in range(50):
        task = teacher.sample()
        contexts.append(np.asarray(task) / [3.0, 6.0])
        if len(contexts) < 50:
            teacher.update(task, 0.0)
    contexts = np.array(contexts)
    v = value(contexts * [3.0, 6.0])
    mq, sq = gaussian(theta_q)
    target_mean, target_cov = np.full(2, 0.5), np.eye(2) / 16.0
    alpha = 0.5 * v.mean() / kl(mq, sq, target_mean, target_cov)

    def objective(theta):
        m, s = gaussian(theta)
        w = np.exp(log_pdf(contexts, m, s) - log_pdf(contexts, mq, sq))
        return (w * v).mean() - alpha * kl(m, s, target_mean, target_cov)

    grad = numeric_grad(objective, theta_q)
    fisher = np.array([numeric_grad(lambda t, i=i: numeric_grad(
        lambda u: kl(mq, sq, *gaussian(u)), t)[i], theta_q) for i in range(5)])
    direction = np.linalg.solve(fisher, grad)
    full = direction * np.sqrt(0.05 / (0.5 * direction @ fisher @ direction))

    teacher.update(contexts[-1] * [3.0, 6.0], 0.0)  # the 50th episode: the update
    assert teacher.alpha == pytest.approx(alpha, rel=1e-9)
    step = params(teacher.mean, teacher.chol) - theta_q
    ratio = step @ full / (full @ full)
    assert any(abs(ratio - 0.5**k) < 1e-4 for k in range(10))  # the full step or a halving of it
    np.testing.assert_allclose(step, ratio * full, atol=1e-4 * np.abs(full).max())
    m_new, s_new = gaussian(params(teacher.mean, teacher.chol))
    assert kl(mq, sq, m_new, s_new) <= 0.05 + 1e-9
    assert objective(params(teacher.mean, teacher.chol)) >= objective(theta_q)


def run(teacher, episodes, score=lambda task: 0.0):
    """Drive the teacher; return (KL to target, KL(old || new)) after each update."""
    trace = []
    for _ in range(episodes):
        before = _Gaussian(teacher.mean.copy(), teacher.chol.copy())
        iterations = teacher.iterations
        task = teacher.sample()
        teacher.update(task, score(task))
        if teacher.iterations > iterations:
            trace.append((teacher.kl_to_target(), _kl(before, _Gaussian(teacher.mean, teacher.chol), False)[0]))
    return np.array(trace)


@pytest.mark.parametrize("max_kl", [0.8, 0.1])
def test_with_a_constant_value_the_penalty_pulls_q_to_the_target_within_the_kl_bound(max_kl):
    """With V constant, E_p[V] is flat and only the penalty has a direction; with zeta = 0.05
    the importance-sampling noise of the flat term would outweigh it, so the penalty is made
    the larger term here (zeta = 2, 200 contexts per update)."""
    teacher = spdl_v1(value=lambda t: np.ones(len(t)), max_kl=max_kl, zeta=2.0, update_frequency=200)
    start = teacher.kl_to_target()
    trace = run(teacher, 200 * 30)
    assert (trace[:, 1] <= max_kl + 1e-9).all()
    assert trace[:, 1].max() > 0.3 * max_kl  # the steps use the bound, not a sliver of it
    assert trace[-1, 0] < 0.05 * start
    np.testing.assert_allclose(teacher.mean, [0.5, 0.5], atol=0.05)


def test_alpha_is_zero_before_alpha_offset_so_q_climbs_the_value_first():
    def value(tasks):
        return np.asarray(tasks)[:, 0] / 3.0

    early = spdl_v1(value=value, alpha_offset=6, max_kl=0.05)
    run(early, 50 * 5)
    assert early.alpha == 0.0 and early.mean[0] > 0.1 + 0.05  # from 0.1 (0.3 of 3), up the value's slope
    late = spdl_v1(value=value, alpha_offset=6, max_kl=0.05)
    run(late, 50 * 6)
    assert late.iterations == 6 and late.alpha > 0.0


def test_updates_wait_for_the_offset_then_come_every_update_frequency_episodes():
    teacher = spdl_v1(value=lambda t: np.ones(len(t)), update_frequency=25, update_offset=100)
    seen = []
    for _ in range(200):
        teacher.update(teacher.sample(), 0.0)
        seen.append(teacher.iterations)
    assert seen[98] == 0 and seen[99] == 1 and seen[124] == 2 and seen[-1] == 5


def test_samples_stay_inside_the_space_for_any_score_magnitude():
    teacher = spdl_v1(update_frequency=10)
    for i in range(300):
        task = teacher.sample()
        assert BOX.contains(task)
        teacher.update(task, (1e15, -1e15, 0.0)[i % 3])


def test_state_round_trip_continues_identically():
    a = spdl_v1(value=lambda t: np.ones(len(t)))
    run(a, 275)
    b = spdl_v1(value=lambda t: np.ones(len(t)))
    b.load_state_dict(a.state_dict())
    for _ in range(300):
        ta, tb = a.sample(), b.sample()
        np.testing.assert_array_equal(ta, tb)
        a.update(ta, 0.5)
        b.update(tb, 0.5)
    np.testing.assert_array_equal(a.mean, b.mean)


@pytest.mark.parametrize(
    "preset, expected",
    [("teachmyagent-defaults", (50, 100, 0, 0.05, 0.8, False)), ("teachmyagent", (25, 100, 10, 0.25, 0.1, True))],
)
def test_teachmyagent_presets(preset, expected):
    teacher = teachgym.make_teacher("spdl-v1", BOX, seed=0, preset=preset)
    got = (teacher.update_frequency, teacher.update_offset, teacher.alpha_offset, teacher.zeta, teacher.max_kl,
           teacher.use_avg_performance)
    assert got == expected and teacher.initial_mean == "random"
    np.testing.assert_allclose(np.diag(teacher.target_chol), 0.25)  # range / 4, normalised


def test_spdl_stays_the_constrained_version():
    assert type(teachgym.make_teacher("spdl", BOX)).__name__ == "SPDL"
    assert "performance_threshold" in teachgym.make_teacher("spdl", BOX).hparams()
    assert "zeta" not in teachgym.make_teacher("spdl", BOX).hparams()


def test_invalid_hyper_parameters_raise():
    with pytest.raises(ValueError, match="max_kl"):
        teachgym.make_teacher("spdl-v1", BOX, max_kl=0.0)
    with pytest.raises(ValueError, match="initial_mean"):
        teachgym.make_teacher("spdl-v1", BOX, initial_mean="centre")
    with pytest.raises(ValueError, match="zeta"):
        teachgym.make_teacher("spdl-v1", BOX, zeta=-1.0)
