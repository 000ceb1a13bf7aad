"""The CPPN that draws Parkour's ground and ceiling (TeachMyAgent's ``TanHSoftplusMixCPPN``).

A CPPN (compositional pattern-producing network) maps ``(x, v1, v2, v3)`` to two heights, the
ground and the ceiling at ``x``; the 3-D input vector ``v`` is part of the task, so a teacher
moves through a continuous family of terrains. Architecture as in TeachMyAgent (Romac et al.
2021): four hidden layers of 64 units, alternating tanh / softplus, no biases, linear output.
Weights are fixed: :data:`WEIGHTS_FILE` ships them, drawn once by :func:`make_weights`
(TensorFlow's ``truncated_normal(stddev=2)``: N(0, 2) redrawn outside two standard deviations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_POINTS = 200  # x positions per terrain (TeachMyAgent's TERRAIN_LENGTH)
INPUT_DIM = 3
HIDDEN = 64
WEIGHTS_SEED = 10  # the smoothest of seeds 0-199 over the default input box (largest step 1.2 m)
WEIGHTS_FILE = Path(__file__).parent / "data" / "cppn_weights.npz"
_LAYERS = ("w1", "w2", "w3", "w4", "out")


def make_weights(seed: int = WEIGHTS_SEED) -> dict[str, np.ndarray]:
    """Draw CPPN weights: every matrix from a truncated N(0, 2) (|w| <= 4), float32.

    The shipped file holds ``make_weights(WEIGHTS_SEED)``; the file, not this function, is what
    the env reads, so a change in numpy's random streams cannot change the terrains.
    """
    rng = np.random.default_rng(seed)
    shapes = ((INPUT_DIM + 1, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, 2))
    weights = {}
    for name, shape in zip(_LAYERS, shapes):
        w = rng.normal(0.0, 2.0, shape)
        outside = np.abs(w) > 4.0
        while outside.any():  # truncated normal: redraw the tails, as TensorFlow does
            w[outside] = rng.normal(0.0, 2.0, int(outside.sum()))
            outside = np.abs(w) > 4.0
        weights[name] = w.astype(np.float32)
    return weights


def save_weights(path: Path = WEIGHTS_FILE, seed: int = WEIGHTS_SEED) -> None:
    """Write ``make_weights(seed)`` to ``path`` (how the shipped file was made)."""
    np.savez_compressed(path, **make_weights(seed))


def _softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + exp(z))`` without overflow (4x faster than ``np.logaddexp(0, z)``)."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


class CPPN:
    """Ground and ceiling profiles from a 3-D input vector.

    Parameters
    ----------
    weights
        Layer matrices ``w1`` (4 x 64), ``w2``-``w4`` (64 x 64), ``out`` (64 x 2); default: the
        shipped file.
    """

    def __init__(self, weights: dict[str, np.ndarray] | None = None) -> None:
        if weights is None:
            with np.load(WEIGHTS_FILE) as data:
                weights = {name: data[name] for name in _LAYERS}
        self.weights = {name: np.asarray(weights[name], dtype=np.float64) for name in _LAYERS}
        x = np.arange(N_POINTS) / (N_POINTS - 1)
        # The x column never changes: its contribution to the first layer is computed once.
        self._x_part = x[:, None] * self.weights["w1"][0]

    def __call__(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(ground, ceiling)`` heights at the :data:`N_POINTS` x positions (CPPN units)."""
        w = self.weights
        v = np.asarray(vector, dtype=np.float64).reshape(INPUT_DIM)
        h = np.tanh(self._x_part + v @ w["w1"][1:])
        h = _softplus(h @ w["w2"])
        h = np.tanh(h @ w["w3"])
        h = _softplus(h @ w["w4"])
        out = h @ w["out"]
        return out[:, 0], out[:, 1]
