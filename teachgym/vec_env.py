"""``make_vec_env``: many env workers, one teacher that sees every episode exactly once.

A teacher put inside a ``CurriculumWrapper`` and handed to ``SubprocVecEnv`` is pickled into
every worker: each worker teaches a copy, and the learner's teacher gets nothing (a copy now
refuses to run, naming this function). Here every worker gets a link to the one teacher instead:

- ``"dummy"``: SB3 ``DummyVecEnv``, the teacher used in-process;
- ``"subproc"``: SB3 ``SubprocVecEnv``, the teacher behind a
  :class:`~teachgym.vector.TeacherServer` in its ordered mode, flushed after every vector step
  (:class:`FlushEachStep`), so the same seeds give the same teacher;
- ``"async"``: gymnasium ``AsyncVectorEnv``, the same server and flushes;
- ``"ray"``: SB3 ``SubprocVecEnv`` whose workers reach a Ray actor holding the teacher
  (:func:`~teachgym.vector.ray_teacher`; updates arrive in the order they come, so two runs may
  differ). The learner's ``teacher`` object is then not updated: read the actor's state from
  ``venv.teacher_link.state_dict()``.

Each worker wraps its env as ``Monitor(EpisodeCurriculum(env, link))``: a task from the teacher at
each reset, the episode's score to it at each episode's end. Closing the vector env closes the
server.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper

from teachgym.teacher import Teacher
from teachgym.vector import EpisodeCurriculum, TeacherServer, ray_teacher

VEC_ENVS = ("subproc", "dummy", "async", "ray")


class FlushEachStep(VecEnvWrapper):
    """Flush the teacher link after every step and around every reset of the wrapped VecEnv.

    The learner alone knows where a vector step ends: here the server applies that step's
    updates in worker order and draws the workers' next tasks, before the next step starts.
    """

    def __init__(self, venv: VecEnv, flush: Callable[[], None]) -> None:
        super().__init__(venv)
        self._flush = flush

    def reset(self) -> Any:
        self._flush()  # the first tasks, drawn in worker order (none on resume: they were restored)
        obs = self.venv.reset()
        self._flush()
        return obs

    def step_wait(self) -> Any:
        out = self.venv.step_wait()
        self._flush()
        return out


class ServedVecEnv(FlushEachStep):
    """An SB3 VecEnv whose workers reach one teacher through a server: flushed after every step,
    the server closed with it."""

    def __init__(self, venv: VecEnv, server: TeacherServer) -> None:
        super().__init__(venv, server.flush)
        self.server = server

    def close(self) -> None:
        try:
            self.venv.close()
        finally:
            self.server.close()


class ServedVectorEnv(gym.vector.VectorWrapper):
    """A gymnasium vector env whose workers reach one teacher through a server: flushed around
    every reset and after every step, the server closed with it."""

    def __init__(self, env: gym.vector.VectorEnv, server: TeacherServer) -> None:
        super().__init__(env)
        self.server = server

    def reset(self, **kwargs: Any) -> Any:
        self.server.flush()  # the first tasks, drawn in worker order
        out = self.env.reset(**kwargs)
        self.server.flush()
        return out

    def step(self, actions: Any) -> Any:
        out = self.env.step(actions)
        self.server.flush()
        return out

    def close(self, **kwargs: Any) -> None:
        try:
            self.env.close(**kwargs)
        finally:
            self.server.close()


def worker_seeds(seed: int | None, n_envs: int) -> list[int | None]:
    """Each worker's seed of episode seeds: ``SeedSequence([seed, i])`` for worker ``i`` (None: fresh entropy)."""
    if seed is None:
        return [None] * n_envs
    return [int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0]) for i in range(n_envs)]


class _InfoList(list):
    """A list of info dicts whose ``deepcopy`` copies the dicts and their terminal observations
    only (see :class:`LightDummyVecEnv`)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[dict[str, Any]]:
        infos = [dict(info) for info in self]
        for info in infos:
            if "terminal_observation" in info:  # an env may reuse its observation buffer at reset
                info["terminal_observation"] = deepcopy(info["terminal_observation"], memo)
        return infos


class LightDummyVecEnv(DummyVecEnv):
    """SB3's ``DummyVecEnv`` returning each step's info dicts copied one level deep.

    ``DummyVecEnv.step_wait`` deep-copies every info dict (task arrays, flags, terminal
    observations) at every step: 5 % of the walkers' PPO wall time in a profile. Here each dict
    is copied (a dict the learner edits is not the env's) and so is a terminal observation (the
    one value the env may overwrite in place, at its reset, while the learner still reads it);
    other values are the env's. Same numbers (tested).
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]]) -> None:
        super().__init__(env_fns)
        self.buf_infos = _InfoList(self.buf_infos)


def start_method_or_default(start_method: str | None = None) -> str:
    """``start_method`` checked, or the default: ``"forkserver"`` where available, else ``"spawn"``."""
    methods = multiprocessing.get_all_start_methods()
    if start_method is None:
        return "forkserver" if "forkserver" in methods else "spawn"
    if start_method not in methods:
        raise ValueError(f"start_method must be one of {methods}, got {start_method!r}")
    return start_method


def env_maker(env_id_or_fn: str | Callable[..., gym.Env], env_kwargs: dict[str, Any],
              wrapper: Callable[[gym.Env], gym.Env] | None, link: Any, worker_seed: int | None,
              monitor: bool = True) -> Callable[[], gym.Env]:
    """The function a worker calls to build its env, ``Monitor(EpisodeCurriculum(env, link))``
    (picklable by cloudpickle); :func:`make_vec_env` and :class:`teachgym.training.Trainer` use it."""

    def make() -> gym.Env:
        if isinstance(env_id_or_fn, str):
            env = gym.make(env_id_or_fn, **env_kwargs)
        else:
            env = env_id_or_fn(**env_kwargs)
        if not isinstance(env, gym.Env):
            raise ValueError(f"make_vec_env: the env function returned {type(env).__name__}, expected a gymnasium.Env")
        if wrapper is not None:  # inside the curriculum: a TimeLimit here ends episodes it sees
            env = wrapper(env)
        env = EpisodeCurriculum(env, link, seed=worker_seed)
        return Monitor(env) if monitor else env

    return make


def make_vec_env(
    env_id_or_fn: str | Callable[..., gym.Env],
    teacher: Teacher,
    n_envs: int = 1,
    vec_env: str = "subproc",
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    wrapper_class: Callable[[gym.Env], gym.Env] | None = None,
    monitor: bool = True,
    start_method: str | None = None,
) -> VecEnv | gym.vector.VectorEnv:
    """A vector env of ``n_envs`` workers whose curriculum is the one ``teacher``.

    Parameters
    ----------
    env_id_or_fn
        A registered env id (``"teachgym/StumpTracks-v0"``, ``"module:MyEnv-v0"``) or a function
        returning an env (a class works); its unwrapped env declares ``task_space`` and takes the
        task through ``reset(options={"task": ...})``. Put a ``TimeLimit`` in the function (or use
        ``gym.make``), not around the result.
    teacher
        The teacher, in this process; every episode of every worker reaches it exactly once.
    n_envs
        Number of workers.
    vec_env
        ``"subproc"`` (SB3 ``SubprocVecEnv``), ``"dummy"`` (SB3 ``DummyVecEnv``), ``"async"``
        (gymnasium ``AsyncVectorEnv``) or ``"ray"`` (``SubprocVecEnv`` with the teacher in a Ray actor).
    seed
        Seeds each worker's generator of episode seeds (worker ``i``: ``SeedSequence([seed, i])``);
        with the teacher's own seed, the same seeds give the same tasks, episodes and teacher
        (except with ``"ray"``). None: fresh entropy.
    env_kwargs
        Keyword arguments of ``gym.make`` or of the function.
    wrapper_class
        Applied to each env inside the curriculum wrapper (e.g. an observation wrapper).
    monitor
        Wrap each worker in SB3's ``Monitor`` (episode returns in ``info["episode"]``).
    start_method
        Of the worker processes; default ``"forkserver"`` where available, else ``"spawn"``.

    Returns
    -------
    VecEnv or gymnasium.vector.VectorEnv
        SB3 VecEnv for ``"subproc"``, ``"dummy"``, ``"ray"``; gymnasium vector env for ``"async"``.
        Its ``teacher_link`` attribute is the server (``"subproc"``/``"async"``), the Ray client
        (``"ray"``) or the teacher (``"dummy"``). Closing it closes the server.

    Raises
    ------
    ValueError
        For a bad ``n_envs``, ``vec_env``, ``env_kwargs`` or ``start_method``, or a teacher that is
        not a :class:`~teachgym.teacher.Teacher`.
    """
    if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
    n_envs = int(n_envs)
    if vec_env not in VEC_ENVS:
        raise ValueError(f"vec_env must be one of {list(VEC_ENVS)}, got {vec_env!r}")
    if not isinstance(teacher, Teacher):
        raise ValueError(f"teacher must be a teachgym Teacher (teachgym.make_teacher(...)), got {type(teacher).__name__}")
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        raise ValueError(f"env_kwargs must be a dict, got {type(env_kwargs).__name__}")
    if not (isinstance(env_id_or_fn, str) or callable(env_id_or_fn)):
        raise ValueError(f"env_id_or_fn must be an env id or a function returning an env, got {env_id_or_fn!r}")
    start_method = start_method_or_default(start_method)
    kwargs = dict(env_kwargs or {})
    seeds = worker_seeds(seed, n_envs)

    if vec_env == "dummy":
        venv = LightDummyVecEnv([env_maker(env_id_or_fn, kwargs, wrapper_class, teacher, s, monitor) for s in seeds])
        venv.teacher_link = teacher
        return venv
    if vec_env == "ray":
        link = ray_teacher(teacher)
        venv = SubprocVecEnv([env_maker(env_id_or_fn, kwargs, wrapper_class, link, s, monitor) for s in seeds],
                             start_method=start_method)
        venv.teacher_link = link
        return venv
    server = TeacherServer(teacher, workers=n_envs,
                           max_connections=max(TeacherServer.max_connections, n_envs + 1))
    try:
        fns = [env_maker(env_id_or_fn, kwargs, wrapper_class, server.client(i), s, monitor)
               for i, s in enumerate(seeds)]
        if vec_env == "async":
            venv = ServedVectorEnv(gym.vector.AsyncVectorEnv(fns, context=start_method), server)
        else:
            venv = ServedVecEnv(SubprocVecEnv(fns, start_method=start_method), server)
    except BaseException:
        server.close()
        raise
    venv.teacher_link = server
    return venv
