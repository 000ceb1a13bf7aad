"""The ``teachgym`` console script.

``teachgym bench toy``                 teachers on simulated grid students (curves, table, PNG)
``teachgym bench teacher-overhead``    seconds teachers spend in sample + update
``teachgym bench envs``                steps/s and reset times of the envs
``teachgym bench students``            SB3 SAC vs fleets of K students: steps/s, and the walkers-20M protocol's hours
``teachgym bench datagen``             data-generation teachers vs uniform allocation
``teachgym bench fuzz``                random tasks (corners too) x extreme actions: no crash, NaN, bound break
``teachgym bench reasoning``           curricula for GRPO on verifiable reasoning problems vs random
``teachgym bench discovery``           LLM skill discovery (labels, subskill proposals) vs the templates' ground truth
``teachgym bench trl``                 step time of TRL's GRPOTrainer with and without a teacher in charge
``teachgym teachers [NAME]``           registered teachers and presets; NAME: its paper, idea, hyper-parameters
``teachgym plot RUN_DIR``              IQM + bootstrap CIs, curves, radar, heatmaps and report.md of a results dir
``teachgym train``                     an SB3 student (SAC/PPO/TD3) on a teachgym env under a teacher
                                       (``--fleet K``: K SAC/TD3 students with seeds seed..seed+K-1 as one fleet)
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import sys
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

from teachgym.benchmarks.datagen import DatagenConfig
from teachgym.benchmarks.envs import EnvSpeedConfig, bench_envs
from teachgym.benchmarks.fuzz import FuzzConfig, bench_fuzz, env_label
from teachgym.benchmarks.overhead import OverheadConfig, bench_teacher_overhead
from teachgym.benchmarks.reasoning import ReasoningConfig
from teachgym.benchmarks.students import StudentSpeedConfig, bench_students, format_students, protocol_hours
from teachgym.benchmarks.suites import (
    SUITES,
    add_suite_arguments,
    main_from_args,
    make_config,
    overrides_from_args,
)
from teachgym.benchmarks.toy import STUDENTS, ToyConfig, bench_toy, format_summary
from teachgym.benchmarks.trl_overhead import TRLOverheadConfig
from teachgym.teacher import list_teachers, teacher_class

# The datagen suite's own flags (beyond those of every suite), in DatagenConfig's names.
DATAGEN_FLAGS = ("domains", "policies", "iterations", "budget", "train_steps", "n_eval", "device", "student_reset", "student",
                 "engine", "base_url", "model", "api_key_env")
# The reasoning suite's own flags (beyond those of every suite), in ReasoningConfig's names.
REASONING_FLAGS = ("families", "steps", "batch_size", "n_samples", "train_levels", "test_levels", "test_size",
                   "warmup_steps", "eval_every", "device", "source", "std", "max_len")


def positive_int(text: str) -> int:
    """argparse type of counts (steps, episodes, seeds): ``--steps -1`` is an error, not a table."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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
    p = add_suite_arguments(suites.add_parser("toy", help="teachers on simulated grid students"), "toy")
    p.description = (f"Defaults: teachers {','.join(toy['teachers'])}; variants {','.join(toy['variants'])} "
                     "('all' with --teachers all); 'all' variants: every variant of each student.")
    p.add_argument("--students", default=None, help=f"comma-separated: {', '.join(STUDENTS)} (default: {','.join(toy['students'])})")
    p.add_argument("--episodes", type=int, default=None, help=f"default: {toy['episodes']}")
    p.add_argument("--eval-every", type=int, default=None, help=f"default: {toy['eval_every']}")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")

    for name in ("control", "walkers"):
        p = add_suite_arguments(suites.add_parser(name, help=SUITES[name].help), name)
        p.add_argument("--steps", type=int, default=None, help="environment steps per run")
        p.add_argument("--eval-every", type=int, default=None, help="steps between evaluations on the test set")
        p.add_argument("--fleet", type=int, default=None, metavar="K",
                       help="train SAC/TD3 runs K at a time as one fleet of students, one batched update "
                            "(runs that differ only in teacher and seed; default 0: one SB3 student per run)")

    ov = _defaults(OverheadConfig)
    p = suites.add_parser("teacher-overhead", help="seconds in sample + update over a grid run, one core")
    p.add_argument("--teachers", default=",".join(ov["teachers"]))
    p.add_argument("--seeds", type=positive_int, default=ov["seeds"])
    p.add_argument("--episodes", type=positive_int, default=ov["episodes"])

    env_defaults = EnvSpeedConfig()
    p = suites.add_parser("envs", help="steps/s and reset times of the envs vs gymnasium's originals")
    p.add_argument("--steps", type=positive_int, default=env_defaults.steps)
    p.add_argument("--resets", type=positive_int, default=env_defaults.resets)
    p.add_argument("--only", default="", help="comma-separated labels to keep (the first one is the reference)")

    st = StudentSpeedConfig()
    p = suites.add_parser("students", help="SB3 SAC vs fleets of K students in lockstep: steps/s per student and in total")
    p.add_argument("--env", default=st.env)
    p.add_argument("--preset", default=st.preset, choices=("sac", "sac-sb3", "td3"))
    p.add_argument("--fleet-sizes", default=",".join(map(str, st.fleet_sizes)), help="comma-separated K")
    p.add_argument("--devices", default=",".join(st.devices), help="comma-separated; absent ones are skipped")
    p.add_argument("--steps", type=positive_int, default=st.steps, help="timed steps per student")
    p.add_argument("--learning-starts", type=positive_int, default=st.learning_starts)
    p.add_argument("--vectorization", default=st.vectorization, choices=("sync", "async"))
    p.add_argument("--no-sb3", action="store_true", help="skip the SB3 SAC reference")

    fz = _defaults(FuzzConfig)
    p = suites.add_parser("fuzz", help="random tasks (corners included) x random/extreme actions: no exception, NaN or bound break")
    p.add_argument("--episodes", type=positive_int, default=fz["episodes_per_env"], help="episodes per env")
    p.add_argument("--max-steps", type=positive_int, default=fz["max_steps"], help="steps per episode at most")
    p.add_argument("--seed", type=int, default=fz["seed"])
    p.add_argument("--only", default="", help="comma-separated substrings of env labels to keep, e.g. 'StumpTracks,wheel'")

    dg = _defaults(DatagenConfig)
    p = add_suite_arguments(suites.add_parser("datagen", help=SUITES["datagen"].help), "datagen")
    p.add_argument("--domains", default=None, help=f"comma-separated: math, code, vqa (default: {','.join(dg['domains'])})")
    p.add_argument("--policies", default=None, help="uniform, alternating, fill-balanced, random-explore-exploit (DataEnvGym's), "
                   "even-allocation, dirichlet-allocation, explore-weakest, no-new-data (the reward's control), abs-gain-bandit, "
                   "llm-open-ended, llm-skill-list, llm-skill-tree or "
                   f"teacher specs (default: {','.join(dg['policies'])})")
    p.add_argument("--iterations", type=int, default=None, help=f"default: {dg['iterations']}")
    p.add_argument("--budget", type=int, default=None, help="examples per iteration (default: the domain's)")
    p.add_argument("--train-steps", type=int, default=None)
    p.add_argument("--n-eval", type=int, default=None)
    p.add_argument("--device", default=None, help=f"default: {dg['device']}")
    p.add_argument("--student-reset", default=None, choices=("base", "warm"),
                   help=f"base: retrain from the initial weights on all data each iteration (DataEnvGym's); warm: keep training "
                        f"(default: {dg['student_reset']})")
    p.add_argument("--student", default=None, help="default (the domain's) or hf:PATH, a local Hugging Face causal LM fine-tuned with LoRA")
    p.add_argument("--engine", default=None, choices=("template", "chat"), help="who writes the examples (default: template)")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible server of the chat engine and llm-* policies, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", default=None, help="model name sent to --base-url")
    p.add_argument("--api-key-env", default=None, help=f"environment variable holding the key (default: {dg['api_key_env']})")

    p = suites.add_parser("discovery", help="LLM skill discovery (labels, subskill proposals) against the templates' ground truth")
    p.add_argument("--base-url", required=True, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", required=True, help="model name sent to --base-url")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    p.add_argument("--domains", default="math,code", help="comma-separated: math, code, vqa")
    p.add_argument("--per-subskill", type=positive_int, default=3, help="questions per (subskill, difficulty)")
    p.add_argument("--batch-size", type=positive_int, default=20, help="questions labelled per call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-propose", action="store_true", help="label only; skip the subskill proposals")
    p.add_argument("--out", default="runs/discovery", help="folder for discovery.csv and calls.jsonl")

    rs = _defaults(ReasoningConfig)
    p = add_suite_arguments(suites.add_parser("reasoning", help=SUITES["reasoning"].help), "reasoning")
    p.description = (f"Defaults: teachers {','.join(rs['teachers'])} ('hard-to-easy' / 'easy-to-hard': fixed orders; "
                     "'online-filter': the per-prompt filter).")
    p.add_argument("--families", default=None,
                   help="comma-separated (default: the source's set; reasoning-gym dataset names with --source reasoning-gym)")
    for key in REASONING_FLAGS[1:]:
        kind = str if key in ("device", "source", "std") else int
        p.add_argument(f"--{key.replace('_', '-')}", type=kind, default=None, help=f"default: {rs[key]}")

    tr = _defaults(TRLOverheadConfig)
    p = suites.add_parser("trl", help="step time of TRL's GRPOTrainer with and without a teacher in charge (tiny model)")
    p.add_argument("--teachers", default=",".join(tr["teachers"]), help="comma-separated teacher specs")
    for key in ("steps", "warmup_steps", "repeats", "batch_size", "num_generations", "max_completion_length",
                "hidden_size", "layers", "threads"):
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=tr[key])
    p.add_argument("--device", default=tr["device"], choices=("cpu", "cuda"))
    p.add_argument("--out", default=None, help="also write the per-run rows to this CSV file")

    p = sub.add_parser("teachers", help="list teachers, their default hyper-parameters and presets")
    p.add_argument("name", nargs="?", default=None,
                   help="one teacher: its paper and idea, hyper-parameters (type, default, meaning), task spaces "
                   "and presets with their values (use as NAME@PRESET)")
    p = sub.add_parser("plot", help="statistics (IQM, bootstrap CIs), figures and report.md of a results directory")
    p.add_argument("run_dir", help="results directory (teachgym bench/train output)")
    p.add_argument("--out", default=None, help="where to write (default: RUN_DIR/report)")
    p.add_argument("--metric", default=None, help="score column (default: mastered_pct when present)")
    p.add_argument("--baseline", default=None,
                   help="teacher for the probability of improvement (default: random, or uniform, when present)")
    p.add_argument("--reps", type=positive_int, default=2000, help="bootstrap replicates (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    p.add_argument("--dims", default=None, help="the pair of task dimensions the sampling heatmaps and GMM ellipses "
                   "show, names or indices, e.g. length,mass (default: the first two)")
    # Listed here; parsed by teachgym.training_fleet (main() hands it over before this parser runs), so
    # that torch and SB3 load only for this command.
    sub.add_parser("train", add_help=False, help="train an RL student (SB3) under a teacher, or K as a fleet "
                   "(teachgym train --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; 0 on success, 2 with ``teachgym: error: ...`` on stderr otherwise.

    User mistakes (``ValueError``) and failures of the machine (``OSError``: a read-only or full
    disk, a missing folder; memory; a worker process killed) end the same way: one line that
    says what went wrong and where, no traceback. Anything else is a bug and keeps its traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv)
    except ValueError as err:
        return _error(str(err))
    except OSError as err:
        return _error(describe_os_error(err))
    except MemoryError:
        return _error("out of memory; try fewer --jobs or a smaller budget")
    except BrokenProcessPool:
        return _error("a worker process died (killed, or out of memory); finished runs are kept: "
                      "run the same command again to continue")


def _error(message: str) -> int:
    print(f"teachgym: error: {message}", file=sys.stderr)
    return 2


def describe_os_error(err: OSError) -> str:
    """``"No space left on device: runs/toy/suite.json (...)"``: what the system said, and where."""
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    text = f"{err.strerror or err}" + (f": {where}" if where else "")
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT):
        text += " (expected a readable, writable path with free space; choose another --out or free some space)"
    elif err.errno in (errno.ENOENT, errno.ENOTDIR):
        text += " (expected an existing folder on that path)"
    return text


def _run(argv: list[str]) -> int:
    if argv[:1] == ["train"]:
        from teachgym.training_fleet import main as train_main  # a single run, or --fleet K

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "teachers" and args.name is not None:
        from teachgym.teacher_doc import describe_teacher

        print(describe_teacher(args.name))  # an unknown name: ValueError listing the known ones
    elif args.command == "teachers":
        for name in list_teachers():
            cls = teacher_class(name)  # an unknown name: ValueError listing the known ones
            print(f"{name}: {json.dumps(cls.default_hparams(), default=str)}")
            for preset in sorted(cls.PRESETS):
                print(f"  {name}@{preset}")
    elif args.command == "plot":
        from teachgym.benchmarks.report import make_report

        for path in make_report(args.run_dir, args.out, args.metric, args.baseline, args.reps, args.seed, args.dims):
            print(f"wrote {path}")
    elif args.suite == "toy":
        config = make_config("toy", args.config, overrides_from_args(
            args, ("teachers", "variants", "students", "seeds", "episodes", "eval_every")))
        summary = bench_toy(config, args.out, jobs=args.jobs, backend=args.backend)
        print(f"\nFinal % mastered after {config.episodes} episodes, median [min, max] over {config.seeds} seeds:")
        print(format_summary(summary, markdown=args.markdown))
        print(f"\nwrote {args.out}/summary.csv, curves.csv, per_run.csv, curves.png")
    elif args.suite in ("control", "walkers"):
        print(main_from_args(args.suite, args, ("steps", "eval_every", "fleet")))
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
    elif args.suite == "students":
        try:
            sizes = tuple(int(k) for k in _names(args.fleet_sizes))
        except ValueError:
            raise ValueError(f"--fleet-sizes: expected comma-separated positive integers, got {args.fleet_sizes!r}") from None
        config = StudentSpeedConfig(env=args.env, preset=args.preset, fleet_sizes=sizes, devices=tuple(_names(args.devices)),
                                    steps=args.steps, learning_starts=args.learning_starts, sb3=not args.no_sb3,
                                    vectorization=args.vectorization)
        table = bench_students(config)
        print(format_students(table, protocol_hours(table, config.protocol)))
    elif args.suite == "datagen":
        print(main_from_args("datagen", args, DATAGEN_FLAGS))
    elif args.suite == "discovery":
        from teachgym.benchmarks.discovery import DiscoveryConfig, bench_discovery, format_discovery

        config = DiscoveryConfig(args.base_url, args.model, _names(args.domains), args.per_subskill, args.batch_size,
                                 args.seed, args.api_key_env, propose=not args.no_propose)
        print(format_discovery(bench_discovery(config, args.out)))
    elif args.suite == "reasoning":
        print(main_from_args("reasoning", args, REASONING_FLAGS))
    elif args.suite == "trl":
        from teachgym.benchmarks.trl_overhead import bench_trl_overhead
        from teachgym.io import write_text

        keys = ("steps", "warmup_steps", "repeats", "batch_size", "num_generations", "max_completion_length",
                "hidden_size", "layers", "threads", "device")
        config = TRLOverheadConfig(teachers=_names(args.teachers), **{k: getattr(args, k) for k in keys})
        summary, runs = bench_trl_overhead(config)
        print(f"\nTRL GRPO step on {config.device}, tiny model ({config.layers} layers, width {config.hidden_size}), "
              f"batch {config.batch_size} = {config.batch_size // config.num_generations} prompts x "
              f"{config.num_generations}, median over {config.repeats} repeats of {config.steps - config.warmup_steps} steps:")
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        if args.out:
            write_text(args.out, runs.to_csv(index=False))
            print(f"wrote {args.out}")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
