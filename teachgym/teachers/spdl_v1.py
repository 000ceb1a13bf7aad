"""SPDL v1: Self-Paced Deep RL with a KL penalty, the version TeachMyAgent runs.

Klink, Abdulsamad, Belousov & Peters, "Self-Paced Contextual Reinforcement Learning" (CoRL 2019)
and Klink et al., "Self-Paced Deep Reinforcement Learning" (NeurIPS 2020), as wrapped by
TeachMyAgent (``TeachMyAgent/teachers/algos/self_paced_teacher.py``, from the authors' code).
Tasks come from a Gaussian context distribution q. At each update q is replaced by the Gaussian p
that maximises

    J(p) = E_q[p(c) / q(c) V(c)] - alpha KL(p || mu)     subject to KL(q || p) <= max_kl,

with mu the target distribution and alpha = zeta * max(0, mean V) / KL(q || mu) (TeachMyAgent's
``PercentageAlphaFunction``: the penalty is a fixed share ``zeta`` of the performance; 0 while
the update's number, counted from 1, is below ``alpha_offset``; capped at 1e5). The step is one natural-gradient step of J in
(mean, log-diagonal, off-diagonal of the Cholesky factor), scaled so that the quadratic model of
KL(q || p) equals ``max_kl``, then halved until KL(q || p) <= max_kl and J does not decrease; if
no length works, q is kept. teachgym's ``"spdl"`` is the later, constrained version.

Details, and where this differs from TeachMyAgent:

* Everything happens in normalised task space [0, 1]^d (the KL terms and the natural step are
  invariant to that affine map); samples are clipped to the box.
* The expectation uses the contexts of the episodes since the last update (at most
  ``max_context_buffer``, TeachMyAgent's buffer of 1000 that is emptied when read).
* V at each context is the student's ``value_estimate`` (``teacher.bind``), TeachMyAgent's V(s0)
  from the critic at the episode's initial state; without one, the mean reported score of its
  ``fallback_neighbours`` nearest contexts. With ``use_avg_performance`` alpha uses the mean
  reported score instead of the mean V (TeachMyAgent: the mean discounted return).
* Updates are counted in episodes: TeachMyAgent counts environment steps (every 100k after 200k,
  its defaults; every 50k in its benchmark scripts). At Stump Tracks' 2000-step cap those are at
  least 50, 100 and 25 episodes, the values of the presets.
* The natural direction is solved exactly (TeachMyAgent: 10 conjugate-gradient iterations with
  damping 0.01), and the line search always enforces the KL bound (TeachMyAgent's accepts a step
  once ``kl <= 1.5 max_kl or improvement >= 0``, so it can exceed the bound).
* Target: N(centre, (range / 4)^2) per dimension (TeachMyAgent without an expert's target).
  Start: mean ``initial_mean`` (``"random"``: a uniform draw, TeachMyAgent's default; ``None``: the
  lower bounds), standard deviation ``initial_std`` = 0.1 of each range.

Presets: ``"teachmyagent-defaults"`` is TeachMyAgent's argument defaults
(``run_utils/teacher_args_handler.py``: zeta 0.05, max KL 0.8, no alpha offset) and
``"teachmyagent"`` what its benchmark ran (``benchmark_scripts/full_benchmark_Self-Paced.txt``:
``--sp_update_offset 200000 --sp_update_frequency 50000 --alpha_offset 10 --zeta 0.25 --max_kl 0.1
--use_avg_performance``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from teachgym.teacher import Teacher, register_teacher
from teachgym.teachers.spdl import GaussianContexts, _Gaussian, _kl

_ALPHA_CAP = 1e5
_KL_FLOOR = 1e-10


@register_teacher("spdl-v1")
class SPDLv1(GaussianContexts, Teacher):
    """Self-paced context distribution with a KL penalty, for bounded ``Box`` task spaces.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    update_frequency
        Episodes between two updates.
    update_offset
        Episodes before the first update (updates happen at multiples of ``update_frequency``
        from then on).
    alpha_offset
        Alpha is 0 (pure value maximisation) for updates number 1 to ``alpha_offset - 1``.
    zeta
        The KL penalty's share of the performance: alpha = zeta * max(0, perf) / KL(q || mu).
    max_kl
        Bound on KL(old || new) per update.
    use_avg_performance
        perf is the mean reported score since the last update instead of the mean V.
    initial_mean
        Mean of the first distribution in task units; ``None``: the lower bounds; ``"random"``:
        a uniform draw.
    initial_std
        Standard deviation of the first distribution, as a fraction of each range.
    fallback_neighbours
        Neighbours averaged into V when no ``value_estimate`` is bound.
    line_search_steps
        Halvings of the step tried before an update is given up.
    max_context_buffer
        Most recent contexts an update uses.
    """

    supported_spaces = (spaces.Box,)
    PRESETS = {
        "teachmyagent-defaults": {
            "update_frequency": 50, "update_offset": 100, "alpha_offset": 0, "zeta": 0.05, "max_kl": 0.8,
            "use_avg_performance": False, "initial_mean": "random",
        },
        "teachmyagent": {
            "update_frequency": 25, "update_offset": 100, "alpha_offset": 10, "zeta": 0.25, "max_kl": 0.1,
            "use_avg_performance": True, "initial_mean": "random",
        },
    }

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        update_frequency: int = 50,
        update_offset: int = 100,
        alpha_offset: int = 0,
        zeta: float = 0.05,
        max_kl: float = 0.8,
        use_avg_performance: bool = False,
        initial_mean: list[float] | Literal["random"] | None = None,
        initial_std: float = 0.1,
        fallback_neighbours: int = 5,
        line_search_steps: int = 10,
        max_context_buffer: int = 1000,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        space = self.task_space
        for name, value, least in (
            ("update_frequency", update_frequency, 1),
            ("update_offset", update_offset, 0),
            ("alpha_offset", alpha_offset, 0),
            ("fallback_neighbours", fallback_neighbours, 1),
            ("line_search_steps", line_search_steps, 1),
            ("max_context_buffer", max_context_buffer, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if not 0.0 <= zeta < np.inf:
            raise ValueError(f"zeta must be a non-negative number, got {zeta!r}")
        if not 0.0 < max_kl < np.inf:
            raise ValueError(f"max_kl must be a positive number, got {max_kl!r}")
        if not 0.0 < initial_std < np.inf:
            raise ValueError(f"initial_std must be a positive number (fraction of each range), got {initial_std!r}")
        if initial_mean is None:
            start = np.zeros(space.dim)
        elif isinstance(initial_mean, str):
            if initial_mean != "random":
                raise ValueError(f"initial_mean must be a task, None or 'random', got {initial_mean!r}")
            start = self.rng.random(space.dim)
        else:
            try:
                vector = space.vector(np.asarray(initial_mean, dtype=np.float64).reshape(space.shape))
            except ValueError as err:
                raise ValueError(f"initial_mean must be a task of the space: {err}") from None
            initial_mean, start = vector.tolist(), space.normalise(vector)
        self.update_frequency, self.update_offset = int(update_frequency), int(update_offset)
        self.alpha_offset, self.zeta, self.max_kl = int(alpha_offset), float(zeta), float(max_kl)
        self.use_avg_performance = bool(use_avg_performance)
        self.initial_mean, self.initial_std = initial_mean, float(initial_std)
        self.fallback_neighbours, self.line_search_steps = int(fallback_neighbours), int(line_search_steps)
        self.max_context_buffer = int(max_context_buffer)
        d = space.dim
        self.mean = np.asarray(start, dtype=np.float64)
        self.chol = np.eye(d) * self.initial_std  # lower-triangular factor of the covariance
        self.target_mean = np.full(d, 0.5)
        self.target_chol = np.eye(d) * 0.25  # TeachMyAgent's whole-space target: std = range / 4
        self.iterations = 0  # updates made (TeachMyAgent's algorithm_iterations)
        self.alpha = 0.0  # the penalty weight of the last update
        self._contexts: list[np.ndarray] = []  # normalised tasks since the last update
        self._scores: list[float] = []

    # ---------------------------------------------------------------- sampling
    def _sample(self) -> np.ndarray:
        unit = self.mean + self.chol @ self.rng.standard_normal(self.task_space.dim)
        return self.task_space.task(self.task_space.denormalise(np.clip(unit, 0.0, 1.0)))

    def _exploit_unit(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.clip(self.mean + rng.standard_normal((n, self.task_space.dim)) @ self.chol.T, 0.0, 1.0)

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        self._contexts.append(self.task_space.normalise(vector))
        self._scores.append(score)
        if len(self._contexts) > self.max_context_buffer:
            del self._contexts[0], self._scores[0]
        n = self.n_updates + 1  # episodes including this one
        if n >= self.update_offset and n % self.update_frequency == 0:
            contexts, scores = np.array(self._contexts), np.array(self._scores)
            self._contexts, self._scores = [], []
            self.iterations += 1
            self._step(contexts, scores)

    def _step(self, contexts: np.ndarray, scores: np.ndarray) -> None:
        """One penalised natural-gradient update of (mean, chol) from contexts drawn from q."""
        values = self._values(contexts, scores)
        perf = float(scores.mean() if self.use_avg_performance else values.mean())
        if not (np.all(np.isfinite(values)) and np.isfinite(perf)):
            return
        d = self.task_space.dim
        old = _Gaussian(self.mean, self.chol)
        target = _Gaussian(self.target_mean, self.target_chol)
        if self.iterations < self.alpha_offset:  # TeachMyAgent: alpha = 0 while iteration < offset
            alpha = 0.0
        else:
            kl_now = max(_kl(old, target, False)[0], _KL_FLOOR)
            alpha = min(self.zeta * max(perf, 0.0) / kl_now, _ALPHA_CAP)
        self.alpha = alpha
        # J / scale has the same maximiser and keeps values of any magnitude finite.
        scale = max(np.abs(values).max(), alpha, 1e-300)
        v, a = values / scale, alpha / scale
        log_q = old.log_pdf(contexts)

        def objective(g: _Gaussian) -> float:
            w = np.exp(np.clip(g.log_pdf(contexts) - log_q, -50.0, 50.0))
            return float((w * v).mean() - a * _kl(g, target, False)[0])

        # Gradient of J at q: the importance-weighted term (w = 1 there) minus the penalty's.
        r = old.solve(contexts - old.mean)  # Sigma^-1 (c - m)
        dsigma = 0.5 * (np.einsum("n,ni,nj->ij", v, r, r) / len(v) - v.mean() * old.inv)
        grad = old.pack_grad((v[:, None] * r).mean(0), dsigma)
        grad = grad - a * old.pack_grad(*_kl(old, target, False)[1:])
        if not np.all(np.isfinite(grad)) or np.linalg.norm(grad) < 1e-10:
            return
        fisher = old.fisher()
        direction = np.linalg.solve(fisher + 1e-10 * np.eye(len(grad)), grad)
        quad = 0.5 * direction @ fisher @ direction
        if not quad > 0.0:
            return
        full = direction * np.sqrt(self.max_kl / quad)
        x0, j0 = old.pack(), objective(old)
        with np.errstate(all="ignore"):
            for k in range(self.line_search_steps):
                new = _Gaussian.unpack(x0 + 0.5**k * full, d)
                if _kl(old, new, True)[0] <= self.max_kl and objective(new) >= j0:
                    self.mean, self.chol = new.mean, new.chol
                    return

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {**self._gaussian_state(), "iterations": self.iterations, "alpha": self.alpha}

    def _load(self, state: dict[str, Any]) -> None:
        self._load_gaussian(state, "SPDL v1")
        self.iterations, self.alpha = int(state["iterations"]), float(state["alpha"])
