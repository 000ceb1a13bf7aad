"""The ``reasoning`` suite: teachers for RL with verifiable rewards (SEC-style), GRPO student.

Each run: a :class:`~teachgym.students.grpo.GRPOStudent` gets a short supervised warm-up on the
easiest level of every family, then ``steps`` GRPO steps. At every step the curriculum draws
``batch_size`` categories (family x level of ``teachgym/Reasoning-Mix-v0``, or, with
``source="reasoning-gym"``, generator x level of ``teachgym/ReasoningGym-v0``) with
``sample_batch``, the student answers the next unused problem of each ``n_samples`` times, and
the curriculum gets the pass rates with ``update_batch`` (infos: the GRPO ``advantages`` that SEC
reads and ``plr_score`` = mean |advantage| for PLR). Every ``eval_every`` steps the student
answers the held-out test set greedily; it holds ``test_levels - train_levels`` levels harder
than any trained on. Curricula: teacher specs (``"sec:temperature=0.2"``) and the fixed order
``hard-to-easy`` (hardest training level first, one level down per quarter of the steps), which
the SEC paper reports collapsing, and ``online-filter`` (Bae et al.'s per-prompt filter,
:class:`~teachgym.students.online_filter.OnlineDifficultyFilter`: categories drawn uniformly, each
prompt kept only when the pass rate of its own rollouts lies in the band, batches oversampled to
fill; ``"online-filter:low=0.25+high=0.75+max_rounds=4"``). ``difficulty-filter`` is the other,
category-level filter: a teacher that estimates each category's pass rate from past batches.

GRPO advantages use the population std (``std="population"``) in every table unless the config
says ``std="unbiased"`` (verl's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from teachgym.benchmarks.plots import plot_learning_curves
from teachgym.benchmarks.runner import execute, run_id
from teachgym.io import write_text
from teachgym.spaces import Task, TaskSpace
from teachgym.teacher import Teacher, make_teacher, parse_teacher_spec

FIXED_ORDERS = ("hard-to-easy", "easy-to-hard")
#: The per-prompt filter's curriculum name (``"online-filter:low=..+high=..+max_rounds=.."``).
ONLINE_FILTER = "online-filter"
#: Problem sources: teachgym's own families, or reasoning-gym's generators.
SOURCES = ("teachgym", "reasoning-gym")
#: Columns of a run's ``curve.csv``: held-out accuracy (fraction) on all / trained / harder levels.
CURVE_COLUMNS = ("step", "test", "trained_levels", "harder_levels")


@dataclass
class ReasoningConfig:
    """What ``teachgym bench reasoning`` runs; the CLI reads these defaults.

    SEC runs at τ = 0.2, the paper's value for two-dimensional arms (here family x level);
    ``difficulty-filter`` (category level) keeps the balanced band (0.25, 0.75) of pass rates over
    the group size; ``online-filter`` (per prompt) keeps [0.25, 0.75]; DUMP runs its paper's
    defaults. ``families`` empty: the source's default set (``arithmetic, countdown, sort`` for
    ``teachgym``; :data:`~teachgym.envs.reasoning.rgym.DEFAULT_TASKS` for ``reasoning-gym``).
    ``max_len``: the student's longest sequence; a longer prompt keeps its end (reasoning-gym's
    prompts open with a fixed instruction and end with the problem, so ``max_len=48`` keeps the
    problem and halves the compute).
    """

    teachers: tuple[str, ...] = (
        "random",
        "sec:temperature=0.2",
        "difficulty-filter:low=0.25+high=0.75+n_rollouts=8",
        "plr",
        "tscl-online",
        "dump",
        ONLINE_FILTER,
        "hard-to-easy",
    )
    source: str = "teachgym"
    families: tuple[str, ...] = ()
    seeds: int = 3
    steps: int = 300
    batch_size: int = 16
    n_samples: int = 8
    train_levels: int = 4
    test_levels: int = 6
    test_size: int = 50
    warmup_steps: int = 600
    warmup_size: int = 1000
    eval_every: int = 50
    lr: float = 1e-3
    device: str = "auto"
    threads: int = 1
    std: str = "population"
    max_len: int = 128

    def validate(self) -> None:
        """``ValueError`` for unknown teachers or families and bad sizes (n_samples < 2 included)."""
        from teachgym.envs.reasoning import get_family
        from teachgym.students.grpo import STD_MODES

        for spec in self.teachers:
            if spec.partition(":")[0] == ONLINE_FILTER:
                online_filter(spec)
            elif spec not in FIXED_ORDERS:
                try:
                    parse_teacher_spec(spec)
                except ValueError as err:
                    raise ValueError(f"{err}; or a fixed order: {', '.join(FIXED_ORDERS)}; "
                                     f"or {ONLINE_FILTER}") from None
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.std not in STD_MODES:
            raise ValueError(f"std must be one of {STD_MODES}, got {self.std!r}")
        if self.source == "teachgym":
            for name in self.family_names():
                get_family(name)
        for key in ("seeds", "steps", "batch_size", "train_levels", "test_size", "warmup_size", "eval_every", "threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        if self.n_samples < 2:
            raise ValueError(f"GRPO needs n_samples >= 2, got {self.n_samples!r}")
        if self.max_len < 24:
            raise ValueError(f"max_len must be >= 24 (BOS, SEP, the answer and a few prompt characters), got {self.max_len!r}")
        if self.test_levels < self.train_levels or self.warmup_steps < 0:
            raise ValueError("expected test_levels >= train_levels and warmup_steps >= 0")

    def family_names(self) -> tuple[str, ...]:
        """``families``, or the source's default set when empty."""
        if self.families:
            return tuple(self.families)
        if self.source == "reasoning-gym":
            from teachgym.envs.reasoning.rgym import DEFAULT_TASKS

            return DEFAULT_TASKS
        return ("arithmetic", "countdown", "sort")

    def runs(self) -> list[dict[str, Any]]:
        """One description per (curriculum, seed)."""
        keys = ("steps", "batch_size", "n_samples", "train_levels", "test_levels", "test_size",
                "warmup_steps", "warmup_size", "eval_every", "lr", "device", "threads")
        shared = {"families": list(self.family_names()), **{k: getattr(self, k) for k in keys}}
        # Only what differs from the first suite's settings enters a run's description, so that
        # results written before these options existed are still found and reused.
        shared.update({k: getattr(self, k) for k, base in (("source", "teachgym"), ("std", "population"),
                                                           ("max_len", 128)) if getattr(self, k) != base})
        variant = "reasoning" if self.source == "teachgym" else self.source
        return [
            {"student": "grpo", "variant": variant, "teacher": c, "seed": s, **shared}
            for c in self.teachers for s in range(self.seeds)
        ]


class FixedOrder:
    """A fixed level schedule through the teacher API: ``hard-to-easy`` or ``easy-to-hard``.

    The steps are split into ``train_levels`` equal phases; phase ``k`` trains on level
    ``L - 1 - k`` (hard-to-easy) or ``k`` (easy-to-hard); families are drawn uniformly.
    """

    def __init__(self, task_space: Any, steps: int, order: str = "hard-to-easy", seed: int | None = None) -> None:
        if order not in FIXED_ORDERS:
            raise ValueError(f"order must be one of {FIXED_ORDERS}, got {order!r}")
        self.task_space, self.steps, self.order = TaskSpace(task_space), int(steps), order
        self.rng = np.random.default_rng(seed)
        self.batches = 0

    def sample_batch(self, n: int) -> list[Task]:
        high = self.task_space.high.astype(int)
        levels = int(high[-1]) + 1
        phase = min(levels - 1, self.batches * levels // max(self.steps, 1))
        level = levels - 1 - phase if self.order == "hard-to-easy" else phase
        families = self.rng.integers(int(high[0]) + 1, size=n) if len(high) > 1 else None
        if families is None:
            return [self.task_space.task(np.array([level], dtype=np.float64)) for _ in range(n)]
        return [self.task_space.task(np.array([f, level], dtype=np.float64)) for f in families]

    def update_batch(self, tasks: Any, scores: Any, infos: Any = None) -> None:
        self.batches += 1


def online_filter(spec: str) -> Any:
    """The :class:`~teachgym.students.online_filter.OnlineDifficultyFilter` a spec names
    (``"online-filter"`` or ``"online-filter:low=0.25+high=0.75+max_rounds=4"``)."""
    import inspect
    import json

    from teachgym.students.online_filter import OnlineDifficultyFilter

    name, _, rest = spec.partition(":")
    if name != ONLINE_FILTER:
        raise ValueError(f"expected {ONLINE_FILTER}[:key=value+...], got {spec!r}")
    known = [k for k in inspect.signature(OnlineDifficultyFilter).parameters]
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split("+")):
        key, eq, value = item.partition("=")
        if not eq or key not in known:
            raise ValueError(f"{spec!r}: expected {ONLINE_FILTER}:key=value+... with keys among {known}, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{spec!r}: {key} must be a number, got {value!r}") from None
    return OnlineDifficultyFilter(**kwargs)


def draw_batch(curriculum: Any, n: int) -> tuple[list[Task], list[bool]]:
    """``n`` tasks and, for each, whether the student learns from it (``False``: a robust PLR
    level played only to be scored). The same draws as ``sample_batch(n)``."""
    if not isinstance(curriculum, Teacher):
        return curriculum.sample_batch(n), [True] * n
    tasks, train = [], []
    for _ in range(n):
        tasks.append(curriculum.sample())
        train.append(curriculum.train_on_last_sample)
    return tasks, train


def run_reasoning(
    student: str,
    variant: str,
    teacher: str,
    seed: int,
    families: list[str],
    steps: int,
    batch_size: int,
    n_samples: int,
    train_levels: int,
    test_levels: int,
    test_size: int,
    warmup_steps: int,
    warmup_size: int,
    eval_every: int,
    lr: float = 1e-3,
    device: str = "auto",
    threads: int = 1,
    source: str = "teachgym",
    std: str = "population",
    max_len: int = 128,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """One GRPO run under curriculum ``teacher``; test accuracy curves and step timings.

    ``student`` / ``variant`` are the suite's tags (the runner names files by them).
    """
    import torch

    from teachgym.envs.reasoning import ReasoningEnv
    from teachgym.students.grpo import GRPOStudent

    torch.set_num_threads(threads)
    env_seed, student_seed, teacher_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3))
    prompt_filter = online_filter(teacher) if teacher.partition(":")[0] == ONLINE_FILTER else None
    # Every category holds enough problems for a curriculum that draws only it (the per-prompt
    # filter rolls out up to max_rounds batches per step).
    pool_size = steps * batch_size * (prompt_filter.max_rounds if prompt_filter else 1)
    if source == "reasoning-gym":
        from teachgym.envs.reasoning.rgym import ReasoningGymEnv

        env: Any = ReasoningGymEnv(families, train_levels, test_levels, pool_size=pool_size, test_size=test_size,
                                   seed=env_seed)
    elif source == "teachgym":
        env = ReasoningEnv(families, train_levels, test_levels, pool_size=pool_size, test_size=test_size, seed=env_seed)
    else:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    policy = GRPOStudent(n_samples=n_samples, lr=lr, std=std, device=device, seed=student_seed, max_len=max_len)
    if teacher in FIXED_ORDERS:
        curriculum: Any = FixedOrder(env.task_space, steps, teacher, seed=teacher_seed)
    elif prompt_filter is not None:  # the paper draws prompts uniformly, then filters them
        curriculum = make_teacher("random", env.task_space, seed=teacher_seed, task_names=env.task_names)
    else:
        name, hparams = parse_teacher_spec(teacher)
        curriculum = make_teacher(name, env.task_space, seed=teacher_seed, task_names=env.task_names, **hparams)
    start = time.perf_counter()
    policy.warmup(env.warmup_set(warmup_size, level=0), warmup_steps)
    warmup_seconds = time.perf_counter() - start
    test = env.test_set()
    levels = np.array([p.level for p in test])
    fams = np.array([p.family for p in test])

    def evaluate() -> np.ndarray:
        return np.array([p.reward(a) for p, a in zip(test, policy.predict(test))])

    def point(step: int, correct: np.ndarray) -> dict[str, Any]:
        return {"step": step, "test": float(correct.mean()), "trained_levels": float(correct[levels < train_levels].mean()),
                "harder_levels": float(correct[levels >= train_levels].mean()) if test_levels > train_levels else float("nan")}

    initial = evaluate()
    curve = [point(0, initial)]
    step_seconds, counts = [], np.zeros((len(families), train_levels), dtype=np.int64)
    train_pass, rollouts = [], []
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        if prompt_filter is None:
            tasks, train = draw_batch(curriculum, batch_size)
            problems = [env.next_problem(t) for t in tasks]
            result = policy.step([p.prompt for p in problems], lambda i, answer, problems=problems: problems[i].reward(answer), train)
            curriculum.update_batch(tasks, result.pass_rates.tolist(), result.infos())
            rates = result.pass_rates
            rollouts.append(len(problems))
        else:
            filtered = prompt_filter.step(policy, lambda k: [env.next_problem(t) for t in curriculum.sample_batch(k)],
                                          batch_size)
            problems, rates = filtered.trained, filtered.pass_rates
            rollouts.append(filtered.rollouts)
        step_seconds.append(time.perf_counter() - t0)
        for p in problems:
            counts[families.index(p.family), p.level] += 1
        train_pass.append(float(np.mean(rates)))
        if step % eval_every == 0 or step == steps:
            curve.append(point(step, evaluate()))
        if progress is not None:
            progress(1)
    final = evaluate()

    def per_level(correct: np.ndarray) -> dict[str, float]:
        return {f"{f}/{lv}": float(correct[(fams == f) & (levels == lv)].mean()) for f in families for lv in range(test_levels)}

    return {
        **{key: [c[key] for c in curve] for key in CURVE_COLUMNS},
        "initial_per_level": per_level(initial),
        "final_per_level": per_level(final),
        "problems_per_category": {f"{f}/{lv}": int(counts[i, lv]) for i, f in enumerate(families) for lv in range(train_levels)},
        "train_pass_rate": train_pass,
        "prompts_rolled_out": rollouts,
        "step_seconds": step_seconds,
        "warmup_seconds": warmup_seconds,
        "wall_seconds": time.perf_counter() - start,
        "device": str(policy.device),
    }


def bench_reasoning(config: ReasoningConfig, out: str = "runs/reasoning", jobs: int | None = 1,
                    backend: str = "local") -> pd.DataFrame:
    """Run the suite (resuming finished runs); write CSVs and ``curves.png``; return the summary.

    The summary has one row per curriculum: final held-out accuracy (%) on all test levels, on the
    trained levels and on the harder ones (median, min, max over seeds), the median difference to
    ``random`` on the same seeds, the median seconds of one GRPO step (teacher included) and prompts
    rolled out per step; and the statistics of the other suites
    (:mod:`teachgym.benchmarks.stats`): the IQM of the final held-out accuracy over every (seed,
    family) with its stratified-bootstrap 95 % interval (families are the strata), and the
    probability of improvement over ``random`` with its interval.
    """
    config.validate()
    runs = config.runs()
    results = execute(run_reasoning, runs, out, units=lambda r: r["steps"], jobs=jobs, desc="reasoning",
                      curve=CURVE_COLUMNS, suite="reasoning", backend=backend, unit="step")
    stale = [run_id(r) for r, res in zip(runs, results) if "step" not in res]
    if stale:
        raise ValueError(f"{out} holds runs of an older teachgym (their curve is inside meta.json: "
                         f"{stale[:3]}...); write the suite into a new --out")
    curves = pd.DataFrame(
        {"panel": metric, "curriculum": r["teacher"], "seed": r["seed"], "step": step, "accuracy": 100.0 * value}
        for r, res in zip(runs, results)
        for metric, key in (("all test levels", "test"), ("trained levels", "trained_levels"), ("harder (held-out) levels", "harder_levels"))
        for step, value in zip(res["step"], res[key])
    )
    per_run = pd.DataFrame(
        {"curriculum": r["teacher"], "seed": r["seed"], **{k: 100.0 * res[k][-1] for k in CURVE_COLUMNS[1:]},
         "step_seconds": float(np.median(res["step_seconds"])), "warmup_seconds": res["warmup_seconds"],
         "prompts_per_step": float(np.mean(res.get("prompts_rolled_out") or [r["batch_size"]])),
         **{f"n:{k}": v for k, v in res["problems_per_category"].items()}}
        for r, res in zip(runs, results)
    )
    random_test = per_run[per_run["curriculum"] == "random"].set_index("seed")["test"]
    per_run["vs_random"] = [t - random_test.get(s, np.nan) for s, t in zip(per_run["seed"], per_run["test"])]
    rows = []
    for name, part in per_run.groupby("curriculum", sort=False):
        row: dict[str, Any] = {"curriculum": name, "seeds": len(part)}
        for key in ("test", "trained_levels", "harder_levels"):
            row.update({key: part[key].median(), f"{key}_min": part[key].min(), f"{key}_max": part[key].max()})
        row["vs_random"] = part["vs_random"].median()
        row["step_seconds"] = part["step_seconds"].median()
        row["prompts_per_step"] = part["prompts_per_step"].median()
        rows.append(row)
    summary = pd.DataFrame(rows).merge(_family_statistics(runs, results), on="curriculum", how="left")
    out_dir = Path(out)
    write_text(out_dir / "curves.csv", curves.to_csv(index=False))
    write_text(out_dir / "per_run.csv", per_run.to_csv(index=False))
    write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    plot_learning_curves(curves, out_dir / "curves.png", x="step", y="accuracy", panel="panel", line="curriculum",
                         ylabel="held-out accuracy (%)")
    return summary


def _family_statistics(runs: list[dict[str, Any]], results: list[dict[str, Any]]) -> pd.DataFrame:
    """IQM, its interval and P(improvement over random) of the final accuracy per (seed, family)."""
    from teachgym.benchmarks.stats import aggregate_table

    final = pd.DataFrame(
        {"challenge": family, "teacher": r["teacher"], "seed": r["seed"],
         "score": 100.0 * float(np.mean([v for k, v in res["final_per_level"].items() if k.rpartition("/")[0] == family]))}
        for r, res in zip(runs, results) for family in r["families"]
    )
    baseline = "random" if (final["teacher"] == "random").any() else None
    table = aggregate_table(final, baseline=baseline)
    keep = ["teacher", "iqm", "iqm_low", "iqm_high", "p_improve", "p_improve_low", "p_improve_high"]
    return table[keep].rename(columns={"teacher": "curriculum"})


def format_reasoning(summary: pd.DataFrame) -> str:
    """The summary as text: median [min, max] per metric, then the IQM over (seed, family) with its
    95 % interval and the probability of improvement over random with its interval."""
    lines = [f"{'curriculum':52s} {'all test':>18s} {'trained levels':>18s} {'harder levels':>18s} {'vs random':>9s} "
             f"{'IQM [95% CI]':>20s} {'P(>random) [95% CI]':>21s} {'s/step':>7s} {'prompts':>7s}"]
    for _, r in summary.iterrows():
        cells = [f"{r[k]:5.1f} [{r[k + '_min']:4.1f},{r[k + '_max']:4.1f}]" for k in ("test", "trained_levels", "harder_levels")]
        iqm = f"{r['iqm']:5.1f} [{r['iqm_low']:4.1f},{r['iqm_high']:4.1f}]"
        p = "–" if pd.isna(r["p_improve"]) else f"{r['p_improve']:.2f} [{r['p_improve_low']:.2f},{r['p_improve_high']:.2f}]"
        lines.append(f"{r['curriculum']:52s} " + " ".join(f"{c:>18s}" for c in cells) + f" {r['vs_random']:+9.1f} "
                     f"{iqm:>20s} {p:>21s} {r['step_seconds']:7.3f} {r['prompts_per_step']:7.1f}")
    return "\n".join(lines)
