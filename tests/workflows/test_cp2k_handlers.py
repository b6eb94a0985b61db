"""Cp2kSinglePointWorkChain: one test per handler and exit code, and submit-time validation.

The jobs are stored ``CalcJobNode``s of aiida-cp2k's ``cp2k`` holding the committed real CP2K 2023.1
outputs (tests/fixtures/cp2k); their exit status is what aiida-cp2k's own ``cp2k_base_parser`` says
about them, so the tests follow the real chain: aiida-cp2k parser -> our parse step -> handlers
(``inspect_process``, as aiida-quantumespresso tests its handlers).
"""

import os
import shutil

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from aiida.plugins import ParserFactory
from plumpy import ProcessState

from aiida_mlfail.parsers.cp2k import parse_cp2k_output
from aiida_mlfail.science import cp2k as cp2k_science
from aiida_mlfail.science.references import cp2k_reference
from aiida_mlfail.workflows.cp2k import Cp2kSinglePointWorkChain
from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain
from tests.fixtures.cp2k import make_fixtures
from tests.helpers import FIXTURES

BASE = FIXTURES / 'cp2k'
#: What CP2K 2023.1 prints when it reaches GLOBAL/WALLTIME inside an SCF (copied from a real run of the
#: 8-atom cell with WALLTIME 3): it leaves the SCF, warns "SCF run NOT converged", prints the forces, ends.
WALLTIME_LINES = (' *** SCF run terminated - exceeded requested execution time:       3.000 seconds.\n\n'
                  ' *** Execution time now:        3.105 seconds.\n\n')


def _output(name):
    return (BASE / name / 'aiida.out').read_text()


def walltime_output():
    """The unconverged-SCF output with CP2K's walltime stop lines where CP2K writes them."""
    text = _output('scf_not_converged')
    marker = '  Leaving inner SCF loop after reaching'
    assert marker in text
    return text.replace(marker, WALLTIME_LINES + marker, 1)


def without_stress(text):
    return '\n'.join(line for line in text.splitlines() if not line.startswith(' STRESS|')) + '\n'


def nan_energy(text):
    """The converged output with the energy as gfortran prints a NaN."""
    line = next(line for line in text.splitlines() if line.startswith(' ENERGY| Total FORCE_EVAL'))
    return text.replace(line, line.rsplit(None, 1)[0] + '                                      NaN')


OUTPUTS = {'nan_energy': lambda: nan_energy(_output('converged')), 'converged': lambda: _output('converged'),
           'scf_not_converged': lambda: _output('scf_not_converged'),
           'aborted': lambda: _output('aborted'), 'truncated': lambda: _output('truncated'),
           'walltime': walltime_output, 'no_stress': lambda: without_stress(_output('converged'))}


@pytest.fixture
def cp2k_code(aiida_code_installed):
    return aiida_code_installed(label='cp2k', default_calc_job_plugin='cp2k',
                                filepath_executable=shutil.which('cp2k.psmp') or '/usr/bin/cp2k.psmp')


@pytest.fixture
def cp2k_job(aiida_localhost, tmp_path):
    """Factory: a finished ``cp2k`` CalcJobNode with ``retrieved`` (``aiida.out``) and ``remote_folder``,
    its exit status set by aiida-cp2k's ``cp2k_base_parser`` (or forced with ``exit_status``)."""

    def factory(name, exit_status=None, files=None, walltime=None):
        """``files``: further retrieved files (name -> text); ``walltime``: the job's ``max_wallclock_seconds``."""
        node = orm.CalcJobNode(computer=aiida_localhost, process_type='aiida.calculations:cp2k')
        node.set_option('resources', {'num_machines': 1})
        node.set_option('output_filename', 'aiida.out')
        if walltime is not None:
            node.set_option('max_wallclock_seconds', walltime)
        node.set_process_state(ProcessState.FINISHED)
        node.store()
        retrieved = orm.FolderData()
        retrieved.base.repository.put_object_from_bytes(OUTPUTS[name]().encode(), 'aiida.out')
        for filename, text in (files or {}).items():
            retrieved.base.repository.put_object_from_bytes(text.encode(), filename)
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
        retrieved.store()
        remote = orm.RemoteData(computer=aiida_localhost, remote_path=str(tmp_path / name))
        remote.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='remote_folder')
        remote.store()
        if exit_status is None:
            _, call = ParserFactory('cp2k_base_parser').parse_from_node(node, store_provenance=False)
            exit_status = call.exit_status
        node.set_exit_status(exit_status)
        return node

    return factory


@pytest.fixture
def workchain(cp2k_code):
    """Factory: a set-up ``Cp2kSinglePointWorkChain`` of the fixtures' 8-atom cell (not running)."""

    def factory(**inputs):
        inputs = {'structure': orm.StructureData(ase=make_fixtures.nacl8()), 'code': cp2k_code, **inputs}
        process = instantiate_process(get_manager().get_runner(), Cp2kSinglePointWorkChain, **inputs)
        process.setup()
        return process

    return factory


def inspect(process, node):
    """Run ``inspect_process`` on ``node`` as the next iteration."""
    process.ctx.children = [*process.ctx.get('children', []), node]
    process.ctx.iteration += 1
    return process.inspect_process()


@pytest.mark.parametrize('name, status', [('converged', 0), ('scf_not_converged', 0), ('walltime', 400),
                                          ('aborted', 304), ('truncated', 303)])
def test_what_aiida_cp2k_parser_says(cp2k_job, name, status):
    """The facts the handlers rely on: CP2K 2023.1 ends an unconverged SCF normally (0, so our parse step
    must catch it), its own walltime stop is 400, an abort 304, a cut output 303."""
    assert cp2k_job(name).exit_status == status


def test_first_job_parameters(workchain):
    process = workchain(options=orm.Dict({'max_wallclock_seconds': 1000}),
                        overrides=orm.Dict({'FORCE_EVAL': {'DFT': {'SCF': {'EPS_SCF': 1e-7}}}}))
    parameters = process.ctx.inputs.parameters.get_dict()
    scf = parameters['FORCE_EVAL']['DFT']['SCF']
    assert parameters['GLOBAL']['WALLTIME'] == 900  # CP2K stops itself before the scheduler would
    assert scf['PRINT']['RESTART']['_'] == 'ON' and scf['SCF_GUESS'] == 'ATOMIC'
    assert scf['EPS_SCF'] == 1e-7 and scf['MAX_SCF'] == cp2k_science.load_protocol('fast')['scf']['max_scf']
    assert parameters['FORCE_EVAL']['STRESS_TENSOR'] == 'ANALYTICAL'
    assert process.ctx.inputs.metadata['options']['max_wallclock_seconds'] == 1000
    assert 'parent_calc_folder' not in process.ctx.inputs


def test_converged_job_is_parsed_and_ends_the_loop(workchain, cp2k_job):
    process = workchain()
    assert inspect(process, cp2k_job('converged')) is None
    assert process.ctx.is_finished
    parsed = process.ctx.parsed
    assert parsed.is_finished_ok and parsed.process_label == 'parse_single_point'
    (atoms,) = parsed.outputs.training_set.get_atoms()
    expected = parse_cp2k_output(_output('converged'))
    assert atoms.info['energy'] == pytest.approx(expected['energy'], abs=1e-9)
    # extxyz keeps 8 decimals
    np.testing.assert_allclose(atoms.arrays['forces'], expected['forces'], rtol=0, atol=1e-7)
    np.testing.assert_allclose(atoms.info['virial'], -expected['stress'] * atoms.get_volume(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(atoms.positions, make_fixtures.nacl8().positions, atol=1e-9)
    assert atoms.info['label_reference'] == 'cp2k_fast'
    assert parsed.outputs.training_set.reference == cp2k_reference('fast')


def test_parsed_single_point_records_protocol_and_overrides(workchain, cp2k_job):
    overrides = {'FORCE_EVAL': {'DFT': {'MGRID': {'CUTOFF': 350}}}}
    process = workchain(overrides=orm.Dict(overrides))
    inspect(process, cp2k_job('converged'))
    reference = process.ctx.parsed.outputs.training_set.reference
    assert reference == cp2k_reference('fast', overrides) and reference['id'] != cp2k_reference('fast')['id']


def test_handle_scf_not_converged_walks_the_restart_schemes(workchain, cp2k_job):
    process = workchain()
    first = process.ctx.inputs.parameters.get_dict()
    expected = first
    for attempt in range(1, cp2k_science.MAX_SCF_RESTARTS + 1):
        node = cp2k_job('scf_not_converged')
        result = inspect(process, node)
        assert process.ctx.parsed.exit_status == 420  # the parse step caught it
        assert result is not None and result.status == 0 and not process.ctx.is_finished  # restart
        expected, _ = cp2k_science.scf_restart_changes(expected, attempt)
        scf = process.ctx.inputs.parameters.get_dict()['FORCE_EVAL']['DFT']['SCF']
        assert {k: v for k, v in scf.items() if k != 'SCF_GUESS'} == {
            k: v for k, v in expected['FORCE_EVAL']['DFT']['SCF'].items() if k != 'SCF_GUESS'}
        assert scf['SCF_GUESS'] == 'RESTART'  # from the failed job's wavefunction
        assert process.ctx.inputs.parent_calc_folder.uuid == node.outputs.remote_folder.uuid
    diag = first['FORCE_EVAL']['DFT']['SCF']
    assert 'OT' in scf and 'DIAGONALIZATION' not in scf and 'DIAGONALIZATION' in diag  # attempt 3 switched to OT
    result = inspect(process, cp2k_job('scf_not_converged'))
    assert result.status == 420 and 'after 3 restart(s)' in result.message
    # report_error_handled: the parse step that refused the SCF, then the action
    reports = [log.message.split(']: ', 1)[1] for log in orm.Log.collection.get_logs_for(process.node)]
    parsed = process.ctx.parsed
    last = reports.index('Action taken: no SCF restart left after 3: stopping with exit 420')
    assert reports[last - 1] == f'parse_single_point<{parsed.pk}> failed with exit status 420: {parsed.exit_message}'
    first_restart = reports.index(next(m for m in reports if 'SCF restart 1:' in m))
    assert reports[first_restart - 1].startswith('parse_single_point<')
    assert reports[first_restart].startswith('Action taken: SCF restart 1: ')
    first_job = process.ctx.children[0]
    assert reports[first_restart].endswith(f', from the wavefunction of {first_job.process_label}<{first_job.pk}>')


def test_handle_scf_not_converged_on_the_cp2k_2024_abort(workchain, cp2k_job):
    process = workchain()
    result = inspect(process, cp2k_job('scf_not_converged', exit_status=450))
    assert process.ctx.parsed is None and result.status == 0 and process.ctx.scf_restarts == 1
    assert process.ctx.inputs.parameters['FORCE_EVAL']['DFT']['SCF']['MAX_SCF'] == 100


def test_handle_walltime_restarts_from_the_wavefunction(workchain, cp2k_job):
    process = workchain()
    before = process.ctx.inputs.parameters.get_dict()
    node = cp2k_job('walltime')
    result = inspect(process, node)
    assert result.status == 0 and process.ctx.scf_restarts == 0
    after = process.ctx.inputs.parameters.get_dict()
    assert after['FORCE_EVAL']['DFT']['WFN_RESTART_FILE_NAME'] == 'parent_calc/aiida-RESTART.wfn'
    assert after['FORCE_EVAL']['DFT']['SCF']['SCF_GUESS'] == 'RESTART'
    assert after['FORCE_EVAL']['DFT']['SCF']['MAX_SCF'] == before['FORCE_EVAL']['DFT']['SCF']['MAX_SCF']
    assert process.ctx.inputs.parent_calc_folder.uuid == node.outputs.remote_folder.uuid
    # the scheduler's walltime (120) is handled the same way
    result = inspect(process, cp2k_job('walltime', exit_status=120))
    assert result.status == 0 and process.ctx.inputs.parent_calc_folder.uuid != node.outputs.remote_folder.uuid


def _aimd(cp2k_code, **inputs):
    """A set-up ``Cp2kAimdWorkChain`` (not running) of the 8-atom cell: 10 steps, a 100 s first job."""
    inputs = {'structure': orm.StructureData(ase=make_fixtures.nacl8()), 'code': cp2k_code,
              'temperature': orm.Float(1000.0), 'steps': orm.Int(10),
              'options': orm.Dict({'max_wallclock_seconds': 100}), **inputs}
    process = instantiate_process(get_manager().get_runner(), Cp2kAimdWorkChain, **inputs)
    process.setup()
    return process


def _checkpoint(step):
    """The part of CP2K's MD restart file ``restart_step`` reads."""
    return f' &MOTION\n   &MD\n     STEP_START_VAL  {step}\n   &END MD\n &END MOTION\n'


def test_aimd_handle_stopped_raises_the_walltime_and_continues_from_the_checkpoint(cp2k_code, cp2k_job):
    """Stopped at CP2K's WALLTIME (400) or killed (303): walltime_factor x the walltime up to max_walltime_s, CP2K's
    WALLTIME min(0.9 T, T - 60 s) of the new T, EXT_RESTART from the checkpoint with the steps left; a job without a
    new checkpoint runs once more from the same one, twice: exit 311."""
    process = _aimd(cp2k_code, restart=orm.Dict({'walltime_factor': 3.0, 'max_walltime_s': 700}))
    assert process.ctx.inputs.parameters['GLOBAL']['WALLTIME'] == 40  # min(90, 40)
    restart = 'parent_calc/aiida-1.restart'

    def stop(step, walltime, exit_status=400):
        node = cp2k_job('walltime', exit_status=exit_status, walltime=walltime,
                        files={cp2k_science.AIMD_RESTART_FILE: _checkpoint(step)})
        return node, inspect(process, node)

    def reports():  # the handlers' actions (report_error_handled)
        return [log.message for log in orm.Log.collection.get_logs_for(process.node) if 'Action taken:' in log.message]

    node, result = stop(4, 100)
    assert result.status == 0 and not process.ctx.is_finished
    parameters = process.ctx.inputs.parameters.get_dict()
    assert process.ctx.inputs.metadata['options']['max_wallclock_seconds'] == 300
    assert parameters['GLOBAL']['WALLTIME'] == 240  # min(270, 240): below the new scheduler walltime
    assert parameters['EXT_RESTART'] == {'RESTART_FILE_NAME': restart} and parameters['MOTION']['MD']['STEPS'] == 6
    assert process.ctx.inputs.parent_calc_folder.uuid == node.outputs.remote_folder.uuid
    assert (f'ran out of walltime (100 s): restarting with 300 s (CP2K WALLTIME 240 s), continuing from the '
            f'checkpoint of step 4 of 10 of {node.process_label}<{node.pk}> ({restart}) for the 6 steps left'
            ) in reports()[-1]

    node, result = stop(7, 300, exit_status=303)  # killed by the scheduler: the same, capped at max_walltime_s
    parameters = process.ctx.inputs.parameters.get_dict()
    assert process.ctx.inputs.metadata['options']['max_wallclock_seconds'] == 700
    assert parameters['GLOBAL']['WALLTIME'] == 630 and parameters['MOTION']['MD']['STEPS'] == 3
    assert process.ctx.inputs.parent_calc_folder.uuid == node.outputs.remote_folder.uuid

    stalled, result = stop(7, 700)  # no checkpoint beyond step 7: once more from it, at the cap
    assert result.status == 0
    assert process.ctx.inputs.parent_calc_folder.uuid == node.outputs.remote_folder.uuid
    assert process.ctx.inputs.parameters['MOTION']['MD']['STEPS'] == 3
    assert ('stopped before writing a checkpoint after step 7: ran out of walltime (700 s), keeping the 700 s '
            'walltime (max_walltime_s), running the same job once more') in reports()[-1]
    _, result = stop(7, 700)
    assert result.status == 311 and '2 times in a row' in result.message


def test_aimd_walltime_of_the_overrides_is_kept_and_restart_is_validated(cp2k_code, cp2k_job):
    process = _aimd(cp2k_code, overrides=orm.Dict({'GLOBAL': {'WALLTIME': 30}}))
    node = cp2k_job('walltime', exit_status=400, walltime=100, files={cp2k_science.AIMD_RESTART_FILE: _checkpoint(2)})
    assert inspect(process, node).status == 0
    assert process.ctx.inputs.metadata['options']['max_wallclock_seconds'] == 200  # default walltime_factor 2
    assert process.ctx.inputs.parameters['GLOBAL']['WALLTIME'] == 30

    def error(restart):
        return str(Cp2kAimdWorkChain.spec().inputs.validate({
            'structure': orm.StructureData(ase=make_fixtures.nacl8()), 'code': cp2k_code,
            'temperature': orm.Float(300), 'steps': orm.Int(3), 'restart': orm.Dict(restart)}))

    assert error({'walltime_factor': 4.0}) == 'None'
    assert "unknown restart setting(s) ['memory_factor']" in error({'memory_factor': 2.0})
    assert 'walltime_factor' in error({'walltime_factor': 0.5}) and '0.5' in error({'walltime_factor': 0.5})


@pytest.mark.parametrize('name, words', [('aborted', ['CP2K aborted', 'NO-SUCH-BASIS']),
                                         ('truncated', ['[303]']),
                                         ('no_stress', ['parse step', '[322]', 'no stress tensor'])])
def test_handle_unrecoverable(workchain, cp2k_job, name, words):
    process = workchain()
    result = inspect(process, cp2k_job(name))
    assert result.status == 310
    for word in words:
        assert word in result.message


def test_validation_names_the_bad_value(cp2k_code, monkeypatch, tmp_path):
    structure = orm.StructureData(ase=make_fixtures.nacl8())

    def error(cls=Cp2kSinglePointWorkChain, **inputs):
        return str(cls.spec().inputs.validate({'structure': structure, 'code': cp2k_code, **inputs}))

    assert error() == 'None'
    assert "unknown CP2K protocol 'ultra'" in error(protocol=orm.Str('ultra'))
    assert "unknown top-level section(s) ['DFT']" in error(overrides=orm.Dict({'DFT': {'CUTOFF': 400}}))
    assert "unknown metadata.options ['walltime']" in error(options=orm.Dict({'walltime': 10}))
    assert 'temperature must be a finite number > 0, got -5.0' in error(Cp2kAimdWorkChain, temperature=orm.Float(-5),
                                                               steps=orm.Int(3))
    # species without a basis set in the protocol's file (a CP2K data directory without Cl)
    (tmp_path / 'BASIS_MOLOPT').write_text(' Na SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q9\n 1\n')
    (tmp_path / 'GTH_POTENTIALS').write_text('Na GTH-PBE-q9 GTH-PBE\nCl GTH-PBE-q7 GTH-PBE\n')
    monkeypatch.setenv('CP2K_DATA_DIR', str(tmp_path))
    message = error()
    assert 'no basis set for Cl (SZV-MOLOPT-SR-GTH, SZV-MOLOPT-GTH)' in message and "protocol 'fast'" in message


def test_parse_aimd_records_the_reference_of_protocol_and_overrides():
    """The AIMD frames carry ``cp2k_reference(protocol, overrides)``; without a protocol they are of unknown
    reference."""
    from aiida_mlfail.calculations.cp2k import parse_aimd

    retrieved = orm.FolderData()
    for path in (FIXTURES / 'cp2k' / 'aimd').iterdir():
        if path.is_file():
            retrieved.base.repository.put_object_from_file(str(path), path.name)
    structure = orm.StructureData(ase=make_fixtures.nacl8())
    overrides = {'FORCE_EVAL': {'DFT': {'MGRID': {'CUTOFF': 350}}}}
    result = parse_aimd(retrieved=retrieved, structure=structure, info=orm.Dict({'temperature': 1200.0}),
                        protocol=orm.Str('fast'), overrides=orm.Dict(overrides))
    assert result['trajectory'].reference == cp2k_reference('fast', overrides)
    result = parse_aimd(retrieved=retrieved, structure=structure, info=orm.Dict({}))
    assert result['trajectory'].reference['kind'] == 'unknown'


def test_a_nan_energy_is_parse_exit_323_and_the_loop_ends_with_310(workchain, cp2k_job):
    """A NaN in CP2K's output is read as a NaN (not a missing line) and named; the parse step ends 323
    (no exception, no excepted process) and the work chain gives up with 310 naming the cause."""
    assert np.isnan(parse_cp2k_output(nan_energy(_output('converged')))['energy'])
    process = workchain()
    report = inspect(process, cp2k_job('nan_energy', exit_status=0))
    assert process.ctx.parsed.exit_status == 323
    assert 'non-finite energy' in process.ctx.parsed.exit_message
    assert report.status == 310 and 'non-finite energy' in report.message


def test_kinds_are_chosen_per_element_reported_and_refused_at_submit(workchain, cp2k_code):
    """The setup writes the chosen basis set and pseudopotential into the KINDs and reports them; an element
    the protocol's files cannot describe is refused by the port validator, naming it (real CP2K data files)."""
    if cp2k_science.data_dir() is None:
        if os.environ.get('CI'):
            pytest.fail('no CP2K data directory, and CI is set: this check must run in CI')
        pytest.skip('no CP2K data directory on this machine')
    from ase.build import bulk

    process = workchain(structure=orm.StructureData(ase=bulk('Si', 'diamond', a=5.43, cubic=True)))
    kinds = process.ctx.inputs.parameters.get_dict()['FORCE_EVAL']['SUBSYS']['KIND']
    assert kinds == [{'_': 'Si', 'ELEMENT': 'Si', 'BASIS_SET': 'SZV-MOLOPT-SR-GTH', 'POTENTIAL': 'GTH-PBE-q4'}]
    logs = [log.message for log in orm.Log.collection.get_logs_for(process.node)]
    assert any(m.endswith('protocol fast: Si: SZV-MOLOPT-SR-GTH / GTH-PBE-q4 (4 e)') for m in logs), logs
    cerium = orm.StructureData(ase=bulk('Ce', 'fcc', a=5.16))
    for cls, extra in ((Cp2kSinglePointWorkChain, {}),
                       (Cp2kAimdWorkChain, {'temperature': orm.Float(300), 'steps': orm.Int(2)})):
        error = str(cls.spec().inputs.validate({'structure': cerium, 'code': cp2k_code,
                                                'protocol': orm.Str('moderate'), **extra}))
        assert 'no basis set for Ce (DZVP-MOLOPT-SR-GTH, DZVP-MOLOPT-GTH) in' in error, error
        assert "BASIS_MOLOPT (protocol 'moderate')" in error and error.count('protocol') == 1
