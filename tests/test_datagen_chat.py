"""The OpenAI-compatible chat engine against a local server: good, malformed, failing and slow replies."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from teachgym.envs.datagen.engines import ChatEngine, TaskSpec
from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.math_skills import MATH


class _Server:
    """A chat-completions endpoint on 127.0.0.1 that replays a script of replies."""

    def __init__(self, script):
        self.script, self.requests = list(script), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                kind, payload = server.script.pop(0) if server.script else ("content", "[]")
                if kind == "sleep":
                    time.sleep(payload)
                    kind, payload = "content", "[]"
                if kind == "status":
                    self.send_response(payload)
                    self.end_headers()
                    return
                reply = payload if kind == "raw" else json.dumps({"choices": [{"message": {"role": "assistant", "content": payload}}]})
                data = reply.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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
    assert info["generated"] == 4 and info["kept"] == 2 and info["dropped"] == 2
    assert [e.answer for e in env.train_data] == ["1", "blue"] and env._data[0, 0] == env._data[1, 0] == 1
