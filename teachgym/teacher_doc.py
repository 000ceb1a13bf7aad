"""One teacher described for people: its paper and idea, hyper-parameters, spaces and presets.

``teachgym teachers NAME`` prints :func:`describe_teacher`; everything comes from the teacher's
own module docstring, class docstring (numpy style), constructor signature, ``supported_spaces``
and ``PRESETS``, so the description cannot drift from the code.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import textwrap
import typing
from typing import Any

from gymnasium import spaces

from teachgym.teacher import Teacher, teacher_class

_ALL_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)


def parameter_docs(doc: str | None) -> dict[str, str]:
    """The ``Parameters`` section of a numpy-style docstring as ``{name: description}``.

    A heading ``a, b, c`` documents each of its names with the same text.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, line in enumerate(lines[:-1])
                     if line.strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}) + 2
    except StopIteration:
        return out
    names: list[str] = []
    text: list[str] = []
    for i, line in enumerate(lines[start:], start):
        if line and not line[0].isspace():
            if i + 1 < len(lines) and lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}:
                break  # the next section
            out.update({n: " ".join(text) for n in names})
            names, text = [n.strip() for n in line.split(":")[0].split(",")], []
        elif line.strip():
            text.append(line.strip())
    out.update({n: " ".join(text) for n in names})
    return out


def hyper_parameters(cls: type[Teacher]) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, description)`` of each constructor hyper-parameter."""
    signature = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that does not evaluate here: fall back to its text
        hints = {}
    docs = parameter_docs(cls.__doc__)
    rows = []
    for name, default in cls.default_hparams().items():
        hint = hints.get(name, signature.parameters[name].annotation)
        kind = "" if hint is inspect.Parameter.empty else _type_name(hint)
        rows.append((name, kind, default, docs.get(name, "")))
    return rows


def _type_name(hint: Any) -> str:
    if isinstance(hint, str):
        return hint
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return re.sub(r"\btyping\.", "", str(hint))


def describe_teacher(name: str) -> str:
    """A teacher's card: title, paper and idea, task spaces, hyper-parameters (type, default,
    meaning), presets with their values, and how to name them on the command line.

    Raises
    ------
    ValueError
        For an unknown name (listing the known ones).
    """
    cls = teacher_class(name)
    module_doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
    paragraphs = [p.strip() for p in module_doc.split("\n\n") if p.strip()]
    title = paragraphs[0].splitlines()[0] if paragraphs else cls.__name__
    lines = [f"{name}: {title}", ""]
    if len(paragraphs) > 1:
        lines += textwrap.wrap(" ".join(paragraphs[1].split()), 100) + [""]
    own = ", ".join(t.__name__ for t in cls.supported_spaces)
    others = [t.__name__ for t in _ALL_SPACES if not issubclass(t, cls.supported_spaces)]
    lines.append(f"Task spaces: {own}" + (f"; {', '.join(others)} through an adapter (make_teacher(..., adapt=True), "
                                          "as teachgym train does)" if others else ""))
    lines += ["", "Hyper-parameters (name: type = default):"]
    rows = hyper_parameters(cls)
    for hp, kind, default, doc in rows:
        head = f"  {hp}" + (f": {kind}" if kind else "") + f" = {json.dumps(default, default=str)}"
        lines.append(head)
        lines += textwrap.wrap(doc, 96, initial_indent="      ", subsequent_indent="      ") if doc else []
    if not rows:
        lines.append("  none")
    lines += ["", "Presets:" if cls.PRESETS else "Presets: none"]
    for preset in sorted(cls.PRESETS):
        lines.append(f"  {name}@{preset}: {json.dumps(cls.preset(preset), default=str)}")
    example = next(iter(cls.default_hparams()), None)
    lines += ["", "Use: --teacher " + (f"'{name}:{example}=VALUE'" if example else name)
              + (f" or {name}@{sorted(cls.PRESETS)[0]}" if cls.PRESETS else "")]
    return "\n".join(lines)
