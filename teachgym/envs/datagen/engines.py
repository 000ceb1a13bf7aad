"""Data-generation engines: turn a plan (task specifications) into training examples.

* :class:`TemplateEngine` (default, offline): draws each example from the domain's templates.
* :class:`ChatEngine`: asks an OpenAI-compatible ``/chat/completions`` endpoint for examples as
  JSON. Timeouts and HTTP errors are retried, malformed replies and items are counted and
  skipped; nothing it receives can crash an episode. The domain reads each item
  (:meth:`~teachgym.envs.datagen.domain.Domain.from_item`; VQA asks for a scene specification,
  since a chat model cannot return an image, and renders it) and the examples go through the same
  quality check as the templates' (:meth:`~teachgym.envs.datagen.domain.Domain.verify`).

Both return ``(examples, stats)``; ``stats`` counts what happened (requests, failures, ...).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from teachgym.envs.datagen.domain import Domain, Example


@dataclass(frozen=True)
class TaskSpec:
    """``count`` examples of a skill (index; -1: free text only), level and subskill (None: any)."""

    skill: int
    count: int
    level: int | None = None
    subskill: int | None = None
    text: str | None = None


def parse_spec(text: str, domain: Domain, default_count: int) -> TaskSpec | None:
    """Read one task specification of a free plan; None if it names nothing the domain knows.

    A JSON object ``{"skill": name or index, "difficulty": int, "count": int, "subskill": name
    or index}`` (``difficulty``, ``count``, ``subskill`` optional) is read exactly; any other
    text becomes a free specification (skill -1) that only an LLM engine can act on.
    """
    try:
        obj = json.loads(text)
    except (TypeError, ValueError):
        return TaskSpec(-1, default_count, text=str(text)) if str(text).strip() else None
    if not isinstance(obj, dict) or "skill" not in obj:
        return None
    try:
        skill = domain.skill_index(obj["skill"])
        level = obj.get("difficulty", obj.get("level"))
        level = None if level is None else int(level)
        count = int(obj.get("count", default_count))
        sub = obj.get("subskill")
        if isinstance(sub, str):
            sub = [s.name for s in domain.skills[skill].subskills].index(sub)
    except (ValueError, TypeError):
        return None
    if (level is not None and not 0 <= level < domain.n_levels) or count < 0:
        return None
    if sub is not None and not (isinstance(sub, int) and 0 <= sub < domain.n_subskills):
        return None
    return TaskSpec(skill, count, level, sub, text=str(text))


class TemplateEngine:
    """Examples drawn from the domain's templates; free-text specifications are skipped."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain

    def generate(self, specs: Sequence[TaskSpec], rng: np.random.Generator) -> tuple[list[Example], dict[str, int]]:
        d = self.domain
        out, skipped = [], 0
        for spec in specs:
            if spec.skill < 0:
                skipped += 1
                continue
            for _ in range(spec.count):
                level = int(rng.integers(d.n_levels)) if spec.level is None else spec.level
                sub = int(rng.integers(d.n_subskills)) if spec.subskill is None else spec.subskill
                out.append(d.make_image(d.generate(spec.skill, sub, level, rng)))
        return out, {"unsupported_specs": skipped}


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


class ChatEngine:
    """Examples from an OpenAI-compatible chat endpoint.

    Parameters
    ----------
    domain
        The domain whose skills and formats the prompt describes.
    base_url
        E.g. ``"http://127.0.0.1:8000/v1"``; the engine POSTs to ``base_url + "/chat/completions"``.
    model
        Model name sent with each request.
    api_key_env
        Environment variable holding the key (sent as a bearer token when set).
    timeout_s, retries
        Per-request timeout and extra attempts after a network/HTTP failure.
    per_request
        Most examples asked for in one request.
    temperature
        Sampling temperature sent with each request.
    """

    def __init__(
        self,
        domain: Domain,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        retries: int = 2,
        per_request: int = 20,
        temperature: float = 0.7,
    ) -> None:
        if timeout_s <= 0 or retries < 0 or per_request < 1:
            raise ValueError("expected timeout_s > 0, retries >= 0 and per_request >= 1")
        self.domain, self.url, self.model = domain, base_url.rstrip("/") + "/chat/completions", model
        self.api_key_env, self.timeout_s, self.retries = api_key_env, float(timeout_s), int(retries)
        self.per_request, self.temperature = int(per_request), float(temperature)

    def _messages(self, spec: TaskSpec, n: int) -> list[dict[str, str]]:
        d = self.domain
        system = (
            f"You write training examples for a student learning {d.name}. Use exactly the question "
            f"formats below; answers are exact.\n{d.describe()}\n"
            f"Difficulty levels are 0..{d.n_levels - 1}. Reply with JSON only: "
            f'{{"examples": [{d.chat_format()}, ...]}}'
        )
        if spec.skill >= 0:
            what = f"skill {d.skill_names[spec.skill]!r}"
            if spec.subskill is not None:
                what += f", subskill {d.skills[spec.skill].subskills[spec.subskill].name!r}"
            if spec.level is not None:
                what += f", difficulty {spec.level}"
        else:
            what = f"this plan: {spec.text}"
        return [{"role": "system", "content": system}, {"role": "user", "content": f"Write {n} examples for {what}."}]

    def _post(self, messages: list[dict[str, str]], stats: dict[str, int]) -> str | None:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        for _ in range(self.retries + 1):
            stats["requests"] += 1
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    reply = json.loads(resp.read().decode("utf-8", errors="replace"))
                return str(reply["choices"][0]["message"]["content"])
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
                stats["timeouts" if "timed out" in str(err) else "http_errors"] += 1
            except (ValueError, KeyError, IndexError, TypeError):
                stats["malformed_replies"] += 1  # an answer that is not a chat completion
                return None
        stats["failed_requests"] += 1
        return None

    def _read(self, content: str, stats: dict[str, int]) -> list[Example]:
        try:
            obj = json.loads(_FENCE.sub("", content.strip()))
            items = obj["examples"] if isinstance(obj, dict) else obj
            if not isinstance(items, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            stats["malformed_replies"] += 1
            return []
        out = []
        for item in items:
            try:  # the domain reads the item (VQA: a scene specification it renders itself)
                out.append(self.domain.from_item(item))
            except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                stats["malformed_items"] += 1
        return out

    def generate(self, specs: Sequence[TaskSpec], rng: np.random.Generator) -> tuple[list[Example], dict[str, int]]:
        stats = dict.fromkeys(("requests", "timeouts", "http_errors", "failed_requests", "malformed_replies", "malformed_items"), 0)
        out: list[Example] = []
        for spec in specs:
            left = spec.count
            while left > 0:
                n = min(left, self.per_request)
                left -= n
                content = self._post(self._messages(spec, n), stats)
                if content is not None:
                    out.extend(self._read(content, stats)[:n])  # never more than was asked for
        return out, stats


def make_engine(domain: Domain, engine: str | Any = "template", **kwargs: Any) -> Any:
    """``"template"``, ``"chat"`` (kwargs of :class:`ChatEngine`) or an engine object as is."""
    if engine == "template":
        return TemplateEngine(domain)
    if engine == "chat":
        return ChatEngine(domain, **kwargs)
    if isinstance(engine, str):
        raise ValueError(f"unknown engine {engine!r}; expected 'template' or 'chat'")
    return engine
