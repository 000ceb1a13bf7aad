"""The quality check in tiers: each tier accepts, rejects or passes an example on to the next.

An example written by an engine goes through, in order (:meth:`Domain.verify_tiers
<teachgym.envs.datagen.domain.Domain.verify_tiers>`):

1. **format** — a skill the domain has, a question within bounds (rejects only);
2. **level** — the claimed difficulty is checked from above: no number in the question may have
   more digits than the templates of its skill ever use at that level (:func:`level_bounds`);
   **level_floor** — and from below: the question's *content level* (:func:`content_level`: the
   easiest level whose bound admits its largest number) must reach the claimed level's floor, a
   low quantile of its own templates' content levels (:func:`level_floor`). A floor is above 0
   only where a level's templates almost never (at most :attr:`Domain.floor_alpha
   <teachgym.envs.datagen.domain.Domain.floor_alpha>`, 0.1%) write a lower level's numbers: in
   math, level-2 arithmetic ("2 + 3 =" claimed at level 2 is dropped; "2 + 3 =" at level 1 is
   not, as 4% of level-1 arithmetic is one-digit). The domains' docstrings say which levels
   cannot be told apart from below and why;
3. the domain's own tiers:

   * math: **template** (the question is a template's text: the answer recomputed from its
     numbers must be the exact answer string) then **math** (numeric and linear-symbolic
     equivalence: :mod:`teachgym.envs.datagen.mathparse` reads the question — a paraphrase such as
     ``"What is 2 plus 3?"`` or ``"Solve 3x + 2 = 11 for x"`` — and the answer to exact values,
     without ``eval``);
   * code: **code** (the program runs in :class:`~teachgym.envs.datagen.sandbox.Sandbox`; its
     output must be the answer);
   * VQA: **scene** (the scene is redrawn and the answer recomputed from it);

4. **judge** (optional): :class:`ChatJudge` asks a chat model, through the chat engine's client,
   whether the answer is right; only examples no earlier tier could decide reach it.

An example no tier decides is dropped as ``"none"``. :func:`summarise` turns the verdicts into
per-tier counts and pass rates (``info["verify"]`` of a step).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the domain imports this module
    from teachgym.envs.datagen.domain import Example

#: Every tier's name, in the order they run (a domain uses some of them); "off_plan": the env drops an item that was not asked for.
TIERS = ("off_plan", "format", "level", "level_floor", "template", "math", "code", "scene", "judge", "none")

_NUMBER = re.compile(r"\d+")


def numbers_in(text: str) -> list[int]:
    """The whole numbers written in ``text`` (digit runs; at most 64 digits each are read)."""
    return [int(m[:64]) for m in _NUMBER.findall(text)]


def level_bounds(domain: Any, samples: int = 250, seed: int = 0) -> np.ndarray:
    """Largest number, per (skill, level), that a question of that skill may hold at that level.

    ``samples`` template questions per (subskill, level) are drawn with a fixed generator; the
    bound is the largest number among them rounded up to all nines of its digit count (a
    level-0 arithmetic question has one-digit numbers: bound 9; level 1: 99).
    """
    rng = np.random.default_rng(seed)
    bounds = np.zeros((domain.n_skills, domain.n_levels), dtype=np.int64)
    for s, skill in enumerate(domain.skills):
        for j in range(len(skill.subskills)):
            for lvl in range(domain.n_levels):
                top = max((max(numbers_in(domain.generate(s, j, lvl, rng).prompt), default=0) for _ in range(samples)), default=0)
                bounds[s, lvl] = max(bounds[s, lvl], 10 ** len(str(top)) - 1)
    return np.maximum.accumulate(bounds, axis=1)  # a harder level never allows less


def content_level(top: int, bounds: Sequence[int]) -> int:
    """The lowest level whose bound (a row of :func:`level_bounds`) admits ``top``, the largest number
    of a question: the easiest level whose templates could have written it (``len(bounds)`` when none)."""
    return next((lvl for lvl, bound in enumerate(bounds) if top <= bound), len(bounds))


def level_floor(domain: Any, bounds: np.ndarray, skill: int, level: int, alpha: float, samples: int, seed: int = 0) -> int:
    """The lowest content level that a question of ``skill`` claiming ``level`` may have (its floor).

    The floor is the ``alpha``-quantile, from below, of the content level (:func:`content_level`
    against the skill's row of ``bounds``) of ``samples`` template questions of that skill and
    level (its subskills in turn, a generator fixed by ``seed``, skill and level): the highest
    floor ``f <= level`` such that at most ``alpha * samples`` of them have a content level under
    ``f``. Level 0 has floor 0.

    Why a quantile and not the least of a few hundred samples: a level's templates draw their
    numbers from ranges that contain the lower levels' ("up to three digits"), so a level-2 template
    *can* write "2*6=" (one level-2 product in 1,000 is one digit by one digit); whether a few
    hundred samples hold one is luck, whereas the count under a floor in ``samples`` of them is
    not. The price: up to about ``alpha`` of a floored level's own template questions (those that
    read like a lower level) are dropped too. Sampling stops as soon as the floor is 0 (too many
    questions under every candidate), so only a level that can be told apart costs all ``samples``.
    """
    if not 0 < alpha < 1 or samples < 1:
        raise ValueError(f"expected 0 < alpha < 1 and samples >= 1, got alpha={alpha}, samples={samples}")
    row = [int(b) for b in bounds[skill]]
    n_subskills = len(domain.skills[skill].subskills)
    rng = np.random.default_rng([seed, skill, level])
    per_level = [0] * (level + 1)  # template questions per content level (one above ``level`` counted at it)
    floor, n = level, 0
    while floor > 0 and n < samples:
        top = max(numbers_in(domain.generate(skill, n % n_subskills, level, rng).prompt), default=0)
        per_level[min(content_level(top, row), level)] += 1
        n += 1
        while floor > 0 and sum(per_level[:floor]) > alpha * samples:
            floor -= 1
    return floor


def summarise(verdicts: Sequence[tuple[bool, str]]) -> dict[str, dict[str, float]]:
    """Per tier that decided something: ``{"passed", "rejected", "pass_rate"}`` (pass rate over the tier's decisions)."""
    out: dict[str, dict[str, float]] = {}
    for ok, tier in verdicts:
        row = out.setdefault(tier, {"passed": 0, "rejected": 0})
        row["passed" if ok else "rejected"] += 1
    for row in out.values():
        row["pass_rate"] = row["passed"] / (row["passed"] + row["rejected"])
    return {t: out[t] for t in TIERS if t in out}


class ChatJudge:
    """An LLM judge: asks a chat model whether each example's answer is correct.

    Parameters
    ----------
    domain
        The domain whose examples are judged (its name goes into the prompt).
    **chat_kwargs
        :class:`~teachgym.envs.datagen.engines.ChatEngine` arguments (``base_url``, ``model``,
        ``api_key_env``, ``timeout_s``...): the same client, deadlines and bounds as the engine.

    The reply must be JSON ``{"correct": true}`` or ``{"correct": false}`` (a Markdown fence is
    allowed); anything else, or a failed request, leaves the example undecided (dropped), counted
    in :attr:`stats` (``malformed_replies``, ``failed_requests``...).
    """

    #: Longest reply read (a verdict is a few bytes; the rest of a long reply is not wanted).
    max_reply_chars = 2000

    def __init__(self, domain: Any, **chat_kwargs: Any) -> None:
        from teachgym.envs.datagen.engines import _STATS, ChatEngine

        self.domain = domain
        self.client = ChatEngine(domain, **chat_kwargs)
        self.stats: dict[str, int] = dict.fromkeys(_STATS, 0)

    def _messages(self, e: Example) -> list[dict[str, str]]:
        system = (
            f"You check training examples for a student learning {self.domain.name}. Decide whether the "
            'proposed answer to the question is exactly right. Reply with JSON only: {"correct": true} or {"correct": false}.'
        )
        return [{"role": "system", "content": system},
                {"role": "user", "content": f"Question: {e.prompt}\nProposed answer: {e.answer}"}]

    def judge(self, examples: Sequence[Example]) -> list[bool | None]:
        """True / False per example, None when the model's reply is not a verdict."""
        from teachgym.envs.datagen.engines import _unfence, read_json

        out: list[bool | None] = []
        for e in examples:
            content = self.client.complete(self._messages(e), self.stats)
            verdict = None
            if content is not None:
                try:
                    obj = read_json(_unfence(content), self.max_reply_chars)
                    verdict = obj["correct"] if isinstance(obj, dict) and isinstance(obj.get("correct"), bool) else None
                except (ValueError, json.JSONDecodeError):
                    verdict = None
                if verdict is None:
                    self.stats["malformed_replies"] += 1
            out.append(verdict)
        return out
