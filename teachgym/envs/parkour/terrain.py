"""Parkour's terrain: CPPN ground and ceiling, creepers hanging from the ceiling, a water level.

Follows TeachMyAgent's ``ParametricContinuousParkour._generate_terrain``: the CPPN's two outputs,
divided by the CPPN scale (``terrain_cppn_scale``, 10 in TeachMyAgent's benchmark), are shifted so
that both start level with the flat start pad (ground at ``TERRAIN_HEIGHT``, ceiling
``200 / scale`` m above it); the ceiling never goes below the ground. A creeper
(``max(0.2, creepers_width)`` m wide, ``max(0.2, N(height, 0.1))`` m long) hangs from the ceiling
every ``creepers_spacing`` metres; the water fills everything below ``water_y``, a fraction
``water_level`` of the way from the bottom of the world (``-1000 / scale``, 100 m below the start
pad at scale 10) to the highest point of the ceiling. That is TeachMyAgent's unit, kept so that its
benchmark box and test sets mean what they mean there; in it the water only reaches the ground from
``water_level`` ~0.8. :func:`water_level_for` converts a fraction of the walkable height (0: water
at the lowest ground point, 1: at the highest ceiling point) into it, and
:attr:`Terrain.flooded_fraction` reads it back.
Ground and ceiling are one Box2D chain each, creepers sensor boxes, all on one static body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import Box2D
import numpy as np
from Box2D.b2 import fixtureDef, polygonShape

from teachgym.envs.parkour.cppn import CPPN, N_POINTS
from teachgym.envs.walkers.env import FRICTION, TERRAIN_HEIGHT, TERRAIN_STEP
from teachgym.envs.walkers.tracks import _chain

CPPN_SCALE = 10.0  # TeachMyAgent's terrain_cppn_scale (fixed in its benchmark, the 6-D task)
CEILING_OFFSET = 200 / CPPN_SCALE  # metres between ground and ceiling at the start
GROUND_LIMIT = -1000 / CPPN_SCALE  # bottom of the world (and of the water)
CEILING_LIMIT = 1000 / CPPN_SCALE
CREEPER_WIDTH = 0.25  # TeachMyAgent's creepers_width (fixed in its benchmark, the 6-D task)
MIN_CREEPER = 0.2  # shortest and narrowest creeper (metres)
MIN_SPACING = 0.01
MIN_WATER = 0.01
# Collision categories: the ground, the ceiling (climbers may touch it) and creepers (only hands
# grasp them; body parts pass through, which also spares Box2D their contacts).
GROUND, CEILING, CREEPER = 0x1, 0x2, 0x10


@dataclass(frozen=True)
class Terrain:
    """One episode's terrain, in metres.

    Attributes
    ----------
    x, ground, ceiling
        Heights of the ground and ceiling chains at the terrain points ``x``.
    creepers
        ``(k, 4)`` boxes ``x0, x1, y_bottom, y_top``, sorted by ``x0``.
    water_y
        The water surface; everything below is water.
    creeper_width
        Width of every creeper box.
    ceiling_offset
        Height of the ceiling above the start pad.
    limits
        The bottom and top of the world (``-+1000 / scale``).
    """

    x: np.ndarray
    ground: np.ndarray
    ceiling: np.ndarray
    creepers: np.ndarray
    water_y: float
    creeper_width: float = CREEPER_WIDTH
    ceiling_offset: float = CEILING_OFFSET
    limits: tuple[float, float] = (GROUND_LIMIT, CEILING_LIMIT)

    @property
    def flooded_fraction(self) -> float:
        """The fraction of the walkable height under water: 0 when the surface is at or below the
        lowest ground point, 1 at the highest ceiling point (see :func:`water_level_for`)."""
        low, high = float(self.ground.min()), float(self.ceiling.max())
        return float(np.clip((self.water_y - low) / (high - low), 0.0, 1.0))

    def ceiling_at(self, x: float) -> float:
        return float(np.interp(x, self.x, self.ceiling))

    def creeper_near(self, x: float, y: float, reach: float) -> bool:
        """Whether a disc of radius ``reach`` at (x, y) overlaps a creeper's box."""
        boxes = self.creepers
        i = int(np.searchsorted(boxes[:, 0], x + reach)) - 1  # last creeper starting left of the disc
        while i >= 0 and boxes[i, 1] > x - reach - self.creeper_width:
            x0, x1, y0, y1 = boxes[i]
            if x0 - reach < x < x1 + reach and y0 - reach < y < y1 + reach:
                return True
            i -= 1
        return False


def profiles(cppn: CPPN, vector: np.ndarray, startpad: int,
             scale: float = CPPN_SCALE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Terrain points ``x`` and the ground and ceiling heights there (start pad included)."""
    ground, ceiling = cppn(vector)
    offset = 200 / scale
    ground = ground / scale
    ceiling = ceiling / scale
    ground += TERRAIN_HEIGHT - ground[0]
    ceiling += TERRAIN_HEIGHT + offset - ceiling[0]
    # Inside the world: never binding with TeachMyAgent's CPPN (its heights stay within tens of
    # metres), but weights read from a user's file may be anything.
    ground = np.clip(ground, -1000 / scale, 1000 / scale)
    ceiling = np.clip(np.maximum(ceiling, ground), -1000 / scale, 1000 / scale)  # ceiling_clip_offset = 0
    x = np.arange(startpad + N_POINTS) * TERRAIN_STEP
    ground = np.concatenate([np.full(startpad, TERRAIN_HEIGHT), ground])
    ceiling = np.concatenate([np.full(startpad, TERRAIN_HEIGHT + offset), ceiling])
    return x, ground, ceiling


def water_level_for(fraction: float, ground: np.ndarray, ceiling: np.ndarray, scale: float = CPPN_SCALE) -> float:
    """TeachMyAgent's ``water_level`` that floods ``fraction`` of the walkable height.

    Parameters
    ----------
    fraction
        In [0, 1]: 0 puts the surface at the lowest point of ``ground``, 1 at the highest point of
        ``ceiling`` (TeachMyAgent's ``water_level`` 1).
    ground, ceiling
        The terrain's profiles (:func:`profiles`), in metres.
    scale
        The CPPN scale of the task (``terrain_cppn_scale``), which sets the world's bottom.

    Returns
    -------
    float
        The task's ``water_level`` in TeachMyAgent's unit, the fraction of the height from the
        world's bottom (``-1000 / scale``) to the highest ceiling point.
    """
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction of the walkable height must be in [0, 1], got {fraction!r}")
    bottom, low, high = -1000 / scale, float(np.min(ground)), float(np.max(ceiling))
    return (low + fraction * (high - low) - bottom) / (high - bottom)


def creeper_boxes(x: np.ndarray, ceiling: np.ndarray, height: float, spacing: float,
                  rng: np.random.Generator, width: float = CREEPER_WIDTH) -> np.ndarray:
    """Creeper boxes ``(k, 4)``: one at the first point, then every ``1 + ceil(spacing / step)``
    points (TeachMyAgent counts the distance one terrain step at a time). A creeper hangs from
    the higher of the ceiling at its left edge and ``max(1, floor(width / step))`` points on."""
    width = max(MIN_CREEPER, width)
    period = 1 + max(1, math.ceil(max(MIN_SPACING, spacing) / TERRAIN_STEP - 1e-9))
    index = np.arange(0, len(x) - 1, period)
    heights = np.maximum(MIN_CREEPER, rng.normal(height, 0.1, len(index)))
    span = max(1, math.floor(width / TERRAIN_STEP))
    top = np.maximum(ceiling[index], ceiling[np.minimum(index + span, len(x) - 1)])
    return np.stack([x[index], x[index] + width, top - heights, top], axis=1)


def build_terrain(body: Box2D.b2Body, cppn: CPPN, task: np.ndarray, startpad: int,
                  rng: np.random.Generator) -> Terrain:
    """Add the ground, ceiling and creepers of ``task`` to the static ``body``.

    ``task`` is TeachMyAgent's 8-D task ``(cppn_0, cppn_1, cppn_2, water_level, creepers_width,
    creepers_height, creepers_spacing, terrain_cppn_scale)``.
    """
    scale = float(task[7])
    x, ground, ceiling = profiles(cppn, task[:3], startpad, scale)
    creepers = creeper_boxes(x, ceiling, float(task[5]), float(task[6]), rng, float(task[4]))
    for heights, category in ((ground, GROUND), (ceiling, CEILING)):
        shape = _chain(np.stack([x, heights], axis=1))
        body.CreateFixture(fixtureDef(shape=shape, friction=FRICTION, categoryBits=category, maskBits=0xFFFF))
        shape.thisown = True  # pybox2d never frees a fixtureDef's shape; the body keeps a copy
    shape = polygonShape(box=(1.0, 1.0))
    creeper = fixtureDef(shape=shape, density=5.0, isSensor=True, categoryBits=CREEPER, maskBits=0xFFFF)
    for x0, x1, y0, y1 in creepers.tolist():
        creeper.shape.vertices = [(x0, y1), (x1, y1), (x1, y0), (x0, y0)]
        body.CreateFixture(creeper)
    shape.thisown = True
    bottom = -1000 / scale
    water_y = bottom + max(MIN_WATER, float(task[3])) * (float(ceiling.max()) - bottom)
    return Terrain(x, ground, ceiling, creepers, water_y, max(MIN_CREEPER, float(task[4])), 200 / scale,
                   (bottom, -bottom))
