"""A guard stop on the restart wrapper's last allowed attempt ends as the guard's exit code, not 401.

aiida-core's ``BaseRestartWorkChain.inspect_process`` returns ERROR_MAXIMUM_ITERATIONS_EXCEEDED (401)
when a handler report arrives on the last iteration, unless the handler set ``ctx.is_finished``.
With ``max_iterations=1`` the first (and only) explorer job is that last attempt.
"""

import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.restart import ExploreRestartWorkChain, is_outcome
from tests.helpers import FIXTURES

pytestmark = pytest.mark.integration


def test_a_guard_stop_on_the_last_attempt_keeps_the_guard_exit_code(submit_and_await, explore_code):
    """8-ion NaCl crystal (nearest neighbours 2.82 Å) at 300 K with a 2.7 Å distance guard: trips in < 200 steps."""
    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    node = submit_and_await(
        ExploreRestartWorkChain,
        timeout=300,
        max_iterations=orm.Int(1),
        job={'code': explore_code, 'potential': GapPotentialData.from_folder(FIXTURES / 'bridge'),
             'structure': orm.StructureData(ase=crystal), 'training_set': TrainingSetData.from_atoms([crystal]),
             'parameters': orm.Dict({'temperature': 300.0, 'max_steps': 200, 'comparison_step': 20,
                                     'critical_similarity': 0.5, 'guards': {'min_distance': 2.7}}),
             'metadata': {'options': {'max_wallclock_seconds': 600}}},
    )
    guard = ExploreCalculation.exit_codes.ERROR_MD_EXPLODED
    assert node.exit_status == guard.status, f'[{node.exit_status}] {node.exit_message}'
    assert node.exit_code.status == ExploreRestartWorkChain.exit_codes.ERROR_MD_EXPLODED.status
    (job,) = node.called
    assert job.exit_status == guard.status and is_outcome(job) and is_outcome(node)
    assert job.exit_message in node.exit_message  # the job's own message is passed on
    results = node.outputs.results.get_dict()
    assert results['stop_reason'] == 'too_close_atoms' and results['guard_value'] < 2.7
    assert 0 < results['stop_step'] < 200
    # the outputs are the job's
    assert node.outputs.results.uuid == job.outputs.results.uuid
    assert node.outputs.configuration.uuid == job.outputs.configuration.uuid
    assert node.outputs.configuration.base.attributes.get('stop_reason') == 'too_close_atoms'
    assert {'previous_configuration', 'similarity', 'thermo'} <= set(node.outputs)
