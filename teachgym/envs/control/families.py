"""The four contextual classic-control families, as data.

Each entry says which attributes of a gymnasium original a task sets, over which ranges, what
counts as success, and which region of the task space no policy can learn, with the argument
(checked by the experiments in ``tests/test_control.py``). Defaults are the originals' physics.

Unlearnable regions (``ControlFamily.unlearnable``):

- **CartPole**: ``force_mag / ((cart_mass + pole_mass) * gravity) <= 0.005``. Linearised, the
  pole angle obeys θ'' = a·θ - b·F with F ≤ force_mag; the unstable mode z = θ + θ'/√a can be
  pulled back only while |z| < b·force_mag/a = force_mag / (total mass · gravity) (the pole
  length cancels). The start state (θ, θ' uniform in ±0.05) puts |z| below 0.005 in at most
  2·0.005/0.1 = 10 % of episodes; from every other start the pole falls whatever the policy.
- **Pendulum**: the torque (≤ 2) loses to gravity where |sin θ| > 4/(m·g·l), a band around the
  horizontal; the speed clip (|θ'| ≤ 8) caps the kinetic energy m·l²/6·64 that can enter the
  band from below. Where that energy plus the torque's work 2·(π - 2·θ₂) is less than the
  potential climb m·g·l·cos θ₂ (sin θ₂ = 4/(m·g·l)), no start below the band ever gets upright;
  the region keeps those tasks where such starts are at least 90 % of the uniform start angles.
- **MountainCarContinuous**: the car's energy E = v²/2 + 0.0025/3·sin 3x grows by at most
  power·|dx| per step, and the left wall (x = -1.2) destroys kinetic energy. On its last run to
  the goal the car starts from rest at a point no higher than the wall, so it reaches the goal
  only if U(wall) + power·(goal + 1.2) ≥ U(goal): below that power the goal (when higher than
  the wall, goal > 0.153) is out of reach. Below a second bound, √2·(√(U(goal)+k) - √(U(-0.4)+k))
  / 999 with k = 0.0025/3, the 999 steps cannot pump enough energy to reach any goal.
- **LunarLander** (continuous): the main engine accelerates the lander by at most 17.8 units/s²
  (measured, upright; tilting only lowers the vertical part). With gravity ≥ 19 the lander can
  never slow its descent; it hits the ground fast and crashes, and no episode returns 200. Wind
  pushes sideways and turbulence turns, so neither helps.
"""

from __future__ import annotations

import math
from functools import partial

import gymnasium as gym

from teachgym.envs.control.contextual import (
    ControlFamily,
    GoalReached,
    MeanOfLastAtLeast,
    ReturnAtLeast,
    TaskDimension,
)

# Lengths, masses and (where the dynamics divide by it) gravity: valid task ranges stay above 0.
_POSITIVE = {"minimum": 0.0, "open_minimum": True}

# ----------------------------------------------------------------------------- CartPole


def _cartpole_derive(env: gym.Env) -> None:
    """CartPole caches these two sums in __init__; keep them true to the new masses and length."""
    env.total_mass = env.masspole + env.masscart
    env.polemass_length = env.masspole * env.length


def _cartpole_unlearnable(task: dict[str, float]) -> bool:
    total_mass = task["cart_mass"] + task["pole_mass"]
    return task["force_mag"] / (total_mass * task["gravity"]) <= 0.005


CARTPOLE = ControlFamily(
    env_id="teachgym/ContextualCartPole-v0",
    base_id="CartPole-v1",
    dimensions=(
        TaskDimension("pole_length", 0.2, 3.0, 1.0, "length", scale=0.5,
                      doc="full pole length in m (gymnasium's `length` is half of it)", **_POSITIVE),
        TaskDimension("pole_mass", 0.05, 2.0, 0.1, "masspole", doc="kg", **_POSITIVE),
        TaskDimension("cart_mass", 0.5, 5.0, 1.0, "masscart", doc="kg", **_POSITIVE),
        TaskDimension("gravity", 2.0, 50.0, 9.8, "gravity", doc="m/s²", **_POSITIVE),
        TaskDimension("force_mag", 0.1, 15.0, 10.0, "force_mag", doc="push of either action, N", minimum=0.0),
    ),
    success=partial(ReturnAtLeast, 475.0),
    success_doc="the pole stays up for at least 475 steps (return ≥ 475, gymnasium's threshold)",
    score_range=(0.0, 500.0),
    unlearnable=_cartpole_unlearnable,
    unlearnable_doc="force_mag / ((cart_mass + pole_mass) * gravity) <= 0.005",
    test_set_file="cartpole_test_set.csv",
    derive=_cartpole_derive,
)

# ----------------------------------------------------------------------------- Pendulum

PENDULUM_MAX_TORQUE = 2.0  # gymnasium's Pendulum: |u| <= 2, |θ'| <= 8
PENDULUM_MAX_SPEED = 8.0


def _pendulum_unlearnable(task: dict[str, float], max_lucky: float = 0.1) -> bool:
    m, length, g = task["mass"], task["length"], task["gravity"]
    mgl = m * g * length
    if mgl <= 2 * PENDULUM_MAX_TORQUE:
        return False  # the torque beats gravity at every angle
    # Energy E = m l²/6 θ'² + m g l/2 cos θ; the torque adds u·dθ. Gravity wins for θ in
    # (θ₂, π - θ₂); entering from below with |θ'| <= 8 must climb m g l cos θ₂.
    theta2 = math.asin(2 * PENDULUM_MAX_TORQUE / mgl)
    kinetic = m * length**2 / 6 * PENDULUM_MAX_SPEED**2
    if kinetic + PENDULUM_MAX_TORQUE * (math.pi - 2 * theta2) >= mgl * math.cos(theta2):
        return False

    # Starts inside the band (|θ'| <= 1 at reset) may still climb straight up; find the lowest.
    def short_of_top(start: float) -> float:  # < 0: cannot climb from this angle to θ₂
        return (m * length**2 / 6 + PENDULUM_MAX_TORQUE * (start - theta2)
                - mgl / 2 * (math.cos(theta2) - math.cos(start)))

    lo, hi = theta2, math.pi - theta2
    if short_of_top(hi) >= 0:
        return False
    for _ in range(60):  # bisection: short_of_top is >= 0 at θ₂ and < 0 at π - θ₂
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if short_of_top(mid) >= 0 else (lo, mid)
    return hi / math.pi <= max_lucky


PENDULUM = ControlFamily(
    env_id="teachgym/ContextualPendulum-v0",
    base_id="Pendulum-v1",
    dimensions=(
        TaskDimension("length", 0.3, 2.0, 1.0, "l", doc="m", **_POSITIVE),
        TaskDimension("mass", 0.5, 3.0, 1.0, "m", doc="kg", **_POSITIVE),
        TaskDimension("gravity", 2.0, 25.0, 10.0, "g", doc="m/s²", minimum=0.0),
    ),
    success=partial(MeanOfLastAtLeast, 0, 50, 0.95),
    success_doc="mean of cos θ (1 = upright) over the last 50 steps ≥ 0.95",
    score_range=(-2000.0, 0.0),
    unlearnable=_pendulum_unlearnable,
    unlearnable_doc="speed clip and torque limit keep ≥ 90 % of starts from ever getting upright",
    test_set_file="pendulum_test_set.csv",
)

# ----------------------------------------------------------------------------- MountainCarContinuous

_HILL = 0.0025 / 3  # potential U(x) = _HILL * sin(3x): MountainCar's gravity term is 0.0025 cos 3x
_WALL = -1.2
_MC_STEPS = gym.spec("MountainCarContinuous-v0").max_episode_steps


def _mc_potential(x: float) -> float:
    return _HILL * math.sin(3 * x)


def _mc_unlearnable(task: dict[str, float]) -> bool:
    power, goal = task["power"], task["goal_position"]
    wall_bound = (_mc_potential(goal) - _mc_potential(_WALL)) / (goal - _WALL)
    # d√W/dt <= power/√2 with W = E - min U: the energy a whole episode can pump.
    time_bound = (math.sqrt(_mc_potential(goal) + _HILL) - math.sqrt(_mc_potential(-0.4) + _HILL)) \
        * math.sqrt(2) / _MC_STEPS
    return power < max(wall_bound, time_bound)


MOUNTAIN_CAR = ControlFamily(
    env_id="teachgym/ContextualMountainCarContinuous-v0",
    base_id="MountainCarContinuous-v0",
    dimensions=(
        TaskDimension("power", 0.0, 0.002, 0.0015, "power", doc="velocity change per unit action",
                      minimum=0.0),
        TaskDimension("goal_position", -0.2, 0.5, 0.45, "goal_position", doc="x of the flag",
                      minimum=_WALL, maximum=0.6, open_minimum=True),  # the track: x in [-1.2, 0.6]
    ),
    success=GoalReached,
    success_doc="the car reaches the goal (the original's termination)",
    score_range=(-100.0, 100.0),
    unlearnable=_mc_unlearnable,
    unlearnable_doc="power < (U(goal) - U(-1.2)) / (goal + 1.2), or too low to pump in 999 steps",
    test_set_file="mountain_car_continuous_test_set.csv",
    test_set_design="grid",
)

# ----------------------------------------------------------------------------- LunarLander


def _lander_derive(env: gym.Env) -> None:
    """No wind at all keeps the original's random stream (wind draws two numbers at reset)."""
    env.enable_wind = env.wind_power > 0 or env.turbulence_power > 0


LANDER_MAX_GRAVITY = 19.0  # main engine: ≤ 17.8 units/s² upward


LUNAR_LANDER = ControlFamily(
    env_id="teachgym/ContextualLunarLander-v0",
    base_id="LunarLander-v3",
    base_kwargs={"continuous": True},
    dimensions=(
        TaskDimension("gravity", 1.0, 25.0, 10.0, "gravity", scale=-1.0,
                      doc="downward acceleration (gymnasium's `gravity` is its negative)", **_POSITIVE),
        TaskDimension("wind_power", 0.0, 20.0, 0.0, "wind_power", doc="peak sideways wind force", minimum=0.0),
        TaskDimension("turbulence_power", 0.0, 2.0, 0.0, "turbulence_power", doc="peak torque",
                      minimum=0.0),
    ),
    success=partial(ReturnAtLeast, 200.0),
    success_doc="return ≥ 200 (gymnasium's threshold: a soft landing on the pad)",
    score_range=(-400.0, 300.0),
    unlearnable=lambda task: task["gravity"] >= LANDER_MAX_GRAVITY,
    unlearnable_doc=f"gravity ≥ {LANDER_MAX_GRAVITY} (beyond the main engine's thrust)",
    test_set_file="lunar_lander_test_set.csv",
    derive=_lander_derive,
    # The original declares |y| <= 2.5, |angle| <= 2 pi, |speeds| <= 10, but nothing keeps them there:
    # under low gravity the lander climbs to y > 15, and it spins (the angle is not wrapped; seen
    # at 197 rad, angular speed 11.5). Velocities have no cap either. x stays: |x| >= 1 ends the episode.
    observation_bounds={i: (-math.inf, math.inf) for i in range(1, 6)},
)

FAMILIES: dict[str, ControlFamily] = {
    "cartpole": CARTPOLE,
    "pendulum": PENDULUM,
    "mountain_car_continuous": MOUNTAIN_CAR,
    "lunar_lander": LUNAR_LANDER,
}


def get_family(name: str) -> ControlFamily:
    """The family called ``name`` (a key of :data:`FAMILIES`); ``ValueError`` otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown control family {name!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[name]
