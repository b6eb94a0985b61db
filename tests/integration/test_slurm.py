"""The profiles and the local one-node SLURM cluster (``scripts/slurm-cluster.sh``).

- the YAMLs of ``profiles/`` load with ``verdi computer setup --config`` / ``verdi profile setup
  --config`` (the SLURM computer, the real-cluster template, the default profile);
- one tiny active-learning run (the case of ``test_active_learning.py``) with every CalcJob on a
  ``core.slurm`` computer, submitted with ``submit()`` to the daemon, its daemon workers killed
  (SIGKILL) in the middle and the daemon restarted: it ends at max_iterations (701) as without SLURM,
  every job ran through SLURM (one SLURM job each, every job kind of the run), no step was submitted
  twice, no configuration labelled twice, one labelling job per added configuration.

The cluster is started by the fixture (idempotent; ``scripts/run-tests.sh`` starts it before the
suite). Where it cannot start, the SLURM tests are skipped with the reason, except in CI
(``CI=true``) where that is a failure.
"""

from __future__ import annotations

import collections
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from aiida import orm
from aiida.common.links import LinkType

from aiida_mlfail.provenance import added_configurations
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlfail.workflows.restart import is_outcome
from tests.conftest import executable
from tests.helpers import stop_daemon
from tests.integration.test_active_learning import al_inputs

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROFILES = ROOT / 'profiles'
CLUSTER_SCRIPT = ROOT / 'scripts' / 'slurm-cluster.sh'
VERDI = str(pathlib.Path(sys.executable).parent / 'verdi')


def verdi(profile, *args, env=None, check=True):
    """Run ``verdi -p <profile> ...`` in a subprocess (the command a user runs); returns stdout."""
    command = [VERDI] + (['-p', profile.name] if profile is not None else []) + [str(a) for a in args]
    result = subprocess.run(command, capture_output=True, text=True, env=env or os.environ.copy(), timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f'{" ".join(command)} failed [{result.returncode}]:\n{result.stdout}\n{result.stderr}')
    return result.stdout


# --- the YAMLs ------------------------------------------------------------------------------------

def test_computer_yamls_load_with_verdi_computer_setup(aiida_profile, tmp_path):
    """The SLURM computer (setup + configure) and the real-cluster template (setup only: configure
    needs the key file it names) from ``profiles/`` in the test profile."""
    label = f'slurm-{uuid.uuid4().hex[:8]}'
    verdi(aiida_profile, 'computer', 'setup', '-n', '--config', PROFILES / 'computer-slurm.yaml',
          '--label', label, '--work-dir', tmp_path)
    verdi(aiida_profile, 'computer', 'configure', 'core.local', label, '-n',
          '--config', PROFILES / 'computer-slurm-configure.yaml')
    slurm = orm.load_computer(label)
    spec = yaml.safe_load((PROFILES / 'computer-slurm.yaml').read_text())
    assert (slurm.scheduler_type, slurm.transport_type) == ('core.slurm', 'core.local')
    assert slurm.get_mpirun_command() == spec['mpirun_command'].split()
    assert slurm.get_default_mpiprocs_per_machine() == spec['mpiprocs_per_machine']
    assert slurm.get_workdir() == str(tmp_path)
    assert slurm.is_configured

    cluster_label = f'cluster-{uuid.uuid4().hex[:8]}'
    verdi(aiida_profile, 'computer', 'setup', '-n', '--config', PROFILES / 'computer-cluster-template.yaml',
          '--label', cluster_label)
    cluster = orm.load_computer(cluster_label)
    template = yaml.safe_load((PROFILES / 'computer-cluster-template.yaml').read_text())
    assert (cluster.scheduler_type, cluster.transport_type) == ('core.slurm', 'core.ssh')
    assert cluster.hostname == template['hostname'] and cluster.get_mpirun_command() == ['srun']
    assert cluster.get_default_memory_per_machine() == template['default_memory_per_machine']
    prepend = cluster.get_prepend_text()
    assert prepend.startswith('#SBATCH --partition=') and '#SBATCH --account=' in prepend and 'module load' in prepend
    assert not cluster.is_configured


@pytest.mark.parametrize('filename, transport', [
    ('computer-localhost-configure.yaml', 'core.local'),
    ('computer-slurm-configure.yaml', 'core.local'),
    ('computer-cluster-template-configure.yaml', 'core.ssh'),
])
def test_configure_yamls_hold_only_options_of_verdi_computer_configure(filename, transport):
    from aiida.cmdline.commands.cmd_computer import computer_configure

    command = computer_configure.get_command(None, transport)
    keys = set(yaml.safe_load((PROFILES / filename).read_text()))
    assert keys <= {p.name for p in command.params}, keys - {p.name for p in command.params}
    if transport == 'core.ssh':
        assert 'password' not in ''.join(keys) and {'username', 'key_filename'} <= keys


@pytest.mark.parametrize('filename, storage', [('profile-default.yaml', 'core.sqlite_dos'),
                                               ('profile-production.yaml', 'core.psql_dos')])
def test_profile_yamls_hold_only_options_of_verdi_profile_setup(filename, storage):
    from aiida.cmdline.commands.cmd_profile import profile_setup

    spec = yaml.safe_load((PROFILES / filename).read_text())
    names = {p.name for p in profile_setup.get_command(None, storage).params}
    assert set(spec) <= names, set(spec) - names
    assert 'database_password' not in spec  # given on the command line from the environment


def test_default_profile_yaml_creates_a_profile(tmp_path):
    """``verdi profile setup core.sqlite_dos --config profiles/profile-default.yaml`` in a scratch
    AIIDA_PATH: SQLite storage and the ZeroMQ broker."""
    env = dict(os.environ, AIIDA_PATH=str(tmp_path))
    verdi(None, 'profile', 'setup', 'core.sqlite_dos', '-n', '--config', PROFILES / 'profile-default.yaml',
          '--profile-name', 'recipe', '--filepath', tmp_path / 'storage', env=env)
    shown = verdi(None, 'profile', 'show', 'recipe', env=env)
    assert 'core.sqlite_dos' in shown and 'core.zeromq' in shown


# --- the local SLURM cluster ----------------------------------------------------------------------

@pytest.fixture(scope='module')
def slurm_cluster():
    """The local cluster, started (idempotently) by ``scripts/slurm-cluster.sh start``."""
    result = subprocess.run(['bash', str(CLUSTER_SCRIPT), 'start'], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        reason = f'local SLURM cluster does not start: {(result.stderr or result.stdout).strip()}'
        if os.environ.get('CI') == 'true':
            pytest.fail(f'{reason} (CI=true: the SLURM tests must run)')
        pytest.skip(reason)
    conf = ROOT / '.slurm' / 'slurm.conf'
    if not os.environ.get('SLURM_CONF') and conf.exists():
        os.environ['SLURM_CONF'] = str(conf)  # for sbatch/squeue of a daemon started from here
    return result.stdout


@pytest.fixture
def slurm_computer(slurm_cluster, aiida_computer):
    """A ``core.slurm`` computer over ``core.local`` in the test profile, polling squeue every second."""
    computer = aiida_computer(label='slurm-test', scheduler_type='core.slurm', transport_type='core.local',
                              configuration_kwargs={'safe_interval': 0.0, 'use_login_shell': False})
    computer.set_minimum_job_poll_interval(1.0)
    return computer


@pytest.fixture
def slurm_codes(slurm_computer, aiida_code_installed):
    """lammps, gap_fit, quip, explore on the SLURM computer (labels distinct from the localhost codes)."""
    def code(name, plugin, exe):
        return aiida_code_installed(label=f'{name}-slurm', default_calc_job_plugin=plugin, computer=slurm_computer,
                                    filepath_executable=executable(exe))
    return (code('lammps', 'mlfail.lammps', 'mlfail-lmp'), code('gap_fit', 'mlfail.gap_fit', 'gap_fit'),
            code('quip', 'mlfail.quip', 'mlfail-quip'), code('explore', 'mlfail.explore', 'mlfail-explore'))


def test_slurm_computer_from_yaml_passes_verdi_computer_test(slurm_cluster, aiida_profile, tmp_path):
    label = f'slurm-{uuid.uuid4().hex[:8]}'
    verdi(aiida_profile, 'computer', 'setup', '-n', '--config', PROFILES / 'computer-slurm.yaml',
          '--label', label, '--work-dir', tmp_path)
    verdi(aiida_profile, 'computer', 'configure', 'core.local', label, '-n',
          '--config', PROFILES / 'computer-slurm-configure.yaml')
    out = verdi(aiida_profile, 'computer', 'test', label)
    assert 'jobs found in the queue' in out


def calcjobs(workchain) -> list:
    return [n for n in workchain.called_descendants if isinstance(n, orm.CalcJobNode)]


def assert_ran_through_slurm(workchain, computer):
    """Every CalcJob of the run: on the SLURM computer, with a SLURM job id and an #SBATCH script, finished."""
    jobs = calcjobs(workchain)
    assert jobs
    for job in jobs:
        assert job.computer.uuid == computer.uuid, job.pk
        assert job.computer.scheduler_type == 'core.slurm'
        assert (job.get_job_id() or '').isdigit(), f'{job.process_label}<{job.pk}> has no SLURM job id'
        script = job.base.repository.get_object_content('_aiidasubmit.sh')
        assert '#SBATCH --no-requeue' in script and '#SBATCH --ntasks-per-node=1' in script
        # finished OK, or (explorer) stopped by a guard / lost atoms (ExploreRestartWorkChain.STOP_LABELS)
        assert is_outcome(job), f'{job.process_label}<{job.pk}> [{job.exit_status}] {job.exit_message}'
    return jobs


def _in_slurm(jobs) -> list:
    """The jobs submitted to SLURM (job id set) and not finished."""
    return [job for job in jobs if isinstance(job, orm.CalcJobNode) and job.get_job_id() and not job.is_terminated]


def test_active_learning_through_slurm_survives_killed_daemon_workers(
        submit_and_await, started_daemon_client, slurm_computer, slurm_codes):
    """The tiny active learning (``al_inputs``) with every CalcJob on the SLURM computer, its daemon workers
    killed (SIGKILL) while a job of the run is in SLURM and the daemon restarted: the run ends as the same
    inputs end without SLURM (701, max_iterations, as in ``test_active_learning.py``); every job ran through
    SLURM (one SLURM job each); no step was submitted twice and no configuration labelled twice."""
    from aiida.engine import submit

    client = started_daemon_client
    start = time.monotonic()
    node = submit(ActiveLearningWorkChain, **al_inputs(*slurm_codes))

    # the middle of the run: the labelling job of iteration 1 is in SLURM; if it ran too fast to be
    # caught, the next job of the run that is in SLURM (prediction of the labelled configurations, refit)
    deadline, in_slurm, labelling_started = time.monotonic() + 600, [], False
    while time.monotonic() < deadline and not node.is_terminated:
        labellings = [n for n in node.called if n.process_label == 'LabelWorkChain' and 'structures' in n.inputs]
        labelling_started = labelling_started or bool(labellings)
        in_slurm = _in_slurm(job for label in labellings for job in label.called_descendants)
        if not in_slurm and labelling_started:
            in_slurm = _in_slurm(calcjobs(node))
        if in_slurm:
            break
        time.sleep(0.2)
    assert not node.is_terminated, f'the run ended before the kill: [{node.exit_status}] {node.exit_message}'
    assert in_slurm, 'no job of the run in SLURM after the labelling started, within 600 s'
    killed_during = [f'{job.process_label}<{job.pk}> (SLURM job {job.get_job_id()})' for job in in_slurm]

    pids = [int(pid) for pid in client.get_worker_info()['info']]
    assert pids, 'no daemon worker to kill'
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not any(pathlib.Path(f'/proc/{pid}').exists() for pid in pids):
            break
        time.sleep(0.1)
    stop_daemon(client)
    client.start_daemon(timeout=120)
    assert client.is_daemon_running
    print(f'killed workers {pids} while in SLURM: {killed_during}')

    node = submit_and_await(node, timeout=900)
    # two iterations, the second refit still flagged: the max_iterations limit ends it (measured: 701)
    assert node.exit_status == 701, f'[{node.exit_status}] {node.exit_message}'
    assert node.outputs.summary['outcome'] == 'max_iterations'
    jobs = assert_ran_through_slurm(node, slurm_computer)
    kinds = collections.Counter(job.process_label for job in jobs)
    assert {'LammpsCalculation', 'GapFitCalculation', 'QuipPredictCalculation', 'ExploreCalculation'} <= set(kinds)
    assert len({job.get_job_id() for job in jobs}) == len(jobs)  # one SLURM job each
    rows = node.outputs.summary['iterations']
    assert [r['iteration'] for r in rows] == [1, 2]
    assert rows[0]['stop_reason'] == 'novel' and rows[0]['added'] >= 1

    # no step submitted twice: one child per call link label of every workflow in the run
    for workflow in [node] + [n for n in node.called_descendants if isinstance(n, orm.WorkflowNode)]:
        links = collections.Counter(link.link_label for link in workflow.base.links.get_outgoing(
            link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all())
        doubled = {label: n for label, n in links.items() if n > 1 and label != 'CALL'}
        assert not doubled, f'{workflow.process_label}<{workflow.pk}> called twice: {doubled}'

    # no configuration labelled twice: the labelled structures of all LabelWorkChains are distinct
    # (the labelling of the sampled initial frames, `label_initial`, labels configurations, not structures)
    labellings = sorted((n for n in node.called if n.process_label == 'LabelWorkChain'
                         and 'structures' in n.inputs), key=lambda n: n.pk)
    assert labellings
    labelled = [s.uuid for label in labellings for s in label.inputs.structures.values()]
    assert len(labelled) == len(set(labelled)), 'a configuration was labelled twice'

    # one LAMMPS labelling job per LabelWorkChain (not resubmitted after the kill), which labels each
    # of its structures once (the trigger and, when the explorer has one, the previous configuration)
    labelling_jobs = []
    for label in labellings:
        jobs_of_label = [j for j in label.called_descendants if isinstance(j, orm.CalcJobNode)]
        assert len(jobs_of_label) == 1, f'LabelWorkChain<{label.pk}> ran {len(jobs_of_label)} jobs'
        assert jobs_of_label[0].outputs.training_set.n_configurations == len(label.inputs.structures)
        labelling_jobs += jobs_of_label

    # the added configurations: as many as the configurations the labelling jobs labelled (none is
    # rejected in this case), each traced to the one labelling job that labelled it
    records = added_configurations(node)
    assert all(r['rejected'] == 0 for r in rows)
    assert len(records) == sum(r['added'] for r in rows)
    assert len(records) == sum(job.outputs.training_set.n_configurations for job in labelling_jobs) == len(labelled)
    assert sorted(r['structure'].uuid for r in records) == sorted(labelled)
    assert all(len(r['labelling_jobs']) == 1 for r in records)
    per_job = collections.Counter(r['labelling_jobs'][0].pk for r in records)
    assert per_job == {job.pk: job.outputs.training_set.n_configurations for job in labelling_jobs}
    first_fit = min((n for n in node.called if n.process_label == 'GapWorkChain'), key=lambda n: n.pk)
    assert node.outputs.training_set.n_configurations == first_fit.outputs.training_set.n_configurations + len(records)
    print(f'active learning through SLURM, workers killed during {killed_during}: {len(jobs)} jobs {dict(kinds)}, '
          f'{len(labellings)} labellings, {len(labelling_jobs)} labelling jobs, {len(records)} added, '
          f'{time.monotonic() - start:.0f} s')
