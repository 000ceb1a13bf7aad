"""An LLM as the data-generation agent (DataEnvGym's policy): the state as a prompt, a JSON plan as the action.

Each iteration :class:`LLMPolicy` writes the observation into the level's prompt (the
student's errors with its wrong answers, accuracy per skill and difficulty, the skill tree with
its allocations: whatever the observation holds, each part formatted by a small function) and
asks an OpenAI-compatible chat model for a plan in JSON:

* Open-Ended: ``{"plan": [{"skill", "difficulty", "count", "subskill"?}, or {"description", "count"}]}``
  — task specifications (a free ``description`` is for an LLM engine only);
* Skill-List: ``{"allocation": [{"skill", "difficulty", "count"}, ...]}`` — examples per cell;
* Skill-Tree: ``{"actions": {SKILL: {"action_type": "explore", "num_new_skills", "data_allocation_for_new_skills"}
  or {"action_type": "exploit", "data_allocation_delta": {SUBSKILL: int}}}}`` — DataEnvGym's
  Explore/Exploit per skill (its ``Explore``/``Exploit`` models).

A plan is checked strictly (known names, whole numbers in range, no unknown keys, at most
``budget`` examples, bounded size); a reply that fails is counted and asked again with the error
(``max_attempts`` calls in all); when none passes, the fallback plan (the same share for every
cell; the tree unchanged) is used, logged and marked in :attr:`LLMPolicy.last`. The prompts are
text files a user can edit (``prompt_dir``; the shipped ones are in ``datagen/prompts/``).
"""

from __future__ import annotations

import json
import logging
import reprlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teachgym.envs.datagen.domain import read_int
from teachgym.envs.datagen.env import DataGenEnv, allocate
from teachgym.envs.datagen.llm import agent_stats, ask_json, json_block, load_prompt, make_client
from teachgym.envs.datagen.policies import PolicyState

logger = logging.getLogger(__name__)

#: Placeholders the policy prompts may use (every one is filled at every level; absent parts read "(not observed)").
POLICY_FIELDS = ("domain", "skills", "levels", "budget", "iteration", "iterations", "errors", "accuracy", "data",
                 "tree", "other")
_ABSENT = "(not observed at this level)"
_MAX_ERRORS, _MAX_LINE = 32, 600


# ------------------------------------------------------------------ the observation as text
def _rows(value: Any) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if np.all(np.isfinite(arr)) else None


def format_errors(observation: dict[str, Any], env: DataGenEnv) -> str:
    """The student's errors (question, right answer, its answer), one a line."""
    errors = observation.get("errors")
    if errors is None:
        return _ABSENT
    lines = [f"- {str(e)[:_MAX_LINE]}" for e in list(errors)[:_MAX_ERRORS]]
    return "\n".join(lines) if lines else "(the student made no error on the validation questions)"


def format_accuracy(observation: dict[str, Any], env: DataGenEnv) -> str:
    """Accuracy per skill, and per difficulty where the observation has it."""
    names = env.skill_names
    by_level = _rows(observation.get("accuracy_by_level"))
    per_skill = _rows(observation.get("skill_accuracy", observation.get("accuracy")))
    if by_level is not None and by_level.shape[0] == len(names) and by_level.ndim == 2:
        return "\n".join(
            f"- {n}: {100 * row.mean():.0f}% (" + ", ".join(f"difficulty {j}: {100 * a:.0f}%" for j, a in enumerate(row)) + ")"
            for n, row in zip(names, by_level)
        )
    if per_skill is not None and per_skill.shape == (len(names),):
        return "\n".join(f"- {n}: {100 * a:.0f}%" for n, a in zip(names, per_skill))
    return _ABSENT


def format_data(observation: dict[str, Any], env: DataGenEnv) -> str:
    """Training examples kept so far per skill and difficulty."""
    data = _rows(observation.get("data"))
    if data is None or data.ndim != 2 or data.shape[0] != len(env.skill_names):
        return _ABSENT
    return "\n".join(f"- {n}: " + ", ".join(f"difficulty {j}: {int(c)}" for j, c in enumerate(row))
                     for n, row in zip(env.skill_names, data))


def tree_counts(observation: dict[str, Any], env: DataGenEnv) -> dict[str, dict[str, int]] | None:
    """The skill forest as ``{skill: {subskill: examples allocated per iteration}}``."""
    names, alloc = observation.get("subskills"), _rows(observation.get("allocation"))
    if not isinstance(names, (list, tuple)) or len(names) != len(env.skill_names) or alloc is None or alloc.ndim != 2:
        return None
    return {skill: {str(sub): int(alloc[i, j]) for j, sub in enumerate(names[i]) if j < alloc.shape[1]}
            for i, skill in enumerate(env.skill_names)}


def format_tree(observation: dict[str, Any], env: DataGenEnv) -> str:
    """Each skill's subskills with their allocation and the student's accuracy on the data just generated for them."""
    tree = tree_counts(observation, env)
    if tree is None:
        return _ABSENT
    acc, generated = _rows(observation.get("accuracy")), _rows(observation.get("generated"))
    levels = _rows(observation.get("difficulty"))
    skill_acc = _rows(observation.get("skill_accuracy"))
    lines = []
    for i, (skill, subs) in enumerate(tree.items()):
        head = f"- {skill}" + (f" (accuracy {100 * skill_acc[i]:.0f}%)" if skill_acc is not None and skill_acc.shape == (len(tree),) else "")
        lines.append(head + ("" if subs else ": no subskills yet"))
        for j, (sub, n) in enumerate(subs.items()):
            seen = acc is not None and generated is not None and acc.shape == generated.shape and generated[i, j] > 0
            tail = f", accuracy {100 * acc[i, j]:.0f}% on its {int(generated[i, j])} new examples" if seen else ""
            level = f" (difficulty {int(levels[i, j])})" if levels is not None and levels.ndim == 2 and levels[i, j] >= 0 and "difficulty" not in sub else ""
            lines.append(f"  - {sub}{level}: {n} examples{tail}")
    return "\n".join(lines)


_FORMATTED = {"errors", "accuracy", "accuracy_by_level", "skill_accuracy", "data", "subskills", "allocation", "generated", "difficulty", "iteration"}


def format_other(observation: dict[str, Any], env: DataGenEnv) -> str:
    """Observation entries no formatter above reads, as compact JSON (so that new state reaches the model)."""
    rest = {k: v for k, v in observation.items() if k not in _FORMATTED}
    return json_block(rest) if rest else "(none)"


FORMATTERS: dict[str, Callable[[dict[str, Any], DataGenEnv], str]] = {
    "errors": format_errors, "accuracy": format_accuracy, "data": format_data, "tree": format_tree, "other": format_other,
}


# ------------------------------------------------------------------ plans
def _keys(obj: Any, required: Sequence[str], optional: Sequence[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise TypeError(f"expected {what} as a JSON object, got {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    extra = [k for k in obj if k not in required and k not in optional]
    if missing or extra:
        raise ValueError(f"{what}: missing keys {missing}, unknown keys {extra}; expected {list(required)} (+ optional {list(optional)})")
    return obj


def _name(value: Any, names: Sequence[str], what: str) -> int:
    if not isinstance(value, str) or value not in names:
        raise ValueError(f"unknown {what} {reprlib.repr(value)}; expected one of {list(names)}")
    return list(names).index(value)


def _count(value: Any, what: str, low: int, high: int) -> int:
    n = read_int(value, what)
    if not low <= n <= high:
        raise ValueError(f"{what} {n} outside {low}..{high}")
    return n


def _items(obj: Any, key: str, budget: int) -> list[Any]:
    items = _keys(obj, [key], ["reasoning"], "the plan")[key]
    if not isinstance(items, list) or not items:
        raise ValueError(f"expected {key!r} as a non-empty list")
    if len(items) > budget:
        raise ValueError(f"{key!r} has {len(items)} entries; at most {budget} (the budget)")
    return items


def parse_open_ended(obj: Any, env: DataGenEnv) -> list[dict[str, Any]]:
    """Task specifications of an Open-Ended plan, checked; at most ``budget`` examples in all."""
    d, specs = env.domain, []
    for item in _items(obj, "plan", env.budget):
        if isinstance(item, dict) and "description" in item:
            item = _keys(item, ["description", "count"], [], "a free specification")
            text = item["description"]
            if not isinstance(text, str) or not 0 < len(text) <= 500:
                raise ValueError("expected a description of 1 to 500 characters")
            specs.append({"description": text, "count": _count(item["count"], "count", 1, env.budget)})
            continue
        item = _keys(item, ["skill", "difficulty", "count"], ["subskill"], "a specification")
        skill = _name(item["skill"], env.skill_names, "skill")
        spec = {"skill": env.skill_names[skill], "difficulty": _count(item["difficulty"], "difficulty", 0, d.n_levels - 1),
                "count": _count(item["count"], "count", 1, env.budget)}
        if "subskill" in item:
            spec["subskill"] = env.subskill_names[skill][_name(item["subskill"], env.subskill_names[skill], "subskill")]
        specs.append(spec)
    total = sum(s["count"] for s in specs)
    if total > env.budget:
        raise ValueError(f"the plan asks for {total} examples; the budget is {env.budget}")
    return specs


def parse_skill_list(obj: Any, env: DataGenEnv) -> np.ndarray:
    """Examples per (skill, difficulty) of a Skill-List plan, checked."""
    d = env.domain
    counts = np.zeros((d.n_skills, d.n_levels), dtype=np.int64)
    for item in _items(obj, "allocation", d.n_skills * d.n_levels):
        item = _keys(item, ["skill", "difficulty", "count"], [], "an allocation entry")
        s, lvl = _name(item["skill"], env.skill_names, "skill"), _count(item["difficulty"], "difficulty", 0, d.n_levels - 1)
        counts[s, lvl] += _count(item["count"], "count", 0, env.budget)
    if counts.sum() > env.budget or counts.sum() == 0:
        raise ValueError(f"the allocation asks for {int(counts.sum())} examples; expected 1 to {env.budget} (the budget)")
    return counts


def parse_skill_tree(obj: Any, env: DataGenEnv, tree: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    """DataEnvGym's per-skill actions of a Skill-Tree plan, checked against the current tree."""
    actions = _keys(obj, ["actions"], ["reasoning"], "the plan")["actions"]
    if not isinstance(actions, dict) or not actions:
        raise ValueError("expected 'actions' as a non-empty object {skill: action}")
    out: dict[str, dict[str, Any]] = {}
    for skill, action in actions.items():
        _name(skill, env.skill_names, "skill")
        kind = action.get("action_type") if isinstance(action, dict) else None
        if kind == "explore":
            a = _keys(action, ["action_type", "num_new_skills", "data_allocation_for_new_skills"], ["reasoning"], f"explore of {skill}")
            out[skill] = {"action_type": "explore", "num_new_skills": _count(a["num_new_skills"], "num_new_skills", 1, 10),
                          "data_allocation_for_new_skills": _count(a["data_allocation_for_new_skills"], "data_allocation_for_new_skills", 0, env.budget)}
        elif kind == "exploit":
            a = _keys(action, ["action_type", "data_allocation_delta"], ["reasoning"], f"exploit of {skill}")
            delta = a["data_allocation_delta"]
            if not isinstance(delta, dict):
                raise TypeError(f"expected data_allocation_delta of {skill} as an object {{subskill: int}}")
            known = list(tree.get(skill, {}))
            out[skill] = {"action_type": "exploit", "data_allocation_delta": {
                known[_name(sub, known, f"subskill of {skill}")]: _count(n, "delta", -env.budget, env.budget) for sub, n in delta.items()}}
        else:
            raise ValueError(f"expected action_type 'explore' or 'exploit' for {skill}, got {reprlib.repr(kind)}")
    return out


# ------------------------------------------------------------------ plans -> env actions
def open_ended_action(specs: list[dict[str, Any]]) -> tuple[str, ...]:
    """The env's Open-Ended action: JSON specifications, free descriptions as text."""
    return tuple(s["description"] if "description" in s else json.dumps(s) for s in specs)


def skill_tree_action(actions: dict[str, dict[str, Any]], env: DataGenEnv, tree: dict[str, dict[str, int]],
                      proposer: Any = None) -> tuple[dict[str, Any], ...]:
    """The env's Skill-Tree action (one per skill) from DataEnvGym's per-skill Explore / Exploit.

    An Exploit's deltas are cut where they would make an allocation negative; a skill the plan
    leaves out keeps its allocations. ``proposer`` (optional) names an Explore's new subskills.
    """
    out = []
    for skill in env.skill_names:
        action, subs = actions.get(skill), tree.get(skill, {})
        if action is None:
            out.append({"explore": 0})
        elif action["action_type"] == "explore":
            a = {"explore": 1, "n_new": action["num_new_skills"], "new_allocation": action["data_allocation_for_new_skills"]}
            if proposer is not None:
                a["names"] = list(proposer.propose(skill, list(subs), action["num_new_skills"]))
            out.append(a)
        else:
            delta = action["data_allocation_delta"]
            out.append({"explore": 0, "delta": [max(int(delta.get(sub, 0)), -n) for sub, n in subs.items()]})
    return tuple(out)


class LLMPolicy(PolicyState):
    """A chat model that reads the observation and writes the plan (any level).

    Parameters
    ----------
    env
        The DataGen env.
    client
        A chat client with ``complete(messages, stats)`` (e.g. the env's :class:`ChatEngine`);
        None: one is made from ``client_kwargs`` (``base_url``, ``model``, ``api_key_env``,
        ``timeout_s``, ``retries``, ...; see :class:`~teachgym.envs.datagen.engines.ChatEngine`).
    prompt_dir
        A folder whose ``open_ended.txt`` / ``skill_list.txt`` / ``skill_tree.txt`` replace the
        shipped prompts (placeholders: :data:`POLICY_FIELDS`).
    max_attempts
        Calls per iteration at most (the first and the retries after a malformed or missing reply).
    max_plan_chars
        Longest reply read as a plan.
    proposer
        Skill-Tree: an :class:`~teachgym.envs.datagen.discovery.LLMSubskillProposer` naming the
        subskills an Explore adds (their names go in the action's ``"names"``).
    seed
        Unused (the model's sampling is the server's); accepted like every policy's.
    """

    state_attributes = ("stats", "last")  # the counters go on; the last plan is the record's until the next one

    def __init__(self, env: Any, client: Any = None, prompt_dir: str | Path | None = None, max_attempts: int = 3,
                 max_plan_chars: int = 20_000, proposer: Any = None, seed: int | None = None, **client_kwargs: Any) -> None:
        self.env = getattr(env, "unwrapped", env)
        if not isinstance(self.env, DataGenEnv):
            raise ValueError(f"expected a DataGen env, got {env!r}")
        if max_attempts < 1 or max_plan_chars < 2:
            raise ValueError(f"expected max_attempts >= 1 and max_plan_chars >= 2, got {max_attempts}, {max_plan_chars}")
        self.client = make_client(self.env.domain, client, who="policy", **{"temperature": 0.2, **client_kwargs} if client is None else client_kwargs)
        self.prompt = load_prompt(self.env.level, POLICY_FIELDS, prompt_dir)
        self.max_attempts, self.max_plan_chars, self.proposer = int(max_attempts), int(max_plan_chars), proposer
        self.stats = {**agent_stats(), "fallbacks": 0}
        self.last: dict[str, Any] = {}

    def messages(self, observation: dict[str, Any]) -> list[dict[str, str]]:
        """The chat messages of one iteration: the level's prompt filled from the observation."""
        env, d = self.env, self.env.domain
        fields = {name: fn(observation, env) for name, fn in FORMATTERS.items()}
        fields.update(
            domain=d.name, skills=", ".join(env.skill_names), levels=f"0..{d.n_levels - 1}", budget=str(env.budget),
            iteration=str(int(observation.get("iteration", 0))), iterations=str(env.iterations),
        )
        return [{"role": "user", "content": self.prompt.substitute(fields)}]

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Any:
        env = self.env
        tree = tree_counts(observation, env) if env.level == "skill_tree" else {}
        parse: Callable[[Any], Any] = {
            "open_ended": lambda obj: parse_open_ended(obj, env),
            "skill_list": lambda obj: parse_skill_list(obj, env),
            "skill_tree": lambda obj: parse_skill_tree(obj, env, tree or {}),
        }[env.level]
        answer = ask_json(self.client, self.messages(observation), parse, self.stats, self.max_attempts, self.max_plan_chars)
        plan = answer.value
        if plan is None:
            self.stats["fallbacks"] += 1
            logger.warning("LLMPolicy: no valid plan in %d attempts (%s); using the fallback plan",
                           len(answer.replies), "; ".join(answer.errors)[:1000])
            plan = self.fallback_plan(tree or {})
        self.last = {"plan": plan.tolist() if isinstance(plan, np.ndarray) else plan, "fallback": not answer.ok,
                     "errors": answer.errors, "attempts": len(answer.replies)}
        return self.to_action(plan, tree or {})

    def fallback_plan(self, tree: dict[str, dict[str, int]]) -> Any:
        """The same share of the budget for every (skill, difficulty); Skill-Tree: the tree unchanged."""
        d, env = self.env.domain, self.env
        if env.level == "skill_tree":
            return {s: {"action_type": "exploit", "data_allocation_delta": {}} for s in env.skill_names}
        counts = allocate(np.ones((d.n_skills, d.n_levels)), env.budget)
        if env.level == "skill_list":
            return counts
        return [{"skill": env.skill_names[s], "difficulty": lvl, "count": int(c)} for (s, lvl), c in np.ndenumerate(counts) if c]

    def to_action(self, plan: Any, tree: dict[str, dict[str, int]]) -> Any:
        """The env's action for a checked plan."""
        if self.env.level == "open_ended":
            return open_ended_action(plan)
        if self.env.level == "skill_list":
            return (plan / plan.sum()).astype(np.float32)
        return skill_tree_action(plan, self.env, tree, self.proposer)

    def observe(self, observation: Any, reward: float, info: dict[str, Any]) -> None:
        """Nothing: the next observation holds the state the model reads."""
