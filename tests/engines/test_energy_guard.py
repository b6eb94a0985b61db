"""The relative MD energy guard (``energy_runaway``) on real runs (no AiiDA, no mocks).

A GAP fitted to DFT labels predicts absolute energies on the DFT scale: about -850 eV/atom for
GTH-PBE NaCl (``tests/fixtures/cp2k/aimd``: -248.88 Ha for 8 ions). The stand-in here is the tiny
committed NaCl GAP of ``tests/fixtures/bridge`` with every ``e0`` shifted by -850 eV: the same forces,
energies 850 eV/atom lower. Runs of 8-ion rock-salt NaCl go through the explorer engine
(``mlfail-explore``'s ``main`` in-process) and through the GAP-MD script of ``science.mlmd`` run by
``mlfail-lmp`` (``engines.lmp.main`` in-process, ``fix external`` + quippy bridge). A classical
(Born) script checks the plain-LAMMPS path (the script goes to LAMMPS whole, no bridge).

The two ``..._runs_a_dft_scale_gap`` tests fail with the former absolute energy guard (|pe|/N > 100
eV), which stopped both runs at step 1.
"""

from __future__ import annotations

import pathlib
import re
import shutil

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from aiida_mlfail.engines.lmp import main as lmp_main
from aiida_mlfail.science import explore as sx
from aiida_mlfail.science import lammps_md, mlmd
from tests.engines.test_explore_engine import BRIDGE, PAIR_COMMANDS, crystal, explore, prepare

DFT_SHIFT = -850.0  # eV per atom
STEPS = 200
#: Explorer settings: no novelty stop (critical similarity 0.01), 200 steps at 300 K.
EXPLORE = {'temperature': 300.0, 'max_steps': STEPS, 'comparison_step': 50, 'critical_similarity': 0.01}


def shift_e0(xml: pathlib.Path, shift: float) -> int:
    """Add ``shift`` (eV) to every ``<e0 Z=.. value=..>`` of a GAP XML in place; returns how many."""
    text = xml.read_text()
    text, count = re.subn(r'<e0 Z="(\d+)" value="([^"]+)"/>',
                          lambda m: f'<e0 Z="{m[1]}" value="{float(m[2]) + shift!r}"/>', text)
    xml.write_text(text)
    return count


def dft_scale_gap(directory: pathlib.Path) -> None:
    """Copy the tiny GAP into ``directory`` (if not there) and shift its e0 by :data:`DFT_SHIFT`."""
    for path in BRIDGE.glob('gap.xml*'):
        if not (directory / path.name).exists():
            shutil.copy(path, directory / path.name)
    assert shift_e0(directory / 'gap.xml', DFT_SHIFT) >= 2


def test_shifted_gap_has_dft_scale_energies_and_the_same_forces(tmp_path):
    from quippy.potential import Potential

    dft_scale_gap(tmp_path)
    atoms = crystal()
    atoms.rattle(0.1, seed=2)
    results = {}
    for name, xml in (('tiny', BRIDGE / 'gap.xml'), ('shifted', tmp_path / 'gap.xml')):
        probe = atoms.copy()
        probe.calc = Potential('IP GAP', param_filename=str(xml))
        results[name] = (probe.get_potential_energy(), probe.get_forces())
    assert results['shifted'][0] - results['tiny'][0] == pytest.approx(DFT_SHIFT * len(atoms), abs=1e-6)
    assert results['shifted'][0] / len(atoms) < -800
    np.testing.assert_allclose(results['shifted'][1], results['tiny'][1], atol=1e-9)
    assert np.abs(results['tiny'][1]).max() > 0.01


# -- the explorer ---------------------------------------------------------------------------------


def test_explorer_runs_a_dft_scale_gap_with_default_guards(tmp_path, monkeypatch):
    directory = prepare(tmp_path, EXPLORE)
    dft_scale_gap(directory)
    results = explore(directory, monkeypatch)
    assert results['stop_reason'] == 'max_steps', results['message']
    assert results['steps_run'] == results['stop_step'] == STEPS
    thermo = sx.parse_thermo_table((directory / sx.THERMO_FILE).read_text())
    energy_per_atom = thermo['potential_energy'] / len(crystal())
    assert thermo['step'][-1] == STEPS
    assert (energy_per_atom < -840).all()  # the DFT scale: the old absolute guard tripped at step 1
    change = np.abs(energy_per_atom - energy_per_atom[0]).max()
    assert 0 < change < mlmd.GUARD_DEFAULTS['max_energy_change_per_atom']


def test_explorer_energy_guard_is_relative_to_the_start(tmp_path, monkeypatch):
    """A tiny threshold trips on the change of pe per atom (a few meV), not on its value (-850 eV)."""
    threshold = 0.002
    directory = prepare(tmp_path, {**EXPLORE, 'guards': {'max_energy_change_per_atom': threshold}})
    dft_scale_gap(directory)
    results = explore(directory, monkeypatch)
    assert results['stop_reason'] == 'energy_runaway', results['message']
    step = results['stop_step']
    assert 1 < step < STEPS  # not at the first step: the start energy is the reference, not 0
    assert f'fix-id guard_energy met on step {step}' in results['message']
    assert threshold < results['guard_value'] < 0.1  # eV/atom, the change from the start
    thermo = sx.parse_thermo_table((directory / sx.THERMO_FILE).read_text())
    assert thermo['potential_energy'][0] / len(crystal()) < -840


# -- the GAP-MD script (MLMDWorkChain) through mlfail-lmp ---------------------------------------


def run_mlmd_script(directory: pathlib.Path, monkeypatch, pair_commands, parameters: dict, atoms=None) -> dict:
    """Write ``science.mlmd.mlmd_script`` for ``atoms`` (default: the crystal) and run it with ``mlfail-lmp``.

    :returns: ``science.mlmd.parse_stop`` of the LAMMPS log, plus ``thermo`` (``parse_thermo``).
    """
    atoms = atoms if atoms is not None else crystal()
    p = mlmd.normalise_mlmd(parameters)
    write(directory / lammps_md.DATA_FILE, atoms, format='lammps-data', atom_style='atomic',
          specorder=['Na', 'Cl'], masses=True, units='metal')
    (directory / 'input.in').write_text(mlmd.mlmd_script(pair_commands, ['Na', 'Cl'], p, len(atoms),
                                                         atoms.get_volume()))
    monkeypatch.chdir(directory)
    assert lmp_main(['-in', 'input.in', '-log', 'log.lammps', '-screen', 'none']) == 0
    log = (directory / 'log.lammps').read_text()
    return {**mlmd.parse_stop(log), 'thermo': lammps_md.parse_thermo(log)}


MLMD = {'temperature': 300.0, 'steps': STEPS, 'dump_interval': 50, 'thermo_interval': 10}


def test_mlmd_script_runs_a_dft_scale_gap_with_default_guards(tmp_path, monkeypatch):
    dft_scale_gap(tmp_path)
    stop = run_mlmd_script(tmp_path, monkeypatch, PAIR_COMMANDS, MLMD)
    assert stop['stop_reason'] == 'completed' and stop['stop_step'] == STEPS, stop['message']
    energy_per_atom = stop['thermo']['potential_energy'] / len(crystal())
    assert stop['thermo']['step'][-1] == STEPS and (energy_per_atom < -840).all()
    frames = lammps_md.parse_dump((tmp_path / lammps_md.DUMP_FILE).read_text())
    assert [f['step'] for f in frames] == list(range(0, STEPS + 1, 50))  # the run 0 writes no frame


def test_mlmd_script_energy_guard_is_relative_to_the_start(tmp_path, monkeypatch):
    threshold = 0.002
    dft_scale_gap(tmp_path)
    stop = run_mlmd_script(tmp_path, monkeypatch, PAIR_COMMANDS,
                           {**MLMD, 'guards': {'max_energy_change_per_atom': threshold}})
    assert stop['stop_reason'] == 'energy_runaway', stop['message']
    assert 1 < stop['stop_step'] < STEPS and threshold < stop['value'] < 0.1


def test_plain_lammps_script_energy_guard(tmp_path, monkeypatch):
    """A classical (Born) script: LAMMPS runs it whole (no bridge); the same relative guard."""
    from aiida_mlfail.science import potentials

    born = ['pair_style born 6.0'] + [line for line in potentials.ReferencePotential('bmhtf_wolf').lammps_commands()
                                      if line.startswith('pair_coeff')]
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True).repeat(2)
    (tmp_path / 'default').mkdir()
    stop = run_mlmd_script(tmp_path / 'default', monkeypatch, born, MLMD, atoms)
    assert stop['stop_reason'] == 'completed' and stop['stop_step'] == STEPS, stop['message']
    (tmp_path / 'tiny').mkdir()
    stop = run_mlmd_script(tmp_path / 'tiny', monkeypatch, born,
                           {**MLMD, 'guards': {'max_energy_change_per_atom': 0.002}}, atoms)
    assert stop['stop_reason'] == 'energy_runaway' and 1 < stop['stop_step'] < STEPS, stop['message']
    assert 0.002 < stop['value'] < 0.1


def test_default_guard_stops_a_gap_falling_into_a_well(tmp_path, monkeypatch):
    """The GAP fitted to 3 frames (``tests/fixtures/gap_fit_ok``) on 64-ion molten NaCl at 1400 K with an
    8 fs step, distance and temperature guards off: pe/N falls by several eV (an unphysical well of the
    GAP); the default energy guard (5 eV/atom) stops it (the numbers behind
    ``science.mlmd.GUARD_DEFAULTS``; with the default temperature guard, that one trips at the same step)."""
    from aiida_mlfail.science import structures

    for path in (BRIDGE.parent / 'gap_fit_ok').glob('gap.xml*'):
        shutil.copy(path, tmp_path / path.name)
    atoms = structures.molten_nacl(64)
    stop = run_mlmd_script(tmp_path, monkeypatch, PAIR_COMMANDS,
                           {'temperature': 1400.0, 'timestep': 8.0, 'steps': 200, 'dump_interval': 100,
                            'thermo_interval': 5, 'guards': {'min_distance': 1e-6, 'temperature_factor': 100.0}}, atoms)
    limit = mlmd.GUARD_DEFAULTS['max_energy_change_per_atom']
    assert stop['stop_reason'] == 'energy_runaway', stop['message']
    assert limit < stop['value'] < limit + 1.0 and stop['stop_step'] < 200
    thermo = stop['thermo']
    energy_per_atom = thermo['potential_energy'] / len(atoms)
    assert energy_per_atom[-1] < energy_per_atom[0] - 0.8 * limit  # down into the well, not a NaN


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -1e6], ids=['nan', 'inf', 'drop'])
def test_guard_commands_in_lammps_with_an_external_energy(tmp_path, monkeypatch, bad):
    """The generated guard commands in LAMMPS: ``fix external`` supplies a DFT-scale energy that stays
    constant (no trip) and turns NaN, infinite or 1e6 eV lower at step 4 (trip at step 4)."""
    from aiida_mlfail.engines.lammps_lib import new_lammps

    monkeypatch.chdir(tmp_path)
    atoms = crystal()
    write(tmp_path / 'structure.data', atoms, format='lammps-data', atom_style='atomic', specorder=['Na', 'Cl'],
          masses=True, units='metal')
    p = mlmd.normalise_mlmd({'temperature': 300.0})
    lmp = new_lammps(['-screen', 'none', '-log', 'log.lammps'])

    def callback(_caller, step, _nlocal, _tag, _x, forces):
        forces[:] = 0.0
        lmp.fix_external_set_energy_global('ext', DFT_SHIFT * len(atoms) + (bad if step >= 4 else 0.0))

    try:
        for command in ['units metal', 'atom_style atomic', 'read_data structure.data', 'pair_style zero 4.0',
                        'pair_coeff * *', 'fix ext all external pf/callback 1 1', 'fix_modify ext energy yes',
                        'velocity all create 300 1', 'fix ensemble all nve', *lammps_md.label_computes()]:
            lmp.command(command)
        lmp.set_fix_external_callback('ext', callback, None)
        for command in mlmd.guard_commands(p, atoms.get_volume(), len(atoms), ['Na', 'Cl']):
            lmp.command(command)
        lmp.command('run 0 post no')
        for command in mlmd.energy_start_commands():
            lmp.command(command)
        assert lmp.extract_variable(mlmd.ENERGY_START_VARIABLE) == pytest.approx(DFT_SHIFT * len(atoms))
        lmp.command('run 10')
        step = lmp.extract_global('ntimestep')
    finally:
        lmp.close()
    stop = mlmd.parse_stop((tmp_path / 'log.lammps').read_text())
    assert stop['stop_reason'] == 'energy_runaway' and stop['stop_step'] == step == 4, stop['message']
    assert stop['value'] == (1e300 if bad != bad else pytest.approx(abs(bad) / len(atoms)))
