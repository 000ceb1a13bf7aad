"""Walker bodies as data, and the one builder that turns a description into Box2D bodies.

A body is a :class:`BodySpec`: a trunk (one or more rigid pieces, chained by passive joints)
and limbs, each limb a chain of motorised segments. Sizes are in pixels of TeachMyAgent's
``SCALE = 30`` (divided by :data:`SCALE` when built). The six walkers of TeachMyAgent
(Romac et al. 2021) are entries of :data:`BODIES`; a new body is a new entry, not a new env.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import Box2D
from Box2D.b2 import fixtureDef, polygonShape, revoluteJointDef

SCALE = 30.0  # pixels per metre, as in BipedalWalker / TeachMyAgent
SPEED_HIP = 4.0  # motor speed (rad/s) at full action, upper joints
SPEED_KNEE = 6.0  # lower joints
BODY_CATEGORY = 0x20  # body parts collide with the terrain (category 1) only, not with each other
TERRAIN_MASK = 0x0F

Polygon = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Segment:
    """One motorised limb segment: a box hanging from its joint.

    Parameters
    ----------
    length, width
        Size in pixels.
    direction
        Initial angle of the segment (radians, counter-clockwise): its tip hangs straight down
        from the joint at 0 and swings forward as the angle grows (or, ``flipped``, points
        straight up at 0).
    limits
        Joint limits (radians) relative to the initial pose.
    speed
        Motor speed at full action (rad/s); also the observation's speed normaliser.
    angle_offset
        Added to the joint angle in the observation (TeachMyAgent's ``angle_correction``).
    foot
        Whether the observation carries this segment's ground contact.
    tilt
        Added to the segment's initial angle without moving it (radians): BipedalWalker-v2's legs
        start turned by +-0.05 about their own centre, and the joints pull them into place.
    flipped
        The tip lies along the segment's local +y instead of -y. The box is the same either way,
        but Box2D then holds the angle TeachMyAgent gives that body (its spider's legs, its
        wheel's upper and rear legs), and rounds the same way.
    """

    length: float
    width: float
    direction: float
    limits: tuple[float, float]
    speed: float
    angle_offset: float = 0.0
    foot: bool = False
    tilt: float = 0.0
    flipped: bool = False


@dataclass(frozen=True)
class Limb:
    """A chain of segments fixed to trunk piece ``piece`` at ``anchor`` (pixels, piece frame).

    ``offset`` (pixels) moves where the segments start away from where their joints are: zero for
    every body but BipedalWalker-v2's, whose legs start 16 px above their hips.
    """

    anchor: tuple[float, float]
    segments: tuple[Segment, ...]
    piece: int = 0
    colour: tuple[int, int, int] = (153, 76, 127)
    offset: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class BodySpec:
    """A walker: trunk pieces, limbs, motors and physical constants.

    Parameters
    ----------
    name
        The name passed as ``gym.make(..., body=name)``.
    pieces
        One convex polygon (pixels, centred on the piece) per trunk piece.
    piece_x
        x of each piece's centre (pixels) relative to the body's origin.
    limbs
        Limbs in motor order: the action and the observation list motors limb by limb.
    motors_torque
        Maximal motor torque (N m) at full action.
    torque_penalty
        Reward cost per unit of |action| is ``torque_penalty * 80`` (TeachMyAgent's convention).
    head
        Index of the piece whose state, position and lidar the env reports.
    critical
        Pieces whose contact with the terrain ends the episode with -100 (a fall).
    spine_limits
        Limits of the passive joints between consecutive pieces (several pieces only).
    angle_penalty
        Whether the reward penalises the head's angle (off for the rolling wheel).
    start_height
        Height (pixels) of the body's origin above the ground at the start: TeachMyAgent's
        per-body constant (``AGENT_CENTER_HEIGHT``). ``None``: the shape's lowest point touches the
        ground.
    local_anchors
        Joints given by anchors in each part's own frame (reference angle 0), as
        BipedalWalker-v2 builds them, instead of one world point where the parts meet at the
        start; only differs from the default for bodies with ``offset`` or ``tilt``.
    """

    name: str
    pieces: tuple[Polygon, ...]
    limbs: tuple[Limb, ...]
    motors_torque: float
    torque_penalty: float
    piece_x: tuple[float, ...] = (0.0,)
    head: int = 0
    critical: tuple[int, ...] = (0,)
    spine_limits: tuple[float, float] | None = None
    angle_penalty: bool = True
    start_height: float | None = None
    local_anchors: bool = False
    trunk_density: float = 5.0
    trunk_friction: float = 0.1
    leg_density: float = 1.0
    trunk_colour: tuple[int, int, int] = (127, 102, 229)

    @property
    def n_motors(self) -> int:
        return sum(len(limb.segments) for limb in self.limbs)

    @property
    def n_feet(self) -> int:
        return sum(seg.foot for limb in self.limbs for seg in limb.segments)


# ---------------------------------------------------------------------------- body helpers
def _leg(anchor, thigh, shin, width, piece=0, direction=0.0, colour=(153, 76, 127), flipped=False) -> Limb:
    """A BipedalWalker leg: hip in [-0.8, 1.1], knee in [-1.6, -0.1], the shin 0.8 as wide."""
    return Limb(
        anchor,
        (
            Segment(thigh, width, direction, (-0.8, 1.1), SPEED_HIP, flipped=flipped),
            Segment(shin, 0.8 * width, direction, (-1.6, -0.1), SPEED_KNEE, angle_offset=1.0, foot=True,
                    flipped=flipped),
        ),
        piece,
        colour,
    )


def _spider_leg(side: int, colour) -> Limb:
    """Three segments splayed to one side (side=+1: rear); TeachMyAgent's spider leg."""
    # TeachMyAgent's angles (0.25, 0.7, 0.9) * pi * side, each segment pointing up from its joint.
    up, mid, low = (f * math.pi * side for f in (0.25, 0.7, 0.9))
    return Limb(
        (-side * 10.0, -4.0),
        (
            Segment(20.0, 6.0, up, (-0.1 * math.pi, 0.1 * math.pi), SPEED_HIP, flipped=True),
            Segment(20.0, 6.0, mid, (-0.15 * math.pi, 0.15 * math.pi), SPEED_HIP, flipped=True),
            Segment(20.0, 4.8, low, (-0.2 * math.pi, 0.2 * math.pi), SPEED_KNEE, foot=True, flipped=True),
        ),
        colour=colour,
    )


_BIPED_HULL: Polygon = ((-30, 9), (6, 9), (34, 1), (34, -8), (-30, -8))
_QUADRU_HULL: Polygon = ((-46, 13), (6, 13), (50, 5), (50, -12), (-46, -12))
_SQUARE: Polygon = ((-10, 10), (10, 10), (10, -10), (-10, -10))
_NEAR, _FAR = (178, 101, 152), (128, 51, 102)  # colours of the legs on the viewer's side / far side

BODIES: MappingProxyType[str, BodySpec] = MappingProxyType(
    {
        # start_height: TeachMyAgent's AGENT_CENTER_HEIGHT of each body, in pixels.
        "small_bipedal": BodySpec(
            "small_bipedal", (_BIPED_HULL,),
            tuple(_leg((0, -3), 17, 17, 8, colour=c) for c in (_FAR, _NEAR)),
            motors_torque=80, torque_penalty=0.00035, start_height=2 * 17 + 3,
        ),
        "classic_bipedal": BodySpec(
            "classic_bipedal", (_BIPED_HULL,),
            tuple(_leg((0, -3), 34, 34, 8, colour=c) for c in (_FAR, _NEAR)),
            motors_torque=80, torque_penalty=0.00035, start_height=2 * 34 + 3,
        ),
        # BipedalWalker-v2 as teachDeepRL has it (TeachMyAgent's OldClassicBipedalBody, the body
        # of its Stump Tracks experiments): hips 8 px below the hull's centre but legs placed as
        # if 8 px above it, turned by -+0.05 rad, joints by local anchors, started 2 legs up as
        # TeachMyAgent's Stump Tracks starts it (its AGENT_CENTER_HEIGHT, which TeachMyAgent's
        # Parkour uses instead, is 2 * 34 - 8 + 15 = 75 px).
        "old_classic_bipedal": BodySpec(
            "old_classic_bipedal", (_BIPED_HULL,),
            tuple(
                Limb((0, -8), (
                    Segment(34, 8, 0.0, (-0.8, 1.1), SPEED_HIP, tilt=tilt),
                    Segment(34, 0.8 * 8, 0.0, (-1.6, -0.1), SPEED_KNEE, angle_offset=1.0, foot=True, tilt=tilt),
                ), colour=c, offset=(0, 16))
                for tilt, c in ((-0.05, _FAR), (0.05, _NEAR))
            ),
            motors_torque=80, torque_penalty=0.00035, start_height=2 * 34, local_anchors=True,
        ),
        "big_quadru": BodySpec(
            "big_quadru", (_QUADRU_HULL,),
            # Leg pairs at -0.7 and +0.5 of the hull's half bottom width (48 px).
            tuple(_leg((x, -3), 51, 51, 10, colour=c) for x in (-33.6, 24.0) for c in (_FAR, _NEAR)),
            motors_torque=300, torque_penalty=0.00035 / 2, start_height=2 * 51 + 3,
        ),
        "spider": BodySpec(
            "spider", (_SQUARE,),
            tuple(_spider_leg(side, c) for side, c in ((1, _FAR), (-1, _FAR), (1, _NEAR), (-1, _NEAR))),
            motors_torque=100, torque_penalty=0.00035 / 2, trunk_colour=(127, 51, 102),
            start_height=20 + 4,  # LEG_H + LEG_DOWN: the splayed feet start 2.6 px above the ground
        ),
        # Four squares side by side, their centres at -40, -20, 0 and +20 px (TeachMyAgent shifts
        # the first by half the body's width); the rightmost is the head. No piece is critical:
        # TeachMyAgent sets the head's flag on the Box2D body, not on the userData its contact
        # listener reads, so the millipede's contacts never end an episode.
        "millipede": BodySpec(
            "millipede", (_SQUARE,) * 4,
            tuple(_leg((0, -3), 10, 10, 4, piece=p, colour=c) for p in range(4) for c in (_FAR, _NEAR)),
            motors_torque=200, torque_penalty=0.00035 / 4,
            piece_x=(-40.0, -20.0, 0.0, 20.0), head=3, critical=(),
            spine_limits=(-0.05 * math.pi, 0.05 * math.pi), start_height=2 * 10 + 3,
        ),
        "wheel": BodySpec(
            "wheel", (_SQUARE,),
            # Four legs out of the middle of each side: down, up, back, forward (TeachMyAgent's
            # angles 0, 0, pi/2, pi/2; the up and back legs point along their bodies' +y).
            tuple(
                _leg(anchor, 10, 10, 4, direction=d, colour=_NEAR, flipped=f)
                for anchor, d, f in (((0, -10), 0.0, False), ((0, 10), 0.0, True),
                                     ((-10, 0), math.pi / 2, True), ((10, 0), math.pi / 2, False))
            ),
            motors_torque=500, torque_penalty=0.00035 / 2, angle_penalty=False,
            trunk_colour=(127, 51, 102), start_height=20 / 2 + 2 * 10,
        ),
    }
)


def get_body(body: str | BodySpec) -> BodySpec:
    """The :class:`BodySpec` named ``body`` (or ``body`` itself); ``ValueError`` if unknown."""
    if isinstance(body, BodySpec):
        return body
    if body not in BODIES:
        raise ValueError(f"unknown walker body {body!r}; expected one of {sorted(BODIES)}")
    return BODIES[body]


# ------------------------------------------------------------------------------ builder
@dataclass(frozen=True)
class _Part:
    """Where one rigid part starts (metres, relative to the body origin) and how it is made."""

    x: float
    y: float
    angle: float
    fixtures: tuple  # fixtureDefs, shared by every reset of one env
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class _Joint:
    """A joint between parts ``a`` and ``b`` at (x, y) (metres, relative to the body origin)."""

    a: int
    b: int
    x: float
    y: float
    limits: tuple[float, float]
    motor: bool
    speed: float = 0.0
    angle_offset: float = 0.0
    foot: int = -1  # part index whose contact the observation reports, -1 for none
    # ((x, y) in part a's frame, (x, y) in part b's frame) for joints given by local anchors
    local: tuple[tuple[float, float], tuple[float, float]] | None = None


class Blueprint:
    """A body laid out once per env: parts, joints and fixture definitions, in metres.

    Building a walker at reset then costs one ``CreateDynamicBody`` per part and one
    ``CreateJoint`` per joint, and nothing is recomputed.

    Parameters
    ----------
    spec
        The body description.
    """

    def __init__(self, spec: BodySpec) -> None:
        self.spec = spec
        parts: list[_Part] = []
        joints: list[_Joint] = []
        shapes = []  # kept alive, and owned by Python, as long as the fixtureDefs that use them
        critical = set(spec.critical)
        for i, (poly, px) in enumerate(zip(spec.pieces, spec.piece_x)):
            shapes.append(polygonShape(vertices=[(x / SCALE, y / SCALE) for x, y in poly]))
            fd = fixtureDef(
                shape=shapes[-1], density=spec.trunk_density, friction=spec.trunk_friction,
                categoryBits=BODY_CATEGORY, maskBits=TERRAIN_MASK,
            )
            parts.append(_Part(px / SCALE, 0.0, 0.0, (fd,), spec.trunk_colour))
            if i > 0 and spec.spine_limits is not None:
                edge = (spec.piece_x[i - 1] + px) / 2 / SCALE
                joints.append(_Joint(i - 1, i, edge, 0.0, spec.spine_limits, motor=False))
        # TeachMyAgent creates each trunk piece, then the limbs on it (each segment, then its
        # joint), then the spine joint to the previous piece; Box2D's solver order, hence its
        # rounding, follows the creation order, so build() keeps it: ("body" | "joint", index).
        creation: list[list[tuple[str, int]]] = [[("body", i)] for i in range(len(spec.pieces))]
        spine = {j.b: k for k, j in enumerate(joints)}
        for limb in spec.limbs:
            parent = limb.piece
            jx = (spec.piece_x[limb.piece] + limb.anchor[0]) / SCALE
            jy = limb.anchor[1] / SCALE
            local_a = (limb.anchor[0] / SCALE, limb.anchor[1] / SCALE)
            off_x, off_y = limb.offset[0] / SCALE, limb.offset[1] / SCALE
            for seg in limb.segments:
                length, width = seg.length / SCALE, seg.width / SCALE
                dx, dy = math.sin(seg.direction), -math.cos(seg.direction)
                if seg.flipped:
                    dx, dy = -dx, -dy
                shapes.append(polygonShape(box=(width / 2, length / 2)))
                fd = fixtureDef(
                    shape=shapes[-1], density=spec.leg_density, restitution=0.0,
                    categoryBits=BODY_CATEGORY, maskBits=TERRAIN_MASK,
                )
                parts.append(_Part(jx + dx * length / 2 + off_x, jy + dy * length / 2 + off_y,
                                   seg.direction + seg.tilt, (fd,), limb.colour))
                index = len(parts) - 1
                top = -(length / 2) if seg.flipped else length / 2  # the joint's end, in the segment's frame
                local = (local_a, (0.0, top)) if spec.local_anchors else None
                joints.append(_Joint(parent, index, jx, jy, seg.limits, motor=True, speed=seg.speed,
                                     angle_offset=seg.angle_offset, foot=index if seg.foot else -1,
                                     local=local))
                creation[limb.piece] += [("body", index), ("joint", len(joints) - 1)]
                parent, jx, jy = index, jx + dx * length, jy + dy * length
                local_a = (0.0, -top)
        for i, steps in enumerate(creation):
            if i in spine:
                steps.append(("joint", spine[i]))
        self.creation = tuple(step for steps in creation for step in steps)
        # Every body fixture carries its part index: the lidar skips fixtures that have one, the
        # contact listener counts those of feet and critical pieces. Terrain fixtures carry None.
        for k, part in enumerate(parts):
            for fd in part.fixtures:
                fd.userData = k
        # pybox2d gives a shape's memory to its fixtureDef, which never frees it: take it back.
        for shape in shapes:
            shape.thisown = True
        self._shapes = tuple(shapes)
        self.parts = tuple(parts)
        self.joints = tuple(joints)
        self.critical = tuple(k in critical for k in range(len(parts)))
        self.motors = tuple(j for j in self.joints if j.motor)
        feet = {j.foot for j in self.motors}
        self.watched = tuple(k in critical or k in feet for k in range(len(parts)))  # contacts counted
        xs, ys = self._extent()
        self.width = xs[1] - xs[0]
        # TeachMyAgent's start height where the body has one, else the lowest point on the ground
        self.stand_height = -ys[0] if spec.start_height is None else spec.start_height / SCALE

    def _extent(self) -> tuple[tuple[float, float], tuple[float, float]]:
        xs, ys = [], []
        for part in self.parts:
            c, s = math.cos(part.angle), math.sin(part.angle)
            for fd in part.fixtures:
                for vx, vy in fd.shape.vertices:
                    xs.append(part.x + c * vx - s * vy)
                    ys.append(part.y + s * vx + c * vy)
        return (min(xs), max(xs)), (min(ys), max(ys))

    def build(self, world: Box2D.b2World, x: float, y: float, push: float) -> list:
        """Create the walker's bodies and joints in ``world`` with its origin at (x, y).

        Returns
        -------
        bodies, joints
            Box2D bodies in part order and the motorised joints in motor order.
        """
        parts, joints = self.parts, self.joints
        bodies: list = [None] * len(parts)
        created: list = [None] * len(joints)
        torque = self.spec.motors_torque
        for kind, k in self.creation:
            if kind == "body":
                p = parts[k]
                bodies[k] = world.CreateDynamicBody(position=(x + p.x, y + p.y), angle=p.angle,
                                                    fixtures=list(p.fixtures))
                if k < len(self.spec.pieces):
                    bodies[k].ApplyForceToCenter((push, 0.0), True)
                continue
            j = joints[k]
            where = ({"anchor": (x + j.x, y + j.y)} if j.local is None
                     else {"localAnchorA": j.local[0], "localAnchorB": j.local[1]})
            created[k] = world.CreateJoint(revoluteJointDef(
                bodyA=bodies[j.a], bodyB=bodies[j.b], **where,
                enableMotor=j.motor, enableLimit=True, maxMotorTorque=torque,
                motorSpeed=0.0, lowerAngle=j.limits[0], upperAngle=j.limits[1],
            ))
        return bodies, [joint for joint, j in zip(created, joints) if j.motor]
