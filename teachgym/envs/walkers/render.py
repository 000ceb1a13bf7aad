"""pygame drawing of a walker track (imported only when an env renders)."""

from __future__ import annotations

import math

import numpy as np

from teachgym.envs.walkers.env import (
    _LIDAR_DX,
    _LIDAR_DY,
    SCALE,
    TERRAIN_HEIGHT,
    TERRAIN_LENGTH,
    TERRAIN_STEP,
    VIEWPORT_H,
    VIEWPORT_W,
)

SKY, CLOUD, GROUND, GRASS = (230, 230, 255), (255, 255, 255), (102, 153, 76), (76, 230, 76)
OBSTACLE, OBSTACLE_EDGE, LIDAR = (255, 255, 255), (153, 153, 153), (255, 0, 0)


def _clouds(seed: int) -> list[np.ndarray]:
    """Cloud polygons (metres), drawn from their own generator so rendering never shifts np_random."""
    rng = np.random.default_rng(seed)
    clouds = []
    a = 2 * math.pi * np.arange(5) / 5
    for _ in range(TERRAIN_LENGTH // 20):
        x = rng.uniform(0, TERRAIN_LENGTH) * TERRAIN_STEP
        y = VIEWPORT_H / SCALE * 3 / 4
        poly = np.stack([x + 15 * TERRAIN_STEP * np.sin(a), y + 5 * TERRAIN_STEP * np.cos(a)], axis=1)
        clouds.append(poly + rng.uniform(0, 5 * TERRAIN_STEP, size=poly.shape))
    return clouds


class Renderer:
    """One pygame surface (and window in ``"human"`` mode) per env."""

    def __init__(self, mode: str, fps: int) -> None:
        import pygame

        self.pygame, self.mode, self.fps = pygame, mode, fps
        self.surface = pygame.Surface((VIEWPORT_W, VIEWPORT_H))
        self.window = self.clock = None
        if mode == "human":
            pygame.display.init()
            self.window = pygame.display.set_mode((VIEWPORT_W, VIEWPORT_H))
            self.clock = pygame.time.Clock()
        self._cloud_key, self._cloud_polys = None, []

    def draw(self, env) -> np.ndarray | None:
        pg, surf = self.pygame, self.surface
        head = env._head.position
        scroll = head.x - VIEWPORT_W / SCALE / 5

        def screen(points) -> list[tuple[float, float]]:
            pts = np.asarray(points, dtype=float)
            return list(zip(((pts[:, 0] - scroll) * SCALE).tolist(), (VIEWPORT_H - pts[:, 1] * SCALE).tolist()))

        surf.fill(SKY)
        if self._cloud_key != env._cloud_seed:
            self._cloud_key, self._cloud_polys = env._cloud_seed, _clouds(env._cloud_seed)
        for poly in self._cloud_polys:  # clouds scroll at half speed
            pg.draw.polygon(surf, CLOUD, screen(poly + [scroll / 2, 0.0]))
        ground = env._drawing["ground"]
        pg.draw.polygon(surf, GROUND, screen(np.vstack([ground, [[ground[-1, 0], 0.0], [ground[0, 0], 0.0]]])))
        pg.draw.lines(surf, GRASS, False, screen(ground), 2)
        for poly in env._drawing["obstacles"]:
            if poly[:, 0].max() < scroll or poly[:, 0].min() > scroll + VIEWPORT_W / SCALE:
                continue
            pts = screen(poly)
            pg.draw.polygon(surf, OBSTACLE, pts)
            pg.draw.polygon(surf, OBSTACLE_EDGE, pts, 1)
        for i, f in enumerate(env._lidar_fractions):
            end = (head.x + f * _LIDAR_DX[i], head.y + f * _LIDAR_DY[i])
            pg.draw.line(surf, LIDAR, *screen([(head.x, head.y), end]), 1)
        parts = env._blueprint.parts
        for body, part in zip(env._bodies, parts):
            dark = tuple(int(c * 0.6) for c in part.colour)
            for fixture in body.fixtures:
                pts = screen([body.transform * v for v in fixture.shape.vertices])
                pg.draw.polygon(surf, part.colour, pts)
                pg.draw.polygon(surf, dark, pts, 1)
        flag_x, flag_y = 3 * TERRAIN_STEP, TERRAIN_HEIGHT
        pg.draw.line(surf, (0, 0, 0), *screen([(flag_x, flag_y), (flag_x, flag_y + 50 / SCALE)]), 1)
        pg.draw.polygon(surf, (230, 51, 0), screen([(flag_x, flag_y + 50 / SCALE), (flag_x, flag_y + 40 / SCALE),
                                                     (flag_x + 25 / SCALE, flag_y + 45 / SCALE)]))
        return self._show()

    def _show(self) -> np.ndarray | None:
        """The drawn surface: onto the window (``"human"``) or as an RGB array."""
        pg, surf = self.pygame, self.surface
        if self.mode == "human":
            self.window.blit(surf, (0, 0))
            pg.event.pump()
            self.clock.tick(self.fps)
            pg.display.flip()
            return None
        return np.transpose(np.array(pg.surfarray.pixels3d(surf)), axes=(1, 0, 2))

    def close(self) -> None:
        if self.window is not None:
            self.pygame.display.quit()
            self.window = None
