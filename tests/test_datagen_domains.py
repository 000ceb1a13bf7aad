"""Math and code domains: templates, the quality check, the sandbox."""

from __future__ import annotations

import numpy as np

from teachgym.envs.datagen.code_skills import CODE
from teachgym.envs.datagen.domain import Example
from teachgym.envs.datagen.math_skills import MATH
from teachgym.envs.datagen.sandbox import run_programs


def _all(domain, per_cell=3, seed=0):
    rng = np.random.default_rng(seed)
    return [
        domain.generate(s, j, lvl, rng)
        for s in range(domain.n_skills) for j in range(domain.n_subskills) for lvl in range(domain.n_levels) for _ in range(per_cell)
    ]


def test_math_has_six_skills_three_levels_and_every_template_example_passes_the_check():
    assert MATH.n_skills >= 6 and MATH.n_levels == 3
    examples = _all(MATH, per_cell=10)
    assert all(MATH.verify(examples))


def test_math_check_rejects_a_wrong_answer_and_an_unparseable_question():
    examples = _all(MATH, per_cell=1, seed=1)
    wrong = [Example(e.skill, e.level, e.subskill, e.prompt, e.answer + "1") for e in examples]
    assert not any(MATH.verify(wrong))
    assert MATH.verify([Example(0, 1, -1, "12+30=", "42"), Example(0, 1, -1, "twelve plus 30", "42")]) == [True, False]


def test_math_answers_are_checked_by_value_and_kept_as_exact_reduced_fractions():
    e = Example(1, 0, 0, "1/2+1/3=", "5/6")
    same = Example(1, 0, 0, "1/2+1/3=", "10/12")
    assert MATH.verify_tiers([e, same, Example(1, 0, 0, "1/2+1/3=", "4/6")]) == [(True, "template"), (True, "math"), (False, "math")]
    assert MATH.canonical(same).answer == "5/6" and MATH.canonical(e) is e


def test_math_levels_make_bigger_numbers():
    rng = np.random.default_rng(0)
    size = [np.mean([len(MATH.generate(0, 0, lvl, rng).prompt) for _ in range(200)]) for lvl in range(3)]
    assert size[0] < size[1] < size[2]


def test_code_template_programs_print_their_answers_in_the_sandbox_and_wrong_answers_fail():
    examples = _all(CODE, per_cell=2)
    assert all(CODE.verify(examples))
    wrong = [Example(e.skill, e.level, e.subskill, e.prompt, e.answer + "x") for e in examples[:10]]
    assert not any(CODE.verify(wrong))


def test_sandbox_enforces_time_memory_and_network_limits_without_losing_the_rest_of_the_batch():
    programs = [
        "print(6 * 7)",
        "while True:\n    pass",
        "import socket\nsocket.create_connection(('127.0.0.1', 9))\nprint('reached')",
        "x = bytearray(2 * 1024 ** 3)\nprint(len(x))",
        "raise ValueError('boom')",
        "import os\nos._exit(3)",
        "print('after')",
    ]
    out = run_programs(programs, timeout_s=0.5, memory_mb=512)
    assert out == ["42\n", None, None, None, None, None, "after\n"]


def test_vqa_examples_pass_the_check_and_fail_it_when_image_question_or_answer_is_tampered():
    from teachgym.envs.datagen.vqa_skills import VQA

    examples = _all(VQA, per_cell=3)
    assert VQA.n_skills == 4 and all(VQA.verify(examples))
    e = examples[0]
    blank = Example(e.skill, e.level, e.subskill, e.prompt, e.answer, np.zeros_like(e.image), e.meta)
    other_q = Example(e.skill, e.level, e.subskill, e.prompt + " really", e.answer, e.image, e.meta)
    wrong = Example(e.skill, e.level, e.subskill, e.prompt, "purple", e.image, e.meta)
    assert VQA.verify([blank, other_q, wrong]) == [False, False, False]


def test_vqa_levels_put_more_shapes_in_the_scene():
    import json

    from teachgym.envs.datagen.vqa_skills import VQA

    rng = np.random.default_rng(0)
    n = [np.mean([len(json.loads(VQA.generate(0, 0, lvl, rng).meta)["scene"]) for _ in range(50)]) for lvl in range(3)]
    assert n[0] < n[1] < n[2]


def test_vqa_template_examples_survive_the_llm_item_format_and_an_item_gets_the_level_of_its_shape_count():
    import json

    from teachgym.envs.datagen.vqa_skills import VQA

    examples = _all(VQA, per_cell=5, seed=2)
    items = [
        {"skill": VQA.skill_names[e.skill], "scene": json.loads(e.meta)["scene"], "question": e.prompt.upper(), "answer": e.answer}
        for e in examples
    ]
    back = [VQA.from_item(item) for item in items]
    assert [(b.skill, b.subskill, b.level, b.prompt, b.answer) for b in back] == [(e.skill, e.subskill, e.level, e.prompt, e.answer) for e in examples]
    assert all(np.array_equal(b.image, e.image) for b, e in zip(back, examples)) and all(VQA.verify(back))
    shapes = [{"shape": "square", "colour": "red", "row": r, "col": 3} for r in range(4)] + [{"shape": "circle", "colour": "blue", "row": 0, "col": 0}]
    levels = [VQA.from_item({"skill": "count", "scene": shapes[:n], "question": "How many shapes?", "answer": str(n)}).level for n in (1, 3, 5)]
    assert levels == [0, 1, 2]
