"""The gap_fit job of a fit without energies gets the least-squares e0 of its training set; energy metrics carry the
offset."""

import numpy as np
from aiida import orm

from aiida_mlfail.calculations.functions.metrics import compare_labels
from aiida_mlfail.calculations.gap_fit import command_arguments, validate_fit_inputs
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import extxyz, gap
from tests.helpers import FIXTURES

DESCRIPTORS = [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 1.0, 'n_sparse': 20}]


def test_forces_only_fit_passes_the_least_squares_e0_of_the_training_set():
    frames = extxyz.read_configurations(str(FIXTURES / 'gap_fit_ok' / 'training_set.xyz'))
    training_set = TrainingSetData.from_atoms(frames)
    words = command_arguments({'descriptors': DESCRIPTORS, 'train_on': ['forces']}, training_set)
    mean = np.mean([a.info['energy'] / len(a) for a in frames])  # one stoichiometry: the mean per atom (-3.6155)
    assert gap.e0_argument({'Cl': mean, 'Na': mean}) in words
    assert 'e0_method=average' in command_arguments({'descriptors': DESCRIPTORS}, training_set)


def test_least_squares_without_energies_is_refused_at_submit_time():
    frames = extxyz.read_configurations(str(FIXTURES / 'gap_fit_ok' / 'training_set.xyz'))
    for atoms in frames:
        del atoms.info['energy']
    training_set = TrainingSetData.from_atoms(frames)
    message = validate_fit_inputs({'training_set': training_set, 'parameters': orm.Dict(
        {'descriptors': DESCRIPTORS, 'train_on': ['forces'], 'e0_method': 'least_squares'})})
    assert "energy (for e0_method least_squares)" in message


def test_energy_metrics_report_the_offset():
    frames = extxyz.read_configurations(str(FIXTURES / 'gap_fit_ok' / 'training_set.xyz'))
    shifted = [a.copy() for a in frames]
    for a, b in zip(frames, shifted):
        b.info['energy'] = a.info['energy'] - 1.5 * len(a)
    metrics, _ = compare_labels(frames, shifted)
    assert abs(metrics['energy']['offset'] + 1.5) < 1e-9 and metrics['energy']['rmse_offset_removed'] < 1e-9
    assert abs(metrics['energy']['rmse'] - 1.5) < 1e-9


def test_compare_labels_reads_iterables_once_and_checks_their_lengths():
    import pytest

    frames = extxyz.read_configurations(str(FIXTURES / 'gap_fit_ok' / 'training_set.xyz'))
    from_lists, _ = compare_labels(frames, frames)
    streamed, pairs = compare_labels(iter(frames), (a for a in frames))
    assert streamed == from_lists and streamed['forces']['n'] == 3 * 64 * 3 and len(pairs['energy'][0]) == 3
    with pytest.raises(ValueError, match='3 reference vs 2 predicted configurations'):
        compare_labels(iter(frames), iter(frames[:2]))


def test_validation_metrics_output_the_offset():
    from aiida_mlfail.calculations.functions.metrics import validation_metrics

    frames = extxyz.read_configurations(str(FIXTURES / 'gap_fit_ok' / 'training_set.xyz'))
    shifted = [a.copy() for a in frames]
    for a, b in zip(frames, shifted):
        b.info['energy'] = a.info['energy'] + 0.25 * len(a)
    result = validation_metrics(TrainingSetData.from_atoms(frames), TrainingSetData.from_atoms(shifted))
    energy = result['metrics']['energy']
    assert abs(energy['offset'] - 0.25) < 1e-9 and energy['rmse_offset_removed'] < 1e-9
    assert result['parity_plot'].get_content(mode='rb')[:4] == b'\x89PNG'
