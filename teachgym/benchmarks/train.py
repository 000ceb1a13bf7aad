"""Benchmarks of RL training under a teacher (figures for the README).

- :func:`bench_curriculum_overhead`: steps/s of SB3 PPO on a contextual control env with and
  without the curriculum (:class:`~teachgym.vector.EpisodeCurriculum` + a teacher), measured
  in one process by alternating equal chunks of training, so that load from other processes
  hits both alike. Pendulum's episodes last 200 steps whatever the task, so both sides run the
  same number of episodes and the ratio is the wrapper's and the teacher's cost alone. Also
  times one ``sample`` + ``update`` round trip through :class:`~teachgym.vector.TeacherServer`.
- :func:`bench_curriculum`: real RL under each teacher on contextual control envs (the
  ``control`` suite) or walker tracks (``walkers``); % of each env's fixed test set mastered
  along training, several seeds, through the suite runner (skip finished runs, resume killed
  ones from their checkpoints, local processes or Ray), curves PNG. With ``fleet`` = K, SAC/TD3
  runs that differ only in teacher and seed are trained K at a time as one fleet of students
  (:func:`run_curriculum_fleet`); each run's results are written where and as a run alone writes them.
- :func:`subset_curves`: the same runs' curves on parts of the test set (Stump Tracks' easy
  half), read from which test tasks each evaluation mastered.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from teachgym.benchmarks.plots import plot_learning_curves
from teachgym.benchmarks.runner import execute
from teachgym.io import write_text
from teachgym.teacher import make_teacher
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
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)

    def model(curriculum: bool) -> Any:
        env = gym.make(config.env, context_obs=True)
        if curriculum:
            teacher = make_teacher(config.teacher, env_task_space(env), seed=config.seed, adapt=True)
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
    teacher = make_teacher(config.teacher, env_task_space(env), seed=config.seed, adapt=True)
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
    teacher = make_teacher(config.teacher, env_task_space(bare), seed=config.seed, adapt=True)
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
    """Teachers x envs x seeds of :func:`teachgym.training.train`, the same budget each.

    ``variants`` are env ids (each gets ``env_kwargs``); the defaults are a budget for one
    machine (the ``control`` suite). The ``walkers`` suite's defaults train the ``walker-ppo``
    student on Stump Tracks at a one-machine budget; the shipped config ``walkers-20M`` is
    TeachMyAgent's protocol (SAC, 20M steps, % of the 100 test tasks with return > 230).
    """

    variants: tuple[str, ...] = ("teachgym/ContextualCartPole-v0",)
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"context_obs": True})
    teachers: tuple[str, ...] = ("random", "alp-gmm")
    seeds: int = 3
    algo: str = "ppo"
    algo_kwargs: dict[str, Any] = field(default_factory=lambda: {"n_steps": 512})
    n_envs: int = 4
    steps: int = 150_000
    eval_every: int = 15_000
    device: str = "cpu"
    suite: str = "control"  # the name of the results directory's suite (and of the runs)
    fleet: int = 0  # > 0: SAC/TD3 runs trained K at a time as one fleet of students (teachgym.training_fleet)

    def validate(self) -> None:
        """``ValueError`` for unknown envs, teachers, algorithms and non-positive sizes."""
        from teachgym.training import check_config
        from teachgym.training_fleet import check_fleet

        for key in ("seeds", "n_envs", "steps", "eval_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        if self.fleet < 0:
            raise ValueError(f"fleet must be 0 (one SB3 student per run) or a number of students, got {self.fleet}")
        if not self.variants:
            raise ValueError("variants: expected at least one env id")
        for env in self.variants:
            if self.fleet:  # the runs of one env train together: check them as a fleet
                check_fleet([_train_config(self.runs_of(env, teacher, 0)) for teacher in self.teachers])
                continue
            for teacher in self.teachers:
                check_config(_train_config(self.runs_of(env, teacher, 0)))

    def runs_of(self, env: str, teacher: str, seed: int) -> dict[str, Any]:
        """The run description of one (env, teacher, seed)."""
        run = {
            "student": self.suite, "variant": env.split("/")[-1], "env": env, "teacher": teacher, "seed": seed,
            "env_kwargs": dict(self.env_kwargs), "algo": self.algo, "algo_kwargs": dict(self.algo_kwargs),
            "n_envs": self.n_envs, "steps": self.steps, "eval_every": self.eval_every, "device": self.device,
        }
        if self.fleet:
            # Another implementation of the same algorithm (other draws, same rules): its runs are not
            # an SB3 run's, whatever K (member k's numbers do not depend on the others).
            run["learner"] = "fleet"
        return run

    def runs(self) -> list[dict[str, Any]]:
        """One description per (env, teacher, seed), seed by seed: a suite stopped part-way has as
        many seeds of every teacher (give or take one) to compare."""
        return [self.runs_of(e, t, s) for e in self.variants for s in range(self.seeds) for t in self.teachers]

    def chunks(self, runs: list[dict[str, Any]]) -> list[list[int]] | None:
        """Indices of the runs trained together: runs with the same settings but teacher and seed,
        ``fleet`` at a time, in order (None without a fleet)."""
        if not self.fleet:
            return None
        groups: dict[str, list[int]] = {}
        for i, run in enumerate(runs):
            key = json.dumps({k: v for k, v in run.items() if k not in ("teacher", "seed")}, sort_keys=True)
            groups.setdefault(key, []).append(i)
        return [g[j:j + self.fleet] for g in groups.values() for j in range(0, len(g), self.fleet)]


def _train_config(run: dict[str, Any]) -> Any:
    from teachgym.training import TrainConfig

    return TrainConfig(env=run["env"], teacher=run["teacher"], algo=run["algo"], steps=run["steps"],
                       n_envs=run["n_envs"], seed=run["seed"], device=run["device"],
                       env_kwargs=dict(run["env_kwargs"]), algo_kwargs=dict(run["algo_kwargs"]),
                       eval_every=run["eval_every"], checkpoint_every=run["eval_every"], vec="dummy")


def run_curriculum(student: str, variant: str, env: str, teacher: str, seed: int, env_kwargs: dict[str, Any],
                   algo: str, algo_kwargs: dict[str, Any], n_envs: int, steps: int, eval_every: int, device: str,
                   work_dir: str, progress: Any = None) -> dict[str, Any]:
    """One RL run in ``work_dir`` (resumed from its last checkpoint if a killed run left one).

    Returns the columns of its ``eval.csv`` (step, % mastered, ...) as lists. ``student`` and
    ``variant`` name the run for the runner.
    """
    import torch

    from teachgym.training import EVAL_COLUMNS, train

    torch.set_num_threads(1)
    run = {"env": env, "teacher": teacher, "seed": seed, "env_kwargs": env_kwargs, "algo": algo,
           "algo_kwargs": algo_kwargs, "n_envs": n_envs, "steps": steps, "eval_every": eval_every, "device": device}
    folder = Path(work_dir)
    done = [0]

    def report(k: int) -> None:
        k = min(k, steps - done[0])  # SB3 may run past ``steps`` to finish a rollout
        done[0] += k
        if progress is not None and k > 0:
            progress(k)

    train(_train_config(run), folder, resume=(folder / "run.json").exists(), progress=report)
    curve = pd.read_csv(folder / "eval.csv")
    if progress is not None and steps > done[0]:  # a resumed run's earlier steps, a finished run's rest
        progress(steps - done[0])
    return {c: curve[c].tolist() for c in EVAL_COLUMNS if c in curve}


def run_curriculum_fleet(runs: list[dict[str, Any]], work_dirs: list[str], chunk_dir: str,
                         progress: Any = None) -> list[dict[str, Any]]:
    """The RL runs ``runs`` (same settings but teacher and seed) trained together as one fleet.

    Run k writes its training folder in ``work_dirs[k]``, as :func:`run_curriculum` would; the
    fleet's checkpoint goes in ``chunk_dir``, from which a killed chunk resumes. Returns each run's
    ``eval.csv`` columns as lists.
    """
    import torch

    from teachgym.training import EVAL_COLUMNS
    from teachgym.training_fleet import train_fleet

    torch.set_num_threads(1)
    chunk = Path(chunk_dir)
    resume = (chunk / "fleet.json").exists()
    if not resume:
        # A chunk not begun under this grouping: its runs' work folders hold the leftovers of other
        # attempts (another --fleet, one SB3 student per run), none of which this fleet continues.
        for folder in work_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(chunk, ignore_errors=True)
    total = sum(run["steps"] for run in runs)
    done = [0]

    def report(k: int) -> None:
        k = min(k, total - done[0])
        done[0] += k
        if progress is not None and k > 0:
            progress(k)

    train_fleet([_train_config(run) for run in runs], work_dirs, chunk, resume=resume, progress=report)
    if progress is not None and total > done[0]:  # a resumed chunk's earlier steps
        progress(total - done[0])
    out = []
    for folder in work_dirs:
        curve = pd.read_csv(Path(folder) / "eval.csv")
        out.append({c: curve[c].tolist() for c in EVAL_COLUMNS if c in curve})
    return out


def bench_curriculum(config: CurriculumConfig, out: str, jobs: int | None = 2, backend: str = "local",
                     png: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every env x teacher x seed (finished runs are reused, killed ones resume); curves and summary.

    Returns ``(curves, summary)``; the summary has the final % mastered per env and teacher:
    median, min, max, mean and the per-seed values. Writes ``curves.csv``, ``summary.csv`` and
    the PNG under ``out``; each run's ``curve.csv``/``meta.json`` under ``out/runs/`` and its
    training folder (checkpoints, episodes) under ``out/work/``.
    """
    from teachgym.training import EVAL_COLUMNS

    config.validate()
    runs = config.runs()
    chunks = config.chunks(runs)
    results = execute(run_curriculum if chunks is None else run_curriculum_fleet, runs, out,
                      units=lambda r: r["steps"], jobs=jobs, desc=config.suite, curve=EVAL_COLUMNS,
                      suite=config.suite, backend=backend, work=True, unit="step", chunks=chunks)
    curves = pd.concat(
        [pd.DataFrame({c: res[c] for c in EVAL_COLUMNS if c in res}).assign(panel=r["variant"], teacher=r["teacher"], seed=r["seed"])
         for r, res in zip(runs, results)], ignore_index=True)
    last = curves.loc[curves.groupby(["panel", "teacher", "seed"], sort=False)["step"].idxmax()]
    groups = last.groupby(["panel", "teacher"], sort=False)["mastered_pct"]
    summary = groups.agg(["median", "min", "max", "mean"])
    summary["per_seed"] = groups.agg(lambda v: " ".join(f"{x:.0f}" for x in v))
    summary = summary.reset_index().rename(columns={"panel": "variant"})
    root = Path(out)
    write_text(root / "curves.csv", curves.to_csv(index=False))
    write_text(root / "summary.csv", summary.to_csv(index=False))
    plot_learning_curves(curves, png or root / "curves.png", x="step", panel="panel",
                         ylabel="% test tasks mastered")
    return curves, summary


# Stump Tracks' test set is a 10 x 10 grid over (stump height in [0, 3], spacing in [0, 6]): the
# tasks with mean stump height below 1.5 are its easy half (heights 0 to 1.33, 50 tasks).
STUMP_TRACKS_SUBSETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "easy half (stump height < 1.5)": lambda tasks: tasks[:, 0] < 1.5,
    "whole test set": lambda tasks: np.ones(len(tasks), dtype=bool),
}


def subset_curves(out: str | Path, subsets: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None
                  ) -> pd.DataFrame:
    """% of each subset of the test set mastered at each evaluation of every run under ``out/work/``.

    ``subsets`` maps a name to a function of the ``(n, dim)`` test tasks giving a boolean mask
    (default: :data:`STUMP_TRACKS_SUBSETS`). Reads each run's ``run.json`` (env, teacher, seed)
    and the ``test_mastered`` column of its ``eval.csv``; runs still in progress give the
    evaluations they have. Columns: step, mastered_pct, subset, teacher, seed, env.

    Raises
    ------
    ValueError
        No run under ``out/work/``, or runs of a teachgym before ``test_mastered``.
    """
    from teachgym.training import mastered_pct_of

    subsets = subsets or STUMP_TRACKS_SUBSETS
    frames = []
    for run_json in sorted(Path(out).glob("work/*/run.json")):
        config = json.loads(run_json.read_text())["config"]
        if not (run_json.parent / "eval.csv").exists():
            continue
        env = gym.make(config["env"], **config["env_kwargs"])
        try:
            tasks = np.asarray(env.unwrapped.test_set(), dtype=np.float64)
        finally:
            env.close()
        for name, select in subsets.items():
            frames.append(mastered_pct_of(run_json.parent / "eval.csv", select(tasks)).assign(
                subset=name, teacher=config["teacher"], seed=config["seed"], env=config["env"]))
    if not frames:
        raise ValueError(f"no run with evaluations under {Path(out) / 'work'}; expected a curriculum suite's --out")
    return pd.concat(frames, ignore_index=True)
