"""The walker env shared by every track: physics, observation, reward, rendering.

TeachMyAgent's parametric Box2D tracks (Portelas et al. 2019; Romac et al. 2021), rewritten for
gymnasium 1.x. A track subclass only declares its task space and builds its terrain; the body
comes from :mod:`teachgym.envs.walkers.bodies`. Everything lives on the instance: two envs with
different bodies and tasks in one process never touch each other's state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import Box2D
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from teachgym.envs.walkers.bodies import SCALE, Blueprint, BodySpec, get_body
from teachgym.spaces import TaskSpace

FPS = 50
VIEWPORT_W, VIEWPORT_H = 600, 400
TERRAIN_STEP = 14 / SCALE  # metres; stumps and hexagons are sized in these units
TERRAIN_LENGTH = 200  # in steps
TERRAIN_HEIGHT = VIEWPORT_H / SCALE / 4  # ground level (metres)
TERRAIN_END = 10  # the episode ends this many steps before the terrain's end
STARTPAD = 20  # flat steps before the first obstacle (more for wide bodies)
FRICTION = 2.5
N_LIDAR = 10
LIDAR_RANGE = 160 / SCALE
INITIAL_PUSH = 5.0  # |horizontal force| on the trunk at the start, drawn uniformly
SUCCESS_RETURN = 230.0  # TeachMyAgent's "mastered" threshold
DATA_DIR = Path(__file__).parent / "data"
# Lidar rays fan out from straight down (0) to 1.35 rad forward; the offsets never change.
_LIDAR_DX = tuple(math.sin(1.5 * i / N_LIDAR) * LIDAR_RANGE for i in range(N_LIDAR))
_LIDAR_DY = tuple(-math.cos(1.5 * i / N_LIDAR) * LIDAR_RANGE for i in range(N_LIDAR))


class _Contacts(Box2D.b2ContactListener):
    """Counts terrain contacts of the watched parts (feet and critical pieces) of one walker.

    Body fixtures carry their part index as ``userData``; terrain fixtures carry ``None``.
    A count, not a flag: a foot can touch two edges of the terrain chain at once.
    """

    def __init__(self, watched: tuple[bool, ...], critical: tuple[bool, ...]) -> None:
        super().__init__()
        self.watched, self.critical = watched, critical
        self.touching = [0] * len(watched)
        self.fallen = False

    def BeginContact(self, contact):  # noqa: N802 (Box2D's name)
        for k in (contact.fixtureA.userData, contact.fixtureB.userData):
            if k is not None and self.watched[k]:
                self.touching[k] += 1
                if self.critical[k]:
                    self.fallen = True

    def EndContact(self, contact):  # noqa: N802
        for k in (contact.fixtureA.userData, contact.fixtureB.userData):
            if k is not None and self.watched[k]:
                self.touching[k] -= 1


class _Lidar(Box2D.b2RayCastCallback):
    """Keeps the closest terrain hit of one ray (body fixtures, whose userData is set, are skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.fraction = 1.0

    def ReportFixture(self, fixture, point, normal, fraction):  # noqa: N802
        if fixture.userData is not None:
            return -1.0
        self.fraction = fraction
        return fraction


class Box2DTrackEnv(gym.Env):
    """What the walker tracks and Parkour share: TeachMyAgent's reward shaping and rendering.

    Subclasses set ``body`` (with ``angle_penalty``), ``_torque_cost``, ``_prev_shaping`` (None at
    reset), ``_world``, ``_renderer`` and ``render_mode``, and say which renderer draws them.
    """

    def _make_renderer(self) -> Any:
        raise NotImplementedError

    def _shaped_reward(self, x: float, angle: float, effort: float) -> float:
        """``130 * dx / SCALE`` forward progress, minus ``5 * d|head angle|`` where the body says so,
        minus the torque cost (0 on the first step, which has no previous position)."""
        shaping = 130.0 * x / SCALE
        if self.body.angle_penalty:
            shaping -= 5.0 * abs(angle)
        reward = 0.0 if self._prev_shaping is None else shaping - self._prev_shaping
        self._prev_shaping = shaping
        return reward - self._torque_cost * effort

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() needs a render_mode: gym.make(..., render_mode='rgb_array')")
            return None
        if self._world is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        if self._renderer is None:
            self._renderer = self._make_renderer()
        return self._renderer.draw(self)

    def _close_world(self) -> None:
        """Close the renderer and drop the Box2D world (its contact listener first)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._world is not None:
            self._world.contactListener = None
        self._world = None


class WalkerTrackEnv(Box2DTrackEnv):
    """A walker on a procedurally generated track whose generator is set by a task vector.

    Parameters
    ----------
    body
        A name from :data:`~teachgym.envs.walkers.bodies.BODIES` or a
        :class:`~teachgym.envs.walkers.bodies.BodySpec`.
    render_mode
        ``None``, ``"rgb_array"`` (600x400 frames) or ``"human"`` (a pygame window).
    task
        The task of episodes whose ``reset`` passes none (default: :attr:`default_task`).

    Notes
    -----
    ``reset(options={"task": t})`` sets the task of that episode (an array, or a dict by name);
    a reset without one plays the default task (``task=`` of the constructor, else
    :attr:`default_task`), as the contextual control envs do. Observation: head angle, angular velocity, x and y velocity; per
    motor its angle and speed (and the contact of the segment it drives, for feet); then 10 lidar
    fractions. Reward: ``130 * dx / SCALE`` forward progress, minus ``5 * |head angle|``
    shaping, minus the torque cost; -100 and the end of the episode when a critical piece
    touches the terrain. ``info["success"]`` says whether the return so far exceeds 230 (read it
    at the episode's last step); ``info["task"]`` is the task in force.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": FPS}
    task_names: tuple[str, ...] = ()
    task_low: float = 0.0
    task_high: tuple[float, ...] = ()
    default_task: tuple[float, ...] = ()
    test_set_file: str = ""
    score_range = (-150.0, 350.0)

    def __init__(self, body: str | BodySpec = "classic_bipedal", render_mode: str | None = None,
                 task: Any = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, "
                             f"got {render_mode!r}")
        self.render_mode = render_mode
        self.body = get_body(body)
        self._blueprint = Blueprint(self.body)
        self.task_space = spaces.Box(self.task_low, np.array(self.task_high), dtype=np.float64)
        self._tasks = TaskSpace(self.task_space, self.task_names)
        self._default = self._checked_task(self.default_task if task is None else task)
        self._task = self._default

        n_motors = self.body.n_motors
        self.action_space = spaces.Box(-1.0, 1.0, (n_motors,), dtype=np.float32)
        low, high = [], []
        for joint in self._blueprint.motors:
            low += [-np.inf, -np.inf] + [0.0] * (joint.foot >= 0)
            high += [np.inf, np.inf] + [1.0] * (joint.foot >= 0)
        low = [-np.inf] * 4 + low + [0.0] * N_LIDAR
        high = [np.inf] * 4 + high + [1.0] * N_LIDAR
        self.observation_space = spaces.Box(np.array(low, np.float32), np.array(high, np.float32),
                                            dtype=np.float32)

        # Wide bodies get a longer start pad, so that they start clear of the first obstacle.
        self._startpad = max(STARTPAD, self._blueprint.width / TERRAIN_STEP + 5) * TERRAIN_STEP
        self._torque_cost = self.body.torque_penalty * 80.0  # TeachMyAgent's 80: the original torque
        self._lidar = _Lidar()
        self._world: Box2D.b2World | None = None
        self._renderer = None

    # ------------------------------------------------------------------------- tasks
    def _checked_task(self, task: Any) -> np.ndarray:
        vector = self._tasks.vector(task).copy()  # ValueError naming the expected shape and bounds
        vector.flags.writeable = False  # infos get copies; the env's own task never changes
        return vector

    @property
    def task(self) -> np.ndarray:
        """The task in force (read-only float64 vector in ``task_names`` order)."""
        return self._task

    @property
    def obstacles(self) -> list[np.ndarray]:
        """The current episode's obstacles: one polygon (``(k, 2)`` array, metres) each."""
        return list(self._drawing["obstacles"]) if self._world is not None else []

    def test_set(self) -> np.ndarray:
        """The fixed test tasks of this track, shipped with the package (``(100, dim)``)."""
        return np.loadtxt(DATA_DIR / self.test_set_file, delimiter=",", skiprows=1, ndmin=2)

    def _build_terrain(self, terrain: Box2D.b2Body, rng: np.random.Generator) -> dict:
        """Add the task's fixtures to the static body ``terrain``; return what render draws."""
        raise NotImplementedError

    # ------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        has_task = options is not None and options.get("task") is not None
        self._task = self._checked_task(options["task"]) if has_task else self._default
        rng = self.np_random
        if self._world is not None:
            self._world.contactListener = None  # the old world must not call a dead listener
        # A fresh world per episode: Box2D's internal order (proxies, contacts) then depends on
        # nothing but the seed and the task, so trajectories repeat exactly.
        self._world = world = Box2D.b2World()
        self._contacts = _Contacts(self._blueprint.watched, self._blueprint.critical)
        world.contactListener = self._contacts
        self._terrain = world.CreateStaticBody()
        self._drawing = self._build_terrain(self._terrain, rng)
        self._cloud_seed = int(rng.integers(2**31))
        bp = self._blueprint
        self._bodies, joints = bp.build(world, self._startpad / 2, TERRAIN_HEIGHT + bp.stand_height,
                                        float(rng.uniform(-INITIAL_PUSH, INITIAL_PUSH)))
        self._head = self._bodies[self.body.head]
        self._drives = tuple((j, m.speed) for j, m in zip(joints, bp.motors))
        self._readers = tuple((j, m.angle_offset, 1.0 / m.speed, m.foot) for j, m in zip(joints, bp.motors))
        self._prev_shaping = None
        self._return = 0.0
        self._lidar_fractions = [1.0] * N_LIDAR
        obs, _ = self._simulate(np.zeros(self.body.n_motors))
        if self.render_mode == "human":
            self.render()
        return obs, {"task": self._task.copy()}

    def step(self, action):
        if self._world is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        obs, reward = self._simulate(action)
        x = self._x
        terminated = False
        if self._contacts.fallen or x < 0:
            reward, terminated = -100.0, True
        elif x > (TERRAIN_LENGTH - TERRAIN_END) * TERRAIN_STEP:
            terminated = True
        self._return += reward
        if self.render_mode == "human":
            self.render()
        info = {"task": self._task.copy(), "success": self._return > SUCCESS_RETURN}
        return obs, reward, terminated, False, info

    def _simulate(self, action) -> tuple[np.ndarray, float]:
        """Drive the motors, advance one step, read the sensors; return (obs, shaped reward)."""
        act = np.asarray(action, dtype=np.float64)
        if act.shape != (len(self._drives),):
            raise ValueError(f"action must have shape ({len(self._drives)},), got {act.shape}")
        torque = self.body.motors_torque
        effort = 0.0
        # TeachMyAgent's motor model: full speed in the action's sign, torque |action|.
        for (joint, speed), a in zip(self._drives, act.tolist()):
            joint.motorSpeed = speed if a > 0 else (-speed if a < 0 else 0.0)
            m = a if a >= 0 else -a
            if m > 1.0:
                m = 1.0
            joint.maxMotorTorque = torque * m
            effort += m
        if effort != effort:
            raise ValueError(f"action contains NaN: {act}")
        self._world.Step(1.0 / FPS, 6 * 30, 2 * 30)

        head = self._head
        pos = head.position
        self._x = x = pos.x
        y = pos.y
        vel = head.linearVelocity
        angle = head.angle
        obs = [angle, 2.0 * head.angularVelocity / FPS,
               0.3 * vel.x * (VIEWPORT_W / SCALE) / FPS, 0.3 * vel.y * (VIEWPORT_H / SCALE) / FPS]
        touching = self._contacts.touching
        for joint, offset, inv_speed, foot in self._readers:
            obs.append(joint.angle + offset)
            obs.append(joint.speed * inv_speed)
            if foot >= 0:
                obs.append(1.0 if touching[foot] else 0.0)
        lidar, world, fractions = self._lidar, self._world, self._lidar_fractions
        for i in range(N_LIDAR):
            lidar.fraction = 1.0
            world.RayCast(lidar, (x, y), (x + _LIDAR_DX[i], y + _LIDAR_DY[i]))
            fractions[i] = lidar.fraction
        obs += fractions

        return np.array(obs, dtype=np.float32), self._shaped_reward(x, angle, effort)

    # ------------------------------------------------------------------------- render
    def _make_renderer(self) -> Any:
        from teachgym.envs.walkers.render import Renderer

        return Renderer(self.render_mode, self.metadata["render_fps"])

    def close(self) -> None:
        self._close_world()
        self._bodies = self._drives = self._readers = ()
        self._head = self._terrain = None
