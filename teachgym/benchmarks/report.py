"""``teachgym plot RUN_DIR``: statistics, figures and a one-page Markdown report of a results directory.

Reads every run under ``RUN_DIR`` (:func:`teachgym.benchmarks.results.find_runs`), computes IQM
with stratified-bootstrap intervals and the probability of improvement over a baseline
(:mod:`teachgym.benchmarks.stats`), and writes into ``RUN_DIR/report/`` (or ``out``):

* ``learning_curves.png`` — IQM over seeds and 95% band per challenge, plus all challenges;
* ``aggregate.png`` — IQM and P(improvement over the baseline) per teacher, with intervals;
* ``radar.png`` — per-challenge IQM, one radar per teacher (three challenges or more);
* ``tasks_<challenge>.png`` — where each teacher sampled over time, when runs stored task counts;
* ``gmm_<challenge>.png`` — GMM teachers' last mixtures, when runs stored the teacher state;
* ``aggregate.csv``, ``per_challenge.csv`` and ``report.md``, which embeds the figures.

The directory is read completely before anything is written, so a corrupt or foreign
directory raises ``ValueError`` and is left as it was. Every file is written atomically, and a
``report.md`` that this module did not write is never replaced.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from teachgym.benchmarks import plots, stats
from teachgym.benchmarks.results import Run, default_metric, find_runs, runs_table
from teachgym.io import write_text

#: First line of every report this module writes (how a rerun knows the file is its own).
MARKER = "<!-- written by teachgym plot -->"
#: Axis labels of known metrics.
LABELS = {"mastered_pct": "% mastered", "test_accuracy": "test accuracy", "mean_return": "mean return"}
#: Baselines tried in order when none is given.
DEFAULT_BASELINES = ("random", "uniform")


def make_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    metric: str | None = None,
    baseline: str | None = None,
    reps: int = stats.DEFAULT_REPS,
    seed: int = 0,
    dims: str | tuple | list | None = None,
) -> list[Path]:
    """Write the figures, tables and ``report.md`` of ``run_dir``; return the written paths.

    Parameters
    ----------
    run_dir
        A results directory (any layout of :mod:`teachgym.benchmarks.results`).
    out
        Where to write (default ``run_dir/report``).
    metric
        The score (default: ``mastered_pct`` when present, see ``default_metric``).
    baseline
        Teacher the probability of improvement is measured against; default: ``random`` (or the
        data-generation suite's ``uniform``) when the runs hold it, else none.
    reps, seed
        Bootstrap replicates and the seed of their generator.
    dims
        The pair of task dimensions the sampling heatmaps and GMM ellipses show: names or indices,
        ``"length,mass"`` or ``(0, 2)``; default the first two (the figures then say how many
        dimensions there are).

    Raises
    ------
    ValueError
        For a directory without runs, a corrupt run, an unknown metric or baseline, or an
        ``out/report.md`` this module did not write.
    """
    if reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    runs = find_runs(run_dir)
    if dims is not None:  # a bad choice is an error before anything is written
        count = len([d for d in dims.split(",") if d.strip()]) if isinstance(dims, str) else len(dims)
        if count != 2:
            raise ValueError(f"dims: expected a pair of task dimensions such as 'length,mass' or '0,2', got {dims!r}")
        for run in runs:
            if run.task_counts is not None:
                plots.pick_dims(run.task_counts.names, dims)
    table = runs_table(runs)
    metric = metric or default_metric(table)
    if metric not in set(table["metric"]):
        raise ValueError(f"no metric {metric!r} in {run_dir}; present: {sorted(set(table['metric']))}")
    out_dir = Path(out) if out is not None else Path(run_dir) / "report"
    report_md = out_dir / "report.md"
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a directory")
    if report_md.exists() and not report_md.read_text(errors="replace").startswith(MARKER):
        raise ValueError(f"{report_md} was not written by teachgym plot; choose another --out")

    label = LABELS.get(metric, metric)
    x_name = Counter(r.x_name for r in runs).most_common(1)[0][0]
    final = stats.final_scores(table, metric)
    teachers = set(final["teacher"])
    if baseline is not None and baseline not in teachers:
        raise ValueError(f"baseline {baseline!r} is not among the teachers of {run_dir}: {sorted(teachers)}")
    base = baseline if baseline is not None else next((t for t in DEFAULT_BASELINES if t in teachers), None)
    aggregate = stats.aggregate_table(final, base, reps=reps, seed=seed)
    per_challenge = stats.per_challenge_table(final, reps=reps, seed=seed)
    bands = stats.curve_intervals(table, metric, reps=min(reps, 1_000), seed=seed)

    written: list[Path] = []
    figures: list[tuple[str, str]] = []

    def figure(name: str, title: str, draw) -> None:
        draw(out_dir / name)
        written.append(out_dir / name)
        figures.append((title, name))

    figure("learning_curves.png", f"Learning curves (IQM over seeds, 95% bootstrap band) — {label}",
           lambda p: plots.plot_curve_bands(bands, p, xlabel=x_name, ylabel=label))
    figure("aggregate.png", "IQM and probability of improvement, 95% stratified bootstrap intervals",
           lambda p: plots.plot_aggregate(aggregate, p, label=label, baseline=base))
    challenges = list(dict.fromkeys(final["challenge"]))
    notes = []
    if len(challenges) >= 3:
        order = list(aggregate["teacher"])
        figure("radar.png", "Per-challenge IQM (TeachMyAgent-style radar)",
               lambda p: plots.plot_radar(per_challenge, p, baseline=base, label=label, teachers=order))
    else:
        notes.append(f"Radar chart skipped: it needs three challenges or more, these results have {len(challenges)}.")
    notes += _task_figures(runs, aggregate, out_dir, figure, dims)
    notes += _gmm_figures(runs, out_dir, figure, dims)

    for name, frame in (("aggregate.csv", aggregate), ("per_challenge.csv", per_challenge)):
        write_text(out_dir / name, frame.to_csv(index=False))
        written.append(out_dir / name)
    write_text(report_md, _markdown(run_dir, runs, metric, label, base, reps, aggregate, per_challenge, figures, notes))
    written.append(report_md)
    return written


def _first_seed(runs: list[Run]) -> dict[tuple[str, str], Run]:
    """The lowest-seed run of every (challenge, teacher)."""
    chosen: dict[tuple[str, str], Run] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        chosen.setdefault((run.challenge, run.teacher), run)
    return chosen


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "challenge"


def _task_figures(runs: list[Run], aggregate: pd.DataFrame, out_dir: Path, figure, dims=None) -> list[str]:
    chosen = {k: r for k, r in _first_seed(runs).items() if r.task_counts is not None}
    if not chosen:
        return ["Sampling heatmaps skipped: no run stored the tasks its teacher sampled "
                "(`task_counts` in a run's result, or `teacher.csv` with `hist_` columns)."]
    rank = {t: i for i, t in enumerate(aggregate["teacher"])}
    for challenge in dict.fromkeys(c for c, _ in chosen):
        items = sorted(((t, r.task_counts) for (c, t), r in chosen.items() if c == challenge), key=lambda i: rank.get(i[0], 0))
        figure(f"tasks_{_slug(challenge)}.png", f"Where the teachers sampled over time — {challenge} (lowest seed)",
               lambda p, items=items: plots.plot_task_heatmaps(items, p, dims))
    return []


def _gmm_figures(runs: list[Run], out_dir: Path, figure, dims=None) -> list[str]:
    found: dict[str, list[tuple[str, dict]]] = {}
    for (challenge, teacher), run in _first_seed(runs).items():
        state = run.teacher_state()
        names = (state or {}).get("task_space", {}).get("names") if isinstance(state, dict) else None
        pair = tuple(plots.pick_dims(names, dims)) if names and dims is not None else (0, 1)
        mix = None if state is None else plots.mixture_ellipses(state, pair)
        if mix is not None:
            found.setdefault(challenge, []).append((teacher, mix))
    if not found:
        return ["GMM ellipses skipped: no run of a GMM teacher stored its state (`teacher.npz` or `teacher_state`)."]
    for challenge, items in found.items():
        figure(f"gmm_{_slug(challenge)}.png", f"Last Gaussian mixtures of the GMM teachers — {challenge}",
               lambda p, items=items: plots.plot_gmm_ellipses(items, p))
    return []


def _md_table(frame: pd.DataFrame) -> str:
    """A Markdown table (no ``tabulate`` dependency)."""
    def cell(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            return "–" if np.isnan(v) else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _markdown(run_dir, runs, metric, label, base, reps, aggregate, per_challenge, figures, notes) -> str:
    seeds = sorted({r.seed for r in runs})
    summary = aggregate[["teacher", "iqm", "iqm_low", "iqm_high", "mean", "p_improve", "p_improve_low", "p_improve_high", "runs"]]
    summary = summary.rename(columns={"iqm": f"IQM {label}", "iqm_low": "low", "iqm_high": "high",
                                      "p_improve": f"P(> {base})" if base else "P(improve)",
                                      "p_improve_low": "P low", "p_improve_high": "P high"})
    grid = per_challenge.assign(cell=[f"{m:.1f} [{lo:.1f}, {hi:.1f}]" for m, lo, hi in
                                      zip(per_challenge["iqm"], per_challenge["low"], per_challenge["high"])])
    grid = grid.pivot(index="teacher", columns="challenge", values="cell")
    grid = grid.reindex(index=list(aggregate["teacher"]), columns=list(dict.fromkeys(per_challenge["challenge"])))
    parts = [
        MARKER,
        f"# teachgym report: `{Path(run_dir).name}`",
        "",
        f"{len(runs)} runs: {per_challenge['teacher'].nunique()} teachers x {per_challenge['challenge'].nunique()} "
        f"challenges, seeds {seeds[0]}..{seeds[-1]}. Score: `{metric}` at each run's last evaluation. "
        f"IQM = mean of the middle 50% of runs; intervals: 95% stratified bootstrap over seeds ({reps} replicates)"
        + (f"; P(> {base}) = probability that a run of the teacher beats a run of {base} on the same challenge." if base else "."),
        "",
        "## Teachers, all challenges",
        "",
        _md_table(summary),
        "",
    ]
    for title, name in figures:
        parts += [f"## {title}", "", f"![{title}]({name})", ""]
    parts += ["## Per challenge: IQM over seeds [95% interval]", "", _md_table(grid.reset_index().fillna("–")), ""]
    if notes:
        parts += ["## Not drawn", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)
