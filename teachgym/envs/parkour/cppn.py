"""The CPPN that draws Parkour's ground and ceiling (TeachMyAgent's ``TanHSoftplusMixCPPN``).

A CPPN (compositional pattern-producing network) maps ``(x, v1, v2, v3)`` to two heights, the
ground and the ceiling at ``x``; the 3-D input vector ``v`` is part of the task, so a teacher
moves through a continuous family of terrains. Architecture as in TeachMyAgent (Romac et al.
2021): four hidden layers of 64 units, alternating tanh / softplus, no biases, linear output.
Weights are fixed: :data:`WEIGHTS_FILE` ships ours, drawn once by :func:`make_weights`
(TensorFlow's ``truncated_normal(stddev=2)``: N(0, 2) redrawn outside two standard deviations).
TeachMyAgent's own weights are not shipped; :func:`load_teachmyagent_weights` reads them from the
user's copy of its checkpoint, and with them the terrains are TeachMyAgent's (to float32 rounding).
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
_SHAPES = ((INPUT_DIM + 1, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, 2))
#: The data file in TeachMyAgent's checkpoint folder
#: ``environments/envs/PCGAgents/CPPN/weights/same_ground_ceiling_cppn/``.
TEACHMYAGENT_DATA = ".data-00000-of-00001"
TEACHMYAGENT_BYTES = 4 * sum(a * b for a, b in _SHAPES)  # 50,688
MAX_WEIGHT = 1000.0  # TeachMyAgent's weights are within 4 (a truncated N(0, 2)); far larger is not a CPPN


def make_weights(seed: int = WEIGHTS_SEED) -> dict[str, np.ndarray]:
    """Draw CPPN weights: every matrix from a truncated N(0, 2) (|w| <= 4), float32.

    The shipped file holds ``make_weights(WEIGHTS_SEED)``; the file, not this function, is what
    the env reads, so a change in numpy's random streams cannot change the terrains.
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in zip(_LAYERS, _SHAPES):
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


def load_teachmyagent_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Read TeachMyAgent's trained CPPN (``TanHSoftplusMixCPPN``) from its TensorFlow checkpoint.

    Parameters
    ----------
    path
        The checkpoint's data file (``.data-00000-of-00001``, 50,688 bytes) or the folder holding
        it (TeachMyAgent's ``PCGAgents/CPPN/weights/same_ground_ceiling_cppn/``).

    Returns
    -------
    dict
        ``w1`` (4 x 64), ``w2``-``w4`` (64 x 64), ``out`` (64 x 2), float32.

    Raises
    ------
    ValueError
        If the file is missing, is not exactly 50,688 bytes, or holds non-finite or absurd
        (|w| > 1000) values.

    Notes
    -----
    The data file is the five variables of the graph, without biases, as raw little-endian
    float32 in the order the checkpoint's ``.index`` gives (``Variable`` ... ``Variable_4`` at
    byte offsets 0, 1024, 17408, 33792, 50176): the four hidden layers, then the output layer.
    The size alone is checked, never trusted to size a read.
    """
    try:
        file = Path(path)
    except TypeError:
        raise ValueError(f"cppn_weights must be a path to TeachMyAgent's CPPN checkpoint, got {path!r}") from None
    if file.is_dir():
        file = file / TEACHMYAGENT_DATA
    if not file.is_file():
        raise ValueError(f"CPPN weights file {str(file)!r} not found: expected TeachMyAgent's checkpoint data "
                         f"file ({TEACHMYAGENT_DATA}, {TEACHMYAGENT_BYTES} bytes) or its folder")
    size = file.stat().st_size
    if size != TEACHMYAGENT_BYTES:
        raise ValueError(f"CPPN weights file {str(file)!r} has {size} bytes, expected {TEACHMYAGENT_BYTES} "
                         "(TeachMyAgent's TanHSoftplusMixCPPN: 4x64, 3 x 64x64 and 64x2 float32 matrices)")
    with open(file, "rb") as handle:
        raw = np.frombuffer(handle.read(TEACHMYAGENT_BYTES + 1), dtype="<f4")
    if raw.size * 4 != TEACHMYAGENT_BYTES:  # the file changed between stat and read
        raise ValueError(f"CPPN weights file {str(file)!r} changed while being read")
    if not np.all(np.isfinite(raw)) or np.abs(raw).max() > MAX_WEIGHT:
        raise ValueError(f"CPPN weights file {str(file)!r} holds non-finite values or values beyond "
                         f"+-{MAX_WEIGHT:g}: not TeachMyAgent's CPPN")
    weights, start = {}, 0
    for name, (rows, cols) in zip(_LAYERS, _SHAPES):
        weights[name] = raw[start:start + rows * cols].reshape(rows, cols).astype(np.float32)
        start += rows * cols
    return weights


def _softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + exp(z))`` without overflow (4x faster than ``np.logaddexp(0, z)``)."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


class CPPN:
    """Ground and ceiling profiles from a 3-D input vector.

    Parameters
    ----------
    weights
        Layer matrices ``w1`` (4 x 64), ``w2``-``w4`` (64 x 64), ``out`` (64 x 2); default: the
        shipped file. TeachMyAgent's: :func:`load_teachmyagent_weights`.
    """

    def __init__(self, weights: dict[str, np.ndarray] | None = None) -> None:
        if weights is None:
            with np.load(WEIGHTS_FILE) as data:
                weights = {name: data[name] for name in _LAYERS}
        self.weights = {name: np.asarray(weights[name], dtype=np.float64) for name in _LAYERS}
        for name, shape in zip(_LAYERS, _SHAPES):
            if self.weights[name].shape != shape:
                raise ValueError(f"CPPN weight {name} must have shape {shape}, got {self.weights[name].shape}")
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
