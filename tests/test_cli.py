"""The console script: the toy benchmark writes its table, CSVs and PNG, and resumes."""

import errno
import json
from concurrent.futures.process import BrokenProcessPool

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


# ------------------------------------------------- every failure: one line on stderr, exit 2
TOY = ["bench", "toy", "--teachers", "random", "--episodes", "200", "--eval-every", "100", "--seeds", "1", "--jobs", "1"]


def _one_error_line(err: str, *parts: str) -> None:
    """No traceback, and the last line of stderr (after any progress bar) is the one error."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "teachgym: error:" in line]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    for part in parts:
        assert part in errors[0], (part, errors[0])


def test_a_config_with_seeds_of_the_wrong_type_is_one_error_line_from_the_real_script(tmp_path):
    """A traceback (TypeError from validate) before; checked as the console script runs."""
    import subprocess
    import sys

    (tmp_path / "c.toml").write_text('seeds = "three"\n')
    done = subprocess.run([sys.executable, "-m", "teachgym.cli", "bench", "toy", "--config", str(tmp_path / "c.toml"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    _one_error_line(done.stderr, "seeds must be an integer, got 'three'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tscl-online:lr=abc", "teacher 'tscl-online': hyper-parameter lr must be a finite number, got 'abc'"),
        ("tscl-online:absolute=x", "hyper-parameter absolute must be true or false, got 'x'"),
        ("alp-gmm:fit_rate=-3", "fit_rate"),
    ],
)
def test_bad_hyper_parameters_in_a_teacher_spec_are_refused_before_anything_is_written(spec, message, tmp_path, capsys):
    args = TOY[:3] + [spec] + TOY[4:]
    assert main(args + ["--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys.readouterr().err, message)
    assert not (tmp_path / "out").exists()


def test_out_naming_a_file_or_a_path_through_a_file_is_an_error_and_the_file_is_kept(tmp_path, capsys):
    (tmp_path / "f").write_text("mine")
    assert main(TOY + ["--out", str(tmp_path / "f")]) == 2
    _one_error_line(capsys.readouterr().err, "is a file, not a results directory")
    assert main(TOY + ["--out", str(tmp_path / "f" / "sub")]) == 2  # NotADirectoryError traceback before
    _one_error_line(capsys.readouterr().err, f"{tmp_path / 'f'} is a file, so", "cannot be a results directory")
    assert (tmp_path / "f").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_folder_the_system_refuses_is_an_error_with_the_path_and_the_reason(capsys):
    # Root may write anywhere on disk, so the refusal comes from /proc, which takes no folders.
    assert main(TOY + ["--out", "/proc/teachgym-test/out"]) == 2
    _one_error_line(capsys.readouterr().err, "No such file or directory: /proc/teachgym-test")


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(args[0]) if args else None)


def test_a_full_disk_while_claiming_the_directory_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    import teachgym.io

    monkeypatch.setattr(teachgym.io, "fsync", _no_space)  # the flush of suite.json fails
    out = tmp_path / "a" / "b" / "out"
    assert main(TOY + ["--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, "No space left on device", "suite.json", "free some space")
    assert list(tmp_path.iterdir()) == []  # the three folders it made are gone again


def test_a_read_only_disk_is_an_error_with_the_path(tmp_path, monkeypatch, capsys):
    import teachgym.io

    def read_only(path, mode="r", *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(teachgym.io, "open", read_only, raising=False)  # the module's writes only
    assert main(TOY + ["--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys.readouterr().err, "Read-only file system", "suite.json")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_during_a_run_leaves_no_partial_run_and_the_same_command_then_finishes(tmp_path, monkeypatch, capsys):
    import teachgym.benchmarks.runner as runner

    out = tmp_path / "out"
    monkeypatch.setattr(runner, "write_text", _no_space)  # curve.csv of the first finished run
    assert main(TOY + ["--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, "No space left on device", "curve.csv")
    assert list(tmp_path.iterdir()) == []  # a new directory with nothing finished: gone again
    monkeypatch.undo()
    assert main(TOY + ["--out", str(out)]) == 0
    first = (out / "runs" / "grid-default__random__seed0" / "meta.json").read_text()
    monkeypatch.setattr(runner, "write_text", _no_space)  # now the second seed's run fails
    two_seeds = TOY[:TOY.index("--seeds")] + ["--seeds", "2"] + TOY[TOY.index("--seeds") + 2:]
    assert main(two_seeds + ["--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, "No space left on device")
    assert [p.name for p in (out / "runs").iterdir()] == ["grid-default__random__seed0"]  # no half run
    assert (out / "runs" / "grid-default__random__seed0" / "meta.json").read_text() == first
    monkeypatch.undo()
    assert main(two_seeds + ["--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["grid-default__random__seed0", "grid-default__random__seed1"]


@pytest.mark.parametrize(
    "failure, message",
    [
        (OSError(errno.EACCES, "Permission denied", "runs/x/suite.json"), "Permission denied: runs/x/suite.json"),
        (MemoryError(), "out of memory"),
        (BrokenProcessPool("A child process terminated abruptly"), "a worker process died"),
    ],
)
def test_failures_of_the_machine_are_one_error_line_not_a_traceback(failure, message, tmp_path, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr("teachgym.cli.bench_toy", fail)
    assert main(["bench", "toy", "--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys.readouterr().err, message)


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise KeyError("a bug, not a user mistake")

    monkeypatch.setattr("teachgym.cli.bench_toy", bug)
    with pytest.raises(KeyError):
        main(["bench", "toy", "--out", str(tmp_path / "out")])


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "envs", "--steps", "-1"],  # printed a table of negative speeds before
        ["bench", "envs", "--resets", "0"],
        ["bench", "teacher-overhead", "--episodes", "0"],  # a table of zeros before
        ["bench", "teacher-overhead", "--seeds", "-2"],
        ["bench", "fuzz", "--max-steps", "x"],
        ["plot", "somewhere", "--reps", "0"],
    ],
)
def test_counts_that_are_not_positive_are_refused_by_the_parser(args, capsys):
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2 and "expected a positive integer" in capsys.readouterr().err


def test_bench_students_times_sb3_and_fleets_and_refuses_bad_sizes(capsys):
    args = ["bench", "students", "--env", "teachgym/ContextualPendulum-v0", "--preset", "sac-sb3", "--fleet-sizes", "1,2",
            "--devices", "cpu,cuda", "--steps", "2", "--learning-starts", "64"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "SB3 SAC" in out and "fleet K=2" in out and "walkers-20M" in out and "protocol_hours" in out
    assert main(["bench", "students", "--fleet-sizes", "two"]) == 2
    assert "--fleet-sizes" in capsys.readouterr().err
