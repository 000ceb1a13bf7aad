"""pygame drawing of Parkour: ceiling, ground, creepers, water, lidar and body (imported on render)."""

from __future__ import annotations

import numpy as np

from teachgym.envs.walkers.env import SCALE, TERRAIN_HEIGHT, TERRAIN_STEP, VIEWPORT_H, VIEWPORT_W
from teachgym.envs.walkers.render import CLOUD, GRASS, GROUND, LIDAR, SKY, Renderer, _clouds

ROCK, ROCK_EDGE = (128, 128, 128), (0, 64, 64)
CREEPER, CREEPER_EDGE = (111, 128, 96), (137, 154, 121)
WATER = (119, 172, 229, 140)  # RGBA: the body stays visible under water
HAND, HOLDING = (255, 0, 0), (255, 255, 0)


class ParkourRenderer(Renderer):
    """One pygame surface (and window in ``"human"`` mode) per env; the view follows the head."""

    def __init__(self, mode: str, fps: int) -> None:
        super().__init__(mode, fps)
        self.water = self.pygame.Surface((VIEWPORT_W, VIEWPORT_H), self.pygame.SRCALPHA)

    def draw(self, env) -> np.ndarray | None:
        pg, surf = self.pygame, self.surface
        head = env._head.position
        # TeachMyAgent's camera: the head a fifth of the way in from the left and from the bottom.
        sx = head.x - VIEWPORT_W / SCALE / 5
        sy = head.y - VIEWPORT_H / SCALE / 5 - TERRAIN_HEIGHT + 1 / SCALE

        def screen(points) -> list[tuple[float, float]]:
            pts = np.asarray(points, dtype=float)
            return list(zip(((pts[:, 0] - sx) * SCALE).tolist(), (VIEWPORT_H - (pts[:, 1] - sy) * SCALE).tolist()))

        surf.fill(SKY)
        if self._cloud_key != env._cloud_seed:
            self._cloud_key, self._cloud_polys = env._cloud_seed, _clouds(env._cloud_seed)
        for poly in self._cloud_polys:
            pg.draw.polygon(surf, CLOUD, screen(poly + [sx / 2, 0.0]))
        terrain = env.terrain
        bottom, top = terrain.limits
        view = (terrain.x > sx - 2 * TERRAIN_STEP) & (terrain.x < sx + VIEWPORT_W / SCALE + 2 * TERRAIN_STEP)
        x, ground, ceiling = terrain.x[view], terrain.ground[view], terrain.ceiling[view]
        if len(x) >= 2:
            rock = np.concatenate([np.stack([x, ceiling], 1), [[x[-1], top], [x[0], top]]])
            pg.draw.polygon(surf, ROCK, screen(rock))
            pg.draw.lines(surf, ROCK_EDGE, False, screen(np.stack([x, ceiling], 1)), 2)
            soil = np.concatenate([np.stack([x, ground], 1), [[x[-1], bottom], [x[0], bottom]]])
            pg.draw.polygon(surf, GROUND, screen(soil))
            pg.draw.lines(surf, GRASS, False, screen(np.stack([x, ground], 1)), 2)
        for x0, x1, y0, y1 in terrain.creepers.tolist():
            if x1 < sx or x0 > sx + VIEWPORT_W / SCALE:
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
            pg.draw.circle(surf, HAND if grip is None else HOLDING, (cx, cy), max(2, int(0.05 * SCALE) + 1))
        level = terrain.water_y
        if level > sy:
            self.water.fill((0, 0, 0, 0))
            top = VIEWPORT_H - (level - sy) * SCALE
            pg.draw.rect(self.water, WATER, pg.Rect(0, max(0, int(top)), VIEWPORT_W, VIEWPORT_H))
            surf.blit(self.water, (0, 0))
        return self._show()
