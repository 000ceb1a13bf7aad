"""A fleet of K SAC or TD3 students trained in lockstep with one batched update.

The TeachMyAgent protocol trains the same network 8 teachers x 16 seeds times; SB3 launches a few
dozen small kernels from Python per gradient step of each. Here the K members' weights are stacked
along a leading K dimension (``[K, in, out]``) and every layer of every member is one
``torch.baddbmm``; one Adam step updates all members at once (Adam is elementwise, so this is exactly
K independent Adams). Each member keeps its own env, teacher, replay buffer, seed and explicit
torch/numpy generators, and no computation mixes two members: member i follows the single-student
algorithm (SB3's SAC / TD3 update, step for step) whatever the others see.

- :class:`FleetConfig` holds the hyper-parameters; :func:`fleet_config` builds one from a preset
  (``"sac"``: teachDeepRL's SAC, ``"td3"``: Fujimoto et al., ``"sac-sb3"``: SB3's SAC defaults).
- :class:`FleetLearner` is the batched SAC/TD3 update (``train_step`` takes batches ``[K, B, ...]``).
- :class:`FleetReplay` is K preallocated numpy replay buffers.
- :class:`Fleet` runs it: K members' envs stepped together (in worker processes with
  ``vectorization="async"``), ``learn(steps)``, ``save(folder)`` / ``Fleet.load`` without pickle.

Checkpoints: ``torch.save`` of state dicts and tensors (read back with ``weights_only=True``),
``.npz`` replay buffers and teacher states, all written atomically (:mod:`teachgym.io`). A
resumed fleet repeats the uninterrupted one exactly, from a checkpoint taken anywhere: each member
with a teacher brings back its episode in progress (same task and env seed, then the same actions
again, :class:`teachgym.vector.EpisodeCurriculum`); a member without one restarts its episode with
the same env seed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import re
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from teachgym.io import atomic_path, load_state, save_state, write_json
from teachgym.students.sb3 import PRESETS, resolve_device
from teachgym.teacher import Teacher
from teachgym.vector import EpisodeCurriculum, TeacherServer

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's clamp of the SAC actor's log std
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # reduce-overhead: CUDA graphs on a GPU


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class FleetConfig:
    """Hyper-parameters of every member (SB3's names; the defaults are SB3's SAC defaults).

    ``ent_coef``: a positive float (fixed) or ``"auto"`` / ``"auto_<init>"`` (a learnt
    ``log_alpha`` per member, target entropy ``-dim(action)`` unless ``target_entropy`` is given).
    TD3 uses ``policy_delay``, ``target_policy_noise``, ``target_noise_clip`` and ``action_noise``
    (std of the Gaussian exploration noise on the [-1, 1] action scale). ``compile`` wraps the loss
    functions in ``torch.compile`` (``compile_mode="reduce-overhead"`` adds CUDA graphs on a GPU;
    ``compile_backend`` other than ``"inductor"``, e.g. ``"aot_eager"``, ignores the mode); off by
    default, which is what a CPU wants.
    """

    algo: str = "sac"
    net_arch: tuple[int, ...] = (256, 256)
    learning_rate: float = 3e-4
    batch_size: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 100
    train_freq: int = 1
    gradient_steps: int = 1
    gamma: float = 0.99
    tau: float = 0.005
    ent_coef: float | str = "auto"
    target_entropy: float | str = "auto"
    target_update_interval: int = 1
    policy_delay: int = 2
    target_policy_noise: float = 0.2
    target_noise_clip: float = 0.5
    action_noise: float = 0.1
    device: str = "auto"
    dtype: str = "float32"
    compile: bool = False
    compile_mode: str = "default"
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        if self.algo not in ("sac", "td3"):
            raise ValueError(f"algo must be 'sac' or 'td3', got {self.algo!r}")
        object.__setattr__(self, "net_arch", tuple(int(n) for n in self.net_arch))
        if not self.net_arch or min(self.net_arch) < 1:
            raise ValueError(f"net_arch must be a non-empty list of positive layer sizes, got {self.net_arch}")
        for name in ("batch_size", "buffer_size", "train_freq", "gradient_steps", "target_update_interval",
                     "policy_delay"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.learning_starts) < 0:
            raise ValueError(f"learning_starts must be >= 0, got {self.learning_starts}")
        for name, lo, hi in (("learning_rate", 0.0, math.inf), ("gamma", 0.0, 1.0), ("tau", 0.0, 1.0),
                             ("target_policy_noise", 0.0, math.inf), ("target_noise_clip", 0.0, math.inf),
                             ("action_noise", 0.0, math.inf)):
            value = float(getattr(self, name))
            if not (lo <= value <= hi) or not math.isfinite(value) or (name in ("learning_rate", "tau") and value == 0):
                raise ValueError(f"{name} must be a finite number in {'(' if name in ('learning_rate', 'tau') else '['}"
                                 f"{lo}, {hi}], got {getattr(self, name)}")
        self.entropy_init()  # validates ent_coef
        if self.target_entropy != "auto" and not math.isfinite(float(self.target_entropy)):
            raise ValueError(f"target_entropy must be 'auto' or a finite number, got {self.target_entropy!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")
        if not isinstance(self.compile_backend, str) or not self.compile_backend:
            raise ValueError(f"compile_backend must be a torch.compile backend name, got {self.compile_backend!r}")
        resolve_device(self.device)

    def entropy_init(self) -> tuple[bool, float]:
        """(whether the entropy coefficient is learnt, its initial value)."""
        value = self.ent_coef
        if isinstance(value, str):
            if value == "auto":
                return True, 1.0
            if value.startswith("auto_"):
                try:
                    init = float(value[5:])
                except ValueError:
                    init = float("nan")
                if init > 0 and math.isfinite(init):
                    return True, init
            raise ValueError(f"ent_coef must be a positive number, 'auto' or 'auto_<init>', got {value!r}")
        value = float(value)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"ent_coef must be a positive number, 'auto' or 'auto_<init>', got {value!r}")
        return False, value


def fleet_config(preset: str = "sac", **overrides: Any) -> FleetConfig:
    """A :class:`FleetConfig` from a preset, with ``overrides`` replacing its values.

    ``"sac"`` and ``"td3"`` are :data:`teachgym.students.sb3.PRESETS` (teachDeepRL's SAC: 400-300,
    batches of 1000, 10 gradient steps every 10 steps, ``ent_coef`` 0.005; TD3 of Fujimoto et al.),
    SB3's defaults for what they leave out; ``"sac-sb3"`` is SB3's SAC defaults (``ent_coef="auto"``).
    """
    presets = {"sac": ("sac", "sac"), "td3": ("td3", "td3"), "sac-sb3": ("sac", None)}
    if preset not in presets:
        raise ValueError(f"unknown fleet preset {preset!r}; expected one of {sorted(presets)}")
    algo, sb3_name = presets[preset]
    values: dict[str, Any] = {"algo": algo}
    if sb3_name is not None:
        sb3 = PRESETS[sb3_name]
        values["net_arch"] = tuple(sb3.net_arch)
        values.update({k: v for k, v in sb3.kwargs.items() if k in FleetConfig.__dataclass_fields__})
        if algo == "td3":  # SB3's TD3 defaults for what the preset leaves out
            values.setdefault("train_freq", 1)
            values.setdefault("gradient_steps", 1)
    fields = set(FleetConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown fleet hyper-parameters {unknown}; expected some of {sorted(fields)}")
    values.update(overrides)
    return FleetConfig(**values)


# ----------------------------------------------------------------------------- batched networks


class StackedMLP(nn.Module):
    """``M`` independent MLPs with ReLU between layers, weights stacked as ``[M, in, out]``.

    Member ``m``'s layer ``l`` is ``x @ weights[l][m] + biases[l][m]``, the transpose of an
    ``nn.Linear``'s weight, initialised like one (uniform in ±1/sqrt(fan_in)) from
    ``generators[m]`` alone.
    """

    def __init__(self, sizes: Sequence[int], generators: Sequence[torch.Generator], dtype: torch.dtype) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            ws, bs = [], []
            for gen in generators:
                ws.append((torch.rand((fan_out, fan_in), generator=gen, dtype=dtype) * 2 - 1).mul_(bound).T)
                bs.append((torch.rand((fan_out,), generator=gen, dtype=dtype) * 2 - 1).mul_(bound))
            self.weights.append(nn.Parameter(torch.stack(ws).contiguous()))
            self.biases.append(nn.Parameter(torch.stack(bs).unsqueeze(1).contiguous()))

    def forward(self, x: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """``x``: ``[M, B, in]`` (or ``[M', B, in]`` for the members ``rows`` selects) -> ``[M, B, out]``."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if rows is not None:
                w, b = w[rows], b[rows]
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x

    def member_layers(self, m: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Member ``m``'s layers as ``(weight [out, in], bias [out])``, the ``nn.Linear`` layout."""
        return [(w[m].detach().T.clone(), b[m, 0].detach().clone()) for w, b in zip(self.weights, self.biases)]


def _polyak(params: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) target + tau param (SB3's ``polyak_update``, the same two ops)."""
    with torch.no_grad():
        for p, t in zip(params, targets):
            t.mul_(1 - tau).add_(p, alpha=tau)


def member_generators(seeds: Sequence[int], device: torch.device | str, stream: int) -> list[torch.Generator]:
    """One torch generator per member seed, for the named ``stream`` (0: initial weights, 1: noise)."""
    out = []
    for seed in seeds:
        gen = torch.Generator(device=device)
        gen.manual_seed(int(np.random.SeedSequence([int(seed), stream]).generate_state(1, np.uint64)[0] >> 1))
        out.append(gen)
    return out


class FleetLearner:
    """The batched SAC / TD3 update of K members (SB3's algorithm, member by member).

    Parameters
    ----------
    config
        Hyper-parameters (shared by the members).
    seeds
        One seed per member: its initial weights and its noise come from generators seeded by it.
    obs_dim, act_dim
        Sizes of the flattened observation and of the action (actions live in [-1, 1]).
    """

    def __init__(self, config: FleetConfig, seeds: Sequence[int], obs_dim: int, act_dim: int) -> None:
        if len(seeds) < 1:
            raise ValueError("a fleet needs at least one member seed")
        self.config = config
        self.k = len(seeds)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.device = torch.device(resolve_device(config.device))
        self.dtype = getattr(torch, config.dtype)
        init = member_generators(seeds, "cpu", 0)  # weights drawn on the CPU: the same on every device
        hidden = list(config.net_arch)
        sac = config.algo == "sac"
        self.actor = StackedMLP([obs_dim, *hidden, act_dim * (2 if sac else 1)], init, self.dtype)
        # Twin critics: member k's critic j is row 2k + j, so one batched matmul runs all 2K critics.
        twin = [g for g in init for _ in range(2)]
        self.critic = StackedMLP([obs_dim + act_dim, *hidden, 1], twin, self.dtype)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.critic_target = _copy_module(self.critic)
        self.actor_target = None if sac else _copy_module(self.actor)
        lr = config.learning_rate
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=lr)
        self.learn_alpha, alpha0 = config.entropy_init()
        self.log_alpha = torch.full((self.k,), math.log(alpha0), dtype=self.dtype, device=self.device,
                                    requires_grad=self.learn_alpha)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=lr) if self.learn_alpha else None
        self.target_entropy = (-float(act_dim) if config.target_entropy == "auto" else float(config.target_entropy))
        self.noise = member_generators(seeds, self.device, 1)
        self.n_updates = 0
        self._critic_loss = self._sac_critic_loss if sac else self._td3_critic_loss
        self._actor_forward = self._sac_actor
        self._actor_loss = self._sac_actor_loss if sac else self._td3_actor_loss
        if config.compile:
            kw = {"backend": config.compile_backend}
            if config.compile_backend == "inductor":
                kw["mode"] = config.compile_mode
            self._critic_loss = torch.compile(self._critic_loss, **kw)
            self._actor_forward = torch.compile(self._actor_forward, **kw)
            self._actor_loss = torch.compile(self._actor_loss, **kw)

    # ------------------------------------------------------------------------- pieces
    def _q(self, net: StackedMLP, obs: torch.Tensor, act: torch.Tensor, first_only: bool = False) -> torch.Tensor:
        """Twin Q-values ``[K, 2, B]`` (``[K, 1, B]``: the first critic only)."""
        x = torch.cat([obs, act], dim=-1)
        if first_only:
            return net(x, slice(0, None, 2)).squeeze(-1).unsqueeze(1)
        x = x.repeat_interleave(2, dim=0)
        return net(x).squeeze(-1).view(self.k, 2, -1)

    def _sac_actor(self, obs: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squashed-Gaussian actions and their log-probabilities ``[K, B]`` (SB3's formula)."""
        out = self.actor(obs)
        mean, log_std = out[..., : self.act_dim], out[..., self.act_dim:].clamp(LOG_STD_MIN, LOG_STD_MAX)
        std = log_std.exp()
        u = mean + std * eps
        action = torch.tanh(u)
        log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - torch.log(1 - action.pow(2) + 1e-6).sum(-1)
        return action, log_prob

    def _sac_critic_loss(self, obs, act, rew, next_obs, done, eps_next, alpha) -> torch.Tensor:
        with torch.no_grad():
            next_act, next_logp = self._sac_actor(next_obs, eps_next)
            next_q = self._q(self.critic_target, next_obs, next_act).min(dim=1).values
            next_q = next_q - alpha[:, None] * next_logp
            target = rew + (1 - done) * self.config.gamma * next_q
        q = self._q(self.critic, obs, act)
        return 0.5 * (q - target.unsqueeze(1)).pow(2).mean(-1).sum(1)

    def _sac_actor_loss(self, obs, act_pi, logp, alpha) -> torch.Tensor:
        min_q = self._q(self.critic, obs, act_pi).min(dim=1).values
        return (alpha[:, None] * logp - min_q).mean(-1)

    def _td3_critic_loss(self, obs, act, rew, next_obs, done, eps_next, alpha) -> torch.Tensor:
        c = self.config
        with torch.no_grad():
            noise = (eps_next * c.target_policy_noise).clamp(-c.target_noise_clip, c.target_noise_clip)
            next_act = (torch.tanh(self.actor_target(next_obs)) + noise).clamp(-1, 1)
            next_q = self._q(self.critic_target, next_obs, next_act).min(dim=1).values
            target = rew + (1 - done) * c.gamma * next_q
        q = self._q(self.critic, obs, act)
        return (q - target.unsqueeze(1)).pow(2).mean(-1).sum(1)

    def _td3_actor_loss(self, obs) -> torch.Tensor:
        return -self._q(self.critic, obs, torch.tanh(self.actor(obs)), first_only=True).mean(-1)[:, 0]

    def draw_noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        """``[K, *shape]`` standard normal noise, member k's from its own generator."""
        return torch.stack([torch.randn(shape, generator=g, device=self.device, dtype=self.dtype)
                            for g in self.noise])

    def as_batch(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Numpy arrays ``[K, B, ...]`` -> tensors on the learner's device and dtype."""
        return {k: torch.as_tensor(v).to(self.device, self.dtype) for k, v in batch.items()}

    # ------------------------------------------------------------------------- update
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step of every member on its batch.

        ``batch``: ``obs``, ``actions`` (in [-1, 1]), ``rewards``, ``next_obs``, ``dones`` (1 where the
        episode terminated, not truncated), each ``[K, B, ...]``. Returns the per-member losses ``[K]``.
        """
        obs, act, next_obs = batch["obs"], batch["actions"], batch["next_obs"]
        rew, done = batch["rewards"], batch["dones"]
        self.n_updates += 1
        b = obs.shape[1]
        losses: dict[str, torch.Tensor] = {}
        if self.config.algo == "sac":
            eps = self.draw_noise((2, b, self.act_dim))  # SB3's order: the policy's actions, then next actions
            act_pi, logp = self._actor_forward(obs, eps[:, 0])
            alpha = self.log_alpha.detach().exp()
            if self.learn_alpha:
                alpha_loss = -(self.log_alpha[:, None] * (logp + self.target_entropy).detach()).mean(-1)
                self.alpha_opt.zero_grad()
                alpha_loss.sum().backward()
                self.alpha_opt.step()
                losses["alpha"] = alpha_loss.detach()
            critic_loss = self._critic_loss(obs, act, rew, next_obs, done, eps[:, 1], alpha)
            self.critic_opt.zero_grad()
            critic_loss.sum().backward()  # member k's parameters get only its own loss's gradient
            self.critic_opt.step()
            actor_loss = self._actor_loss(obs, act_pi, logp, alpha)
            self.actor_opt.zero_grad()
            actor_loss.sum().backward()
            self.actor_opt.step()
            losses["actor"] = actor_loss.detach()
            if (self.n_updates - 1) % self.config.target_update_interval == 0:
                _polyak(list(self.critic.parameters()), list(self.critic_target.parameters()), self.config.tau)
        else:
            eps = self.draw_noise((b, self.act_dim))
            critic_loss = self._critic_loss(obs, act, rew, next_obs, done, eps, None)
            self.critic_opt.zero_grad()
            critic_loss.sum().backward()
            self.critic_opt.step()
            if self.n_updates % self.config.policy_delay == 0:
                actor_loss = self._actor_loss(obs)
                self.actor_opt.zero_grad()
                actor_loss.sum().backward()
                self.actor_opt.step()
                losses["actor"] = actor_loss.detach()
                _polyak(list(self.critic.parameters()), list(self.critic_target.parameters()), self.config.tau)
                _polyak(list(self.actor.parameters()), list(self.actor_target.parameters()), self.config.tau)
        losses["critic"] = critic_loss.detach()
        return losses

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions in [-1, 1], ``[K, act_dim]``, for observations ``[K, obs_dim]``.

        SAC samples from the policy unless ``deterministic`` (tanh of the mean); TD3 returns the
        actor's action (the caller adds exploration noise).
        """
        x = torch.as_tensor(obs).to(self.device, self.dtype).reshape(self.k, 1, self.obs_dim)
        if self.config.algo == "td3":
            return torch.tanh(self.actor(x))[:, 0].cpu().numpy()
        if deterministic:
            return torch.tanh(self.actor(x)[..., : self.act_dim])[:, 0].cpu().numpy()
        return self._sac_actor(x, self.draw_noise((1, self.act_dim)))[0][:, 0].cpu().numpy()

    @torch.no_grad()
    def member_act(self, k: int, obs: np.ndarray) -> np.ndarray:
        """Member ``k``'s deterministic actions in [-1, 1] for a batch of observations ``[n, obs_dim]``."""
        x = torch.as_tensor(np.asarray(obs)).to(self.device, self.dtype).reshape(1, -1, self.obs_dim)
        out = self.actor(x, slice(k, k + 1))[0]
        return torch.tanh(out[:, : self.act_dim]).cpu().numpy()

    @torch.no_grad()
    def member_value(self, k: int, obs: np.ndarray) -> np.ndarray:
        """Member ``k``'s critic at its deterministic action, the smaller twin Q, for observations
        ``[n, obs_dim]`` (what :func:`teachgym.students.sb3.initial_state_values` reads of SB3's SAC/TD3)."""
        x = torch.as_tensor(np.asarray(obs)).to(self.device, self.dtype).reshape(1, -1, self.obs_dim)
        act = torch.tanh(self.actor(x, slice(k, k + 1))[..., : self.act_dim])
        q = self.critic(torch.cat([x, act], dim=-1).expand(2, -1, -1), slice(2 * k, 2 * k + 2))
        return q.min(dim=0).values[:, 0].double().cpu().numpy()

    # ------------------------------------------------------------------------- state
    def member_state(self, k: int) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Member ``k``'s networks in ``nn.Linear`` layout (``critic`` holds the two twins' layers)."""
        if not 0 <= k < self.k:
            raise ValueError(f"member must be in [0, {self.k}), got {k}")
        out = {"actor": self.actor.member_layers(k), "critic": [self.critic.member_layers(2 * k + j) for j in (0, 1)],
               "critic_target": [self.critic_target.member_layers(2 * k + j) for j in (0, 1)],
               "log_alpha": self.log_alpha[k].detach().clone()}
        if self.actor_target is not None:
            out["actor_target"] = self.actor_target.member_layers(k)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Every tensor and optimiser state (for ``torch.save``; loads with ``weights_only=True``)."""
        state = {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                 "critic_target": self.critic_target.state_dict(),
                 "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                 "log_alpha": self.log_alpha.detach().cpu(), "n_updates": self.n_updates,
                 "noise": [g.get_state() for g in self.noise]}
        if self.actor_target is not None:
            state["actor_target"] = self.actor_target.state_dict()
        if self.alpha_opt is not None:
            state["alpha_opt"] = self.alpha_opt.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; ``ValueError`` if it is another fleet's shape."""
        expected = set(self.state_dict())
        if not isinstance(state, dict) or set(state) != expected:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"fleet learner state needs keys {sorted(expected)}, got {got}")
        try:
            for name in ("actor", "critic", "critic_target", "actor_target"):
                if name in state:
                    module = getattr(self, name)
                    for key, value in module.state_dict().items():
                        if tuple(state[name][key].shape) != tuple(value.shape):
                            raise ValueError(f"{name}.{key}: checkpoint shape {tuple(state[name][key].shape)} "
                                             f"!= this fleet's {tuple(value.shape)}")
                    module.load_state_dict(state[name])
            for name in ("actor_opt", "critic_opt", "alpha_opt"):
                if name in state:
                    getattr(self, name).load_state_dict(state[name])
            if tuple(state["log_alpha"].shape) != (self.k,) or len(state["noise"]) != self.k:
                raise ValueError(f"log_alpha / noise generators are not for {self.k} members")
            with torch.no_grad():
                self.log_alpha.copy_(state["log_alpha"].to(self.device, self.dtype))
            for gen, gstate in zip(self.noise, state["noise"]):
                gen.set_state(gstate.cpu() if gstate.device.type != "cpu" else gstate)
            self.n_updates = int(state["n_updates"])
        except (KeyError, RuntimeError, TypeError, AttributeError) as err:
            raise ValueError(f"fleet learner state does not fit this fleet: {err}") from err


def _copy_module(module: StackedMLP) -> StackedMLP:
    """A frozen copy (target network)."""
    out = copy.deepcopy(module)
    for p in out.parameters():
        p.requires_grad_(False)
    return out


# ----------------------------------------------------------------------------- replay buffers


class FleetReplay:
    """K replay buffers of equal capacity, preallocated numpy arrays ``[K, capacity, ...]``.

    The members fill them in lockstep (one transition each per step), so they share ``pos`` and
    ``full``; each samples with its own generator. ``dones`` holds terminations only (a truncated
    episode is bootstrapped), as SB3 does with ``handle_timeout_termination``.
    """

    FIELDS = ("obs", "actions", "rewards", "next_obs", "dones")

    def __init__(self, members: int, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.k, self.capacity = int(members), int(capacity)
        # np.zeros maps pages lazily: rows never written cost no memory.
        self.arrays = {"obs": np.zeros((self.k, self.capacity, obs_dim), np.float32),
                       "actions": np.zeros((self.k, self.capacity, act_dim), np.float32),
                       "rewards": np.zeros((self.k, self.capacity), np.float32),
                       "next_obs": np.zeros((self.k, self.capacity, obs_dim), np.float32),
                       "dones": np.zeros((self.k, self.capacity), np.float32)}
        self.pos, self.full = 0, False

    @property
    def size(self) -> int:
        return self.capacity if self.full else self.pos

    def add(self, **row: np.ndarray) -> None:
        """One transition per member: each field ``[K, ...]``."""
        for name in self.FIELDS:
            self.arrays[name][:, self.pos] = row[name]
        self.pos = (self.pos + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def sample(self, rngs: Sequence[np.random.Generator], batch_size: int) -> dict[str, np.ndarray]:
        """``batch_size`` rows per member, drawn uniformly by member k's generator; ``[K, B, ...]``."""
        if self.size == 0:
            raise ValueError("cannot sample from empty replay buffers")
        idx = np.stack([rng.integers(0, self.size, size=batch_size) for rng in rngs])
        rows = np.arange(self.k)[:, None]
        return {name: arr[rows, idx] for name, arr in self.arrays.items()}

    def member_state(self, k: int) -> dict[str, Any]:
        """Member ``k``'s filled rows, for :func:`teachgym.io.save_state`."""
        return {"pos": self.pos, "full": self.full, **{n: a[k, : self.size].copy() for n, a in self.arrays.items()}}

    def load_member_state(self, k: int, state: dict[str, Any]) -> None:
        """Refill member ``k`` from :meth:`member_state`; ``ValueError`` on shapes or sizes that do not fit."""
        try:
            pos, full = int(state["pos"]), bool(state["full"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"replay state of member {k} lacks a valid pos/full: {err}") from err
        size = self.capacity if full else pos
        if not 0 <= pos < self.capacity:
            raise ValueError(f"replay pos {pos} outside [0, {self.capacity})")
        for name, arr in self.arrays.items():
            value = state.get(name)
            want = (size, *arr.shape[2:])
            if not isinstance(value, np.ndarray) or value.shape != want or not np.issubdtype(value.dtype, np.floating):
                got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"replay {name} of member {k}: expected a float array of shape {want}, got {got}")
            arr[k, :size] = value
        self.pos, self.full = pos, full


# ----------------------------------------------------------------------------- envs


class SeededEpisodes(gym.Wrapper):
    """For members without a teacher: each episode reset with a seed from the wrapper's generator,
    so a checkpoint can restart the episode in progress (the interface of
    :class:`teachgym.vector.EpisodeCurriculum`)."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env)
        self.rng = np.random.default_rng(seed)
        self._episode_seed: int | None = None
        self._replay: dict[str, Any] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self._replay is not None:
            state, self._replay = self._replay, None
            self._episode_seed = int(state["episode_seed"])
            self.rng.bit_generator.state = state["rng"]
        else:
            self._episode_seed = int(self.rng.integers(2**31 - 1))
        return self.env.reset(seed=self._episode_seed, options=options)

    def curriculum_state(self) -> dict[str, Any]:
        return {} if self._episode_seed is None else {"episode_seed": self._episode_seed,
                                                      "rng": self.rng.bit_generator.state}

    def load_curriculum_state(self, state: dict[str, Any]) -> None:
        self._replay = dict(state) if state else None


class _Resumable(gym.Wrapper):
    """Outermost wrapper: lets the vector env set each member's saved episode (``set_attr``)."""

    @property
    def resume_episode(self) -> dict[str, Any]:
        return self.env.curriculum_state()

    @resume_episode.setter
    def resume_episode(self, state: dict[str, Any]) -> None:
        self.env.load_curriculum_state(state)


def _jsonable(value: Any) -> Any:
    """JSON for the arrays of an episode in progress (its actions)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)``; importable by worker processes (importing teachgym registers its envs)."""
    return gym.make(env_id, **(env_kwargs or {}))


def env_fn(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Callable[[], gym.Env]:
    """A picklable factory of ``env_id`` for :class:`FleetMember` (what worker processes need)."""
    return functools.partial(make_env, env_id, dict(env_kwargs or {}))


def _final_success(info: dict[str, Any], k: int) -> bool | None:
    """Member ``k``'s ``info["success"]`` at the end of its episode (the vector env's
    ``final_info``), None where its env gives none."""
    final = info.get("final_info", {})
    mask = final.get("_success")
    return bool(final["success"][k]) if mask is not None and mask[k] else None


def _member_env(make: Callable[[], gym.Env], teacher: Any, seed: int) -> gym.Env:
    env = make()
    inner = SeededEpisodes(env, seed) if teacher is None else EpisodeCurriculum(env, teacher, seed=seed)
    return _Resumable(inner)


@dataclass
class FleetMember:
    """One student of a fleet: its env factory, its teacher (``None``: the env's own resets) and seed.

    ``make_env`` must be picklable for ``vectorization="async"`` (use :func:`env_fn`).
    """

    make_env: Callable[[], gym.Env]
    teacher: Teacher | None = None
    seed: int = 0


def _read_state(path: Path) -> dict[str, Any]:
    """:func:`teachgym.io.load_state`, with every way a damaged file fails turned into ``ValueError``."""
    try:
        state = load_state(path)
    except (OSError, zipfile.BadZipFile, EOFError, UnicodeDecodeError, json.JSONDecodeError, KeyError) as err:
        raise ValueError(f"{path} is not a readable fleet checkpoint file: {err}") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return state


def _seed_of(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1)[0])


class Fleet:
    """K students trained in lockstep: their envs stepped together, one batched update.

    Parameters
    ----------
    members
        The K members (env factory, teacher, seed). Their envs must share observation and action
        spaces (flat ``Box`` both).
    config
        Hyper-parameters (:func:`fleet_config`).
    vectorization
        ``"sync"``: envs in this process; ``"async"``: one worker process per member (gymnasium
        ``AsyncVectorEnv``), teachers served from this process (:class:`teachgym.vector.TeacherServer`).
    """

    def __init__(self, members: Sequence[FleetMember], config: FleetConfig, vectorization: str = "sync") -> None:
        if len(members) < 1:
            raise ValueError("a fleet needs at least one member")
        if vectorization not in ("sync", "async"):
            raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
        self.members = list(members)
        self.config = config
        self.k = len(self.members)
        self.vectorization = vectorization
        self.servers: list[TeacherServer] = []
        fns = []
        for m in self.members:
            teacher = m.teacher
            if teacher is not None and vectorization == "async":
                server = TeacherServer(teacher)
                self.servers.append(server)
                teacher = server.client()
            fns.append(functools.partial(_member_env, m.make_env, teacher, _seed_of(m.seed, 2)))
        mode = gym.vector.AutoresetMode.SAME_STEP
        try:
            if vectorization == "async":
                import multiprocessing

                # The teacher servers are threads: fork would copy their locks mid-use.
                context = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
                self.envs = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context=context)
            else:
                self.envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
            obs_space, act_space = self.envs.single_observation_space, self.envs.single_action_space
            if not isinstance(act_space, gym.spaces.Box) or len(act_space.shape) != 1 \
                    or not np.all(np.isfinite(act_space.low)) or not np.all(np.isfinite(act_space.high)):
                raise ValueError(f"a fleet needs a bounded 1-D Box action space, got {act_space}")
            if not isinstance(obs_space, gym.spaces.Box):
                raise ValueError(f"a fleet needs a Box observation space, got {obs_space}")
        except BaseException:
            self.close()
            raise
        self.act_low, self.act_high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
        self.obs_dim, self.act_dim = int(np.prod(obs_space.shape)), int(act_space.shape[0])
        seeds = [m.seed for m in self.members]
        self.learner = FleetLearner(config, seeds, self.obs_dim, self.act_dim)
        capacity = max(1, int(config.buffer_size))
        self.replay = FleetReplay(self.k, capacity, self.obs_dim, self.act_dim)
        self.rngs = [np.random.default_rng(_seed_of(s, 3)) for s in seeds]
        self.num_timesteps = 0
        self.episodes = np.zeros(self.k, dtype=np.int64)
        self.returns = np.zeros(self.k)
        self.last_returns = np.full(self.k, np.nan)
        #: ``(member, info["success"] or None)`` of each episode that ended at the last step, in member order
        self.ended: list[tuple[int, bool | None]] = []
        self._obs: np.ndarray | None = None

    # ------------------------------------------------------------------------- running
    def _flat(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64).reshape(self.k, self.obs_dim)
        if not np.all(np.isfinite(obs)):
            bad = sorted(set(np.nonzero(~np.isfinite(obs))[0].tolist()))
            raise ValueError(f"members {bad} got a non-finite observation from their env")
        return obs

    def _actions(self) -> np.ndarray:
        """Actions in [-1, 1]: uniform before ``learning_starts`` (SB3), else the policies'."""
        if self.num_timesteps < self.config.learning_starts:
            return np.stack([rng.uniform(-1, 1, self.act_dim) for rng in self.rngs])
        actions = self.learner.act(self._obs)
        if self.config.algo == "td3":
            noise = np.stack([rng.normal(0.0, self.config.action_noise, self.act_dim) for rng in self.rngs])
            actions = np.clip(actions + noise, -1, 1)
        return actions

    def learn(self, steps: int, callback: Callable[[Fleet], bool | None] | None = None) -> Fleet:
        """Run ``steps`` more env steps per member, training every ``train_freq`` steps.

        ``callback(fleet)`` runs after each step's update; it may return ``False`` to stop early.
        The members whose episode ended at that step are then in :attr:`ended`.
        """
        if int(steps) < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        c = self.config
        if self._obs is None:
            self._obs = self._flat(self.envs.reset()[0])
        end = self.num_timesteps + int(steps)
        while self.num_timesteps < end:
            actions = self._actions()
            env_actions = self.act_low + (actions + 1.0) * 0.5 * (self.act_high - self.act_low)
            next_obs, rewards, terminated, truncated, info = self.envs.step(env_actions)
            rewards = np.asarray(rewards, dtype=np.float64)
            if not np.all(np.isfinite(rewards)):
                raise ValueError(f"members {np.nonzero(~np.isfinite(rewards))[0].tolist()} got a non-finite reward")
            next_obs = self._flat(next_obs)
            real_next = next_obs.copy()
            done = np.logical_or(terminated, truncated)
            self.ended = []
            for k in np.nonzero(done)[0]:
                real_next[k] = self._flat_one(info["final_obs"][k])
                self.ended.append((int(k), _final_success(info, k)))
            self.replay.add(obs=self._obs, actions=actions, rewards=rewards, next_obs=real_next,
                            dones=np.asarray(terminated, dtype=np.float32))
            self.returns += rewards
            self.last_returns[done] = self.returns[done]
            self.episodes += done
            self.returns[done] = 0.0
            self._obs = next_obs
            self.num_timesteps += 1
            if self.num_timesteps % c.train_freq == 0 and self.num_timesteps > c.learning_starts:
                self.train(c.gradient_steps)
            if callback is not None and callback(self) is False:
                break
        return self

    def _flat_one(self, obs: Any) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64).reshape(self.obs_dim)
        if not np.all(np.isfinite(obs)):
            raise ValueError("a member got a non-finite final observation from its env")
        return obs

    def train(self, gradient_steps: int) -> dict[str, torch.Tensor]:
        """``gradient_steps`` batched updates, each member on a batch from its own buffer.

        Returns the last step's per-member losses as tensors on the learner's device (reading
        them would wait for the GPU, so the loop does not).
        """
        losses: dict[str, torch.Tensor] = {}
        for _ in range(int(gradient_steps)):
            batch = self.learner.as_batch(self.replay.sample(self.rngs, self.config.batch_size))
            losses = self.learner.train_step(batch)
        return losses

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Env-scale actions ``[K, act_dim]`` of the members for observations ``[K, ...]``."""
        actions = self.learner.act(self._flat(obs), deterministic=deterministic)
        return self.act_low + (actions + 1.0) * 0.5 * (self.act_high - self.act_low)

    def member_policy(self, k: int) -> MemberPolicy:
        """Member ``k``'s deterministic policy with SB3's ``predict`` (for :func:`teachgym.training.evaluate`)."""
        if not 0 <= k < self.k:
            raise ValueError(f"member must be in [0, {self.k}), got {k}")
        return MemberPolicy(self, k)

    # ------------------------------------------------------------------------- checkpoints
    def save(self, folder: str | Path, extra: dict[str, dict[str, Any]] | None = None) -> Path:
        """Checkpoint into ``folder/step-<N>`` and point ``folder/latest.json`` at it (no pickle).

        ``fleet.pt`` (learner tensors and optimiser states, generator states), ``replay-<k>.npz``,
        ``teacher-<k>.npz`` and ``loop.npz`` (step, numpy generators, episodes in progress), and
        ``<name>.npz`` for each state of ``extra`` (a training loop's own state, which must count
        with the rest or not at all). The checkpoint counts once ``latest.json`` names it; older
        ones are then removed.
        """
        folder = Path(folder)
        extra = dict(extra or {})
        for extra_name in extra:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", extra_name) or extra_name in ("loop", "fleet"):
                raise ValueError(f"extra checkpoint state {extra_name!r}: expected a plain name other than "
                                 "the fleet's own files (loop, fleet)")
        name = f"step-{self.num_timesteps:012d}"
        target = folder / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        with atomic_path(target / "fleet.pt") as tmp:
            torch.save({"learner": self.learner.state_dict()}, tmp)
        for k, member in enumerate(self.members):
            save_state(target / f"replay-{k}.npz", self.replay.member_state(k))
            if member.teacher is not None:
                save_state(target / f"teacher-{k}.npz", member.teacher.state_dict())
        episodes = list(self.envs.get_attr("resume_episode")) if self._obs is not None else [{}] * self.k
        save_state(target / "loop.npz", {
            "config": json.dumps(dataclasses.asdict(self.config)), "members": self.k,
            "num_timesteps": self.num_timesteps, "rngs": json.dumps([r.bit_generator.state for r in self.rngs]),
            "episodes_in_progress": json.dumps(episodes, default=_jsonable), "episodes": self.episodes,
            "last_returns": self.last_returns, "returns": self.returns,
        })
        for extra_name, state in extra.items():
            save_state(target / f"{extra_name}.npz", state)
        write_json(folder / "latest.json", {"step": self.num_timesteps, "dir": name})
        for other in folder.iterdir():
            if other.is_dir() and other.name.startswith("step-") and other.name != name:
                shutil.rmtree(other, ignore_errors=True)
        return target

    def load(self, folder: str | Path) -> None:
        """Restore the checkpoint ``folder/latest.json`` names (from :meth:`save`) into this fleet.

        The fleet must have been built with the same members and hyper-parameters (``device``
        may differ). Every file is checked: ``ValueError`` for anything that does not fit.
        """
        target = latest_checkpoint(folder)
        if target is None:
            raise ValueError(f"{folder} holds no fleet checkpoint (no latest.json)")
        loop = _read_state(target / "loop.npz")
        try:
            saved = json.loads(str(loop.get("config", "{}")))
        except json.JSONDecodeError as err:
            raise ValueError(f"loop.npz holds no readable config: {err}") from err
        if not isinstance(saved, dict):
            raise ValueError("loop.npz holds no config dict")
        mine = dataclasses.asdict(self.config)
        differ = sorted(k for k in mine if k not in ("device", "compile", "compile_mode", "compile_backend")
                        and json.dumps(saved.get(k)) != json.dumps(mine[k]))
        if int(loop.get("members", -1)) != self.k or differ:
            raise ValueError(f"the checkpoint is of another fleet: members {loop.get('members')} vs {self.k}, "
                             f"differing hyper-parameters {differ}")
        try:
            state = torch.load(target / "fleet.pt", weights_only=True, map_location=self.learner.device)
        except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad or hostile file
            raise ValueError(f"{target / 'fleet.pt'} is not a loadable fleet checkpoint: {err}") from err
        if not isinstance(state, dict) or "learner" not in state:
            raise ValueError(f"{target / 'fleet.pt'} holds no learner state")
        self.learner.load_state_dict(state["learner"])
        for k, member in enumerate(self.members):
            self.replay.load_member_state(k, _read_state(target / f"replay-{k}.npz"))
            if member.teacher is not None:
                member.teacher.load_state_dict(_read_state(target / f"teacher-{k}.npz"))
        try:
            rngs = json.loads(str(loop["rngs"]))
            episodes = json.loads(str(loop["episodes_in_progress"]))
            if not isinstance(rngs, list) or not isinstance(episodes, list):
                raise TypeError("rngs / episodes_in_progress are not lists")
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"loop.npz lacks valid generator / episode states: {err}") from err
        if len(rngs) != self.k or len(episodes) != self.k:
            raise ValueError(f"loop.npz describes {len(rngs)} members, this fleet has {self.k}")
        space = self.envs.single_action_space
        for episode in episodes:  # the actions taken so far, replayed on resume (EpisodeCurriculum)
            if isinstance(episode, dict) and "actions" in episode:
                try:
                    episode["actions"] = np.asarray(episode["actions"], dtype=np.float64).reshape(-1, *space.shape)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"loop.npz: an episode's actions are not {space.shape} arrays: {err}") from err
        for rng, rstate in zip(self.rngs, rngs):
            try:
                rng.bit_generator.state = rstate
            except (TypeError, ValueError, KeyError) as err:
                raise ValueError(f"bad numpy generator state in loop.npz: {err}") from err
        for state in episodes:
            if state and not (isinstance(state, dict) and isinstance(state.get("episode_seed"), int)
                              and isinstance(state.get("rng"), dict)
                              and isinstance(state.get("task", []), list)):
                raise ValueError(f"loop.npz: bad episode-in-progress state {str(state)[:200]}")
        steps = int(loop["num_timesteps"])
        if steps < 0:
            raise ValueError(f"loop.npz: num_timesteps must be >= 0, got {steps}")
        self.num_timesteps = steps
        for name in ("episodes", "last_returns"):
            value = np.asarray(loop[name])
            if value.shape != (self.k,):
                raise ValueError(f"loop.npz {name}: expected shape ({self.k},), got {value.shape}")
            getattr(self, name)[:] = value
        # Each member's episode in progress is brought back: its task, env seed and actions again.
        returns = np.asarray(loop.get("returns", np.zeros(self.k)))  # absent in checkpoints of the first version
        if returns.shape != (self.k,):
            raise ValueError(f"loop.npz returns: expected shape ({self.k},), got {returns.shape}")
        self.returns[:] = returns
        self.envs.set_attr("resume_episode", episodes)
        try:
            obs = self.envs.reset()[0]
        except Exception as err:  # noqa: BLE001 - a worker re-raises whatever the env raised
            raise ValueError(f"the checkpoint's episodes in progress could not be restarted: {err}") from err
        self._obs = self._flat(obs)

    def close(self) -> None:
        """Close the envs (worker processes) and the teacher servers."""
        envs = getattr(self, "envs", None)
        if envs is not None:
            envs.close()
        for server in self.servers:
            server.close()
        self.servers = []

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint folder ``folder/latest.json`` names (:meth:`Fleet.save`), or None without one.

    ``ValueError`` for a ``latest.json`` that is unreadable or names a folder outside ``folder``.
    """
    folder = Path(folder)
    if not (folder / "latest.json").exists():
        return None
    try:
        latest = json.loads((folder / "latest.json").read_text())
        target = folder / str(latest["dir"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{folder} holds no readable fleet checkpoint (latest.json): {err}") from err
    if target.resolve().parent != folder.resolve():
        raise ValueError(f"latest.json names {latest['dir']!r}, which is not a checkpoint inside {folder}")
    return target


class MemberPolicy:
    """One member's policy behind SB3's ``predict(obs, deterministic) -> (actions, None)``."""

    def __init__(self, fleet: Fleet, k: int) -> None:
        self.fleet, self.k = fleet, k

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Env-scale actions ``[n, act_dim]`` for observations ``[n, ...]`` (always the deterministic policy)."""
        f = self.fleet
        obs = np.asarray(obs, dtype=np.float64).reshape(-1, f.obs_dim)
        actions = f.learner.member_act(self.k, obs)
        return f.act_low + (actions + 1.0) * 0.5 * (f.act_high - f.act_low), None


def make_fleet(env_id: str, runs: Sequence[tuple[str | None, int]], env_kwargs: dict[str, Any] | None = None,
               preset: str = "sac", overrides: dict[str, Any] | None = None, device: str = "auto",
               vectorization: str = "async", wrap_teacher: Callable[[Teacher], Any] | None = None) -> Fleet:
    """A fleet of ``len(runs)`` students of ``env_id``, member i with teacher ``runs[i][0]`` and seed ``runs[i][1]``.

    Teachers are teacher specs as ``teachgym train --teacher`` takes them (``"alp-gmm"``,
    ``"alp-gmm:fit_rate=100"``; ``None``: no teacher), built with ``adapt=True`` and the run's seed,
    as :class:`teachgym.training.Trainer` builds its one teacher. ``wrap_teacher`` puts each teacher
    behind an object of the same interface (``task_space``, ``sample``, ``update``, ``state_dict``,
    ``load_state_dict``), e.g. one that records the member's episodes.
    """
    from teachgym.teacher import make_teacher, parse_teacher_spec
    from teachgym.wrappers import env_task_space

    if not runs:
        raise ValueError("make_fleet needs at least one (teacher, seed) run")
    env_kwargs = dict(env_kwargs or {})
    if env_id not in gym.registry:
        raise ValueError(f"unknown env id {env_id!r}")
    members = []
    space = None
    for spec, seed in runs:
        teacher = None
        if spec is not None:
            if space is None:
                env = gym.make(env_id, **env_kwargs)
                try:
                    space = env_task_space(env)
                finally:
                    env.close()
            name, hparams = parse_teacher_spec(spec)
            teacher = make_teacher(name, space, seed=int(seed), adapt=True, **hparams)
            if wrap_teacher is not None:
                teacher = wrap_teacher(teacher)
        members.append(FleetMember(env_fn(env_id, env_kwargs), teacher, int(seed)))
    config = fleet_config(preset, **{**(overrides or {}), "device": device})
    return Fleet(members, config, vectorization=vectorization)
