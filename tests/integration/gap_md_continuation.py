"""The GAP MD (``MLMDWorkChain``) of the SLURM walltime test (``test_slurm_faults.py``, which runs it alongside its
exploration and checks it here): 8 ions, the tiny GAP of ``tests/fixtures/bridge``, 120 steps, a checkpoint every
40; killed by SLURM at its walltime, it continues from its LAMMPS checkpoint (real daemon, real ``mlfail-lmp``).
"""

from __future__ import annotations

import numpy as np
from aiida import orm

#: The GAP MD of the walltime test (``MLMDWorkChain``): the same 8 ions and tiny GAP, NVT at 300 K, 120 steps of 1 fs
#: (the tiny GAP heats the crystal up: with 2 fs the temperature guard stops it at step 65, continued or not), a
#: checkpoint every 40.
GAP_MD = {'ensemble': 'NVT', 'temperature': 300.0, 'timestep': 1.0, 'steps': 120, 'dump_interval': 10,
          'thermo_interval': 10, 'checkpoint_interval': 40}


def gap_md_builder(code, marker, walltime_s: int, options: dict | None = None):
    """An ``MLMDWorkChain`` builder (:data:`GAP_MD`) whose first job stops after its first checkpoint.

    As ``test_slurm_faults.exploration_job``: a watcher in the first job's script (``marker``, a path outside the
    job folders) waits for the frame of step 50 in the dump (written after the restart file of step 40 is
    complete: LAMMPS writes a step's dump, then its restart file), then sends SIGSTOP to ``mlfail-lmp`` (the job
    shell's child), so that SLURM kills the job at its walltime with a checkpoint at step 40 or later.
    """
    from ase.build import bulk

    from aiida_mlfail.data.gap_potential import GapPotentialData
    from aiida_mlfail.workflows.mlmd import MLMDWorkChain
    from tests.helpers import FIXTURES

    action = 'kill -STOP $(pgrep -P $$ -f mlfail-lmp)'
    watcher = (f'if [ ! -e {marker} ]; then touch {marker}; '
               f'( until grep -qx 50 frames.dump 2>/dev/null || ! kill -0 $$ 2>/dev/null; do sleep 0.1; done; '
               f'{action} ) & fi')
    return MLMDWorkChain.get_builder_from_protocol(
        code, GapPotentialData.from_folder(FIXTURES / 'bridge'), bulk('NaCl', 'rocksalt', a=5.64, cubic=True),
        overrides={'parameters': GAP_MD, 'md': {'restart': {'walltime_factor': 4.0}}},
        options={'max_wallclock_seconds': walltime_s, 'prepend_text': watcher, **(options or {})})


def check_gap_md_continued(node, reports, tmp_path, walltimes=(60, 240)):
    """The GAP MD of the walltime test: its first job killed by SLURM after a checkpoint, the second continued
    from it (``parent_folder``, only the restart file and start energy copied, ``read_restart``, only the steps
    after it) to step 120; the MLMDWorkChain's trajectory and thermo cover the whole run once. ``reports``: the
    report text of a node; ``tmp_path``: a folder for the remote files read back. Returns the checkpoint step the
    second job continued from."""
    md = next(n for n in node.called if n.process_label == 'LammpsRestartWorkChain')
    jobs = sorted(md.called_descendants, key=lambda n: n.pk)
    jobs = [j for j in jobs if isinstance(j, orm.CalcJobNode)]
    assert node.is_finished_ok, (f'[{node.exit_status}] {node.exit_message}: '
                                 + '; '.join(f'[{j.exit_status}] {j.exit_message}' for j in jobs))
    first, second = jobs
    assert first.exit_status == 305 and second.is_finished_ok  # output cut by the kill
    assert 'DUE TO TIME LIMIT' in first.get_scheduler_stderr().upper()
    assert [j.get_option('max_wallclock_seconds') for j in jobs] == list(walltimes)
    assert second.inputs.parent_folder.uuid == first.outputs.remote_folder.uuid
    checkpoint = second.inputs.settings['restart_step']
    assert checkpoint % 40 == 0 and 40 <= checkpoint < GAP_MD['steps']
    assert (f'ran out of walltime ({walltimes[0]} s): restarting with {walltimes[1]} s, continuing from the checkpoint '
            f'at step {checkpoint} of LammpsCalculation<{first.pk}>') in reports(md)
    from aiida_mlfail.science.checkpoints import CHECKPOINT_DIR, ENERGY_START_FILE, restart_file

    assert f'read_restart {restart_file(checkpoint, 40)}' in second.inputs.script.get_content()
    # two restart files however many checkpoints (LAMMPS toggles between them): the first job's folder holds the one
    # continued from (and the next one if it got that far); the second job, which copied only that file and the
    # start energy, wrote 80 and 120 (or 120) into the two files
    restarts = sorted(name for name in first.outputs.remote_folder.listdir(CHECKPOINT_DIR) if name.endswith('.restart'))
    assert restart_file(checkpoint, 40).split('/')[-1] in restarts and len(restarts) <= 2
    assert sorted(second.outputs.remote_folder.listdir(CHECKPOINT_DIR)) == \
        ['energy_start.txt', 'lammps.even.restart', 'lammps.odd.restart']
    energies = []
    for job in (first, second):
        job.outputs.remote_folder.getfile(ENERGY_START_FILE, str(tmp_path / f'energy_start_{job.pk}'))
        energies.append((tmp_path / f'energy_start_{job.pk}').read_text())
    assert energies[0] == energies[1] and float(energies[0]) < 0  # copied, not recomputed
    # the second job ran only the steps after the checkpoint
    assert second.outputs.thermo.get_array('step')[0] == checkpoint
    assert node.outputs.stop['stop_reason'] == 'completed' and node.outputs.stop['stop_step'] == 120
    np.testing.assert_array_equal(node.outputs.thermo.get_array('step'), np.arange(0, 121, 10))
    steps = [a.info['md_step'] for a in node.outputs.trajectory.get_atoms()]
    assert steps == list(range(0, 121, 10))
    return checkpoint


def reports(node) -> str:
    return '\n'.join(log.message for log in orm.Log.collection.get_logs_for(node))
