"""``teachgym bench datagen`` with an LLM policy and chat engine (fake server), an HF student, and resume."""

from __future__ import annotations

import json

import pytest
from fake_chat_server import FakeChatServer
from tiny_hf import save_tiny_gpt2

from teachgym.benchmarks.datagen import run_datagen
from teachgym.benchmarks.runner import claim_directory, run_id
from teachgym.cli import main

SMALL = ["--domains", "math", "--seeds", "1", "--budget", "4", "--train-steps", "1", "--n-eval", "1", "--jobs", "1"]


class _Stop(Exception):
    pass


def test_bench_datagen_resumes_an_interrupted_episode_from_its_record(tmp_path, capsys):
    args = dict(student="datagen", variant="math", teacher="alp-gmm:fit_rate=36", seed=0, iterations=3, budget=4, n_eval=1,
                train_steps=1, device="cpu", threads=1, student_reset="base")
    full = run_datagen(**args, work_dir=str(tmp_path / "full"))
    # The runner's work folder of that run, left by a process killed after two iterations.
    run = {"student": "datagen", "variant": "math", "teacher": args["teacher"], "seed": 0, "iterations": 3, "budget": 4,
           "train_steps": 1, "n_eval": 1, "device": "cpu", "threads": 1, "student_reset": "base"}
    claim_directory(tmp_path / "out", "datagen")
    work = tmp_path / "out" / "work" / run_id(run)
    done = []

    def stop_after_two(k):
        done.append(k)
        if len(done) == 2:
            raise _Stop

    with pytest.raises(_Stop):
        run_datagen(**args, work_dir=str(work), progress=stop_after_two)
    assert len((work / "episode.jsonl").read_text().splitlines()) == 3
    assert main(["bench", "datagen", *SMALL, "--policies", args["teacher"], "--iterations", "3", "--device", "cpu",
                 "--out", str(tmp_path / "out")]) == 0
    meta = json.loads((tmp_path / "out" / "runs" / run_id(run) / "meta.json").read_text())
    assert meta["result"]["restored_iterations"] == 2 and meta["result"]["replayed_iterations"] == 0
    assert meta["result"]["final_test_accuracy"] == full["final_test_accuracy"]
    assert len((work / "episode.jsonl").read_text().splitlines()) == 4


def test_bench_datagen_runs_the_llm_policy_and_chat_engine_against_a_server_and_records_every_call(tmp_path, capsys):
    plan = json.dumps({"allocation": [{"skill": "arithmetic", "difficulty": 0, "count": 4}]})
    examples = json.dumps({"examples": [{"skill": "arithmetic", "difficulty": 0, "question": f"{a}+1=", "answer": str(a + 1)}
                                        for a in range(4)]})
    server = FakeChatServer([("usage", (plan, {"prompt_tokens": 700, "completion_tokens": 30})), ("content", examples)] * 2)
    try:
        out = tmp_path / "o"
        assert main(["bench", "datagen", *SMALL, "--policies", "llm-skill-list", "--engine", "chat", "--iterations", "2",
                     "--base-url", server.url, "--model", "tiny", "--device", "cpu", "--out", str(out)]) == 0
    finally:
        server.close()
    assert len(server.requests) == 4
    [meta_path] = (out / "runs").glob("*/meta.json")
    meta = json.loads(meta_path.read_text())
    assert meta["run"]["llm"] == {"base_url": server.url, "model": "tiny", "api_key_env": "OPENAI_API_KEY"}
    assert meta["result"]["llm_calls"] == 4 and meta["result"]["prompt_tokens"] == 1400
    [episode] = (out / "work").glob("*/episode.jsonl")
    records = [json.loads(line) for line in episode.read_text().splitlines()]
    assert [c["who"] for c in records[1]["calls"]] == ["policy", "engine"]
    assert records[1]["kept"] == 4 and all(i["kept"] for i in records[1]["items"])


def test_bench_datagen_trains_a_local_hf_student_from_the_command_line(tmp_path, capsys):
    save_tiny_gpt2(tmp_path / "model", tokenizer=True)
    out = tmp_path / "o"
    assert main(["bench", "datagen", *SMALL, "--policies", "uniform", "--iterations", "1", "--device", "cpu",
                 "--student", f"hf:{tmp_path / 'model'}", "--out", str(out)]) == 0
    [meta_path] = (out / "runs").glob("*/meta.json")
    meta = json.loads(meta_path.read_text())
    assert meta["run"]["lm_student"] == f"hf:{tmp_path / 'model'}" and len(meta["result"]["final_test_accuracy"]) == 6


@pytest.mark.parametrize("flags, error", [
    (["--student", "gpt2"], "'default' or 'hf:PATH'"),
    (["--student", "hf:/no/such/model"], "config.json"),
    (["--policies", "llm-skill-tree"], "need base_url and model"),
])
def test_bench_datagen_says_what_is_wrong_with_llm_and_student_settings(tmp_path, capsys, flags, error):
    assert main(["bench", "datagen", *SMALL, "--out", str(tmp_path / "o"), *flags]) != 0
    assert error in capsys.readouterr().err
