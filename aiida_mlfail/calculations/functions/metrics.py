"""Errors of predicted vs reference labels: :func:`compare_labels` and the calcfunction :func:`validation_metrics`
(with the parity plot)."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import gap as gap_science
from aiida_mlfail.science import plots


def compare_labels(reference, predicted) -> tuple[dict, dict]:
    """Metrics and parity pairs of predicted vs reference configurations (same order).

    Energy and virial per atom (eV/atom), force components (eV/Å). The energy metrics also carry the
    constant offset (mean of predicted - reference) and the errors with it removed
    (``science.gap.energy_offset_metrics``: the meaningful energy errors of a GAP trained without energies).

    :returns: ``(metrics, pairs)`` keyed by ``energy``/``forces``/``virial`` for labels both sides carry.
    :raises ValueError: if the two lists differ in length or atom counts.
    """
    if len(reference) != len(predicted):
        raise ValueError(f'{len(reference)} reference vs {len(predicted)} predicted configurations')
    pairs = {}
    if all('energy' in a.info for a in reference + predicted):
        pairs['energy'] = ([a.info['energy'] / len(a) for a in reference],
                           [a.info['energy'] / len(a) for a in predicted])
    if all('forces' in a.arrays for a in reference + predicted):
        pairs['forces'] = (np.concatenate([a.arrays['forces'].ravel() for a in reference]),
                           np.concatenate([a.arrays['forces'].ravel() for a in predicted]))
    if all('virial' in a.info for a in reference + predicted):
        pairs['virial'] = (np.concatenate([np.ravel(a.info['virial']) / len(a) for a in reference]),
                           np.concatenate([np.ravel(a.info['virial']) / len(a) for a in predicted]))
    metrics = {key: gap_science.error_metrics(*value) for key, value in pairs.items()}
    if 'energy' in metrics:
        metrics['energy'].update(gap_science.energy_offset_metrics(*pairs['energy']))
    return metrics, pairs


@calcfunction
def validation_metrics(reference: TrainingSetData, predictions: TrainingSetData):
    """RMSE / MAE / max error of the GAP on the validation set and the parity plot (PNG).

    :returns: ``metrics`` (Dict: ``energy`` eV/atom, ``forces`` eV/Å, ``virial`` eV/atom, each with
        rmse, mae, max, n) and ``parity_plot`` (SinglefileData ``parity.png``).
    """
    metrics, pairs = compare_labels(reference.get_atoms(), predictions.get_atoms())
    png = plots.parity_png(pairs, metrics,
                           title=f'GAP vs reference, {reference.n_configurations} validation configurations')
    return {
        'metrics': orm.Dict(metrics),
        'parity_plot': orm.SinglefileData(io.BytesIO(png), filename='parity.png'),
    }
