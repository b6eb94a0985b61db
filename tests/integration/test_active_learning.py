"""ActiveLearningWorkChain through the daemon with the real programs: a tiny loop of two iterations, two walkers.

32 molten NaCl ions; initial data from one NVT density (BMHTF + PPPM, LAMMPS); a 2-body GAP
(gap_fit); two walkers (different seeds) of the explorer (mlfail-explore: GAP-MD through the LAMMPS bridge +
SOAP/REMatch) start NPT from a much more dilute melt, so in iteration 1 both flag a novel configuration at
once; the batch (max_batch=1) takes the one farther from the training set, the LAMMPS single points label
it; the refit GAP explores again with both walkers in iteration 2.
"""

import numpy as np
import pytest
from aiida import orm

from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.provenance import added_configurations
from aiida_mlfail.science.pair_distances import GUARD_DISTANCE_FRACTION, OUTLIER_DISTANCE_FRACTION
from aiida_mlfail.science.references import lammps_reference
from aiida_mlfail.science.structures import molten_nacl, pair_min_distances
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain

pytestmark = pytest.mark.integration

BMHTF = {'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1e-4}}


def al_inputs(lammps_code, gap_fit_code, quip_code, explore_code, **parameters):
    return {
        'sampling': {
            'lammps': {'job': {'code': lammps_code}},
            'structure_spec': orm.Dict({'system': 'nacl', 'n_ions': 32}),
            'potential': orm.Dict(BMHTF),
            'state_points': orm.List([{'temperature': 1400.0, 'volume': 1175.0, 'label': 'nvt'}]),
            'md': orm.Dict({'equilibration_steps': 200, 'production_steps': 400, 'sampling_interval': 20,
                            'thermo_interval': 20, 'seed': 5}),
        },
        'split': orm.Dict({'train_fraction': 0.5, 'seed': 1}),
        'gap': {'fit': {'job': {'code': gap_fit_code, 'parameters': orm.Dict({
                    'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 15,
                                     'sparse_method': 'uniform'}],
                    'sigma': {'energy': 0.005, 'forces': 0.1, 'virial': 0.1}})}},
                'predict': {'job': {'code': quip_code}}},
        'explore': {'job': {'code': explore_code,
                            'structure': orm.StructureData(ase=molten_nacl(32, volume=1550.0, seed=3)),
                            'parameters': orm.Dict({'ensemble': 'NPT', 'temperature': 1400.0, 'pressure': 1.0,
                                                    'timestep': 2.0, 'max_steps': 60, 'comparison_step': 20,
                                                    'critical_similarity': 0.998, 'thermo_interval': 10,
                                                    'soap': {'r_cut': 4.0, 'n_max': 3, 'l_max': 2}})}},
        'label': {'lammps': {'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}}},
        'predict': {'job': {'code': quip_code}},
        'parameters': orm.Dict({'max_iterations': 2, 'max_new_configurations': 5, **parameters}),
    }


def explorer_of(run, iteration: int, walker: int):
    """The ExploreCalculation of ``walker`` in ``iteration`` (through its restart wrapper's link label)."""
    wrapper = run.base.links.get_outgoing(link_label_filter=f'explore_iteration_{iteration}_walker_{walker}').one().node
    return next(n for n in wrapper.called_descendants if n.process_label == 'ExploreCalculation')


def two_walker_inputs(lammps_code, gap_fit_code, quip_code, explore_code):
    """:func:`al_inputs` with two walkers (seeds 11 and 29), batches of one, and the critical similarity from a
    calibration input (an ``mlfail.calibrate`` ``recommended`` output, as tests/integration/test_calibrate.py
    makes one; the explorer's own 0.5 would flag nothing). The run of :func:`tests.cli.shared.real_runs`."""
    inputs = al_inputs(lammps_code, gap_fit_code, quip_code, explore_code, max_batch=1)
    inputs['walkers'] = orm.List([{'seed': 11}, {'seed': 29}])
    explore_parameters = inputs['explore']['job']['parameters'].get_dict()
    inputs['explore']['job']['parameters'] = orm.Dict({**explore_parameters, 'critical_similarity': 0.5})
    inputs['calibration'] = orm.Dict({'critical_similarity': 0.998, 'critical_variance': 0.01})
    return inputs


def test_two_iterations_and_the_provenance_of_added_configurations(
        aiida_profile, started_daemon_client, lammps_code, gap_fit_code, quip_code, explore_code):
    # the run of the CLI and provenance tests (made once per session: tests/cli/shared.py), of two_walker_inputs
    from tests.cli import shared

    node = shared.real_runs(aiida_profile, lammps_code, gap_fit_code, quip_code, explore_code).run
    assert node.process_class is ActiveLearningWorkChain
    # two iterations, and the second refit is still flagged by a walker: the max_iterations limit ends it (701)
    assert node.exit_status == 701, f'[{node.exit_status}] {node.exit_message}'
    assert 'max_iterations=2' in node.exit_message
    summary = node.outputs.summary.get_dict()
    rows = summary['iterations']
    assert [r['iteration'] for r in rows] == [1, 2]
    assert summary['outcome'] == 'max_iterations'
    first = rows[0]
    # both walkers explored in every iteration and flagged at once from the dilute start
    assert [[w['walker'] for w in r['walkers']] for r in rows] == [[0, 1], [0, 1]]
    assert [w['stop_reason'] for w in first['walkers']] == ['novel', 'novel']
    assert all(w['similarity'] < 0.998 for w in first['walkers']) and first['stop_reason'] == 'novel / novel'
    assert first['similarity'] == min(w['similarity'] for w in first['walkers'])
    # the batch: one of the two triggers, the one less similar to the training set (REMatch distances computed)
    batch = next(n for n in node.called if n.process_label == 'choose_batch')
    choice = batch.outputs.result.get_dict()
    farther = min(first['walkers'], key=lambda w: w['similarity'])['walker']
    assert choice['chosen'] == [f'w{farther}_trigger'] and choice['distances'] == 'rematch'
    assert first['added'] == 1 and first['added_from'] == f'w{farther}_trigger' and first['flagged_forces_rmse'] > 0
    assert rows[1]['training_set_size'] == first['training_set_size'] + first['added']
    assert node.outputs.convergence_plot.get_content(mode='rb')[:4] == b'\x89PNG'

    # the training set grew by exactly the added configurations; the final GAP was fitted on it
    n_added = sum(r['added'] for r in rows)
    fits = sorted((n for n in node.called if n.process_label == 'GapWorkChain'), key=lambda n: n.pk)
    assert node.outputs.training_set.n_configurations == fits[0].outputs.training_set.n_configurations + n_added
    assert node.outputs.potential.uuid == fits[-1].outputs.potential.uuid
    # per-pair guard and outlier distances of iteration 1 from the training set it explored with, reported
    shortest = {'-'.join(p): d for p, d in pair_min_distances(fits[0].outputs.training_set.get_atoms()).items()}
    assert list(shortest) == ['Na-Na', 'Na-Cl', 'Cl-Cl']
    assert first['guard_distances'] == pytest.approx({p: GUARD_DISTANCE_FRACTION * d for p, d in shortest.items()})
    assert first['outlier_distances'] == pytest.approx({p: OUTLIER_DISTANCE_FRACTION * d for p, d in shortest.items()})
    reports = [log.message for log in orm.Log.collection.get_logs_for(node)]
    calibration = node.inputs.calibration.pk
    assert any(f"calibration <{calibration}>: {{'critical_similarity': 0.998, 'critical_variance': None}}" in m
               for m in reports), reports
    assert explorer_of(node, 1, 0).inputs.parameters['critical_similarity'] == 0.998
    assert any('iteration 1: outlier distances Na-Na ' in m for m in reports), reports
    assert any('iteration 1: distance guard of exploration' in m for m in reports), reports
    # one reference throughout: the sampled pool, every refit's data and the final set are the labeller's
    reference = lammps_reference(BMHTF)
    assert node.outputs.training_set.reference == reference
    assert all(fit.outputs.training_set.reference == fit.outputs.validation_set.reference == reference for fit in fits)

    # provenance: every added configuration traces to its explorer, potential and labelling job
    records = added_configurations(node)
    assert len(records) == n_added
    trigger = records[0]
    assert trigger['iteration'] == 1 and trigger['candidate'] == 'trigger' and trigger['walker'] == farther
    explore_1 = explorer_of(node, 1, farther)
    assert trigger['explorer'].pk == explore_1.pk
    assert any(f'iteration 1: walker {farther}: exploration <' in m for m in reports), reports
    assert any(f"iteration 1: added w{farther}_trigger" in m for m in reports), reports
    assert trigger['md_step'] == explore_1.outputs.results['stop_step']
    assert trigger['potential'].uuid == fits[0].outputs.potential.uuid
    jobs = trigger['labelling_jobs']
    assert len(jobs) == 1 and jobs[0].process_class is LammpsCalculation
    labelled = trigger['labelling'].outputs.training_set.get_atoms()
    match = next(a for a in labelled if a.info['candidate'] == f'w{farther}_trigger')
    assert trigger['energy'] == pytest.approx(match.info['energy'])
    np.testing.assert_allclose(trigger['forces'], match.arrays['forces'])
    # the labelling job labelled it once: its frame energy is the stored energy
    frames = jobs[0].outputs.training_set.get_atoms()
    assert any(abs(f.info['energy'] - trigger['energy']) < 1e-9 for f in frames)
