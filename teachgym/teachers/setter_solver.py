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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from teachgym.teacher import Teacher, register_teacher
from teachgym.teachers._nets import (
    adam_step,
    init_mlp,
    load_optimizer_state,
    load_tensors,
    mlp,
    optimizer_state,
    tensors_to_numpy,
)

_MIN_SCALE = 0.01
_BASE_STD = 1.8
_IDENTITY_BIAS = float(np.log(np.expm1(1.0 - _MIN_SCALE)))  # softplus(b) + 0.01 = 1


@register_teacher("setter-solver")
class SetterSolver(Teacher):
    """Setter-Solver teacher for bounded ``Box`` task spaces (torch; CPU by default).

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
    device
        Torch device of the networks.
    """

    supported_spaces = (spaces.Box,)

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
        device: str = "cpu",
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
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        self.update_frequency, self.train_steps = int(update_frequency), int(train_steps)
        self.n_couplings, self.hidden_size = int(n_couplings), int(hidden_size)
        self.judge_layers, self.judge_window = judge_layers, int(judge_window)
        self.batch_size = int(batch_size)
        self.setter_loss_noise_ub = float(setter_loss_noise_ub)
        self.success_threshold = None if success_threshold is None else float(success_threshold)
        self.learning_rate = float(learning_rate)
        self.device = str(device)
        self._device = torch.device(self.device)

        d, dev = self.task_space.dim, self._device
        masks = (
            [np.arange(d) % 2 == k % 2 for k in range(self.n_couplings)]
            if d > 1
            else [np.zeros(1, bool)] * self.n_couplings
        )
        self._masks = [
            torch.as_tensor(m, dtype=torch.float32, device=dev) for m in masks
        ]  # 1 = passed through
        self.couplings = []
        for _ in range(self.n_couplings):
            net = init_mlp(self.rng, [d + 1, self.hidden_size, self.hidden_size, 2 * d], dev)
            with torch.no_grad():  # start as the identity: zero output weights, scale 1
                net[-2].zero_()
                net[-1][:d] = _IDENTITY_BIAS
            self.couplings.append(net)
        self.judge = init_mlp(self.rng, [d, *self.judge_layers, 1], dev)
        self._setter_params = [p for net in self.couplings for p in net]
        self._setter_opt = torch.optim.Adam(self._setter_params, lr=self.learning_rate)
        self._judge_opt = torch.optim.Adam(self.judge, lr=self.learning_rate)
        self._goals = np.empty((0, d))  # unit-space tasks of recent episodes (judge window)
        self._successes = np.empty(0)
        self._feasibility = np.empty(0)  # f each was proposed with; NaN if not the setter's
        self._n_new = 0  # episodes since the last training
        self._pending: dict[bytes, list[float]] = {}  # proposed task -> its f values
        self._queue = np.empty((0,) + self.task_space.shape, dtype=self.task_space.dtype)
        self._queue_f = np.empty(0)
        self._queue_pos = 0

    # ------------------------------------------------------------------ setter
    def _flow(
        self, latent: torch.Tensor, f: torch.Tensor, inverse: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Base latent -> pre-sigmoid value (or back) and the log |det| of that map."""
        x, logdet = latent, torch.zeros(len(latent), device=latent.device)
        order = range(self.n_couplings - 1, -1, -1) if inverse else range(self.n_couplings)
        for k in order:
            mask = self._masks[k]
            out = mlp(self.couplings[k], torch.cat([x * mask, f], 1), torch.tanh)
            s, t = out.chunk(2, dim=1)
            scale = _MIN_SCALE + F.softplus(s)
            if inverse:
                x = mask * x + (1 - mask) * (x - t) / scale
            else:
                x = mask * x + (1 - mask) * (x * scale + t)
            logdet = logdet + ((1 - mask) * torch.log(scale)).sum(1)
        return x, logdet

    def _setter_sample(self, f: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Tasks in (0, 1)^d for feasibilities ``f`` and their log-likelihood under the setter."""
        d = self.task_space.dim
        z = torch.as_tensor(
            _BASE_STD * self.rng.standard_normal((len(f), d)), dtype=torch.float32, device=self._device
        )
        ft = torch.as_tensor(f, dtype=torch.float32, device=self._device)[:, None]
        x, logdet = self._flow(z, ft, inverse=False)
        log_p = _base_log_pdf(z) - logdet - (F.logsigmoid(x) + F.logsigmoid(-x)).sum(1)
        return torch.sigmoid(x), log_p

    def _setter_log_pdf(self, goals: np.ndarray, f: np.ndarray) -> torch.Tensor:
        y = torch.as_tensor(np.clip(goals, 1e-4, 1 - 1e-4), dtype=torch.float32, device=self._device)
        ft = torch.as_tensor(f, dtype=torch.float32, device=self._device)[:, None]
        x = torch.log(y) - torch.log1p(-y)
        z, logdet = self._flow(x, ft, inverse=True)
        return _base_log_pdf(z) - logdet - (F.logsigmoid(x) + F.logsigmoid(-x)).sum(1)

    def feasibility(self, tasks: np.ndarray) -> np.ndarray:
        """The judge's predicted probability of success on each task (``(n, *shape)``)."""
        unit = self.task_space.normalise(np.asarray(tasks, dtype=np.float64).reshape(-1, self.task_space.dim))
        with torch.no_grad():
            logits = mlp(self.judge, torch.as_tensor(unit, dtype=torch.float32, device=self._device), F.relu)
        return torch.sigmoid(logits)[:, 0].cpu().numpy().astype(np.float64)

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> np.ndarray:
        if self._queue_pos >= len(self._queue):
            f = self.rng.uniform(1e-8, 1.0, self.update_frequency)
            with torch.no_grad():
                unit = self._setter_sample(f)[0].cpu().numpy().astype(np.float64)
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
        dev = self._device
        goals = torch.as_tensor(self._goals, dtype=torch.float32, device=dev)
        labels = torch.as_tensor(self._successes, dtype=torch.float32, device=dev)[:, None]
        for _ in range(self.train_steps):
            loss = F.binary_cross_entropy_with_logits(mlp(self.judge, goals, F.relu), labels)
            adam_step(self._judge_opt, torch.autograd.grad(loss, self.judge))
        recent = slice(-min(self.update_frequency, len(self._successes)), None)
        weights, f_recent = self._successes[recent], self._feasibility[recent]
        valid = (weights > 0) & ~np.isnan(f_recent)
        frozen_judge = [p.detach() for p in self.judge]  # the setter's losses must not move the judge
        for _ in range(self.train_steps):
            f = self.rng.uniform(1e-8, 1.0, self.batch_size)
            tasks, log_p = self._setter_sample(f)
            logit_f = torch.as_tensor(np.log(f) - np.log1p(-f), dtype=torch.float32, device=dev)
            feasibility = ((mlp(frozen_judge, tasks, F.relu)[:, 0] - logit_f) ** 2).mean()
            loss = feasibility + log_p.mean()  # + coverage: minus the entropy
            if valid.any():
                ub = self.setter_loss_noise_ub
                noisy = self._goals[recent][valid] + self.rng.uniform(
                    -ub / 2, ub / 2, (valid.sum(), self.task_space.dim)
                )
                w = torch.as_tensor(weights[valid], dtype=torch.float32, device=dev)
                loss = loss - (w * self._setter_log_pdf(noisy, f_recent[valid])).sum() / w.sum()
            adam_step(self._setter_opt, torch.autograd.grad(loss, self._setter_params))

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        d = self.task_space.dim
        return {
            "couplings": [tensors_to_numpy(net) for net in self.couplings],
            "judge": tensors_to_numpy(self.judge),
            "setter_opt": optimizer_state(self._setter_opt),
            "judge_opt": optimizer_state(self._judge_opt),
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
        for net, arrays in zip(self.couplings, state["couplings"]):
            load_tensors(net, arrays)
        load_tensors(self.judge, state["judge"])
        load_optimizer_state(self._setter_opt, state["setter_opt"])
        load_optimizer_state(self._judge_opt, state["judge_opt"])
        self._goals, self._successes, self._feasibility = goals, successes, feasibility
        self._n_new = int(state["n_new"])
        self._pending = {
            row.tobytes(): [float(f) for f in fs] for row, fs in zip(pending, state["pending_f"])
        }
        self._queue, self._queue_f = queue.astype(self.task_space.dtype), queue_f
        self._queue_pos = int(state["queue_pos"])


def _base_log_pdf(z: torch.Tensor) -> torch.Tensor:
    """Log-density of the base N(0, _BASE_STD^2 I)."""
    d = z.shape[1]
    return -0.5 * (z / _BASE_STD).pow(2).sum(1) - d * (np.log(_BASE_STD) + 0.5 * np.log(2 * np.pi))
