"""Small torch helpers for the teachers that train networks (GoalGAN, Setter-Solver).

Networks are plain lists of tensors, initialised from the teacher's numpy generator so that
torch's global RNG is never touched; weights and optimiser states convert to numpy arrays for
pickle-free state dicts.

:func:`rmsprop_step` and :func:`adam_step` do what ``optimizer.step()`` of torch's RMSprop /
Adam does with ``foreach=True`` (the same ``torch._foreach_*`` arithmetic in the same order, the
same state in ``optimizer.state``) for the settings the teachers use, without the per-call
bookkeeping of ``Optimizer.step``, which costs more than the arithmetic on networks this small.
tests/test_nets.py checks them against torch's step bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def init_mlp(rng: np.random.Generator, sizes: list[int], device: torch.device) -> list[torch.Tensor]:
    """Weights and biases of an MLP with layer ``sizes``; Xavier-uniform weights, zero biases."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-bound, bound, (fan_out, fan_in))
        params.append(torch.tensor(w, dtype=torch.float32, device=device, requires_grad=True))
        params.append(torch.zeros(fan_out, dtype=torch.float32, device=device, requires_grad=True))
    return params


def mlp(params: list[torch.Tensor], x: torch.Tensor, activation) -> torch.Tensor:
    """Apply the MLP ``params`` (``activation`` between layers, none after the last)."""
    last = len(params) - 2
    for i in range(0, len(params), 2):
        x = F.linear(x, params[i], params[i + 1])
        if i < last:
            x = activation(x)
    return x


def _states(opt: torch.optim.Optimizer, keys: tuple[str, ...]) -> tuple[list[torch.Tensor], list[dict]]:
    """The parameters and their optimizer states, created as torch's first step creates them."""
    group = opt.param_groups[0]
    if len(opt.param_groups) != 1 or group.get("weight_decay", 0) or group.get("momentum", 0) or group.get(
        "centered", False) or group.get("amsgrad", False) or group.get("maximize", False):
        raise ValueError("rmsprop_step/adam_step support one parameter group without weight decay, "
                         "momentum, centring, amsgrad or maximize")
    params = group["params"]
    states = [opt.state[p] for p in params]
    for p, st in zip(params, states):
        if not st:
            st["step"] = torch.tensor(0.0, dtype=torch.float32)
            for key in keys:
                st[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return params, states


@torch.no_grad()
def rmsprop_step(opt: torch.optim.RMSprop, grads: tuple[torch.Tensor, ...]) -> None:
    """One step of ``opt`` (torch's foreach RMSprop) with ``grads`` (one per parameter)."""
    params, states = _states(opt, ("square_avg",))
    group = opt.param_groups[0]
    lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
    grads = list(grads)
    torch._foreach_add_([st["step"] for st in states], torch.tensor(1.0, device="cpu"), alpha=1.0)
    square_avgs = [st["square_avg"] for st in states]
    torch._foreach_mul_(square_avgs, alpha)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
    avg = torch._foreach_sqrt(square_avgs)
    torch._foreach_add_(avg, eps)
    torch._foreach_addcdiv_(params, grads, avg, value=-lr)


@torch.no_grad()
def adam_step(opt: torch.optim.Adam, grads: tuple[torch.Tensor, ...]) -> None:
    """One step of ``opt`` (torch's foreach Adam) with ``grads`` (one per parameter)."""
    params, states = _states(opt, ("exp_avg", "exp_avg_sq"))
    group = opt.param_groups[0]
    lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
    grads = list(grads)
    steps = [st["step"] for st in states]
    torch._foreach_add_(steps, torch.tensor(1.0, device="cpu"), alpha=1.0)
    exp_avgs, exp_avg_sqs = [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states]
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    bias_correction1 = [1 - beta1 ** step.item() for step in steps]
    bias_correction2 = [1 - beta2 ** step.item() for step in steps]
    step_size = [(lr / bc) * -1 for bc in bias_correction1]
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, [bc**0.5 for bc in bias_correction2])
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)


def tensors_to_numpy(params: list[torch.Tensor]) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in params]


def load_tensors(params: list[torch.Tensor], arrays: list[np.ndarray]) -> None:
    if len(arrays) != len(params):
        raise ValueError(f"expected {len(params)} weight arrays, got {len(arrays)}")
    for p, a in zip(params, arrays):
        a = np.asarray(a, dtype=np.float32)
        if a.shape != tuple(p.shape):
            raise ValueError(f"weight of shape {a.shape} does not fit {tuple(p.shape)}")
    with torch.no_grad():
        for p, a in zip(params, arrays):
            p.copy_(torch.as_tensor(np.asarray(a, dtype=np.float32)))


def optimizer_state(opt: torch.optim.Optimizer) -> list[dict[str, np.ndarray]]:
    """Per-parameter state of a torch optimizer (moments, step) as numpy arrays."""
    params = opt.param_groups[0]["params"]
    return [{k: v.detach().cpu().numpy().copy() for k, v in opt.state.get(p, {}).items()} for p in params]


def load_optimizer_state(opt: torch.optim.Optimizer, saved: list[dict[str, np.ndarray]]) -> None:
    params = opt.param_groups[0]["params"]
    if len(saved) != len(params):
        raise ValueError(f"expected optimizer state for {len(params)} tensors, got {len(saved)}")
    opt.state.clear()
    for p, entry in zip(params, saved):
        if entry:
            opt.state[p] = {k: torch.as_tensor(np.asarray(v)).to(p.device) for k, v in entry.items()}
