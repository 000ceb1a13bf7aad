"""The VQA domain: synthetic scenes of coloured shapes drawn with numpy, questions by type.

A scene is up to six shapes (square, circle, triangle; red, green, blue, yellow) on a 4 x 4 grid
of 8-pixel cells of a 32 x 32 RGB image. Skills are question types — count, colour, position,
comparison — with two subskills each; the level sets the number of shapes (1-2, 3-4, 5-6).
Answers are single words. Every example carries its scene and question parameters (``meta``);
the quality check redraws the image from the scene, re-renders the question and recomputes the
answer, and keeps the example only if all three match and the question names exactly the shapes
it refers to. An LLM cannot return an image, so the chat engine asks it for a scene
specification (shapes with colour and grid cell) plus question and answer;
:meth:`VQADomain.from_item` validates the scene, reads the question's fields back out of its
template and renders the image with numpy, and the same quality check recomputes the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from teachgym.envs.datagen.domain import Domain, Example, Skill, Subskill

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (230, 210, 40)}
SHAPES = ("square", "circle", "triangle")
GRID, CELL = 4, 8
SIZE = GRID * CELL
_COUNTS = ((1, 2), (3, 4), (5, 6))


def draw(scene: Sequence[dict]) -> np.ndarray:
    """The 32 x 32 x 3 uint8 image of a scene (objects: shape, colour, row, col)."""
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    yy, xx = np.mgrid[0:CELL, 0:CELL] - (CELL - 1) / 2
    masks = {
        "square": (np.abs(yy) <= 2.6) & (np.abs(xx) <= 2.6),
        "circle": yy**2 + xx**2 <= 3.2**2,
        "triangle": (yy <= 3) & (yy >= -3) & (np.abs(xx) <= (yy + 3) / 2 + 0.3),
    }
    for o in scene:
        r, c = o["row"] * CELL, o["col"] * CELL
        img[r : r + CELL, c : c + CELL][masks[o["shape"]]] = COLOURS[o["colour"]]
    return img


def _scene(rng: np.random.Generator, level: int, fixed: Sequence[dict] = ()) -> list[dict]:
    """Random objects in distinct cells; ``fixed`` objects (shape/colour given) come first."""
    n = int(rng.integers(_COUNTS[level][0], _COUNTS[level][1] + 1))
    n = max(n, len(fixed))
    cells = rng.choice(GRID * GRID, n, replace=False)
    objs = []
    for i, cell in enumerate(cells):
        base = dict(fixed[i]) if i < len(fixed) else {"shape": str(rng.choice(SHAPES)), "colour": str(rng.choice(list(COLOURS)))}
        objs.append({**base, "row": int(cell // GRID), "col": int(cell % GRID)})
    return objs


def _unique(rng: np.random.Generator, level: int, key: tuple[str, ...]) -> tuple[list[dict], dict]:
    """A scene where the first object is the only one with its values of ``key``."""
    while True:
        scene = _scene(rng, level)
        target = scene[int(rng.integers(len(scene)))]
        if sum(all(o[k] == target[k] for k in key) for o in scene) == 1:
            return scene, target


def _count_all(rng, lvl):
    return {"scene": _scene(rng, lvl)}


def _count_colour(rng, lvl):
    return {"scene": _scene(rng, lvl), "colour": str(rng.choice(list(COLOURS)))}


def _colour_of_shape(rng, lvl):
    scene, t = _unique(rng, lvl, ("shape",))
    return {"scene": scene, "shape": t["shape"]}


def _colour_at(rng, lvl):
    scene = _scene(rng, lvl)
    t = scene[int(rng.integers(len(scene)))]
    return {"scene": scene, "row": t["row"] + 1, "col": t["col"] + 1}


def _where(rng, lvl):
    scene, t = _unique(rng, lvl, ("shape", "colour"))
    return {"scene": scene, "shape": t["shape"], "colour": t["colour"]}


def _more(rng, lvl):
    a, b = rng.choice(list(COLOURS), 2, replace=False)
    return {"scene": _scene(rng, lvl), "c1": str(a), "c2": str(b)}


def _left_of(rng, lvl):
    while True:
        scene = _scene(rng, lvl)
        if len(scene) < 2:  # level 0 may draw a single shape: add a second one
            scene += [o for o in _scene(rng, 1) if (o["row"], o["col"]) not in {(s["row"], s["col"]) for s in scene}][:1]
        a, b = scene[0], scene[1]
        key = lambda o: (o["shape"], o["colour"])  # noqa: E731
        if [key(o) for o in scene].count(key(a)) == 1 and [key(o) for o in scene].count(key(b)) == 1 and key(a) != key(b):
            return {"scene": scene, "s1": a["shape"], "c1": a["colour"], "s2": b["shape"], "c2": b["colour"]}


def level_of(n_shapes: int) -> int:
    """The difficulty level of a scene of ``n_shapes`` shapes; ``ValueError`` outside 1..6."""
    for level, (lo, hi) in enumerate(_COUNTS):
        if lo <= n_shapes <= hi:
            return level
    raise ValueError(f"a scene holds {_COUNTS[0][0]}..{_COUNTS[-1][1]} shapes, got {n_shapes}")


def check_scene(scene: Any) -> list[dict]:
    """The scene's objects as ``{shape, colour, row, col}``; ``ValueError`` unless a template could draw it.

    ``color`` is read as ``colour``; rows and columns are 0-based ints of the 4 x 4 grid, at most
    one shape per cell (so every position question has one answer).
    """
    if not isinstance(scene, list):
        raise TypeError(f"a scene is a list of shapes, got {type(scene).__name__}")
    level_of(len(scene))
    objs = []
    for o in scene:
        obj = {"shape": o["shape"], "colour": o["colour"] if "colour" in o else o["color"], "row": o["row"], "col": o["col"]}
        if obj["shape"] not in SHAPES or obj["colour"] not in COLOURS:
            raise ValueError(f"unknown shape or colour in {o!r}")
        if not all(type(obj[k]) is int and 0 <= obj[k] < GRID for k in ("row", "col")):  # bool is no cell
            raise ValueError(f"row and col are ints in 0..{GRID - 1}, got {o!r}")
        objs.append(obj)
    if len({(o["row"], o["col"]) for o in objs}) != len(objs):
        raise ValueError("two shapes share a cell")
    return objs


def _find(scene, **kw):
    return next(o for o in scene if all(o[k] == v for k, v in kw.items()))


VQA_SKILLS: tuple[Skill, ...] = (
    Skill("count", (
        Subskill("count_all", "How many shapes?", _count_all, lambda p: str(len(p["scene"]))),
        Subskill("count_colour", "How many {colour} shapes?", _count_colour, lambda p: str(sum(o["colour"] == p["colour"] for o in p["scene"]))),
    )),
    Skill("colour", (
        Subskill("colour_of_shape", "What colour is the {shape}?", _colour_of_shape, lambda p: _find(p["scene"], shape=p["shape"])["colour"]),
        Subskill("colour_at", "What colour is the shape in row {row} column {col}?", _colour_at, lambda p: _find(p["scene"], row=p["row"] - 1, col=p["col"] - 1)["colour"]),
    )),
    Skill("position", (
        Subskill("left_right", "Is the {colour} {shape} on the left or the right?", _where, lambda p: "left" if _find(p["scene"], shape=p["shape"], colour=p["colour"])["col"] < GRID // 2 else "right"),
        Subskill("top_bottom", "Is the {colour} {shape} at the top or the bottom?", _where, lambda p: "top" if _find(p["scene"], shape=p["shape"], colour=p["colour"])["row"] < GRID // 2 else "bottom"),
    )),
    Skill("comparison", (
        Subskill("more_colour", "Are there more {c1} shapes than {c2} shapes?", _more, lambda p: "yes" if sum(o["colour"] == p["c1"] for o in p["scene"]) > sum(o["colour"] == p["c2"] for o in p["scene"]) else "no"),
        Subskill("left_of", "Is the {c1} {s1} left of the {c2} {s2}?", _left_of, lambda p: "yes" if _find(p["scene"], shape=p["s1"], colour=p["c1"])["col"] < _find(p["scene"], shape=p["s2"], colour=p["c2"])["col"] else "no"),
    )),
)

ANSWERS = tuple(str(i) for i in range(7)) + tuple(COLOURS) + ("left", "right", "top", "bottom", "yes", "no")

#: The shapes a question refers to, per subskill: each must match exactly one object of the scene.
_REFERENTS = {
    "colour_of_shape": lambda p: [{"shape": p["shape"]}],
    "colour_at": lambda p: [{"row": p["row"] - 1, "col": p["col"] - 1}],
    "left_right": lambda p: [{"shape": p["shape"], "colour": p["colour"]}],
    "top_bottom": lambda p: [{"shape": p["shape"], "colour": p["colour"]}],
    "left_of": lambda p: [{"shape": p["s1"], "colour": p["c1"]}, {"shape": p["s2"], "colour": p["c2"]}],
}
_FIELDS = {"colour": COLOURS, "c1": COLOURS, "c2": COLOURS, "shape": SHAPES, "s1": SHAPES, "s2": SHAPES}


def well_posed(subskill: str, params: dict) -> bool:
    """Does every shape the question refers to exist exactly once (and are two referents distinct)?"""
    refs = _REFERENTS.get(subskill, lambda p: [])(params)
    if len(refs) == 2 and refs[0] == refs[1]:
        return False
    return all(sum(all(o[k] == v for k, v in ref.items()) for o in params["scene"]) == 1 for ref in refs)


def _question_pattern(template: str) -> re.Pattern:
    """Regex reading a template's fields (colour / shape words, 1-based row and column) back out."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = [
        re.escape(part) if i % 2 == 0
        else f"(?P<{part}>{'|'.join(_FIELDS[part])})" if part in _FIELDS else f"(?P<{part}>[1-{GRID}])"
        for i, part in enumerate(parts)
    ]
    return re.compile("".join(regex) + r"\Z", re.IGNORECASE)


_PATTERNS = tuple(tuple(_question_pattern(sub.template) for sub in skill.subskills) for skill in VQA_SKILLS)


class VQADomain(Domain):
    """Scenes as examples; the quality check redraws them and recomputes answers."""

    def __init__(self) -> None:
        super().__init__("vqa", VQA_SKILLS, n_levels=3, defaults={"budget": 200, "n_eval": 8, "train_steps": 150, "max_errors": 16})
        self.answers = ANSWERS

    def generate(self, skill: int, subskill: int, level: int, rng: np.random.Generator) -> Example:
        sub = self.skills[skill].subskills[subskill]
        params = sub.sample(rng, level)
        question = sub.template.format(**{k: v for k, v in params.items() if k != "scene"})
        return Example(skill, level, subskill, question, sub.solve(params), image=draw(params["scene"]), meta=json.dumps(params))

    def make_image(self, example: Example) -> Example:
        """Draw the image of an example that has a scene but no image (e.g. from an LLM)."""
        if example.image is not None or example.meta is None:
            return example
        try:
            scene = json.loads(example.meta)["scene"]
            image = draw(scene)
        except (ValueError, KeyError, TypeError):
            return example
        return Example(example.skill, example.level, example.subskill, example.prompt, example.answer, image, example.meta)

    def canonical(self, e: Example) -> Example:
        """Answers are compared as written: unchanged."""
        return e

    def tiers(self) -> list:
        """One tier, ``scene``: the scene is redrawn and the answer recomputed from it."""
        return [("scene", lambda examples: [self._scene_ok(e) for e in examples])]

    def level_ok(self, e: Example) -> bool:
        """The level of a VQA example is its scene's number of shapes, exactly: checked both ways by the
        ``scene`` tier (and :meth:`from_item` sets it from the scene), so no bound from the numbers."""
        return True

    def floor_ok(self, e: Example) -> bool:
        """No floor either: the ``scene`` tier checks the level from below too (see :meth:`level_ok`)."""
        return True

    def _scene_ok(self, e: Example) -> bool:
        try:
            if not (0 <= e.skill < self.n_skills and 0 <= e.subskill < self.n_subskills):
                return False
            params = json.loads(e.meta)
            sub = self.skills[e.skill].subskills[e.subskill]
            scene = params["scene"]
            return (
                check_scene(scene) == scene and e.level == level_of(len(scene))
                and e.image is not None and np.array_equal(draw(scene), e.image)
                and sub.template.format(**{k: v for k, v in params.items() if k != "scene"}) == e.prompt
                and well_posed(sub.name, params) and sub.solve(params) == e.answer
            )
        except (ValueError, KeyError, TypeError, IndexError, StopIteration, AttributeError):
            return False

    def chat_format(self) -> str:
        return '{"skill": ..., "subskill": ..., "scene": [{"shape": ..., "colour": ..., "row": ..., "col": ...}, ...], "question": ..., "answer": ...}'

    def from_item(self, item: Any) -> Example:
        """An example from an LLM's scene specification, question and answer (not yet verified).

        The scene must pass :func:`check_scene` and the question must fit one of the skill's
        templates (case and spacing aside); the example gets the canonical question, the
        difficulty of its number of shapes and the image drawn from the scene. The model's
        answer is kept as written (lower-cased): :meth:`verify` recomputes it from the scene.
        """
        if not isinstance(item, dict):
            raise TypeError(f"an example is a JSON object, got {item!r}")
        skill = self.skill_index(item["skill"])
        scene = check_scene(item["scene"])
        names = [s.name for s in self.skills[skill].subskills]
        question = " ".join(self.item_text(item, "question", self.max_question_chars).split())
        candidates = [names.index(item["subskill"])] if item.get("subskill") in names else range(self.n_subskills)
        for j in candidates:
            match = _PATTERNS[skill][j].match(question)
            if match:
                break
        else:
            raise ValueError(f"{question!r} fits no question template of skill {self.skill_names[skill]!r}")
        fields = {k: int(v) if k in ("row", "col") else v.lower() for k, v in match.groupdict().items()}
        params = {"scene": scene, **fields}
        prompt = self.skills[skill].subskills[j].template.format(**fields)
        answer = self.item_text(item, "answer", self.max_answer_chars).strip().lower()
        return Example(skill, level_of(len(scene)), j, prompt, answer, image=draw(scene), meta=json.dumps(params))

    def make_student(self, seed: int | None, device: str = "auto", **kwargs) -> object:
        from teachgym.students.vqa import VQAStudent

        return VQAStudent(answers=self.answers, **kwargs, device=device, seed=seed)

    def describe(self) -> str:
        """The scene rules and one complete example item per subskill."""
        rng = np.random.default_rng(0)
        lines = [
            f"A scene is a JSON list of {_COUNTS[0][0]} to {_COUNTS[-1][1]} shapes on a {GRID}x{GRID} grid, at most one "
            f"per cell, each {{\"shape\": one of {list(SHAPES)}, \"colour\": one of {list(COLOURS)}, \"row\": 0-{GRID - 1} "
            f"(0 = top), \"col\": 0-{GRID - 1} (0 = left)}}. Difficulty = number of shapes: "
            + ", ".join(f"{lvl}: {lo}-{hi}" for lvl, (lo, hi) in enumerate(_COUNTS))
            + ". Rows and columns in questions count from 1. A shape a question names must be the only one of its"
            f" kind in the scene. Answers are one of {list(self.answers)}. Examples:",
        ]
        for i, skill in enumerate(self.skills):
            for j, sub in enumerate(skill.subskills):
                e = self.generate(i, j, 0, rng)
                item = {"skill": skill.name, "subskill": sub.name, "scene": json.loads(e.meta)["scene"], "question": e.prompt, "answer": e.answer}
                lines.append("- " + json.dumps(item))
        return "\n".join(lines)


VQA = VQADomain()
