"""The one teacher shared by many env workers: server, clients, worker wrapper, Ray actor."""

from __future__ import annotations

import pickle
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import SubprocVecEnv

import teachgym  # noqa: F401  (registers the envs)
from teachgym.teacher import make_teacher
from teachgym.vector import EpisodeCurriculum, TeacherServer
from teachgym.wrappers import env_task_space

ENV = "teachgym/ContextualCartPole-v0"  # random actions end an episode in ~20 steps


def _teacher(seed: int = 0):
    return make_teacher("random", env_task_space(gym.make(ENV)), seed=seed)


def _worker(client, seed):
    return lambda: EpisodeCurriculum(gym.make(ENV), client, seed=seed)


def _key(task, score) -> tuple:
    return tuple(np.round(np.asarray(task, dtype=float), 12)) + (round(float(score), 12),)


def test_subproc_workers_deliver_every_episode_to_the_one_teacher_exactly_once():
    teacher = _teacher()
    with TeacherServer(teacher, record=True) as server:
        env = SubprocVecEnv([_worker(server.client(), i) for i in range(3)], start_method="fork")
        env.reset()
        ended = []  # (task, score) of each finished episode, as the workers saw it
        rng = np.random.default_rng(0)
        for _ in range(400):
            _, _, dones, infos = env.step(rng.integers(0, 2, size=3))
            ended += [_key(info["task"], info["teacher_score"]) for done, info in zip(dones, infos) if done]
        # every update was acknowledged before step() returned: the teacher has them all already
        assert teacher.n_updates == len(ended) > 10  # how many depends on which worker asks first
        tasks, scores = server.drain_log()
        env.close()
    assert Counter(_key(t, s) for t, s in zip(tasks, scores)) == Counter(ended)
    assert server.n_duplicates == 0


def test_gymnasium_async_vector_env_workers_share_the_teacher():
    teacher = _teacher()
    with TeacherServer(teacher, record=True) as server:
        env = gym.vector.AsyncVectorEnv([_worker(server.client(), i) for i in range(2)], context="fork")
        env.reset(seed=0)
        finished = 0
        for _ in range(300):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            finished += int(np.sum(terminated | truncated))
        assert teacher.n_updates == finished > 10
        env.close()


def test_server_drops_a_repeated_update_number():
    teacher = _teacher()
    with TeacherServer(teacher) as server:
        task = teacher.task_space.vector(teacher.sample()).tolist()
        message = {"op": "update", "client": "w0", "number": 0, "task": task, "score": 0.3}
        assert server._handle(message) == {"applied": True}
        assert server._handle(message) == {"applied": False}
        assert teacher.n_updates == 1 and server.n_duplicates == 1


def test_client_is_picklable_and_raises_the_teachers_error():
    teacher = _teacher()
    with TeacherServer(teacher) as server:
        client = pickle.loads(pickle.dumps(server.client()))
        task = client.sample()
        assert teacher.task_space.vector(task).shape == (5,)
        with pytest.raises(ValueError, match="teacher server"):
            client.update(task, float("nan"))  # the teacher rejects a non-finite score
        client.close()


def test_episode_curriculum_restarts_the_saved_episode_identically():
    teacher = _teacher()
    env = EpisodeCurriculum(gym.make(ENV), teacher, seed=3)
    env.reset()
    first_obs, first_info = env.reset()
    state = env.curriculum_state()
    n_samples = teacher.rng.bit_generator.state
    other = EpisodeCurriculum(gym.make(ENV), teacher, seed=99)
    other.load_curriculum_state(state)
    obs, info = other.reset()
    np.testing.assert_array_equal(obs, first_obs)
    np.testing.assert_array_equal(info["task"], first_info["task"])
    assert teacher.rng.bit_generator.state == n_samples  # the teacher was not asked again
    # and the generator continues as the original's would
    assert other.curriculum_state()["rng"] == state["rng"]
    env.reset(), other.reset()
    assert env.curriculum_state()["episode_seed"] == other.curriculum_state()["episode_seed"]


def test_ray_actor_teacher_counts_each_update_once():
    ray = pytest.importorskip("ray")
    from teachgym.vector import ray_teacher

    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True)
    try:
        teacher = _teacher()
        client = ray_teacher(teacher)
        copy = pickle.loads(pickle.dumps(client))
        for _ in range(5):
            copy.update(copy.sample(), 0.5)
        assert client.state_dict()["n_updates"] == 5
        tasks, scores = client.drain_log()
        assert tasks.shape == (5, 5) and np.all(scores == 0.5)
        # an adapted teacher (a bandit on the Box, through cells) has no registered name: still fine
        bandit = make_teacher("exp3", teacher.task_space, seed=0, adapt=True)
        remote = ray_teacher(bandit)
        remote.update(remote.sample(), 0.5, success=True)
        assert remote.state_dict()["state"]["inner"]["n_updates"] == 1
    finally:
        ray.shutdown()


def test_the_episodes_success_reaches_the_teacher_through_every_link():
    """info["success"] at an episode's end goes to teacher.update(..., success=) in process, through
    the server's clients and through the worker wrapper (GoalGAN and Setter-Solver read it)."""
    teacher = _teacher()
    seen = []
    update = teacher.update
    teacher.update = lambda task, score, **extras: (seen.append(extras), update(task, score, **extras))
    env = teachgym.CurriculumWrapper(gym.make(ENV), teacher)
    last_infos = []
    with TeacherServer(teacher) as server:
        for wrapped in (env, EpisodeCurriculum(gym.make(ENV), server.client(), seed=0)):
            for ep in range(3):
                wrapped.reset(seed=ep)
                done = False
                while not done:
                    _, _, terminated, truncated, info = wrapped.step(wrapped.action_space.sample())
                    done = terminated or truncated
                last_infos.append(info)
    assert seen == [{"success": bool(i["success"])} for i in last_infos]
    assert all(type(e["success"]) is bool for e in seen)


def test_ordered_server_serves_workers_in_index_order_whatever_their_timing():
    """Three workers end an episode in the same vector step; whichever reaches the server first,
    the teacher sees worker 0's update first and each worker gets the same next task."""
    seen = []
    for arrival in ([0, 1, 2], [2, 0, 1]):
        teacher = make_teacher("alp-gmm", env_task_space(gym.make(ENV)), seed=0, fit_rate=4, potential_ks=[1, 2])
        with TeacherServer(teacher, record=True, workers=3) as server:
            clients = [server.client(i) for i in range(3)]
            server.flush()  # the workers' first tasks, drawn in worker order
            first = {i: clients[i].sample() for i in arrival}
            for i in arrival:
                clients[i].update(first[i], 0.1 * i)
            assert teacher.n_updates == 0  # queued until the learner ends the step
            server.flush()
            tasks, scores = server.drain_log()
            then = {i: teacher.task_space.vector(clients[i].sample()).tolist() for i in arrival}
            seen.append(([teacher.task_space.vector(first[i]).tolist() for i in range(3)], tasks.tolist(),
                         scores.tolist(), [then[i] for i in range(3)], server.n_unordered))
            for client in clients:
                client.close()
    assert seen[0] == seen[1]
    assert seen[0][2] == [0.0, 0.1, 0.2] and seen[0][4] == 0


def test_ordered_server_draws_on_demand_without_a_flush_and_round_trips_its_next_tasks():
    teacher = _teacher()
    with TeacherServer(teacher, workers=2) as server:
        client = server.client(1)
        client.sample()  # no flush yet: drawn on demand, counted
        assert server.n_unordered == 1
        server.flush()
        saved = server.next_tasks()
        assert all(len(t) == 5 for t in saved)
        state = teacher.state_dict()
        other_teacher = _teacher(seed=7)
        other_teacher.load_state_dict(state)
        with TeacherServer(other_teacher, workers=2) as other:
            other.load_next_tasks(saved)
            other.flush()  # nothing to draw: the restored tasks stand
            assert other.next_tasks() == saved and other_teacher.state_dict()["rng"] == state["rng"]
            with pytest.raises(ValueError, match="2 workers"):
                other.load_next_tasks(saved[:1])
        with pytest.raises(ValueError, match="index in"):
            server.client(2)
        server.max_queued = 3  # a worker whose learner never flushes cannot grow the queue without bound
        task = client.sample()
        for _ in range(3):
            client.update(task, 0.5)
        with pytest.raises(ValueError, match="must call flush"):
            client.update(task, 0.5)
        client.close()


def test_episode_curriculum_brings_back_an_episode_in_progress_exactly():
    """A checkpoint mid-episode: the copy resets with the saved seed and task, takes the saved
    actions again and then goes on exactly like the original (observations, return, score)."""
    env_id = "teachgym/ContextualPendulum-v0"
    teacher = make_teacher("random", env_task_space(gym.make(env_id)), seed=0)
    original = EpisodeCurriculum(gym.make(env_id, max_episode_steps=30), teacher, seed=3)
    original.reset()
    rng = np.random.default_rng(0)
    for _ in range(12):
        original.step(rng.uniform(-2, 2, size=1).astype(np.float32))
    state = original.curriculum_state()
    assert state["actions"].shape == (12, 1) and state["actions"].dtype == np.float32
    copy = EpisodeCurriculum(gym.make(env_id, max_episode_steps=30), teacher, seed=99)
    copy.load_curriculum_state(state)
    copy.reset()
    for _ in range(18):  # to the episode's end
        action = rng.uniform(-2, 2, size=1).astype(np.float32)
        a, b = original.step(action), copy.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
    assert a[4]["teacher_score"] == b[4]["teacher_score"] and a[3]
