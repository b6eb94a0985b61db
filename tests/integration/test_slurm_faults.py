"""Faults HPC users meet, injected into real jobs on the local SLURM cluster; the restart logic repairs them.

- a job cancelled with ``scancel`` while it runs: resubmitted unchanged, the workflow completes;
- a job that exceeds its walltime (SLURM kills it: ``CANCELLED ... DUE TO TIME LIMIT``): restarted
  with more walltime, the workflow completes;
- gap_fit out of memory (forced with a 1 kB limit): retried with the dryrun estimate x 1.3 as
  ``--mem``, the change recorded in the retry's inputs and the report.

The LAMMPS jobs are real BMHTF runs of 64 ions followed by a loop of ``shell sleep 0.5`` (LAMMPS's
own ``shell`` command), so that their wall time is known without burning CPU in CI. Only the first job of
a test sleeps (a marker file tells the restarted one), so a restart costs seconds, not the sleep again.
"""

from __future__ import annotations

import io
import subprocess
import time

import pytest
from aiida import orm
from aiida.engine import submit

from aiida_mlfail.calculations.functions import prepare_sampling
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.resources import scheduler_options
from aiida_mlfail.workflows.restart import GapFitRestartWorkChain, LammpsRestartWorkChain
from tests.helpers import nacl_configurations
from tests.integration.test_slurm import slurm_cluster, slurm_codes, slurm_computer  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


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


def test_a_job_over_its_walltime_is_restarted_with_more(started_daemon_client, slurm_codes, tmp_path):
    lammps = slurm_codes[0]
    node = submit(LammpsRestartWorkChain, job=lammps_job(lammps, sleep_s=150, marker=tmp_path / 'slept',
                                                         walltime_s=60),
                  restart=orm.Dict({'walltime_factor': 4.0}))
    wait_terminated(node, 900)
    assert node.is_finished_ok, f'[{node.exit_status}] {node.exit_message}'
    jobs = sorted(node.called, key=lambda n: n.pk)
    # killed by SLURM: the parser sees an output cut short (305, which AiiDA keeps over the scheduler's 120)
    assert [j.exit_status for j in jobs] == [305, 0]
    assert (tmp_path / 'slept.rerun').exists()  # the second job ran the same inputs (and skipped the sleep)
    assert 'DUE TO TIME LIMIT' in jobs[0].get_scheduler_stderr().upper()
    assert [j.get_option('max_wallclock_seconds') for j in jobs] == [60, 240]
    assert '#SBATCH --time=00:04:00' in jobs[1].base.repository.get_object_content('_aiidasubmit.sh')
    assert 'ran out of walltime (60 s): restarting with 240 s' in reports(node)


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
