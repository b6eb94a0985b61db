"""The calibration's calcfunction: rate the signals of oracle explorations as failure detectors
(``science.calibration.calibrate``) and store the table, the curves, the figure and the recommended thresholds."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mlfail.science import calibration as cal
from aiida_mlfail.science.signals import ERROR_NAMES

#: Settings of :func:`calibration_analysis` and their defaults (``error_threshold`` has none: the WorkChain
#: resolves it).
CALIBRATION_DEFAULTS = {'error': 'force_rmse', 'error_threshold': None, 'target_fpr': cal.TARGET_FPR}


def normalise_calibration(settings: dict) -> dict:
    """Merge with :data:`CALIBRATION_DEFAULTS` and check: ``error`` one of ``science.signals.ERROR_NAMES``,
    ``error_threshold`` ``None`` or > 0 (units of ``error``), ``target_fpr`` in (0, 1).

    :raises ValueError: naming the key and value.
    """
    from aiida_mlfail.science import checks  # noqa: PLC0415

    checks.known_keys(settings, CALIBRATION_DEFAULTS, 'calibration setting')
    merged = {**CALIBRATION_DEFAULTS, **settings}
    checks.choice(merged['error'], 'error', ERROR_NAMES)
    if merged['error_threshold'] is not None:
        merged['error_threshold'] = checks.number(merged['error_threshold'], 'error_threshold', gt=0)
    merged['target_fpr'] = checks.number(merged['target_fpr'], 'target_fpr', gt=0, lt=1)
    return merged


@calcfunction
def calibration_analysis(settings: orm.Dict, **signals: orm.ArrayData) -> dict:
    """ROC / precision-recall of every signal of the explorations ``signals`` (their ``signals`` outputs).

    :param settings: ``error``, ``error_threshold`` (resolved, > 0), ``target_fpr``.
    :returns: ``table`` (Dict: per signal AUCs, threshold, FPR/TPR there, lead time; plus counts),
        ``curves`` (ArrayData: ``<signal>__roc_fpr``, ``__roc_tpr``, ``__roc_thresholds``, ``__pr_precision``,
        ``__pr_recall``), ``figure`` (SinglefileData PNG), ``recommended`` (Dict: ``critical_similarity``,
        ``critical_variance`` for the explorer parameters, with the error definition they were calibrated for).
    :raises ValueError: as ``science.calibration.calibrate`` (e.g. no failure among the checks).
    """
    p = normalise_calibration(settings.get_dict())
    runs = [{name: node.get_array(name) for name in node.get_arraynames()} for _key, node in sorted(signals.items())]
    result = cal.calibrate(runs, p['error_threshold'], error=p['error'], target_fpr=p['target_fpr'])
    curves = orm.ArrayData()
    for name, curve in result['curves'].items():
        for kind, keys in (('roc', ('fpr', 'tpr', 'thresholds')), ('pr', ('precision', 'recall'))):
            for key in keys:
                curves.set_array(f'{name}__{kind}_{key}', np.asarray(curve[kind][key], dtype=float))
    table = {key: value for key, value in result.items() if key != 'curves'}
    recommended = {'critical_similarity': result['critical_similarity'],
                   'critical_variance': result['critical_variance'], 'error': p['error'],
                   'error_threshold': p['error_threshold'], 'target_fpr': p['target_fpr']}
    title = f"{p['error']} > {p['error_threshold']:g}: {result['n_failures']} of {result['n_checks']} checks"
    figure = orm.SinglefileData(io.BytesIO(cal.curves_png(result, title)), filename='calibration.png')
    return {'table': orm.Dict(table), 'curves': curves, 'figure': figure, 'recommended': orm.Dict(recommended)}
