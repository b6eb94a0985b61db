"""Parsers on committed real outputs of LAMMPS, gap_fit and mlfail-quip (parse_from_node)."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.plugins import ParserFactory

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.parsers.quip import parse_quip_output
from aiida_mlfail.science import lammps_md
from tests.helpers import FIXTURES, nacl_configurations


@pytest.fixture
def calc_node(aiida_localhost, retrieved_from):
    """Factory: a stored CalcJobNode of ``entry_point`` with ``inputs`` and the fixture folder as ``retrieved``."""

    def factory(entry_point, fixture, inputs=None, options=None, **extra_files):
        node = orm.CalcJobNode(computer=aiida_localhost, process_type=f'aiida.calculations:{entry_point}')
        node.set_option('resources', {'num_machines': 1})
        for key, value in (options or {}).items():
            node.set_option(key, value)
        for label, data in (inputs or {}).items():
            data.store()
            node.base.links.add_incoming(data, link_type=LinkType.INPUT_CALC, link_label=label)
        node.store()
        retrieved = retrieved_from(fixture, **extra_files)
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
        retrieved.store()
        return node

    return factory


def test_lammps_sample_parser(calc_node):
    settings = orm.Dict({'type_map': ['Na', 'Cl'], 'frame_info': {'state_point': 'sp', 'config_type': 'sp'}})
    node = calc_node('mlfail.lammps', 'lammps_sample', {'settings': settings}, {'output_filename': 'lammps.out'})
    results, call = ParserFactory('mlfail.lammps').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 0
    training_set = results['training_set']
    assert training_set.n_configurations == 3
    assert training_set.configurations[0] == {'state_point': 'sp', 'config_type': 'sp', 'md_step': 100}
    thermo = results['thermo']
    assert set(thermo.get_arraynames()) == {'step', 'time', 'temperature', 'potential_energy', 'pressure', 'volume'}
    assert thermo.get_array('time')[-1] == pytest.approx(0.6)  # 300 steps x 2 fs, in ps
    assert results['results']['n_frames'] == 3
    assert training_set.reference['kind'] == 'unknown'  # settings without a reference


def test_lammps_parser_records_the_reference_of_the_settings(calc_node):
    """``settings['reference']`` (what prepare_sampling / prepare_single_points set) goes onto the training set."""
    from aiida_mlfail.calculations.functions import prepare_sampling
    from aiida_mlfail.science.references import lammps_reference
    from aiida_mlfail.science.structures import molten_nacl

    potential = {'name': 'bmhtf_wolf', 'parameters': {'alpha': 0.2}}
    prepared = prepare_sampling.__wrapped__(orm.StructureData(ase=molten_nacl(64, volume=2300.0)), orm.Dict(potential),
                                            orm.Dict({'temperature': 1400.0, 'volume': 2300.0}), orm.Dict({}))
    settings = prepared['settings']
    assert settings['reference'] == lammps_reference(potential)
    node = calc_node('mlfail.lammps', 'lammps_sample', {'settings': settings}, {'output_filename': 'lammps.out'})
    results, call = ParserFactory('mlfail.lammps').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 0 and results['training_set'].reference == lammps_reference(potential)


def test_lammps_sample_parser_lammps_error(calc_node):
    node = calc_node('mlfail.lammps', 'lammps_error', {'settings': orm.Dict({'type_map': ['Na', 'Cl']})},
                     {'output_filename': 'lammps.out'})
    results, call = ParserFactory('mlfail.lammps').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 309
    assert 'Pair style requires a KSpace style' in call.exit_message


def test_gap_fit_parser_ok(calc_node):
    training_set = TrainingSetData.from_atoms(nacl_configurations(3))
    parameters = orm.Dict({'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10,
                                            'sparse_method': 'uniform'}]})
    node = calc_node('mlfail.gap_fit', 'gap_fit_ok', {'training_set': training_set, 'parameters': parameters})
    results, call = ParserFactory('mlfail.gap_fit').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 0
    potential = results['potential']
    assert potential.base.attributes.get('training_set_uuid') == training_set.uuid
    assert potential.base.attributes.get('command_line').startswith('gap_fit at_file=training_set.xyz')
    report = results['output_parameters'].get_dict()
    assert report['n_sparse'] == [10, 10, 10]
    assert report['memory_peak_mb'] == pytest.approx(594 / 1024)


def test_gap_fit_parser_ill_conditioned(calc_node):
    training_set = TrainingSetData.from_atoms(nacl_configurations(3))
    parameters = orm.Dict({'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 300}]})
    node = calc_node('mlfail.gap_fit', 'gap_fit_ill', {'training_set': training_set, 'parameters': parameters})
    _, call = ParserFactory('mlfail.gap_fit').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 431
    assert 'LA_Matrix_Factorise' in call.exit_message


def test_gap_fit_parser_memory_exceeded(calc_node):
    training_set = TrainingSetData.from_atoms(nacl_configurations(3))
    parameters = orm.Dict({'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}]})
    node = calc_node('mlfail.gap_fit', 'gap_fit_ill', {'training_set': training_set, 'parameters': parameters},
                     **{'gap_fit_memory.txt': 'peak_kb=2048 limit_kb=1024\nstatus=exceeded\n'})
    _, call = ParserFactory('mlfail.gap_fit').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 430
    assert '2 MB, more than the 1 MB' in call.exit_message


def test_parse_quip_output_real(tmp_path):
    """Run the mlfail-quip engine on the committed GAP and parse what it prints."""
    import subprocess
    import sys

    from aiida_mlfail.science.extxyz import write_configurations

    write_configurations(tmp_path / 'c.xyz', nacl_configurations(2))
    out = subprocess.run([sys.executable, '-m', 'aiida_mlfail.engines.quip', 'E=T', 'F=T', 'V=T',
                          f'atoms_filename={tmp_path / "c.xyz"}',
                          f'param_filename={FIXTURES / "gap_fit_ok" / "gap.xml"}'],
                         capture_output=True, text=True, check=True).stdout
    configurations = parse_quip_output(out)
    assert len(configurations) == 2
    assert configurations[0].arrays['forces'].shape == (64, 3)
    assert configurations[0].info['virial'].shape == (3, 3)
    assert parse_quip_output('no AT lines\n') == []
    bad = subprocess.run([sys.executable, '-m', 'aiida_mlfail.engines.quip', 'atoms_filename=x.xyz', 'foo=1'],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "unsupported argument 'foo'" in bad.stderr


@pytest.mark.parametrize('case, status, reason', [
    ('completed', 0, 'completed'),
    ('volume_blowup', 410, 'volume_blowup'),
    ('too_close_atoms', 410, 'too_close_atoms'),
    ('temperature_runaway', 410, 'temperature_runaway'),
    ('energy_runaway', 410, 'energy_runaway'),
    ('lost_atoms', 411, 'lost_atoms'),
])
def test_lammps_parser_classifies_md_stops(calc_node, case, status, reason):
    settings = orm.Dict({'type_map': ['Na', 'Cl']})
    node = calc_node('mlfail.lammps', f'mlmd_stops/{case}', {'settings': settings}, {'output_filename': 'lammps.out'})
    results, call = ParserFactory('mlfail.lammps').parse_from_node(node, store_provenance=False)
    assert call.exit_status == status, call.exit_message
    assert results['results']['stop_reason'] == reason
    frames = results['training_set'].get_atoms()  # outputs are stored also for a stopped run
    assert frames and 'velocities' in frames[0].arrays
    if status:
        assert max(a.info['md_step'] for a in frames) <= results['results']['stop_step'] or reason == 'lost_atoms'
    if reason == 'volume_blowup':
        assert results['results']['value'] > 1.5 * 13.1**3


def test_lammps_parser_flags_an_output_cut_short(calc_node):
    """A job killed from outside (``scancel``) leaves no "Total wall time" and no error line: 305, not success."""
    text = (FIXTURES / 'lammps_sample' / 'lammps.out').read_text()
    cut = text[:text.index('Loop time')]
    settings = orm.Dict({'type_map': ['Na', 'Cl']})
    node = calc_node('mlfail.lammps', 'lammps_sample', {'settings': settings}, {'output_filename': 'cut.out'},
                     **{'cut.out': cut})
    results, call = ParserFactory('mlfail.lammps').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 305
    assert results['results']['finished'] is False
    # the frames written before the kill are kept (a continuation from a checkpoint joins them)
    whole = lammps_md.parse_labels((FIXTURES / 'lammps_sample' / 'labels.dat').read_text())
    assert [a.info['md_step'] for a in results['training_set'].get_atoms()] == sorted(whole)


def test_lammps_parser_keeps_the_whole_frames_of_a_killed_run(calc_node):
    """Killed while writing: the dump and the label file end mid-frame / mid-line; the complete frames are kept."""
    base = FIXTURES / 'lammps_sample'
    text = (base / 'lammps.out').read_text()
    dump, labels = (base / 'frames.dump').read_text(), (base / 'labels.dat').read_text()
    last = dump.rindex('ITEM: TIMESTEP')
    steps = sorted(lammps_md.parse_labels(labels))
    node = calc_node('mlfail.lammps', 'lammps_sample', {'settings': orm.Dict({'type_map': ['Na', 'Cl']})},
                     {'output_filename': 'cut.out'}, **{'cut.out': text[:text.index('Loop time')],
                                                         'frames.dump': dump[:last + 200],
                                                         'labels.dat': labels.rstrip('\n')[:-3]})
    results, call = ParserFactory('mlfail.lammps').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 305
    kept = [a.info['md_step'] for a in results['training_set'].get_atoms()]
    assert kept == steps[:-1] and len(kept) >= 2


# --- physically bad output (issue 13): never an exception, a named exit code, the outputs that exist kept ----------
# Real mlfail-lmp sampling runs from overlapping atoms: tests/fixtures/lammps_overlap/make_outputs.py.

def _parse_overlap(calc_node, case):
    settings = orm.Dict({'type_map': ['Na', 'Cl'], 'frame_info': {'config_type': 'sp'}})
    node = calc_node('mlfail.lammps', f'lammps_overlap/{case}', {'settings': settings},
                     {'output_filename': 'lammps.out'})
    results, call = ParserFactory('mlfail.lammps').parse_from_node(node, store_provenance=False)
    for output in results.values():  # every output can be stored (no NaN in a Dict)
        output.store()
    return results, call


def test_lammps_parser_pppm_out_of_range(calc_node):
    results, call = _parse_overlap(calc_node, 'pppm_out_of_range')
    assert call.exit_status == 414
    assert 'PPPM found atoms out of range at step 0' in call.exit_message
    assert 'Out of range atoms - cannot compute PPPM' in call.exit_message
    assert 'first non-finite energy at step 0' in call.exit_message and 'no frame was stored' in call.exit_message
    assert 'training_set' not in results  # its only frame (step 0) is NaN
    assert np.isnan(results['thermo'].get_array('potential_energy')[0])
    assert results['results']['mean_temperature_last_half'] == 1400.0
    assert results['results']['non_finite'] == {'step': 0, 'quantity': 'energy'}


def test_lammps_parser_lost_atoms_keeps_the_frames(calc_node):
    results, call = _parse_overlap(calc_node, 'lost_atoms')
    assert call.exit_status == 411
    assert 'LAMMPS lost atoms at step 0: ERROR: Lost atoms: original 64 current 62' in call.exit_message
    assert results['training_set'].n_configurations == 1  # step 0: finite, 3.3e6 eV
    assert results['training_set'].get_atoms()[0].info['energy'] == pytest.approx(3280054.66657784)


def test_lammps_parser_lost_atoms_without_frames_is_still_lost_atoms(calc_node):
    """A run that died without frame files: the cause (411), not 'the frame dump was not retrieved' (302)."""
    results, call = _parse_overlap(calc_node, 'lost_atoms_no_frames')
    assert call.exit_status == 411
    assert 'Lost atoms' in call.exit_message and 'no frame was stored' in call.exit_message
    assert 'training_set' not in results and results['results']['stop_reason'] == 'lost_atoms'


def test_lammps_parser_nan_energy_of_a_finished_run(calc_node):
    """The run 'completes' with NaN energies (0 Å overlap, Wolf summation): 413, not an excepted job."""
    results, call = _parse_overlap(calc_node, 'nan_energy')
    assert call.exit_status == 413
    assert call.exit_message.startswith('the run produced a NaN or infinite energy at step 0')
    assert 'no frame stored' in call.exit_message
    assert results['results']['non_finite'] == {'step': 0, 'quantity': 'energy'}
    assert results['results']['n_frames'] == 0 and results['results']['n_frames_dropped'] == 5
    assert results['results']['final_temperature'] is None  # NaN in the thermo: None in the Dict
    assert 'thermo' in results


def test_lammps_parser_keeps_the_finite_frames_before_a_nan(calc_node):
    """Frames before the first NaN one are stored; the exit code names the quantity and the step."""
    base = FIXTURES / 'lammps_sample'
    labels = (base / 'labels.dat').read_text().splitlines()
    last = labels[-1].split()
    labels[-1] = ' '.join([last[0], 'nan', *last[2:]])
    settings = orm.Dict({'type_map': ['Na', 'Cl']})
    node = calc_node('mlfail.lammps', 'lammps_sample', {'settings': settings}, {'output_filename': 'lammps.out'},
                     **{'labels.dat': '\n'.join(labels) + '\n'})
    results, call = ParserFactory('mlfail.lammps').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 413
    assert f'NaN or infinite energy at step {last[0]}' in call.exit_message
    assert results['training_set'].n_configurations == 2 and 'the 2 frame(s) before it stored' in call.exit_message


def test_quip_parser_names_a_nan_prediction(calc_node, tmp_path):
    """A GAP that predicts NaN: exit 413 naming the configuration and label, no exception (not 350)."""
    import subprocess
    import sys

    from aiida_mlfail.data.training_set import TrainingSetData
    from aiida_mlfail.science.extxyz import write_configurations

    write_configurations(tmp_path / 'c.xyz', nacl_configurations(2))
    out = subprocess.run([sys.executable, '-m', 'aiida_mlfail.engines.quip', 'E=T', 'F=T', 'V=T',
                          f'atoms_filename={tmp_path / "c.xyz"}',
                          f'param_filename={FIXTURES / "gap_fit_ok" / "gap.xml"}'],
                         capture_output=True, text=True, check=True).stdout
    import re

    text = re.sub(r'energy=[-+0-9.eE]+', 'energy=nan', out, count=1)  # the first configuration's energy
    assert 'energy=nan' in text
    configurations = TrainingSetData.from_atoms(nacl_configurations(2))
    node = calc_node('mlfail.quip', 'gap_fit_ok', {'configurations': configurations}, **{'quip.out': text})
    _, call = ParserFactory('mlfail.quip').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 413
    assert 'energy is not finite' in call.exit_message and 'configuration 0' in call.exit_message


def test_a_parser_exception_is_exit_350_with_the_message(calc_node):
    """MlfailParser: an exception inside a parser (here: the job node lacks its inputs) is exit 350 naming it."""
    node = calc_node('mlfail.gap_fit', 'gap_fit_ok')  # finished fit, but no ``parameters`` input to read
    _, call = ParserFactory('mlfail.gap_fit').parse_from_node(node, store_provenance=False)
    assert call.exit_status == 350
    assert 'parameters' in call.exit_message
    assert call.exit_message.startswith('the parser raised an unexpected exception: ')


@pytest.mark.parametrize('name', ['lammps', 'gap_fit', 'quip', 'explore', 'rematch'])
def test_every_parser_uses_the_base_class_and_its_job_defines_350(name):
    from aiida.plugins import CalculationFactory

    from aiida_mlfail.calculations.common import SINGLE_PROCESS
    from aiida_mlfail.parsers.base import MlfailParser

    assert issubclass(ParserFactory(f'mlfail.{name}'), MlfailParser)
    spec = CalculationFactory(f'mlfail.{name}').spec()
    assert spec.exit_codes.ERROR_PARSER_EXCEPTION.status == 350
    options = spec.inputs['metadata']['options']
    assert options['parser_name'].default == f'mlfail.{name}'
    assert options['resources'].default == SINGLE_PROCESS
