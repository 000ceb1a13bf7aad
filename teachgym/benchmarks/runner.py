"""Run benchmark runs in parallel processes, with a progress bar, skipping finished ones.

Each finished run is written atomically as one JSON file under ``OUT/runs/``; running the same
command again skips those and runs only what is missing. A file written by another
configuration is an error, never overwritten.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue as queue_mod
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from teachgym.io import write_json


def run_id(run: dict[str, Any]) -> str:
    """File-name-safe identifier of a run description."""
    raw = f"{run.get('student', 'grid')}-{run['variant']}__{run['teacher']}__seed{run['seed']}"
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", raw)


def _call(fn: Callable[..., dict], run: dict[str, Any], progress_queue: Any) -> dict[str, Any]:
    """Worker body: one thread per process, progress reported through the queue."""
    with threadpool_limits(1):
        return fn(**run, progress=progress_queue.put)


def load_finished(out: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result of ``run`` in ``out``, or None if it has not finished.

    Raises
    ------
    ValueError
        If a file for this run exists but is not a result of exactly this run description.
    """
    path = out / "runs" / f"{run_id(run)}.json"
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
        same = stored["run"] == json.loads(json.dumps(run))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a teachgym run result ({err}); remove it or choose another --out") from err
    if not same:
        raise ValueError(
            f"{path} holds a run with another configuration ({stored['run']}); "
            f"expected {run}. Use another --out, or remove the directory to start over."
        )
    return stored["result"]


def execute(
    fn: Callable[..., dict],
    runs: list[dict[str, Any]],
    out: str | os.PathLike,
    units: Callable[[dict[str, Any]], int],
    jobs: int | None = None,
    desc: str = "runs",
) -> list[dict[str, Any]]:
    """Run ``fn(**run, progress=...)`` for every run not already in ``out``; return all results.

    Parameters
    ----------
    fn
        Picklable top-level function; calls ``progress(k)`` after every ``k`` units of work.
    runs
        Run descriptions (JSON-able keyword arguments of ``fn``).
    out
        Results directory.
    units
        Units of work of a run (for the progress bar total).
    jobs
        Worker processes (default: one per core; 1 runs in this process).
    """
    out = Path(out)
    results: dict[int, dict[str, Any]] = {}
    todo = []
    for i, run in enumerate(runs):
        done = load_finished(out, run)
        if done is None:
            todo.append(i)
        else:
            results[i] = done
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=sum(units(runs[i]) for i in todo), desc=desc, unit="ep", unit_scale=True, smoothing=0.1)

    def finish(i: int, result: dict[str, Any]) -> None:
        write_json(out / "runs" / f"{run_id(runs[i])}.json", {"run": runs[i], "result": result})
        results[i] = result

    with bar:
        if jobs == 1:
            with threadpool_limits(1):
                for i in todo:
                    finish(i, fn(**runs[i], progress=bar.update))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Manager() as manager, ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
                progress = manager.Queue()
                pending = {pool.submit(_call, fn, runs[i], progress): i for i in todo}
                while pending:
                    finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(progress, bar)
                    for fut in finished:
                        finish(pending.pop(fut), fut.result())
                _drain(progress, bar)
    return [results[i] for i in range(len(runs))]


def _drain(progress: Any, bar: tqdm) -> None:
    while True:
        try:
            bar.update(progress.get_nowait())
        except queue_mod.Empty:
            return
