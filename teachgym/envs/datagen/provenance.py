"""Provenance of a data-generation episode, one JSONL record per iteration, and resuming from it.

:func:`run_recorded_episode` runs an episode and appends to ``path``, after the reset and after
every step, one whole line (written with a single ``write`` and ``fsync``): a header
``{"kind": "header", "format": "teachgym-episode/1", "run": ..., "seed": ...}``, then per
iteration ``{"kind": "iteration", "iteration", "action" (the env's action as JSON), "plan" (the
LLM policy's checked plan, whether it was the fallback, its errors), "calls" (every chat call:
prompt, raw reply, tokens, cost, seconds), "items" (each generated example and whether the
quality check kept it), "kept", "reward", "accuracy" (the info's per-skill and per-(skill,
difficulty) accuracies, validation and test), "cells" (validation accuracy per (skill, subskill,
difficulty)), "engine" (the engine's counters), "info" (the rest of the step's info: generated,
dropped, off_plan, invalid_specs, train_size, train_steps, verify), "seconds"}``.

Checkpoints: after each iteration whose record is written (and each replayed one that agrees with
its record) the state of the env, its student and the policy is saved to one ``.npz`` file beside
the records (``episode.jsonl`` -> ``episode.checkpoint.npz``; :func:`teachgym.io.save_state`:
written atomically, no pickle), replacing the previous one: the student's weights (a LoRA
student's adapter only), its optimiser state and generator, the env's generator, data, skill
trees and accuracies, the policy's ``state_dict`` and the info of the episode's reset. It names
the format, the run's header, its iteration and the SHA-256 of that iteration's record.

Resuming: a killed process leaves whole records and at most one truncated last line, which
:func:`read_records` drops (and the next append cuts off). If the checkpoint matches (format,
header, an iteration that has a record, that record's digest, the env's settings, the student's
class, settings and tensors, the policy's state), the env is reset into it
(``reset(seed=..., options={"state": ...})``: the student is built from the seed, then loaded;
nothing is evaluated) and the episode continues from it: its iterations are neither recomputed
nor asked again, their infos are read back from the records (``restored``). A checkpoint that does not match, or
cannot be read, is ignored, with the reason logged as a warning (and in the result's
``checkpoint_ignored``), never used. Iterations with a record past the checkpoint (or all of
them, without a usable one) are replayed: the recorded chat replies answer the policy's and the
engine's calls (no model is asked twice; a template engine and the student's training are
recomputed, exactly so on CPU), each replayed iteration is compared with its record (kept
examples, test accuracy; a difference is logged and counted as ``resume_mismatches``). The episode
then continues live from the first iteration without a record. A policy or student without
``state_dict`` is never checkpointed (logged once): its episodes resume by replay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from teachgym.envs.datagen.engines import read_json
from teachgym.envs.datagen.transcript import Transcript
from teachgym.io import _plain, load_state, save_state

logger = logging.getLogger(__name__)

EPISODE_FORMAT = "teachgym-episode/1"
CHECKPOINT_FORMAT = "teachgym-episode-checkpoint/1"
#: What a checkpoint that does not fit raises while it is checked and loaded (it is then ignored).
_UNFIT = (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError)
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
    """An engine that keeps what it generated since the last :meth:`take` (for the record's items):
    the env asks once per specification, so one step is several batches."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.batches: list[list[Any]] = []

    def generate(self, specs: Sequence[Any], rng: np.random.Generator) -> tuple[list[Any], dict[str, Any]]:
        out, stats = self.inner.generate(specs, rng)
        # The env keeps at most what each specification asked for; the rest is never checked.
        self.batches.append(list(out[: sum(int(s.count) for s in specs)]))
        return out, stats

    def take(self) -> list[Any]:
        """Every example generated since the last call, in order; forgets them."""
        items = [e for batch in self.batches for e in batch]
        self.batches = []
        return items

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
        # A kept example may be a copy with its answer in the templates' form (Domain.canonical).
        ok = k < len(kept) and (kept[k] is e or _same_item(kept[k], e))
        item = {"skill": e.skill, "subskill": e.subskill, "level": e.level, "prompt": e.prompt, "answer": e.answer, "kept": ok}
        if ok and kept[k].answer != e.answer:
            item["kept_answer"] = kept[k].answer
        k += ok
        out.append(item)
    return out


def _same_item(a: Any, b: Any) -> bool:
    return (a.skill, a.subskill, a.level, a.prompt) == (b.skill, b.subskill, b.level, b.prompt)


_ACCURACY_KEYS = ("accuracy", "accuracy_by_level", "test_accuracy", "test_accuracy_by_level", "test_mean_accuracy", "skill_rewards")
#: The rest of a step's info that a record keeps (a restored iteration's info is read back from its record).
_INFO_KEYS = ("generated", "dropped", "off_plan", "invalid_specs", "train_size", "train_steps", "verify")


def info_of_record(record: dict[str, Any]) -> dict[str, Any]:
    """The info of the step an iteration record was written for (accuracies as float64 arrays).

    Raises ``ValueError`` for a record without all of it (one written by teachgym before checkpoints).
    """
    accuracy, rest = record.get("accuracy"), record.get("info")
    if not isinstance(accuracy, dict) or not isinstance(rest, dict) or set(_ACCURACY_KEYS) - set(accuracy) or set(_INFO_KEYS) - set(rest):
        raise ValueError(f"record {record.get('iteration')} does not hold its whole info (written before checkpoints)")
    try:
        arrays = {k: np.asarray(accuracy[k], dtype=np.float64) for k in _ACCURACY_KEYS if k != "test_mean_accuracy"}
        return {"iteration": int(record["iteration"]), **arrays, "test_mean_accuracy": float(accuracy["test_mean_accuracy"]),
                "kept": int(record["kept"]), "engine": dict(record["engine"]), **{k: rest[k] for k in _INFO_KEYS}}
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"record {record.get('iteration')}: malformed info ({err})") from None


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of a record's JSON (as read back from its line)."""
    return hashlib.sha256(_dumps(record).encode()).hexdigest()


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint beside an episode file: ``episode.jsonl`` -> ``episode.checkpoint.npz``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.checkpoint.npz")


class Checkpoints:
    """The checkpoint of a recorded episode: written after an iteration, checked and restored on resume.

    Parameters
    ----------
    path
        The episode file (None: no checkpoint).
    header
        The episode's header record (a checkpoint of another run is not used).
    env, policy
        The episode's env (DataGen, ``state_dict``/``load_state_dict``) and policy.
    """

    def __init__(self, path: Path | None, header: dict[str, Any], env: Any, policy: Any) -> None:
        self.file = checkpoint_path(path) if path is not None else None
        self.header, self.env, self.policy = header, env, policy
        self.off: str | None = None  # why no checkpoint is written
        if self.file is not None and not (callable(getattr(policy, "state_dict", None)) and callable(getattr(policy, "load_state_dict", None))):
            self._turn_off(f"the policy ({type(policy).__name__}) has no state_dict()/load_state_dict()")

    def _turn_off(self, reason: str) -> None:
        self.off = reason
        logger.info("%s: no checkpoints (%s); a resumed episode replays its iterations", self.file, reason)

    def save(self, iteration: int, record: dict[str, Any], reset_info: dict[str, Any]) -> None:
        """Replace the checkpoint by the state after ``iteration`` (whose record is ``record``)."""
        if self.file is None or self.off is not None:
            return
        try:
            env = self.env.unwrapped.state_dict()
        except ValueError as err:  # a student of one's own without state_dict
            self._turn_off(str(err))
            return
        save_state(self.file, {"format": CHECKPOINT_FORMAT, "header": self.header, "iteration": iteration,
                               "record": record_digest(record), "reset_info": {k: v for k, v in reset_info.items() if k != "reward"},
                               "env": env, "policy": {"kind": type(self.policy).__name__, "state": self.policy.state_dict()}})

    def restore(self, done: list[dict[str, Any]], seed: int) -> tuple[int, str | None, Any, dict[str, Any]]:
        """Reset the env and continue it and the policy from the checkpoint: the iteration it is of
        (0: not used, the env reset anew), why it was ignored (None: used, or there is none), the
        observation and the info of the reset."""
        if self.file is None or self.off is not None or not done or not self.file.exists():
            return (0, None, *self.env.reset(seed=seed))
        try:
            state = load_state(self.file)
            k = self._check(state, done)
            reset_info = self._reset_info(state.get("reset_info"))
            backup = self.policy.state_dict()
            self.policy.load_state_dict(state["policy"]["state"])
            try:
                obs, _ = self.env.reset(seed=seed, options={"state": state["env"]})
            except _UNFIT:
                self.policy.load_state_dict(backup)
                raise
        except _UNFIT as err:
            reason = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            logger.warning("%s: checkpoint ignored (%s); replaying the recorded iterations instead", self.file, reason)
            return (0, reason, *self.env.reset(seed=seed))
        return k, None, obs, reset_info

    def _reset_info(self, value: Any) -> dict[str, Any]:
        """The info of the episode's reset, as the checkpoint keeps it; ``ValueError`` if malformed."""
        env = self.env.unwrapped
        shapes = {"accuracy": (env.domain.n_skills,), "accuracy_by_level": (env.domain.n_skills, env.domain.n_levels)}
        shapes.update({f"test_{k}": v for k, v in shapes.items()})
        if not isinstance(value, dict) or set(value) != {*shapes, "iteration", "test_mean_accuracy"} or value["iteration"] != 0 \
                or not isinstance(value["test_mean_accuracy"], float):
            raise ValueError("its reset info is malformed")
        for key, shape in shapes.items():
            if not isinstance(value[key], np.ndarray) or value[key].shape != shape or value[key].dtype != np.float64:
                raise ValueError(f"its reset info's {key} is malformed")
        return value

    def _check(self, state: dict[str, Any], done: list[dict[str, Any]]) -> int:
        """The checkpoint's iteration, if it belongs to these records; ``ValueError`` saying why not."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"format {state.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        if state.get("header") != self.header:
            raise ValueError(f"it is of another run ({state.get('header')})")
        k = state.get("iteration")
        if type(k) is not int or not 1 <= k <= len(done):
            raise ValueError(f"it is of iteration {k!r}, the records hold iterations 1..{len(done)}")
        if state.get("record") != record_digest(done[k - 1]):
            raise ValueError(f"it does not match record {k} (another episode's checkpoint, or the records changed)")
        policy = state.get("policy")
        if not isinstance(policy, dict) or policy.get("kind") != type(self.policy).__name__ or "state" not in policy:
            raise ValueError(f"it is of another policy ({policy.get('kind') if isinstance(policy, dict) else policy!r}), "
                             f"this one is a {type(self.policy).__name__}")
        for record in done[:k]:
            info_of_record(record)
        return k


def run_recorded_episode(env: Any, policy: Any, path: str | Path | None, seed: int, run: dict[str, Any] | None = None,
                         on_step: Callable[[dict[str, Any], float], None] | None = None) -> dict[str, Any]:
    """One episode recorded to ``path`` (JSONL) with its checkpoint, resumed from what is already there.

    Parameters
    ----------
    env, policy
        A DataGen env and a policy (``act``/``observe``; ``state_dict``/``load_state_dict`` to
        be checkpointed).
    path
        The episode file; records already in it (same ``run`` and ``seed``) are restored from
        the checkpoint beside it (:func:`checkpoint_path`) or replayed. None: nothing is recorded.
    seed
        Seed of ``env.reset``.
    run
        What the header records about the run; a file with another header is an error.
    on_step
        Called with the info and the seconds of every step (restored ones with their recorded
        seconds, replayed ones too).

    Returns
    -------
    dict
        ``infos`` (reset and steps), ``restored`` iterations (from the checkpoint),
        ``checkpoint_ignored`` (why a checkpoint was not used, or None), ``replayed`` iterations,
        ``resume_mismatches``, ``calls`` (chat calls made live) and the live calls'
        ``prompt_tokens``, ``completion_tokens``, ``cost``.
    """
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
    checkpoints = Checkpoints(path, header, env, policy)
    totals = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "restored": 0, "checkpoint_ignored": None,
              "replayed": 0, "resume_mismatches": 0}
    t, totals["checkpoint_ignored"], obs, info = checkpoints.restore(done, seed)
    totals["restored"] = t
    infos = [dict(info, reward=0.0)]
    for record in done[:t]:  # restored: neither recomputed nor asked again
        info = info_of_record(record)
        infos.append(dict(info, reward=float(record["reward"])))
        if on_step is not None:
            on_step(info, float(record.get("seconds", 0.0)))
    terminated, truncated, agreed = t >= env.unwrapped.iterations, False, True
    while not (terminated or truncated):
        record = done[t] if t < len(done) else None
        for tape in tapes.values():
            tape.drain()
            if record is not None:
                tape.replay(c for c in record.get("calls", []) if c.get("who") == tape.who)
        t0 = time.perf_counter()
        before = len(env.unwrapped.train_data)
        engine.take()  # only this step's batches go in its record
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        policy.observe(obs, reward, info)
        seconds = time.perf_counter() - t0
        calls = [c for tape in tapes.values() for c in tape.drain()]
        if record is not None:
            totals["replayed"] += 1
            if record.get("kept") != info.get("kept") or record["accuracy"].get("test_mean_accuracy") != info.get("test_mean_accuracy"):
                totals["resume_mismatches"] += 1
                agreed = False  # no checkpoint of a state that left its records
                logger.warning("%s: replayed iteration %d differs from its record (kept %s vs %s, test accuracy %s vs %s)",
                               path, t + 1, info.get("kept"), record.get("kept"), info.get("test_mean_accuracy"),
                               record["accuracy"].get("test_mean_accuracy"))
            elif agreed:
                checkpoints.save(t + 1, record, infos[0])
        else:
            totals["calls"] += len(calls)
            for key in ("prompt_tokens", "completion_tokens", "cost"):
                totals[key] += sum(c.get("usage", {}).get(key, 0) for c in calls)
        if record is None and path is not None:
            last = getattr(policy, "last", None)
            record = json.loads(_dumps({
                "kind": "iteration", "iteration": t + 1, "action": action, "plan": last or None, "calls": calls,
                "items": _items(engine.take()[: env.unwrapped.budget], env.unwrapped.train_data[before:]),
                "kept": info.get("kept"), "reward": float(reward),
                "accuracy": {k: info[k] for k in _ACCURACY_KEYS if k in info},
                "info": {k: info[k] for k in _INFO_KEYS if k in info},
                "cells": getattr(env.unwrapped, "cell_accuracy", None),
                "engine": info.get("engine", {}), "seconds": round(seconds, 6),
            }))
            append_record(path, record)
            checkpoints.save(t + 1, record, infos[0])
        infos.append(dict(info, reward=reward))
        if on_step is not None:
            on_step(info, seconds)
        t += 1
    return {"infos": infos, **totals}
