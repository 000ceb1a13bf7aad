"""Statistics across seeds in the style of rliable (Agarwal et al., 2021, "Deep RL at the edge of
the statistical precipice"): interquartile mean (IQM), stratified-bootstrap confidence intervals
and the probability of improvement over a baseline.

IQM is the mean of the middle 50% of all (run, challenge) scores (``scipy.stats.trim_mean`` with
0.25 cut, as ``rliable.metrics.aggregate_iqm``). A stratified bootstrap resamples the seeds of each
challenge separately, with replacement, so every replicate keeps every challenge; the interval is
the percentile interval of the replicates (rliable's default). The probability of improvement of
X over Y is, averaged over challenges, P(score_X > score_Y) + P(score_X = score_Y) / 2 over all
pairs of their runs (the Mann-Whitney U statistic over n·m, as ``rliable.metrics``).

rliable itself is not a dependency: its 1.2 release pins ``arch<8``, and arch 7 fails to import
with pandas 3 (``deprecate_kwarg``). These are the same estimators in numpy, vectorised over
replicates. Seeds may differ in number between challenges and teachers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import trim_mean

from teachgym.benchmarks.results import default_metric

#: Replicates of the bootstrap unless told otherwise (rliable's examples use 2,000 to 50,000).
DEFAULT_REPS = 2_000


def iqm(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the values between the 25th and 75th percentiles."""
    return trim_mean(np.asarray(values, dtype=float), 0.25, axis=axis)


def stratified_resamples(samples: Sequence[np.ndarray], reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` stratified bootstrap replicates of the runs of several challenges.

    ``samples[c]`` holds the scores of challenge ``c`` (one per seed). Each replicate draws, for
    each challenge, as many scores as it has seeds from that challenge's own scores, with
    replacement. Returns ``(reps, total runs)``, challenges side by side in the order given.
    """
    parts = []
    for values in samples:
        values = np.asarray(values, dtype=float).ravel()
        if values.size == 0:
            raise ValueError("every challenge needs at least one run")
        parts.append(values[rng.integers(0, values.size, size=(reps, values.size))])
    return np.concatenate(parts, axis=1)


def interval(
    samples: Sequence[np.ndarray],
    statistic: Callable[[np.ndarray], np.ndarray] = lambda a: iqm(a, axis=-1),
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Point estimate and stratified-bootstrap percentile interval of ``statistic``.

    ``statistic`` maps ``(..., runs)`` to ``(...)`` (default: IQM over runs and challenges).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    rng = rng if rng is not None else np.random.default_rng(0)
    point = float(statistic(np.concatenate([np.asarray(s, float).ravel() for s in samples])))
    reps_values = statistic(stratified_resamples(samples, reps, rng))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(reps_values, [tail, 100 - tail])
    return point, float(low), float(high)


def probability_of_improvement(x: Sequence[np.ndarray], y: Sequence[np.ndarray]) -> float:
    """P(X > Y) averaged over challenges; ``x[c]``, ``y[c]``: the runs' scores on challenge ``c``."""
    if len(x) != len(y) or not x:
        raise ValueError(f"x and y need the same, non-zero number of challenges, got {len(x)} and {len(y)}")
    return float(np.mean([_superiority(np.asarray(a, float)[None], np.asarray(b, float)[None])[0] for a, b in zip(x, y)]))


def _superiority(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y)/2 per replicate: ``x`` (reps, n), ``y`` (reps, m) -> (reps,)."""
    diff = x[:, :, None] - y[:, None, :]
    return (diff > 0).mean(axis=(1, 2)) + 0.5 * (diff == 0).mean(axis=(1, 2))


def improvement_interval(
    x: Sequence[np.ndarray], y: Sequence[np.ndarray], reps: int = DEFAULT_REPS, confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Probability of improvement of X over Y and its stratified-bootstrap interval.

    X's and Y's runs are resampled independently within each challenge (as rliable does).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    point = probability_of_improvement(x, y)
    per_challenge = [
        _superiority(stratified_resamples([a], reps, rng), stratified_resamples([b], reps, rng)) for a, b in zip(x, y)
    ]
    values = np.mean(per_challenge, axis=0)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return point, float(low), float(high)


# ----------------------------------------------------------------------------- tables


def final_scores(table: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Each run's score at its last evaluation: columns challenge, teacher, seed, score.

    ``table`` is :func:`teachgym.benchmarks.results.load_results`'s; ``metric`` defaults to
    :func:`~teachgym.benchmarks.results.default_metric`.
    """
    metric = metric or default_metric(table)
    rows = table[table["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no metric {metric!r} in these results; present: {sorted(table['metric'].unique())}")
    last = rows.loc[rows.groupby(["challenge", "teacher", "seed"], sort=False)["x"].idxmax()]
    return last[["challenge", "teacher", "seed", "value"]].rename(columns={"value": "score"}).reset_index(drop=True)


def _by_challenge(final: pd.DataFrame, teacher: str, challenges: Sequence[str]) -> list[np.ndarray]:
    sub = final[final["teacher"] == teacher]
    return [sub.loc[sub["challenge"] == c, "score"].to_numpy(float) for c in challenges]


def aggregate_table(
    final: pd.DataFrame, baseline: str | None = "random", reps: int = DEFAULT_REPS, confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per teacher: IQM over all its (seed, challenge) scores with its interval, the mean
    and median, the runs, and the probability of improvement over ``baseline`` with its interval
    (NaN for the baseline itself or when the baseline has no runs).

    A teacher's IQM covers the challenges it ran; the probability of improvement covers those it
    shares with the baseline. Sorted by IQM, best first.
    """
    missing = {"challenge", "teacher", "seed", "score"} - set(final.columns)
    if missing:
        raise ValueError(
            f"aggregate_table takes final_scores(load_results(...)) (one score per run); missing columns {sorted(missing)}"
        )
    rng = np.random.default_rng(seed)
    rows = []
    base_challenges = set(final.loc[final["teacher"] == baseline, "challenge"]) if baseline else set()
    for teacher in dict.fromkeys(final["teacher"]):
        challenges = list(dict.fromkeys(final.loc[final["teacher"] == teacher, "challenge"]))
        samples = _by_challenge(final, teacher, challenges)
        point, low, high = interval(samples, reps=reps, confidence=confidence, rng=rng)
        flat = np.concatenate(samples)
        row = {"teacher": teacher, "iqm": point, "iqm_low": low, "iqm_high": high, "mean": flat.mean(),
               "median": float(np.median(flat)), "runs": flat.size, "challenges": len(challenges)}
        shared = [c for c in challenges if c in base_challenges]
        if baseline and teacher != baseline and shared:
            p, p_low, p_high = improvement_interval(
                _by_challenge(final, teacher, shared), _by_challenge(final, baseline, shared), reps, confidence, rng
            )
        else:
            p = p_low = p_high = np.nan
        rows.append({**row, "p_improve": p, "p_improve_low": p_low, "p_improve_high": p_high})
    return pd.DataFrame(rows).sort_values("iqm", ascending=False, kind="stable").reset_index(drop=True)


def per_challenge_table(
    final: pd.DataFrame, reps: int = DEFAULT_REPS, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """One row per (challenge, teacher): IQM over seeds with its bootstrap interval, and seeds."""
    rng = np.random.default_rng(seed)
    rows = []
    for (challenge, teacher), group in final.groupby(["challenge", "teacher"], sort=False):
        point, low, high = interval([group["score"].to_numpy(float)], reps=reps, confidence=confidence, rng=rng)
        rows.append({"challenge": challenge, "teacher": teacher, "iqm": point, "low": low, "high": high,
                     "seeds": len(group)})
    return pd.DataFrame(rows)


def curve_intervals(
    table: pd.DataFrame, metric: str | None = None, reps: int = 1_000, confidence: float = 0.95, seed: int = 0,
    aggregate: bool = True,
) -> pd.DataFrame:
    """IQM over seeds at every evaluation point with a bootstrap band, per challenge and teacher.

    With ``aggregate``, adds challenge ``"all"``: the stratified IQM over every challenge's seeds,
    at the evaluation points all of a teacher's challenges share. Columns: challenge, teacher, x,
    iqm, low, high.
    """
    metric = metric or default_metric(table)
    rows = table[table["metric"] == metric]
    rng = np.random.default_rng(seed)
    tail = 100 * (1 - confidence) / 2
    out = []
    grids: dict[str, list[pd.DataFrame]] = {}
    for (challenge, teacher), group in rows.groupby(["challenge", "teacher"], sort=False):
        grid = group.pivot_table(index="seed", columns="x", values="value", aggfunc="last").dropna(axis=1)
        grids.setdefault(teacher, []).append(grid)
        out.append(_band(challenge, teacher, [grid], reps, tail, rng))
    if aggregate and rows["challenge"].nunique() > 1:
        for teacher, teacher_grids in grids.items():
            shared = sorted(set.intersection(*(set(g.columns) for g in teacher_grids)))
            if shared:
                out.append(_band("all", teacher, [g[shared] for g in teacher_grids], reps, tail, rng))
    return pd.concat(out, ignore_index=True)


def _band(challenge: str, teacher: str, grids: list[pd.DataFrame], reps: int, tail: float,
          rng: np.random.Generator) -> pd.DataFrame:
    """Stratified bootstrap of whole curves (seeds keep their own curve): IQM and band per x."""
    values = [g.to_numpy(float) for g in grids]  # each (seeds, points)
    point = iqm(np.concatenate(values, axis=0), axis=0)
    draws = np.concatenate([v[rng.integers(0, len(v), size=(reps, len(v)))] for v in values], axis=1)
    low, high = np.percentile(iqm(draws, axis=1), [tail, 100 - tail], axis=0)
    return pd.DataFrame({"challenge": challenge, "teacher": teacher, "x": grids[0].columns.to_numpy(float),
                         "iqm": point, "low": low, "high": high})
