"""The NVT active-learning study (issue 17, thesis 13.3 / 13.3.1) at ``tiny`` size with the real programs (LAMMPS,
gap_fit, quip, the explorer): the summary, that no walker explored in NPT and no fit trained on virials (the stored
explorer parameters and gap_fit command lines), and that the RMSE table is one row per stored fit with that fit's
validation metrics. The finding itself is not expected at tiny size (one refit); the recorded ``small`` run is in
``docs/source/results/nacl_nvt_active_learning/``."""

import json

import numpy as np
import pytest

from tests.helpers import load_study

pytestmark = pytest.mark.integration


def test_nvt_active_learning_study_at_tiny_size(tmp_path, lammps_code, gap_fit_code, quip_code, explore_code):
    from aiida import orm

    study = load_study('nacl_nvt_active_learning')
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code}
    summary = study.run_study(codes, 'tiny', tmp_path, 'python workflows/nacl_nvt_active_learning.py --size tiny')
    written = json.loads((tmp_path / 'nacl_nvt_active_learning_tiny.json').read_text())
    assert written == json.loads(json.dumps(summary))
    assert {'study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding', 'refits', 'figures'} <= set(written)
    assert (written['study'], written['size'], written['sizes']['ions']) == ('nacl_nvt_active_learning', 'tiny', 32)
    assert written['finding'].startswith('Thesis 13.3.1') and written['finding'].endswith('.')
    for figure in written['figures']:
        assert (tmp_path / figure).read_bytes()[:4] == b'\x89PNG', figure

    learner = orm.load_node(written['learner']['pk'])
    descendants = learner.called_descendants
    # NVT only: the walkers and every explorer job the learner ran
    assert [w['ensemble'] for w in learner.inputs.walkers.get_list()] == ['NVT']
    explorations = [d for d in descendants if d.process_label == 'ExploreCalculation']
    assert explorations
    for job in explorations:
        parameters = job.inputs.parameters.get_dict()
        assert parameters['ensemble'] == 'NVT' and 'pressure' not in parameters, job.pk
    # energies and forces only: every gap_fit job's command line switches virials off
    fits_jobs = [d for d in descendants if d.process_label == 'GapFitCalculation']
    assert fits_jobs
    for job in fits_jobs:
        script = job.base.repository.get_object_content('_aiidasubmit.sh')
        assert "'virial_parameter_name=__not_trained_virial'" in script, job.pk
        assert "'energy_parameter_name=energy'" in script and "'force_parameter_name=forces'" in script, job.pk

    # one row per stored fit (the initial one and each refit), in order, with that fit's validation metrics
    fits = study.refits(learner)
    n_added = written['sizes']['added_configurations']
    assert n_added > 0 and len(fits) == written['sizes']['refits'] + 1 == 2
    assert learner.outputs.metrics.uuid == fits[-1].outputs.metrics.uuid
    rows = written['tables']['refits']['rows']
    assert len(rows) == len(written['refits']) == len(fits)
    n_initial = written['sizes']['initial_training_configurations']
    validation = fits[0].inputs.validation_set.uuid
    for index, (fit, entry, row) in enumerate(zip(fits, written['refits'], rows)):
        metrics = fit.outputs.metrics.get_dict()
        assert entry['fit_pk'] == fit.pk and fit.inputs.validation_set.uuid == validation
        assert fit.inputs.fit.job.parameters['train_on'] == ['energy', 'forces']
        assert entry['energy_rmse_eV_atom'] == pytest.approx(metrics['energy']['rmse'], rel=1e-9)
        assert entry['forces_rmse_eV_A'] == pytest.approx(metrics['forces']['rmse'], rel=1e-9)
        assert entry['energy_rmse_stderr'] > 0 and entry['forces_rmse_stderr'] > 0
        assert entry['added'] == fit.outputs.training_set.n_configurations - n_initial
        assert row[:3] == [index, entry['added'], fit.outputs.training_set.n_configurations]
        assert row[3] == f"{1000 * metrics['energy']['rmse']:.2f} ± {1000 * entry['energy_rmse_stderr']:.2f}"
    assert written['refits'][0]['added'] == 0 and written['refits'][-1]['added'] == n_added
    # the paired differences: last - initial is the sum of the refit-by-refit steps, each with a positive error
    for key, column in (('energy', 'energy_rmse_eV_atom'), ('forces', 'forces_rmse_eV_A')):
        difference = written['differences'][key]
        assert len(difference['steps']) == len(difference['steps_stderr']) == len(fits) - 1
        assert sum(difference['steps']) == pytest.approx(difference['last_minus_initial'])
        assert difference['last_minus_initial'] == pytest.approx(written['refits'][-1][column] -
                                                                 written['refits'][0][column])
        assert min(difference['steps_stderr']) > 0 and difference['last_minus_initial_stderr'] > 0
    # the learner's iteration table reports, per exploration, the metrics of the GAP it explored with
    iterations = learner.outputs.summary.get_dict()['iterations']
    assert [row['validation_energy_rmse'] for row in iterations] == \
        pytest.approx([e['energy_rmse_eV_atom'] for e in written['refits'][:len(iterations)]])
    # the validation set stays out of the training set (the explorations start from a training configuration)
    trained = fits[-1].outputs.training_set.get_atoms()
    for atoms in fits[0].inputs.validation_set.get_atoms():
        assert not any(np.allclose(atoms.positions, t.positions) for t in trained)
    print(f"nacl_nvt_active_learning tiny: {written['seconds']} s, {n_added} added; {written['finding']}")
