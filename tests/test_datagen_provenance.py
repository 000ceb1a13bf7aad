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
from teachgym.envs.datagen.provenance import checkpoint_path, read_records, run_recorded_episode
from teachgym.io import load_state, save_state
from teachgym.students.lm import TransformerStudent

SMALL = {"budget": 12, "n_eval": 1, "train_steps": 2}
LM = {"d_model": 16, "n_heads": 2}


class _Stop(Exception):
    pass


def _setup(level="skill_list", policy="uniform", iterations=3, domain="math", **kw):
    student = {} if domain == "vqa" or "student" in kw else {"student_kwargs": LM}
    env = DataGenEnv(domain, level, iterations=iterations, device="cpu", **{**SMALL, **student, **kw})
    pol = TeacherPolicy("random", env, seed=5) if policy == "uniform" else POLICIES[policy](env, seed=5)
    return env, pol


def _run(path, stop_after=None, copy_after=None, **setup):
    """The episode recorded in ``path``; killed after ``stop_after`` iterations; the checkpoint after
    iteration ``copy_after`` kept beside it (``*.iteration-N``)."""
    env, policy = _setup(**setup)

    def on_step(info, seconds):
        if copy_after == info["iteration"]:
            shutil.copy(checkpoint_path(path), f"{checkpoint_path(path)}.iteration-{copy_after}")
        if stop_after == info["iteration"]:
            raise _Stop

    try:
        return run_recorded_episode(env, policy, path, seed=3, run={"test": 1}, on_step=on_step), env, policy
    except _Stop:
        return None, env, policy


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


def _count_fits(monkeypatch):
    calls = []
    fit = TransformerStudent.fit
    monkeypatch.setattr(TransformerStudent, "fit", lambda self, data, steps: calls.append(steps) or fit(self, data, steps))
    return calls


@pytest.mark.parametrize("level, policy, reset", [("skill_list", "uniform", "warm"), ("skill_list", "uniform", "base"),
                                                  ("skill_tree", "random-explore-exploit", "base"), ("open_ended", "dirichlet-allocation", "warm")])
def test_a_resumed_episode_restores_its_checkpoint_instead_of_training_and_ends_as_the_uninterrupted_one(tmp_path, monkeypatch, level, policy, reset):
    setup = {"level": level, "policy": policy, "student_reset": reset}
    full = _run(tmp_path / "full.jsonl", **setup)
    path = tmp_path / "episode.jsonl"
    assert _run(path, stop_after=2, **setup)[0] is None
    assert checkpoint_path(path).is_file() and load_state(checkpoint_path(path))["iteration"] == 2
    fits = _count_fits(monkeypatch)
    resumed = _run(path, **setup)
    assert resumed[0]["restored"] == 2 and resumed[0]["replayed"] == 0 and resumed[0]["checkpoint_ignored"] is None
    assert len(fits) == 1  # only the third iteration trained
    _same_end(full, resumed)
    assert len(read_records(path)) == 4 and load_state(checkpoint_path(path))["iteration"] == 3


def test_the_hf_lora_student_checkpoints_its_adapter_and_resumes_exactly(tmp_path):
    save_tiny_gpt2(tmp_path / "model")
    from teachgym.students.lm import HFLoRAStudent

    def student(seed, device):
        return HFLoRAStudent(str(tmp_path / "model"), tokenizer="char", target_modules=["c_attn"], max_len=48, max_new_tokens=6,
                             batch_size=4, seed=seed, device=device)

    setup = {"iterations": 2, "student": student, "n_eval": 1, "budget": 6, "train_steps": 2}
    full = _run(tmp_path / "full.jsonl", **setup)
    path = tmp_path / "episode.jsonl"
    _run(path, stop_after=1, **setup)
    weights = load_state(checkpoint_path(path))["env"]["student"]["weights"]
    assert weights and all("lora_" in name for name in weights)  # the adapter only, not the base model
    resumed = _run(path, **setup)
    assert resumed[0]["restored"] == 1
    _same_end(full, resumed)


def test_the_vqa_student_resumes_exactly(tmp_path):
    setup = {"domain": "vqa", "iterations": 2}
    full = _run(tmp_path / "full.jsonl", **setup)
    path = tmp_path / "episode.jsonl"
    _run(path, stop_after=1, **setup)
    resumed = _run(path, **setup)
    assert resumed[0]["restored"] == 1 and all(e.image is not None for e in resumed[1].train_data)
    _same_end(full, resumed)


@pytest.mark.parametrize("case", ["none", "behind"])
def test_iterations_without_a_checkpoint_are_replayed_from_their_records(tmp_path, case):
    full = _run(tmp_path / "full.jsonl")
    path = tmp_path / "episode.jsonl"
    _run(path, stop_after=2, copy_after=1)
    if case == "none":
        checkpoint_path(path).unlink()
    else:  # killed between the record of iteration 2 and its checkpoint
        shutil.move(f"{checkpoint_path(path)}.iteration-1", checkpoint_path(path))
    resumed = _run(path)
    assert (resumed[0]["restored"], resumed[0]["replayed"]) == ((0, 2) if case == "none" else (1, 1))
    assert resumed[0]["resume_mismatches"] == 0 and resumed[0]["checkpoint_ignored"] is None
    _same_end(full, resumed)


def _torn(file, tmp_path):
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _other_episode(file, tmp_path):
    _run(tmp_path / "other.jsonl", stop_after=2)  # the same settings: only its records' timings differ
    shutil.copy(checkpoint_path(tmp_path / "other.jsonl"), file)


def _other_student(file, tmp_path):
    state = load_state(file)
    state["env"]["student"]["weights"]["tok.weight"]["array"] = np.zeros((3, 3), np.float32)
    save_state(file, state)


def _other_settings(file, tmp_path):
    state = load_state(file)
    state["env"]["settings"]["train_steps"] = 99
    save_state(file, state)


@pytest.mark.parametrize("damage, reason", [(_torn, "not a teachgym state file"), (_other_episode, "does not match record 2"),
                                            (_other_student, "weight tok.weight"), (_other_settings, "settings")])
def test_a_checkpoint_that_does_not_match_its_records_is_ignored_with_the_reason(tmp_path, caplog, damage, reason):
    full = _run(tmp_path / "full.jsonl")
    path = tmp_path / "episode.jsonl"
    _run(path, stop_after=2)
    damage(checkpoint_path(path), tmp_path)
    with caplog.at_level(logging.WARNING, "teachgym.envs.datagen.provenance"):
        resumed = _run(path)
    assert resumed[0]["restored"] == 0 and resumed[0]["replayed"] == 2 and reason in resumed[0]["checkpoint_ignored"]
    assert any("checkpoint ignored" in r.message and reason in r.message for r in caplog.records)
    _same_end(full, resumed)  # the replay, from an untouched env and policy


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
