"""Suites: config files (TOML/JSON) over class defaults, flags over files, shipped configs valid,
the RL suites run through the runner and reuse finished runs."""

import json

import pandas as pd
import pytest

from teachgym.benchmarks.runner import read_curve
from teachgym.benchmarks.suites import SUITES, get_suite, make_config, shipped_configs
from teachgym.benchmarks.toy import ToyConfig
from teachgym.benchmarks.train import CurriculumConfig
from teachgym.cli import main
from teachgym.teacher import list_teachers


def test_config_file_sets_fields_flags_override_it_and_the_rest_keeps_class_defaults(tmp_path):
    toml = tmp_path / "suite.toml"
    toml.write_text('suite = "toy"\nteachers = ["random", "alp-gmm:fit_rate=100"]\nvariants = ["rugged"]\nseeds = 4\n')
    config = make_config("toy", toml, {"seeds": 2, "episodes": None})
    assert config.teachers == ("random", "alp-gmm:fit_rate=100") and config.variants == ("rugged",)
    assert config.seeds == 2 and config.episodes == ToyConfig().episodes and config.students == ToyConfig().students
    js = tmp_path / "suite.json"
    js.write_text(json.dumps({"teachers": "all", "students": ["grid", "skills"]}))
    config = make_config("toy", js)
    assert config.teachers == tuple(list_teachers()) and config.variants == ("all",)
    assert {r["student"] for r in config.runs()} == {"grid", "skills"}


@pytest.mark.parametrize(
    "text, message",
    [
        ('suite = "toy"\nepisodez = 5\n', r"unknown toy setting\(s\) \['episodez'\]; expected some of"),
        ('suite = "walkers"\n', "is for another suite"),
        ("teachers = [", "config file"),
        ('teachers = ["nope"]\n', "unknown teacher 'nope'"),
    ],
)
def test_bad_config_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        make_config("toy", path)
    with pytest.raises(ValueError, match="unknown suite"):
        get_suite("nope")


@pytest.mark.parametrize(
    "text, message",
    [
        ('seeds = "three"\n', "toy setting seeds must be an integer, got 'three'"),  # TypeError before
        ("seeds = 2.5\n", "seeds must be an integer, got 2.5"),
        ("seeds = true\n", "seeds must be an integer, got True"),
        ("episodes = [100]\n", r"episodes must be an integer, got \[100\]"),
        ('teachers = ["random", 3]\n', r"teachers must be a list of strings, got \('random', 3\)"),
        ("teachers = 3\n", "teachers must be a list of strings, got 3"),
        ('teacher_kwargs = {random = 1}\n', "teacher_kwargs must be a table of strings to a table"),
        ("students = {grid = true}\n", "students must be a list of strings"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
)
def test_config_values_of_the_wrong_type_are_value_errors_naming_the_setting(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        make_config("toy", path)


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_suite_checks_the_types_of_its_settings(name):
    with pytest.raises(ValueError, match=f"{name} setting seeds must be an integer, got 'three'"):
        make_config(name, overrides={"seeds": "three"})
    with pytest.raises(ValueError, match="must be an integer, got 1.0"):
        make_config(name, overrides={"seeds": 1.0})


def test_unreadable_huge_or_binary_config_files_are_clear_errors(tmp_path):
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe seeds = 1")
    with pytest.raises(ValueError, match="bin.toml: cannot read it as UTF-8 text"):
        make_config("toy", tmp_path / "bin.toml")
    (tmp_path / "huge.toml").write_text("# " + "x" * (1 << 20) + "\nseeds = 1\n")
    with pytest.raises(ValueError, match="huge.toml: larger than"):
        make_config("toy", tmp_path / "huge.toml")
    with pytest.raises(ValueError, match="is not a regular file"):
        make_config("toy", tmp_path)  # a folder (or /dev/null) was "not found" before
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="deep.json: nested too deeply"):
        make_config("toy", tmp_path / "deep.json")


def test_a_type_error_inside_validation_becomes_a_value_error(monkeypatch):
    from dataclasses import dataclass

    from teachgym.benchmarks.suites import Suite

    @dataclass
    class Fussy:
        teachers: tuple[str, ...] = ("random",)
        size: int = 3

        def validate(self) -> None:
            if self.size > "x":  # the kind of comparison that raised TypeError in validate()
                pass

    monkeypatch.setitem(SUITES, "fussy", Suite("fussy", Fussy, None, None, "test suite"))
    with pytest.raises(ValueError, match="fussy config: '>' not supported"):
        make_config("fussy")


def test_every_shipped_config_is_valid_for_its_suite():
    assert {"toy-grid", "toy-full", "walkers-20M", "control-all"} <= set(shipped_configs())
    for name in shipped_configs():
        from teachgym.benchmarks.suites import read_config_file

        suite = read_config_file(name)["suite"]
        config = make_config(suite, name)
        assert config.runs()
    walkers = make_config("walkers", "walkers-20M")
    assert walkers.steps == 20_000_000 and walkers.seeds == 16 and len(walkers.variants) == 3
    assert {r["variant"] for r in walkers.runs()} == {"StumpTracks-v0", "HexagonTracks-v0", "Parkour-v0"}


def test_walkers_and_control_suites_differ_only_where_the_suite_says():
    walkers, control = make_config("walkers"), make_config("control")
    assert walkers.algo == "walker-ppo" and walkers.suite == "walkers" and walkers.env_kwargs == {"body": "classic_bipedal"}
    assert walkers.variants == ("teachgym/StumpTracks-v0",) and walkers.seeds == 3 and walkers.n_envs == 16
    assert walkers.teachers == ("random", "alp-gmm", "alp-revisit", "alp-gmm@teachmyagent")
    assert len(walkers.runs()) == 12 and walkers.steps == 2_000_000 and walkers.eval_every == 500_000
    assert control.algo == CurriculumConfig().algo and control.variants == CurriculumConfig().variants
    assert control.teachers == CurriculumConfig().teachers


def test_walkers_20m_keeps_teachmyagents_sac_protocol_whatever_the_default_suite():
    config = make_config("walkers", "walkers-20M")
    assert (config.algo, config.algo_kwargs, config.n_envs, config.steps) == ("sac", {}, 1, 20_000_000)
    assert config.env_kwargs == {"body": "classic_bipedal"} and config.eval_every == 500_000
    assert set(SUITES) >= {"toy", "control", "walkers", "datagen"}


def test_control_suite_runs_through_the_runner_and_reuses_finished_runs(tmp_path, capsys):
    out = tmp_path / "control"
    args = ["bench", "control", "--teachers", "random", "--seeds", "1", "--steps", "512", "--eval-every", "512",
            "--jobs", "1", "--out", str(out)]
    assert main(args) == 0
    assert "ContextualCartPole-v0" in capsys.readouterr().out
    (run,) = (out / "runs").iterdir()
    curve = read_curve(run / "curve.csv")
    assert curve["step"][0] == 0 and curve["step"][-1] >= 512 and len(curve["mastered_pct"]) == len(curve["step"])
    assert json.loads((run / "meta.json").read_text())["run"]["env"] == "teachgym/ContextualCartPole-v0"
    stamp = (run / "meta.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (run / "meta.json").stat().st_mtime_ns == stamp
    assert pd.read_csv(out / "summary.csv")["teacher"].tolist() == ["random"]


def test_a_finished_rl_suite_run_reports_the_tasks_and_teacher_state_of_its_training_folder(tmp_path):
    from teachgym.benchmarks.results import find_runs

    out = tmp_path / "control"
    assert main(["bench", "control", "--teachers", "alp-gmm", "--seeds", "1", "--steps", "1024", "--eval-every",
                 "512", "--jobs", "1", "--out", str(out)]) == 0
    (run,) = find_runs(out)
    assert run.source.parent.name == "runs"  # the finished run, not its training folder a second time
    assert run.task_counts is not None and run.task_counts.counts.sum() > 0  # teacher.csv of work/<id>
    assert run.state_path is not None and run.state_path.is_relative_to(out / "work")


def test_walker_curves_on_the_easy_half_are_read_from_the_runs_test_mastered(tmp_path):
    from teachgym.benchmarks.train import subset_curves

    with pytest.raises(ValueError, match="no run with evaluations"):
        subset_curves(tmp_path)
    run = tmp_path / "work" / "walkers-StumpTracks-v0__random__seed2"
    run.mkdir(parents=True)
    config = {"env": "teachgym/StumpTracks-v0", "env_kwargs": {"body": "classic_bipedal"}, "teacher": "random", "seed": 2}
    (run / "run.json").write_text(json.dumps({"config": config, "status": "running"}))
    easy_only = "+" * 10 + "-" * 90  # the ten tasks of stump height 0 (test set in height-major order)
    (run / "eval.csv").write_text(f"step,mastered_pct,test_mastered\n0,0,{'-' * 100}\n500000,10,{easy_only}\n")
    curves = subset_curves(tmp_path)
    easy = curves[curves["subset"].str.startswith("easy")]
    whole = curves[curves["subset"] == "whole test set"]
    assert easy["mastered_pct"].tolist() == [0.0, 20.0] and whole["mastered_pct"].tolist() == [0.0, 10.0]
    assert set(curves["teacher"]) == {"random"} and set(curves["seed"]) == {2} and easy["step"].tolist() == [0, 500000]
