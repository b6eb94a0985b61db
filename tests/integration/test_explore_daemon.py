"""``ExploreCalculation`` through the AiiDA daemon with the real ``mlfail-explore`` (tiny GAP, 8 ions)."""

import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from tests.helpers import FIXTURES

pytestmark = pytest.mark.integration


def test_explore_through_daemon_stops_at_a_novel_configuration(submit_and_await, explore_code):
    """A hot run of the tiny GAP from a perfect crystal, with only that crystal as training set: novel."""
    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    node = submit_and_await(
        ExploreCalculation,
        timeout=120,
        code=explore_code,
        potential=GapPotentialData.from_folder(FIXTURES / 'bridge'),
        structure=orm.StructureData(ase=crystal),
        training_set=TrainingSetData.from_atoms([crystal]),
        parameters=orm.Dict({'temperature': 1500.0, 'max_steps': 300, 'comparison_step': 20,
                             'critical_similarity': 0.95, 'soap': {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}}),
        metadata={'options': {'max_wallclock_seconds': 600}},
    )
    assert node.is_finished_ok, node.exit_message
    results = node.outputs.results.get_dict()
    assert results['stop_reason'] == 'novel' and results['similarity'] < 0.95
    assert 0 < results['stop_step'] < 300 and results['n_checks'] == results['stop_step'] // 20 + 1
    configuration = node.outputs.configuration
    assert configuration.base.attributes.get('md_step') == results['stop_step']
    assert configuration.base.attributes.get('similarity') == results['similarity']
    assert configuration.base.attributes.get('stop_reason') == 'novel'
    assert 'previous_configuration' not in node.outputs
    assert node.outputs.similarity.get_array('step')[-1] == results['stop_step']
    assert node.outputs.thermo.get_array('step')[-1] == results['stop_step']
    # the novel configuration is its own node, findable from the explorer that made it
    found = orm.QueryBuilder().append(ExploreCalculation, filters={'id': node.pk}, tag='explore').append(
        orm.StructureData, with_incoming='explore', edge_filters={'label': 'configuration'},
        project='attributes.md_step').all(flat=True)
    assert found == [results['stop_step']]
    retrieved = node.outputs.retrieved.base.repository.list_object_names()
    assert 'reference_soap.npz' not in retrieved and 'log.lammps' in retrieved
