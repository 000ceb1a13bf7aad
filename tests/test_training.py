"""The training loop: evaluation rows, pickle-free checkpoints, exact resume, forgetting, bad input."""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from teachgym.io import load_state
from teachgym.students.sb3 import forget, initial_state_values, make_student
from teachgym.training import TrainConfig, Trainer, add_train_arguments, parse_kwargs, run_train, train

# Sub-process workers fork from a server that has imported teachgym (and torch) once instead of
# importing it each (3-4 s a run on a loaded machine); set before any test starts that server.
multiprocessing.set_forkserver_preload(["teachgym.training"])

# Pendulum with 20-step episodes: 20 episodes in 400 steps, so ALP-GMM (fit_rate=4) fits
# mixtures from the scores and its samples depend on the student's progress.
TINY = ["--env", "teachgym/ContextualPendulum-v0", "--env-kwargs", "context_obs=true", "max_episode_steps=20",
        "--teacher", "alp-gmm:fit_rate=4+potential_ks=[1,2]", "--algo", "sac", "--steps", "400", "--eval-every", "200",
        "--checkpoint-every", "100", "--eval-envs", "100", "--seed", "3", "--no-progress",
        "--algo-kwargs", "learning_starts=100", "batch_size=32", "train_freq=2", "gradient_steps=1",
        "net_arch=[16,16]"]


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(argv)


def _listing(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "full"
    assert run_train(_args([*TINY, "--out", str(out)])) == 0
    return out


def test_run_writes_evaluations_on_schedule_and_a_pickle_free_checkpoint(uninterrupted):
    evals = pd.read_csv(uninterrupted / "eval.csv")
    assert evals["step"].tolist() == [0, 200, 400]
    assert evals["mastered_pct"].between(0, 100).all()
    teacher = pd.read_csv(uninterrupted / "teacher.csv")
    assert teacher["teacher_updates"].iloc[-1] == 20 and teacher["gmm_components"].iloc[-1] >= 1
    exploit = [int(c) for c in teacher["exploit_hist_length"].iloc[-1].split()]  # the GMM part only
    assert sum(exploit) == 1000 and len(exploit) == 10
    assert len(pd.read_csv(uninterrupted / "episodes.csv")) == 20
    ckpt = uninterrupted / "checkpoints" / "step-000000000400"
    state = torch.load(ckpt / "model.pt", weights_only=True)  # refuses any pickled object
    assert "policy" in state["model"]["state_dicts"]
    for name in ("replay.npz", "teacher.npz", "loop.npz"):
        with np.load(ckpt / name, allow_pickle=False) as data:
            assert "__json__" in data.files
    assert load_state(ckpt / "teacher.npz")["n_updates"] == 20
    assert len(load_state(ckpt / "replay.npz")["observations"]) == 400


def test_sigkilled_run_resumes_to_the_uninterrupted_runs_evaluations_and_teacher_samples(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "teachgym.training", *TINY, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out / "checkpoints" / "latest.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.5))  # a random point after the first checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed; make it longer"
    assert run_train(_args([*TINY, "--out", str(out), "--resume"])) == 0
    full, resumed = pd.read_csv(uninterrupted / "eval.csv"), pd.read_csv(out / "eval.csv")
    pd.testing.assert_frame_equal(resumed.drop(columns="wall_s"), full.drop(columns="wall_s"))
    # every episode's task and score, in order: the teacher's samples after resume are the same
    pd.testing.assert_frame_equal(pd.read_csv(out / "episodes.csv"), pd.read_csv(uninterrupted / "episodes.csv"))


def test_resume_of_a_complete_run_changes_nothing(uninterrupted):
    before = _listing(uninterrupted)
    assert run_train(_args([*TINY, "--out", str(uninterrupted), "--resume"])) == 0
    after = _listing(uninterrupted)
    assert {k: v for k, v in after.items() if not k.endswith("run.json")} == \
        {k: v for k, v in before.items() if not k.endswith("run.json")}


@pytest.mark.parametrize("change, message", [
    (["--env", "teachgym/NoSuchEnv-v0"], "unknown env id"),
    (["--algo-kwargs", "bogus=1"], "bad sac hyper-parameter"),
    (["--teacher", "no-such-teacher"], "no-such-teacher"),
    (["--env-kwargs", "wings=3"], "does not take these kwargs"),
    (["--teacher", "robust-plr"], "only to be scored"),
])
def test_bad_input_is_a_clear_error_that_writes_nothing(tmp_path, capsys, change, message):
    out = tmp_path / "run"
    assert run_train(_args([*TINY, "--out", str(out), *change])) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_unknown_algorithm_is_refused_by_the_library_too(tmp_path):
    with pytest.raises(ValueError, match="unknown algorithm 'dqn'"):
        train(TrainConfig(env="teachgym/ContextualPendulum-v0", algo="dqn", steps=10), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_resume_refuses_a_folder_that_is_not_a_run_or_another_config(uninterrupted, tmp_path, capsys):
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    assert run_train(_args([*TINY, "--out", str(stray), "--resume"])) == 2
    assert "not a teachgym run" in capsys.readouterr().err
    assert run_train(_args([*TINY, "--out", str(stray)])) == 2  # a new run never writes into it
    assert [p.name for p in stray.iterdir()] == ["notes.txt"]

    before = _listing(uninterrupted)
    assert run_train(_args([*TINY, "--out", str(uninterrupted), "--resume", "--teacher", "random"])) == 2
    assert "another config" in capsys.readouterr().err
    assert run_train(_args([*TINY, "--out", str(uninterrupted)])) == 2  # no --resume: refused too
    assert _listing(uninterrupted) == before


def test_forgetting_student_gets_fresh_networks_and_an_empty_buffer_without_reseeding():
    import gymnasium as gym

    env = gym.make("teachgym/ContextualPendulum-v0")
    model = make_student("sac", env, seed=0, device="cpu",
                         overrides={"learning_starts": 10, "batch_size": 8, "net_arch": [8], "buffer_size": 100})
    model.learn(40)
    before = [p.detach().clone() for p in model.policy.parameters()]
    draw_after_seed = np.random.RandomState(0).rand()  # what a re-seeded global RNG would give
    forget(model)
    assert model.replay_buffer.pos == 0 and not model.replay_buffer.full
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    assert np.random.rand() != draw_after_seed


def test_forgetting_run_trains_through_the_resets_with_ppo(tmp_path):
    config = TrainConfig(env="teachgym/ContextualCartPole-v0", teacher="random", algo="ppo", steps=256,
                         forget_every=128, eval_every=256, eval_envs=100, env_kwargs={"max_episode_steps": 20},
                         algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1}, device="cpu")
    summary = train(config, tmp_path / "forget", progress=False)
    assert summary["steps"] == 256 and summary["episodes"] > 0


def test_two_subprocess_workers_report_every_episode_once(tmp_path):
    config = TrainConfig(env="teachgym/ContextualCartPole-v0", teacher="random", algo="ppo", steps=256, n_envs=2,
                         eval_every=256, eval_envs=100, env_kwargs={"max_episode_steps": 20},
                         algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1}, device="cpu")
    summary = train(config, tmp_path / "sub", progress=False)
    episodes = pd.read_csv(tmp_path / "sub" / "episodes.csv")
    teacher_state = load_state(tmp_path / "sub" / "checkpoints" / "step-000000000256" / "teacher.npz")
    assert len(episodes) == summary["episodes"] == teacher_state["n_updates"] >= 256 // 20
    # each row: the step its vector step ended at (two envs: even), which env, the task, score and success
    assert list(episodes.columns) == ["step", "env", "pole_length", "pole_mass", "cart_mass", "gravity", "force_mag",
                                      "score", "success"]
    assert set(episodes["env"]) == {0, 1} and (episodes["step"] % 2 == 0).all()
    assert episodes["step"].is_monotonic_increasing and episodes["step"].between(2, 256).all()
    assert set(episodes["success"]) <= {0, 1}  # the env's info["success"] at each episode's end


def test_sb3_zip_would_hold_pickled_data_which_our_checkpoints_avoid(tmp_path):
    """Why checkpoints use torch state dicts: SB3's own zip is not weights_only-loadable as a whole."""
    import gymnasium as gym

    model = make_student("ppo", gym.make("teachgym/ContextualCartPole-v0"), seed=0, device="cpu")
    model.save(tmp_path / "m.zip")
    with zipfile.ZipFile(tmp_path / "m.zip") as archive:
        assert "data" in archive.namelist()  # JSON with cloudpickled members (schedules, spaces)
        assert "serialized" in archive.read("data").decode()


def test_tensorboard_gets_the_evaluations_teacher_scalars_and_a_task_heatmap(uninterrupted):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(uninterrupted / "tb"), size_guidance={"images": 0}).Reload()
    tags = events.Tags()
    mastered = [e.value for e in events.Scalars("eval/mastered_pct")]
    assert [e.step for e in events.Scalars("eval/mastered_pct")] == [0, 200, 400]
    assert mastered == pytest.approx(pd.read_csv(uninterrupted / "eval.csv")["mastered_pct"].tolist())
    assert "teacher/gmm_components" in tags["scalars"]
    heatmaps = [t for t in tags["images"] if t.startswith("tasks/heatmap_length_x_mass_y")]
    images = events.Images(heatmaps[0])
    assert heatmaps and len(images) == 2  # one per evaluation after step 0
    assert images[0].width >= 400 and images[0].height >= 300  # a figure with axes, not a 20 x 20 px array
    assert any(t.startswith("teacher/exploit_heatmap_length_x_mass_y") for t in tags["images"])


def test_task_heatmap_figure_has_axes_in_task_units_and_counts_each_task():
    from teachgym.benchmarks.plots import task_pair_figure

    tasks = np.array([[0.5, 9.5], [0.5, 9.5], [2.9, 0.1], [1.0, 5.0]])
    fig = task_pair_figure(tasks, np.array([0.0, 0.0, 0.0]), np.array([3.0, 10.0, 1.0]), ("length", "mass", "noise"),
                           bins=10, title="tasks")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("length", "mass")
    assert ax.get_xlim() == (0.0, 3.0) and ax.get_ylim() == (0.0, 10.0)
    counts = ax.collections[0].get_array()
    assert counts.sum() == 4 and counts.max() == 2
    assert "of 3" in ax.get_title()  # says the space has more dimensions than the two drawn
    assert fig.axes[1].get_ylabel() == "tasks"  # the colour bar


def test_ray_backend_subprocess_workers_report_every_episode_once(tmp_path):
    ray = pytest.importorskip("ray")
    config = TrainConfig(env="teachgym/ContextualCartPole-v0", teacher="alp-gmm", algo="ppo", steps=256, n_envs=2,
                         eval_every=256, eval_envs=100, env_kwargs={"max_episode_steps": 20}, backend="ray",
                         algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1}, device="cpu")
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        summary = train(config, tmp_path / "ray", progress=False)
    finally:
        ray.shutdown()
    episodes = pd.read_csv(tmp_path / "ray" / "episodes.csv")
    teacher_state = load_state(tmp_path / "ray" / "checkpoints" / "step-000000000256" / "teacher.npz")
    assert len(episodes) == summary["episodes"] == teacher_state["n_updates"] >= 256 // 20


def test_a_progress_callable_is_told_every_step_once(tmp_path):
    config = TrainConfig(env="teachgym/ContextualCartPole-v0", teacher="random", algo="ppo", steps=256, n_envs=1,
                         eval_every=256, eval_envs=100, env_kwargs={"max_episode_steps": 20},
                         algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1}, device="cpu")
    told: list[int] = []
    train(config, tmp_path / "p", progress=told.append)
    assert len(told) >= 4 and all(k > 0 for k in told) and sum(told) == 256  # one call per PPO iteration


def test_kwargs_flags_read_json_and_python_literals():
    parsed = parse_kwargs(["context_obs=False,use_sde=True", "x=None", "lr=3e-4,body=classic_bipedal", "flag=true"])
    assert parsed == {"context_obs": False, "use_sde": True, "x": None, "lr": 3e-4, "body": "classic_bipedal", "flag": True}


@pytest.mark.parametrize("change, message", [
    (["--algo-kwargs", "learning_rate=abc"], "learning_rate='abc': expected float"),
    (["--algo-kwargs", "batch_size=abc"], "batch_size='abc': expected int"),
    (["--algo-kwargs", "gamma=NaN"], "gamma=nan: expected float (finite)"),
    (["--algo-kwargs", "net_arch=[16,0]"], "net_arch=[16, 0]: expected a list of positive layer sizes"),
    (["--algo-kwargs", "action_noise=0.1"], "action_noise=0.1: expected"),
    (["--device", "cuda"], "torch sees no CUDA GPU"),
])
def test_bad_values_are_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, change, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # --device cuda must not fall back to the CPU
    out = tmp_path / "run"
    assert run_train(_args([*TINY, "--out", str(out), *change])) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # no run.json: the corrected command is a fresh run, not a refused one


def test_a_failed_checkpoint_write_leaves_no_temporary_file_and_the_previous_checkpoint_counts(tmp_path, monkeypatch,
                                                                                               capsys):
    import errno

    saves = []
    real_save = torch.save

    def save(obj, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:  # the second checkpoint hits a full disk half-way through model.pt
            real_save(obj, path, *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "full-disk"
    assert run_train(_args([*TINY, "--out", str(out)])) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert [p.name for p in out.rglob("*tmp*")] == []
    assert load_state(out / "checkpoints" / "step-000000000100" / "loop.npz")["step"] == 100
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest.json", "step-000000000100"]
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == 100


# ----------------------------------------------------------------------------- exact resume, several envs
# Pendulum episodes of 25 steps: the checkpoint at step 64 falls in the middle of every worker's
# episode, so a resumed run must bring back the episodes in progress, not restart them.
SMALL_ALGO_KWARGS = {
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "net_arch": [8]},
    "sac": {"learning_starts": 32, "batch_size": 16, "train_freq": 8, "gradient_steps": 2, "net_arch": [8]},
    "td3": {"learning_starts": 32, "batch_size": 16, "train_freq": 8, "gradient_steps": 2, "net_arch": [8]},
}


def _small(algo: str, n_envs: int, steps: int = 192, **changes) -> TrainConfig:
    changes.setdefault("vec", "dummy" if algo == "td3" else "auto")
    return TrainConfig(env="teachgym/ContextualPendulum-v0", teacher="alp-gmm:fit_rate=4+potential_ks=[1,2]",
                       algo=algo, steps=steps, n_envs=n_envs, seed=1, device="cpu", eval_every=128,
                       checkpoint_every=64, eval_envs=100, algo_kwargs=SMALL_ALGO_KWARGS[algo],
                       env_kwargs={"context_obs": True, "max_episode_steps": 25}, **changes)


def _tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_csv(out / "eval.csv").drop(columns="wall_s"), pd.read_csv(out / "episodes.csv")


def _assert_same_run(a: Path, b: Path) -> None:
    for left, right in zip(_tables(a), _tables(b)):
        pd.testing.assert_frame_equal(left, right, check_exact=True)


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    """Uninterrupted runs, made on first use and shared by the tests below."""
    made: dict[tuple[str, int], Path] = {}

    def get(algo: str, n_envs: int) -> Path:
        if (algo, n_envs) not in made:
            out = tmp_path_factory.mktemp(f"{algo}{n_envs}") / "run"
            train(_small(algo, n_envs), out, progress=False)
            made[algo, n_envs] = out
        return made[algo, n_envs]

    return get


class _Crash(Exception):
    pass


@pytest.mark.parametrize("algo, n_envs", [("ppo", 1), ("ppo", 2), ("sac", 1), ("sac", 2), ("td3", 1), ("td3", 2)])
def test_a_run_interrupted_mid_episode_resumes_to_the_uninterrupted_runs_numbers(small_runs, tmp_path, monkeypatch,
                                                                              algo, n_envs):
    """Two envs run in sub-processes (through the ordered teacher server), TD3's in one process."""
    from teachgym.training import Trainer

    evaluate = Trainer._evaluate

    def crash_at_128(self, step):  # dies after writing step 128's rows, before its checkpoint
        evaluate(self, step)
        if step == 128:
            raise _Crash

    out = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_evaluate", crash_at_128)
        with pytest.raises(_Crash):
            train(_small(algo, n_envs), out, progress=False)
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == 64
    train(_small(algo, n_envs), out, resume=True, progress=False)
    _assert_same_run(out, small_runs(algo, n_envs))


def test_two_runs_with_subprocess_workers_and_the_same_seed_give_the_same_numbers(small_runs, tmp_path):
    out = tmp_path / "again"
    train(_small("sac", 2), out, progress=False)
    _assert_same_run(out, small_runs("sac", 2))


SMALL_PPO = ["--env", "teachgym/ContextualPendulum-v0", "--env-kwargs", "context_obs=true", "max_episode_steps=25",
             "--teacher", "alp-gmm:fit_rate=4+potential_ks=[1,2]", "--algo", "ppo", "--seed", "1", "--eval-envs",
             "100", "--no-progress", "--algo-kwargs", "n_steps=64", "batch_size=32", "n_epochs=1", "net_arch=[8]"]


def test_resume_with_a_larger_budget_continues_the_run_at_its_own_rhythm(tmp_path, capsys):
    out, longer = tmp_path / "extended", tmp_path / "longer"
    assert run_train(_args([*SMALL_PPO, "--steps", "128", "--out", str(out)])) == 0  # evaluates every 128 // 20 = 6
    assert run_train(_args([*SMALL_PPO, "--steps", "192", "--out", str(out), "--resume"])) == 0
    assert pd.read_csv(out / "eval.csv")["step"].tolist() == [0, 64, 128, 192]
    if importlib.util.find_spec("tensorboard") is not None:  # the point of the checkpoint's step stays
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(out / "tb")).Reload()
        assert [e.step for e in events.Scalars("eval/mastered_pct")] == [0, 64, 128, 192]
    # the same as a run given the whole budget (and the same intervals) from the start
    assert run_train(_args([*SMALL_PPO, "--steps", "192", "--eval-every", "6", "--checkpoint-every", "12",
                            "--out", str(longer)])) == 0
    _assert_same_run(out, longer)
    saved = json.loads((out / "run.json").read_text())
    assert saved["status"] == "complete" and saved["config"]["steps"] == 192 and saved["config"]["eval_every"] == 6
    # a change that would alter what is done already is refused, and names the setting
    capsys.readouterr()
    assert run_train(_args([*SMALL_PPO, "--steps", "256", "--seed", "2", "--out", str(out), "--resume"])) == 2
    assert "seed was 1, now 2" in capsys.readouterr().err


def test_a_control_suite_run_killed_mid_episode_resumes_to_the_uninterrupted_curve(tmp_path, monkeypatch):
    """``teachgym bench control`` trains through run_curriculum (PPO, envs stepped in one process)."""
    from teachgym.benchmarks.train import run_curriculum
    from teachgym.training import Trainer

    run = dict(student="control", variant="ContextualPendulum-v0", env="teachgym/ContextualPendulum-v0",
               teacher="alp-gmm:fit_rate=4+potential_ks=[1,2]", seed=0,
               env_kwargs={"context_obs": True, "max_episode_steps": 25}, algo="ppo",
               algo_kwargs=SMALL_ALGO_KWARGS["ppo"], n_envs=2, steps=192, eval_every=64, device="cpu")
    full = run_curriculum(**run, work_dir=str(tmp_path / "full"))
    evaluate = Trainer._evaluate

    def crash_at_128(self, step):
        evaluate(self, step)
        if step == 128:
            raise _Crash

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_evaluate", crash_at_128)
        with pytest.raises(_Crash):
            run_curriculum(**run, work_dir=str(tmp_path / "killed"))
    resumed = run_curriculum(**run, work_dir=str(tmp_path / "killed"))  # the runner's rerun resumes it
    assert {k: v for k, v in resumed.items() if k != "wall_s"} == {k: v for k, v in full.items() if k != "wall_s"}
    assert len(full["step"]) == 4
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "killed" / "episodes.csv"),
                                  pd.read_csv(tmp_path / "full" / "episodes.csv"))


def test_a_checkpoint_of_the_previous_format_still_resumes(tmp_path):
    """Checkpoints written before exact resume (workers as JSON, no actions): their episodes restart."""
    from teachgym.io import save_state

    out = tmp_path / "old"
    train(_small("ppo", 1, steps=64), out, progress=False)
    loop_path = out / "checkpoints" / "step-000000000064" / "loop.npz"
    loop = load_state(loop_path)
    workers = [{k: v for k, v in w.items() if k != "actions"} for w in loop.pop("workers")]
    loop.pop("next_tasks"), loop.pop("episode_starts")
    save_state(loop_path, {**loop, "workers": json.dumps(workers)})
    summary = train(_small("ppo", 1, steps=128), out, resume=True, progress=False)
    assert summary["steps"] == 128 and pd.read_csv(out / "eval.csv")["step"].tolist() == [0, 64, 128]


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_the_teacher_gets_the_critics_value_of_each_tasks_first_state(tmp_path, algo):
    """SPDL (TeachMyAgent's v1 reads V(s0) from the critic): the bound estimate is the critic's
    value of the reset observation, rescaled like scores, and the same at every call."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    config = TrainConfig(env="teachgym/ContextualPendulum-v0", teacher="spdl-v1", algo=algo, steps=256, seed=3,
                         env_kwargs={"context_obs": True})
    trainer = Trainer(config, tmp_path / "run", progress=False)
    env = DummyVecEnv([lambda: gym.make(config.env, **config.env_kwargs)])
    trainer.model = make_student(algo, env, seed=3, device="cpu")
    trainer._bind_value_estimate()
    tasks = np.random.default_rng(0).uniform(trainer.space.low, trainer.space.high, size=(5, len(trainer.space.low)))
    values = trainer.teacher.value_estimate(tasks)
    assert values.shape == (5,) and np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))
    assert np.array_equal(values, trainer.teacher.value_estimate(tasks))
    raw = initial_state_values(trainer.model, gym.make(config.env, **config.env_kwargs), tasks, config.seed)
    lo, hi = trainer._value_env.unwrapped.score_range
    assert np.allclose(values, np.clip((raw - lo) / (hi - lo), 0, 1))
    assert len(set(raw.round(6))) > 1  # a value per task, not one number
    trainer._value_env.close()
