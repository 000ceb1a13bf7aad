"""Problem families of the reasoning envs: procedurally generated, each answer checked exactly.

A :class:`ProblemFamily` is data: a one-letter tag that opens every prompt (one model can learn
all families at once), a generator ``make(rng, level) -> (prompt, reference answer, key)`` and a
checker ``check(key, answer) -> bool``. Level ``k`` is the same kind of problem one step longer
than level ``k - 1``, so what a student learns on a level is most of what the next one needs:

- ``arithmetic``: the sum of two 5-digit numbers (``"A:00384+01251"`` -> ``"1635"``); a column
  carries with probability :data:`CARRY_RATES` ``[k]`` (0.05 at level 0 up to 0.85 at level 5): the
  same format at every level, more carries per level;
- ``countdown``: reach a target with ``k + 2`` digits, each used exactly once (TinyZero's rule),
  and ``+ - *`` (``"C:3,5,2>13"`` -> ``"3*5-2"`` or any other expression worth 13);
- ``sort``: sort 6 digits that are ``k + 1`` random transpositions away from sorted
  (``"S:153389"`` -> ``"133589"``): the same format at every level, more disorder per level.

Countdown has many correct answers; the checker parses and evaluates the answer itself (no
``eval``), so any valid expression scores.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Key = tuple[int, ...]


@dataclass(frozen=True)
class Problem:
    """One problem: its prompt, a reference answer and what the checker needs (``key``)."""

    family: str
    level: int
    prompt: str
    answer: str
    key: Key

    def reward(self, answer: str) -> float:
        """1.0 when ``answer`` solves the problem, else 0.0."""
        return 1.0 if get_family(self.family).check(self.key, answer) else 0.0


@dataclass(frozen=True)
class ProblemFamily:
    """A kind of problem with difficulty levels 0, 1, ... (see the module docstring)."""

    name: str
    tag: str
    description: str
    make: Callable[[np.random.Generator, int], tuple[str, str, Key]]
    check: Callable[[Key, str], bool]

    def generate(self, rng: np.random.Generator, level: int) -> Problem:
        """A fresh problem of ``level`` drawn with ``rng``."""
        if not (isinstance(level, (int, np.integer)) and level >= 0):
            raise ValueError(f"level must be a non-negative integer, got {level!r}")
        prompt, answer, key = self.make(rng, int(level))
        return Problem(self.name, int(level), f"{self.tag}:{prompt}", answer, key)


def _digits(rng: np.random.Generator, n: int, low: int = 0) -> list[int]:
    return [int(d) for d in rng.integers(low, 10, size=n)]


# ----------------------------------------------------------------------------- arithmetic
ADD_WIDTH, SORT_WIDTH = 5, 6


#: Probability that a column of the addition carries, per level: the density of carries grows.
CARRY_RATES = (0.05, 0.15, 0.3, 0.45, 0.65, 0.85, 1.0)


def _make_sum(rng: np.random.Generator, level: int) -> tuple[str, str, Key]:
    """Two ``ADD_WIDTH``-digit numbers; each column carries with the level's probability."""
    if level >= len(CARRY_RATES):
        raise ValueError(f"arithmetic has levels 0..{len(CARRY_RATES) - 1}, got {level}")
    carries = rng.random(ADD_WIDTH) < CARRY_RATES[level]
    a, b, carry = [], [], 0
    for column in range(ADD_WIDTH):  # least significant first
        while True:
            x, y = (int(v) for v in rng.integers(0, 10, size=2))
            if (x + y + carry >= 10) == bool(carries[column]):
                break
        a.append(x)
        b.append(y)
        carry = int(x + y + carry >= 10)
    left, right = int("".join(map(str, a[::-1]))), int("".join(map(str, b[::-1])))
    return f"{left:0{ADD_WIDTH}d}+{right:0{ADD_WIDTH}d}", str(left + right), (left + right,)


def _check_int(key: Key, answer: str) -> bool:
    text = answer.strip()
    return bool(re.fullmatch(r"-?\d{1,6}", text)) and int(text) == key[0]


# ----------------------------------------------------------------------------- countdown
_EXPR = re.compile(r"\d([+\-*]\d)*")


def evaluate(expression: str) -> int:
    """Value of a string of digits joined by ``+ - *`` with the usual precedence."""
    total, sign = 0, 1
    for term in re.split(r"([+-])", expression):
        if term in "+-":
            sign = 1 if term == "+" else -1
            continue
        product = 1
        for factor in term.split("*"):
            product *= int(factor)
        total += sign * product
    return total


def _make_countdown(rng: np.random.Generator, level: int) -> tuple[str, str, Key]:
    while True:  # a target in 0..99 keeps answers and prompts short; almost every draw passes
        numbers = _digits(rng, level + 2, low=1)
        ops = rng.choice(list("+-*"), size=level + 1)
        expression = str(numbers[0]) + "".join(f"{o}{n}" for o, n in zip(ops, numbers[1:]))
        target = evaluate(expression)
        if 0 <= target <= 99:
            return f"{','.join(map(str, numbers))}>{target}", expression, (target, *numbers)


def _check_countdown(key: Key, answer: str) -> bool:
    text = answer.strip()
    if not _EXPR.fullmatch(text):
        return False
    used = sorted(int(c) for c in text if c.isdigit())
    return used == sorted(key[1:]) and evaluate(text) == key[0]


# ----------------------------------------------------------------------------- sort
def _make_sort(rng: np.random.Generator, level: int) -> tuple[str, str, Key]:
    ordered = sorted(_digits(rng, SORT_WIDTH))
    digits = list(ordered)
    for _ in range(level + 1):  # a transposition of two different digits moves the string away
        i, j = rng.choice(SORT_WIDTH, size=2, replace=False)
        digits[i], digits[j] = digits[j], digits[i]
    return "".join(map(str, digits)), "".join(map(str, ordered)), tuple(ordered)


def _check_sort(key: Key, answer: str) -> bool:
    return answer.strip() == "".join(map(str, key))


FAMILIES: dict[str, ProblemFamily] = {
    f.name: f
    for f in (
        ProblemFamily("arithmetic", "A", "two 5-digit numbers added, more carries per level", _make_sum, _check_int),
        ProblemFamily("countdown", "C", "reach the target with level + 2 digits, each once, and + - *", _make_countdown, _check_countdown),
        ProblemFamily("sort", "S", "6 digits level + 1 transpositions from sorted, sorted", _make_sort, _check_sort),
    )
}


def get_family(name: str) -> ProblemFamily:
    """The family called ``name``; ``ValueError`` listing the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown problem family {name!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[name]
