"""``teachgym/Parkour-v0``: TeachMyAgent's Parametric Continuous Parkour for gymnasium 1.x.

Romac et al. 2021. A CPPN draws the ground and the ceiling from a 3-D input vector; water fills
the track up to a level and creepers hang from the ceiling. Walkers walk (and drown after 600
steps with the head under water), the climbing chimpanzee swings from creeper to creeper (a hand
grasps through a joint created when it touches a creeper or the ceiling while its grasp action
is positive), the fish swims (and suffocates after 600 steps out of the water). The body's motors
and sensors are built by the walkers' code; see :mod:`teachgym.envs.parkour.bodies`.

Two task vectors: the 6-D one of TeachMyAgent's benchmark (the default), and TeachMyAgent's 8-D
one (``task_dims=8``), which adds the creepers' width and the CPPN's scale (0.25 m and 10 in the
6-D task, as its benchmark fixes them). Two families of test sets: ours (``"walking"``,
``"climbing"``, ``"swimming"``, the default) and TeachMyAgent's v1 sets of the paper
(a path to your copy of its ``walking_test_set_v1.csv``, ...), which need the 8-D task; see :meth:`ParkourEnv.test_set`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import Box2D
import gymnasium as gym
import numpy as np
from Box2D.b2 import circleShape, fixtureDef, revoluteJointDef, weldJointDef
from gymnasium import spaces

from teachgym.envs.parkour.bodies import (
    HAND_RADIUS,
    LIDAR_FANS,
    ParkourBlueprint,
    ParkourBody,
    get_parkour_body,
)
from teachgym.envs.parkour.cppn import CPPN, N_POINTS, load_teachmyagent_weights
from teachgym.envs.parkour.terrain import (
    CEILING,
    CPPN_SCALE,
    CREEPER_WIDTH,
    Terrain,
    build_terrain,
    profiles,
    water_level_for,
)
from teachgym.envs.parkour.water import Water
from teachgym.envs.walkers.bodies import BODY_CATEGORY, SCALE
from teachgym.envs.walkers.env import (
    FPS,
    INITIAL_PUSH,
    LIDAR_RANGE,
    N_LIDAR,
    STARTPAD,
    SUCCESS_RETURN,
    TERRAIN_HEIGHT,
    TERRAIN_STEP,
    VIEWPORT_H,
    VIEWPORT_W,
    Box2DTrackEnv,
    _Contacts,
    _Lidar,
)
from teachgym.spaces import TaskSpace, check_option_keys

TERRAIN_END = 5  # the episode ends this many terrain steps before the end (TeachMyAgent's Parkour)
HANG_STEPS = 5  # steps a climber holds the ceiling before the episode starts
DATA_DIR = Path(__file__).parent / "data"
TEST_SETS = ("walking", "climbing", "swimming")
_KIND_TEST_SET = {"walker": "walking", "climber": "climbing", "swimmer": "swimming", "amphibian": "walking"}
#: TeachMyAgent's 8-D task, in its order.
TASK_NAMES_8 = ("cppn_input_0", "cppn_input_1", "cppn_input_2", "water_level", "creepers_width",
                "creepers_height", "creepers_spacing", "terrain_cppn_scale")
_WIDTH, _SCALE = 4, 7  # the two dimensions the 6-D task fixes
#: Every task reset accepts (8-D; the 6-D task drops width and scale): TeachMyAgent's input range
#: (its default ``[-1, 1]``) and the ranges of its benchmark and of its three test sets.
TASK_RANGE_8 = ((-1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.0, CPPN_SCALE),
                (1.0, 1.0, 1.0, 1.0, 0.5, 4.0, 5.0, 20.0))
#: The task space of TeachMyAgent's Parkour benchmark (its "medium" input box; 8-D: width and
#: scale fixed at 0.25 and 10).
BENCHMARK_BOX_8 = ((-0.35, 0.6, -0.1, 0.0, CREEPER_WIDTH, 0.0, 0.0, CPPN_SCALE),
                   (0.05, 1.0, 0.3, 1.0, CREEPER_WIDTH, 4.0, 5.0, CPPN_SCALE))
MAX_TEST_SET_BYTES = 1 << 20  # a test-set CSV of 10,000 rows of 8 numbers is well under 1 MiB
MAX_TEST_SET_ROWS = 10_000


class _ParkourContacts(_Contacts):
    """The walkers' contact counter; climbers may touch the ceiling with any part."""

    def __init__(self, watched, critical, ceiling_is_safe: bool) -> None:
        super().__init__(watched, critical)
        self.ceiling_is_safe = ceiling_is_safe

    def BeginContact(self, contact):  # noqa: N802 (Box2D's name)
        fa, fb = contact.fixtureA, contact.fixtureB
        for k, other in ((fa.userData, fb), (fb.userData, fa)):
            if k is not None and self.watched[k]:
                self.touching[k] += 1
                if self.critical[k] and not (self.ceiling_is_safe and other.filterData.categoryBits == CEILING):
                    self.fallen = True


class _SurfaceLidar(_Lidar):
    """The walkers' lidar ray, which also says whether the closest hit is a creeper (a sensor)."""

    def ReportFixture(self, fixture, point, normal, fraction):  # noqa: N802
        if fixture.userData is not None:
            return -1.0
        self.fraction = fraction
        self.creeper = fixture.sensor
        return fraction


class ParkourEnv(Box2DTrackEnv):
    """A body on a CPPN-generated parkour with water and creepers, set by a 6-D or 8-D task vector.

    Parameters
    ----------
    body
        A key of :data:`~teachgym.envs.parkour.bodies.PARKOUR_BODIES` (the six walkers,
        ``"climbing_profile_chimpanzee"``, ``"fish"``) or a ``ParkourBody``.
    render_mode
        ``None``, ``"rgb_array"`` (600x400 frames) or ``"human"``.
    task
        The task of resets that pass none (default: :attr:`default_task`).
    cppn_weights
        Path to TeachMyAgent's trained CPPN checkpoint (its ``.data-00000-of-00001`` file or the
        folder ``PCGAgents/CPPN/weights/same_ground_ceiling_cppn/`` holding it; not shipped):
        the terrains are then TeachMyAgent's. Default: our shipped CPPN (same architecture, our
        random weights; other terrains).
    task_dims
        6 (default): TeachMyAgent's benchmark task, creepers 0.25 m wide and CPPN scale 10.
        8: TeachMyAgent's full task ``(cppn_input_0..2, water_level, creepers_width,
        creepers_height, creepers_spacing, terrain_cppn_scale)``, needed by its test sets.
    task_bounds
        ``(low, high)`` of :attr:`task_space`, the box teachers sample from; default: TeachMyAgent's
        benchmark box (below). Must lie inside :data:`TASK_RANGE_8` (minus width and scale in 6-D).
    test_set
        What :meth:`test_set` returns when called without a name (a name or a CSV path); default:
        our test set of the body's kind.

    Notes
    -----
    Task: ``(cppn_input_0..2, water_level, creepers_height, creepers_spacing)``; teachers sample
    from TeachMyAgent's benchmark ("medium") box ``[-0.35, 0.05] x [0.6, 1] x [-0.1, 0.3] x [0, 1]
    x [0, 4] x [0, 5]`` (8-D: creepers width 0.25 and scale 10 after the water level and at the
    end). ``reset`` takes any task of TeachMyAgent's wider range (:data:`TASK_RANGE_8`: inputs in
    [-1, 1], width in [0, 0.5], scale in [10, 20]), since its test sets lie outside its training box.
    Score range: TeachMyAgent's Parkour reward bounds (-150, 360), whatever the task.

    ``water_level`` is TeachMyAgent's: the fraction of the height from the bottom of the world
    (``-1000 / terrain_cppn_scale`` m, 100 m below the start pad at scale 10) to the highest point
    of the ceiling, not of the walkable height. Most of [0, 1] is therefore dry: with the default
    task the water first touches the ground at 0.82 (its lowest point) and covers the start pad
    from 0.83; 1 floods the track up to the ceiling. It is kept so that TeachMyAgent's benchmark
    box, its test sets and its published numbers mean the same here. :meth:`water_level_for`
    converts a fraction of the walkable height (0: no water, 1: up to the ceiling) into it for a
    given terrain, and ``env.unwrapped.terrain.flooded_fraction`` reads the current one back.

    Observation: head angle, angular velocity, x and y velocity, head under water (0/1), dead
    (0/1); per motor its angle and speed (and contact, for feet, fins and hands); per hand
    (climbers) touching a grip and holding one (0/1); 10 lidar fractions; per ray the surface it
    hit (-1 water, 1 creeper, 0 ground, ceiling or nothing). Actions: one per motor, then one per
    hand (> 0: grasp). Reward as on the walker tracks (no head-angle term for the chimpanzee and
    the fish); -100 and the end when a critical part touches the terrain (climbers: head, body
    or lower legs touching the ground) or the head goes back past x = 0. ``info["success"]`` is
    whether the return exceeds 230; ``info["dead"]`` whether the body has drowned / suffocated.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": FPS}
    # water_level is TeachMyAgent's unit, not a fraction of the walkable height: mostly dry below
    # ~0.82 (class notes; water_level_for converts).
    task_names = ("cppn_input_0", "cppn_input_1", "cppn_input_2", "water_level", "creepers_height",
                  "creepers_spacing")
    task_low = (-0.35, 0.6, -0.1, 0.0, 0.0, 0.0)
    task_high = (0.05, 1.0, 0.3, 1.0, 4.0, 5.0)
    score_range = (-150.0, 360.0)  # TeachMyAgent's reward bounds for Parkour
    reset_options = ("task",)  # the keys reset reads; any other is refused

    def __init__(self, body: str | ParkourBody = "classic_bipedal", render_mode: str | None = None,
                 task: Any = None, cppn_weights: str | Path | None = None, task_dims: int = 6,
                 task_bounds: tuple[Sequence[float], Sequence[float]] | None = None,
                 test_set: str | Path | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, "
                             f"got {render_mode!r}")
        self.render_mode = render_mode
        self.parkour_body = get_parkour_body(body)
        self.body = self.parkour_body.spec
        self.kind = self.parkour_body.kind
        self._blueprint = bp = ParkourBlueprint(self.parkour_body)
        if task_dims not in (6, 8):
            raise ValueError(f"task_dims must be 6 (TeachMyAgent's benchmark task) or 8 (its full task), "
                             f"got {task_dims!r}")
        self.task_dims = task_dims
        keep = list(range(8)) if task_dims == 8 else [i for i in range(8) if i not in (_WIDTH, _SCALE)]
        self._keep = keep
        if task_dims == 8:
            self.task_names = TASK_NAMES_8
            self.task_low, self.task_high = BENCHMARK_BOX_8
        range_low, range_high = (np.array(b)[keep] for b in TASK_RANGE_8)
        self._range = TaskSpace(spaces.Box(range_low, range_high, dtype=np.float64), self.task_names)
        low, high = (np.array(self.task_low), np.array(self.task_high)) if task_bounds is None else \
            self._checked_bounds(task_bounds)
        self.task_space = spaces.Box(low, high, dtype=np.float64)
        self._cppn = CPPN(None if cppn_weights is None else load_teachmyagent_weights(cppn_weights))
        self._default = self._checked_task(self.default_task if task is None else task)
        self._task = self._default
        self._test_set = test_set
        if test_set is not None:
            self.test_set(test_set)  # a bad name or file fails here, not at the first evaluation

        n_motors, n_hands = self.body.n_motors, len(bp.hands)
        self._n_motors = n_motors
        self.action_space = spaces.Box(-1.0, 1.0, (n_motors + n_hands,), dtype=np.float32)
        low, high = [-np.inf] * 4 + [0.0, 0.0], [np.inf] * 4 + [1.0, 1.0]
        for joint in bp.motors:
            low += [-np.inf, -np.inf] + [0.0] * (joint.foot >= 0)
            high += [np.inf, np.inf] + [1.0] * (joint.foot >= 0)
        low += [0.0] * (2 * n_hands + N_LIDAR) + [-1.0] * N_LIDAR
        high += [1.0] * (2 * n_hands + 2 * N_LIDAR)
        self.observation_space = spaces.Box(np.array(low, np.float32), np.array(high, np.float32),
                                            dtype=np.float32)

        self._startpad = math.ceil(max(STARTPAD, bp.width / TERRAIN_STEP + 5))  # in terrain steps
        self._end_x = (N_POINTS + self._startpad - TERRAIN_END) * TERRAIN_STEP
        extent, offset = LIDAR_FANS[self.parkour_body.lidar]
        angles = [extent * i / N_LIDAR + offset for i in range(N_LIDAR)]
        self.lidar_dx = tuple(math.sin(a) * LIDAR_RANGE for a in angles)
        self.lidar_dy = tuple(-math.cos(a) * LIDAR_RANGE for a in angles)
        self._torque_cost = self.body.torque_penalty * 80.0
        self._hand_shape = circleShape(radius=HAND_RADIUS)  # kept alive with the fixtureDef using it
        # Hands collide with nothing (mask 0): grasping is decided geometrically after each step.
        self._hand_fd = fixtureDef(shape=self._hand_shape, density=1.0, isSensor=True,
                                   categoryBits=BODY_CATEGORY, maskBits=0, userData=-1)
        self._polygons = tuple(tuple(part.fixtures[0].shape.vertices) for part in bp.parts)
        self._lidar = _SurfaceLidar()
        self._world: Box2D.b2World | None = None
        self._renderer = None

    @property
    def default_task(self) -> tuple[float, ...]:
        """Mid-box terrain, sparse short creepers; dry for walkers and climbers, flooded for swimmers
        (8-D: creepers 0.25 m wide, CPPN scale 10)."""
        water = 1.0 if self.parkour_body.kind == "swimmer" else 0.0
        return tuple(np.array((-0.15, 0.8, 0.1, water, CREEPER_WIDTH, 0.0, 5.0, CPPN_SCALE))[self._keep].tolist())

    def water_level_for(self, fraction: float, task: Any = None) -> float:
        """The ``water_level`` that floods ``fraction`` of ``task``'s walkable height.

        Parameters
        ----------
        fraction
            In [0, 1]: 0 puts the surface at the lowest ground point of the task's terrain (no
            water), 1 at its highest ceiling point.
        task
            The task whose terrain (CPPN inputs and scale) sets the heights; its own water level
            is ignored. Default: the task in force.

        Returns
        -------
        float
            The value to put in the task's ``water_level`` dimension (TeachMyAgent's unit, see
            the class notes).

        Examples
        --------
        >>> env = gym.make("teachgym/Parkour-v0").unwrapped
        >>> task = np.array(env.default_task)
        >>> task[3] = env.water_level_for(0.5, task)    # half of the walkable height
        >>> _ = env.reset(options={"task": task})        # env.terrain.flooded_fraction == 0.5
        """
        full = self._full_task(self._task if task is None else self._checked_task(task))
        _, ground, ceiling = profiles(self._cppn, full[:3], self._startpad, float(full[_SCALE]))
        return water_level_for(fraction, ground, ceiling, float(full[_SCALE]))

    def _checked_bounds(self, bounds: Any) -> tuple[np.ndarray, np.ndarray]:
        """``task_bounds`` as two vectors inside the accepted range, low <= high."""
        try:
            low, high = (self._range.vector(b).copy() for b in bounds)
        except (TypeError, ValueError) as err:
            raise ValueError(f"task_bounds must be (low, high), two vectors of {self._range.names} inside "
                             f"[{self._range.low.tolist()}, {self._range.high.tolist()}]: {err}") from None
        if np.any(low > high):
            raise ValueError(f"task_bounds: low {low.tolist()} exceeds high {high.tolist()}")
        return low, high

    def _checked_task(self, task: Any) -> np.ndarray:
        vector = self._range.vector(task).copy()  # ValueError naming the expected shape and bounds
        vector.flags.writeable = False
        return vector

    def _full_task(self, task: np.ndarray) -> np.ndarray:
        """TeachMyAgent's 8-D task of ``task`` (the 6-D task with width 0.25 and scale 10)."""
        if self.task_dims == 8:
            return task
        return np.insert(np.insert(task, _WIDTH, CREEPER_WIDTH), _SCALE, CPPN_SCALE)

    @property
    def task(self) -> np.ndarray:
        """The task in force (read-only float64 vector in ``task_names`` order)."""
        return self._task

    @property
    def terrain(self) -> Terrain | None:
        """The current episode's terrain (profiles, creepers, water level), or None before reset."""
        return self._terrain if self._world is not None else None

    def test_set(self, name: str | Path | None = None) -> np.ndarray:
        """A fixed test set, as tasks of this env (``(n, task_dims)``).

        Parameters
        ----------
        name
            * ``"walking"``, ``"climbing"``, ``"swimming"``: ours (100 tasks each, drawn inside
              the benchmark box by :func:`teachgym.envs.parkour.test_sets.draw_test_set`);
            * a path to a CSV file with a header row of the 6-D or the 8-D task names, such as
              your copy of TeachMyAgent's v1 test sets of the paper (``walking_test_set_v1.csv``,
              ``climbing_test_set_v1.csv``, ``swimming_test_set_v1.csv``; 100 tasks each; its
              CPPN inputs reach [-1, 1], walking uses scale 20, climbing creepers ~0.37 m wide:
              8-D tasks only). They are not shipped.

            Default: the env's ``test_set`` argument, else ours of the body's kind (walkers and
            amphibians: walking, climbers: climbing, swimmers: swimming).

        Raises
        ------
        ValueError
            For an unknown name, an unreadable, oversized or malformed file, a task outside the
            accepted range, or an 8-D task whose width or scale the 6-D task cannot express.
        """
        if name is None:
            name = self._test_set if self._test_set is not None else _KIND_TEST_SET[self.kind]
        if isinstance(name, str) and name in TEST_SETS:
            path = DATA_DIR / f"parkour_{name}_test_set.csv"
        elif isinstance(name, (str, Path)) and Path(name).is_file():
            path = Path(name)
        else:
            raise ValueError(f"unknown Parkour test set {name!r}: expected one of {TEST_SETS} (ours) or the "
                             "path of a CSV file (e.g. your copy of TeachMyAgent's walking_test_set_v1.csv)")
        return self._tasks_of(self._read_csv(path), path)

    def _read_csv(self, path: Path) -> tuple[tuple[str, ...], np.ndarray]:
        """Header and rows of a test-set CSV file, bounded in size."""
        size = path.stat().st_size
        if size > MAX_TEST_SET_BYTES:
            raise ValueError(f"test set {str(path)!r} has {size} bytes, more than {MAX_TEST_SET_BYTES}")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(MAX_TEST_SET_BYTES + 1)
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read test set {str(path)!r}: {err}") from None
        lines = text.splitlines()
        header = tuple(h.strip() for h in lines[0].split(",")) if lines else ()
        if header not in (ParkourEnv.task_names, TASK_NAMES_8):
            raise ValueError(f"test set {str(path)!r} must start with a header row of the 6-D task names "
                             f"{ParkourEnv.task_names} or the 8-D ones {TASK_NAMES_8}, got {header}")
        if not 2 <= len(lines) <= MAX_TEST_SET_ROWS + 1:
            raise ValueError(f"test set {str(path)!r} must have 1 to {MAX_TEST_SET_ROWS} task rows, "
                             f"got {len(lines) - 1}")
        try:
            rows = np.loadtxt(lines[1:], delimiter=",", ndmin=2, dtype=np.float64)
        except ValueError as err:
            raise ValueError(f"test set {str(path)!r} must hold {len(header)} numbers per row: {err}") from None
        if rows.shape[1] != len(header):
            raise ValueError(f"test set {str(path)!r} has {rows.shape[1]} columns, expected {len(header)}")
        return header, rows

    def _tasks_of(self, table: tuple[tuple[str, ...], np.ndarray], path: Path) -> np.ndarray:
        """Rows of a test set as this env's tasks (6-D <-> 8-D by TeachMyAgent's fixed values)."""
        header, rows = table
        if len(header) == 6 and self.task_dims == 8:  # the 6-D task fixes width 0.25 and scale 10
            rows = np.insert(np.insert(rows, _WIDTH, CREEPER_WIDTH, axis=1), _SCALE, CPPN_SCALE, axis=1)
        elif len(header) == 8 and self.task_dims == 6:
            fixed = (rows[:, _WIDTH] == CREEPER_WIDTH) & (rows[:, _SCALE] == CPPN_SCALE)
            if not fixed.all():
                i = int(np.flatnonzero(~fixed)[0])
                raise ValueError(
                    f"test set {str(path)!r}, row {i + 1}: creepers_width {rows[i, _WIDTH]:g} and "
                    f"terrain_cppn_scale {rows[i, _SCALE]:g}, which the 6-D task fixes at {CREEPER_WIDTH} and "
                    f"{CPPN_SCALE:g}: use gym.make(..., task_dims=8)")
            rows = np.delete(rows, [_WIDTH, _SCALE], axis=1)
        for i, row in enumerate(rows):
            try:
                self._range.vector(row)
            except ValueError as err:
                raise ValueError(f"test set {str(path)!r}, row {i + 1}: {err}") from None
        return rows

    # ------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        check_option_keys(options, self.reset_options, type(self).__name__)
        super().reset(seed=seed)
        has_task = options is not None and options.get("task") is not None
        self._task = self._checked_task(options["task"]) if has_task else self._default
        rng = self.np_random
        if self._world is not None:
            self._world.contactListener = None
        self._world = world = Box2D.b2World()  # fresh per episode: runs repeat exactly
        bp, pb = self._blueprint, self.parkour_body
        self._contacts = _ParkourContacts(bp.watched, bp.critical, self.kind == "climber")
        world.contactListener = self._contacts
        self._static = world.CreateStaticBody()
        self._terrain = build_terrain(self._static, self._cppn, self._full_task(self._task), self._startpad, rng)
        self._cloud_seed = int(rng.integers(2**31))
        x = self._startpad * TERRAIN_STEP / 2
        if self.kind == "climber":  # hands at the ceiling
            y = TERRAIN_HEIGHT + self._terrain.ceiling_offset - max(h[2] for h in bp.hands)
        else:
            stand = bp.stand_height if pb.start_height is None else pb.start_height / SCALE
            y = TERRAIN_HEIGHT + stand + pb.start_lift
        push = float(rng.uniform(-INITIAL_PUSH, INITIAL_PUSH)) * (self.kind != "swimmer")
        self._bodies, joints = bp.build(world, x, y, push)
        self._head = self._bodies[self.body.head]
        self._drives = tuple((j, m.speed) for j, m in zip(joints, bp.motors))
        self._readers = tuple((j, m.angle_offset, 1.0 / m.speed, m.foot) for j, m in zip(joints, bp.motors))
        driving = {m.b: j for j, m in zip(joints, bp.motors)}
        self._water = Water(self._bodies, self._polygons, [driving.get(k) for k in range(len(self._bodies))])
        self._hands = []
        for part, hx, hy in bp.hands:
            sensor = world.CreateDynamicBody(position=(x + hx, y + hy), fixtures=self._hand_fd)
            world.CreateJoint(weldJointDef(bodyA=self._bodies[part], bodyB=sensor, anchor=(x + hx, y + hy)))
            self._hands.append(sensor)
        self._grips = [None] * len(self._hands)  # the joint each hand holds, if any
        self._touching_grip = [False] * len(self._hands)
        self._under = self._outside = 0
        self._prev_shaping = None
        self._lidar_fractions = [1.0] * N_LIDAR
        start = np.zeros(self.action_space.shape)
        if self._hands:
            start[self._n_motors:] = 1.0  # hold on while the solver settles the hanging body
            for _ in range(HANG_STEPS):
                self._simulate(start)
        obs, _ = self._simulate(start)
        self._under = self._outside = 0  # TeachMyAgent counts from the first step of the episode
        self._return = 0.0
        if self.render_mode == "human":
            self.render()
        return obs, {"task": self._task.copy()}

    def step(self, action):
        if self._world is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        obs, reward = self._simulate(action)
        terminated = False
        if self._contacts.fallen or self._x < 0:
            reward, terminated = -100.0, True
        elif self._x > self._end_x:
            terminated = True
        self._return += reward
        if self.render_mode == "human":
            self.render()
        info = {"task": self._task.copy(), "success": self._return > SUCCESS_RETURN, "dead": self.dead}
        return obs, reward, terminated, False, info

    @property
    def dead(self) -> bool:
        """Whether the body has spent too long in the wrong medium (its motors are off)."""
        return self.wrong_medium_steps() > self.parkour_body.survive_steps

    def wrong_medium_steps(self) -> int:
        """Steps the head has spent where this body dies: under water for walkers and climbers,
        out of it for swimmers; amphibians live in both."""
        if self.kind == "amphibian":
            return 0
        return self._outside if self.kind == "swimmer" else self._under

    def _simulate(self, action) -> tuple[np.ndarray, float]:
        """Drive motors and hands, advance one step, apply water forces, read the sensors."""
        act = np.asarray(action, dtype=np.float64)
        if act.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {act.shape}")
        if np.isnan(act).any():
            raise ValueError(f"action contains NaN: {act}")
        dead = self.dead
        if dead:
            act = np.zeros_like(act)
        torque = self.body.motors_torque
        values = act.tolist()
        for (joint, speed), a in zip(self._drives, values):
            joint.motorSpeed = speed if a > 0 else (-speed if a < 0 else 0.0)
            joint.maxMotorTorque = torque * min(abs(a), 1.0)
        effort = sum(min(abs(a), 1.0) for a in values)  # grasp actions cost torque too, as in TeachMyAgent
        world, terrain = self._world, self._terrain
        grasp = values[self._n_motors:]
        for j, hold in enumerate(grasp):
            if hold <= 0 and self._grips[j] is not None:  # release
                world.DestroyJoint(self._grips[j])
                self._grips[j] = None
        world.Step(1.0 / FPS, 6 * 30, 2 * 30)
        for j, sensor in enumerate(self._hands):
            p = sensor.worldCenter
            reach = HAND_RADIUS + 0.01
            touching = p.y + reach >= terrain.ceiling_at(p.x) or terrain.creeper_near(p.x, p.y, reach)
            self._touching_grip[j] = touching
            if touching and grasp[j] > 0 and self._grips[j] is None:
                self._grips[j] = world.CreateJoint(revoluteJointDef(bodyA=sensor, bodyB=self._static,
                                                                    anchor=(p.x, p.y)))
        level = terrain.water_y
        self._water.apply(level)

        head = self._head
        pos = head.position
        self._x = x = pos.x
        y = pos.y
        under = y <= level
        if not dead:
            self._under, self._outside = (self._under + 1, 0) if under else (0, self._outside + 1)
        vel = head.linearVelocity
        angle = head.angle
        obs = [angle, 2.0 * head.angularVelocity / FPS, 0.3 * vel.x * (VIEWPORT_W / SCALE) / FPS,
               0.3 * vel.y * (VIEWPORT_H / SCALE) / FPS, 1.0 if under else 0.0, 1.0 if dead else 0.0]
        touching = self._contacts.touching
        for joint, offset, inv_speed, foot in self._readers:
            obs.append(joint.angle + offset)
            obs.append(joint.speed * inv_speed)
            if foot >= 0:
                obs.append(1.0 if touching[foot] else 0.0)
        for j in range(len(self._hands)):
            obs += [1.0 if self._touching_grip[j] else 0.0, 1.0 if self._grips[j] is not None else 0.0]
        lidar, fractions, surfaces = self._lidar, self._lidar_fractions, []
        for i in range(N_LIDAR):
            dx, dy = self.lidar_dx[i], self.lidar_dy[i]
            lidar.fraction, lidar.creeper = 1.0, False
            world.RayCast(lidar, (x, y), (x + dx, y + dy))
            fraction, surface = lidar.fraction, 1.0 if lidar.creeper else 0.0
            if not under and dy < 0.0 and (y - level) / -dy < fraction:  # the water's surface is closer
                fraction, surface = (y - level) / -dy, -1.0
            fractions[i] = fraction
            surfaces.append(surface)
        obs += fractions
        obs += surfaces

        return np.array(obs, dtype=np.float32), self._shaped_reward(x, angle, effort)

    # ------------------------------------------------------------------------- render
    def _make_renderer(self) -> Any:
        from teachgym.envs.parkour.render import ParkourRenderer

        return ParkourRenderer(self.render_mode, self.metadata["render_fps"])

    def close(self) -> None:
        self._close_world()
        self._bodies = self._drives = self._readers = ()
        self._hands, self._grips = [], []
        self._head = self._static = self._water = None
