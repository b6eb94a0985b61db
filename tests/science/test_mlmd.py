"""GAP-MD scripts, guards, stop parsing and the rerun dump writer."""

import numpy as np
import pytest

from aiida_mlfail.science import lammps_md, mlmd, structures
from tests.helpers import FIXTURES


@pytest.mark.parametrize('parameters, match', [
    ({'ensemble': 'NVE'}, "'NVT' or 'NPT'"),
    ({'temperature': -1}, 'temperature must be positive'),
    ({'steps': 0}, 'steps must be a positive integer'),
    ({'guards': {'volume_factor': 0.9}}, 'volume_factor must be > 1'),
    ({'guards': {'min_distance': -1}}, 'min_distance must be positive'),
    ({'guards': {'max_force': 3}}, 'unknown MLMD parameter'),
])
def test_bad_mlmd_parameters_are_named(parameters, match):
    with pytest.raises(ValueError, match=match):
        mlmd.normalise_mlmd(parameters)


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
