"""The active learner's pure logic: parameters, outlier check, table and plot."""

import numpy as np
import pytest
from ase import Atoms

from aiida_mlfail.science import active_learning as al
from aiida_mlfail.science.structures import molten_nacl


def labelled(atoms, energy_per_atom=-3.0, force=0.5):
    atoms = atoms.copy()
    atoms.info['energy'] = energy_per_atom * len(atoms)
    atoms.arrays['forces'] = np.full((len(atoms), 3), force / np.sqrt(3))
    return atoms


def test_defaults_and_merge():
    p = al.normalise_active_learning({'max_iterations': 3, 'outliers': {'max_force': 5.0}})
    assert p['max_iterations'] == 3
    assert p['outliers'] == {**al.ACTIVE_LEARNING_DEFAULTS['outliers'], 'max_force': 5.0}
    assert p['restart_from'] == 'stop'


@pytest.mark.parametrize('parameters, message', [
    ({'max_iteration': 3}, "max_iteration"),
    ({'outliers': {'min_dist': 1.0}}, 'outliers.min_dist'),
    ({'max_iterations': 0}, 'max_iterations must be an integer >= 1, got 0'),
    ({'max_new_configurations': 2.5}, 'got 2.5'),
    ({'restart_from': 'middle'}, "'middle'"),
    ({'outliers': {'max_force': -1}}, 'outliers.max_force must be a finite number > 0 eV/Å, got -1'),
])
def test_bad_parameters_name_the_value(parameters, message):
    with pytest.raises(ValueError, match=message.replace('.', r'\.')):
        al.normalise_active_learning(parameters)


def test_minimum_distance_uses_minimum_image():
    atoms = Atoms('NaCl', positions=[[0.1, 0, 0], [9.8, 0, 0]], cell=[10, 10, 10], pbc=True)
    assert al.minimum_distance(atoms) == pytest.approx(0.3)
    assert al.minimum_distance(Atoms('Na', cell=[5, 5, 5], pbc=True)) == float('inf')


@pytest.mark.parametrize('per_pair', [True, False], ids=['per-pair-default', 'uniform-1.5'])
def test_outlier_check_accepts_a_melt_and_rejects_each_pitfall(per_pair):
    melt = molten_nacl(16, density=1.5, seed=1)
    limits = al.outlier_distances(None, [melt]) if per_pair else 1.5
    bounds = {**al.ACTIVE_LEARNING_DEFAULTS['outliers'], 'min_distance': limits}
    good = labelled(melt)
    overlap = labelled(melt)
    overlap.positions[1] = overlap.positions[0] + [0.5, 0, 0]
    hot = labelled(melt, energy_per_atom=-1.5)
    strong = labelled(melt, force=50.0)
    verdicts = al.outlier_check([good, overlap, hot, strong], bounds, reference_energy_per_atom=-3.0)
    assert [v['accepted'] for v in verdicts] == [True, False, False, False]
    assert verdicts[0]['reasons'] == []
    if per_pair:
        pair = '-'.join(sorted(overlap.get_chemical_symbols()[:2], key=lambda s: s != 'Na'))
        assert verdicts[1]['reasons'][0].startswith(f'{pair} distance 0.500 Å < {limits[pair]:.3f} Å')
        assert verdicts[1]['pair_min_distances'][pair] == pytest.approx(0.5)
    else:
        assert verdicts[1]['reasons'][0] == 'minimum distance 0.500 Å < 1.5 Å'
    assert '+1.5000 eV/atom' in verdicts[2]['reasons'][0]
    assert 'largest force 50 eV/Å' in verdicts[3]['reasons'][0]
    assert verdicts[3]['max_force'] == pytest.approx(50.0)


def test_outlier_check_rejects_non_finite_labels():
    atoms = labelled(molten_nacl(16, density=1.5, seed=2), energy_per_atom=float('nan'))
    bounds = {**al.ACTIVE_LEARNING_DEFAULTS['outliers'], 'min_distance': al.outlier_distances(None, [atoms])}
    (verdict,) = al.outlier_check([atoms], bounds, -3.0)
    assert not verdict['accepted']


def test_table_and_plot():
    rows = [{'iteration': 1, 'training_set_size': 20, 'validation_energy_rmse': 0.004, 'validation_forces_rmse': 0.1,
             'stop_reason': 'novel', 'steps': 120, 'similarity': 0.9991, 'flagged_energy_error': 0.01,
             'flagged_forces_rmse': 0.2, 'added': 1, 'rejected': 0},
            {'iteration': 2, 'training_set_size': 21, 'validation_energy_rmse': 0.003, 'validation_forces_rmse': 0.09,
             'stop_reason': 'max_steps', 'steps': 400, 'similarity': None, 'added': 0, 'rejected': 0}]
    table = al.format_table(rows).splitlines()
    assert len(table) == 3
    assert table[1].split()[:6] == ['1', '20', '0.0040', '0.100', 'novel', '120']
    assert table[2].split()[6] == '-'  # no similarity at a max_steps stop
    png = al.convergence_png(rows)
    assert png[:8] == b'\x89PNG\r\n\x1a\n'


def test_loop_outcome_names_the_limit():
    p = al.normalise_active_learning({'max_iterations': 3, 'max_new_configurations': 2})
    assert al.loop_outcome(True, 3, 2, p) == al.CONVERGED
    assert al.loop_outcome(False, 1, 2, p) == al.MAX_NEW
    assert al.loop_outcome(False, 3, 1, p) == al.MAX_ITERATIONS
    with pytest.raises(ValueError, match='without a reason'):
        al.loop_outcome(False, 1, 0, p)


def test_loop_outcome_failed_label_budget_comes_first():
    p = al.normalise_active_learning({'max_iterations': 3, 'max_new_configurations': 2, 'max_failed_labels': 2})
    assert al.loop_outcome(True, 3, 2, p, failed_labels=3) == al.FAILED_LABELS
    assert al.loop_outcome(True, 3, 2, p, failed_labels=2) == al.CONVERGED
    assert al.loop_outcome(False, 1, 2, p, failed_labels=2) == al.MAX_NEW


def test_choose_additions_puts_the_trigger_first_and_respects_the_room():
    assert al.choose_additions(['previous', 'trigger'], [True, True], 1) == [1]
    assert al.choose_additions(['previous', 'trigger'], [True, True], 5) == [1, 0]
    assert al.choose_additions(['previous', 'trigger'], [True, False], 1) == [0]
    assert al.choose_additions(['previous', 'trigger'], [True, True], 0) == []


@pytest.mark.parametrize('reason, restart_from, accepted, where', [
    ('novel', 'stop', True, 'stop'),
    ('novel', 'stop', False, 'start'),  # a rejected trigger is never the next start
    ('novel', 'start', True, 'start'),
    ('volume_blowup', 'stop', True, 'start'),
])
def test_next_start(reason, restart_from, accepted, where):
    assert al.next_start(reason, restart_from, accepted) == where


def test_same_configuration_uses_the_minimum_image():
    atoms = molten_nacl(8, volume=300.0, seed=1)
    moved = atoms.copy()
    moved.positions[0] += moved.cell[0]  # the same configuration, one atom shifted by a lattice vector
    assert al.same_configuration(atoms, moved)
    moved.positions[1] += [0.01, 0, 0]
    assert not al.same_configuration(atoms, moved)
    other = atoms.copy()
    other.numbers[[0, 1]] = other.numbers[[1, 0]]
    assert not al.same_configuration(atoms, other)
