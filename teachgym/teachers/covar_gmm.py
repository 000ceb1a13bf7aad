"""Covar-GMM: learning progress as the covariance of time and score inside Gaussian mixtures.

Moulin-Frier, Nguyen & Oudeyer, "Self-organization of early vocal development in infants and
machines: the role of intrinsic motivation", Frontiers in Psychology 2014 (IGMM), as run in
teachDeepRL (Portelas et al. 2019). Every ``fit_rate`` episodes, mixtures with k in
``potential_ks`` are fitted on the last ``fit_rate`` rows of [task, relative time, score] and the
one with the lowest AIC is kept; a component's learning progress is the covariance of time and
score in it (only its positive part unless ``absolute_lp``), and tasks come from a component
chosen in proportion to it, with the time and score coordinates dropped.

"Relative time" is the position of an episode in its batch of ``fit_rate`` episodes,
``(episode index mod fit_rate) / fit_rate`` in [0, 1), as in teachDeepRL. Tasks are normalised to
[0, 1] before fitting, so that every axis weighs the same in the k-means++ start of EM.
teachDeepRL and TeachMyAgent (``TeachMyAgent/teachers/algos/covar_gmm.py``) fit raw task values,
and their benchmarks are no unit boxes: Stump Tracks is [0, 3] x [0, 6] (spacing weighs twice
height in distances) and Hexagon Tracks [0, 4]^12 (every task axis four times the time and score
axes). On teachDeepRL's toy [0, 1]^d grid the two coincide.

The ``"teachmyagent"`` preset is TeachMyAgent's benchmark setting
(``benchmark_scripts/full_benchmark_Covar-GMM.txt``: ``--fit_rate 150 --random_percentage 10
--min_k 2 --max_k 15``, i.e. k = 2..14); its raw task units are not offered here.

Speed: the nine mixtures are fitted side by side (:mod:`teachgym.teachers._mixture`), and between
fits the sampling distribution is fixed, so tasks are drawn ``fit_rate`` at a time.
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
)


@register_teacher("covar-gmm")
class CovarGMM(MixtureTeacher):
    """Covar-GMM teacher for bounded ``Box`` task spaces.

    Parameters
    ----------
    task_space, seed, task_names
        See :class:`~teachgym.teacher.Teacher`.
    fit_rate
        Episodes between two mixture fits; also the number of uniform bootstrap episodes, the
        number of most recent episodes the mixtures are fitted on, and the period of the
        relative time coordinate.
    random_task_ratio
        Probability of a uniform task once bootstrapping is over.
    potential_ks
        Numbers of components tried at each fit.
    absolute_lp
        Use ``|cov(time, score)|`` as a component's learning progress instead of
        ``max(0, cov(time, score))`` (the original IGMM rewards progress only).
    tol, max_iter, reg_covar
        EM stopping tolerance (mean log-likelihood), iteration cap and covariance regulariser,
        as scikit-learn's ``GaussianMixture``.
    fit_backend
        ``"batched"`` (all k side by side, fast) or ``"sklearn"`` (``GaussianMixture``).
    """

    supported_spaces = (spaces.Box,)
    PRESETS = {
        "teachmyagent": {"fit_rate": 150, "random_task_ratio": 0.1, "potential_ks": tuple(range(2, 15))},
    }

    def __init__(
        self,
        task_space,
        seed=None,
        task_names=None,
        fit_rate: int = 250,
        random_task_ratio: float = 0.2,
        potential_ks: tuple[int, ...] = tuple(range(2, 11)),
        absolute_lp: bool = False,
        tol: float = 1e-3,
        max_iter: int = 100,
        reg_covar: float = 1e-6,
        fit_backend: str = "batched",
    ) -> None:
        super().__init__(task_space, seed, task_names)
        ks = check_gmm_hparams(fit_rate, random_task_ratio, potential_ks, tol, max_iter, reg_covar, fit_backend)
        if not isinstance(absolute_lp, (bool, np.bool_)):
            raise ValueError(f"absolute_lp must be a bool, got {absolute_lp!r}")
        self.fit_rate = int(fit_rate)
        self.random_task_ratio = float(random_task_ratio)
        self.potential_ks = ks
        self.absolute_lp = bool(absolute_lp)
        self.tol, self.max_iter, self.reg_covar = float(tol), int(max_iter), float(reg_covar)
        self.fit_backend = fit_backend
        dim = self.task_space.dim
        # Rows [normalised task, relative time, score] of the current batch: a fit only ever
        # reads the last fit_rate episodes, which is exactly the batch that just closed.
        self._rows = np.empty((self.fit_rate, dim + 2))
        self.mixture: Mixture | None = None
        self._queue = np.empty((0, dim))
        self._queue_pos = 0

    # ---------------------------------------------------------------- sampling
    def learning_progress(self) -> np.ndarray:
        """Learning progress of each component of the current mixture (empty before the first fit)."""
        if self.mixture is None:
            return np.zeros(0)
        cov = self.mixture.covariances[:, -2, -1]  # covariance of relative time and score
        return np.abs(cov) if self.absolute_lp else np.maximum(cov, 0.0)

    def utility(self) -> np.ndarray:
        # No component progresses: any of them, uniformly (as teachDeepRL's proportional_choice).
        return self.learning_progress()

    # ---------------------------------------------------------------- learning
    def _update(self, vector: np.ndarray, score: float, info: dict[str, Any]) -> None:
        i = self.n_updates % self.fit_rate
        dim = self.task_space.dim
        self._rows[i, :dim] = self.task_space.normalise(vector)
        self._rows[i, dim] = i / self.fit_rate
        self._rows[i, dim + 1] = score
        if i + 1 == self.fit_rate:
            self._fit()

    def _fit(self) -> None:
        try:
            with np.errstate(all="ignore"):
                fits = FIT_BACKENDS[self.fit_backend](
                    self._rows, np.array(self.potential_ks), self.rng, self.tol, self.max_iter, self.reg_covar
                )
        except (ValueError, np.linalg.LinAlgError):
            return  # scores of absurd magnitude: keep the current distribution
        best = best_mixture(fits)
        if np.isfinite(best.aic) and np.isfinite(best.covariances).all():
            self.mixture = best
            self._queue = self._queue[:0]  # the distribution changed: draw afresh

    # ------------------------------------------------------------------- state
    def _state(self) -> dict[str, Any]:
        return {
            "rows": self._rows[: self.n_updates % self.fit_rate].copy(),
            "mixture": None if self.mixture is None else self.mixture.to_dict(),
            "queue": self._queue.copy(),
            "queue_pos": self._queue_pos,
        }

    def _load(self, state: dict[str, Any]) -> None:
        dim = self.task_space.dim
        rows = np.asarray(state["rows"], dtype=np.float64).reshape(-1, dim + 2)
        if len(rows) >= self.fit_rate:
            raise ValueError(f"rows holds {len(rows)} episodes; a batch holds fewer than fit_rate={self.fit_rate}")
        mixture = None if state["mixture"] is None else Mixture.from_dict(state["mixture"])
        if mixture is not None and mixture.means.shape[1:] != (dim + 2,):
            raise ValueError(f"mixture means must have {dim + 2} coordinates, got shape {mixture.means.shape}")
        queue = np.asarray(state["queue"]).reshape((-1,) + self.task_space.shape)
        queue_pos = int(state["queue_pos"])
        self._rows = np.empty((self.fit_rate, dim + 2))
        self._rows[: len(rows)] = rows
        self.mixture = mixture
        self._queue = queue.astype(self.task_space.dtype)
        self._queue_pos = queue_pos
