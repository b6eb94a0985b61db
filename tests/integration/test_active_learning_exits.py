"""ActiveLearningWorkChain exit codes through the daemon with real programs (or a failing one).

Initial data: the committed 64-ion BMHTF frames; a 2-body GAP; the explorer starts from a dilute
melt, so the first exploration flags a novel configuration at step 0. The max_iterations end (701, with
'max_iterations=2' in the exit message) is checked on the run of ``test_active_learning.py``.
"""

import pytest
from aiida import orm

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.references import lammps_reference
from aiida_mlfail.science.structures import molten_nacl
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
from tests.helpers import nacl_configurations

pytestmark = pytest.mark.integration

BMHTF = {'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1e-4}}


@pytest.fixture
def failing_code(aiida_code_installed):
    """A code that exits 1 at once (``/bin/false``), standing in for a broken installation."""
    def factory(plugin):
        return aiida_code_installed(label=f'false_{plugin.replace(".", "_")}', default_calc_job_plugin=plugin,
                                    filepath_executable='/bin/false')
    return factory


@pytest.fixture
def inputs(lammps_code, gap_fit_code, quip_code, explore_code):
    return {
        'training_set': TrainingSetData.from_atoms(nacl_configurations(3), reference=lammps_reference(BMHTF)),
        'validation_set': TrainingSetData.from_atoms(nacl_configurations(3)[1:], reference=lammps_reference(BMHTF)),
        'gap': {'fit': {'job': {'code': gap_fit_code, 'parameters': orm.Dict({
                    'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 15,
                                     'sparse_method': 'uniform'}],
                    'sigma': {'energy': 0.005, 'forces': 0.1, 'virial': 0.1}})}},
                'predict': {'job': {'code': quip_code}}},
        'explore': {'job': {'code': explore_code,
                            'structure': orm.StructureData(ase=molten_nacl(64, volume=3100.0, seed=4)),
                            'parameters': orm.Dict({'ensemble': 'NPT', 'max_steps': 40, 'comparison_step': 20,
                                                    'critical_similarity': 0.998, 'soap': {'r_cut': 4.0, 'n_max': 3,
                                                                                           'l_max': 2}})}},
        'label': {'lammps': {'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}}},
        'predict': {'job': {'code': quip_code}},
        'parameters': orm.Dict({'max_iterations': 3, 'max_new_configurations': 1}),
    }


def test_max_new_configurations_ends_the_loop_with_702(submit_and_await, inputs):
    node = submit_and_await(ActiveLearningWorkChain, timeout=600, **inputs)
    assert node.exit_status == 702, node.exit_message
    rows = node.outputs.summary['iterations']
    assert len(rows) == 1 and rows[0]['stop_reason'] == 'novel' and rows[0]['steps'] == 0
    assert rows[0]['added'] == 1  # trigger accepted; nothing more fits under the limit
    assert node.outputs.training_set.n_configurations == 4
    refits = [n for n in node.called if n.process_label == 'GapWorkChain']
    assert len(refits) == 2 and node.outputs.potential.uuid == max(refits, key=lambda n: n.pk).outputs.potential.uuid


@pytest.mark.parametrize('broken, port, status', [
    ('mlfail.gap_fit', ('gap', 'fit', 'job', 'code'), 402),
    ('mlfail.explore', ('explore', 'job', 'code'), 403),
    ('mlfail.quip', ('predict', 'job', 'code'), 405),
])
def test_a_failing_step_is_named_by_its_exit_code(submit_and_await, inputs, failing_code, broken, port, status):
    target = inputs
    for key in port[:-1]:
        target = target[key]
    target[port[-1]] = failing_code(broken)
    node = submit_and_await(ActiveLearningWorkChain, timeout=600, **inputs)
    assert node.exit_status == status, f'[{node.exit_status}] {node.exit_message}'
    assert node.exit_message and ('failed' in node.exit_message)


def test_a_failing_initial_sampling_is_401(submit_and_await, inputs, failing_code):
    del inputs['training_set'], inputs['validation_set']
    inputs['sampling'] = {'lammps': {'job': {'code': failing_code('mlfail.lammps')}},
                          'structure_spec': orm.Dict({'system': 'nacl', 'n_ions': 32}), 'potential': orm.Dict(BMHTF),
                          'state_points': orm.List([{'temperature': 1400.0, 'volume': 1175.0}])}
    node = submit_and_await(ActiveLearningWorkChain, timeout=300, **inputs)
    assert node.exit_status == 401, f'[{node.exit_status}] {node.exit_message}'


def _report(node):
    return [log.message for log in orm.Log.collection.get_logs_for(node)]


def test_a_labeller_that_fails_fills_the_ledger_and_the_budget_ends_the_run_with_406(
        submit_and_await, inputs, failing_code):
    """Every label fails (a broken LAMMPS): the trigger goes to the ledger of failed labels, the loop would go on,
    but max_failed_labels=0 ends the run with 406, outputs attached."""
    inputs['label']['lammps']['job']['code'] = failing_code('mlfail.lammps')
    inputs['parameters'] = orm.Dict({'max_iterations': 3, 'max_new_configurations': 5, 'max_failed_labels': 0})
    node = submit_and_await(ActiveLearningWorkChain, timeout=600, **inputs)
    assert node.exit_status == 406, f'[{node.exit_status}] {node.exit_message}'
    assert 'max_failed_labels=0' in node.exit_message
    ledger = node.outputs.failed_labels.get_dict()
    assert ledger['count'] == 1
    (item,) = ledger['failed']
    assert item['iteration'] == 1 and item['candidate'] == 'trigger' and item['stage'] == 'label'
    assert 'no configuration could be labelled' in item['reason']
    rows = node.outputs.summary['iterations']
    assert len(rows) == 1 and rows[0]['label_failures'] == 1 and rows[0]['added'] == 0
    assert node.outputs.summary['outcome'] == 'max_failed_labels'
    assert 'potential' in node.outputs and node.outputs.training_set.n_configurations == 3


def test_a_rejected_trigger_is_not_the_next_start_nor_labelled_again(submit_and_await, inputs):
    """The outlier check rejects the trigger (the start is a perfect crystal, 0.2 eV/atom above the training mean, with
    zero forces; the energy bound is 1 meV/atom): iteration 2 starts from the
    start structure, not from the rejected trigger; it flags the same configuration, which is not labelled again."""
    inputs['parameters'] = orm.Dict({'max_iterations': 2, 'max_new_configurations': 5,
                                     'outliers': {'max_energy_deviation': 1e-3}})
    node = submit_and_await(ActiveLearningWorkChain, timeout=600, **inputs)
    assert node.exit_status == 701, f'[{node.exit_status}] {node.exit_message}'
    rows = node.outputs.summary['iterations']
    assert [r['stop_reason'] for r in rows] == ['novel', 'novel'] and [r['steps'] for r in rows] == [0, 0]
    assert rows[0]['rejected'] == 1 and rows[0]['added'] == 0 and rows[1]['added'] == 0
    explorations = sorted((n for n in node.called if n.process_label == 'ExploreRestartWorkChain'), key=lambda n: n.pk)
    start = inputs['explore']['job']['structure']
    assert [e.inputs.job.structure.uuid for e in explorations] == [start.uuid, start.uuid]
    labellings = [n for n in node.called if n.process_label == 'LabelWorkChain']
    assert len(labellings) == 1  # iteration 2 flagged the same configuration: not labelled again
    assert any('was labelled before (flagged a second time): not labelled again' in m for m in _report(node))
    ledger = node.outputs.failed_labels.get_dict()
    assert ledger['count'] == 1 and ledger['failed'][0]['stage'] == 'outlier'
    assert 'eV/atom from the training mean' in ledger['failed'][0]['reason']
    assert node.outputs.training_set.uuid == inputs['training_set'].uuid  # nothing merged, no refit
