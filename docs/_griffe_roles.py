"""Griffe extension for the docs build: Sphinx roles in the docstrings become code spans.

The docstrings are numpy-style with Sphinx cross-reference roles (``:class:`~teachgym.Teacher```),
which mkdocstrings would print verbatim. ``~`` keeps the last name only, as Sphinx does. They
become plain code, not links: many name a method relative to its class, which no page anchors.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    name = match.group(2).strip()
    return f"`{name.rsplit('.', 1)[-1] if match.group(1) else name}`"


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring's roles once the object tree is built."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_plain, obj.docstring.value)
