"""``science.gap.bootstrap_rmse``: the RMSE of per-configuration squared errors, its bootstrap standard error against
the delta-method value of a known distribution, and paired resamples of two predictions."""

import numpy as np
import pytest

from aiida_mlfail.science.gap import bootstrap_rmse


def test_rmse_and_standard_error_of_a_known_distribution():
    # errors N(0, 1) per configuration: RMSE -> 1; delta method: se(RMSE) = sd(e^2) / (2 RMSE sqrt(n)) = sqrt(2) / (2
    # sqrt(n)) for a standard normal (var(e^2) = 2)
    n = 400
    errors = np.random.default_rng(1).normal(size=n)
    result = bootstrap_rmse(errors**2, n_resamples=2000, seed=3)
    assert result['rmse'] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert result['stderr'] == pytest.approx(np.sqrt(2) / (2 * np.sqrt(n)), rel=0.15)
    assert result['resamples'].shape == (1, 2000)


def test_counts_weight_configurations_and_pairs_share_resamples():
    rng = np.random.default_rng(2)
    forces = rng.normal(size=(2, 30, 12))  # 2 predictions, 30 configurations of 4 atoms x 3 components
    squared = np.sum(forces**2, axis=2)
    result = bootstrap_rmse(squared, np.full(30, 12), seed=0)
    assert result['rmse'] == pytest.approx(np.sqrt(np.mean(forces**2, axis=(1, 2))))
    # identical predictions: every paired resample differs by exactly 0
    same = bootstrap_rmse(np.vstack([squared[0], squared[0]]), np.full(30, 12), seed=0)
    assert np.all(same['resamples'][1] - same['resamples'][0] == 0) and same['stderr'][0] > 0


def test_bad_input():
    with pytest.raises(ValueError, match='at least 2 configurations'):
        bootstrap_rmse([1.0])
    with pytest.raises(ValueError, match='counts has 2 values for 3'):
        bootstrap_rmse([1.0, 2.0, 3.0], [1, 2])
