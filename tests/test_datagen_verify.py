"""The quality check in tiers: template, math equivalence (a safe parser), code in the sandbox, the claimed level
(from above and from below)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import numpy as np
import pytest

from teachgym.envs.datagen.code_skills import CODE
from teachgym.envs.datagen.domain import Domain, Example, Skill, Subskill
from teachgym.envs.datagen.env import DataGenEnv
from teachgym.envs.datagen.math_skills import MATH
from teachgym.envs.datagen.mathparse import answer_value, question_value
from teachgym.envs.datagen.verifiers import level_floor, summarise
from teachgym.envs.datagen.vqa_skills import VQA


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


def test_off_plan_and_below_level_items_are_dropped_and_counted_and_per_tier_rates_reach_info():
    class Stray:  # answers every request with one item of the request and one of another skill; a level-2 request
        def generate(self, specs, rng):  # also with a level-0 question claimed at level 2
            out = []
            for spec in specs:
                out.append(MATH.generate(spec.skill, 0, spec.level, rng))
                out.append(MATH.generate((spec.skill + 1) % 6, 0, spec.level, rng))
                if spec.level == 2:
                    out.append(dataclasses.replace(MATH.generate(spec.skill, 0, 0, rng), level=2))
            return out, {}

    weights = np.zeros((6, 3))
    weights[0, 2] = weights[3, 1] = 1
    env = DataGenEnv("math", "skill_list", engine=Stray(), iterations=1, budget=8, n_eval=1, train_steps=1,
                     student_kwargs={"d_model": 16, "n_heads": 2})
    env.reset(seed=0)
    _, _, _, _, info = env.step(weights)
    assert info["generated"] == 5 and info["off_plan"] == 2 and info["kept"] == 2
    assert {(e.skill, e.level) for e in env.train_data} == {(0, 2), (3, 1)}
    assert info["verify"]["off_plan"]["rejected"] == 2 and info["verify"]["template"]["pass_rate"] == 1.0
    assert info["verify"]["level_floor"] == {"passed": 0, "rejected": 1, "pass_rate": 0.0}


def test_an_item_claiming_a_higher_level_than_its_content_is_dropped_and_counted():
    rng = np.random.default_rng(0)
    level0 = [MATH.generate(0, j, 0, rng) for j in range(3) for _ in range(5)]  # one-digit sums, differences, products
    claimed = [dataclasses.replace(e, level=2) for e in level0] + [Example(0, 2, -1, "2 + 3 =", "5"), Example(0, 2, -1, "What is 2 plus 3?", "5")]
    verdicts = MATH.verify_tiers(claimed)
    assert verdicts == [(False, "level_floor")] * 17
    assert summarise(verdicts) == {"level_floor": {"passed": 0, "rejected": 17, "pass_rate": 0.0}}
    # two-digit content at level 2 is what 1 level-2 question in 25 holds, one-digit content at level 1 1 in 25: kept
    assert MATH.verify_tiers([Example(0, 2, -1, "12 + 3 =", "15"), Example(0, 1, -1, "2 + 3 =", "5")]) == [(True, "math")] * 2
    # a level that is no claim (the templates' own validation and test sets) is not checked
    assert MATH.verify(claimed[:2], levels=False) == [True, True]


def test_template_items_of_every_level_pass_the_level_checks_over_many_seeds():
    dropped, total = Counter(), Counter()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        for s in range(MATH.n_skills):
            for j in range(MATH.n_subskills):
                for lvl in range(MATH.n_levels):
                    for _ in range(3):
                        e = MATH.generate(s, j, lvl, rng)
                        assert MATH.level_ok(e), e
                        total[s, lvl] += 1
                        dropped[s, lvl] += not MATH.floor_ok(e)
    # only level-2 arithmetic is told apart from level 0: the other skills' level-2 templates write level-0 numbers
    # too often (modular 0.4%, linear 3%, word problems 25%+; fractions and percentages share their digit counts)
    assert {cell for cell, floor in MATH._floors.items() if floor} == {(0, 2)}
    assert set(dropped.elements()) <= {(0, 2)}
    # a level-2 product is one digit by one digit one time in 1,000 (4 in 10,000 of all level-2 arithmetic): 360 drawn here
    assert dropped[0, 2] <= 2 and total[0, 2] == 360


def _one_number_domain(overlapping: bool) -> Domain:
    """Questions "a+0=": level L draws a from [0, 10^(L+1)) (levels overlap, as the math templates') or from
    [10^L, 10^(L+1)) (levels apart)."""
    def sample(rng: np.random.Generator, lvl: int) -> dict:
        return {"a": int(rng.integers(0 if overlapping or lvl == 0 else 10**lvl, 10 ** (lvl + 1)))}

    domain = Domain("toy", [Skill("add_zero", (Subskill("a+0", "{a}+0=", sample, lambda p: str(p["a"])),))], n_levels=3, defaults={})
    domain.floor_samples = 2000
    return domain


def test_a_levels_floor_is_a_low_quantile_of_its_templates_content_levels():
    apart, overlapping = _one_number_domain(False), _one_number_domain(True)
    questions = [Example(0, 2, 0, "5+0=", "5"), Example(0, 2, 0, "50+0=", "50"), Example(0, 1, 0, "5+0=", "5"), Example(0, 2, 0, "500+0=", "500")]
    assert apart.verify_tiers(questions) == [(False, "level_floor")] * 3 + [(True, "template")]
    assert apart._floors == {(0, 2): 2, (0, 1): 1}
    # 1 level-2 question in 100 is one digit, 1 level-1 question in 10: no floor, every question passes
    assert overlapping.verify_tiers(questions) == [(True, "template")] * 4
    assert overlapping._floors == {(0, 2): 0, (0, 1): 0}
    assert level_floor(overlapping, overlapping._level_bounds, 0, 2, alpha=0.02, samples=2000) == 1
    with pytest.raises(ValueError, match="alpha"):
        level_floor(apart, apart._level_bounds, 0, 2, alpha=0.0, samples=100)


def test_a_floor_is_computed_once_per_skill_and_level(monkeypatch):
    domain = _one_number_domain(False)
    assert not domain.floor_ok(Example(0, 1, 0, "5+0=", "5"))

    def fail(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr("teachgym.envs.datagen.verifiers.level_floor", fail)
    assert not domain.floor_ok(Example(0, 1, 0, "7+0=", "7")) and domain.floor_ok(Example(0, 1, 0, "70+0=", "70"))


def test_a_vqa_scene_claimed_above_its_number_of_shapes_is_dropped_by_the_scene_tier():
    e = VQA.generate(0, 0, 0, np.random.default_rng(0))  # one or two shapes: level 0
    assert VQA.verify_tiers([e, dataclasses.replace(e, level=2)]) == [(True, "scene"), (False, "scene")]

