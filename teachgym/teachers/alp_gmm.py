"""ALP-GMM: absolute learning progress with Gaussian mixtures.

Portelas, Colas, Hofmann & Oudeyer, "Teacher algorithms for curriculum learning of Deep RL in
continuously parameterized environments", CoRL 2019. The ALP of a new (task, score) is
``|score - score of the nearest previously seen task|``. Every ``fit_rate`` episodes, mixtures
with k in ``potential_ks`` are fitted on the last ``fit_rate`` rows of [task, ALP] and the one
with the lowest AIC is kept; tasks come from a component chosen in proportion to its mean ALP.

Speed (same algorithm as the paper, computed differently):

* ALPs are needed only when mixtures are fitted, so they are computed once per fit, for the
  whole batch: nearest neighbours among older tasks through a forest of k-d trees, and among
  the batch itself through one masked distance matrix. Each row gets exactly the ALP the
  per-episode computation would give.
* The nine mixtures are fitted side by side (:mod:`teachgym.teachers._mixture`).
* Between fits the sampling distribution is fixed, so tasks are drawn ``fit_rate`` at a time.

Units: nearest neighbours and mixtures live in the task space normalised to [0, 1] per
dimension (teachDeepRL's toy spaces are unit boxes, where it makes no difference). TeachMyAgent
works in raw task units (``TeachMyAgent/teachers/algos/alp_gmm.py``: tasks go to its k-d tree and
``GaussianMixture.fit`` as sampled), which on Stump Tracks' [0, 3] x [0, 6] weighs spacing half as
much as height in distances and changes the fitted shapes; ``fit_in_task_units=True`` does that.

The ``"teachmyagent"`` preset is its benchmark's setting (``benchmark_scripts/full_benchmark_ALP-GMM.txt``
and the defaults of ``TeachMyAgent/run_utils/teacher_args_handler.py``): ``--fit_rate 150
--random_percentage 5 --min_k 2 --max_k 10``, i.e. k = 2..9 (``np.arange(min_k, max_k)``), in raw
task units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from teachgym.teacher import register_teacher
from teachgym.teachers._mixture import (
    FIT_BACKENDS,
    Mixture,
    MixtureTeacher,
    best_mixture,
    check_gmm_hparams,
    to_unit_mixture,
)
from teachgym.teachers._neighbours import NeighbourForest


@register_teacher("alp-gmm")
class ALPGMM(MixtureTeacher):
    """ALP-GMM teacher for bounded ``Box`` task spaces.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    fit_rate
        Episodes between two mixture fits; also the number of uniform bootstrap episodes and the
        number of most recent episodes the mixtures are fitted on.
    random_task_ratio
        Probability of a uniform task once bootstrapping is over.
    potential_ks
        Numbers of components tried at each fit.
    alp_min_history
        ALP is 0 until more than this many tasks have been seen.
    tol, max_iter, reg_covar
        EM stopping tolerance (mean log-likelihood), iteration cap and covariance regulariser,
        as scikit-learn's ``GaussianMixture``.
    fit_backend
        ``"batched"`` (all k side by side, fast) or ``"sklearn"`` (``GaussianMixture``, the
        reference it is measured against).
    fit_in_task_units
        Find nearest neighbours and fit the mixtures in raw task units (TeachMyAgent) instead of
        the space normalised to [0, 1]; ``mixture`` is then in task units.
    """

    supported_spaces = (spaces.Box,)
    PRESETS = {
        "teachmyagent": {
            "fit_rate": 150,
            "random_task_ratio": 0.05,
            "potential_ks": tuple(range(2, 10)),
            "fit_in_task_units": True,
        },
    }

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        fit_rate: int = 250,
        random_task_ratio: float = 0.2,
        potential_ks: tuple[int, ...] = tuple(range(2, 11)),
        alp_min_history: int = 5,
        tol: float = 1e-3,
        max_iter: int = 100,
        reg_covar: float = 1e-6,
        fit_backend: str = "batched",
        fit_in_task_units: bool = False,
    ) -> None:
        super().__init__(task_space, seed, task_names)
        ks = check_gmm_hparams(fit_rate, random_task_ratio, potential_ks, tol, max_iter, reg_covar, fit_backend)
        self.fit_rate = int(fit_rate)
        self.random_task_ratio = float(random_task_ratio)
        self.potential_ks = ks
        self.alp_min_history = int(alp_min_history)
        self.tol, self.max_iter, self.reg_covar = float(tol), int(max_iter), float(reg_covar)
        self.fit_backend = fit_backend
        self.fit_in_task_units = bool(fit_in_task_units)
        dim = self.task_space.dim
        self._tasks = np.empty((1024, dim))  # normalised to [0, 1], or in task units
        self._scores = np.empty(1024)
        self._alps = np.empty(1024)
        self._n_alp = 0  # rows whose ALP is computed
        self._neighbours = NeighbourForest()  # indexes the rows whose ALP is computed
        self.mixture: Mixture | None = None
        self._queue = np.empty((0, dim))
        self._queue_pos = 0

    # ---------------------------------------------------------------- sampling
    def utility(self) -> np.ndarray:
        """Each component's mean ALP coordinate, floored at 0 (empty before the first fit)."""
        return np.zeros(0) if self.mixture is None else np.maximum(self.mixture.means[:, -1], 0.0)

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        i = self.n_updates
        if i >= len(self._scores):
            self._grow()
        self._tasks[i] = vector if self.fit_in_task_units else self.task_space.normalise(vector)
        self._scores[i] = score
        if (i + 1) % self.fit_rate == 0:
            self._fit(i + 1)

    def _unit_mixture(self) -> Mixture | None:
        if self.mixture is None or not self.fit_in_task_units:
            return self.mixture
        return to_unit_mixture(self.mixture, self.task_space.low, self.task_space.high)

    def _grow(self) -> None:
        size = 2 * len(self._scores)
        for name in ("_tasks", "_scores", "_alps"):
            old = getattr(self, name)
            new = np.empty((size,) + old.shape[1:])
            new[: len(old)] = old
            setattr(self, name, new)

    def _fit(self, n: int) -> None:
        rows = self.alps(n)[n - self.fit_rate : n]
        data = np.column_stack([self._tasks[n - self.fit_rate : n], rows])
        try:
            with np.errstate(all="ignore"):
                fits = FIT_BACKENDS[self.fit_backend](
                    data, np.array(self.potential_ks), self.rng, self.tol, self.max_iter, self.reg_covar
                )
        except (ValueError, np.linalg.LinAlgError):
            return  # scores of absurd magnitude: keep the current distribution
        best = best_mixture(fits)
        if np.isfinite(best.aic):
            self.mixture = best
            self._queue = self._queue[:0]  # the distribution changed: draw afresh

    def alps(self, n: int | None = None) -> np.ndarray:
        """ALP of the first ``n`` (default: all) episodes, computed for any that lack one."""
        n = self.n_updates if n is None else n
        lo = self._n_alp
        if n > lo:
            _, j = self._neighbours.earlier_nearest(self._tasks, n)
            alp = np.abs(self._scores[lo:n] - self._scores[j])
            alp[np.arange(lo, n) <= self.alp_min_history] = 0.0  # also every row with j == -1
            self._alps[lo:n] = alp
            self._n_alp = n
        return self._alps[:n]

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        n = self.n_updates
        return {
            "tasks": self._tasks[:n].copy(),
            "scores": self._scores[:n].copy(),
            "alps": self._alps[: self._n_alp].copy(),
            "mixture": None if self.mixture is None else self.mixture.to_dict(),
            "queue": self._queue.copy(),
            "queue_pos": self._queue_pos,
        }

    def _load(self, state: dict[str, Any]) -> None:
        tasks = np.asarray(state["tasks"], dtype=np.float64).reshape(-1, self.task_space.dim)
        scores = np.asarray(state["scores"], dtype=np.float64).reshape(-1)
        alps = np.asarray(state["alps"], dtype=np.float64).reshape(-1)
        queue = np.asarray(state["queue"]).reshape((-1,) + self.task_space.shape)
        if len(tasks) != len(scores) or len(alps) > len(scores):
            raise ValueError("tasks, scores and alps have inconsistent lengths")
        mixture = None if state["mixture"] is None else Mixture.from_dict(state["mixture"])
        size = max(1024, 1 << int(np.ceil(np.log2(max(len(scores), 1)))))
        self._tasks = np.empty((size, self.task_space.dim))
        self._scores, self._alps = np.empty(size), np.empty(size)
        self._tasks[: len(tasks)], self._scores[: len(scores)] = tasks, scores
        self._alps[: len(alps)] = alps
        self._n_alp = len(alps)
        self._neighbours.rebuild(self._tasks, len(alps))
        self.mixture = mixture
        self._queue = queue.astype(self.task_space.dtype)
        self._queue_pos = int(state["queue_pos"])
