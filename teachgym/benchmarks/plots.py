"""Plots of benchmark results (matplotlib, written atomically as PNG)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from teachgym.io import atomic_path  # noqa: E402

LINE_STYLES = ("-", "--", ":", "-.")
#: The teachers most figures hold come first, so that they get tab10's first, most distinct colours.
FIRST_TEACHERS = ("random", "alp-gmm", "covar-gmm", "riac", "adr", "goal-gan", "spdl", "setter-solver", "plr", "sfl")


def teacher_styles(names: list[str]) -> dict[str, tuple[tuple, str]]:
    """One (colour, line style) per teacher, the same in every figure of every results directory.

    A registered teacher's name always gets the same pair (the common ones first, then the
    registry in order: ten tab10 colours, solid, then dashed, dotted, dash-dotted); any other name
    (a spec such as ``alp-gmm:fit_rate=100``, a baseline policy) takes the next pairs in
    alphabetical order, so that two figures of the same names agree whatever order they list them in.
    """
    from teachgym.teacher import list_teachers

    fixed = list(dict.fromkeys([*FIRST_TEACHERS, *list_teachers()]))
    slots = {name: i for i, name in enumerate(fixed)}
    others = sorted(n for n in dict.fromkeys(names) if n not in slots)
    slots.update({name: len(fixed) + i for i, name in enumerate(others)})
    colours = plt.get_cmap("tab10")
    return {name: (colours(slots[name] % 10), LINE_STYLES[(slots[name] // 10) % len(LINE_STYLES)])
            for name in dict.fromkeys(names)}


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
    styles = teacher_styles(list(dict.fromkeys(curves[line])))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows + 0.4), squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, panels):
        sub = curves[curves[panel] == name]
        for label, group in sub.groupby(line, sort=False):
            stats = group.groupby(x)[y].agg(["median", "min", "max"])
            colour, style = styles[label]
            ax.plot(stats.index, stats["median"], label=label, color=colour, linestyle=style)
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
    _save(fig, path)


# ----------------------------------------------------------------------------- rliable-style figures
# The functions below draw the tables of :mod:`teachgym.benchmarks.stats` and the extras of
# :mod:`teachgym.benchmarks.results`; ``teachgym plot RUN_DIR`` (:mod:`teachgym.benchmarks.report`)
# calls them all.


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
    styles = teacher_styles(teachers)
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    legend_rows = -(-len(teachers) // 6)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows + 0.3 * legend_rows), squeeze=False)
    for ax, name in zip(axes.flat, panels):
        sub = bands[bands["challenge"] == name]
        for teacher in teachers:
            rows = sub[sub["teacher"] == teacher]
            if rows.empty:
                continue
            colour, style = styles[teacher]
            ax.plot(rows["x"], rows["iqm"], color=colour, linestyle=style, label=teacher, lw=1.4)
            ax.fill_between(rows["x"], rows["low"], rows["high"], color=colour, alpha=0.15, lw=0)
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
    colours = {name: colour for name, (colour, _) in teacher_styles(teachers).items()}
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


def pick_dims(names: tuple[str, ...] | list[str], wanted: str | tuple | list | None = None, count: int = 2) -> list[int]:
    """Indices of the task dimensions to draw: ``wanted`` (names or indices, a comma-separated
    string or a sequence), or the first ``count``. ``ValueError`` naming the dimensions there are."""
    names = list(names)
    if wanted is None:
        return list(range(min(count, len(names))))
    items = [w.strip() for w in wanted.split(",") if w.strip()] if isinstance(wanted, str) else list(wanted)
    picked = []
    for item in items:
        if isinstance(item, str) and item in names:
            picked.append(names.index(item))
        elif str(item).lstrip("-").isdigit() and 0 <= int(item) < len(names):
            picked.append(int(item))
        else:
            raise ValueError(f"no task dimension {item!r}; expected names or indices among "
                             f"{', '.join(f'{i}: {n}' for i, n in enumerate(names))}")
    if not picked or len(set(picked)) != len(picked):
        raise ValueError(f"expected distinct task dimensions, got {wanted!r}")
    return picked


def dims_note(names: tuple[str, ...] | list[str], dims: list[int]) -> str:
    """``"task dimensions length, mass of 5 (choose with --dims)"``; ``""`` when all are drawn."""
    if len(dims) >= len(names):
        return ""
    return (f"task dimensions {', '.join(names[d] for d in dims)} of {len(names)}: "
            f"{', '.join(names)} (choose with --dims)")


def plot_task_heatmaps(items: list[tuple[str, object]], path: str | os.PathLike,
                       dims: str | tuple | list | None = None) -> None:
    """Where teachers sampled over time: one row per item, one panel per chosen task dimension.

    ``items``: (label, :class:`teachgym.benchmarks.results.TaskCounts`). Each column of a panel is
    an evaluation period, from the end of the previous one (the run's start for the first) to its
    end; colour is the fraction of that period's tasks falling in each bin, the bins in task units.
    ``dims``: names or indices (:func:`pick_dims`), default the first two; a note says how many
    dimensions the space has when some are left out.
    """
    if not items:
        raise ValueError("no sampled-task counts to draw")
    names = max((c.names for _, c in items), key=len)
    chosen = pick_dims(names, dims)
    fig, axes = plt.subplots(len(items), len(chosen), figsize=(4.2 * len(chosen) + 0.6, 1.9 * len(items) + 0.6),
                             squeeze=False)
    image = None
    for row, (label, counts) in zip(axes, items):
        totals = counts.counts.sum(axis=2, keepdims=True)
        share = counts.counts / np.where(totals > 0, totals, 1)
        x_edges = np.concatenate([[counts.start], np.asarray(counts.x, float)])
        for d, ax in zip(chosen, row):
            if d >= share.shape[1]:
                ax.axis("off")
                continue
            y_edges = np.linspace(counts.low[d], counts.high[d], share.shape[2] + 1)
            image = ax.pcolormesh(x_edges, y_edges, share[:, d, :].T, cmap="viridis", vmin=0, vmax=1, shading="flat")
            ax.set_ylabel(f"{label}\n{counts.names[d]}" if d == chosen[0] else counts.names[d], fontsize=8)
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("end of period")
    note = dims_note(names, chosen)
    if note:
        fig.suptitle(note, fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, label="share of the period's tasks")
    _save(fig, path)


def task_pair_figure(tasks: np.ndarray, low: np.ndarray, high: np.ndarray, names: tuple[str, ...] | list[str],
                     dims: tuple[int, int] = (0, 1), bins: int = 20, title: str = "") -> plt.Figure:
    """A 2-D histogram of ``tasks`` (``(n, dims)``, task units) over two dimensions, with axes in
    task units and a colour bar (e.g. for TensorBoard's ``add_figure``, about 480 x 400 px)."""
    a, b = dims
    fig, ax = plt.subplots(figsize=(4.8, 4.0), dpi=100)
    counts, x_edges, y_edges = np.histogram2d(tasks[:, a], tasks[:, b], bins=bins,
                                              range=[(float(low[a]), float(high[a])), (float(low[b]), float(high[b]))])
    image = ax.pcolormesh(x_edges, y_edges, counts.T, cmap="viridis", shading="flat")
    ax.set_xlabel(names[a])
    ax.set_ylabel(names[b])
    note = dims_note(names, [a, b])
    ax.set_title(f"{title}\n{note}" if note and title else title or note, fontsize=8)
    fig.colorbar(image, ax=ax, label="tasks")
    fig.tight_layout()
    return fig


def mixture_ellipses(state: dict, dims: tuple[int, int] = (0, 1)) -> dict | None:
    """A GMM teacher's mixture over two task dimensions, in task units, from its ``state_dict``.

    Returns ``{"means" (k, 2), "covariances" (k, 2, 2), "weights" (k,), "colour_values" (k,),
    "colour_label", "low", "high", "names", "note"}``, or None when the state holds no fitted mixture
    (``note`` says how many dimensions the space has when it has more than two).
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
    names = list(space.get("names") or [f"dim{d}" for d in range(low.size)])
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
        "names": [names[d] for d in dims],
        "note": dims_note(names, list(dims)),
    }


def plot_gmm_ellipses(items: list[tuple[str, dict]], path: str | os.PathLike) -> None:
    """Each GMM teacher's last mixture as 2-sigma ellipses over two task dimensions, coloured by
    the component's ALP (or weight) with a colour bar.

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
        low_value, high_value = (values.min(), values.max()) if span > 0 else (values.min() - 0.5, values.min() + 0.5)
        scale = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(low_value, high_value), cmap)
        fig.colorbar(scale, ax=ax, label=mix["colour_label"], fraction=0.046, pad=0.03)
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
        ax.set_title(f"{label}: {len(values)} components" + (f"\n{mix['note']}" if mix.get("note") else ""), fontsize=9)
    for ax in axes.flat[len(items):]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path)
