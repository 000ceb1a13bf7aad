"""The suite runner: per-run folders written atomically, resume after SIGKILL, no orphan workers,
clear errors (and nothing touched) for corrupt or foreign directories, local = Ray numbers."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from teachgym.benchmarks.results import find_runs
from teachgym.benchmarks.runner import execute, load_finished, read_curve, run_id
from teachgym.benchmarks.toy import ToyConfig, bench_toy, run_toy
from teachgym.cli import main


def _toy_runs(episodes=300, seeds=1, teachers=("random",)):
    return ToyConfig(teachers=teachers, seeds=seeds, episodes=episodes, eval_every=100).runs()


def _snapshot(path):
    return {p.relative_to(path): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def test_each_run_is_a_folder_with_an_exact_curve_and_provenance(tmp_path):
    runs = _toy_runs(seeds=2, teachers=("random", "alp-gmm:fit_rate=50"))
    fresh = [run_toy(**r) for r in runs]
    execute(run_toy, runs[:1], tmp_path, units=lambda r: r["episodes"], jobs=1, curve=("episode", "mastered_pct"), suite="toy")
    stale = tmp_path / "runs" / f".tmp-{run_id(runs[1])}-pid999999999-x"  # left by a dead runner
    stale.mkdir(parents=True)
    results = execute(run_toy, runs, tmp_path, units=lambda r: r["episodes"], jobs=1, curve=("episode", "mastered_pct"), suite="toy")
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(run_id(r) for r in runs)
    for run, res, ref in zip(runs, results, fresh):
        folder = tmp_path / "runs" / run_id(run)
        assert read_curve(folder / "curve.csv") == {"episode": ref["episode"], "mastered_pct": ref["mastered_pct"]}
        assert res["mastered_pct"] == ref["mastered_pct"] and res["episode"] == ref["episode"]
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["run"] == run and meta["seed"] == run["seed"] and meta["suite"] == "toy"
        assert {"numpy", "torch", "python"} <= set(meta["versions"]) and "git_commit" in meta
        assert {"teacher_seconds", "wall_seconds", "cpu_seconds", "task_counts"} <= set(meta["result"])
        assert "mastered_pct" not in meta["result"]  # the curve lives in curve.csv only
    assert json.loads((tmp_path / "suite.json").read_text())["suite"] == "toy"
    listed = find_runs(tmp_path)
    assert sorted(r.source.name for r in listed) == sorted(run_id(r) for r in runs)
    assert [r.meta for r in listed] == [r for r in sorted(runs, key=run_id)]  # the run descriptions
    assert all(r.curve["x"].iloc[-1] == 300 for r in listed)


def test_results_of_the_first_format_are_still_read_and_reused(tmp_path):
    (run,) = _toy_runs()
    result = run_toy(**run)
    legacy = tmp_path / "runs" / f"{run_id(run)}.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps({"run": run, "result": result}))
    (stored,) = execute(run_toy, [run], tmp_path, units=lambda r: r["episodes"], jobs=1, curve=("episode", "mastered_pct"))
    assert stored == result and [p.name for p in (tmp_path / "runs").iterdir()] == [legacy.name]
    (listed,) = find_runs(tmp_path)
    assert listed.curve["x"].tolist() == result["episode"] and listed.curve["mastered_pct"].tolist() == result["mastered_pct"]


def test_corrupt_foreign_or_other_suite_directories_are_errors_and_left_untouched(tmp_path):
    runs = _toy_runs()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("my only copy")
    other = tmp_path / "other"
    execute(run_toy, runs, other, units=lambda r: r["episodes"], jobs=1, curve=("episode", "mastered_pct"), suite="datagen")
    bad_marker = tmp_path / "bad_marker"
    bad_marker.mkdir()
    (bad_marker / "suite.json").write_text("{not json")
    ours = tmp_path / "ours"
    execute(run_toy, runs, ours, units=lambda r: r["episodes"], jobs=1, curve=("episode", "mastered_pct"), suite="toy")
    meta, curve = ours / "runs" / run_id(runs[0]) / "meta.json", ours / "runs" / run_id(runs[0]) / "curve.csv"
    good_meta, good_curve = meta.read_text(), curve.read_text()
    cases = [
        (foreign, None, "not a teachgym results directory"),
        (other, None, "holds results of the 'datagen' suite"),
        (bad_marker, None, "suite.json is corrupt"),
        (ours, lambda: meta.write_text("{truncated"), "is not a complete teachgym run"),
        (ours, lambda: meta.write_text(json.dumps({**json.loads(good_meta), "format": "other/9"})), "is not a complete teachgym run"),
        (ours, lambda: curve.unlink(), "is not a complete teachgym run"),
    ]
    for folder, corrupt, message in cases:
        if corrupt is not None:
            meta.write_text(good_meta)
            curve.write_text(good_curve)
            corrupt()
        before = _snapshot(folder)
        with pytest.raises(ValueError, match=message):
            execute(run_toy, runs, folder, units=lambda r: r["episodes"], jobs=1, curve=("episode", "mastered_pct"), suite="toy")
        assert _snapshot(folder) == before
    curve.write_text("episode,mastered_pct\n0,1.0\n100\n")  # ragged
    with pytest.raises(ValueError, match="rows of the wrong length"):
        load_finished(ours, runs[0])
    curve.write_text(good_curve)
    other_config = _toy_runs(episodes=400)
    with pytest.raises(ValueError, match="another configuration"):
        load_finished(ours, {**other_config[0]})


def _children(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_sigkilled_suite_resumes_to_the_uninterrupted_table_with_no_lost_duplicated_or_orphan_runs(tmp_path):
    flags = ["--teachers", "alp-gmm,riac", "--seeds", "3", "--episodes", "3000", "--eval-every", "1000"]
    reference = tmp_path / "reference"
    assert main(["bench", "toy", *flags, "--jobs", "1", "--out", str(reference)]) == 0
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "teachgym.cli", "bench", "toy", *flags, "--jobs", "2", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    finished, workers, deadline = 0, [], time.monotonic() + 120
    while finished < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        workers = _children(proc.pid) or workers
        runs_dir = out / "runs"
        finished = sum(1 for p in runs_dir.iterdir() if not p.name.startswith(".")) if runs_dir.exists() else 0
    workers = _children(proc.pid) or workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= finished < 6, "the runner must be killed mid-suite"
    assert workers, "the runner had worker processes"
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived the killed runner: {alive}"

    assert main(["bench", "toy", *flags, "--jobs", "2", "--out", str(out)]) == 0
    names = [p.name for p in (out / "runs").iterdir()]
    assert len(names) == 6 and not [n for n in names if n.startswith(".")]
    for table in ("per_run.csv", "curves.csv"):
        ours, theirs = pd.read_csv(out / table), pd.read_csv(reference / table)
        ours, theirs = (t.drop(columns=["teacher_seconds", "cpu_seconds"], errors="ignore") for t in (ours, theirs))
        pd.testing.assert_frame_equal(ours, theirs)
    summary = pd.read_csv(out / "summary.csv").drop(columns="teacher_seconds")
    pd.testing.assert_frame_equal(summary, pd.read_csv(reference / "summary.csv").drop(columns="teacher_seconds"))


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_backend_gives_the_local_backend_numbers_per_seed(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    config = ToyConfig(teachers=("random", "alp-gmm:fit_rate=50"), seeds=2, episodes=600, eval_every=200)
    local = bench_toy(config, str(tmp_path / "local"), jobs=2)
    ray = bench_toy(config, str(tmp_path / "ray"), jobs=2, backend="ray")
    pd.testing.assert_frame_equal(local.drop(columns="teacher_seconds"), ray.drop(columns="teacher_seconds"))
    for name in ("curves.csv", "per_run.csv"):
        a, b = (pd.read_csv(tmp_path / k / name).drop(columns=["teacher_seconds", "cpu_seconds"], errors="ignore") for k in ("local", "ray"))
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("jobs", [0, -2, 1.5, True])
def test_a_bad_number_of_jobs_is_a_clear_error(tmp_path, jobs):
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        execute(run_toy, _toy_runs(), tmp_path / "out", units=lambda r: r["episodes"], jobs=jobs)
    assert not (tmp_path / "out").exists()
