"""``analyse_mlmd`` (the forensics calcfunction) on synthetic frames, and the production start found in the
provenance of a thermo (``workflows.mlmd.production_start_step``)."""

import numpy as np
from aiida import orm
from aiida.common.links import LinkType

from aiida_mlfail.calculations.functions import analyse_mlmd
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.mlmd import production_start_step
from tests.science.test_forensics import _trajectory


def _thermo(steps, **arrays):
    node = orm.ArrayData()
    node.set_array('step', np.asarray(steps, dtype=float))
    for key, values in arrays.items():
        node.set_array(key, np.asarray(values, dtype=float))
    return node


def test_breaking_step_from_the_equilibrium_volume_with_frames_after_it():
    frames = _trajectory(20)
    v0 = frames[0].get_volume()
    steps = np.arange(0, 200, 10)
    volumes = np.where(steps >= 120, 1.6 * v0, v0)  # the volume passes 1.5 x V_eq at step 120, the run goes on
    thermo = _thermo(steps, volume=volumes, pressure=np.full(20, 10.0))
    training = _thermo(np.arange(0, 1100, 100), pressure=np.r_[np.full(5, 9000.0), np.full(6, 100.0)])
    parameters = orm.Dict({'timestep': 2.0, 'temperature': 1400.0, 'reference_volume': v0, 'volume_factor': 3.0,
                           'breaking_factor': 1.5, 'equilibrium_volume': v0,
                           'equilibrium_volume_source': 'classical NPT thermo <1>', 'window_frames': 4,
                           'training_production_start_step': 500})
    result = analyse_mlmd(TrainingSetData.from_atoms(frames), thermo, parameters, training_thermo=training,
                          rerun=TrainingSetData.from_atoms(frames))
    summary = result['summary'].get_dict()
    assert summary['breaking_step'] == result['breaking_step'].value == 120
    assert summary['equilibrium_volume_source'] == 'classical NPT thermo <1>' and summary['volume_factor'] == 3.0
    assert summary['pressure']['training run']['mean_bar'] == 100.0  # the production part only
    assert summary['gap_vs_rerun']['forces']['rmse'] == 0.0 and summary['gap_vs_rerun']['forces']['n'] == 20 * 64 * 3
    assert summary['pressure']['rerun']['mean_bar'] != 0.0
    data = result['forensics_data']
    assert data.base.attributes.get('windows') == {'before': 4, 'after': 4}
    assert np.array_equal(data.get_array('step'), steps)
    assert data.get_array('velocity_model').shape == data.get_array('velocity_before').shape == (40,)
    assert abs(data.base.attributes.get('force_gaussian')['std_eV_A'] - 0.5) < 0.05
    assert result['forensics_plot'].get_content(mode='rb')[:4] == b'\x89PNG'


def test_production_start_step_is_read_from_the_sampling_run():
    workflow = orm.WorkflowNode()
    workflow.base.links.add_incoming(orm.Dict({'equilibration_steps': 2000}).store(), LinkType.INPUT_WORK, 'md')
    workflow.store()
    job = orm.CalcJobNode(computer=None)
    job.set_process_type('aiida.calculations:core.arithmetic.add')
    job.base.links.add_incoming(workflow, LinkType.CALL_CALC, 'sample_liquid')
    job.store()
    thermo = _thermo([0, 10], pressure=[1.0, 2.0])
    thermo.base.links.add_incoming(job, LinkType.CREATE, 'thermo')
    thermo.store()
    start, how = production_start_step(thermo)
    assert start == 2000 and how.startswith(f'equilibration_steps of <{workflow.pk}>')
    assert production_start_step(_thermo([0], pressure=[1.0]).store())[0] is None
