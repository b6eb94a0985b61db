"""The sudden-failure study of issue 17 (thesis sections 11 and 13.3, ``workflows/nacl_sudden_failure.py``): its
classification of a break (sudden after a stable stretch, or early) on synthetic volume series, and the study at
``tiny`` size with the real programs (LAMMPS, gap_fit, quip, the explorer): the JSON summary, the breaking step as
the first frame above 1.5 x the classical volume, the learner started from the GAP's own training and validation
sets, the repaired GAP in the same NPT, and tables that are the metrics of the stored runs. The finding itself is not
expected at tiny size (100 NPT steps); the recorded ``small`` run is in ``docs/source/results/nacl_sudden_failure/``.
"""

import json

import numpy as np
import pytest

from tests.helpers import load_study

pytestmark = pytest.mark.integration


def test_stable_stretch_and_the_chosen_run():
    study = load_study('nacl_sudden_failure')
    steps = np.arange(0, 1001, 10)  # 101 frames planned
    v_ref = 1000.0
    # held within 15 % for 50 frames, then grows past 1.5 x: a sudden break at the first frame above 1500
    volume = np.where(steps < 500, 1000.0 + 100 * np.sin(steps), 1000.0 + 4.0 * (steps - 480))
    broke = int(steps[volume > 1.5 * v_ref][0])
    sudden = study.stable_stretch(steps, volume, v_ref, broke, 1000)
    assert sudden['planned_frames'] == 101 and sudden['sudden']
    assert sudden['stable_frames'] == int(np.sum((steps < broke) & (np.abs(volume / v_ref - 1) <= 0.15)))
    # the same break after only 10 stable frames (a run stopped by the guard: fewer frames than planned)
    early_volume = np.where(steps < 100, 1000.0, 1200.0 + 10.0 * steps)[:60]
    early_break = int(steps[:60][early_volume > 1.5 * v_ref][0])
    early = study.stable_stretch(steps[:60], early_volume, v_ref, early_break, 1000)
    assert early['stable_frames'] == 10 and not early['sudden']
    assert early['stable_fraction'] == pytest.approx(10 / 101)
    # no break: never sudden, the whole run counts
    calm = study.stable_stretch(steps, np.full(101, 1100.0), v_ref, None, 1000)
    assert calm['stable_frames'] == 101 and not calm['sudden']
    # the first sudden break in seed order wins over an earlier-listed early break; else the first break; else none
    runs = {'seed 1': {'breaking_step': 10, 'sudden': False}, 'seed 2': {'breaking_step': 900, 'sudden': True},
            'seed 3': {'breaking_step': None, 'sudden': False}}
    assert study.choose(runs) == 'seed 2'
    runs['seed 2']['sudden'] = False
    assert study.choose(runs) == 'seed 1'
    assert study.choose({'seed 3': runs['seed 3']}) is None


def test_sudden_failure_study_at_tiny_size(tmp_path, lammps_code, gap_fit_code, quip_code, explore_code):
    from aiida import orm

    study = load_study('nacl_sudden_failure')
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code}
    summary = study.run_study(codes, 'tiny', tmp_path, 'python workflows/nacl_sudden_failure.py --size tiny')
    written = json.loads((tmp_path / 'nacl_sudden_failure_tiny.json').read_text())
    assert written == json.loads(json.dumps(summary))
    assert {'study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding', 'runs', 'learner', 'gap',
            'reference_volume', 'chosen', 'figures'} <= set(written)
    assert (written['study'], written['size'], written['sizes']['ions']) == ('nacl_sudden_failure', 'tiny', 32)
    assert written['finding'].startswith('Thesis 11/13.3') and written['finding'].endswith('.')
    tiny = study.SIZES['tiny']
    reference = written['reference_volume']
    v_ref = reference['mean']
    assert 0 < reference['stderr'] < 0.2 * v_ref

    # every NPT run: the breaking step is the first frame above 1.5 x the classical volume (or where the guard halted
    # the run between two frames), the stable stretch is recomputed from the stored thermo
    runs = written['runs']
    assert list(runs) == [f'seed {seed}' for seed in tiny['seeds']] + ['repaired']
    for name, run in runs.items():
        node = orm.load_node(run['pk'])
        assert (node.inputs.parameters['seed'], node.inputs.parameters['steps']) == (run['seed'], tiny['md_steps'])
        thermo = node.outputs.thermo
        steps, volume = thermo.get_array('step'), thermo.get_array('volume')
        above = steps[volume > 1.5 * v_ref]
        guard_stop = run['stop_step'] if run['stop_reason'] == 'volume_blowup' else None
        assert run['breaking_step'] == (int(above[0]) if above.size else guard_stop), name
        stretch = study.stable_stretch(steps, volume, v_ref, run['breaking_step'], tiny['md_steps'])
        assert {k: run[k] for k in stretch} == pytest.approx(stretch), name
        if run['breaking_step'] is None:
            window = volume[int(tiny['skip'] * len(volume)):]
            assert run['volume']['mean'] == pytest.approx(np.mean(window)), name
            assert run['deviation'] == pytest.approx(run['volume']['mean'] / v_ref - 1), name
    assert written['chosen'] == study.choose({k: v for k, v in runs.items() if k != 'repaired'})

    # the learner started from the GAP's own training and validation sets, with its gap_fit parameters
    fit = orm.load_node(written['gap']['fit_pk'])
    learner = orm.load_node(written['learner']['pk'])
    assert learner.inputs.training_set.uuid == fit.outputs.training_set.uuid == written['gap']['training_set_uuid']
    assert learner.inputs.validation_set.uuid == fit.outputs.validation_set.uuid
    assert learner.inputs.gap.fit.job.parameters.get_dict() == fit.inputs.fit.job.parameters.get_dict()
    n_initial = written['sizes']['initial_training_configurations']
    assert n_initial == fit.outputs.training_set.n_configurations
    assert learner.outputs.training_set.n_configurations == n_initial + written['learner']['added']
    assert written['learner']['iterations'] == len(learner.outputs.summary['iterations']) >= 1
    # the first NPT run used the GAP, the repaired one the learner's last GAP, same seed, length and start
    first = orm.load_node(runs[f"seed {tiny['seeds'][0]}"]['pk'])
    repaired = orm.load_node(runs['repaired']['pk'])
    assert first.inputs.potential.uuid == fit.outputs.potential.uuid
    assert repaired.inputs.potential.uuid == learner.outputs.potential.uuid
    seed = runs[written['chosen']]['seed'] if written['chosen'] else tiny['seeds'][0]
    assert runs['repaired']['seed'] == seed
    assert np.allclose(repaired.inputs.structure.get_ase().positions, first.inputs.structure.get_ase().positions)

    # the tables are the stored fits' metrics, the learner's counts and the runs' volumes
    rows = written['tables']['gaps']['rows']
    fits = [fit, orm.load_node(written['learner']['first_fit_pk']), orm.load_node(written['learner']['final_fit_pk'])]
    for row, node in zip(rows, fits, strict=True):
        metrics = node.outputs.metrics.get_dict()
        assert row[1:] == [node.outputs.training_set.n_configurations, f"{1000 * metrics['energy']['rmse']:.2f}",
                           f"{metrics['forces']['rmse']:.3f}", f"{1000 * metrics['virial']['rmse']:.1f}"]
    assert written['tables']['learner']['rows'][0][1:4] == [
        written['learner']['iterations'], written['learner']['added'],
        f"{n_initial} -> {learner.outputs.training_set.n_configurations}"]
    volume_rows = written['tables']['volumes']['rows']
    for row, run in zip(volume_rows, runs.values()):
        assert row[2] == ('-' if run['breaking_step'] is None else str(run['breaking_step']))
        mean = run['volume']['mean']
        assert row[5] == 'nan' if mean is None else row[5].startswith(f'{mean:.0f} ± ')
    assert volume_rows[-1][0] == 'classical BMHTF + PPPM' and volume_rows[-1][5].startswith(f'{v_ref:.0f} ± ')
    for figure in written['figures']:
        assert (tmp_path / figure).read_bytes()[:4] == b'\x89PNG', figure
    assert len(written['figures']) == 5
    print(f"nacl_sudden_failure tiny: {written['seconds']} s; {written['finding']}")
