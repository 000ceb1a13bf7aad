"""``teachgym bench students``: env steps/s of SB3's SAC vs a fleet of K SAC students, in one run.

Every row trains from a warm start: ``learning_starts`` random steps fill the buffers first
(not timed), then ``steps`` steps per student are timed, each with the preset's gradient steps
(teachDeepRL's SAC by default: 400-300, batches of 1000, 10 gradient steps every 10 steps). Rows
run one after the other in this process, on each device of ``devices`` that is present, so their
ratios are comparable. :func:`protocol_hours` turns the measured total throughput into the time
the ``walkers-20M`` protocol (teachers x envs x 16 seeds x 20M steps) would take on this machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from teachgym.teacher import make_teacher
from teachgym.wrappers import env_task_space


@dataclass
class StudentSpeedConfig:
    """What ``teachgym bench students`` measures; the CLI reads these defaults.

    ``devices``: those absent here (``cuda`` without a GPU) are skipped. ``steps`` is rounded up
    to a multiple of the preset's ``train_freq``. ``teacher``: each student's env is driven by its
    own teacher of this name (``None``: the env's own resets).
    """

    env: str = "teachgym/StumpTracks-v0"
    env_kwargs: dict[str, Any] | None = None
    preset: str = "sac"
    fleet_sizes: tuple[int, ...] = (1, 4, 16)
    sb3: bool = True
    devices: tuple[str, ...] = ("cpu", "cuda")
    steps: int = 200
    learning_starts: int = 1000
    teacher: str | None = "random"
    vectorization: str = "sync"
    overrides: dict[str, Any] | None = None  # fleet / SB3 hyper-parameters replacing the preset's
    protocol: str = "walkers-20M"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.env_kwargs is None:
            self.env_kwargs = {"body": "classic_bipedal"} if "Tracks" in self.env or "Parkour" in self.env else {}
        self.fleet_sizes = tuple(int(k) for k in self.fleet_sizes)
        if any(k < 1 for k in self.fleet_sizes):
            raise ValueError(f"fleet_sizes must be positive, got {self.fleet_sizes}")
        for name in ("steps", "learning_starts"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.preset not in ("sac", "sac-sb3", "td3"):
            raise ValueError(f"preset must be 'sac', 'sac-sb3' or 'td3', got {self.preset!r}")
        if self.vectorization not in ("sync", "async"):
            raise ValueError(f"vectorization must be 'sync' or 'async', got {self.vectorization!r}")


def available_devices(devices: tuple[str, ...]) -> list[str]:
    """The devices of ``devices`` present here (``cuda`` only with a GPU); ``ValueError`` for unknown names."""
    import torch  # the CLI builds its parser without torch
    out = []
    for device in devices:
        kind = device.split(":")[0]
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"devices must be 'cpu' or 'cuda[:i]', got {device!r}")
        if kind == "cpu" or torch.cuda.is_available():
            out.append(device)
    return out


def _fleet_settings(config: StudentSpeedConfig, device: str) -> dict[str, Any]:
    from teachgym.students.fleet import fleet_config
    base = fleet_config(config.preset)
    overrides = dict(config.overrides or {})
    steps = -(-int(config.steps) // overrides.get("train_freq", base.train_freq)) * overrides.get("train_freq", base.train_freq)
    overrides.update(learning_starts=int(config.learning_starts), device=device,
                     buffer_size=int(config.learning_starts) + steps + 1)
    return {"config": fleet_config(config.preset, **overrides), "steps": steps}


def _teacher(config: StudentSpeedConfig, seed: int) -> Any:
    if config.teacher is None:
        return None
    env = gym.make(config.env, **config.env_kwargs)
    try:
        space = env_task_space(env)
    finally:
        env.close()
    return make_teacher(config.teacher, space, seed=seed)


def measure_fleet(config: StudentSpeedConfig, k: int, device: str) -> dict[str, Any]:
    """Steps/s of a fleet of ``k`` students on ``device`` (per student and in total)."""
    from teachgym.students.fleet import Fleet, FleetMember, env_fn
    settings = _fleet_settings(config, device)
    members = [FleetMember(env_fn(config.env, config.env_kwargs), _teacher(config, config.seed + i), config.seed + i)
               for i in range(k)]
    with Fleet(members, settings["config"], vectorization=config.vectorization) as fleet:
        fleet.learn(config.learning_starts)  # random actions filling the buffers: not timed
        _sync(device)
        start = time.perf_counter()
        fleet.learn(settings["steps"])
        _sync(device)
        seconds = time.perf_counter() - start
    steps = settings["steps"]
    return {"learner": f"fleet K={k}", "device": device, "students": k, "steps_per_student": steps,
            "seconds": seconds, "steps_per_s_per_student": steps / seconds, "steps_per_s_total": k * steps / seconds}


def measure_sb3(config: StudentSpeedConfig, device: str) -> dict[str, Any]:
    """Steps/s of one SB3 student of the same preset, env and teacher."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from teachgym.students.sb3 import make_student
    from teachgym.wrappers import CurriculumWrapper

    settings = _fleet_settings(config, device)
    fc = settings["config"]
    algo = fc.algo

    def make() -> gym.Env:
        env = gym.make(config.env, **config.env_kwargs)
        teacher = _teacher(config, config.seed)
        return env if teacher is None else CurriculumWrapper(env, teacher)

    overrides = {"learning_starts": fc.learning_starts, "buffer_size": fc.buffer_size, "batch_size": fc.batch_size,
                 "train_freq": fc.train_freq, "gradient_steps": fc.gradient_steps, "learning_rate": fc.learning_rate,
                 "gamma": fc.gamma, "tau": fc.tau, "net_arch": list(fc.net_arch)}
    if algo == "sac":
        overrides["ent_coef"] = fc.ent_coef
    model = make_student(algo, DummyVecEnv([make]), seed=config.seed, device=device, overrides=overrides)
    try:
        model.learn(fc.learning_starts)
        _sync(device)
        start = time.perf_counter()
        model.learn(settings["steps"], reset_num_timesteps=False)
        _sync(device)
        seconds = time.perf_counter() - start
    finally:
        model.get_env().close()
    steps = settings["steps"]
    return {"learner": f"SB3 {algo.upper()}", "device": device, "students": 1, "steps_per_student": steps,
            "seconds": seconds, "steps_per_s_per_student": steps / seconds, "steps_per_s_total": steps / seconds}


def _sync(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def bench_students(config: StudentSpeedConfig, progress: bool = True) -> pd.DataFrame:
    """One row per (learner, device): SB3's student, then fleets of each size; steps/s per student
    and in total, and ``vs_sb3``: total steps/s over one SB3 student's on the same device."""
    rows = []
    jobs = []
    for device in available_devices(config.devices):
        if config.sb3:
            jobs.append(("sb3", 1, device))
        jobs += [("fleet", k, device) for k in config.fleet_sizes]
    for kind, k, device in jobs:
        if progress:
            print(f"bench students: {kind} K={k} on {device}...", flush=True)
        rows.append(measure_sb3(config, device) if kind == "sb3" else measure_fleet(config, k, device))
    table = pd.DataFrame(rows)
    sb3 = {r["device"]: r["steps_per_s_total"] for r in rows if r["learner"].startswith("SB3")}
    table["vs_sb3"] = [r["steps_per_s_total"] / sb3[r["device"]] if r["device"] in sb3 else np.nan for r in rows]
    return table


def protocol_steps(protocol: str = "walkers-20M") -> dict[str, Any]:
    """Runs and env steps of a shipped walkers config (teachers x envs x seeds x steps)."""
    from teachgym.benchmarks.suites import get_suite, read_config_file, shipped_configs

    if protocol not in shipped_configs():
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {shipped_configs()}")
    data = read_config_file(protocol)
    suite = get_suite(str(data.get("suite", "walkers")))
    values = {**suite.defaults, **data}
    variants = values.get("variants", ())
    variants = [variants] if isinstance(variants, str) else list(variants)
    runs = len(values["teachers"]) * max(len(variants), 1) * int(values["seeds"])
    return {"protocol": protocol, "teachers": len(values["teachers"]), "envs": max(len(variants), 1),
            "seeds": int(values["seeds"]), "steps_per_run": int(values["steps"]), "runs": runs,
            "total_steps": runs * int(values["steps"])}


def protocol_hours(table: pd.DataFrame, protocol: str = "walkers-20M") -> pd.DataFrame:
    """Hours (and days) each row's total steps/s would take for every run of ``protocol``.

    The time of the env steps and updates only (evaluations every 500k steps add to it), with
    one learner of that row's kind busy on the machine at a time.
    """
    info = protocol_steps(protocol)
    out = table[["learner", "device", "steps_per_s_total"]].copy()
    out["protocol_hours"] = info["total_steps"] / out["steps_per_s_total"] / 3600
    out["protocol_days"] = out["protocol_hours"] / 24
    out.attrs.update(info)
    return out


def format_students(table: pd.DataFrame, hours: pd.DataFrame) -> str:
    """The table and the protocol estimate as text (what the CLI prints)."""
    info = hours.attrs
    head = (f"{info.get('protocol')}: {info.get('teachers')} teachers x {info.get('envs')} envs x "
            f"{info.get('seeds')} seeds x {info.get('steps_per_run', 0):,} steps = {info.get('total_steps', 0):,} steps")
    return "\n".join([table.to_string(index=False, float_format=lambda v: f"{v:.3g}"), "", head,
                      hours.to_string(index=False, float_format=lambda v: f"{v:.4g}")])
