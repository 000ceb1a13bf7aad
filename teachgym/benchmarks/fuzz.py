"""``teachgym bench fuzz``: random tasks (corners and faces included) x random and extreme actions.

For every env, each episode draws a task from the env's ``task_space`` (the all-low and all-high
corners first, then a share of random corners, a share of points on faces, the rest uniform) and
an action mode (uniform random, all high, all low, or alternating high/low across motors and
steps). Every observation and reward must be finite, every observation inside the bounded part of
``observation_space``, and every ``info`` must carry the task. A failure (a broken check or an
exception) is recorded with what reproduces it, never raised: one run reports every env.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

#: An env to fuzz: ``(env, gym.make kwargs)``; ``env`` is a registered id or a factory
#: ``env(**kwargs) -> gym.Env`` (used by tests for envs that are not registered).
EnvSpec = tuple[str | Callable[..., gym.Env], dict[str, Any]]

ACTION_MODES = ("random", "high", "low", "alternating")


def default_env_specs() -> tuple[EnvSpec, ...]:
    """Every walker body on both tracks, every Parkour body, then the four contextual control envs."""
    import teachgym.envs  # noqa: F401  (registers the ids)
    from teachgym.envs.control import FAMILIES
    from teachgym.envs.parkour import PARKOUR_BODIES
    from teachgym.envs.walkers import BODIES

    walkers = tuple((track, {"body": body}) for track in ("teachgym/StumpTracks-v0", "teachgym/HexagonTracks-v0")
                    for body in BODIES)
    parkour = tuple(("teachgym/Parkour-v0", {"body": body}) for body in PARKOUR_BODIES)
    return walkers + parkour + tuple((family.env_id, {}) for family in FAMILIES.values())


@dataclass
class FuzzConfig:
    """What ``teachgym bench fuzz`` runs; the CLI reads these defaults."""

    envs: tuple[EnvSpec, ...] = field(default_factory=default_env_specs)
    episodes_per_env: int = 200
    max_steps: int = 300
    seed: int = 0


def env_label(spec: EnvSpec) -> str:
    """A short row name: the id without ``teachgym/`` and its kwargs, e.g. ``StumpTracks-v0/body=wheel``."""
    env, kwargs = spec
    name = env.removeprefix("teachgym/") if isinstance(env, str) else getattr(env, "__name__", repr(env))
    return "/".join([name] + [f"{k}={v}" for k, v in sorted(kwargs.items())])


# ----------------------------------------------------------------------------- tasks and actions


def draw_task(space: spaces.Box, episode: int, rng: np.random.Generator,
              corner_share: float = 0.25, face_share: float = 0.25) -> tuple[np.ndarray, str]:
    """The task of ``episode`` and its kind (``"corner"``, ``"face"`` or ``"uniform"``).

    Episodes 0 and 1 take the all-low and all-high corners; later ones a random corner with
    probability ``corner_share``, a point with a random non-empty subset of coordinates on
    their bounds with probability ``face_share``, else a uniform point.
    """
    if not isinstance(space, spaces.Box) or not space.is_bounded():
        raise ValueError(f"the fuzzer needs a bounded Box task space, got {space}")
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if episode < 2:
        return (low if episode == 0 else high).copy(), "corner"
    u = rng.random()
    if u < corner_share:
        return np.where(rng.random(low.shape) < 0.5, low, high), "corner"
    task = rng.uniform(low, high)
    if u < corner_share + face_share:
        on_bound = rng.random(low.shape) < 0.5
        on_bound.flat[rng.integers(on_bound.size)] = True  # at least one coordinate on a face
        task = np.where(on_bound, np.where(rng.random(low.shape) < 0.5, low, high), task)
        return task, "face"
    return np.clip(task, low, high), "uniform"  # low + (high - low) * u can round past high


def action_mode(episode: int, rng: np.random.Generator, random_share: float = 0.7) -> str:
    """Episodes 0-7 cycle through :data:`ACTION_MODES`; later ones are random with probability
    ``random_share``, else one of the extreme modes."""
    if episode < 2 * len(ACTION_MODES):
        return ACTION_MODES[episode % len(ACTION_MODES)]
    return "random" if rng.random() < random_share else ACTION_MODES[int(rng.integers(1, len(ACTION_MODES)))]


def action_plan(space: spaces.Space, mode: str, steps: int, rng: np.random.Generator) -> list:
    """``steps`` actions of ``mode`` for ``space`` (Box with finite bounds, or Discrete)."""
    if isinstance(space, spaces.Discrete):
        first, last = int(space.start), int(space.start + space.n - 1)
        if mode == "random":
            return rng.integers(first, last + 1, steps).tolist()
        if mode == "alternating":
            return [first if t % 2 else last for t in range(steps)]
        return [last if mode == "high" else first] * steps
    if not isinstance(space, spaces.Box) or not space.is_bounded():
        raise ValueError(f"the fuzzer draws actions from Discrete or bounded Box spaces, got {space}")
    low, high = space.low, space.high
    if mode == "random":
        plan = rng.uniform(low, high, (steps, *space.shape))
    elif mode == "alternating":  # motors pull against each other and reverse every step
        signs = (np.arange(steps)[:, None] + np.arange(low.size)[None, :]) % 2 == 0
        plan = np.where(signs.reshape(steps, *space.shape), high, low)
    else:
        plan = np.broadcast_to(high if mode == "high" else low, (steps, *space.shape))
    return list(np.clip(plan, low, high).astype(space.dtype))


# ----------------------------------------------------------------------------- checks


class _Bounds:
    """Checks observations against the finite bounds of a Box observation space."""

    def __init__(self, space: spaces.Space) -> None:
        self.box = isinstance(space, spaces.Box)
        if self.box:
            self.shape = space.shape
            self.low = np.where(np.isfinite(space.low), space.low, -np.inf)
            self.high = np.where(np.isfinite(space.high), space.high, np.inf)
        self.space = space

    def problem(self, obs: Any) -> str | None:
        """What is wrong with ``obs``, or None."""
        if not self.box:
            return None if self.space.contains(obs) else f"observation {obs!r} outside {self.space}"
        obs = np.asarray(obs)
        if obs.shape != self.shape:
            return f"observation shape {obs.shape}, expected {self.shape}"
        if not np.all(np.isfinite(obs)):
            return f"non-finite observation at {np.flatnonzero(~np.isfinite(obs)).tolist()}: {obs.tolist()}"
        outside = (obs < self.low) | (obs > self.high)
        if outside.any():
            where = np.flatnonzero(outside).tolist()
            return (f"observation outside observation_space at {where}: values {obs.ravel()[where].tolist()}, "
                    f"bounds {self.low.ravel()[where].tolist()}..{self.high.ravel()[where].tolist()}")
        return None


def _info_problem(info: dict, task: np.ndarray) -> str | None:
    if "task" not in info:
        return "info has no 'task'"
    got = np.asarray(info["task"], dtype=np.float64)
    if got.shape != task.shape or not np.allclose(got, task, rtol=1e-6, atol=1e-9):
        return f"info['task'] = {got.tolist()} is not the task passed to reset"
    return None


def run_episode(env: gym.Env, task: np.ndarray, seed: int, actions: list, bounds: _Bounds) -> tuple[int, str | None]:
    """Steps taken and the first problem (None when clean) of one episode; exceptions included."""
    steps, where = 0, "reset"
    try:
        obs, info = env.reset(seed=seed, options={"task": task})
        problem = bounds.problem(obs) or _info_problem(info, task)
        if problem:
            return 0, f"reset: {problem}"
        for action in actions:
            where = f"step {steps + 1}"
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            reward = float(reward)
            if not np.isfinite(reward):
                return steps, f"step {steps}: non-finite reward {reward}"
            problem = bounds.problem(obs) or _info_problem(info, task)
            if problem:
                return steps, f"step {steps}: {problem}"
            if terminated or truncated:
                break
    except Exception as err:  # noqa: BLE001  (recording every exception is the point)
        return steps, f"{where}: {type(err).__name__}: {err}"
    return steps, None


def fuzz_envs(env_specs: Sequence[EnvSpec], episodes_per_env: int = 200, max_steps: int = 300,
              seed: int = 0, progress: Callable[[int], Any] | None = None) -> pd.DataFrame:
    """Fuzz each env: ``episodes_per_env`` episodes of at most ``max_steps`` steps.

    Episode ``i`` of env ``k`` uses the reset and action seed
    ``SeedSequence([seed, k, i]).generate_state(1)[0]``; its failure description names the seed,
    task and action mode, so ``run_episode`` (or a reset with that seed and task) replays it.

    Returns
    -------
    pandas.DataFrame
        One row per env: ``env``, ``episodes``, ``steps``, ``failures`` (episodes with a problem),
        ``corner_episodes``, ``seconds`` and ``first_failure`` (empty when none).
    """
    if episodes_per_env < 1 or max_steps < 1:
        raise ValueError(f"episodes_per_env and max_steps must be >= 1, got {episodes_per_env}, {max_steps}")
    rows = []
    for k, spec in enumerate(env_specs):
        env_id, kwargs = spec
        start = time.perf_counter()
        row = {"env": env_label(spec), "episodes": 0, "steps": 0, "failures": 0, "corner_episodes": 0,
               "seconds": 0.0, "first_failure": ""}
        try:
            # gymnasium's passive checker only warns, once; the checks here are stricter and every step.
            env = env_id(**kwargs) if callable(env_id) else gym.make(env_id, disable_env_checker=True, **kwargs)
        except Exception as err:  # noqa: BLE001
            row.update(failures=episodes_per_env, first_failure=f"make: {type(err).__name__}: {err}")
            rows.append(row)
            if progress is not None:
                progress(episodes_per_env)
            continue
        try:
            task_space = env.unwrapped.task_space
            bounds = _Bounds(env.observation_space)
            for i in range(episodes_per_env):
                ep_seed = int(np.random.SeedSequence([seed, k, i]).generate_state(1)[0])
                rng = np.random.default_rng(ep_seed)
                task, kind = draw_task(task_space, i, rng)
                mode = action_mode(i, rng)
                steps, problem = run_episode(env, task, ep_seed, action_plan(env.action_space, mode, max_steps, rng), bounds)
                row["episodes"] += 1
                row["steps"] += steps
                row["corner_episodes"] += kind == "corner"
                if problem:
                    row["failures"] += 1
                    if not row["first_failure"]:
                        row["first_failure"] = (f"episode {i} seed {ep_seed} task {task.tolist()} ({kind}) "
                                                f"actions {mode}: {problem}")
                if progress is not None:
                    progress(1)
        except Exception as err:  # noqa: BLE001  (a broken space: the env's row says so)
            row["failures"] += 1
            row["first_failure"] = row["first_failure"] or f"setup: {type(err).__name__}: {err}"
        finally:
            env.close()
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    return pd.DataFrame(rows, columns=["env", "episodes", "steps", "failures", "corner_episodes", "seconds",
                                       "first_failure"])


def bench_fuzz(config: FuzzConfig) -> pd.DataFrame:
    """Run :func:`fuzz_envs` with ``config`` and a progress bar."""
    from tqdm.auto import tqdm

    with tqdm(total=len(config.envs) * config.episodes_per_env, unit="ep", desc="fuzz") as bar:
        return fuzz_envs(config.envs, config.episodes_per_env, config.max_steps, config.seed, progress=bar.update)
