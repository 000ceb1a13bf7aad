"""Batched expectation-maximisation for full-covariance Gaussian mixtures.

The GMM teachers (ALP-GMM, Covar-GMM) refit mixtures with k = 2..10 components every
``fit_rate`` episodes and keep the one with the lowest AIC. scikit-learn's ``GaussianMixture``
fits the nine models one after the other and pays its Python and k-means overhead nine times:
on 250 points in 3-D one round takes ~0.2 s here. This module runs the nine EMs side by side as
one stack of components (the numpy calls are shared), with the same model (full covariance,
``reg_covar`` on the diagonal, stop when the mean log-likelihood changes by less than ``tol``)
and k-means++ seeding; one round takes a few milliseconds. ``tests/test_mixture.py`` checks its
fits against scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

from teachgym.teacher import Teacher

_LOG_2PI = np.log(2.0 * np.pi)


class MixtureTeacher(Teacher):
    """Sampling shared by the GMM teachers (ALP-GMM, Covar-GMM).

    Tasks come ``fit_rate`` at a time from the current mixture (uniform while there is none, and
    with probability ``random_task_ratio``), a component chosen in proportion to :meth:`utility`;
    a subclass empties ``_queue`` when it refits, so the next task comes from the new mixture.
    Subclasses set ``mixture``, ``fit_rate``, ``random_task_ratio``, ``_queue`` and ``_queue_pos``.
    """

    mixture: Mixture | None

    def utility(self) -> np.ndarray:
        """Sampling weight of each component of the current mixture (empty before the first fit)."""
        raise NotImplementedError

    def _sample(self) -> np.ndarray:
        if self._queue_pos >= len(self._queue):
            self._queue = self._draw(self.fit_rate)
            self._queue_pos = 0
        task = self._queue[self._queue_pos]
        self._queue_pos += 1
        return task

    def _unit_mixture(self) -> Mixture | None:
        """The current mixture with its task coordinates in [0, 1]^dim (where it is fitted)."""
        return self.mixture

    def _draw(self, n: int) -> np.ndarray:
        """``n`` tasks from the current sampling distribution, in the space's canonical form."""
        mixture = self._unit_mixture()
        unit = draw_from_mixture(self.rng, mixture, self.utility(), self.task_space.dim, n, self.random_task_ratio)
        return self.task_space.tasks(self.task_space.denormalise(unit))

    def _exploit_unit(self, rng: np.random.Generator, n: int) -> np.ndarray | None:
        if self.mixture is None:
            return None  # still bootstrapping: uniform is all there is
        return draw_from_mixture(rng, self._unit_mixture(), self.utility(), self.task_space.dim, n, 0.0)


@dataclass
class Mixture:
    """A fitted Gaussian mixture."""

    weights: np.ndarray  # (k,)
    means: np.ndarray  # (k, D)
    covariances: np.ndarray  # (k, D, D)
    aic: float
    log_likelihood: float  # mean per sample
    n_iter: int

    @property
    def n_components(self) -> int:
        return int(self.weights.size)

    def to_dict(self) -> dict:
        return {
            "weights": self.weights,
            "means": self.means,
            "covariances": self.covariances,
            "aic": float(self.aic),
            "log_likelihood": float(self.log_likelihood),
            "n_iter": int(self.n_iter),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Mixture:
        return cls(
            weights=np.asarray(d["weights"], dtype=np.float64),
            means=np.asarray(d["means"], dtype=np.float64),
            covariances=np.asarray(d["covariances"], dtype=np.float64),
            aic=float(d["aic"]),
            log_likelihood=float(d["log_likelihood"]),
            n_iter=int(d["n_iter"]),
        )


def to_unit_mixture(mixture: Mixture, low: np.ndarray, high: np.ndarray) -> Mixture:
    """``mixture`` fitted in task units, its first ``len(low)`` coordinates mapped to [0, 1].

    The map is affine (x - low) / (high - low), so drawing from the result and denormalising is
    drawing from ``mixture``; the coordinates past the task's (ALP, time, score) are unchanged.
    """
    scale = np.ones(mixture.means.shape[1])
    shift = np.zeros_like(scale)
    dim = len(low)
    width = np.asarray(high, dtype=np.float64) - low
    scale[:dim] = 1.0 / np.where(width > 0, width, 1.0)  # a point dimension: as TaskSpace.normalise
    shift[:dim] = low
    return Mixture(
        weights=mixture.weights,
        means=(mixture.means - shift) * scale,
        covariances=mixture.covariances * scale[:, None] * scale[None, :],
        aic=mixture.aic,
        log_likelihood=mixture.log_likelihood,
        n_iter=mixture.n_iter,
    )


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` k-means++ seeds; the first ``j`` of them are a k-means++ draw for ``j``."""
    n = x.shape[0]
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.integers(n)
    closest = ((x - x[chosen[0]]) ** 2).sum(1)
    for j in range(1, k):
        total = closest.sum()
        if total <= 0.0:  # every point coincides with a seed: any point will do
            chosen[j] = rng.integers(n)
        else:
            chosen[j] = min(int(np.searchsorted(np.cumsum(closest), rng.random() * total)), n - 1)
        closest = np.minimum(closest, ((x - x[chosen[j]]) ** 2).sum(1))
    return chosen


def fit_mixtures(
    x: np.ndarray,
    ks: np.ndarray,
    rng: np.random.Generator,
    tol: float = 1e-3,
    max_iter: int = 100,
    reg_covar: float = 1e-6,
) -> list[Mixture]:
    """Fit one full-covariance mixture per entry of ``ks`` on ``x`` (``(n, D)``).

    Returns the mixtures in the order of ``ks``, each with its AIC (inf for a degenerate fit).

    Raises
    ------
    numpy.linalg.LinAlgError
        If a covariance cannot be made positive definite (data of extreme magnitude).
    """
    x = np.asarray(x, dtype=np.float64)
    n, dim = x.shape
    if not np.isfinite(x).all():
        raise ValueError("mixtures need finite data")
    ks = np.asarray(ks, dtype=np.int64)
    if ks.min() < 1 or ks.max() > n:
        raise ValueError(f"numbers of components must lie in [1, {n}] for {n} points, got {ks}")
    n_models = ks.size
    owner = np.repeat(np.arange(n_models), ks)  # model of each stacked component
    n_comp = owner.size
    eye = np.eye(dim) * reg_covar

    # k-means++ seeds, shared: the first k of one sequence seed the model with k components
    # (scikit-learn's init_params="k-means++"); EM starts from the hard assignment to them.
    seeds = x[kmeans_plus_plus(x, int(ks.max()), rng)]
    centres = np.concatenate([seeds[:k] for k in ks])
    starts, sizes, models = _segments(owner)
    d2 = cdist(centres, x, "sqeuclidean")  # (components, n)
    nearest = np.repeat(np.minimum.reduceat(d2, starts, axis=0), sizes, axis=0)
    resp = (d2 == nearest).astype(np.float64)
    resp /= np.repeat(np.add.reduceat(resp, starts, axis=0), sizes, axis=0)  # ties: share

    weights = np.empty(n_comp)
    means = np.empty((n_comp, dim))
    covs = np.empty((n_comp, dim, dim))
    log_lik = np.full(n_models, -np.inf)
    n_iter = np.zeros(n_models, dtype=np.int64)
    active = np.ones(n_models, dtype=bool)
    comp = np.arange(n_comp)

    xt = x.T.copy()  # (D, n): the inner loops run over samples, which is what numpy is fast at
    for it in range(max_iter + 1):
        # M-step on the active components.
        r = resp[comp]
        nk = r.sum(1) + 10.0 * np.finfo(float).eps
        mu = (r @ x) / nk[:, None]
        diff = xt[None, :, :] - mu[:, :, None]  # (K, D, n)
        cov = ((diff * r[:, None, :]) @ diff.transpose(0, 2, 1)) / nk[:, None, None] + eye
        weights[comp], means[comp], covs[comp] = nk / n, mu, cov
        chol = _cholesky(cov, reg_covar)
        # E-step: log N(x | mu, cov) through the inverse Cholesky factor.
        y = np.linalg.inv(chol) @ diff
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
        maha = np.einsum("kdn,kdn->kn", y, y)
        log_p = np.log(nk / n)[:, None] - 0.5 * (dim * _LOG_2PI + log_det[:, None] + maha)
        # Per-model log-sum-exp over its (contiguous) components. Shifting by the largest term
        # of all models is cheaper and nearly always safe; where a model's sum underflows,
        # shift by each model's own largest term instead.
        peak = log_p.max(0)
        ex = np.exp(log_p - peak)
        total = np.add.reduceat(ex, starts, axis=0)
        if total.min() < 1e-250:
            peak = np.maximum.reduceat(log_p, starts, axis=0)
            ex = np.exp(log_p - np.repeat(peak, sizes, axis=0))
            total = np.add.reduceat(ex, starts, axis=0)
        new_ll = (np.log(total) + peak).mean(1)
        resp[comp] = ex / np.repeat(total, sizes, axis=0)
        n_iter[models] = it
        done = np.abs(new_ll - log_lik[models]) < tol
        log_lik[models] = new_ll
        if it == max_iter:
            break
        if done.any():
            active[models[done]] = False
            if not active.any():
                break
            comp = np.flatnonzero(active[owner])
            starts, sizes, models = _segments(owner[comp])

    # The final log-likelihood was computed with the parameters kept for every model.
    n_params = ks * (dim + dim * (dim + 1) // 2) + ks - 1
    aics = -2.0 * n * log_lik + 2.0 * n_params
    aics[~np.isfinite(aics)] = np.inf  # a degenerate fit is never the best one
    out, start = [], 0
    for m, k in enumerate(ks):
        sl = slice(start, start + k)
        out.append(
            Mixture(
                weights=weights[sl].copy(),
                means=means[sl].copy(),
                covariances=covs[sl].copy(),
                aic=float(aics[m]),
                log_likelihood=float(log_lik[m]),
                n_iter=int(n_iter[m]),
            )
        )
        start += k
    return out


def _segments(owners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, length and model of each run of equal owners in a sorted owner array."""
    starts = np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
    sizes = np.diff(np.append(starts, owners.size))
    return starts, sizes, owners[starts]


def best_mixture(mixtures: list[Mixture]) -> Mixture:
    """The mixture with the lowest AIC (first one on ties)."""
    return min(mixtures, key=lambda m: m.aic)


def _cholesky(cov: np.ndarray, reg: float) -> np.ndarray:
    """Batched Cholesky factors; adds growing jitter to the few matrices that need it.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a matrix is still not positive definite after 12 tries (e.g. it holds inf or NaN).
    """
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        out = np.empty_like(cov)
        eye = np.eye(cov.shape[-1])
        for i, c in enumerate(cov):
            jitter = max(reg, 1e-9) * max(1.0, float(np.abs(np.diagonal(c)).max()))
            for _ in range(12):
                try:
                    out[i] = np.linalg.cholesky(c)
                    break
                except np.linalg.LinAlgError:
                    c = c + eye * jitter
                    jitter *= 10.0
            else:
                raise
        return out


def draw_from_mixture(
    rng: np.random.Generator, mixture: Mixture | None, utility: np.ndarray, dim: int, n: int, random_ratio: float
) -> np.ndarray:
    """``n`` points of [0, 1]^dim: uniform with probability ``random_ratio`` (always, without a
    mixture), else from a component chosen in proportion to ``utility`` (uniformly when every
    utility is 0), on the marginal of the first ``dim`` coordinates, clipped to [0, 1]."""
    unit = rng.random((n, dim))
    if mixture is None:
        return unit
    k = mixture.n_components
    probs = utility / utility.sum() if utility.sum() > 0 else np.full(k, 1.0 / k)
    comps = np.minimum(np.searchsorted(np.cumsum(probs), rng.random(n) * probs.sum(), side="right"), k - 1)
    chol = cholesky_factors(mixture.covariances[:, :dim, :dim])  # marginal: drop the extra axes
    z = rng.standard_normal((n, dim))
    gauss = mixture.means[comps, :dim] + np.einsum("bij,bj->bi", chol[comps], z)
    uniform = rng.random(n) < random_ratio
    return np.where(uniform[:, None], unit, np.clip(gauss, 0.0, 1.0))


def cholesky_factors(covariances: np.ndarray) -> np.ndarray:
    """Cholesky factors of a stack of covariance matrices (for sampling)."""
    return _cholesky(np.asarray(covariances, dtype=np.float64), 1e-9)


def fit_mixtures_sklearn(
    x: np.ndarray,
    ks: np.ndarray,
    rng: np.random.Generator,
    tol: float = 1e-3,
    max_iter: int = 100,
    reg_covar: float = 1e-6,
) -> list[Mixture]:
    """The same fits with scikit-learn's ``GaussianMixture`` (k-means start), one model at a time.

    Kept as the reference the batched EM is measured against (``fit_backend="sklearn"``).
    """
    from sklearn.mixture import GaussianMixture

    seed = int(rng.integers(2**31 - 1))
    out = []
    for k in np.asarray(ks, dtype=np.int64):
        g = GaussianMixture(
            int(k), covariance_type="full", tol=tol, max_iter=max_iter, reg_covar=reg_covar, random_state=seed
        ).fit(x)
        out.append(Mixture(g.weights_, g.means_, g.covariances_, float(g.aic(x)), float(g.score(x)), int(g.n_iter_)))
    return out


FIT_BACKENDS = {"batched": fit_mixtures, "sklearn": fit_mixtures_sklearn}


def check_gmm_hparams(
    fit_rate: int,
    random_task_ratio: float,
    potential_ks: tuple[int, ...],
    tol: float,
    max_iter: int,
    reg_covar: float,
    fit_backend: str,
) -> tuple[int, ...]:
    """Validate the hyper-parameters the GMM teachers share; returns ``potential_ks`` as ints.

    Raises
    ------
    ValueError
        Saying which value is wrong and what was expected.
    """
    if not (isinstance(fit_rate, (int, np.integer)) and not isinstance(fit_rate, bool) and fit_rate >= 2):
        raise ValueError(f"fit_rate must be an integer >= 2, got {fit_rate!r}")
    if not 0.0 <= random_task_ratio <= 1.0:
        raise ValueError(f"random_task_ratio must lie in [0, 1], got {random_task_ratio!r}")
    ks = tuple(int(k) for k in potential_ks)
    if not ks or min(ks) < 1 or max(ks) > fit_rate:
        raise ValueError(f"potential_ks must be numbers of components in [1, fit_rate], got {potential_ks!r}")
    if not (tol > 0 and max_iter >= 1 and reg_covar >= 0):
        raise ValueError(f"expected tol > 0, max_iter >= 1, reg_covar >= 0; got {tol!r}, {max_iter!r}, {reg_covar!r}")
    if fit_backend not in FIT_BACKENDS:
        raise ValueError(f"fit_backend must be one of {sorted(FIT_BACKENDS)}, got {fit_backend!r}")
    return ks
