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


class _RawReturnEnv(gym.Env):
    """Three steps of reward 2.5 and no score_range: a raw return of 7.5."""

    task_space = spaces.Box(0.0, 1.0, (1,), dtype=np.float64)
    observation_space = spaces.Box(0.0, 1.0, (1,), dtype=np.float64)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1), 2.5, self.t >= 3, False, {}


def _episode(env, options=None):
    env.reset(seed=0, options=options)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(0)
        done = terminated or truncated


def test_a_teacher_on_a_float32_box_drives_the_same_box_in_float64(reach_env):
    box32 = spaces.Box(reach_env.task_space.low, reach_env.task_space.high, dtype=np.float32)
    teacher = teachgym.make_teacher("random", box32, seed=0)
    env = CurriculumWrapper(reach_env, teacher)
    _episode(env)
    assert teacher.n_updates == 1
    narrower = spaces.Box(reach_env.task_space.low, reach_env.task_space.high - 0.1, dtype=np.float32)
    with pytest.raises(ValueError, match="dimension 0.*float32.*float64"):
        CurriculumWrapper(reach_env, teachgym.make_teacher("random", narrower, seed=0))


def test_raw_returns_outside_the_unit_interval_warn_once_naming_score_range():
    teacher = teachgym.make_teacher("random", _RawReturnEnv.task_space, seed=0)
    env = CurriculumWrapper(_RawReturnEnv(), teacher)
    with pytest.warns(UserWarning, match="score_range") as record:
        for _ in range(3):
            _episode(env)
    assert len([w for w in record if "score_range" in str(w.message)]) == 1
    assert env.episode_scores == [7.5] * 3
    import warnings

    scaled = CurriculumWrapper(_RawReturnEnv(), teacher, score_range=(0.0, 10.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _episode(scaled)
    assert scaled.episode_scores == [0.75]
    for bad in [(1.0, 1.0), (0.0, float("inf")), "ab", (1,)]:
        with pytest.raises(ValueError, match="score_range"):
            CurriculumWrapper(_RawReturnEnv(), teacher, score_range=bad)


def test_a_misspelt_reset_option_is_refused_naming_the_known_ones(reach_env):
    teacher = teachgym.make_teacher("random", reach_env.task_space, seed=0)
    env = CurriculumWrapper(reach_env, teacher)
    with pytest.raises(ValueError, match=r"unknown reset option 'tasks' \(did you mean 'task'\?\).*\['task'\]"):
        env.reset(options={"tasks": [1.0, 0.2]})
    env.reset(options={"difficulty_mode": 2})  # not near a known key: an env's own option passes

    class Declared(type(reach_env)):
        reset_options = ("task", "level")

    strict = CurriculumWrapper(Declared(), teacher)
    strict.reset(options={"level": None})
    with pytest.raises(ValueError, match=r"'difficulty_mode'.*\['level', 'task'\]"):
        strict.reset(options={"difficulty_mode": 2})


@pytest.mark.parametrize("env_id, strict", [
    ("teachgym/StumpTracks-v0", True),
    ("teachgym/Parkour-v0", True),
    ("teachgym/Reasoning-Arithmetic-v0", True),
    ("teachgym/ContextualCartPole-v0", False),
])
def test_teachgym_envs_refuse_a_misspelt_task_option(env_id, strict):
    env = gym.make(env_id)
    try:
        with pytest.raises(ValueError, match=r"unknown reset option 'tasks' \(did you mean 'task'\?\)"):
            env.reset(seed=0, options={"tasks": env.unwrapped.task_space.sample()})
        wrapped = CurriculumWrapper(env, teachgym.make_teacher("random", env.unwrapped.task_space, seed=0))
        with pytest.raises(ValueError, match="'tasks'"):
            wrapped.reset(seed=0, options={"tasks": env.unwrapped.task_space.sample()})
        if strict:  # envs that read only known keys refuse any other
            with pytest.raises(ValueError, match="unknown reset option 'speed'"):
                env.reset(seed=0, options={"speed": 2})
        env.reset(seed=0, options={"task": env.unwrapped.task_space.sample()})
    finally:
        env.close()
