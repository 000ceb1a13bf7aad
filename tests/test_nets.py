"""The teachers' fast optimizer steps equal torch's ``optimizer.step()`` bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from teachgym.teachers._nets import adam_step, init_mlp, mlp, optimizer_state, rmsprop_step


@pytest.mark.parametrize(
    "make, step",
    [
        (lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9), rmsprop_step),
        (lambda p: torch.optim.Adam(p, lr=1e-3), adam_step),
    ],
)
def test_fast_steps_match_torch_optimizer_steps_exactly(make, step):
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((50, 3)), dtype=torch.float32)
    y = torch.as_tensor(rng.standard_normal((50, 1)), dtype=torch.float32)
    nets = [init_mlp(np.random.default_rng(1), [3, 16, 16, 1], torch.device("cpu")) for _ in range(2)]
    opts = [make(net) for net in nets]
    for _ in range(30):
        loss = ((mlp(nets[0], x, F.relu) - y) ** 2).mean()
        opts[0].zero_grad()
        loss.backward()
        opts[0].step()
        loss = ((mlp(nets[1], x, F.relu) - y) ** 2).mean()
        step(opts[1], torch.autograd.grad(loss, nets[1]))
    for a, b in zip(*nets):
        assert torch.equal(a, b)
    for sa, sb in zip(*(optimizer_state(o) for o in opts)):
        assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_fast_steps_refuse_settings_they_do_not_implement():
    net = init_mlp(np.random.default_rng(0), [2, 4, 1], torch.device("cpu"))
    with pytest.raises(ValueError, match="momentum"):
        rmsprop_step(torch.optim.RMSprop(net, momentum=0.9), tuple(torch.zeros_like(p) for p in net))
