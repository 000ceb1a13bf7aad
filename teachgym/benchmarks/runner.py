"""Run a suite's runs in worker processes (or as Ray tasks), skipping the ones already finished.

A results directory ``OUT`` holds:

* ``suite.json`` — ``{"format": "teachgym-suite/1", "suite": NAME}``; marks the directory as a
  teachgym results directory of that suite.
* ``runs/<run_id>/curve.csv`` — the run's curve, one row per evaluation (columns named by the
  suite, e.g. ``episode,mastered_pct``), floats written exactly (shortest round-trip repr).
* ``runs/<run_id>/meta.json`` — ``{"format": "teachgym-run/1", "run_id", "suite", "run" (the run
  description: teacher, variant, seed, budget, ...), "seed", "result" (everything but the curve:
  seconds, final values), "curve_columns", "versions" (package versions), "git_commit", "host",
  "started", "finished"}``.
* ``work/<run_id>/`` — checkpoints of runs that resume part-way (RL runs); finished runs ignore it.
  ``work/chunk-<n>-<hash>/`` — the state of runs done together (a fleet of students), see ``chunks``.

:func:`teachgym.benchmarks.results.find_runs` reads every finished run of a directory (curve + metadata).

A run is written into a hidden temporary folder and renamed to ``runs/<run_id>`` in one step, so
a run folder is complete or absent: killing the runner (even with SIGKILL) loses at most the runs
in progress, which the same command then runs again. Workers die with the runner (Linux
parent-death signal, and a watchdog thread elsewhere). A run folder of another configuration, a
corrupt one, or a directory that is not a teachgym results directory is an error, and nothing in
it is touched. Run folders of the first format (``runs/<run_id>.json``) are still read.
"""

from __future__ import annotations

import csv
import ctypes
import hashlib
import io
import json
import multiprocessing as mp
import os
import platform
import queue as queue_mod
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from teachgym.io import fsync_folder, write_json, write_text

SUITE_FORMAT = "teachgym-suite/1"
RUN_FORMAT = "teachgym-run/1"
BACKENDS = ("local", "ray")
_TMP_PREFIX = ".tmp-"
_VERSIONED = ("teachgym", "numpy", "scipy", "scikit-learn", "torch", "pandas", "gymnasium", "stable-baselines3", "ray")

# Set once in each worker process by its initializer (the progress queue cannot be an argument).
_WORKER: dict[str, Any] = {}


def run_id(run: dict[str, Any]) -> str:
    """File-name-safe identifier of a run description."""
    raw = f"{run.get('student', 'grid')}-{run['variant']}__{run['teacher']}__seed{run['seed']}"
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", raw)


# --------------------------------------------------------------------------- the directory
def claim_directory(out: Path, suite: str) -> list[Path]:
    """Check that ``out`` is absent, empty or a results directory of ``suite``; mark it as ours.

    Returns the folders this call created (``out`` and missing parents, deepest first).

    Raises
    ------
    ValueError
        For a corrupt ``suite.json``, another suite's directory, or a non-empty directory that
        is not a teachgym results directory (nothing in it is changed).
    """
    marker = out / "suite.json"
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a results directory; choose another --out")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{parent} is a file, so {out} cannot be a results directory; choose another --out")
    if marker.exists():
        try:
            stored = json.loads(marker.read_text())
            fmt, name = stored["format"], stored["suite"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{marker} is corrupt ({err!r}); remove it or choose another --out") from err
        if fmt != SUITE_FORMAT:
            raise ValueError(f"{out} holds results of format {fmt!r}, not {SUITE_FORMAT!r}; choose another --out")
        if name != suite:
            raise ValueError(f"{out} holds results of the {name!r} suite, not {suite!r}; choose another --out")
        return []
    if out.exists() and any(out.iterdir()) and not _legacy(out):
        raise ValueError(
            f"{out} is not empty and is not a teachgym results directory (no suite.json); "
            "choose another --out"
        )
    created = [d for d in (out, *out.parents) if not d.exists()]
    try:
        write_json(marker, {"format": SUITE_FORMAT, "suite": suite})
    except OSError:
        _remove_folders(created)  # nothing half-made: the folders this call created go again
        raise
    return created


def _remove_folders(folders: list[Path]) -> None:
    """Remove empty folders, deepest first, stopping at the first that is not empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def release_directory(out: Path, created: list[Path]) -> None:
    """Undo :func:`claim_directory` after a failure, if the directory was new and holds no file
    but its ``suite.json``: a failed first command leaves nothing behind. A directory with
    anything in it (a finished run, a checkpoint to resume from) is kept."""
    if not created:
        return
    files = [Path(root) / f for root, _, names in os.walk(out) for f in names]
    if files != [out / "suite.json"]:
        return
    try:
        (out / "suite.json").unlink()
        for root, _, _ in sorted(os.walk(out), key=lambda entry: -len(entry[0])):  # deepest first
            if Path(root) != out:
                Path(root).rmdir()
    except OSError:
        return  # another runner started on it meanwhile: its business now
    _remove_folders(created)


def _legacy(out: Path) -> bool:
    """True for a results directory of the first format (``runs/*.json``, no ``suite.json``)."""
    runs = out / "runs"
    return runs.is_dir() and any(p.suffix == ".json" for p in runs.iterdir())


def _clean_stale(out: Path) -> None:
    """Remove temporary run folders left by runners that are no longer alive."""
    runs = out / "runs"
    if not runs.is_dir():
        return
    for p in runs.iterdir():
        m = re.match(re.escape(_TMP_PREFIX) + r".*-pid(\d+)-", p.name)
        if p.is_dir() and m and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------- reading a run
def load_finished(out: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result of ``run`` in ``out`` (curve columns as lists), or None if absent.

    Raises
    ------
    ValueError
        If a folder (or first-format file) for this run exists but is corrupt or holds a run
        of another description.
    """
    folder = out / "runs" / run_id(run)
    legacy = out / "runs" / f"{run_id(run)}.json"
    if folder.exists():
        meta_path = folder / "meta.json"
        try:
            meta = json.loads(meta_path.read_text())
            if meta["format"] != RUN_FORMAT:
                raise ValueError(f"format {meta['format']!r}, expected {RUN_FORMAT!r}")
            stored_run, result = meta["run"], dict(meta["result"])
            result.update(read_curve(folder / "curve.csv"))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{folder} is not a complete teachgym run ({err}); remove it or choose another --out") from err
    elif legacy.exists():
        try:
            stored = json.loads(legacy.read_text())
            stored_run, result = stored["run"], stored["result"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{legacy} is not a teachgym run result ({err}); remove it or choose another --out") from err
    else:
        return None
    if stored_run != json.loads(json.dumps(run)):
        raise ValueError(
            f"{folder} holds a run with another configuration ({stored_run}); expected {run}. "
            "Use another --out, or remove the directory to start over."
        )
    return result


def read_curve(path: Path) -> dict[str, list[Any]]:
    """The columns of a ``curve.csv`` as lists (integers stay integers, floats are exact)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path} is empty")
    header, body = rows[0], rows[1:]
    if any(len(r) != len(header) for r in body):
        raise ValueError(f"{path} has rows of the wrong length")
    return {name: [_number(r[j]) for r in body] for j, name in enumerate(header)}


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


# ------------------------------------------------------------------------- writing a run
def _provenance() -> dict[str, Any]:
    """Package versions, git commit and host, once per suite invocation."""
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    versions["python"] = platform.python_version()
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    return {"versions": versions, "git_commit": (commit + "-dirty" if commit and dirty else commit) or None,
            "host": socket.gethostname()}


def write_run(out: Path, suite: str, run: dict[str, Any], result: dict[str, Any], curve: Sequence[str],
              provenance: dict[str, Any], started: str) -> None:
    """Write ``runs/<run_id>/{curve.csv,meta.json}`` through a temporary folder renamed in one step."""
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # os.mkdir, not mkdtemp: the folder keeps its mode after the rename, so it gets the umask's
    # default (mkdtemp's 0700 would hide the run from the other users of a shared folder).
    tmp = runs / f"{_TMP_PREFIX}{run_id(run)}-pid{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        columns = [c for c in curve if c in result]
        if len({len(result[c]) for c in columns}) > 1:
            raise ValueError(f"curve columns {columns} of run {run_id(run)} differ in length")
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*(result[c] for c in columns)))
        write_text(tmp / "curve.csv", text.getvalue())
        meta = {
            "format": RUN_FORMAT, "run_id": run_id(run), "suite": suite, "run": run, "seed": run.get("seed"),
            "result": {k: v for k, v in result.items() if k not in columns}, "curve_columns": columns,
            **provenance, "started": started, "finished": _now(),
        }
        write_json(tmp / "meta.json", meta)
        try:
            os.rename(tmp, runs / run_id(run))  # atomic
            fsync_folder(runs)
        except OSError:
            if not (runs / run_id(run)).is_dir():
                raise
            # Another runner on the same directory finished this run first: keep its folder
            # (load_finished then checks that it is the same run).
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- workers
def _init_worker(progress: Any, parent: int) -> None:
    """Worker initializer: die with the runner, keep the progress queue, one thread."""
    _die_with_parent(parent)
    _WORKER["progress"] = progress


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:  # PR_SET_PDEATHSIG: the kernel kills this process when its parent dies
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)  # the parent died before the signal was armed

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _call(fn: Callable[..., dict], run: dict[str, Any]) -> dict[str, Any]:
    """Worker body: one thread per process, progress reported through the queue."""
    with threadpool_limits(1):
        return fn(**run, progress=_WORKER["progress"].put)


def _call_ray(fn: Callable[..., dict], run: dict[str, Any]) -> dict[str, Any]:
    """Ray task body: one thread, no intermediate progress."""
    with threadpool_limits(1):
        return fn(**run)


# ------------------------------------------------------------------------------ execute
def execute(
    fn: Callable[..., dict],
    runs: list[dict[str, Any]],
    out: str | os.PathLike,
    units: Callable[[dict[str, Any]], int],
    jobs: int | None = None,
    desc: str = "runs",
    curve: Sequence[str] = (),
    suite: str | None = None,
    backend: str = "local",
    work: bool = False,
    unit: str = "ep",
    chunks: Sequence[Sequence[int]] | None = None,
) -> list[dict[str, Any]]:
    """Run ``fn(**run, progress=...)`` for every run not already in ``out``; return all results.

    Parameters
    ----------
    fn
        Picklable top-level function returning a JSON-able dict; calls ``progress(k)`` after
        every ``k`` units of work (``progress`` may be None).
    runs
        Run descriptions (JSON-able keyword arguments of ``fn``; ``seed``, ``teacher``,
        ``variant`` and optionally ``student`` name the run).
    out
        Results directory.
    units
        Units of work of a run (for the progress bar total).
    jobs
        Worker processes (default: one per core; 1 runs in this process), or Ray CPUs of a
        local Ray cluster.
    curve
        Keys of the result whose equal-length lists go to ``curve.csv``.
    suite
        Name recorded in ``suite.json`` (default: ``desc``).
    backend
        ``"local"`` (process pool) or ``"ray"`` (Ray tasks, ``RAY_ADDRESS`` or a local cluster).
    unit
        What ``units`` counts, for the progress bar (``"ep"``, ``"step"``, ``"it"``).
    work
        Pass ``work_dir=OUT/work/<run_id>`` to ``fn`` (not part of the description): a folder
        that survives a killed runner, for runs that checkpoint and resume. With Ray on several
        machines it must be on a shared file system.
    chunks
        Runs done together (e.g. a fleet of students trained in lockstep): lists of indices into
        ``runs``, each run in exactly one. Each chunk with an unfinished run is one call
        ``fn(runs=[...], work_dirs=[...], chunk_dir=..., progress=...)`` (needs ``work``): the
        runs' work folders as above and ``OUT/work/<chunk_id>`` for the chunk's own state; it returns
        one result per run, and each run is written as a run done alone would be (a run of the
        chunk already finished keeps its stored result). A chunk whose runs are all finished is
        skipped.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {list(BACKENDS)}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive integer (or None: one per CPU), got {jobs!r}")
    out, suite = Path(out), suite or desc
    ids: dict[str, dict[str, Any]] = {}
    for run in runs:
        if ids.setdefault(run_id(run), run) != run:
            raise ValueError(f"two runs share the id {run_id(run)!r} but differ: {ids[run_id(run)]} and {run}")
    if chunks is not None:
        flat = sorted(i for chunk in chunks for i in chunk)
        if flat != list(range(len(runs))) or not all(chunks):
            raise ValueError(f"chunks must split the {len(runs)} runs: each run index in exactly one non-empty chunk")
        if not work:
            raise ValueError("chunks keep their state in work folders: pass work=True")
    created = claim_directory(out, suite)
    try:
        return _execute(fn, runs, out, units, jobs, desc, curve, suite, backend, work, unit, chunks)
    except BaseException:
        release_directory(out, created)
        raise


def _execute(fn: Callable[..., dict], runs: list[dict[str, Any]], out: Path, units: Callable[[dict[str, Any]], int],
             jobs: int | None, desc: str, curve: Sequence[str], suite: str, backend: str, work: bool,
             unit: str, chunks: Sequence[Sequence[int]] | None = None) -> list[dict[str, Any]]:
    """:func:`execute` once the directory is claimed."""
    _clean_stale(out)
    results: dict[int, dict[str, Any]] = {}
    todo = []
    for i, run in enumerate(runs):
        done = load_finished(out, run)
        if done is None:
            todo.append(i)
        else:
            results[i] = done
    provenance = _provenance() if todo else {}
    started = _now()

    def work_dir(i: int) -> str:
        return str(out / "work" / run_id(runs[i]))

    def finish(i: int, result: dict[str, Any]) -> None:
        write_run(out, suite, runs[i], result, curve, provenance, started)
        results[i] = load_finished(out, runs[i])  # what a later invocation will read, exactly

    if chunks is None:
        groups = [[i] for i in todo]
        calls = {g: {**runs[i], **({"work_dir": work_dir(i)} if work else {})} for g, (i,) in enumerate(groups)}

        def done(g: int, result: dict[str, Any]) -> None:
            finish(groups[g][0], result)
    else:
        groups = [list(chunk) for chunk in chunks if any(i not in results for i in chunk)]
        calls = {g: {"runs": [runs[i] for i in chunk], "work_dirs": [work_dir(i) for i in chunk],
                     "chunk_dir": str(out / "work" / chunk_id([runs[i] for i in chunk]))}
                 for g, chunk in enumerate(groups)}

        def done(g: int, result: Any) -> None:
            if not isinstance(result, list) or len(result) != len(groups[g]):
                raise ValueError(f"a chunk of {len(groups[g])} runs returned {type(result).__name__} "
                                 f"{len(result) if isinstance(result, list) else ''}; expected one result per run")
            for i, one in zip(groups[g], result):
                if i not in results:
                    finish(i, one)

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(groups) or 1))
    size = {g: sum(units(runs[i]) for i in group) for g, group in enumerate(groups)}
    bar = tqdm(total=sum(size.values()), desc=desc, unit=unit, unit_scale=True, smoothing=0.1)
    with bar:
        if backend == "ray":
            _execute_ray(fn, calls, done, lambda g: bar.update(size[g]), jobs)
        elif jobs == 1:
            with threadpool_limits(1):
                for g, kwargs in calls.items():
                    done(g, fn(**kwargs, progress=bar.update))
        else:
            _execute_pool(fn, calls, done, bar, jobs)
    return [results[i] for i in range(len(runs))]


def chunk_id(runs: Sequence[dict[str, Any]]) -> str:
    """File-name-safe identifier of a chunk of runs done together (its work folder's name)."""
    digest = hashlib.sha1("\n".join(run_id(r) for r in runs).encode()).hexdigest()[:12]
    return f"chunk-{len(runs)}-{digest}"


def _execute_pool(fn: Callable[..., dict], calls: dict[int, dict[str, Any]],
                  finish: Callable[[int, dict[str, Any]], None], bar: tqdm, jobs: int) -> None:
    ctx = mp.get_context("spawn")
    progress = ctx.Queue()
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(progress, os.getpid()))
    try:
        pending = {pool.submit(_call, fn, kwargs): i for i, kwargs in calls.items()}
        while pending:
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress, bar)
            for fut in finished:
                finish(pending.pop(fut), fut.result())
        _drain(progress, bar)
        pool.shutdown()
    except BaseException:
        # Ctrl-C or a failed run: stop the others now rather than after they finish.
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            p.kill()
        raise
    finally:
        progress.close()
        progress.join_thread()


def _execute_ray(fn: Callable[..., dict], calls: dict[int, dict[str, Any]],
                 finish: Callable[[int, dict[str, Any]], None], advance: Callable[[int], None], jobs: int) -> None:
    try:
        import ray
    except ImportError as err:
        raise ValueError("--backend ray needs ray: pip install 'teachgym[ray]'") from err
    started_here = not ray.is_initialized()
    if started_here:
        address = os.environ.get("RAY_ADDRESS")
        # Without RAY_ADDRESS, a local cluster with ``jobs`` CPUs (one task per CPU).
        ray.init(address=address, num_cpus=None if address else jobs, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_call_ray)
        pending = {task.remote(fn, kwargs): i for i, kwargs in calls.items()}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in done:
                i = pending.pop(ref)
                finish(i, ray.get(ref))
                advance(i)
    finally:
        if started_here:
            ray.shutdown()


def _drain(progress: Any, bar: tqdm) -> None:
    while True:
        try:
            bar.update(progress.get_nowait())
        except queue_mod.Empty:
            return
