"""Read a results directory into one long table, whatever wrote it.

``load_results(run_dir)`` returns one row per (run, evaluation point, metric) with the columns
:data:`COLUMNS`: ``suite``, ``challenge`` (student family and variant, e.g. ``grid/rugged``),
``teacher``, ``seed``, ``x`` (the time axis value), ``x_name`` (``episode``, ``step`` or
``iteration``), ``metric`` and ``value``. Three layouts are recognised, anywhere under ``run_dir``:

1. **Runner JSON** (``teachgym bench toy`` / ``datagen``): ``runs/<run_id>.json`` holding
   ``{"run": {"student", "variant", "teacher", "seed", ...}, "result": {...}}``. The time axis
   is the first list among ``episode``/``step``/``iteration`` in ``result`` (the index of the
   curve when there is none); every other list of numbers as long as it is a metric.
2. **Per-run folder** (the runner's ``runs/<run_id>/``, format ``teachgym-run/1``): ``meta.json``
   beside ``curve.csv`` (or ``curve.parquet``). ``meta.json`` holds ``teacher``, ``seed`` and
   either ``challenge`` or ``student`` + ``variant`` (at the top level or under ``"run"``), and
   optionally ``suite`` and ``result`` (non-curve values). The curve is wide: the time column (first of
   ``episode``/``step``/``iteration``, else the first column) and one numeric column per metric.
3. **Training folder** (``teachgym train``): ``run.json`` (``{"config": {...}}``) beside
   ``eval.csv``; suite ``train``, challenge = env id without namespace (and ``body`` if given).

Optional extras, used by the plots when present:

* **sampled-task counts** — ``teacher.csv`` in a run folder (``step`` + ``hist_<dim>`` columns,
  space-separated counts in equal bins over the task bounds, as ``teachgym train`` writes; the
  bounds from ``run.json``'s ``task_space``, or the stored teacher's), or in
  a run's ``result`` (runner JSON, or ``meta.json``'s ``result``): ``task_counts`` (``[period][dim][bin]`` counts of the tasks sampled
  since the previous evaluation, one period per curve point after the first), ``task_low``,
  ``task_high`` and ``task_names``. :func:`teachgym.spaces.count_tasks` computes the counts.
* **teacher state** — ``teacher.npz`` (:func:`teachgym.io.save_state` of ``state_dict()``) in a
  run folder, ``runs/<run_id>.teacher.npz`` beside a runner JSON, the latest checkpoint of a
  training folder (or its ``teacher.npz``: a fleet member's, ``teachgym train --fleet``), or a
  slim ``teacher_state`` in the result (``{"teacher": name, "task_space":
  task_space.describe(), "state": {"mixture": mixture.to_dict()}}``). GMM mixtures are drawn
  from it.

Anything that is not one of these — a JSON that is not a run, a CSV without numbers, a folder with
no run at all — raises ``ValueError`` naming the file; nothing is ever written here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from teachgym.io import load_state

#: Columns of :func:`load_results`.
COLUMNS = ("suite", "challenge", "teacher", "seed", "x", "x_name", "metric", "value")
#: Names of a time axis, in order of preference.
X_NAMES = ("episode", "step", "iteration")
#: Metrics preferred as "the" score of a run (the first present is the default).
PREFERRED_METRICS = ("mastered_pct", "test_accuracy", "accuracy", "mean_return", "return")
#: Curve columns that are bookkeeping, not scores.
NON_METRICS = frozenset({"episodes", "wall_s", "wall_seconds", "teacher_seconds"})
_SKIP_DIRS = {"checkpoints", "tb", "report", ".ipynb_checkpoints"}


@dataclass
class TaskCounts:
    """How often a teacher sampled each part of the task space, per evaluation period."""

    x: np.ndarray  # (periods,) time at the end of each period
    counts: np.ndarray  # (periods, dims, bins)
    low: np.ndarray  # (dims,) bounds the bins span (0 and 1 when unknown)
    high: np.ndarray
    names: tuple[str, ...]
    start: float = 0.0  # time at the start of the first period


@dataclass
class Run:
    """One run found in a results directory: its identity, curve and optional extras."""

    suite: str
    challenge: str
    teacher: str
    seed: int
    x_name: str
    curve: pd.DataFrame  # columns: x, then one per metric
    source: Path
    task_counts: TaskCounts | None = None
    state_path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    inline_state: dict[str, Any] | None = None  # a slim state stored in the result itself

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.suite, self.challenge, self.teacher, self.seed)

    def teacher_state(self) -> dict[str, Any] | None:
        """The stored teacher ``state_dict`` (None when the run stored none)."""
        if self.state_path is not None:
            return load_state(self.state_path)
        return self.inline_state if isinstance(self.inline_state, dict) else None


def find_runs(run_dir: str | os.PathLike) -> list[Run]:
    """Every run under ``run_dir`` (see the module docstring for the layouts).

    A run found both as a folder and as a runner JSON counts once (the folder wins).

    Raises
    ------
    ValueError
        If ``run_dir`` is not a directory, holds no run, or a run's files are corrupt.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory; expected a teachgym results directory")
    runs: dict[tuple[str, str, str, int], Run] = {}
    jsons: list[Run] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        if "suite.json" in files and "work" in dirs:
            dirs.remove("work")  # the runner's half-finished RL runs; finished ones are under runs/
        here = Path(folder)
        if "meta.json" in files:
            _add(runs, _read_folder_run(here))
        elif "run.json" in files and "eval.csv" in files:
            _add(runs, _read_train_run(here))
        if here.name == "runs":
            jsons += [_read_json_run(here / f) for f in sorted(files) if f.endswith(".json") and not f.startswith(".")]
    for run in jsons:
        runs.setdefault(run.key, run)
    if not runs:
        raise ValueError(
            f"{root} holds no teachgym run: expected runs/*.json (teachgym bench toy/datagen), "
            "folders with meta.json + curve.csv, or run.json + eval.csv (teachgym train)"
        )
    return sorted(runs.values(), key=lambda r: r.key)


def load_results(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Every run's curve under ``run_dir`` as one long table (columns :data:`COLUMNS`).

    Raises
    ------
    ValueError
        If ``run_dir`` holds no run or a corrupt/foreign one.
    """
    return runs_table(find_runs(run_dir))


def runs_table(runs: list[Run]) -> pd.DataFrame:
    """The long table of already-found runs."""
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    for run in runs:  # plain lists: one DataFrame at the end is ~10x faster than a melt per run
        x = run.curve["x"].to_numpy(float)
        for metric in run.curve.columns[1:]:
            n = len(x)
            for name, value in (("suite", run.suite), ("challenge", run.challenge), ("teacher", run.teacher),
                                ("seed", run.seed), ("x_name", run.x_name), ("metric", metric)):
                cols[name].append(np.full(n, value, dtype=object if name != "seed" else np.int64))
            cols["x"].append(x)
            cols["value"].append(run.curve[metric].to_numpy(float))
    table = pd.DataFrame({c: np.concatenate(v) for c, v in cols.items()})
    return table.astype({c: str for c in ("suite", "challenge", "teacher", "x_name", "metric")})


def default_metric(table: pd.DataFrame) -> str:
    """The metric the statistics use unless told otherwise (see :data:`PREFERRED_METRICS`)."""
    present = list(dict.fromkeys(table["metric"]))
    for name in PREFERRED_METRICS:
        if name in present:
            return name
    return present[0]


# ----------------------------------------------------------------------------- readers


def _add(runs: dict, run: Run) -> None:
    if run.key in runs:
        raise ValueError(f"{run.source} and {runs[run.key].source} are the same run {run.key}")
    runs[run.key] = run


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); not a teachgym results file") from err


def _identity(meta: dict[str, Any], path: Path, suite: str) -> tuple[str, str, str, int]:
    """(suite, challenge, teacher, seed) from a run description; ValueError if incomplete."""
    try:
        challenge = meta.get("challenge") or f"{meta.get('student', 'grid')}/{meta['variant']}"
        seed = meta["seed"]
        if isinstance(seed, bool) or int(seed) != seed:
            raise TypeError(f"seed {seed!r} is not an integer")
        return str(meta.get("suite", suite)), str(challenge), str(meta["teacher"]), int(seed)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path} does not describe a teachgym run (needs teacher, seed and challenge or variant): {err!r}"
        ) from err


def _numeric_curve(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, str]:
    """Split a wide curve into (x + metrics frame, x name); ValueError when nothing is numeric."""
    x_name = next((c for c in X_NAMES if c in frame.columns), None)
    if x_name is None and len(frame.columns) == 1:  # metrics only (teachgym bench datagen): one row per iteration
        frame = frame.assign(iteration=np.arange(len(frame)))
        x_name = "iteration"
    if x_name is None:
        x_name = str(frame.columns[0]) if len(frame.columns) else ""
    if not x_name or len(frame) == 0:
        raise ValueError(f"{path} holds no curve (no rows or no columns)")
    x = pd.to_numeric(frame[x_name], errors="coerce")
    metrics = {c: pd.to_numeric(frame[c], errors="coerce") for c in frame.columns
               if c != x_name and c not in X_NAMES and c not in NON_METRICS}
    metrics = {str(c): v for c, v in metrics.items() if v.notna().all()}
    if x.isna().any() or not metrics:
        raise ValueError(f"{path} is not a teachgym curve: needs a numeric {x_name!r} column and numeric metric columns")
    return pd.DataFrame({"x": x.to_numpy(float), **{c: v.to_numpy(float) for c, v in metrics.items()}}), x_name


def _read_json_run(path: Path) -> Run:
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("run"), dict) or not isinstance(doc.get("result"), dict):
        raise ValueError(f"{path} is not a teachgym run result: expected {{'run': {{...}}, 'result': {{...}}}}")
    run, result = doc["run"], doc["result"]
    default_suite = "datagen" if run.get("student") == "datagen" else "toy"
    suite, challenge, teacher, seed = _identity(run, path, default_suite)
    lists = {k: v for k, v in result.items() if isinstance(v, list) and v and all(_is_number(e) for e in v)}
    x_name = next((k for k in X_NAMES if k in lists), None)
    length = len(lists[x_name]) if x_name else max((len(v) for v in lists.values()), default=0)
    metrics = {k: v for k, v in lists.items()
               if k != x_name and k not in X_NAMES and k not in NON_METRICS and len(v) == length}
    if not metrics:
        raise ValueError(f"{path} holds no curve: 'result' has no list of numbers")
    x = lists[x_name] if x_name else list(range(length))
    curve = pd.DataFrame({"x": np.asarray(x, float), **{k: np.asarray(v, float) for k, v in metrics.items()}})
    counts = _json_task_counts(result, curve["x"].to_numpy(), path)
    state = path.with_name(path.stem + ".teacher.npz")
    return Run(suite, challenge, teacher, seed, x_name or "iteration", curve, path, counts,
               state if state.exists() else None, run, result.get("teacher_state"))


def _json_task_counts(result: dict[str, Any], x: np.ndarray, path: Path) -> TaskCounts | None:
    if "task_counts" not in result:
        return None
    try:
        counts = np.asarray(result["task_counts"], dtype=float)
        if counts.ndim != 3:
            raise ValueError(f"task_counts must be [period][dim][bin], got {counts.ndim} levels")
        dims = counts.shape[1]
        low = np.asarray(result.get("task_low", np.zeros(dims)), dtype=float).reshape(dims)
        high = np.asarray(result.get("task_high", np.ones(dims)), dtype=float).reshape(dims)
        names = tuple(result.get("task_names") or (f"dim{d}" for d in range(dims)))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: malformed task_counts ({err})") from err
    if len(x) == len(counts) + 1:
        return TaskCounts(x[1:], counts, low, high, names, float(x[0]))
    return TaskCounts(np.arange(1, len(counts) + 1, dtype=float), counts, low, high, names)


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except ImportError as err:
        raise ValueError(f"{path}: reading parquet needs pyarrow or fastparquet ({err})") from err
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"{path} is not a readable table ({err})") from err


def _read_folder_run(folder: Path) -> Run:
    meta = _read_json(folder / "meta.json")
    if not isinstance(meta, dict):
        raise ValueError(f"{folder / 'meta.json'} is not a JSON object describing a run")
    described = meta["run"] if isinstance(meta.get("run"), dict) else meta
    suite, challenge, teacher, seed = _identity(described, folder / "meta.json", str(meta.get("suite", "toy")))
    curve_path = next((folder / n for n in ("curve.csv", "curve.parquet") if (folder / n).exists()), None)
    if curve_path is None:
        raise ValueError(f"{folder} has meta.json but no curve.csv or curve.parquet")
    curve, x_name = _numeric_curve(_read_table(curve_path), curve_path)
    bounds = described.get("task_space") or meta.get("task_space")
    result = meta.get("result") if isinstance(meta.get("result"), dict) else {}
    counts = _json_task_counts(result, curve["x"].to_numpy(), folder / "meta.json") or _csv_task_counts(folder, bounds)
    state = _existing(folder / "teacher.npz")
    work = _training_folder(folder)
    if work is not None and (counts is None or state is None):
        trained = _read_train_run(work)
        counts, state = counts or trained.task_counts, state or trained.state_path
    return Run(suite, challenge, teacher, seed, x_name, curve, folder, counts, state,
               described, result.get("teacher_state"))


def _training_folder(folder: Path) -> Path | None:
    """The training folder of an RL suite's finished run ``<out>/runs/<id>``: ``<out>/work/<id>``,
    where its ``teacher.csv`` (sampled tasks) and checkpoints (teacher state) stay."""
    if folder.parent.name != "runs" or not (folder.parent.parent / "suite.json").is_file():
        return None
    work = folder.parent.parent / "work" / folder.name
    return work if (work / "run.json").is_file() and (work / "eval.csv").is_file() else None


def _read_train_run(folder: Path) -> Run:
    doc = _read_json(folder / "run.json")
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict) or "env" not in config:
        raise ValueError(f"{folder / 'run.json'} is not a teachgym train run (no config with an env)")
    challenge = str(config["env"]).split("/")[-1]
    body = (config.get("env_kwargs") or {}).get("body")
    challenge = f"{challenge}/{body}" if body else challenge
    suite, challenge, teacher, seed = _identity({**config, "challenge": challenge}, folder / "run.json", "train")
    curve, x_name = _numeric_curve(_read_table(folder / "eval.csv"), folder / "eval.csv")
    curve = curve.drop(columns=[c for c in ("episodes", "wall_s") if c in curve.columns])
    state = None
    latest = folder / "checkpoints" / "latest.json"
    if latest.exists():
        manifest = _read_json(latest)
        name = manifest.get("dir") if isinstance(manifest, dict) else None
        state = _existing(folder / "checkpoints" / str(name) / "teacher.npz") if name else None
    state = state or _existing(folder / "teacher.npz")  # a fleet member's final teacher (teachgym train --fleet)
    # The task bounds: run.json's (teachgym train writes them), else the stored teacher's.
    bounds = doc.get("task_space")
    if not isinstance(bounds, dict) and state is not None:
        bounds = load_state(state).get("task_space")
    counts = _csv_task_counts(folder, bounds)
    if counts is not None and len(counts.x) > 1 and counts.x[0] <= 0 and not counts.counts[0].any():
        counts = TaskCounts(counts.x[1:], counts.counts[1:], counts.low, counts.high, counts.names)  # step 0: no period
    return Run(suite, challenge, teacher, seed, x_name, curve, folder, counts, state, config)


def _csv_task_counts(folder: Path, bounds: Any) -> TaskCounts | None:
    path = folder / "teacher.csv"
    if not path.exists():
        return None
    table = _read_table(path)
    hist = [c for c in table.columns if str(c).startswith("hist_")]
    if not hist or "step" not in table.columns:
        return None
    try:
        counts = np.array([[[float(v) for v in str(cell).split()] for cell in row] for row in table[hist].to_numpy()])
    except ValueError as err:
        raise ValueError(f"{path}: hist_ columns must hold space-separated counts ({err})") from err
    if counts.ndim != 3:
        raise ValueError(f"{path}: hist_ columns have differing numbers of bins")
    dims = counts.shape[1]
    bounds = bounds if isinstance(bounds, dict) else {}
    try:
        low = np.asarray(bounds.get("low", np.zeros(dims)), float).reshape(dims)
        high = np.asarray(bounds.get("high", np.ones(dims)), float).reshape(dims)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: the task bounds do not match its {dims} hist_ columns ({err})") from err
    names = tuple(str(c)[len("hist_"):] for c in hist)
    return TaskCounts(table["step"].to_numpy(float), counts, low, high, names)


def _existing(path: Path) -> Path | None:
    return path if path.exists() else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
