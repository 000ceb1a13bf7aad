"""The GRPO student: group-relative advantages, clipped updates, verifiable rewards, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from teachgym import make_teacher
from teachgym.students.grpo import GRPOStudent, group_advantages

TINY = {"d_model": 32, "n_layers": 1, "n_heads": 2, "max_len": 24, "max_answer": 3, "device": "cpu"}


def test_advantages_are_standardised_per_group_and_zero_when_all_rewards_agree():
    adv = group_advantages(np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 3.0]]))
    np.testing.assert_allclose(adv[0], [1, -1, -1, 1])
    np.testing.assert_array_equal(adv[1], 0.0)
    np.testing.assert_allclose(adv[2].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(adv[2].std(), 1.0)


def test_grpo_needs_at_least_two_samples_per_prompt():
    for n in (0, 1, 1.5, True):
        with pytest.raises(ValueError, match="n_samples >= 2"):
            GRPOStudent(n_samples=n, **TINY)


@pytest.mark.parametrize("bad", ["1", None, float("nan"), True, [1.0]])
def test_a_reward_that_is_not_a_finite_number_is_an_error_and_nothing_changes(bad):
    student = GRPOStudent(n_samples=2, seed=0, **TINY)
    before = [p.detach().clone() for p in student.model.parameters()]
    with pytest.raises(ValueError, match="reward must be a finite number"):
        student.step(["A:1+1"], lambda i, answer: bad)
    assert all(torch.equal(a, b) for a, b in zip(before, student.model.parameters()))


def test_groups_of_equal_rewards_give_no_update():
    student = GRPOStudent(n_samples=4, seed=0, **TINY)
    before = [p.detach().clone() for p in student.model.parameters()]
    result = student.step(["A:1+1", "S:321"], lambda i, answer: 0.5)
    assert result.loss == 0.0 and np.all(result.advantages == 0.0)
    assert all(torch.equal(a, b) for a, b in zip(before, student.model.parameters()))


def test_grpo_raises_the_verifiable_reward_it_is_trained_on():
    student = GRPOStudent(n_samples=8, lr=3e-3, seed=0, **TINY)
    prompts = [f"A:{i}" for i in range(8)]

    def starts_with_digit(i: int, answer: str) -> float:
        return float(answer[:1].isdigit())

    rates = [student.step(prompts, starts_with_digit).rewards.mean() for _ in range(40)]
    assert np.mean(rates[-5:]) > np.mean(rates[:5]) + 0.3


def test_the_same_seed_gives_the_same_samples_and_weights():
    def run() -> tuple[list, list]:
        student = GRPOStudent(n_samples=4, seed=7, **TINY)
        answers = [student.step(["C:3,5>8", "S:21"], lambda i, a: float(len(a) % 2)).answers for _ in range(3)]
        return answers, [p.detach().clone() for p in student.model.parameters()]

    (a1, w1), (a2, w2) = run(), run()
    assert a1 == a2 and all(torch.equal(x, y) for x, y in zip(w1, w2))


def test_results_feed_sec_through_update_batch_with_per_sample_advantages():
    student = GRPOStudent(n_samples=4, seed=1, **TINY)
    result = student.step(["A:1", "A:2", "A:3"], lambda i, answer: float(answer[:1] == "1"))
    infos = result.infos()
    assert [len(info["advantages"]) for info in infos] == [4, 4, 4]
    np.testing.assert_allclose([info["plr_score"] for info in infos], np.abs(result.advantages).mean(1))
    np.testing.assert_array_equal(result.pass_rates, (result.rewards > 0).mean(1))
    teacher = make_teacher("sec", spaces.Discrete(3), seed=0)
    teacher.update_batch([0, 1, 2], result.pass_rates.tolist(), infos)
    np.testing.assert_allclose(teacher.q, 0.5 * np.abs(result.advantages).mean(1))


def test_warmup_teaches_a_mapping_that_greedy_predict_then_answers():
    from teachgym.envs.reasoning import ReasoningEnv

    env = ReasoningEnv(families=("sort",), pool_size=2, test_size=2)
    student = GRPOStudent(n_samples=2, seed=0, lr=1e-3, d_model=32, n_layers=1, n_heads=2, max_len=24, max_answer=8, device="cpu")
    data = env.warmup_set(200)
    first = student.warmup(data, 5)
    last = student.warmup(data, 150)
    assert last < first
    assert np.mean([p.reward(a) for p, a in zip(data[:50], student.predict(data[:50]))]) > 0.1


def test_hf_backend_runs_a_grpo_step_on_a_tiny_local_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("peft")
    config = transformers.GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    student = GRPOStudent(n_samples=4, backend="hf-lora", path=str(tmp_path), tokenizer="char",
                          target_modules=["c_attn"], max_len=32, max_answer=3, device="cpu", seed=0)
    result = student.step(["A:1+1", "S:21"], lambda i, answer: float(answer[:1].isdigit()))
    assert result.rewards.shape == (2, 4) and all(isinstance(a, str) for row in result.answers for a in row)


def test_prompts_flagged_not_to_train_are_scored_but_give_no_update():
    """Robust PLR's new levels: rewards and advantages come back, the weights do not move."""
    student = GRPOStudent(n_samples=4, seed=0, **TINY)
    before = [p.detach().clone() for p in student.model.parameters()]
    reward = lambda i, answer: float(sum(map(ord, answer)) % 2)  # noqa: E731 - differ within a group
    result = student.step(["A:1+1", "S:321"], reward, train=[False, False])
    assert np.any(result.advantages != 0.0) and result.loss == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, student.model.parameters()))
    with pytest.raises(ValueError, match="one flag per prompt"):
        student.step(["A:1+1", "S:321"], reward, train=[True])


def test_the_reasoning_loop_trains_only_on_robust_plr_replays():
    from teachgym.benchmarks.reasoning import draw_batch

    space = spaces.MultiDiscrete([3, 4])
    plr = make_teacher("robust-plr", space, seed=0)
    tasks, train = draw_batch(plr, 64)
    for task in tasks:
        plr.update(task, 0.5)
    tasks, train = draw_batch(plr, 64)
    assert 0 < sum(train) < 64  # replays (trained on) and new levels (only scored)
    a, b = make_teacher("sec", space, seed=3), make_teacher("sec", space, seed=3)
    tasks, train = draw_batch(a, 16)
    assert all(train) and [t.tolist() for t in tasks] == [t.tolist() for t in b.sample_batch(16)]


def test_unbiased_std_is_verls_and_shrinks_every_advantage_by_sqrt_n_minus_1_over_n():
    rewards = np.array([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    population, unbiased = group_advantages(rewards), group_advantages(rewards, std="unbiased")
    # Row 0 by hand: mean 0.5, unbiased std sqrt((4 * 0.25) / 3) = 0.57735; verl adds 1e-6.
    np.testing.assert_allclose(unbiased[0], np.array([0.5, -0.5, -0.5, 0.5]) / (np.sqrt(1 / 3) + 1e-6))
    np.testing.assert_array_equal(unbiased[1], 0.0)
    np.testing.assert_allclose(unbiased, population * np.sqrt(3 / 4), rtol=1e-5)
    np.testing.assert_allclose(np.abs(group_advantages(np.array([[1.0] + [0.0] * 7]), "unbiased")).mean()
                               / np.abs(group_advantages(np.array([[1.0] + [0.0] * 7]))).mean(), np.sqrt(7 / 8), rtol=1e-5)
    with pytest.raises(ValueError, match="std must be one of"):
        group_advantages(rewards, std="sample")
    with pytest.raises(ValueError, match="std must be one of"):
        GRPOStudent(std="biased", **TINY)


def test_the_student_uses_the_std_it_was_given_and_rollout_then_learn_is_step():
    prompts = ["A:1", "A:2", "A:3"]

    def reward(i, answer):
        return float(answer[:1] == "1")

    a, b = GRPOStudent(n_samples=4, seed=3, std="unbiased", **TINY), GRPOStudent(n_samples=4, seed=3, std="unbiased", **TINY)
    stepped = a.step(prompts, reward)
    split = b.learn(b.rollout(prompts, reward))
    assert stepped.answers == split.answers and stepped.loss == split.loss
    np.testing.assert_allclose(stepped.advantages, group_advantages(stepped.rewards, "unbiased"))
    with pytest.raises(ValueError, match="samples per prompt"):
        GRPOStudent(n_samples=2, seed=0, **TINY).learn(b.rollout(prompts, reward))
