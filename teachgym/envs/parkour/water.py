"""Water physics for Box2D bodies: buoyancy, drag, lift and the push of moving joints.

TeachMyAgent's ``WaterDynamics`` (after iforce2d's buoyancy tutorial, plus Romac's push force):
for each body polygon, the part under water is cut out (here: the polygon clipped by the
horizontal surface, since Parkour's water is everything below one level), then

* buoyancy ``density * area * g``, upwards, at the submerged centroid;
* for every edge of the submerged polygon whose outward normal ``n`` faces its velocity ``v``
  (at the edge's midpoint; unit direction ``u``): drag ``min(n.u * 0.25 * len * density * |v|^2,
  2000)`` against ``u``, and lift ``min(n.u * e.u * 0.25 * len * density * |v|^2, 500)`` along
  ``u`` turned 90 degrees (``e``: the edge's direction);
* for the motorised joint driving the part, when inside its limits, a push
  ``clip(n.F * 0.05 * len * density * (tau + I * omega)^2 * -F, -20, 20)`` per edge with
  ``n.F > 0``, where ``F = lever x (-tau)`` is the motor torque ``tau`` seen at the part's centre.
  It is what lets a fish swim by beating its tail.
"""

from __future__ import annotations

import math

import Box2D

DRAG_MOD, LIFT_MOD, PUSH_MOD = 0.25, 0.25, 0.05
MAX_DRAG, MAX_LIFT, MAX_PUSH = 2000.0, 500.0, 20.0
GRAVITY = 10.0
DENSITY = 1.0  # TeachMyAgent's WATER_DENSITY
_MOTOR_INV_DT = 60.0  # TeachMyAgent reads motor torques with 1/60 s (its FPS is 50)


def clip_below(points: list[tuple[float, float]], level: float) -> list[tuple[float, float]]:
    """The part of the convex polygon ``points`` (counter-clockwise) with ``y <= level``."""
    out = []
    px, py = points[-1]
    for qx, qy in points:
        p_in, q_in = py <= level, qy <= level
        if p_in != q_in:  # the edge crosses the surface
            t = (level - py) / (qy - py)
            out.append((px + t * (qx - px), level))
        if q_in:
            out.append((qx, qy))
        px, py = qx, qy
    return out


def area_centroid(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Area and centroid of a polygon (shoelace formula)."""
    area = cx = cy = 0.0
    px, py = points[-1]
    for qx, qy in points:
        cross = px * qy - qx * py
        area += cross
        cx += (px + qx) * cross
        cy += (py + qy) * cross
        px, py = qx, qy
    area *= 0.5
    if area <= 1e-12:
        return 0.0, 0.0, 0.0
    return area, cx / (6.0 * area), cy / (6.0 * area)


class Water:
    """Applies water forces to the parts of one body.

    Parameters
    ----------
    bodies
        The body's Box2D parts.
    polygons
        Each part's polygon in its own frame (metres, counter-clockwise); ``None`` skips a part.
    motors
        Each part's driving joint (a ``b2RevoluteJoint`` whose ``bodyB`` is the part) or None.
    """

    def __init__(self, bodies, polygons, motors) -> None:
        # Each part's radius around its origin: a part whose origin is higher than that above
        # the surface is dry, and costs one position read.
        self.parts = [(b, p, m, max(math.hypot(x, y) for x, y in p))
                      for b, p, m in zip(bodies, polygons, motors) if p is not None]

    def apply(self, level: float) -> bool:
        """Push every part under ``level``; return whether any part was (even partly) submerged."""
        wet = False
        for body, local, joint, radius in self.parts:
            pos = body.position
            if pos.y - radius >= level:
                continue
            a = body.angle
            c, s = math.cos(a), math.sin(a)
            x0, y0 = pos.x, pos.y
            world = [(x0 + c * vx - s * vy, y0 + s * vx + c * vy) for vx, vy in local]
            if min(p[1] for p in world) >= level:
                continue
            wet = True
            under = world if max(p[1] for p in world) <= level else clip_below(world, level)
            if len(under) < 3:
                continue
            area, cx, cy = area_centroid(under)
            if area == 0.0:
                continue
            body.ApplyForce((0.0, DENSITY * area * GRAVITY), (cx, cy), True)
            self._edges(body, joint, under)
        return wet

    @staticmethod
    def _edges(body: Box2D.b2Body, joint, under: list[tuple[float, float]]) -> None:
        vel = body.linearVelocity
        vx0, vy0, w = vel.x, vel.y, body.angularVelocity
        centre = body.worldCenter
        ccx, ccy = centre.x, centre.y
        push = None
        if joint is not None and joint.lowerLimit < joint.angle < joint.upperLimit:
            tau = joint.GetMotorTorque(_MOTOR_INV_DT)
            anchor = joint.anchorB
            lx, ly = ccx - anchor.x, ccy - anchor.y
            fx, fy = -tau * ly, tau * lx  # lever x (-tau)
            speed = tau + body.inertia * w
            push = (fx, fy, speed * speed, anchor)
        n = len(under)
        for i in range(n):
            (ax, ay), (bx, by) = under[i], under[(i + 1) % n]
            ex, ey = bx - ax, by - ay
            length = math.hypot(ex, ey)
            if length < 1e-9:
                continue
            ex, ey = ex / length, ey / length
            nx, ny = ey, -ex  # outward normal of a counter-clockwise polygon
            mx, my = 0.5 * (ax + bx), 0.5 * (ay + by)
            vx, vy = vx0 - w * (my - ccy), vy0 + w * (mx - ccx)  # velocity of the midpoint
            speed = math.hypot(vx, vy)
            if speed > 1e-9:
                ux, uy = vx / speed, vy / speed
                drag_dot = nx * ux + ny * uy
                if drag_dot >= 0.0:  # a leading edge
                    k = length * DENSITY * speed * speed
                    drag = min(drag_dot * DRAG_MOD * k, MAX_DRAG)
                    lift = min(drag_dot * (ex * ux + ey * uy) * LIFT_MOD * k, MAX_LIFT)
                    body.ApplyForce((-drag * ux - lift * uy, -drag * uy + lift * ux), (mx, my), True)
            if push is not None:
                fx, fy, speed2, anchor = push
                push_dot = nx * fx + ny * fy
                if push_dot > 0.0:
                    mag = push_dot * PUSH_MOD * length * DENSITY * speed2
                    px = min(MAX_PUSH, max(-MAX_PUSH, -mag * fx))
                    py = min(MAX_PUSH, max(-MAX_PUSH, -mag * fy))
                    body.ApplyForce((px, py), anchor, True)
