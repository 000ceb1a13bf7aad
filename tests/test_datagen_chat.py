"""The OpenAI-compatible chat engine against a local server: good, malformed, failing, slow and hostile replies;
model text (plans and items) as hostile as the server."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc

import numpy as np
import pytest
from fake_chat_server import FakeChatServer as _Server

from teachgym.envs.datagen.domain import Domain, Example
from teachgym.envs.datagen.engines import ChatEngine, TaskSpec, parse_spec
from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.math_skills import MATH


@pytest.fixture
def server(request):
    s = _Server(request.param)
    yield s
    s.close()


GOOD = json.dumps({"examples": [
    {"skill": "arithmetic", "subskill": "addition", "difficulty": 0, "question": "2+3=", "answer": "5"},
    {"skill": "arithmetic", "subskill": "addition", "difficulty": 0, "question": "2+3=", "answer": "6"},  # wrong answer
    {"skill": "fractions", "difficulty": 1, "question": "1/2+1/4=", "answer": "3/4"},  # no subskill: any template
    {"skill": "no_such_skill", "difficulty": 0, "question": "1+1=", "answer": "2"},  # malformed item
    {"skill": "arithmetic", "difficulty": 7, "question": "1+1=", "answer": "2"},  # level out of range
]})


@pytest.mark.parametrize("server", [[("content", "```json\n" + GOOD + "\n```")]], indirect=True)
def test_chat_engine_reads_json_examples_sends_the_key_and_the_quality_check_drops_wrong_ones(server, monkeypatch):
    monkeypatch.setenv("TEST_CHAT_KEY", "sekret")
    engine = ChatEngine(MATH, server.url, "tiny", api_key_env="TEST_CHAT_KEY", timeout_s=5)
    examples, stats = engine.generate([TaskSpec(0, 5, level=0)], np.random.default_rng(0))
    assert len(examples) == 3 and stats["malformed_items"] == 2 and stats["requests"] == 1
    assert MATH.verify(examples) == [True, False, True]
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sekret"
    assert req["body"]["model"] == "tiny" and "arithmetic" in req["body"]["messages"][-1]["content"]


@pytest.mark.parametrize(
    "server",
    [[("status", 500), ("content", GOOD), ("content", "this is not json"), ("raw", "{not a completion"), ("sleep", 1.5), ("sleep", 1.5)]],
    indirect=True,
)
def test_chat_engine_retries_errors_counts_malformed_replies_and_timeouts_and_never_raises(server):
    engine = ChatEngine(MATH, server.url, "tiny", timeout_s=0.5, retries=1, per_request=5)
    specs = [TaskSpec(0, 5), TaskSpec(1, 5), TaskSpec(-1, 5, text="hard fraction problems please")]
    examples, stats = engine.generate(specs, np.random.default_rng(0))
    # 1st spec: 500 then a good reply (retry); 2nd: prose (malformed); 3rd: not a completion, then two timeouts
    # are never reached because a malformed completion is skipped, not retried.
    assert stats["http_errors"] == 1 and stats["malformed_replies"] == 2
    assert len(examples) == 3
    engine = ChatEngine(MATH, server.url, "tiny", timeout_s=0.5, retries=1)
    examples, stats = engine.generate([TaskSpec(0, 3)], np.random.default_rng(0))
    assert examples == [] and stats["timeouts"] == 2 and stats["failed_requests"] == 1


@pytest.mark.parametrize("server", [[("content", GOOD)] * 3], indirect=True)
def test_env_with_chat_engine_trains_on_verified_llm_examples_only(server):
    env = DataGenEnv(
        "math", "open_ended", iterations=1, budget=10, n_eval=1, train_steps=2,
        engine="chat", engine_kwargs={"base_url": server.url, "model": "tiny", "timeout_s": 5},
        student_kwargs={"d_model": 16, "n_heads": 2},
    )
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(["give the student easy additions"])
    assert terminated and info["generated"] == 3 and info["kept"] == 2 and info["dropped"] == 1
    assert info["engine"]["malformed_items"] == 2 and len(env.train_data) == 2


def test_unreachable_server_is_counted_not_raised():
    engine = ChatEngine(MATH, "http://127.0.0.1:9/v1", "tiny", timeout_s=0.5, retries=2)
    examples, stats = engine.generate([TaskSpec(0, 2)], np.random.default_rng(0))
    assert examples == [] and stats["requests"] == 3 and stats["failed_requests"] == 1


def _shape(shape, colour, row, col):
    return {"shape": shape, "colour": colour, "row": row, "col": col}


TWO = [_shape("circle", "red", 0, 0), _shape("square", "blue", 3, 3)]
VQA_REPLY = json.dumps({"examples": [
    {"skill": "count", "subskill": "count_colour", "scene": TWO, "question": "how many  RED shapes?", "answer": "1"},
    {"skill": "colour", "scene": TWO, "question": "What colour is the shape in row 4 column 4?", "answer": "Blue"},  # any subskill
    {"skill": "position", "scene": TWO, "question": "Is the red circle on the left or the right?", "answer": "right"},  # wrong
    {"skill": "colour", "scene": TWO + [_shape("circle", "green", 1, 1)], "question": "What colour is the circle?", "answer": "red"},  # two circles
    {"skill": "count", "scene": [_shape("circle", "purple", 0, 0)], "question": "How many shapes?", "answer": "1"},  # no such colour
    {"skill": "count", "scene": [_shape("circle", "red", 0, 0)] * 2, "question": "How many shapes?", "answer": "2"},  # one cell twice
    {"skill": "count", "scene": [_shape("circle", "red", 4, 0)], "question": "How many shapes?", "answer": "1"},  # off the grid
    {"skill": "count", "scene": [_shape("circle", "red", r, c) for r in range(4) for c in range(2)], "question": "How many shapes?", "answer": "8"},
    {"skill": "count", "scene": TWO, "question": "How big is the circle?", "answer": "small"},  # no template
    {"skill": "count", "scene": "a red circle", "question": "How many shapes?", "answer": "1"},  # scene not a list
    "not an object",
]})


@pytest.mark.parametrize("server", [[("content", VQA_REPLY)]], indirect=True)
def test_chat_engine_renders_vqa_scene_specs_and_the_check_recomputes_answers_from_the_scene(server):
    from teachgym.envs.datagen.vqa_skills import VQA, draw

    engine = ChatEngine(VQA, server.url, "tiny", timeout_s=5)
    examples, stats = engine.generate([TaskSpec(0, 20, level=0)], np.random.default_rng(0))
    assert len(examples) == 4 and stats["malformed_items"] == 7 and stats["malformed_replies"] == 0
    assert VQA.verify(examples) == [True, True, False, False]  # a wrong answer and an ambiguous question fail
    good = examples[:2]
    assert [e.prompt for e in good] == ["How many red shapes?", "What colour is the shape in row 4 column 4?"]
    assert [(e.skill, e.subskill, e.level, e.answer) for e in good] == [(0, 1, 0, "1"), (1, 1, 0, "blue")]
    assert all(np.array_equal(e.image, draw(TWO)) and e.image.any() for e in good)
    prompt = " ".join(m["content"] for m in server.requests[0]["body"]["messages"])
    assert '"scene"' in prompt and "row" in prompt and "count" in prompt


@pytest.mark.parametrize("server", [[("content", "Sure! Here are some scenes: a red circle..."), ("content", VQA_REPLY)]], indirect=True)
def test_vqa_env_with_chat_engine_skips_prose_and_trains_on_verified_scenes_only(server):
    env = DataGenEnv(
        "vqa", "skill_list", iterations=1, budget=20, n_eval=1, train_steps=2,
        engine="chat", engine_kwargs={"base_url": server.url, "model": "tiny", "timeout_s": 5},
    )
    env.reset(seed=0)
    weights = np.zeros((4, 3))
    weights[0, 0] = weights[1, 0] = 1.0  # two cells: two requests, the first answered with prose
    _, _, terminated, _, info = env.step(weights)
    assert terminated and info["engine"]["requests"] == 2 and info["engine"]["malformed_replies"] == 1
    # the reply to the colour request holds a count, a position and a three-shape (level 1) item: not asked for
    assert info["generated"] == 4 and info["kept"] == 1 and info["off_plan"] == 3 and info["dropped"] == 3
    assert [e.answer for e in env.train_data] == ["blue"] and env._data[1, 0] == 1


# ---------------------------------------------------------------------------------------------
# A hostile server: every reply below is one a server on the other end of base_url can send.
# Loopback only; every connection ends within a few seconds, even on a client that never hangs up.


class _RawServer:
    """A TCP server on 127.0.0.1: reads one HTTP request per connection, then ``respond(conn)`` writes raw bytes."""

    def __init__(self, respond, tls=None):
        self.respond, self.requests, self.closed, self.tls = respond, [], threading.Event(), tls
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http{'s' if tls else ''}://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # the accept timeout, or the socket closed
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                if self.tls:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 2**16:
                    data += conn.recv(4096) or b"\r\n\r\n"
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                while len(body) < int(headers.get("content-length", 0)):
                    body += conn.recv(65536) or b"x" * 2**20
                self.requests.append({"line": lines[0], "auth": headers.get("authorization")})
                self.respond(conn)
            except OSError:  # the client hung up (or refused the certificate): what a client that gives up does
                pass

    def close(self):
        self.closed.set()
        self.thread.join(1)
        self.sock.close()


@pytest.fixture
def raw_server():
    servers = []

    def start(respond, tls=None):
        servers.append(_RawServer(respond, tls))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _reply(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def _completion(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


class _FakeTime:
    """Monotonic time plus the waits the engine asked for, which are recorded instead of slept."""

    def __init__(self):
        self.offset, self.sleeps = 0.0, []

    def clock(self):
        return time.monotonic() + self.offset

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.offset += seconds


def _engine(url, fake=None, **kw):
    fake = fake or _FakeTime()
    return ChatEngine(MATH, url, "tiny", sleep=fake.sleep, clock=fake.clock, **{"timeout_s": 5, **kw})


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_so_the_key_never_reaches_another_origin(raw_server, monkeypatch, code):
    monkeypatch.setenv("TEST_CHAT_KEY", "sekret")
    target = raw_server(lambda conn: conn.sendall(_reply(_completion(GOOD))))
    redirect = raw_server(lambda conn: conn.sendall(_reply(b"", f"{code} Moved", f"Location: {target.url}/chat/completions\r\n")))
    examples, stats = _engine(redirect.url, api_key_env="TEST_CHAT_KEY").generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert examples == [] and target.requests == []
    assert [r["auth"] for r in redirect.requests] == ["Bearer sekret"]  # only base_url ever saw the key
    assert stats["redirects"] == 1 and stats["requests"] == 1 and stats["failed_requests"] == 1


def _trickle(data: bytes, every_s: float = 0.1):
    def respond(conn):
        for i in range(len(data)):  # 40 bytes at most per test: the server ends in 4 s whatever the client does
            conn.sendall(data[i : i + 1])
            time.sleep(every_s)

    return respond


TRICKLE_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
TRICKLE_HEAD = _reply(b"{}")[:40]


@pytest.mark.parametrize("head, body", [(TRICKLE_BODY, b"x" * 40), (b"", TRICKLE_HEAD)], ids=["body", "status-line-and-headers"])
def test_a_server_trickling_a_byte_at_a_time_cannot_stretch_a_request_past_timeout_s(raw_server, head, body):
    server = raw_server(lambda conn: (conn.sendall(head), _trickle(body)(conn)))
    engine = ChatEngine(MATH, server.url, "tiny", timeout_s=0.5, retries=0)
    t0 = time.monotonic()
    examples, stats = engine.generate([TaskSpec(0, 2)], np.random.default_rng(0))
    assert time.monotonic() - t0 < 2.0  # per-read timeouts alone: 4 s (the whole trickle)
    assert examples == [] and stats["timeouts"] == 1 and stats["failed_requests"] == 1


def test_deadline_s_ends_a_request_and_its_retries_together(raw_server):
    server = raw_server(_trickle(TRICKLE_HEAD))
    engine = ChatEngine(MATH, server.url, "tiny", timeout_s=0.4, retries=10, backoff_s=0.05, deadline_s=1.0)
    assert ChatEngine(MATH, server.url, "tiny", timeout_s=2, retries=2, backoff_s=1, max_backoff_s=1.5).deadline_s == 3 * 2 + 1 + 1.5
    t0 = time.monotonic()
    examples, stats = engine.generate([TaskSpec(0, 2)], np.random.default_rng(0))
    assert time.monotonic() - t0 < 2.5  # per-read timeouts alone: 11 attempts x 4 s
    assert examples == [] and 2 <= stats["timeouts"] == stats["requests"] <= 3 and stats["failed_requests"] == 1


def test_a_reply_announcing_more_than_max_reply_bytes_is_refused_before_it_is_read(raw_server):
    chunk = b"x" * 2**20

    def respond(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 209715200\r\n\r\n")
        for _ in range(200):
            conn.sendall(chunk)

    server = raw_server(respond)
    assert ChatEngine(MATH, server.url, "tiny").max_reply_bytes == 8 * 2**20
    examples, stats = _engine(server.url, max_reply_bytes=2**20, retries=2).generate([TaskSpec(0, 2)], np.random.default_rng(0))
    assert examples == [] and stats["oversized_replies"] == 1 and stats["bytes_read"] == 0
    assert stats["requests"] == 1  # not retried: the same request gets the same reply


@pytest.mark.parametrize("chunked", [False, True], ids=["until-close", "chunked"])
def test_a_200_mb_reply_without_length_is_cut_at_max_reply_bytes_and_memory_stays_bounded(raw_server, chunked):
    chunk = b"x" * 2**20
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"

    def respond(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + (b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Connection: close\r\n\r\n"))
        for _ in range(200):  # 200 MiB unless the client hangs up
            conn.sendall(framed if chunked else chunk)

    server = raw_server(respond)
    engine = _engine(server.url, max_reply_bytes=2**20)
    tracemalloc.start()
    try:
        examples, stats = engine.generate([TaskSpec(0, 2)], np.random.default_rng(0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert examples == [] and stats["oversized_replies"] == 1 and stats["requests"] == 1
    assert 2**20 < stats["bytes_read"] <= 2**20 + 2**16
    assert peak < 6 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 1 MiB cap"


@pytest.mark.parametrize("bomb", [b"{},", b"1000,", b'"ab",'], ids=["dicts", "ints", "strings"])
def test_a_reply_of_millions_of_tiny_json_values_is_refused_before_parsing(raw_server, bomb):
    body = b"[" + bomb * (2**21 // len(bomb) - 1) + b"0]"  # 2 MiB: 700 k dicts would take 48 MiB
    server = raw_server(lambda conn: conn.sendall(_reply(body)))
    engine = _engine(server.url, max_reply_bytes=2**21)
    tracemalloc.start()
    try:
        examples, stats = engine.generate([TaskSpec(0, 2)], np.random.default_rng(0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert examples == [] and stats["malformed_replies"] == 1 and stats["bytes_read"] == len(body)
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 2 MiB reply"


@pytest.mark.parametrize(
    "status, attempts",
    [(500, 3), (502, 3), (503, 3), (504, 3), (408, 3), (429, 3), (400, 1), (401, 1), (403, 1), (404, 1), (409, 1), (422, 1)],
)
def test_only_timeouts_rate_limits_and_server_errors_are_retried(raw_server, status, attempts):
    server = raw_server(lambda conn: conn.sendall(_reply(b"{}", f"{status} Status")))
    fake = _FakeTime()
    examples, stats = _engine(server.url, fake, retries=2).generate([TaskSpec(0, 2)], np.random.default_rng(0))
    assert examples == [] and stats["requests"] == len(server.requests) == attempts
    assert stats["http_errors"] == attempts and stats["failed_requests"] == 1 and len(fake.sleeps) == attempts - 1


def test_backoff_is_exponential_with_seeded_jitter_and_capped(raw_server):
    server = raw_server(lambda conn: conn.sendall(_reply(b"{}", "503 Busy")))

    def waits(seed):
        fake = _FakeTime()
        _engine(server.url, fake, retries=5, backoff_s=1.0, max_backoff_s=6.0, seed=seed).generate([TaskSpec(0, 1)], np.random.default_rng(0))
        return fake.sleeps

    first = waits(7)
    assert len(first) == 5 and waits(7) == first and waits(8) != first
    for k, wait in enumerate(first):
        assert 0.5 * min(6.0, 2**k) <= wait <= min(6.0, 2**k)


def test_retry_after_is_honoured_and_one_beyond_the_deadline_ends_the_request_at_once(raw_server):
    replies = [_reply(b"{}", "429 Slow down", "Retry-After: 7\r\n"), _reply(_completion(GOOD))]
    server = raw_server(lambda conn: conn.sendall(replies.pop(0)))
    fake = _FakeTime()
    examples, stats = _engine(server.url, fake, backoff_s=0.01).generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert fake.sleeps == [7.0] and len(examples) == 3 and stats["requests"] == 2 and stats["failed_requests"] == 0

    server = raw_server(lambda conn: conn.sendall(_reply(b"{}", "503 Down", "Retry-After: 3600\r\n")))
    fake = _FakeTime()
    examples, stats = _engine(server.url, fake, retries=3).generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert fake.sleeps == [] and stats["requests"] == 1 and stats["failed_requests"] == 1  # deadline: 4 x 5 s + waits < 3600 s

    server = raw_server(lambda conn: conn.sendall(_reply(b"{}", "503 Down", "Retry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n")))
    fake = _FakeTime()
    _engine(server.url, fake, retries=1, backoff_s=0.5).generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert len(fake.sleeps) == 1 and 0.25 <= fake.sleeps[0] <= 0.5  # the date form: plain backoff


GARBAGE = {
    "bad-status-line": (b"SPAM\r\n\r\n", "protocol_errors"),
    "no-reply": (b"", "protocol_errors"),
    "incomplete-read": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"choices\"", "protocol_errors"),
    "over-long-status-line": (b"HTTP/1.1 200 " + b"x" * 70000 + b"\r\n\r\n", "protocol_errors"),
    "over-long-header-line": (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"x" * 70000 + b"\r\n\r\n", "protocol_errors"),
    "too-many-headers": (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: 1\r\n" * 200 + b"\r\n", "protocol_errors"),
    "bad-chunk-size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "protocol_errors"),
    "non-utf8-body": (_reply(b'{"choices": "\xff\xfe\xfd"}'), "malformed_replies"),
    "deeply-nested-reply": (_reply(b"[" * 100000), "malformed_replies"),
    "deeply-nested-content": (_reply(_completion("[" * 100000)), "malformed_replies"),
    "nan-in-reply": (_reply(b'{"choices": NaN}'), "malformed_replies"),
    "content-not-a-string": (_reply(b'{"choices": [{"message": {"content": [1, 2]}}]}'), "malformed_replies"),
    "difficulty-1e999": (_reply(_completion('[{"skill": 0, "difficulty": 1e999, "question": "1+1=", "answer": "2"}]')), "malformed_replies"),
    "5000-digit-json-number": (_reply(_completion('[{"skill": 0, "difficulty": ' + "9" * 5000 + ', "question": "1+1=", "answer": "2"}]')), "malformed_replies"),
    "5000-digit-question": (_reply(_completion(json.dumps([{"skill": 0, "question": "9" * 5000 + "+1=", "answer": "1" + "0" * 5000}]))), "malformed_items"),
    "inf-difficulty-item": (_reply(_completion('[{"skill": 0, "difficulty": "inf", "question": "1+1=", "answer": "2"}]')), "malformed_items"),
}


@pytest.mark.parametrize("reply, counter", list(GARBAGE.values()), ids=list(GARBAGE))
def test_everything_a_server_can_send_is_counted_and_skipped_never_raised(raw_server, reply, counter):
    server = raw_server(lambda conn: conn.sendall(reply))
    fake = _FakeTime()
    examples, stats = _engine(server.url, fake, retries=1).generate([TaskSpec(0, 2)], np.random.default_rng(0))
    retried = counter == "protocol_errors"  # a broken exchange may be transient; a complete bad answer is not
    assert examples == [] and stats[counter] == (2 if retried else 1) and stats["requests"] == (2 if retried else 1)
    assert sum(stats[k] for k in ("timeouts", "http_errors", "protocol_errors", "malformed_replies", "malformed_items")) == stats[counter]


def test_only_the_items_asked_for_are_read_and_the_rest_are_counted(raw_server, monkeypatch):
    item = {"skill": "arithmetic", "subskill": "addition", "difficulty": 0, "question": "2+3=", "answer": "5"}
    server = raw_server(lambda conn: conn.sendall(_reply(_completion(json.dumps({"examples": [item] * 20000})))))
    read = []
    monkeypatch.setattr(MATH, "from_item", lambda item: read.append(item) or Domain.from_item(MATH, item))
    examples, stats = _engine(server.url).generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert len(examples) == len(read) == 5 and stats["extra_items"] == 19995 and stats["malformed_items"] == 0


def test_a_code_fence_is_stripped_in_linear_time(raw_server):
    server = raw_server(lambda conn: conn.sendall(_reply(_completion("```json\n[" + " " * 20000 + "\n]```"))))
    t0 = time.monotonic()
    examples, stats = _engine(server.url).generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert examples == [] and stats["malformed_replies"] == 0 and time.monotonic() - t0 < 1.0  # a regex took 2.3 s
    server = raw_server(lambda conn: conn.sendall(_reply(_completion("a" + " " * 20000 + "b"))))
    t0 = time.monotonic()
    examples, stats = _engine(server.url).generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert stats["malformed_replies"] == 1 and time.monotonic() - t0 < 1.0


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (openssl's command line makes it)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


def test_https_checks_the_certificate_and_keeps_the_deadline(raw_server, certificate, monkeypatch):
    monkeypatch.setenv("TEST_CHAT_KEY", "sekret")
    server_tls, trusting = certificate
    server = raw_server(lambda conn: conn.sendall(_reply(_completion(GOOD))), tls=server_tls)
    examples, stats = _engine(server.url, api_key_env="TEST_CHAT_KEY", retries=0).generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert examples == [] and stats["http_errors"] == 1 and server.requests == []  # untrusted: refused before the key is sent
    examples, stats = _engine(server.url, api_key_env="TEST_CHAT_KEY", ssl_context=trusting).generate([TaskSpec(0, 5)], np.random.default_rng(0))
    assert len(examples) == 3 and [r["auth"] for r in server.requests] == ["Bearer sekret"]
    server = raw_server(_trickle(TRICKLE_HEAD), tls=server_tls)
    t0 = time.monotonic()
    _, stats = ChatEngine(MATH, server.url, "tiny", timeout_s=0.5, retries=0, ssl_context=trusting).generate([TaskSpec(0, 2)], np.random.default_rng(0))
    assert stats["timeouts"] == 1 and time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/v1", "127.0.0.1:8000/v1", "http://user:pw@127.0.0.1/v1", "http:///v1", "http://127.0.0.1/v1?x=1"])
def test_a_base_url_that_is_not_plain_http_or_https_is_a_value_error(url):
    with pytest.raises(ValueError, match="base_url"):
        ChatEngine(MATH, url, "tiny")


# ---------------------------------------------------------------------------------------------
# Model text: plans and items a model writes are as hostile as the server.

HOSTILE_SPECS = {
    "nested-past-the-recursion-limit": "[" * 100000,
    "nested-deep-within-600-chars": '{"skill": 0, "x": ' + "[" * 100 + "]" * 100 + "}",
    "difficulty-1e999": '{"skill": 0, "difficulty": 1e999}',
    "count-1e999": '{"skill": 0, "count": 1e999}',
    "difficulty-nan": '{"skill": 0, "difficulty": NaN}',
    "count-5000-digits": '{"skill": 0, "count": ' + "9" * 5000 + "}",
    "count-100-digits": '{"skill": 0, "count": ' + "9" * 100 + "}",
    "subskill-infinity": '{"skill": 0, "subskill": -Infinity}',
    "difficulty-fraction": '{"skill": 0, "difficulty": 1.5}',
    "skill-true": '{"skill": true}',
    "ten-megabytes-of-text": "easy sums " * 10**6,
}


@pytest.mark.parametrize("text", list(HOSTILE_SPECS.values()), ids=list(HOSTILE_SPECS))
def test_parse_spec_refuses_hostile_plans_without_raising(text):
    t0 = time.monotonic()
    assert parse_spec(text, MATH, 5) is None
    assert time.monotonic() - t0 < 1.0


def test_parse_spec_still_reads_good_specs_and_free_text():
    assert parse_spec('{"skill": "fractions", "difficulty": 2.0, "count": "3", "subskill": 1}', MATH, 9) == TaskSpec(
        1, 3, 2, 1, text='{"skill": "fractions", "difficulty": 2.0, "count": "3", "subskill": 1}'
    )
    assert parse_spec("{broken json, any text", MATH, 4) == TaskSpec(-1, 4, text="{broken json, any text")
    assert parse_spec("   ", MATH, 4) is None


@pytest.mark.parametrize(
    "item, error",
    [
        ({"skill": 0, "difficulty": float("inf"), "question": "1+1=", "answer": "2"}, ValueError),  # int(inf): OverflowError
        ({"skill": 0, "difficulty": float("nan"), "question": "1+1=", "answer": "2"}, ValueError),
        ({"skill": 0, "difficulty": True, "question": "1+1=", "answer": "2"}, ValueError),
        ({"skill": 0, "question": "9" * 5000 + "+1=", "answer": "2"}, ValueError),
        ({"skill": 0, "question": "1+1=", "answer": "9" * 5000}, ValueError),
        ({"skill": 0, "question": {"nested": []}, "answer": "2"}, TypeError),
        (["skill", 0], TypeError),
    ],
)
def test_from_item_raises_only_the_errors_the_engine_counts(item, error):
    from teachgym.envs.datagen.vqa_skills import VQA

    with pytest.raises(error):
        MATH.from_item(item)
    with pytest.raises((ValueError, TypeError, KeyError)):
        VQA.from_item({**item, "scene": TWO} if isinstance(item, dict) else item)


def test_the_math_check_refuses_a_5000_digit_number_and_checks_long_ones_fast():
    huge = Example(0, 0, 0, "9" * 5000 + "+1=", "1" + "0" * 5000)
    assert MATH.verify([huge]) == [False]  # int() of 5,000 digits raised ValueError out of verify
    a = "9" * 495
    assert MATH.verify([Example(0, 0, 0, "1+1=", "2")]) == [True]  # the level bounds are computed once, here
    t0 = time.monotonic()
    # no level of the templates has 495-digit numbers: the claimed level refuses both, before any arithmetic
    assert MATH.verify_tiers([Example(0, 2, 2, f"{a}*{a}=", str(int(a) ** 2)), Example(0, 2, 2, f"{a}*{a}=", "1")]) == [(False, "level")] * 2
    assert MATH._template_check([Example(0, 2, 2, f"{a}*{a}=", str(int(a) ** 2)), Example(0, 2, 2, f"{a}*{a}=", "1")]) == [True, None]
    assert time.monotonic() - t0 < 1.0


def test_an_open_ended_plan_is_model_text_bounded_in_size_and_never_raises():
    env = DataGenEnv("math", "open_ended", iterations=1, budget=6, n_eval=1, train_steps=0, student_kwargs={"d_model": 16, "n_heads": 2})
    env.reset(seed=0)
    good = json.dumps({"skill": "fractions", "difficulty": 1, "count": 3})
    plan = ["[" * 100000, '{"skill": 0, "difficulty": 1e999}', "x" * 601, good] + ['{"skill": 0, "count": 1}'] * 10**6
    t0 = time.monotonic()
    _, _, _, _, info = env.step(plan)
    # the plan is cut to its first `budget` (6) specifications: three hostile ones, 3 fractions and 2 x 1 arithmetic
    assert info["invalid_specs"] == 3 and info["generated"] == info["kept"] == 5 and time.monotonic() - t0 < 5
    assert sorted((e.skill, e.level) for e in env.train_data if e.skill == 1) == [(1, 1)] * 3
    with pytest.raises(ValueError, match="sequence of task specifications"):
        env.step(7)


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout_s": 0}, {"timeout_s": float("inf")}, {"timeout_s": float("nan")}, {"retries": -1}, {"max_reply_bytes": 0},
     {"backoff_s": 2.0, "max_backoff_s": 1.0}, {"max_backoff_s": float("inf")}, {"deadline_s": 0}, {"deadline_s": float("inf")}],
)
def test_settings_out_of_range_are_value_errors(kwargs):
    with pytest.raises(ValueError, match="expected"):
        ChatEngine(MATH, "http://127.0.0.1:9/v1", "tiny", **kwargs)


PARAPHRASES = json.dumps({"examples": [
    {"skill": "arithmetic", "difficulty": 0, "question": "2 + 3 =", "answer": "5"},
    {"skill": "arithmetic", "difficulty": 0, "question": "What is 2 plus 3?", "answer": "5.0"},
    {"skill": "arithmetic", "difficulty": 0, "question": "What is 2 plus 3?", "answer": "6"},  # wrong
    {"skill": "fractions", "difficulty": 0, "question": "1/2+1/4=", "answer": "3/4"},  # a skill not asked for
    {"skill": "arithmetic", "difficulty": 0, "question": "250+3=", "answer": "253"},  # not level 0
]})


@pytest.mark.parametrize("server", [[("content", PARAPHRASES)]], indirect=True)
def test_a_chat_models_correct_paraphrases_pass_wrong_off_plan_and_mislevelled_items_are_dropped_and_counted(server):
    env = DataGenEnv(
        "math", "skill_list", iterations=1, budget=5, n_eval=1, train_steps=1,
        engine="chat", engine_kwargs={"base_url": server.url, "model": "tiny", "timeout_s": 5}, student_kwargs={"d_model": 16, "n_heads": 2},
    )
    env.reset(seed=0)
    weights = np.zeros((6, 3))
    weights[0, 0] = 1.0
    _, _, _, _, info = env.step(weights)
    assert info["generated"] == 5 and info["kept"] == 2 and info["off_plan"] == 1
    assert info["verify"]["math"] == {"passed": 2, "rejected": 1, "pass_rate": pytest.approx(2 / 3)}
    assert info["verify"]["level"]["rejected"] == 1
    assert [(e.prompt, e.answer) for e in env.train_data] == [("2 + 3 =", "5"), ("What is 2 plus 3?", "5")]  # the templates' form


WORD = Example(5, 0, -1, "Ann has 3 apples and buys 4 more. How many apples does she have now?", "7")


@pytest.mark.parametrize("server", [[("content", '```json\n{"correct": true}\n```'), ("content", "Yes, it is right."),
                                     ("content", '{"correct": false}')]], indirect=True)
def test_the_llm_judge_decides_only_what_no_other_tier_could_and_a_reply_that_is_no_verdict_drops_the_item(server):
    from teachgym.envs.datagen.verifiers import ChatJudge

    judge = ChatJudge(MATH, base_url=server.url, model="tiny", timeout_s=5)
    template = Example(0, 0, 0, "2+3=", "5")
    verdicts = MATH.verify_tiers([template, WORD, WORD, WORD], judge=judge)
    assert verdicts == [(True, "template"), (True, "judge"), (False, "none"), (False, "judge")]
    assert len(server.requests) == 3 and judge.stats["malformed_replies"] == 1
    assert "Ann has 3 apples" in server.requests[0]["body"]["messages"][-1]["content"]
    env = DataGenEnv("math", "skill_list", judge="chat", judge_kwargs={"base_url": server.url, "model": "tiny"})
    assert isinstance(env.judge, ChatJudge)
    with pytest.raises(ValueError, match="judge"):
        DataGenEnv("math", "skill_list", judge="gpt")


@pytest.mark.parametrize("server", [[("content", "[]")]], indirect=True)
def test_a_skill_tree_subskills_free_form_name_reaches_the_chat_engine(server):
    env = DataGenEnv(
        "math", "skill_tree", iterations=1, budget=4, n_eval=1, train_steps=1,
        engine="chat", engine_kwargs={"base_url": server.url, "model": "tiny", "timeout_s": 5}, student_kwargs={"d_model": 16, "n_heads": 2},
    )
    env.reset(seed=0)
    env.step({"fractions": {"explore": 1, "n_new": 1, "new_allocation": 4, "names": ["mixed numbers"], "difficulty": 1}})
    prompt = server.requests[0]["body"]["messages"][-1]["content"]
    assert "'fractions'" in prompt and "'mixed numbers'" in prompt and "difficulty 1" in prompt
