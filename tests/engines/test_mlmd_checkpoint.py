"""GAP-MD checkpoints (``science.mlmd`` ``checkpoint_commands`` / ``continuation_script`` / ``join_segments``)
on real runs of the tiny NaCl GAP through ``mlfail-lmp`` (no AiiDA, no mocks).

An uninterrupted run of 60 steps with a checkpoint every 20 steps is compared with the same run continued
from its checkpoint at step 20 in a fresh folder (only ``checkpoint/`` copied, as ``parent_folder`` does):
the joined frames and thermo must be those of the uninterrupted run, with no repeated step.
"""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest
from ase.io import write

from aiida_mlfail.engines.lmp import main as lmp_main
from aiida_mlfail.science import lammps_md, mlmd
from tests.engines.test_explore_engine import BRIDGE, PAIR_COMMANDS, crystal

STEPS, INTERVAL = 60, 20
MLMD = {'temperature': 600.0, 'steps': STEPS, 'dump_interval': 10, 'thermo_interval': 10,
        'checkpoint_interval': INTERVAL}


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


def test_checkpoints_are_written_every_interval_with_the_start_energy(whole_run):
    directory, _, result = whole_run
    assert result['stop']['stop_reason'] == 'completed'
    names = sorted(p.name for p in (directory / mlmd.CHECKPOINT_DIR).iterdir())
    assert names == ['energy_start.txt', 'lammps.20.restart', 'lammps.40.restart', 'lammps.60.restart']
    start = float((directory / mlmd.ENERGY_START_FILE).read_text())
    assert start == pytest.approx(result['thermo']['potential_energy'][0], abs=1e-6)


def test_a_continuation_joins_into_the_uninterrupted_run(whole_run, tmp_path, monkeypatch):
    directory, script, whole = whole_run
    shutil.copytree(directory / mlmd.CHECKPOINT_DIR, tmp_path / mlmd.CHECKPOINT_DIR)
    (tmp_path / mlmd.restart_file(40)).unlink()  # checkpoints the killed job never wrote
    (tmp_path / mlmd.restart_file(60)).unlink()
    continued = run(tmp_path, monkeypatch, mlmd.continuation_script(script, INTERVAL))
    assert 'read_restart checkpoint/lammps.20.restart' in continued['log']
    assert continued['stop']['stop_reason'] == 'completed' and continued['stop']['stop_step'] == STEPS
    assert continued['thermo']['step'][0] == INTERVAL
    # a frame at the checkpoint step too (labelled: fix print prints at the set-up step): join_segments drops it
    assert [a.info['md_step'] for a in continued['frames']] == list(range(INTERVAL, STEPS + 1, 10))
    # the energy guard's start energy is that of the whole run (step 0), not of the checkpoint configuration
    start = float((directory / mlmd.ENERGY_START_FILE).read_text())
    assert f'variable energy_start equal {(tmp_path / mlmd.ENERGY_START_FILE).read_text().strip()}' in continued['log']
    assert start != pytest.approx(continued['thermo']['potential_energy'][0], abs=1e-6)
    # the new job writes the next checkpoints into the same folder
    assert (tmp_path / mlmd.restart_file(40)).exists() and (tmp_path / mlmd.restart_file(60)).exists()

    killed = [(a.info['md_step'], a) for a in whole['frames'] if a.info['md_step'] <= 30]  # killed at step ~35
    frames = mlmd.join_segments([killed, [(a.info['md_step'], a) for a in continued['frames']]], [INTERVAL])
    assert [a.info['md_step'] for a in frames] == [a.info['md_step'] for a in whole['frames']]
    difference = max(np.abs(a.positions - b.positions).max() for a, b in zip(frames, whole['frames']))
    print(f'largest position difference continued vs uninterrupted: {difference:.3g} Å')
    assert difference < 1e-6
    rows = [[(s, i) for i, s in enumerate(t['step'])] for t in (whole['thermo'], continued['thermo'])]
    joined = mlmd.join_segments(rows, [INTERVAL])
    assert len(joined) == len(whole['thermo']['step'])
    energies = np.concatenate([whole['thermo']['potential_energy'][[i for s, i in rows[0] if s <= INTERVAL]],
                               continued['thermo']['potential_energy'][[i for s, i in rows[1] if s > INTERVAL]]])
    np.testing.assert_allclose(energies, whole['thermo']['potential_energy'], atol=1e-6)


def test_continuation_script_and_checkpoint_step():
    p = mlmd.normalise_mlmd({**MLMD, 'steps': 120, 'checkpoint_interval': 40})
    script = mlmd.mlmd_script(PAIR_COMMANDS, ['Na', 'Cl'], p, 8, 180.0)
    assert 'restart 40 checkpoint/lammps.*.restart' in script
    continued = mlmd.continuation_script(script, 80)
    assert 'read_data' not in continued and 'velocity all create' not in continued
    assert 'read_restart checkpoint/lammps.80.restart' in continued and 'run 120 upto' in continued
    assert 'run 0 post no' in continued and 'restart 40 checkpoint/lammps.*.restart' in continued
    assert 'variable energy_start equal $(pe)' not in continued
    assert mlmd.continuation_script(continued, 120).replace('120', '80', 1) != continued  # continued again
    assert 'read_restart checkpoint/lammps.120.restart' in mlmd.continuation_script(continued, 120)
    off = mlmd.mlmd_script(PAIR_COMMANDS, ['Na', 'Cl'], {**p, 'checkpoint_interval': 0}, 8, 180.0)
    assert 'restart ' not in off and 'checkpoint' not in off
    with pytest.raises(ValueError, match='writes no checkpoint'):
        mlmd.continuation_script(off, 40)
    with pytest.raises(ValueError, match='checkpoint_interval'):
        mlmd.normalise_mlmd({'checkpoint_interval': -1})
    # thermo at step 79 (restart at 40 proven), frames up to 80 (the dump at 80 precedes the restart at 80)
    assert mlmd.checkpoint_step(40, 0, [0, 10, 70, 79], [10, 80]) == 40
    assert mlmd.checkpoint_step(40, 0, [0, 80], [80]) == 80
    assert mlmd.checkpoint_step(40, 0, [0, 30], []) is None
    assert mlmd.checkpoint_step(40, 40, [40, 60], [50]) == 40  # no new one: the one it continued from
    assert mlmd.checkpoint_step(0, 0, [0, 500], []) is None
    assert mlmd.join_segments([[(1, 'a'), (2, 'b')], [(2, 'x'), (3, 'c')]], [2]) == ['a', 'b', 'c']
    with pytest.raises(ValueError, match='need 1 checkpoint'):
        mlmd.join_segments([[], []], [])
