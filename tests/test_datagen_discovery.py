"""LLM skill discovery against a scripted fake model: strict labels and proposals, scores against the templates'
ground truth, and ``teachgym bench discovery``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fake_chat_server import FakeChatServer

from teachgym.cli import main
from teachgym.envs.datagen.discovery import (
    LLMSkillLabeller,
    LLMSubskillProposer,
    discovery_scores,
    name_matches,
)
from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.llm_policy import LLMPolicy
from teachgym.envs.datagen.math_skills import MATH


def _rule(question: str) -> str:
    """The scripted model's labeller: right for most math templates, wrong for word problems on purpose."""
    if "mod" in question:
        return "modular_arithmetic"
    if "%" in question:
        return "percentages"
    if "x" in question:
        return "linear_equations"
    if "/" in question:
        return "fractions"
    return "arithmetic"


def _scripted_model(body):
    prompt = body["messages"][-1]["content"]
    if "Label every question" in prompt:
        questions = re.findall(r"^\d+\. (.*)$", prompt.split("Questions:")[1], re.M)
        return json.dumps({"labels": [_rule(q) for q in questions]})
    skill = re.search(r'skill of "(\w+)"', prompt).group(1)
    n = int(re.search(r"Propose (\d+) new", prompt).group(1))
    names = {"arithmetic": ["subtraction", "multiplication"], "fractions": ["multiply_fractions", "reduce"]}
    return json.dumps({"subskills": names.get(skill, ["something_else"])[:n]})


@pytest.fixture
def model():
    server = FakeChatServer([("call", _scripted_model)] * 200)
    yield server
    server.close()


def test_labels_must_be_one_known_skill_per_question_and_bad_answers_are_asked_again():
    questions = ["2+3=", "7 mod 3=", "1/2+1/3="]
    server = FakeChatServer([("content", '{"labels": ["arithmetic"]}'),
                             ("content", '{"labels": ["arithmetic", "modular", "fractions"]}'),
                             ("content", '{"labels": ["arithmetic", "modular_arithmetic", "fractions"]}'),
                             ("content", "no idea"), ("content", "no idea"), ("content", "no idea")])
    try:
        labeller = LLMSkillLabeller(MATH, base_url=server.url, model="m", batch_size=3, max_attempts=3, timeout_s=5)
        assert labeller.label(questions) == ["arithmetic", "modular_arithmetic", "fractions"]
        assert labeller.label(questions) == [None, None, None]
        prompts = server.prompts()
    finally:
        server.close()
    assert labeller.stats["malformed_answers"] == 5 and labeller.stats["unanswered"] == 1
    assert "expected 3 labels" in prompts[1] and "are not skills of the list" in prompts[2]
    assert "1. 2+3=\n2. 7 mod 3=" in server.requests[0]["body"]["messages"][0]["content"]


def test_proposals_are_new_well_formed_names_and_an_explore_of_the_llm_policy_carries_them(model):
    bad = FakeChatServer([("content", '{"subskills": ["Fraction Multiplication"]}'), ("content", '{"subskills": ["add"]}'),
                          ("content", '{"subskills": ["a", "b", "c"]}'), ("content", '{"subskills": ["mixed_numbers"]}')])
    try:
        proposer = LLMSubskillProposer(MATH, base_url=bad.url, model="m", max_attempts=4, timeout_s=5)
        assert proposer.propose("fractions", ["add"], 2) == ["mixed_numbers"]
    finally:
        bad.close()
    assert proposer.stats["malformed_answers"] == 3
    with pytest.raises(ValueError, match="unknown math skill"):
        proposer.propose("geometry", [], 1)

    env = DataGenEnv("math", "skill_tree", iterations=1, budget=12, n_eval=1, train_steps=1, student_kwargs={"d_model": 16, "n_heads": 2})
    plan = json.dumps({"actions": {"arithmetic": {"action_type": "explore", "num_new_skills": 1, "data_allocation_for_new_skills": 3}}})
    planner = FakeChatServer([("content", plan)])
    try:
        policy = LLMPolicy(env, base_url=planner.url, model="m", timeout_s=5,
                           proposer=LLMSubskillProposer(MATH, base_url=model.url, model="m", timeout_s=5))
        obs, info = env.reset(seed=0)
        action = policy.act(obs, info)
    finally:
        planner.close()
    a = action[env.skill_names.index("arithmetic")]
    assert a["explore"] == 1 and a["names"] == ["subtraction"]


def test_discovery_is_scored_against_the_templates_ground_truth(model):
    labeller = LLMSkillLabeller(MATH, base_url=model.url, model="m", batch_size=25, timeout_s=5)
    proposer = LLMSubskillProposer(MATH, base_url=model.url, model="m", timeout_s=5)
    rows = {r["skill"]: r for r in discovery_scores(MATH, labeller, proposer, per_subskill=2, seed=3)}
    rng = np.random.default_rng(3)
    examples = [MATH.generate(s, j, lvl, rng) for s in range(6) for j in range(3) for lvl in range(3) for _ in range(2)]
    for s, skill in enumerate(MATH.skill_names):
        expected = np.mean([_rule(e.prompt) == skill for e in examples if e.skill == s])
        assert rows[skill]["accuracy"] == pytest.approx(expected) and rows[skill]["questions"] == 18
    assert rows["arithmetic"]["accuracy"] == 1.0 and rows["word_problems"]["accuracy"] == 0.0
    assert rows["arithmetic"]["proposal_recall"] == 1.0 and rows["fractions"]["proposal_recall"] == 0.5
    assert rows["percentages"]["proposal_recall"] == 0.0
    assert name_matches("fraction_multiplication", "multiply") is False and name_matches("Sum-Mod", "sum_mod")


def test_bench_discovery_prints_accuracy_and_writes_the_calls(model, tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["bench", "discovery", "--base-url", model.url, "--model", "m", "--domains", "math", "--per-subskill", "1",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "word_problems" in text and "mean over skills" in text
    table = (out / "discovery.csv").read_text().splitlines()
    assert table[0].startswith("domain,skill,questions,accuracy") and len(table) == 7
    calls = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    assert {c["who"] for c in calls} == {"labeller", "proposer"} and all(c["content"] for c in calls)
