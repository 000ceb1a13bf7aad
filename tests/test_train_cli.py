"""`teachgym train` for a newcomer: an env of one's own, a test set, the algorithm, resume, help."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gymnasium import spaces

from teachgym.cli import main as cli_main
from teachgym.spaces import TaskSpace
from teachgym.training import TrainConfig, add_train_arguments, read_test_set, run_train
from teachgym.training import main as train_main

# The user's own env (tests/byo_env.py): no test_set(), discrete actions, 8-step episodes.
BYO = ["--env", "byo_env:ByoLine-v0", "--teacher", "random", "--seed", "2", "--no-progress", "--device", "cpu",
       "--n-envs", "2", "--vec", "dummy", "--eval-envs", "10",
       "--algo-kwargs", "n_steps=32", "batch_size=32", "n_epochs=1", "net_arch=[8]"]


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def byo_run(tmp_path_factory) -> Path:
    """128 steps of PPO (chosen by --algo auto) on the user's env, tested on a CSV file's tasks."""
    folder = tmp_path_factory.mktemp("byo")
    (folder / "tests.csv").write_text("target,noise\n0.5,0\n1.0,0.1\n1.5,0.0\n")
    out = folder / "run"
    assert run_train(_args([*BYO, "--steps", "128", "--eval-every", "64", "--test-set", str(folder / "tests.csv"),
                            "--out", str(out)])) == 0
    return out


def test_an_env_of_ones_own_trains_by_module_and_id_with_ppo_chosen_for_its_discrete_actions(byo_run):
    saved = json.loads((byo_run / "run.json").read_text())
    assert saved["status"] == "complete" and saved["config"]["algo"] == "ppo"
    assert saved["config"]["env"] == "byo_env:ByoLine-v0"
    assert saved["task_space"]["names"] == ["target", "noise"] and saved["task_space"]["high"] == [2.0, 0.5]
    evals = pd.read_csv(byo_run / "eval.csv")
    assert evals["step"].tolist() == [0, 64, 128]
    assert (evals["mastered_pct"] * 3 / 100).round(3).isin([0, 1, 2, 3]).all()  # three test tasks from the CSV file
    episodes = pd.read_csv(byo_run / "episodes.csv")
    assert list(episodes.columns) == ["step", "env", "target", "noise", "score", "success"]
    assert len(episodes) == 128 // 8 and set(episodes["env"]) == {0, 1}
    assert (episodes["step"] % 16 == 0).all()  # two envs, 8-step episodes: both end every 16 steps
    assert set(episodes["success"]) <= {0, 1}


def test_an_env_without_test_set_needs_one_and_says_how(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_train(_args([*BYO, "--steps", "64", "--out", str(out)])) == 2
    err = capsys.readouterr().err
    assert "has no test_set()" in err and "--test-set PATH" in err and "target,noise" in err and "random:100" in err
    assert not out.exists()


def test_a_random_test_set_is_drawn_from_the_task_space_with_its_own_seed(tmp_path):
    config = TrainConfig(env="byo_env:ByoLine-v0", test_set="random:50:7", algo="ppo", steps=64, n_envs=1,
                         teacher="random", eval_envs=50, device="cpu", vec="dummy",
                         algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1, "net_arch": [8]})
    from teachgym.training import Trainer

    a = Trainer(config, tmp_path / "a", progress=False).test_tasks
    b = Trainer(dataclasses.replace(config, seed=5), tmp_path / "b", progress=False).test_tasks
    assert a.shape == (50, 2) and np.array_equal(a, b)  # the run's seed does not change the test set
    assert (a >= [0, 0]).all() and (a <= [2, 0.5]).all() and len(np.unique(a[:, 0])) == 50
    assert not (tmp_path / "a").exists()  # building the trainer writes nothing


@pytest.mark.parametrize("content, message", [
    ("noise,target\n0,1\n", "header must name the task dimensions in order, target,noise; got noise,target"),
    ("", "got an empty file"),
    ("target,noise\n", "no task under the header"),
    ("target,noise\n1.0,0.1\n1.0\n", "row 3: expected 2 values, got 1"),
    ("target,noise\n1.0,x\n", "row 2: could not convert string to float"),
    ("target,noise\n1.0,0.1\n2.5,0.1\n", "row 3: task [2.5, 0.1] is outside the task space: 'target' (dimension 0)"),
    ("target,noise\nnan,0.1\n", "row 2"),
])
def test_a_test_set_file_is_checked_against_the_task_space(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    space = TaskSpace(spaces.Box(np.zeros(2), np.array([2.0, 0.5]), dtype=np.float64), ("target", "noise"))
    with pytest.raises(ValueError, match="t.csv") as err:
        read_test_set(path, space)
    assert message in str(err.value)


@pytest.mark.parametrize("change, message", [
    (["--test-set", "random:0"], "expected random:N or random:N:SEED"),
    (["--test-set", "missing.csv"], "no such file"),
    (["--algo", "sac", "--test-set", "random:5"], "--algo sac needs a Box action space, the env has Discrete(3); use ppo"),
    (["--env", "no_such_module_xyz:Env-v0"], "importing module 'no_such_module_xyz' failed"),
    (["--env", "byo_env:ByoLin-v0"], "registered no env 'ByoLin-v0' (did you mean 'ByoLine-v0'?)"),
    (["--env", "teachgym/StumpTrack-v0"], "did you mean 'teachgym/StumpTracks-v0'?"),
])
def test_a_bad_env_test_set_or_algorithm_is_refused_before_anything_is_written(tmp_path, capsys, change, message):
    out = tmp_path / "run"
    assert run_train(_args([*BYO, "--steps", "64", "--out", str(out), *change])) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # no run.json left "running": the corrected command is a fresh run


def test_resume_alone_reads_the_run_back_and_steps_extend_it(byo_run, tmp_path, capsys):
    before = pd.read_csv(byo_run / "eval.csv")
    assert run_train(_args(["--out", str(byo_run), "--resume", "--no-progress"])) == 0  # complete: nothing to do
    assert "already complete" in capsys.readouterr().out
    assert run_train(_args(["--out", str(byo_run), "--resume", "--steps", "192", "--no-progress"])) == 0
    evals = pd.read_csv(byo_run / "eval.csv")
    assert evals["step"].tolist() == [0, 64, 128, 192]  # the run's own rhythm, from run.json
    pd.testing.assert_frame_equal(evals.iloc[:3].drop(columns="wall_s"), before.drop(columns="wall_s"))
    assert json.loads((byo_run / "run.json").read_text())["config"]["steps"] == 192
    assert run_train(_args(["--out", str(byo_run), "--resume", "--seed", "9", "--steps", "256"])) == 2
    err = capsys.readouterr().err
    assert "seed was 2, now 9" in err and "may change" in err
    assert run_train(_args(["--out", str(tmp_path / "nothing"), "--resume"])) == 2
    assert "no run.json" in capsys.readouterr().err
    assert run_train(_args(["--out", str(tmp_path / "fresh")])) == 2
    assert "--env is required" in capsys.readouterr().err


def test_eval_every_below_a_rollout_evaluates_at_the_next_boundary_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_train(_args([*BYO, "--n-envs", "1", "--steps", "160", "--eval-every", "40", "--test-set", "random:4",
                            "--out", str(out)])) == 0
    # multiples of 40: 40, 80, 120, 160 -> boundaries of 32-step rollouts at or past each: 64, 96, 128, 160
    assert pd.read_csv(out / "eval.csv")["step"].tolist() == [0, 64, 96, 128, 160]
    printed = capsys.readouterr().out
    assert "eval_every=40 is not a multiple of a rollout (32 steps of ppo)" in printed


def test_help_shows_every_default_and_how_evaluations_fall(capsys):
    with pytest.raises(SystemExit):
        train_main(["--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even inside words
    for shown in ("(default: alp-gmm)", "(default: auto)", "(default: 1000000)", "(default: 1)", "(default: 0)",
                  "(default: steps/20)", "(default: the env's test_set())", "first rollout boundary at or past",
                  "module:EnvId", "random:N"):
        assert "".join(shown.split()) in text


def test_teachers_name_prints_the_paper_idea_hyper_parameters_spaces_and_presets(capsys):
    assert cli_main(["teachers", "alp-gmm"]) == 0
    text = capsys.readouterr().out
    assert "CoRL 2019" in text and "nearest previously seen task" in text
    assert "fit_rate: int = 250" in text and "random_task_ratio: float = 0.2" in text
    assert "Probability of a uniform task once bootstrapping is over." in text
    assert "Task spaces: Box; Discrete, MultiDiscrete through an adapter" in text
    assert 'alp-gmm@teachmyagent: {"fit_rate": 150' in text
    assert cli_main(["teachers", "alp-gmn"]) == 2
    assert "alp-gmm" in capsys.readouterr().err  # the near miss is named


def test_parameter_docs_reads_grouped_names_and_stops_at_the_next_section():
    from teachgym.teacher_doc import parameter_docs

    doc = """Title.

    Parameters
    ----------
    a, b
        Shared text
        on two lines.
    c : int
        Own text.

    Notes
    -----
    Not a parameter.
    """
    assert parameter_docs(doc) == {"a": "Shared text on two lines.", "b": "Shared text on two lines.", "c": "Own text."}


def test_the_trainer_builds_its_workers_with_vec_envs_pieces_and_vec_env_needs_no_trainer():
    import ast
    import inspect

    from teachgym import training, vec_env

    assert training.FlushEachStep is vec_env.FlushEachStep and training.env_maker is vec_env.env_maker
    imported = {node.module for node in ast.walk(ast.parse(inspect.getsource(vec_env)))
                if isinstance(node, ast.ImportFrom)}
    assert "teachgym.training" not in imported  # no cycle: the trainer builds on make_vec_env's module
