"""The ``teachgym`` console script.

``teachgym bench toy``                 teachers on simulated grid students (curves, table, PNG)
``teachgym bench teacher-overhead``    seconds teachers spend in sample + update
``teachgym bench envs``                steps/s and reset times of the envs
``teachgym teachers``                  registered teachers and their default hyper-parameters
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from teachgym.benchmarks.envs import EnvSpeedConfig, bench_envs
from teachgym.benchmarks.overhead import OverheadConfig, bench_teacher_overhead
from teachgym.benchmarks.toy import STUDENTS, ToyConfig, bench_toy, format_summary
from teachgym.teacher import list_teachers, teacher_class


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
    p.add_argument("--variants", default=",".join(toy["variants"]), help="comma-separated variant names of the students, or 'all'")
    p.add_argument("--students", default=",".join(toy["students"]), help=f"comma-separated: {', '.join(STUDENTS)}")
    p.add_argument("--seeds", type=int, default=toy["seeds"])
    p.add_argument("--episodes", type=int, default=toy["episodes"])
    p.add_argument("--eval-every", type=int, default=toy["eval_every"])
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--out", default="runs/toy", help="results directory; finished runs in it are reused")

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

    sub.add_parser("teachers", help="list teachers and their default hyper-parameters")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "teachers":
            for name in list_teachers():
                print(f"{name}: {json.dumps(teacher_class(name).default_hparams(), default=str)}")
        elif args.suite == "toy":
            config = ToyConfig(
                _teacher_list(args.teachers), _names(args.variants), _names(args.students), args.seeds, args.episodes, args.eval_every
            )
            summary = bench_toy(config, args.out, jobs=args.jobs)
            print(f"\nFinal % mastered after {config.episodes} episodes, median [min, max] over {config.seeds} seeds:")
            print(format_summary(summary))
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
        elif args.suite == "teacher-overhead":
            config = OverheadConfig(_teacher_list(args.teachers), args.seeds, args.episodes)
            table = bench_teacher_overhead(config)
            print(f"\nSeconds in sample + update over {config.episodes} grid episodes, one core ({config.seeds} seeds):")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    except ValueError as err:
        print(f"teachgym: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
