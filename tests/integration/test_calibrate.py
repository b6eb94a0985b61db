"""``mlfail.calibrate`` through the daemon on 8 ions, and its recommended threshold used by an explorer.

The tiny GAP of ``tests/fixtures/bridge`` (fitted to a Lennard-Jones reference on distorted crystals) in
NPT at 1500 K leaves its training region within ~100 steps: its force RMSE against the Lennard-Jones
oracle (``lj/cut``) climbs from 0 to many eV/Å, so a 1 eV/Å threshold splits the checks into failures
and non-failures. One walker of 100 steps, checked every 10 (the ROC of its 11 checks).
"""

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import calibration as cal
from aiida_mlfail.workflows.calibrate import CalibrateWorkChain
from tests.helpers import FIXTURES

pytestmark = pytest.mark.integration

LJ = {'name': 'lammps', 'species': ['Na', 'Cl'], 'atom_style': 'atomic',
      'commands': ['pair_style lj/cut 4.5', 'pair_coeff * * 0.1 2.5']}
EXPLORE = {'temperature': 1500.0, 'max_steps': 100, 'comparison_step': 10,
           'soap': {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}}


def test_calibration_through_daemon_and_its_threshold_in_an_explorer(submit_and_await, explore_code):
    crystal = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    potential = GapPotentialData.from_folder(FIXTURES / 'bridge')
    training_set = TrainingSetData.from_atoms([crystal])
    builder = CalibrateWorkChain.get_builder_from_protocol(
        explore_code, potential, crystal, LJ,
        overrides={'seeds': [1], 'calibration': {'error_threshold': 1.0},
                   'explore': {'job': {'parameters': EXPLORE,
                                       'metadata': {'options': {'max_wallclock_seconds': 600}}}}})
    builder.training_set = training_set
    node = submit_and_await(builder, timeout=300)
    assert node.is_finished_ok, node.exit_message
    table = node.outputs.table.get_dict()
    recommended = node.outputs.recommended.get_dict()
    assert table['error'] == 'force_rmse' and table['error_threshold'] == 1.0
    assert 0 < table['n_failures'] < table['n_checks']
    similarity = table['table']['similarity']
    assert similarity['auc_roc'] > 0.5 and similarity['fpr'] <= 0.05  # the melt is novel before it fails
    assert recommended['critical_similarity'] == pytest.approx(similarity['threshold'])
    assert recommended['critical_variance'] == pytest.approx(table['table']['max_variance']['threshold'])
    assert node.outputs.figure.get_content(mode='rb').startswith(b'\x89PNG')
    assert node.outputs.curves.get_array('similarity__roc_fpr')[-1] == 1.0
    series = node.outputs.signals.seed_1
    # the analysis is the science function on the stored series (no hidden state)
    runs = [{name: series.get_array(name) for name in series.get_arraynames()}]
    assert cal.calibrate(runs, 1.0)['table']['similarity']['auc_roc'] == pytest.approx(similarity['auc_roc'])

    # the recommended critical_similarity goes into explorer parameters as it is: the same walker (seed 1,
    # same MD: the oracle does not touch the trajectory) now stops at the first check the calibration alarms on
    parameters = {**EXPLORE, 'ensemble': 'NPT', 'pressure': 1.0, 'timestep': 2.0, 'thermo_interval': 10, 'seed': 1,
                  'critical_similarity': recommended['critical_similarity']}
    explore = submit_and_await(ExploreCalculation, timeout=120, code=explore_code, potential=potential,
                               structure=orm.StructureData(ase=crystal), training_set=training_set,
                               parameters=orm.Dict(parameters), metadata={'options': {'max_wallclock_seconds': 600}})
    assert explore.is_finished_ok, explore.exit_message
    results = explore.outputs.results.get_dict()
    alarmed = series.get_array('step')[series.get_array('similarity') < recommended['critical_similarity']]
    assert results['stop_reason'] == 'novel' and results['stop_step'] == alarmed[0]
    np.testing.assert_allclose(explore.outputs.signals.get_array('similarity'),
                               series.get_array('similarity')[:len(explore.outputs.signals.get_array('step'))])
