"""IQM, stratified bootstrap intervals and probability of improvement (teachgym.benchmarks.stats)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from teachgym.benchmarks import stats


def _final(scores: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"challenge": c, "teacher": t, "seed": s, "score": v} for (c, t), vs in scores.items() for s, v in enumerate(vs)]
    )


def test_iqm_is_the_mean_of_the_middle_half_and_ignores_outliers():
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 1e9]) == pytest.approx(4.5)
    assert stats.iqm(np.array([[1, 2, 3, 4], [10, 20, 30, 40]]), axis=1) == pytest.approx([2.5, 25.0])


def test_stratified_resamples_draw_each_challenge_only_from_its_own_runs():
    rng = np.random.default_rng(0)
    draws = stats.stratified_resamples([np.array([0.0, 1.0]), np.array([10.0, 11.0, 12.0])], reps=500, rng=rng)
    assert draws.shape == (500, 5)
    assert set(np.unique(draws[:, :2])) <= {0.0, 1.0}
    assert set(np.unique(draws[:, 2:])) <= {10.0, 11.0, 12.0}
    assert len(np.unique(draws[:, 2:])) == 3  # with replacement, every run shows up somewhere


def test_interval_brackets_the_estimate_collapses_without_spread_and_narrows_with_seeds():
    rng = np.random.default_rng(1)
    point, low, high = stats.interval([rng.normal(50, 10, 10), rng.normal(20, 5, 10)], rng=rng)
    assert low <= point <= high and low < high
    assert stats.interval([np.full(4, 3.0), np.full(4, 7.0)]) == pytest.approx((5.0, 5.0, 5.0))
    few = stats.interval([rng.normal(0, 1, 5)], rng=np.random.default_rng(2))
    many = stats.interval([rng.normal(0, 1, 500)], rng=np.random.default_rng(2))
    assert many[2] - many[1] < (few[2] - few[1]) / 3


def test_interval_rejects_confidence_outside_the_unit_interval():
    with pytest.raises(ValueError, match="confidence"):
        stats.interval([np.ones(3)], confidence=1.5)


def test_probability_of_improvement_counts_wins_and_half_ties_averaged_over_challenges():
    assert stats.probability_of_improvement([[5, 6]], [[1, 2]]) == 1.0
    assert stats.probability_of_improvement([[1, 2]], [[5, 6]]) == 0.0
    assert stats.probability_of_improvement([[3, 3]], [[3, 3]]) == 0.5
    assert stats.probability_of_improvement([[1, 3]], [[2]]) == 0.5
    assert stats.probability_of_improvement([[5], [1]], [[1], [5]]) == 0.5  # one challenge won, one lost


def test_probability_of_improvement_equals_the_mann_whitney_statistic():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 5, 7).astype(float), rng.integers(0, 5, 9).astype(float)  # ties included
    u = mannwhitneyu(x, y, alternative="greater").statistic
    assert stats.probability_of_improvement([x], [y]) == pytest.approx(u / (len(x) * len(y)))


def test_improvement_interval_lies_in_the_unit_interval_around_the_estimate():
    rng = np.random.default_rng(4)
    x, y = [rng.normal(1, 1, 6), rng.normal(0, 1, 6)], [rng.normal(0, 1, 6), rng.normal(0, 1, 6)]
    point, low, high = stats.improvement_interval(x, y, reps=1000, rng=rng)
    assert 0 <= low <= point <= high <= 1 and low < high


def test_final_scores_take_each_runs_last_evaluation_whatever_the_row_order():
    table = pd.DataFrame({
        "suite": "toy", "challenge": "c", "teacher": "t", "seed": [0, 0, 0, 1, 1], "x": [2.0, 0.0, 1.0, 0.0, 1.0],
        "x_name": "episode", "metric": "mastered_pct", "value": [9.0, 1.0, 5.0, 2.0, 4.0],
    })
    final = stats.final_scores(table.sample(frac=1, random_state=0))
    assert dict(zip(final["seed"], final["score"])) == {0: 9.0, 1: 4.0}
    with pytest.raises(ValueError, match="no metric"):
        stats.final_scores(table, "return")


def test_aggregate_table_ranks_teachers_and_measures_improvement_over_the_baseline():
    final = _final({
        ("a", "random"): [1, 2, 1], ("b", "random"): [0, 0, 1],
        ("a", "good"): [50, 60, 55, 52], ("b", "good"): [40, 45],  # seeds differ between challenges
        ("a", "same"): [1, 2, 1], ("b", "same"): [0, 0, 1],
    })
    table = stats.aggregate_table(final, baseline="random", reps=500).set_index("teacher")
    assert list(table.index)[0] == "good"
    assert table.loc["good", "p_improve"] == 1.0 and table.loc["good", "runs"] == 6
    assert table.loc["same", "p_improve"] == pytest.approx(0.5)
    assert np.isnan(table.loc["random", "p_improve"])
    assert (table["iqm_low"] <= table["iqm"]).all() and (table["iqm"] <= table["iqm_high"]).all()
    assert stats.aggregate_table(final, baseline=None)["p_improve"].isna().all()


def test_per_challenge_table_has_one_interval_per_challenge_and_teacher():
    final = _final({("a", "x"): [1, 2, 3], ("b", "x"): [4, 5, 6], ("a", "y"): [7, 7, 7]})
    table = stats.per_challenge_table(final, reps=200).set_index(["challenge", "teacher"])
    assert len(table) == 3
    assert table.loc[("a", "y"), ["iqm", "low", "high"]].tolist() == [7.0, 7.0, 7.0]
    assert table.loc[("b", "x"), "low"] >= 4 and table.loc[("b", "x"), "high"] <= 6


def test_curve_intervals_band_each_evaluation_and_add_the_all_challenges_panel():
    rows = [
        {"suite": "toy", "challenge": c, "teacher": "t", "seed": s, "x": float(x), "x_name": "episode",
         "metric": "mastered_pct", "value": float(x * (1 + s) + (10 if c == "b" else 0))}
        for c in ("a", "b") for s in range(4) for x in range(5)
    ]
    bands = stats.curve_intervals(pd.DataFrame(rows), reps=300)
    assert set(bands["challenge"]) == {"a", "b", "all"}
    assert (bands["low"] <= bands["iqm"] + 1e-12).all() and (bands["iqm"] <= bands["high"] + 1e-12).all()
    first = bands[(bands["challenge"] == "a") & (bands["x"] == 0)]
    assert first[["iqm", "low", "high"]].to_numpy().tolist() == [[0.0, 0.0, 0.0]]
