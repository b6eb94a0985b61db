"""Real programs through the AiiDA daemon: LAMMPS sampling, gap_fit (with the memory preflight), GAP validation."""

import numpy as np
import pytest
from aiida import orm

from aiida_mlfail.calculations.gap_fit import GapFitCalculation
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.helpers import nacl_configurations

pytestmark = pytest.mark.integration


def test_sampling_gap_and_gap_md_through_daemon(submit_and_await, lammps_code, gap_fit_code, quip_code):
    sampling = submit_and_await(
        ClassicalSamplingWorkChain,
        timeout=600,
        lammps={'job': {'code': lammps_code}},
        structure_spec=orm.Dict({'system': 'nacl', 'n_ions': 64}),
        potential=orm.Dict({'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1e-4}}),
        state_points=orm.List([
            {'temperature': 1400.0, 'volume': 2100.0, 'label': 'dense'},
            {'temperature': 1400.0, 'volume': 2600.0, 'label': 'dilute'},
            {'temperature': 1400.0, 'ensemble': 'NPT', 'pressure': 1.0, 'volume': 2300.0, 'label': 'npt'},
        ]),
        md=orm.Dict({'equilibration_steps': 200, 'production_steps': 400, 'sampling_interval': 50,
                     'thermo_interval': 20, 'seed': 11}),
    )
    assert sampling.is_finished_ok, sampling.exit_message
    pool = sampling.outputs.pool
    assert pool.n_configurations == 3 * 9  # steps 200, 250, ..., 600
    assert pool.labels == ['energy', 'forces', 'virial', 'atomic_energies']
    dense = sampling.outputs.sampled.dense.training_set.get_atoms()
    assert all(a.get_volume() == pytest.approx(2100.0) for a in dense)
    assert {c['state_point'] for c in pool.configurations} == {'dense', 'dilute', 'npt'}
    # every sampled set and the pool carry the sampling potential's reference
    from aiida_mlfail.science.references import lammps_reference

    reference = lammps_reference({'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1e-4}})
    assert pool.reference == reference
    assert all(getattr(sampling.outputs.sampled, label).training_set.reference == reference for label in ('dense',
                                                                                                          'dilute',
                                                                                                          'npt'))
    npt_volume = sampling.outputs.sampled.npt.thermo.get_array('volume')
    assert np.ptp(npt_volume) > 1.0  # the barostat moves the box
    # denser liquid, higher virial pressure (trace of the virial per volume)
    p_dense = np.mean([np.trace(a.info['virial']) / a.get_volume() for a in dense])
    p_dilute = np.mean([np.trace(a.info['virial']) / a.get_volume()
                        for a in sampling.outputs.sampled.dilute.training_set.get_atoms()])
    assert p_dense > p_dilute

    gap = submit_and_await(
        GapWorkChain,
        timeout=600,
        pool=pool,
        selection=orm.Dict({'method': 'uniform_force', 'n': 20, 'seed': 1}),
        split=orm.Dict({'train_fraction': 0.5, 'seed': 1}),
        fit={'job': {'code': gap_fit_code, 'parameters': orm.Dict({
            'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 20,
                             'sparse_method': 'uniform'}],
            'sigma': {'energy': 0.005, 'forces': 0.1, 'virial': 0.1}})}},
        predict={'job': {'code': quip_code}},
    )
    assert gap.is_finished_ok, gap.exit_message
    metrics = gap.outputs.metrics.get_dict()
    assert set(metrics) == {'energy', 'forces', 'virial'}
    assert metrics['forces']['n'] == 10 * 64 * 3
    # a 2-body GAP of molten NaCl: forces within a few tenths of eV/Å, energies within 0.05 eV/atom
    assert metrics['forces']['rmse'] < 0.5
    assert metrics['energy']['rmse'] < 0.05
    assert gap.outputs.parity_plot.get_content(mode='rb')[:8] == b'\x89PNG\r\n\x1a\n'
    assert gap.outputs.potential.base.attributes.get('training_set_uuid') == gap.outputs.training_set.uuid
    assert gap.outputs.fit_parameters['memory_peak_mb'] > 0
    descendants = orm.QueryBuilder().append(orm.WorkChainNode, filters={'id': gap.pk}, tag='wc').append(
        orm.ProcessNode, with_incoming='wc', project='attributes.exit_status').all(flat=True)
    assert descendants and all(status == 0 for status in descendants)

    # GAP MD through the mlfail-lmp bridge: NPT with a tight minimum-distance guard that must trip,
    # then the rerun of its frames with the classical reference and the forensics
    start = sampling.outputs.sampled.npt.training_set.get_atoms()[-1]
    md = submit_and_await(
        MLMDWorkChain,
        timeout=600,
        potential=gap.outputs.potential,
        structure=orm.StructureData(ase=start),
        parameters=orm.Dict({'ensemble': 'NPT', 'temperature': 1400.0, 'pressure': 1.0, 'steps': 400,
                             'dump_interval': 5, 'thermo_interval': 5, 'guards': {'min_distance': 2.45}}),
        md={'job': {'code': lammps_code}},
        reference={'potential': orm.Dict({'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1e-4}}),
                   'job': {'code': lammps_code}},
        training_thermo=sampling.outputs.sampled.npt.thermo,
        equilibrium_thermo=sampling.outputs.sampled.npt.thermo,
    )
    assert md.exit_status == 410, md.exit_message
    stop = md.outputs.stop.get_dict()
    assert stop['stop_reason'] == 'too_close_atoms' and stop['value'] < 2.45
    frames = md.outputs.trajectory.get_atoms()
    assert frames and max(a.info['md_step'] for a in frames) <= stop['stop_step']
    assert 'velocities' in frames[0].arrays
    rerun = md.outputs.rerun.get_atoms()
    assert [a.info['md_step'] for a in rerun] == [a.info['md_step'] for a in frames]
    summary = md.outputs.summary.get_dict()
    assert set(summary['pressure']) == {'ML run', 'rerun', 'training run'}
    # the training run's pressure from its production part (equilibration_steps of the sampling, via provenance)
    assert summary['training_production_start_step'] == 200
    npt_thermo = sampling.outputs.sampled.npt.thermo
    assert summary['equilibrium_volume_source'].startswith(f'classical NPT thermo <{npt_thermo.pk}>')
    assert md.outputs.forensics_data.get_array('temperature').shape == (len(frames),)
    assert summary['gap_vs_rerun']['forces']['rmse'] < 1.0
    assert md.outputs.forensics_plot.get_content(mode='rb')[:4] == b'\x89PNG'


def test_gap_fit_memory_preflight_stops_before_the_fit(submit_and_await, gap_fit_code):
    node = submit_and_await(
        GapFitCalculation,
        timeout=300,
        code=gap_fit_code,
        training_set=TrainingSetData.from_atoms(nacl_configurations(3)),
        parameters=orm.Dict({'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}]}),
        metadata={'options': {'max_memory_kb': 1}},
    )
    assert node.exit_status == 430, node.exit_message
    assert 'more than the 0 MB available' in node.exit_message
    names = node.outputs.retrieved.base.repository.list_object_names()
    assert 'gap_fit_dryrun.out' in names and 'gap.xml' not in names  # the fit itself never ran
    assert node.outputs.output_parameters['memory_peak_mb'] > 0


def test_gap_fit_out_of_memory_is_retried_with_more_memory(submit_and_await, gap_fit_code):
    """A tiny memory limit: the preflight stops attempt 1 (430), the handler raises max_memory_kb, attempt 2 fits."""
    from aiida_mlfail.workflows.restart import GapFitRestartWorkChain

    node = submit_and_await(
        GapFitRestartWorkChain,
        timeout=300,
        job={'code': gap_fit_code, 'training_set': TrainingSetData.from_atoms(nacl_configurations(3)),
             'parameters': orm.Dict({'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5,
                                                      'n_sparse': 10}]}),
             'metadata': {'options': {'max_memory_kb': 1}}},
        restart=orm.Dict({'on_out_of_memory': 'more_memory', 'memory_factor': 1.0e6}),
    )
    assert node.is_finished_ok, node.exit_message
    jobs = sorted(node.called, key=lambda n: n.pk)
    assert [j.exit_status for j in jobs] == [430, 0]
    assert [j.get_option('max_memory_kb') for j in jobs] == [1, 1_000_000]
    assert 'potential' in node.outputs
