"""The active-learning-vs-random study (issue 17, thesis 13.3) at ``tiny`` size with the real programs (LAMMPS,
gap_fit, quip, the explorer): the summary, that the three GAPs got the same number N of added configurations, that
the random / uniform picks are the seeded selections of the pool, and that the tables are the metrics and volumes
of the stored runs. The finding itself is not expected at tiny size (50 NPT steps); the recorded ``small`` run is
in ``docs/source/results/nacl_al_vs_random/``."""

import json

import numpy as np
import pytest

from tests.helpers import assert_npt_run_recorded, load_study

pytestmark = pytest.mark.integration


def test_al_vs_random_study_at_tiny_size(tmp_path, lammps_code, gap_fit_code, quip_code, explore_code):
    from aiida import orm

    from aiida_mlfail.science.selection import select

    study = load_study('nacl_al_vs_random')
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code}
    summary = study.run_study(codes, 'tiny', tmp_path, 'python workflows/nacl_al_vs_random.py --size tiny')
    written = json.loads((tmp_path / 'nacl_al_vs_random_tiny.json').read_text())
    assert written == json.loads(json.dumps(summary))
    assert {'study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding'} <= set(written)
    assert (written['study'], written['size'], written['sizes']['ions']) == ('nacl_al_vs_random', 'tiny', 32)
    assert written['finding'].startswith('Thesis 13.3') and written['finding'].endswith('.')

    # the learner added N > 0 (the strict tiny novelty threshold); random and uniform got exactly N more each,
    # on top of the same initial training set, validated on the same set as the learner's GAPs
    n_added, n_initial = written['sizes']['added_configurations'], written['sizes']['initial_training_configurations']
    assert n_added > 0
    gaps = written['gaps']
    assert list(gaps) == ['initial', 'active learning', 'random', 'uniform in energy']
    learner = orm.load_node(written['learner']['pk'])
    assert learner.outputs.training_set.n_configurations == n_initial + n_added
    initial = orm.load_node(gaps['initial']['fit_pk']).outputs.training_set.get_atoms()
    validation = orm.load_node(gaps['initial']['fit_pk']).outputs.validation_set.uuid
    for name in ('active learning', 'random', 'uniform in energy'):
        fit = orm.load_node(gaps[name]['fit_pk'])
        assert gaps[name]['added'] == n_added == len(gaps[name]['added_energies_eV_atom']), name
        assert fit.outputs.training_set.n_configurations == n_initial + n_added, name
        assert fit.inputs.validation_set.uuid == validation, name
        # the same gap_fit settings as the learner's last fit
        assert fit.inputs.fit.job.parameters.get_dict() == \
            orm.load_node(gaps['active learning']['fit_pk']).inputs.fit.job.parameters.get_dict(), name
        # the initial configurations come first, unchanged
        trained = fit.outputs.training_set.get_atoms()
        assert all(np.allclose(a.positions, b.positions) for a, b in zip(initial, trained[:n_initial])), name

    # the picks are reproducible: the seeded selection of the stored pool gives the same indices
    pool = orm.load_node(written['pool']['pk']).get_atoms()
    s = study.SIZES['tiny']
    assert written['sizes']['pool_configurations'] == len(pool) == len(s['pool_volumes']) * 11
    for name, method in study.PICKS.items():
        expected = select(pool, n_added, method, study.PICK_SEED)
        assert gaps[name]['pool_indices'] == expected, name
        assert select(pool, n_added, method, study.PICK_SEED + 1) != expected or n_added == len(pool)
        energies = [pool[i].info['energy'] / len(pool[i]) for i in expected]
        assert gaps[name]['added_energies_eV_atom'] == pytest.approx(energies), name

    # the tables are the metrics of the stored fits and the volumes of the stored NPT runs
    reference = written['reference_volume']
    rows = {row[0]: row for row in written['tables']['gaps']['rows']}
    volume_rows = {row[0]: row for row in written['tables']['volumes']['rows']}
    for name, result in gaps.items():
        metrics = orm.load_node(result['fit_pk']).outputs.metrics.get_dict()
        assert rows[name][3:] == [f"{1000 * metrics['energy']['rmse']:.2f}", f"{metrics['forces']['rmse']:.3f}",
                                  f"{1000 * metrics['virial']['rmse']:.1f}"], name
        run = result['npt']
        node = orm.load_node(run['pk'])
        assert node.inputs.parameters['seed'] == 77 and node.inputs.parameters['steps'] == s['md_steps'] == 50
        assert_npt_run_recorded(run, node, reference['mean'], name)
        if run['breaking_step'] is None:
            assert volume_rows[f'GAP {name}'][3].startswith(f"{run['volume']['mean']:.0f} ± "), name
    for figure in written['figures']:
        assert (tmp_path / figure).read_bytes()[:4] == b'\x89PNG', figure
    print(f"nacl_al_vs_random tiny: {written['seconds']} s, N = {n_added}; {written['finding']}")
