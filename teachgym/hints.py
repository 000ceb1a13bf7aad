"""Values from users checked against type hints: teacher hyper-parameters and suite settings.

Teacher specs (``"tscl-online:lr=0.1"``) and config files (TOML, JSON) hand over values whose
types nobody has checked; a constructor that compares ``"abc" < 1`` raises ``TypeError`` and a
``bool("x")`` is silently true. :func:`matches_hint` checks a value against the annotation of the
parameter it is meant for, in the forms JSON and TOML produce (a list where a tuple is annotated,
an int where a float is), and :func:`describe_hint` says in words what was expected.
"""

from __future__ import annotations

import collections.abc
import math
import types
import typing
from typing import Any

import numpy as np

#: Marker of a parameter whose type cannot be read (no annotation, no typed default).
UNCHECKED: Any = object()

_SEQUENCES = (tuple, list, collections.abc.Sequence)
_WORDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", dict: "a table (dict)"}
_PLURALS = {"an integer": "integers", "a finite number": "finite numbers", "a string": "strings",
            "true or false": "true/false values"}


def type_hints(obj: Any) -> dict[str, Any]:
    """The evaluated annotations of a function or class; ``{}`` where they cannot be evaluated."""
    try:
        return typing.get_type_hints(obj)
    except Exception:  # a foreign class's annotation naming what its module lacks: unchecked
        return {}


def matches_hint(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type.

    ``bool`` is no ``int`` and no ``float``; a ``float`` must be finite; a list, a tuple or a
    1-D array stands for any sequence annotation; hints this does not know (``Callable``,
    classes of other libraries' protocols) accept anything.
    """
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches_hint(value, a) for a in args)
    if origin is typing.Literal:  # the same type too: True is no 1, 1.0 no 1
        return any(type(value) is type(a) and value == a for a in args)
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
            return False
        try:
            return math.isfinite(value)
        except OverflowError:  # an int past float64's range, e.g. 10**400
            return False
    if hint is str:
        return isinstance(value, str)
    if origin in _SEQUENCES or hint in _SEQUENCES:
        if isinstance(value, np.ndarray):
            value = list(value) if value.ndim == 1 else None
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches_hint(v, a) for v, a in zip(value, args))
        return not args or all(matches_hint(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            return False
        return not args or all(matches_hint(k, args[0]) and matches_hint(v, args[1]) for k, v in value.items())
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def describe_hint(hint: Any) -> str:
    """The expected type in words, e.g. ``"an integer"``, ``"a list of finite numbers or null"``."""
    if hint is Any:
        return "anything"
    if hint is None or hint is type(None):
        return "null (None)"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_hint(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if hint in _WORDS:
        return _WORDS[hint]
    if origin in _SEQUENCES or hint in _SEQUENCES:
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)}: " + ", ".join(describe_hint(a) for a in args)
        return "a list" + (f" of {_plural(describe_hint(args[0]))}" if args else "")
    if origin is dict:
        return f"a table of {_plural(describe_hint(args[0]))} to {_plural(describe_hint(args[1]))}" if args else "a table"
    return getattr(hint, "__name__", str(hint))


def _plural(words: str) -> str:
    return _PLURALS.get(words, words)
