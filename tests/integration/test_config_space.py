"""REMatch through the AiiDA daemon: ``mlfail.rematch`` and ``ConfigSpaceWorkChain`` on small NaCl sets,
numbers checked against ``science.rematch`` computed directly."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_mlfail.calculations.rematch import RematchCalculation
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import config_space
from aiida_mlfail.science.rematch import rematch_distance, rematch_kernel
from aiida_mlfail.science.soap import normalise_soap_parameters, normalised_features, soap_descriptor
from aiida_mlfail.science.structures import molten_nacl
from aiida_mlfail.workflows.config_space import ConfigSpaceWorkChain

pytestmark = pytest.mark.integration

SOAP = {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}
PNG = b'\x89PNG\r\n\x1a\n'


def _random_walk(n, sigma, seed):
    """A trajectory-like set: 16-ion NaCl, each frame the previous one displaced (Gaussian, ``sigma`` Å)."""
    rng = np.random.default_rng(seed)
    atoms = molten_nacl(16)
    frames = []
    for i in range(n):
        atoms = atoms.copy()
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        atoms.wrap()
        atoms.info['md_step'] = 20 * i
        frames.append(atoms)
    return frames


@pytest.fixture(scope='module')
def sets():
    x, y = _random_walk(6, 0.25, seed=5), _random_walk(8, 0.1, seed=6)
    descriptor = soap_descriptor(normalise_soap_parameters(SOAP, species=['Na', 'Cl']))
    return x, y, normalised_features(descriptor, x), normalised_features(descriptor, y)


def test_rematch_calculation_and_config_space_through_daemon(submit_and_await, rematch_code, sets):
    x, y, fx, fy = sets
    x_node, y_node = TrainingSetData.from_atoms(x).store(), TrainingSetData.from_atoms(y).store()
    full = rematch_kernel(fx, fy, alpha=0.1)

    node = submit_and_await(RematchCalculation, timeout=120, code=rematch_code, x=x_node, y=y_node,
                            soap=orm.Dict(SOAP), parameters=orm.Dict({'mode': 'matrix'}))
    assert node.is_finished_ok, node.exit_message
    np.testing.assert_allclose(node.outputs.arrays.get_array('kernel'), full, atol=1e-10)
    results = node.outputs.results.get_dict()
    assert (results['n_x'], results['n_y'], results['mode']) == (6, 8, 'matrix')
    assert results['wall_time_s'] > 0
    stdout = node.outputs.retrieved.base.repository.get_object_content('rematch.out', mode='r')
    assert '[mlfail-rematch] SOAP 8/8 configurations of Y' in stdout

    work = submit_and_await(ConfigSpaceWorkChain, timeout=180, rematch={'job': {'code': rematch_code}}, x=x_node,
                            y=y_node,
                            soap=orm.Dict(SOAP),
                            parameters=orm.Dict({'bins': 5, 'x_label': 'hot', 'y_label': 'cold'}))
    assert work.is_finished_ok, work.exit_message
    nearest = work.outputs.nearest_neighbour
    np.testing.assert_array_equal(nearest.get_array('nearest_index'), full.argmax(axis=1))
    np.testing.assert_allclose(nearest.get_array('distance'), rematch_distance(full.max(axis=1)), atol=1e-7)
    first_x = rematch_distance(rematch_kernel(fx, [fx[0]], alpha=0.1)[:, 0])
    first_y = rematch_distance(rematch_kernel(fy, [fy[0]], alpha=0.1)[:, 0])
    np.testing.assert_allclose(work.outputs.distance_to_first_x.get_array('distance'), first_x, atol=1e-7)
    np.testing.assert_allclose(work.outputs.distance_to_first_y.get_array('distance'), first_y, atol=1e-7)
    assert work.outputs.distance_to_first_y.get_array('md_step').tolist() == list(range(0, 160, 20))
    summary = work.outputs.summary.get_dict()
    assert summary['nearest_neighbour']['median'] == pytest.approx(np.median(rematch_distance(full.max(axis=1))))
    assert summary['distance_to_first']['x']['plateau'] == pytest.approx(config_space.plateau(first_x))
    assert summary['distance_to_first']['y']['max'] == pytest.approx(first_y.max())
    # the hot walk moves further from its start than the cold one, and is not covered by it
    assert summary['distance_to_first']['x']['plateau'] > summary['distance_to_first']['y']['plateau']
    assert summary['nearest_neighbour']['min'] > 1e-3
    for key in ('distance_to_first_plot', 'nearest_neighbour_plot'):
        assert work.outputs[key].get_content(mode='rb')[:8] == PNG
    # three REMatch jobs, each the one attempt of its restart wrapper (call link label = the job's role)
    wrappers = {link.link_label: link.node
                for link in work.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all()}
    assert sorted(wrappers) == ['distance_to_first_x', 'distance_to_first_y', 'nearest_neighbour']
    assert all(node.process_label == 'RematchRestartWorkChain' and node.is_finished_ok for node in wrappers.values())
    jobs = {label: node.called for label, node in wrappers.items()}
    assert all(len(called) == 1 and called[0].exit_status == 0 for called in jobs.values())
    assert {label: called[0].label for label, called in jobs.items()} == {label: label for label in jobs}


@pytest.mark.parametrize('parameters, soap, message', [
    ({'bins': 0}, SOAP, 'parameters: bins must be an integer >= 1 and <= 10000, got 0'),
    ({'alpha': -1.0}, SOAP, 'parameters: alpha must be a finite number > 0, got -1.0'),
    ({'bin': 10}, SOAP, r"parameters: unknown parameter key\(s\) \['bin'\]"),
    ({}, {**SOAP, 'species': ['Cl']}, r"soap: species \['Na'\] of x <\d+> are not in the SOAP species \['Cl'\]"),
])
def test_config_space_rejects_bad_input_at_submit(rematch_code, sets, parameters, soap, message):
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    x, y = (TrainingSetData.from_atoms(frames[:2]).store() for frames in sets[:2])
    with pytest.raises(ValueError, match=message):
        instantiate_process(get_manager().get_runner(), ConfigSpaceWorkChain, rematch={'job': {'code': rematch_code}},
                            x=x, y=y,
                            soap=orm.Dict(soap), parameters=orm.Dict(parameters))
