"""The per-pair distance guard (``too_close_atoms``) in LAMMPS itself (no AiiDA, no mocks).

``science.mlmd.distance_guard_commands`` thresholds every LAMMPS type pair with ``compute coord/atom`` over
the group of one type. These runs check, in a real LAMMPS (``pair_style zero``, atoms at rest, so the
configuration stays as built), that a pair closer than its own threshold stops the run at step 1 and that a
pair between its own threshold and a larger one of another pair does not: what a single ``compute
pair/local`` minimum, or one over a group of both types, cannot tell apart.
"""

from __future__ import annotations

import pytest
from ase import Atoms
from ase.io import write

from aiida_mlfail.engines.lammps_lib import new_lammps
from aiida_mlfail.science import mlmd

#: Per-pair thresholds as the 1400 K NaCl training data give them (0.35 x the shortest distance of each pair).
LIMITS = {'Na-Na': 1.03, 'Na-Cl': 0.73, 'Cl-Cl': 1.13}


def _run(tmp_path, monkeypatch, atoms, limits, steps=3):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / 'structure.data', atoms, format='lammps-data', atom_style='atomic', specorder=['Na', 'Cl'],
          masses=True, units='metal')
    lmp = new_lammps(['-screen', 'none', '-log', 'log.lammps'])
    try:
        for command in ['units metal', 'atom_style atomic', 'read_data structure.data', 'pair_style zero 4.0',
                        'pair_coeff * *', 'fix ensemble all nve', *mlmd.distance_guard_commands(limits, ['Na', 'Cl']),
                        f'run {steps}']:
            lmp.command(command)
        step = lmp.extract_global('ntimestep')
    finally:
        lmp.close()
    return step, mlmd.parse_stop((tmp_path / 'log.lammps').read_text() + '\nMLFAIL_RUN_END step 0')


def _atoms(pairs):
    """Isolated pairs (symbols, distance Å) along x, 5 Å apart in a periodic 12 Å box."""
    atoms = Atoms(cell=[12.0] * 3, pbc=True)
    for k, ((a, b), distance) in enumerate(pairs):
        atoms += Atoms(a + b, positions=[[1.0, 1.0 + 5.0 * k, 1.0], [1.0 + distance, 1.0 + 5.0 * k, 1.0]])
    return atoms


@pytest.mark.parametrize('pairs, tripped', [
    ([(('Na', 'Na'), 0.8), (('Cl', 'Cl'), 2.0)], 2),   # a collapsed Na-Na pair: both Na count the contact
    ([(('Na', 'Cl'), 0.7), (('Cl', 'Cl'), 2.0)], 1),   # Na-Cl below its 0.73 Å
    ([(('Cl', 'Cl'), 1.1), (('Na', 'Na'), 2.0)], 2),   # Cl-Cl below its 1.13 Å
    ([(('Na', 'Cl'), 0.9), (('Na', 'Na'), 2.0)], 0),   # Na-Cl 0.9 Å: above its 0.73 Å, below Na-Na's 1.03 Å
    ([(('Cl', 'Cl'), 1.2), (('Na', 'Cl'), 1.1)], 0),   # every pair above its own threshold
])
def test_each_pair_is_held_to_its_own_threshold(tmp_path, monkeypatch, pairs, tripped):
    step, stop = _run(tmp_path, monkeypatch, _atoms(pairs), LIMITS)
    if tripped:
        assert stop['stop_reason'] == 'too_close_atoms' and stop['stop_step'] == step == 1, stop['message']
        assert stop['value'] == tripped  # the number of close contacts (a like pair counts twice)
        assert stop['message'].endswith("(the number of close contacts: atom pairs closer than their species "
                                        "pair's guard distance)")
    else:
        assert stop['stop_reason'] == 'completed' and step == 3, stop['message']


def test_a_uniform_number_keeps_the_single_minimum_distance_guard(tmp_path, monkeypatch):
    step, stop = _run(tmp_path, monkeypatch, _atoms([(('Na', 'Cl'), 0.9), (('Na', 'Na'), 2.0)]), 1.2)
    assert stop['stop_reason'] == 'too_close_atoms' and step == 1
    assert stop['value'] == pytest.approx(0.9)  # the distance itself
    assert 'close contacts' not in stop['message']
