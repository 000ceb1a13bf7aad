"""Record and replay of chat calls: what a model said, kept to audit a run, rerun it offline or resume it.

A :class:`Transcript` sits on a chat client (:attr:`ChatEngine.transcript
<teachgym.envs.datagen.engines.ChatEngine.transcript>`): every live call is recorded as one entry
``{"who", "request", "prompt", "content", "usage", "seconds"}`` (``request``: SHA-256 of the
messages; ``prompt``: the last message, cut to :attr:`Transcript.max_prompt_chars`; ``content``:
the reply's text, null for a failed call; ``usage``: the tokens, and cost where the server
reports one). Entries queued with :meth:`Transcript.replay` answer the next calls in order
instead of the server, so a recorded run replays without a server and a resumed episode calls
no model twice.

The file format (:meth:`Transcript.save`, :meth:`Transcript.load`) is JSONL, one entry a line,
each with ``"format": "teachgym-chat/1"``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from teachgym.envs.datagen.engines import read_json
from teachgym.io import write_text

CHAT_FORMAT = "teachgym-chat/1"
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "cost")
#: Largest transcript file read (a call is a few kB; 10,000 of them fit).
MAX_TRANSCRIPT_BYTES = 256 * 2**20


def request_key(messages: list[dict[str, str]]) -> str:
    """SHA-256 of the messages as canonical JSON: which request a recorded reply answered."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def check_entry(entry: Any) -> dict[str, Any]:
    """A recorded call read from a file, checked; ``ValueError`` saying what is wrong otherwise."""
    if not isinstance(entry, dict):
        raise ValueError(f"expected a recorded call as a JSON object, got {type(entry).__name__}")
    content = entry.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError(f"expected a recorded call's content as a string or null, got {type(content).__name__}")
    if not isinstance(entry.get("request", ""), str) or not isinstance(entry.get("who", ""), str):
        raise ValueError("expected a recorded call's request and who as strings")
    return entry


class Transcript:
    """The calls of one chat client: recorded as they happen, or replayed from a recording.

    Parameters
    ----------
    who
        Name written in each entry (``"policy"``, ``"engine"``, ``"labeller"``).
    strict
        When a replayed entry answered another request (messages differ), raise ``ValueError``
        instead of counting it in ``replay_mismatches`` (a resumed run whose student drifted asks
        slightly different questions and still takes the recorded answers).
    max_prompt_chars
        Longest prompt text kept per entry.
    clock
        Monotonic time, for the seconds of each call.
    """

    def __init__(self, who: str = "model", strict: bool = False, max_prompt_chars: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.who, self.strict, self.max_prompt_chars, self.clock = who, bool(strict), int(max_prompt_chars), clock
        self.entries: list[dict[str, Any]] = []  # every call, live and replayed, since the last drain()
        self._queue: deque[dict[str, Any]] = deque()

    # ------------------------------------------------------------------ calls
    def call(self, messages: list[dict[str, str]], post: Callable[[], str | None], stats: dict[str, Any]) -> str | None:
        """The reply to ``messages``: the next replayed entry if any, else ``post()`` recorded."""
        key = request_key(messages)
        if self._queue:
            entry = self._queue.popleft()
            stats["replayed_calls"] += 1
            if entry.get("request") not in (None, key):
                if self.strict:
                    raise ValueError(f"replayed call {len(self.entries)} of {self.who!r} answered another request")
                stats["replay_mismatches"] += 1
            self.entries.append({**entry, "replayed": True})
            return entry.get("content")
        before = {k: stats.get(k, 0) for k in _USAGE_KEYS}
        t0 = self.clock()
        content = post()
        usage = {k: stats.get(k, 0) - before[k] for k in _USAGE_KEYS}
        prompt = messages[-1].get("content", "") if messages else ""
        self.entries.append({
            "who": self.who, "request": key, "prompt": prompt[: self.max_prompt_chars], "content": content,
            "usage": usage, "seconds": round(self.clock() - t0, 6),
        })
        return content

    def replay(self, entries: Iterable[dict[str, Any]]) -> None:
        """Answer the next calls from recorded entries, in order (replacing any not used yet)."""
        self._queue = deque(check_entry(e) for e in entries)

    @property
    def pending(self) -> int:
        """Replayed entries not used yet."""
        return len(self._queue)

    def drain(self) -> list[dict[str, Any]]:
        """The entries since the last drain (the calls of one iteration), forgetting them here."""
        out, self.entries = self.entries, []
        return out

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> None:
        """Write the entries recorded so far as JSONL, atomically."""
        write_text(path, "".join(json.dumps({"format": CHAT_FORMAT, **e}) + "\n" for e in self.entries))

    @staticmethod
    def load(path: str | Path) -> list[dict[str, Any]]:
        """The entries of a transcript file (for :meth:`replay`); ``ValueError`` on a malformed file."""
        path = Path(path)
        if path.stat().st_size > MAX_TRANSCRIPT_BYTES:
            raise ValueError(f"{path}: larger than {MAX_TRANSCRIPT_BYTES} bytes; expected a teachgym chat transcript")
        out = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = check_entry(read_json(line, MAX_TRANSCRIPT_BYTES))
            except ValueError as err:  # json.JSONDecodeError is a ValueError
                raise ValueError(f"{path}:{i}: not a recorded call ({err})") from None
            if entry.get("format") != CHAT_FORMAT:
                raise ValueError(f"{path}:{i}: format {entry.get('format')!r}, expected {CHAT_FORMAT!r}")
            out.append(entry)
        return out
