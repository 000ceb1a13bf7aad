"""Students that normalise observations and returns: the walker preset, pickle-free statistics,
exact resume, raw returns for the teacher, frozen statistics for evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from teachgym.io import load_state, save_state
from teachgym.students.sb3 import (
    PRESETS,
    FrozenNormalization,
    acting_policy,
    check_overrides,
    initial_state_values,
    load_normalize_state,
    make_student,
    normalize_state,
)
from teachgym.training import TrainConfig, Trainer, check_config, mastered_pct_of, mastered_string, train
from teachgym.wrappers import rescale_score

PENDULUM = "teachgym/ContextualPendulum-v0"
PENDULUM_KWARGS = {"context_obs": True, "max_episode_steps": 25}


def _venv(n: int = 2) -> DummyVecEnv:
    return DummyVecEnv([lambda: Monitor(gym.make(PENDULUM, **PENDULUM_KWARGS)) for _ in range(n)])


def _trained(algo: str = "walker-ppo", **overrides) -> PPO:
    model = make_student(algo, _venv(), seed=0, device="cpu",
                         overrides={"n_steps": 32, "batch_size": 32, "n_epochs": 1, "net_arch": [8], **overrides})
    model.learn(64)
    return model


def test_the_walker_preset_resolves_to_normalising_ppo_with_rl_zoos_discount():
    preset = PRESETS["walker-ppo"]
    assert preset.algo is PPO and preset.normalize and preset.kwargs["gamma"] == 0.999
    check_config(TrainConfig(env="teachgym/StumpTracks-v0", algo="walker-ppo", env_kwargs={"body": "classic_bipedal"}))
    model = make_student("walker-ppo", _venv(), seed=0, device="cpu")
    norm = model.get_vec_normalize_env()
    assert norm is not None and norm.norm_obs and norm.norm_reward and norm.gamma == model.gamma == 0.999
    assert model.n_steps == preset.kwargs["n_steps"] and model.batch_size == preset.kwargs["batch_size"]
    assert make_student("walker-ppo", _venv(), seed=0, device="cpu",
                        overrides={"normalize": False}).get_vec_normalize_env() is None
    assert make_student("ppo", _venv(), seed=0, device="cpu", overrides={"normalize": True}).get_vec_normalize_env()
    assert make_student("ppo", _venv(), seed=0, device="cpu").get_vec_normalize_env() is None
    with pytest.raises(ValueError, match="normalize='yes': expected true or false"):
        check_overrides("walker-ppo", {"normalize": "yes"})


def test_normalisation_statistics_round_trip_through_an_npz_without_pickle(tmp_path):
    model = _trained()
    state = normalize_state(model)
    assert state["obs_rms"]["count"] > 64 and state["returns"].shape == (2,)
    save_state(tmp_path / "normalize.npz", state)
    with np.load(tmp_path / "normalize.npz", allow_pickle=False) as data:  # plain arrays only
        assert "__json__" in data.files
    fresh = make_student("walker-ppo", _venv(), seed=1, device="cpu",
                         overrides={"n_steps": 32, "batch_size": 32, "n_epochs": 1, "net_arch": [8]})
    load_normalize_state(fresh, load_state(tmp_path / "normalize.npz"))
    a, b = model.get_vec_normalize_env(), fresh.get_vec_normalize_env()
    for name in ("obs_rms", "ret_rms"):
        np.testing.assert_array_equal(getattr(a, name).mean, getattr(b, name).mean)
        np.testing.assert_array_equal(getattr(a, name).var, getattr(b, name).var)
        assert getattr(a, name).count == getattr(b, name).count
    np.testing.assert_array_equal(a.returns, b.returns)
    obs = np.ones((3, *a.observation_space.shape), dtype=np.float32)
    np.testing.assert_array_equal(a.normalize_obs(obs), b.normalize_obs(obs))
    # statistics that do not fit the model are refused, saying why
    with pytest.raises(ValueError, match="checkpoint has, model does not normalise"):
        load_normalize_state(make_student("ppo", _venv(), seed=0, device="cpu"), state)
    with pytest.raises(ValueError, match="checkpoint has none, model normalises"):
        load_normalize_state(fresh, {})
    with pytest.raises(ValueError, match="normalisation settings"):
        load_normalize_state(make_student("ppo", _venv(), seed=0, device="cpu",
                                          overrides={"normalize": True, "gamma": 0.9}), state)
    with pytest.raises(ValueError, match="returns"):
        load_normalize_state(fresh, {**state, "returns": np.zeros(3)})


def test_evaluation_reads_the_statistics_without_changing_them():
    model = _trained()
    norm = model.get_vec_normalize_env()
    before = (norm.obs_rms.mean.copy(), norm.obs_rms.count)
    policy = acting_policy(model)
    assert isinstance(policy, FrozenNormalization)
    obs = np.random.default_rng(0).normal(size=(5, *norm.observation_space.shape)).astype(np.float32)
    actions, _ = policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, model.predict(norm.normalize_obs(obs), deterministic=True)[0])
    assert not np.array_equal(actions, model.predict(obs, deterministic=True)[0])  # raw obs act otherwise
    np.testing.assert_array_equal(norm.obs_rms.mean, before[0])
    assert norm.obs_rms.count == before[1]
    plain = make_student("ppo", _venv(), seed=0, device="cpu")
    assert acting_policy(plain) is plain
    with pytest.raises(ValueError, match="unnormalised"):
        FrozenNormalization(plain)


def test_the_critics_value_of_first_states_is_in_raw_reward_units():
    model = _trained()
    norm = model.get_vec_normalize_env()
    env = gym.make(PENDULUM, **PENDULUM_KWARGS)
    tasks = env.unwrapped.test_set()[:2]
    values = initial_state_values(model, env, tasks, seed=4)
    obs = np.stack([env.reset(seed=4 + i, options={"task": t})[0] for i, t in enumerate(tasks)])
    import torch

    with torch.no_grad():
        normalised = model.policy.predict_values(model.policy.obs_to_tensor(norm.normalize_obs(obs))[0])
    scale = np.sqrt(norm.ret_rms.var + norm.epsilon)
    assert scale != pytest.approx(1.0)
    np.testing.assert_allclose(values, scale * normalised.numpy().ravel(), rtol=1e-6)


SMALL = {"ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "net_arch": [8], "normalize": True},
         "sac": {"learning_starts": 32, "batch_size": 16, "train_freq": 8, "gradient_steps": 2, "net_arch": [8],
                 "normalize": True}}


def _small(algo: str, n_envs: int, vec: str) -> TrainConfig:
    return TrainConfig(env=PENDULUM, teacher="alp-gmm:fit_rate=4+potential_ks=[1,2]", algo=algo, steps=192,
                       n_envs=n_envs, seed=1, device="cpu", eval_every=128, checkpoint_every=64, eval_envs=100,
                       algo_kwargs=SMALL[algo], env_kwargs=PENDULUM_KWARGS, vec=vec)


class _Crash(Exception):
    pass


@pytest.mark.parametrize("algo, n_envs, vec", [("ppo", 2, "dummy"), ("sac", 1, "dummy")])
def test_a_normalising_run_killed_mid_episode_resumes_to_the_uninterrupted_runs_numbers(tmp_path, monkeypatch,
                                                                                    algo, n_envs, vec):
    full = tmp_path / "full"
    train(_small(algo, n_envs, vec), full, progress=False)
    assert "obs_rms" in load_state(full / "checkpoints" / "step-000000000192" / "normalize.npz")
    evaluate = Trainer._evaluate

    def crash_at_128(self, step):  # dies after step 128's rows, before its checkpoint: resumes from 64
        evaluate(self, step)
        if step == 128:
            raise _Crash

    out = tmp_path / "killed"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_evaluate", crash_at_128)
        with pytest.raises(_Crash):
            train(_small(algo, n_envs, vec), out, progress=False)
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == 64
    train(_small(algo, n_envs, vec), out, resume=True, progress=False)
    for name in ("eval.csv", "episodes.csv"):
        left, right = pd.read_csv(out / name), pd.read_csv(full / name)
        pd.testing.assert_frame_equal(left.drop(columns="wall_s", errors="ignore"),
                                      right.drop(columns="wall_s", errors="ignore"), check_exact=True)
    a, b = (load_state(p / "checkpoints" / "step-000000000192" / "normalize.npz") for p in (out, full))
    np.testing.assert_array_equal(a["obs_rms"]["mean"], b["obs_rms"]["mean"])
    np.testing.assert_array_equal(a["returns"], b["returns"])


def test_the_teacher_gets_raw_returns_under_normalisation(tmp_path: Path):
    trainer = Trainer(_small("ppo", 2, "dummy"), tmp_path / "run", progress=False)
    trainer.run()
    norm = trainer.model.get_vec_normalize_env()
    assert norm.ret_rms.var > 4.0  # rewards are scaled down a lot: a normalised score would differ
    raw = [info["r"] for info in trainer.model.ep_info_buffer]  # Monitor, below the normalisation
    scores = pd.read_csv(tmp_path / "run" / "episodes.csv")["score"].to_numpy()
    score_range = gym.make(PENDULUM, **PENDULUM_KWARGS).unwrapped.score_range
    assert len(raw) == len(scores) >= 6
    # Monitor rounds its returns to 6 digits
    np.testing.assert_allclose(scores, [rescale_score(r, score_range) for r in raw], atol=1e-5)
    evals = pd.read_csv(tmp_path / "run" / "eval.csv", dtype={"test_mastered": str})
    n_test = len(gym.make(PENDULUM, **PENDULUM_KWARGS).unwrapped.test_set())
    assert evals["test_mastered"].str.len().eq(n_test).all()
    # the column gives the whole test set's share back, and any subset's
    whole = mastered_pct_of(tmp_path / "run" / "eval.csv", np.ones(n_test, dtype=bool))
    np.testing.assert_allclose(whole["mastered_pct"], evals["mastered_pct"], atol=1e-4)


def test_the_share_of_a_subset_of_the_test_set_is_read_from_eval_csv(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("step,mastered_pct,test_mastered\n0,0,----\n10,50,++--\n20,75,+-++\n")
    assert mastered_string(np.array([True, False, False])) == "+--"
    easy = mastered_pct_of(path, np.array([True, True, False, False]))
    assert easy["step"].tolist() == [0, 10, 20] and easy["mastered_pct"].tolist() == [0.0, 100.0, 50.0]
    with pytest.raises(ValueError, match="subset of 3 tasks"):
        mastered_pct_of(path, np.ones(3, dtype=bool))
    path.write_text("step,mastered_pct\n0,0\n")
    with pytest.raises(ValueError, match="no test_mastered column"):
        mastered_pct_of(path, np.ones(4, dtype=bool))


def test_statistics_missing_from_a_checkpoint_are_refused_by_name():
    model = _trained()
    state = normalize_state(model)
    with pytest.raises(ValueError, match="expected obs_rms and ret_rms"):
        load_normalize_state(model, {k: v for k, v in state.items() if k != "ret_rms"})
    with pytest.raises(ValueError, match="expected obs_rms and ret_rms"):
        load_normalize_state(model, {**state, "obs_rms": {"mean": [0.0]}})


def test_students_leave_no_sb3_log_folder_in_the_temp_dir(tmp_path, monkeypatch):
    # SB3's learn() without a logger of its own makes an empty SB3-<date> folder in /tmp each call.
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _trained("ppo")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("algo", ["walker-ppo", "sac"])
def test_multi_tensor_adam_trains_to_the_same_bits_as_pytorchs_default(algo):
    def parameters(foreach: bool) -> torch.Tensor:
        overrides = {"net_arch": [16, 16]}
        if algo == "sac":
            overrides.update(learning_starts=16, batch_size=16, train_freq=4, gradient_steps=4)
        else:
            overrides.update(n_steps=32, batch_size=16, n_epochs=3)
        model = make_student(algo, _venv(), seed=3, device="cpu", overrides=overrides)
        optimizers = [o for o in vars(model.policy).values() if isinstance(o, torch.optim.Optimizer)]
        optimizers += [m.optimizer for m in vars(model.policy)["_modules"].values() if hasattr(m, "optimizer")]
        assert optimizers and all(g["foreach"] for o in optimizers for g in o.param_groups)
        if not foreach:
            for optimizer in optimizers:
                for group in optimizer.param_groups:
                    group["foreach"] = None  # PyTorch's choice: the per-tensor loop on a CPU
        model.learn(128)
        return torch.cat([p.detach().flatten() for p in model.policy.parameters()])

    assert torch.equal(parameters(True), parameters(False))


def test_rebuilt_and_resumed_students_keep_multi_tensor_adam():
    from teachgym.students.sb3 import forget, use_foreach_adam

    model = make_student("sac", _venv(), seed=0, device="cpu", overrides={"net_arch": [8], "ent_coef": "auto"})
    optimizers = [model.actor.optimizer, model.critic.optimizer, model.ent_coef_optimizer]
    assert all(g["foreach"] for o in optimizers for g in o.param_groups)
    forget(model)
    optimizers = [model.actor.optimizer, model.critic.optimizer, model.ent_coef_optimizer]
    assert all(g["foreach"] for o in optimizers for g in o.param_groups)
    for group in model.actor.optimizer.param_groups:
        group["foreach"] = None  # as loaded from a checkpoint written before
    use_foreach_adam(model)
    assert all(g["foreach"] for g in model.actor.optimizer.param_groups)
