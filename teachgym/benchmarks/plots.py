"""Plots of benchmark results (matplotlib, written atomically as PNG)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from teachgym.io import atomic_path  # noqa: E402


def plot_learning_curves(
    curves: pd.DataFrame,
    path: str | os.PathLike,
    x: str = "episode",
    y: str = "mastered_pct",
    panel: str = "variant",
    line: str = "teacher",
    ylabel: str = "% cells mastered",
) -> None:
    """One panel per ``panel`` value, one line per ``line`` value: median over seeds, min-max band.

    Panels are laid out three to a row; the legend sits under them.
    """
    panels = list(dict.fromkeys(curves[panel]))
    lines = list(dict.fromkeys(curves[line]))
    colours = plt.get_cmap("tab10")  # ten colours, then the same ten dashed, dotted, ...
    styles = ("-", "--", ":", "-.")
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows + 0.4), squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, panels):
        sub = curves[curves[panel] == name]
        for label, group in sub.groupby(line, sort=False):
            stats = group.groupby(x)[y].agg(["median", "min", "max"])
            i = lines.index(label)
            colour = colours(i % 10)
            ax.plot(stats.index, stats["median"], label=label, color=colour, linestyle=styles[(i // 10) % 4])
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.15)
        ax.set_title(str(name))
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(ylabel)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * ((len(labels) - 1) // 6), 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- rliable-style figures
# The functions below draw the tables of :mod:`teachgym.benchmarks.stats` and the extras of
# :mod:`teachgym.benchmarks.results`; ``teachgym plot RUN_DIR`` (:mod:`teachgym.benchmarks.report`)
# calls them all.


def _colour_map(names: list[str]) -> dict[str, tuple]:
    """Stable colour per name, in first-seen order (tab20 for more than ten names)."""
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _save(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def plot_curve_bands(
    bands: pd.DataFrame, path: str | os.PathLike, xlabel: str = "episode", ylabel: str = "% mastered"
) -> None:
    """Learning curves: IQM over seeds and its bootstrap band, one panel per challenge.

    ``bands`` is :func:`teachgym.benchmarks.stats.curve_intervals`'s table; the aggregate
    ``"all"`` panel, when present, comes first.
    """
    panels = sorted(dict.fromkeys(bands["challenge"]), key=lambda c: c != "all")
    teachers = list(dict.fromkeys(bands["teacher"]))
    colours = _colour_map(teachers)
    styles = ("-", "--", ":", "-.")
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    legend_rows = -(-len(teachers) // 6)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows + 0.3 * legend_rows), squeeze=False)
    for ax, name in zip(axes.flat, panels):
        sub = bands[bands["challenge"] == name]
        for i, teacher in enumerate(teachers):
            rows = sub[sub["teacher"] == teacher]
            if rows.empty:
                continue
            ax.plot(rows["x"], rows["iqm"], color=colours[teacher], linestyle=styles[(i // 10) % 4], label=teacher, lw=1.4)
            ax.fill_between(rows["x"], rows["low"], rows["high"], color=colours[teacher], alpha=0.15, lw=0)
        ax.set_title("all challenges (stratified IQM)" if name == "all" else str(name))
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(f"IQM {ylabel}")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.02 + 0.035 * legend_rows / nrows, 1, 1))
    _save(fig, path)


def plot_aggregate(
    aggregate: pd.DataFrame, path: str | os.PathLike, label: str = "% mastered", baseline: str | None = "random"
) -> None:
    """Two interval plots: each teacher's IQM with its 95% interval, and its probability of
    improvement over ``baseline`` (``aggregate``: :func:`teachgym.benchmarks.stats.aggregate_table`)."""
    table = aggregate.iloc[::-1]  # best at the top
    y = np.arange(len(table))
    has_p = baseline is not None and table["p_improve"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_p else 1, figsize=(11 if has_p else 6, 0.32 * len(table) + 1.2), squeeze=False)
    ax = axes[0, 0]
    ax.hlines(y, table["iqm_low"], table["iqm_high"], color="tab:blue", lw=6, alpha=0.45)
    ax.plot(table["iqm"], y, "|", color="black", ms=12)
    ax.set_yticks(y, table["teacher"])
    ax.set_xlabel(f"IQM {label} (95% stratified bootstrap CI)")
    ax.grid(axis="x", alpha=0.3)
    if has_p:
        ax = axes[0, 1]
        ok = table["p_improve"].notna().to_numpy()
        ax.hlines(y[ok], table["p_improve_low"][ok], table["p_improve_high"][ok], color="tab:orange", lw=6, alpha=0.55)
        ax.plot(table["p_improve"][ok], y[ok], "|", color="black", ms=12)
        ax.axvline(0.5, color="grey", ls="--", lw=1)
        ax.set_xlim(-0.02, 1.02)
        ax.set_yticks(y, table["teacher"])
        ax.set_xlabel(f"P(teacher > {baseline})")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def plot_radar(
    per_challenge: pd.DataFrame, path: str | os.PathLike, baseline: str | None = "random", label: str = "% mastered",
    teachers: list[str] | None = None,
) -> None:
    """Radar charts (TeachMyAgent style): one axis per challenge, the teacher's IQM over seeds.

    One small radar per teacher, the ``baseline``'s polygon dashed in each, so that 20 teachers
    stay readable. ``per_challenge``: :func:`teachgym.benchmarks.stats.per_challenge_table`.
    The radius is the metric itself when it lies in [0, 100] (or [0, 1]), else the value over the
    best teacher's on that challenge.
    """
    challenges = list(dict.fromkeys(per_challenge["challenge"]))
    if len(challenges) < 3:
        raise ValueError(f"a radar needs at least three challenges, got {challenges}")
    values = per_challenge.pivot_table(index="teacher", columns="challenge", values="iqm", aggfunc="first")[challenges]
    lo, hi = float(values.min().min()), float(values.max().max())
    scaled = not (lo >= 0 and hi <= 100)
    if scaled:
        values = values / values.abs().max().replace(0, 1)
    top = 1.0 if scaled or hi <= 1 else 100.0  # fractions in [0, 1] keep their own scale
    teachers = teachers or list(dict.fromkeys(per_challenge["teacher"]))
    ncols = min(4, len(teachers))
    nrows = -(-len(teachers) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 3.4 * nrows), subplot_kw={"projection": "polar"},
                             squeeze=False)
    angles = np.linspace(0, 2 * np.pi, len(challenges), endpoint=False)
    closed = np.append(angles, angles[0])
    short = [c.split("/")[-1].replace("_", "\n") for c in challenges]
    colours = _colour_map(teachers)
    for ax, teacher in zip(axes.flat, teachers):
        if baseline in values.index and teacher != baseline:
            ax.plot(closed, np.append(values.loc[baseline], values.loc[baseline].iloc[0]), "--", color="grey", lw=1)
        if teacher in values.index:
            row = values.loc[teacher].to_numpy(float)
            ax.plot(closed, np.append(row, row[0]), color=colours[teacher], lw=1.5)
            ax.fill(closed, np.append(row, row[0]), color=colours[teacher], alpha=0.25)
        ax.set_ylim(0, top)
        ax.set_xticks(angles, short, fontsize=7)
        ax.set_yticks(np.linspace(0, top, 5)[1:], [], fontsize=6)
        ax.set_title(teacher, fontsize=10, pad=12)
    for ax in axes.flat[len(teachers):]:
        ax.axis("off")
    note = f"radius: IQM {label} (0 to {top:g}{', relative to the best teacher' if scaled else ''})" + (f"; dashed: {baseline}" if baseline in values.index else "")
    fig.suptitle(note, fontsize=9, y=0.995)
    fig.tight_layout()
    _save(fig, path)


def plot_task_heatmaps(items: list[tuple[str, object]], path: str | os.PathLike, max_dims: int = 2) -> None:
    """Where teachers sampled over time: one row per item, one panel per task dimension.

    ``items``: (label, :class:`teachgym.benchmarks.results.TaskCounts`). Each column of a panel is
    an evaluation period; colour is the fraction of that period's tasks falling in each bin.
    """
    if not items:
        raise ValueError("no sampled-task counts to draw")
    dims = min(max_dims, max(c.counts.shape[1] for _, c in items))
    fig, axes = plt.subplots(len(items), dims, figsize=(4.2 * dims + 0.6, 1.9 * len(items) + 0.4), squeeze=False)
    image = None
    for row, (label, counts) in zip(axes, items):
        totals = counts.counts.sum(axis=2, keepdims=True)
        share = counts.counts / np.where(totals > 0, totals, 1)
        x = np.asarray(counts.x, float)
        x_edges = np.concatenate([[x[0] - (x[1] - x[0] if len(x) > 1 else 1)], x])
        for d, ax in enumerate(row):
            if d >= share.shape[1]:
                ax.axis("off")
                continue
            y_edges = np.linspace(counts.low[d], counts.high[d], share.shape[2] + 1)
            image = ax.pcolormesh(x_edges, y_edges, share[:, d, :].T, cmap="viridis", vmin=0, vmax=1, shading="flat")
            ax.set_ylabel(f"{label}\n{counts.names[d]}" if d == 0 else counts.names[d], fontsize=8)
            ax.tick_params(labelsize=7)
        row[0].yaxis.label.set_size(8)
    for ax in axes[-1]:
        ax.set_xlabel("end of period")
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, label="share of the period's tasks")
    _save(fig, path)


def mixture_ellipses(state: dict, dims: tuple[int, int] = (0, 1)) -> dict | None:
    """A GMM teacher's mixture over two task dimensions, in task units, from its ``state_dict``.

    Returns ``{"means" (k, 2), "covariances" (k, 2, 2), "weights" (k,), "colour_values" (k,),
    "colour_label", "low", "high", "names"}``, or None when the state holds no fitted mixture.
    ALP-GMM colours components by their mean ALP (the last coordinate), others by weight.
    """
    inner = state.get("state", {}) if isinstance(state, dict) else {}
    mixture = inner.get("mixture") if isinstance(inner, dict) else None
    space = state.get("task_space", {})
    if not mixture or "low" not in space:
        return None
    low, high = np.asarray(space["low"], float), np.asarray(space["high"], float)
    if low.size <= max(dims):
        return None
    width = (high - low)[list(dims)]
    means = np.asarray(mixture["means"], float)
    covs = np.asarray(mixture["covariances"], float)
    idx = np.ix_(range(len(means)), dims)
    alp = state.get("teacher") == "alp-gmm" and means.shape[1] == low.size + 1
    return {
        "means": low[list(dims)] + means[idx] * width,  # mixtures live in the normalised space
        "covariances": covs[:, list(dims)][:, :, list(dims)] * np.outer(width, width),
        "weights": np.asarray(mixture["weights"], float),
        "colour_values": means[:, -1] if alp else np.asarray(mixture["weights"], float),
        "colour_label": "component ALP" if alp else "component weight",
        "low": low[list(dims)], "high": high[list(dims)],
        "names": [space.get("names", [f"dim{d}" for d in range(low.size)])[d] for d in dims],
    }


def plot_gmm_ellipses(items: list[tuple[str, dict]], path: str | os.PathLike) -> None:
    """Each GMM teacher's last mixture as 2-sigma ellipses over the first two task dimensions.

    ``items``: (label, :func:`mixture_ellipses` output).
    """
    from matplotlib.patches import Ellipse

    if not items:
        raise ValueError("no mixtures to draw")
    ncols = min(3, len(items))
    nrows = -(-len(items) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.8 * nrows), squeeze=False)
    cmap = plt.get_cmap("plasma")
    for ax, (label, mix) in zip(axes.flat, items):
        values = mix["colour_values"]
        span = values.max() - values.min()
        scaled = (values - values.min()) / span if span > 0 else np.full_like(values, 0.5)
        for mean, cov, c in zip(mix["means"], mix["covariances"], scaled):
            eigval, eigvec = np.linalg.eigh(cov)
            eigval = np.maximum(eigval, 0)
            angle = np.degrees(np.arctan2(eigvec[1, 1], eigvec[0, 1]))
            ax.add_patch(Ellipse(mean, 4 * np.sqrt(eigval[1]), 4 * np.sqrt(eigval[0]), angle=angle,
                                 facecolor=cmap(c), alpha=0.35, edgecolor=cmap(c), lw=1.2))
            ax.plot(*mean, "k.", ms=3)
        ax.set_xlim(mix["low"][0], mix["high"][0])
        ax.set_ylim(mix["low"][1], mix["high"][1])
        ax.set_xlabel(mix["names"][0])
        ax.set_ylabel(mix["names"][1])
        ax.set_title(f"{label}\n{len(values)} components; colour: {mix['colour_label']}", fontsize=9)
    for ax in axes.flat[len(items):]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path)
