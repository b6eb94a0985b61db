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
    Both arguments may be any iterables (e.g. ``TrainingSetData.iter_atoms()``): they are read once, in step,
    and only the label arrays are kept.

    :returns: ``(metrics, pairs)`` keyed by ``energy``/``forces``/``virial`` for labels both sides carry.
    :raises ValueError: if the two differ in length.
    """
    collected = {'energy': ([], []), 'forces': ([], []), 'virial': ([], [])}
    present = {'energy': True, 'forces': True, 'virial': True}
    n_reference = n_predicted = 0
    sentinel = object()
    reference, predicted = iter(reference), iter(predicted)
    while True:
        a, b = next(reference, sentinel), next(predicted, sentinel)
        n_reference += a is not sentinel
        n_predicted += b is not sentinel
        if a is sentinel or b is sentinel:
            n_reference += sum(1 for _ in reference) if a is not sentinel else 0
            n_predicted += sum(1 for _ in predicted) if b is not sentinel else 0
            break
        for side, atoms in enumerate((a, b)):
            present['energy'] &= 'energy' in atoms.info
            present['forces'] &= 'forces' in atoms.arrays
            present['virial'] &= 'virial' in atoms.info
            if present['energy']:
                collected['energy'][side].append(atoms.info['energy'] / len(atoms))
            if present['forces']:
                collected['forces'][side].append(np.ravel(atoms.arrays['forces']))
            if present['virial']:
                collected['virial'][side].append(np.ravel(atoms.info['virial']) / len(atoms))
    if n_reference != n_predicted:
        raise ValueError(f'{n_reference} reference vs {n_predicted} predicted configurations')
    pairs = {}
    if present['energy']:
        pairs['energy'] = (collected['energy'][0], collected['energy'][1])
    for key in ('forces', 'virial'):
        if present[key]:
            pairs[key] = (np.concatenate(collected[key][0]), np.concatenate(collected[key][1]))
    metrics = {key: gap_science.error_metrics(*value) for key, value in pairs.items()}
    if 'energy' in metrics:
        metrics['energy'].update(gap_science.energy_offset_metrics(*pairs['energy']))
    return metrics, pairs


@calcfunction
def validation_metrics(reference: TrainingSetData, predictions: TrainingSetData):
    """RMSE / MAE / max error of the GAP on the validation set and the parity plot (PNG).

    :returns: ``metrics`` (Dict: ``energy`` eV/atom, ``forces`` eV/Å, ``virial`` eV/atom, each with
        rmse, mae, max, n; ``energy`` also with ``offset`` and ``rmse_offset_removed``,
        ``mae_offset_removed``, ``max_offset_removed``, see :func:`compare_labels`) and ``parity_plot``
        (SinglefileData ``parity.png``, the energy panel with the offset).
    """
    metrics, pairs = compare_labels(reference.iter_atoms(), predictions.iter_atoms())
    png = plots.parity_png(pairs, metrics,
                           title=f'GAP vs reference, {reference.n_configurations} validation configurations')
    return {
        'metrics': orm.Dict(metrics),
        'parity_plot': orm.SinglefileData(io.BytesIO(png), filename='parity.png'),
    }
