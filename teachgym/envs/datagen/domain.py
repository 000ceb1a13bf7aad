"""Domains of the data-generation envs: skills, subskills and difficulty levels as data.

A :class:`Domain` is a table of :class:`Skill` s, each with the same number of
:class:`Subskill` templates; a subskill draws its parameters for a difficulty level, renders the
question and computes the answer. :meth:`Domain.verify` is the quality check: it re-derives the
answer from the question alone (math: the numbers parsed back out of the template; code: the
program run in a sandbox) and keeps an example only when its answer matches, so examples from
an LLM engine are checked exactly like the template engine's.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import reprlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Params = dict[str, Any]

_INT_TEXT = re.compile(r"\s*[+-]?[0-9]{1,9}\s*")


def read_int(value: Any, what: str) -> int:
    """An integer written by a model: an int, a whole finite float or a short string of digits.

    Raises ``ValueError`` naming ``what`` otherwise (``True``, ``2.5``, ``1e999`` as ``inf``,
    ``NaN``, ``"3 apples"``), where ``int()`` would round, overflow or accept a bool.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    raise ValueError(f"expected {what} as an integer, got {reprlib.repr(value)}")


@dataclass(frozen=True)
class Example:
    """One training or evaluation example.

    ``skill`` / ``level`` index the domain's skills and difficulty levels; ``subskill`` indexes
    the skill's subskills (-1 when unknown, e.g. an LLM example); ``image`` and ``meta`` (the
    scene and question parameters as JSON, what the quality check re-derives) are for VQA only.
    """

    skill: int
    level: int
    subskill: int
    prompt: str
    answer: str
    image: np.ndarray | None = field(default=None, compare=False, repr=False)
    meta: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Subskill:
    """A question template: ``sample(rng, level) -> params``, ``render(params)``, ``solve(params)``."""

    name: str
    template: str
    sample: Callable[[np.random.Generator, int], Params]
    solve: Callable[[Params], str]

    def render(self, params: Params) -> str:
        return self.template.format(**params)

    def pattern(self) -> re.Pattern:
        """Regex reading the integer fields of :attr:`template` back out of a question.

        A field used twice must hold the same number twice (a back-reference); ``re`` caches
        the compiled pattern.
        """
        parts = re.split(r"\{(\w+)\}", self.template)
        seen: set[str] = set()
        regex = []
        for i, part in enumerate(parts):
            if i % 2 == 0:
                regex.append(re.escape(part))
            else:
                regex.append(f"(?P={part})" if part in seen else f"(?P<{part}>-?\\d+)")
                seen.add(part)
        return re.compile("".join(regex) + r"\Z")


@dataclass(frozen=True)
class Skill:
    """A named skill and its subskills (a skill-tree's children)."""

    name: str
    subskills: tuple[Subskill, ...]


class Domain:
    """Skills x subskills x difficulty levels, the generator of examples and their quality check.

    Parameters
    ----------
    name
        ``"math"``, ``"code"``, ``"vqa"``.
    skills
        The skills; each has ``n_subskills`` subskills.
    n_levels
        Difficulty levels 0..n_levels-1 (every subskill samples each).
    defaults
        Env settings this domain runs best with (budget, evaluation size, student, steps).
    """

    #: Longest question and answer read from an LLM's item (the templates' are far shorter): a
    #: bound on what the quality check parses and computes (a 5,000-digit number is refused here).
    max_question_chars = 1000
    max_answer_chars = 100
    #: The check from below (:func:`~teachgym.envs.datagen.verifiers.level_floor`): a level's floor
    #: may drop at most this share of the level's own template questions, counted in this many.
    floor_alpha = 1e-3
    floor_samples = 10_000

    def __init__(self, name: str, skills: Sequence[Skill], n_levels: int, defaults: dict[str, Any]) -> None:
        counts = {len(s.subskills) for s in skills}
        if len(counts) != 1 or not skills:
            raise ValueError(f"every skill of a domain needs the same number of subskills, got {counts}")
        self.name, self.skills, self.n_levels = name, tuple(skills), int(n_levels)
        self.n_subskills = counts.pop()
        self.defaults = dict(defaults)
        self.skill_names = tuple(s.name for s in self.skills)
        self._floors: dict[tuple[int, int], int] = {}  # (skill, level) -> floor, each computed on first need

    @property
    def n_skills(self) -> int:
        return len(self.skills)

    def skill_index(self, name: str | int) -> int:
        """Index of a skill given by name or index; ``ValueError`` listing the names otherwise."""
        if isinstance(name, (int, np.integer)) and not isinstance(name, bool) and 0 <= int(name) < self.n_skills:
            return int(name)
        if isinstance(name, str) and name in self.skill_names:
            return self.skill_names.index(name)
        raise ValueError(f"unknown {self.name} skill {reprlib.repr(name)}; expected one of {self.skill_names}")

    def generate(self, skill: int, subskill: int, level: int, rng: np.random.Generator) -> Example:
        """One example of (skill, subskill, level) from the templates."""
        sub = self.skills[skill].subskills[subskill]
        params = sub.sample(rng, level)
        return Example(skill, level, subskill, sub.render(params), sub.solve(params))

    def make_image(self, example: Example) -> Example:
        """Hook for domains whose examples carry an image (VQA); identity here."""
        return example

    def verify(self, examples: Sequence[Example], levels: bool = True) -> list[bool]:
        """The quality check: does each example's answer follow from its question (and is its level plausible)?"""
        return [ok for ok, _ in self.verify_tiers(examples, levels=levels)]

    def verify_tiers(self, examples: Sequence[Example], judge: Any = None, levels: bool = True) -> list[tuple[bool, str]]:
        """``(kept, tier that decided)`` per example (:mod:`teachgym.envs.datagen.verifiers`).

        Format and level checks (from above, ``"level"``; from below, ``"level_floor"``) first,
        then :meth:`tiers` in order, then ``judge`` (an object
        with ``judge(examples) -> list[bool | None]``, e.g. a
        :class:`~teachgym.envs.datagen.verifiers.ChatJudge`) if given; the first tier that
        answers True or False decides; ``(False, "none")`` when none does. ``levels=False`` skips
        the level checks, for examples whose level is not a claim: the templates' own, drawn at
        that level (the env's validation and test sets; a level-2 product in 1,000 is "2*6=").
        """
        out: list[tuple[bool, str] | None] = [None] * len(examples)
        for i, e in enumerate(examples):
            if not (0 <= e.skill < self.n_skills and 0 <= e.level < self.n_levels) or len(e.prompt) > self.max_question_chars:
                out[i] = (False, "format")
            elif levels and not self.level_ok(e):
                out[i] = (False, "level")
            elif levels and not self.floor_ok(e):
                out[i] = (False, "level_floor")
        tiers = list(self.tiers())
        if judge is not None:
            tiers.append(("judge", judge.judge))
        for name, check in tiers:
            pending = [i for i, v in enumerate(out) if v is None]
            if not pending:
                break
            for i, verdict in zip(pending, check([examples[i] for i in pending])):
                if verdict is not None:
                    out[i] = (bool(verdict), name)
        return [v if v is not None else (False, "none") for v in out]

    def tiers(self) -> list[tuple[str, Callable[[Sequence[Example]], list[bool | None]]]]:
        """This domain's checks in order: ``(name, check)``; a check answers True, False or None (undecided)."""
        return [("template", self._template_check), ("math", self._math_check)]

    @functools.cached_property
    def _level_bounds(self) -> np.ndarray:
        from teachgym.envs.datagen.verifiers import level_bounds

        return level_bounds(self)

    def content_level(self, e: Example) -> int:
        """The easiest level whose templates of ``e``'s skill write numbers as large as ``e``'s largest
        (:func:`~teachgym.envs.datagen.verifiers.content_level`; ``n_levels`` when none does)."""
        from teachgym.envs.datagen.verifiers import content_level, numbers_in

        return content_level(max(numbers_in(e.prompt), default=0), self._level_bounds[e.skill].tolist())

    def level_ok(self, e: Example) -> bool:
        """Is the claimed level possible? No number in the question beyond what the skill's templates use at that level."""
        return self.content_level(e) <= e.level

    def floor_ok(self, e: Example) -> bool:
        """Is the content not clearly below the claimed level? Its content level must reach the
        level's floor (:func:`~teachgym.envs.datagen.verifiers.level_floor`, computed once per
        (skill, level), and only for a question whose content is under its claimed level)."""
        from teachgym.envs.datagen.verifiers import level_floor

        content = self.content_level(e)
        if content >= e.level:  # a floor never exceeds its level
            return True
        key = (e.skill, e.level)
        if key not in self._floors:
            self._floors[key] = level_floor(self, self._level_bounds, e.skill, e.level, self.floor_alpha, self.floor_samples)
        return content >= self._floors[key]

    def _template_check(self, examples: Sequence[Example]) -> list[bool | None]:
        """True: a template's text with the exact answer; None: not a template's text, or another answer string."""
        return [True if self._template_ok(e) else None for e in examples]

    def _template_ok(self, e: Example) -> bool:
        subs = range(self.n_subskills) if e.subskill < 0 else [e.subskill]
        for s in subs:
            if not 0 <= s < self.n_subskills:
                return False
            match = self.skills[e.skill].subskills[s].pattern().match(e.prompt.strip())
            if match:
                try:  # int() and str() refuse numbers past Python's digit limit (ValueError)
                    params = {k: int(v) for k, v in match.groupdict().items()}
                    return self.skills[e.skill].subskills[s].solve(params) == e.answer.strip()
                except (ArithmeticError, ValueError):
                    return False
        return False

    def canonical(self, e: Example) -> Example:
        """``e`` with its answer in the templates' form (``"10/12"``, ``"0.75"``, ``"x = 4"`` become
        ``"5/6"``, ``"3/4"``, ``"4"``), so that data accepted by value trains the exact strings the
        student is evaluated on; unchanged when the answer is not a number."""
        from teachgym.envs.datagen.mathparse import answer_value

        value = answer_value(e.answer)
        if value is None:
            return e
        text = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
        return e if text == e.answer else dataclasses.replace(e, answer=text)

    @staticmethod
    def _math_check(examples: Sequence[Example]) -> list[bool | None]:
        """Exact values of question and answer compared (:mod:`~teachgym.envs.datagen.mathparse`); None if either is unreadable."""
        from teachgym.envs.datagen.mathparse import answer_value, question_value

        out: list[bool | None] = []
        for e in examples:
            q, a = question_value(e.prompt), answer_value(e.answer)
            out.append(None if q is None or a is None else q == a)
        return out

    def chat_format(self) -> str:
        """The JSON object an LLM engine must write for one example."""
        return '{"skill": ..., "subskill": ..., "difficulty": ..., "question": ..., "answer": ...}'

    def from_item(self, item: Any) -> Example:
        """An example from one JSON item of an LLM's reply (:meth:`chat_format`).

        Raises ``ValueError``, ``KeyError``, ``TypeError`` or ``AttributeError`` on a malformed
        item (the engine counts and skips it), e.g. a difficulty that is not a whole number in
        range or a question longer than :attr:`max_question_chars`; whether the answer is right
        is left to :meth:`verify`.
        """
        if not isinstance(item, dict):
            raise TypeError(f"an example is a JSON object, got {type(item).__name__}")
        skill = self.skill_index(item["skill"])
        names = [s.name for s in self.skills[skill].subskills]
        sub = item.get("subskill")
        sub = names.index(sub) if isinstance(sub, str) and sub in names else -1
        level = read_int(item.get("difficulty", 0), "difficulty")
        if not 0 <= level < self.n_levels:
            raise ValueError(f"difficulty {level} outside 0..{self.n_levels - 1}")
        question, answer = self.item_text(item, "question", self.max_question_chars), self.item_text(item, "answer", self.max_answer_chars)
        return self.make_image(Example(skill, level, sub, question, answer))

    @staticmethod
    def item_text(item: dict, key: str, max_chars: int) -> str:
        """``item[key]`` as text (a string or a number), at most ``max_chars`` long; ``ValueError`` otherwise."""
        value = item[key]
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise TypeError(f"expected {key} as a string, got {type(value).__name__}")
        text = str(value)
        if len(text) > max_chars:
            raise ValueError(f"expected a {key} of at most {max_chars} characters, got {len(text)}")
        return text

    def make_student(self, seed: int | None, device: str = "auto", **kwargs: Any) -> Any:
        """The default student of text domains: a small transformer trained from scratch."""
        from teachgym.students.lm import TransformerStudent  # torch is imported only when needed

        return TransformerStudent(**{**self.defaults.get("student", {}), **kwargs}, device=device, seed=seed)

    def describe(self) -> str:
        """Skills, subskills and one example question each: the format an LLM engine must follow."""
        rng = np.random.default_rng(0)
        lines = []
        for i, skill in enumerate(self.skills):
            for j, sub in enumerate(skill.subskills):
                e = self.generate(i, j, 0, rng)
                lines.append(f"- skill {skill.name!r}, subskill {sub.name!r}: question {e.prompt!r} -> answer {e.answer!r}")
        return "\n".join(lines) + "\nHigher difficulty levels use bigger numbers (longer strings and lists)."
