"""Benchmarks of RL training under a teacher (figures for the README).

- :func:`bench_curriculum_overhead`: steps/s of SB3 PPO on a contextual control env with and
  without the curriculum (:class:`~teachgym.vector.EpisodeCurriculum` + a teacher), measured
  in one process by alternating equal chunks of training, so that load from other processes
  hits both alike. Pendulum's episodes last 200 steps whatever the task, so both sides run the
  same number of episodes and the ratio is the wrapper's and the teacher's cost alone. Also
  times one ``sample`` + ``update`` round trip through :class:`~teachgym.vector.TeacherServer`.
- :func:`bench_curriculum`: real RL under each teacher on a contextual control env with an
  unlearnable region; % of the fixed test set mastered along training, several seeds, curves PNG.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from teachgym.benchmarks.plots import plot_learning_curves
from teachgym.io import write_text
from teachgym.teacher import make_teacher
from teachgym.training import TrainConfig, train
from teachgym.vector import EpisodeCurriculum, TeacherServer
from teachgym.wrappers import env_task_space


@dataclass
class OverheadConfig:
    """PPO steps/s with and without the curriculum, alternating ``rounds`` chunks of ``chunk`` steps."""

    env: str = "teachgym/ContextualPendulum-v0"
    teacher: str = "alp-gmm"
    rounds: int = 6
    chunk: int = 8192
    seed: int = 0


def bench_curriculum_overhead(config: OverheadConfig | None = None) -> dict[str, float]:
    """Seconds and steps/s of PPO with and without the curriculum wrapper, and the server round trip."""
    config = config or OverheadConfig()
    from stable_baselines3 import PPO

    torch.set_num_threads(1)

    def model(curriculum: bool) -> Any:
        env = gym.make(config.env, context_obs=True)
        if curriculum:
            teacher = make_teacher(config.teacher, env_task_space(env), seed=config.seed)
            env = EpisodeCurriculum(env, teacher, seed=config.seed)
        return PPO("MlpPolicy", env, seed=config.seed, device="cpu", n_steps=config.chunk // 4)

    models = {"plain": model(False), "curriculum": model(True)}
    seconds = {k: 0.0 for k in models}
    for m in models.values():  # warm-up: first-call costs stay out of the timings
        m.learn(config.chunk // 4, reset_num_timesteps=False)
    for r in range(config.rounds):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for name in order:
            start = time.perf_counter()
            models[name].learn(config.chunk, reset_num_timesteps=False)
            seconds[name] += time.perf_counter() - start
    steps = config.rounds * config.chunk
    episodes = models["curriculum"].get_env().get_attr("n_reported")[0]

    wrapper_us = _wrapper_cost_us(config)
    env = gym.make(config.env)
    teacher = make_teacher(config.teacher, env_task_space(env), seed=config.seed)
    with TeacherServer(teacher) as server:
        client = server.client()
        n = 2000
        start = time.perf_counter()
        for _ in range(n):
            client.update(client.sample(), 0.5)
        round_trip = (time.perf_counter() - start) / n
        client.close()
    return {
        "steps_per_s_plain": steps / seconds["plain"],
        "steps_per_s_curriculum": steps / seconds["curriculum"],
        "slowdown_pct": 100.0 * (seconds["curriculum"] / seconds["plain"] - 1.0),
        "episodes_with_curriculum": float(episodes),
        "wrapper_teacher_us_per_step": wrapper_us,
        "wrapper_teacher_pct_of_ppo_step": 100.0 * wrapper_us * steps / 1e6 / seconds["plain"],
        "server_sample_update_us": 1e6 * round_trip,
    }


def _wrapper_cost_us(config: OverheadConfig, steps: int = 20_000, rounds: int = 10) -> float:
    """Microseconds per env step that the wrapper and teacher add, random actions, alternating chunks.

    PPO's own cost varies by more than the wrapper's under shared-machine load; timing the env
    alone, bare and wrapped, measures the added cost directly.
    """
    bare = gym.make(config.env, context_obs=True)
    teacher = make_teacher(config.teacher, env_task_space(bare), seed=config.seed)
    wrapped = EpisodeCurriculum(gym.make(config.env, context_obs=True), teacher, seed=config.seed)
    actions = np.random.default_rng(config.seed).uniform(-2, 2, size=(steps, 1)).astype(np.float32)
    seconds = {"bare": 0.0, "wrapped": 0.0}
    for r in range(rounds):
        for name in (("bare", "wrapped") if r % 2 == 0 else ("wrapped", "bare")):
            env = bare if name == "bare" else wrapped
            start = time.perf_counter()
            env.reset(seed=r)
            for i in range(steps // rounds):
                _, _, terminated, truncated, _ = env.step(actions[i])
                if terminated or truncated:
                    env.reset()
            seconds[name] += time.perf_counter() - start
    return 1e6 * (seconds["wrapped"] - seconds["bare"]) / steps


@dataclass
class CurriculumConfig:
    """Teachers x seeds of :func:`teachgym.training.train` on one env, the same budget each."""

    env: str = "teachgym/ContextualCartPole-v0"
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"context_obs": True})
    teachers: tuple[str, ...] = ("random", "alp-gmm")
    seeds: int = 3
    algo: str = "ppo"
    algo_kwargs: dict[str, Any] = field(default_factory=lambda: {"n_steps": 512})
    n_envs: int = 4
    steps: int = 150_000
    eval_every: int = 15_000
    title: str = ""  # the panel's title; default: the env id without its namespace

    @property
    def panel(self) -> str:
        return self.title or self.env.split("/")[-1]


def _one(config: CurriculumConfig, teacher: str, seed: int, out: Path) -> pd.DataFrame:
    torch.set_num_threads(1)
    run = TrainConfig(env=config.env, teacher=teacher, algo=config.algo, steps=config.steps, n_envs=config.n_envs,
                      seed=seed, device="cpu", env_kwargs=dict(config.env_kwargs),
                      algo_kwargs=dict(config.algo_kwargs), eval_every=config.eval_every,
                      checkpoint_every=config.steps, vec="dummy")
    folder = out / f"{teacher.replace(':', '_')}-seed{seed}"
    train(run, folder, resume=(folder / "run.json").exists(), progress=False)
    curve = pd.read_csv(folder / "eval.csv")
    curve["teacher"], curve["seed"], curve["panel"] = teacher, seed, config.panel
    return curve


def bench_curriculum(config: CurriculumConfig, out: str, jobs: int = 2,
                     png: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every teacher x seed (``jobs`` processes; finished runs are reused); curves and summary.

    Returns ``(curves, summary)``; the summary has the final % mastered per teacher: median, min,
    max and the per-seed values. Writes ``curves.csv``, ``summary.csv`` and the PNG.
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    runs = [(t, s) for s in range(config.seeds) for t in config.teachers]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        curves = pd.concat(list(pool.map(_one, [config] * len(runs), *zip(*runs), [root] * len(runs))),
                           ignore_index=True)
    last = curves.loc[curves.groupby(["teacher", "seed"])["step"].idxmax()]
    summary = last.groupby("teacher", sort=False)["mastered_pct"].agg(["median", "min", "max", "mean"])
    summary["per_seed"] = last.groupby("teacher", sort=False)["mastered_pct"].agg(
        lambda v: " ".join(f"{x:.0f}" for x in v))
    write_text(root / "curves.csv", curves.to_csv(index=False))
    write_text(root / "summary.csv", summary.to_csv())
    plot_learning_curves(curves, png or root / "curves.png", x="step", panel="panel",
                         ylabel="% test tasks mastered")
    return curves, summary
