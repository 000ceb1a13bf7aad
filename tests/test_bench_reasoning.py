"""The reasoning benchmark: teachers through the teacher API, files written, runs resumed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from gymnasium import spaces

from teachgym.benchmarks import reasoning
from teachgym.benchmarks.reasoning import (
    CURVE_COLUMNS,
    FixedOrder,
    ReasoningConfig,
    bench_reasoning,
    format_reasoning,
    run_reasoning,
)
from teachgym.cli import main

TINY = {"seeds": 1, "steps": 2, "batch_size": 4, "n_samples": 2, "test_size": 2, "warmup_steps": 2, "warmup_size": 5,
        "eval_every": 1, "device": "cpu"}


def test_hard_to_easy_walks_down_the_levels_and_easy_to_hard_up():
    space = spaces.MultiDiscrete([3, 4])
    down, up = FixedOrder(space, steps=8, order="hard-to-easy", seed=0), FixedOrder(space, steps=8, order="easy-to-hard", seed=0)
    levels_down, levels_up = [], []
    for _ in range(8):
        levels_down.append({int(t[1]) for t in down.sample_batch(5)})
        levels_up.append({int(t[1]) for t in up.sample_batch(5)})
        down.update_batch([], [])
        up.update_batch([], [])
    assert levels_down == [{3}, {3}, {2}, {2}, {1}, {1}, {0}, {0}]
    assert levels_up == [{0}, {0}, {1}, {1}, {2}, {2}, {3}, {3}]


def test_config_rejects_unknown_curricula_and_groups_of_one():
    with pytest.raises(ValueError, match="n_samples >= 2"):
        ReasoningConfig(n_samples=1).validate()
    with pytest.raises(ValueError, match="unknown teacher"):
        ReasoningConfig(teachers=("nope",)).validate()
    with pytest.raises(ValueError, match="problem family"):
        ReasoningConfig(families=("chess",)).validate()


def test_a_run_is_reproducible_and_reports_what_sec_needs():
    run = ReasoningConfig(teachers=("sec",), **TINY).runs()[0]
    a, b = run_reasoning(**run), run_reasoning(**run)
    assert all(a[k] == b[k] for k in CURVE_COLUMNS) and a["problems_per_category"] == b["problems_per_category"]
    assert a["step"] == [0, 1, 2]
    assert sum(a["problems_per_category"].values()) == 2 * 4
    assert set(a["final_per_level"]) == {f"{f}/{lv}" for f in ("arithmetic", "countdown", "sort") for lv in range(6)}


def test_bench_writes_table_curves_and_png_then_resumes_without_rerunning(tmp_path, monkeypatch):
    config = ReasoningConfig(teachers=("random", "hard-to-easy"), **TINY)
    summary = bench_reasoning(config, tmp_path)
    assert list(summary["curriculum"]) == ["random", "hard-to-easy"]
    assert summary.loc[summary["curriculum"] == "random", "vs_random"].item() == 0.0
    for name in ("summary.csv", "curves.csv", "per_run.csv", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert set(curves["panel"]) == {"all test levels", "trained levels", "harder (held-out) levels"}
    assert "random" in format_reasoning(summary)
    assert len(list((tmp_path / "runs").glob("*random*"))) == 1  # one stored run per (curriculum, seed)

    def fail(**kwargs):
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(reasoning, "run_reasoning", fail)
    again = bench_reasoning(config, tmp_path)
    assert np.allclose(again["test"], summary["test"])
    # A run stored by an older version (its curve inside meta.json) is a clear error.
    folder = next((tmp_path / "runs").glob("*random*"))
    meta = json.loads((folder / "meta.json").read_text())
    meta["result"]["curve"] = [{"step": 0, "test": 0.5}]
    meta["curve_columns"] = []
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "curve.csv").write_text("\n")  # what the old runner wrote: no columns
    with pytest.raises(ValueError, match="older teachgym"):
        bench_reasoning(config, tmp_path)


def test_cli_runs_the_suite_and_reports_bad_input(tmp_path, capsys):
    args = ["bench", "reasoning", "--seeds", "1", "--steps", "1", "--batch-size", "2", "--n-samples", "2", "--test-size", "1",
            "--warmup-steps", "1", "--eval-every", "1", "--device", "cpu", "--teachers", "random", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "random" in capsys.readouterr().out
    assert main([*args[:-2], "--n-samples", "1", "--out", str(tmp_path / "x")]) == 2
    assert "n_samples >= 2" in capsys.readouterr().err


def test_config_checks_source_std_and_the_online_filter_spec():
    with pytest.raises(ValueError, match="source"):
        ReasoningConfig(source="nope").validate()
    with pytest.raises(ValueError, match="std"):
        ReasoningConfig(std="sample").validate()
    with pytest.raises(ValueError, match="online-filter:key=value"):
        ReasoningConfig(teachers=("online-filter:band=3",)).validate()
    with pytest.raises(ValueError, match="low <= high"):
        ReasoningConfig(teachers=("online-filter:low=0.9+high=0.1",)).validate()
    run = ReasoningConfig(teachers=("online-filter:max_rounds=2",), **TINY).runs()[0]
    assert "source" not in run and "std" not in run  # the first suite's settings keep their run descriptions
    assert run["families"] == ["arithmetic", "countdown", "sort"]


def test_the_online_filter_rolls_out_more_prompts_than_it_trains_on():
    run = ReasoningConfig(teachers=("online-filter:low=0.25+high=0.75+max_rounds=3",), std="unbiased", **TINY).runs()[0]
    assert run["std"] == "unbiased"
    res = run_reasoning(**run)
    assert len(res["prompts_rolled_out"]) == 2
    assert all(4 <= k <= 12 and k % 4 == 0 for k in res["prompts_rolled_out"])
    assert sum(res["problems_per_category"].values()) <= 2 * 4  # only kept prompts train


def test_the_suite_runs_on_reasoning_gym_pools_with_the_other_suites_statistics(tmp_path):
    pytest.importorskip("reasoning_gym")
    config = ReasoningConfig(source="reasoning-gym", teachers=("random", "dump"), families=("chain_sum", "spell_backward"),
                             train_levels=2, test_levels=3, max_len=48, **TINY)
    (run,) = [r for r in config.runs() if r["teacher"] == "dump"]
    assert run["variant"] == "reasoning-gym" and run["source"] == "reasoning-gym"
    summary = bench_reasoning(config, tmp_path)
    assert set(summary["curriculum"]) == {"random", "dump"}
    per_run = pd.read_csv(tmp_path / "per_run.csv")
    assert {"n:chain_sum/1", "n:spell_backward/0"} <= set(per_run.columns)
    row = summary.set_index("curriculum").loc["dump"]
    assert row["iqm_low"] <= row["iqm"] <= row["iqm_high"] and 0.0 <= row["p_improve"] <= 1.0
    assert np.isnan(summary.set_index("curriculum").loc["random", "p_improve"])
    assert "P(>random)" in format_reasoning(summary)
