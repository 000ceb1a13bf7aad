"""Skill discovery with an LLM, as in DataEnvGym: label questions with skills, propose new subskills.

* :class:`LLMSkillLabeller`: question -> skill name, a batch of questions per call, every label
  one of the given skills (DataEnvGym's "label the question with one skill from the list").
* :class:`LLMSubskillProposer`: skill + existing subskills (+ example questions) -> names of new
  subskills, for an Explore (DataEnvGym's subskill proposal policy).

Both ask through the chat engine's client with prompts from editable files
(``prompts/label_skill.txt``, ``prompts/propose_subskills.txt``) and check each answer strictly
(:func:`~teachgym.envs.datagen.llm.ask_json`: malformed answers are counted and asked again, a
bounded number of times). Because the templates know the true skill and subskill of every
question, :func:`discovery_scores` measures what DataEnvGym cannot: how often the labels and
proposals are right (``teachgym bench discovery``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teachgym.envs.datagen.domain import Domain
from teachgym.envs.datagen.llm import agent_stats, ask_json, load_prompt, make_client

#: A subskill name: a dictionary key of lower-case letters, digits and a few operators, as DataEnvGym asks.
SUBSKILL_NAME = re.compile(r"[a-z0-9_+\-*/=%^]{1,60}")
_MAX_QUESTION = 500


def _numbered(questions: Sequence[str]) -> str:
    return "\n".join(f"{i + 1}. {' '.join(str(q).split())[:_MAX_QUESTION]}" for i, q in enumerate(questions))


class LLMSkillLabeller:
    """Labels questions with one of the domain's skills.

    Parameters
    ----------
    domain
        Its skills are the labels.
    client, prompt_dir, max_attempts, client_kwargs
        As in :class:`~teachgym.envs.datagen.llm_policy.LLMPolicy` (the prompt is ``label_skill.txt``).
    batch_size
        Questions per call.
    """

    FIELDS = ("domain", "skills", "questions")

    def __init__(self, domain: Domain, client: Any = None, prompt_dir: str | Path | None = None, batch_size: int = 20,
                 max_attempts: int = 3, **client_kwargs: Any) -> None:
        if batch_size < 1 or max_attempts < 1:
            raise ValueError(f"expected batch_size >= 1 and max_attempts >= 1, got {batch_size}, {max_attempts}")
        self.domain, self.batch_size, self.max_attempts = domain, int(batch_size), int(max_attempts)
        self.client = make_client(domain, client, who="labeller", **({"temperature": 0.0, **client_kwargs} if client is None else client_kwargs))
        self.prompt = load_prompt("label_skill", self.FIELDS, prompt_dir)
        self.stats = agent_stats()

    def _parse(self, obj: Any, n: int) -> list[str]:
        if not isinstance(obj, dict) or set(obj) - {"labels", "reasoning"} or not isinstance(obj.get("labels"), list):
            raise ValueError('expected {"labels": [skill, ...]}')
        labels = obj["labels"]
        if len(labels) != n:
            raise ValueError(f"expected {n} labels, one per question, got {len(labels)}")
        bad = [x for x in labels if not isinstance(x, str) or x not in self.domain.skill_names]
        if bad:
            raise ValueError(f"labels {bad[:3]} are not skills of the list {list(self.domain.skill_names)}")
        return labels

    def label(self, questions: Sequence[str]) -> list[str | None]:
        """A skill name per question; None for the questions of a batch no answer labelled."""
        out: list[str | None] = []
        for lo in range(0, len(questions), self.batch_size):
            batch = list(questions[lo : lo + self.batch_size])
            text = self.prompt.substitute(domain=self.domain.name, questions=_numbered(batch),
                                          skills="\n".join(f"- {s}" for s in self.domain.skill_names))
            answer = ask_json(self.client, [{"role": "user", "content": text}], functools.partial(self._parse, n=len(batch)),
                              self.stats, self.max_attempts)
            out.extend(answer.value if answer.ok else [None] * len(batch))
        return out


class LLMSubskillProposer:
    """Proposes new subskills of a skill (names only; an Explore allocates data to them).

    Parameters are those of :class:`LLMSkillLabeller` (the prompt is ``propose_subskills.txt``).
    """

    FIELDS = ("domain", "skill", "subskills", "questions", "n")

    def __init__(self, domain: Domain, client: Any = None, prompt_dir: str | Path | None = None, max_attempts: int = 3,
                 **client_kwargs: Any) -> None:
        if max_attempts < 1:
            raise ValueError(f"expected max_attempts >= 1, got {max_attempts}")
        self.domain, self.max_attempts = domain, int(max_attempts)
        self.client = make_client(domain, client, who="proposer", **({"temperature": 0.7, **client_kwargs} if client is None else client_kwargs))
        self.prompt = load_prompt("propose_subskills", self.FIELDS, prompt_dir)
        self.stats = agent_stats()

    @staticmethod
    def _parse(obj: Any, n: int, existing: Sequence[str]) -> list[str]:
        if not isinstance(obj, dict) or set(obj) - {"subskills", "reasoning"} or not isinstance(obj.get("subskills"), list):
            raise ValueError('expected {"subskills": [name, ...]}')
        names = obj["subskills"]
        if not 1 <= len(names) <= n:
            raise ValueError(f"expected 1 to {n} subskills, got {len(names)}")
        for name in names:
            if not isinstance(name, str) or not SUBSKILL_NAME.fullmatch(name):
                raise ValueError(f"subskill name {str(name)[:80]!r} is not 1-60 lower-case letters, digits, underscores")
        if len(set(names)) < len(names) or set(names) & set(existing):
            raise ValueError("expected new subskills: unique, and none of the existing ones")
        return names

    def propose(self, skill: str, existing: Sequence[str], n: int, questions: Sequence[str] = ()) -> list[str]:
        """Up to ``n`` new subskill names of ``skill`` (empty when no answer passed the checks)."""
        self.domain.skill_index(skill)
        if n < 1:
            raise ValueError(f"expected n >= 1, got {n}")
        text = self.prompt.substitute(
            domain=self.domain.name, skill=skill, n=str(n), questions=_numbered(list(questions)[:10]) or "(none)",
            subskills="\n".join(f"- {s}" for s in existing) or "(none yet)",
        )
        answer = ask_json(self.client, [{"role": "user", "content": text}], lambda obj: self._parse(obj, n, existing),
                          self.stats, self.max_attempts)
        return answer.value if answer.ok else []


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def name_matches(proposed: str, truth: str) -> bool:
    """A proposed subskill names a true one: equal, or one contains the other, ignoring case and punctuation."""
    a, b = _key(proposed), _key(truth)
    return bool(a and b) and (a == b or (min(len(a), len(b)) >= 3 and (a in b or b in a)))


def discovery_scores(domain: Domain, labeller: LLMSkillLabeller, proposer: LLMSubskillProposer | None,
                     per_subskill: int = 5, seed: int = 0) -> list[dict[str, Any]]:
    """Discovery against the templates' ground truth, one row per skill.

    Labelling: ``per_subskill`` questions of every (subskill, difficulty) of the domain, each
    labelled once; ``accuracy`` is the fraction labelled with the true skill (unlabelled ones
    count as wrong). Proposal: each skill shows its first subskill and a few of its questions
    and asks for the others; ``proposal_recall`` is the fraction of those hidden subskills that
    a proposed name matches (:func:`name_matches`).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    examples = [domain.generate(s, j, lvl, rng) for s in range(domain.n_skills) for j in range(domain.n_subskills)
                for lvl in range(domain.n_levels) for _ in range(per_subskill)]
    labels = labeller.label([e.prompt for e in examples])
    rows = []
    for s, skill in enumerate(domain.skill_names):
        mine = [(e, lab) for e, lab in zip(examples, labels) if e.skill == s]
        row: dict[str, Any] = {
            "domain": domain.name, "skill": skill, "questions": len(mine),
            "accuracy": float(np.mean([lab == skill for _, lab in mine])),
            "unlabelled": sum(lab is None for _, lab in mine),
            "labelled_as_this": sum(lab == skill for lab in labels),
        }
        if proposer is not None:
            subs = [sub.name for sub in domain.skills[s].subskills]
            shown = [e.prompt for e in examples if e.skill == s and e.subskill == 0][:5]
            proposed = proposer.propose(skill, subs[:1], len(subs) - 1, shown)
            hidden = subs[1:]
            row["proposed"] = ", ".join(proposed)
            row["proposal_recall"] = float(np.mean([any(name_matches(p, h) for p in proposed) for h in hidden]))
        rows.append(row)
    return rows
