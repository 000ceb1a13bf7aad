"""Plots of benchmark results (matplotlib, written atomically as PNG)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
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
