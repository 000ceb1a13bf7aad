"""The code domain: short Python programs whose printed output the student predicts.

Six skills (arithmetic, conditionals, loops, strings, lists, functions) of two subskills each,
three difficulty levels (bigger numbers, longer strings and lists). The quality check runs every
program in the sandbox (:mod:`teachgym.envs.datagen.sandbox`: one process per program in Linux
namespaces, no network, a read-only view of the system, resource limits) and keeps an example only when its stated answer is what the program prints.

The claimed level cannot be told apart from below here: the check from below
(:func:`~teachgym.envs.datagen.verifiers.level_floor`) derives floor 0 at every level. Numbers
under 30 (level 1) and under 100 (level 2) have the same digits, and level-2 programs hold only
level-0 numbers too often (lists 0.2%, arithmetic and functions 0.5%, conditionals 0.8%, loops
55%: a ``range_sum`` program's ``a < 100`` always fits level 0's bound, 99, which the squares of
``halvings`` set); string programs hold no number, and their lengths overlap
(3 of 7 level-2 words are no longer than level 0's longest), as do list lengths (1 level-2 list
in 3 is as short as level 0's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from teachgym.envs.datagen.domain import Domain, Example, Params, Skill, Subskill
from teachgym.envs.datagen.sandbox import Sandbox

_LETTERS = np.array(list("abcdefghij"))


def _n(rng: np.random.Generator, lvl: int, lo: int = 0) -> int:
    return int(rng.integers(lo, (10, 30, 100)[lvl]))


def _word(rng: np.random.Generator, lvl: int) -> str:
    return "".join(rng.choice(_LETTERS, int(rng.integers(2, (4, 6, 8)[lvl] + 1))))


def _items(rng: np.random.Generator, lvl: int) -> str:
    return ", ".join(str(_n(rng, lvl)) for _ in range(int(rng.integers(2, (3, 5, 7)[lvl] + 1))))


def _nums(p: Params) -> list[int]:
    return [int(v) for v in p["l"].split(", ")]


def _abc(rng: np.random.Generator, lvl: int) -> Params:
    return {"a": _n(rng, lvl), "b": _n(rng, lvl, 1), "c": _n(rng, lvl)}


CODE_SKILLS: tuple[Skill, ...] = (
    Skill("arithmetic", (
        Subskill("expression", "x = {a}\ny = {b}\nprint(x * y + {c})", _abc, lambda p: str(p["a"] * p["b"] + p["c"])),
        Subskill("divmod", "print({a} // {b}, {a} % {b})", _abc, lambda p: f"{p['a'] // p['b']} {p['a'] % p['b']}"),
    )),
    Skill("conditionals", (
        Subskill("abs_diff", "x = {a}\nif x > {b}:\n    print(x - {b})\nelse:\n    print({b} - x)", _abc, lambda p: str(abs(p["a"] - p["b"]))),
        Subskill("divisible", "print('yes' if {a} % {b} == 0 else 'no')", _abc, lambda p: "yes" if p["a"] % p["b"] == 0 else "no"),
    )),
    Skill("loops", (
        Subskill("range_sum", "s = 0\nfor i in range({a}):\n    s += i\nprint(s)", lambda rng, lvl: {"a": _n(rng, lvl)}, lambda p: str(p["a"] * (p["a"] - 1) // 2)),
        Subskill("halvings", "n = {a}\nc = 0\nwhile n > 0:\n    n //= 2\n    c += 1\nprint(c)", lambda rng, lvl: {"a": _n(rng, lvl) ** 2}, lambda p: str(int(p["a"]).bit_length())),
    )),
    Skill("strings", (
        Subskill("reverse", "s = '{w}'\nprint(s[::-1])", lambda rng, lvl: {"w": _word(rng, lvl)}, lambda p: p["w"][::-1]),
        Subskill("count", "print('{w}'.count('{c}'))", lambda rng, lvl: {"w": _word(rng, lvl), "c": str(rng.choice(_LETTERS[:4]))}, lambda p: str(p["w"].count(p["c"]))),
    )),
    Skill("lists", (
        Subskill("sum", "a = [{l}]\nprint(sum(a))", lambda rng, lvl: {"l": _items(rng, lvl)}, lambda p: str(sum(_nums(p)))),
        Subskill("max", "a = [{l}]\nprint(max(a))", lambda rng, lvl: {"l": _items(rng, lvl)}, lambda p: str(max(_nums(p)))),
    )),
    Skill("functions", (
        Subskill("affine", "def f(x):\n    return x * {a} + {b}\nprint(f({c}))", _abc, lambda p: str(p["c"] * p["a"] + p["b"])),
        Subskill("bigger", "def g(x, y):\n    return x if x > y else y\nprint(g({a}, {c}))", _abc, lambda p: str(max(p["a"], p["c"]))),
    )),
)


class CodeDomain(Domain):
    """Programs as examples; the quality check executes them in the sandbox.

    ``isolation="none"`` runs them with resource limits only, for machines without user
    namespaces and code you trust (the template engine's); see
    :class:`~teachgym.envs.datagen.sandbox.Sandbox`.
    """

    def __init__(self, timeout_s: float = 1.0, memory_mb: int = 512, isolation: str = "namespaces") -> None:
        super().__init__("code", CODE_SKILLS, n_levels=3, defaults={"budget": 150, "n_eval": 6, "train_steps": 200, "max_errors": 16})
        self.sandbox = Sandbox(timeout_s=timeout_s, memory_mb=memory_mb, isolation=isolation)

    def canonical(self, e: Example) -> Example:
        """Answers are compared as written: unchanged."""
        return e

    def tiers(self) -> list:
        """One tier, ``code``: each program runs in the sandbox; its output must be the answer."""
        return [("code", self._run_check)]

    def _run_check(self, examples: Sequence[Example]) -> list[bool | None]:
        outputs = self.sandbox.run([e.prompt for e in examples])
        return [o is not None and o.strip() == e.answer.strip() for o, e in zip(outputs, examples)]


CODE = CodeDomain()
