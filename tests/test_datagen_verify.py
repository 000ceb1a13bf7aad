"""The quality check in tiers: template, math equivalence (a safe parser), code in the sandbox, the claimed level."""

from __future__ import annotations

import time

import numpy as np
import pytest

from teachgym.envs.datagen.code_skills import CODE
from teachgym.envs.datagen.domain import Example
from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.math_skills import MATH
from teachgym.envs.datagen.mathparse import answer_value, question_value
from teachgym.envs.datagen.verifiers import summarise


@pytest.mark.parametrize("question, answer", [
    ("2 + 3 =", "5"), ("What is 2 plus 3?", "5"), ("Compute 12 times 3.", "36"), ("Solve 3x + 2 = 11 for x.", "x = 3"),
    ("What is 1/2 + 1/4?", "0.75"), ("20% of 50 =", "10"), ("(7 * 8) mod 5 =", "1"), ("What is 7 minus 9?", "-2"),
])
def test_a_correct_paraphrase_passes_the_math_tier_and_a_wrong_one_fails(question, answer):
    level = 1 if max(int(n) for n in __import__("re").findall(r"\d+", question)) > 9 else 0
    skill = 2 if "x" in question else 1 if "/" in question else 4 if "%" in question else 3 if "mod" in question else 0
    good, bad = Example(skill, level, -1, question, answer), Example(skill, level, -1, question, answer + "1")
    assert MATH.verify_tiers([good, bad]) == [(True, "math"), (False, "math")]


def test_hostile_questions_are_refused_quickly_and_never_run(tmp_path):
    flag = tmp_path / "ran"
    hostile = [
        f"__import__('os').system('touch {flag}')", "().__class__.__bases__[0].__subclasses__()", "lambda: 1",
        "9" * 5000 + "+1=", "(" * 5000 + "1" + ")" * 5000, "9*" * 400 + "9=", "2**2**2**2**2**2**2", "1/0=", "x*x=4; x=",
        "1e999+1=", "1" + "*99999999999" * 30 + "=", "99999999999*" * 5 + "1=",
    ]
    start = time.perf_counter()
    for text in hostile:
        assert question_value(text) is None and answer_value(text) is None
    assert time.perf_counter() - start < 1.0 and not flag.exists()
    assert MATH.verify_tiers([Example(0, 2, -1, hostile[0], "0")]) == [(False, "none")]


def test_the_claimed_level_is_checked_and_a_rejection_is_counted_per_tier():
    lie = Example(0, 0, 0, "250+3=", "253")  # three-digit numbers claimed at the one-digit level
    honest = Example(0, 2, 0, "250+3=", "253")
    verdicts = MATH.verify_tiers([lie, honest, Example(0, 0, -1, "What is 2 plus 3?", "6"), Example(9, 0, -1, "1+1=", "2")])
    assert verdicts == [(False, "level"), (True, "template"), (False, "math"), (False, "format")]
    rates = summarise(verdicts)
    assert rates["level"] == {"passed": 0, "rejected": 1, "pass_rate": 0.0} and rates["template"]["pass_rate"] == 1.0


def test_code_is_checked_by_running_it_so_a_rewritten_program_passes():
    rewritten = Example(0, 0, -1, "a = 3\nb = 4\nprint(a * b + 1)", "13")
    wrong = Example(0, 0, -1, "print(sum([1, 2]))", "4")
    assert CODE.verify_tiers([rewritten, wrong]) == [(True, "code"), (False, "code")]


def test_off_plan_items_are_dropped_and_counted_and_per_tier_rates_reach_info():
    class Stray:  # answers every request with one item of the request and one of another skill
        def generate(self, specs, rng):
            out = []
            for spec in specs:
                out.append(MATH.generate(spec.skill, 0, spec.level, rng))
                out.append(MATH.generate((spec.skill + 1) % 6, 0, spec.level, rng))
            return out, {}

    weights = np.zeros((6, 3))
    weights[0, 0] = weights[3, 1] = 1
    env = DataGenEnv("math", "skill_list", engine=Stray(), iterations=1, budget=8, n_eval=1, train_steps=1,
                     student_kwargs={"d_model": 16, "n_heads": 2})
    env.reset(seed=0)
    _, _, _, _, info = env.step(weights)
    assert info["generated"] == 4 and info["off_plan"] == 2 and info["kept"] == 2
    assert {(e.skill, e.level) for e in env.train_data} == {(0, 0), (3, 1)}
    assert info["verify"]["off_plan"]["rejected"] == 2 and info["verify"]["template"]["pass_rate"] == 1.0
