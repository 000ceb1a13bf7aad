"""The newcomer's path: an env of one's own, make_vec_env, SB3 PPO on 2 processes, one teacher."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import SubprocVecEnv

import teachgym
from teachgym import CurriculumWrapper, make_teacher


class Corridor(gym.Env):
    """Walk right to a goal: the task is (goal distance, slip probability); defined here, as a
    user defines an env in their own module."""

    metadata = {"render_modes": []}
    task_names = ("distance", "slip")
    score_range = (-1.0, 1.0)

    def __init__(self, max_steps: int = 16) -> None:
        self.task_space = spaces.Box(np.array([1.0, 0.0], np.float32), np.array([8.0, 0.6], np.float32), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.max_steps = max_steps
        self.task = np.array([2.0, 0.0], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options and "task" in options:
            self.task = np.asarray(options["task"], dtype=np.float32)
        self.pos, self.t = 0, 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.pos, self.task[0]], dtype=np.float32)

    def step(self, action):
        if self.np_random.random() >= self.task[1]:
            self.pos += 1 if action == 1 else -1
        self.t += 1
        reached = self.pos >= self.task[0]
        truncated = self.t >= self.max_steps and not reached
        info = {"success": bool(reached)} if reached or truncated else {}
        return self._obs(), 1.0 if reached else -0.05, bool(reached), bool(truncated), info


def _same(a, b) -> bool:
    """Deep equality of state dicts (dicts, lists, numpy arrays, numbers)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _train(seed: int, steps: int = 1024) -> tuple[int, int, dict]:
    teacher = make_teacher("alp-gmm:fit_rate=30", Corridor().task_space, seed=seed)
    venv = teachgym.make_vec_env(Corridor, teacher, n_envs=2, vec_env="subproc", seed=seed)
    try:
        model = PPO("MlpPolicy", venv, n_steps=128, batch_size=64, n_epochs=2, seed=seed, device="cpu",
                    policy_kwargs={"net_arch": [16]})
        model.learn(steps)
        episodes = sum(len(r) for r in venv.env_method("get_episode_rewards"))
    finally:
        venv.close()
    return episodes, teacher.n_updates, teacher.state_dict()


def test_ppo_on_two_processes_reports_every_episode_once_and_repeats_itself():
    episodes, updates, state = _train(seed=3)
    assert episodes > 50  # 1024 steps of episodes of at most 16 steps
    assert updates == episodes  # every episode of both workers, exactly once
    assert state["state"]  # the GMMs were fitted: it is the learner's teacher that learnt
    again = _train(seed=3)
    assert again[:2] == (episodes, updates)
    assert _same(again[2], state)


def test_dummy_and_async_vec_envs_reach_the_one_teacher():
    for kind in ("dummy", "async"):
        teacher = make_teacher("random", Corridor().task_space, seed=0)
        venv = teachgym.make_vec_env(Corridor, teacher, n_envs=2, vec_env=kind, seed=0)
        try:
            if kind == "async":
                venv.reset(seed=0)
                ended = 0
                for _ in range(64):
                    _, _, terminated, truncated, _ = venv.step(np.ones(2, dtype=np.int64))
                    ended += int(np.sum(terminated | truncated))
            else:
                venv.reset()
                ended = 0
                for _ in range(64):
                    _, _, dones, _ = venv.step(np.ones(2, dtype=np.int64))
                    ended += int(np.sum(dones))
        finally:
            venv.close()
        assert ended > 4 and teacher.n_updates == ended, kind


def test_make_vec_env_refuses_bad_arguments():
    teacher = make_teacher("random", Corridor().task_space, seed=0)
    with pytest.raises(ValueError, match="vec_env must be one of"):
        teachgym.make_vec_env(Corridor, teacher, 2, vec_env="threads")
    with pytest.raises(ValueError, match="n_envs must be a positive integer"):
        teachgym.make_vec_env(Corridor, teacher, 0)
    with pytest.raises(ValueError, match="must be a teachgym Teacher"):
        teachgym.make_vec_env(Corridor, object(), 1)
    with pytest.raises(ValueError, match="start_method must be one of"):
        teachgym.make_vec_env(Corridor, teacher, 1, start_method="teleport")
    with pytest.raises(ValueError, match="returned list, expected a gymnasium.Env"):
        teachgym.make_vec_env(lambda: [], teacher, 1, vec_env="dummy")
    with pytest.raises(ValueError, match="differs from the env's"):  # another env's teacher
        teachgym.make_vec_env("teachgym/ContextualCartPole-v0", teacher, 1, vec_env="dummy")


def test_an_env_id_and_env_kwargs_work_like_gym_make():
    space = gym.make("teachgym/ContextualCartPole-v0").unwrapped.task_space
    teacher = make_teacher("random", space, seed=0)
    venv = teachgym.make_vec_env("teachgym/ContextualCartPole-v0", teacher, 2, vec_env="dummy", seed=0,
                                 env_kwargs={"max_episode_steps": 10})
    try:
        venv.reset()
        for _ in range(10):
            venv.step(np.zeros(2, dtype=np.int64))
    finally:
        venv.close()
    assert teacher.n_updates == 2  # both workers' 10-step episodes


def _sample_in_child(teacher):
    return teacher.sample()


def test_a_teacher_pickled_into_another_process_refuses_naming_make_vec_env():
    teacher = make_teacher("alp-gmm", Corridor().task_space, seed=0)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(RuntimeError, match="make_vec_env"):
            pool.submit(_sample_in_child, teacher).result()
    # In its own process a copy and a state_dict round trip still work.
    copy = pickle.loads(pickle.dumps(teacher))
    assert Corridor().task_space.contains(copy.sample())
    clone = make_teacher("alp-gmm", Corridor().task_space, seed=1)
    clone.load_state_dict(teacher.state_dict())
    clone.update(clone.sample(), 0.5)


def test_subproc_vec_env_of_curriculum_wrappers_fails_loudly_instead_of_zero_updates(capfd):
    teacher = make_teacher("random", Corridor().task_space, seed=0)
    venv = SubprocVecEnv([lambda: CurriculumWrapper(Corridor(), teacher)] * 2, start_method="fork")
    try:
        with pytest.raises((EOFError, ConnectionError, BrokenPipeError)):
            venv.reset()
    finally:
        venv.closed = True  # the workers died: nothing to close
        for process in venv.processes:
            process.join(5)
    assert "make_vec_env" in capfd.readouterr().err
    async_env = gym.vector.AsyncVectorEnv([lambda: CurriculumWrapper(Corridor(), teacher)] * 2, context="spawn")
    try:
        with pytest.raises(RuntimeError, match="make_vec_env"):
            async_env.reset(seed=0)
    finally:
        async_env.close(terminate=True)
    assert teacher.n_updates == 0


def test_a_time_limit_outside_the_wrapper_is_reported():
    teacher = make_teacher("random", Corridor().task_space, seed=0)
    env = TimeLimit(CurriculumWrapper(Corridor(max_steps=10_000), teacher), max_episode_steps=5)
    with pytest.warns(UserWarning, match="TimeLimit.*inside"):
        for _ in range(3):
            env.reset(seed=0)
            for _ in range(5):
                env.step(0)
    assert teacher.n_updates == 0 and env.env.n_unfinished == 2
    # Inside, as gym.make puts it, the teacher gets every episode and nothing is said.
    inside = CurriculumWrapper(TimeLimit(Corridor(max_steps=10_000), max_episode_steps=5), teacher)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            inside.reset(seed=0)
            for _ in range(5):
                inside.step(0)
        inside.reset(seed=0)
    assert teacher.n_updates == 3


def test_ray_vec_env_workers_reach_the_actor_teacher():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True)
    try:
        teacher = make_teacher("random", Corridor().task_space, seed=0)
        venv = teachgym.make_vec_env(Corridor, teacher, n_envs=2, vec_env="ray", seed=0)
        try:
            venv.reset()
            ended = 0
            for _ in range(40):
                _, _, dones, _ = venv.step(np.ones(2, dtype=np.int64))
                ended += int(np.sum(dones))
            state = venv.teacher_link.state_dict()
        finally:
            venv.close()
        assert ended > 2 and state["n_updates"] == ended
    finally:
        ray.shutdown()


def test_the_light_dummy_vec_env_copies_infos_and_trains_to_the_same_numbers():
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from teachgym.vec_env import LightDummyVecEnv

    def trained(cls):
        venv = cls([lambda: Monitor(Corridor()) for _ in range(3)])
        venv.seed(5)
        model = PPO("MlpPolicy", venv, n_steps=64, batch_size=32, n_epochs=2, seed=5, device="cpu",
                    policy_kwargs={"net_arch": [16]})
        model.learn(384)
        venv.reset()
        infos = None
        for _ in range(40):  # past a goal or time limit: terminal observations and Monitor's "episode"
            _, _, dones, infos = venv.step(np.ones(3, dtype=np.int64))
            if dones.any():
                break
        return model, venv, infos

    light, light_venv, infos = trained(LightDummyVecEnv)
    plain, _, plain_infos = trained(DummyVecEnv)
    for a, b in zip(light.policy.parameters(), plain.policy.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    def timeless(info):  # Monitor's "episode" holds the wall time
        return {k: ({**v, "t": 0} if k == "episode" else v) for k, v in info.items()}

    assert _same([timeless(i) for i in infos], [timeless(i) for i in plain_infos])
    assert any("terminal_observation" in info for info in infos)
    infos[0]["edited"] = True  # the learner's dict is its own
    assert all("edited" not in info for info in light_venv.buf_infos)
    assert type(light_venv.buf_infos).__name__ == "_InfoList"  # still the light copy after steps and resets
    teacher = make_teacher("random", Corridor().task_space, seed=0)
    assert type(teachgym.make_vec_env(Corridor, teacher, n_envs=1, vec_env="dummy")) is LightDummyVecEnv


class ReusedBuffer(Corridor):
    """An env that writes every observation into one array, as some fast envs do."""

    def _obs(self):
        if not hasattr(self, "buffer"):
            self.buffer = np.zeros(2, dtype=np.float32)
        self.buffer[:] = (self.pos, self.task[0])
        return self.buffer


def test_a_terminal_observation_is_not_overwritten_by_an_env_that_reuses_its_buffer():
    from teachgym.vec_env import LightDummyVecEnv

    venv = LightDummyVecEnv([lambda: ReusedBuffer(max_steps=8)])
    venv.reset()
    dones = [False]
    while not dones[0]:
        _, _, dones, infos = venv.step(np.ones(1, dtype=np.int64))
    seen = infos[0]["terminal_observation"].copy()  # what SB3's deep copy would also hold
    venv.step(np.ones(1, dtype=np.int64))  # the env writes its next observation into the buffer
    assert np.array_equal(infos[0]["terminal_observation"], seen)
