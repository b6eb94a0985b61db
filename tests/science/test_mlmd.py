"""GAP-MD scripts, guards, stop parsing and the rerun dump writer."""

import numpy as np
import pytest

from aiida_mlfail.science import lammps_md, mlmd, structures
from tests.helpers import FIXTURES


@pytest.mark.parametrize('parameters, match', [
    ({'ensemble': 'NVE'}, r"ensemble must be one of \['NVT', 'NPT'\], got 'NVE'"),
    ({'temperature': -1}, 'temperature must be a finite number > 0 K, got -1'),
    ({'steps': 0}, 'steps must be an integer > 0, got 0'),
    ({'guards': {'volume_factor': 0.9}}, 'guards.volume_factor must be a finite number > 1, got 0.9'),
    ({'guards': {'min_distance': -1}}, 'guards.min_distance must be a finite number > 0 Å, got -1'),
    ({'guards': {'max_force': 3}}, 'unknown MLMD parameter'),
    ({'guards': {'max_energy_change_per_atom': 0}},
     'guards.max_energy_change_per_atom must be a finite number > 0 eV/atom, got 0'),
    ({'guards': {'max_energy_change_per_atom': -5.0}},
     'max_energy_change_per_atom must be a finite number > 0 eV/atom, got -5.0'),
    ({'guards': {'max_energy_change_per_atom': float('nan')}}, 'max_energy_change_per_atom must be a finite number'),
    ({'guards': {'max_energy_change_per_atom': float('inf')}}, 'max_energy_change_per_atom must be a finite number'),
    ({'guards': {'max_energy_change_per_atom': '5'}},
     "max_energy_change_per_atom must be a finite number > 0 eV/atom, got '5'"),
    ({'guards': {'max_energy_change_per_atom': True}},
     'max_energy_change_per_atom must be a finite number > 0 eV/atom, got True'),
    ({'guards': [('min_distance', 1.0)]}, 'guards must be a dict'),
])
def test_bad_mlmd_parameters_are_named(parameters, match):
    with pytest.raises(ValueError, match=match):
        mlmd.normalise_mlmd(parameters)


def test_old_energy_guard_key_is_refused_with_the_new_name():
    with pytest.raises(ValueError) as info:
        mlmd.normalise_mlmd({'guards': {'max_energy_per_atom': 100.0}})
    message = str(info.value)
    assert 'guards.max_energy_per_atom was renamed guards.max_energy_change_per_atom' in message
    assert 'relative to the potential energy at the start of the run' in message
    assert 'got max_energy_per_atom=100.0' in message
    with pytest.raises(ValueError, match='renamed guards.max_energy_change_per_atom'):  # also next to the new key
        mlmd.normalise_mlmd({'guards': {'max_energy_per_atom': 1.0, 'max_energy_change_per_atom': 1.0}})


def test_energy_guard_default_and_value():
    assert mlmd.GUARD_DEFAULTS['max_energy_change_per_atom'] == 5.0
    assert mlmd.normalise_mlmd({})['guards']['max_energy_change_per_atom'] == 5.0
    guards = mlmd.normalise_mlmd({'guards': {'max_energy_change_per_atom': 2}})['guards']
    assert guards['max_energy_change_per_atom'] == 2
    assert mlmd.GUARD_FIX_IDS['energy_runaway'] == 'guard_energy'
    assert mlmd.STOP_REASONS == ('completed', 'volume_blowup', 'too_close_atoms', 'temperature_runaway',
                                 'energy_runaway', 'lost_atoms', 'lammps_error', 'incomplete')


def test_guard_commands_energy_guard_is_relative_to_the_start_energy():
    p = mlmd.normalise_mlmd({'temperature': 1000.0, 'guards': {'max_energy_change_per_atom': 0.25}})
    commands = mlmd.guard_commands(p, 2000.0, 64, ['Na', 'Cl'])
    assert 'variable energy_change equal ternary(pe==pe,abs(pe-v_energy_start)/64,1e300)' in commands
    assert 'fix guard_energy all halt 1 v_energy_change > 0.25 error soft message yes' in commands
    assert 'fix guard_volume all halt 1 v_vol > 3000 error soft message yes' in commands
    assert 'fix guard_temperature all halt 1 v_temperature > 4000 error soft message yes' in commands
    assert not any('abs(pe)' in c or 'variable energy_start' in c for c in commands)  # no absolute bound
    # the start energy: a constant taken from pe by immediate evaluation (after a run 0)
    assert mlmd.energy_start_commands() == ['variable energy_start equal $(pe)']
    assert mlmd.ENERGY_START_VARIABLE == 'energy_start'


def test_mlmd_script_takes_the_start_energy_after_a_run_0():
    p = mlmd.normalise_mlmd({'steps': 300})
    lines = mlmd.mlmd_script(['pair_style quip', 'pair_coeff * * gap.xml "IP GAP" 11 17'], ['Na', 'Cl'], p, 8,
                             180.0).splitlines()
    run0, start = lines.index('run 0 post no'), lines.index('variable energy_start equal $(pe)')
    guard = lines.index('fix guard_energy all halt 1 v_energy_change > 5 error soft message yes')
    dump = next(i for i, line in enumerate(lines) if line.startswith('dump '))
    assert guard < run0 and start == run0 + 1 < dump < lines.index('run 300')
    assert sum(line.startswith('run ') for line in lines) == 2


def test_script_has_standard_gap_commands_and_guards():
    p = mlmd.normalise_mlmd({'ensemble': 'NPT', 'guards': {'volume_factor': 2.0}})
    script = mlmd.mlmd_script(['pair_style quip', 'pair_coeff * * gap.xml "IP GAP label=X" 11 17'], ['Na', 'Cl'],
                              p, 64, 2000.0)
    assert 'pair_style quip\npair_coeff * * gap.xml "IP GAP label=X" 11 17' in script
    assert 'fix guard_volume all halt 1 v_vol > 4000 error soft' in script
    assert 'iso 1 1 1' in script and 'vx vy vz' in script


def test_parse_stop_on_committed_outputs():
    reasons = {}
    for case in ('completed', 'volume_blowup', 'too_close_atoms', 'temperature_runaway', 'energy_runaway',
                 'lost_atoms'):
        reasons[case] = mlmd.parse_stop((FIXTURES / 'mlmd_stops' / case / 'lammps.out').read_text())['stop_reason']
    assert reasons == {case: case for case in reasons}
    assert mlmd.parse_stop('LAMMPS (22 Jul 2025)\n')['stop_reason'] == 'incomplete'
    assert mlmd.parse_stop('ERROR: Unknown command\n')['stop_reason'] == 'lammps_error'


@pytest.mark.parametrize('tilt', [False, True])
def test_write_dump_round_trip(tilt):
    atoms = structures.molten_nacl(64)
    if tilt:
        cell = atoms.cell.array.copy()
        cell[1, 0], cell[2, 0], cell[2, 1] = 1.0, -0.5, 0.7
        atoms.set_cell(cell, scale_atoms=False)
    text = mlmd.write_dump([atoms, atoms], ['Na', 'Cl'], [0, 10])
    frames = lammps_md.parse_dump(text)
    assert [f['step'] for f in frames] == [0, 10]
    assert np.allclose(frames[0]['cell'], atoms.cell.array)
    positions = np.column_stack([frames[1]['x'], frames[1]['y'], frames[1]['z']]) - frames[1]['origin']
    assert np.allclose(positions, atoms.positions)


def test_pressure_table():
    table = mlmd.pressure_table({'ML run': np.r_[np.zeros(5), np.ones(5)], 'rerun': [3.0]})
    assert table['ML run']['mean_bar'] == 0.5 and table['ML run']['standard_error_bar'] > 0
    assert table['rerun'] == {'mean_bar': 3.0, 'standard_error_bar': None}
