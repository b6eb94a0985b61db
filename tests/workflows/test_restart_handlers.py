"""One test per restart handler (the logic, isolated on finished job nodes made for the test)."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from plumpy import ProcessState

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.gap import FIT_DEFAULTS
from aiida_mlfail.workflows.restart import (
    ExploreRestartWorkChain,
    GapFitRestartWorkChain,
    LammpsRestartWorkChain,
    is_outcome,
    normalise_restart,
    was_cancelled,
)
from tests.helpers import nacl_configurations

DESCRIPTORS = [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 20},
               {'type': 'soap', 'n_max': 2, 'l_max': 2, 'atom_sigma': 0.5, 'cutoff': 4.0, 'delta': 0.1, 'zeta': 2,
                'n_sparse': 30}]


def finished_job(computer, entry_point, exit_status, scheduler_stderr=None, **options):
    """A stored, finished CalcJobNode with an exit status and (optionally) a retrieved scheduler stderr."""
    node = orm.CalcJobNode(computer=computer, process_type=f'aiida.calculations:{entry_point}')
    node.set_option('resources', {'num_machines': 1})
    node.set_option('scheduler_stderr', '_scheduler-stderr.txt')
    for key, value in options.items():
        node.set_option(key, value)
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_status)
    node.store()
    if scheduler_stderr is not None:
        retrieved = orm.FolderData()
        retrieved.base.repository.put_object_from_bytes(scheduler_stderr.encode(), '_scheduler-stderr.txt')
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
        retrieved.store()
    return node


@pytest.fixture
def gap_fit_workchain(gap_fit_code):
    def factory(restart=None, **options):
        inputs = {'job': {'code': gap_fit_code, 'training_set': TrainingSetData.from_atoms(nacl_configurations(3)),
                          'parameters': orm.Dict({'descriptors': DESCRIPTORS}),
                          'metadata': {'options': {'max_wallclock_seconds': 600, **options}}}}
        if restart is not None:
            inputs['restart'] = orm.Dict(restart)
        process = instantiate_process(get_manager().get_runner(), GapFitRestartWorkChain, **inputs)
        process.setup()
        return process
    return factory


def test_restart_settings_are_checked():
    assert normalise_restart({})['on_out_of_memory'] == 'reduce_sparse_points'
    with pytest.raises(ValueError, match="got 'swap'"):
        normalise_restart({'on_out_of_memory': 'swap'})
    with pytest.raises(ValueError, match='sparse_factor must be a finite number > 0 and < 1, got 1.5'):
        normalise_restart({'sparse_factor': 1.5})
    with pytest.raises(ValueError, match=r"unknown restart setting key\(s\) \['retries'\]"):
        normalise_restart({'retries': 3})


def test_out_of_memory_reduces_sparse_points(gap_fit_workchain, aiida_localhost):
    process = gap_fit_workchain()
    report = process.handle_out_of_memory(finished_job(aiida_localhost, 'mlfail.gap_fit', 430))
    assert report is not None and report.do_break and report.exit_code.status == 0
    assert [d['n_sparse'] for d in process.ctx.inputs.parameters.get_dict()['descriptors']] == [10, 15]


def test_out_of_memory_asks_for_more_memory(gap_fit_workchain, aiida_localhost):
    process = gap_fit_workchain(restart={'on_out_of_memory': 'more_memory', 'memory_factor': 3.0},
                                max_memory_kb=100_000)
    report = process.handle_out_of_memory(finished_job(aiida_localhost, 'mlfail.gap_fit', 110))  # scheduler OOM
    assert report.exit_code.status == 0
    assert process.ctx.inputs.metadata['options']['max_memory_kb'] == 300_000
    assert process.ctx.inputs.parameters.get_dict()['descriptors'] == DESCRIPTORS  # unchanged


def test_out_of_memory_gives_up_at_the_memory_cap(gap_fit_workchain, aiida_localhost):
    process = gap_fit_workchain(restart={'on_out_of_memory': 'more_memory', 'max_memory_kb_limit': 100_000},
                                max_memory_kb=100_000)
    report = process.handle_out_of_memory(finished_job(aiida_localhost, 'mlfail.gap_fit', 430))
    assert report.exit_code.status == GapFitRestartWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE.status


def test_ill_conditioned_raises_the_sparse_jitter(gap_fit_workchain, aiida_localhost):
    process = gap_fit_workchain()
    assert process.handle_ill_conditioned(finished_job(aiida_localhost, 'mlfail.gap_fit', 430)) is None  # not 431
    report = process.handle_ill_conditioned(finished_job(aiida_localhost, 'mlfail.gap_fit', 431))
    assert report.exit_code.status == 0
    assert process.ctx.inputs.parameters['sparse_jitter'] == pytest.approx(FIT_DEFAULTS['sparse_jitter'] * 100)


def test_walltime_doubles_up_to_the_cap(gap_fit_workchain, aiida_localhost):
    process = gap_fit_workchain(restart={'max_walltime_s': 1000})  # the job asks for 600 s
    assert process.handle_walltime(finished_job(aiida_localhost, 'mlfail.gap_fit', 302)) is None  # not walltime
    assert process.handle_walltime(finished_job(aiida_localhost, 'mlfail.gap_fit', 120)).exit_code.status == 0
    assert process.ctx.inputs.metadata['options']['max_wallclock_seconds'] == 1000
    report = process.handle_walltime(finished_job(aiida_localhost, 'mlfail.gap_fit', 120))
    assert report.exit_code.status == GapFitRestartWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE.status


def test_walltime_seen_in_the_scheduler_stderr(gap_fit_workchain, aiida_localhost):
    """AiiDA keeps the parser's exit code (here 301) over the scheduler's 120: the time-limit message decides."""
    process = gap_fit_workchain()
    hidden = finished_job(aiida_localhost, 'mlfail.gap_fit', 301, 'slurmstepd: error: *** JOB 9 ON vm CANCELLED AT '
                          '2026-11-21T03:00:00 DUE TO TIME LIMIT ***\n')
    assert process.handle_walltime(hidden).exit_code.status == 0
    assert process.ctx.inputs.metadata['options']['max_wallclock_seconds'] == 1200


def test_cancelled_jobs_are_resubmitted_unchanged(gap_fit_workchain, aiida_localhost):
    process = gap_fit_workchain()
    before = process.ctx.inputs.parameters.get_dict()
    cancelled = finished_job(aiida_localhost, 'mlfail.gap_fit', 301,
                             'slurmstepd: error: *** JOB 17 ON node CANCELLED AT 2026-11-21T03:00:00 ***\n')
    timed_out = finished_job(aiida_localhost, 'mlfail.gap_fit', 301,
                             'slurmstepd: error: *** JOB 18 ON node CANCELLED AT 2026-11-21T03:00:00 DUE TO TIME '
                             'LIMIT ***\n')
    crashed = finished_job(aiida_localhost, 'mlfail.gap_fit', 302, 'Segmentation fault\n')
    assert was_cancelled(cancelled) and not was_cancelled(timed_out) and not was_cancelled(crashed)
    assert process.handle_cancelled(cancelled).do_break
    assert process.handle_cancelled(crashed) is None
    assert process.handle_cancelled(finished_job(aiida_localhost, 'mlfail.gap_fit', 140)).do_break  # node failure
    assert process.ctx.inputs.parameters.get_dict() == before


@pytest.fixture
def explore_workchain(explore_code):
    """Factory: a set-up ``ExploreRestartWorkChain`` (not run) with ``max_iterations``."""
    from aiida_mlfail.data.gap_potential import GapPotentialData
    from tests.helpers import FIXTURES

    def factory(max_iterations=5):
        atoms = nacl_configurations(1)[0]
        process = instantiate_process(get_manager().get_runner(), ExploreRestartWorkChain, job={
            'code': explore_code, 'potential': GapPotentialData.from_folder(FIXTURES / 'bridge'),
            'structure': orm.StructureData(ase=atoms), 'training_set': TrainingSetData.from_atoms([atoms]),
            'parameters': orm.Dict({'max_steps': 100, 'comparison_step': 10})},
            max_iterations=orm.Int(max_iterations))
        process.setup()
        return process
    return factory


def test_a_guard_stop_of_the_explorer_is_an_outcome_not_a_failure(explore_workchain, aiida_localhost):
    process = explore_workchain()
    guard = ExploreCalculation.exit_codes.ERROR_MD_EXPLODED
    report = process.handle_accepted_failure(finished_job(aiida_localhost, 'mlfail.explore', guard.status))
    assert report.do_break and report.exit_code.status == guard.status
    assert process.ctx.is_finished  # aiida-core then returns the report's exit code, not 401
    assert process.handle_accepted_failure(finished_job(aiida_localhost, 'mlfail.explore', 301)) is None


@pytest.mark.parametrize('max_iterations', [1, 5])
def test_a_guard_stop_on_the_last_attempt_is_not_max_iterations_exceeded(explore_workchain, aiida_localhost,
                                                                          max_iterations):
    """aiida-core's ``inspect_process`` on the wrapper's first job: the guard's exit code whatever the cap."""
    process = explore_workchain(max_iterations)
    job = finished_job(aiida_localhost, 'mlfail.explore', ExploreCalculation.exit_codes.ERROR_LOST_ATOMS.status)
    process.ctx.children = [job]
    process.ctx.iteration = 1
    exit_code = process.inspect_process()
    assert exit_code.status == ExploreRestartWorkChain.exit_codes.ERROR_LOST_ATOMS.status == 411
    assert exit_code.status != ExploreRestartWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status
    assert process.results().status == 411  # results, if it were reached, agrees


def test_a_failure_to_repair_on_the_last_attempt_is_still_max_iterations_exceeded(explore_workchain,
                                                                                  aiida_localhost):
    """The fix is limited to outcomes: a node failure (140) handled on the last attempt stays 401."""
    process = explore_workchain(1)
    process.ctx.children = [finished_job(aiida_localhost, 'mlfail.explore', 140)]
    process.ctx.iteration = 1
    assert process.inspect_process().status == \
        ExploreRestartWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status
    assert not process.ctx.is_finished


@pytest.mark.parametrize('wrapper, job', [(ExploreRestartWorkChain, ExploreCalculation),
                                          (LammpsRestartWorkChain, LammpsCalculation)])
def test_wrappers_keep_the_labels_and_statuses_of_the_job(wrapper, job):
    for label in wrapper._accepted_failures:
        assert wrapper.exit_codes[label].status == job.exit_codes[label].status
    assert set(wrapper.STOP_LABELS) <= set(wrapper._accepted_failures)
    assert {job.exit_codes[label].status for label in wrapper.STOP_LABELS} == {410, 411}


def test_is_outcome_by_label(aiida_localhost):
    assert is_outcome(finished_job(aiida_localhost, 'mlfail.explore', 0))
    assert is_outcome(finished_job(aiida_localhost, 'mlfail.explore', 410))
    assert is_outcome(finished_job(aiida_localhost, 'mlfail.lammps', 411))
    assert not is_outcome(finished_job(aiida_localhost, 'mlfail.explore', 412))  # ends the loop, no result
    assert not is_outcome(finished_job(aiida_localhost, 'mlfail.explore', 301))
    assert not is_outcome(finished_job(aiida_localhost, 'mlfail.gap_fit', 410))  # not a stop of gap_fit


@pytest.mark.parametrize('status', [413, 412])
def test_a_non_finite_or_lammps_error_ends_the_explorer_loop_with_its_code(explore_workchain, aiida_localhost, status):
    """413 (NaN/inf energy) and 412 would fail again with the same input: no retry, the job's code, no result."""
    process = explore_workchain(5)
    process.ctx.children = [finished_job(aiida_localhost, 'mlfail.explore', status)]
    process.ctx.iteration = 1
    assert process.inspect_process().status == status
    assert process.ctx.is_finished
    assert not is_outcome(finished_job(aiida_localhost, 'mlfail.explore', status))


def test_lammps_non_finite_and_pppm_out_of_range_are_not_retried():
    codes = LammpsRestartWorkChain.exit_codes
    assert {'ERROR_NON_FINITE', 'ERROR_PPPM_OUT_OF_RANGE'} <= set(LammpsRestartWorkChain._accepted_failures)
    assert (codes.ERROR_NON_FINITE.status, codes.ERROR_PPPM_OUT_OF_RANGE.status) == (413, 414)
    assert not {'ERROR_NON_FINITE', 'ERROR_PPPM_OUT_OF_RANGE'} & set(LammpsRestartWorkChain.STOP_LABELS)


def _reports(process) -> list[str]:
    """The report lines of ``process`` without their ``[pk|class|function]`` prefix."""
    return [log.message.split(']: ', 1)[1] for log in orm.Log.collection.get_logs_for(process.node)]


def test_handlers_report_what_failed_and_the_action_taken(gap_fit_workchain, aiida_localhost):
    """report_error_handled: the failed job (label, pk, exit status, message), then the action with its numbers."""
    process = gap_fit_workchain()
    job = finished_job(aiida_localhost, 'mlfail.gap_fit', 120)
    job.set_exit_message('out of walltime')
    job.set_process_label('GapFitCalculation')  # set by the engine for a real job
    process.handle_walltime(job)
    prefixes = [log.message.split(']: ')[0] for log in orm.Log.collection.get_logs_for(process.node)]
    assert prefixes[-2:] == [f'[{process.node.pk}|GapFitRestartWorkChain|handle_walltime'] * 2  # the handler's name
    assert _reports(process)[-2:] == [
        f'GapFitCalculation<{job.pk}> failed with exit status 120: out of walltime',
        'Action taken: ran out of walltime (600 s): restarting with 1200 s']
    job = finished_job(aiida_localhost, 'mlfail.gap_fit', 430)
    job.set_process_label('GapFitCalculation')
    process.handle_out_of_memory(job)
    assert _reports(process)[-2:] == [f'GapFitCalculation<{job.pk}> failed with exit status 430: None',
                                      'Action taken: out of memory: retrying with n_sparse [20, 30] -> [10, 15]']


def _explorer_job(computer, exit_status, stderr, stdout):
    from aiida_mlfail.calculations.explore import STDOUT

    node = finished_job(computer, 'mlfail.explore', exit_status, max_wallclock_seconds=60)
    node.set_process_label('ExploreCalculation')
    retrieved = orm.FolderData()
    retrieved.base.repository.put_object_from_bytes(stderr.encode(), '_scheduler-stderr.txt')
    retrieved.base.repository.put_object_from_bytes(stdout.encode(), STDOUT)
    retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
    retrieved.store()
    remote = orm.RemoteData(computer=computer, remote_path=f'/scratch/job{node.pk}')
    remote.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='remote_folder')
    remote.store()
    return node


TIME_LIMIT = 'slurmstepd: error: *** JOB 9 ON vm CANCELLED AT 2026-11-21T03:00:00 DUE TO TIME LIMIT ***\n'
SCANCEL = 'slurmstepd: error: *** JOB 10 ON vm CANCELLED AT 2026-11-21T03:00:00 ***\n'


@pytest.mark.parametrize('handler, stderr', [('handle_walltime', TIME_LIMIT), ('handle_cancelled', SCANCEL)])
def test_the_explorer_continues_from_its_last_checkpoint(explore_workchain, aiida_localhost, handler, stderr):
    """Walltime or scancel after checkpoints at 40 and 80: the next job gets the remote folder as parent_folder
    and the report names step 80; a job killed before any checkpoint restarts from step 0 without one."""
    from aiida_mlfail.science import explore as sx

    process = explore_workchain()
    stdout = ''.join(sx.CHECKPOINT_LINE.format(step=s, restart_file=f'checkpoint/lammps.{s}.restart') + '\n'
                     for s in (40, 80)) + 'step       100  similarity 0.99\n'
    job = _explorer_job(aiida_localhost, 301, stderr, stdout)
    assert getattr(process, handler)(job).do_break
    assert process.ctx.inputs.parent_folder.pk == job.outputs.remote_folder.pk
    assert _reports(process)[-1].endswith(f'continuing from the checkpoint at step 80 of ExploreCalculation<{job.pk}>')
    early = _explorer_job(aiida_localhost, 301, stderr, 'step         0  similarity 1.0\n')
    assert getattr(process, handler)(early).do_break
    assert 'parent_folder' not in process.ctx.inputs
    assert _reports(process)[-1].endswith('no checkpoint written: starting again from step 0')


@pytest.fixture
def gap_md_workchain(lammps_code):
    """A set-up ``LammpsRestartWorkChain`` (not run) of a GAP MD job of 120 steps with a checkpoint every 40."""
    from aiida_mlfail.calculations.functions import prepare_mlmd
    from aiida_mlfail.data.gap_potential import GapPotentialData
    from tests.helpers import FIXTURES

    potential = GapPotentialData.from_folder(FIXTURES / 'bridge')
    atoms = nacl_configurations(1)[0]
    prepared = prepare_mlmd(orm.StructureData(ase=atoms), potential,
                            orm.Dict({'steps': 120, 'dump_interval': 10, 'thermo_interval': 10,
                                      'checkpoint_interval': 40}))
    process = instantiate_process(get_manager().get_runner(), LammpsRestartWorkChain, job={
        'code': lammps_code, 'script': prepared['script'], 'settings': prepared['settings'],
        'files': {'structure': prepared['structure_file']}, 'potential': potential})
    process.setup()
    return process


def _gap_md_job(computer, exit_status, stderr, steps, frame_steps):
    """A finished ``mlfail.lammps`` job with thermo rows at ``steps``, frames at ``frame_steps``, a remote folder."""
    node = finished_job(computer, 'mlfail.lammps', exit_status, max_wallclock_seconds=60)
    node.set_process_label('LammpsCalculation')
    retrieved = orm.FolderData()
    retrieved.base.repository.put_object_from_bytes(stderr.encode(), '_scheduler-stderr.txt')
    retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
    retrieved.store()
    remote = orm.RemoteData(computer=computer, remote_path=f'/scratch/job{node.pk}')
    remote.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='remote_folder')
    remote.store()
    thermo = orm.ArrayData()
    thermo.set_array('step', np.array(steps, dtype=float))
    thermo.set_array('potential_energy', np.array(steps, dtype=float) * -0.5)  # a value that tells the rows apart
    thermo.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='thermo')
    thermo.store()
    if frame_steps:
        frames = nacl_configurations(len(frame_steps))
        for atoms, step in zip(frames, frame_steps):
            atoms.info['md_step'] = step
        training_set = TrainingSetData.from_atoms(frames)
        training_set.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='training_set')
        training_set.store()
    return node


@pytest.mark.parametrize('handler, stderr', [('handle_walltime', TIME_LIMIT), ('handle_cancelled', SCANCEL)])
def test_gap_md_continues_from_its_checkpoints_and_joins_the_segments(gap_md_workchain, aiida_localhost, handler,
                                                                      stderr, monkeypatch):
    """Killed at step ~75 (checkpoint 40), then at ~95 (checkpoint 80), then the run ends at 120: each next job gets
    the remote folder and a continuation script; the outputs join the three jobs' thermo and frames, no repeat.
    Finding the checkpoint loads no frame (the steps come from the training set's stored metadata)."""
    process = gap_md_workchain
    first = _gap_md_job(aiida_localhost, 305, stderr, range(0, 80, 10), [10, 20, 30, 40, 50, 60, 70])
    with monkeypatch.context() as patched:  # any frame loaded in the daemon fails the test
        _forbid_loading_frames(patched)
        assert getattr(process, handler)(first).do_break
    assert process.ctx.inputs.parent_folder.pk == first.outputs.remote_folder.pk
    script = process.ctx.inputs.script.get_content()
    assert 'read_restart checkpoint/lammps.odd.restart' in script and 'run 120 upto' in script
    assert 'restart 40 checkpoint/lammps.even.restart checkpoint/lammps.odd.restart' in script
    assert process.ctx.inputs.settings['restart_step'] == 40
    assert _reports(process)[-1].endswith(f'continuing from the checkpoint at step 40 of LammpsCalculation<{first.pk}>')
    second = _gap_md_job(aiida_localhost, 305, stderr, range(40, 100, 10), [40, 50, 60, 70, 80, 90])
    assert getattr(process, handler)(second).do_break
    assert process.ctx.inputs.parent_folder.pk == second.outputs.remote_folder.pk
    assert 'read_restart checkpoint/lammps.even.restart' in process.ctx.inputs.script.get_content()
    last = _gap_md_job(aiida_localhost, 0, '', range(80, 130, 10), [80, 90, 100, 110, 120])
    with monkeypatch.context() as patched:  # joining parses no frame either: the frames' text is copied
        _forbid_loading_frames(patched)
        outputs = process.get_outputs(last)
    steps = outputs['thermo'].get_array('step')
    np.testing.assert_array_equal(steps, np.arange(0, 130, 10))
    np.testing.assert_array_equal(outputs['thermo'].get_array('potential_energy'), steps * -0.5)
    assert [a.info['md_step'] for a in outputs['training_set'].get_atoms()] == list(range(10, 130, 10))
    # the job that ran from step 80 gave only the frames after 80
    assert outputs['training_set'].creator.inputs.training_set_2.pk == last.outputs.training_set.pk
    # the joined frames are the jobs' own, copied: first's 10-40, second's 50-80, last's 90-120
    frames = [job.outputs.training_set.get_text().splitlines(keepends=True) for job in (first, second, last)]
    size = len(frames[0]) // 7  # lines per frame
    expected = frames[0][:4 * size] + frames[1][size:5 * size] + frames[2][size:]
    assert outputs['training_set'].get_text() == ''.join(expected)


def _forbid_loading_frames(monkeypatch):
    """Make every way of reading a ``TrainingSetData``'s frames fail the test."""
    for name in ('get_atoms', 'iter_atoms', 'get_text'):
        monkeypatch.setattr(TrainingSetData, name, lambda self, name=name: pytest.fail(f'{name} called'))


def test_gap_md_killed_before_its_first_checkpoint_starts_again(gap_md_workchain, aiida_localhost, monkeypatch):
    process = gap_md_workchain
    first_script = process.ctx.inputs.script.pk
    early = _gap_md_job(aiida_localhost, 305, TIME_LIMIT, range(0, 40, 10), [10, 20, 30])  # the restart at 40 unproven
    assert process.handle_walltime(early).do_break
    assert 'parent_folder' not in process.ctx.inputs and process.ctx.inputs.script.pk == first_script
    assert _reports(process)[-1].endswith('no checkpoint written: starting again from step 0')
    assert process.get_outputs(early)['thermo'].pk == early.outputs.thermo.pk  # nothing joined
    # the same thermo rows, frames up to 70: LAMMPS dumps a step before writing its restart file, so the frame at 70
    # proves every step up to 69, i.e. the checkpoint at 40; found from the frames' md_step in the set's stored
    # metadata, not from loaded frames
    proven_by_frames = _gap_md_job(aiida_localhost, 305, TIME_LIMIT, range(0, 40, 10), [10, 20, 30, 40, 50, 60, 70])
    _forbid_loading_frames(monkeypatch)
    assert process.handle_walltime(proven_by_frames).do_break
    assert process.ctx.inputs.settings['restart_step'] == 40
    assert 'read_restart checkpoint/lammps.odd.restart' in process.ctx.inputs.script.get_content()
