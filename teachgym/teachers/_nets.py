"""Small torch helpers for the teachers that train networks (GoalGAN, Setter-Solver).

Networks are plain lists of tensors, initialised from the teacher's numpy generator so that
torch's global RNG is never touched; weights and optimiser states convert to numpy arrays for
pickle-free state dicts.
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
