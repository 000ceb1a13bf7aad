"""The reasoning envs: verifiable rewards, graded levels, finite pools, held-out harder test sets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import teachgym  # noqa: F401 - registers the envs
from teachgym.envs.reasoning import ENV_IDS, ReasoningEnv, evaluate, get_family
from teachgym.envs.reasoning.problems import ADD_WIDTH


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_each_env_serves_a_prompt_per_category_and_rewards_the_right_answer(env_id):
    env = gym.make(env_id, pool_size=5, test_size=3)
    inner = env.unwrapped
    expected = spaces.Discrete if len(ENV_IDS[env_id]) == 1 else spaces.MultiDiscrete
    assert isinstance(inner.task_space, expected)
    for index in range(int(np.prod(inner.task_space.nvec if expected is spaces.MultiDiscrete else [inner.task_space.n]))):
        task = teachgym.spaces.TaskSpace(inner.task_space).from_index(index)
        obs, info = env.reset(seed=0, options={"task": task})
        assert isinstance(obs, str) and inner.observation_space.contains(obs)
        np.testing.assert_array_equal(info["task"], np.atleast_1d(task))
        _, reward, terminated, truncated, info = env.step(info_answer(inner))
        assert (reward, terminated, info["success"], info["score"]) == (1.0, True, True, 1.0)
        env.reset(options={"task": task})
        _, reward, _, _, info = env.step("x")
        assert (reward, info["success"]) == (0.0, False)


def info_answer(env: ReasoningEnv) -> str:
    return env._problem.answer


def test_countdown_accepts_any_expression_using_each_number_once_and_nothing_else():
    check = get_family("countdown").check
    key = (13, 3, 5, 2)
    assert check(key, "3*5-2") and check(key, "5*3-2") and check(key, " 5*3-2 ")
    assert not check(key, "3*5")  # a number left out
    assert not check(key, "3*5-2+0")  # a number not given
    assert not check(key, "15-2") and not check(key, "3*5-2=13") and not check(key, "")
    assert evaluate("2+3*4-1") == 13 and evaluate("9-2*3*1") == 3


def test_levels_grow_harder_within_each_family():
    rng = np.random.default_rng(0)
    arithmetic, countdown, sort = (get_family(n) for n in ("arithmetic", "countdown", "sort"))

    def carries(problem) -> int:
        a, b = problem.prompt[2:].split("+")
        count, carry = 0, 0
        for x, y in zip(reversed(a), reversed(b)):
            carry = int(int(x) + int(y) + carry >= 10)
            count += carry
        return count

    def misplaced(problem) -> int:
        return sum(x != y for x, y in zip(problem.prompt[2:], problem.answer))

    mean_carries = [np.mean([carries(arithmetic.generate(rng, k)) for _ in range(200)]) for k in range(6)]
    mean_misplaced = [np.mean([misplaced(sort.generate(rng, k)) for _ in range(200)]) for k in range(6)]
    assert np.all(np.diff(mean_carries) > 0) and np.all(np.diff(mean_misplaced) > 0)
    assert [len(countdown.generate(rng, k).key) - 1 for k in range(6)] == [2, 3, 4, 5, 6, 7]
    assert all(len(arithmetic.generate(rng, k).prompt) == 3 + 2 * ADD_WIDTH for k in range(6))


def test_a_category_with_no_problems_left_is_a_clear_error():
    env = ReasoningEnv(pool_size=2, test_size=2)
    assert env.remaining([1, 3]) == 2
    env.next_problem([1, 3])
    env.reset(options={"task": [1, 3]})
    assert env.remaining([1, 3]) == 0 and env.remaining([1, 2]) == 2
    with pytest.raises(ValueError, match="countdown/3 has no problems left"):
        env.next_problem([1, 3])
    with pytest.raises(ValueError, match="no problems left"):
        env.reset(options={"task": [1, 3]})


def test_pools_are_consumed_in_order_and_fixed_by_the_seed():
    a, b, c = ReasoningEnv(seed=3, pool_size=20), ReasoningEnv(seed=3, pool_size=20), ReasoningEnv(seed=4, pool_size=20)
    first = [a.next_problem([2, 1]).prompt for _ in range(20)]
    assert first == [b.next_problem([2, 1]).prompt for _ in range(20)]
    assert first != [c.next_problem([2, 1]).prompt for _ in range(20)]


def test_test_set_is_held_out_and_holds_levels_harder_than_training():
    env = ReasoningEnv(train_levels=3, test_levels=5, pool_size=300, test_size=20)
    test = env.test_set()
    assert sorted({p.level for p in test}) == [0, 1, 2, 3, 4] and len(test) == 3 * 5 * 20
    for f in range(3):
        for level in range(3):
            pool = {env.next_problem([f, level]).prompt for _ in range(300)}
            assert not pool & {p.prompt for p in env.test_set([level]) if p.family == env.families[f].name}
    warm = env.warmup_set(50)
    assert {p.level for p in warm} == {0} and not {p.prompt for p in warm} & {p.prompt for p in env.test_set([0])}


def test_bad_tasks_and_actions_are_rejected():
    env = ReasoningEnv(pool_size=3)
    with pytest.raises(ValueError, match="outside the task space"):
        env.reset(options={"task": [0, 4]})
    with pytest.raises(ValueError, match="problem family"):
        ReasoningEnv(families=("chess",))
    with pytest.raises(ValueError, match="test_levels"):
        ReasoningEnv(train_levels=4, test_levels=3)
    env.reset(options={"task": [0, 0]})
    with pytest.raises(ValueError, match="answer text"):
        env.step(42)


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_envs_pass_check_env_and_report_the_task_as_an_element_of_the_task_space(env_id):
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id, pool_size=20, test_size=3)
    check_env(env.unwrapped, skip_render_check=True)
    inner = env.unwrapped
    prompt, info = env.reset(seed=7)
    assert inner.task_space.contains(info["task"])
    env.reset()  # unseeded resets go on through the pools; a seeded one is drawn by its seed
    again, info_again = env.reset(seed=7)
    assert again == prompt and np.array_equal(info_again["task"], info["task"])
    seeded = {env.reset(seed=s, options={"task": info["task"]})[0] for s in range(40)}
    assert len(seeded) > 10  # wrappers that seed every episode still see many problems
    _, _, _, _, step_info = env.step("0")
    assert inner.task_space.contains(step_info["task"])
