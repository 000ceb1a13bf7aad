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
    """One panel per ``panel`` value, one line per ``line`` value: median over seeds, min-max band."""
    panels = list(dict.fromkeys(curves[panel]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.8), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], panels):
        sub = curves[curves[panel] == name]
        for label, group in sub.groupby(line, sort=False):
            stats = group.groupby(x)[y].agg(["median", "min", "max"])
            (handle,) = ax.plot(stats.index, stats["median"], label=label)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=handle.get_color(), alpha=0.2)
        ax.set_title(str(name))
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(loc="best", fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
