"""The LLM agents of the datagen envs against a local fake server: the policy at every level (good, malformed,
slow and missing replies, fallback), strict plans, editable prompts, usage, record/replay; provenance and resume."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from fake_chat_server import FakeChatServer

from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.llm_policy import LLMPolicy, parse_open_ended, parse_skill_list, parse_skill_tree
from teachgym.envs.datagen.policies import run_episode
from teachgym.envs.datagen.provenance import append_record, read_records, run_recorded_episode
from teachgym.envs.datagen.transcript import Transcript

SMALL = {"budget": 12, "n_eval": 1, "train_steps": 1, "student_kwargs": {"d_model": 16, "n_heads": 2}}
PLANS = {
    "open_ended": {"reasoning": "adds are weak", "plan": [{"skill": "arithmetic", "difficulty": 0, "count": 5, "subskill": "addition"},
                                                         {"description": "fractions with unlike denominators", "count": 2}]},
    "skill_list": {"allocation": [{"skill": "fractions", "difficulty": 1, "count": 8}, {"skill": "arithmetic", "difficulty": 0, "count": 2}]},
    "skill_tree": {"actions": {"fractions": {"action_type": "explore", "num_new_skills": 1, "data_allocation_for_new_skills": 6},
                               "arithmetic": {"action_type": "explore", "num_new_skills": 2, "data_allocation_for_new_skills": 4}}},
}
ENGINE_REPLY = json.dumps({"examples": [{"skill": "arithmetic", "difficulty": 0, "question": "2+3=", "answer": "5"}]})


@pytest.fixture
def servers():
    started = []

    def start(script):
        started.append(FakeChatServer(script))
        return started[-1]

    yield start
    for s in started:
        s.close()


def _env(level, iterations=2, **kw):
    return DataGenEnv("math", level, iterations=iterations, **{**SMALL, **kw})


@pytest.mark.parametrize("level", list(PLANS))
@pytest.mark.parametrize("engine", ["template", "chat"])
def test_llm_policy_plans_every_level_retries_bad_and_slow_replies_and_falls_back_when_none_parses(servers, level, engine, caplog):
    plan = json.dumps(PLANS[level])
    # Iteration 1: prose, a reply slower than the timeout, then a plan in a fence (3rd attempt).
    # Iteration 2: three malformed replies: the fallback plan.
    policy_server = servers([("content", "Sure! Here is my plan."), ("slow", (1.0, plan)), ("content", f"```json\n{plan}\n```"),
                             ("content", "{"), ("content", '{"plan": 3}'), ("content", json.dumps({"allocation": [], "actions": {}}))])
    engine_server = servers([("content", ENGINE_REPLY)] * 40)
    env = _env(level, engine=engine, engine_kwargs={"base_url": engine_server.url, "model": "m", "timeout_s": 5} if engine == "chat" else None)
    policy = LLMPolicy(env, base_url=policy_server.url, model="planner", timeout_s=0.4, retries=0)
    obs, info = env.reset(seed=0)
    action = policy.act(obs, info)
    assert not policy.last["fallback"] and policy.last["attempts"] == 3
    assert policy.stats["malformed_answers"] == 1 and policy.stats["no_reply"] == 1 and policy.stats["timeouts"] == 1
    if level == "open_ended":
        assert json.loads(action[0]) == {"skill": "arithmetic", "difficulty": 0, "count": 5, "subskill": "addition"}
        assert action[1] == "fractions with unlike denominators"
    elif level == "skill_list":
        assert action[1, 1] == pytest.approx(0.8) and action[0, 0] == pytest.approx(0.2) and action.sum() == pytest.approx(1)
    else:
        # Trees start empty (DataEnvGym's): both skills explore; the others keep their (empty) trees.
        fr, ar = env.skill_names.index("fractions"), env.skill_names.index("arithmetic")
        assert action[fr] == {"explore": 1, "n_new": 1, "new_allocation": 6}
        assert action[ar] == {"explore": 1, "n_new": 2, "new_allocation": 4}
        assert all(a == {"explore": 0} for i, a in enumerate(action) if i not in (fr, ar))
    obs, _, _, _, info = env.step(action)
    assert info["generated"] > 0 and (engine == "template" or info["engine"]["requests"] > 0)
    with caplog.at_level(logging.WARNING, logger="teachgym.envs.datagen.llm_policy"):
        env.step(policy.act(obs, info))
    assert policy.last["fallback"] and policy.stats["fallbacks"] == 1 and len(policy.last["errors"]) == 3
    assert "fallback plan" in caplog.text
    # The prompt carries the state the level observes.
    first = policy_server.prompts()[0]
    assert {"open_ended": "student: ", "skill_list": "difficulty 2: ", "skill_tree": "no subskills yet"}[level] in first
    assert policy_server.requests[0]["body"]["model"] == "planner"


@pytest.mark.parametrize("level, plan, error", [
    ("open_ended", {"plan": [{"skill": "algebra", "difficulty": 0, "count": 1}]}, "unknown skill"),
    ("open_ended", {"plan": [{"skill": "arithmetic", "difficulty": 0, "count": 13}]}, "outside 1..12"),
    ("open_ended", {"plan": [{"skill": "arithmetic", "difficulty": 0, "count": 7}] * 2}, "budget is 12"),
    ("open_ended", {"plan": [{"skill": "arithmetic", "difficulty": 5, "count": 1}]}, "difficulty 5"),
    ("open_ended", {"plan": [{"skill": "arithmetic", "difficulty": 0, "count": 1, "colour": "red"}]}, "unknown keys"),
    ("open_ended", {"plan": [{"skill": "arithmetic", "difficulty": 0, "count": True}]}, "count as an integer"),
    ("open_ended", {"plan": [{"description": "x", "count": 1}] * 13}, "at most 12"),
    ("skill_list", {"allocation": [{"skill": "fractions", "difficulty": 0, "count": 0}]}, "expected 1 to 12"),
    ("skill_list", {"allocation": {"fractions": 3}}, "non-empty list"),
    ("skill_tree", {"actions": {"fractions": {"action_type": "exploit", "data_allocation_delta": {"multiply": 1}}}}, "subskill of fractions"),
    ("skill_tree", {"actions": {"fractions": {"action_type": "grow"}}}, "action_type"),
    ("skill_tree", {"actions": {"fractions": {"action_type": "explore", "num_new_skills": 0, "data_allocation_for_new_skills": 1}}}, "num_new_skills 0"),
])
def test_plans_are_checked_strictly_with_errors_the_model_can_act_on(level, plan, error):
    env = _env(level)
    env.reset(seed=0)
    tree = {s: {env.subskill_names[i][0]: 2} for i, s in enumerate(env.skill_names)}
    parse = {"open_ended": lambda o: parse_open_ended(o, env), "skill_list": lambda o: parse_skill_list(o, env),
             "skill_tree": lambda o: parse_skill_tree(o, env, tree)}[level]
    with pytest.raises((ValueError, TypeError), match=error):
        parse(plan)


def test_an_oversized_plan_is_refused_before_parsing_and_counted(servers):
    big = json.dumps({"plan": [{"description": "x" * 400, "count": 1}] * 12})
    server = servers([("content", big)] * 3)
    env = _env("open_ended")
    policy = LLMPolicy(env, base_url=server.url, model="m", timeout_s=5, max_plan_chars=2_000)
    obs, info = env.reset(seed=0)
    policy.act(obs, info)
    assert policy.last["fallback"] and policy.stats["malformed_answers"] == 3 and "at most 2000 characters" in policy.last["errors"][0]


def test_usage_is_summed_per_call_and_hostile_usage_is_counted_not_added(servers):
    plan = json.dumps(PLANS["skill_list"])
    server = servers([("usage", ("nope", {"prompt_tokens": 900, "completion_tokens": 3, "cost": 0.25})),
                      ("usage", (plan, {"prompt_tokens": 1000, "completion_tokens": 40, "cost": "NaN"})),
                      ("usage", (plan, {"prompt_tokens": -1, "completion_tokens": 10**12}))])
    env = _env("skill_list")
    policy = LLMPolicy(env, base_url=server.url, model="m", timeout_s=5)
    obs, info = env.reset(seed=0)
    policy.act(obs, info)
    s = policy.stats
    assert (s["prompt_tokens"], s["completion_tokens"], s["cost"], s["malformed_usage"]) == (1900, 43, 0.25, 1)
    calls = policy.client.transcript.drain()
    assert [c["usage"]["prompt_tokens"] for c in calls] == [900, 1000] and calls[0]["content"] == "nope"
    policy.act(obs, info)
    assert policy.stats["malformed_usage"] == 2 and policy.stats["prompt_tokens"] == 1900


def test_recorded_replies_replay_without_a_server_and_a_strict_replay_refuses_other_requests(servers, tmp_path):
    plans = [json.dumps({"allocation": [{"skill": s, "difficulty": 0, "count": 3}]}) for s in ("fractions", "percentages", "arithmetic")]
    server = servers([("content", p) for p in plans])
    env = _env("skill_list", iterations=3)
    policy = LLMPolicy(env, base_url=server.url, model="m", timeout_s=5)
    live = run_episode(env, policy, seed=1)
    policy.client.transcript.save(tmp_path / "calls.jsonl")
    entries = Transcript.load(tmp_path / "calls.jsonl")
    assert [e["content"] for e in entries] == plans and all(e["format"] == "teachgym-chat/1" for e in entries)

    env2 = _env("skill_list", iterations=3)
    offline = LLMPolicy(env2, base_url="http://127.0.0.1:9/v1", model="m", timeout_s=0.2, retries=0)
    offline.client.transcript.replay(entries)
    replayed = run_episode(env2, offline, seed=1)
    assert [i["test_mean_accuracy"] for i in replayed] == [i["test_mean_accuracy"] for i in live]
    assert offline.stats["replayed_calls"] == 3 and offline.stats["requests"] == 0 and offline.stats["replay_mismatches"] == 0

    strict = LLMPolicy(_env("skill_list"), base_url="http://127.0.0.1:9/v1", model="m")
    strict.client.transcript = Transcript("policy", strict=True)
    strict.client.transcript.replay(entries[1:])  # answered the second iteration's prompt, not the first
    obs, info = strict.env.reset(seed=1)
    with pytest.raises(ValueError, match="answered another request"):
        strict.act(obs, info)
    (tmp_path / "bad.jsonl").write_text('{"format": "teachgym-chat/1", "content": 3}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        Transcript.load(tmp_path / "bad.jsonl")


def test_prompts_come_from_editable_files_and_unknown_placeholders_are_refused(servers, tmp_path):
    server = servers([("content", json.dumps(PLANS["skill_list"]))])
    (tmp_path / "skill_list.txt").write_text("Budget $budget for $skills.\n$accuracy\nCosts $$5.")
    env = _env("skill_list")
    policy = LLMPolicy(env, base_url=server.url, model="m", prompt_dir=tmp_path, timeout_s=5)
    obs, info = env.reset(seed=0)
    policy.act(obs, info)
    assert server.prompts()[0].startswith("Budget 12 for arithmetic, fractions,") and server.prompts()[0].endswith("Costs $5.")
    (tmp_path / "skill_list.txt").write_text("Hello $student_name")
    with pytest.raises(ValueError, match="unknown placeholders \\['student_name'\\]"):
        LLMPolicy(env, base_url=server.url, model="m", prompt_dir=tmp_path)
    with pytest.raises(ValueError, match="base_url and model"):
        LLMPolicy(env)


# ---------------------------------------------------------------------------------- provenance and resume
class _Stop(Exception):
    pass


def test_an_interrupted_episode_resumes_from_its_jsonl_without_asking_the_model_again(servers, tmp_path):
    plans = [("usage", (json.dumps({"allocation": [{"skill": s, "difficulty": 1, "count": 4}]}), {"prompt_tokens": 50, "completion_tokens": 9}))
             for s in ("fractions", "percentages", "arithmetic")]
    full = run_recorded_episode(_env("skill_list", iterations=3), LLMPolicy(_env("skill_list"), base_url=servers(plans).url, model="m"),
                                None, seed=4)
    # The same episode, killed after two iterations, then a half-written line as a crash leaves it.
    path = tmp_path / "episode.jsonl"
    env = _env("skill_list", iterations=3)
    first = servers(plans[:2])

    def stop_after_two(info, seconds):
        if info["iteration"] == 2:
            raise _Stop

    with pytest.raises(_Stop):
        run_recorded_episode(env, LLMPolicy(env, base_url=first.url, model="m"), path, seed=4, run={"x": 1}, on_step=stop_after_two)
    with open(path, "a") as fh:
        fh.write('{"kind": "iteration", "iteration": 3, "act')
    records = read_records(path)
    assert [r["kind"] for r in records] == ["header", "iteration", "iteration"]
    rec = records[1]
    assert rec["plan"]["plan"][1] == [0, 4, 0] and not rec["plan"]["fallback"] and rec["kept"] == 12
    assert rec["calls"][0]["who"] == "policy" and rec["calls"][0]["usage"]["prompt_tokens"] == 50 and "fractions" in rec["calls"][0]["content"]
    assert len(rec["items"]) == 12 and all(i["kept"] for i in rec["items"]) and {(i["skill"], i["level"]) for i in rec["items"]} == {(1, 1)}
    assert set(rec["accuracy"]) >= {"accuracy_by_level", "test_mean_accuracy"} and np.shape(rec["cells"]) == (6, 3, 3)

    second = servers(plans[2:])
    env = _env("skill_list", iterations=3)
    resumed = run_recorded_episode(env, LLMPolicy(env, base_url=second.url, model="m"), path, seed=4, run={"x": 1})
    assert len(second.requests) == 1 and resumed["restored"] == 2 and resumed["replayed"] == 0 and resumed["resume_mismatches"] == 0
    assert resumed["calls"] == 1 and resumed["prompt_tokens"] == 50
    assert [i["test_mean_accuracy"] for i in resumed["infos"]] == [i["test_mean_accuracy"] for i in full["infos"]]
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["kind"] for line in lines)  # the torn line was cut off
    with pytest.raises(ValueError, match="records another run"):
        run_recorded_episode(_env("skill_list", iterations=3), LLMPolicy(env, base_url=second.url, model="m"), path, seed=5, run={"x": 1})


def test_a_corrupt_record_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "e.jsonl"
    append_record(path, {"kind": "header", "format": "teachgym-episode/1"})
    with open(path, "a") as fh:
        fh.write("garbage\n")
    append_record(path, {"kind": "iteration", "value": np.float32(1.5)})
    with pytest.raises(ValueError, match="record 2 is malformed"):
        read_records(path)


def test_an_exploit_is_applied_as_deltas_of_the_tree_cut_at_zero():
    from teachgym.envs.datagen.llm_policy import skill_tree_action

    env = _env("skill_tree")
    env.reset(seed=0)
    tree = {s: {} for s in env.skill_names} | {"arithmetic": {"add": 3, "sub (difficulty 1)": 2}}
    plan = {"arithmetic": {"action_type": "exploit", "data_allocation_delta": {"add": -5, "sub (difficulty 1)": 4}}}
    action = skill_tree_action(plan, env, tree)
    assert action[env.skill_names.index("arithmetic")] == {"explore": 0, "delta": [-3, 4]}


class _TwoSkills:
    """Half the budget on skill 0, half on skill 2, level 0 (the env asks the engine once per skill)."""

    def act(self, obs, info):
        weights = np.zeros((6, 3))
        weights[0, 0] = weights[2, 0] = 1.0
        return weights

    def observe(self, obs, reward, info):
        pass


def test_an_iteration_record_holds_the_items_of_every_specification_of_its_plan(tmp_path):
    path = tmp_path / "episode.jsonl"
    run_recorded_episode(_env("skill_list", iterations=1), _TwoSkills(), path, seed=0)
    (rec,) = [r for r in read_records(path) if r["kind"] == "iteration"]
    assert {i["skill"] for i in rec["items"]} == {0, 2}
    assert sum(i["kept"] for i in rec["items"]) == rec["kept"] == len(rec["items"])
