"""GAP variance as a novelty signal and the oracle (calibration) mode of ``mlfail-explore`` (no AiiDA, no mocks).

Same tiny system as ``test_explore_engine.py``: 8-ion rock-salt NaCl, the committed GAP of
``tests/fixtures/bridge`` (fitted to a Lennard-Jones reference, sigma 2.5 Å, epsilon 0.1 eV,
cutoff 4.5 Å), small SOAP. The oracle reference is that Lennard-Jones potential in LAMMPS
(``lj/cut``, unshifted energies, so the energy error carries a constant offset; forces and virial
are the GAP's fit targets).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.io import read
from quippy.potential import Potential

from aiida_mlfail.engines.signals import GapVariance, ReferenceOracle, gap_arguments
from aiida_mlfail.science import explore as sx
from aiida_mlfail.science import signals as ss
from tests.engines.test_explore_engine import BRIDGE, HOT, crystal, explore, prepare

LJ = {'name': 'lammps', 'species': ['Na', 'Cl'], 'atom_style': 'atomic',
      'commands': ['pair_style lj/cut 4.5', 'pair_coeff * * 0.1 2.5']}


def gap_variance(directory=BRIDGE):
    coeff = gap_arguments(['pair_style quip', f'pair_coeff * * {directory}/gap.xml "IP GAP" 11 17'], 2)
    return GapVariance(coeff.xml, coeff.init_args)


def test_variance_grows_away_from_the_training_configurations():
    """The training cells are distorted crystals: a strongly rattled cell is less certain than the crystal."""
    variance = gap_variance()
    near = variance.evaluate(crystal())
    atoms = crystal()
    atoms.rattle(0.4, seed=2)
    far = variance.evaluate(atoms)
    assert near['local_variance'].shape == (8,)
    assert 0 < near['max_variance'] < far['max_variance']
    assert far['mean_variance'] <= far['max_variance']


@pytest.mark.parametrize('bad', [{'novelty_signal': 'energy'}, {'novelty_signal': 'variance'},
                                 {'novelty_signal': 'both', 'critical_variance': -1.0}, {'oracle': 'yes'}])
def test_bad_signal_parameters_are_refused(bad):
    with pytest.raises(ValueError, match='novelty_signal|critical_variance|oracle'):
        sx.normalise_explore(bad)


def test_oracle_needs_a_reference_and_a_reference_needs_oracle(tmp_path):
    with pytest.raises(ValueError, match='oracle mode needs'):
        sx.job_files(crystal(), ['Na', 'Cl'], ['pair_style quip'], {'soap': {'n_max': 3, 'l_max': 2}, 'oracle': True},
                     [crystal()])
    with pytest.raises(ValueError, match='oracle: true'):
        sx.job_files(crystal(), ['Na', 'Cl'], ['pair_style quip'], {'soap': {'n_max': 3, 'l_max': 2}}, [crystal()],
                     oracle_reference=LJ)


def test_variance_signal_stops_and_names_itself(tmp_path, monkeypatch):
    """A hot run with a critical variance between the crystal's and the molten cell's stops on the variance;
    REMatch is then neither computed nor the reason."""
    critical = 2.0 * gap_variance().evaluate(crystal())['max_variance']
    parameters = {**HOT, 'novelty_signal': 'variance', 'critical_variance': critical, 'critical_similarity': 0.5}
    results = explore(prepare(tmp_path, parameters), monkeypatch)
    assert results['stop_reason'] == 'novel' and results['novel_by'] == ['variance']
    assert 'GAP variance' in results['message'] and 'similarity' not in results['message']
    assert results['max_variance'] > critical
    series = ss.parse_signals((tmp_path / ss.SIGNALS_FILE).read_text())
    assert series['step'][-1] == results['stop_step']
    assert (series['max_variance'][:-1] <= critical).all() and np.isnan(series['similarity']).all()
    assert np.isnan(series['force_rmse']).all()  # no oracle


@pytest.fixture(scope='module')
def oracle_run(tmp_path_factory):
    """Oracle mode with a critical similarity every configuration is below: it must not stop at a novelty."""
    parameters = {**HOT, 'temperature': 600.0, 'max_steps': 100, 'critical_similarity': 0.999999, 'oracle': True}
    directory = tmp_path_factory.mktemp('oracle')
    prepare(directory, {**parameters, 'oracle': False})  # GAP and data files; the input below
    files = sx.job_files(crystal(), ['Na', 'Cl'], ['pair_style quip', 'pair_coeff * * gap.xml "IP GAP" 11 17'],
                         {'soap': {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}, **parameters}, [crystal()],
                         oracle_reference=LJ)
    (directory / sx.INPUT_FILE).write_bytes(files[sx.INPUT_FILE])
    with pytest.MonkeyPatch.context() as monkeypatch:
        results = explore(directory, monkeypatch)
    return directory, results


def test_oracle_runs_to_the_end_and_records_every_signal(oracle_run):
    directory, results = oracle_run
    assert results['stop_reason'] == 'max_steps' and results['oracle'] is True and results['novel_by'] == []
    assert results['signal_notes'] == []
    series = ss.parse_signals((directory / ss.SIGNALS_FILE).read_text())
    np.testing.assert_array_equal(series['step'], np.arange(0, 101, HOT['comparison_step']))
    assert (series['similarity'][1:] < 0.999999).all()  # novel by REMatch, and yet no stop
    for name in ss.SIGNAL_NAMES:
        assert np.isfinite(series[name]).all(), name
    assert (series['force_rmse'] > 0).all() and (series['force_max_error'] >= series['force_rmse']).all()
    assert series['volume_ratio'] == pytest.approx(1.0)  # NVT


def _lammps_lj(atoms):
    """An independent LJ single point: a LAMMPS input written here, not the oracle's."""
    from ase.io import write

    from aiida_mlfail.engines.lammps_lib import new_lammps

    write('check.data', atoms, format='lammps-data', atom_style='atomic', specorder=['Na', 'Cl'], masses=True,
          units='metal')
    lmp = new_lammps(['-log', 'none', '-screen', 'none'])
    try:
        lmp.commands_list(['units metal', 'atom_style atomic', 'atom_modify map array', 'read_data check.data',
                           'pair_style lj/cut 4.5', 'pair_coeff * * 0.1 2.5', 'compute v all pressure NULL virial',
                           'thermo_style custom pe vol c_v[1] c_v[2] c_v[3] c_v[4] c_v[5] c_v[6]', 'run 0'])
        n = len(atoms)
        forces = np.array(lmp.numpy.extract_atom('f', nelem=n)[:n])[np.argsort(lmp.numpy.extract_atom('id')[:n])]
        p = [lmp.get_thermo(k) for k in ('pe', 'vol')]
        virial_pressure = [lmp.extract_compute('v', 0, 1)[k] for k in range(6)]
    finally:
        lmp.close()
    xx, yy, zz, xy, xz, yz = virial_pressure
    virial = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]) * p[1] / 1.6021765e6
    return {'energy': p[0], 'forces': forces, 'virial': virial}


def test_oracle_errors_equal_a_separate_reference_evaluation_of_the_same_frame(oracle_run, monkeypatch):
    directory, results = oracle_run
    frame = read(directory / sx.TRIGGER_FILE)
    assert frame.info['md_step'] == 100
    series = ss.parse_signals((directory / ss.SIGNALS_FILE).read_text())
    monkeypatch.chdir(directory)
    gap = read(directory / sx.TRIGGER_FILE)
    gap.calc = Potential('IP GAP', param_filename='gap.xml')
    gap_values = {'energy': gap.get_potential_energy(), 'forces': gap.get_forces(),
                  'virial': -gap.get_stress(voigt=False) * gap.get_volume()}
    reference = _lammps_lj(frame)
    n = len(frame)
    expected = {
        'energy_error_per_atom': abs(gap_values['energy'] - reference['energy']) / n,
        'force_rmse': math.sqrt(np.mean((gap_values['forces'] - reference['forces']) ** 2)),
        'force_max_error': np.linalg.norm(gap_values['forces'] - reference['forces'], axis=1).max(),
        'virial_error_per_atom': math.sqrt(np.mean((gap_values['virial'] - reference['virial']) ** 2)) / n,
    }
    for name, value in expected.items():
        assert series[name][-1] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    # and the oracle class itself on that frame gives the reference of this separate evaluation
    oracle = ReferenceOracle(LJ, ['Na', 'Cl'])
    try:
        again = oracle.evaluate(frame)
    finally:
        oracle.close()
    np.testing.assert_allclose(again['forces'], reference['forces'], atol=1e-8)
    assert again['energy'] == pytest.approx(reference['energy'], abs=1e-8)
