"""A safe reader of arithmetic written by a model: exact values of questions and answers, no ``eval``.

The math verifier (:mod:`teachgym.envs.datagen.verifiers`) must accept a correct paraphrase of a
template question ("2 + 3 =", "What is 2 plus 3?", "Solve 3x + 2 = 11 for x.") and compare
answers by value ("3/4" = "0.75" = "6/8", "x = 4" = "4"). ``sympy.parse_expr`` would do it
with ``eval`` of model text; this module instead reads a small grammar with a recursive-descent
parser over a whitelist of tokens:

* numbers (at most :data:`MAX_DIGITS` digits, decimals allowed), the variable ``x``,
  ``+ - * / ( )``, ``mod``, ``p%`` (``p/100``) and implicit products (``3x``, ``2(x+1)``);
* values are exact: :class:`fractions.Fraction` coefficients of a polynomial in ``x`` of degree
  at most 1 (a linear equation is what the domain asks; ``x*x`` is refused, not guessed);
* at most :data:`MAX_CHARS` characters and :data:`MAX_DEPTH` nested parentheses; no power
  operator, so no value can grow past ``MAX_DIGITS`` digits by more than a few multiplications
  (each product's size is checked).

Anything outside the grammar gives ``None`` ("cannot decide"), never an exception and never code.
"""

from __future__ import annotations

import re
from fractions import Fraction

#: Longest text read (after the words are turned into symbols).
MAX_CHARS = 200
#: Most digits of a number written in the text, and of any value computed from them.
MAX_DIGITS = 12
#: Deepest nesting of parentheses.
MAX_DEPTH = 16

#: A linear polynomial: (coefficient of x, constant).
Linear = tuple[Fraction, Fraction]

_WORDS = (
    (r"\bmultiplied by\b", "*"), (r"\btimes\b", "*"), (r"\bdivided by\b", "/"), (r"\bover\b", "/"),
    (r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\bmodulo\b", " mod "), (r"\bequals\b", "="), (r"\bis equal to\b", "="),
    (r"\bpercent\b", "%"), (r"\bper cent\b", "%"),
)
#: Leading phrases of a question ("What is 2 plus 3?").
_LEAD = re.compile(
    r"^\s*(?:what\s+is|what's|how\s+much\s+is|compute|calculate|evaluate|find|work\s+out|simplify|solve)\b[\s:,]*"
    r"(?:the\s+value\s+of\s+)?", re.I,
)
#: Trailing phrases: "for x", "; x =", "=", "?", ".".
_TAIL = re.compile(r"(?:\s*(?:for\s+x|;\s*x\s*=|,\s*x\s*=|what\s+is\s+x|x\s*=\s*\?|=\s*\?|=|\?|\.|!))+\s*$", re.I)
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|(mod)\b|([x])|([-+*/()%=]))", re.I)


def _words_to_symbols(text: str) -> str:
    t = text.strip().lower()
    for pattern, symbol in _WORDS:
        t = re.sub(pattern, symbol, t)
    t = re.sub(r"%\s*of\b", "% *", t)  # "20% of 50" = 20/100 * 50
    t = re.sub(r"\bincreased by\s+([\d.]+)\s*%", r"* (1 + \1/100)", t)
    t = re.sub(r"\bdecreased by\s+([\d.]+)\s*%", r"* (1 - \1/100)", t)
    t = t.replace("×", "*").replace("÷", "/").replace("−", "-")
    return t


def _tokens(text: str) -> list[tuple[str, str]] | None:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            return None
        num, mod, var, op = m.groups()
        if num is not None:
            if len(num.replace(".", "")) > MAX_DIGITS:
                return None
            out.append(("num", num))
        elif mod:
            out.append(("op", "mod"))
        elif var:
            out.append(("x", "x"))
        else:
            out.append(("op", op))
        pos = m.end()
    return out


def _small(v: Fraction) -> bool:
    return len(str(abs(v.numerator))) <= 2 * MAX_DIGITS and len(str(v.denominator)) <= 2 * MAX_DIGITS


class _Parser:
    """expr := term (('+'|'-') term)*; term := factor (('*'|'/'|'mod') factor | implicit factor)*;
    factor := ('+'|'-') factor | atom '%'?; atom := number | 'x' | '(' expr ')'."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.t, self.i, self.depth = tokens, 0, 0

    def peek(self) -> tuple[str, str] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> tuple[str, str]:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def expr(self) -> Linear:
        a = self.term()
        while (tok := self.peek()) is not None and tok[1] in "+-" and tok[0] == "op":
            self.take()
            b = self.term()
            a = (a[0] + b[0], a[1] + b[1]) if tok[1] == "+" else (a[0] - b[0], a[1] - b[1])
        return a

    def term(self) -> Linear:
        a = self.factor()
        while (tok := self.peek()) is not None:
            if tok[0] == "op" and tok[1] in ("*", "/", "mod"):
                self.take()
                b = self.factor()
                a = _mul(a, b) if tok[1] == "*" else _div(a, b) if tok[1] == "/" else _mod(a, b)
            elif tok[0] in ("num", "x") or tok == ("op", "("):  # implicit product: 3x, 2(x+1)
                a = _mul(a, self.factor())
            else:
                break
            if not (_small(a[0]) and _small(a[1])):
                raise ValueError("value too large")
        return a

    def factor(self) -> Linear:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] in "+-":
            self.take()
            a = self.factor()
            return a if tok[1] == "+" else (-a[0], -a[1])
        a = self.atom()
        if self.peek() == ("op", "%"):
            self.take()
            a = (a[0] / 100, a[1] / 100)
        return a

    def atom(self) -> Linear:
        if self.peek() is None:
            raise ValueError("unexpected end")
        kind, value = self.take()
        if kind == "num":
            return Fraction(0), Fraction(value)
        if kind == "x":
            return Fraction(1), Fraction(0)
        if value == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ValueError("nested too deep")
            a = self.expr()
            if self.peek() != ("op", ")"):
                raise ValueError("expected )")
            self.take()
            self.depth -= 1
            return a
        raise ValueError(f"unexpected {value}")


def _mul(a: Linear, b: Linear) -> Linear:
    if a[0] and b[0]:
        raise ValueError("not linear")
    return a[0] * b[1] + b[0] * a[1], a[1] * b[1]


def _div(a: Linear, b: Linear) -> Linear:
    if b[0] or b[1] == 0:
        raise ValueError("division by x or by zero")
    return a[0] / b[1], a[1] / b[1]


def _mod(a: Linear, b: Linear) -> Linear:
    if a[0] or b[0] or a[1].denominator != 1 or b[1].denominator != 1 or b[1] <= 0:
        raise ValueError("mod of non-integers")
    return Fraction(0), a[1] % b[1]


def _parse(text: str) -> Linear | None:
    tokens = _tokens(text)
    if not tokens:
        return None
    p = _Parser(tokens)
    try:
        value = p.expr()
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    return value if p.i == len(tokens) else None


def normalise(text: str) -> str | None:
    """The question or answer as symbols (words, lead-in and trailing ``=``/``?`` removed); None if too long."""
    if not isinstance(text, str) or len(text) > 4 * MAX_CHARS:
        return None
    t = _TAIL.sub("", _LEAD.sub("", _words_to_symbols(text)))
    return t if len(t) <= MAX_CHARS else None


def question_value(text: str) -> Fraction | None:
    """The exact value a question asks for: an expression's value, or the ``x`` of a linear equation."""
    t = normalise(text)
    if t is None or t.count("=") > 1:
        return None
    if "=" in t:
        left, right = (_parse(side) for side in t.split("="))
        if left is None or right is None:
            return None
        a, b = left[0] - right[0], right[1] - left[1]  # a x = b
        return b / a if a else None
    value = _parse(t)
    return value[1] if value is not None and value[0] == 0 else None


def answer_value(text: str) -> Fraction | None:
    """The exact value of an answer (``"3/4"``, ``"0.75"``, ``"x = 4"``, ``"-2"``); None otherwise."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        return None
    t = re.sub(r"^\s*x\s*=\s*", "", text.strip().lower()).rstrip(". ")
    value = _parse(t)
    return value[1] if value is not None and value[0] == 0 else None
