"""Setter-Solver: a setter network proposes tasks of a requested feasibility, a judge predicts it.

Racaniere, Lampinen, Santoro, Reichert, Firoiu & Lillicrap, "Automated curricula through
setter-solver interactions", ICLR 2020; as used in TeachMyAgent (Romac et al. 2021). For each
episode a feasibility f ~ U(0, 1) is drawn and the setter, a normalising flow conditioned on f,
proposes a task. The judge learns the probability that the solver succeeds on a task. The setter
is trained with three losses: validity (tasks the solver achieved are likely under the setter
for their f), feasibility (the judge's logit at the setter's task matches logit(f)) and coverage
(the setter's entropy, i.e. minus the mean log-likelihood of its own samples).

Details (the authors' code unless said):

* The setter is a RealNVP on [0, 1]^d: ``n_couplings`` affine couplings with alternating masks
  (scale = 0.01 + softplus), conditioned on f, then a sigmoid. Smaller than the paper's
  (3 blocks of 3 couplings with 128-unit highway nets). It starts as the identity on a base
  N(0, 1.8^2) (1.8 ~ the logistic's standard deviation), so the first tasks are close to uniform.
* Every ``update_frequency`` episodes: ``train_steps`` Adam steps (lr ``learning_rate``) for the
  judge, on the last ``judge_window`` episodes (binary cross-entropy), then as many for the
  setter, whose validity term uses the last ``update_frequency`` episodes (goals with uniform
  noise of width ``setter_loss_noise_ub``, centred here) and whose feasibility and coverage
  terms use ``batch_size`` fresh samples. The original takes one step per update.
* Success: ``info["success"]`` when reported, else ``score > success_threshold``; with
  ``success_threshold=None`` the score clipped to [0, 1] is the success probability, used as a
  soft label for the judge and as the weight of a task in the validity loss.
* Tasks are drawn ``update_frequency`` at a time (the setter only changes at updates).
* Presets (``TeachMyAgent/teachers/algos/setter_solver.py`` for one training step per update):
  ``"teachmyagent"`` is what its benchmark ran (``benchmark_scripts/full_benchmark_Setter-Solver.txt``:
  ``--ss_update_frequency 50 --setter_loss_noise_ub 0.1 --setter_hidden_size 64``),
  ``"teachmyagent-defaults"`` its argument defaults (``run_utils/teacher_args_handler.py``:
  every 100 episodes, noise 0.05, 128 hidden units). The setter's architecture stays this
  module's (couplings, not its highway blocks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from scipy.special import expit, log_expit

from teachgym.teacher import Teacher, register_teacher
from teachgym.teachers._nets import MLP, Adam, share_parameters

_MIN_SCALE = 0.01
_BASE_STD = 1.8
_BASE_CONST = float(np.log(_BASE_STD) + 0.5 * np.log(2 * np.pi))  # per dimension
_IDENTITY_BIAS = float(np.log(np.expm1(1.0 - _MIN_SCALE)))  # softplus(b) + 0.01 = 1


@register_teacher("setter-solver")
class SetterSolver(Teacher):
    """Setter-Solver teacher for bounded ``Box`` task spaces (numpy networks, see :mod:`teachgym.teachers._nets`).

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    update_frequency
        Episodes between two trainings.
    train_steps
        Adam steps for the judge, then for the setter, per training.
    n_couplings, hidden_size
        Setter: affine couplings and hidden units of each coupling's network (2 layers).
    judge_layers
        Hidden units of the judge.
    judge_window
        Most recent episodes the judge is trained on.
    batch_size
        Fresh setter samples per step for the feasibility and coverage losses.
    setter_loss_noise_ub
        Width of the uniform noise on achieved goals in the validity loss (unit space).
    success_threshold
        Score above which an episode is a success; ``None``: the score is the success probability.
    learning_rate
        Adam's step size (judge and setter).
    """

    supported_spaces = (spaces.Box,)
    PRESETS = {
        "teachmyagent": {"update_frequency": 50, "train_steps": 1, "setter_loss_noise_ub": 0.1, "hidden_size": 64},
        "teachmyagent-defaults": {
            "update_frequency": 100, "train_steps": 1, "setter_loss_noise_ub": 0.05, "hidden_size": 128,
        },
    }

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        update_frequency: int = 100,
        train_steps: int = 10,
        n_couplings: int = 4,
        hidden_size: int = 32,
        judge_layers: tuple[int, ...] = (64, 64, 64),
        judge_window: int = 500,
        batch_size: int = 100,
        setter_loss_noise_ub: float = 0.05,
        success_threshold: float | None = None,
        learning_rate: float = 1e-3,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        for name, value in (
            ("update_frequency", update_frequency),
            ("train_steps", train_steps),
            ("n_couplings", n_couplings),
            ("hidden_size", hidden_size),
            ("judge_window", judge_window),
            ("batch_size", batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        judge_layers = tuple(int(u) for u in judge_layers)
        if any(u < 1 for u in judge_layers):
            raise ValueError(f"judge_layers must be positive numbers of units, got {judge_layers!r}")
        if not 0.0 <= setter_loss_noise_ub < 1.0:
            raise ValueError(f"setter_loss_noise_ub must lie in [0, 1), got {setter_loss_noise_ub!r}")
        if success_threshold is not None and not np.isfinite(success_threshold):
            raise ValueError(f"success_threshold must be a finite number or None, got {success_threshold!r}")
        if not 0 < learning_rate <= 1:  # far above 1 the optimiser's steps overflow (NaN tasks at 1e300)
            raise ValueError(f"learning_rate must lie in (0, 1], got {learning_rate!r}")
        self.update_frequency, self.train_steps = int(update_frequency), int(train_steps)
        self.n_couplings, self.hidden_size = int(n_couplings), int(hidden_size)
        self.judge_layers, self.judge_window = judge_layers, int(judge_window)
        self.batch_size = int(batch_size)
        self.setter_loss_noise_ub = float(setter_loss_noise_ub)
        self.success_threshold = None if success_threshold is None else float(success_threshold)
        self.learning_rate = float(learning_rate)

        d = self.task_space.dim
        masks = (
            [np.arange(d) % 2 == k % 2 for k in range(self.n_couplings)]
            if d > 1
            else [np.zeros(1, bool)] * self.n_couplings
        )
        self.setter = _Flow(self.rng, masks, self.hidden_size)
        self.judge = MLP(self.rng, [d, *self.judge_layers, 1], "relu")
        self._setter_opt = Adam(self.setter.flat, lr=self.learning_rate)
        self._judge_opt = Adam(self.judge.flat, lr=self.learning_rate)
        self._goals = np.empty((0, d))  # unit-space tasks of recent episodes (judge window)
        self._successes = np.empty(0)
        self._feasibility = np.empty(0)  # f each was proposed with; NaN if not the setter's
        self._n_new = 0  # episodes since the last training
        self._pending: dict[bytes, list[float]] = {}  # proposed task -> its f values
        self._queue = np.empty((0,) + self.task_space.shape, dtype=self.task_space.dtype)
        self._queue_f = np.empty(0)
        self._queue_pos = 0

    # ------------------------------------------------------------------ setter
    def _setter_sample(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
        """Tasks in (0, 1)^d for feasibilities ``f``, their log-likelihood under the setter, and
        what :meth:`_Flow.backward` needs."""
        z = _BASE_STD * self.rng.standard_normal((len(f), self.task_space.dim))
        x, logdet, cache = self.setter.forward(z, f)
        log_p = _base_log_pdf(z) - logdet + _log_sigmoid_jacobian(x)
        return expit(x), log_p, cache

    def feasibility(self, tasks: np.ndarray) -> np.ndarray:
        """The judge's predicted probability of success on each task (``(n, *shape)``)."""
        unit = self.task_space.normalise(np.asarray(tasks, dtype=np.float64).reshape(-1, self.task_space.dim))
        return expit(self.judge(unit)[:, 0]).astype(np.float64)

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> np.ndarray:
        if self._queue_pos >= len(self._queue):
            f = self.rng.uniform(1e-8, 1.0, self.update_frequency)
            unit = self._setter_sample(f)[0].astype(np.float64)
            self._queue = self.task_space.tasks(self.task_space.denormalise(unit))
            self._queue_f, self._queue_pos = f, 0
        task, f = self._queue[self._queue_pos], float(self._queue_f[self._queue_pos])
        self._queue_pos += 1
        self._pending.setdefault(np.asarray(task, dtype=np.float64).tobytes(), []).append(f)
        return task

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        fs = self._pending.get(vector.tobytes())
        f = np.nan  # a task the setter did not propose teaches the judge only
        if fs:
            f = fs.pop(0)
            if not fs:
                del self._pending[vector.tobytes()]
        if "success" in info:
            success = float(bool(info["success"]))
        elif self.success_threshold is not None:
            success = float(score > self.success_threshold)
        else:
            success = min(max(score, 0.0), 1.0)
        window = self.judge_window
        self._goals = np.vstack([self._goals, self.task_space.normalise(vector)])[-window:]
        self._successes = np.append(self._successes, success)[-window:]
        self._feasibility = np.append(self._feasibility, f)[-window:]
        self._n_new += 1
        if self._n_new >= self.update_frequency:
            self._train()
            self._n_new = 0
            self._queue_pos = len(self._queue)  # the setter changed: propose afresh

    def _train(self) -> None:
        goals = self._goals.astype(np.float32)
        labels = self._successes.astype(np.float32)[:, None]
        for _ in range(self.train_steps):  # binary cross-entropy on logits, mean over the window
            logits, cache = self.judge.forward(goals)
            self._judge_opt.step(self.judge.backward(cache, (expit(logits) - labels) / len(goals))[0])
        recent = slice(-min(self.update_frequency, len(self._successes)), None)
        weights, f_recent = self._successes[recent], self._feasibility[recent]
        valid = (weights > 0) & ~np.isnan(f_recent)
        for _ in range(self.train_steps):
            self._setter_opt.step(self._setter_gradient(recent, weights, f_recent, valid))

    def _setter_gradient(
        self, recent: slice, weights: np.ndarray, f_recent: np.ndarray, valid: np.ndarray
    ) -> np.ndarray:
        """Gradient of feasibility + coverage + validity losses for the setter's parameters.

        feasibility: mean (judge logit(task) - logit(f))^2 over fresh samples (the judge frozen);
        coverage: mean log-likelihood of those samples (minus the entropy); validity: minus the
        success-weighted mean log-likelihood of recent achieved goals under their f.
        """
        b = self.batch_size
        f = self.rng.uniform(1e-8, 1.0, b)
        tasks, _, cache = self._setter_sample(f)
        logit_f = (np.log(f) - np.log1p(-f)).astype(np.float32)
        judged, judge_cache = self.judge.forward(tasks)
        grad_tasks = self.judge.backward(judge_cache, (2.0 / b) * (judged - logit_f[:, None]), params=False, inputs=True)[1]
        # d/dx of sigmoid(x) is t(1 - t); of the log-sigmoid Jacobian term is -(1 - 2t); log_p's
        # d/d logdet is -1 (all divided by b for the mean).
        grad_x = grad_tasks * tasks * (1.0 - tasks) - (1.0 - 2.0 * tasks) / b
        grad = self.setter.backward(cache, grad_x, np.full(b, -1.0 / b, dtype=np.float32))
        if valid.any():
            ub = self.setter_loss_noise_ub
            noisy = self._goals[recent][valid] + self.rng.uniform(-ub / 2, ub / 2, (valid.sum(), self.task_space.dim))
            w = weights[valid] / weights[valid].sum()
            y = np.clip(noisy, 1e-4, 1 - 1e-4)
            z, _, inv_cache = self.setter.inverse(np.log(y) - np.log1p(-y), f_recent[valid])
            # loss -= sum w * (base_log_pdf(z) - logdet): d/dz = w z / std^2, d/d logdet = w
            w32 = w.astype(np.float32)
            grad += self.setter.inverse_backward(inv_cache, w32[:, None] * z / _BASE_STD**2, w32)
        return grad

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        d = self.task_space.dim
        return {
            "couplings": [net.arrays() for net in self.setter.couplings],
            "judge": self.judge.arrays(),
            "setter_opt": self._setter_opt.state_dict(),
            "judge_opt": self._judge_opt.state_dict(),
            "goals": self._goals.copy(),
            "successes": self._successes.copy(),
            "feasibility": self._feasibility.copy(),
            "n_new": self._n_new,
            "pending_tasks": np.array([np.frombuffer(k) for k in self._pending]).reshape(-1, d),
            "pending_f": [list(v) for v in self._pending.values()],
            "queue": self._queue.copy(),
            "queue_f": self._queue_f.copy(),
            "queue_pos": self._queue_pos,
        }

    def _load(self, state: dict[str, Any]) -> None:
        d = self.task_space.dim
        goals = np.asarray(state["goals"], dtype=np.float64).reshape(-1, d)
        successes = np.asarray(state["successes"], dtype=np.float64).reshape(-1)
        feasibility = np.asarray(state["feasibility"], dtype=np.float64).reshape(-1)
        pending = np.asarray(state["pending_tasks"], dtype=np.float64).reshape(-1, d)
        queue = np.asarray(state["queue"]).reshape((-1,) + self.task_space.shape)
        queue_f = np.asarray(state["queue_f"], dtype=np.float64).reshape(-1)
        if not len(goals) == len(successes) == len(feasibility) or len(queue) != len(queue_f):
            raise ValueError(
                "Setter-Solver state: goals/successes/feasibility or queue/queue_f differ in length"
            )
        if len(state["couplings"]) != self.n_couplings or len(pending) != len(state["pending_f"]):
            raise ValueError("Setter-Solver state: wrong number of couplings or pending tasks")
        for net, arrays in zip(self.setter.couplings, state["couplings"]):
            net.load(arrays)
        self.judge.load(state["judge"])
        self._setter_opt.load_state_dict(state["setter_opt"])
        self._judge_opt.load_state_dict(state["judge_opt"])
        self._goals, self._successes, self._feasibility = goals, successes, feasibility
        self._n_new = int(state["n_new"])
        self._pending = {
            row.tobytes(): [float(f) for f in fs] for row, fs in zip(pending, state["pending_f"])
        }
        self._queue, self._queue_f = queue.astype(self.task_space.dtype), queue_f
        self._queue_pos = int(state["queue_pos"])


class _Flow:
    """RealNVP on R^d conditioned on a scalar: affine couplings with the given masks.

    Coupling ``k`` keeps the coordinates where ``masks[k]`` is true and maps the others by
    ``x * scale + t``, where ``(log-ish scale, t)`` come from a tanh network of the kept
    coordinates and the condition. Forward and inverse passes have hand-written backward
    passes; all couplings' parameters share one flat vector (:attr:`flat`).
    """

    def __init__(self, rng: np.random.Generator, masks: list[np.ndarray], hidden: int) -> None:
        d = len(masks[0])
        self.dim = d
        self.masks = [m.astype(np.float32) for m in masks]
        self.couplings = []
        for _ in masks:
            net = MLP(rng, [d + 1, hidden, hidden, 2 * d], "tanh")
            net.params[-2][...] = 0.0  # start as the identity: zero output weights, scale 1
            net.params[-1][:d] = _IDENTITY_BIAS
            self.couplings.append(net)
        self.flat = share_parameters(self.couplings)

    def _coupling(self, k: int, x: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        """Raw scale, scale and shift of coupling ``k`` at ``x``, and its network's cache."""
        out, cache = self.couplings[k].forward(np.concatenate([x * self.masks[k], f], axis=1))
        s, t = out[:, : self.dim], out[:, self.dim :]
        return s, _MIN_SCALE - log_expit(-s), t, cache  # scale = 0.01 + softplus(s)

    def forward(self, z: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """Base latent -> pre-sigmoid values, the log |det| of that map, and the backward cache."""
        x, fc = z.astype(np.float32), f.astype(np.float32)[:, None]
        logdet, cache = np.zeros(len(x), np.float32), []
        for k, m in enumerate(self.masks):
            s, scale, t, net_cache = self._coupling(k, x, fc)
            cache.append((x, s, scale, net_cache))
            x = m * x + (1.0 - m) * (x * scale + t)
            logdet += ((1.0 - m) * np.log(scale)).sum(1)
        return x, logdet, cache

    def backward(self, cache: list, grad_x: np.ndarray, grad_logdet: np.ndarray) -> np.ndarray:
        """Flat parameter gradient given the loss's gradients for :meth:`forward`'s outputs."""
        grads, g, gld = [None] * len(cache), grad_x, grad_logdet[:, None]
        for k in range(len(cache) - 1, -1, -1):
            x, s, scale, net_cache = cache[k]
            m = self.masks[k]
            inv = 1.0 - m
            grad_scale = inv * (g * x + gld / scale)
            grad_out = np.concatenate([grad_scale * expit(s), inv * g], axis=1)
            grads[k], grad_in = self.couplings[k].backward(net_cache, grad_out, inputs=k > 0)
            if k > 0:  # the base latent needs no gradient
                g = (m + inv * scale) * g + m * grad_in[:, : self.dim]
        return np.concatenate(grads)

    def inverse(self, x: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """Pre-sigmoid values -> base latent, the log |det| of the forward map there, the cache."""
        x, fc = x.astype(np.float32), f.astype(np.float32)[:, None]
        logdet, cache = np.zeros(len(x), np.float32), [None] * len(self.masks)
        for k in range(len(self.masks) - 1, -1, -1):
            m = self.masks[k]
            s, scale, t, net_cache = self._coupling(k, x, fc)
            cache[k] = (x, s, scale, t, net_cache)
            x = m * x + (1.0 - m) * (x - t) / scale
            logdet += ((1.0 - m) * np.log(scale)).sum(1)
        return x, logdet, cache

    def inverse_backward(self, cache: list, grad_z: np.ndarray, grad_logdet: np.ndarray) -> np.ndarray:
        """Flat parameter gradient given the loss's gradients for :meth:`inverse`'s outputs."""
        grads, g, gld = [None] * len(cache), grad_z, grad_logdet[:, None]
        last = len(cache) - 1
        for k in range(len(cache)):
            y, s, scale, t, net_cache = cache[k]
            m = self.masks[k]
            inv = 1.0 - m
            r = inv * g / scale
            grad_scale = -r * (y - t) / scale + inv * gld / scale
            grad_out = np.concatenate([grad_scale * expit(s), -r], axis=1)
            grads[k], grad_in = self.couplings[k].backward(net_cache, grad_out, inputs=k < last)
            if k < last:  # the achieved goals need no gradient
                g = m * g + r + m * grad_in[:, : self.dim]
        return np.concatenate(grads)


def _log_sigmoid_jacobian(x: np.ndarray) -> np.ndarray:
    """Minus the log |det| of the sigmoid at ``x``: -sum(log s(x) + log s(-x))."""
    return -(log_expit(x) + log_expit(-x)).sum(1)


def _base_log_pdf(z: np.ndarray) -> np.ndarray:
    """Log-density of the base N(0, _BASE_STD^2 I)."""
    return -0.5 * ((z / _BASE_STD) ** 2).sum(1) - z.shape[1] * _BASE_CONST
