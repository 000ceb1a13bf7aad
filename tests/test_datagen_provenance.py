"""Checkpoints of recorded datagen episodes: a resumed episode restores its student, env and policy
instead of training again, ends as the uninterrupted one, replays what has no usable checkpoint and
never uses a checkpoint that does not match its records."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from tiny_hf import save_tiny_gpt2

from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.policies import POLICIES, TeacherPolicy
from teachgym.envs.datagen.provenance import Checkpoints, checkpoint_path, read_records, run_recorded_episode
from teachgym.io import load_state, save_state
from teachgym.students.lm import TransformerStudent

SMALL = {"budget": 12, "n_eval": 1, "train_steps": 2}
LM = {"d_model": 16, "n_heads": 2, "n_layers": 1, "max_answer": 4, "batch_size": 8}


def _setup(level="skill_list", policy="uniform", iterations=3, domain="math", **kw):
    student = {} if domain == "vqa" or "student" in kw else {"student_kwargs": LM}
    env = DataGenEnv(domain, level, iterations=iterations, device="cpu", **{**SMALL, **student, **kw})
    pol = TeacherPolicy("random", env, seed=5) if policy == "uniform" else POLICIES[policy](env, seed=5)
    return env, pol


def _run(path, **setup):
    """The episode recorded in ``path`` (resumed from what is there): (result, env, policy)."""
    env, policy = _setup(**setup)
    return run_recorded_episode(env, policy, path, seed=3, run={"test": 1}), env, policy


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Uninterrupted episodes by settings, with their checkpoint after every iteration (``*.iteration-N``)."""
    done = {}

    def get(**setup):
        key = repr(sorted(setup.items()))
        if key not in done:
            path = tmp_path_factory.mktemp("full") / "episode.jsonl"
            env, policy = _setup(**setup)

            def keep(info, seconds):
                shutil.copy(checkpoint_path(path), f"{checkpoint_path(path)}.iteration-{info['iteration']}")

            done[key] = (run_recorded_episode(env, policy, path, seed=3, run={"test": 1}, on_step=keep), env, policy), path
        return done[key]

    return get


def _killed(full_path, iterations, folder):
    """What a process killed after ``iterations`` iterations of the episode in ``full_path`` leaves in ``folder``."""
    path = folder / "episode.jsonl"
    lines = full_path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: 1 + iterations]))
    shutil.copy(f"{checkpoint_path(full_path)}.iteration-{iterations}", checkpoint_path(path))
    return path


def _same_end(a, b):
    """Two episodes (result, env, policy) end the same: infos, student weights and optimiser, env and policy state."""
    (ra, env_a, pol_a), (rb, env_b, pol_b) = a, b
    assert len(ra["infos"]) == len(rb["infos"])
    for ia, ib in zip(ra["infos"], rb["infos"]):
        assert set(ia) == set(ib)
        for key in ia:
            assert np.array_equal(ia[key], ib[key]) if isinstance(ia[key], np.ndarray) else ia[key] == ib[key], key
    sa, sb = env_a.state_dict(), env_b.state_dict()
    for name, w in sa["student"]["weights"].items():
        assert np.array_equal(w["array"], sb["student"]["weights"][name]["array"]), name
    for i, moments in sa["student"]["optimizer"]["state"].items():
        for k, v in moments.items():
            assert np.array_equal(v["array"], sb["student"]["optimizer"]["state"][i][k]["array"]), (i, k)
    assert sa["np_random"] == sb["np_random"] and sa["student"]["rng"] == sb["student"]["rng"]
    assert sa["forest"] == sb["forest"] and [e.prompt for e in env_a.train_data] == [e.prompt for e in env_b.train_data]
    assert repr(pol_a.state_dict()) == repr(pol_b.state_dict())


@pytest.mark.parametrize("setup", [{}, {"student_reset": "base", "iterations": 2},
                                   {"level": "skill_tree", "policy": "random-explore-exploit", "student_reset": "base", "iterations": 2},
                                   {"level": "open_ended", "policy": "dirichlet-allocation", "iterations": 2}])
def test_a_resumed_episode_restores_its_checkpoint_instead_of_training_and_ends_as_the_uninterrupted_one(tmp_path, monkeypatch, uninterrupted, setup):
    full, full_path = uninterrupted(**setup)
    killed_after = setup.get("iterations", 3) - 1
    path = _killed(full_path, killed_after, tmp_path)
    fits, predictions = [], []
    fit, predict = TransformerStudent.fit, TransformerStudent.predict
    monkeypatch.setattr(TransformerStudent, "fit", lambda self, data, steps: fits.append(steps) or fit(self, data, steps))
    monkeypatch.setattr(TransformerStudent, "predict", lambda self, data: predictions.append(len(data)) or predict(self, data))
    resumed = _run(path, **setup)
    assert resumed[0]["restored"] == killed_after and resumed[0]["replayed"] == 0 and resumed[0]["checkpoint_ignored"] is None
    # Only the last iteration trained and evaluated (the skill tree also asks the student about the new data).
    assert len(fits) == 1 and len(predictions) == 2 + (setup.get("level") == "skill_tree")
    _same_end(full, resumed)
    assert path.read_text().count("\n") == killed_after + 2 and load_state(checkpoint_path(path))["iteration"] == killed_after + 1


def test_the_hf_lora_student_checkpoints_its_adapter_and_resumes_exactly(tmp_path, uninterrupted):
    save_tiny_gpt2(tmp_path / "model")
    from teachgym.students.lm import HFLoRAStudent

    def student(seed, device):
        return HFLoRAStudent(str(tmp_path / "model"), tokenizer="char", target_modules=["c_attn"], max_len=40, max_new_tokens=3,
                             batch_size=4, seed=seed, device=device)

    setup = {"iterations": 2, "student": student, "budget": 6}
    full, full_path = uninterrupted(**setup)
    path = _killed(full_path, 1, tmp_path)
    weights = load_state(checkpoint_path(path))["env"]["student"]["weights"]
    assert weights and all("lora_" in name for name in weights)  # the adapter only, not the base model
    resumed = _run(path, **setup)
    assert resumed[0]["restored"] == 1
    _same_end(full, resumed)


def test_the_vqa_student_resumes_exactly(tmp_path, uninterrupted):
    setup = {"domain": "vqa", "iterations": 2}
    full, full_path = uninterrupted(**setup)
    resumed = _run(_killed(full_path, 1, tmp_path), **setup)
    assert resumed[0]["restored"] == 1 and all(e.image is not None for e in resumed[1].train_data)
    _same_end(full, resumed)


@pytest.mark.parametrize("case", ["none", "behind"])
def test_iterations_without_a_checkpoint_are_replayed_from_their_records(tmp_path, uninterrupted, case):
    full, full_path = uninterrupted()
    path = _killed(full_path, 2, tmp_path)
    if case == "none":
        checkpoint_path(path).unlink()
    else:  # killed between the record of iteration 2 and its checkpoint
        shutil.copy(f"{checkpoint_path(full_path)}.iteration-1", checkpoint_path(path))
    resumed = _run(path)
    assert (resumed[0]["restored"], resumed[0]["replayed"]) == ((0, 2) if case == "none" else (1, 1))
    assert resumed[0]["resume_mismatches"] == 0 and resumed[0]["checkpoint_ignored"] is None
    _same_end(full, resumed)


def _torn(file, full_path):
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _other_episode(file, full_path):
    shutil.copy(checkpoint_path(full_path.parent / "again.jsonl"), file)


def _other_student(file, full_path):
    state = load_state(file)
    state["env"]["student"]["weights"]["tok.weight"]["array"] = np.zeros((3, 3), np.float32)
    save_state(file, state)


def _other_settings(file, full_path):
    state = load_state(file)
    state["env"]["settings"]["train_steps"] = 99
    save_state(file, state)


def test_a_checkpoint_that_does_not_match_its_records_is_ignored_with_the_reason_and_the_episode_replayed(tmp_path, caplog, uninterrupted):
    full, full_path = uninterrupted()
    path = _killed(full_path, 2, tmp_path)
    _torn(checkpoint_path(path), full_path)
    with caplog.at_level(logging.WARNING, "teachgym.envs.datagen.provenance"):
        resumed = _run(path)
    assert resumed[0]["restored"] == 0 and resumed[0]["replayed"] == 2 and "not a teachgym state file" in resumed[0]["checkpoint_ignored"]
    assert any("checkpoint ignored" in r.message and "not a teachgym state file" in r.message for r in caplog.records)
    _same_end(full, resumed)  # the replay, from an untouched env and policy


@pytest.mark.parametrize("damage, reason", [(_other_episode, "does not match record 2"), (_other_student, "weight tok.weight"),
                                            (_other_settings, "settings")])
def test_a_checkpoint_of_another_episode_student_or_settings_is_not_used(tmp_path, uninterrupted, damage, reason):
    full, full_path = uninterrupted()
    if not checkpoint_path(full_path.parent / "again.jsonl").exists():  # the same settings: only the records' timings differ
        env, policy = _setup(iterations=2)
        run_recorded_episode(env, policy, full_path.parent / "again.jsonl", seed=3, run={"test": 1})
    path = _killed(full_path, 2, tmp_path)
    damage(checkpoint_path(path), full_path)
    env, policy = _setup()
    fresh = _setup()
    fresh[0].reset(seed=3)
    checkpoints = Checkpoints(path, read_records(path)[0], env, policy)
    restored, why, obs, info = checkpoints.restore(read_records(path)[1:], seed=3)
    assert restored == 0 and reason in why
    # The policy untouched, the env reset anew.
    assert repr(policy.state_dict()) == repr(fresh[1].state_dict()) and info["test_mean_accuracy"] == full[0]["infos"][0]["test_mean_accuracy"]
    assert env.iteration == 0 and env.state_dict()["student"]["rng"] == fresh[0].state_dict()["student"]["rng"]


def test_a_policy_without_state_dict_is_not_checkpointed_and_resumes_by_replay(tmp_path):
    class Plain:
        def __init__(self, env):
            self.inner = TeacherPolicy("random", env, seed=5)

        def act(self, obs, info):
            return self.inner.act(obs, info)

        def observe(self, obs, reward, info):
            self.inner.observe(obs, reward, info)

    path = tmp_path / "episode.jsonl"
    env = DataGenEnv("math", "skill_list", iterations=2, device="cpu", student_kwargs=LM, **SMALL)
    result = run_recorded_episode(env, Plain(env), path, seed=3)
    assert not checkpoint_path(path).exists()
    env = DataGenEnv("math", "skill_list", iterations=2, device="cpu", student_kwargs=LM, **SMALL)
    again = run_recorded_episode(env, Plain(env), path, seed=3)
    assert again["replayed"] == 2 and again["resume_mismatches"] == 0
    assert [i["test_mean_accuracy"] for i in again["infos"]] == [i["test_mean_accuracy"] for i in result["infos"]]


def test_student_state_refuses_another_student_and_carries_bfloat16(tmp_path):
    from teachgym.students.state import array_to_tensor, tensor_to_array

    t = torch.randn(3, 2).to(torch.bfloat16)
    saved = tensor_to_array(t)
    save_state(tmp_path / "t.npz", {"t": saved})
    assert torch.equal(array_to_tensor(load_state(tmp_path / "t.npz")["t"], "t", like=t), t)
    a, b = TransformerStudent(device="cpu", seed=0, **LM), TransformerStudent(device="cpu", seed=1, d_model=16, n_heads=4)
    with pytest.raises(ValueError, match="n_heads"):
        b.load_state_dict(a.state_dict())
    before = [p.clone() for p in b.model.parameters()]
    state = a.state_dict()
    state["rng"] = {"bit_generator": "MT19937"}
    with pytest.raises(ValueError, match="generator"):
        TransformerStudent(device="cpu", seed=1, **LM).load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(before, b.model.parameters()))
