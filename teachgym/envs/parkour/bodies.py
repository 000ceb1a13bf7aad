"""Parkour bodies: the walkers of :mod:`teachgym.envs.walkers`, a climbing chimpanzee, a fish and
an amphibious bipedal walker.

Every body is a :class:`~teachgym.envs.walkers.bodies.BodySpec` built by the walkers'
:class:`~teachgym.envs.walkers.bodies.Blueprint`; a :class:`ParkourBody` adds what Parkour needs
on top: the kind (walker, climber, swimmer, amphibian), the lidar fan, how long the body survives
in the wrong medium, and which limbs end in a grasping hand. Shapes and constants follow
TeachMyAgent's ``ClimbingProfileChimpanzee``, ``FishBody`` and ``AmphibiousBipedalBody`` (Romac et
al. 2021), in pixels of SCALE = 30.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import MappingProxyType

from Box2D.b2 import fixtureDef, polygonShape

from teachgym.envs.walkers.bodies import (
    BODIES,
    SCALE,
    SPEED_HIP,
    SPEED_KNEE,
    Blueprint,
    BodySpec,
    Limb,
    Segment,
)

SPEED_HAND = 8.0
HAND_RADIUS = 0.05  # metres: the grasping sensor at the tip of each hand
#: Lidar fans of TeachMyAgent: (angular extent, angle of the first ray from straight down), radians.
LIDAR_FANS = MappingProxyType({"down": (1.5, 0.0), "up": (2.3, 1.5), "full": (math.pi, 0.0)})


@dataclass(frozen=True)
class ParkourBody:
    """A body and how it lives in Parkour.

    Parameters
    ----------
    spec
        The body's description (built by the walkers' ``Blueprint``).
    kind
        ``"walker"``, ``"climber"``, ``"swimmer"`` or ``"amphibian"``.
    lidar
        A key of :data:`LIDAR_FANS`: walkers look down, climbers up, swimmers and amphibians all
        around.
    survive_steps
        Steps the head may spend in the wrong medium (under water for walkers and climbers, out
        of it for swimmers; amphibians have none) before the body dies: its motors stop for the
        rest of the episode.
    hands
        Limbs (indices into ``spec.limbs``) whose last segment carries a grasping sensor; each
        adds one action (> 0: grasp) and two observations (touching a grip, holding one).
    piece_y
        Vertical offset (pixels) of each trunk piece; with ``spine_y``, the y of the passive
        joints between pieces (the chimpanzee's head sits on top of its body).
    start_lift
        Metres added to the start height (the fish starts 1 m up, as in TeachMyAgent).
    start_height
        Height (pixels) of the body's origin above the ground at the start, TeachMyAgent's
        per-body ``AGENT_CENTER_HEIGHT``; ``None``: the blueprint's (lowest point on the ground).
    trapezoids
        Segments that are trapezoids instead of boxes: ``(motor index, width at the joint, width
        at the tip)`` in pixels (the fish's tail tapers, and water drag and lift act on its
        slanted edges).
    """

    spec: BodySpec
    kind: str
    lidar: str
    survive_steps: int = 600
    hands: tuple[int, ...] = ()
    piece_y: tuple[float, ...] = ()
    spine_y: float = 0.0
    start_lift: float = 0.0
    start_height: float | None = None
    trapezoids: tuple[tuple[int, float, float], ...] = ()


class ParkourBlueprint(Blueprint):
    """The walkers' blueprint, with trunk pieces optionally stacked vertically (``piece_y``) and
    segments optionally trapezoids (``trapezoids``)."""

    def __init__(self, body: ParkourBody) -> None:
        super().__init__(body.spec)
        n = len(body.spec.pieces)
        if body.piece_y:
            parts, joints = list(self.parts), list(self.joints)
            for i, dy in enumerate(body.piece_y):
                parts[i] = dataclasses.replace(parts[i], y=parts[i].y + dy / SCALE)
            for k, j in enumerate(joints):
                if j.a < n and j.b < n:  # a spine joint between two trunk pieces
                    joints[k] = dataclasses.replace(j, y=body.spine_y / SCALE)
            self.parts, self.joints = tuple(parts), tuple(joints)
            self.motors = tuple(j for j in self.joints if j.motor)
            xs, ys = self._extent()
            self.width, self.stand_height = xs[1] - xs[0], -ys[0]
        if body.trapezoids:  # same lengths, and the fin stays the lowest point: width and height kept
            self._taper(body)
        # Where each hand's sensor sits (metres, body frame) and the part it is welded to.
        self.hands = []
        first = n
        for li, limb in enumerate(body.spec.limbs):
            last = first + len(limb.segments) - 1
            if li in body.hands:
                part, seg = self.parts[last], limb.segments[-1]
                half = seg.length / SCALE / 2
                self.hands.append((last, part.x + math.sin(part.angle) * half,
                                   part.y - math.cos(part.angle) * half))
            first = last + 1
        self.hands = tuple(self.hands)

    def _taper(self, body: ParkourBody) -> None:
        """Give the segments of ``body.trapezoids`` their trapezoid shape (same fixture otherwise)."""
        segments = [seg for limb in body.spec.limbs for seg in limb.segments]  # motor order
        parts, shapes = list(self.parts), []
        for motor, joint_width, tip_width in body.trapezoids:
            k = self.motors[motor].b
            half = segments[motor].length / SCALE / 2
            # The segment's frame: its joint at +y, its tip at -y (the walkers' Blueprint).
            vertices = [(-joint_width / 2 / SCALE, half), (joint_width / 2 / SCALE, half),
                        (tip_width / 2 / SCALE, -half), (-tip_width / 2 / SCALE, -half)]
            shapes.append(polygonShape(vertices=vertices))
            old = parts[k].fixtures[0]
            fd = fixtureDef(shape=shapes[-1], density=old.density, friction=old.friction,
                            restitution=old.restitution, categoryBits=old.filter.categoryBits,
                            maskBits=old.filter.maskBits, userData=old.userData)
            parts[k] = dataclasses.replace(parts[k], fixtures=(fd,))
        for shape in shapes:  # pybox2d never frees a fixtureDef's shape: Python owns them
            shape.thisown = True
        self._trapezoid_shapes = tuple(shapes)
        self.parts = tuple(parts)


def _as_parkour_walker(spec: BodySpec) -> BodySpec:
    """Walkers in Parkour do not die when their trunk touches the ground (TeachMyAgent's
    ``reset_on_hull_critical_contact=False``); they drown instead."""
    return dataclasses.replace(spec, critical=())


_FISH_HULL = ((-20, 12), (6, 12), (15, 4), (15, -4), (6, -12), (-20, -12))
_FISH_COLOUR = (127, 102, 229)
_BACK = -math.pi / 2  # segments pointing backwards from their joint
FISH = BodySpec(
    "fish", (_FISH_HULL,),
    (
        # The tail: three segments behind the head (boxes of the mean height here, trapezoids in
        # PARKOUR_BODIES, as TeachMyAgent's: see _FISH_TAIL), then one fin under the head.
        Limb((-17.5, 0.0), (
            Segment(16, 21, _BACK, (-0.1 * math.pi, 0.2 * math.pi), SPEED_KNEE, foot=True),
            Segment(16, 13, _BACK, (-0.15 * math.pi, 0.15 * math.pi), SPEED_KNEE, foot=True),
            Segment(8, 6, _BACK, (-0.3 * math.pi, 0.3 * math.pi), SPEED_KNEE, foot=True),
        ), colour=_FISH_COLOUR),
        Limb((0.0, -5.0), (Segment(20, 2, -0.2 * math.pi, (-0.3 * math.pi, 0.2 * math.pi), SPEED_KNEE,
                                   foot=True),), colour=_FISH_COLOUR),
    ),
    motors_torque=80, torque_penalty=0.00035, critical=(), angle_penalty=False,
    trunk_density=0.99, leg_density=0.99,  # water is 1.0: the fish rises slowly when idle
    trunk_colour=_FISH_COLOUR,
)
# TeachMyAgent's BODY_P1..P3: each segment is as tall as the one before it at its joint and
# narrower at its tip (24 -> 18, 18 -> 8, 8 -> 4 px).
_FISH_TAIL = ((0, 24.0, 18.0), (1, 18.0, 8.0), (2, 8.0, 4.0))

_CHIMP_LEG = Limb((0.0, -12.0), (
    Segment(28, 8, 0.0, (-0.3 * math.pi, 0.6 * math.pi), SPEED_HIP),
    Segment(28, 6.4, 0.0, (-0.75 * math.pi, -0.1), SPEED_KNEE, angle_offset=1.0, foot=True),
))
_CHIMP_ARM = Limb((0.0, 22.0), (
    Segment(28, 8, math.pi, (-1.5 * math.pi, 0.0), SPEED_HIP),
    Segment(28, 6.4, math.pi, (0.0, 0.75 * math.pi), SPEED_HIP),
    Segment(8, 4, math.pi, (-0.5 * math.pi, 0.5 * math.pi), SPEED_HAND, foot=True),
))
CHIMPANZEE = BodySpec(
    "climbing_profile_chimpanzee",
    (((-12, 25), (12, 25), (8, -20), (-8, -20)), ((-5, 10), (5, 10), (5, -10), (-5, -10))),
    (_CHIMP_LEG, _CHIMP_LEG, _CHIMP_ARM, _CHIMP_ARM),
    motors_torque=100, torque_penalty=0.00035 / 5, piece_x=(0.0, 0.0), head=1,
    # Parts: 0 body, 1 head, 2-5 legs (3 and 5 the lower legs), 6-11 arms and hands.
    critical=(0, 1, 3, 5), spine_limits=(-0.1 * math.pi, 0.1 * math.pi), angle_penalty=False,
)

# TeachMyAgent's amphibious bipedal: the classic bipedal's shape at the density of water (hull
# 1.25x, legs 0.25x), so that it neither sinks like a walker nor drowns.
AMPHIBIOUS_BIPEDAL = dataclasses.replace(
    BODIES["classic_bipedal"], name="amphibious_bipedal", critical=(), trunk_density=1.25, leg_density=0.25,
    trunk_colour=(112, 207, 36),
)

PARKOUR_BODIES: MappingProxyType[str, ParkourBody] = MappingProxyType(
    {name: ParkourBody(_as_parkour_walker(spec), "walker", "down") for name, spec in BODIES.items()}
    | {
        "climbing_profile_chimpanzee": ParkourBody(
            CHIMPANZEE, "climber", "up", hands=(2, 3),
            piece_y=(0.0, 38.5), spine_y=22.5,  # head 6 px above the body, joint at the body's top
        ),
        # TeachMyAgent starts the fish 9 px + 1 m up (its fin hangs 22 px below the head's centre).
        "fish": ParkourBody(FISH, "swimmer", "full", start_lift=1.0, start_height=9.0, trapezoids=_FISH_TAIL),
        "amphibious_bipedal": ParkourBody(AMPHIBIOUS_BIPEDAL, "amphibian", "full"),
        # Stump Tracks starts it at 2 LEG_H (68 px); TeachMyAgent's Parkour at the body's
        # AGENT_CENTER_HEIGHT (75 px).
        "old_classic_bipedal": ParkourBody(_as_parkour_walker(BODIES["old_classic_bipedal"]), "walker", "down",
                                           start_height=75.0),
    }
)


def get_parkour_body(body: str | ParkourBody) -> ParkourBody:
    """The :class:`ParkourBody` named ``body`` (or ``body`` itself); ``ValueError`` if unknown."""
    if isinstance(body, ParkourBody):
        return body
    if body not in PARKOUR_BODIES:
        raise ValueError(f"unknown Parkour body {body!r}; expected one of {sorted(PARKOUR_BODIES)}")
    return PARKOUR_BODIES[body]
