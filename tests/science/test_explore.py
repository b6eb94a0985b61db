"""Explorer parameters, set-up script, file formats and parsers (``science.explore``, no LAMMPS run)."""

import io
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from aiida_mlfail.science import explore as sx
from aiida_mlfail.science import mlmd

SOAP = {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}
PAIR = ['pair_style quip', 'pair_coeff * * gap.xml "IP GAP label=X" 11 17']


@pytest.mark.parametrize('parameters, match', [
    ({'steps': 100}, r"unknown explore parameter key\(s\) \['steps'\]"),
    ({'dump_interval': 10}, r"unknown explore parameter key\(s\) \['dump_interval'\]"),
    ({'max_steps': 0}, 'max_steps must be an integer > 0, got 0'),
    ({'max_steps': 10.5}, 'max_steps must be an integer > 0, got 10.5'),
    ({'comparison_step': True}, 'comparison_step must be an integer > 0, got True'),
    ({'max_steps': 50, 'comparison_step': 100}, r'comparison_step \(100\) > max_steps \(50\)'),
    ({'critical_similarity': 0.0}, r'critical_similarity must be a finite number > 0 and <= 1, got 0.0'),
    ({'critical_similarity': 1.5}, r'critical_similarity must be a finite number > 0 and <= 1, got 1.5'),
    ({'critical_similarity': 'high'}, "critical_similarity must be a finite number > 0 and <= 1, got 'high'"),
    ({'alpha': -0.1}, r'alpha .* must be a finite number > 0, got -0.1'),
    ({'threshold': 1.0}, r'threshold .* must be a finite number > 0 and < 1, got 1.0'),
    ({'soap': {'r_cut': 0.5}}, 'SOAP r_cut must be a finite number > 1.0 Å, got 0.5'),
    ({'soap': {'average': 'inner'}}, "SOAP average must be 'off'"),
    ({'soap': 'big'}, "soap must be a dict of SOAP parameters, got 'big'"),
    ({'ensemble': 'NVE'}, r"ensemble must be one of \['NVT', 'NPT'\], got 'NVE'"),
    ({'temperature': -5}, 'temperature must be a finite number > 0 K, got -5'),
    ({'guards': {'volume_factor': 0.9}}, 'volume_factor must be a finite number > 1, got 0.9'),
    ({'guards': {'max_force': 3}}, 'unknown MLMD parameter'),
    ({'guards': {'max_energy_per_atom': 100.0}},
     'guards.max_energy_per_atom was renamed guards.max_energy_change_per_atom'),
    ({'guards': {'max_energy_change_per_atom': 0.0}},
     'max_energy_change_per_atom must be a finite number > 0 eV/atom, got 0.0'),
    ({'reference_volume': -1.0}, r'reference_volume must be a finite number > 0 Å\^3, got -1.0'),
])
def test_bad_parameters_are_named(parameters, match):
    with pytest.raises(ValueError, match=match):
        sx.normalise_explore(parameters)


def test_defaults_and_species():
    p = sx.normalise_explore({'ensemble': 'npt', 'soap': SOAP, 'reference_volume': None})
    assert p['ensemble'] == 'NPT' and p['max_steps'] == sx.EXPLORE_DEFAULTS['max_steps']
    assert p['guards'] == mlmd.GUARD_DEFAULTS and 'reference_volume' not in p
    assert not {'steps', 'dump_interval', 'atomic_energies'} & set(p)
    assert p['soap']['species'] is None and p['soap']['n_max'] == 3  # checked, species resolved later
    p = sx.normalise_explore({'soap': SOAP, 'max_steps': 1000.0}, species=['Na', 'Cl'])
    assert p['soap']['species'] == ['Cl', 'Na'] and p['max_steps'] == 1000 and isinstance(p['max_steps'], int)
    assert sx.normalise_explore({'soap': {**SOAP, 'species': ['Na']}}, species=['Cl'])['soap']['species'] == ['Na']
    assert sx.normalise_explore(p) == p  # idempotent: the engine re-checks the CalcJob's normalised dict


def test_check_steps():
    assert sx.check_steps(100, 20) == [20, 40, 60, 80, 100]
    assert sx.check_steps(50, 20) == [20, 40, 50]
    assert sx.check_steps(7, 7) == [7]


def test_explore_script_has_gap_guards_thermo_and_no_run():
    p = sx.normalise_explore({'ensemble': 'NPT', 'thermo_interval': 5, 'guards': {'min_distance': 1.5}})
    script = sx.explore_script(PAIR, ['Na', 'Cl'], p, 8, 180.0)
    assert '\n'.join(PAIR) in script
    assert 'fix guard_volume all halt 1 v_vol > 270 error soft' in script
    assert 'fix guard_distance all halt 1 v_min_distance < 1.5 error soft' in script
    assert 'iso 1 1 1' in script
    assert 'fix explore_thermo all print 5 "$(step) $(temp) $(pe) $(ke) $(etotal) $(press) $(vol)" ' \
           f'file {sx.RAW_THERMO_FILE}' in script
    assert '\nrun' not in script and 'dump' not in script
    # the energy guard refers to the start energy, which the engine defines after its run 0
    assert 'fix guard_energy all halt 1 v_energy_change > 5 error soft' in script
    assert 'v_energy_start' in script and 'variable energy_start' not in script
    # the set-up commands are exactly those of the MLMD script (which adds frames and the run)
    mp = mlmd.normalise_mlmd({'ensemble': 'NPT', 'thermo_interval': 5, 'guards': {'min_distance': 1.5}})
    setup = mlmd.mlmd_setup_commands(PAIR, ['Na', 'Cl'], mp, 8, 180.0)
    assert script.splitlines()[1:-1] == setup[1:]
    assert mlmd.mlmd_script(PAIR, ['Na', 'Cl'], mp, 8, 180.0).startswith('\n'.join(setup))


def test_references_round_trip_and_errors(tmp_path):
    """The references go to the job as bare extxyz; the job computes their SOAP spectra."""
    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    labelled = crystal.copy()
    labelled.info['energy'] = -3.0
    labelled.arrays['forces'] = np.zeros((8, 3))
    data = sx.write_references([labelled, crystal.repeat((2, 1, 1))])
    assert b'energy' not in data and b'forces' not in data  # no labels: the file is as small as the structures
    soap = sx.normalise_explore({'soap': SOAP}, ['Cl', 'Na'])['soap']
    configurations, features = sx.read_references(io.StringIO(data.decode()), soap)
    assert [len(a) for a in configurations] == [8, 16]
    assert [f.shape[0] for f in features] == [8, 16]
    np.testing.assert_allclose(np.linalg.norm(features[1], axis=1), 1.0)
    np.testing.assert_allclose(features[1][:8], features[0], atol=1e-10)  # a supercell has the same environments
    with pytest.raises(ValueError, match='training set is empty'):
        sx.write_references([])
    (tmp_path / 'bad.xyz').write_text('not an xyz file\n')
    with pytest.raises(ValueError, match='is not an extxyz file of configurations'):
        sx.read_references(tmp_path / 'bad.xyz', soap)


def test_lammps_atoms_orders_by_id_and_keeps_tilt():
    atoms = sx.lammps_atoms([1.0, 2.0, 3.0], [6.0, 7.0, 9.0], (0.5, -0.3, 0.2),
                            [[2.0, 2.0, 3.0], [1.0, 2.5, 3.5]], [2, 1], [7, 3], ['Na', 'Cl'])
    assert atoms.get_chemical_symbols() == ['Na', 'Cl']
    np.testing.assert_allclose(atoms.positions, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(atoms.cell.array, [[5.0, 0, 0], [0.5, 5.0, 0], [-0.3, 0.2, 6.0]])
    assert atoms.pbc.all()
    with pytest.raises(ValueError, match=r"atom type 3 not in type map \['Na', 'Cl'\]"):
        sx.lammps_atoms([0, 0, 0], [1, 1, 1], (0, 0, 0), [[0, 0, 0]], [3], [1], ['Na', 'Cl'])


def test_tables_round_trip_and_malformed_lines():
    text = sx.similarity_table([(0, 1.0, 0), (20, 0.8123456789012345, 3), (27, None, None)])
    series = sx.parse_similarity(text)
    np.testing.assert_array_equal(series['step'], [0, 20, 27])
    assert series['similarity'][1] == 0.8123456789012345 and np.isnan(series['similarity'][2])
    np.testing.assert_array_equal(series['reference_index'], [0, 3, -1])
    rows = [[0, 1500.0, -2.7, 1.3, -1.4, -16000.5, 179.4], [10, 1400.0, -2.6, 1.2, -1.4, 12.0, 179.4]]
    thermo = sx.parse_thermo_table(sx.thermo_table(rows))
    assert [name for name, _ in sx.THERMO_COLUMNS] == list(thermo)
    np.testing.assert_allclose(np.column_stack(list(thermo.values())), rows)
    with pytest.raises(ValueError, match='similarity.dat line 2: expected 3 numbers'):
        sx.parse_similarity('# header\n0 1.0\n')
    with pytest.raises(ValueError, match='thermo.dat line 1: expected 7 numbers'):
        sx.parse_thermo_table('0 1 2 3 4 5 x\n')


def test_parse_explore_results():
    results = {'stop_reason': 'novel', 'stop_step': 80, 'steps_run': 80, 'similarity': 0.9, 'reference_index': 0,
               'min_similarity': 0.9, 'n_checks': 5, 'message': 'm', 'timings': {}}
    assert sx.parse_explore_results(json.dumps(results)) == results
    with pytest.raises(ValueError, match='not valid JSON'):
        sx.parse_explore_results('{"stop_reason": ')
    with pytest.raises(ValueError, match=r"lacks \['n_checks'\]"):
        sx.parse_explore_results(json.dumps({k: v for k, v in results.items() if k != 'n_checks'}))
    with pytest.raises(ValueError, match="unknown stop reason 'completed'"):
        sx.parse_explore_results(json.dumps({**results, 'stop_reason': 'completed'}))
    with pytest.raises(ValueError, match='holds list'):
        sx.parse_explore_results('[]')
    assert sx.classify_lammps_error('ERROR: Lost atoms: original 8 current 0') == 'lost_atoms'
    assert sx.classify_lammps_error('ERROR: Out of range atoms - cannot compute PPPM') == 'lammps_error'


def test_job_files_and_engine_input():
    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    files = sx.job_files(crystal, ['Na', 'Cl'], PAIR, {'soap': SOAP, 'max_steps': 40, 'comparison_step': 20},
                         [crystal, crystal])
    assert set(files) == {sx.INPUT_FILE, sx.DATA_FILE, sx.REFERENCE_FILE}
    config = sx.read_engine_input(files[sx.INPUT_FILE].decode())
    assert config['type_map'] == ['Na', 'Cl'] and config['pair_commands'] == PAIR
    assert config['reference_volume'] == pytest.approx(crystal.get_volume())
    assert config['parameters']['soap']['species'] == ['Cl', 'Na']
    _, features = sx.read_references(io.StringIO(files[sx.REFERENCE_FILE].decode()), config['parameters']['soap'])
    assert len(features) == 2 and features[0].shape[0] == 8
    np.testing.assert_allclose(np.linalg.norm(features[1], axis=1), 1.0)
    assert b'2 atom types' in files[sx.DATA_FILE]
    # explicit reference volume; SOAP species that miss a structure species; a type map without one
    assert json.loads(sx.job_files(crystal, ['Na', 'Cl'], PAIR, {'soap': SOAP, 'reference_volume': 500.0},
                                   [crystal])[sx.INPUT_FILE])['reference_volume'] == 500.0
    with pytest.raises(ValueError, match=r"species \['Na'\] that the SOAP descriptor"):
        sx.job_files(crystal, ['Na', 'Cl'], PAIR, {'soap': {**SOAP, 'species': ['Cl']}}, [crystal])
    with pytest.raises(ValueError, match=r"species \['Cl'\] of the structure are not in the type map"):
        sx.job_files(crystal, ['Na'], PAIR, {'soap': SOAP}, [crystal])
    argon = Atoms('Ar', positions=[[0, 0, 0]], cell=[20, 20, 20], pbc=True)
    with pytest.raises(ValueError, match=r"species \['Ar'\] that the SOAP descriptor .* reference configurations"):
        sx.job_files(crystal, ['Na', 'Cl'], PAIR, {'soap': {**SOAP, 'species': ['Na', 'Cl']}}, [crystal, argon])
    with pytest.raises(ValueError, match='must be resolved'):
        sx.engine_input(sx.normalise_explore({}), ['Na'], PAIR, 10.0)
    with pytest.raises(ValueError, match=r"lacks \['pair_commands'"):
        sx.read_engine_input(json.dumps({'parameters': {}, 'type_map': ['Na']}))
