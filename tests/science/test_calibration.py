"""ROC / precision-recall / thresholds / lead times of failure signals on synthetic signals of known separability."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aiida_mlfail.science import calibration as cal
from aiida_mlfail.science import signals as ss


def gaussian_classes(separation: float, n: int = 4000, seed: int = 0):
    """Signal ~ N(0, 1) for non-failures and N(separation, 1) for failures: ROC AUC = Phi(separation / sqrt 2)."""
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0.0, 1.0, n), rng.normal(separation, 1.0, n)])
    labels = np.concatenate([np.zeros(n, bool), np.ones(n, bool)])
    return values, labels


@pytest.mark.parametrize('separation', [0.0, 1.0, 2.0])
def test_roc_area_of_two_gaussians_is_phi_of_half_the_separation(separation):
    values, labels = gaussian_classes(separation)
    expected = 0.5 * (1.0 + math.erf(separation / 2.0))  # Phi(d / sqrt 2)
    assert cal.roc(values, labels)['auc'] == pytest.approx(expected, abs=0.015)
    # a low-is-bad signal (the negative) is rated the same with direction 'low', inverted otherwise
    assert cal.roc(-values, labels, 'low')['auc'] == pytest.approx(cal.roc(values, labels)['auc'], abs=1e-12)
    assert cal.roc(-values, labels, 'high')['auc'] == pytest.approx(1 - cal.roc(values, labels)['auc'], abs=1e-12)


def test_perfect_separation_area_one_and_threshold_at_zero_false_positives():
    values = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 1.0])
    labels = np.array([0, 0, 0, 0, 1, 1], bool)
    curve = cal.roc(values, labels)
    assert curve['auc'] == 1.0
    chosen = cal.threshold_at_fpr(curve, 0.0)
    assert chosen == {'threshold': pytest.approx(0.65), 'fpr': 0.0, 'tpr': 1.0}  # halfway between 0.4 and 0.9
    pr = cal.precision_recall(values, labels)
    assert pr['auc'] == pytest.approx(1.0) and pr['baseline'] == pytest.approx(1 / 3)


def test_threshold_at_fpr_respects_the_target():
    values, labels = gaussian_classes(1.5, n=2000, seed=3)
    curve = cal.roc(values, labels)
    for target in (0.01, 0.05, 0.2):
        chosen = cal.threshold_at_fpr(curve, target)
        measured_fpr = cal.alarms(values[~labels], chosen['threshold']).mean()
        assert measured_fpr == pytest.approx(chosen['fpr']) and chosen['fpr'] <= target
        assert chosen['tpr'] == pytest.approx(cal.alarms(values[labels], chosen['threshold']).mean())
    assert cal.threshold_at_fpr(curve, 0.2)['tpr'] > cal.threshold_at_fpr(curve, 0.01)['tpr']


def test_similarity_threshold_is_low_side_and_becomes_the_explorer_critical_value():
    similarity = np.array([0.999, 0.998, 0.997, 0.95, 0.90])
    labels = np.array([0, 0, 0, 1, 1], bool)
    chosen = cal.threshold_at_fpr(cal.roc(similarity, labels, 'low'), 0.0)
    assert chosen['threshold'] == pytest.approx(0.9735) and chosen['tpr'] == 1.0  # halfway from 0.95 to 0.997
    critical = cal.critical_values({'similarity': chosen['threshold'], 'max_variance': 0.01})
    # the explorer flags similarity < critical_similarity: exactly the calibration's alarms (<= threshold)
    np.testing.assert_array_equal(similarity < critical['critical_similarity'], labels)
    assert 0.01 > critical['critical_variance'] > 0.01 * (1 - 1e-12)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match='needs failures and non-failures, got 0 failure'):
        cal.roc([1.0, 2.0], [False, False])


def test_lead_time():
    steps = np.arange(0, 100, 10)
    values = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3], float)
    labels = steps >= 70
    assert cal.lead_time(steps, values, labels, 1.0) == 40   # alarm at 30, failure at 70
    assert cal.lead_time(steps, values, labels, 3.0) == 0    # alarm with the failure
    assert cal.lead_time(steps, values, labels, 5.0) is None  # never alarms
    assert cal.lead_time(steps, values, np.zeros(10, bool), 1.0) is None  # no failure


def _run(seed, fail_at=None, n=30):
    """A synthetic oracle exploration: the force error rises after ``fail_at`` checks, the similarity falls
    5 checks earlier, the temperature is noise."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    ramp = np.zeros(n) if fail_at is None else np.clip(k - (fail_at - 5), 0, None)
    return {'step': k * 10, 'force_rmse': 0.05 + 0.02 * ramp + rng.normal(0, 0.002, n),
            'similarity': 0.999 - 0.002 * ramp + rng.normal(0, 1e-4, n),
            'temperature': 1000 + rng.normal(0, 30, n), 'max_variance': np.full(n, np.nan)}


def test_calibrate_rates_the_informative_signal_above_noise():
    runs = [_run(1, 15), _run(2, 20), _run(3)]
    result = cal.calibrate(runs, error_threshold=0.1, target_fpr=0.05)
    table = result['table']
    assert table['similarity']['auc_roc'] > 0.95 > table['temperature']['auc_roc']
    assert table['temperature']['auc_roc'] == pytest.approx(0.5, abs=0.2)
    assert table['similarity']['n_runs_failed'] == 2
    # at a 5 % false-positive rate the alarm comes with (not before) the failure of these monotone ramps
    assert table['similarity']['n_alarmed_before_failure'] == 2 and table['similarity']['mean_lead_steps'] == 0
    assert table['max_variance']['auc_roc'] is None and 'failure' in table['max_variance']['note']
    assert result['critical_similarity'] == pytest.approx(table['similarity']['threshold'])
    assert result['critical_variance'] is None
    assert result['n_checks'] == 90 and 0 < result['n_failures'] < 90
    png = cal.curves_png(result, 'synthetic')
    assert png.startswith(b'\x89PNG')


def test_calibrate_without_failures_says_so():
    with pytest.raises(ValueError, match='0 of 30 checks have force_rmse > 0.1'):
        cal.calibrate([_run(1)], error_threshold=0.1)


def test_frame_errors_and_signal_table_round_trip():
    forces = np.zeros((2, 3))
    gap = {'energy': 1.0, 'forces': forces + [[0.3, 0.0, 0.4], [0, 0, 0]], 'virial': np.eye(3) * 2}
    ref = {'energy': 0.0, 'forces': forces, 'virial': np.zeros((3, 3))}
    errors = ss.frame_errors(gap, ref)
    assert errors['energy_error_per_atom'] == 0.5
    assert errors['force_max_error'] == pytest.approx(0.5)
    assert errors['force_rmse'] == pytest.approx(math.sqrt(0.25 / 6))
    assert errors['virial_error_per_atom'] == pytest.approx(math.sqrt(12 / 9) / 2)
    text = ss.signals_table([{'step': 3, **errors}])
    parsed = ss.parse_signals(text)
    assert parsed['step'].tolist() == [3] and parsed['force_rmse'][0] == pytest.approx(errors['force_rmse'])
    assert np.isnan(parsed['similarity'][0])
