"""pygame drawing of Parkour: ceiling, ground, creepers, water, lidar and body (imported on render)."""

from __future__ import annotations

import numpy as np

from teachgym.envs.walkers.env import SCALE, TERRAIN_STEP, VIEWPORT_H, VIEWPORT_W
from teachgym.envs.walkers.render import CLOUD, GRASS, GROUND, LIDAR, SKY, Renderer, _clouds

ROCK, ROCK_EDGE = (128, 128, 128), (0, 64, 64)
CREEPER, CREEPER_EDGE = (111, 128, 96), (137, 154, 121)
WATER = (119, 172, 229, 140)  # RGBA: the body stays visible under water
HAND, HOLDING = (255, 0, 0), (255, 255, 0)
MARGIN = 0.5  # metres of view kept below the ground and above the ceiling


class ParkourRenderer(Renderer):
    """One pygame surface (and window in ``"human"`` mode) per env; the view follows the head."""

    def __init__(self, mode: str, fps: int) -> None:
        super().__init__(mode, fps)
        self.water = self.pygame.Surface((VIEWPORT_W, VIEWPORT_H), self.pygame.SRCALPHA)

    @staticmethod
    def camera(terrain, head_x: float, head_y: float) -> tuple[float, float, float]:
        """Pixels per metre and the world point at the frame's bottom-left corner.

        TeachMyAgent's camera (the head a fifth of the way in from the left, at its 30 px/m) keeps
        the ceiling, 20 m above a walker's head, and the creepers hanging from it out of view. This
        one keeps the head a fifth of the way in from the left and fits the frame's height to the
        ground and the ceiling in view, zooming out (down to a quarter of the scale) when they do
        not fit; past that it follows the head vertically.
        """
        ppm = float(SCALE)
        for _ in range(2):  # the view widens as it zooms out: fit once more to the wider window
            sx = head_x - VIEWPORT_W / ppm / 5
            view = (terrain.x > sx - TERRAIN_STEP) & (terrain.x < sx + VIEWPORT_W / ppm + TERRAIN_STEP)
            ground, ceiling = (terrain.ground[view], terrain.ceiling[view]) if view.any() else \
                (terrain.ground, terrain.ceiling)
            low = min(float(ground.min()), head_y) - MARGIN
            high = max(float(ceiling.max()), head_y) + MARGIN
            ppm = min(float(SCALE), max(SCALE / 4, VIEWPORT_H / (high - low)))
        height = VIEWPORT_H / ppm
        if high - low <= height:
            sy = low - (height - (high - low)) / 2
        else:
            sy = min(max(head_y - height / 2, low), high - height)
        return ppm, sx, sy

    def draw(self, env) -> np.ndarray | None:
        pg, surf = self.pygame, self.surface
        head = env._head.position
        terrain = env.terrain
        ppm, sx, sy = self.camera(terrain, head.x, head.y)

        def screen(points) -> list[tuple[float, float]]:
            pts = np.asarray(points, dtype=float)
            return list(zip(((pts[:, 0] - sx) * ppm).tolist(), (VIEWPORT_H - (pts[:, 1] - sy) * ppm).tolist()))

        surf.fill(SKY)
        if self._cloud_key != env._cloud_seed:
            self._cloud_key, self._cloud_polys = env._cloud_seed, _clouds(env._cloud_seed)
        for poly in self._cloud_polys:
            pg.draw.polygon(surf, CLOUD, screen(poly + [sx / 2, 0.0]))
        bottom, top = terrain.limits
        width = VIEWPORT_W / ppm
        view = (terrain.x > sx - 2 * TERRAIN_STEP) & (terrain.x < sx + width + 2 * TERRAIN_STEP)
        x, ground, ceiling = terrain.x[view], terrain.ground[view], terrain.ceiling[view]
        if len(x) >= 2:
            rock = np.concatenate([np.stack([x, ceiling], 1), [[x[-1], top], [x[0], top]]])
            pg.draw.polygon(surf, ROCK, screen(rock))
            pg.draw.lines(surf, ROCK_EDGE, False, screen(np.stack([x, ceiling], 1)), 2)
            soil = np.concatenate([np.stack([x, ground], 1), [[x[-1], bottom], [x[0], bottom]]])
            pg.draw.polygon(surf, GROUND, screen(soil))
            pg.draw.lines(surf, GRASS, False, screen(np.stack([x, ground], 1)), 2)
        for x0, x1, y0, y1 in terrain.creepers.tolist():
            if x1 < sx or x0 > sx + width:
                continue
            pts = screen([(x0, y1), (x1, y1), (x1, y0), (x0, y0)])
            pg.draw.polygon(surf, CREEPER, pts)
            pg.draw.polygon(surf, CREEPER_EDGE, pts, 1)
        for i, f in enumerate(env._lidar_fractions):
            end = (head.x + f * env.lidar_dx[i], head.y + f * env.lidar_dy[i])
            pg.draw.line(surf, LIDAR, *screen([(head.x, head.y), end]), 1)
        # The head turns red as the body nears drowning (or suffocating).
        danger = min(1.0, env.wrong_medium_steps() / env.parkour_body.survive_steps)
        for body, part in zip(env._bodies, env._blueprint.parts):
            colour = part.colour
            if body is env._head:
                colour = tuple(int(c + danger * (t - c)) for c, t in zip(colour, (255, 0, 0)))
            dark = tuple(int(c * 0.6) for c in colour)
            for fixture in body.fixtures:
                pts = screen([body.transform * v for v in fixture.shape.vertices])
                pg.draw.polygon(surf, colour, pts)
                pg.draw.polygon(surf, dark, pts, 1)
        for sensor, grip in zip(env._hands, env._grips):
            (cx, cy), = screen([tuple(sensor.worldCenter)])
            pg.draw.circle(surf, HAND if grip is None else HOLDING, (cx, cy), max(2, int(0.05 * ppm) + 1))
        level = terrain.water_y
        if level > sy:
            self.water.fill((0, 0, 0, 0))
            top = VIEWPORT_H - (level - sy) * ppm
            pg.draw.rect(self.water, WATER, pg.Rect(0, max(0, int(top)), VIEWPORT_W, VIEWPORT_H))
            surf.blit(self.water, (0, 0))
        return self._show()
