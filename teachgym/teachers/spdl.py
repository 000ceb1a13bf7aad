"""SPDL: Self-Paced Deep Reinforcement Learning.

Klink, Abdulsamad, Belousov, D'Eramo, Peters & Pajarinen, "Self-Paced Deep Reinforcement Learning"
(NeurIPS 2020) and "A Probabilistic Interpretation of Self-Paced Learning with Applications to RL"
(JMLR 2021); this is the second, constrained version (SPDL v2, teachgym's ``"spdl"``). The first
version, with a KL penalty, which TeachMyAgent runs, is ``"spdl-v1"`` (:mod:`teachgym.teachers.spdl_v1`).
Tasks come from a Gaussian context distribution q. Every ``update_frequency``
episodes, q is replaced by the Gaussian p closest to the target distribution mu (min KL(p || mu))
under two constraints: the expected value E_p[V] stays at least ``performance_threshold`` and the
step is small, KL(q || p) <= ``max_kl``. Until E_q[V] first reaches the threshold, the step
instead maximises E_p[V] under the same KL bound.

Details (as in the authors' code unless said):

* Everything happens in normalised task space [0, 1]^d; samples are clipped to the box.
* E_p[V] is the importance-weighted mean of V over the contexts of the last ``update_frequency``
  episodes (drawn from q). V is the student's ``value_estimate`` (``teacher.bind``) evaluated at
  update time; without one, V of a context is the mean reported score of its
  ``fallback_neighbours`` nearest contexts among those episodes (itself included).
* The target, uniform over the box, is approximated by the Gaussian closest to it in
  KL(uniform || .): mean 0.5 and standard deviation 1/sqrt(12) per dimension (moment matching).
* Starting distribution: mean ``initial_mean`` (default: the lower bounds, as ADR's start) and
  standard deviation ``initial_std`` = 0.1 of each range (TeachMyAgent's initial subspace).
* The constrained problem is solved approximately, fast: one trust-region step of the objective
  on (mean, Cholesky factor) in the Fisher metric, scaled to the KL bound (the natural-gradient
  step of SPDL's first version), bent as little as needed to keep the linearised E_p[V] above
  delta (the subproblem of constrained policy optimisation), then shortened by halving until
  KL(q || p) <= max_kl, E_p[V] >= delta and the objective improves; if no length works, q is
  kept (as the original keeps it when its optimiser fails).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.teacher import Teacher, register_teacher


class GaussianContexts:
    """What both SPDL versions share: the context distribution q = N(mean, chol chol^T) over
    normalised tasks, its target, the contexts and scores gathered since the last update, V at
    those contexts, and the state of all these (both classes also derive from Teacher)."""

    def _values(self, contexts: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """V at each context: the bound value estimate, else a nearest-neighbour mean of scores."""
        if self.value_estimate is not None:
            tasks = self.task_space.tasks(self.task_space.denormalise(contexts))
            return np.asarray(self.value_estimate(tasks), dtype=np.float64).reshape(len(contexts))
        return neighbour_values(contexts, scores, self.fallback_neighbours)

    def kl_to_target(self) -> float:
        """KL(q || mu) of the current context distribution to the target."""
        return _kl(_Gaussian(self.mean, self.chol), _Gaussian(self.target_mean, self.target_chol), False)[0]

    def _gaussian_state(self) -> dict[str, Any]:
        return {
            "mean": self.mean.copy(),
            "chol": self.chol.copy(),
            "contexts": np.array(self._contexts).reshape(-1, self.task_space.dim),
            "scores": np.array(self._scores, dtype=np.float64),
        }

    def _load_gaussian(self, state: dict[str, Any], label: str) -> None:
        d = self.task_space.dim
        mean = np.asarray(state["mean"], dtype=np.float64).reshape(d)
        chol = np.asarray(state["chol"], dtype=np.float64).reshape(d, d)
        contexts = np.asarray(state["contexts"], dtype=np.float64).reshape(-1, d)
        scores = np.asarray(state["scores"], dtype=np.float64).reshape(-1)
        if len(contexts) != len(scores) or not np.all(np.diag(chol) > 0) or np.any(np.triu(chol, 1)):
            raise ValueError(
                f"{label} state: expected a lower-triangular chol with positive diagonal and one score per context"
            )
        self.mean, self.chol = mean, chol
        self._contexts, self._scores = list(contexts), scores.tolist()


@register_teacher("spdl")
class SPDL(GaussianContexts, Teacher):
    """Self-paced context distribution for bounded ``Box`` task spaces.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    update_frequency
        Episodes between two updates of the context distribution.
    performance_threshold
        delta: the expected value the new distribution must keep (score units).
    max_kl
        epsilon: bound on KL(old || new) per update.
    initial_mean
        Mean of the first distribution, in task units; ``None``: the lower bounds.
    initial_std
        Standard deviation of the first distribution, as a fraction of each range.
    std_lower_bound
        Floor on the Cholesky diagonal (fraction of each range), for numerical safety.
    fallback_neighbours
        Neighbours averaged into V when no ``value_estimate`` is bound.
    line_search_steps
        Halvings of the step tried before an update is given up.
    """

    supported_spaces = (spaces.Box,)

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        update_frequency: int = 100,
        performance_threshold: float = 0.5,
        max_kl: float = 0.1,
        initial_mean: list[float] | None = None,
        initial_std: float = 0.1,
        std_lower_bound: float = 1e-3,
        fallback_neighbours: int = 5,
        line_search_steps: int = 10,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        space = self.task_space
        for name, value in (
            ("update_frequency", update_frequency),
            ("fallback_neighbours", fallback_neighbours),
            ("line_search_steps", line_search_steps),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not np.isfinite(performance_threshold):
            raise ValueError(f"performance_threshold must be finite, got {performance_threshold!r}")
        if not 0.0 < max_kl < np.inf:
            raise ValueError(f"max_kl must be a positive number, got {max_kl!r}")
        if not 0.0 < std_lower_bound <= initial_std:
            raise ValueError(
                f"expected 0 < std_lower_bound <= initial_std, got {std_lower_bound!r} and {initial_std!r}"
            )
        if initial_mean is None:
            start = space.low.copy()
        else:
            try:
                start = space.vector(np.asarray(initial_mean, dtype=np.float64).reshape(space.shape))
            except ValueError as err:
                raise ValueError(f"initial_mean must be a task of the space: {err}") from None
            initial_mean = start.tolist()
        self.update_frequency = int(update_frequency)
        self.performance_threshold = float(performance_threshold)
        self.max_kl = float(max_kl)
        self.initial_mean = initial_mean
        self.initial_std = float(initial_std)
        self.std_lower_bound = float(std_lower_bound)
        self.fallback_neighbours = int(fallback_neighbours)
        self.line_search_steps = int(line_search_steps)
        d = space.dim
        self.mean = space.normalise(start)
        self.chol = np.eye(d) * self.initial_std  # lower-triangular factor of the covariance
        self.target_mean = np.full(d, 0.5)
        self.target_chol = np.eye(d) / np.sqrt(12.0)
        self.above_threshold = False  # E_q[V] has reached the threshold once
        self._contexts: list[np.ndarray] = []  # normalised tasks since the last update
        self._scores: list[float] = []
        self._queue = np.empty((0,) + space.shape, dtype=space.dtype)
        self._queue_pos = 0

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> np.ndarray:
        # q only changes at updates, so tasks are drawn update_frequency at a time.
        if self._queue_pos >= len(self._queue):
            z = self.rng.standard_normal((self.update_frequency, self.task_space.dim))
            self._queue = self.task_space.tasks(self.task_space.denormalise(self.mean + z @ self.chol.T))
            self._queue_pos = 0
        task = self._queue[self._queue_pos]
        self._queue_pos += 1
        return task

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        self._contexts.append(self.task_space.normalise(vector))
        self._scores.append(score)
        if len(self._contexts) >= self.update_frequency:
            contexts, scores = np.array(self._contexts), np.array(self._scores)
            self._contexts, self._scores = [], []
            self._step(contexts, self._values(contexts, scores))

    def _step(self, contexts: np.ndarray, values: np.ndarray) -> None:
        """One constrained update of (mean, chol) from contexts drawn from the current q."""
        if not np.all(np.isfinite(values)):
            return
        d = self.task_space.dim
        old = _Gaussian(self.mean, self.chol)
        target = _Gaussian(self.target_mean, self.target_chol)
        log_q = old.log_pdf(contexts)
        scale = max(np.abs(values).max(), 1e-300)  # values of any magnitude give the same steps
        v, delta = values / scale, self.performance_threshold / scale

        def perf(g: _Gaussian, grad: bool = False):  # importance-weighted E_p[V] (- delta)
            w = np.exp(np.clip(g.log_pdf(contexts) - log_q, -50.0, 50.0)) * v
            if not grad:
                return w.mean() - delta
            r = g.solve(contexts - g.mean)  # Sigma^-1 (c - m)
            dsigma = 0.5 * (np.einsum("n,ni,nj->ij", w, r, r) / len(w) - w.mean() * g.inv)
            return g.pack_grad((w[:, None] * r).mean(0), dsigma)

        above = perf(old) >= 0.0
        self.above_threshold |= bool(above)
        if above:  # min KL(p || mu) s.t. E_p[V] >= delta, KL(q || p) <= max_kl
            objective = lambda g: _kl(g, target, False)[0]  # noqa: E731
            grad = old.pack_grad(*_kl(old, target, False)[1:])
        elif not self.above_threshold:  # max E_p[V] s.t. KL(q || p) <= max_kl
            objective = lambda g: -perf(g)  # noqa: E731
            grad = -perf(old, grad=True)
        else:
            return  # fell below the threshold after expanding: wait for the student
        # Trust-region step of the objective in the natural (Fisher) metric, bent by the smallest
        # multiplier lam >= 0 that keeps the linearised E_p[V] >= delta (as CPO's subproblem).
        fisher = old.fisher() + 1e-10 * np.eye(len(grad))
        perf_grad = perf(old, grad=True) if above else np.zeros_like(grad)
        slack = perf(old)

        def direction(lam: float) -> np.ndarray:
            nat = np.linalg.solve(fisher, grad - lam * perf_grad)
            quad = (grad - lam * perf_grad) @ nat
            return -nat * min(1.0, np.sqrt(2.0 * self.max_kl / quad)) if quad > 0 else np.zeros_like(nat)

        step = direction(0.0)
        if above and slack + perf_grad @ step < 0.0:
            lo, hi = 0.0, 1.0
            while slack + perf_grad @ direction(hi) < 0.0 and hi < 1e12:
                lo, hi = hi, 2.0 * hi
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if slack + perf_grad @ direction(mid) < 0.0 else (lo, mid)
            step = direction(hi)
        if not np.all(np.isfinite(step)) or not step.any():
            return
        x0, f0, floor = old.pack(), objective(old), np.log(self.std_lower_bound)
        with np.errstate(all="ignore"):
            for k in range(self.line_search_steps):
                x = x0 + 0.5**k * step
                x[d : 2 * d] = np.maximum(x[d : 2 * d], floor)
                new = _Gaussian.unpack(x, d)
                if (
                    _kl(old, new, True)[0] <= self.max_kl
                    and objective(new) < f0
                    and (not above or perf(new) >= 0.0)
                ):
                    self.mean, self.chol = new.mean, new.chol
                    self._queue_pos = len(self._queue)  # queued tasks came from the old q
                    return

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            **self._gaussian_state(),
            "above_threshold": self.above_threshold,
            "queue": self._queue.copy(),
            "queue_pos": self._queue_pos,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self._load_gaussian(state, "SPDL")
        self.above_threshold = bool(state["above_threshold"])
        self._queue = (
            np.asarray(state["queue"]).reshape((-1,) + self.task_space.shape).astype(self.task_space.dtype)
        )
        self._queue_pos = int(state["queue_pos"])


def neighbour_values(contexts: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """V at each context: the mean score of its ``k`` nearest contexts (itself included)."""
    k = min(k, len(contexts))
    dist = ((contexts[:, None, :] - contexts[None, :, :]) ** 2).sum(-1)
    nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
    return scores[nearest].mean(1)


class _Gaussian:
    """A Gaussian by mean and lower Cholesky factor; parameters packed as (mean, log diag, off-diag)."""

    def __init__(self, mean: np.ndarray, chol: np.ndarray) -> None:
        self.mean, self.chol = mean, chol
        self.cov = chol @ chol.T
        eye = np.eye(len(mean))
        self.inv_chol = np.linalg.solve(chol, eye)  # triangular and tiny: a plain solve is fine
        self.inv = self.inv_chol.T @ self.inv_chol
        self.logdet = 2.0 * np.log(np.diag(chol)).sum()

    @staticmethod
    def unpack(x: np.ndarray, d: int) -> _Gaussian:
        chol = np.zeros((d, d))
        chol[np.diag_indices(d)] = np.exp(x[d : 2 * d])
        chol[np.tril_indices(d, -1)] = x[2 * d :]
        return _Gaussian(x[:d].copy(), chol)

    def pack(self) -> np.ndarray:
        d = len(self.mean)
        return np.concatenate([self.mean, np.log(np.diag(self.chol)), self.chol[np.tril_indices(d, -1)]])

    def pack_grad(self, dmean: np.ndarray, dsigma: np.ndarray) -> np.ndarray:
        """Gradient in packed parameters from gradients in (mean, covariance)."""
        d = len(self.mean)
        dsym = 0.5 * (dsigma + dsigma.T)
        dchol = 2.0 * dsym @ self.chol  # d f(L L^T) / dL
        return np.concatenate([dmean, np.diag(dchol) * np.diag(self.chol), dchol[np.tril_indices(d, -1)]])

    def fisher(self) -> np.ndarray:
        """Fisher information of the packed parameters (the Hessian of KL(self || .) there)."""
        d = len(self.mean)
        rows, cols = np.tril_indices(d, -1)
        n_cov = d + len(rows)
        dchol = np.zeros((n_cov, d, d))  # derivative of L with respect to each parameter
        dchol[np.arange(d), np.arange(d), np.arange(d)] = np.diag(self.chol)  # log-diagonal
        dchol[np.arange(d, n_cov), rows, cols] = 1.0
        dsigma = dchol @ self.chol.T + self.chol @ dchol.transpose(0, 2, 1)
        m = self.inv @ dsigma
        out = np.zeros((d + n_cov, d + n_cov))
        out[:d, :d] = self.inv
        out[d:, d:] = 0.5 * np.einsum("aij,bji->ab", m, m)
        return out

    def solve(self, r: np.ndarray) -> np.ndarray:
        return r @ self.inv  # inv is symmetric

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) @ self.inv_chol.T
        return -0.5 * ((z**2).sum(1) + self.logdet + len(self.mean) * np.log(2.0 * np.pi))


def _kl(p: _Gaussian, q: _Gaussian, grad_second: bool) -> tuple[float, np.ndarray, np.ndarray]:
    """KL(p || q) and its gradient in (mean, covariance) of p, or of q if ``grad_second``."""
    d = len(p.mean)
    diff = q.mean - p.mean
    kl = 0.5 * (np.trace(q.inv @ p.cov) + diff @ q.inv @ diff - d + q.logdet - p.logdet)
    if grad_second:
        a = q.inv @ (p.cov + np.outer(diff, diff)) @ q.inv
        return float(kl), q.inv @ diff, 0.5 * (q.inv - a)
    return float(kl), -(q.inv @ diff), 0.5 * (q.inv - p.inv)
