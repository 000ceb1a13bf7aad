"""Data-generation engines: turn a plan (task specifications) into training examples.

* :class:`TemplateEngine` (default, offline): draws each example from the domain's templates.
* :class:`ChatEngine`: asks an OpenAI-compatible ``/chat/completions`` endpoint for examples as
  JSON. Each request has a total deadline and a reply-size cap, follows no redirect, and retries
  timeouts, network errors, 5xx, 408 and 429 with jittered exponential backoff; malformed replies
  and items are counted and skipped: nothing a server or a model sends can crash an episode. The domain reads each item
  (:meth:`~teachgym.envs.datagen.domain.Domain.from_item`; VQA asks for a scene specification,
  since a chat model cannot return an image, and renders it) and the examples go through the same
  quality check as the templates' (:meth:`~teachgym.envs.datagen.domain.Domain.verify`).

Both return ``(examples, stats)``; ``stats`` counts what happened (requests, failures, ...).
"""

from __future__ import annotations

import http.client
import io
import json
import math
import os
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from teachgym.envs.datagen.domain import Domain, Example, read_int

#: Bounds on JSON written by a model or a server (see :func:`read_json`).
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 64
#: A reply of 20 examples holds a few hundred values; 8 MiB of ``[{},{},...]`` would be 2.8 M dicts (190 MiB).
MAX_JSON_VALUES = 200_000
#: Longest task specification of a plan (the open-ended level's action space allows 600 characters).
MAX_SPEC_CHARS = 600


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text[:20]}...")
    return value


def _short_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS + 1:  # + 1: the sign
        raise ValueError(f"expected an integer of at most {MAX_INT_DIGITS} digits, got {len(text)} characters")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"expected a finite number, got {name}")


def read_json(text: str, max_chars: int) -> Any:
    """JSON written by a model or a server, within bounds.

    Raises ``json.JSONDecodeError`` when ``text`` is not JSON, and ``ValueError`` when it is JSON
    beyond the bounds: longer than ``max_chars``; with more than :data:`MAX_JSON_VALUES` values
    (bounded before parsing by the count of commas and brackets: a Python object costs 25 to 70
    bytes for 2 or 3 characters of text); nested deeper than :data:`MAX_JSON_DEPTH` (``json``
    itself would raise ``RecursionError``); ``NaN``, ``Infinity`` or a number that overflows a
    float (``1e999``); an integer of more than :data:`MAX_INT_DIGITS` digits (Python's digit
    limit, or the cost of arithmetic on it).
    """
    if len(text) > max_chars:
        raise ValueError(f"expected at most {max_chars} characters of JSON, got {len(text)}")
    if text.count(",") + text.count("{") + text.count("[") > MAX_JSON_VALUES:  # those inside strings count too: a bound
        raise ValueError(f"expected at most {MAX_JSON_VALUES} JSON values")
    try:
        obj = json.loads(text, parse_float=_finite_float, parse_int=_short_int, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"expected JSON nested at most {MAX_JSON_DEPTH} deep") from None
    stack = [(obj, 1)]
    while stack:  # iterative: the check itself must not recurse
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"expected JSON nested at most {MAX_JSON_DEPTH} deep")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return obj


def _unfence(text: str) -> str:
    """The text inside a Markdown code fence (```json ... ```), or the text; linear time."""
    text = text.strip()
    if text.startswith("```"):
        text = text[3:]
        if text.startswith("json"):
            text = text[4:]
        if text.endswith("```"):
            text = text[:-3]
    return text.strip()


@dataclass(frozen=True)
class TaskSpec:
    """``count`` examples of a skill (index; -1: free text only), level and subskill (None: any).

    ``subskill_name`` is a skill-tree subskill's free-form name (proposed by a policy or an
    LLM): a chat engine asks for it by name; the template engine draws the template of that
    name, or any template of the skill when no template has it (``subskill`` is then None).
    """

    skill: int
    count: int
    level: int | None = None
    subskill: int | None = None
    text: str | None = None
    subskill_name: str | None = None


def parse_spec(text: str, domain: Domain, default_count: int, max_chars: int = MAX_SPEC_CHARS) -> TaskSpec | None:
    """Read one task specification of a free plan; None if it names nothing the domain knows.

    A JSON object ``{"skill": name or index, "difficulty": int, "count": int, "subskill": name
    or index}`` (``difficulty``, ``count``, ``subskill`` optional) is read exactly; any other
    text becomes a free specification (skill -1) that only an LLM engine can act on. A plan is
    model text: a specification longer than ``max_chars``, JSON beyond :func:`read_json`'s bounds
    (too deep, ``NaN``, ``1e999``, a 5,000-digit number) or a value of the wrong kind gives None,
    never an exception.
    """
    text = text if isinstance(text, str) else str(text)
    if len(text) > max_chars or not text.strip():
        return None
    try:
        obj = read_json(text, max_chars)
    except json.JSONDecodeError:
        return TaskSpec(-1, default_count, text=text)
    except ValueError:  # JSON, but out of bounds
        return None
    if not isinstance(obj, dict) or "skill" not in obj:
        return None
    try:
        skill = domain.skill_index(obj["skill"])
        level = obj.get("difficulty", obj.get("level"))
        level = None if level is None else read_int(level, "difficulty")
        count = read_int(obj.get("count", default_count), "count")
        sub = obj.get("subskill")
        if isinstance(sub, str):
            sub = [s.name for s in domain.skills[skill].subskills].index(sub)
        elif sub is not None:
            sub = read_int(sub, "subskill")
    except (ValueError, TypeError):
        return None
    if (level is not None and not 0 <= level < domain.n_levels) or count < 0:
        return None
    if sub is not None and not 0 <= sub < domain.n_subskills:
        return None
    return TaskSpec(skill, count, level, sub, text=text)


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


class _DeadlineSocket:
    """A connected socket whose every read and write ends by ``deadline`` (a total, not per-read, limit).

    ``http.client`` reads the status line, headers and body through :meth:`makefile` and sends
    through :meth:`sendall`; before each socket call the timeout is set to the time left, so a
    server that trickles one byte at a time cannot stretch a request past the deadline.
    """

    def __init__(self, sock: socket.socket, deadline: float, clock: Callable[[], float]) -> None:
        self._sock, self._deadline, self._clock = sock, deadline, clock

    def _left(self) -> float:
        left = self._deadline - self._clock()
        if left <= 0:
            raise TimeoutError("timed out: the request's deadline passed")
        return left

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._left())  # sendall's timeout bounds the whole call (Python >= 3.5)
        self._sock.sendall(data)

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        self._sock.settimeout(self._left())
        return self._sock.recv_into(buffer, nbytes)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        if mode != "rb":
            raise ValueError(f"expected makefile('rb'), got mode {mode!r}")
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        """Nothing: ``http.client`` closes the connection while the response still reads from it
        (a plain socket counts its files for that); the engine closes the real socket after the attempt."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    """The raw stream under ``makefile``: reads go through the deadline."""

    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


class _DeadlineMixin:
    """Connect within the time left, then wrap the socket (plain or TLS) in :class:`_DeadlineSocket`."""

    deadline: float
    clock: Callable[[], float]
    raw_sock: socket.socket | None = None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]  # bounded by the connection's timeout (the time left)
        self.raw_sock = self.sock  # type: ignore[attr-defined]
        self.sock = _DeadlineSocket(self.raw_sock, self.deadline, self.clock)


class _HTTPConnection(_DeadlineMixin, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineMixin, http.client.HTTPSConnection):
    pass


class _Oversized(Exception):
    """A reply larger than the engine's ``max_reply_bytes``."""


#: Statuses worth another attempt: timeout, rate limit and server errors (any other 4xx will not change).
_RETRY_4XX = (408, 429)
_RETRY_AFTER = re.compile(r"\s*([0-9]{1,9})\s*")  # the seconds form; an HTTP date is ignored
_LENGTH = re.compile(r"\s*([0-9]+)\s*")

_STATS = (
    "requests", "timeouts", "http_errors", "protocol_errors", "redirects", "oversized_replies",
    "failed_requests", "malformed_replies", "malformed_items", "extra_items", "bytes_read",
    "prompt_tokens", "completion_tokens", "malformed_usage", "replayed_calls", "replay_mismatches",
)
#: Token counts a server may report per reply; a larger one is not a count (counted as malformed usage).
MAX_USAGE_TOKENS = 10**9


def new_stats() -> dict[str, Any]:
    """Zeroed counters of a chat client (:class:`ChatEngine`); ``cost`` sums what servers report."""
    return {**dict.fromkeys(_STATS, 0), "cost": 0.0}


def read_usage(reply: Any, stats: dict[str, Any]) -> None:
    """Add a completion's ``usage`` (token counts, and ``cost`` where the server reports one) to ``stats``.

    The values are server text: only whole numbers in ``[0, MAX_USAGE_TOKENS]`` and a finite
    non-negative ``cost`` are added; anything else present is counted in ``malformed_usage``.
    """
    usage = reply.get("usage") if isinstance(reply, dict) else None
    if usage is None:
        return
    if not isinstance(usage, dict):
        stats["malformed_usage"] += 1
        return
    ok = True
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_USAGE_TOKENS:
            stats[key] += value
        else:
            ok = False
    cost = usage.get("cost")
    if cost is not None:
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and 0 <= cost < math.inf:
            stats["cost"] += float(cost)
        else:
            ok = False
    stats["malformed_usage"] += not ok


class ChatEngine:
    """Examples from an OpenAI-compatible chat endpoint, through a client that bounds the server.

    The client is ``http.client`` with three guards that the ``openai`` package and ``httpx`` do
    not give together: a total deadline (their timeouts are per read, so a server trickling a
    byte at a time keeps a request alive for ever; the ``openai`` client also follows redirects),
    a cap on the reply's size before it is read into memory, and redirects never followed (the
    bearer key goes to ``base_url`` and nowhere else). Failed attempts are retried with
    exponential backoff and jitter, honouring ``Retry-After``; everything a server can send
    (bad status lines, over-long lines, truncated bodies, non-UTF-8, JSON too deep or with
    non-finite numbers) is counted in the stats and skipped, never raised.

    Parameters
    ----------
    domain
        The domain whose skills and formats the prompt describes.
    base_url
        ``http://`` or ``https://`` URL, e.g. ``"http://127.0.0.1:8000/v1"``; the engine POSTs to
        ``base_url + "/chat/completions"``. Proxies from the environment are not used.
    model
        Model name sent with each request.
    api_key_env
        Environment variable holding the key (sent as a bearer token when set).
    timeout_s
        Longest one attempt may take, from connecting to the reply's last byte.
    retries
        Extra attempts after a timeout, a network or protocol error, a 5xx, 408 or 429.
    per_request
        Most examples asked for in one request (extra items of a reply are ignored and counted).
    temperature
        Sampling temperature sent with each request.
    deadline_s
        Longest one request may take, attempts and waits together; ``None``: what the attempts
        and the longest backoff waits could take, ``(retries + 1) * timeout_s + waits``.
    max_reply_bytes
        Largest reply body read; a larger one is dropped (counted in ``oversized_replies``)
        without being read into memory (a completion of 20 examples is about 10 kB). What the
        parsed JSON may hold is bounded too (:func:`read_json`).
    backoff_s, max_backoff_s
        The wait before retry ``k`` (0-based) is ``min(max_backoff_s, backoff_s * 2**k)`` times a
        jitter factor in [0.5, 1], and at least the server's ``Retry-After`` (seconds form). A
        wait that would pass the deadline ends the request instead.
    seed
        Seed of the jitter's generator.
    sleep, clock
        How the engine waits and reads monotonic time (tests pass fakes).
    ssl_context
        TLS settings of an ``https`` base_url (e.g. a private CA); None: Python's defaults, which
        check the server's certificate and name.
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
        deadline_s: float | None = None,
        max_reply_bytes: int = 8 * 2**20,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not (0 < timeout_s < math.inf and retries >= 0 and per_request >= 1 and max_reply_bytes >= 1):
            raise ValueError(
                "expected a finite timeout_s > 0, retries >= 0, per_request >= 1 and max_reply_bytes >= 1; got "
                f"{timeout_s}, {retries}, {per_request}, {max_reply_bytes}"
            )
        if not 0 <= backoff_s <= max_backoff_s < math.inf:
            raise ValueError(f"expected 0 <= backoff_s <= max_backoff_s < inf, got {backoff_s}, {max_backoff_s}")
        url = urllib.parse.urlsplit(base_url.rstrip("/") + "/chat/completions")
        if url.scheme not in ("http", "https") or not url.hostname or url.username or url.query or url.fragment:
            raise ValueError(f"expected base_url like 'http://127.0.0.1:8000/v1' (http or https, no credentials or query), got {base_url!r}")
        self.domain, self.model = domain, model
        self.url = urllib.parse.urlunsplit(url)
        self._scheme, self._host, self._port, self._path = url.scheme, url.hostname, url.port, url.path
        self.api_key_env, self.timeout_s, self.retries = api_key_env, float(timeout_s), int(retries)
        self.per_request, self.temperature = int(per_request), float(temperature)
        self.max_reply_bytes = int(max_reply_bytes)
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max_backoff_s)
        waits = sum(min(self.max_backoff_s, self.backoff_s * 2**k) for k in range(self.retries))
        self.deadline_s = float(deadline_s) if deadline_s is not None else (self.retries + 1) * self.timeout_s + waits
        if not 0 < self.deadline_s < math.inf:
            raise ValueError(f"expected a finite deadline_s > 0, got {deadline_s}")
        self.rng = np.random.default_rng(seed)
        self.sleep, self.clock, self.ssl_context = sleep, clock, ssl_context
        #: A :class:`~teachgym.envs.datagen.transcript.Transcript` that records every call (and
        #: answers from recorded replies first); None: calls go to the server unrecorded.
        self.transcript: Any = None

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
            elif spec.subskill_name:
                what += f", subskill {spec.subskill_name!r}"
            if spec.level is not None:
                what += f", difficulty {spec.level}"
        else:
            what = f"this plan: {spec.text}"
        return [{"role": "system", "content": system}, {"role": "user", "content": f"Write {n} examples for {what}."}]

    def backoff(self, attempt: int) -> float:
        """The jittered wait before retry ``attempt`` (0-based)."""
        return min(self.max_backoff_s, self.backoff_s * 2**attempt) * float(self.rng.uniform(0.5, 1.0))

    def _attempt(self, body: bytes, headers: dict[str, str], deadline: float, stats: dict[str, int]) -> tuple[int, float | None, bytearray]:
        """One POST: (status, Retry-After seconds or None, body of a 2xx reply); raises on network errors."""
        timeout = max(1e-3, deadline - self.clock())
        if self._scheme == "https":
            conn: _DeadlineMixin = _HTTPSConnection(self._host, self._port, timeout=timeout, context=self.ssl_context)
        else:
            conn = _HTTPConnection(self._host, self._port, timeout=timeout)
        conn.deadline, conn.clock = deadline, self.clock
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            resp = conn.getresponse()
            retry_after = _RETRY_AFTER.fullmatch(resp.getheader("Retry-After") or "")
            wait = float(retry_after.group(1)) if retry_after else None
            if not 200 <= resp.status < 300:
                return resp.status, wait, bytearray()
            length = _LENGTH.fullmatch(resp.getheader("Content-Length") or "")
            if length and (len(length.group(1)) > 18 or int(length.group(1)) > self.max_reply_bytes):
                raise _Oversized  # refused before a byte of it is read
            data = bytearray()
            while chunk := resp.read(min(2**16, self.max_reply_bytes + 1 - len(data))):
                data += chunk
                stats["bytes_read"] += len(chunk)
                if len(data) > self.max_reply_bytes:
                    raise _Oversized
            if resp.length:  # read(amt) stops quietly at a connection closed before Content-Length
                raise http.client.IncompleteRead(bytes(data), resp.length)
            return resp.status, wait, data
        finally:
            conn.close()
            if conn.raw_sock is not None:
                conn.raw_sock.close()

    def _post(self, messages: list[dict[str, str]], stats: dict[str, int]) -> str | None:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        deadline = self.clock() + self.deadline_s
        for attempt in range(self.retries + 1):
            left = deadline - self.clock()
            if left <= 0:
                break
            stats["requests"] += 1
            wait = None
            try:
                status, wait, data = self._attempt(body, headers, self.clock() + min(self.timeout_s, left), stats)
            except TimeoutError:
                stats["timeouts"] += 1
                status = None
            except ssl.SSLError:  # before ValueError: a failed certificate check is both
                stats["http_errors"] += 1
                status = None
            except (http.client.HTTPException, ValueError):
                # BadStatusLine, IncompleteRead, LineTooLong, too many headers, a bad chunk size
                stats["protocol_errors"] += 1
                status = None
            except _Oversized:
                stats["oversized_replies"] += 1
                break  # the same request would get the same reply
            except OSError:  # refused, reset, unreachable, TLS errors
                stats["http_errors"] += 1
                status = None
            if status is not None:
                if 200 <= status < 300:
                    return self._content(data, stats)
                if 300 <= status < 400:
                    stats["redirects"] += 1  # never followed: the key is for base_url only
                    break
                stats["http_errors"] += 1
                if status < 500 and status not in _RETRY_4XX:
                    break
            if attempt == self.retries:
                break
            pause = max(self.backoff(attempt), wait or 0.0)
            if self.clock() + pause >= deadline:
                break  # waiting as long as asked would leave no time for the retry
            self.sleep(pause)
        stats["failed_requests"] += 1
        return None

    def _content(self, data: bytearray, stats: dict[str, int]) -> str | None:
        """The message text of a chat completion; None (counted) for anything else."""
        try:
            reply = read_json(data.decode("utf-8"), self.max_reply_bytes)
            read_usage(reply, stats)
            content = reply["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError(f"expected the message content as a string, got {type(content).__name__}")
            return content
        except (ValueError, KeyError, IndexError, TypeError):  # UnicodeDecodeError is a ValueError
            stats["malformed_replies"] += 1  # an answer that is not a chat completion
            return None

    def complete(self, messages: list[dict[str, str]], stats: dict[str, Any]) -> str | None:
        """The text of one chat completion, None when it failed (counted in ``stats``, from :func:`new_stats`).

        With a :attr:`transcript`, a recorded reply answers first and live calls are recorded.
        """
        if self.transcript is None:
            return self._post(messages, stats)
        return self.transcript.call(messages, lambda: self._post(messages, stats), stats)

    def _read(self, content: str, n: int, stats: dict[str, int]) -> list[Example]:
        """At most ``n`` examples from the model's text; the items past ``n`` are not read."""
        try:
            obj = read_json(_unfence(content), self.max_reply_bytes)
            items = obj["examples"] if isinstance(obj, dict) else obj
            if not isinstance(items, list):
                raise TypeError(f"expected a list of examples, got {type(items).__name__}")
        except (ValueError, KeyError, TypeError):
            stats["malformed_replies"] += 1
            return []
        stats["extra_items"] += max(0, len(items) - n)
        out = []
        for item in items[:n]:
            try:  # the domain reads the item (VQA: a scene specification it renders itself)
                out.append(self.domain.from_item(item))
            except (ValueError, KeyError, TypeError, AttributeError, IndexError, ArithmeticError, RecursionError):
                stats["malformed_items"] += 1
        return out

    def generate(self, specs: Sequence[TaskSpec], rng: np.random.Generator) -> tuple[list[Example], dict[str, int]]:
        stats = new_stats()
        out: list[Example] = []
        for spec in specs:
            left = spec.count
            while left > 0:
                n = min(left, self.per_request)
                left -= n
                content = self.complete(self._messages(spec, n), stats)
                if content is not None:
                    out.extend(self._read(content, n, stats))
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
