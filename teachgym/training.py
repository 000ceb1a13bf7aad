"""Train an SB3 student on a teachgym env under a teacher: evaluation, checkpoints, resume.

``teachgym train --env teachgym/StumpTracks-v0 --env-kwargs body=classic_bipedal --teacher alp-gmm
--algo sac --steps 20000000 --n-envs 8 --device auto --out runs/x`` or, from Python,
``train(TrainConfig(...), "runs/x")``. The one teacher lives in this process; with several
envs in sub-processes they reach it through :class:`teachgym.vector.TeacherServer` (or a Ray
actor, ``--backend ray``). At fixed step intervals the student is evaluated on a fixed test set
(% mastered: ``info["success"]`` at the episode's end where the env gives it, return > 230
otherwise) and the run is checkpointed without pickle.

Any env works (a registered id, or gymnasium's ``module:EnvId`` form, which imports ``module``
first so that it registers ``EnvId``) whose unwrapped instance declares ``task_space`` (a
bounded ``Box``, ``Discrete`` or ``MultiDiscrete``; ``task_names`` optional) and plays the task
``reset(options={"task": task})`` passes it. Optional: ``info["success"]`` at an episode's end,
``score_range`` (the returns' range, rescaled to [0, 1] for the teacher), and ``test_set()`` (the
evaluation tasks, one row per task); without ``test_set()`` the run takes ``--test-set PATH`` (a
CSV file whose header names the task dimensions) or ``--test-set random:N`` (N tasks drawn
uniformly from the task space with seed 0, or ``random:N:SEED``). ``--algo auto`` picks SAC for a
``Box`` action space and PPO otherwise.

A run folder holds ``run.json`` (config and status), ``eval.csv`` (step, % mastered, ..., and
which test tasks are mastered),
``teacher.csv`` (teacher statistics and task histograms at each evaluation), ``episodes.csv``
(every episode: the step its vector step ended at, the env index, the task, the score given to
the teacher and ``info["success"]``, blank where the env gives none), ``tb/`` (TensorBoard, when ``tensorboard`` is installed) and
``checkpoints/`` (``latest.json`` names the last complete one; each holds ``model.pt`` — state
dicts and RNG tensors for ``torch.load(weights_only=True)`` — and ``.npz`` files for the
replay buffer, the normalisation statistics (students that normalise observations and
returns), the teacher and the loop). A checkpoint is taken between two SB3 iterations,
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
step (:class:`~teachgym.vec_env.FlushEachStep`) the server applies the step's updates in worker order, then draws
the next tasks in worker order, so the race of the processes changes nothing. ``--resume`` may
change ``--steps`` (a larger budget continues the run), ``--device`` and the evaluation and
checkpoint intervals (those derived from ``--steps`` keep the run's values); any other change is
refused, naming the setting. On the command line ``teachgym train --out RUN --resume`` alone
reads every setting back from ``RUN/run.json``.

Evaluations happen between two SB3 iterations (a whole rollout: PPO's ``n_steps`` x ``n_envs``,
SAC's and TD3's ``train_freq`` x ``n_envs``): at the first boundary at or past each multiple of
``eval_every``, and ``eval.csv`` records the step it happened at.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
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
import pandas as pd
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv

from teachgym.io import atomic_path, load_state, save_state, write_json, write_text
from teachgym.spaces import TaskSpace, count_tasks, did_you_mean
from teachgym.students.sb3 import (
    PRESETS,
    acting_policy,
    check_overrides,
    forget,
    initial_state_values,
    is_off_policy,
    load_normalize_state,
    load_replay_state,
    load_torch_state,
    make_student,
    normalize_state,
    replay_state,
    resolve_device,
    torch_state,
    use_foreach_adam,
)
from teachgym.teacher import Teacher, make_teacher, parse_teacher_spec, teacher_class
from teachgym.vec_env import FlushEachStep, LightDummyVecEnv, env_maker, start_method_or_default, worker_seeds
from teachgym.vector import TeacherServer, ray_teacher
from teachgym.wrappers import env_task_space, rescale_score

EXPLOIT_SAMPLES = 1000  # draws from the teacher's non-exploratory distribution logged at each evaluation
MASTERY_RETURN = 230.0  # teachDeepRL / TeachMyAgent: a test task is mastered when its return > 230
EVAL_COLUMNS = ("step", "episodes", "mastered_pct", "mean_return", "wall_s")
RESUME_MAY_CHANGE = ("steps", "device", "eval_every", "checkpoint_every")  # all other settings shape the run
#: Action spaces each SB3 algorithm class takes (SB3's own lists), by class name: presets such as
#: ``walker-ppo`` take what their class takes.
ALGO_ACTION_SPACES: dict[str, tuple[type[spaces.Space], ...]] = {
    "SAC": (spaces.Box,),
    "PPO": (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
    "TD3": (spaces.Box,),
}
AUTO_ALGOS = ("sac", "ppo", "td3")  # ``algo="auto"`` takes the first of these that fits
MAX_TEST_TASKS = 100_000  # rows of a --test-set (each is one evaluation episode)
NO_TENSORBOARD = "tensorboard is not installed: curves are in eval.csv and teacher.csv only"
FLEET_FOLDER = "fleet"  # OUT/fleet of ``teachgym train --fleet K`` (teachgym.training_fleet)


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in ``run.json``).

    ``eval_every`` / ``checkpoint_every`` default to a twentieth / a tenth of ``steps`` (a resumed
    run keeps the intervals it was started with unless they are given); ``forget_every`` > 0
    makes the forgetting student (fresh networks and buffer every K steps).
    ``vec``: ``"auto"`` (sub-processes when ``n_envs`` > 1), ``"dummy"`` or ``"subproc"``.
    ``algo``: ``"auto"`` is SAC on a ``Box`` action space, PPO on any other (:func:`check_config`
    resolves it; ``run.json`` holds the algorithm used). ``test_set``: None (the env's
    ``test_set()``), a CSV path or ``"random:N[:SEED]"`` (:func:`load_test_set`).
    """

    env: str
    teacher: str = "alp-gmm"
    algo: str = "auto"
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
    test_set: str | None = None

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


def check_env_id(env: str) -> str:
    """The registered id behind ``env`` (an id, or gymnasium's ``"module:EnvId"``, whose module is
    imported first so that it registers ``EnvId``); ``ValueError`` saying what is wrong."""
    if not isinstance(env, str) or not env:
        raise ValueError(f"expected an env id such as 'teachgym/StumpTracks-v0' or 'my_module:MyEnv-v0', got {env!r}")
    module, colon, env_id = env.rpartition(":")
    if colon:
        if not module or not env_id:
            raise ValueError(f"env {env!r}: expected 'module:EnvId', e.g. 'my_envs:MyEnv-v0'")
        try:
            importlib.import_module(module)
        except Exception as err:  # the user's module: any failure of its import is theirs to see
            raise ValueError(f"env {env!r}: importing module {module!r} failed ({type(err).__name__}: {err}); "
                             "expected an importable module (on PYTHONPATH) that calls gymnasium.register") from err
    if env_id not in gym.registry:
        where = (f"module {module!r} was imported but registered no env {env_id!r}" if colon
                 else f"unknown env id {env_id!r}")
        known = sorted(k for k in gym.registry if k.startswith("teachgym/"))
        raise ValueError(f"{where}{did_you_mean(env_id, gym.registry)}; teachgym's envs are {known}; an env of "
                         "your own: 'module:EnvId' (the module calls gymnasium.register('EnvId', ...))")
    return env_id


def choose_algo(algo: str, action_space: spaces.Space) -> str:
    """``algo`` checked against the action space, or for ``"auto"`` the first algorithm that takes it
    (SAC on a ``Box``, PPO on ``Discrete``, ``MultiDiscrete`` and ``MultiBinary``)."""
    if algo != "auto" and algo not in PRESETS:
        raise ValueError(f"unknown algorithm {algo!r}; expected 'auto' or one of {sorted(PRESETS)}")
    kinds = {name: ALGO_ACTION_SPACES[preset.algo.__name__] for name, preset in PRESETS.items()}
    fits = [name for name in AUTO_ALGOS if isinstance(action_space, kinds[name])]
    if algo == "auto":
        if not fits:
            raise ValueError(f"no algorithm of {sorted(PRESETS)} takes the action space {action_space!r}")
        return fits[0]
    if not isinstance(action_space, kinds[algo]):
        raise ValueError(f"--algo {algo} needs a {' or '.join(k.__name__ for k in kinds[algo])} action "
                         f"space, the env has {action_space!r}; use {' or '.join(fits) or 'another env'} "
                         "(or --algo auto)")
    return algo


def check_config(config: TrainConfig) -> TaskSpace:
    """Raise ``ValueError`` for a bad env id, env kwargs, algorithm, teacher, test set or number;
    return the task space. ``config.algo == "auto"`` is replaced by the algorithm chosen."""
    if config.algo != "auto" and config.algo not in PRESETS:
        raise ValueError(f"unknown algorithm {config.algo!r}; expected 'auto' or one of {sorted(PRESETS)}")
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
    check_env_id(config.env)
    try:
        env = gym.make(config.env, **config.env_kwargs)
    except TypeError as err:
        raise ValueError(f"env {config.env!r} does not take these kwargs {config.env_kwargs}: {err}") from err
    try:
        space = env_task_space(env)
        config.algo = choose_algo(config.algo, env.action_space)
        load_test_set(config, env, space)  # a missing or bad test set -> ValueError now
    finally:
        env.close()
    check_overrides(config.algo, config.algo_kwargs)
    name, hparams = parse_teacher_spec(config.teacher)
    make_teacher(name, space, seed=0, adapt=True, **hparams)  # bad hyper-parameters -> ValueError now
    if teacher_class(name).train_on_last_sample is not Teacher.train_on_last_sample:
        # SB3 learns from every transition it collects: it cannot play a level only to score it.
        raise ValueError(
            f"teacher {name!r} has some episodes played only to be scored, which SB3 students cannot "
            "leave out of their updates; use 'plr' here (robust PLR runs in teachgym bench toy / reasoning)"
        )
    return space


# ----------------------------------------------------------------------------- test sets


def load_test_set(config: TrainConfig, env: gym.Env, space: TaskSpace) -> np.ndarray:
    """The evaluation tasks of a run, ``(n, dims)`` float64: ``config.test_set``'s, else the env's
    ``test_set()``.

    ``config.test_set``: a CSV path (:func:`read_test_set`) or ``"random:N"`` / ``"random:N:SEED"``
    (N tasks drawn uniformly from the task space by a generator seeded with SEED, default 0: the
    same tasks for every run, whatever its seed, so that runs compare).
    """
    spec = config.test_set
    if spec is None:
        if not callable(getattr(env.unwrapped, "test_set", None)):
            raise ValueError(f"env {config.env!r} has no test_set(); evaluation needs fixed test tasks: pass "
                             f"--test-set PATH (a CSV file with the header {','.join(space.names)}) or "
                             "--test-set random:100 (100 tasks drawn from the task space)")
        # Not checked against the task space: an env may test outside the box its teacher samples
        # from (TeachMyAgent's climbing test set), and its reset says whether it takes the task.
        tasks = np.asarray(env.unwrapped.test_set(), dtype=np.float64)
        if not len(tasks):
            raise ValueError(f"env {config.env!r}: test_set() returned no task")
        return tasks
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"test_set must be a CSV path or 'random:N[:SEED]', got {spec!r}")
    if spec.startswith("random:"):
        parts = spec.split(":")[1:]
        try:
            n, seed = int(parts[0]), int(parts[1]) if len(parts) == 2 else 0
            if len(parts) > 2 or not 1 <= n <= MAX_TEST_TASKS or seed < 0:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(f"--test-set {spec!r}: expected random:N or random:N:SEED with 1 <= N <= "
                             f"{MAX_TEST_TASKS:,} and SEED >= 0, e.g. random:100") from None
        return random_tasks(space, n, seed)
    return read_test_set(spec, space)


def random_tasks(space: TaskSpace, n: int, seed: int) -> np.ndarray:
    """``n`` tasks drawn uniformly from ``space`` by ``default_rng(seed)``, as ``(n, dims)`` vectors."""
    rng = np.random.default_rng(seed)
    if space.is_box:
        return space.denormalise(rng.random((n, space.dim)))
    return rng.integers(space.low, space.high, endpoint=True, size=(n, space.dim)).astype(np.float64)


def read_test_set(path: str | os.PathLike, space: TaskSpace) -> np.ndarray:
    """The tasks of a CSV file: a header naming the task dimensions (``space.names``, in order),
    then one task per row. ``ValueError`` naming the file and line for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--test-set {str(path)!r}: no such file; expected a CSV file with the header "
                         f"{','.join(space.names)} or random:N")
    limit = 64 * (MAX_TEST_TASKS + 1) * max(space.dim, 1)  # generous bytes per value; a bound on what is read
    if path.stat().st_size > limit:
        raise ValueError(f"--test-set {path}: {path.stat().st_size:,} bytes; expected at most {MAX_TEST_TASKS:,} tasks")
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"--test-set {path}: not a readable CSV file ({err})") from err
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    header = [cell.strip() for cell in rows[0]] if rows else []
    if header != list(space.names):
        raise ValueError(f"--test-set {path}: the header must name the task dimensions in order, "
                         f"{','.join(space.names)}; got {','.join(header) or 'an empty file'}")
    if len(rows) < 2:
        raise ValueError(f"--test-set {path}: no task under the header")
    if len(rows) - 1 > MAX_TEST_TASKS:
        raise ValueError(f"--test-set {path}: {len(rows) - 1:,} tasks; expected at most {MAX_TEST_TASKS:,}")
    tasks = np.empty((len(rows) - 1, space.dim))
    for i, row in enumerate(rows[1:]):
        try:
            if len(row) != space.dim:
                raise ValueError(f"expected {space.dim} values, got {len(row)}")
            tasks[i] = space.vector([float(cell) for cell in row])  # out of bounds: names the dimension
        except ValueError as err:
            raise ValueError(f"--test-set {path}, row {i + 2}: {err}") from None
    return tasks


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


def mastered_string(mastered: np.ndarray) -> str:
    """Per-test-task mastery as text, ``"+"`` mastered and ``"-"`` not, in test-set order (the
    ``test_mastered`` column of ``eval.csv``: the share of any subset of the test set is read
    from it, e.g. Stump Tracks' easy half)."""
    return "".join("+" if m else "-" for m in np.asarray(mastered, dtype=bool))


def mastered_pct_of(eval_csv: str | os.PathLike, subset: np.ndarray) -> pd.DataFrame:
    """``step`` and the % of the test tasks selected by the boolean ``subset`` mastered at each
    evaluation of a run's ``eval.csv``.

    Raises
    ------
    ValueError
        An ``eval.csv`` without the ``test_mastered`` column (teachgym before it), or a subset
        of another length than the test set.
    """
    table = pd.read_csv(eval_csv, dtype={"test_mastered": str})
    if "test_mastered" not in table:
        raise ValueError(f"{eval_csv} has no test_mastered column (a run of an older teachgym)")
    subset = np.asarray(subset, dtype=bool)
    flags = [np.frombuffer(text.encode(), dtype=np.uint8) == ord("+") for text in table["test_mastered"]]
    if any(len(f) != len(subset) for f in flags):
        raise ValueError(f"subset of {len(subset)} tasks; {eval_csv} has {len(flags[0])} test tasks")
    return pd.DataFrame({"step": table["step"], "mastered_pct": [100.0 * f[subset].mean() for f in flags]})


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


def episodes_header(names: tuple[str, ...]) -> list[str]:
    """``episodes.csv``'s columns: the step and env index an episode ended at, its task, score and success."""
    return ["step", "env", *names, "score", "success"]


def append_episodes(path: Path, names: tuple[str, ...], tasks: np.ndarray, scores: np.ndarray,
                    ended: list[tuple[Any, Any, Any]] | None = None) -> None:
    """Append one ``episodes.csv`` row per (task, score), exactly (17 digits), and sync the file.

    ``ended``: ``(step, env index, success)`` of each episode; None (a loop that keeps no record of
    episode ends) leaves those fields blank rather than making them up.
    """
    ended = ended if ended is not None else [("", "", "")] * len(scores)
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(episodes_header(names))
        for (step, env, success), task, score in zip(ended, tasks.tolist(), scores.tolist()):
            writer.writerow([step, env, *(f"{v:.17g}" for v in task), f"{score:.17g}", success])
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
        saved = self.saved_config()
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

    def saved_config(self) -> dict[str, Any]:
        """The config ``run.json`` holds, as a dict (``ValueError`` when there is no run here)."""
        if not self.run_json.exists():
            raise ValueError(f"--resume: {self.root} is not a teachgym run (no run.json)")
        try:
            saved = json.loads(self.run_json.read_text())["config"]
            if not isinstance(saved, dict):
                raise TypeError(f"config is a {type(saved).__name__}, expected an object")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"--resume: {self.run_json} is not a teachgym run file: {err}") from err
        return saved

    def write_status(self, config: TrainConfig, status: str, space: TaskSpace, extra: dict[str, Any] | None = None) -> None:
        """``run.json``: the config, the status and the task space (its bounds and names, for plots),
        and ``extra`` entries (a fleet member's ``fleet``)."""
        bounds = {"low": space.low.tolist(), "high": space.high.tolist()}  # flat, whatever the space's kind
        write_json(self.run_json, {"config": dataclasses.asdict(config), "status": status,
                                   "task_space": {**space.describe(), **bounds}, **(extra or {})})

    def start(self, config: TrainConfig, resume: bool, space: TaskSpace) -> None:
        """Mark the run as running in ``run.json`` (after :meth:`check` and every other check passed).

        A resumed run with no checkpoint yet loses the tables its killed predecessor wrote, since
        it starts again from step 0.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.write_status(config, "running", space)
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


# ----------------------------------------------------------------------------- a run's tables


class RunLog:
    """What a run writes as it trains, beside its checkpoints: ``eval.csv``, ``teacher.csv``,
    ``episodes.csv`` and ``tb/`` (a single run's, or one member's of a fleet).

    The teacher ``link`` (:class:`LocalLink` or a subclass) records every update; the loop says
    where each episode ended (:meth:`episode_ended`) and calls :meth:`log_episodes` and
    :meth:`add_evaluation`. :meth:`state` goes into a checkpoint and :meth:`restore` takes it back,
    so that a resumed run writes the uninterrupted run's tables.
    """

    def __init__(self, folder: RunFolder, space: TaskSpace, link: LocalLink | None = None) -> None:
        self.folder = folder
        self.space = space
        self.link = link  # may be set later, once the loop has built it
        self.eval_rows: list[dict[str, Any]] = []
        self.teacher_rows: list[dict[str, Any]] = []
        self.episodes_logged = 0
        self.period_tasks = np.empty((0, len(space.low)))  # tasks reported since the last evaluation
        self._ended: list[tuple[int, int, str]] = []  # (step, env, success) of episodes ended since the last log
        self.tb: Any = None  # torch's SummaryWriter, once open_tensorboard() found tensorboard

    def episode_ended(self, step: int, env: int, success: Any) -> None:
        """Record that an episode ended at ``step`` in env ``env`` of the run, in the order the teacher
        gets its update; ``success``: the env's ``info["success"]`` at its end (None: the env gives
        none, left blank in ``episodes.csv``)."""
        self._ended.append((int(step), int(env), "" if success is None else str(int(bool(success)))))

    def log_episodes(self) -> None:
        """Append the updates the teacher received since the last call to episodes.csv, each with
        the step and env index of its end (the loop's record of the same episodes, in the same
        order: vector-step order, env order within a step; with Ray, arrival order within a step)."""
        tasks, scores = self.link.drain_log()
        ended, self._ended = self._ended, []
        if not ended:  # a loop that keeps no record of episode ends (not SB3's learn): unknown, not made up
            ended = [("", "", "")] * len(scores)
        if len(ended) != len(scores):
            raise RuntimeError(f"the teacher received {len(scores)} episodes where the envs ended {len(ended)}")
        self.period_tasks = np.concatenate([self.period_tasks, tasks])
        append_episodes(self.folder.episodes_csv, self.space.names, tasks, scores, ended)
        self.episodes_logged += len(scores)

    def add_evaluation(self, step: int, mastered: np.ndarray, returns: np.ndarray, wall_s: float) -> dict[str, Any]:
        """Log the episodes so far, then write the evaluation at ``step`` (the test tasks'
        ``mastered`` flags and ``returns``) to the tables and TensorBoard; return its eval.csv row."""
        self.log_episodes()
        row = {"step": step, "episodes": self.episodes_logged, "mastered_pct": 100.0 * float(np.mean(mastered)),
               "mean_return": float(returns.mean()), "wall_s": round(wall_s, 1),
               "test_mastered": mastered_string(mastered)}
        self.eval_rows.append(row)
        tasks = self.period_tasks
        stats, exploit = teacher_row(step, self.link.teacher, self.space, tasks)
        self.teacher_rows.append(stats)
        _write_table(self.folder.eval_csv, self.eval_rows)
        _write_table(self.folder.teacher_csv, self.teacher_rows)
        if self.tb is not None:
            self._tensorboard(row, stats, tasks, exploit)
        self.period_tasks = np.empty((0, len(self.space.low)))
        return row

    # ------------------------------------------------------------------------- TensorBoard
    def open_tensorboard(self, purge_step: int | None) -> bool:
        """Open ``tb/`` (False, and nothing written there, without tensorboard). ``purge_step``: a
        resumed run's checkpoint step + 1, so that the events its killed predecessor wrote past the
        checkpoint go (the resumed run writes them again) and the checkpoint step's own stay."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return False
        self.tb = SummaryWriter(str(self.folder.root / "tb"), purge_step=purge_step)
        return True

    def _tensorboard(self, row: dict[str, Any], stats: dict[str, Any], tasks: np.ndarray,
                     exploit: np.ndarray | None) -> None:
        step, names = row["step"], self.space.names
        self.tb.add_scalar("eval/mastered_pct", row["mastered_pct"], step)
        self.tb.add_scalar("eval/mean_return", row["mean_return"], step)
        for key, value in stats.items():
            if key != "step" and "hist_" not in key:
                self.tb.add_scalar(f"teacher/{key}", value, step)
        for d, name in enumerate(names):
            if len(tasks):
                self.tb.add_histogram(f"tasks/{name}", tasks[:, d], step)
        if len(tasks) and len(names) >= 2:  # where the teacher sent the student since the last evaluation
            self._heatmap(f"tasks/heatmap_{names[0]}_x_{names[1]}_y", tasks, step, f"tasks sampled up to step {step}")
        if exploit is not None and len(names) >= 2:
            self._heatmap(f"teacher/exploit_heatmap_{names[0]}_x_{names[1]}_y", exploit, step,
                          f"the teacher's curriculum at step {step} (no exploration)")

    def _heatmap(self, tag: str, tasks: np.ndarray, step: int, title: str) -> None:
        """A 2-D histogram of ``tasks`` over the first two task dimensions, axes in task units."""
        from teachgym.benchmarks.plots import task_pair_figure  # matplotlib, only with TensorBoard

        space = self.space
        self.tb.add_figure(tag, task_pair_figure(tasks, space.low, space.high, space.names, title=title), step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None

    # ------------------------------------------------------------------------- checkpoints
    def state(self, suffix: str = "") -> dict[str, Any]:
        """The tables' state for a checkpoint's ``.npz``, each key ending in ``suffix`` (a fleet's
        members share one file). Call :meth:`log_episodes` first: episodes not yet logged are lost."""
        return {f"eval_rows{suffix}": json.dumps(self.eval_rows), f"teacher_rows{suffix}": json.dumps(self.teacher_rows),
                f"episodes_logged{suffix}": self.episodes_logged, f"period_tasks{suffix}": self.period_tasks}

    def restore(self, state: dict[str, Any], suffix: str = "") -> None:
        """Take back :meth:`state`; rows written after the checkpoint (before a crash) go, to be redone."""
        try:
            eval_rows = json.loads(str(state[f"eval_rows{suffix}"]))
            teacher_rows = json.loads(str(state[f"teacher_rows{suffix}"]))
            episodes_logged = int(state[f"episodes_logged{suffix}"])
            period_tasks = np.asarray(state[f"period_tasks{suffix}"], dtype=np.float64).reshape(-1, len(self.space.low))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"the checkpoint lacks the run's tables (keys *{suffix}): {err}") from err
        if not isinstance(eval_rows, list) or not isinstance(teacher_rows, list) or episodes_logged < 0:
            raise ValueError(f"the checkpoint's tables (keys *{suffix}) are not lists of rows and a count")
        self.eval_rows, self.teacher_rows = eval_rows, teacher_rows
        self.episodes_logged, self.period_tasks, self._ended = episodes_logged, period_tasks, []
        _write_table(self.folder.eval_csv, self.eval_rows)
        _write_table(self.folder.teacher_csv, self.teacher_rows)
        _truncate_lines(self.folder.episodes_csv, self.episodes_logged + 1)
        _upgrade_episodes(self.folder.episodes_csv, episodes_header(self.space.names))

    def summary(self, note: str = "") -> dict[str, Any]:
        """The last evaluation, as :func:`train` returns it."""
        last = self.eval_rows[-1]
        return {"steps": last["step"], "mastered_pct": last["mastered_pct"], "episodes": last["episodes"],
                "evaluations": len(self.eval_rows), "out": str(self.folder.root), "note": note}


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
        for i in np.flatnonzero(self.locals["dones"]):  # in env order, as the links apply their updates
            self.run.log.episode_ended(self.num_timesteps, int(i), self.locals["infos"][i].get("success"))
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
        self.log = RunLog(self.folder, self.space)
        self.next_eval = 0
        self.next_checkpoint = config.checkpoint_every
        self.next_forget = config.forget_every or None
        self.started = time.perf_counter()
        self.wall_before = 0.0
        self.bar = None
        self.notes: list[str] = []  # for the user: printed at the start and returned in the summary
        self._value_env: gym.Env | None = None  # the envs the critic's V(s0) is read on

    def _test_tasks(self) -> np.ndarray:
        env = gym.make(self.config.env, **self.config.env_kwargs)
        try:
            return load_test_set(self.config, env, self.space)
        finally:
            env.close()

    # ------------------------------------------------------------------------- set-up
    def _make_envs(self, link: LocalLink) -> VecEnv:
        config = self.config
        fns = [env_maker(config.env, dict(config.env_kwargs), None, link.client(i), seed)
               for i, seed in enumerate(worker_seeds(config.seed, config.n_envs))]
        if config.vec == "subproc" or (config.vec == "auto" and config.n_envs > 1):
            return FlushEachStep(SubprocVecEnv(fns, start_method=start_method_or_default()), link.flush)
        return LightDummyVecEnv(fns)

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

    # ------------------------------------------------------------------------- running
    def run(self) -> dict[str, Any]:
        config = self.config
        link_cls = RayLink if config.backend == "ray" else (
            ServerLink if config.vec == "subproc" or (config.vec == "auto" and config.n_envs > 1) else LocalLink)
        resuming = self.manifest is not None
        if resuming:
            self.teacher.load_state_dict(load_state(self._ckpt_dir() / "teacher.npz"))
        link = link_cls(self.teacher, config.n_envs)
        self.link = self.log.link = link
        env = self._make_envs(link)
        try:
            overrides = dict(config.algo_kwargs)
            if config.algo in ("sac", "td3"):  # rows past the run's length are never filled: skip them
                preset_size = int(PRESETS[config.algo].kwargs.get("buffer_size", 1_000_000))
                overrides.setdefault("buffer_size", min(preset_size, config.steps + config.n_envs))
            self.model = make_student(config.algo, env, seed=config.seed, device=config.device, overrides=overrides)
            if config.backend != "ray":  # an actor's teacher cannot call back into this process
                self._bind_value_estimate()
            self.folder.start(config, self.resume, self.space)
            if resuming:
                self._load_checkpoint(env)
            if not self.log.open_tensorboard(self.model.num_timesteps + 1 if resuming else None):
                self.notes.append(NO_TENSORBOARD)
            self._note_eval_rhythm()
            if self.progress:
                for note in self.notes:
                    print(f"teachgym: note: {note}", file=sys.stderr)
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
            if not self.log.eval_rows or self.log.eval_rows[-1]["step"] != step:
                self._evaluate(step)
            self._checkpoint(step)
            self.folder.write_status(config, "complete", self.space)
        finally:
            if self.bar is not None:
                self.bar.close()
            env.close()
            link.close()
            if self._value_env is not None:
                self._value_env.close()
            self.log.close()
        return self.log.summary("; ".join(self.notes))

    def _note_eval_rhythm(self) -> None:
        """Say when ``eval_every`` is shorter than an SB3 iteration: evaluations then follow the rollouts."""
        model, config = self.model, self.config
        freq = getattr(model, "train_freq", None)
        if hasattr(model, "n_steps"):
            rollout = int(model.n_steps) * config.n_envs
        elif freq is not None and getattr(freq.unit, "value", "step") == "step":
            rollout = int(freq.frequency) * config.n_envs
        else:
            return  # rollouts of whole episodes: no fixed length
        if config.eval_every % rollout:
            self.notes.append(
                f"eval_every={config.eval_every} is not a multiple of a rollout ({rollout} steps of {config.algo}): "
                "each evaluation happens at the first rollout boundary at or past its multiple of eval_every, "
                "and eval.csv records that step")

    def _open_bar(self) -> None:
        if not self.progress:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.config.steps, initial=self.model.num_timesteps, unit="step", dynamic_ncols=True)
        if self.log.eval_rows:
            self.bar.set_postfix(mastered=f"{self.log.eval_rows[-1]['mastered_pct']:.1f}%")

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
        _, mastered, returns = evaluate(acting_policy(self.model), config.env, config.env_kwargs, self.test_tasks,
                                        config.eval_envs, config.mastery_return, seed=config.seed * 100_003)
        row = self.log.add_evaluation(step, mastered, returns, self._wall())
        while self.next_eval <= step:
            self.next_eval += config.eval_every
        if self.bar is not None:
            self.bar.set_postfix(mastered=f"{row['mastered_pct']:.1f}%")

    def _wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    # ------------------------------------------------------------------------- checkpoints
    def _ckpt_dir(self) -> Path:
        return self.folder.checkpoints / self.manifest["dir"]

    def _checkpoint(self, step: int) -> None:
        self.log.log_episodes()
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
        save_state(folder / "normalize.npz", normalize_state(model) or {"empty": True})
        save_state(folder / "teacher.npz", self.link.teacher_state())
        workers = model.get_env().env_method("curriculum_state")
        next_checkpoint = self.next_checkpoint
        while next_checkpoint <= step:
            next_checkpoint += self.config.checkpoint_every
        save_state(folder / "loop.npz", {
            "step": step, "n_updates": int(model._n_updates), "episode_num": int(model._episode_num),
            "rng": _rng_state(model), "workers": workers, "next_tasks": json.dumps(self.link.next_tasks()),
            "episode_starts": np.asarray(model._last_episode_starts, dtype=bool),
            "next_eval": self.next_eval, "next_checkpoint": next_checkpoint,
            "next_forget": -1 if self.next_forget is None else self.next_forget,
            "wall_s": self._wall(), **self.log.state(),
        })

    def _replayed_observations(self, path: Path) -> np.ndarray:
        """Reset the envs (each replays its episode in progress) and return the learner's observations.

        With normalisation, the statistics are the checkpoint's and stay so through the reset
        (the uninterrupted run did not see these observations twice); its per-env discounted
        returns, which the reset zeroes, are the checkpoint's too. A checkpoint of teachgym
        before normalisation has no ``normalize.npz``: it had none.
        """
        model = self.model
        saved = load_state(path) if path.exists() else {}
        saved = {} if "empty" in saved else saved
        load_normalize_state(model, saved)
        norm = model.get_vec_normalize_env()
        if norm is None:
            return model.get_env().reset()
        norm.training = False
        try:
            obs = model.get_env().reset()
        finally:
            norm.training = True
        norm.returns = np.asarray(saved["returns"], dtype=np.float64).copy()
        if is_off_policy(model):  # the replay buffer stores raw observations
            model._last_original_obs = norm.get_original_obs()
        return obs

    def _load_checkpoint(self, env: VecEnv) -> None:
        folder = self._ckpt_dir()
        model = self.model
        saved = torch.load(folder / "model.pt", weights_only=True, map_location=model.device)
        load_torch_state(model, saved["model"])
        use_foreach_adam(model)  # a checkpoint of teachgym before it holds PyTorch's per-tensor choice
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
        model._last_obs = self._replayed_observations(folder / "normalize.npz")
        model._last_episode_starts = np.asarray(loop.get("episode_starts", np.ones(len(workers))), dtype=bool)
        _load_rng_state(model, loop["rng"])
        torch.set_rng_state(saved["torch_rng"]["cpu"])
        if "cuda" in saved["torch_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["torch_rng"]["cuda"])
        self.next_eval = int(loop["next_eval"])
        self.next_checkpoint = int(loop["next_checkpoint"])
        self.next_forget = None if int(loop["next_forget"]) < 0 else int(loop["next_forget"])
        self.wall_before = float(loop["wall_s"])
        self.log.restore(loop)  # rows written after the checkpoint (before the crash) go: they will be redone


def _upgrade_episodes(path: Path, header: list[str]) -> None:
    """Give an episodes.csv written before the step, env and success columns existed those
    columns, blank in its rows (what was not recorded stays unknown)."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0] == header or rows[0] != header[2:-1]:
        return
    lines = [header] + [["", "", *row, ""] for row in rows[1:]]
    write_text(path, "".join(",".join(row) + "\n" for row in lines))


def _truncate_lines(path: Path, keep: int) -> None:
    if not path.exists():
        return
    with open(path, "rb") as fh:
        lines = fh.readlines()[:keep]
    write_text(path, b"".join(lines).decode())


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
    """Add the ``teachgym train`` options to ``parser``.

    Every setting's parser default is None, so that :func:`config_from_args` knows which were
    given (a resumed run takes the others from its ``run.json``); the help shows
    :class:`TrainConfig`'s defaults.
    """
    d = TrainConfig(env="")

    def default(value: Any) -> str:
        return f" (default: {value})"

    parser.add_argument("--env", help="env id, e.g. teachgym/StumpTracks-v0, or gymnasium's module:EnvId for an env "
                        "of your own (the module registers it); needed unless --resume")
    parser.add_argument("--env-kwargs", nargs="*", default=None, metavar="KEY=VALUE",
                        help="keyword arguments of gym.make, e.g. body=classic_bipedal (default: none)")
    parser.add_argument("--teacher", help="teacher spec, e.g. alp-gmm or 'alp-gmm:fit_rate=100' (teachgym teachers "
                        "NAME describes one)" + default(d.teacher))
    parser.add_argument("--algo", choices=["auto", *sorted(PRESETS)],
                        help="SB3 algorithm; auto: sac on a Box action space, ppo otherwise" + default(d.algo))
    parser.add_argument("--algo-kwargs", nargs="*", default=None, metavar="KEY=VALUE",
                        help="override the preset's SB3 arguments, e.g. learning_starts=1000 net_arch=[256,256] "
                        "(default: none)")
    parser.add_argument("--steps", type=int, help="environment steps in all; with --resume, a larger value extends "
                        "the run" + default(d.steps))
    parser.add_argument("--n-envs", type=int, help="envs stepped together" + default(d.n_envs))
    parser.add_argument("--seed", type=int, help="seeds the student, the teacher and the envs' episodes" + default(d.seed))
    parser.add_argument("--device", help="auto (CUDA when present), cpu, cuda" + default(d.device))
    parser.add_argument("--eval-every", type=int, help="steps between evaluations on the test set; SB3 stops only "
                        "between rollouts, so each evaluation happens at the first rollout boundary at or past its "
                        "multiple, and eval.csv records that step (default: steps/20)")
    parser.add_argument("--checkpoint-every", type=int, help="steps between checkpoints, at rollout boundaries "
                        "too (default: steps/10)")
    parser.add_argument("--test-set", help="evaluation tasks: a CSV file whose header names the task dimensions, "
                        "one task per row, or random:N[:SEED] (N tasks drawn uniformly from the task space; "
                        "SEED 0 by default) (default: the env's test_set())")
    parser.add_argument("--forget-every", type=int,
                        help="forgetting student: reset networks and buffer every K steps (0: never)" + default(d.forget_every))
    parser.add_argument("--backend", choices=("local", "ray"),
                        help="where the shared teacher lives: this process, or a Ray actor" + default(d.backend))
    parser.add_argument("--vec", choices=("auto", "dummy", "subproc"),
                        help="auto: sub-processes when --n-envs > 1" + default(d.vec))
    parser.add_argument("--eval-envs", type=int, help="envs stepped together during evaluations" + default(d.eval_envs))
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out; settings not given are "
                        "read from its run.json (--steps may extend it; a setting that would change what is done "
                        "is refused)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace, saved: str | Path | None = None) -> TrainConfig:
    """The :class:`TrainConfig` the parsed arguments describe: the settings given, and with
    ``--resume`` the run's own ``run.json`` (in ``saved``, default ``--out``) for the others (each
    :class:`TrainConfig` field is read from the argument of the same name when that is not None)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    for key in ("env_kwargs", "algo_kwargs"):
        if key in given:
            given[key] = parse_kwargs(given[key])
    if getattr(args, "resume", False):
        if saved is None:
            _refuse_fleet_folder(Path(args.out))
        given = {**RunFolder(saved if saved is not None else args.out).saved_config(), **given}
    if "env" not in given:
        raise ValueError("--env is required for a new run (e.g. --env teachgym/StumpTracks-v0); "
                         "--resume continues the run in --out with its own settings")
    try:
        return TrainConfig(**given)
    except TypeError as err:  # a run.json of another version of teachgym
        raise ValueError(f"{args.out}/run.json holds settings this version of teachgym does not know: {err}") from err


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
    parser = argparse.ArgumentParser(
        prog="teachgym train", description="Train an RL student (SB3) under a teacher, evaluating it on a fixed test "
        "set and checkpointing it without pickle. Continue a run with: teachgym train --out RUN --resume [--steps N].")
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
