"""The one teacher shared by many env workers: server, clients, worker wrapper, Ray actor."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from multiprocessing.connection import AuthenticationError, Client

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
        env.action_space.seed(0)
        finished = 0
        for _ in range(600):  # 11-15 episodes in 300 steps (the workers' tasks depend on timing): too near 10
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
        with pytest.raises(ValueError, match="outside the task space"):  # rejected, not clipped
            ray.get(client.actor.update.remote("w9", 0, [0.0, 0.0, 0.0, 0.0, 1e9], 0.5))
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


# ----------------------------------------------------------------------------- hostile clients
# Whatever reaches the socket may be a careless or hostile process of the same user: each attack
# below must close that connection only, and leave the server serving and closable.


def _within(seconds: float, fn, *args):
    """``fn(*args)``, failing (not hanging) if it takes longer than ``seconds``."""
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001  (re-raised in the test's thread)
            result["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} did not return within {seconds} s"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _raw(server: TeacherServer) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(server.address)
    return sock


def _authenticated(server: TeacherServer):
    """A connection that passed the handshake, for sending requests the client would not send."""
    client = server.client()
    return Client(client.address, family="AF_UNIX", authkey=client.authkey)


def _ask(conn, payload: bytes) -> dict:
    conn.send_bytes(payload)
    return json.loads(conn.recv_bytes())


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def _good_round_trip(server: TeacherServer) -> None:
    client = server.client()
    client.update(client.sample(), 0.5)
    client.close()


@pytest.fixture
def server():
    server = TeacherServer(_teacher(), record=True)
    yield server
    _within(15, server.close, 2.0)


def _hang_up_at_once(server):
    _raw(server).close()


def _hang_up_mid_handshake(server):
    sock = _raw(server)
    assert b"#CHALLENGE#" in sock.recv(100)
    sock.close()


def _send_garbage(server):
    sock = _raw(server)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: teacher\r\n\r\n")
    sock.close()


def _send_garbage_of_a_valid_length(server):
    sock = _raw(server)
    sock.sendall(b"\x00\x00\x00\x10" + b"x" * 16)
    sock.close()


def _wrong_key(server):
    with pytest.raises(AuthenticationError):
        Client(server.address, family="AF_UNIX", authkey=b"not the key")


def _stall_in_handshake(server):
    return _raw(server)  # kept open and silent while the good client is served


@pytest.mark.parametrize("attack", [_hang_up_at_once, _hang_up_mid_handshake, _send_garbage,
                                    _send_garbage_of_a_valid_length, _wrong_key, _stall_in_handshake])
def test_the_server_survives_a_client_that_fails_its_handshake(server, attack):
    kept = attack(server)
    _within(10, _good_round_trip, server)
    _within(10, _good_round_trip, server)  # a second time: the accept loop is still running
    assert server.teacher.n_updates == 2
    start = time.monotonic()
    _within(10, server.close, 1.0)
    assert time.monotonic() - start < 3.0
    if kept is not None:
        kept.close()


def _eventually(condition, seconds: float = 5.0) -> None:
    """Wait until ``condition()`` holds (a server thread has caught up), failing after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never reached the expected state"
        time.sleep(0.01)


def test_a_handshake_past_its_deadline_is_cut_and_frees_its_slot():
    server = TeacherServer(_teacher(), max_connections=2, handshake_timeout=1.0)
    start = time.monotonic()
    stalled = [_raw(server), _raw(server)]  # both slots taken by silent connections
    with pytest.raises(ValueError, match="at most 2 connections"):
        _within(10, server.client().sample)
    for sock in stalled:  # the challenge, then the server hangs up at the deadline
        assert sock.recv(1000).startswith(b"\x00\x00\x00") and sock.recv(1000) == b""
    assert time.monotonic() - start >= 1.0
    _eventually(lambda: server.n_rejected == 2)
    _within(10, _good_round_trip, server)
    _within(10, server.close, 1.0)


def test_close_returns_within_its_timeout_despite_stuck_clients():
    server = TeacherServer(_teacher())
    idle = server.client()
    idle.sample()  # connected, never hangs up
    half = _authenticated(server)
    raw_half = socket.socket(fileno=os.dup(half.fileno()))
    raw_half.sendall((100).to_bytes(4, "big") + b"0123456789")  # a message that never finishes
    silent = _raw(server)  # never starts its handshake
    _eventually(lambda: len(server._busy) == 1)  # the half message is in flight
    start = time.monotonic()
    _within(10, server.close, 0.5)
    assert time.monotonic() - start < 3.0
    assert server.n_cut == 1  # the half message; idle clients and handshakes are not waited for
    with pytest.raises((EOFError, OSError)):
        idle.sample()
    assert not os.path.exists(server.address) and not os.path.exists(os.path.dirname(server.address))
    for s in (raw_half, silent):
        s.close()
    half.close()


@pytest.mark.parametrize("payload", [
    b"\xff\xfe\x00not utf-8",
    b"[" * 100_000,
    b'{"op": "update", "extras": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
    b"[1, 2]",
    b'{"op": "steal"}',
    b'{"op": "update", "client": "w0", "number": true, "task": [0, 0, 0, 0, 0], "score": 0.5}',
    b'{"op": "update", "client": ["w0"], "number": 0, "task": [0, 0, 0, 0, 0], "score": 0.5}',
    b'{"op": "update", "client": "w0", "number": 0, "task": "0 0 0 0 0", "score": 0.5}',
    b'{"op": "update", "client": "w0", "number": 0, "task": [0, 0, 0, 0, 0], "score": "high"}',
    b'{"op": "update", "client": "w0", "number": 0, "task": [0, 0, 0, 0, 0], "score": 1e999}',
    b'{"op": "update", "client": "w0", "number": 0, "task": [0, 0, 0, 0, 0], "score": 0.5, "extras": [1]}',
    b'{"op": "update", "client": "w0", "number": 0, "task": [0, 0, 0, 0, 0], "score": 0.5, "extras": {"task": 1}}',
], ids=["non-utf8", "nested-list", "nested-extras", "not-an-object", "unknown-op", "bool-number",
        "list-client", "string-task", "string-score", "infinite-score", "list-extras", "clashing-extras"])
def test_a_malformed_request_gets_an_error_reply_and_the_connection_keeps_serving(server, payload):
    conn = _within(10, _authenticated, server)
    reply = _within(10, _ask, conn, payload)
    assert set(reply) == {"error"} and len(reply["error"]) <= 2000
    assert "task" in _within(10, _ask, conn, b'{"op": "sample"}')  # the same connection still works
    assert server.teacher.n_updates == 0
    conn.close()


@pytest.mark.parametrize("task", [[0.0, 0.0, 0.0, 0.0, 1e9], [float("nan")] * 5, [0.0] * 4, [[0.0] * 5]])
def test_a_task_outside_the_space_is_rejected_not_clipped(server, task):
    client = server.client()
    with pytest.raises(ValueError, match="teacher server: ValueError: task"):
        _within(10, client._request, {"op": "update", "client": "w0", "number": 0, "task": task, "score": 0.5})
    with pytest.raises(ValueError, match="task"):  # the client checks before sending, too
        client.update(np.asarray(task, dtype=float), 0.5)
    assert server.teacher.n_updates == 0 and server.drain_log()[0].shape == (0, 5)
    client.close()


def test_a_message_over_the_size_limit_closes_its_connection_before_it_is_read(server):
    conn = _within(10, _authenticated, server)
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    sock.settimeout(5)
    before = _rss_mib()
    sock.sendall((300 << 20).to_bytes(4, "big"))  # announces 300 MiB, like the attack
    chunk, sent = b"x" * (1 << 20), 0
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        while sent < 64 << 20:  # the old server buffered all of it
            sock.sendall(chunk)
            sent += len(chunk)
    grown = _rss_mib() - before
    assert sent < 8 << 20, f"the server read {sent >> 20} MiB of an over-long message"
    assert grown < 32, f"the server grew by {grown:.0f} MiB"
    sock.close()
    conn.close()
    too_big = server.client()  # and the client refuses to send one
    with pytest.raises(ValueError, match="at most"):
        too_big.update(too_big.sample(), 0.5, note="x" * (TeacherServer.max_message_bytes + 1))
    too_big.close()
    _within(10, _good_round_trip, server)


def test_connections_beyond_max_connections_are_refused_and_threads_stay_bounded():
    with pytest.raises(ValueError, match="max_connections must be a positive int"):
        TeacherServer(_teacher(), max_connections=0)
    threads = threading.active_count()
    server = TeacherServer(_teacher(), max_connections=3)
    clients = [server.client() for _ in range(4)]
    for client in clients[:3]:
        _within(10, client.sample)
    flood = [_raw(server) for _ in range(30)]
    _eventually(lambda: server.n_refused == 30)
    assert threading.active_count() <= threads + 1 + 3  # the acceptor and one per served connection
    with pytest.raises(ValueError, match=r"sock: teacher server busy: it serves at most 3 connections at once \(Teach"):
        _within(10, clients[3].sample)
    assert server.n_refused >= 31
    clients[0].close()
    for _ in range(50):  # the slot frees once the server has seen the hang-up
        try:
            _within(10, clients[3].sample)
            break
        except ValueError:
            clients[3].close()
            time.sleep(0.05)
    else:
        pytest.fail("the freed slot was never given to a waiting client")
    for sock in flood:
        sock.close()
    for client in clients:
        client.close()
    _within(10, server.close, 1.0)


def test_a_long_tmpdir_still_gives_a_short_socket_path(tmp_path, monkeypatch):
    long_dir = tmp_path
    while len(str(long_dir)) < 150:
        long_dir = long_dir / "a-rather-long-folder-name"
    long_dir.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(long_dir))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches its answer
    assert len(tempfile.gettempdir()) >= 150
    server = _within(10, TeacherServer, _teacher())
    assert len(server.address) <= 100 and not server.address.startswith(str(long_dir))
    _within(10, _good_round_trip, server)
    _within(10, server.close, 1.0)
    assert not os.path.exists(os.path.dirname(server.address))


def test_socket_folders_of_killed_runs_are_removed_and_nothing_else(monkeypatch):
    base = tempfile.mkdtemp(prefix="tg-", dir="/tmp")  # short: pytest's tmp_path may not fit a socket
    try:
        dead = _dead_pid()
        prefix = TeacherServer.socket_prefix

        def folder(name: str, listen: bool = False, extra: str = "") -> str:
            path = os.path.join(base, name)
            os.mkdir(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(os.path.join(path, "teacher.sock"))  # the socket file a killed server leaves
            if listen:
                sock.listen(1)
                listening.append(sock)
            else:
                sock.close()
            if extra:
                open(os.path.join(path, extra), "w").close()
            return path

        listening: list[socket.socket] = []
        stale = folder(f"{prefix}{dead}-abcdefgh")
        alive = folder(f"{prefix}{os.getpid()}-abcdefgh")
        served = folder(f"{prefix}{dead}-listened", listen=True)  # e.g. a pid of another namespace
        other = folder(f"{prefix}{dead}-notmine", extra="notes.txt")
        not_a_socket = os.path.join(base, f"{prefix}{dead}-regular")
        os.mkdir(not_a_socket)
        open(os.path.join(not_a_socket, "teacher.sock"), "w").close()
        target = folder("target")
        os.symlink(target, os.path.join(base, f"{prefix}{dead}-symlink"))
        monkeypatch.setenv("TMPDIR", base)
        monkeypatch.setattr(tempfile, "tempdir", None)
        server = _within(10, TeacherServer, _teacher())
        assert os.path.dirname(os.path.dirname(server.address)) == base
        assert not os.path.exists(stale)
        for kept in (alive, served, other, not_a_socket, target):
            assert os.path.exists(os.path.join(kept, "teacher.sock")), kept
        assert os.path.islink(os.path.join(base, f"{prefix}{dead}-symlink"))
        _within(10, server.close, 1.0)
        for sock in listening:
            sock.close()
    finally:
        shutil.rmtree(base)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


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
