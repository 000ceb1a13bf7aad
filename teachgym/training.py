"""Train an SB3 student on a teachgym env under a teacher: evaluation, checkpoints, resume.

``teachgym train --env teachgym/StumpTracks-v0 --env-kwargs body=classic_bipedal --teacher alp-gmm
--algo sac --steps 20000000 --n-envs 8 --device auto --out runs/x`` or, from Python,
``train(TrainConfig(...), "runs/x")``. The one teacher lives in this process; with several
envs in sub-processes they reach it through :class:`teachgym.vector.TeacherServer` (or a Ray
actor, ``--backend ray``). At fixed step intervals the student is evaluated on the env's fixed
``test_set()`` (% mastered: ``info["success"]`` at the episode's end where the env gives it,
return > 230 otherwise) and the run is checkpointed without pickle.

A run folder holds ``run.json`` (config and status), ``eval.csv`` (step, % mastered, ...),
``teacher.csv`` (teacher statistics and task histograms at each evaluation), ``episodes.csv``
(every episode's task and score), ``tb/`` (TensorBoard, when ``tensorboard`` is installed) and
``checkpoints/`` (``latest.json`` names the last complete one; each holds ``model.pt`` — state
dicts and RNG tensors for ``torch.load(weights_only=True)`` — and ``.npz`` files for the
replay buffer, the teacher and the loop). A checkpoint is taken between two SB3 iterations,
usually in the middle of some episodes.

Exact resume: a resumed run gives the uninterrupted run's numbers (``eval.csv`` and
``episodes.csv`` identical), for PPO, SAC and TD3 and any number of envs. Each worker keeps the
seed, task and actions of its episode in progress (:class:`~teachgym.vector.EpisodeCurriculum`),
so a resumed worker resets with that seed and task and takes the same actions again, which
brings the env back to the very state it was checkpointed in (the envs here are deterministic
given their seed, task and actions; one that is not is an error at the replay) — replay rather
than pickling env internals, which Box2D bodies do not allow, and rather than waiting for all
envs to end an episode together, which with several envs may never happen. The loop keeps the
rest: RNG states, PPO's episode-start flags, the counters, and the tasks drawn in advance.

Same seed, same numbers: with sub-process workers the teacher server runs in its ordered mode —
each worker holds a next task drawn in advance, its updates are queued, and after every vector
step (:class:`FlushEachStep`) the server applies the step's updates in worker order, then draws
the next tasks in worker order, so the race of the processes changes nothing. ``--resume`` may
change ``--steps`` (a larger budget continues the run), ``--device`` and the evaluation and
checkpoint intervals (those derived from ``--steps`` keep the run's values); any other change is
refused, naming the setting.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper

from teachgym.io import atomic_path, load_state, save_state, write_json, write_text
from teachgym.spaces import TaskSpace, count_tasks
from teachgym.students.sb3 import (
    PRESETS,
    check_overrides,
    forget,
    initial_state_values,
    is_off_policy,
    load_replay_state,
    load_torch_state,
    make_student,
    replay_state,
    resolve_device,
    torch_state,
)
from teachgym.teacher import Teacher, make_teacher, parse_teacher_spec, teacher_class
from teachgym.vector import EpisodeCurriculum, TeacherServer, ray_teacher
from teachgym.wrappers import env_task_space, rescale_score

EXPLOIT_SAMPLES = 1000  # draws from the teacher's non-exploratory distribution logged at each evaluation
MASTERY_RETURN = 230.0  # teachDeepRL / TeachMyAgent: a test task is mastered when its return > 230
EVAL_COLUMNS = ("step", "episodes", "mastered_pct", "mean_return", "wall_s")
RESUME_MAY_CHANGE = ("steps", "device", "eval_every", "checkpoint_every")  # all other settings shape the run
FLEET_FOLDER = "fleet"  # OUT/fleet of ``teachgym train --fleet K`` (teachgym.training_fleet)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in ``run.json``).

    ``eval_every`` / ``checkpoint_every`` default to a twentieth / a tenth of ``steps`` (a resumed
    run keeps the intervals it was started with unless they are given); ``forget_every`` > 0
    makes the forgetting student (fresh networks and buffer every K steps).
    ``vec``: ``"auto"`` (sub-processes when ``n_envs`` > 1), ``"dummy"`` or ``"subproc"``.
    """

    env: str
    teacher: str = "alp-gmm"
    algo: str = "sac"
    steps: int = 1_000_000
    n_envs: int = 1
    seed: int = 0
    device: str = "auto"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_every: int | None = None
    checkpoint_every: int | None = None
    forget_every: int = 0
    backend: str = "local"
    vec: str = "auto"
    eval_envs: int = 10
    mastery_return: float = MASTERY_RETURN

    def __post_init__(self) -> None:
        # The intervals derived from ``steps`` (not a field: run.json holds the values only).
        self.derived = tuple(k for k in ("eval_every", "checkpoint_every") if getattr(self, k) is None)
        self.eval_every = int(self.eval_every or max(self.steps // 20, 1))
        self.checkpoint_every = int(self.checkpoint_every or max(self.steps // 10, 1))

    def identity(self) -> dict[str, Any]:
        """The fields a resumed run must share: all but those that change nothing it has done
        (``steps``, ``device``, ``eval_every``, ``checkpoint_every``: evaluations draw from no
        generator of the run, and a resumed run continues exactly from any checkpoint)."""
        out = dataclasses.asdict(self)
        for key in RESUME_MAY_CHANGE:
            out.pop(key)
        return json.loads(json.dumps(out))

    def continuing(self, run: TrainConfig) -> TrainConfig:
        """This config for continuing ``run``: the intervals not given here are the run's own, so
        that ``--resume --steps <more>`` keeps evaluating at the run's rhythm."""
        return dataclasses.replace(self, **{key: getattr(run, key) for key in self.derived})


# ----------------------------------------------------------------------------- validation


def check_config(config: TrainConfig) -> TaskSpace:
    """Raise ``ValueError`` for a bad env id, env kwargs, algorithm, teacher or number; return the task space."""
    if config.algo not in PRESETS:
        raise ValueError(f"unknown algorithm {config.algo!r}; expected one of {sorted(PRESETS)}")
    parse_teacher_spec(config.teacher)  # unknown teacher -> ValueError listing the known ones
    for name in ("steps", "n_envs", "eval_every", "checkpoint_every", "eval_envs"):
        if int(getattr(config, name)) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.forget_every < 0:
        raise ValueError(f"forget_every must be >= 0, got {config.forget_every}")
    if config.backend not in ("local", "ray"):
        raise ValueError(f"unknown backend {config.backend!r}; expected 'local' or 'ray'")
    if config.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as err:
            raise ValueError("--backend ray needs ray: pip install 'teachgym[ray]'") from err
    if config.vec not in ("auto", "dummy", "subproc"):
        raise ValueError(f"unknown vec {config.vec!r}; expected 'auto', 'dummy' or 'subproc'")
    resolve_device(config.device)
    check_overrides(config.algo, config.algo_kwargs)
    if config.env not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("teachgym/"))
        raise ValueError(f"unknown env id {config.env!r}; teachgym's envs are {known}")
    try:
        env = gym.make(config.env, **config.env_kwargs)
    except TypeError as err:
        raise ValueError(f"env {config.env!r} does not take these kwargs {config.env_kwargs}: {err}") from err
    try:
        space = env_task_space(env)
        if not callable(getattr(env.unwrapped, "test_set", None)):
            raise ValueError(f"env {config.env!r} has no test_set(); evaluation needs fixed test tasks")
    finally:
        env.close()
    name, hparams = parse_teacher_spec(config.teacher)
    make_teacher(name, space, seed=0, adapt=True, **hparams)  # bad hyper-parameters -> ValueError now
    if teacher_class(name).train_on_last_sample is not Teacher.train_on_last_sample:
        # SB3 learns from every transition it collects: it cannot play a level only to score it.
        raise ValueError(
            f"teacher {name!r} has some episodes played only to be scored, which SB3 students cannot "
            "leave out of their updates; use 'plr' here (robust PLR runs in teachgym bench toy / reasoning)"
        )
    return space


# ----------------------------------------------------------------------------- evaluation


def evaluate(model: Any, env_id: str, env_kwargs: dict[str, Any], tasks: np.ndarray, n_envs: int = 10,
             mastery_return: float = MASTERY_RETURN, seed: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
    """Run the deterministic policy once on each test task, ``n_envs`` envs stepped together.

    Returns the fraction mastered, the mastered flags and the returns. Task ``i`` is reset with
    seed ``seed + i``, so an evaluation draws nothing from any shared generator.
    """
    envs = [gym.make(env_id, **env_kwargs) for _ in range(min(n_envs, len(tasks)))]
    returns = np.zeros(len(tasks))
    mastered = np.zeros(len(tasks), dtype=bool)
    running: list[int | None] = [None] * len(envs)
    obs: list[Any] = [None] * len(envs)
    next_task = 0

    def start(slot: int) -> None:
        nonlocal next_task
        running[slot] = None
        if next_task < len(tasks):
            running[slot] = next_task
            obs[slot], _ = envs[slot].reset(seed=seed + next_task, options={"task": tasks[next_task]})
            next_task += 1

    try:
        for slot in range(len(envs)):
            start(slot)
        while any(i is not None for i in running):
            active = [s for s, i in enumerate(running) if i is not None]
            actions, _ = model.predict(np.stack([obs[s] for s in active]), deterministic=True)
            for slot, action in zip(active, actions):
                i = running[slot]
                obs[slot], reward, terminated, truncated, info = envs[slot].step(action)
                returns[i] += float(reward)
                if terminated or truncated:
                    mastered[i] = bool(info["success"]) if "success" in info else returns[i] > mastery_return
                    start(slot)
    finally:
        for env in envs:
            env.close()
    return float(mastered.mean()), mastered, returns


def teacher_statistics(teacher: Teacher) -> dict[str, float]:
    """Scalars describing a teacher's state: GMM components and their ALP, arm probabilities."""
    stats: dict[str, float] = {"teacher_updates": float(teacher.n_updates)}
    mixture = getattr(teacher, "mixture", None)
    if mixture is not None and hasattr(mixture, "weights"):
        stats["gmm_components"] = float(mixture.n_components)
        stats["gmm_mean_alp"] = float(np.dot(mixture.weights, mixture.means[:, -1]))
    probabilities = getattr(teacher, "probabilities", None)
    if callable(probabilities):
        p = np.asarray(probabilities(), dtype=float).ravel()
        for i, value in enumerate(p[:32]):
            stats[f"p_arm_{i}"] = float(value)
    return stats


def task_heatmap(space: TaskSpace, tasks: np.ndarray, dims: tuple[int, int] = (0, 1),
                 bins: int = 20) -> np.ndarray:
    """Counts of ``tasks`` over two dimensions of the space as a ``bins`` x ``bins`` image in [0, 1].

    Row 0 is the top (highest value of ``dims[1]``), as an image viewer shows it.
    """
    a, b = dims
    counts, _, _ = np.histogram2d(tasks[:, a], tasks[:, b], bins=bins,
                                  range=[(float(space.low[a]), float(space.high[a])),
                                         (float(space.low[b]), float(space.high[b]))])
    peak = counts.max()
    return (counts.T[::-1] / peak if peak > 0 else counts.T).astype(np.float32)


def task_histograms(space: TaskSpace, tasks: np.ndarray, bins: int = 10) -> dict[str, str]:
    """Per-dimension counts of ``tasks`` in ``bins`` equal bins over the space's bounds, as text."""
    counts = count_tasks(tasks, space.low, space.high, bins)
    return {f"hist_{name}": " ".join(str(int(c)) for c in row) for name, row in zip(space.names, counts)}


def teacher_row(step: int, teacher: Teacher, space: TaskSpace,
                tasks: np.ndarray) -> tuple[dict[str, Any], np.ndarray | None]:
    """``teacher.csv``'s row at ``step`` (statistics, histograms of the ``tasks`` sampled since the
    last evaluation and of the teacher's exploit distribution) and those exploit samples."""
    stats: dict[str, Any] = {"step": step, **teacher_statistics(teacher)}
    stats.update(task_histograms(space, tasks))
    # The teacher's curriculum without its exploration share (GMM teachers), from its own seed.
    exploit = teacher.exploit_tasks(EXPLOIT_SAMPLES, seed=step)
    if exploit is not None:
        stats.update({f"exploit_{k}": v for k, v in task_histograms(space, exploit).items()})
    return stats, exploit


def append_episodes(path: Path, names: tuple[str, ...], tasks: np.ndarray, scores: np.ndarray) -> None:
    """Append one ``episodes.csv`` row per (task, score), exactly (17 digits), and sync the file."""
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow([*names, "score"])
        for task, score in zip(tasks.tolist(), scores.tolist()):
            writer.writerow([*(f"{v:.17g}" for v in task), f"{score:.17g}"])
        fh.flush()
        os.fsync(fh.fileno())


# ----------------------------------------------------------------------------- the teacher link


class LocalLink:
    """The teacher used in-process (one env or DummyVecEnv), recording updates like the server.

    A DummyVecEnv steps its envs one after the other in index order, so the teacher sees the
    same stream in every run with the same seed; nothing needs flushing.
    """

    def __init__(self, teacher: Teacher, n_envs: int = 1) -> None:
        self.teacher = teacher
        self.task_space = teacher.task_space
        self._tasks: list[np.ndarray] = []
        self._scores: list[float] = []

    def client(self, worker: int) -> LocalLink:
        return self

    def flush(self) -> None:
        """Apply the updates of the vector step that just ended (a server's canonical order)."""

    def next_tasks(self) -> list[list[float] | None]:
        """The tasks drawn in advance for the workers' next resets (none here)."""
        return []

    def load_next_tasks(self, tasks: list[list[float] | None]) -> None:
        if len(tasks):
            raise ValueError("the checkpoint holds tasks drawn in advance for sub-process workers; "
                             "this run has none")

    def sample(self) -> Any:
        return self.teacher.sample()

    def update(self, task: Any, score: float, **extras: Any) -> None:
        self.teacher.update(task, score, **extras)
        self._tasks.append(self.task_space.vector(task).copy())
        self._scores.append(float(score))

    def drain_log(self) -> tuple[np.ndarray, np.ndarray]:
        tasks = np.asarray(self._tasks, dtype=np.float64).reshape(-1, len(self.task_space.low))
        scores = np.asarray(self._scores, dtype=np.float64)
        self._tasks, self._scores = [], []
        return tasks, scores

    def teacher_state(self) -> dict[str, Any]:
        return self.teacher.state_dict()

    def close(self) -> None:
        pass


class ServerLink(LocalLink):
    """The teacher behind a :class:`TeacherServer` for sub-process workers, in its ordered mode:
    the learner flushes after each vector step, so the race of the workers for the one teacher
    does not change what it samples."""

    def __init__(self, teacher: Teacher, n_envs: int = 1) -> None:
        super().__init__(teacher)
        self.server = TeacherServer(teacher, record=True, workers=n_envs,
                                    max_connections=max(TeacherServer.max_connections, n_envs + 1))

    def client(self, worker: int) -> Any:
        return self.server.client(worker)

    def flush(self) -> None:
        self.server.flush()

    def next_tasks(self) -> list[list[float] | None]:
        return self.server.next_tasks()

    def load_next_tasks(self, tasks: list[list[float] | None]) -> None:
        self.server.load_next_tasks(tasks)

    def drain_log(self) -> tuple[np.ndarray, np.ndarray]:
        return self.server.drain_log()

    def teacher_state(self) -> dict[str, Any]:
        with self.server.lock:
            return self.teacher.state_dict()

    def close(self) -> None:
        self.server.close()


class RayLink(LocalLink):
    """The teacher in a Ray actor; ``self.teacher`` is refreshed from it for statistics.

    The actor serves the workers in the order their calls arrive: unlike the local server, two
    runs with the same seed may differ.
    """

    def __init__(self, teacher: Teacher, n_envs: int = 1) -> None:
        super().__init__(teacher)
        self.remote = ray_teacher(teacher)

    def client(self, worker: int) -> Any:
        return self.remote

    def drain_log(self) -> tuple[np.ndarray, np.ndarray]:
        tasks, scores = self.remote.drain_log()
        self.teacher.load_state_dict(self.remote.state_dict())
        return tasks, scores

    def teacher_state(self) -> dict[str, Any]:
        return self.remote.state_dict()


class FlushEachStep(VecEnvWrapper):
    """Flush the teacher link after every step and around every reset of the wrapped VecEnv.

    The learner alone knows where a vector step ends: here the server applies that step's
    updates in worker order and draws the workers' next tasks, before the next step starts.
    """

    def __init__(self, venv: VecEnv, flush: Callable[[], None]) -> None:
        super().__init__(venv)
        self._flush = flush

    def reset(self) -> Any:
        self._flush()  # the first tasks, drawn in worker order (none on resume: they were restored)
        obs = self.venv.reset()
        self._flush()
        return obs

    def step_wait(self) -> Any:
        out = self.venv.step_wait()
        self._flush()
        return out


# ----------------------------------------------------------------------------- run folder


class RunFolder:
    """Paths and the checks that keep a run folder from being overwritten by another run."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.root = Path(out)
        self.run_json = self.root / "run.json"
        self.eval_csv = self.root / "eval.csv"
        self.teacher_csv = self.root / "teacher.csv"
        self.episodes_csv = self.root / "episodes.csv"
        self.checkpoints = self.root / "checkpoints"
        self.latest = self.checkpoints / "latest.json"
        self.saved: TrainConfig | None = None  # the run's own config, once check() has read it

    def check(self, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
        """Check the folder without writing; return the last checkpoint's manifest when resuming
        (None if there is none yet)."""
        if not resume:
            if self.root.exists() and not self.root.is_dir():
                raise ValueError(f"--out {self.root} is a file; expected a folder (new or empty)")
            if self.root.exists() and any(self.root.iterdir()):
                what = "a run" if self.run_json.exists() else "files"
                raise ValueError(f"{self.root} already holds {what}; pass --resume to continue a run, "
                                 "or choose an empty --out")
            return None
        if not self.run_json.exists():
            raise ValueError(f"--resume: {self.root} is not a teachgym run (no run.json)")
        try:
            saved = json.loads(self.run_json.read_text())["config"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"--resume: {self.run_json} is not a teachgym run file: {err}") from err
        try:
            self.saved = TrainConfig(**saved)
        except TypeError as err:
            raise ValueError(f"--resume: {self.run_json} is not a teachgym run file: {err}") from err
        mine, theirs = config.identity(), self.saved.identity()
        if mine != theirs:
            diff = "; ".join(f"{k} was {theirs.get(k)!r}, now {mine.get(k)!r}"
                             for k in mine if mine.get(k) != theirs.get(k))
            raise ValueError(f"--resume: {self.root} was written by another config ({diff}); only "
                             f"{', '.join(RESUME_MAY_CHANGE)} may change when a run is continued")
        if not self.latest.exists():
            return None
        return json.loads(self.latest.read_text())

    def start(self, config: TrainConfig, resume: bool) -> None:
        """Mark the run as running in ``run.json`` (after :meth:`check` and every other check passed).

        A resumed run with no checkpoint yet loses the tables its killed predecessor wrote, since
        it starts again from step 0.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.run_json, {"config": dataclasses.asdict(config), "status": "running"})
        if resume and not self.latest.exists():
            for stale in (self.eval_csv, self.teacher_csv, self.episodes_csv):
                stale.unlink(missing_ok=True)
            shutil.rmtree(self.root / "tb", ignore_errors=True)


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(_cell(row.get(c, "")) for c in columns))
    write_text(path, "\n".join(lines) + "\n")


def _cell(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- RNG states


def _rng_state(model: Any) -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": {"keys": keys, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "action_space": model.action_space.np_random.bit_generator.state,
    }


def _load_rng_state(model: Any, state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    model.action_space.np_random.bit_generator.state = state["action_space"]


# ----------------------------------------------------------------------------- the loop


class _Trainer(BaseCallback):
    """SB3 callback doing evaluation and checkpoints between iterations, and the progress bar."""

    def __init__(self, run: Trainer) -> None:
        super().__init__()
        self.run = run

    def _on_step(self) -> bool:
        self.run.progress_to(self.num_timesteps)
        return True

    def _on_rollout_start(self) -> None:
        # Between two iterations: the previous gradient steps are done and nothing is half-collected.
        self.run.boundary(self.num_timesteps)


class Trainer:
    """One training run (see the module docstring); use :func:`train`."""

    def __init__(self, config: TrainConfig, out: str | os.PathLike, resume: bool = False,
                 progress: bool | Callable[[int], None] = True) -> None:
        self.config = config
        self.space = check_config(config)
        self.folder = RunFolder(out)
        self.resume = resume
        self.manifest = self.folder.check(config, resume)  # nothing is written before the model is built
        if resume:
            self.config = config = config.continuing(self.folder.saved)
        self.progress = progress is True
        self.report = progress if callable(progress) else None  # called with the steps done since the last call
        self.reported = 0
        name, hparams = parse_teacher_spec(config.teacher)
        self.teacher = make_teacher(name, self.space, seed=config.seed, adapt=True, **hparams)
        self.test_tasks = self._test_tasks()
        self.eval_rows: list[dict[str, Any]] = []
        self.teacher_rows: list[dict[str, Any]] = []
        self.episodes_logged = 0
        self.next_eval = 0
        self.next_checkpoint = config.checkpoint_every
        self.next_forget = config.forget_every or None
        self.started = time.perf_counter()
        self.wall_before = 0.0
        self.bar = None
        self.tb = None
        self.tb_note = ""
        self._value_env: gym.Env | None = None  # the envs the critic's V(s0) is read on
        self._period_tasks = np.empty((0, len(self.space.low)))  # tasks reported since the last evaluation

    def _test_tasks(self) -> np.ndarray:
        env = gym.make(self.config.env, **self.config.env_kwargs)
        try:
            return np.asarray(env.unwrapped.test_set(), dtype=np.float64)
        finally:
            env.close()

    # ------------------------------------------------------------------------- set-up
    def _make_envs(self, link: LocalLink) -> VecEnv:
        config = self.config
        env_id, env_kwargs = config.env, dict(config.env_kwargs)
        fns = []
        for i in range(config.n_envs):
            client = link.client(i)
            worker_seed = int(np.random.SeedSequence([config.seed, i]).generate_state(1)[0])

            def make(client: Any = client, worker_seed: int = worker_seed) -> gym.Env:
                env = gym.make(env_id, **env_kwargs)
                return Monitor(EpisodeCurriculum(env, client, seed=worker_seed))

            fns.append(make)
        subproc = config.vec == "subproc" or (config.vec == "auto" and config.n_envs > 1)
        if subproc:
            env = SubprocVecEnv(fns, start_method="forkserver" if "forkserver" in _start_methods() else "spawn")
            return FlushEachStep(env, link.flush)
        return DummyVecEnv(fns)

    def _bind_value_estimate(self) -> None:
        """Give the teacher the critic's V(s0) per task, rescaled like scores (SPDL reads it;
        TeachMyAgent's SPDL uses the critic's value of the initial state)."""
        self._value_env = value_env = gym.make(self.config.env, **self.config.env_kwargs)
        score_range = getattr(value_env.unwrapped, "score_range", None)
        model, seed = self.model, self.config.seed

        def value_estimate(tasks: np.ndarray) -> np.ndarray:
            values = initial_state_values(model, value_env, tasks, seed)
            return np.array([rescale_score(v, score_range) for v in values])  # the wrappers' mapping

        self.teacher.bind(value_estimate=value_estimate)

    def _open_tensorboard(self, purge_step: int | None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.tb_note = "tensorboard is not installed: curves are in eval.csv and teacher.csv only"
            return
        self.tb = SummaryWriter(str(self.folder.root / "tb"), purge_step=purge_step)

    # ------------------------------------------------------------------------- running
    def run(self) -> dict[str, Any]:
        config = self.config
        link_cls = RayLink if config.backend == "ray" else (
            ServerLink if config.vec == "subproc" or (config.vec == "auto" and config.n_envs > 1) else LocalLink)
        resuming = self.manifest is not None
        if resuming:
            self.teacher.load_state_dict(load_state(self._ckpt_dir() / "teacher.npz"))
        link = link_cls(self.teacher, config.n_envs)
        self.link = link
        env = self._make_envs(link)
        try:
            overrides = dict(config.algo_kwargs)
            if config.algo in ("sac", "td3"):  # rows past the run's length are never filled: skip them
                preset_size = int(PRESETS[config.algo].kwargs.get("buffer_size", 1_000_000))
                overrides.setdefault("buffer_size", min(preset_size, config.steps + config.n_envs))
            self.model = make_student(config.algo, env, seed=config.seed, device=config.device, overrides=overrides)
            if config.backend != "ray":  # an actor's teacher cannot call back into this process
                self._bind_value_estimate()
            self.folder.start(config, self.resume)
            if resuming:
                self._load_checkpoint(env)
            self._open_tensorboard(self.model.num_timesteps if resuming else None)
            if self.tb_note and self.progress:
                print(f"teachgym: {self.tb_note}", file=sys.stderr)
            self._open_bar()
            callback = _Trainer(self)
            while self.model.num_timesteps < config.steps:
                target = config.steps
                if self.next_forget is not None:
                    target = min(target, self.next_forget)
                self.model.learn(target - self.model.num_timesteps, callback=callback, reset_num_timesteps=False,
                                 progress_bar=False)
                if self.next_forget is not None and self.model.num_timesteps >= self.next_forget:
                    forget(self.model)
                    while self.next_forget <= self.model.num_timesteps:
                        self.next_forget += config.forget_every
            step = self.model.num_timesteps
            if not self.eval_rows or self.eval_rows[-1]["step"] != step:
                self._evaluate(step)
            self._checkpoint(step)
            write_json(self.folder.run_json, {"config": dataclasses.asdict(config), "status": "complete"})
        finally:
            if self.bar is not None:
                self.bar.close()
            env.close()
            link.close()
            if self._value_env is not None:
                self._value_env.close()
            if self.tb is not None:
                self.tb.close()
        last = self.eval_rows[-1]
        return {"steps": last["step"], "mastered_pct": last["mastered_pct"], "episodes": last["episodes"],
                "evaluations": len(self.eval_rows), "out": str(self.folder.root), "note": self.tb_note}

    def _open_bar(self) -> None:
        if not self.progress:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.config.steps, initial=self.model.num_timesteps, unit="step", dynamic_ncols=True)
        if self.eval_rows:
            self.bar.set_postfix(mastered=f"{self.eval_rows[-1]['mastered_pct']:.1f}%")

    def progress_to(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
        if self.report is not None and step > self.reported:  # a suite runner's shared progress bar
            self.report(step - self.reported)
            self.reported = step

    def boundary(self, step: int) -> None:
        """Between two SB3 iterations: evaluate and checkpoint when due."""
        if step >= self.next_eval:
            self._evaluate(step)
        if step >= self.next_checkpoint:
            self._checkpoint(step)

    def _evaluate(self, step: int) -> None:
        config = self.config
        fraction, _, returns = evaluate(self.model, config.env, config.env_kwargs, self.test_tasks,
                                        config.eval_envs, config.mastery_return, seed=config.seed * 100_003)
        self._log_episodes()
        row = {"step": step, "episodes": self.episodes_logged, "mastered_pct": 100.0 * fraction,
               "mean_return": float(returns.mean()), "wall_s": round(self._wall(), 1)}
        self.eval_rows.append(row)
        tasks = self._period_tasks
        stats, exploit = teacher_row(step, self.link.teacher, self.space, tasks)
        self.teacher_rows.append(stats)
        _write_table(self.folder.eval_csv, self.eval_rows)
        _write_table(self.folder.teacher_csv, self.teacher_rows)
        if self.tb is not None:
            self.tb.add_scalar("eval/mastered_pct", row["mastered_pct"], step)
            self.tb.add_scalar("eval/mean_return", row["mean_return"], step)
            for key, value in stats.items():
                if key != "step" and "hist_" not in key:
                    self.tb.add_scalar(f"teacher/{key}", value, step)
            for d, name in enumerate(self.space.names):
                if len(tasks):
                    self.tb.add_histogram(f"tasks/{name}", tasks[:, d], step)
            names = self.space.names
            if len(tasks) and len(names) >= 2:  # where the teacher sent the student since the last evaluation
                self.tb.add_image(f"tasks/heatmap_{names[0]}_x_{names[1]}_y", task_heatmap(self.space, tasks),
                                  step, dataformats="HW")
            if exploit is not None and len(names) >= 2:
                self.tb.add_image(f"teacher/exploit_heatmap_{names[0]}_x_{names[1]}_y",
                                  task_heatmap(self.space, exploit), step, dataformats="HW")
        self._period_tasks = np.empty((0, len(self.space.low)))
        while self.next_eval <= step:
            self.next_eval += config.eval_every
        if self.bar is not None:
            self.bar.set_postfix(mastered=f"{row['mastered_pct']:.1f}%")

    def _log_episodes(self) -> None:
        """Append the updates the teacher received since the last call to episodes.csv."""
        tasks, scores = self.link.drain_log()
        self._period_tasks = np.concatenate([self._period_tasks, tasks])
        append_episodes(self.folder.episodes_csv, self.space.names, tasks, scores)
        self.episodes_logged += len(scores)

    def _wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    # ------------------------------------------------------------------------- checkpoints
    def _ckpt_dir(self) -> Path:
        return self.folder.checkpoints / self.manifest["dir"]

    def _checkpoint(self, step: int) -> None:
        self._log_episodes()
        if self.folder.latest.exists() and json.loads(self.folder.latest.read_text())["step"] == step:
            return  # resumed at this very step: the checkpoint on disk is this state already
        name = f"step-{step:012d}"
        folder = self.folder.checkpoints / name
        try:
            self._write_checkpoint(step, folder)
        except BaseException:
            # A full disk, a read-only folder, an interrupt: the half-written checkpoint goes and
            # latest.json keeps naming the previous complete one.
            shutil.rmtree(folder, ignore_errors=True)
            raise
        write_json(self.folder.latest, {"step": step, "dir": name})  # the checkpoint now counts
        while self.next_checkpoint <= step:
            self.next_checkpoint += self.config.checkpoint_every
        for other in self.folder.checkpoints.iterdir():
            if other.is_dir() and other.name != name:
                shutil.rmtree(other, ignore_errors=True)

    def _write_checkpoint(self, step: int, folder: Path) -> None:
        """Write every file of the checkpoint at ``step`` into ``folder`` (each one atomically)."""
        model = self.model
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        torch_rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            torch_rng["cuda"] = torch.cuda.get_rng_state_all()
        with atomic_path(folder / "model.pt") as tmp:  # the temporary file goes on any failure
            torch.save({"model": torch_state(model), "torch_rng": torch_rng}, tmp)
        save_state(folder / "replay.npz", replay_state(model) or {"empty": True})
        save_state(folder / "teacher.npz", self.link.teacher_state())
        workers = model.get_env().env_method("curriculum_state")
        next_checkpoint = self.next_checkpoint
        while next_checkpoint <= step:
            next_checkpoint += self.config.checkpoint_every
        save_state(folder / "loop.npz", {
            "step": step, "n_updates": int(model._n_updates), "episode_num": int(model._episode_num),
            "rng": _rng_state(model), "workers": workers, "next_tasks": json.dumps(self.link.next_tasks()),
            "episode_starts": np.asarray(model._last_episode_starts, dtype=bool),
            "eval_rows": json.dumps(self.eval_rows), "teacher_rows": json.dumps(self.teacher_rows),
            "episodes_logged": self.episodes_logged, "next_eval": self.next_eval,
            "next_checkpoint": next_checkpoint,
            "next_forget": -1 if self.next_forget is None else self.next_forget,
            "wall_s": self._wall(), "period_tasks": self._period_tasks,
        })

    def _load_checkpoint(self, env: VecEnv) -> None:
        folder = self._ckpt_dir()
        model = self.model
        saved = torch.load(folder / "model.pt", weights_only=True, map_location=model.device)
        load_torch_state(model, saved["model"])
        loop = load_state(folder / "loop.npz")
        replay = load_state(folder / "replay.npz")
        if is_off_policy(model):
            load_replay_state(model, {} if "empty" in replay else replay)
        model.num_timesteps = int(loop["step"])
        model._n_updates = int(loop["n_updates"])
        model._episode_num = int(loop["episode_num"])
        workers = loop["workers"]
        if isinstance(workers, str):  # a checkpoint of teachgym < exact resume: its episodes restart
            workers = json.loads(workers)
        if len(workers) != self.config.n_envs:
            raise ValueError(f"{folder}: the checkpoint holds {len(workers)} workers, the run has {self.config.n_envs}")
        for i, state in enumerate(workers):
            env.env_method("load_curriculum_state", state, indices=[i])
        if "next_tasks" in loop:
            self.link.load_next_tasks(json.loads(loop["next_tasks"]))
        # Each worker resets to its saved episode and takes its actions again; PPO's advantages
        # need to know which of these observations start an episode (learn() would say all).
        model._last_obs = model.get_env().reset()
        model._last_episode_starts = np.asarray(loop.get("episode_starts", np.ones(len(workers))), dtype=bool)
        _load_rng_state(model, loop["rng"])
        torch.set_rng_state(saved["torch_rng"]["cpu"])
        if "cuda" in saved["torch_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["torch_rng"]["cuda"])
        self.eval_rows = json.loads(loop["eval_rows"])
        self.teacher_rows = json.loads(loop["teacher_rows"])
        self.episodes_logged = int(loop["episodes_logged"])
        self.next_eval = int(loop["next_eval"])
        self.next_checkpoint = int(loop["next_checkpoint"])
        self.next_forget = None if int(loop["next_forget"]) < 0 else int(loop["next_forget"])
        self.wall_before = float(loop["wall_s"])
        self._period_tasks = np.asarray(loop["period_tasks"], dtype=np.float64).reshape(-1, len(self.space.low))
        # Rows written after the checkpoint (before the crash) are dropped: they will be redone.
        _write_table(self.folder.eval_csv, self.eval_rows)
        _write_table(self.folder.teacher_csv, self.teacher_rows)
        _truncate_lines(self.folder.episodes_csv, self.episodes_logged + 1)


def _truncate_lines(path: Path, keep: int) -> None:
    if not path.exists():
        return
    with open(path, "rb") as fh:
        lines = fh.readlines()[:keep]
    write_text(path, b"".join(lines).decode())


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def train(config: TrainConfig, out: str | os.PathLike, resume: bool = False,
          progress: bool | Callable[[int], None] = True) -> dict[str, Any]:
    """Train (or, with ``resume``, continue) a run; return its final evaluation.

    ``progress``: a tqdm bar (True), none (False), or a callable given the number of steps done
    since its last call (a benchmark runner's shared bar).

    Raises
    ------
    ValueError
        Bad env id, env kwargs, algorithm, teacher or numbers; an ``out`` folder that already
        holds something (without ``resume``) or that is not a run of this config (with it).
        Nothing in ``out`` is written before these checks pass.
    """
    _refuse_fleet_folder(Path(out))
    if resume:
        done = RunFolder(out)
        if done.run_json.exists():
            try:
                status = json.loads(done.run_json.read_text()).get("status")
            except ValueError:
                status = None
            if status == "complete" and done.eval_csv.exists():
                check_config(config)
                done.check(config, resume=True)  # another config is an error
                with open(done.eval_csv, newline="") as fh:
                    rows = list(csv.DictReader(fh))
                if rows and int(rows[-1]["step"]) >= config.steps:
                    return {"steps": int(rows[-1]["step"]), "mastered_pct": float(rows[-1]["mastered_pct"]),
                            "episodes": int(rows[-1]["episodes"]), "evaluations": len(rows), "out": str(out),
                            "note": "the run was already complete"}
    return Trainer(config, out, resume=resume, progress=progress).run()


def _refuse_fleet_folder(out: Path) -> None:
    """A fleet run, or one of its members, is continued as the whole fleet, never as a single run."""
    if (out / FLEET_FOLDER / "fleet.json").exists():
        raise ValueError(f"{out} is a fleet run (teachgym train --fleet K); continue it with --fleet K --resume")
    try:
        fleet = json.loads((out / "run.json").read_text()).get("fleet")
    except (OSError, ValueError, AttributeError):
        return
    if fleet is not None:
        where = fleet.get("folder") if isinstance(fleet, dict) else None
        raise ValueError(f"{out} is a member of a fleet run (the fleet's state: {out / str(where or '..')}); "
                         "continue the whole fleet with teachgym train --fleet K --resume --out <its folder>")


# ----------------------------------------------------------------------------- CLI


_PYTHON_LITERALS = {"True": True, "False": False, "None": None}  # as well as JSON's true/false/null


def _parse_value(text: str) -> Any:
    if text in _PYTHON_LITERALS:
        return _PYTHON_LITERALS[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_kwargs(items: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x,c=true"]`` → ``{"a": 1, "b": "x", "c": True}`` (values read as JSON where they
    parse; ``True``, ``False`` and ``None`` as Python's)."""
    out: dict[str, Any] = {}
    for item in items or []:
        for part in filter(None, re.split(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*=)", item)):
            key, eq, value = part.partition("=")
            if not eq or not key:
                raise ValueError(f"expected key=value, got {part!r}")
            out[key.strip()] = _parse_value(value.strip())
    return out


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``teachgym train`` options to ``parser``."""
    defaults = TrainConfig(env="")
    parser.add_argument("--env", required=True, help="env id, e.g. teachgym/StumpTracks-v0")
    parser.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                        help="keyword arguments of gym.make, e.g. body=classic_bipedal")
    parser.add_argument("--teacher", default=defaults.teacher, help="teacher spec, e.g. alp-gmm or 'alp-gmm:fit_rate=100'")
    parser.add_argument("--algo", default=defaults.algo, choices=sorted(PRESETS))
    parser.add_argument("--algo-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override the preset's SB3 arguments, e.g. learning_starts=1000 net_arch=[256,256]")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--n-envs", type=int, default=defaults.n_envs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device, help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default steps/20)")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (default steps/10)")
    parser.add_argument("--forget-every", type=int, default=0,
                        help="forgetting student: reset networks and buffer every K steps (0: never)")
    parser.add_argument("--backend", default=defaults.backend, choices=("local", "ray"),
                        help="where the shared teacher lives: this process, or a Ray actor")
    parser.add_argument("--vec", default=defaults.vec, choices=("auto", "dummy", "subproc"))
    parser.add_argument("--eval-envs", type=int, default=defaults.eval_envs)
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` the parsed arguments describe."""
    return TrainConfig(env=args.env, teacher=args.teacher, algo=args.algo, steps=args.steps, n_envs=args.n_envs,
                       seed=args.seed, device=args.device, env_kwargs=parse_kwargs(args.env_kwargs),
                       algo_kwargs=parse_kwargs(args.algo_kwargs), eval_every=args.eval_every,
                       checkpoint_every=args.checkpoint_every, forget_every=args.forget_every,
                       backend=args.backend, vec=args.vec, eval_envs=args.eval_envs)


def run_train(args: argparse.Namespace) -> int:
    """``teachgym train``: run, print the final % mastered; 2 with a message on bad input."""
    try:
        config = config_from_args(args)
        summary = train(config, args.out, resume=args.resume, progress=not args.no_progress)
    except (ValueError, OSError) as err:  # bad input; a full or read-only disk
        print(f"teachgym: error: {err}", file=sys.stderr)
        return 2
    print(f"{summary['steps']} steps, {summary['episodes']} episodes: {summary['mastered_pct']:.1f}% of the "
          f"test set mastered ({summary['evaluations']} evaluations) -> {summary['out']}/eval.csv")
    if summary["note"]:
        print(f"note: {summary['note']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="teachgym train", description="Train an RL student under a teacher.")
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
