"""``teachgym bench envs``: steps per second and reset times of the envs, in one run.

Random actions from a seeded action space; every env of a row is timed in this process, one
after the other, so ratios between rows are comparable even on a noisy machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from tqdm.auto import tqdm


def default_envs() -> tuple[tuple[str, str, dict[str, Any]], ...]:
    """BipedalWalker-v3 first (the reference), every walker body, Parkour's three kinds of body,
    then control envs and originals."""
    from teachgym.envs.walkers.bodies import BODIES

    rows = [("BipedalWalker-v3", "BipedalWalker-v3", {})]
    rows += [(f"StumpTracks/{b}", "teachgym/StumpTracks-v0", {"body": b}) for b in BODIES]
    rows += [("HexagonTracks/classic_bipedal", "teachgym/HexagonTracks-v0", {"body": "classic_bipedal"})]
    rows += [(f"Parkour/{b}", "teachgym/Parkour-v0", {"body": b})
             for b in ("classic_bipedal", "climbing_profile_chimpanzee", "fish")]
    for name, original in (
        ("CartPole", "CartPole-v1"),
        ("Pendulum", "Pendulum-v1"),
        ("MountainCarContinuous", "MountainCarContinuous-v0"),
        ("LunarLander", "LunarLander-v3"),
    ):
        kwargs = {"continuous": True} if name == "LunarLander" else {}
        rows += [(original, original, kwargs), (f"Contextual{name}", f"teachgym/Contextual{name}-v0", {})]
    return tuple(rows)


#: Rows compared with another row than the first: contextual envs with their originals.
REFERENCES = {
    "ContextualCartPole": "CartPole-v1",
    "ContextualPendulum": "Pendulum-v1",
    "ContextualMountainCarContinuous": "MountainCarContinuous-v0",
    "ContextualLunarLander": "LunarLander-v3",
}


@dataclass
class EnvSpeedConfig:
    """What ``teachgym bench envs`` measures; the CLI reads these defaults."""

    #: (label, env id, gym.make kwargs); the first row is the reference for the ratio column.
    envs: tuple[tuple[str, str, dict[str, Any]], ...] = field(default_factory=default_envs)
    steps: int = 20_000
    resets: int = 200
    vector_envs: tuple[str, ...] = ("BipedalWalker-v3", "StumpTracks/classic_bipedal")
    vector_workers: int = 2
    seed: int = 0


def measure_steps(env: gym.Env, steps: int, seed: int) -> float:
    """Steps per second with random actions, resetting at episode ends."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    actions = [env.action_space.sample() for _ in range(min(steps, 4096))]
    start = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, _ = env.step(actions[i % len(actions)])
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - start)


def measure_resets(env: gym.Env, resets: int, seed: int) -> float:
    """Median milliseconds of ``reset()`` (each with a fresh seed, i.e. a new track)."""
    times = []
    for i in range(resets):
        start = time.perf_counter()
        env.reset(seed=seed + i)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def measure_vector(env_id: str, kwargs: dict[str, Any], steps: int, workers: int, mode: str, seed: int) -> float:
    """Steps per second (summed over workers) through gymnasium's Sync/AsyncVectorEnv."""
    cls = gym.vector.SyncVectorEnv if mode == "sync" else gym.vector.AsyncVectorEnv
    envs = cls([lambda: gym.make(env_id, **kwargs) for _ in range(workers)])
    try:
        envs.action_space.seed(seed)
        envs.reset(seed=seed)
        n = max(1, steps // workers)
        start = time.perf_counter()
        for _ in range(n):
            envs.step(envs.action_space.sample())
        return n * workers / (time.perf_counter() - start)
    finally:
        envs.close()


def bench_envs(config: EnvSpeedConfig) -> pd.DataFrame:
    """One row per env: steps/s, ratio to its reference (the first row, or a contextual env's
    original), median reset ms, steps/s through vector envs."""
    rows = []
    for label, env_id, kwargs in tqdm(config.envs, desc="envs", unit="env"):
        env = gym.make(env_id, **kwargs)
        try:
            sps = measure_steps(env, config.steps, config.seed)
            reset_ms = measure_resets(env, config.resets, config.seed)
        finally:
            env.close()
        row = {"env": label, "steps_per_s": sps, "reset_ms_median": reset_ms}
        if label in config.vector_envs:
            for mode in ("sync", "async"):
                row[f"{mode}{config.vector_workers}_steps_per_s"] = measure_vector(
                    env_id, kwargs, config.steps, config.vector_workers, mode, config.seed
                )
        rows.append(row)
    table = pd.DataFrame(rows)
    speed = dict(zip(table["env"], table["steps_per_s"]))
    first = table["env"].iloc[0]
    table.insert(
        2, "ratio", [s / speed.get(REFERENCES.get(e, first), speed[first]) for e, s in zip(table["env"], table["steps_per_s"])]
    )
    table.insert(3, "vs", [REFERENCES.get(e, first) if REFERENCES.get(e) in speed else first for e in table["env"]])
    return table
