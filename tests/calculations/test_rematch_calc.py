"""``mlfail.rematch``: submit-time validation, prepare_for_submission, and the parser on a real engine output."""

import json

import numpy as np
import pytest
from aiida import orm
from aiida.common.folders import Folder
from aiida.common.links import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from aiida.plugins import ParserFactory
from ase.build import bulk

from aiida_mlfail.calculations.rematch import RematchCalculation
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.engines import rematch as engine
from tests.helpers import nacl_configurations

SOAP = {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}


@pytest.fixture
def nacl_sets():
    return TrainingSetData.from_atoms(nacl_configurations(3)), TrainingSetData.from_atoms(nacl_configurations(2))


def _instantiate(code, **inputs):
    return instantiate_process(get_manager().get_runner(), RematchCalculation, code=code, **inputs)


def test_prepare_writes_configurations_and_parameters(tmp_path, rematch_code, nacl_sets):
    x, y = nacl_sets
    process = _instantiate(rematch_code, x=x, y=y, soap=orm.Dict(SOAP),
                           parameters=orm.Dict({'mode': 'nearest_neighbour', 'alpha': 0.5}))
    calcinfo = process.prepare_for_submission(Folder(str(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['parameters.json', 'x.xyz', 'y.xyz']
    assert (tmp_path / 'x.xyz').read_text() == x.get_text()
    parameters = json.loads((tmp_path / 'parameters.json').read_text())
    assert parameters['mode'] == 'nearest_neighbour' and parameters['alpha'] == 0.5
    assert parameters['threshold'] == engine.PARAMETER_DEFAULTS['threshold']
    assert parameters['soap']['species'] == ['Cl', 'Na'] and parameters['soap']['n_max'] == 3
    assert (parameters['x'], parameters['y']) == ('x.xyz', 'y.xyz')
    (codeinfo,) = calcinfo.codes_info
    assert codeinfo.cmdline_params == ['parameters.json']
    assert {'rematch.npz', 'results.json', 'rematch.out'} <= set(calcinfo.retrieve_list)
    assert calcinfo.provenance_exclude_list == ['x.xyz', 'y.xyz']

    process = _instantiate(rematch_code, x=x, parameters=orm.Dict({'mode': 'matrix'}))
    folder = tmp_path / 'single'
    folder.mkdir()
    process.prepare_for_submission(Folder(str(folder)))
    assert json.loads((folder / 'parameters.json').read_text())['y'] is None
    assert not (folder / 'y.xyz').exists()


@pytest.mark.parametrize('parameters, soap, message', [
    ({'mode': 'nearest'}, SOAP, r"parameters: unknown mode 'nearest'; use one of \['distance_to_first'"),
    ({'mode': 'matrix', 'alpha': 0}, SOAP, 'parameters: alpha must be a finite number > 0, got 0'),
    ({'mode': 'matrix', 'alpha': 'large'}, SOAP, "parameters: alpha must be a finite number > 0, got 'large'"),
    ({'mode': 'matrix', 'gamma': 1}, SOAP, r"parameters: unknown REMatch parameter key\(s\) \['gamma'\]"),
    ({'mode': 'matrix'}, {**SOAP, 'r_cut': 0.5}, 'soap: SOAP r_cut must be a finite number > 1.0 Å, got 0.5'),
    ({'mode': 'matrix'}, {**SOAP, 'n_maxx': 3}, r"soap: unknown SOAP parameter key\(s\) \['n_maxx'\]"),
    ({'mode': 'matrix'}, {**SOAP, 'species': ['Na']}, r"soap: species \['Cl'\] of x <\d+> are not in the SOAP "
                                                       r"species \['Na'\]"),
])
def test_bad_input_fails_at_submit(rematch_code, nacl_sets, parameters, soap, message):
    x, y = nacl_sets
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):
        _instantiate(rematch_code, x=x.store(), y=y, soap=orm.Dict(soap), parameters=orm.Dict(parameters))
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_species_of_y_not_covered(rematch_code, nacl_sets):
    argon = TrainingSetData.from_atoms([bulk('Ar', 'fcc', a=5.26, cubic=True)])
    with pytest.raises(ValueError, match=r"soap: species \['Ar'\] of y <unstored> are not in the SOAP species "
                                         r"\['Cl', 'Na'\]"):
        _instantiate(rematch_code, x=nacl_sets[0], y=argon, soap=orm.Dict({**SOAP, 'species': ['Na', 'Cl']}),
                     parameters=orm.Dict({'mode': 'matrix'}))
    # without explicit species the union is used: NaCl against argon is a valid (if odd) comparison
    _instantiate(rematch_code, x=nacl_sets[0], y=argon, soap=orm.Dict(SOAP), parameters=orm.Dict({'mode': 'matrix'}))


@pytest.fixture
def parsed(tmp_path, monkeypatch, aiida_localhost, rematch_code, nacl_sets):
    """Factory: prepare a job, run the engine in-process on its folder, parse the files with the real parser."""

    def factory(mode, with_y=True, tamper=None):
        x, y = nacl_sets
        inputs = {'x': x, 'soap': orm.Dict(SOAP), 'parameters': orm.Dict({'mode': mode})}
        if with_y:
            inputs['y'] = y
        work = tmp_path / mode
        work.mkdir()
        _instantiate(rematch_code, **inputs).prepare_for_submission(Folder(str(work)))
        monkeypatch.chdir(work)
        assert engine.main(['parameters.json']) == 0
        if tamper:
            tamper(work)
        node = orm.CalcJobNode(computer=aiida_localhost, process_type='aiida.calculations:mlfail.rematch')
        node.set_option('resources', {'num_machines': 1})
        for label, data in inputs.items():
            node.base.links.add_incoming(data.store(), link_type=LinkType.INPUT_CALC, link_label=label)
        node.store()
        retrieved = orm.FolderData()
        for name in ('rematch.npz', 'results.json'):
            if (work / name).exists():
                retrieved.base.repository.put_object_from_file(str(work / name), name)
        retrieved.base.repository.put_object_from_bytes(b'mlfail-rematch: ValueError: something broke\n',
                                                        'rematch.err')
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label='retrieved')
        retrieved.store()
        return ParserFactory('mlfail.rematch').parse_from_node(node, store_provenance=False)

    return factory


def test_parser_on_engine_output(parsed):
    results, call = parsed('nearest_neighbour')
    assert call.exit_status == 0, call.exit_message
    arrays = results['arrays']
    assert set(arrays.get_arraynames()) == {'kernel', 'distance', 'nearest_index', 'md_step', 'md_step_y'}
    # nacl_configurations cycles 3 real frames: Y = frames 0, 1 is contained in X = frames 0, 1, 2
    assert arrays.get_array('nearest_index')[:2].tolist() == [0, 1]
    assert arrays.get_array('distance')[:2] == pytest.approx([0, 0], abs=1e-6)
    assert arrays.get_array('distance')[2] > 1e-3
    summary = results['results'].get_dict()
    assert (summary['mode'], summary['n_x'], summary['n_y']) == ('nearest_neighbour', 3, 2)
    assert summary['max_distance'] == pytest.approx(arrays.get_array('distance').max())

    results, call = parsed('matrix', with_y=False)
    assert call.exit_status == 0, call.exit_message
    distance = results['arrays'].get_array('distance')
    assert distance.shape == (3, 3) and np.allclose(distance, distance.T)


def test_parser_missing_and_invalid_output(parsed):
    _, call = parsed('distance_to_first', tamper=lambda work: (work / 'rematch.npz').unlink())
    assert call.exit_status == 301
    assert call.exit_message == 'mlfail-rematch wrote no rematch.npz: mlfail-rematch: ValueError: something broke'

    def wrong_count(work):
        results = json.loads((work / 'results.json').read_text())
        (work / 'results.json').write_text(json.dumps({**results, 'n_x': 7}))

    _, call = parsed('matrix', tamper=wrong_count)
    assert call.exit_status == 302
    assert "array 'kernel' has shape (3, 2), expected (7, 2)" in call.exit_message

    _, call = parsed('nearest_neighbour', tamper=lambda work: (work / 'rematch.npz').write_bytes(b'not a zip'))
    assert call.exit_status == 302 and 'rematch.npz is unreadable' in call.exit_message
