"""The ``teachgym`` console script.

``teachgym bench toy``                 teachers on simulated grid students (curves, table, PNG)
``teachgym bench teacher-overhead``    seconds teachers spend in sample + update
``teachgym bench envs``                steps/s and reset times of the envs
``teachgym bench datagen``             data-generation teachers vs uniform allocation
``teachgym bench fuzz``                random tasks (corners too) x extreme actions: no crash, NaN, bound break
``teachgym teachers``                  registered teachers and their default hyper-parameters
``teachgym train``                     an SB3 student (SAC/PPO/TD3) on a teachgym env under a teacher
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from teachgym.benchmarks.datagen import DatagenConfig, bench_datagen, format_datagen
from teachgym.benchmarks.envs import EnvSpeedConfig, bench_envs
from teachgym.benchmarks.fuzz import FuzzConfig, bench_fuzz, env_label
from teachgym.benchmarks.overhead import OverheadConfig, bench_teacher_overhead
from teachgym.benchmarks.toy import STUDENTS, ToyConfig, bench_toy, format_summary
from teachgym.teacher import list_teachers, teacher_class
from teachgym.training import add_train_arguments, run_train


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _defaults(cls: type) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def _teacher_list(text: str) -> tuple[str, ...]:
    return tuple(list_teachers()) if text == "all" else _names(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="teachgym", description="Automatic curriculum learning benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="run a benchmark suite")
    suites = bench.add_subparsers(dest="suite", required=True)

    toy = _defaults(ToyConfig)
    p = suites.add_parser("toy", help="teachers on simulated grid students")
    p.add_argument("--teachers", default=",".join(toy["teachers"]), help="comma-separated names, or 'all'")
    p.add_argument(
        "--variants",
        default=None,
        help=f"comma-separated variant names of the students, or 'all' (default: {','.join(toy['variants'])}; "
        "'all' with --teachers all)",
    )
    p.add_argument("--students", default=",".join(toy["students"]), help=f"comma-separated: {', '.join(STUDENTS)}")
    p.add_argument("--seeds", type=int, default=toy["seeds"])
    p.add_argument("--episodes", type=int, default=toy["episodes"])
    p.add_argument("--eval-every", type=int, default=toy["eval_every"])
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--out", default="runs/toy", help="results directory; finished runs in it are reused")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")

    ov = _defaults(OverheadConfig)
    p = suites.add_parser("teacher-overhead", help="seconds in sample + update over a grid run, one core")
    p.add_argument("--teachers", default=",".join(ov["teachers"]))
    p.add_argument("--seeds", type=int, default=ov["seeds"])
    p.add_argument("--episodes", type=int, default=ov["episodes"])

    env_defaults = EnvSpeedConfig()
    p = suites.add_parser("envs", help="steps/s and reset times of the envs vs gymnasium's originals")
    p.add_argument("--steps", type=int, default=env_defaults.steps)
    p.add_argument("--resets", type=int, default=env_defaults.resets)
    p.add_argument("--only", default="", help="comma-separated labels to keep (the first one is the reference)")

    fz = _defaults(FuzzConfig)
    p = suites.add_parser("fuzz", help="random tasks (corners included) x random/extreme actions: no exception, NaN or bound break")
    p.add_argument("--episodes", type=int, default=fz["episodes_per_env"], help="episodes per env")
    p.add_argument("--max-steps", type=int, default=fz["max_steps"], help="steps per episode at most")
    p.add_argument("--seed", type=int, default=fz["seed"])
    p.add_argument("--only", default="", help="comma-separated substrings of env labels to keep, e.g. 'StumpTracks,wheel'")

    dg = _defaults(DatagenConfig)
    p = suites.add_parser("datagen", help="data-generation teachers vs uniform allocation (math, code, vqa)")
    p.add_argument("--domains", default=",".join(dg["domains"]), help="comma-separated: math, code, vqa")
    p.add_argument(
        "--policies",
        default=",".join(dg["policies"]),
        help="uniform, balanced-fill, random-allocation, alternating or teacher specs",
    )
    p.add_argument("--seeds", type=int, default=dg["seeds"])
    p.add_argument("--iterations", type=int, default=dg["iterations"])
    p.add_argument("--budget", type=int, default=None, help="examples per iteration (default: the domain's)")
    p.add_argument("--train-steps", type=int, default=None)
    p.add_argument("--n-eval", type=int, default=None)
    p.add_argument("--device", default=dg["device"])
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--out", default="runs/datagen")

    sub.add_parser("teachers", help="list teachers and their default hyper-parameters")
    add_train_arguments(sub.add_parser("train", help="train an RL student (SB3) under a teacher"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        return run_train(args)
    try:
        if args.command == "teachers":
            for name in list_teachers():
                print(f"{name}: {json.dumps(teacher_class(name).default_hparams(), default=str)}")
        elif args.suite == "toy":
            variants = args.variants or ("all" if args.teachers == "all" else ",".join(ToyConfig.variants))
            config = ToyConfig(
                _teacher_list(args.teachers), _names(variants), _names(args.students), args.seeds, args.episodes, args.eval_every
            )
            summary = bench_toy(config, args.out, jobs=args.jobs)
            print(f"\nFinal % mastered after {config.episodes} episodes, median [min, max] over {config.seeds} seeds:")
            print(format_summary(summary, markdown=args.markdown))
            print(f"\nwrote {args.out}/summary.csv, curves.csv, per_run.csv, curves.png")
        elif args.suite == "envs":
            config = EnvSpeedConfig(steps=args.steps, resets=args.resets)
            if args.only:
                wanted = _names(args.only)
                unknown = sorted(set(wanted) - {label for label, _, _ in config.envs})
                if unknown:
                    raise ValueError(f"unknown env labels {unknown}; expected some of {[e[0] for e in config.envs]}")
                config.envs = tuple(sorted((e for e in config.envs if e[0] in wanted), key=lambda e: wanted.index(e[0])))
            table = bench_envs(config)
            print(f"\nRandom actions, {config.steps} steps per env, one process (ratio: steps/s over the 'vs' row's):")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        elif args.suite == "datagen":
            config = DatagenConfig(
                _names(args.domains), _names(args.policies), args.seeds, args.iterations,
                args.budget, args.train_steps, args.n_eval, args.device,
            )
            print(format_datagen(bench_datagen(config, args.out, jobs=args.jobs)))
        elif args.suite == "teacher-overhead":
            config = OverheadConfig(_teacher_list(args.teachers), args.seeds, args.episodes)
            table = bench_teacher_overhead(config)
            print(f"\nSeconds in sample + update over {config.episodes} grid episodes, one core ({config.seeds} seeds):")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        elif args.suite == "fuzz":
            config = FuzzConfig(episodes_per_env=args.episodes, max_steps=args.max_steps, seed=args.seed)
            if args.only:
                wanted = _names(args.only)
                config.envs = tuple(s for s in config.envs if any(w in env_label(s) for w in wanted))
                if not config.envs:
                    raise ValueError(f"no env label contains any of {list(wanted)}; labels: {[env_label(s) for s in FuzzConfig().envs]}")
            table = bench_fuzz(config)
            print(f"\nFuzz: {config.episodes_per_env} episodes per env, at most {config.max_steps} steps each, seed {config.seed}:")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
            print(f"total: {table['episodes'].sum()} episodes, {table['steps'].sum()} steps, {table['failures'].sum()} failures, {table['seconds'].sum():.1f} s")
            if table["failures"].any():
                return 1
    except ValueError as err:
        print(f"teachgym: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
