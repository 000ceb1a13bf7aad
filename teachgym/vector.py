"""One teacher for many env workers: a server in the learner, picklable clients in the workers.

Vectorised training runs its envs in sub-processes (SB3 ``SubprocVecEnv``, gymnasium
``AsyncVectorEnv``) or on other machines, while the teacher must stay ONE object that sees every
episode. :class:`TeacherServer` serves the teacher from a thread of the learner's process over a
``multiprocessing.connection`` socket (messages are JSON over ``send_bytes``: no pickle crosses
it); :class:`TeacherClient` is the small picklable handle a worker carries. Each request gets a
reply only after the teacher has applied it, so when ``VecEnv.step`` returns, every episode that
ended in it has reached the teacher exactly once (a client numbers its updates and the server
drops a number it has already applied). :func:`ray_teacher` puts the teacher in a Ray actor
instead, for workers on other machines (optional extra ``ray``).

:class:`EpisodeCurriculum` is the worker-side wrapper: a task from the teacher (local or remote)
at each reset, ``(task, score)`` to it at each episode's end, and an explicit seed for each
episode drawn from its own generator, and the episode's actions kept, so that a checkpoint can
bring back the episode in progress exactly (:meth:`EpisodeCurriculum.curriculum_state`: reset
with the same seed and task, then the same actions again).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

import gymnasium as gym
import numpy as np

from teachgym.spaces import Task, TaskSpace, describe_space
from teachgym.teacher import Teacher
from teachgym.wrappers import EpisodeReporter, env_task_space

RAY_NAMESPACE = "teachgym"  # where the teacher actors are named


def _vector(task_space: TaskSpace, task: Task) -> list:
    return task_space.vector(task).tolist()


class TeacherServer:
    """Serve one teacher to any number of :class:`TeacherClient` s from a background thread.

    Parameters
    ----------
    teacher
        The teacher; every request runs under one lock, so it sees a single ordered stream.
    record
        Whether to keep the ``(task vector, score)`` of each update for :meth:`drain_log`
        (the training loop's histograms and statistics).
    workers
        With ``workers`` = n > 0, the clients made by ``client(i)``, i < n, are served in a
        canonical order, whatever the timing of their processes: each worker holds a next task
        drawn in advance, an update is only queued, and :meth:`flush` (the learner calls it after
        each vector step) applies the queued updates in worker order, then draws the next task
        of each worker that took its own, in worker order. Same seed, same numbers.

    Use as a context manager, or call :meth:`close`; ``close`` waits until every connected
    client has hung up (its worker exited or called ``close``) and all its requests are done.
    """

    max_queued = 1000  # updates one worker may queue between two flushes (one per step is the norm)

    def __init__(self, teacher: Teacher, record: bool = False, workers: int = 0) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise ValueError(f"workers: expected an int >= 0, got {workers!r}")
        self.teacher = teacher
        self.record = record
        self.workers = workers
        self._next: list[list[float] | None] = [None] * workers  # each worker's task for its next reset
        self._queued: list[list[tuple[Task, float, dict[str, Any], list]]] = [[] for _ in range(workers)]
        self.n_unordered = 0  # next tasks drawn on demand because flush() was not called in between
        self.lock = threading.Lock()
        self._log_tasks: list[list[float]] = []
        self._log_scores: list[float] = []
        self._seen: dict[str, int] = {}  # client id -> last update number applied
        self.n_updates = 0
        self.n_duplicates = 0
        self._folder = tempfile.mkdtemp(prefix="teachgym-")
        self.address = os.path.join(self._folder, "teacher.sock")
        self._authkey = secrets.token_bytes(16)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self._authkey)
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="teacher-server", daemon=True)
        self._acceptor.start()

    def client(self, worker: int | None = None) -> TeacherClient:
        """A new picklable client for one worker (``worker``: its index, for the ordered mode)."""
        if worker is not None and not (isinstance(worker, int) and 0 <= worker < self.workers):
            raise ValueError(f"worker: expected an index in [0, {self.workers}), got {worker!r}")
        return TeacherClient(self.address, self._authkey, self.teacher.task_space, worker=worker)

    # ------------------------------------------------------------------------- canonical order
    def flush(self) -> None:
        """Apply the queued updates, worker 0's first, then draw a next task for each worker that
        took its own, in worker order (a no-op without ``workers``)."""
        with self.lock:
            for queue in self._queued:
                while queue:
                    self._apply(*queue.pop(0))
            for i, task in enumerate(self._next):
                if task is None:
                    self._next[i] = _vector(self.teacher.task_space, self.teacher.sample())

    def next_tasks(self) -> list[list[float] | None]:
        """The task each worker will get at its next reset (drawn already; for checkpoints)."""
        with self.lock:
            return [None if t is None else list(t) for t in self._next]

    def load_next_tasks(self, tasks: list[list[float] | None]) -> None:
        """Put back what :meth:`next_tasks` returned (before the workers reset)."""
        if len(tasks) != self.workers:
            raise ValueError(f"expected the next tasks of {self.workers} workers, got {len(tasks)}")
        space = self.teacher.task_space
        with self.lock:
            self._next = [None if t is None else _vector(space, space.task(np.asarray(t, dtype=np.float64)))
                          for t in tasks]

    def _ordered(self, message: dict[str, Any]) -> dict[str, Any]:
        """A request of worker ``message["worker"]`` in the ordered mode (the lock is held)."""
        worker, space = message["worker"], self.teacher.task_space
        if not isinstance(worker, int) or isinstance(worker, bool) or not 0 <= worker < self.workers:
            raise ValueError(f"worker: expected an index in [0, {self.workers}), got {worker!r}")
        if message["op"] == "sample":
            task, self._next[worker] = self._next[worker], None
            if task is None:  # flush() was not called since this worker's last reset: no canonical order
                self.n_unordered += 1
                task = _vector(space, self.teacher.sample())
            return {"task": task}
        if message["op"] == "update":
            client, number = message["client"], int(message["number"])
            if number <= self._seen.get(client, -1):
                self.n_duplicates += 1
                return {"applied": False}
            score = float(message["score"])
            if not np.isfinite(score):
                raise ValueError(f"score must be finite, got {score}")
            if len(self._queued[worker]) >= self.max_queued:
                raise ValueError(f"worker {worker} has {self.max_queued} updates waiting: the learner "
                                 "must call flush() after each vector step")
            task = space.task(np.asarray(message["task"], dtype=np.float64))
            self._queued[worker].append((task, score, dict(message.get("extras", {})), list(message["task"])))
            self._seen[client] = number
            return {"applied": False, "queued": True}
        raise ValueError(f"unknown request {message.get('op')!r}; expected 'sample' or 'update'")

    def _apply(self, task: Task, score: float, extras: dict[str, Any], vector: list) -> None:
        self.teacher.update(task, score, **extras)
        self.n_updates += 1
        if self.record:
            self._log_tasks.append(vector)
            self._log_scores.append(score)

    # ------------------------------------------------------------------------- serving
    def _accept(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError):
                return  # listener closed
            if self._closed:
                conn.close()
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    message = json.loads(conn.recv_bytes().decode())
                except (EOFError, OSError):
                    return  # the client hung up
                try:
                    reply = self._handle(message)
                except Exception as err:  # the worker raises it; the server keeps serving
                    reply = {"error": f"{type(err).__name__}: {err}"}
                conn.send_bytes(json.dumps(reply).encode())

    def _handle(self, message: dict[str, Any]) -> dict[str, Any]:
        space = self.teacher.task_space
        with self.lock:
            if self.workers and message.get("worker") is not None:
                return self._ordered(message)
            if message["op"] == "sample":
                return {"task": _vector(space, self.teacher.sample())}
            if message["op"] == "update":
                client, number = message["client"], int(message["number"])
                if number <= self._seen.get(client, -1):
                    self.n_duplicates += 1
                    return {"applied": False}
                task = space.task(np.asarray(message["task"], dtype=np.float64))
                self.teacher.update(task, float(message["score"]), **message.get("extras", {}))
                self._seen[client] = number
                self.n_updates += 1
                if self.record:
                    self._log_tasks.append(list(message["task"]))
                    self._log_scores.append(float(message["score"]))
                return {"applied": True}
        raise ValueError(f"unknown request {message.get('op')!r}; expected 'sample' or 'update'")

    def drain_log(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(tasks, scores)`` of the updates since the last call (needs ``record=True``)."""
        with self.lock:
            tasks, scores = self._log_tasks, self._log_scores
            self._log_tasks, self._log_scores = [], []
        dim = len(self.teacher.task_space.low)
        return np.asarray(tasks, dtype=np.float64).reshape(-1, dim), np.asarray(scores, dtype=np.float64)

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop accepting clients and wait for the connected ones to hang up."""
        if self._closed:
            return
        self._closed = True
        try:  # wake the acceptor: connect once so that accept() returns
            Client(self.address, family="AF_UNIX", authkey=self._authkey).close()
        except OSError:
            pass
        self._listener.close()
        self._acceptor.join(timeout)
        for thread in self._threads:
            thread.join(timeout)
        try:
            os.rmdir(self._folder)
        except OSError:
            pass

    def __enter__(self) -> TeacherServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TeacherClient:
    """A worker's handle on a :class:`TeacherServer`: ``sample()`` and ``update(task, score)``.

    Picklable (address, key, task space and worker index only); it connects on first use inside
    the worker. With a ``worker`` index (a server's ordered mode) ``update`` returns once the
    update is queued; the server applies it at its next ``flush``.
    """

    def __init__(self, address: str, authkey: bytes, task_space: TaskSpace, worker: int | None = None) -> None:
        self.address = address
        self.authkey = authkey
        self.task_space = task_space
        self.worker = worker
        self.client_id = ""
        self._conn: Connection | None = None
        self._number = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"address": self.address, "authkey": self.authkey, "task_space": self.task_space,
                "worker": self.worker}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["address"], state["authkey"], state["task_space"], state.get("worker"))

    def _connect(self) -> Connection:
        if self._conn is None:
            self._conn = Client(self.address, family="AF_UNIX", authkey=self.authkey)
            self.client_id = secrets.token_hex(8)  # unique per connection, even across forks
        return self._conn

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.worker is not None:
            message = {**message, "worker": self.worker}
        self._connect().send_bytes(json.dumps(message).encode())
        reply = json.loads(self._connect().recv_bytes().decode())
        if "error" in reply:
            raise ValueError(f"teacher server: {reply['error']}")
        return reply

    def sample(self) -> Task:
        """A task from the shared teacher."""
        return self.task_space.task(np.asarray(self._request({"op": "sample"})["task"], dtype=np.float64))

    def update(self, task: Task, score: float, **extras: Any) -> None:
        """Report one episode (``extras``: JSON values such as ``success``); returns once the
        teacher has applied it."""
        self._connect()
        self._request({"op": "update", "client": self.client_id, "number": self._number,
                       "task": _vector(self.task_space, task), "score": float(score), "extras": extras})
        self._number += 1

    def close(self) -> None:
        """Hang up (the server finishes this client's requests first: they were acknowledged)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class EpisodeCurriculum(EpisodeReporter):
    """Worker-side curriculum wrapper: teacher (or client) task at reset, score at episode end.

    Like :class:`teachgym.CurriculumWrapper`, with two additions for vectorised, resumable
    training: the teacher may be any object with ``task_space``, ``sample()`` and
    ``update(task, score, **extras)`` (a :class:`TeacherClient`, a Ray handle), and every episode is
    reset with a seed drawn from the wrapper's own generator, so the episode in progress is
    fully described by :meth:`curriculum_state` and restarted identically after
    :meth:`load_curriculum_state`.

    Parameters
    ----------
    env
        An env with ``task_space`` on its unwrapped instance.
    teacher
        A :class:`~teachgym.teacher.Teacher` or a client for one.
    seed
        Seed of the generator that draws each episode's env seed.
    """

    def __init__(self, env: gym.Env, teacher: Any, seed: int | None = None) -> None:
        super().__init__(env)
        space = env_task_space(env)
        if describe_space(space.space) != describe_space(teacher.task_space.space):
            raise ValueError(
                f"the teacher's task space {teacher.task_space.space!r} differs from the env's {space.space!r}"
            )
        self.teacher = teacher
        self.task_space = space
        self.score_range = getattr(env.unwrapped, "score_range", None)
        self.rng = np.random.default_rng(seed)
        self._task: Task | None = None
        self._episode_seed = 0
        self._actions: list[np.ndarray] = []  # the actions of the episode in progress, for its replay
        self._replay: dict[str, Any] | None = None
        self._return = 0.0
        self._reported = True
        self.n_reported = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        replay = None
        if self._replay is not None:  # restart the episode a checkpoint was taken in
            replay, self._replay = self._replay, None
            self._task = self.task_space.task(np.asarray(replay["task"], dtype=np.float64))
            self._episode_seed = int(replay["episode_seed"])
            self.rng.bit_generator.state = replay["rng"]
        else:
            self._task = self.teacher.sample()
            self._episode_seed = int(self.rng.integers(2**31 - 1))
        options["task"] = self._task
        obs, info = self.env.reset(seed=self._episode_seed, options=options)
        self._return, self._reported = 0.0, False
        self._actions = []
        if replay is not None:
            obs = self._replay_actions(replay.get("actions", ()), obs)
        info.setdefault("task", self._task)
        return obs, info

    def _replay_actions(self, actions: Any, obs: Any) -> Any:
        """Take the saved episode's actions again: same seed, task and actions give the same state."""
        for action in actions:
            obs, reward, terminated, truncated, _ = self.env.step(action)
            self._return += float(reward)
            self._actions.append(np.array(action, copy=True))
            if terminated or truncated:
                raise ValueError(
                    f"the saved episode ended after {len(self._actions)} of its {len(actions)} actions when "
                    "replayed: the env does not repeat itself given its seed, task and actions")
        return obs

    def step(self, action: Any):
        out = super().step(action)
        self._actions.append(np.array(action, copy=True))  # a copy: SB3 reuses its action buffers
        return out

    def _report(self, score: float, extras: dict[str, Any]) -> None:
        self.teacher.update(self._task, score, **extras)
        self.n_reported += 1

    def curriculum_state(self) -> dict[str, Any]:
        """The episode in progress: its task, its env seed, the generator after drawing it and
        the actions taken so far (an array, one row per step)."""
        if self._task is None:
            return {}
        actions = (np.stack(self._actions) if self._actions
                   else np.empty((0, *self.action_space.shape), dtype=self.action_space.dtype))
        return {"task": _vector(self.task_space, self._task), "episode_seed": self._episode_seed,
                "rng": self.rng.bit_generator.state, "actions": actions}

    def load_curriculum_state(self, state: dict[str, Any]) -> None:
        """Make the next ``reset`` bring back the episode ``state`` describes, without asking the
        teacher: the env is reset with the saved seed and task and the saved actions are taken
        again, so the episode continues exactly where it was."""
        self._replay = dict(state) if state else None

    def close(self) -> None:
        closer = getattr(self.teacher, "close", None)
        if closer is not None and not isinstance(self.teacher, Teacher):
            closer()
        super().close()


# ----------------------------------------------------------------------------- Ray


def ray_teacher(teacher: Teacher) -> Any:
    """Put ``teacher`` in a Ray actor; return a picklable client with ``sample``/``update``.

    Workers anywhere in the Ray cluster use the returned :class:`RayTeacherClient`; Ray runs an
    actor's calls one at a time, so the teacher sees one ordered stream. Requires ``ray``
    (``pip install teachgym[ray]``) and an initialised Ray (``ray.init()``).
    """
    try:
        import ray
    except ImportError as err:
        raise ValueError("--backend ray needs ray: pip install 'teachgym[ray]'") from err
    if not ray.is_initialized():
        ray.init()  # a local cluster; call ray.init(address=...) first to use an existing one

    @ray.remote
    class TeacherActor:
        def __init__(self, cls: type, space: Any, names: Any, seed: Any, hparams: dict, state: dict) -> None:
            # The class itself, not its registered name: adapters ("exp3@CellAdapter") have none.
            self.teacher = cls(TaskSpace(space, names), seed=seed, **hparams)
            self.teacher.load_state_dict(state)
            self.seen: dict[str, int] = {}
            self.log: list[tuple[list, float]] = []

        def sample(self) -> list:
            return _vector(self.teacher.task_space, self.teacher.sample())

        def update(self, client: str, number: int, task: list, score: float, extras: dict | None = None) -> bool:
            if number <= self.seen.get(client, -1):
                return False
            self.teacher.update(self.teacher.task_space.task(np.asarray(task, dtype=np.float64)), score, **(extras or {}))
            self.seen[client] = number
            self.log.append((list(task), float(score)))
            return True

        def drain_log(self) -> tuple[list, list]:
            log, self.log = self.log, []
            return [t for t, _ in log], [s for _, s in log]

        def state_dict(self) -> dict:
            return self.teacher.state_dict()

    space = teacher.task_space
    # A named actor: sub-processes unpickle the client before they join the cluster, which an
    # actor handle cannot survive; they look the actor up by name once connected.
    name = f"teachgym-teacher-{secrets.token_hex(8)}"
    actor = TeacherActor.options(name=name, namespace=RAY_NAMESPACE).remote(
        type(teacher), space.space, space.names, None, teacher.hparams(), teacher.state_dict())
    return RayTeacherClient(actor, space, name, ray.get_runtime_context().gcs_address)


class RayTeacherClient:
    """A worker's handle on the Ray teacher actor (same interface as :class:`TeacherClient`).

    Pickled, it keeps the actor's name and the cluster's address; a process that unpickles it
    joins that cluster and finds the actor on first use.
    """

    def __init__(self, actor: Any, task_space: TaskSpace, name: str, address: str) -> None:
        self.actor = actor
        self.task_space = task_space
        self.name, self.address = name, address
        self.client_id = secrets.token_hex(8)
        self._number = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"task_space": self.task_space, "name": self.name, "address": self.address}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(None, state["task_space"], state["name"], state["address"])

    def _ray(self) -> Any:
        import ray

        if not ray.is_initialized():  # a worker process: join the cluster the actor lives in
            ray.init(address=self.address, namespace=RAY_NAMESPACE, log_to_driver=False)
        if self.actor is None:
            self.actor = ray.get_actor(self.name, namespace=RAY_NAMESPACE)
        return ray

    def sample(self) -> Task:
        ray = self._ray()
        return self.task_space.task(np.asarray(ray.get(self.actor.sample.remote()), dtype=np.float64))

    def update(self, task: Task, score: float, **extras: Any) -> None:
        ray = self._ray()
        ray.get(self.actor.update.remote(self.client_id, self._number, _vector(self.task_space, task), float(score), extras))
        self._number += 1

    def drain_log(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(tasks, scores)`` the actor applied since the last call."""
        tasks, scores = self._ray().get(self.actor.drain_log.remote())
        dim = len(self.task_space.low)
        return np.asarray(tasks, dtype=np.float64).reshape(-1, dim), np.asarray(scores, dtype=np.float64)

    def state_dict(self) -> dict[str, Any]:
        """The actor's teacher state (for checkpoints)."""
        return self._ray().get(self.actor.state_dict.remote())
