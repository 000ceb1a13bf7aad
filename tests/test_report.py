"""Results loading (teachgym.benchmarks.results) and ``teachgym plot`` (teachgym.benchmarks.report)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from teachgym.benchmarks.report import MARKER, make_report
from teachgym.benchmarks.results import find_runs, load_results
from teachgym.benchmarks.toy import ToyConfig, bench_toy
from teachgym.cli import main
from teachgym.io import write_json
from teachgym.spaces import count_tasks

CHALLENGES = ("default", "rugged", "forgetting")
TEACHERS = ("random", "alp-gmm", "covar-gmm")


def _mixture_state(teacher: str) -> dict:
    k, d = 2, 3 if teacher == "alp-gmm" else 4  # ALP-GMM: task + ALP; Covar-GMM: task + time + score
    return {
        "teacher": teacher,
        "task_space": {"type": "Box", "low": [0.0, 0.0], "high": [1.0, 2.0], "names": ["height", "spacing"]},
        "state": {"mixture": {"weights": [0.5, 0.5], "means": np.full((k, d), 0.3).tolist(),
                              "covariances": np.tile(np.eye(d) * 0.01, (k, 1, 1)).tolist(), "aic": 0.0,
                              "log_likelihood": 0.0, "n_iter": 1}},
    }


def _write_json_runs(root: Path, with_extras: bool = True) -> None:
    """A results directory in the runner's first format, with task counts and GMM states."""
    rng = np.random.default_rng(0)
    for challenge in CHALLENGES:
        for t, teacher in enumerate(TEACHERS):
            for seed in range(3):
                episodes = [0, 100, 200, 300]
                pct = [0.0, *np.cumsum(rng.uniform(0, 5 * (t + 1), 3)).tolist()]
                result = {"episode": episodes, "mastered_pct": pct, "teacher_seconds": 0.1}
                if with_extras:
                    tasks = rng.uniform([0, 0], [1, 2], size=(300, 2))
                    result.update(task_counts=[count_tasks(tasks[i:i + 100], [0, 0], [1, 2]).tolist() for i in (0, 100, 200)],
                                  task_low=[0, 0], task_high=[1, 2], task_names=["height", "spacing"])
                    if teacher != "random":
                        result["teacher_state"] = _mixture_state(teacher)
                run = {"student": "grid", "variant": challenge, "teacher": teacher, "seed": seed}
                write_json(root / "runs" / f"grid-{challenge}__{teacher}__seed{seed}.json", {"run": run, "result": result})


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def test_load_results_reads_runner_json_into_the_long_table(tmp_path):
    _write_json_runs(tmp_path)
    table = load_results(tmp_path)
    assert list(table.columns) == ["suite", "challenge", "teacher", "seed", "x", "x_name", "metric", "value"]
    assert len(table) == len(CHALLENGES) * len(TEACHERS) * 3 * 4  # teacher_seconds is not a curve
    assert set(table["challenge"]) == {f"grid/{c}" for c in CHALLENGES}
    assert set(table["metric"]) == {"mastered_pct"} and set(table["x_name"]) == {"episode"}


def test_plot_command_writes_readable_pngs_and_a_report_that_embeds_them(tmp_path, capsys):
    _write_json_runs(tmp_path)
    assert main(["plot", str(tmp_path), "--reps", "200"]) == 0
    report = tmp_path / "report"
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert {"learning_curves.png", "aggregate.png", "radar.png", "tasks_grid_default.png", "gmm_grid_rugged.png"} <= set(pngs)
    for name in pngs:
        image = mpimg.imread(report / name)
        assert image.shape[0] > 200 and image.shape[1] > 200 and image.std() > 0  # drawn, not blank
    text = (report / "report.md").read_text()
    assert text.startswith(MARKER)
    assert all(f"]({name})" in text for name in pngs)
    assert "| alp-gmm |" in text and "P(> random)" in text
    assert "wrote" in capsys.readouterr().out
    assert main(["plot", str(tmp_path), "--reps", "50"]) == 0  # a rerun replaces its own report


def test_report_notes_what_the_runs_did_not_store(tmp_path):
    _write_json_runs(tmp_path, with_extras=False)
    written = make_report(tmp_path, reps=50)
    assert not any(p.name.startswith(("tasks_", "gmm_")) for p in written)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Sampling heatmaps skipped" in text and "GMM ellipses skipped" in text


@pytest.mark.parametrize("content", ["{not json", '{"run": {"teacher": "x"}}', '[1, 2, 3]'])
def test_corrupt_results_are_an_error_and_nothing_is_written(tmp_path, capsys, content):
    _write_json_runs(tmp_path, with_extras=False)
    (tmp_path / "runs" / "broken.json").write_text(content)
    before = _snapshot(tmp_path)
    assert main(["plot", str(tmp_path)]) == 2
    assert "broken.json" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_a_foreign_directory_is_an_error_and_is_left_alone(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match="holds no teachgym run"):
        load_results(tmp_path)
    assert main(["plot", str(tmp_path)]) == 2
    assert "no teachgym run" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before
    with pytest.raises(ValueError, match="not a directory"):
        load_results(tmp_path / "missing")


def test_a_report_md_written_by_someone_else_is_never_replaced(tmp_path):
    _write_json_runs(tmp_path, with_extras=False)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("# my notes\n")
    with pytest.raises(ValueError, match="not written by teachgym plot"):
        make_report(tmp_path, reps=20)
    assert (tmp_path / "report" / "report.md").read_text() == "# my notes\n"
    assert not (tmp_path / "report" / "aggregate.png").exists()


def test_unknown_metric_is_an_error_naming_the_ones_present(tmp_path):
    _write_json_runs(tmp_path, with_extras=False)
    with pytest.raises(ValueError, match="mastered_pct"):
        make_report(tmp_path, metric="return")


def test_unknown_baseline_is_an_error_naming_the_teachers(tmp_path):
    _write_json_runs(tmp_path, with_extras=False)
    with pytest.raises(ValueError, match="baseline 'foo' is not among the teachers"):
        make_report(tmp_path, baseline="foo")


def test_per_run_folders_and_training_folders_load_with_their_task_counts(tmp_path):
    run = tmp_path / "suite" / "runs" / "grid-default__random__seed0"
    run.mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps({"format": "teachgym-run/1", "suite": "toy", "run": {
        "student": "grid", "variant": "default", "teacher": "random", "seed": 0}, "result": {"teacher_seconds": 1.0}}))
    (run / "curve.csv").write_text("episode,mastered_pct\n0,0.0\n100,4.5\n")
    train = tmp_path / "rl" / "alp-gmm-seed1"
    train.mkdir(parents=True)
    (train / "run.json").write_text(json.dumps({"config": {"env": "teachgym/StumpTracks-v0", "teacher": "alp-gmm",
                                                            "seed": 1, "env_kwargs": {"body": "classic_bipedal"}},
                                                "task_space": {"low": [0, 0], "high": [3, 6], "names": ["height", "spacing"]}}))
    (train / "eval.csv").write_text("step,episodes,mastered_pct,mean_return,wall_s\n0,0,0.0,-90.5,0.1\n1000,12,3.0,-50.0,9.0\n")
    (train / "teacher.csv").write_text("step,teacher_updates,hist_height,hist_spacing\n0,0,0 0 0,0 0 0\n1000,12,4 4 4,12 0 0\n")
    runs = {r.teacher: r for r in find_runs(tmp_path)}
    assert runs["random"].challenge == "grid/default" and runs["random"].curve["mastered_pct"].tolist() == [0.0, 4.5]
    assert runs["alp-gmm"].suite == "train" and runs["alp-gmm"].challenge == "StumpTracks-v0/classic_bipedal"
    assert list(runs["alp-gmm"].curve.columns) == ["x", "mastered_pct", "mean_return"]
    counts = runs["alp-gmm"].task_counts
    assert counts.names == ("height", "spacing") and counts.counts.tolist() == [[[4, 4, 4], [12, 0, 0]]]
    # in task units, and one period from the run's start to step 1000 (step 0 ends no period)
    assert counts.low.tolist() == [0, 0] and counts.high.tolist() == [3, 6]
    assert counts.start == 0 and counts.x.tolist() == [1000]
    table = load_results(tmp_path)
    assert set(table["x_name"]) == {"episode", "step"}


def test_the_same_run_twice_is_an_error(tmp_path):
    for where in ("a", "b"):
        run = tmp_path / where
        run.mkdir()
        (run / "meta.json").write_text(json.dumps({"teacher": "random", "seed": 0, "challenge": "c"}))
        (run / "curve.csv").write_text("episode,score\n0,1\n")
    with pytest.raises(ValueError, match="same run"):
        find_runs(tmp_path)


def test_count_tasks_bins_each_dimension_over_the_bounds():
    counts = count_tasks(np.array([[0.0, 2.0], [0.99, 1.0], [1.0, 0.0]]), [0, 0], [1, 2], bins=2)
    assert counts.tolist() == [[1, 2], [1, 2]]  # the upper bound falls in the last bin


def test_plot_reads_what_bench_toy_writes(tmp_path):
    config = ToyConfig(teachers=("random", "alp-gmm"), variants=("default", "rugged", "forgetting"), seeds=2,
                       episodes=300, eval_every=100)
    bench_toy(config, str(tmp_path), jobs=1)
    table = load_results(tmp_path)
    assert len(table[table["metric"] == "mastered_pct"]) == 2 * 3 * 2 * 4
    written = make_report(tmp_path, reps=50)
    assert {"learning_curves.png", "aggregate.png", "radar.png", "report.md"} <= {p.name for p in written}


def test_a_curve_of_metrics_only_reads_one_point_per_iteration(tmp_path):
    """teachgym bench datagen writes curve.csv with test_accuracy alone."""
    run = tmp_path / "runs" / "datagen-math__uniform__seed0"
    run.mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps({"format": "teachgym-run/1", "suite": "datagen", "run": {
        "student": "datagen", "variant": "math", "teacher": "uniform", "seed": 0}}))
    (run / "curve.csv").write_text("test_accuracy\n0.25\n0.5\n0.75\n")
    (found,) = find_runs(tmp_path)
    assert found.x_name == "iteration" and found.curve["x"].tolist() == [0, 1, 2]
    assert found.curve["test_accuracy"].tolist() == [0.25, 0.5, 0.75]
