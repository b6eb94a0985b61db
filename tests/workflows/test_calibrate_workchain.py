"""``mlfail.calibrate``: submit-time validation, the builder's protocol, and the active learner taking its result."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from ase.build import bulk

from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain, calibrated_parameters
from aiida_mlfail.workflows.calibrate import CalibrateWorkChain
from tests.helpers import FIXTURES

LJ = {'name': 'lammps', 'species': ['Na', 'Cl'], 'atom_style': 'atomic',
      'commands': ['pair_style lj/cut 4.5', 'pair_coeff * * 0.1 2.5']}


def _builder(explore_code, **overrides):
    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    builder = CalibrateWorkChain.get_builder_from_protocol(
        explore_code, GapPotentialData.from_folder(FIXTURES / 'bridge'), crystal, LJ,
        overrides={'calibration': {'error_threshold': 1.0}, **overrides})
    builder.training_set = TrainingSetData.from_atoms([crystal])
    return builder


@pytest.mark.parametrize('protocol', ['fast', 'moderate', 'precise'])
def test_protocols_build_valid_inputs(explore_code, protocol):
    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    builder = CalibrateWorkChain.get_builder_from_protocol(
        explore_code, GapPotentialData.from_folder(FIXTURES / 'bridge'), crystal, LJ, protocol=protocol,
        metrics={'forces': {'rmse': 0.1}})
    process = instantiate_process(get_manager().get_runner(), CalibrateWorkChain, **builder)
    inputs = CalibrateWorkChain.get_protocol_inputs(protocol)
    assert process.inputs.seeds.get_list() == inputs['seeds']
    assert process.inputs.explore.job.parameters.get_dict() == inputs['explore']['job']['parameters']


@pytest.mark.parametrize('overrides, extra, match', [
    ({'seeds': []}, {}, 'seeds must be a non-empty list'),
    ({'seeds': [1, 1]}, {}, r'seeds \[1, 1\] repeat a seed'),
    ({'calibration': {'error': 'energy'}}, {}, 'error must be one of'),
    ({'calibration': {'error_threshold': None}}, {}, 'give calibration.error_threshold'),
    ({}, {'reference': {**LJ, 'species': ['Na']}}, r"reference: species \['Cl'\] are not described"),
    ({}, {'reference': {**LJ, 'commands': ['pair_style eam', 'pair_coeff 1 1 Na.eam'], 'files': ['Na.eam']}},
     r"reference_files: .*\['Na.eam'\]"),
    ({'explore': {'job': {'parameters': {'max_steps': 0}}}}, {}, 'max_steps must be'),
], ids=['no-seed', 'repeated-seed', 'error-name', 'no-threshold', 'reference-species', 'reference-files',
        'explore-parameters'])
def test_bad_inputs_are_refused_at_submit(explore_code, overrides, extra, match):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=match):  # the builder's port validation, or the submit-time one
        builder = _builder(explore_code, **overrides)
        for key, value in extra.items():
            builder[key] = orm.Dict(value)
        instantiate_process(get_manager().get_runner(), CalibrateWorkChain, **builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_the_active_learner_takes_the_recommended_values():
    recommended = orm.Dict({'critical_similarity': 0.9735, 'critical_variance': 0.02, 'error': 'force_rmse',
                            'error_threshold': 1.0, 'target_fpr': 0.05})
    rematch = calibrated_parameters({'critical_similarity': 0.99, 'max_steps': 50}, recommended)
    assert rematch == {'critical_similarity': 0.9735, 'max_steps': 50}  # no variance signal: no critical_variance
    both = calibrated_parameters({'novelty_signal': 'both', 'critical_variance': 1.0}, recommended)
    assert both == {'novelty_signal': 'both', 'critical_variance': 0.02, 'critical_similarity': 0.9735}
    assert calibrated_parameters({'critical_similarity': 0.99}, None) == {'critical_similarity': 0.99}
    port = ActiveLearningWorkChain.spec().inputs['calibration']
    assert port.validate(recommended) is None
    assert 'neither critical_similarity nor critical_variance' in str(port.validate(orm.Dict({'error': 'x'})))
    assert 'critical_similarity must be' in str(port.validate(orm.Dict({'critical_similarity': 1.5})))
