"""``teachgym train --fleet K``: K SAC or TD3 runs trained together as one fleet of students.

The K runs share every setting but the seed (member k has ``--seed`` + k; a benchmark suite's
chunk may also give each member its own teacher). They are trained in lockstep by
:class:`teachgym.students.fleet.Fleet`, one batched update for all, each member with its own env,
teacher, replay buffer and generators, and evaluated like a single run (:func:`teachgym.training.evaluate`
of each member's deterministic policy on the env's test set, at the same steps).

``OUT`` of ``teachgym train --fleet K --out OUT`` holds:

* ``member-<k>/``: member k's run folder, written as ``teachgym train`` writes a run of one env
  (:class:`teachgym.training.RunLog`: ``run.json`` with its config, ``eval.csv``, ``teacher.csv``,
  ``episodes.csv`` with the step each episode ended at, env index 0 and ``info["success"]``,
  ``tb/``; ``teacher.npz``, the teacher's final state, once complete), so that ``teachgym plot``,
  TensorBoard and the results readers take it as a run. Its ``run.json`` also says which fleet it
  belongs to (``"fleet"``): it is continued with the fleet, never alone.
* ``fleet/``: ``fleet.json`` (the members' configs and folders, the status) and ``checkpoints/``
  (:meth:`Fleet.save`: learner, replay buffers, teachers, episodes in progress, plus ``train.npz``,
  this loop's state: the evaluation rows, the episodes logged, the next evaluation and checkpoint).

``--resume`` continues the fleet from its last checkpoint exactly (the members' ``eval.csv``,
``episodes.csv`` and TensorBoard events are those of the uninterrupted run, wherever the checkpoint
fell in the episodes), under the same rules as a single run: only ``steps``, ``device`` and the
intervals may change.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from teachgym.io import load_state, save_state, write_json
from teachgym.spaces import TaskSpace
from teachgym.students.fleet import Fleet, FleetConfig, fleet_config, latest_checkpoint, make_fleet
from teachgym.training import (
    FLEET_FOLDER,
    NO_TENSORBOARD,
    RESUME_MAY_CHANGE,
    LocalLink,
    RunFolder,
    RunLog,
    TrainConfig,
    add_train_arguments,
    check_config,
    config_from_args,
    evaluate,
    load_test_set,
    run_train,
)
from teachgym.wrappers import rescale_score

FLEET_FORMAT = "teachgym-fleet/1"
FLEET_ALGOS = ("sac", "td3")
PROGRESS_EVERY = 256  # lockstep steps between two progress reports (and chances to stop)


class RecordingLink(LocalLink):
    """A member's teacher as the fleet holds it: every update recorded for ``episodes.csv``
    (:class:`LocalLink`), and the teacher's state for the fleet's checkpoints."""

    def state_dict(self) -> dict[str, Any]:
        return self.teacher.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.teacher.load_state_dict(state)


# ----------------------------------------------------------------------------- configuration


def member_configs(config: TrainConfig, k: int) -> list[TrainConfig]:
    """The K runs of ``teachgym train --fleet K``: ``config`` with seeds ``seed``, ..., ``seed + K - 1``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"--fleet: expected a number of students >= 1, got {k!r}")
    out = []
    for i in range(k):
        member = dataclasses.replace(config, seed=config.seed + i)
        member.derived = config.derived  # the intervals still follow --steps where config's do
        out.append(member)
    return out


def check_fleet(configs: Sequence[TrainConfig]) -> TaskSpace:
    """``ValueError`` unless ``configs`` can train as one fleet (before anything is written).

    Every run must be SAC or TD3 with one env (the fleet steps one env per member), a local
    teacher and no forgetting, and the runs may differ only in their teacher and seed. Returns
    the task space.
    """
    if not configs:
        raise ValueError("a fleet needs at least one run")
    for config in configs:
        if config.algo == "auto":
            check_config(config)  # "auto" becomes the algorithm the action space takes
    first = configs[0]
    if first.algo not in FLEET_ALGOS:
        raise ValueError(f"--fleet trains SAC or TD3 students (one batched update); got --algo {first.algo!r}")
    if first.n_envs != 1:
        raise ValueError(f"--fleet steps one env per student: expected --n-envs 1, got {first.n_envs} "
                         "(the fleet's K envs are stepped together instead)")
    if first.backend != "local":
        raise ValueError(f"--fleet serves each student's teacher from this process; expected --backend local, "
                         f"got {first.backend!r}")
    if first.forget_every:
        raise ValueError("--fleet has no forgetting student; expected --forget-every 0")
    shared = _shared(first)
    for config in configs[1:]:
        other = _shared(config)
        if other != shared:
            diff = "; ".join(f"{k}: {shared.get(k)!r} vs {other.get(k)!r}" for k in shared if shared[k] != other.get(k))
            raise ValueError(f"the runs of a fleet may differ only in teacher and seed ({diff})")
    space = None
    for teacher in dict.fromkeys(c.teacher for c in configs):
        space = check_config(dataclasses.replace(first, teacher=teacher))
    student_config(first)
    return space


def _shared(config: TrainConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    for key in ("teacher", "seed"):
        out.pop(key)
    return json.loads(json.dumps(out))


def student_config(config: TrainConfig) -> FleetConfig:
    """The fleet's hyper-parameters: the SB3 preset of ``config.algo`` with ``algo_kwargs`` over it."""
    try:
        return fleet_config(config.algo, **{**config.algo_kwargs, "device": config.device})
    except TypeError as err:  # a value of the wrong kind deep in the checks, e.g. train_freq=[4, "step"]
        raise ValueError(f"bad {config.algo} hyper-parameter for a fleet: {err}") from err


def _vectorization(config: TrainConfig, k: int) -> str:
    if config.vec == "subproc" or (config.vec == "auto" and k > 1):
        return "async"
    return "sync"


# ----------------------------------------------------------------------------- the fleet run


class FleetTrainer:
    """K runs trained as one fleet (see the module docstring); use :func:`train_fleet`."""

    def __init__(self, configs: Sequence[TrainConfig], member_dirs: Sequence[str | os.PathLike],
                 fleet_dir: str | os.PathLike, resume: bool = False,
                 progress: bool | Callable[[int], None] = True) -> None:
        if len(member_dirs) != len(configs):
            raise ValueError(f"{len(configs)} runs but {len(member_dirs)} member folders")
        self.space = check_fleet(configs)
        self.k = len(configs)
        self.folders = [RunFolder(d) for d in member_dirs]
        if len({f.root.resolve() for f in self.folders}) != self.k:
            raise ValueError("the members of a fleet need a folder each")
        self.fleet_dir = Path(fleet_dir)
        self.fleet_json = self.fleet_dir / "fleet.json"
        self.checkpoints = self.fleet_dir / "checkpoints"
        self.resume = resume
        self.configs = self._check(list(configs))  # nothing is written before the fleet is built
        self.progress = progress is True
        self.report = progress if callable(progress) else None
        self.logs = [RunLog(f, self.space) for f in self.folders]
        env = gym.make(self.configs[0].env, **self.configs[0].env_kwargs)
        try:
            self.test_tasks = load_test_set(self.configs[0], env, self.space)  # --test-set, or the env's
        finally:
            env.close()
        first = self.configs[0]
        self.next_eval = 0
        self.next_checkpoint = first.checkpoint_every
        self.started = time.perf_counter()
        self.wall_before = 0.0
        self.fleet: Fleet | None = None
        self._value_envs: list[gym.Env] = []
        self.notes: list[str] = []  # for the user: returned in the members' summaries

    # ------------------------------------------------------------------------- checks
    def _check(self, configs: list[TrainConfig]) -> list[TrainConfig]:
        """Check the folders without writing; return the configs to run (a resumed run's intervals)."""
        if not self.resume:
            if self.fleet_dir.exists() and (not self.fleet_dir.is_dir() or any(self.fleet_dir.iterdir())):
                raise ValueError(f"{self.fleet_dir} already holds files; pass --resume to continue a fleet run, "
                                 "or choose an empty --out")
            for folder, config in zip(self.folders, configs):
                folder.check(config, resume=False)
            return configs
        if not self.fleet_json.exists():
            raise ValueError(f"--resume: {self.fleet_dir.parent} is not a fleet run (no {self.fleet_json})")
        try:
            saved = json.loads(self.fleet_json.read_text())
            members = saved["members"]
            saved_configs = [TrainConfig(**m["config"]) for m in members]
            saved_dirs = [m["dir"] for m in members]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"--resume: {self.fleet_json} is not a teachgym fleet file: {err}") from err
        if len(saved_configs) != len(configs):
            raise ValueError(f"--resume: {self.fleet_dir} is a fleet of {len(saved_configs)} students, "
                             f"not {len(configs)}")
        for k, (mine, theirs, folder) in enumerate(zip(configs, saved_configs, self.folders)):
            a, b = mine.identity(), theirs.identity()
            if a != b:
                diff = "; ".join(f"{key} was {b.get(key)!r}, now {a.get(key)!r}" for key in a if a.get(key) != b.get(key))
                raise ValueError(f"--resume: member {k} of {self.fleet_dir} was written by another config ({diff}); "
                                 f"only {', '.join(RESUME_MAY_CHANGE)} may change when a run is continued")
            if saved_dirs[k] != self._relative(folder.root):
                raise ValueError(f"--resume: member {k} of {self.fleet_dir} lives in {saved_dirs[k]!r}, "
                                 f"not {self._relative(folder.root)!r}")
            if folder.run_json.exists():
                folder.check(mine, resume=True)
        return [c.continuing(s) for c, s in zip(configs, saved_configs)]

    def _relative(self, path: Path) -> str:
        return os.path.relpath(path, self.fleet_dir)

    def _complete(self) -> list[dict[str, Any]] | None:
        """The members' summaries if a resumed fleet already reached its budget (nothing to do)."""
        try:
            status = json.loads(self.fleet_json.read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            return None
        if status != "complete":
            return None
        out = []
        for folder in self.folders:
            if not folder.eval_csv.exists():
                return None
            with open(folder.eval_csv, newline="") as fh:
                rows = list(csv.DictReader(fh))
            if not rows or int(rows[-1]["step"]) < self.configs[0].steps:
                return None
            out.append({"steps": int(rows[-1]["step"]), "mastered_pct": float(rows[-1]["mastered_pct"]),
                        "episodes": int(rows[-1]["episodes"]), "evaluations": len(rows), "out": str(folder.root),
                        "note": "the run was already complete"})
        return out

    # ------------------------------------------------------------------------- set-up
    def _start(self) -> None:
        """Mark the fleet and its members as running (after every check passed)."""
        self.fleet_dir.mkdir(parents=True, exist_ok=True)
        for folder, config in zip(self.folders, self.configs):
            # Without a checkpoint the fleet starts again from step 0: a killed predecessor's tables go.
            folder.start(config, self.checkpoint is None, self.space)
        self._write_status("running")

    def _write_status(self, status: str) -> None:
        members = [{"config": dataclasses.asdict(c), "dir": self._relative(f.root)}
                   for c, f in zip(self.configs, self.folders)]
        write_json(self.fleet_json, {"format": FLEET_FORMAT, "members": members, "status": status})
        for k, (folder, config) in enumerate(zip(self.folders, self.configs)):
            folder.write_status(config, status, self.space, {"fleet": {
                "member": k, "members": self.k, "folder": os.path.relpath(self.fleet_dir, folder.root)}})

    def _bind_value_estimates(self) -> None:
        """Give each member's teacher its critic's V(s0) per task, as a single run does (SPDL reads it)."""
        config = self.configs[0]
        for k, member in enumerate(self.fleet.members):
            env = gym.make(config.env, **config.env_kwargs)  # one each: async members' teachers run in threads
            self._value_envs.append(env)
            member.teacher.teacher.bind(value_estimate=self._value_estimate(k, env, self.configs[k].seed))

    def _value_estimate(self, k: int, env: gym.Env, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        learner, score_range = self.fleet.learner, getattr(env.unwrapped, "score_range", None)

        def value_estimate(tasks: np.ndarray) -> np.ndarray:
            tasks = np.asarray(tasks, dtype=np.float64).reshape(len(tasks), -1)
            obs = np.stack([env.reset(seed=seed + i, options={"task": t})[0] for i, t in enumerate(tasks)])
            return np.array([rescale_score(v, score_range) for v in learner.member_value(k, obs)])

        return value_estimate

    # ------------------------------------------------------------------------- running
    def run(self) -> list[dict[str, Any]]:
        if self.resume:
            done = self._complete()
            if done is not None:
                return done
        config = self.configs[0]
        self.checkpoint = latest_checkpoint(self.checkpoints) if self.resume else None
        self.fleet = make_fleet(config.env, [(c.teacher, c.seed) for c in self.configs], config.env_kwargs,
                                preset=config.algo, overrides=config.algo_kwargs, device=config.device,
                                vectorization=_vectorization(config, self.k), wrap_teacher=RecordingLink)
        bar = None
        try:
            for log, member in zip(self.logs, self.fleet.members):
                log.link = member.teacher
            self._bind_value_estimates()
            self._start()
            if self.checkpoint is not None:
                self._load()
            for log in self.logs:  # a resumed fleet's events past its checkpoint go, as a single run's
                if not log.open_tensorboard(self.fleet.num_timesteps + 1 if self.checkpoint is not None else None):
                    self.notes = [NO_TENSORBOARD]
            if self.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=config.steps, initial=self.fleet.num_timesteps, unit="step", dynamic_ncols=True,
                           desc=f"fleet of {self.k}")
            self.reported = self.fleet.num_timesteps
            while True:
                step = self.fleet.num_timesteps
                if step >= self.next_eval:
                    self._evaluate(step, bar)
                if step >= self.next_checkpoint:
                    self._checkpoint(step)
                if step >= config.steps:
                    break
                self.fleet.learn(min(self.next_eval, self.next_checkpoint, config.steps, step + PROGRESS_EVERY) - step,
                                 callback=self._episodes_ended)
                self._progress(bar)
            step = self.fleet.num_timesteps
            if self.logs[0].eval_rows[-1]["step"] != step:
                self._evaluate(step, bar)
            self._checkpoint(step)
            for log in self.logs:
                save_state(log.folder.root / "teacher.npz", log.link.state_dict())
            self._write_status("complete")
        finally:
            if bar is not None:
                bar.close()
            self.fleet.close()
            for env in self._value_envs:
                env.close()
            for log in self.logs:
                log.close()
        return [log.summary("; ".join(self.notes)) for log in self.logs]

    def _episodes_ended(self, fleet: Fleet) -> None:
        """Record where the members' episodes ended at this step: each member is a run of one env (index 0)."""
        for k, success in fleet.ended:
            self.logs[k].episode_ended(fleet.num_timesteps, 0, success)

    def _progress(self, bar: Any) -> None:
        step = self.fleet.num_timesteps
        if bar is not None:
            bar.update(step - bar.n)
        if self.report is not None and step > self.reported:  # a suite runner's bar counts every member's steps
            self.report(self.k * (step - self.reported))
        self.reported = step

    def _wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def _evaluate(self, step: int, bar: Any) -> None:
        wall = self._wall()
        for k, (log, config) in enumerate(zip(self.logs, self.configs)):
            _, mastered, returns = evaluate(self.fleet.member_policy(k), config.env, config.env_kwargs,
                                            self.test_tasks, config.eval_envs, config.mastery_return,
                                            seed=config.seed * 100_003)  # a single run's evaluation seeds
            log.add_evaluation(step, mastered, returns, wall)
        while self.next_eval <= step:
            self.next_eval += self.configs[0].eval_every
        if bar is not None:
            pct = [log.eval_rows[-1]["mastered_pct"] for log in self.logs]
            bar.set_postfix(mastered=f"{np.mean(pct):.1f}% (mean of {self.k})")

    # ------------------------------------------------------------------------- checkpoints
    def _checkpoint(self, step: int) -> None:
        for log in self.logs:
            log.log_episodes()
        latest = latest_checkpoint(self.checkpoints)
        if latest is not None and json.loads((self.checkpoints / "latest.json").read_text())["step"] == step:
            return  # resumed at this very step: the checkpoint on disk is this state already
        while self.next_checkpoint <= step:
            self.next_checkpoint += self.configs[0].checkpoint_every
        loop: dict[str, Any] = {"step": step, "next_eval": self.next_eval, "next_checkpoint": self.next_checkpoint,
                                "wall_s": self._wall()}
        for k, log in enumerate(self.logs):
            loop.update(log.state(f"_{k}"))
        self.fleet.save(self.checkpoints, extra={"train": loop})

    def _load(self) -> None:
        self.fleet.load(self.checkpoints)
        try:
            loop = load_state(self.checkpoint / "train.npz")
            self.next_eval = int(loop["next_eval"])
            self.next_checkpoint = int(loop["next_checkpoint"])
            self.wall_before = float(loop["wall_s"])
            step = int(loop["step"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{self.checkpoint} holds no readable train.npz: {err}") from err
        if step != self.fleet.num_timesteps:
            raise ValueError(f"{self.checkpoint}: train.npz is of step {step}, the fleet's state of "
                             f"{self.fleet.num_timesteps}")
        for k, log in enumerate(self.logs):
            log.restore(loop, f"_{k}")


def train_fleet(configs: Sequence[TrainConfig], member_dirs: Sequence[str | os.PathLike],
                fleet_dir: str | os.PathLike, resume: bool = False,
                progress: bool | Callable[[int], None] = True) -> list[dict[str, Any]]:
    """Train (or, with ``resume``, continue) the runs ``configs`` as one fleet; their final evaluations.

    ``configs[k]`` writes its run folder in ``member_dirs[k]``; the fleet's state goes in
    ``fleet_dir``. ``progress``: a tqdm bar (True), none (False), or a callable given the env steps
    done by all members together since its last call (a suite runner's shared bar).

    Raises
    ------
    ValueError
        Runs that cannot train as one fleet (PPO, several envs per run, settings other than
        teacher and seed that differ), bad settings, folders that hold something else. Nothing
        is written before these checks pass.
    """
    return FleetTrainer(configs, member_dirs, fleet_dir, resume=resume, progress=progress).run()


def member_dirs(out: str | os.PathLike, k: int) -> list[Path]:
    """Where ``teachgym train --fleet K --out OUT`` puts its members' run folders."""
    return [Path(out) / f"member-{i}" for i in range(k)]


def train_fleet_out(config: TrainConfig, k: int, out: str | os.PathLike, resume: bool = False,
                    progress: bool | Callable[[int], None] = True) -> list[dict[str, Any]]:
    """``teachgym train --fleet K``: ``config`` with seeds ``seed`` ... ``seed + K - 1`` as one fleet in ``out``."""
    configs = member_configs(config, k)
    root = Path(out)
    if not resume and root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(f"{root} already holds files; pass --resume to continue a fleet run, or choose an empty --out")
    return train_fleet(configs, member_dirs(root, k), root / FLEET_FOLDER, resume=resume, progress=progress)


# ----------------------------------------------------------------------------- CLI


def run_train_fleet(args: argparse.Namespace) -> int:
    """``teachgym train --fleet K``: run, print each member's final % mastered; 2 with a message on bad input."""
    try:
        fleet_run = args.resume and (Path(args.out) / FLEET_FOLDER).is_dir()
        # A fleet's settings are its first member's (seed: the fleet's first).
        config = config_from_args(args, member_dirs(args.out, 1)[0] if fleet_run else None)
        summaries = train_fleet_out(config, args.fleet, args.out, resume=args.resume, progress=not args.no_progress)
    except (ValueError, OSError) as err:
        print(f"teachgym: error: {err}", file=sys.stderr)
        return 2
    for s in summaries:
        print(f"{s['steps']} steps, {s['episodes']} episodes: {s['mastered_pct']:.1f}% of the test set mastered "
              f"({s['evaluations']} evaluations) -> {s['out']}/eval.csv")
    if summaries and summaries[0]["note"]:
        print(f"note: {summaries[0]['note']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``teachgym train``, with ``--fleet K`` (a single run without it)."""
    parser = argparse.ArgumentParser(prog="teachgym train", description="Train an RL student under a teacher.")
    add_train_arguments(parser)
    parser.add_argument("--fleet", type=int, default=None, metavar="K",
                        help="train K SAC/TD3 students together, seeds --seed .. --seed+K-1, one batched update "
                             "(OUT/member-<k>: their run folders; OUT/fleet: the fleet's checkpoint)")
    args = parser.parse_args(argv)
    return run_train(args) if args.fleet is None else run_train_fleet(args)


if __name__ == "__main__":
    sys.exit(main())
