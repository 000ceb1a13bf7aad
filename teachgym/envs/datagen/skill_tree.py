"""The Skill-Tree level as in DataEnvGym: one tree per skill, absolute counts per subskill, Explore / Exploit.

Follows DataEnvGym's ``src/dataenvgym/gym/data_generation_agents/skill_tree.py`` (Khan et al.,
ICLR 2025): every skill (``SkillTree``) holds free-form subskill names, a ``data_allocation``
(absolute number of examples to generate per subskill and iteration) and ``perf_on_training_data``
(the student's accuracy on the data just generated for each subskill, measured by the quality
check before training on it — not on the hidden validation set). Trees start empty. Each
iteration the agent takes **one action per skill**:

* ``Explore(num_new_skills, data_allocation_for_new_skills)``: the subskill proposer adds
  ``n_new`` subskills to the tree, each allocated ``new_allocation`` examples; the others keep
  theirs (``explore_skill_tree``);
* ``Exploit(data_allocation_delta)``: new allocations for the existing subskills
  (``exploit_skill_tree`` adds the deltas; here either ``delta`` or the new absolute
  ``allocation`` may be given).

A per-skill action is a dict ``{"explore": 0 or 1, "n_new": int, "new_allocation": int or one
int per new subskill, "allocation": counts per existing subskill, "delta": changes per existing
subskill, "names": [str, ...], "difficulty": int or one per new subskill}`` (keys beyond
``explore`` optional). teachgym additions, both optional: ``names`` (subskills the policy or an
LLM proposes itself, instead of the proposer's), ``difficulty`` (the level of the new subskills),
and an ``allocation`` on an Explore that also re-allocates the existing subskills (DataEnvGym's
Explore leaves them as they are: omit it to get exactly that).

Subskill names are free-form. A name ``"<template> (difficulty L)"`` or the name of one of the
domain's templates selects that template (the template engine draws it; a chat engine is asked
for the name); any other name is a new subskill that only a chat engine can write, which the
template engine serves with any template of the skill.
"""

from __future__ import annotations

import re
import reprlib
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from teachgym.envs.datagen.domain import Domain, read_int

#: Longest subskill name kept (a name is model text when an LLM proposes it).
MAX_NAME = 64
_NAME_CHARS = set(string.printable) - set("\t\n\r\x0b\x0c")
_SUFFIX = re.compile(r"^(.*?)\s*\(difficulty (\d+)\)$")


@dataclass
class SubskillNode:
    """One subskill of a tree: its name, what it maps to, its allocation and feedback."""

    name: str
    template: int  # index of the skill's template, -1: none (any template)
    difficulty: int | None  # None: any level
    allocation: int = 0
    accuracy: float | None = None  # the student's accuracy on the data generated for it this iteration
    generated: int = 0  # examples kept for it this iteration
    data: int = 0  # examples kept for it so far


def resolve_name(domain: Domain, skill: int, name: str) -> tuple[int, int | None]:
    """``(template index or -1, difficulty or None)`` of a subskill name."""
    base, level = name.strip(), None
    m = _SUFFIX.match(base)
    if m and int(m.group(2)) < domain.n_levels:
        base, level = m.group(1).strip(), int(m.group(2))
    names = [s.name.lower() for s in domain.skills[skill].subskills]
    return (names.index(base.lower()) if base.lower() in names else -1), level


def check_name(name: Any) -> str:
    """A subskill name: printable text of 1..MAX_NAME characters on one line; ``ValueError`` otherwise."""
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME or not set(name) <= _NAME_CHARS:
        raise ValueError(f"expected a subskill name of 1..{MAX_NAME} printable characters on one line, got {reprlib.repr(name)}")
    return name.strip()


class TemplateProposer:
    """Default subskill proposer: the domain's templates at each difficulty, easiest level first.

    Called as ``proposer(domain, skill, existing_names, n, levels) -> names``, ``levels`` holding
    the difficulty asked for each new subskill (None: any); names already in the tree are
    skipped. Past the templates it names subskills ``"<skill>_<i>"``, as DataEnvGym's
    ``StubSubskillProposalPolicy`` does (the template engine serves them with any template).
    An LLM proposer is any callable of the same signature.
    """

    def __call__(self, domain: Domain, skill: int, existing: Sequence[str], n: int, levels: Sequence[int | None] | None = None) -> list[str]:
        taken = set(existing)
        out = []
        for want in (levels if levels is not None else [None] * n)[:n]:
            name = next((f"{sub.name} (difficulty {lvl})" for lvl in range(domain.n_levels) for sub in domain.skills[skill].subskills
                         if want in (None, lvl) and f"{sub.name} (difficulty {lvl})" not in taken), None)
            i = 0
            while name is None:
                name = f"{domain.skill_names[skill]}_{i}" if f"{domain.skill_names[skill]}_{i}" not in taken else None
                i += 1
            out.append(name)
            taken.add(name)
        return out


def _counts(value: Any, what: str, size: int | None = None) -> np.ndarray:
    """Whole, finite, non-negative numbers (a scalar or a 1-D sequence); ``ValueError`` otherwise."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"expected {what} as whole numbers, got {reprlib.repr(value)}") from None
    if a.ndim > 1 or not np.all(np.isfinite(a)) or np.any(a != np.floor(a)) or (size is not None and a.ndim == 1 and a.size != size):
        raise ValueError(f"expected {what} as whole numbers{'' if size is None else f' ({size} of them)'}, got {reprlib.repr(value)}")
    return a.astype(np.int64)


class SkillForest:
    """The trees of every skill and the application of per-skill actions (see the module docstring).

    Parameters
    ----------
    domain
        The domain (its skills root the trees).
    max_subskills
        Most subskills per tree (the observation's width); Explores past it are refused and counted.
    proposer
        ``(domain, skill, existing_names, n, levels) -> names`` for Explores without ``names``.
    """

    def __init__(self, domain: Domain, max_subskills: int, proposer: Callable[..., Sequence[str]]) -> None:
        self.domain, self.max_subskills, self.proposer = domain, int(max_subskills), proposer
        self.trees: list[list[SubskillNode]] = [[] for _ in range(domain.n_skills)]

    def per_skill(self, action: Any) -> list[dict[str, Any] | None]:
        """The per-skill actions of an action: a sequence with one entry per skill, or a dict by skill name/index."""
        k = self.domain.n_skills
        if isinstance(action, dict):
            out: list[dict[str, Any] | None] = [None] * k
            for key, value in action.items():
                out[self.domain.skill_index(key)] = value
            return out
        if isinstance(action, (list, tuple)) and len(action) == k:
            return list(action)
        raise ValueError(
            f"a skill-tree action has one per-skill action for each of the {k} skills (a sequence, or a dict by skill name); "
            f"got {reprlib.repr(action)}"
        )

    def apply(self, action: Any) -> int:
        """Apply one action per skill; returns how many requested subskills could not be added."""
        refused = 0
        for skill, a in enumerate(self.per_skill(action)):
            if a is None:
                continue
            if not isinstance(a, dict):
                raise ValueError(f"expected a dict per skill (explore, n_new, new_allocation, allocation, delta, names, difficulty), got {reprlib.repr(a)}")
            refused += self._apply_one(skill, a)
        return refused

    def _apply_one(self, skill: int, a: dict[str, Any]) -> int:
        tree = self.trees[skill]
        explore = read_int(a.get("explore", 0), "explore")
        if explore not in (0, 1):
            raise ValueError(f"explore must be 0 or 1, got {explore}")
        if "delta" in a:
            new = np.array([n.allocation for n in tree], dtype=np.int64) + _counts(a["delta"], "delta", len(tree)) if tree else np.zeros(0, np.int64)
            if np.any(new < 0):
                raise ValueError(f"a delta may not make an allocation negative, got {new.tolist()} for skill {self.domain.skill_names[skill]!r}")
            for node, c in zip(tree, new):
                node.allocation = int(c)
        elif "allocation" in a:
            alloc = np.atleast_1d(_counts(a["allocation"], "allocation"))
            if np.any(alloc < 0):
                raise ValueError(f"expected non-negative allocations, got {alloc.tolist()}")
            for node, c in zip(tree, alloc):  # entries past the tree's subskills are unused slots
                node.allocation = int(c)
        if not explore:
            return 0
        n_new = read_int(a.get("n_new", 1), "n_new")
        if n_new < 0:
            raise ValueError(f"n_new must be >= 0, got {n_new}")
        levels = a.get("difficulty")
        levels = [levels] * n_new if levels is None or not isinstance(levels, (list, tuple, np.ndarray)) else list(levels)
        if len(levels) != n_new:
            raise ValueError(f"expected one difficulty per new subskill ({n_new}), got {reprlib.repr(a.get('difficulty'))}")
        for i, level in enumerate(levels):
            if level is not None:
                levels[i] = read_int(level, "difficulty")
                if not 0 <= levels[i] < self.domain.n_levels:
                    raise ValueError(f"difficulty {levels[i]} outside 0..{self.domain.n_levels - 1}")
        names = a.get("names")
        names = [check_name(x) for x in names] if names is not None else []
        existing = [node.name for node in tree]
        names = [x for x in dict.fromkeys(names) if x not in existing][:n_new]
        if len(names) < n_new:
            proposed = self.proposer(self.domain, skill, existing + names, n_new - len(names), levels[len(names):])
            names += [check_name(x) for x in list(proposed)[: n_new - len(names)]]
        room = self.max_subskills - len(tree)
        refused = max(0, len(names) - room)
        names = names[: max(0, room)]
        new_alloc = _counts(a.get("new_allocation", 0), "new_allocation")
        new_alloc = np.broadcast_to(new_alloc, (n_new,)) if new_alloc.ndim == 0 else _counts(new_alloc, "new_allocation", n_new)
        if np.any(new_alloc < 0):
            raise ValueError(f"expected non-negative new allocations, got {new_alloc.tolist()}")
        for name, count, level in zip(names, new_alloc, levels):
            template, named_level = resolve_name(self.domain, skill, name)
            tree.append(SubskillNode(name, template, named_level if level is None else level, int(count)))
        return refused

    def requested(self) -> list[tuple[int, int, int]]:
        """``(skill, subskill index, count)`` of every subskill with a positive allocation."""
        return [(s, j, n.allocation) for s, tree in enumerate(self.trees) for j, n in enumerate(tree) if n.allocation > 0]

    def record(self, kept: Sequence[tuple[int, int, bool]]) -> None:
        """Feedback of an iteration: ``(skill, subskill index, student correct)`` per kept example."""
        for tree in self.trees:
            for node in tree:
                node.generated, node.accuracy = 0, None
        right: dict[tuple[int, int], int] = {}
        for s, j, correct in kept:
            node = self.trees[s][j]
            node.generated += 1
            node.data += 1
            right[s, j] = right.get((s, j), 0) + int(correct)
        for (s, j), r in right.items():
            self.trees[s][j].accuracy = r / self.trees[s][j].generated

    def arrays(self) -> dict[str, np.ndarray]:
        """Per (skill, subskill slot): difficulty (-1: any or empty), allocation, generated, data, accuracy (0 when none)."""
        shape = (self.domain.n_skills, self.max_subskills)
        out = {
            "difficulty": np.full(shape, -1, np.int64), "allocation": np.zeros(shape, np.int64),
            "generated": np.zeros(shape, np.int64), "data": np.zeros(shape, np.int64), "accuracy": np.zeros(shape, np.float32),
        }
        for s, tree in enumerate(self.trees):
            for j, n in enumerate(tree):
                out["difficulty"][s, j] = -1 if n.difficulty is None else n.difficulty
                out["allocation"][s, j], out["generated"][s, j], out["data"][s, j] = n.allocation, n.generated, n.data
                out["accuracy"][s, j] = 0.0 if n.accuracy is None else n.accuracy
        return out
