"""``aiida-mlfail calibrate GAP_NODE``: defaults from the database, refused inputs (no process is run here;
the run itself is tests/integration/test_calibrate.py)."""

from __future__ import annotations

import click
import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlfail.cli.calibrate import calibration_tree
from aiida_mlfail.cli.inputs import builder_from_protocol, validate_inputs
from aiida_mlfail.cli.main import cli
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.calibrate import CalibrateWorkChain
from tests.cli.shared import invoke
from tests.helpers import FIXTURES

LJ = "reference={name: lammps, species: [Na, Cl], atom_style: atomic, commands: ['pair_style lj/cut 4.5', " \
     "'pair_coeff * * 0.1 2.5']}"


def _gap(training_set=None):
    uuid = training_set.store().uuid if training_set is not None else ''
    return GapPotentialData.from_folder(FIXTURES / 'bridge', training_set_uuid=uuid).store()


def test_help_and_refusals(explore_code):
    assert 'Calibrate the failure signals' in invoke(cli, ['calibrate', '--help']).output
    not_a_gap = orm.Int(3).store()
    result = invoke(cli, ['calibrate', not_a_gap.pk, LJ])
    assert result.exit_code == 2 and 'is a Int, not a GAP' in result.output
    gap = _gap()
    result = invoke(cli, ['calibrate', gap.pk])
    assert result.exit_code == 2 and 'give the classical reference of the oracle' in result.output
    result = invoke(cli, ['calibrate', gap.pk, LJ])
    assert result.exit_code == 2 and 'names no training set in this database' in result.output
    structure = orm.StructureData(ase=bulk('NaCl', 'rocksalt', a=5.64, cubic=True)).store()
    result = invoke(cli, ['calibrate', gap.pk, LJ, f'structure={structure.pk}', 'training_set=' + str(
        TrainingSetData.from_atoms([bulk('NaCl', 'rocksalt', a=5.64, cubic=True)]).store().pk)])
    assert result.exit_code == 2 and 'give calibration.error_threshold=X' in result.output
    result = invoke(cli, ['calibrate', gap.pk, LJ, f'structure={structure.pk}', 'seeds=[1,1]',
                          'calibration.error_threshold=1.0'])
    assert result.exit_code == 1 and 'repeat a seed' in result.output


def test_defaults_come_from_the_gap_training_set(explore_code):
    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    rattled = crystal.copy()
    rattled.rattle(0.05, seed=1)
    training_set = TrainingSetData.from_atoms([rattled, crystal])
    gap = _gap(training_set)
    with pytest.raises(click.BadParameter, match='no mlfail.gap run with validation metrics'):
        calibration_tree(gap, {'reference': {'name': 'lammps'}})
    tree = calibration_tree(gap, {'reference': {'name': 'lammps', 'species': ['Na', 'Cl'], 'atom_style': 'atomic',
                                                'commands': ['pair_style lj/cut 4.5', 'pair_coeff * * 0.1 2.5']},
                                  'calibration': {'error_threshold': 0.5}, 'seeds': [4, 5]})
    assert tree['training_set'].uuid == training_set.uuid
    assert tree['structure'].get_ase().positions == pytest.approx(rattled.positions)  # the first configuration
    builder = builder_from_protocol(CalibrateWorkChain, 'fast', tree, 'localhost')
    validate_inputs(CalibrateWorkChain, builder)
    assert builder.seeds.get_list() == [4, 5] and builder.explore.job.code.uuid == explore_code.uuid
    protocol = CalibrateWorkChain.get_protocol_inputs('fast')['explore']['job']['parameters']
    assert builder.explore.job.parameters.get_dict() == protocol
    assert builder.calibration.get_dict() == {'error': 'force_rmse', 'target_fpr': 0.05, 'error_threshold': 0.5}
