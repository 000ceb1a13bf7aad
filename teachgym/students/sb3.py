"""RL students from stable-baselines3: SAC, PPO and TD3 with the papers' network sizes.

A student is an SB3 model built from a preset (:data:`PRESETS`): the hyper-parameters the
curriculum papers trained their students with, overridable one by one. ``device="auto"`` uses
CUDA when present. A preset with ``normalize`` trains on SB3's ``VecNormalize`` (running mean
and variance of the observations and of the discounted returns); :func:`normalize_state` /
:func:`load_normalize_state` give those statistics as arrays, and :class:`FrozenNormalization`
is the policy seen through the frozen statistics, for evaluation. :func:`forget` is the
forgetting-student challenge of TeachMyAgent: the student's networks, optimisers and replay
buffer start again from scratch, every K steps (normalisation statistics are kept).
Checkpoints hold no pickle: :func:`torch_state` / :func:`load_torch_state` give the weights,
optimiser states and learnt scalars as tensors for ``torch.save`` (read back with
``weights_only=True``), :func:`replay_state` / :func:`load_replay_state` the replay buffer as
arrays for :func:`teachgym.io.save_state`.
"""

from __future__ import annotations

import inspect
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecEnv, VecNormalize


@dataclass(frozen=True)
class Preset:
    """An algorithm and the keyword arguments its papers used (JSON-able values only).

    ``normalize``: train on observations and rewards normalised by running statistics (SB3's
    ``VecNormalize``); the teacher still gets the raw returns, which the curriculum wrapper
    reads below the normalisation.
    """

    algo: type[BaseAlgorithm]
    kwargs: dict[str, Any] = field(default_factory=dict)
    net_arch: tuple[int, ...] = (64, 64)
    source: str = ""
    normalize: bool = False


# The walkers suite's student: see the README's Walkers section for its speed and learning curve
# on Stump Tracks with the classic bipedal.
WALKER_PPO: dict[str, Any] = dict(n_steps=512, batch_size=256, gamma=0.999, gae_lambda=0.95, n_epochs=10,
                                  ent_coef=0.001, learning_rate=2.5e-4, clip_range=0.18)

PRESETS: dict[str, Preset] = {
    # teachDeepRL (Portelas et al., 2019, ALP-GMM): SAC with two hidden layers of 400 and 300
    # units, fixed entropy coefficient 0.005, batches of 1000, 10 gradient steps every 10 steps.
    "sac": Preset(SAC, dict(learning_rate=1e-3, batch_size=1000, buffer_size=2_000_000, ent_coef=0.005,
                            train_freq=10, gradient_steps=10, learning_starts=10_000, gamma=0.99, tau=0.005),
                  (400, 300), "Portelas et al. 2019 (ALP-GMM), teachDeepRL's SAC"),
    # Schulman et al. 2017: two hidden layers of 64 units; SB3's defaults are that paper's.
    "ppo": Preset(PPO, dict(), (64, 64), "Schulman et al. 2017 (PPO), MuJoCo setting"),
    # Fujimoto et al. 2018: 400-300, Adam 1e-3, batches of 100, N(0, 0.1) exploration noise.
    "td3": Preset(TD3, dict(learning_rate=1e-3, batch_size=100, learning_starts=10_000, tau=0.005,
                            policy_delay=2), (400, 300), "Fujimoto et al. 2018 (TD3)"),
    # rl-baselines3-zoo's BipedalWalker-v3 PPO (normalised observations and returns, gamma 0.999,
    # clip 0.18), with shorter rollouts and larger batches so that a CPU core gets more updates
    # per wall-second: the walkers suite's student on one machine.
    "walker-ppo": Preset(PPO, WALKER_PPO, (64, 64), "rl-baselines3-zoo BipedalWalker-v3 PPO, tuned for wall-clock",
                         normalize=True),
}


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other names are checked.

    Raises
    ------
    ValueError
        A device name torch does not know, or a CUDA device on a machine where torch sees no
        GPU: only ``"auto"`` falls back to the CPU (SB3's own ``get_device`` would silently
        train on the CPU).
    """
    if not isinstance(device, str):
        raise ValueError(f"device: expected a name such as 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return str(get_device(device))
    try:
        wanted = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not usable here: {err}; expected 'auto', 'cpu' or 'cuda[:N]'") from err
    if wanted.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no CUDA GPU on this machine; "
                             "use --device auto (the GPU when there is one, else the CPU) or --device cpu")
        if wanted.index is not None and wanted.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    try:
        return str(get_device(device))
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not usable here: {err}") from err


# Set by make_student itself, or objects a JSON override cannot express.
_NOT_OVERRIDABLE = frozenset({"self", "policy", "env", "seed", "device", "verbose", "_init_setup_model"})


def _fits(value: Any, annotation: Any) -> bool:
    """Whether a JSON value ``value`` is an instance of the type hint ``annotation``."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    if origin is tuple:
        options = typing.get_args(annotation)
        return (isinstance(value, (list, tuple)) and len(value) == len(options)
                and all(_fits(v, a) for v, a in zip(value, options)))
    if annotation is dict or origin is dict:
        return isinstance(value, dict)
    return False  # callables, classes, noise objects: nothing a JSON value can be


def check_overrides(algo: str, overrides: dict[str, Any]) -> None:
    """Raise ``ValueError`` for an override ``algo``'s SB3 class does not take or a value of the wrong type.

    The expected types are read from the SB3 constructor's type hints (``learning_rate: float |
    Callable`` takes a number; ``train_freq: int | tuple[int, str]`` an int or ``[4, "step"]``),
    so every value is checked before any model, env or file is made.
    """
    if algo not in PRESETS:
        raise ValueError(f"unknown algorithm {algo!r}; expected one of {sorted(PRESETS)}")
    if not isinstance(overrides, dict):
        raise ValueError(f"{algo} hyper-parameters: expected a dict of name -> value, got {overrides!r}")
    parameters = inspect.signature(PRESETS[algo].algo.__init__).parameters
    accepted = sorted((set(parameters) - _NOT_OVERRIDABLE) | {"net_arch", "normalize"})
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(f"bad {algo} hyper-parameter: {unknown} not among {accepted}")
    for name, value in overrides.items():
        if name == "net_arch":
            if not (isinstance(value, (list, tuple)) and value
                    and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
                raise ValueError(f"bad {algo} hyper-parameter net_arch={value!r}: expected a list of "
                                 "positive layer sizes, e.g. [256, 256]")
            continue
        if name == "normalize":
            if not isinstance(value, bool):
                raise ValueError(f"bad {algo} hyper-parameter normalize={value!r}: expected true or false")
            continue
        hint = parameters[name].annotation
        if not _fits(value, hint):
            expected = getattr(hint, "__name__", None) or str(hint).replace("collections.abc.", "")
            raise ValueError(f"bad {algo} hyper-parameter {name}={value!r}: expected {expected}"
                             f"{' (finite)' if 'float' in str(hint) else ''}")


def make_student(algo: str, env: VecEnv, seed: int | None = None, device: str = "auto",
                 overrides: dict[str, Any] | None = None, verbose: int = 0) -> BaseAlgorithm:
    """An SB3 model built from the preset ``algo`` on ``env``.

    Parameters
    ----------
    algo
        A key of :data:`PRESETS` (``"sac"``, ``"ppo"``, ``"td3"``, ``"walker-ppo"``).
    env
        The vectorised training env; wrapped in ``VecNormalize`` when the preset (or
        ``overrides["normalize"]``) says so (``model.get_vec_normalize_env()`` returns it).
    seed
        Seeds torch, numpy, Python and the action space (SB3's ``set_random_seed``).
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    overrides
        Keyword arguments replacing the preset's (e.g. ``{"learning_starts": 100}``); ``net_arch``
        is accepted as a list of layer sizes, ``normalize`` as a bool.
    """
    check_overrides(algo, dict(overrides or {}))
    preset = PRESETS[algo]
    kwargs = dict(preset.kwargs)
    kwargs.update(overrides or {})
    net_arch = list(kwargs.pop("net_arch", preset.net_arch))
    if kwargs.pop("normalize", preset.normalize):
        # The returns are normalised with the discount the student learns with (as rl-zoo does).
        gamma = kwargs.get("gamma", inspect.signature(preset.algo.__init__).parameters["gamma"].default)
        env = VecNormalize(env, gamma=float(gamma))
    if algo == "td3" and "action_noise" not in kwargs:
        n = env.action_space.shape[-1]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n), 0.1 * np.ones(n))
    try:
        model = preset.algo("MlpPolicy", env, policy_kwargs={"net_arch": net_arch}, seed=seed,
                            device=resolve_device(device), verbose=verbose, **kwargs)
    except (TypeError, ValueError, AssertionError) as err:  # SB3's own checks of values (assert batch_size > 1)
        raise ValueError(f"bad {algo} hyper-parameter: {err}") from err
    use_foreach_adam(model)
    if kwargs.get("tensorboard_log") is None:
        # Without a logger of its own, SB3's learn() makes an empty SB3-<date> folder in /tmp every call.
        model.set_logger(Logger(None, [HumanOutputFormat(sys.stdout)] if verbose else []))
    return model


def use_foreach_adam(model: BaseAlgorithm) -> None:
    """Make ``model``'s optimisers update all their tensors in one multi-tensor call.

    PyTorch picks its ``foreach`` implementation on CUDA only; on a CPU, the walkers' PPO spends
    7 % of its wall time in the per-tensor loop of Adam, which the ``foreach`` one runs 1.7x faster
    with bit-identical parameters (tested).
    """
    for name in model._get_torch_save_params()[0]:
        owner, _, attr = name.rpartition(".")
        optimizer = getattr(attrgetter(owner)(model) if owner else model, attr, None)
        if isinstance(optimizer, torch.optim.Optimizer):
            for group in optimizer.param_groups:
                group["foreach"] = True


def initial_state_values(model: BaseAlgorithm, env: gym.Env, tasks: np.ndarray, seed: int) -> np.ndarray:
    """The critic's value of each task's first observation: TeachMyAgent's V(s0) for SPDL.

    Each task is reset on ``env`` with seed ``seed + i`` (the same states at every call, so a
    run stays reproducible); PPO's value head gives V, SAC and TD3 the smaller twin Q of the
    deterministic action. A discounted return, in the env's reward units: with a normalising
    student, the observations go through its frozen statistics and the value, learnt on
    rewards divided by the returns' running standard deviation, is scaled back by it.
    """
    tasks = np.asarray(tasks, dtype=np.float64).reshape(len(tasks), -1)
    obs = np.stack([env.reset(seed=seed + i, options={"task": task})[0] for i, task in enumerate(tasks)])
    norm = model.get_vec_normalize_env()
    scale = 1.0
    if norm is not None:
        obs = norm.normalize_obs(obs)
        if norm.norm_reward:
            scale = float(np.sqrt(norm.ret_rms.var + norm.epsilon))
    obs_t, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        if hasattr(model.policy, "predict_values"):
            values = model.policy.predict_values(obs_t)
        else:
            actions = model.policy._predict(obs_t, deterministic=True)
            values = torch.min(torch.cat(model.critic(obs_t, actions), dim=1), dim=1).values
    return scale * values.reshape(len(tasks)).double().cpu().numpy()


class FrozenNormalization:
    """``model``'s policy seen through its ``VecNormalize`` statistics, which it never updates.

    ``predict`` normalises raw observations with the training statistics as they are now (the
    test set is evaluated with the student's current normalisation, and leaves it unchanged).
    """

    def __init__(self, model: BaseAlgorithm) -> None:
        norm = model.get_vec_normalize_env()
        if norm is None:
            raise ValueError("FrozenNormalization: this model trains on unnormalised observations; use it directly")
        self.model, self.norm = model, norm

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, Any]:
        return self.model.predict(self.norm.normalize_obs(observation), deterministic=deterministic)


def acting_policy(model: BaseAlgorithm) -> Any:
    """What evaluates ``model`` on raw observations: itself, or it behind its frozen normalisation."""
    return model if model.get_vec_normalize_env() is None else FrozenNormalization(model)


def is_off_policy(model: BaseAlgorithm) -> bool:
    """Whether ``model`` learns from a replay buffer (SAC, TD3)."""
    return isinstance(model, OffPolicyAlgorithm)


def forget(model: BaseAlgorithm) -> None:
    """The forgetting student: fresh networks, optimisers and (off-policy) replay buffer.

    SB3's ``_setup_model`` rebuilds all three; it would also re-seed the global RNGs with the
    run's seed, replaying the first draws of the run, so the seed is withheld meanwhile.
    """
    seed, model.seed = model.seed, None
    if is_off_policy(model):
        model.replay_buffer = None  # _setup_model keeps an existing buffer
    try:
        model._setup_model()
    finally:
        model.seed = seed
    use_foreach_adam(model)


# ----------------------------------------------------------------------------- checkpoints


def torch_state(model: BaseAlgorithm) -> dict[str, Any]:
    """Weights, optimiser states and learnt tensors of ``model`` (for ``torch.save``)."""
    state_dicts, tensors = model._get_torch_save_params()
    out: dict[str, Any] = {"state_dicts": {}, "tensors": {}}
    for name in state_dicts:
        out["state_dicts"][name] = _attr(model, name).state_dict()
    for name in tensors:
        out["tensors"][name] = _attr(model, name).detach().cpu()
    return out


def load_torch_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Put what :func:`torch_state` returned back into ``model``."""
    state_dicts, tensors = model._get_torch_save_params()
    if sorted(state["state_dicts"]) != sorted(state_dicts) or sorted(state["tensors"]) != sorted(tensors):
        raise ValueError(f"the checkpoint holds {sorted(state['state_dicts'])} + {sorted(state['tensors'])}; "
                         f"this model needs {sorted(state_dicts)} + {sorted(tensors)}")
    for name in state_dicts:
        _attr(model, name).load_state_dict(state["state_dicts"][name])
    with torch.no_grad():
        for name in tensors:
            _attr(model, name).copy_(state["tensors"][name].to(model.device))


def _attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


_REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def replay_state(model: BaseAlgorithm) -> dict[str, Any]:
    """The filled part of an off-policy model's replay buffer, as arrays (empty dict otherwise)."""
    if not is_off_policy(model) or model.replay_buffer is None:
        return {}
    buffer = model.replay_buffer
    size = buffer.buffer_size if buffer.full else buffer.pos
    state: dict[str, Any] = {"pos": int(buffer.pos), "full": bool(buffer.full), "size": int(size)}
    for name in _REPLAY_ARRAYS:
        value = getattr(buffer, name, None)
        if isinstance(value, np.ndarray):
            state[name] = value[:size].copy()
    return state


def load_replay_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Refill an off-policy model's replay buffer from :func:`replay_state`'s arrays."""
    if not state:
        return
    buffer = model.replay_buffer
    size = int(state["size"])
    for name in _REPLAY_ARRAYS:
        if name in state:
            target = getattr(buffer, name)
            if target.shape[1:] != state[name].shape[1:]:
                raise ValueError(f"replay buffer {name}: checkpoint shape {state[name].shape[1:]} "
                                 f"!= model's {target.shape[1:]}")
            target[:size] = state[name]
    buffer.pos, buffer.full = int(state["pos"]), bool(state["full"])


_NORM_SETTINGS = ("norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon")


def _norm_settings(norm: VecNormalize) -> dict[str, bool | float]:
    return {k: (bool(v) if isinstance(v, (bool, np.bool_)) else float(v))
            for k, v in ((k, getattr(norm, k)) for k in _NORM_SETTINGS)}


def normalize_state(model: BaseAlgorithm) -> dict[str, Any]:
    """The running statistics of ``model``'s ``VecNormalize`` as arrays (empty dict without one).

    The observations' and returns' mean, variance and count, and each env's discounted return
    so far (what the next reward's normalisation depends on), with the settings that shaped them.
    """
    norm = model.get_vec_normalize_env()
    if norm is None:
        return {}
    state: dict[str, Any] = {"settings": _norm_settings(norm)}
    for name in ("obs_rms", "ret_rms"):
        rms = getattr(norm, name)
        state[name] = {"mean": np.asarray(rms.mean, dtype=np.float64).copy(),
                       "var": np.asarray(rms.var, dtype=np.float64).copy(), "count": float(rms.count)}
    state["returns"] = np.asarray(norm.returns, dtype=np.float64).copy()
    return state


def load_normalize_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Put :func:`normalize_state`'s statistics back into ``model``'s ``VecNormalize``.

    Raises
    ------
    ValueError
        A checkpoint with statistics for a model without normalisation (or the reverse), other
        settings, or arrays of other shapes.
    """
    norm = model.get_vec_normalize_env()
    if (norm is None) != (not state):
        raise ValueError("the checkpoint's normalisation statistics do not fit this model: "
                         f"checkpoint {'has' if state else 'has none'}, model "
                         f"{'normalises' if norm is not None else 'does not normalise'}")
    if norm is None:
        return
    mine = _norm_settings(norm)
    if state.get("settings") != mine:
        raise ValueError(f"normalisation settings: checkpoint {state.get('settings')}, model {mine}")
    try:
        stats = {name: (np.asarray(state[name]["mean"], dtype=np.float64),
                        np.asarray(state[name]["var"], dtype=np.float64), float(state[name]["count"]))
                 for name in ("obs_rms", "ret_rms")}
        returns = np.asarray(state["returns"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"normalisation statistics: expected obs_rms and ret_rms (mean, var, count) and "
                         f"returns, got {sorted(state)}: {err!r}") from err
    for name, (mean, var, count) in stats.items():
        rms = getattr(norm, name)
        if mean.shape != np.shape(rms.mean) or var.shape != np.shape(rms.var):
            raise ValueError(f"normalisation {name}: checkpoint shape {mean.shape}, model {np.shape(rms.mean)}")
        rms.mean, rms.var, rms.count = mean, var, count
    if returns.shape != np.shape(norm.returns):
        raise ValueError(f"normalisation returns: checkpoint holds {returns.shape}, model {np.shape(norm.returns)}")
    norm.returns = returns.copy()
