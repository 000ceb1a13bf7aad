"""Figures of runs: task heatmaps in task units over a chosen pair of dimensions, one colour per
teacher in every figure, a colour bar on the GMM plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from teachgym.benchmarks import plots
from teachgym.benchmarks.report import make_report

NAMES = ["pole_length", "pole_mass", "cart_mass", "gravity", "force_mag"]
LOW, HIGH = [0.2, 0.05, 0.5, 2.0, 0.1], [3.0, 2.0, 5.0, 50.0, 15.0]


@pytest.fixture
def figures(monkeypatch) -> list:
    """The figures the plots draw, kept open instead of written."""
    drawn: list = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, dpi=110: drawn.append(fig))
    return drawn


def _train_runs(root: Path) -> None:
    """Two `teachgym train` folders on a 5-dimension task space, evaluated at steps 0, 4096, 8192."""
    for teacher in ("random", "alp-gmm"):
        folder = root / teacher
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({
            "config": {"env": "teachgym/ContextualCartPole-v0", "teacher": teacher, "seed": 0},
            "status": "complete", "task_space": {"low": LOW, "high": HIGH, "names": NAMES}}))
        (folder / "eval.csv").write_text("step,episodes,mastered_pct,mean_return,wall_s\n"
                                         "0,0,0,10,1\n4096,50,10,30,2\n8192,90,20,50,3\n")
        hist = " ".join(["0"] * 10), "5 5 0 0 0 0 0 0 0 0", "0 0 0 0 0 0 0 0 1 9"
        (folder / "teacher.csv").write_text("step," + ",".join(f"hist_{n}" for n in NAMES) + "\n" + "\n".join(
            f"{step}," + ",".join([h] * len(NAMES)) for step, h in zip((0, 4096, 8192), hist)) + "\n")


def test_train_heatmaps_start_at_step_0_in_task_units_over_the_chosen_pair(tmp_path, figures):
    _train_runs(tmp_path)
    make_report(tmp_path, reps=20, dims="gravity,pole_length")
    (heatmap,) = [f for f in figures if f._suptitle is not None and "choose with --dims" in f._suptitle.get_text()]
    axes = [ax for ax in heatmap.axes if ax.get_ylabel()]  # the colour bar's label is on its own axes
    assert [ax.get_ylabel().split("\n")[-1] for ax in axes[:2]] == ["gravity", "pole_length"]
    assert axes[0].get_xlim() == (0.0, 8192.0)  # no empty period before step 0
    assert axes[0].get_ylim() == (2.0, 50.0) and axes[1].get_ylim() == (0.2, 3.0)  # task units
    assert "of 5" in heatmap._suptitle.get_text()


def test_heatmaps_show_the_first_two_dimensions_by_default_and_refuse_unknown_ones(tmp_path, figures):
    _train_runs(tmp_path)
    make_report(tmp_path, reps=20)
    (heatmap,) = [f for f in figures if f._suptitle is not None and "choose with --dims" in f._suptitle.get_text()]
    assert [ax.get_ylabel().split("\n")[-1] for ax in heatmap.axes[:2]] == ["pole_length", "pole_mass"]
    assert "pole_length, pole_mass of 5" in heatmap._suptitle.get_text()
    with pytest.raises(ValueError, match="no task dimension 'wings'; expected names or indices among 0: pole_length"):
        make_report(tmp_path, out=tmp_path / "other", reps=20, dims="wings,gravity")
    with pytest.raises(ValueError, match="expected a pair of task dimensions"):
        make_report(tmp_path, out=tmp_path / "other", reps=20, dims="gravity")
    assert not (tmp_path / "other").exists()


def test_each_teacher_has_one_colour_in_curves_png_and_in_the_reports_curves(figures):
    curves = pd.DataFrame({"episode": [0, 1] * 3, "mastered_pct": [0, 1] * 3, "variant": "default",
                           "teacher": ["my-policy"] * 2 + ["alp-gmm"] * 2 + ["random"] * 2})
    bands = pd.DataFrame({"challenge": "default", "x": [0, 1] * 3, "iqm": 1.0, "low": 0.0, "high": 2.0,
                          "teacher": ["random"] * 2 + ["my-policy"] * 2 + ["alp-gmm"] * 2})
    plots.plot_learning_curves(curves, "unused.png")
    plots.plot_curve_bands(bands, "unused.png")

    def colours(fig) -> dict:
        return {line.get_label(): (line.get_color(), line.get_linestyle()) for line in fig.axes[0].get_lines()}

    assert colours(figures[0]) == colours(figures[1])
    assert len(set(colours(figures[0]).values())) == 3
    # a registered teacher's colour does not depend on the others in the figure
    assert plots.teacher_styles(["alp-gmm"])["alp-gmm"] == plots.teacher_styles(["sec", "alp-gmm", "x"])["alp-gmm"]


def test_the_gmm_plot_has_a_colour_bar_for_the_component_alp(figures):
    state = {"teacher": "alp-gmm", "task_space": {"low": [0, 0, 0], "high": [3, 6, 1], "names": ["h", "s", "n"]},
             "state": {"mixture": {"weights": [0.5, 0.5], "means": [[0.2, 0.2, 0.1, 0.05], [0.7, 0.6, 0.2, 0.3]],
                                   "covariances": np.tile(np.eye(4) * 0.01, (2, 1, 1)).tolist()}}}
    mix = plots.mixture_ellipses(state, (0, 2))
    plots.plot_gmm_ellipses([("alp-gmm", mix)], "unused.png")
    (fig,) = figures
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "component ALP"]
    assert bars and bars[0].get_ylim() == pytest.approx((0.05, 0.3))  # the components' ALP range
    assert fig.axes[0].get_xlabel() == "h" and fig.axes[0].get_ylabel() == "n"
    assert "of 3" in fig.axes[0].get_title()
