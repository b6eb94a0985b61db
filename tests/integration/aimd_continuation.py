"""The CP2K AIMD (``Cp2kAimdWorkChain``) of the SLURM walltime test (``test_slurm_faults.py``, which runs it alongside
its exploration and GAP MD and checks it here): 8 NaCl ions, the ``fast`` CP2K protocol, 1 rank, 4 steps of 1 fs at
1000 K (the case of ``test_cp2k_workflows.py``), a checkpoint every step.

The designed path: the job's scheduler walltime T = 110 s gives CP2K its own ``GLOBAL/WALLTIME`` of
min(0.9 T, T - 60 s) = 50 s (``science.cp2k.job_parameters``), below the scheduler's, and CP2K stops itself there
(exit 400, ``MD run terminated - exceeded requested execution time``); the wrapper continues from its last
checkpoint with 4 x T = 440 s (CP2K WALLTIME 380 s), which runs the steps left. So that the first job reaches its
WALLTIME with a checkpoint whatever the machine's speed, without computing for 50 s, a watcher in its job script
(as for the exploration and the GAP MD of the same test) stops CP2K (SIGSTOP) once it has written the checkpoint
of step 1 and lets it go on (SIGCONT) when the job has run 3 s longer than CP2K's WALLTIME: CP2K then finds its
time up in the next SCF and stops itself. The 50 s are the margin: CP2K must write the checkpoint of step 1 before
its WALLTIME (in CI 10-15 s, beside the exploration and the GAP MD; with the 2 cores at a load average of 10-14 a
CP2K with a 20 s WALLTIME wrote none, one with 60 s finished step 0 only after about 60 s, so this test needs a
machine that is not shared with other heavy jobs; 90 s would hold there but would cost CI 40 s more).
"""

from __future__ import annotations

import numpy as np
from aiida import orm

from aiida_mlfail.science import cp2k as cp2k_science

#: The AIMD of the walltime test: scheduler walltime (s) of the first job, CP2K's WALLTIME from it (s), the walltime
#: factor of the restart, MD steps.
AIMD_WALLTIME_S = 110
AIMD_CP2K_WALLTIME_S = 50
AIMD_WALLTIME_FACTOR = 4.0
AIMD_STEPS = 4


def aimd_builder(code, marker, options: dict | None = None):
    """A ``Cp2kAimdWorkChain`` builder (``fast`` protocol) of 8 NaCl ions: :data:`AIMD_STEPS` steps of 1 fs at 1000 K,
    first job :data:`AIMD_WALLTIME_S` s, continuations :data:`AIMD_WALLTIME_FACTOR` x that; ``options`` merged
    into the job options.

    The first job only (it creates ``marker``, a path outside the job folders; the continuation finds it) starts a
    watcher that stops ``cp2k.psmp`` (the job shell's child) once the checkpoint of step 1 or later exists and lets
    it go on 3 s after CP2K's WALLTIME (counted from the job script's start, just before CP2K's).
    """
    from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain
    from tests.fixtures.cp2k import make_fixtures

    cp2k = '$(pgrep -P $$ -f cp2k.psmp)'
    watcher = (f'if [ ! -e {marker} ]; then touch {marker}; t0=$(date +%s); '
               f"( until grep -Eq 'STEP_START_VAL +[1-9]' {cp2k_science.AIMD_RESTART_FILE} 2>/dev/null "
               '|| ! kill -0 $$ 2>/dev/null; '
               f'do sleep 0.1; done; kill -STOP {cp2k}; '
               f'while [ $(( $(date +%s) - t0 )) -le {AIMD_CP2K_WALLTIME_S + 3} ]; do sleep 0.5; done; '
               f'kill -CONT {cp2k} ) & fi')
    return Cp2kAimdWorkChain.get_builder_from_protocol(
        code, make_fixtures.nacl8(), protocol='fast',
        overrides={'temperature': 1000.0, 'steps': AIMD_STEPS, 'timestep': 1.0,
                   'restart': {'walltime_factor': AIMD_WALLTIME_FACTOR}},
        options={'max_wallclock_seconds': AIMD_WALLTIME_S, 'prepend_text': watcher, **(options or {})})


def check_aimd_continued(node, reports):
    """The AIMD of the walltime test: the first job stopped by CP2K at its own WALLTIME (below the scheduler's, not
    killed), the second given 4 x the walltime and continued from CP2K's restart file (``EXT_RESTART`` in the first
    job's remote folder) with only the steps left; the trajectory covers steps 0 .. N once. ``reports``: the report
    text of a node. Returns the checkpoint step the second job continued from."""
    jobs = sorted((n for n in node.called if isinstance(n, orm.CalcJobNode)), key=lambda n: n.pk)
    assert node.is_finished_ok, (f'[{node.exit_status}] {node.exit_message}: '
                                 + '; '.join(f'[{j.exit_status}] {j.exit_message}' for j in jobs) + reports(node))
    first, second = jobs
    # CP2K stopped itself at its WALLTIME (400), below the scheduler's: SLURM did not kill it
    assert first.exit_status == 400 and second.is_finished_ok, [(j.exit_status, j.exit_message) for j in jobs]
    output = first.outputs.retrieved.base.repository.get_object_content('aiida.out')
    assert 'MD run terminated - exceeded requested execution time' in output
    assert 'DUE TO TIME LIMIT' not in first.get_scheduler_stderr().upper()
    raised = int(AIMD_WALLTIME_S * AIMD_WALLTIME_FACTOR)
    assert [j.get_option('max_wallclock_seconds') for j in jobs] == [AIMD_WALLTIME_S, raised]
    assert '#SBATCH --time=00:07:20' in second.base.repository.get_object_content('_aiidasubmit.sh')
    cp2k_walltimes = [j.inputs.parameters['GLOBAL']['WALLTIME'] for j in jobs]
    assert cp2k_walltimes == [AIMD_CP2K_WALLTIME_S, raised - 60]  # min(0.9 T, T - 60 s)

    # the second job continued from the first one's restart file, with the steps left
    checkpoint = cp2k_science.restart_step(
        first.outputs.retrieved.base.repository.get_object_content(cp2k_science.AIMD_RESTART_FILE))
    assert 1 <= checkpoint < AIMD_STEPS
    restart = f'{cp2k_science.PARENT_FOLDER}/{cp2k_science.AIMD_RESTART_FILE}'
    assert (f'ran out of walltime ({AIMD_WALLTIME_S} s): restarting with {raised} s (CP2K WALLTIME {raised - 60} s), '
            f'continuing from the checkpoint of step {checkpoint} of {AIMD_STEPS} of Cp2kCalculation<{first.pk}> '
            f'({restart}) for the {AIMD_STEPS - checkpoint} steps left') in reports(node)
    assert 'EXT_RESTART' not in first.inputs.parameters.get_dict()
    assert second.inputs.parameters['EXT_RESTART'] == {'RESTART_FILE_NAME': restart}
    assert second.inputs.parameters['MOTION']['MD']['STEPS'] == AIMD_STEPS - checkpoint
    assert second.inputs.parent_calc_folder.uuid == first.outputs.remote_folder.uuid
    # the second job ran only the steps after the checkpoint (CP2K's energy file: one row per MD step)
    energies = cp2k_science.AIMD_FILES['energies']
    second_steps = np.loadtxt(second.outputs.retrieved.base.repository.get_object_content(energies).splitlines(),
                              ndmin=2)[:, 0].astype(int).tolist()
    assert second_steps == list(range(checkpoint + 1, AIMD_STEPS + 1)), second_steps
    first_steps = np.loadtxt(first.outputs.retrieved.base.repository.get_object_content(energies).splitlines(),
                             ndmin=2)[:, 0].astype(int).tolist()
    assert first_steps[0] == 0 and first_steps[-1] >= checkpoint
    # the whole trajectory, every step once
    steps = [a.info['md_step'] for a in node.outputs.trajectory.get_atoms()]
    assert steps == list(range(AIMD_STEPS + 1)), steps
    return checkpoint
