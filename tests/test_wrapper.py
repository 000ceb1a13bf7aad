"""CurriculumWrapper drives a real gymnasium env end to end."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import teachgym
from teachgym.wrappers import CurriculumWrapper, rescale_score


def run_episodes(env, n, seed=0):
    rng = np.random.default_rng(seed)
    infos = []
    for ep in range(n):
        obs, info = env.reset(seed=ep)
        infos.append(info)
        done = False
        while not done:
            obs, reward, term, trunc, info = env.step(int(rng.random() < 0.8))
            infos.append(info)
            done = term or trunc
    return infos


def test_each_episode_gets_a_teacher_task_and_reports_its_rescaled_return(reach_env):
    teacher = teachgym.make_teacher("random", reach_env.task_space, seed=0)
    env = CurriculumWrapper(gym.wrappers.TimeLimit(reach_env, 50), teacher)
    sampled = []
    original_update = teacher.update

    def spy(task, score, **info):
        sampled.append((np.array(task), score))
        original_update(task, score, **info)

    teacher.update = spy
    infos = run_episodes(env, 7)
    assert teacher.n_updates == 7 and len(env.episode_scores) == 7
    assert all("task" in info for info in infos)
    tasks = {tuple(np.round(i["task"], 9)) for i in infos}
    assert len(tasks) == 7  # one task per episode, reported with the right task
    assert {tuple(np.round(t, 9)) for t, _ in sampled} == tasks
    assert all(0.0 <= s <= 1.0 for _, s in sampled)


def test_a_task_given_by_the_caller_is_used_and_validated(reach_env):
    teacher = teachgym.make_teacher("random", reach_env.task_space, seed=0)
    env = CurriculumWrapper(reach_env, teacher, update_on_given_tasks=False)
    _, info = env.reset(options={"task": {"goal": 2.0, "step_size": 0.5}})
    assert info["task"].tolist() == [2.0, 0.5]
    for _ in range(4):
        *_, term, trunc, info = env.step(1)
    assert term and teacher.n_updates == 0  # given tasks are not reported when asked so
    with pytest.raises(ValueError, match="outside the task space"):
        env.reset(options={"task": [9.0, 0.5]})


def test_space_mismatch_and_envs_without_task_space_raise(reach_env):
    with pytest.raises(ValueError, match="differs"):
        CurriculumWrapper(reach_env, teachgym.make_teacher("random", spaces.Box(0, 1, (2,))))
    with pytest.raises(ValueError, match="declares no task_space"):
        CurriculumWrapper(gym.make("CartPole-v1"), teachgym.make_teacher("random", spaces.Box(0, 1, (2,))))


def test_step_before_reset_raises(reach_env):
    env = CurriculumWrapper(reach_env, teachgym.make_teacher("random", reach_env.task_space))
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)


def test_rescale_score_maps_the_declared_range_to_unit_interval():
    assert rescale_score(100.0, (-150.0, 350.0)) == 0.5
    assert rescale_score(-500.0, (-150.0, 350.0)) == 0.0 and rescale_score(9e9, (-150.0, 350.0)) == 1.0
    assert rescale_score(-7.0, None) == -7.0


def test_alp_gmm_learns_which_tasks_the_env_makes_easy(reach_env):
    """End to end with a learning teacher: scores depend on the task, the teacher adapts."""
    teacher = teachgym.make_teacher("alp-gmm", reach_env.task_space, seed=0, fit_rate=30)
    env = CurriculumWrapper(gym.wrappers.TimeLimit(reach_env, 50), teacher)
    run_episodes(env, 200)
    assert teacher.n_updates == 200 and teacher.mixture is not None
