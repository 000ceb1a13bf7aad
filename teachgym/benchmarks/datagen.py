"""The ``datagen`` suite: who writes the best training data for a student, per domain.

For each domain (math, code, VQA), ``seeds`` episodes of ``iterations`` data-generation steps
per policy, all at the same data budget per step and on the same validation/test sets:
teacher-driven allocation over (skill, difficulty) — any teachgym teacher through
:class:`~teachgym.envs.datagen.policies.TeacherPolicy` on the Skill-List level (e.g. ALP-GMM;
``abs-gain-bandit``: teachgym's SEC teacher, which without GRPO advantages is a softmax bandit
on each arm's |Δ validation accuracy|, not SEC) — and DataEnvGym's Skill-Tree baselines
(``alternating``, ``fill-balanced``, ``random-explore-exploit``, as DataEnvGym defines them),
against ``uniform`` (each example's skill and difficulty uniformly random).

The student is retrained from its initial weights on all data every iteration by default
(``student_reset="base"``, DataEnvGym's protocol). The ``no-new-data`` control generates the
budget once and nothing after: its later rewards are what the env pays for no data, and their
root mean square (``floor``, in accuracy points) is printed beside every policy's mean reward
per iteration. Writes per-run curves, a table of final test accuracy per skill and a
learning-curve PNG.
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
BASELINES = {
    "uniform": "skill_list", "even-allocation": "skill_list", "dirichlet-allocation": "skill_list",
    "alternating": "skill_tree", "fill-balanced": "skill_tree", "random-explore-exploit": "skill_tree",
    "explore-weakest": "skill_tree", "no-new-data": "skill_tree",
}
#: Named teacher specs: SEC's bandit fed |Δ accuracy| of each arm (no GRPO advantages here), at τ = 0.2.
ALIASES = {"abs-gain-bandit": "sec:temperature=0.2"}
#: The policy whose later rewards are the noise floor.
CONTROL = "no-new-data"


def policy_label(policy: str) -> str:
    """The name a table shows: a SEC spec is an |Δacc| bandit here (its arms get no advantages)."""
    spec = ALIASES.get(policy, policy)
    if spec.split(":")[0] == "sec":
        return f"|Δacc| bandit ({spec.partition(':')[2] or 'defaults'})"
    return policy


@dataclass
class DatagenConfig:
    """What ``teachgym bench datagen`` runs; the CLI reads these defaults.

    ``policies``: names of :data:`BASELINES`, ``abs-gain-bandit`` or teacher specs
    (``"alp-gmm:fit_rate=36"``). ALP-GMM refits every 36 reports (two iterations of the 18
    (skill, difficulty) cells) instead of its default 250, which 10 iterations never reach; the
    |Δacc| bandit runs at τ = 0.2 because accuracy gains are small numbers. ``no-new-data`` is
    the reward's control (see the module docstring). ``budget``, ``train_steps``, ``n_eval`` of
    None keep each domain's defaults; ``student_reset``: ``"base"`` or ``"warm"``
    (:class:`~teachgym.envs.datagen.env.DataGenEnv`).
    """

    domains: tuple[str, ...] = ("math", "code")
    policies: tuple[str, ...] = (
        "uniform", "alp-gmm:fit_rate=36", "abs-gain-bandit", "alternating", "fill-balanced", "random-explore-exploit", CONTROL,
    )
    student_reset: str = "base"
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
        from teachgym.envs.datagen.env import RESETS

        if self.student_reset not in RESETS:
            raise ValueError(f"student_reset must be one of {RESETS}, got {self.student_reset!r}")
        for p in self.policies:
            if p not in BASELINES and p not in ALIASES:
                try:
                    parse_teacher_spec(p)
                except ValueError as err:
                    raise ValueError(f"{err}; or a baseline policy: {', '.join([*BASELINES, *ALIASES])}") from None
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
                "device": self.device, "threads": self.threads, "student_reset": self.student_reset,
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
    student_reset: str = "warm",
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
    env = DataGenEnv(variant, level, iterations=iterations, budget=budget, n_eval=n_eval, train_steps=train_steps, device=device,
                     student_reset=student_reset)
    if teacher == "uniform":
        policy: Any = TeacherPolicy("random", env, seed=policy_seed)
    elif teacher in POLICIES:
        policy = POLICIES[teacher](env, seed=policy_seed)
    else:
        policy = TeacherPolicy(ALIASES.get(teacher, teacher), env, seed=policy_seed)
    start = time.perf_counter()
    obs, info = env.reset(seed=env_seed)
    curve, seconds, rewards, kept = [info["test_mean_accuracy"]], [], [0.0], [0]
    done = False
    while not done:
        t0 = time.perf_counter()
        action = policy.act(obs, info)
        obs, reward, done, _, info = env.step(action)
        policy.observe(obs, reward, info)
        seconds.append(time.perf_counter() - t0)
        curve.append(info["test_mean_accuracy"])
        rewards.append(float(reward))
        kept.append(int(info["kept"]))
        if progress is not None:
            progress(1)
    return {
        "iteration": list(range(len(curve))),
        "test_accuracy": curve,
        "reward": rewards,
        "kept": kept,
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
    difference to ``uniform``, the mean reward per iteration (``reward``, in accuracy points),
    the ``floor`` (root mean square of the ``no-new-data`` control's rewards after its one
    iteration with data; NaN without the control) and the median seconds per iteration.
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
                     "data": float(sum(res["data_per_skill"].values())), "iteration_seconds": float(np.median(res["iteration_seconds"])),
                     "reward": 100.0 * float(np.mean(res["reward"][1:]))})
    per_run = pd.DataFrame(rows)
    summary = (
        per_run.groupby(["domain", "policy", "skill"], sort=False)
        .agg(mean=("test_accuracy", "mean"), min=("test_accuracy", "min"), max=("test_accuracy", "max"),
             data=("data", "mean"), iteration_seconds=("iteration_seconds", "median"), seeds=("seed", "count"),
             reward=("reward", "mean"))
        .reset_index()
    )
    floor = {d: noise_floor([res for r, res in zip(runs, results) if r["variant"] == d and r["teacher"] == CONTROL])
             for d in dict.fromkeys(r["variant"] for r in runs)}
    summary["floor"] = [floor[d] if k == "mean" else np.nan for d, k in zip(summary["domain"], summary["skill"])]
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


def noise_floor(control_results: list[dict[str, Any]]) -> float:
    """Root mean square (accuracy points) of the control's rewards after its first iteration; NaN without any."""
    later = [r for res in control_results for r in res["reward"][2:]]
    return 100.0 * float(np.sqrt(np.mean(np.square(later)))) if later else float("nan")


def format_datagen(summary: pd.DataFrame) -> str:
    """Final test accuracy (%) as text: per domain, one row per policy, one column per skill, then
    the gap to uniform, the mean reward per iteration beside the no-new-data floor, and seconds."""
    blocks = []
    for domain, part in summary.groupby("domain", sort=False):
        part = part.assign(policy=part["policy"].map(policy_label))
        table = part.pivot_table(index="policy", columns="skill", values="mean", sort=False)
        table = table[[c for c in dict.fromkeys(part["skill"]) if c != "mean"] + ["mean"]]
        means = part[part["skill"] == "mean"].set_index("policy")
        table["vs_uniform"] = means["vs_uniform"]
        table["reward/iter"] = means["reward"]
        table["floor"] = means["floor"]
        table["s/iter"] = means["iteration_seconds"]
        floor = means["floor"].iloc[0]
        head = f"[{domain}]" + ("" if np.isnan(floor) else f"  reward noise floor (no new data): ±{floor:.2f} points")
        blocks.append(head + "\n" + table.to_string(float_format=lambda v: f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"))
    return "\n\n".join(blocks)
