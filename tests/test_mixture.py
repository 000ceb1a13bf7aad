"""The batched EM fits the same model as scikit-learn's GaussianMixture."""

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from teachgym.teachers._mixture import best_mixture, fit_mixtures, kmeans_plus_plus


def clusters(rng, k, n_per=60, dim=3, spread=0.03):
    centres = rng.random((k, dim))
    return np.concatenate([c + spread * rng.standard_normal((n_per, dim)) for c in centres])


@pytest.mark.parametrize("k", [2, 4, 6])
def test_aic_picks_the_true_number_of_well_separated_clusters(k):
    rng = np.random.default_rng(k)
    x = clusters(rng, k, spread=0.01)
    best = best_mixture(fit_mixtures(x, np.arange(2, 11), np.random.default_rng(0)))
    assert best.n_components == k
    np.testing.assert_allclose(best.weights.sum(), 1.0)


def test_fits_are_as_good_as_scikit_learns_on_average():
    """EM finds local optima; over many data sets ours must match sklearn's default start."""
    diffs = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        x = clusters(rng, 1 + seed % 6)
        for mixture in fit_mixtures(x, np.arange(2, 8), np.random.default_rng(seed)):
            ref = GaussianMixture(mixture.n_components, covariance_type="full", random_state=seed).fit(x)
            diffs.append(mixture.log_likelihood - ref.score(x))
    diffs = np.array(diffs)
    assert diffs.mean() > -0.05
    assert (diffs < -0.1).mean() < 0.2


@pytest.mark.parametrize("seed", range(3))
def test_reported_log_likelihood_and_aic_are_those_of_the_returned_parameters(seed):
    x = clusters(np.random.default_rng(seed), 3)
    for mixture in fit_mixtures(x, np.arange(2, 6), np.random.default_rng(seed)):
        sk = GaussianMixture(mixture.n_components, covariance_type="full")
        sk.weights_, sk.means_, sk.covariances_ = mixture.weights, mixture.means, mixture.covariances
        sk.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(mixture.covariances))
        assert mixture.log_likelihood == pytest.approx(sk.score(x), rel=1e-6)
        assert mixture.aic == pytest.approx(sk.aic(x), rel=1e-6)


def test_kmeans_plus_plus_seeds_are_distinct_data_points():
    x = np.random.default_rng(0).random((50, 2))
    idx = kmeans_plus_plus(x, 10, np.random.default_rng(0))
    assert len(set(idx.tolist())) == 10


def test_degenerate_data_gives_finite_mixtures():
    x = np.zeros((30, 3))
    x[:15, 0] = 1.0
    fits = fit_mixtures(x, np.arange(2, 5), np.random.default_rng(0))
    assert np.isfinite(best_mixture(fits).aic)
    with pytest.raises(ValueError, match="finite"):
        fit_mixtures(np.full((10, 2), np.nan), np.arange(2, 4), np.random.default_rng(0))
