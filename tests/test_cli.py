"""The console script: the toy benchmark writes its table, CSVs and PNG, and resumes."""

import json

import pandas as pd
import pytest

from teachgym.cli import main


def test_bench_toy_writes_summary_curves_and_png_then_reuses_finished_runs(tmp_path, capsys):
    out = tmp_path / "toy"
    args = ["bench", "toy", "--episodes", "1500", "--eval-every", "500", "--seeds", "2", "--jobs", "2", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "alp-gmm" in printed and "median" in printed
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["teacher"]) == {"random", "alp-gmm"} and (summary["seeds"] == 2).all()
    curves = pd.read_csv(out / "curves.csv")
    assert sorted(curves["episode"].unique()) == [0, 500, 1000, 1500]
    assert (out / "curves.png").stat().st_size > 1000
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert len(stamps) == 4
    assert main(args) == 0  # second run: everything is reused, nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == stamps
    assert pd.read_csv(out / "summary.csv").equals(summary)


def test_results_of_another_configuration_are_an_error_and_are_kept(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["bench", "toy", "--teachers", "random", "--episodes", "200", "--eval-every", "100", "--seeds", "1", "--jobs", "1", "--out", str(out)]) == 0
    run_file = out / "runs" / "grid-default__random__seed0" / "meta.json"
    before = run_file.read_text()
    code = main(["bench", "toy", "--teachers", "random", "--episodes", "300", "--eval-every", "100", "--seeds", "1", "--jobs", "1", "--out", str(out)])
    assert code == 2 and "another configuration" in capsys.readouterr().err
    assert run_file.read_text() == before
    run_file.write_text("{broken")
    assert main(["bench", "toy", "--teachers", "random", "--episodes", "200", "--eval-every", "100", "--seeds", "1", "--jobs", "1", "--out", str(out)]) == 2
    assert run_file.read_text() == "{broken"


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "toy", "--teachers", "nope"], "unknown teacher 'nope'"),
        (["bench", "toy", "--variants", "wobbly"], "unknown grid variant"),
        (["bench", "toy", "--seeds", "0"], "seeds must be a positive integer"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args, message, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_teacher_overhead_and_teachers_listing(capsys):
    assert main(["bench", "teacher-overhead", "--episodes", "300", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "seconds_median" in out and "alp-gmm" in out
    assert main(["teachers"]) == 0
    listing = capsys.readouterr().out
    assert json.loads(listing.split("alp-gmm: ")[1].splitlines()[0])["fit_rate"] == 250


def test_bench_envs_times_the_chosen_envs_against_the_reference(capsys):
    args = ["bench", "envs", "--steps", "300", "--resets", "5", "--only", "BipedalWalker-v3,StumpTracks/classic_bipedal,CartPole-v1,ContextualCartPole"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "StumpTracks/classic_bipedal" in out and "reset_ms_median" in out and "async2_steps_per_s" in out
    assert main(["bench", "envs", "--only", "NoSuchEnv"]) == 2
    assert "unknown env labels" in capsys.readouterr().err


def test_bench_fuzz_runs_the_chosen_envs_and_reports_totals(capsys):
    assert main(["bench", "fuzz", "--episodes", "3", "--max-steps", "30", "--only", "ContextualCartPole"]) == 0
    out = capsys.readouterr().out
    assert "total: 3 episodes" in out and "0 failures" in out
    assert main(["bench", "fuzz", "--only", "NoSuchEnv"]) == 2


def test_all_teachers_default_to_every_variant_and_named_ones_to_the_default(tmp_path, monkeypatch):
    configs = []

    def record(config, out, jobs=None, backend="local"):
        configs.append(config)
        raise ValueError("recorded")  # stop before running anything

    monkeypatch.setattr("teachgym.cli.bench_toy", record)
    for teachers in ("all", "random"):
        assert main(["bench", "toy", "--teachers", teachers, "--out", str(tmp_path)]) == 2
    assert [c.variants for c in configs] == [("all",), ("default",)]


def test_the_cli_starts_without_torch_and_hands_train_over(capsys, tmp_path):
    import subprocess
    import sys

    code = "import sys, teachgym.cli; print('torch' in sys.modules, 'stable_baselines3' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False", "False"]
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0 and "usage: teachgym train" in capsys.readouterr().out
    assert main(["train", "--env", "teachgym/NoSuchEnv-v0", "--out", str(tmp_path / "x")]) == 2
    assert "unknown env id" in capsys.readouterr().err
