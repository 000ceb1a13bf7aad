"""Small numpy networks for the teachers that train them (GoalGAN, Setter-Solver).

The teachers' networks are tiny (two or three layers of 32-64 units, batches of 100-500), so
eager torch spends most of a training step in per-operation overhead rather than arithmetic:
the same steps written with numpy (float32, hand-written backward passes) run about 3x faster on one
CPU thread (see the README's benchmark notes) and keep torch out of the teachers altogether.
tests/test_nets.py checks every gradient here against torch's autograd and each optimiser step
against torch's ``Adam`` / ``RMSprop``.

Parameters of a network live in one flat float32 vector (views give the per-layer weights), so
that an optimiser step is a handful of vector operations whatever the number of layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ACTIVATIONS = ("relu", "tanh", "leaky_relu")
_LEAKY_SLOPE = 0.2


class MLP:
    """A multi-layer perceptron with a hand-written backward pass.

    Parameters
    ----------
    rng
        Generator for the Xavier-uniform weights (biases start at zero).
    sizes
        Units per layer, input first (``[d_in, hidden..., d_out]``).
    activation
        ``"relu"``, ``"tanh"`` or ``"leaky_relu"`` (slope 0.2) between layers; none after the last.
    """

    def __init__(self, rng: np.random.Generator, sizes: list[int], activation: str) -> None:
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        self.sizes, self.activation = [int(s) for s in sizes], activation
        shapes = [s for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]) for s in ((fan_out, fan_in), (fan_out,))]
        self.flat = np.zeros(_slices(shapes)[-1][1], dtype=np.float32)
        self.params = _views(self.flat, _slices(shapes))
        for w, (fan_out, fan_in) in zip(self.params[::2], shapes[::2]):
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            w[...] = rng.uniform(-bound, bound, (fan_out, fan_in))
        self._slices = _slices(shapes)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output for inputs ``x`` (``(n, d_in)``) and what :meth:`backward` needs."""
        h = np.asarray(x, dtype=np.float32)
        cache = [h]
        last = len(self.params) - 2
        for i in range(0, len(self.params), 2):
            h = h @ self.params[i].T
            h += self.params[i + 1]
            if i < last:
                h = _activate(h, self.activation)
                cache.append(h)
        return h, cache

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def backward(
        self, cache: list[np.ndarray], grad_out: np.ndarray, params: bool = True, inputs: bool = False
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Gradients of a loss for the parameters (flat, like :attr:`flat`) and for the inputs.

        ``grad_out`` is the loss's gradient for the output of the forward pass that made ``cache``.
        """
        grad = np.empty_like(self.flat) if params else None
        views = _views(grad, self._slices) if params else None
        g = np.asarray(grad_out, dtype=np.float32)
        for layer in range(len(cache) - 1, -1, -1):
            if params:
                np.matmul(g.T, cache[layer], out=views[2 * layer])
                np.add.reduce(g, axis=0, out=views[2 * layer + 1])
            if layer == 0 and not inputs:
                break
            g = g @ self.params[2 * layer]
            if layer > 0:
                g *= _derivative(cache[layer], self.activation)
        return grad, (g if inputs else None)

    def arrays(self) -> list[np.ndarray]:
        """Copies of the weights and biases (for state dicts)."""
        return [p.copy() for p in self.params]

    def load(self, arrays: list[np.ndarray]) -> None:
        """Set the weights and biases from :meth:`arrays`' output (shapes checked first)."""
        if len(arrays) != len(self.params):
            raise ValueError(f"expected {len(self.params)} weight arrays, got {len(arrays)}")
        arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
        for p, a in zip(self.params, arrays):
            if a.shape != p.shape:
                raise ValueError(f"weight of shape {a.shape} does not fit {p.shape}")
        for p, a in zip(self.params, arrays):
            p[...] = a


def share_parameters(nets: list[MLP]) -> np.ndarray:
    """One flat vector holding the parameters of all ``nets`` (each keeps views into it)."""
    flat = np.concatenate([net.flat for net in nets])
    start = 0
    for net in nets:
        net.flat = flat[start : start + net.flat.size]
        net.params = _views(net.flat, net._slices)
        start += net.flat.size
    return flat


def _slices(shapes: list[tuple[int, ...]]) -> list[tuple[int, int, tuple[int, ...]]]:
    """(start, stop, shape) of each array in the flat vector."""
    out, start = [], 0
    for shape in shapes:
        stop = start + int(np.prod(shape))
        out.append((start, stop, shape))
        start = stop
    return out


def _views(flat: np.ndarray, slices: list[tuple[int, int, tuple[int, ...]]]) -> list[np.ndarray]:
    return [flat[start:stop].reshape(shape) for start, stop, shape in slices]


def _activate(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(z, 0.0, out=z)
    if activation == "tanh":
        return np.tanh(z, out=z)
    return np.maximum(z, _LEAKY_SLOPE * z)  # the slope is below 1


def _derivative(h: np.ndarray, activation: str) -> np.ndarray:
    """The activation's derivative, from its output (the sign of the output is the input's)."""
    if activation == "relu":
        return h > 0.0
    if activation == "tanh":
        return 1.0 - h * h
    return np.where(h > 0.0, np.float32(1.0), np.float32(_LEAKY_SLOPE))


class _Optimiser:
    """Common part: the flat parameter vector it steps in place and a pickle-free state."""

    _moments: tuple[str, ...] = ()

    def __init__(self, params: np.ndarray, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr!r}")
        self.params, self.lr = params, float(lr)
        self.steps = 0
        for name in self._moments:
            setattr(self, name, np.zeros_like(params))

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, **{name: getattr(self, name).copy() for name in self._moments}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Copies: the caller's arrays may be read-only (Ray) or reused (another load of the same state).
        moments = {name: np.array(state[name], dtype=np.float32).reshape(-1) for name in self._moments}
        for name, value in moments.items():
            if value.shape != self.params.shape:
                raise ValueError(f"optimiser state {name!r} has {value.size} values, expected {self.params.size}")
        self.steps = int(state["steps"])
        for name, value in moments.items():
            setattr(self, name, value)


class Adam(_Optimiser):
    """Adam (torch's arithmetic: bias corrections, ``eps`` added after the square root)."""

    _moments = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: np.ndarray, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2, self.eps = float(betas[0]), float(betas[1]), float(eps)

    def step(self, grad: np.ndarray) -> None:
        """Move the parameters in place along ``grad`` (flat, as :meth:`MLP.backward` gives)."""
        self.steps += 1
        self.exp_avg += (1.0 - self.beta1) * (grad - self.exp_avg)
        self.exp_avg_sq *= self.beta2
        self.exp_avg_sq += (1.0 - self.beta2) * grad * grad
        bias1, bias2 = 1.0 - self.beta1**self.steps, 1.0 - self.beta2**self.steps
        denom = np.sqrt(self.exp_avg_sq) / np.float32(np.sqrt(bias2))
        denom += self.eps
        self.params -= np.float32(self.lr / bias1) * self.exp_avg / denom


class RMSprop(_Optimiser):
    """RMSprop without momentum or centring (torch's arithmetic)."""

    _moments = ("square_avg",)

    def __init__(self, params: np.ndarray, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.alpha, self.eps = float(alpha), float(eps)

    def step(self, grad: np.ndarray) -> None:
        """Move the parameters in place along ``grad`` (flat, as :meth:`MLP.backward` gives)."""
        self.steps += 1
        self.square_avg *= self.alpha
        self.square_avg += (1.0 - self.alpha) * grad * grad
        avg = np.sqrt(self.square_avg)
        avg += self.eps
        self.params -= self.lr * grad / avg
