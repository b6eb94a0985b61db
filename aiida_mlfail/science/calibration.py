"""How well does each signal predict the GAP's errors? ROC and precision-recall curves, lead times, thresholds.

Input: the signal series of oracle explorations (``science.signals``: one row per check with the
signals and the GAP's true errors against the reference). A check is a *failure* (positive) when
the chosen error (default ``force_rmse``, eV/Å) exceeds ``error_threshold`` (the calibration
WorkChain's default is twice the validation force RMSE). Each signal of
:data:`~aiida_mlfail.science.signals.DETECTORS` is rated as a detector of failures:

* ROC curve (false-positive rate, true-positive rate over all thresholds) and its area
  (``sklearn.metrics.roc_curve``, ``auc``; Fawcett, Pattern Recogn. Lett. 27, 861 (2006));
* precision-recall curve and its area (``sklearn.metrics.precision_recall_curve``, ``auc`` of
  precision over recall; Saito & Rehmsmeier, PLoS ONE 10, e0118432 (2015): the informative curve when
  failures are rare);
* the threshold at a target false-positive rate: the alarm threshold with the largest true-positive
  rate among those whose false-positive rate is at most the target;
* the lead time: per exploration, the steps between the first alarm at that threshold and the first
  failure (positive if the alarm came first, ``None`` when there is no failure or no alarm before it).

A signal for which a *low* value announces a failure (REMatch similarity, the shortest distance) is
scored as its negative, so every curve reads "alarm when the score is high". No AiiDA imports.
"""

from __future__ import annotations

import math

import numpy as np

from aiida_mlfail.science.signals import DETECTORS

#: Default target false-positive rate of the recommended thresholds.
TARGET_FPR = 0.05


def _scores(values, direction: str) -> np.ndarray:
    if direction not in ('high', 'low'):
        raise ValueError(f"direction must be 'high' or 'low', got {direction!r}")
    values = np.asarray(values, dtype=float)
    return values if direction == 'high' else -values


def _checked(values, labels):
    values = np.asarray(values, dtype=float).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if values.shape != labels.shape:
        raise ValueError(f'{values.size} signal values but {labels.size} labels')
    keep = np.isfinite(values)
    return values[keep], labels[keep]


def roc(values, labels, direction: str = 'high') -> dict:
    """ROC curve and area of a signal as a detector of ``labels`` (True: failure).

    :param values: (n,) signal values (NaN rows are left out); ``labels``: (n,) bool.
    :param direction: ``'high'`` when a high value announces a failure, ``'low'`` otherwise.
    :returns: ``fpr``, ``tpr`` (arrays), ``thresholds`` (array, in the signal's units: alarm when the value
        is >= (``high``) or <= (``low``) the threshold), ``auc`` (float), ``n_positive``, ``n_negative``.
    :raises ValueError: for mismatched lengths, a bad direction, or labels of one class only (no ROC).
    """
    from sklearn.metrics import auc, roc_curve  # noqa: PLC0415

    values, labels = _checked(values, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        raise ValueError(f'a ROC curve needs failures and non-failures, got {n_pos} failure(s) and {n_neg} other(s)')
    scores = _scores(values, direction)
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    thresholds = np.asarray(thresholds, dtype=float)
    return {'fpr': fpr, 'tpr': tpr, 'thresholds': thresholds if direction == 'high' else -thresholds,
            'auc': float(auc(fpr, tpr)), 'n_positive': n_pos, 'n_negative': n_neg}


def precision_recall(values, labels, direction: str = 'high') -> dict:
    """Precision-recall curve and its area (trapezoidal, ``sklearn.metrics.auc(recall, precision)``).

    :returns: ``precision``, ``recall``, ``thresholds`` (signal units, as in :func:`roc`), ``auc``,
        ``baseline`` (the failure fraction: the area of a signal without information).
    :raises ValueError: as :func:`roc`.
    """
    from sklearn.metrics import auc, precision_recall_curve  # noqa: PLC0415

    values, labels = _checked(values, labels)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        raise ValueError(f'a precision-recall curve needs failures and non-failures, got {n_pos} failure(s) and '
                         f'{n_neg} other(s)')
    precision, recall, thresholds = precision_recall_curve(labels, _scores(values, direction))
    thresholds = np.asarray(thresholds, dtype=float)
    return {'precision': precision, 'recall': recall, 'thresholds': thresholds if direction == 'high' else -thresholds,
            'auc': float(auc(recall, precision)), 'baseline': n_pos / (n_pos + n_neg)}


def threshold_at_fpr(curve: dict, target_fpr: float = TARGET_FPR) -> dict:
    """The alarm threshold of a :func:`roc` curve with the largest TPR among those with FPR <= ``target_fpr``.

    The threshold is placed halfway between the last signal value that alarms and the next one that does
    not (the usual midpoint rule), so a value recomputed with rounding noise falls on the same side.

    :returns: ``threshold`` (signal units; ``None`` when only "never alarm" meets the target), ``fpr``, ``tpr``.
    :raises ValueError: for a target outside [0, 1].
    """
    if not 0.0 <= float(target_fpr) <= 1.0:
        raise ValueError(f'target_fpr must be in [0, 1], got {target_fpr!r}')
    fpr, tpr, thresholds = curve['fpr'], curve['tpr'], curve['thresholds']
    allowed = np.flatnonzero(fpr <= target_fpr)
    best = allowed[np.argmax(tpr[allowed])]  # fpr[0] == 0 always: never empty
    threshold = float(thresholds[best])
    if not math.isfinite(threshold):
        return {'threshold': None, 'fpr': float(fpr[best]), 'tpr': float(tpr[best])}
    if best + 1 < len(thresholds):  # halfway to the next value that does not alarm: same alarms, with a margin
        threshold = 0.5 * (threshold + float(thresholds[best + 1]))
    return {'threshold': threshold, 'fpr': float(fpr[best]), 'tpr': float(tpr[best])}


def alarms(values, threshold: float | None, direction: str = 'high') -> np.ndarray:
    """Boolean alarms of a signal at ``threshold`` (``>=`` for ``high``, ``<=`` for ``low``; NaN: no alarm)."""
    values = np.asarray(values, dtype=float)
    if threshold is None:
        return np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid='ignore'):
        return values >= threshold if direction == 'high' else values <= threshold


def lead_time(steps, values, labels, threshold: float | None, direction: str = 'high') -> int | None:
    """Steps from the first alarm to the first failure of one exploration (``None``: no failure, or no
    alarm at or before it). 0 means the alarm came with the failure.

    :param steps: (n,) MD steps of the checks, increasing; ``values``: (n,) the signal; ``labels``: (n,) failures.
    """
    steps = np.asarray(steps)
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return None
    first_failure = int(np.argmax(labels))
    raised = np.flatnonzero(alarms(values, threshold, direction)[:first_failure + 1])
    if not raised.size:
        return None
    return int(steps[first_failure] - steps[raised[0]])


def critical_values(thresholds: dict) -> dict:
    """The explorer parameters of calibrated thresholds: ``critical_similarity`` (the explorer flags
    similarity < critical, the calibration alarms at <= threshold: the next float above) and
    ``critical_variance`` (flags variance > critical, the calibration >= threshold: the next float below);
    ``None`` for a signal without a threshold."""
    similarity, variance = thresholds.get('similarity'), thresholds.get('max_variance')
    return {
        'critical_similarity': None if similarity is None else float(min(np.nextafter(similarity, np.inf), 1.0)),
        'critical_variance': None if variance is None or variance <= 0 else float(np.nextafter(variance, -np.inf)),
    }


def calibrate(runs: list[dict], error_threshold: float, *, error: str = 'force_rmse', target_fpr: float = TARGET_FPR,
              signals=None) -> dict:
    """Rate every signal of oracle explorations as a failure detector.

    :param runs: one dict of arrays per exploration (``science.signals.parse_signals``): ``step``, the
        signals and the error column ``error``.
    :param error_threshold: a check is a failure when ``error`` > this (units of ``error``, eV/Å for forces).
    :param error: an error column of ``science.signals.ERROR_NAMES``.
    :param signals: the signals to rate (default every one of ``DETECTORS`` present with a finite value).
    :returns: ``table`` (``{signal: {auc_roc, auc_pr, pr_baseline, threshold, fpr, tpr, direction,
        mean_lead_steps, n_runs_failed, n_alarmed_before_failure}}``; a signal that cannot be rated has
        ``None`` values and a ``note``), ``curves`` (``{signal: {'roc': roc dict, 'pr': pr dict}}``),
        ``n_checks``, ``n_failures``, ``error``, ``error_threshold``, ``target_fpr`` and the explorer
        parameters of :func:`critical_values` (``critical_similarity``, ``critical_variance``).
    :raises ValueError: for no run, an unknown error column, a non-positive threshold, or checks that are
        all failures or all not (nothing to calibrate: the message gives the counts).
    """
    if not runs:
        raise ValueError('no exploration to calibrate from')
    if not error_threshold > 0:
        raise ValueError(f'error_threshold must be > 0, got {error_threshold!r}')
    for run in runs:
        if error not in run:
            raise ValueError(f'error column {error!r} missing from an exploration (columns: {sorted(run)})')
    errors = np.concatenate([np.asarray(run[error], dtype=float) for run in runs])
    usable = np.isfinite(errors)
    labels_all = errors > error_threshold
    n_fail, n_ok = int((labels_all & usable).sum()), int((~labels_all & usable).sum())
    if not n_fail or not n_ok:
        raise ValueError(f'{n_fail} of {n_fail + n_ok} checks have {error} > {error_threshold:g}: a calibration needs '
                         'failures and non-failures (change the error threshold or run longer/hotter explorations)')
    names = [s for s in (signals or DETECTORS) if all(s in run for run in runs)]
    table, curves, thresholds = {}, {}, {}
    for name in names:
        direction = DETECTORS[name]
        values = np.concatenate([np.asarray(run[name], dtype=float) for run in runs])
        keep = usable & np.isfinite(values)
        row = {'direction': direction, 'auc_roc': None, 'auc_pr': None, 'pr_baseline': None, 'threshold': None,
               'fpr': None, 'tpr': None, 'mean_lead_steps': None, 'n_runs_failed': 0, 'n_alarmed_before_failure': 0}
        try:
            roc_curve = roc(values[keep], labels_all[keep], direction)
            pr_curve = precision_recall(values[keep], labels_all[keep], direction)
        except ValueError as exc:
            table[name] = {**row, 'note': str(exc)}
            continue
        chosen = threshold_at_fpr(roc_curve, target_fpr)
        leads = []
        for run in runs:
            labels = np.asarray(run[error], dtype=float) > error_threshold
            if labels.any():
                row['n_runs_failed'] += 1
                lead = lead_time(run['step'], run[name], labels, chosen['threshold'], direction)
                if lead is not None:
                    leads.append(lead)
        row.update(auc_roc=roc_curve['auc'], auc_pr=pr_curve['auc'], pr_baseline=pr_curve['baseline'],
                   threshold=chosen['threshold'], fpr=chosen['fpr'], tpr=chosen['tpr'],
                   mean_lead_steps=float(np.mean(leads)) if leads else None, n_alarmed_before_failure=len(leads))
        table[name] = row
        curves[name] = {'roc': roc_curve, 'pr': pr_curve}
        thresholds[name] = chosen['threshold']
    return {'table': table, 'curves': curves, 'n_checks': n_fail + n_ok, 'n_failures': n_fail, 'error': error,
            'error_threshold': float(error_threshold), 'target_fpr': float(target_fpr), **critical_values(thresholds)}


def curves_png(result: dict, title: str = '') -> bytes:
    """ROC and precision-recall curves of a :func:`calibrate` result, one line per signal (PNG bytes)."""
    from aiida_mlfail.science.plots import figure_png, plt  # noqa: PLC0415

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4))
    for name, curve in result['curves'].items():
        left.plot(curve['roc']['fpr'], curve['roc']['tpr'], label=f"{name} ({curve['roc']['auc']:.2f})")
        right.plot(curve['pr']['recall'], curve['pr']['precision'], label=f"{name} ({curve['pr']['auc']:.2f})")
    left.plot([0, 1], [0, 1], 'k:', lw=0.8)
    left.axvline(result['target_fpr'], color='grey', lw=0.8, ls='--')
    left.set(xlabel='false-positive rate', ylabel='true-positive rate', title='ROC (AUC)')
    right.axhline(result['n_failures'] / result['n_checks'], color='k', ls=':', lw=0.8)
    right.set(xlabel='recall', ylabel='precision', title='precision-recall (AUC)')
    for axis in (left, right):
        axis.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return figure_png(fig)
