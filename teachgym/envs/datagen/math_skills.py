"""The math domain: six skills of three subskills each, three difficulty levels, exact answers.

Skills: multi-digit arithmetic, fractions, linear equations, modular arithmetic, percentages and
word problems. A level sets the size of the numbers (level 0: one digit, level 2: up to three).
Answers are integers or reduced fractions ``p/q``, compared as exact strings.

A level's ranges contain the lower levels' ("up to three digits"), so the claimed level is told
apart from below (:func:`~teachgym.envs.datagen.verifiers.level_floor`) only where a level's
templates almost never write a lower level's numbers: level-2 arithmetic, whose questions are
one-digit in 4 of 10,000 (a product one digit by one digit in 1 of 1,000), gets floor 1. Not the
others: level-2 questions of modular arithmetic hold only level-0 numbers 0.4% of the time
(``a mod m`` with ``a < 100``: 1%), of linear equations 3%, of word problems 56%; fractions
(denominators up to 5, 9 or 15) and percentages (``n`` a multiple of 100 at every level) have
the same digit counts at every level (98% and 100% of level-2 questions within level 0's bound);
and one level apart, the lower level's numbers are common (4% of level-1 arithmetic is
one-digit: 1% of its sums, 10% of its products).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from teachgym.envs.datagen.domain import Domain, Params, Skill, Subskill


def _digits(rng: np.random.Generator, level: int, lo: int = 0) -> int:
    """A number with up to ``level + 1`` digits, at least ``lo``."""
    return int(rng.integers(lo, 10 ** (level + 1)))


def _frac(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


_DENOM = (5, 9, 15)  # largest denominator per level
_MOD = (5, 10, 30)  # largest modulus per level
_WORD = (10, 50, 200)  # largest quantity per level


def _pair(rng: np.random.Generator, lvl: int) -> Params:
    return {"a": _digits(rng, lvl), "b": _digits(rng, lvl)}


def _fractions(rng: np.random.Generator, lvl: int) -> Params:
    d = _DENOM[lvl]
    return {"a": int(rng.integers(1, d)), "b": int(rng.integers(2, d + 1)), "c": int(rng.integers(1, d)), "d": int(rng.integers(2, d + 1))}


def _linear_1(rng: np.random.Generator, lvl: int) -> Params:
    a, x = int(rng.integers(1, 4 + 3 * lvl)), int(rng.integers(0, 10 ** (lvl + 1)))
    return {"a": a, "b": a * x}


def _linear_2(rng: np.random.Generator, lvl: int) -> Params:
    a, x, b = int(rng.integers(1, 4 + 3 * lvl)), int(rng.integers(0, 5 * (lvl + 1) ** 2)), _digits(rng, lvl)
    return {"a": a, "b": b, "c": a * x + b}


def _linear_3(rng: np.random.Generator, lvl: int) -> Params:
    c, diff, x = int(rng.integers(1, 5 + lvl)), int(rng.integers(1, 3 + 2 * lvl)), int(rng.integers(0, 5 * (lvl + 1) ** 2))
    b = _digits(rng, lvl)
    return {"a": c + diff, "b": b, "c": c, "d": diff * x + b}


def _mod(rng: np.random.Generator, lvl: int) -> Params:
    return {"a": _digits(rng, lvl + 1), "b": _digits(rng, lvl), "m": int(rng.integers(2, _MOD[lvl] + 1))}


def _percent_of(rng: np.random.Generator, lvl: int) -> Params:
    step = (10, 5, 1)[lvl]
    p = int(rng.choice(np.arange(step, 101, step)))
    n = 100 * int(rng.integers(1, 2 + 4 * lvl))  # a multiple of 100 keeps the answer whole
    return {"p": p, "n": n}


def _what_percent(rng: np.random.Generator, lvl: int) -> Params:
    b = int(rng.choice((10, 20, 25, 50, 100) if lvl < 2 else (20, 25, 50, 100, 200, 400)))
    unit = 100 // np.gcd(100, b) if b <= 100 else 1
    k = int(rng.integers(0, max(1, (b * (1 + lvl)) // max(unit, 1) // 2) + 1))
    return {"a": min(k * unit, b * (1 + lvl)), "b": b}


def _increase(rng: np.random.Generator, lvl: int) -> Params:
    return {"n": 100 * int(rng.integers(1, 2 + 3 * lvl)), "p": int(rng.choice(np.arange((10, 5, 1)[lvl], 101, (10, 5, 1)[lvl])))}


def _word(keys: str, lo: int = 0):
    def sample(rng: np.random.Generator, lvl: int) -> Params:
        return {k: int(rng.integers(lo, _WORD[lvl] + 1)) for k in keys}

    return sample


def _share(rng: np.random.Generator, lvl: int) -> Params:
    kids, each = int(rng.integers(2, 4 + 3 * lvl)), int(rng.integers(0, _WORD[lvl] // 4 + 2))
    return {"a": kids * each, "b": kids}


def _multi(rng: np.random.Generator, lvl: int) -> Params:
    return {"a": int(rng.integers(1, 4 + 3 * lvl)), "b": int(rng.integers(1, 4 + 4 * lvl))}


MATH_SKILLS: tuple[Skill, ...] = (
    Skill("arithmetic", (
        Subskill("addition", "{a}+{b}=", _pair, lambda p: str(p["a"] + p["b"])),
        Subskill("subtraction", "{a}-{b}=", _pair, lambda p: str(p["a"] - p["b"])),
        Subskill("multiplication", "{a}*{b}=", lambda rng, lvl: {"a": _digits(rng, lvl), "b": _digits(rng, max(0, lvl - 1))}, lambda p: str(p["a"] * p["b"])),
    )),
    Skill("fractions", (
        Subskill("add", "{a}/{b}+{c}/{d}=", _fractions, lambda p: _frac(Fraction(p["a"], p["b"]) + Fraction(p["c"], p["d"]))),
        Subskill("multiply", "{a}/{b}*{c}/{d}=", _fractions, lambda p: _frac(Fraction(p["a"], p["b"]) * Fraction(p["c"], p["d"]))),
        Subskill("simplify", "simplify {a}/{b}=", lambda rng, lvl: {"a": int(rng.integers(1, _DENOM[lvl])) * (k := int(rng.integers(1, 3 + 3 * lvl))), "b": int(rng.integers(2, _DENOM[lvl] + 1)) * k}, lambda p: _frac(Fraction(p["a"], p["b"]))),
    )),
    Skill("linear_equations", (
        Subskill("ax=b", "{a}x={b}; x=", _linear_1, lambda p: _frac(Fraction(p["b"], p["a"]))),
        Subskill("ax+b=c", "{a}x+{b}={c}; x=", _linear_2, lambda p: _frac(Fraction(p["c"] - p["b"], p["a"]))),
        Subskill("ax+b=cx+d", "{a}x+{b}={c}x+{d}; x=", _linear_3, lambda p: _frac(Fraction(p["d"] - p["b"], p["a"] - p["c"]))),
    )),
    Skill("modular_arithmetic", (
        Subskill("mod", "{a} mod {m}=", _mod, lambda p: str(p["a"] % p["m"])),
        Subskill("sum_mod", "({a}+{b}) mod {m}=", _mod, lambda p: str((p["a"] + p["b"]) % p["m"])),
        Subskill("product_mod", "({a}*{b}) mod {m}=", _mod, lambda p: str((p["a"] * p["b"]) % p["m"])),
    )),
    Skill("percentages", (
        Subskill("percent_of", "{p}% of {n}=", _percent_of, lambda p: _frac(Fraction(p["p"] * p["n"], 100))),
        Subskill("what_percent", "{a} is what % of {b}?", _what_percent, lambda p: _frac(Fraction(100 * p["a"], p["b"]))),
        Subskill("increase", "{n} increased by {p}%=", _increase, lambda p: _frac(Fraction(p["n"] * (100 + p["p"]), 100))),
    )),
    Skill("word_problems", (
        Subskill("buy_more", "Ann has {a} apples, buys {b} more. Apples?", _word("ab"), lambda p: str(p["a"] + p["b"])),
        Subskill("share", "{a} sweets shared by {b} kids. Each?", _share, lambda p: _frac(Fraction(p["a"], p["b"]))),
        Subskill("boxes", "Tom buys {a} boxes of {b} pens. Pens?", _multi, lambda p: str(p["a"] * p["b"])),
    )),
)

MATH = Domain(
    "math",
    MATH_SKILLS,
    n_levels=3,
    defaults={"budget": 200, "n_eval": 6, "train_steps": 200, "max_errors": 16},
)
