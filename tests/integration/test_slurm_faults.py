"""Faults HPC users meet, injected into real jobs on the local SLURM cluster; the restart logic repairs them.

- a job cancelled with ``scancel`` while it runs: resubmitted unchanged, the workflow completes;
- an exploration that exceeds its walltime (SLURM kills it: ``CANCELLED ... DUE TO TIME LIMIT``): restarted
  with more walltime from its last checkpoint (the previous job's remote folder as ``parent_folder``), it reaches
  ``max_steps`` with one continuous similarity series; a GAP MD (``MLMDWorkChain``) killed alongside continues
  from its LAMMPS restart file the same way, its trajectory and thermo covering the whole run once; a CP2K AIMD
  (``Cp2kAimdWorkChain``) alongside stops itself at CP2K's own ``GLOBAL/WALLTIME`` below the scheduler's and
  continues, with more walltime, from CP2K's restart file (``EXT_RESTART``), every MD step once;
- gap_fit out of memory (forced with a 1 kB limit): retried with the dryrun estimate x 1.3 as
  ``--mem``, the change recorded in the retry's inputs and the report.

The LAMMPS job is a real BMHTF run of 64 ions followed by a loop of ``shell sleep 0.5`` (LAMMPS's
own ``shell`` command), and the exploration is stopped (SIGSTOP) after its first checkpoint, so that their
wall time is known without burning CPU in CI. Only the first job of a test sleeps or stops (a marker file
tells the restarted one), so a restart costs seconds, not the wait again. The jobs of the walltime test ask
``sbatch --oversubscribe`` (:data:`SHARE_CPUS`; the cluster's partition has ``OverSubscribe=YES``): the two
stopped jobs idle on the CPUs the AIMD computes on, so the three run at once on a 2-CPU node.
"""

from __future__ import annotations

import io
import subprocess
import time

import numpy as np
import pytest
from aiida import orm
from aiida.engine import submit

from aiida_mlfail.calculations.functions import prepare_sampling
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.resources import scheduler_options
from aiida_mlfail.workflows.restart import ExploreRestartWorkChain, GapFitRestartWorkChain, LammpsRestartWorkChain
from tests.helpers import nacl_configurations
from tests.integration.aimd_continuation import aimd_builder, check_aimd_continued
from tests.integration.gap_md_continuation import check_gap_md_continued, gap_md_builder
from tests.integration.test_slurm import slurm_cluster, slurm_codes, slurm_computer  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

#: Scheduler option of the walltime test's jobs: they may share CPUs with each other (``sbatch --oversubscribe``;
#: the partition of ``scripts/slurm-cluster.sh`` allows it on request): the two stopped ones keep no job waiting.
SHARE_CPUS = {'custom_scheduler_commands': '#SBATCH --oversubscribe'}


def lammps_job(code, sleep_s: int, marker, walltime_s: int = 600) -> dict:
    """Inputs of a short BMHTF NVT run (64 ions) that then sleeps ``sleep_s`` seconds inside LAMMPS.

    Only the first job run from these inputs sleeps: it creates the file ``marker`` (a path outside the
    job folders), and a rerun of the same inputs, which finds it, skips the sleep. So the restarted job,
    whose restart is what the tests check, does not repeat the minutes of waiting.
    """
    from aiida_mlfail.science.structures import molten_nacl

    prepared = prepare_sampling(orm.StructureData(ase=molten_nacl(64, volume=2350.0, seed=1)),
                                orm.Dict({'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1e-4}}),
                                orm.Dict({'temperature': 1400.0, 'volume': 2350.0, 'label': 'fault'}),
                                orm.Dict({'equilibration_steps': 100, 'production_steps': 200,
                                          'sampling_interval': 50}))
    # sleep in half-second pieces: when SLURM's SIGTERM ends one piece, LAMMPS goes on with the next
    # until the SIGKILL that follows (KillWait), like a program busy computing
    script = prepared['script'].get_content() + (
        f'shell test -e {marker} && touch {marker}.rerun || touch {marker}\n'
        f'variable mlfail_i loop {2 * sleep_s}\nlabel mlfail_sleep\nshell test -e {marker}.rerun || sleep 0.5\n'
        'next mlfail_i\njump SELF mlfail_sleep\n')
    return {'code': code, 'script': orm.SinglefileData(io.BytesIO(script.encode()), filename='input.in'),
            'files': {'structure': prepared['structure_file']}, 'settings': prepared['settings'],
            'metadata': {'options': {'max_wallclock_seconds': walltime_s}}}


def wait_for(predicate, timeout: float, what: str):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


def wait_terminated(node, timeout: float):
    wait_for(lambda: node.is_terminated, timeout, f'{node.process_label}<{node.pk}> to terminate')


def running_job(workchain):
    """The first CalcJob of ``workchain`` that SLURM reports as running, or ``None``."""
    for job in workchain.called:
        if isinstance(job, orm.CalcJobNode) and job.get_job_id():
            state = subprocess.run(['squeue', '-h', '-j', job.get_job_id(), '-o', '%T'], capture_output=True,
                                   text=True).stdout.strip()
            if state == 'RUNNING':
                return job
    return None


def reports(node) -> str:
    from aiida.orm import Log

    return '\n'.join(log.message for log in Log.collection.get_logs_for(node))


def test_a_job_cancelled_with_scancel_is_resubmitted(started_daemon_client, slurm_codes, tmp_path):
    lammps = slurm_codes[0]
    node = submit(LammpsRestartWorkChain, job=lammps_job(lammps, sleep_s=20, marker=tmp_path / 'slept'))
    job = wait_for(lambda: running_job(node), 180, 'the LAMMPS job to run in SLURM')
    time.sleep(4)  # into the run (LAMMPS is writing its output), then cancel
    subprocess.run(['scancel', job.get_job_id()], check=True)
    wait_terminated(node, 300)
    jobs = sorted(node.called, key=lambda n: n.pk)
    assert node.is_finished_ok, (f'[{node.exit_status}] {node.exit_message}: '
                                 + '; '.join(f'[{j.exit_status}] {j.exit_message} {j.get_scheduler_stderr()!r}'
                                             for j in jobs))
    assert len(jobs) == 2 and jobs[0].pk == job.pk
    assert 'CANCELLED AT' in jobs[0].get_scheduler_stderr()
    assert jobs[0].exit_status == 305  # output cut short: not mistaken for a finished run
    assert jobs[1].is_finished_ok and jobs[1].get_job_id() != jobs[0].get_job_id()
    assert 'cancelled by the scheduler' in reports(node)
    assert node.outputs.training_set.n_configurations == jobs[1].outputs.training_set.n_configurations


#: The exploration of the walltime test: 8-ion rock salt and the tiny GAP of ``tests/fixtures/bridge`` at 300 K,
#: nothing novel (critical similarity 0.5), checks every 20 steps, a checkpoint every 40.
EXPLORATION = {'temperature': 300.0, 'max_steps': 120, 'comparison_step': 20, 'critical_similarity': 0.5,
               'checkpoint_interval': 40, 'soap': {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}}


def exploration_job(code, marker, walltime_s: int, options: dict | None = None) -> dict:
    """Inputs of an exploration (:data:`EXPLORATION`) whose first job stops itself after its first checkpoint.

    The job script (``prepend_text``) of the first job only (it creates ``marker``, a path outside the job
    folders; the restarted job finds it) starts a watcher that sends SIGSTOP to ``mlfail-explore`` (the job
    shell's child, ``pgrep -P $$``) as soon as ``checkpoint/state.json`` exists: the job then idles, without
    CPU, until SLURM kills it at its walltime, like a long exploration past its first checkpoints.
    """
    from ase.build import bulk

    from aiida_mlfail.data.gap_potential import GapPotentialData
    from tests.helpers import FIXTURES

    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    watcher = (f'if [ ! -e {marker} ]; then touch {marker}; '
               '( while [ ! -e checkpoint/state.json ] && kill -0 $$ 2>/dev/null; do sleep 0.1; done; '
               'kill -STOP $(pgrep -P $$ -f mlfail-explore) ) & fi')
    return {'code': code, 'potential': GapPotentialData.from_folder(FIXTURES / 'bridge'),
            'structure': orm.StructureData(ase=crystal), 'training_set': TrainingSetData.from_atoms([crystal]),
            'parameters': orm.Dict(EXPLORATION),
            'metadata': {'options': {'max_wallclock_seconds': walltime_s, 'prepend_text': watcher, **(options or {})}}}


@pytest.fixture
def slurm_cp2k_code(slurm_computer, aiida_code_installed, cp2k_executable):
    """The Debian ``cp2k.psmp`` on the SLURM computer, serial (1 rank, 1 thread). In CI a missing CP2K fails."""
    return aiida_code_installed(label='cp2k-slurm', default_calc_job_plugin='cp2k', computer=slurm_computer,
                                filepath_executable=cp2k_executable, with_mpi=False,
                                prepend_text='export OMP_NUM_THREADS=1')


def test_exploration_gap_md_and_aimd_over_their_walltime_continue_from_their_checkpoints(
        started_daemon_client, slurm_codes, slurm_cp2k_code, tmp_path):
    """Three long-run jobs at once through SLURM. The exploration: SLURM kills the first job at its 60 s walltime
    after its checkpoint at step 40 (or a later one); the wrapper restarts it with 4 x the walltime and the job's
    remote folder as ``parent_folder``; the second job continues from the checkpoint with ``read_restart`` and
    reaches ``max_steps``: one similarity series and one thermo series over the whole run, steps strictly
    increasing, no gap, no repeat, the steps before the checkpoint not run again. A GAP MD (``MLMDWorkChain``,
    killed at the same 60 s) is checked the same way (:func:`check_gap_md_continued`). A CP2K AIMD
    (``Cp2kAimdWorkChain``, 110 s job) stops itself at CP2K's WALLTIME of 50 s and continues from CP2K's restart
    file with 4 x the walltime (:func:`check_aimd_continued`). The waits overlap."""
    from aiida_mlfail.calculations.explore import STDOUT
    from aiida_mlfail.science import explore as sx

    explore = slurm_codes[3]
    aimd = submit(aimd_builder(slurm_cp2k_code, tmp_path / 'aimd_stopped', options=SHARE_CPUS))
    node = submit(ExploreRestartWorkChain,
                  job=exploration_job(explore, tmp_path / 'stopped', walltime_s=60, options=SHARE_CPUS),
                  restart=orm.Dict({'walltime_factor': 4.0}))
    gap_md = submit(gap_md_builder(slurm_codes[0], tmp_path / 'md_stopped', walltime_s=60, options=SHARE_CPUS))
    wait_terminated(node, 900)
    wait_terminated(gap_md, 600)
    wait_terminated(aimd, 600)
    checkpoint_md = check_gap_md_continued(gap_md, reports, tmp_path)
    checkpoint_aimd = check_aimd_continued(aimd, reports)
    jobs = sorted(node.called, key=lambda n: n.pk)
    assert node.is_finished_ok, (f'[{node.exit_status}] {node.exit_message}: '
                                 + '; '.join(f'[{j.exit_status}] {j.exit_message}' for j in jobs))
    first, second = jobs
    # killed by SLURM: no results (301, which AiiDA keeps over the scheduler's 120), the time limit in its stderr
    assert first.exit_status == 301 and second.is_finished_ok
    assert 'DUE TO TIME LIMIT' in first.get_scheduler_stderr().upper()
    assert [j.get_option('max_wallclock_seconds') for j in jobs] == [60, 240]
    assert '#SBATCH --time=00:04:00' in second.base.repository.get_object_content('_aiidasubmit.sh')
    checkpoint = sx.last_checkpoint_step(first.outputs.retrieved.get_object_content(STDOUT))
    assert checkpoint is not None and checkpoint % 40 == 0 and 40 <= checkpoint < EXPLORATION['max_steps']
    assert (f'ran out of walltime (60 s): restarting with 240 s, continuing from the checkpoint at step {checkpoint} '
            f'of ExploreCalculation<{first.pk}>') in reports(node)
    assert second.inputs.parent_folder.uuid == first.outputs.remote_folder.uuid
    # what the second job copied (the first's checkpoint/): the state and the restart file it names (and the next
    # one if the first job was stopped while writing it); the second job deleted the copied one after its own
    copied = sorted(first.outputs.remote_folder.listdir(sx.CHECKPOINT_DIR))
    assert 'state.json' in copied and f'lammps.{checkpoint}.restart' in copied and len(copied) <= 3
    assert sorted(second.outputs.remote_folder.listdir(sx.CHECKPOINT_DIR)) == ['lammps.120.restart', 'state.json']

    results = node.outputs.results.get_dict()
    assert results['stop_reason'] == 'max_steps' and results['stop_step'] == 120 == results['steps_run']
    assert results['resumed_from'] == [checkpoint]
    similarity = node.outputs.similarity.get_array('step')
    np.testing.assert_array_equal(similarity, np.arange(0, 121, 20))  # increasing, no gap, no repeat
    assert results['n_checks'] == len(similarity) == 7
    thermo = node.outputs.thermo.get_array('step')
    np.testing.assert_array_equal(thermo, np.arange(0, 121, 10))  # thermo_interval 10
    # the second job ran only the steps after the checkpoint: its own checks start after it
    stdout = second.outputs.retrieved.get_object_content(STDOUT)
    assert f'continuing from the checkpoint at step {checkpoint}:' in stdout
    checked = [int(line.split()[1]) for line in stdout.splitlines() if line.startswith('step ')]
    assert checked == list(range(checkpoint + 20, 121, 20))
    print(f'continued from step {checkpoint} (exploration), {checkpoint_md} (GAP MD), {checkpoint_aimd} (AIMD)')


def test_gap_fit_out_of_memory_gets_the_dryrun_estimate_as_mem(started_daemon_client, slurm_codes):
    gap_fit = slurm_codes[1]
    node = submit(GapFitRestartWorkChain, job={
        'code': gap_fit, 'training_set': TrainingSetData.from_atoms(nacl_configurations(3)),
        'parameters': orm.Dict({'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}]}),
        'metadata': {'options': {'max_memory_kb': 1, 'max_wallclock_seconds': 600}}},
        restart=orm.Dict({'on_out_of_memory': 'more_memory'}))
    wait_terminated(node, 300)
    assert node.is_finished_ok, f'[{node.exit_status}] {node.exit_message}'
    first, second = sorted(node.called, key=lambda n: n.pk)
    assert first.exit_status == 430 and second.is_finished_ok
    peak_mb = first.outputs.output_parameters['memory_peak_mb']
    needed_kb = scheduler_options('gap_fit', memory_mb=peak_mb)['max_memory_kb']
    assert second.get_option('max_memory_kb') == needed_kb
    assert f'#SBATCH --mem={needed_kb // 1024}' in second.base.repository.get_object_content('_aiidasubmit.sh')
    assert f'retrying with max_memory_kb 1 -> {needed_kb}' in reports(node)
