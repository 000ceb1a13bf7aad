"""reasoning-gym pools: (generator, level) categories, its verifiers, held-out test sets, a dataset."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import teachgym  # noqa: F401 - registers the envs
from teachgym.spaces import TaskSpace

pytest.importorskip("reasoning_gym")  # the reasoning extra; CI installs it (tests/test_ci_extras.py)

from reasoning_gym.factory import create_curriculum  # noqa: E402

from teachgym.envs.reasoning.rgym import ReasoningGymEnv, pool_dataset, score_row  # noqa: E402

TASKS = ["chain_sum", "spell_backward"]
SMALL = {"pool_size": 6, "test_size": 4}


def make(**kwargs):
    return gym.make("teachgym/ReasoningGym-v0", **{"tasks": TASKS, "levels": 2, "test_levels": 3, **SMALL, **kwargs})


def test_the_task_space_is_generator_by_level_and_each_category_serves_its_generator():
    env = make()
    inner = env.unwrapped
    assert inner.task_space == spaces.MultiDiscrete([2, 2]) and inner.task_names == ("generator", "level")
    for index in range(4):
        task = TaskSpace(inner.task_space).from_index(index)
        prompt, info = env.reset(seed=0, options={"task": task})
        assert inner.observation_space.contains(prompt)
        assert (info["family"], info["level"]) == (TASKS[int(task[0])], int(task[1]))
        assert inner.category_name(task) == f"{TASKS[int(task[0])]}/{int(task[1])}"
        np.testing.assert_array_equal(info["task"], task)


def test_reasoning_gyms_verifier_scores_right_and_wrong_answers():
    env = make()
    for task in ([0, 1], [1, 0]):
        env.reset(seed=1, options={"task": task})
        reference = env.unwrapped._problem.answer
        _, reward, terminated, _, info = env.step(reference)
        assert (reward, terminated, info["success"], info["answer"]) == (1.0, True, True, reference)
        env.reset(options={"task": task})
        _, reward, _, _, info = env.step("definitely not it")
        assert (reward, info["success"]) == (0.0, False)
    env.reset(options={"task": [0, 0]})
    with pytest.raises(ValueError, match="answer text"):
        env.step(3)


def test_partial_credit_passes_the_verifiers_score_through():
    # spell_backward's verifier gives partial credit for a near answer; the default reward is all or nothing.
    exact, partial = make(), make(partial_credit=True)
    rewards = []
    for env in (exact, partial):
        env.reset(seed=0, options={"task": [1, 1]})
        answer = env.unwrapped._problem.answer
        rewards.append(env.step(answer[:-1] + ("x" if answer[-1] != "x" else "y"))[1])
    assert rewards[0] == 0.0 and 0.0 < rewards[1] < 1.0


def test_levels_are_reasoning_gyms_own_curriculum_levels():
    inclusive = ReasoningGymEnv(TASKS, 2, 3, **SMALL)
    upper = ReasoningGymEnv(TASKS, 2, 3, level_mode="upper_bound", **SMALL)
    terms, digits = (create_curriculum("chain_sum").attributes[k].levels for k in ("num_terms", "num_digits"))
    a, b = inclusive.config("chain_sum", 2), upper.config("chain_sum", 2)
    assert (a.min_terms, a.max_terms, a.min_digits, a.max_digits) == (terms[0], terms[2], digits[0], digits[2])
    assert (b.min_terms, b.max_terms, b.min_digits, b.max_digits) == (terms[2], terms[2], digits[2], digits[2])
    for p in upper.test_set([2]):
        if p.family == "chain_sum":
            assert p.entry["metadata"]["num_terms"] == terms[2]


def test_the_same_seed_gives_the_same_problems_and_another_seed_others():
    def prompts(seed):
        env = ReasoningGymEnv(TASKS, 2, 3, seed=seed, **SMALL)
        return [env.next_problem(t).prompt for t in ([0, 1], [1, 1], [0, 1], [1, 0])]

    assert prompts(0) == prompts(0)
    assert prompts(0) != prompts(1)
    a, b = make(), make()
    assert [a.reset(seed=5)[0] for _ in range(3)] == [b.reset(seed=5)[0] for _ in range(3)]


def test_the_test_set_is_held_out_fixed_and_covers_harder_levels():
    env = ReasoningGymEnv(TASKS, 2, 3, seed=0, pool_size=40, test_size=10)
    test = env.test_set()
    assert len(test) == 2 * 3 * 10 and {p.level for p in test} == {0, 1, 2}
    for g in range(2):
        for level in range(2):
            held = {p.prompt for p in test if p.family == TASKS[g] and p.level == level}
            assert held and not held & {p.prompt for p in env.pool([g, level])}
            assert not held & {p.prompt for p in env.warmup_set(20, level) if p.family == TASKS[g]}
    other = ReasoningGymEnv(TASKS, 2, 3, seed=7, pool_size=40, test_size=10)
    assert [p.prompt for p in other.test_set()] == [p.prompt for p in test]  # test_seed, not seed


def test_a_used_up_pool_and_bad_arguments_are_clear_errors():
    env = ReasoningGymEnv(TASKS, 2, 3, pool_size=2, test_size=2)
    env.next_problem([0, 0])
    env.next_problem([0, 0])
    with pytest.raises(ValueError, match="no problems left"):
        env.next_problem([0, 0])
    with pytest.raises(ValueError):
        env.next_problem([0, 2])  # outside the task space
    for kwargs, match in (({"tasks": ["no_such_generator"]}, "unknown reasoning-gym dataset"),
                          ({"tasks": ["gsm_symbolic"]}, "no curriculum"),
                          ({"tasks": ["spell_backward"], "test_levels": 9}, "has 5 levels"),
                          ({"levels": 0}, "levels"), ({"test_levels": 1}, "test_levels"),
                          ({"level_mode": "mixed"}, "level_mode"), ({"tasks": []}, "at least one")):
        with pytest.raises(ValueError, match=match):
            ReasoningGymEnv(**{"tasks": TASKS, "levels": 2, "test_levels": 3, **SMALL, **kwargs})


def test_pool_dataset_holds_the_envs_pools_with_a_category_column():
    rows = pool_dataset(TASKS, levels=2, test_levels=3, **SMALL)
    env = ReasoningGymEnv(TASKS, 2, 3, **SMALL)
    assert len(rows) == 2 * 2 * SMALL["pool_size"]
    assert {r["category"] for r in rows} == {"chain_sum/0", "chain_sum/1", "spell_backward/0", "spell_backward/1"}
    first = [r for r in rows if r["category"] == "spell_backward/1"]
    assert [r["prompt"] for r in first] == [p.prompt for p in env.pool([1, 1])]
    assert {r["category_index"] for r in first} == {TaskSpace(env.task_space).index(np.array([1, 1]))}
    assert json.loads(first[0]["metadata"])["source_dataset"] == "spell_backward"
    assert score_row(first[0], first[0]["answer"]) == 1.0 and score_row(first[0], "zz") == 0.0
    with pytest.raises(ValueError, match="generator"):
        score_row({**first[0], "generator": "nope"}, "x")
    datasets = pytest.importorskip("datasets")
    hf = pool_dataset(TASKS, levels=2, test_levels=3, as_hf=True, **SMALL)
    assert isinstance(hf, datasets.Dataset) and hf["category"] == [r["category"] for r in rows]
