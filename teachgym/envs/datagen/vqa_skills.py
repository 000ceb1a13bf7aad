"""The VQA domain: synthetic scenes of coloured shapes drawn with numpy, questions by type.

A scene is up to six shapes (square, circle, triangle; red, green, blue, yellow) on a 4 x 4 grid
of 8-pixel cells of a 32 x 32 RGB image. Skills are question types — count, colour, position,
comparison — with two subskills each; the level sets the number of shapes (1-2, 3-4, 5-6).
Answers are single words. Every example carries its scene and question parameters (``meta``);
the quality check redraws the image from the scene, re-renders the question and recomputes the
answer, and keeps the example only if all three match.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

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

    def _verify_one(self, e: Example) -> bool:
        try:
            params = json.loads(e.meta)
            sub = self.skills[e.skill].subskills[e.subskill]
            scene = params["scene"]
            cells = {(o["row"], o["col"]) for o in scene}
            return (
                len(cells) == len(scene)
                and e.image is not None and np.array_equal(draw(scene), e.image)
                and sub.template.format(**{k: v for k, v in params.items() if k != "scene"}) == e.prompt
                and sub.solve(params) == e.answer
            )
        except (ValueError, KeyError, TypeError, IndexError, StopIteration, AttributeError):
            return False

    def make_student(self, seed: int | None, device: str = "auto", **kwargs) -> object:
        from teachgym.students.vqa import VQAStudent

        return VQAStudent(answers=self.answers, **kwargs, device=device, seed=seed)

    def describe(self) -> str:
        return super().describe() + "\nEach example also needs 'scene': a list of {shape, colour, row, col} (0-based rows/cols of a 4x4 grid)."


VQA = VQADomain()
