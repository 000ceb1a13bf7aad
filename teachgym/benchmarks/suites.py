"""Benchmark suites by name: the config each reads, how it runs, how its table prints.

``teachgym bench SUITE [--config FILE] [flags]``: a suite is teachers x variants x seeds (plus a
budget) described by one config dataclass. A config file (TOML or JSON) sets some of its fields
(keys = field names; an optional ``suite = "NAME"`` must match); command-line flags override the
file; everything else keeps the class defaults, adjusted by the suite's own ``defaults`` (e.g.
the walkers suite's envs). ``--config`` takes a path or the name of a file shipped in
``teachgym/benchmarks/configs/`` (``toy-full``, ``walkers-20M``, ...). Teacher hyper-parameters
go in the teacher specs (``"alp-gmm:fit_rate=100"``); otherwise each teacher keeps its class
defaults.

A new suite is one :func:`register_suite` call with its config class, a ``bench(config, out,
jobs, backend)`` function that runs through :func:`teachgym.benchmarks.runner.execute`, and a
``format(table)`` function.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from teachgym.benchmarks.runner import BACKENDS
from teachgym.hints import describe_hint, matches_hint, type_hints

try:  # Python >= 3.11; tomli is its backport
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

CONFIG_PACKAGE = "teachgym.benchmarks.configs"
MAX_CONFIG_BYTES = 1 << 20  # config files are a few hundred bytes; a bigger one is a mistake
# Steps per run of the default walkers suite, so that its 12 runs end within 3 h on 2 cores
# (--jobs 2): the four fastest runs took 1,616-1,721 s of wall time to 2M steps with their 5
# evaluations of the 100 test tasks (2.5M steps: ~3.3 h for the suite). The
# evaluations stay TeachMyAgent's every 500k steps, so a run is the first 2M steps of a longer one.
WALKERS_STEPS = 2_000_000
WALKERS_EVAL_EVERY = 500_000


@dataclass(frozen=True)
class Suite:
    """A named benchmark suite.

    Parameters
    ----------
    name
        What ``teachgym bench NAME`` and config files call it.
    config
        Its config dataclass (with a ``validate()`` method and a ``teachers`` field).
    bench
        ``bench(config, out, jobs, backend) -> table``; runs through the suite runner.
    format
        ``format(table) -> str`` for the terminal.
    help
        One line for ``teachgym bench --help``.
    defaults
        Field values that differ from the config class's defaults for this suite.
    """

    name: str
    config: type
    bench: Callable[[Any, str, int | None, str], Any]
    format: Callable[[Any], str]
    help: str
    defaults: dict[str, Any] = field(default_factory=dict)


SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    """Add ``suite`` to :data:`SUITES` (at import time of the module that defines it)."""
    if suite.name in SUITES:
        raise ValueError(f"suite {suite.name!r} is already registered")
    SUITES[suite.name] = suite
    return suite


def get_suite(name: str) -> Suite:
    """The suite called ``name``; ``ValueError`` listing the known ones otherwise."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; expected one of {sorted(SUITES)}")
    return SUITES[name]


def shipped_configs() -> list[str]:
    """Names of the config files shipped in ``teachgym/benchmarks/configs/``."""
    return sorted(p.name.rsplit(".", 1)[0] for p in resources.files(CONFIG_PACKAGE).iterdir()
                  if p.name.endswith((".toml", ".json")))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The table of a TOML or JSON config file, or of a shipped config named ``path``.

    Raises
    ------
    ValueError
        A missing file, a syntax error, or a document that is not a table.
    """
    p = Path(path)
    if not p.exists() and p.suffix == "" and str(path) in shipped_configs():
        for ext in (".toml", ".json"):
            res = resources.files(CONFIG_PACKAGE) / f"{path}{ext}"
            if res.is_file():
                return _parse(res.read_text(), f"{path}{ext}", ext)
    if p.exists() and not p.is_file():
        raise ValueError(f"config file {str(path)!r} is not a regular file; expected a TOML or JSON file")
    if not p.is_file():
        raise ValueError(f"config file {str(path)!r} not found (shipped configs: {shipped_configs()})")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ValueError(f"config file {p}: cannot read it as UTF-8 text ({reason})") from err
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValueError(f"config file {p}: larger than {MAX_CONFIG_BYTES} bytes; expected a small table of settings")
    return _parse(text, str(p), p.suffix)


def _parse(text: str, where: str, suffix: str) -> dict[str, Any]:
    if suffix != ".json" and tomllib is None:
        raise ValueError(f"config file {where}: reading TOML needs Python >= 3.11 or tomli; use JSON")
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except ValueError as err:  # TOMLDecodeError is a ValueError
        raise ValueError(f"config file {where}: {err}") from err
    except RecursionError:
        raise ValueError(f"config file {where}: nested too deeply; expected a table of settings") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {where}: expected a table of settings, got {type(data).__name__}")
    return data


def make_config(name: str, file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """The config of suite ``name``: class defaults < suite defaults < ``file`` < ``overrides``.

    ``None`` values in ``overrides`` (flags not given) are ignored; ``teachers = "all"`` means
    every registered teacher and then, unless variants are set, every variant.

    Raises
    ------
    ValueError
        Unknown keys (the message lists the known ones), a file of another suite, or a config
        that fails the suite's validation.
    """
    suite = get_suite(name)
    values: dict[str, Any] = dict(suite.defaults)
    given: dict[str, Any] = {}
    if file is not None:
        data = read_config_file(file)
        if data.pop("suite", name) != name:
            raise ValueError(f"config file {file} is for another suite; expected suite = {name!r}")
        given.update(data)
    given.update({k: v for k, v in (overrides or {}).items() if v is not None})
    fields = {f.name: f for f in dataclasses.fields(suite.config)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ValueError(f"unknown {name} setting(s) {unknown}; expected some of {sorted(fields)}")
    values.update(given)
    if values.get("teachers") == "all" or values.get("teachers") == ["all"]:
        from teachgym.teacher import list_teachers

        values["teachers"] = tuple(list_teachers())
        if "variants" in fields and "variants" not in given:
            values["variants"] = ("all",)
    hints = type_hints(suite.config)
    for key, value in values.items():
        default = fields[key].default_factory() if fields[key].default_factory is not dataclasses.MISSING else fields[key].default
        if isinstance(default, tuple) and isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        # Types first (a file's ``seeds = "three"`` made validate() raise TypeError); the
        # field's annotation, or the type of its default where it has none, says what fits.
        hint = hints.get(key, type(default) if type(default) in (bool, int, float, str) else Any)
        if not matches_hint(value, hint):
            raise ValueError(f"{name} setting {key} must be {describe_hint(hint)}, got {value!r} (default: {default!r})")
        values[key] = value
    config = suite.config(**values)
    try:
        config.validate()
    except TypeError as err:  # a value of the right type deeper inside (e.g. algo_kwargs) the checks trip on
        raise ValueError(f"{name} config: {err}") from err
    return config


def run_suite(name: str, config: Any, out: str, jobs: int | None = None, backend: str = "local") -> str:
    """Run a suite (finished runs are reused) and return its table as text."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {list(BACKENDS)}")
    suite = get_suite(name)
    return suite.format(suite.bench(config, out, jobs, backend))


# ---------------------------------------------------------------------- the CLI's part
def add_suite_arguments(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The flags every suite takes: config file, backend, jobs, output, seeds, and teachers and
    variants where its config has them (the datagen suite names its teachers ``policies``)."""
    parser.add_argument("--config", default=None,
                        help="TOML/JSON file of settings, or a shipped config name; flags override it")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local: a process pool; ray: Ray tasks on RAY_ADDRESS or a local cluster")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes / Ray CPUs (default: one per core)")
    parser.add_argument("--out", default=f"runs/{name}", help="results directory; finished runs in it are reused")
    fields = {f.name for f in dataclasses.fields(get_suite(name).config)}
    if "teachers" in fields:
        parser.add_argument("--teachers", default=None, help="comma-separated teacher specs, or 'all'")
    parser.add_argument("--seeds", type=int, default=None)
    if "variants" in fields:
        parser.add_argument("--variants", default=None, help="comma-separated variants (env ids for RL suites)")
    return parser


def overrides_from_args(args: argparse.Namespace, keys: tuple[str, ...]) -> dict[str, Any]:
    """The flags among ``keys`` that were given (dashes read as underscores)."""
    return {k: getattr(args, k, None) for k in keys}


def main_from_args(name: str, args: argparse.Namespace, extra: tuple[str, ...] = ()) -> str:
    """Build the config from ``--config`` and flags, run the suite, return its table."""
    config = make_config(name, args.config, overrides_from_args(args, ("teachers", "seeds", "variants", *extra)))
    return run_suite(name, config, args.out, args.jobs, args.backend)


# ------------------------------------------------------------------------------ suites
def _bench_toy(config: Any, out: str, jobs: int | None, backend: str) -> Any:
    from teachgym.benchmarks.toy import bench_toy

    return bench_toy(config, out, jobs=jobs, backend=backend)


def _format_toy(summary: Any) -> str:
    from teachgym.benchmarks.toy import format_summary

    return format_summary(summary)


def _bench_curriculum(config: Any, out: str, jobs: int | None, backend: str) -> Any:
    from teachgym.benchmarks.train import bench_curriculum

    return bench_curriculum(config, out, jobs=jobs, backend=backend)[1]


def _format_curriculum(summary: Any) -> str:
    return "% of the test tasks mastered at the end, over seeds:\n" + summary.to_string(
        index=False, float_format=lambda v: f"{v:.1f}")


def _bench_datagen(config: Any, out: str, jobs: int | None, backend: str) -> Any:
    from teachgym.benchmarks.datagen import bench_datagen

    return bench_datagen(config, out, jobs=jobs, backend=backend)


def _bench_reasoning(config: Any, out: str, jobs: int | None, backend: str) -> Any:
    from teachgym.benchmarks.reasoning import bench_reasoning

    return bench_reasoning(config, out, jobs=jobs, backend=backend)


def _format_reasoning(summary: Any) -> str:
    from teachgym.benchmarks.reasoning import format_reasoning

    return "Held-out accuracy (%) at the end, median [min, max] over seeds:\n" + format_reasoning(summary)


def _format_datagen(summary: Any) -> str:
    from teachgym.benchmarks.datagen import format_datagen

    return format_datagen(summary)


def _register_builtin() -> None:
    from teachgym.benchmarks.datagen import DatagenConfig
    from teachgym.benchmarks.reasoning import ReasoningConfig
    from teachgym.benchmarks.toy import ToyConfig
    from teachgym.benchmarks.train import CurriculumConfig

    register_suite(Suite("toy", ToyConfig, _bench_toy, _format_toy,
                         "teachers on simulated students (grid, skills) and their challenge variants"))
    register_suite(Suite("control", CurriculumConfig, _bench_curriculum, _format_curriculum,
                         "PPO on contextual control envs under each teacher (%% test tasks mastered)"))
    # Stump Tracks with the classic bipedal at a budget that finishes on one machine (12 runs in
    # ~3 h with --jobs 2 on free cores): PPO with normalised observations and returns, whose rl-zoo
    # settings learn BipedalWalker in a few million steps, trains ~100x faster per CPU-second than
    # the papers' SAC (18 steps/s on a core).
    # TeachMyAgent's protocol (SAC, 20M steps, 3 tracks, 16 seeds) is the shipped config walkers-20M.
    register_suite(Suite("walkers", CurriculumConfig, _bench_curriculum, _format_curriculum,
                         "PPO walkers on Stump Tracks, one-machine budget (--config walkers-20M: TeachMyAgent's SAC protocol)",
                         defaults={"suite": "walkers", "variants": ("teachgym/StumpTracks-v0",),
                                   "teachers": ("random", "alp-gmm", "alp-revisit", "alp-gmm@teachmyagent"),
                                   "env_kwargs": {"body": "classic_bipedal"}, "algo": "walker-ppo", "algo_kwargs": {},
                                   "n_envs": 16, "steps": WALKERS_STEPS, "eval_every": WALKERS_EVAL_EVERY,
                                   "seeds": 3}))
    register_suite(Suite("datagen", DatagenConfig, _bench_datagen, _format_datagen,
                         "data-generation teachers vs uniform allocation (math, code, vqa)"))
    register_suite(Suite("reasoning", ReasoningConfig, _bench_reasoning, _format_reasoning,
                         "curricula for GRPO on verifiable reasoning problems (SEC, filtering, PLR, TSCL vs random)"))


_register_builtin()
