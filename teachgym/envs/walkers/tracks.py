"""Stump Tracks and Hexagon Tracks: the terrains of teachDeepRL (Portelas et al. 2019).

Stump Tracks: flat ground with a stump every ``obstacle_spacing`` metres, each stump one terrain
step wide and ``N(stump_height, 0.1)`` steps tall. Hexagon Tracks: a hexagon every 9 metres whose
six vertices are pushed by 12 parameters (an (x, y) offset per vertex, in terrain steps).
Each track draws a level (ground points, obstacle polygons); the env builds it as TeachMyAgent
does, one static body per obstacle and per ground edge.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np
from Box2D.b2 import chainShape, polygonShape
from Box2D.Box2D import _b2Vec2Array

from teachgym.envs.walkers.env import (
    TERRAIN_HEIGHT,
    TERRAIN_LENGTH,
    TERRAIN_STEP,
    WalkerTrackEnv,
    convex_hull,
)

_TERRAIN_END_X = TERRAIN_LENGTH * TERRAIN_STEP
_MIN_STUMP = 0.05  # stump heights are clipped below at 0.05 steps, as in TeachMyAgent
_MIN_SPACING = 0.01  # TeachMyAgent's floor on obstacle_spacing


def _chain(vertices: np.ndarray) -> chainShape:
    """A Box2D chain through ``vertices`` (``(n, 2)``, metres).

    pybox2d converts vertices one Python object at a time (about 2.5 us each: 2 ms for the 760
    vertices of the densest Stump Tracks); copying the float32 pairs straight into a b2Vec2
    array takes microseconds. The result is checked (count, last vertex) and pybox2d's own
    path taken instead should an array ever be laid out differently.
    """
    n = len(vertices)
    flat = np.ascontiguousarray(vertices, dtype=np.float32)
    try:
        array = _b2Vec2Array(n)
        ctypes.memmove(int(array.this), flat.ctypes.data, min(flat.nbytes, 8 * n))
        shape = chainShape()
        shape._b2ChainShape__create(array, n, False)  # copies the vertices
        last = shape._b2ChainShape__get_vertex(n - 1)
        if shape.vertexCount == n and (last.x, last.y) == tuple(flat[-1].tolist()):
            return shape
    except (AttributeError, TypeError, ValueError):
        pass
    return chainShape(vertices_chain=flat.tolist())


def stump_passes(spacing: float, startpad_x: float) -> np.ndarray:
    """The x where each pass of TeachMyAgent's Stump Tracks generator starts (metres).

    Passes alternate stump (even index: a stump's left side) and grass (odd: its right side),
    from ``startpad_x`` while ``x < TERRAIN_LENGTH * TERRAIN_STEP``; x grows by ``TERRAIN_STEP``
    over a stump and by ``max(0.01, spacing)`` over grass, summed one pass after the other in
    float64 as the original does, so the positions are the original's to the last bit.
    """
    spacing = max(_MIN_SPACING, spacing)
    n = 2 * math.ceil((_TERRAIN_END_X - startpad_x) / (TERRAIN_STEP + spacing)) + 2
    steps = np.empty(n)
    steps[0] = startpad_x
    steps[1::2], steps[2::2] = TERRAIN_STEP, spacing
    xs = np.cumsum(steps)  # sequential additions, like the original's x += ...
    return xs[xs < _TERRAIN_END_X]


def stump_level(passes: np.ndarray, draws: np.ndarray) -> dict:
    """Ground points and stump polygons of TeachMyAgent's Stump Tracks.

    Parameters
    ----------
    passes
        :func:`stump_passes`.
    draws
        One ``N(stump_height, 0.1)`` draw per stump (terrain steps), stumps in x order.

    Returns
    -------
    dict
        ``ground``: ``(m, 2)``, the points (0, h), (startpad, h), then each pass's x, all at the
        ground height h (so edges run under the stumps, and a zero-length edge sits at the start
        pad's end, as in the original); ``obstacles``: ``(n, 4, 2)``, each stump's corners in the
        original's order (x, h), (x + step, h), (x + step, top), (x, top).
    """
    left = passes[0::2]
    if len(draws) != len(left):
        raise ValueError(f"expected {len(left)} stump heights, got {len(draws)}")
    right = left + TERRAIN_STEP
    top = TERRAIN_HEIGHT + np.maximum(_MIN_STUMP, draws) * TERRAIN_STEP
    obstacles = np.empty((len(left), 4, 2))
    obstacles[:, [0, 3], 0], obstacles[:, [1, 2], 0] = left[:, None], right[:, None]
    obstacles[:, [0, 1], 1], obstacles[:, [2, 3], 1] = TERRAIN_HEIGHT, top[:, None]
    ground = np.full((len(passes) + 2, 2), TERRAIN_HEIGHT)
    ground[0, 0], ground[1, 0], ground[2:, 0] = 0.0, passes[0] if len(passes) else 0.0, passes
    return {"ground": ground, "obstacles": obstacles}


class StumpTracksEnv(WalkerTrackEnv):
    """Stump Tracks: task ``(stump_height, obstacle_spacing)`` in [0, 3] x [0, 6].

    Each stump's height (in terrain steps of 14/30 m) is drawn from ``N(stump_height, 0.1)``
    with the env's ``np_random`` (floored at 0.05); stumps start after the flat start pad and
    follow each other every ``TERRAIN_STEP + obstacle_spacing`` metres (spacing floored at
    0.01), at the positions TeachMyAgent computes (:func:`stump_level`). Default task:
    ``(0, 6)``, tiny sparse stumps (TeachMyAgent's initial distribution of easy tasks).
    The test set is the 10 x 10 grid over the task space, ``np.linspace(0, 3, 10)`` x
    ``np.linspace(0, 6, 10)``, height-major.

    See :class:`~teachgym.envs.walkers.env.WalkerTrackEnv` for the parameters.
    """

    task_names = ("stump_height", "obstacle_spacing")
    task_high = (3.0, 6.0)
    default_task = (0.0, 6.0)
    test_set_file = "stump_tracks_test_set.csv"

    def _generate_level(self, rng: np.random.Generator) -> dict:
        mean, spacing = self._task.tolist()
        passes = stump_passes(spacing, self._startpad)
        return stump_level(passes, rng.normal(mean, 0.1, (len(passes) + 1) // 2))


# TeachMyAgent's default hexagon, in terrain steps around its base centre.
_HEXAGON = np.array([(-0.5, 0.0), (-0.5, 0.25), (-0.25, 0.5), (0.25, 0.5), (0.5, 0.25), (0.5, 0.0)])
_HEXAGON_SPACING = 8.0  # metres of ground between hexagons (teachDeepRL's default spacing)
_HEXAGON_ADVANCE = 1.0  # metres the generator moves on after placing a hexagon


class HexagonTracksEnv(WalkerTrackEnv):
    """Hexagon Tracks: 12 parameters in [0, 4] push the vertices of hexagonal obstacles.

    Vertex ``i`` of the default hexagon moves by ``N((dx_i, dy_i), 0.1)`` terrain steps, drawn
    per hexagon with ``np_random``; the first and last vertices stay on the ground (their ``dy``
    has no effect, as in teachDeepRL). Box2D keeps the convex hull of the six points. One
    hexagon every 9 metres after the start pad. Default task: all zeros (the plain hexagon).
    The test set is 100 tasks drawn uniformly: ``np.random.default_rng(4222).uniform(0, 4, (100, 12))``.

    See :class:`~teachgym.envs.walkers.env.WalkerTrackEnv` for the parameters.
    """

    task_names = tuple(f"{axis}{i}" for i in range(6) for axis in ("dx", "dy"))
    task_high = (4.0,) * 12
    default_task = (0.0,) * 12
    test_set_file = "hexagon_tracks_test_set.csv"

    def _generate_level(self, rng: np.random.Generator) -> dict:
        period = _HEXAGON_ADVANCE + _HEXAGON_SPACING
        n = max(0, math.ceil((_TERRAIN_END_X - self._startpad) / period))
        base = self._startpad + period * np.arange(n)
        offsets = rng.normal(self._task.reshape(6, 2), 0.1, size=(n, 6, 2))
        offsets[:, [0, 5], 1] = 0.0  # the end vertices stay on the ground
        polygons = (_HEXAGON + offsets) * TERRAIN_STEP
        polygons[:, :, 0] += base[:, None]
        polygons[:, :, 1] += TERRAIN_HEIGHT
        ground = np.array([(0.0, TERRAIN_HEIGHT), (_TERRAIN_END_X + 1.0, TERRAIN_HEIGHT)])
        # Box2D keeps each hexagon's convex hull; the level holds that hull, and drops a hexagon
        # whose hull has no area (a level the env makes is one it accepts back).
        probe = polygonShape(box=(1.0, 1.0))
        hulls = (convex_hull(probe, poly) for poly in polygons)
        return {"ground": ground, "obstacles": [hull for hull in hulls if hull is not None]}
