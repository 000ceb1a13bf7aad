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
from Box2D.b2 import edgeShape, fixtureDef, polygonShape
from gymnasium import spaces

from teachgym.envs.walkers.bodies import SCALE, Blueprint, BodySpec, get_body
from teachgym.spaces import TaskSpace, check_option_keys

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
# Bounds on a level given to reset (hostile input): Box2D must stay fast and finite.
MAX_LEVEL_POINTS = 10_000  # ground points, and obstacles
MAX_LEVEL_COORD = 1_000.0  # metres, |x| and |y|
MAX_POLYGON_VERTICES = 8  # Box2D's b2_maxPolygonVertices
MIN_POLYGON_AREA = 1.2e-7  # m^2; Box2D's b2_epsilon
LEVEL_KEYS = ("task", "ground", "obstacles", "push")
MAX_TEST_SET_BYTES = 10_000_000
MAX_TEST_SET_ROWS = 100_000
# Lidar rays fan out from straight down (0) to 1.35 rad forward; the offsets never change.
_LIDAR_DX = tuple(math.sin(1.5 * i / N_LIDAR) * LIDAR_RANGE for i in range(N_LIDAR))
_LIDAR_DY = tuple(-math.cos(1.5 * i / N_LIDAR) * LIDAR_RANGE for i in range(N_LIDAR))


def convex_hull(probe: polygonShape, points: np.ndarray) -> np.ndarray | None:
    """The polygon Box2D makes of ``points`` (its convex hull, float32 vertices), or ``None`` when
    that hull has no area above :data:`MIN_POLYGON_AREA` (``probe`` is a scratch shape)."""
    try:
        probe.vertices = points.tolist()  # no hull (collinear points): AssertionError
    except AssertionError:
        return None
    hull = np.array(probe.vertices)
    # Box2D asserts area > b2_epsilon when it computes the centroid; pybox2d does not check.
    area = 0.5 * abs(np.dot(hull[:, 0], np.roll(hull[:, 1], 1)) - np.dot(hull[:, 1], np.roll(hull[:, 0], 1)))
    return hull if area > MIN_POLYGON_AREA else None


def _points(value: Any, name: str, low: int, high: int) -> np.ndarray:
    """``value`` as a finite ``(n, 2)`` float64 array, ``low <= n <= high``, inside the level bounds."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged lists
        array = np.zeros(0, dtype=object)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a list of [x, y] numbers")
    array = array.astype(np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or not low <= len(array) <= high:
        raise ValueError(f"{name} must be a list of {low} to {high} [x, y] points, got shape {array.shape}")
    if not (np.isfinite(array).all() and np.abs(array).max() <= MAX_LEVEL_COORD):
        raise ValueError(f"{name} must hold finite coordinates within +-{MAX_LEVEL_COORD} m")
    return array


class _Contacts(Box2D.b2ContactListener):
    """Counts terrain contacts of the watched parts (feet and critical pieces) of one walker.

    Body fixtures carry their part index as ``userData``; terrain fixtures carry ``None``.
    A count, not a flag: a foot can touch two terrain bodies at once (a stump and the ground edge
    under it, two edges at a vertex). TeachMyAgent keeps a flag set by the last begin or end
    event, so its observation reads 0 while a foot still stands on the second body; here it
    reads 1 (the replay test maps one to the other).
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
    test_set
        What :meth:`test_set` returns when called without an argument: ``None`` for the test
        set shipped with teachgym, or the path of a CSV file of tasks (see :meth:`test_set`).

    Notes
    -----
    ``reset(options={"task": t})`` sets the task of that episode (an array, or a dict by name);
    a reset without one plays the default task (``task=`` of the constructor, else
    :attr:`default_task`), as the contextual control envs do. ``reset(options={"level": L})``
    plays the exact terrain and start push ``L`` (a dict as :meth:`level` returns: the level of
    an earlier episode, for level-replay teachers, or one built by hand) instead of drawing one;
    its ``"task"``, when given, is the task in force (``info["task"]``), else ``options["task"]``
    or the default. Levels from outside are checked (``ValueError`` saying what was expected).
    The terrain is built as TeachMyAgent builds it: one static Box2D body per obstacle, then one
    per ground edge (``edgeShape``, no chain), friction 2.5. Observation: head angle, angular velocity, x and y velocity; per
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
    reset_options = ("task", "level")  # the keys reset reads; any other is refused

    def __init__(self, body: str | BodySpec = "classic_bipedal", render_mode: str | None = None,
                 task: Any = None, test_set: str | Path | None = None) -> None:
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
        self._test_set = self.test_set(test_set)  # read once: a bad file fails here, not mid-run

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
        # One fixtureDef per terrain shape, reshaped for each obstacle / edge (as TeachMyAgent does).
        self._terrain_shapes = (polygonShape(box=(1.0, 1.0)), edgeShape(vertices=[(0.0, 0.0), (1.0, 1.0)]))
        self._fixture_defs = tuple(
            fixtureDef(shape=shape, friction=FRICTION, categoryBits=0x1, maskBits=0xFFFF)
            for shape in self._terrain_shapes
        )
        for shape in self._terrain_shapes:
            shape.thisown = True  # pybox2d gives the shape's memory to the fixtureDef, which never frees it

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

    def test_set(self, source: str | Path | None = None) -> np.ndarray:
        """Fixed test tasks (``(n, dim)`` float64 in ``task_names`` order).

        Parameters
        ----------
        source
            ``None``: the test set given to the constructor, by default teachgym's own, shipped
            with the package (``"teachgym"`` names it explicitly). Otherwise the path of a CSV
            file: a header line with the task names in ``task_names`` order, then one task per
            line, e.g. the user's copy of TeachMyAgent's ``parametric_stumps_test_set.csv``.
            teachgym does not ship TeachMyAgent's files; point this at your copy.

        Raises
        ------
        ValueError
            If the file is missing, too large, has other columns, or holds a task outside the
            task space.
        """
        if source is None and getattr(self, "_test_set", None) is not None:
            return self._test_set.copy()
        if source is None or (isinstance(source, str) and source == "teachgym"):
            return np.loadtxt(DATA_DIR / self.test_set_file, delimiter=",", skiprows=1, ndmin=2)
        return self._read_test_set(source)

    def _read_test_set(self, source: Any) -> np.ndarray:
        """Read and check a user's test-set CSV (header of task names, then one task a line)."""
        if not isinstance(source, (str, Path)):
            raise ValueError(f"test set must be None, 'teachgym' or the path of a CSV file, got {source!r}")
        path = Path(source)
        expected = ",".join(self.task_names)
        if not path.is_file():
            raise ValueError(f"test set {str(path)!r} is not a file; expected None, 'teachgym' or the path "
                             f"of a CSV file whose header is {expected!r} (e.g. your copy of TeachMyAgent's "
                             f"test set)")
        with path.open("rb") as handle:
            raw = handle.read(MAX_TEST_SET_BYTES + 1)
        if len(raw) > MAX_TEST_SET_BYTES:
            raise ValueError(f"test set {str(path)!r} is larger than {MAX_TEST_SET_BYTES} bytes")
        try:
            lines = raw.decode("ascii").splitlines()
        except UnicodeDecodeError:
            raise ValueError(f"test set {str(path)!r} is not an ASCII CSV file") from None
        header = lines[0].strip() if lines else ""
        if header.replace(" ", "") != expected:
            raise ValueError(f"test set {str(path)!r} has header {header[:200]!r}, expected {expected!r}")
        rows = [line for line in lines[1:] if line.strip()]
        if not 1 <= len(rows) <= MAX_TEST_SET_ROWS:
            raise ValueError(f"test set {str(path)!r} has {len(rows)} tasks, expected 1 to {MAX_TEST_SET_ROWS}")
        try:
            tasks = np.array([[float(v) for v in row.split(",")] for row in rows], dtype=np.float64)
        except ValueError:
            raise ValueError(f"test set {str(path)!r} holds a value that is not a number") from None
        if tasks.ndim != 2 or tasks.shape[1] != len(self.task_names):
            raise ValueError(f"test set {str(path)!r} must have {len(self.task_names)} numbers a line "
                             f"({expected})")
        low, high = self.task_space.low, self.task_space.high
        bad = ~(np.isfinite(tasks).all(axis=1) & (tasks >= low).all(axis=1) & (tasks <= high).all(axis=1))
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"test set {str(path)!r}: task {row + 1} {tasks[row].tolist()} is outside the "
                             f"task space [{low.tolist()}, {high.tolist()}]")
        return tasks

    # ------------------------------------------------------------------------- levels
    def _generate_level(self, rng: np.random.Generator) -> dict:
        """Draw the terrain of the task in force: ``{"ground": (m, 2), "obstacles": [(k, 2), ...]}``."""
        raise NotImplementedError

    def level(self) -> dict:
        """The current episode's level, as plain JSON values.

        ``{"task": [...], "ground": [[x, y], ...], "obstacles": [[[x, y], ...], ...],
        "push": p}``: the task in force, the ground points (one edge between consecutive points),
        the obstacle polygons (Box2D keeps each one's convex hull), the horizontal force on the
        trunk at the start. ``reset(options={"level": env.level()})`` replays this episode's
        terrain and start exactly (``json.dumps`` / ``loads`` keep every float).
        """
        if self._world is None:
            raise gym.error.ResetNeeded("call reset() before level()")
        level = self._level
        return {"task": self._task.tolist(), "ground": level["ground"].tolist(),
                "obstacles": [np.asarray(p).tolist() for p in level["obstacles"]], "push": level["push"]}

    def _checked_level(self, level: Any) -> dict:
        """A level from outside, checked: ``ValueError`` saying what was expected if it is not."""
        if not isinstance(level, dict):
            raise ValueError(f"level must be a dict with keys {LEVEL_KEYS}, got {type(level).__name__}")
        unknown = sorted(str(k)[:50] for k in level if k not in LEVEL_KEYS)
        missing = [k for k in ("ground", "obstacles", "push") if k not in level]
        if unknown or missing:
            raise ValueError(f"level has unknown keys {unknown} / lacks {missing}; expected keys {LEVEL_KEYS} "
                             f"('task' optional)")
        ground = _points(level["ground"], "level['ground']", 2, MAX_LEVEL_POINTS)
        obstacles = level["obstacles"]
        if isinstance(obstacles, np.ndarray) and obstacles.ndim == 3:  # polygons of one size
            obstacles = list(obstacles)
        if not isinstance(obstacles, (list, tuple)) or len(obstacles) > MAX_LEVEL_POINTS:
            raise ValueError(f"level['obstacles'] must be a list of at most {MAX_LEVEL_POINTS} polygons")
        polygons = [_points(p, f"level['obstacles'][{i}]", 3, MAX_POLYGON_VERTICES) for i, p in enumerate(obstacles)]
        probe = polygonShape(box=(1.0, 1.0))
        for i, poly in enumerate(polygons):
            if convex_hull(probe, poly) is None:
                raise ValueError(f"level['obstacles'][{i}] is degenerate: its convex hull's area is not above "
                                 f"{MIN_POLYGON_AREA} m^2")
        push = level["push"]
        if isinstance(push, bool) or not isinstance(push, (int, float, np.floating, np.integer)) \
                or not abs(float(push)) <= INITIAL_PUSH:
            raise ValueError(f"level['push'] must be a number in [-{INITIAL_PUSH}, {INITIAL_PUSH}], got {push!r}")
        return {"ground": ground, "obstacles": polygons, "push": float(push)}

    def _create_terrain(self, world: Box2D.b2World, level: dict) -> tuple:
        """TeachMyAgent's construction: one static body per obstacle (in the level's order), then
        one per ground edge; returns the bodies. Each fixtureDef is reshaped in place.

        A dense Stump Tracks has ~530 bodies, so this calls pybox2d's SWIG methods directly: its
        Python wrappers (keyword handling, per-vertex type checks) cost 3x the Box2D work. The
        calls are the ones the wrappers make, so the shapes are the same to the bit (the replay
        test checks it).
        """
        bodies = []
        body_def = Box2D.b2BodyDef()  # static, at the origin: the shapes are in world coordinates
        create_body = world._b2World__CreateBody
        polygon, edge = self._fixture_defs
        shape = self._terrain_shapes[0]
        set_vertex, finish = shape.set_vertex, shape._b2PolygonShape__set_vertices_internal
        for poly in level["obstacles"]:
            vertices = poly.tolist()
            for i, (x, y) in enumerate(vertices):  # what polygonShape.vertices = ... does
                set_vertex(i, x, y)
            shape.vertexCount = len(vertices)
            finish()  # Box2D's b2PolygonShape::Set: convex hull, normals, centroid
            body = create_body(body_def)
            body._b2Body__CreateFixture(polygon)
            bodies.append(body)
        shape = self._terrain_shapes[1]  # two-sided edges, no neighbour vertices (as TeachMyAgent's)
        ground = level["ground"].tolist()
        for a, b in zip(ground, ground[1:]):
            shape.vertex1, shape.vertex2 = a, b
            body = create_body(body_def)
            body._b2Body__CreateFixture(edge)
            bodies.append(body)
        return tuple(bodies)

    # ------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        check_option_keys(options, self.reset_options, type(self).__name__)
        super().reset(seed=seed)
        has_task = options is not None and options.get("task") is not None
        task = self._checked_task(options["task"]) if has_task else self._default
        rng = self.np_random
        given = options.get("level") if options is not None else None
        if given is not None:  # checked before anything changes: a bad level leaves the env as it was
            level = self._checked_level(given)
            if given.get("task") is not None:
                task = self._checked_task(given["task"])
        self._task = task
        if self._world is not None:
            self._world.contactListener = None  # the old world must not call a dead listener
        # A fresh world per episode: Box2D's internal order (proxies, contacts) then depends on
        # nothing but the level, so trajectories repeat exactly.
        self._world = world = Box2D.b2World()
        self._contacts = _Contacts(self._blueprint.watched, self._blueprint.critical)
        world.contactListener = self._contacts
        if given is None:
            level = self._generate_level(rng)
        self._terrain = self._create_terrain(world, level)
        self._drawing = {"ground": level["ground"], "obstacles": level["obstacles"]}
        self._cloud_seed = int(rng.integers(2**31))
        if given is None:
            level["push"] = float(rng.uniform(-INITIAL_PUSH, INITIAL_PUSH))
        self._level = level
        bp = self._blueprint
        self._bodies, joints = bp.build(world, self._startpad / 2, TERRAIN_HEIGHT + bp.stand_height, level["push"])
        self._head = self._bodies[self.body.head]
        self._drives = tuple((j, m.speed) for j, m in zip(joints, bp.motors))
        self._readers = tuple((j, m.angle_offset, m.speed, m.foot) for j, m in zip(joints, bp.motors))
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
        for joint, offset, speed, foot in self._readers:
            obs.append(joint.angle + offset)
            obs.append(joint.speed / speed)
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
