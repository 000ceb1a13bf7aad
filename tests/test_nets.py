"""The teachers' numpy networks: every hand-written gradient equals torch's autograd, every
optimiser step equals torch's ``Adam`` / ``RMSprop``."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces

import teachgym
from teachgym.teachers._nets import MLP, Adam, RMSprop, share_parameters

TORCH_ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "leaky_relu": lambda x: F.leaky_relu(x, 0.2)}


def as_torch(arrays):
    return [torch.tensor(np.asarray(a), dtype=torch.float32, requires_grad=True) for a in arrays]


def torch_mlp(params, x, activation):
    act = TORCH_ACTIVATIONS[activation] if isinstance(activation, str) else activation
    for i in range(0, len(params), 2):
        x = F.linear(x, params[i], params[i + 1])
        if i < len(params) - 2:
            x = act(x)
    return x


def flat(grads):
    return np.concatenate([g.detach().numpy().ravel() for g in grads])


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu"])
def test_mlp_gradients_match_autograd(activation):
    rng = np.random.default_rng(0)
    net = MLP(rng, [3, 16, 8, 2], activation)
    net.params[1][...] = rng.normal(size=16)  # non-zero biases exercise their gradients
    x, upstream = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    out, cache = net.forward(x)
    grad, grad_x = net.backward(cache, upstream, inputs=True)

    params = as_torch(net.params)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    out_t = torch_mlp(params, xt, activation)
    expected = torch.autograd.grad((out_t * torch.as_tensor(upstream, dtype=torch.float32)).sum(), [*params, xt])
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, flat(expected[:-1]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grad_x, expected[-1].numpy(), rtol=1e-4, atol=1e-6)
    assert net.backward(cache, upstream, params=False, inputs=True)[0] is None


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: RMSprop(p, lr=1e-3, alpha=0.9), lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9)),
        (lambda p: Adam(p, lr=1e-3), lambda p: torch.optim.Adam(p, lr=1e-3)),
    ],
)
def test_optimiser_steps_match_torch(ours, theirs):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 3)), rng.standard_normal((50, 1))
    net = MLP(np.random.default_rng(1), [3, 16, 16, 1], "relu")
    params = as_torch(net.params)
    opt, opt_t = ours(net.flat), theirs(params)
    xt, yt = (torch.as_tensor(a, dtype=torch.float32) for a in (x, y))
    for _ in range(30):
        out, cache = net.forward(x)
        opt.step(net.backward(cache, 2.0 * (out - y) / len(y))[0])
        opt_t.zero_grad()
        ((torch_mlp(params, xt, "relu") - yt) ** 2).mean().backward()
        opt_t.step()
    np.testing.assert_allclose(net.flat, flat(params), rtol=1e-4, atol=1e-6)
    assert net.flat.dtype == np.float32 and opt.steps == 30


def test_optimiser_state_round_trips_and_refuses_a_wrong_size():
    net = MLP(np.random.default_rng(0), [2, 4, 1], "relu")
    opt = Adam(net.flat)
    opt.step(np.ones_like(net.flat))
    twin = Adam(net.flat.copy())
    twin.load_state_dict(opt.state_dict())
    assert twin.steps == 1 and np.array_equal(twin.exp_avg_sq, opt.exp_avg_sq)
    with pytest.raises(ValueError, match="exp_avg"):
        Adam(np.zeros(3, np.float32)).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="learning rate"):
        RMSprop(net.flat, lr=0.0)


def test_shared_parameters_are_views_of_one_vector():
    nets = [MLP(np.random.default_rng(i), [2, 3, 1], "tanh") for i in range(2)]
    before = [net.arrays() for net in nets]
    vector = share_parameters(nets)
    assert all(np.array_equal(a, b) for net, arrays in zip(nets, before) for a, b in zip(net.arrays(), arrays))
    vector += 1.0
    assert np.array_equal(nets[1].params[0], before[1][0] + 1.0)


# ----------------------------------------------------------------- Setter-Solver's losses in torch
def torch_flow(couplings, masks, x, f, inverse):
    logdet = torch.zeros(len(x))
    for k in (range(len(masks) - 1, -1, -1) if inverse else range(len(masks))):
        m = torch.as_tensor(masks[k])
        s, t = torch_mlp(couplings[k], torch.cat([x * m, f], 1), torch.tanh).chunk(2, dim=1)
        scale = 0.01 + F.softplus(s)
        x = m * x + (1 - m) * ((x - t) / scale if inverse else x * scale + t)
        logdet = logdet + ((1 - m) * torch.log(scale)).sum(1)
    return x, logdet


def base_log_pdf(z):
    return -0.5 * (z / 1.8).pow(2).sum(1) - z.shape[1] * (np.log(1.8) + 0.5 * np.log(2 * np.pi))


def test_setter_gradient_matches_autograd_of_its_three_losses():
    box = spaces.Box(0.0, 1.0, (3,), dtype=np.float64)
    teacher = teachgym.make_teacher("setter-solver", box, seed=0, update_frequency=50, train_steps=3, batch_size=64)
    rng = np.random.default_rng(1)
    for _ in range(120):  # train a little so that every weight is non-trivial
        task = teacher.sample()
        teacher.update(task, float(rng.random() < task[0]))
    recent = slice(-50, None)
    weights, f_recent = teacher._successes[recent], teacher._feasibility[recent]
    valid = (weights > 0) & ~np.isnan(f_recent)
    assert 5 < valid.sum() < 50
    draws = copy.deepcopy(teacher.rng)
    grad = teacher._setter_gradient(recent, weights, f_recent, valid)

    # The same loss in torch, from the same random draws.
    b, d, ub = 64, 3, teacher.setter_loss_noise_ub
    f = draws.uniform(1e-8, 1.0, b)
    z = torch.as_tensor(1.8 * draws.standard_normal((b, d)), dtype=torch.float32)
    noisy = teacher._goals[recent][valid] + draws.uniform(-ub / 2, ub / 2, (valid.sum(), d))
    couplings = [as_torch(net.params) for net in teacher.setter.couplings]
    judge = [torch.as_tensor(p) for p in teacher.judge.params]
    masks = teacher.setter.masks
    ft = torch.as_tensor(f, dtype=torch.float32)[:, None]
    x, logdet = torch_flow(couplings, masks, z, ft, inverse=False)
    log_p = base_log_pdf(z) - logdet - (F.logsigmoid(x) + F.logsigmoid(-x)).sum(1)
    logit_f = torch.as_tensor(np.log(f) - np.log1p(-f), dtype=torch.float32)
    loss = ((torch_mlp(judge, torch.sigmoid(x), F.relu)[:, 0] - logit_f) ** 2).mean() + log_p.mean()
    y = torch.as_tensor(np.clip(noisy, 1e-4, 1 - 1e-4), dtype=torch.float32)
    fv = torch.as_tensor(f_recent[valid], dtype=torch.float32)[:, None]
    zv, logdet_v = torch_flow(couplings, masks, torch.log(y) - torch.log1p(-y), fv, inverse=True)
    w = torch.as_tensor(weights[valid], dtype=torch.float32)
    loss = loss - (w * (base_log_pdf(zv) - logdet_v)).sum() / w.sum()
    expected = flat(torch.autograd.grad(loss, [p for net in couplings for p in net]))
    np.testing.assert_allclose(grad, expected, rtol=2e-3, atol=2e-5)
    assert np.abs(expected).max() > 1e-2


def test_goal_gan_training_step_matches_autograd():
    box = spaces.Box(0.0, 1.0, (2,), dtype=np.float64)
    teacher = teachgym.make_teacher("goal-gan", box, seed=0, batch_size=16)
    rng = np.random.default_rng(0)
    goals, labels = rng.uniform(-1, 1, (10, 2)), (rng.random(10) < 0.5).astype(float)
    gen, disc = as_torch(teacher.generator.params), as_torch(teacher.discriminator.params)
    noise = torch.as_tensor(copy.deepcopy(teacher.rng).standard_normal((1, 16, 2))[0], dtype=torch.float32)
    before = teacher.generator.flat.copy()
    teacher._train_gan(goals, labels, 1)

    g_opt = torch.optim.RMSprop(gen, lr=1e-3, alpha=0.9)
    d_opt = torch.optim.RMSprop(disc, lr=1e-3, alpha=0.9)
    fake = torch.tanh(torch_mlp(gen, noise, "relu"))
    x = torch.cat([torch.as_tensor(goals, dtype=torch.float32), fake.detach()])
    target = torch.cat([torch.as_tensor(2 * labels - 1, dtype=torch.float32)[:, None], -torch.ones(16, 1)])
    ((target - torch_mlp(disc, x, "leaky_relu")) ** 2).mean().backward()
    d_opt.step()
    g_opt.zero_grad()
    ((torch_mlp(disc, fake, "leaky_relu") - 1.0) ** 2).mean().backward()
    g_opt.step()
    np.testing.assert_allclose(teacher.discriminator.flat, flat(disc), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(teacher.generator.flat, flat(gen), rtol=1e-4, atol=1e-6)
    assert not np.array_equal(teacher.generator.flat, before)


@pytest.mark.parametrize("name, kwargs", [("setter-solver", {"update_frequency": 5, "train_steps": 2}),
                                          ("goal-gan", {"update_size": 4, "outer_iters": 2})])
def test_a_read_only_state_loads_and_the_copy_trains_without_touching_it(name, kwargs):
    """Ray hands actors read-only arrays; a state loaded twice must give the same teacher twice."""
    box = spaces.Box(0.0, 1.0, (2,), dtype=np.float64)

    def drive(teacher, n):
        for i in range(n):
            teacher.update(teacher.sample(), float(i % 3 == 0))

    source = teachgym.make_teacher(name, box, seed=0, **kwargs)
    drive(source, 30)
    state = source.state_dict()

    def freeze(value):
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        elif isinstance(value, dict):
            for v in value.values():
                freeze(v)
        elif isinstance(value, list):
            for v in value:
                freeze(v)

    freeze(state)
    twins = [teachgym.make_teacher(name, box, seed=1, **kwargs) for _ in range(2)]
    for twin in twins:
        twin.load_state_dict(state)
        drive(twin, 30)
    assert [twins[0].sample().tolist() for _ in range(20)] == [twins[1].sample().tolist() for _ in range(20)]
