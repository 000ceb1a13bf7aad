"""The ``toy`` suite: teachers on simulated students.

Students: ``grid`` (teachDeepRL's continuous benchmark, a Box task space) and ``skills`` (skills
with prerequisites, a discrete task space), each with its challenge variants. One run = one
teacher x one student variant x one seed for ``episodes`` episodes; the percentage mastered is
recorded every ``eval_every`` episodes, with the seconds the teacher spent in ``sample`` and
``update``. A teacher that does not support a student's space runs through an adapter
(:mod:`teachgym.adapters`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from teachgym.benchmarks.plots import plot_learning_curves
from teachgym.benchmarks.runner import execute
from teachgym.io import write_text
from teachgym.spaces import count_tasks
from teachgym.students.simulated import GRID_VARIANTS, make_grid_student
from teachgym.students.skills import SKILLS_VARIANTS, make_skills_student
from teachgym.teacher import make_teacher, parse_teacher_spec

#: Student families: (factory(variant, seed), variants).
STUDENTS: dict[str, tuple[Callable[..., Any], dict[str, dict[str, Any]]]] = {
    "grid": (make_grid_student, GRID_VARIANTS),
    "skills": (make_skills_student, SKILLS_VARIANTS),
}


@dataclass
class ToyConfig:
    """What ``teachgym bench toy`` runs; the CLI reads these defaults."""

    teachers: tuple[str, ...] = ("random", "alp-gmm")
    variants: tuple[str, ...] = ("default",)  # "all": every variant of each student
    students: tuple[str, ...] = ("grid",)
    seeds: int = 3
    episodes: int = 20_000
    eval_every: int = 1_000
    teacher_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self) -> None:
        """``ValueError`` for unknown teachers or variants and non-positive sizes."""
        for spec in self.teachers:
            parse_teacher_spec(spec)
        for student in self.students:
            if student not in STUDENTS:
                raise ValueError(f"unknown student {student!r}; expected some of {sorted(STUDENTS)}")
            known = STUDENTS[student][1]
            for v in self.variants:
                if v != "all" and v not in known:
                    raise ValueError(f"unknown {student} variant {v!r}; expected some of {sorted(known)} or 'all'")
        for key in ("seeds", "episodes", "eval_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")

    def runs(self) -> list[dict[str, Any]]:
        """One description per (variant, teacher, seed)."""
        return [
            {
                "student": student,
                "teacher": t,
                "variant": v,
                "seed": s,
                "episodes": self.episodes,
                "eval_every": self.eval_every,
                "teacher_kwargs": self.teacher_kwargs.get(t, {}),
            }
            for student in self.students
            for v in (STUDENTS[student][1] if "all" in self.variants else self.variants)
            for t in self.teachers
            for s in range(self.seeds)
        ]


def run_toy(
    teacher: str,
    variant: str,
    seed: int,
    episodes: int,
    eval_every: int,
    teacher_kwargs: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    student: str = "grid",
) -> dict[str, Any]:
    """Train a simulated student with a teacher; returns the curve and the teacher's time.

    ``teacher`` is a name or a spec with hyper-parameters (``"alp-gmm:fit_rate=100"``).

    Returns
    -------
    dict
        ``episode`` and ``mastered_pct`` (lists, from episode 0), ``teacher_seconds`` (time in
        ``sample`` + ``update``), ``wall_seconds`` and ``cpu_seconds`` (this process's CPU time,
        which load from other processes hardly changes); for ``teachgym plot``'s heatmaps,
        ``task_counts`` (per evaluation period, per dimension, 10 bins over ``task_low`` ..
        ``task_high``), ``task_names`` and, for GMM teachers, the last mixture (``teacher_state``).
    """
    student_seed, teacher_seed = np.random.SeedSequence(seed).spawn(2)
    learner = STUDENTS[student][0](variant, seed=student_seed)
    name, spec_kwargs = parse_teacher_spec(teacher)
    kwargs = {**spec_kwargs, **(teacher_kwargs or {})}
    tutor = make_teacher(name, learner.task_space, seed=teacher_seed, task_names=getattr(learner, "task_names", None), adapt=True, **kwargs)
    tutor.bind(**learner.teacher_hooks())
    clock = time.perf_counter
    start, cpu_start = clock(), time.process_time()
    spent = 0.0
    curve_ep, curve_pct = [0], [100.0 * learner.mastered_fraction()]
    space = tutor.task_space
    period: list[Any] = []  # tasks since the last evaluation, for the sampling heatmaps
    counts: list[list[list[int]]] = []
    for ep in range(1, episodes + 1):
        t0 = clock()
        task = tutor.sample()
        t1 = clock()
        score = learner.train(task) if tutor.train_on_last_sample else learner.evaluate(task)
        t2 = clock()
        tutor.update(task, score)
        spent += (t1 - t0) + (clock() - t2)
        period.append(task)
        if ep % eval_every == 0 or ep == episodes:
            counts.append(count_tasks(np.array([space.vector(t) for t in period]), space.low, space.high).tolist())
            period.clear()
            curve_ep.append(ep)
            curve_pct.append(100.0 * learner.mastered_fraction())
            if progress is not None:
                progress(ep - curve_ep[-2])
    return {
        "episode": curve_ep,
        "mastered_pct": curve_pct,
        "teacher_seconds": spent,
        "wall_seconds": clock() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "task_counts": counts,
        "task_low": space.low.tolist(),
        "task_high": space.high.tolist(),
        "task_names": list(space.names),
        **_mixture_state(tutor),
    }


def _mixture_state(tutor: Any) -> dict[str, Any]:
    """The last Gaussian mixture of a GMM teacher (ALP-GMM, Covar-GMM), for ``teachgym plot``'s ellipses."""
    mixture = getattr(tutor, "mixture", None)
    if mixture is None or not hasattr(mixture, "to_dict"):
        return {}
    return {"teacher_state": {"teacher": tutor.name, "task_space": tutor.task_space.describe(),
                              "state": {"mixture": {k: np.asarray(v).tolist() for k, v in mixture.to_dict().items()}}}}


def bench_toy(config: ToyConfig, out: str, jobs: int | None = None, backend: str = "local") -> pd.DataFrame:
    """Run the suite (resuming finished runs), write CSVs and the PNG, return the summary table.

    Each run lands in ``out/runs/<run_id>/`` (``curve.csv``: episode, mastered_pct; ``meta.json``;
    see :mod:`teachgym.benchmarks.runner`). Writes ``curves.csv`` (every evaluation),
    ``summary.csv`` (one row per variant and teacher: final % mastered median/min/max and teacher
    seconds) and ``curves.png`` under ``out``. ``backend``: ``"local"`` or ``"ray"``.
    """
    config.validate()
    runs = config.runs()
    results = execute(run_toy, runs, out, units=lambda r: r["episodes"], jobs=jobs, desc="toy",
                      curve=("episode", "mastered_pct"), suite="toy", backend=backend)
    rows = [
        {"variant": f"{r['student']}/{r['variant']}", "teacher": r["teacher"], "seed": r["seed"], "episode": e, "mastered_pct": m}
        for r, res in zip(runs, results)
        for e, m in zip(res["episode"], res["mastered_pct"])
    ]
    curves = pd.DataFrame(rows)
    per_run = pd.DataFrame(
        {
            "variant": f"{r['student']}/{r['variant']}",
            "teacher": r["teacher"],
            "seed": r["seed"],
            "final_mastered_pct": res["mastered_pct"][-1],
            "teacher_seconds": res["teacher_seconds"],
            "cpu_seconds": res.get("cpu_seconds", np.nan),  # absent from results of the first format
        }
        for r, res in zip(runs, results)
    )
    summary = (
        per_run.groupby(["variant", "teacher"], sort=False)
        .agg(
            median=("final_mastered_pct", "median"),
            min=("final_mastered_pct", "min"),
            max=("final_mastered_pct", "max"),
            teacher_seconds=("teacher_seconds", "median"),
            seeds=("seed", "count"),
        )
        .reset_index()
    )
    out_dir = Path(out)
    write_text(out_dir / "curves.csv", curves.to_csv(index=False))
    write_text(out_dir / "per_run.csv", per_run.to_csv(index=False))
    write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    plot_learning_curves(curves, out_dir / "curves.png", ylabel="% mastered")
    return summary


def format_summary(summary: pd.DataFrame, markdown: bool = False) -> str:
    """The summary as text: one row per teacher, one column per variant ("median [min, max]").

    ``markdown=True`` gives a Markdown table (for READMEs and reports).
    """
    if summary["variant"].nunique() == 1 and not markdown:
        return summary.to_string(index=False, float_format=lambda v: f"{v:.2f}")
    cells = summary.assign(
        result=[f"{m:.0f} [{lo:.0f}, {hi:.0f}]" for m, lo, hi in zip(summary["median"], summary["min"], summary["max"])]
    )
    table = cells.pivot(index="teacher", columns="variant", values="result")
    table = table.reindex(index=list(dict.fromkeys(summary["teacher"])), columns=list(dict.fromkeys(summary["variant"])))
    seconds = summary.groupby("teacher", sort=False)["teacher_seconds"].median().rename("teacher_s")
    table = table.join(seconds.map(lambda v: f"{v:.2f}"))
    if not markdown:
        return table.to_string()
    header = ["teacher", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join([str(idx), *map(str, row)]) + " |" for idx, row in table.iterrows()]
    return "\n".join(lines)
