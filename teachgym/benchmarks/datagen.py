"""The ``datagen`` suite: who writes the best training data for a student, per domain.

For each domain (math, code, VQA), ``seeds`` episodes of ``iterations`` data-generation steps
per policy, all at the same data budget per step and on the same validation/test sets:
teacher-driven allocation over (skill, difficulty) — any teachgym teacher through
:class:`~teachgym.envs.datagen.policies.TeacherPolicy` on the Skill-List level (e.g. ALP-GMM,
the SEC bandit), DataEnvGym's alternating Explore/Exploit baseline on the Skill-Tree level —
against ``uniform`` (each example's skill and difficulty uniformly random). Writes per-run
curves, a table of final test accuracy per skill and a learning-curve PNG.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from teachgym.benchmarks.plots import plot_learning_curves
from teachgym.benchmarks.runner import execute
from teachgym.io import write_text
from teachgym.teacher import parse_teacher_spec

#: Baseline policies by name, and the env level each acts on; other names are teacher specs.
BASELINES = {"uniform": "skill_list", "balanced-fill": "skill_list", "random-allocation": "skill_list", "alternating": "skill_tree"}


@dataclass
class DatagenConfig:
    """What ``teachgym bench datagen`` runs; the CLI reads these defaults.

    ``policies``: ``uniform``, ``balanced-fill``, ``random-allocation``, ``alternating`` or teacher
    specs (``"alp-gmm:fit_rate=36"``). ALP-GMM refits every 36 reports (two iterations of the
    18 (skill, difficulty) cells) instead of its default 250, which 10 iterations never reach;
    SEC runs at the paper's lowest temperature, 0.2, because accuracy gains are small numbers.
    ``budget``, ``train_steps``, ``n_eval`` of None keep each domain's defaults.
    """

    domains: tuple[str, ...] = ("math", "code")
    policies: tuple[str, ...] = ("uniform", "alp-gmm:fit_rate=36", "sec:temperature=0.2", "alternating")
    seeds: int = 3
    iterations: int = 10
    budget: int | None = None
    train_steps: int | None = None
    n_eval: int | None = None
    device: str = "auto"  # CUDA when present
    threads: int = 1

    def validate(self) -> None:
        """``ValueError`` for unknown domains/policies and non-positive sizes."""
        from teachgym.envs.datagen.env import get_domain

        for d in self.domains:
            get_domain(d)
        for p in self.policies:
            if p not in BASELINES:
                try:
                    parse_teacher_spec(p)
                except ValueError as err:
                    raise ValueError(f"{err}; or a baseline policy: {', '.join(BASELINES)}") from None
        for key in ("seeds", "iterations", "threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        for key in ("budget", "train_steps", "n_eval"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer or None, got {getattr(self, key)!r}")

    def runs(self) -> list[dict[str, Any]]:
        """One description per (domain, policy, seed)."""
        return [
            {
                "student": "datagen", "variant": d, "teacher": p, "seed": s, "iterations": self.iterations,
                "budget": self.budget, "train_steps": self.train_steps, "n_eval": self.n_eval,
                "device": self.device, "threads": self.threads,
            }
            for d in self.domains for p in self.policies for s in range(self.seeds)
        ]


def run_datagen(
    student: str,
    variant: str,
    teacher: str,
    seed: int,
    iterations: int,
    budget: int | None = None,
    train_steps: int | None = None,
    n_eval: int | None = None,
    device: str = "auto",
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """One episode of domain ``variant`` with policy ``teacher``; curves and final accuracies.

    ``student`` is the suite's tag (``"datagen"``; the runner names files by it).
    """
    import torch

    from teachgym.envs.datagen.env import DataGenEnv
    from teachgym.envs.datagen.policies import POLICIES, TeacherPolicy

    torch.set_num_threads(threads)
    env_seed, policy_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2))
    level = BASELINES.get(teacher, "skill_list")
    env = DataGenEnv(variant, level, iterations=iterations, budget=budget, n_eval=n_eval, train_steps=train_steps, device=device)
    if teacher == "uniform":
        policy: Any = TeacherPolicy("random", env, seed=policy_seed)
    elif teacher in POLICIES:
        policy = POLICIES[teacher](env, seed=policy_seed)
    else:
        policy = TeacherPolicy(teacher, env, seed=policy_seed)
    start = time.perf_counter()
    obs, info = env.reset(seed=env_seed)
    curve, seconds = [info["test_mean_accuracy"]], []
    done = False
    while not done:
        t0 = time.perf_counter()
        action = policy.act(obs, info)
        obs, reward, done, _, info = env.step(action)
        policy.observe(obs, reward, info)
        seconds.append(time.perf_counter() - t0)
        curve.append(info["test_mean_accuracy"])
        if progress is not None:
            progress(1)
    return {
        "iteration": list(range(len(curve))),
        "test_accuracy": curve,
        "final_test_accuracy": dict(zip(env.skill_names, info["test_accuracy"].tolist())),
        "final_validation_accuracy": dict(zip(env.skill_names, info["accuracy"].tolist())),
        "data_per_skill": dict(zip(env.skill_names, env._data.sum(1).tolist())),
        "iteration_seconds": seconds,
        "wall_seconds": time.perf_counter() - start,
    }


def bench_datagen(config: DatagenConfig, out: str = "runs/datagen", jobs: int | None = None,
                  backend: str = "local") -> pd.DataFrame:
    """Run the suite (resuming finished runs); write CSVs and ``curves.png``; return the summary.

    The summary has one row per (domain, policy, skill) — skill ``"mean"`` is the mean over
    skills — with the final test accuracy's mean, min and max over seeds and, for ``mean``, the
    difference to ``uniform`` and the median seconds per iteration.
    """
    config.validate()
    runs = config.runs()
    results = execute(run_datagen, runs, out, units=lambda r: r["iterations"], jobs=jobs, desc="datagen",
                      curve=("iteration", "test_accuracy"), suite="datagen", backend=backend, unit="it")
    curves = pd.DataFrame(
        {"domain": r["variant"], "policy": r["teacher"], "seed": r["seed"], "iteration": i, "test_accuracy": 100.0 * a}
        for r, res in zip(runs, results) for i, a in enumerate(res["test_accuracy"])
    )
    rows = []
    for r, res in zip(runs, results):
        final = res["final_test_accuracy"]
        base = {"domain": r["variant"], "policy": r["teacher"], "seed": r["seed"]}
        rows += [{**base, "skill": k, "test_accuracy": 100.0 * v, "data": res["data_per_skill"][k]} for k, v in final.items()]
        rows.append({**base, "skill": "mean", "test_accuracy": 100.0 * float(np.mean(list(final.values()))),
                     "data": float(sum(res["data_per_skill"].values())), "iteration_seconds": float(np.median(res["iteration_seconds"]))})
    per_run = pd.DataFrame(rows)
    summary = (
        per_run.groupby(["domain", "policy", "skill"], sort=False)
        .agg(mean=("test_accuracy", "mean"), min=("test_accuracy", "min"), max=("test_accuracy", "max"),
             data=("data", "mean"), iteration_seconds=("iteration_seconds", "median"), seeds=("seed", "count"))
        .reset_index()
    )
    uniform = summary[(summary["policy"] == "uniform")].set_index(["domain", "skill"])["mean"]
    summary["vs_uniform"] = [
        m - uniform.get((d, k), np.nan) for d, k, m in zip(summary["domain"], summary["skill"], summary["mean"])
    ]
    out_dir = Path(out)
    write_text(out_dir / "curves.csv", curves.to_csv(index=False))
    write_text(out_dir / "per_run.csv", per_run.to_csv(index=False))
    write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    plot_learning_curves(curves, out_dir / "curves.png", x="iteration", y="test_accuracy", panel="domain", line="policy", ylabel="test accuracy (%)")
    return summary


def format_datagen(summary: pd.DataFrame) -> str:
    """Final test accuracy (%) as text: per domain, one row per policy, one column per skill."""
    blocks = []
    for domain, part in summary.groupby("domain", sort=False):
        table = part.pivot_table(index="policy", columns="skill", values="mean", sort=False)
        table = table[[c for c in dict.fromkeys(part["skill"]) if c != "mean"] + ["mean"]]
        means = part[part["skill"] == "mean"].set_index("policy")
        table["vs_uniform"] = means["vs_uniform"]
        table["s/iter"] = means["iteration_seconds"]
        blocks.append(f"[{domain}]\n" + table.to_string(float_format=lambda v: f"{v:.1f}"))
    return "\n\n".join(blocks)
