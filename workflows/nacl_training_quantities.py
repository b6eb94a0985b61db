#!/usr/bin/env python
"""Which training quantities make the pressure right (thesis sections 10.3-10.4, tables 10.1-10.2).

One classical NVT run of molten NaCl (BMHTF + PPPM, 1400 K, one density, as in the thesis) is the training data; one
selection (uniform in force) and one split; five GAPs with the same descriptors trained on energies only (E), forces
only (F), virials only (V), E+F and E+F+V. Then each GAP runs NVT at the training density from the same start, and
its frames are rerun with the classical reference (the thesis's four-step procedure: training run, fit, ML run,
rerun).

Printed (and written to the JSON):

* held-out errors of each GAP: energy per atom with the constant offset removed (GAPs trained without energies only
  know energies up to a constant; the offset is given too), forces, virials;
* the pressure table: the mean pressure of the training run (its production part), of the ML run and of the rerun
  of the ML run's frames, each ± its block standard error (``science.observables.mean_and_standard_error``), and
  the ML-run - rerun difference. The thesis finds the V-only GAP's ML-run and rerun pressures 42 % apart and the
  E+F+V GAP's 17 % apart: better forces keep the ML run closer to configurations it predicts well.

Sizes (``SIZES``): ``tiny`` is the integration test (32 ions, only the V and E+F+V GAPs); ``small`` (default) runs
in minutes on 2 cores (64 ions, the recorded run of ``docs/source/results/nacl_training_quantities.md``); ``large``
is the thesis's size (200 ions), for a cluster.

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_training_quantities.py [--size tiny|small|large] [--out DIR]

Writes ``<out>/nacl_training_quantities_<size>.json``, ``pressures.png`` and the parity plot of each GAP.
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

STUDY = 'nacl_training_quantities'
TEMPERATURE = 1400.0

#: Per size: ions, the NVT volume (Å^3), the descriptor cutoff (Å), the sampling ``md``, the GAP
#: (``common.gap_builder`` keywords) and the NVT GAP-MD (``mlmd``, 2 fs steps).
SIZES = {
    'tiny': {'n_ions': 32, 'volume': 1175.0, 'cutoff': 5.0,
             'md': {'equilibration_steps': 200, 'production_steps': 400, 'sampling_interval': 20,
                    'thermo_interval': 20},
             'gap': {'n_select': 20, 'soap_sparse': 20, 'n_sparse_2b': 10},
             'mlmd': {'steps': 100, 'dump_interval': 10, 'thermo_interval': 10},
             # the test's budget: the two GAPs of the finding (tables 10.1 and 10.2) only
             'variants': ['V', 'E+F+V']},
    'small': {'n_ions': 64, 'volume': 2350.0, 'cutoff': 6.0,
              'md': {'equilibration_steps': 2000, 'production_steps': 10000, 'sampling_interval': 50,
                     'thermo_interval': 25},
              # 60 training configurations and 2 ps of GAP-MD: what ends in well under an hour on 2 shared cores
              'gap': {'n_select': 120, 'soap_sparse': 200, 'n_sparse_2b': 20},
              'mlmd': {'steps': 1000, 'dump_interval': 20, 'thermo_interval': 10}},
    'large': {'n_ions': 200, 'volume': 7500.0, 'cutoff': 8.0,
              'md': {'equilibration_steps': 5000, 'production_steps': 50000, 'sampling_interval': 50,
                     'thermo_interval': 25},
              'gap': {'n_select': 500, 'soap_sparse': 1000, 'n_sparse_2b': 40},
              'mlmd': {'steps': 50000, 'dump_interval': 50, 'thermo_interval': 25}},
}

#: name -> labels trained on (a size's ``variants`` runs a subset)
VARIANTS = {'E': ['energy'], 'F': ['forces'], 'V': ['virial'], 'E+F': ['energy', 'forces'],
            'E+F+V': ['energy', 'forces', 'virial']}


def validation_errors(validation, predictions) -> dict:
    """Held-out errors of a GAP: ``energy_offset`` (mean of predicted - reference energy per atom, eV/atom),
    ``energy_rmse`` (eV/atom, offset removed), ``forces_rmse`` (eV/Å, components), ``virial_rmse`` (eV/atom,
    components of V x stress per atom)."""
    ref, pred = validation.get_atoms(), predictions.get_atoms()
    de = np.array([b.info['energy'] / len(b) - a.info['energy'] / len(a) for a, b in zip(ref, pred)])
    df = np.concatenate([(b.arrays['forces'] - a.arrays['forces']).ravel() for a, b in zip(ref, pred)])
    dv = np.concatenate([((np.asarray(b.info['virial']) - np.asarray(a.info['virial'])) / len(a)).ravel()
                         for a, b in zip(ref, pred)])
    return {'energy_offset': float(de.mean()), 'energy_rmse': float(np.sqrt(np.mean((de - de.mean()) ** 2))),
            'forces_rmse': float(np.sqrt(np.mean(df**2))), 'virial_rmse': float(np.sqrt(np.mean(dv**2))),
            'n': len(ref)}


def production_pressure(thermo, equilibration_steps: int) -> tuple[float, float]:
    """Mean pressure (bar) and block standard error of the production part (steps after ``equilibration_steps``)
    of a sampling run's thermo ``ArrayData``."""
    from aiida_mlfail.science.observables import mean_and_standard_error

    steps, pressure = thermo.get_array('step'), thermo.get_array('pressure')
    return mean_and_standard_error(pressure[steps > equilibration_steps])


def pressures_png(rows: list, training: tuple, out: pathlib.Path) -> pathlib.Path:
    """Bar chart of the ML-run and rerun pressures (± standard error) per GAP with the training run's as a band."""
    from aiida_mlfail.science.plots import figure_png, plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    x = np.arange(len(rows))
    for offset, key, label in ((-0.18, 'ml', 'ML run'), (0.18, 'rerun', 'rerun (classical)')):
        means = [r[key][0] if r[key][0] is not None else np.nan for r in rows]
        errors = [r[key][1] or 0 for r in rows]
        ax.bar(x + offset, means, width=0.36, yerr=errors, capsize=3, label=label)
    ax.axhspan(training[0] - (training[1] or 0), training[0] + (training[1] or 0), color='0.7', alpha=0.5)
    ax.axhline(training[0], color='0.3', lw=1, label='training run')
    ax.set_xticks(x, [r['name'] for r in rows])
    ax.set_xlabel('trained on')
    ax.set_ylabel('mean pressure (bar)')
    ax.legend(fontsize=8)
    path = out / 'pressures.png'
    path.write_bytes(figure_png(fig))
    return path


def finding(rows: dict) -> str:
    """The thesis's claim of tables 10.1-10.2 (the E+F+V GAP's ML run is closer to its rerun than the V-only GAP's)
    and whether this run reproduces it beyond 2 standard errors."""
    def gap(name):
        r = rows[name]
        if r['ml'][0] is None or r['rerun'][0] is None:
            return None, None
        return abs(r['ml'][0] - r['rerun'][0]), np.hypot(r['ml'][1] or 0, r['rerun'][1] or 0)

    (g_efv, s_efv), (g_v, s_v) = gap('E+F+V'), gap('V')
    claim = ("Thesis 10.3-10.4: the E+F+V GAP's ML-run pressure is closer to the rerun of its frames (17 %) than the "
             "V-only GAP's (42 %)")
    if g_efv is None or g_v is None:
        return f'{claim}; here inconclusive: a run has no pressure.'
    error = 2 * np.hypot(s_efv, s_v)
    verdict = ('reproduced' if g_v - g_efv > error else 'not reproduced' if g_efv - g_v > error
               else 'inconclusive (within 2 standard errors)')
    return (f'{claim}; here |ML - rerun| is {g_efv:.0f} ± {s_efv:.0f} bar (E+F+V) vs {g_v:.0f} ± {s_v:.0f} bar (V): '
            f'{verdict}.')


def run_study(codes: dict, size: str, out: pathlib.Path, command: str = '') -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``), print its tables, write the
    JSON summary and figures to ``out``; return the summary (see the module docstring)."""
    from aiida import orm

    t0 = time.time()
    s = SIZES[size]
    out.mkdir(parents=True, exist_ok=True)
    runs = common.Runs()
    point = [{'temperature': TEMPERATURE, 'volume': s['volume'], 'label': 'nvt'}]
    print('== training run: classical BMHTF + PPPM NVT at one density')
    sampling = common.run_foreground('training run', common.sampling_builder(
        codes, point, size=size, n_ions=s['n_ions'], md=s['md']))
    training_thermo = sampling.outputs.sampled.nvt.thermo
    p_train = production_pressure(training_thermo, s['md']['equilibration_steps'])
    start = orm.StructureData(ase=sampling.outputs.sampled.nvt.training_set.get_atoms()[-1])
    print('== GAPs trained on E, F, V, E+F, E+F+V (same selection, split and descriptors), then NVT GAP-MD + rerun')
    variants = {name: VARIANTS[name] for name in s.get('variants', VARIANTS)}
    for name, labels in variants.items():
        runs.start(f'GAP {name}', common.gap_builder(codes, sampling.outputs.pool, size=size, cutoff=s['cutoff'],
                                                     train_on=labels, **s['gap']))
    gaps, md = {}, {}
    parameters = {'ensemble': 'NVT', 'temperature': TEMPERATURE, **s['mlmd']}
    for name in variants:
        gaps[name] = runs.wait(f'GAP {name}')[f'GAP {name}']
        runs.start(f'NVT {name}', common.mlmd_builder(codes, gaps[name].outputs.potential, start, parameters,
                                                      size=size, reference=common.BMHTF_PPPM,
                                                      training_thermo=training_thermo))
    for name in variants:
        md[name] = runs.wait(f'NVT {name}', allowed=(0, 410))[f'NVT {name}']

    print()
    error_rows, errors = [], {}
    for name, node in gaps.items():
        e = errors[name] = validation_errors(node.outputs.validation_set, node.outputs.predictions)
        error_rows.append([name, f"{1000 * e['energy_rmse']:.2f}", f"{1000 * e['energy_offset']:+.1f}",
                           f"{e['forces_rmse']:.3f}", f"{1000 * e['virial_rmse']:.1f}", e['n']])
    error_header = ['trained on', 'E RMSE, offset removed (meV/atom)', 'E offset (meV/atom)', 'F RMSE (eV/Å)',
                    'virial RMSE (meV/atom)', 'validation frames']
    common.print_table(error_header, error_rows)
    print()
    rows, pressure_rows = {}, []
    for name, node in md.items():
        table = node.outputs.summary.get_dict()['pressure']

        def entry(key, table=table):
            value = table.get(key) or {}
            return value.get('mean_bar'), value.get('standard_error_bar')

        ml, rerun = entry('ML run'), entry('rerun')
        stop = node.outputs.stop.get_dict()
        rows[name] = {'name': name, 'ml': ml, 'rerun': rerun, 'stop_reason': stop['stop_reason'],
                      'stop_step': stop.get('stop_step'), 'pk': node.pk}
        if ml[0] is not None and rerun[0] is not None:
            diff = f"{ml[0] - rerun[0]:+.0f} ± {np.hypot(ml[1] or 0, rerun[1] or 0):.0f}"
            rel = f'{100 * (ml[0] - rerun[0]) / rerun[0]:+.0f} %'
        else:
            diff = rel = '-'
        pressure_rows.append([name, stop['stop_reason'], common.with_error(*p_train, '.0f'),
                              common.with_error(*ml, '.0f'), common.with_error(*rerun, '.0f'), diff, rel])
    pressure_header = ['trained on', 'NVT stop', 'P training run (bar)', 'P ML run (bar)', 'P rerun (bar)',
                       'ML - rerun (bar)', 'ML vs rerun']
    common.print_table(pressure_header, pressure_rows)

    figures = [pressures_png(list(rows.values()), p_train, out).name]
    for name, node in gaps.items():
        figures.append(common.export(node.outputs.parity_plot, out, f"parity_{name.replace('+', '')}.png").name)
    summary = {
        'study': STUDY, 'size': size, 'command': command, 'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'volume_A3': s['volume'], 'cutoff_A': s['cutoff'],
                  'training_run_ps': s['md']['production_steps'] * 2.0 / 1000,
                  'frames': sampling.outputs.pool.n_configurations, 'configurations_selected': s['gap']['n_select'],
                  'ml_run_steps': s['mlmd']['steps'], 'ml_run_ps': s['mlmd']['steps'] * 2.0 / 1000},
        'tables': {'held-out errors': {'header': error_header, 'rows': error_rows},
                   'pressures': {'header': pressure_header, 'rows': pressure_rows}},
        'errors': errors, 'pressures': {'training run': p_train, **{k: {kk: v[kk] for kk in ('ml', 'rerun',
                                                                                          'stop_reason', 'stop_step')}
                                                                   for k, v in rows.items()}},
        'gap_pks': {name: node.pk for name, node in gaps.items()}, 'figures': figures,
    }
    summary['finding'] = finding(rows)
    return common.finish_study(out, STUDY, size, summary)


def main(argv=None) -> int:
    return common.study_main(
        STUDY, __doc__.splitlines()[0], run_study, argv, sizes=SIZES)


if __name__ == '__main__':
    sys.exit(main())
