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
import select
import selectors
import socket
import stat
import tempfile
import threading
import time
from multiprocessing.connection import (
    AuthenticationError,
    Client,
    Connection,
    answer_challenge,
    deliver_challenge,
)
from typing import Any

import gymnasium as gym
import numpy as np

from teachgym.spaces import Task, TaskSpace, check_score
from teachgym.teacher import Teacher
from teachgym.wrappers import EpisodeReporter, check_same_space, env_task_space

RAY_NAMESPACE = "teachgym"  # where the teacher actors are named
SOCKET_NAME = "teacher.sock"
# AF_UNIX paths hold 108 bytes on Linux and 104 on macOS, the terminating NUL included.
MAX_SOCKET_PATH = 100
# What a handshake can raise when the other side is not a client of ours: it hung up, sent
# garbage, a message longer than the handshake's 256 bytes, or a wrong digest (Python 3.11's
# answer_challenge checks the greeting with an assert).
HANDSHAKE_ERRORS = (AuthenticationError, AssertionError, EOFError, OSError)
REFUSAL = "#ERROR# "  # starts the message a server at its connection limit sends instead of a challenge


def _vector(task_space: TaskSpace, task: Task) -> list:
    return task_space.vector(task).tolist()


def _pid_alive(pid: int) -> bool:
    if not 0 < pid < 2**22:  # kill(0, ...) would address our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def _socket_listened(path: str) -> bool:
    """Whether a server still accepts on the socket ``path`` (a pid of another namespace looks dead)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:  # a timeout (full backlog) or anything else: assume alive, keep it
        return True
    finally:
        probe.close()
    return True


def _remove_stale_sockets(base: str, prefix: str) -> list[str]:
    """Remove the socket folders ``base/<prefix><pid>-*`` of servers that were killed.

    A folder is removed only when it is a real directory of this user that holds nothing but
    the socket, its pid is not running, and nothing listens on the socket any more (a pid of
    another pid namespace sharing ``/tmp`` looks dead). Returns the folders removed.
    """
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not entry.name.startswith(prefix) or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        path = os.path.join(entry.path, SOCKET_NAME)
        try:
            if os.listdir(entry.path) != [SOCKET_NAME] or not stat.S_ISSOCK(os.lstat(path).st_mode):
                continue
            if _socket_listened(path):
                continue
            os.unlink(path)
            os.rmdir(entry.path)
        except OSError:
            continue  # another process cleaned it first
        removed.append(entry.path)
    return removed


class TeacherServer:
    """Serve one teacher to any number of :class:`TeacherClient` s from a background thread.

    Parameters
    ----------
    teacher
        The teacher; every request runs under one lock, so it sees a single ordered stream.
    record
        Whether to keep the ``(task vector, score)`` of each update for :meth:`drain_log`
        (the training loop's histograms and statistics).
    max_connections, max_message_bytes, handshake_timeout
        Limits; ``None`` keeps the class default of the same name.
    workers
        With ``workers`` = n > 0, the clients made by ``client(i)``, i < n, are served in a
        canonical order, whatever the timing of their processes: each worker holds a next task
        drawn in advance, an update is only queued, and :meth:`flush` (the learner calls it after
        each vector step) applies the queued updates in worker order, then draws the next task
        of each worker that took its own, in worker order. Same seed, same numbers.

    Notes
    -----
    Use as a context manager, or call :meth:`close`; ``close`` hangs up on idle clients and
    waits for the requests in flight (at most ``close_timeout`` seconds), so call it after the
    workers are done (``VecEnv.close``).

    Whatever connects is treated as hostile until it has proved it knows the key: the HMAC
    handshake runs in the connection's own thread under a deadline (``handshake_timeout``), so
    a client that stalls, hangs up, sends garbage or a wrong digest closes its own connection
    and nothing else. At most ``max_connections`` connections are served at once (one thread
    each); a further one gets an error message and is closed. A message longer than
    ``max_message_bytes`` closes its connection before its body is read; a request that is not
    a well-formed JSON object, or whose task lies outside the task space, gets an error reply.
    The socket lives in a private (0700) folder with a short path, ``<tmp>/teachgym-link-<pid>-*``,
    named by the server's pid so that a later server removes the folders of killed runs.
    """

    max_connections: int = 128  # authenticated workers plus clients still in their handshake
    max_message_bytes: int = 1 << 20  # a request is a task vector, a score and a few extras
    handshake_timeout: float = 5.0  # seconds a new connection has to authenticate
    close_timeout: float = 10.0  # seconds close() waits for clients to hang up before cutting them
    socket_prefix: str = "teachgym-link-"
    max_queued: int = 1000  # updates one worker may queue between two flushes (one per step is the norm)

    def __init__(
        self,
        teacher: Teacher,
        record: bool = False,
        workers: int = 0,
        *,
        max_connections: int | None = None,
        max_message_bytes: int | None = None,
        handshake_timeout: float | None = None,
    ) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise ValueError(f"workers: expected an int >= 0, got {workers!r}")
        self.teacher = teacher
        self.record = record
        self.workers = workers
        self._next: list[list[float] | None] = [None] * workers  # each worker's task for its next reset
        self._queued: list[list[tuple[Task, float, dict[str, Any], list]]] = [[] for _ in range(workers)]
        self.n_unordered = 0  # next tasks drawn on demand because flush() was not called in between
        for name, value, kinds in (
            ("max_connections", max_connections, (int,)),
            ("max_message_bytes", max_message_bytes, (int,)),
            ("handshake_timeout", handshake_timeout, (int, float)),
        ):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, kinds) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive {kinds[-1].__name__}, got {value!r}")
            setattr(self, name, value)
        self.lock = threading.Lock()
        self._log_tasks: list[list[float]] = []
        self._log_scores: list[float] = []
        self._seen: dict[str, int] = {}  # client id -> last update number applied
        self.n_updates = 0
        self.n_duplicates = 0
        self.n_refused = 0  # connections turned away because max_connections were open
        self.n_rejected = 0  # connections that failed or timed out in the handshake
        self.n_cut = 0  # connections close() had to cut because their client did not hang up
        self._folder = self._socket_folder()
        self.address = os.path.join(self._folder, SOCKET_NAME)
        self._authkey = secrets.token_bytes(16)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(self.address)
            self._listener.listen(socket.SOMAXCONN)  # the acceptor drains it at once: refused or served
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            os.rmdir(self._folder)
            raise
        self._wake_r, self._wake_w = socket.socketpair()
        self._state = threading.Lock()  # guards the tables below and the connection counters
        self._sockets: dict[socket.socket, threading.Thread] = {}  # every open connection
        self._deadlines: dict[socket.socket, float] = {}  # connections still in their handshake
        self._busy: set[socket.socket] = set()  # connections with a request in flight
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="teacher-server", daemon=True)
        self._acceptor.start()

    def client(self, worker: int | None = None) -> TeacherClient:
        """A new picklable client for one worker (``worker``: its index, for the ordered mode)."""
        if worker is not None and not (isinstance(worker, int) and 0 <= worker < self.workers):
            raise ValueError(f"worker: expected an index in [0, {self.workers}), got {worker!r}")
        return TeacherClient(self.address, self._authkey, self.teacher.task_space, self.max_message_bytes,
                             worker=worker)

    @classmethod
    def _socket_folder(cls) -> str:
        """A new private folder with a short path for the socket; stale ones of killed runs go first.

        ``$TMPDIR`` when the socket path fits in it, else ``/tmp`` (a long ``$TMPDIR`` cannot
        hold an ``AF_UNIX`` socket). A private folder, not an abstract socket: any process of
        any user in the network namespace could reach an abstract one.
        """
        prefix = f"{cls.socket_prefix}{os.getpid()}-"
        tried = []
        for base in dict.fromkeys((tempfile.gettempdir(), "/tmp")):
            # mkdtemp adds 8 characters to the prefix
            if len(os.path.join(base, prefix + "x" * 8, SOCKET_NAME)) > MAX_SOCKET_PATH:
                tried.append(f"{base} (too long a path)")
                continue
            _remove_stale_sockets(base, cls.socket_prefix)
            try:
                return tempfile.mkdtemp(prefix=prefix, dir=base)  # mode 0700
            except OSError as err:
                tried.append(f"{base} ({err.strerror})")
        raise ValueError(
            f"no folder for the teacher server's socket: tried {', '.join(tried)}; expected a writable "
            f"folder whose path is at most {MAX_SOCKET_PATH - len(prefix) - 22} characters (set TMPDIR to one)"
        )

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
        """Accept connections until close(); cut handshakes that run past their deadline."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closed:
                with self._state:
                    first = min(self._deadlines.values(), default=None)
                events = selector.select(None if first is None else max(0.0, first - time.monotonic()))
                self._expire_handshakes()
                if self._closed:
                    return
                if any(key.fileobj is self._listener for key, _ in events):
                    try:
                        sock, _ = self._listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue  # the client gave up before we got to it
                    except OSError:  # out of file descriptors: retry once some are freed
                        time.sleep(0.05)
                        continue
                    self._admit(sock)

    def _expire_handshakes(self) -> None:
        now = time.monotonic()
        with self._state:  # under the lock: the connection's thread cannot close it meanwhile
            for sock, deadline in list(self._deadlines.items()):
                if deadline <= now:
                    del self._deadlines[sock]
                    _shutdown(sock)  # its thread's handshake then fails and closes it

    def _admit(self, sock: socket.socket) -> None:
        """Serve ``sock`` in a thread of its own, or turn it away when all slots are taken."""
        sock.setblocking(True)
        with self._state:
            if self._closed:
                sock.close()
                return
            full = len(self._sockets) >= self.max_connections
            if not full:
                thread = threading.Thread(target=self._serve, args=(sock,), name="teacher-link", daemon=True)
                self._sockets[sock] = thread
                self._deadlines[sock] = time.monotonic() + self.handshake_timeout
        if full:
            with self._state:
                self.n_refused += 1
            # Before the handshake the client reads one short message: it reports this one.
            # A fresh socket's buffer takes it without blocking.
            refusal = (f"{REFUSAL}teacher server busy: it serves at most {self.max_connections} "
                       f"connections at once (TeacherServer.max_connections)").encode()
            try:
                sock.sendall(len(refusal).to_bytes(4, "big") + refusal)
            except OSError:
                pass
            _shutdown(sock)
            sock.close()
            return
        try:
            thread.start()
        except RuntimeError:  # the system is out of threads: this connection only is dropped
            with self._state:
                self._sockets.pop(sock, None)
                self._deadlines.pop(sock, None)
            sock.close()

    def _serve(self, sock: socket.socket) -> None:
        """One connection: the handshake, then requests until the client hangs up or misbehaves."""
        # The Connection reads and writes a duplicate descriptor; ``sock`` stays ours to shut down,
        # which wakes a blocked read even where a forked worker still holds a copy of the socket.
        conn = Connection(os.dup(sock.fileno()))
        try:
            try:
                deliver_challenge(conn, self._authkey)
                answer_challenge(conn, self._authkey)
            except HANDSHAKE_ERRORS:
                with self._state:
                    self.n_rejected += 1
                return
            finally:
                with self._state:
                    expired = self._deadlines.pop(sock, None) is None
            if expired:
                return
            idle = select.poll()  # one poll object for the connection: cheaper than conn.poll()
            idle.register(conn.fileno(), select.POLLIN)
            while True:
                idle.poll()  # idle until a request (or the hang-up, or close()'s shutdown) arrives
                with self._state:  # a request is in flight from now on, unless close() came first
                    if self._closed:
                        return
                    self._busy.add(sock)
                try:
                    data = conn.recv_bytes(self.max_message_bytes)
                    conn.send_bytes(self._reply(data))
                except (EOFError, OSError):
                    return  # the client hung up, sent too long a message, or close() cut it
                with self._state:
                    self._busy.discard(sock)
                    if self._closed:  # close() waited for this reply; it hangs up on us now
                        return
        finally:
            conn.close()
            with self._state:
                self._sockets.pop(sock, None)
                self._deadlines.pop(sock, None)
                self._busy.discard(sock)
                _shutdown(sock)
                sock.close()

    def _reply(self, data: bytes) -> bytes:
        """The JSON reply to one request; any error in it becomes an error reply."""
        try:
            try:
                message = json.loads(data.decode("utf-8"))
            except (ValueError, RecursionError) as err:  # not UTF-8, not JSON, nested too deep
                raise ValueError(f"expected a JSON object in UTF-8, got {type(err).__name__}: {err}") from None
            reply = self._handle(message)
        except Exception as err:  # the worker raises it; the server keeps serving
            reply = {"error": f"{type(err).__name__}: {err}"[:2000]}
        return json.dumps(reply).encode()

    def _handle(self, message: dict[str, Any]) -> dict[str, Any]:
        space = self.teacher.task_space
        if not isinstance(message, dict) or message.get("op") not in ("sample", "update"):
            op = message.get("op") if isinstance(message, dict) else message
            raise ValueError(f"unknown request {str(op)[:100]!r}; expected {{'op': 'sample' or 'update', ...}}")
        if message["op"] == "update":
            client, number, vector, score, extras = _checked_update(space, message)
        with self.lock:
            if self.workers and message.get("worker") is not None:
                return self._ordered(message)
            if message["op"] == "sample":
                return {"task": _vector(space, self.teacher.sample())}
            if number <= self._seen.get(client, -1):
                self.n_duplicates += 1
                return {"applied": False}
            self.teacher.update(space.task(vector), score, **extras)
            self._seen[client] = number
            self.n_updates += 1
            if self.record:
                self._log_tasks.append(vector.tolist())
                self._log_scores.append(score)
            return {"applied": True}

    def drain_log(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(tasks, scores)`` of the updates since the last call (needs ``record=True``)."""
        with self.lock:
            tasks, scores = self._log_tasks, self._log_scores
            self._log_tasks, self._log_scores = [], []
        dim = len(self.teacher.task_space.low)
        return np.asarray(tasks, dtype=np.float64).reshape(-1, dim), np.asarray(scores, dtype=np.float64)

    def close(self, timeout: float | None = None) -> None:
        """Stop serving: hang up on idle clients, finish the requests in flight, then return.

        A request in flight gets its reply (its client counts on it) within ``timeout`` seconds
        (``None``: :attr:`close_timeout`); after that its connection is cut too, and ``close``
        returns soon after even if a thread is stuck in the teacher. A client whose connection
        was cut gets ``EOFError`` or ``OSError`` at its next request.
        """
        if self._closed:
            return
        timeout = self.close_timeout if timeout is None else max(0.0, float(timeout))
        deadline = time.monotonic() + timeout
        self._closed = True
        self._wake_w.send(b"x")
        self._acceptor.join(max(timeout, 1.0))  # woken at once; it ends within a loop
        self._listener.close()
        try:
            os.unlink(self.address)
            os.rmdir(self._folder)
        except OSError:  # already gone; a later server removes what is left
            pass
        with self._state:  # cut the pending handshakes and the idle connections at once
            self._deadlines.clear()
            for sock in self._sockets:
                if sock not in self._busy:
                    _shutdown(sock)
            threads = list(self._sockets.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._state:
            self.n_cut += len(self._sockets)
            for sock in self._sockets:
                _shutdown(sock)
            threads = list(self._sockets.values())
        grace = time.monotonic() + 1.0  # a cut connection's thread ends at once, unless it is in the teacher
        for thread in threads:
            thread.join(max(0.0, grace - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> TeacherServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by its client or by us
        pass


def _checked_update(space: TaskSpace, message: dict[str, Any]) -> tuple[str, int, np.ndarray, float, dict]:
    """The fields of an update request, each checked: ``ValueError`` says which one is wrong."""
    client, number = message.get("client"), message.get("number")
    if not isinstance(client, str) or not 0 < len(client) <= 64:
        raise ValueError(f"update: 'client' must be a string of 1 to 64 characters, got {str(client)[:100]!r}")
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**63:
        raise ValueError(f"update: 'number' must be an integer in [0, 2**63), got {str(number)[:100]!r}")
    task = message.get("task")
    if not isinstance(task, list):
        raise ValueError(f"update: 'task' must be a list of {space.dim} numbers, got {str(task)[:100]!r}")
    vector = space.vector(task)  # outside the space: ValueError, never clipped
    score = check_score(message.get("score"))
    extras = message.get("extras", {})
    if not isinstance(extras, dict):
        raise ValueError(f"update: 'extras' must be a JSON object, got {type(extras).__name__}")
    return client, number, vector, score, extras


class TeacherClient:
    """A worker's handle on a :class:`TeacherServer`: ``sample()`` and ``update(task, score)``.

    Picklable (address, key, task space, the server's message limit and worker index); it
    connects on first use inside the worker. With a ``worker`` index (a server's ordered mode)
    ``update`` returns once the update is queued; the server applies it at its next ``flush``.
    """

    def __init__(self, address: str, authkey: bytes, task_space: TaskSpace,
                 max_message_bytes: int = TeacherServer.max_message_bytes, worker: int | None = None) -> None:
        self.address = address
        self.authkey = authkey
        self.task_space = task_space
        self.max_message_bytes = max_message_bytes
        self.worker = worker
        self.client_id = ""
        self._conn: Connection | None = None
        self._number = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"address": self.address, "authkey": self.authkey, "task_space": self.task_space,
                "max_message_bytes": self.max_message_bytes, "worker": self.worker}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["address"], state["authkey"], state["task_space"], state["max_message_bytes"],
                      state.get("worker"))

    def _connect(self) -> Connection:
        if self._conn is None:
            try:
                self._conn = Client(self.address, family="AF_UNIX", authkey=self.authkey)
            except HANDSHAKE_ERRORS as err:
                detail = f"{type(err).__name__}: {err}"
                if REFUSAL in detail:  # the server's refusal arrived in place of the challenge
                    detail = detail[detail.index(REFUSAL) + len(REFUSAL):].rstrip("'\"")
                raise ValueError(f"cannot connect to the teacher server at {self.address}: {detail}") from None
            self.client_id = secrets.token_hex(8)  # unique per connection, even across forks
        return self._conn

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.worker is not None:
            message = {**message, "worker": self.worker}
        data = json.dumps(message).encode()
        if len(data) > self.max_message_bytes:
            raise ValueError(f"teacher request of {len(data)} bytes; the server takes at most {self.max_message_bytes}")
        self._connect().send_bytes(data)
        reply = json.loads(self._connect().recv_bytes(self.max_message_bytes).decode())
        if "error" in reply:
            raise ValueError(f"teacher server: {reply['error']}")
        return reply

    def sample(self) -> Task:
        """A task from the shared teacher."""
        return self.task_space.task(self.task_space.vector(np.asarray(self._request({"op": "sample"})["task"])))

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
        check_same_space(teacher.task_space, space)
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
            vector = self.teacher.task_space.vector(task)  # outside the space: ValueError, never clipped
            self.teacher.update(self.teacher.task_space.task(vector), score, **(extras or {}))
            self.seen[client] = number
            self.log.append((vector.tolist(), float(score)))
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
