"""``teachgym train --fleet K`` and fleets in the walker suites: run folders, exact resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from teachgym.benchmarks.results import find_runs
from teachgym.cli import main
from teachgym.training import TrainConfig, mastered_pct_of, train
from teachgym.training_fleet import FleetTrainer, member_configs, train_fleet_out

# Pendulum episodes of 25 steps: the checkpoint at step 64 falls in the middle of every member's
# episode, so a resumed fleet must bring back the episodes in progress, not restart them.
SMALL = ["--env", "teachgym/ContextualPendulum-v0", "--env-kwargs", "context_obs=true", "max_episode_steps=25",
         "--teacher", "alp-gmm:fit_rate=4+potential_ks=[1,2]", "--algo", "sac", "--steps", "192", "--seed", "1",
         "--device", "cpu", "--eval-every", "128", "--checkpoint-every", "64", "--eval-envs", "100", "--vec", "dummy",
         "--no-progress",
         "--algo-kwargs", "learning_starts=32", "batch_size=16", "train_freq=8", "gradient_steps=2", "net_arch=[8]"]


def _config(**changes) -> TrainConfig:
    values = dict(env="teachgym/ContextualPendulum-v0", teacher="alp-gmm:fit_rate=4+potential_ks=[1,2]", algo="sac",
                  steps=192, seed=1, device="cpu", eval_every=128, checkpoint_every=64, eval_envs=100, vec="dummy",
                  env_kwargs={"context_obs": True, "max_episode_steps": 25},
                  algo_kwargs={"learning_starts": 32, "batch_size": 16, "train_freq": 8, "gradient_steps": 2,
                               "net_arch": [8]})
    return TrainConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory):
    """An uninterrupted fleet of two, through the command line (envs stepped in this process)."""
    out = tmp_path_factory.mktemp("fleet") / "run"
    assert main(["train", "--fleet", "2", *SMALL, "--out", str(out)]) == 0
    return out


def _tables(member: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_csv(member / "eval.csv").drop(columns="wall_s"), pd.read_csv(member / "episodes.csv")


def _learner(out: Path) -> dict[str, object]:
    """Every tensor of the fleet's last checkpoint: weights, targets, Adam moments, generator states."""
    manifest = json.loads((out / "fleet" / "checkpoints" / "latest.json").read_text())
    state = torch.load(out / "fleet" / "checkpoints" / manifest["dir"] / "fleet.pt", weights_only=True)["learner"]
    flat: dict[str, object] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{prefix}.{i}", item)
        else:
            flat[prefix] = value  # optimiser settings, step counts

    walk("learner", state)
    return flat


def test_fleet_members_write_run_folders_that_the_report_reads(fleet_run):
    for k in (0, 1):
        member = fleet_run / f"member-{k}"
        assert {"run.json", "eval.csv", "teacher.csv", "episodes.csv", "teacher.npz"} <= {p.name for p in member.iterdir()}
        saved = json.loads((member / "run.json").read_text())
        assert saved["status"] == "complete" and saved["config"]["seed"] == 1 + k
        assert saved["fleet"] == {"member": k, "members": 2, "folder": "../fleet"}
        evals, episodes = _tables(member)
        assert evals["step"].tolist() == [0, 128, 192]
        assert evals["episodes"].iloc[-1] == len(episodes) == 192 // 25  # every ended episode, once
        assert set(episodes.columns) == {"step", "env", "length", "mass", "gravity", "score", "success"}
        assert "hist_length" in pd.read_csv(member / "teacher.csv").columns
    assert json.loads((fleet_run / "fleet" / "fleet.json").read_text())["status"] == "complete"
    runs = find_runs(fleet_run)
    assert [(r.teacher, r.seed, r.x_name) for r in runs] == [(runs[0].teacher, 1, "step"), (runs[0].teacher, 2, "step")]
    assert all(r.task_counts is not None and r.state_path is not None for r in runs)
    # the two members are two students: their own seeds, their own episodes
    assert not _tables(fleet_run / "member-0")[1].equals(_tables(fleet_run / "member-1")[1])


class _Crash(Exception):
    pass


def _crash_after_evaluating(at: int):
    """FleetTrainer._evaluate that dies after writing step ``at``'s rows, before its checkpoint."""
    evaluate = FleetTrainer._evaluate

    def crash(self, step, bar):
        evaluate(self, step, bar)
        if step == at:
            raise _Crash

    return crash


@pytest.fixture(scope="module")
def killed_fleet(tmp_path_factory):
    """The fleet of :func:`fleet_run` killed after step 128's evaluation and before its checkpoint,
    then resumed from step 64 (in the middle of every member's episode) to the end."""
    out = tmp_path_factory.mktemp("killed") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FleetTrainer, "_evaluate", _crash_after_evaluating(128))
        with pytest.raises(_Crash):
            train_fleet_out(_config(), 2, out, progress=False)
    assert json.loads((out / "fleet" / "checkpoints" / "latest.json").read_text())["step"] == 64
    assert len(pd.read_csv(out / "member-0" / "eval.csv")) == 2  # step 128's rows, dropped on resume
    summaries = train_fleet_out(_config(), 2, out, resume=True, progress=False)
    assert [s["steps"] for s in summaries] == [192, 192]
    return out


def test_a_fleet_killed_mid_episode_resumes_to_the_uninterrupted_run_bit_for_bit(fleet_run, killed_fleet):
    """Resumed from a checkpoint in the middle of every member's episode, the fleet ends with the
    uninterrupted run's tables (episodes.csv's steps, envs and successes too) and tensors."""
    out = killed_fleet
    for k in (0, 1):
        for got, want in zip(_tables(out / f"member-{k}"), _tables(fleet_run / f"member-{k}")):
            pd.testing.assert_frame_equal(got, want, check_exact=True)
    got, want = _learner(out), _learner(fleet_run)
    assert got.keys() == want.keys()
    for name, value in want.items():
        same = torch.equal(got[name], value) if isinstance(value, torch.Tensor) else got[name] == value
        assert same, name


def test_fleet_members_episodes_say_when_where_and_how_each_episode_ended(fleet_run):
    """As a single run of one env writes them: the step the episode ended at, env 0, info["success"]."""
    for k in (0, 1):
        episodes = pd.read_csv(fleet_run / f"member-{k}" / "episodes.csv")
        assert episodes["step"].tolist() == [25 * i for i in range(1, 192 // 25 + 1)]  # 25-step episodes
        assert episodes["env"].tolist() == [0] * len(episodes)
        assert episodes["success"].notna().all() and set(episodes["success"]) <= {0, 1}  # Pendulum says it


def _events(tb: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(tb), size_guidance={"images": 0, "scalars": 0}).Reload()


def test_fleet_members_write_a_single_runs_tensorboard_logs(fleet_run):
    pytest.importorskip("tensorboard")
    for k in (0, 1):
        member = fleet_run / f"member-{k}"
        events, evals = _events(member / "tb"), pd.read_csv(member / "eval.csv")
        for tag, column in (("eval/mastered_pct", "mastered_pct"), ("eval/mean_return", "mean_return")):
            assert [e.step for e in events.Scalars(tag)] == [0, 128, 192]
            assert [e.value for e in events.Scalars(tag)] == pytest.approx(evals[column].tolist(), rel=1e-5)  # eval.csv: 6 digits
        tags = events.Tags()
        assert {"teacher/teacher_updates", "teacher/gmm_components"} <= set(tags["scalars"])
        assert {"tasks/length", "tasks/mass", "tasks/gravity"} <= set(tags["histograms"])
        assert len(events.Images("tasks/heatmap_length_x_mass_y")) == 2  # one per evaluation after step 0
        assert "teacher/exploit_heatmap_length_x_mass_y" in tags["images"]


def test_a_resumed_fleet_writes_the_uninterrupted_runs_tensorboard_events(fleet_run, killed_fleet):
    """Step 128's events of the killed fleet are dropped on resume and written again, once."""
    pytest.importorskip("tensorboard")
    for k in (0, 1):
        got, want = _events(killed_fleet / f"member-{k}" / "tb"), _events(fleet_run / f"member-{k}" / "tb")
        assert got.Tags()["scalars"] == want.Tags()["scalars"] and "eval/mastered_pct" in want.Tags()["scalars"]
        for tag in want.Tags()["scalars"]:
            assert [(e.step, e.value) for e in got.Scalars(tag)] == [(e.step, e.value) for e in want.Scalars(tag)], tag
        assert [e.step for e in got.Images("tasks/heatmap_length_x_mass_y")] == [128, 192]


def test_fleet_members_eval_csv_says_which_test_tasks_each_member_masters(fleet_run):
    """The test_mastered column of a single run: the walker suites read subsets of the test set from it."""
    for k in (0, 1):
        eval_csv = fleet_run / f"member-{k}" / "eval.csv"
        evals = pd.read_csv(eval_csv, dtype={"test_mastered": str})
        assert evals["test_mastered"].str.len().eq(100).all()  # the env's 100 test tasks
        whole = mastered_pct_of(eval_csv, np.ones(100, dtype=bool))["mastered_pct"]
        assert whole.tolist() == pytest.approx(evals["mastered_pct"].tolist())


def test_a_fleet_evaluates_on_the_test_set_it_is_given(tmp_path):
    config = _config(steps=32, eval_every=32, checkpoint_every=32, test_set="random:6:3",
                     algo_kwargs={"learning_starts": 32, "net_arch": [8]})
    train_fleet_out(config, 2, tmp_path / "run", progress=False)
    for k in (0, 1):
        evals = pd.read_csv(tmp_path / "run" / f"member-{k}" / "eval.csv", dtype={"test_mastered": str})
        assert evals["step"].tolist() == [0, 32] and evals["test_mastered"].str.len().eq(6).all()


def test_resume_of_a_complete_fleet_changes_nothing_and_other_settings_are_refused(fleet_run, capsys):
    stamp = (fleet_run / "member-0" / "eval.csv").stat().st_mtime_ns
    assert main(["train", "--fleet", "2", *SMALL, "--out", str(fleet_run), "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert (fleet_run / "member-0" / "eval.csv").stat().st_mtime_ns == stamp
    for change, message in ((["--fleet", "3"], "fleet of 2 students, not 3"),
                            (["--fleet", "2", "--seed", "5"], "seed was 1, now 5"),
                            ([], "is a fleet run"),  # continued as a single run: refused
                            (["--fleet", "2"], "already holds files")):  # no --resume
        resume = ["--resume"] if change != ["--fleet", "2"] else []
        assert main(["train", *SMALL, *change, "--out", str(fleet_run), *resume]) == 2
        assert message in capsys.readouterr().err
    assert main(["train", *SMALL, "--out", str(fleet_run / "member-0"), "--resume"]) == 2
    assert "member of a fleet run" in capsys.readouterr().err
    assert (fleet_run / "member-0" / "eval.csv").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("change, message", [
    (["--algo", "ppo", "--algo-kwargs", "n_steps=64"], "SAC or TD3"),
    (["--n-envs", "2"], "expected --n-envs 1, got 2"),
    (["--forget-every", "64"], "no forgetting student"),
    (["--algo-kwargs", "use_sde=true"], "unknown fleet hyper-parameters ['use_sde']"),
    (["--fleet", "0"], "expected a number of students >= 1"),
])
def test_what_a_fleet_cannot_train_is_a_clear_error_that_writes_nothing(tmp_path, capsys, change, message):
    out = tmp_path / "out"
    assert main(["train", *SMALL, "--fleet", "2", *change, "--out", str(out)]) == 2  # later flags win
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_members_differ_in_seed_only_and_keep_steps_derived_intervals():
    config = TrainConfig(env="teachgym/ContextualPendulum-v0", steps=1000, seed=7, algo="sac")
    members = member_configs(config, 3)
    assert [m.seed for m in members] == [7, 8, 9]
    assert all(m.derived == ("eval_every", "checkpoint_every") and m.eval_every == 50 for m in members)
    with pytest.raises(ValueError, match="differ only in teacher and seed"):
        FleetTrainer([config, TrainConfig(env="teachgym/ContextualPendulum-v0", steps=2000, algo="sac")], ["a", "b"], "f")


def test_a_single_run_folder_is_not_taken_for_a_fleet(tmp_path, capsys):
    out = tmp_path / "single"
    train(_config(steps=64, eval_every=64, checkpoint_every=64), out, progress=False)
    assert main(["train", "--fleet", "2", *SMALL, "--out", str(out), "--resume"]) == 2
    assert "is not a fleet run" in capsys.readouterr().err


# ----------------------------------------------------------------------------- walker suites

SUITE = {"suite": "walkers", "variants": ["teachgym/ContextualPendulum-v0"],
         "env_kwargs": {"context_obs": True, "max_episode_steps": 25},
         "teachers": ["random", "alp-gmm:fit_rate=4+potential_ks=[1,2]"], "seeds": 1, "algo": "sac", "n_envs": 1,
         "algo_kwargs": {"learning_starts": 32, "batch_size": 16, "train_freq": 8, "gradient_steps": 2, "net_arch": [8]},
         "steps": 96, "eval_every": 64}


def _suite(root: Path, out: str, *flags: str) -> list[str]:
    config = root / "suite.json"
    config.write_text(json.dumps(SUITE))
    return ["bench", "walkers", "--config", str(config), "--jobs", "1", "--out", str(root / out), *flags]


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    """The tiny suite run with one SB3 student per run, and with fleets of 3 (its two runs in one)."""
    root = tmp_path_factory.mktemp("suites")
    assert main(_suite(root, "single")) == 0
    assert main(_suite(root, "fleet", "--fleet", "3")) == 0
    return root


def test_a_suite_config_groups_runs_that_differ_in_teacher_and_seed_into_fleets():
    from teachgym.benchmarks.suites import make_config

    config = make_config("walkers", None, {**{k: v for k, v in SUITE.items() if k != "suite"}, "seeds": 2,
                                           "fleet": 3, "variants": ["teachgym/ContextualPendulum-v0",
                                                                    "teachgym/ContextualMountainCarContinuous-v0"]})
    runs = config.runs()
    # per env: random 0, random 1, alp-gmm 0 | alp-gmm 1 -- never two envs in one fleet
    assert config.chunks(runs) == [[0, 1, 2], [3], [4, 5, 6], [7]]
    assert all(r["learner"] == "fleet" for r in runs)
    assert "learner" not in make_config("walkers").runs()[0]  # the description of an SB3 run is unchanged


def test_a_suite_with_fleets_writes_the_same_tables_and_skips_finished_chunks(suites, capsys, monkeypatch):
    from teachgym.benchmarks import train as bench_train
    from teachgym.benchmarks.runner import read_curve

    runs = {p.name for p in (suites / "single" / "runs").iterdir()}
    assert {p.name for p in (suites / "fleet" / "runs").iterdir()} == runs and len(runs) == 2
    for name in runs:
        a, b = (read_curve(suites / d / "runs" / name / "curve.csv") for d in ("single", "fleet"))
        assert a.keys() == b.keys() and a["step"] == b["step"] == [0, 64, 96]
        assert json.loads((suites / "fleet" / "runs" / name / "meta.json").read_text())["run"]["learner"] == "fleet"
        assert (suites / "fleet" / "work" / name / "episodes.csv").exists()  # each run's training folder
    for table in ("summary.csv", "curves.csv"):
        a, b = (pd.read_csv(suites / d / table) for d in ("single", "fleet"))
        assert list(a.columns) == list(b.columns) and len(a) == len(b)
        assert a.iloc[:, :2].equals(b.iloc[:, :2]) if table == "summary.csv" else a["teacher"].equals(b["teacher"])
    assert len(find_runs(suites / "fleet")) == 2
    calls = []
    monkeypatch.setattr(bench_train, "run_curriculum_fleet", lambda *a, **k: calls.append(a))
    stamp = (suites / "fleet" / "runs" / sorted(runs)[0] / "meta.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(_suite(suites, "fleet", "--fleet", "3")) == 0  # every chunk finished: none runs
    assert calls == [] and (suites / "fleet" / "runs" / sorted(runs)[0] / "meta.json").stat().st_mtime_ns == stamp
    assert "ContextualPendulum-v0" in capsys.readouterr().out  # the table, from the stored results
    # results of one SB3 student per run are not taken for a fleet's, nor the other way round
    assert main(_suite(suites, "single", "--fleet", "3")) == 2
    assert "another configuration" in capsys.readouterr().err


def test_a_killed_suite_chunk_resumes_from_its_fleet_checkpoint(suites, monkeypatch):
    from teachgym.benchmarks.runner import read_curve

    with monkeypatch.context() as patch:
        patch.setattr(FleetTrainer, "_evaluate", _crash_after_evaluating(96))
        with pytest.raises(_Crash):
            main(_suite(suites, "killed", "--fleet", "2"))
    (chunk,) = [p for p in (suites / "killed" / "work").iterdir() if p.name.startswith("chunk-")]
    assert json.loads((chunk / "checkpoints" / "latest.json").read_text())["step"] == 64  # mid-episode
    assert not (suites / "killed" / "runs").exists() or not any((suites / "killed" / "runs").iterdir())
    assert main(_suite(suites, "killed", "--fleet", "2")) == 0
    for name in (p.name for p in (suites / "fleet" / "runs").iterdir()):
        a, b = (read_curve(suites / d / "runs" / name / "curve.csv") for d in ("fleet", "killed"))
        assert {k: v for k, v in a.items() if k != "wall_s"} == {k: v for k, v in b.items() if k != "wall_s"}
        episodes = pd.read_csv(suites / "fleet" / "work" / name / "episodes.csv")
        pd.testing.assert_frame_equal(episodes, pd.read_csv(suites / "killed" / "work" / name / "episodes.csv"))
        assert episodes["step"].tolist() == [25, 50, 75] and set(episodes["env"]) == {0}  # members in processes


def test_a_ppo_suite_cannot_run_as_fleets(tmp_path, capsys):
    args = ["bench", "control", "--fleet", "2", "--jobs", "1", "--out", str(tmp_path / "c")]
    assert main(args) == 2
    assert "SAC or TD3" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def _one(x: int, progress=None) -> dict:
    return {"value": x}


def _pair(runs, work_dirs, chunk_dir, progress=None) -> list:
    return [{"value": 1}]  # one result for a chunk of two runs


def test_the_runner_checks_its_chunks(tmp_path):
    from teachgym.benchmarks.runner import execute

    runs = [{"variant": "v", "teacher": "t", "seed": s, "x": s} for s in range(3)]
    for chunks in ([[0, 1]], [[0, 1], [1, 2]], [[0, 1, 2], []]):
        with pytest.raises(ValueError, match="each run index in exactly one"):
            execute(_one, runs, tmp_path / "a", units=lambda r: 1, jobs=1, chunks=chunks, work=True)
    with pytest.raises(ValueError, match="work=True"):
        execute(_one, runs, tmp_path / "b", units=lambda r: 1, jobs=1, chunks=[[0], [1], [2]])
    with pytest.raises(ValueError, match="expected one result per run"):
        execute(_pair, runs[:2], tmp_path / "c", units=lambda r: 1, jobs=1, chunks=[[0, 1]], work=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
