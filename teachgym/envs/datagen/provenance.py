"""Provenance of a data-generation episode, one JSONL record per iteration, and resuming from it.

:func:`run_recorded_episode` runs an episode and appends to ``path``, after the reset and after
every step, one whole line (written with a single ``write`` and ``fsync``): a header
``{"kind": "header", "format": "teachgym-episode/1", "run": ..., "seed": ...}``, then per
iteration ``{"kind": "iteration", "iteration", "action" (the env's action as JSON), "plan" (the
LLM policy's checked plan, whether it was the fallback, its errors), "calls" (every chat call:
prompt, raw reply, tokens, cost, seconds), "items" (each generated example and whether the
quality check kept it), "kept", "reward", "accuracy" (the info's per-skill and per-(skill,
difficulty) accuracies, validation and test), "cells" (validation accuracy per (skill, subskill,
difficulty)), "engine" (the engine's counters)}``.

Resuming: a killed process leaves whole records and at most one truncated last line, which
:func:`read_records` drops (and the next append cuts off). The episode is then replayed from its
start: the recorded chat replies answer the policy's and the engine's calls (no model is asked
twice; a template engine and the student's training are recomputed, exactly so on CPU), each
replayed iteration is compared with its record (kept examples, test accuracy; a difference is
logged and counted as ``resume_mismatches``), and the episode continues live from the first
iteration without a record.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teachgym.envs.datagen.engines import read_json
from teachgym.envs.datagen.transcript import Transcript
from teachgym.io import _plain

logger = logging.getLogger(__name__)

EPISODE_FORMAT = "teachgym-episode/1"
#: Longest record line read back (an iteration of 200 examples and 20 calls is about 100 kB).
MAX_RECORD_CHARS = 64 * 2**20


def _dumps(value: Any) -> str:
    """One line of JSON (numpy values as plain numbers and lists; NaN refused)."""
    return json.dumps(value, default=_plain, allow_nan=False)


# ------------------------------------------------------------------ the file
def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line: a single ``write`` of the whole line, then ``fsync``."""
    data = (_dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        view = memoryview(data)
        while view:  # a regular file takes it in one write; a short write continues the same line
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """The whole records of an episode file; a truncated last line (a killed writer) is dropped.

    ``repair``: also cut that line off the file, so that the next append starts a line of its
    own. Raises ``ValueError`` for a malformed line before the last, or a first line that is
    not an episode header.
    """
    path = Path(path)
    if not path.exists():
        return []
    records: list[dict[str, Any]] = []
    good_end = 0
    with open(path, "rb") as fh:
        while line := fh.readline(MAX_RECORD_CHARS + 1):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("a line without its end (a write cut short)")
                record = read_json(line.decode("utf-8"), MAX_RECORD_CHARS)
                if not isinstance(record, dict) or record.get("kind") not in ("header", "iteration"):
                    raise ValueError("not an episode record")
            except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                if fh.read(1):
                    raise ValueError(f"{path}: record {len(records) + 1} is malformed ({err}) and is not the last line") from None
                logger.warning("%s: dropped a truncated last record (%s)", path, err)
                break
            records.append(record)
            good_end = fh.tell()
    if records and (records[0].get("kind") != "header" or records[0].get("format") != EPISODE_FORMAT):
        raise ValueError(f"{path}: expected a {EPISODE_FORMAT} header as the first record")
    if repair and good_end < path.stat().st_size:
        os.truncate(path, good_end)
    return records


# ------------------------------------------------------------------ the episode
class RecordingEngine:
    """An engine that keeps the last batch it generated (for the record's items)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: list[Any] = []

    def generate(self, specs: Sequence[Any], rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
        self.last, stats = self.inner.generate(specs, rng)
        return self.last, stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _transcripts(env: Any, policy: Any) -> dict[str, Transcript]:
    """The transcripts of the chat clients in play (policy, engine), by ``who``; engines get one."""
    out: dict[str, Transcript] = {}
    engine = env.engine.inner if isinstance(env.engine, RecordingEngine) else env.engine
    for owner, who in ((getattr(policy, "client", None), "policy"), (engine, "engine")):
        if owner is None or not callable(getattr(owner, "complete", None)):
            continue
        if getattr(owner, "transcript", None) is None:
            owner.transcript = Transcript(who)
        out.setdefault(owner.transcript.who, owner.transcript)
    return out


def _items(generated: list[Any], kept: list[Any]) -> list[dict[str, Any]]:
    """Each generated example (up to the budget) and whether it was kept; kept ones are a subsequence."""
    out, k = [], 0
    for e in generated:
        ok = k < len(kept) and kept[k] is e
        k += ok
        out.append({"skill": e.skill, "subskill": e.subskill, "level": e.level, "prompt": e.prompt, "answer": e.answer, "kept": ok})
    return out


_ACCURACY_KEYS = ("accuracy", "accuracy_by_level", "test_accuracy", "test_accuracy_by_level", "test_mean_accuracy", "skill_rewards")


def run_recorded_episode(env: Any, policy: Any, path: str | Path | None, seed: int, run: dict[str, Any] | None = None,
                         on_step: Callable[[dict[str, Any], float], None] | None = None) -> dict[str, Any]:
    """One episode recorded to ``path`` (JSONL), resumed from the records already there.

    Parameters
    ----------
    env, policy
        A DataGen env and a policy (``act``/``observe``).
    path
        The episode file; records already in it (same ``run`` and ``seed``) are replayed. None:
        nothing is recorded.
    seed
        Seed of ``env.reset``.
    run
        What the header records about the run; a file with another header is an error.
    on_step
        Called with the info and the seconds of every step (replayed ones too).

    Returns
    -------
    dict
        ``infos`` (reset and steps), ``replayed`` iterations, ``resume_mismatches``, ``calls``
        (chat calls made live) and the live calls' ``prompt_tokens``, ``completion_tokens``, ``cost``.
    """
    import time

    header = json.loads(_dumps({"kind": "header", "format": EPISODE_FORMAT, "run": run or {}, "seed": int(seed)}))
    records: list[dict[str, Any]] = []
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        records = read_records(path, repair=True)
        if records and records[0] != header:
            raise ValueError(f"{path} records another run ({records[0]}); expected {header}. Remove it to start over.")
        if not records:
            append_record(path, header)
    done = [r for r in records[1:] if r["kind"] == "iteration"]
    if not isinstance(env.unwrapped.engine, RecordingEngine):
        env.unwrapped.engine = RecordingEngine(env.unwrapped.engine)
    engine = env.unwrapped.engine
    tapes = _transcripts(env.unwrapped, policy)
    totals = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "replayed": 0, "resume_mismatches": 0}
    obs, info = env.reset(seed=seed)
    infos = [dict(info, reward=0.0)]
    terminated = truncated = False
    t = 0
    while not (terminated or truncated):
        record = done[t] if t < len(done) else None
        for tape in tapes.values():
            tape.drain()
            if record is not None:
                tape.replay(c for c in record.get("calls", []) if c.get("who") == tape.who)
        t0 = time.perf_counter()
        before = len(env.unwrapped.train_data)
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        policy.observe(obs, reward, info)
        seconds = time.perf_counter() - t0
        calls = [c for tape in tapes.values() for c in tape.drain()]
        if record is not None:
            totals["replayed"] += 1
            if record.get("kept") != info.get("kept") or record["accuracy"].get("test_mean_accuracy") != info.get("test_mean_accuracy"):
                totals["resume_mismatches"] += 1
                logger.warning("%s: replayed iteration %d differs from its record (kept %s vs %s, test accuracy %s vs %s)",
                               path, t + 1, info.get("kept"), record.get("kept"), info.get("test_mean_accuracy"),
                               record["accuracy"].get("test_mean_accuracy"))
        else:
            totals["calls"] += len(calls)
            for key in ("prompt_tokens", "completion_tokens", "cost"):
                totals[key] += sum(c.get("usage", {}).get(key, 0) for c in calls)
        if record is None and path is not None:
            last = getattr(policy, "last", None)
            append_record(path, {
                "kind": "iteration", "iteration": t + 1, "action": action, "plan": last or None, "calls": calls,
                "items": _items(engine.last[: env.unwrapped.budget], env.unwrapped.train_data[before:]),
                "kept": info.get("kept"), "reward": float(reward),
                "accuracy": {k: info[k] for k in _ACCURACY_KEYS if k in info},
                "cells": getattr(env.unwrapped, "cell_accuracy", None),
                "engine": info.get("engine", {}), "seconds": round(seconds, 6),
            })
        infos.append(dict(info, reward=reward))
        if on_step is not None:
            on_step(info, seconds)
        t += 1
    return {"infos": infos, **totals}
