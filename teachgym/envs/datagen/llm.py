"""What the LLM agents of the data-generation envs share: the chat client, editable prompts, strict JSON answers.

* :func:`make_client`: the chat engine's OpenAI-compatible client (:class:`~teachgym.envs.datagen.
  engines.ChatEngine`: total deadline, reply-size cap, no redirects, backoff), with a
  :class:`~teachgym.envs.datagen.transcript.Transcript` recording every call.
* :func:`load_prompt`: a prompt template from ``teachgym/envs/datagen/prompts/NAME.txt`` or a
  folder of the user's (``$name`` placeholders, :class:`string.Template`); a placeholder the
  caller does not fill is an error when the file is read, not a silent hole in the prompt.
* :func:`ask_json`: one question whose answer must be a JSON object passing ``parse``; a reply
  that is not is counted and asked again, with the error, up to a bounded number of attempts.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from teachgym.envs.datagen.domain import Domain
from teachgym.envs.datagen.engines import ChatEngine, _unfence, new_stats, read_json
from teachgym.envs.datagen.transcript import Transcript

PROMPT_PACKAGE = "teachgym.envs.datagen.prompts"
#: Largest prompt template read (the shipped ones are about 2 kB).
MAX_PROMPT_BYTES = 64 * 1024
_PLACEHOLDER = re.compile(r"\$(?:(?P<name>[_a-z][_a-z0-9]*)|\{(?P<braced>[_a-z][_a-z0-9]*)\})", re.IGNORECASE)
_THINK = re.compile(r"\s*<think>.*?</think>", re.DOTALL)


def make_client(domain: Domain, client: Any = None, who: str = "model", **kwargs: Any) -> ChatEngine:
    """``client`` as is (with a transcript added when it has none), or a new :class:`ChatEngine`.

    ``kwargs`` are ChatEngine's (``base_url``, ``model``, ``api_key_env``, ``timeout_s``, ...).
    """
    if client is None:
        if not kwargs.get("base_url") or not kwargs.get("model"):
            raise ValueError("an LLM agent needs base_url and model (an OpenAI-compatible server), or client=")
        client = ChatEngine(domain, **kwargs)
    elif kwargs:
        raise ValueError(f"pass either client= or the client's settings, not both (got {sorted(kwargs)})")
    if not callable(getattr(client, "complete", None)):
        raise ValueError(f"expected a chat client with complete(messages, stats), got {client!r}")
    if getattr(client, "transcript", None) is None:
        client.transcript = Transcript(who)
    return client


def load_prompt(name: str, allowed: Collection[str], prompt_dir: str | Path | None = None) -> string.Template:
    """The prompt template ``NAME.txt`` from ``prompt_dir`` if it holds one, else the shipped one.

    Raises ``ValueError`` for a missing or oversized file, or for a placeholder outside
    ``allowed`` (``$$`` writes a dollar sign).
    """
    path = Path(prompt_dir) / f"{name}.txt" if prompt_dir is not None else None
    if path is not None and path.is_file():
        if path.stat().st_size > MAX_PROMPT_BYTES:
            raise ValueError(f"prompt file {path} is larger than {MAX_PROMPT_BYTES} bytes")
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        res = resources.files(PROMPT_PACKAGE) / f"{name}.txt"
        if not res.is_file():
            raise ValueError(f"no prompt named {name!r} (shipped prompts are in {PROMPT_PACKAGE.replace('.', '/')}/)")
        text, where = res.read_text(encoding="utf-8"), f"shipped {name}.txt"
    used = {m.group("name") or m.group("braced") for m in _PLACEHOLDER.finditer(text.replace("$$", ""))}
    unknown = used - set(allowed)
    if unknown:
        raise ValueError(f"{where}: unknown placeholders {sorted(unknown)}; this prompt can use {sorted(allowed)}")
    return string.Template(text)


def read_reply_json(content: str, max_chars: int) -> Any:
    """The JSON of a model's reply: bare, or in a Markdown fence, after a ``<think>`` block if any."""
    text = _THINK.sub("", content, count=1) if content.lstrip().startswith("<think>") else content
    return read_json(_unfence(text), max_chars)


@dataclass
class Answer:
    """What :func:`ask_json` got: the parsed value (None: every attempt failed), the raw replies, the errors."""

    value: Any = None
    replies: list[str | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.value is not None


def agent_stats() -> dict[str, Any]:
    """Counters of an LLM agent: the client's (:func:`new_stats`) plus its questions and bad answers."""
    return {**new_stats(), "questions": 0, "attempts": 0, "no_reply": 0, "malformed_answers": 0, "unanswered": 0}


def ask_json(client: Any, messages: list[dict[str, str]], parse: Callable[[Any], Any], stats: dict[str, Any],
             max_attempts: int = 3, max_chars: int = 100_000, max_echo: int = 2_000) -> Answer:
    """Ask until a reply parses: at most ``max_attempts`` calls, the last bad reply and its error sent back.

    ``parse(obj)`` turns the reply's JSON into the answer or raises ``ValueError``/``KeyError``/
    ``TypeError`` with a message the model can act on; it must not return None.
    """
    answer = Answer()
    stats["questions"] += 1
    asked = list(messages)
    for _ in range(max_attempts):
        stats["attempts"] += 1
        content = client.complete(asked, stats)
        answer.replies.append(content)
        if content is None:
            stats["no_reply"] += 1
            answer.errors.append("no reply (the request failed)")
            continue
        try:
            answer.value = parse(read_reply_json(content, max_chars))
            return answer
        except (ValueError, KeyError, TypeError, IndexError) as err:  # json.JSONDecodeError is a ValueError
            stats["malformed_answers"] += 1
            reason = f"{type(err).__name__}: {err}"[:500]
            answer.errors.append(reason)
            asked = list(messages) + [
                {"role": "assistant", "content": content[:max_echo]},
                {"role": "user", "content": f"That reply is not valid ({reason}). Reply with the JSON object only, as specified."},
            ]
    stats["unanswered"] += 1
    return answer


def json_block(value: Any, max_chars: int = 4_000) -> str:
    """Compact JSON for a prompt, cut at ``max_chars``."""
    text = json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    return text if len(text) <= max_chars else text[: max_chars - 5] + " ...}"
