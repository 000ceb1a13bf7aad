"""Stump Tracks and Hexagon Tracks: the terrains of teachDeepRL (Portelas et al. 2019).

Stump Tracks: flat ground with a stump every ``obstacle_spacing`` metres, each stump one terrain
step wide and ``N(stump_height, 0.1)`` steps tall. Hexagon Tracks: a hexagon every 9 metres whose
six vertices are pushed by 12 parameters (an (x, y) offset per vertex, in terrain steps).
The ground and the stumps are one Box2D chain on one static body, so a reset creates one fixture.
"""

from __future__ import annotations

import ctypes
import math

import Box2D
import numpy as np
from Box2D.b2 import chainShape, fixtureDef, polygonShape
from Box2D.Box2D import _b2Vec2Array

from teachgym.envs.walkers.env import (
    FRICTION,
    TERRAIN_HEIGHT,
    TERRAIN_LENGTH,
    TERRAIN_STEP,
    WalkerTrackEnv,
)

_TERRAIN_END_X = TERRAIN_LENGTH * TERRAIN_STEP
_MIN_STUMP = 0.05  # stump heights are clipped below at 0.05 steps, as in TeachMyAgent
_MIN_SPACING = 0.01  # TeachMyAgent's floor: the chain's vertices must not coincide


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


def _add_ground(terrain: Box2D.b2Body, vertices: np.ndarray) -> None:
    """Add the chain through ``vertices`` to ``terrain``."""
    shape = _chain(vertices)
    terrain.CreateFixture(fixtureDef(shape=shape, friction=FRICTION, categoryBits=0x1, maskBits=0xFFFF))
    # pybox2d hands a shape's memory to the fixtureDef, which never frees it; the body keeps its
    # own copy, so Python takes the shape back and frees it (else every reset leaks the chain).
    shape.thisown = True


class StumpTracksEnv(WalkerTrackEnv):
    """Stump Tracks: task ``(stump_height, obstacle_spacing)`` in [0, 3] x [0, 6].

    Each stump's height (in terrain steps of 14/30 m) is drawn from ``N(stump_height, 0.1)``
    with the env's ``np_random``; stumps start after the flat start pad and follow each other
    every ``TERRAIN_STEP + obstacle_spacing`` metres (spacing floored at 0.01). Default task:
    ``(0, 6)``, tiny sparse stumps (TeachMyAgent's initial distribution of easy tasks).
    The test set is the 10 x 10 grid over the task space, ``np.linspace(0, 3, 10)`` x
    ``np.linspace(0, 6, 10)``, height-major.

    See :class:`~teachgym.envs.walkers.env.WalkerTrackEnv` for the parameters.
    """

    task_names = ("stump_height", "obstacle_spacing")
    task_high = (3.0, 6.0)
    default_task = (0.0, 6.0)
    test_set_file = "stump_tracks_test_set.csv"

    def _build_terrain(self, terrain: Box2D.b2Body, rng: np.random.Generator) -> dict:
        mean, spacing = self._task.tolist()
        period = TERRAIN_STEP + max(_MIN_SPACING, spacing)
        n = max(0, math.ceil((_TERRAIN_END_X - self._startpad) / period))
        left = self._startpad + period * np.arange(n)
        heights = np.maximum(_MIN_STUMP, rng.normal(mean, 0.1, n)) * TERRAIN_STEP
        # Surface outline: up the stump's back, across its top, down its front, on to the next.
        outline = np.empty((4 * n + 2, 2))
        outline[0] = (0.0, TERRAIN_HEIGHT)
        outline[1:-1:4, 0] = outline[2:-1:4, 0] = left
        outline[3:-1:4, 0] = outline[4:-1:4, 0] = left + TERRAIN_STEP
        outline[1:-1:4, 1] = outline[4:-1:4, 1] = TERRAIN_HEIGHT
        outline[2:-1:4, 1] = outline[3:-1:4, 1] = TERRAIN_HEIGHT + heights
        end = left[-1] + TERRAIN_STEP + 1.0 if n else 0.0
        outline[-1] = (max(_TERRAIN_END_X, end), TERRAIN_HEIGHT)
        _add_ground(terrain, outline)
        return {"ground": outline, "obstacles": np.stack(
            [outline[1:-1:4], outline[2:-1:4], outline[3:-1:4], outline[4:-1:4]], axis=1)}


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

    def _build_terrain(self, terrain: Box2D.b2Body, rng: np.random.Generator) -> dict:
        period = _HEXAGON_ADVANCE + _HEXAGON_SPACING
        n = max(0, math.ceil((_TERRAIN_END_X - self._startpad) / period))
        base = self._startpad + period * np.arange(n)
        offsets = rng.normal(self._task.reshape(6, 2), 0.1, size=(n, 6, 2))
        offsets[:, [0, 5], 1] = 0.0  # the end vertices stay on the ground
        polygons = (_HEXAGON + offsets) * TERRAIN_STEP
        polygons[:, :, 0] += base[:, None]
        polygons[:, :, 1] += TERRAIN_HEIGHT
        outline = np.array([(0.0, TERRAIN_HEIGHT), (_TERRAIN_END_X + 1.0, TERRAIN_HEIGHT)])
        _add_ground(terrain, outline)
        # One fixtureDef, its polygon reshaped in place for each hexagon (no shape per hexagon).
        shape = polygonShape(box=(1.0, 1.0))
        hexagon = fixtureDef(shape=shape, friction=FRICTION, categoryBits=0x1, maskBits=0xFFFF)
        kept = []
        for poly in polygons:
            try:
                hexagon.shape.vertices = poly.tolist()  # Box2D keeps the convex hull
            except AssertionError:  # degenerate hull (collinear points): no obstacle there
                continue
            terrain.CreateFixture(hexagon)
            kept.append(np.array(hexagon.shape.vertices))
        shape.thisown = True  # see _add_ground
        return {"ground": outline, "obstacles": kept}
