"""``teachgym bench teacher-overhead``: seconds a teacher spends in sample + update, one core."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from teachgym.benchmarks.toy import run_toy
from teachgym.teacher import parse_teacher_spec


@dataclass
class OverheadConfig:
    """What ``teachgym bench teacher-overhead`` runs; the CLI reads these defaults."""

    teachers: tuple[str, ...] = ("random", "alp-gmm")
    seeds: int = 3
    episodes: int = 20_000


def bench_teacher_overhead(config: OverheadConfig) -> pd.DataFrame:
    """Run each teacher on the 2-D grid in this process, one thread, seed after seed.

    Returns one row per teacher: median / min / max teacher seconds over seeds and the median
    final % mastered.
    """
    for spec in config.teachers:
        parse_teacher_spec(spec)
    rows = []
    with threadpool_limits(1), tqdm(total=len(config.teachers) * config.seeds * config.episodes, unit="ep", unit_scale=True, desc="overhead") as bar:
        for name in config.teachers:
            for seed in range(config.seeds):
                res = run_toy(name, "default", seed, config.episodes, config.episodes, progress=bar.update)
                rows.append({"teacher": name, "seed": seed, "teacher_seconds": res["teacher_seconds"], "final_mastered_pct": res["mastered_pct"][-1]})
    df = pd.DataFrame(rows)
    return (
        df.groupby("teacher", sort=False)
        .agg(
            seconds_median=("teacher_seconds", "median"),
            seconds_min=("teacher_seconds", "min"),
            seconds_max=("teacher_seconds", "max"),
            mastered_pct_median=("final_mastered_pct", "median"),
        )
        .reset_index()
    )
