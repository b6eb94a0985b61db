"""``mlfail.explore``: submit-time validation, prepare_for_submission, and the parser on real engine outputs.

The parser fixtures in ``tests/fixtures/explore`` are outputs of real ``mlfail-explore`` runs
(regenerate with ``tests/fixtures/explore/make_outputs.py``).
"""

import json

import numpy as np
import pytest
from aiida import orm
from aiida.common.folders import Folder
from aiida.common.links import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from aiida.plugins import ParserFactory
from ase import Atoms
from ase.build import bulk

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import explore as sx
from tests.helpers import FIXTURES

SOAP = {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}
PARAMETERS = {'max_steps': 100, 'comparison_step': 20, 'critical_similarity': 0.9, 'soap': SOAP}


def _crystal(rattle=0.0, seed=1):
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


def _inputs(code, **overrides):
    inputs = {
        'code': code,
        'potential': GapPotentialData.from_folder(FIXTURES / 'bridge'),
        'structure': orm.StructureData(ase=_crystal()),
        'training_set': TrainingSetData.from_atoms([_crystal(), _crystal(0.1, 2), _crystal(0.1, 3)]),
        'parameters': orm.Dict(PARAMETERS),
    }
    return {**inputs, **overrides}


def test_prepare_writes_engine_inputs(tmp_path, explore_code):
    inputs = _inputs(explore_code)
    process = instantiate_process(get_manager().get_runner(), ExploreCalculation, **inputs)
    calcinfo = process.prepare_for_submission(Folder(str(tmp_path)))
    gap_files = inputs['potential'].base.attributes.get('files')
    assert set(gap_files) | {sx.INPUT_FILE, sx.DATA_FILE, sx.REFERENCE_FILE} == {p.name for p in tmp_path.iterdir()}
    config = sx.read_engine_input((tmp_path / sx.INPUT_FILE).read_text())
    type_map = config['type_map']
    assert sorted(type_map) == ['Cl', 'Na']
    assert config['pair_commands'] == inputs['potential'].lammps_pair_commands(type_map)
    assert config['parameters']['soap']['species'] == ['Cl', 'Na']
    assert config['parameters']['critical_similarity'] == 0.9
    assert config['reference_volume'] == pytest.approx(5.64**3)
    _, features = sx.read_references(tmp_path / sx.REFERENCE_FILE, config['parameters']['soap'])
    assert len(features) == 3
    assert not np.allclose(features[0], features[1])  # the rattled configurations differ
    (codeinfo,) = calcinfo.codes_info
    assert codeinfo.cmdline_params == [sx.INPUT_FILE]
    assert process.node.get_option('withmpi') is False
    assert {sx.RESULTS_FILE, sx.SIMILARITY_FILE, sx.THERMO_FILE, sx.TRIGGER_FILE, sx.PREVIOUS_FILE,
            codeinfo.stderr_name} <= set(calcinfo.retrieve_list)
    assert set(calcinfo.provenance_exclude_list) == {*gap_files, sx.REFERENCE_FILE}


def test_prepare_copies_the_checkpoint_of_the_parent_folder(tmp_path, explore_code):
    """With ``parent_folder`` the job copies its ``checkpoint/`` (same computer); without, nothing is copied."""
    parent = orm.RemoteData(computer=explore_code.computer, remote_path='/scratch/aa/bb/earlier_job')
    process = instantiate_process(get_manager().get_runner(), ExploreCalculation,
                                  **_inputs(explore_code, parent_folder=parent))
    (tmp_path / 'with').mkdir()
    (tmp_path / 'without').mkdir()
    calcinfo = process.prepare_for_submission(Folder(str(tmp_path / 'with')))
    assert calcinfo.remote_copy_list == [(explore_code.computer.uuid, '/scratch/aa/bb/earlier_job/checkpoint',
                                          sx.CHECKPOINT_DIR)]
    process = instantiate_process(get_manager().get_runner(), ExploreCalculation, **_inputs(explore_code))
    assert not process.prepare_for_submission(Folder(str(tmp_path / 'without'))).remote_copy_list


def test_a_parent_folder_on_another_computer_is_refused_at_submit(explore_code, aiida_computer):
    other = aiida_computer(label='elsewhere')
    parent = orm.RemoteData(computer=other, remote_path='/scratch/x')
    with pytest.raises(ValueError, match="parent_folder is on the computer 'elsewhere'.*same computer"):
        instantiate_process(get_manager().get_runner(), ExploreCalculation,
                            **_inputs(explore_code, parent_folder=parent))


LJ = {'name': 'lammps', 'species': ['Na', 'Cl'], 'atom_style': 'atomic',
      'commands': ['pair_style lj/cut 4.5', 'pair_coeff * * 0.1 2.5']}


def test_prepare_oracle_mode_writes_the_reference_and_its_files(tmp_path, explore_code):
    reference = {**LJ, 'commands': ['pair_style table linear 100', 'pair_coeff * * lj.table LJ 4.5'],
                 'files': ['lj.table']}
    table = orm.SinglefileData.from_string('# not read here\n', filename='lj.table')
    inputs = _inputs(explore_code, parameters=orm.Dict({**PARAMETERS, 'oracle': True}),
                     oracle_reference=orm.Dict(reference), oracle_files={'table': table})
    process = instantiate_process(get_manager().get_runner(), ExploreCalculation, **inputs)
    calcinfo = process.prepare_for_submission(Folder(str(tmp_path)))
    config = sx.read_engine_input((tmp_path / sx.INPUT_FILE).read_text())
    assert config['parameters']['oracle'] is True and config['oracle_reference']['files'] == ['lj.table']
    assert (tmp_path / 'lj.table').read_text() == '# not read here\n'
    assert 'signals.dat' in calcinfo.retrieve_list


NOT_PERIODIC = Atoms('NaCl', positions=[[0, 0, 0], [2.8, 0, 0]], cell=[6, 6, 6], pbc=[True, True, False])


@pytest.mark.parametrize('parameters, structure, match', [
    ({**PARAMETERS, 'critical_similarity': 2.0}, None,
     'parameters: critical_similarity must be a finite number > 0 and <= 1, got 2.0'),
    ({**PARAMETERS, 'steps': 10}, None, r"unknown explore parameter key\(s\) \['steps'\]"),
    ({**PARAMETERS, 'checkpoint_interval': -100}, None,
     'parameters: checkpoint_interval must be an integer >= 0, got -100'),
    ({**PARAMETERS, 'guards': {'max_energy_per_atom': 100.0}}, None,
     r'parameters: guards.max_energy_per_atom was renamed guards.max_energy_change_per_atom'),
    (PARAMETERS, bulk('Ar', 'fcc', a=5.26, cubic=True),
     r"species \['Ar'\] of the structure are not described by the GAP"),
    ({**PARAMETERS, 'soap': {**SOAP, 'species': ['Na']}}, None,
     r"parameters.soap.species \['Na'\] do not cover the species \['Cl'\] of the structure"),
    ({**PARAMETERS, 'soap': {**SOAP, 'species': ['Na']}}, Atoms('Na', positions=[[0, 0, 0]], cell=[6, 6, 6], pbc=True),
     r"parameters.soap.species \['Na'\] do not cover the species \['Cl'\] of the training_set"),
    (PARAMETERS, NOT_PERIODIC, r'structure: a periodic cell is needed .* got pbc=\[True, True, False\]'),
    ({**PARAMETERS, 'novelty_signal': 'variance'}, None,
     'parameters: novelty_signal .variance. needs critical_variance'),
    ({**PARAMETERS, 'oracle': True}, None, 'parameters.oracle is true but no oracle_reference is given'),
    (PARAMETERS, LJ, 'an oracle_reference is given but parameters.oracle is not true'),
    ({**PARAMETERS, 'oracle': True}, {**LJ, 'species': ['Na']},
     r"oracle_reference: species \['Cl'\] are not described by the lammps potential"),
    ({**PARAMETERS, 'oracle': True},
     {**LJ, 'commands': ['pair_style eam', 'pair_coeff 1 1 Na.eam'], 'files': ['Na.eam']},
     r"oracle_files: the reference potential names the file\(s\) \['Na.eam'\]"),
], ids=['parameters', 'unknown-key', 'checkpoint-interval', 'renamed-energy-guard', 'species-not-in-gap',
        'soap-species-structure', 'soap-species-training', 'not-periodic', 'variance-without-critical',
        'oracle-without-reference', 'reference-without-oracle', 'oracle-species', 'oracle-files'])
def test_bad_inputs_are_refused_at_submit(explore_code, parameters, structure, match):
    overrides = {'parameters': orm.Dict(parameters)}
    if isinstance(structure, dict):
        overrides['oracle_reference'] = orm.Dict(structure)
    elif structure is not None:
        overrides['structure'] = orm.StructureData(ase=structure)
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=match):
        instantiate_process(get_manager().get_runner(), ExploreCalculation, **_inputs(explore_code, **overrides))
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


@pytest.fixture
def explore_node(aiida_localhost):
    """Factory: a stored ``mlfail.explore`` CalcJobNode whose ``retrieved`` holds ``tests/fixtures/explore/<case>``
    (files in ``drop`` left out, ``replace`` contents written instead)."""

    def factory(case, drop=(), **replace):
        node = orm.CalcJobNode(computer=aiida_localhost, process_type='aiida.calculations:mlfail.explore')
        node.set_option('resources', {'num_machines': 1})
        node.store()
        retrieved = orm.FolderData()
        for path in (FIXTURES / 'explore' / case).iterdir():
            if path.name not in drop and path.name not in replace:
                retrieved.base.repository.put_object_from_file(str(path), path.name)
        for name, content in replace.items():
            retrieved.base.repository.put_object_from_bytes(content.encode(), name)
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
        retrieved.store()
        return node

    return factory


def _parse(node):
    return ParserFactory('mlfail.explore').parse_from_node(node, store_provenance=False)


def test_parser_novel(explore_node):
    outputs, call = _parse(explore_node('novel'))
    assert call.exit_status == 0, call.exit_message
    assert set(outputs) == {'results', 'configuration', 'similarity', 'thermo'}
    results = outputs['results'].get_dict()
    assert results['stop_reason'] == 'novel' and results['similarity'] < results['critical_similarity']
    configuration = outputs['configuration']
    attributes = configuration.base.attributes
    assert attributes.get('md_step') == results['stop_step'] > 0
    assert attributes.get('similarity') == results['similarity']
    assert attributes.get('reference_index') == 0 and attributes.get('stop_reason') == 'novel'
    assert len(configuration.sites) == 8 and configuration.get_symbols_set() == {'Na', 'Cl'}
    similarity = outputs['similarity']
    assert similarity.get_array('step')[-1] == results['stop_step']
    assert similarity.get_array('similarity')[-1] == results['similarity']
    assert similarity.base.attributes.get('critical_similarity') == results['critical_similarity']
    thermo = outputs['thermo']
    assert set(thermo.get_arraynames()) == {name for name, _ in sx.THERMO_COLUMNS}
    assert thermo.get_array('step')[0] == 0 and thermo.base.attributes.get('units')['pressure'] == 'bar'


def test_parser_guard_stop_keeps_outputs_and_previous(explore_node):
    outputs, call = _parse(explore_node('volume_blowup'))
    assert call.exit_status == 410
    results = outputs['results'].get_dict()
    assert f"volume_blowup guard at step {results['stop_step']}" in call.exit_message
    assert set(outputs) == {'results', 'configuration', 'previous_configuration', 'similarity', 'thermo'}
    configuration = outputs['configuration']
    assert configuration.base.attributes.get('stop_reason') == 'volume_blowup'
    assert configuration.get_cell_volume() == pytest.approx(results['guard_value'], rel=1e-6)
    previous = outputs['previous_configuration'].base.attributes
    assert previous.get('md_step') == results['previous']['step'] < results['stop_step']
    assert previous.get('stop_reason') == 'previous' and previous.get('similarity') >= results['critical_similarity']


def test_parser_lost_atoms_and_lammps_error(explore_node):
    outputs, call = _parse(explore_node('lost_atoms'))
    assert call.exit_status == 411 and 'Lost atoms' in call.exit_message
    assert 'configuration' not in outputs and 'previous_configuration' in outputs
    assert outputs['results']['similarity'] is None
    # another LAMMPS error (the engine reports e.g. a failed GAP evaluation so): 412, outputs kept
    results = json.loads((FIXTURES / 'explore' / 'lost_atoms' / sx.RESULTS_FILE).read_text())
    error = {**results, 'stop_reason': 'lammps_error', 'message': 'GAP evaluation failed: RuntimeError: boom'}
    outputs, call = _parse(explore_node('lost_atoms', **{sx.RESULTS_FILE: json.dumps(error)}))
    assert call.exit_status == 412 and 'LAMMPS failed at step 10: GAP evaluation failed' in call.exit_message
    assert {'results', 'previous_configuration', 'similarity', 'thermo'} == set(outputs)


def test_parser_missing_and_invalid_outputs(explore_node):
    _, call = _parse(explore_node('setup_error'))
    assert call.exit_status == 301
    assert "explore_results.json: mlfail-explore: ERROR: reference file 'reference_soap.npz' not found" \
        in call.exit_message
    _, call = _parse(explore_node('novel', drop=(sx.TRIGGER_FILE,)))
    assert call.exit_status == 301 and sx.TRIGGER_FILE in call.exit_message
    results = json.loads((FIXTURES / 'explore' / 'novel' / sx.RESULTS_FILE).read_text())
    _, call = _parse(explore_node('novel', **{sx.RESULTS_FILE: json.dumps({**results, 'stop_reason': 'bored'})}))
    assert call.exit_status == 302 and "unknown stop reason 'bored'" in call.exit_message
    _, call = _parse(explore_node('novel', **{sx.THERMO_FILE: '0 1 2\n'}))
    assert call.exit_status == 302 and 'thermo.dat line 1' in call.exit_message
    _, call = _parse(explore_node('novel', **{sx.TRIGGER_FILE: 'garbage'}))
    assert call.exit_status == 302 and 'trigger.xyz: not an extxyz frame' in call.exit_message


def test_parser_nan_thermo_and_results_is_413_not_an_exception(explore_node):
    """A NaN potential energy in the thermo table and a NaN in the results JSON (issue 13): every output stored
    (the NaN in ``results`` as None), exit 413 naming the quantity and the step."""
    import json

    base = FIXTURES / 'explore' / 'novel'
    thermo = (base / 'thermo.dat').read_text().splitlines()
    row = thermo[2].split()
    thermo[2] = ' '.join([row[0], row[1], 'nan', *row[3:]])
    results = json.loads((base / 'explore_results.json').read_text())
    results['guard_value'] = float('nan')
    outputs, call = _parse(explore_node('novel', **{'thermo.dat': '\n'.join(thermo) + '\n',
                                                    'explore_results.json': json.dumps(results)}))
    assert call.exit_status == 413
    assert call.exit_message.startswith(f'the run produced a NaN or infinite potential_energy at step {row[0]}')
    assert set(outputs) == {'results', 'configuration', 'similarity', 'thermo'}
    for output in outputs.values():
        output.store()
    assert outputs['results']['guard_value'] is None


def test_parser_signals_output_and_a_malformed_signals_file(explore_node):
    from aiida_mlfail.science import signals as ss

    rows = [{'step': 0, 'similarity': 1.0, 'max_variance': 2e-5, 'force_rmse': 0.01},
            {'step': 20, 'similarity': 0.9, 'max_variance': 3e-4, 'force_rmse': 0.05}]
    outputs, call = _parse(explore_node('novel', **{ss.SIGNALS_FILE: ss.signals_table(rows)}))
    assert call.exit_status == 0, call.exit_message
    signals = outputs['signals']
    np.testing.assert_array_equal(signals.get_array('step'), [0, 20])
    np.testing.assert_allclose(signals.get_array('force_rmse'), [0.01, 0.05])
    assert np.isnan(signals.get_array('temperature')).all()  # not given: NaN, not 0
    assert signals.base.attributes.get('units')['max_variance'] == 'eV^2'
    _outputs, call = _parse(explore_node('novel', **{ss.SIGNALS_FILE: '0 1.0\n'}))
    assert call.exit_status == 302 and 'signals.dat line 1' in call.exit_message
