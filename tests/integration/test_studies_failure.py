"""The failure studies of issue 17 at their ``tiny`` size, with the real programs (LAMMPS, gap_fit, quip): the
scripts' summaries, their statistics (every volume with a block standard error, equal production windows) and
the consistency of what they report with the runs they made. At ``tiny`` size the thesis's findings are not
expected (a few hundred femtoseconds of NPT); the recorded ``small`` runs are in ``docs/source/results/``."""

import json
import math

import numpy as np
import pytest

from tests.helpers import load_study

pytestmark = pytest.mark.integration


def test_npt_failure_study_at_tiny_size(tmp_path, lammps_code, gap_fit_code, quip_code):
    from aiida import orm

    study = load_study('nacl_npt_failure')
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code}
    summary = study.run_study(codes, 'tiny', tmp_path, 'python workflows/nacl_npt_failure.py --size tiny')
    written = json.loads((tmp_path / 'nacl_npt_failure_tiny.json').read_text())
    assert written == json.loads(json.dumps(summary))
    assert {'study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding'} <= set(written)
    assert (written['study'], written['size']) == ('nacl_npt_failure', 'tiny')
    assert written['seconds'] > 0 and written['sizes']['ions'] == 32 and written['sizes']['npt_steps'] == 100
    assert written['finding'].startswith('Thesis 10.5/10.6.2') and written['finding'].endswith('.')

    # the classical reference: a liquid volume with a block standard error, over the same window as the GAP runs
    reference = written['reference_volume']
    tiny = study.SIZES['tiny']
    assert 0.7 * tiny['liquid_volume'] < reference['mean'] < 1.5 * tiny['liquid_volume']
    assert 0 < reference['stderr'] < 0.2 * reference['mean']
    assert reference['to_step'] - reference['from_step'] == pytest.approx(0.8 * tiny['md_steps'], abs=tiny['thermo'])

    for name in ('single density', 'five densities'):
        run = written['runs'][name]
        # at tiny size (100 steps) neither GAP breaks: both complete
        assert (run['exit_status'], run['stop_reason']) == (0, 'completed'), name
        # same number of configurations and the same recipe for both GAPs
        assert all(math.isfinite(run['gap_metrics'][q]) for q in ('energy', 'forces', 'virial'))
        thermo = orm.load_node(run['pk']).outputs.thermo
        steps, volume = thermo.get_array('step'), thermo.get_array('volume')
        above = steps[volume > study.BREAK_FACTOR * reference['mean']]
        # the breaking step is the first frame above 1.5 x the classical volume, or the step where the volume guard
        # (at that volume) halted the run between two thermo frames
        guard_stop = run['stop_step'] if run['stop_reason'] == 'volume_blowup' else None
        assert run['breaking_step'] == (int(above[0]) if above.size else guard_stop), name
        if run['breaking_step'] is None:
            assert run['stop_reason'] == 'completed' and steps[-1] == tiny['md_steps']
            window = volume[int(tiny['skip'] * len(volume)):]
            assert run['volume']['mean'] == pytest.approx(np.mean(window))
            assert run['volume']['samples'] == len(window)
        if run['volume']['mean'] is not None:
            assert run['deviation'] == pytest.approx(run['volume']['mean'] / reference['mean'] - 1)
            assert run['deviation_stderr'] > 0
    for figure in written['figures']:
        assert (tmp_path / figure).read_bytes()[:4] == b'\x89PNG', figure
    assert len(written['figures']) == 5
    print(f"nacl_npt_failure tiny: {written['seconds']} s; {written['finding']}")


def test_selection_study_at_tiny_size(tmp_path, lammps_code, gap_fit_code, quip_code):
    from aiida import orm
    from aiida.manage.caching import enable_caching

    study = load_study('nacl_selection')
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code}
    # the same NVT sampling as the NPT-failure study's: its LAMMPS jobs are reused when that test ran before
    with enable_caching(identifier='aiida.calculations:mlfail.lammps'):
        summary = study.run_study(codes, 'tiny', tmp_path, 'python workflows/nacl_selection.py --size tiny')
    written = json.loads((tmp_path / 'nacl_selection_tiny.json').read_text())
    assert written == json.loads(json.dumps(summary))
    assert {'study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding'} <= set(written)
    sizes = written['sizes']
    assert sizes['candidates'] + sizes['validation_configurations'] == sizes['pool_configurations'] == 5 * 11
    assert list(written['methods']) == list(study.METHODS_OF_SIZE['tiny'])
    for method, result in written['methods'].items():
        node = orm.load_node(result['pk'])
        # the same fixed validation set for every method, n_train selected configurations to train on
        assert node.outputs.training_set.n_configurations == study.N_TRAIN['tiny']
        assert node.outputs.validation_set.n_configurations == sizes['validation_configurations']
        forces, metrics = result['forces'], node.outputs.metrics.get_dict()['forces']
        # the per-configuration errors reproduce the WorkChain's metrics; bootstrap errors are positive
        for key in ('rmse', 'mae', 'max'):
            assert forces[key] == pytest.approx(metrics[key], rel=1e-6), (method, key)
            assert 0 < forces[f'{key}_stderr'] < forces[key], (method, key)
        assert forces['mae'] <= forces['rmse'] <= forces['max']
        assert forces['configurations'] == sizes['validation_configurations']
    assert written['finding'].startswith('The thesis selects uniformly in energy')
    assert (tmp_path / written['figures'][0]).read_bytes()[:4] == b'\x89PNG'
    print(f"nacl_selection tiny: {written['seconds']} s; {written['finding']}")
