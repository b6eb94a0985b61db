#!/usr/bin/env python
"""Study: which signal predicts a GAP's failure (thesis chapter 11), measured with ``mlfail.calibrate``.

The thesis watched the temperature, the velocities, the average force magnitude (AFM), the pressure and the
virial pressure of a molten-NaCl GAP-NPT run that broke, found none of them announcing the break, and turned
to REMatch novelty (chapters 12-13). Here the claim is a number: two GAPs are fitted from classical BMHTF +
PPPM sampling at 1400 K (as ``nacl_npt_failure.py``: one trained at the liquid density, one at five densities,
same number of configurations), and for each ``mlfail.calibrate`` runs oracle NPT explorations (1400 K, 1
bar, several seeds; at every check the classical reference is evaluated on the configuration too, so the
GAP's true force error is known) and rates every signal as a detector of "force RMSE above a multiple of
the GAP's validation force RMSE" (``error_factor`` of ``SIZES``): area under the ROC and precision-recall
curves, the threshold at 5 % false positives and the lead time before the first failure of each walker.

    AIIDA_PATH=$PWD/.aiida python workflows/failure_signals.py --size tiny|small|large [--out DIR]

``tiny`` is the integration test (32 ions, seconds of sampling), ``small`` the recorded run
(docs/source/results/failure_signals/), ``large`` the thesis's 200-ion size (a cluster; not run here).
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

#: The novelty signals and the thesis's physical observables (chapter 11); the rest of
#: ``science.signals.DETECTORS`` are the guards' quantities.
NOVELTY = ('similarity', 'max_variance', 'mean_variance')
OBSERVABLES = ('temperature', 'afm', 'pressure', 'p_virial')
GUARDS = ('volume_ratio', 'min_distance', 'energy_change_per_atom', 'temperature_ratio')
SIGNALS = NOVELTY + OBSERVABLES + GUARDS

#: The state point of the explorations and of the sampling: molten NaCl.
TEMPERATURE, PRESSURE = 1400.0, 1.0

#: Per size: the system (``n_ions``, the NVT ``volumes`` of the sampling, Å^3, and the ``liquid_volume`` of the
#: single-density GAP), the GAP (``gap``: keyword arguments of ``common.gap_builder``), the sampling overrides
#: (``sampling``) and the calibration (``seeds``, explorer parameters ``explore``, ``error_factor``: a check is a
#: failure when the GAP's force RMSE against the reference exceeds this multiple of its validation force RMSE;
#: ``mlfail.calibrate``'s default is 2, lower here because short walkers rarely reach 2 x: in a first 32-ion run
#: of 2 x 200 steps the largest force RMSE was 1.8 x the validation RMSE).
SIZES = {
    # the integration test: 32 ions, 11 frames per volume, GAPs of 20 configurations, 2 walkers of 100 steps
    'tiny': {
        'n_ions': 32, 'volumes': [v / 2 for v in common.NACL_VOLUMES], 'liquid_volume': common.NACL_VOLUMES[2] / 2,
        'gap': {'n_select': 20, 'cutoff': 5.0, 'n_sparse_2b': 10, 'soap_sparse': 20},
        'sampling': {'equilibration_steps': 100, 'production_steps': 200, 'sampling_interval': 20,
                     'thermo_interval': 20},
        'seeds': [1, 2], 'error_factor': 1.2,
        'explore': {'max_steps': 100, 'comparison_step': 10, 'thermo_interval': 10,
                    'soap': {'r_cut': 4.0, 'n_max': 3, 'l_max': 2}},
    },
    # minutes on 2 cores: 64 ions, 6 ps sampled every 100 fs per volume (61 frames), GAPs of 100 configurations,
    # 3 walkers of 600 steps (1.2 ps) checked every 20 steps (31 checks each)
    'small': {
        'n_ions': 64, 'volumes': common.NACL_VOLUMES, 'liquid_volume': common.NACL_VOLUMES[2],
        'gap': {'n_select': 100, 'cutoff': 6.0, 'n_sparse_2b': 20, 'soap_sparse': 100},
        'sampling': {'equilibration_steps': 1000, 'production_steps': 3000, 'sampling_interval': 50,
                     'thermo_interval': 50},
        'seeds': [1, 2, 3], 'error_factor': 1.5,
        'explore': {'max_steps': 600, 'comparison_step': 20, 'thermo_interval': 20,
                    'soap': {'r_cut': 5.0, 'n_max': 4, 'l_max': 3}},
    },
    # the thesis's size (200 ions, the volumes of its section 10.6, 500 configurations, 8 Å): 8 walkers of
    # 30000 steps (60 ps; the thesis's GAP broke after ~22000 steps) checked every 100 steps; a cluster
    'large': {
        'n_ions': 200, 'volumes': [6000, 6750, 7500, 8250, 9000], 'liquid_volume': 7500,
        'gap': {'n_select': 500, 'cutoff': 8.0, 'n_sparse_2b': 40, 'soap_sparse': 1000},
        'sampling': {'equilibration_steps': 2000, 'production_steps': 50000, 'sampling_interval': 50,
                     'thermo_interval': 50},
        'seeds': [1, 2, 3, 4, 5, 6, 7, 8], 'error_factor': 2.0,
        'explore': {'max_steps': 30000, 'comparison_step': 100, 'thermo_interval': 100, 'soap': {}},
    },
}


def per_seed_auc(signals: dict, name: str, error: str, threshold: float, direction: str) -> list[float]:
    """ROC AUC of signal ``name`` in each exploration (``{seed: {column: array}}``) that has failures and
    non-failures (``science.calibration.roc``): the spread between walkers is the error of the pooled AUC."""
    from aiida_mlfail.science import calibration as cal

    aucs = []
    for run in signals.values():
        if name not in run:
            continue
        labels = np.asarray(run[error], dtype=float) > threshold
        values = np.asarray(run[name], dtype=float)
        keep = np.isfinite(values) & np.isfinite(np.asarray(run[error], dtype=float))
        if 0 < labels[keep].sum() < keep.sum():
            try:
                aucs.append(float(cal.roc(values[keep], labels[keep], direction)['auc']))
            except ValueError:
                continue
    return aucs


def finding(tables: dict) -> str:
    """One sentence: does the best novelty signal (REMatch similarity or GAP variance) beat every physical
    observable by more than the spread between walkers, for every GAP with a calibration?"""
    verdicts = []
    for model, rows in tables.items():
        if rows is None:
            verdicts.append(f'{model}: no failure and non-failure checks, nothing to rate')
            continue
        nov, obs = _best(rows, NOVELTY), _best(rows, OBSERVABLES)
        if nov is None or obs is None:
            verdicts.append(f'{model}: inconclusive (a signal could not be rated)')
        elif nov[0] - nov[1] > obs[0] + obs[1]:
            verdicts.append(f'{model}: reproduced ({nov[2]} AUC {nov[0]:.2f} vs best observable {obs[2]} '
                            f'{obs[0]:.2f})')
        elif obs[0] - obs[1] > nov[0] + nov[1]:
            verdicts.append(f'{model}: contradicted ({obs[2]} AUC {obs[0]:.2f} vs best novelty {nov[2]} '
                            f'{nov[0]:.2f})')
        else:
            verdicts.append(f'{model}: inconclusive ({nov[2]} AUC {nov[0]:.2f} vs {obs[2]} {obs[0]:.2f}, within '
                            'the spread between walkers)')
    return ('Thesis (ch. 11): no physical observable (T, AFM, P, P_virial) predicts the break, REMatch novelty '
            'does. This run: ' + '; '.join(verdicts) + '.')


def _best(rows: dict, names) -> tuple | None:
    rated = [(rows[n]['auc_roc'], rows[n]['auc_error'] or 0.0, n) for n in names
             if n in rows and rows[n]['auc_roc'] is not None]
    return max(rated) if rated else None


def auc_figure(tables: dict, path: pathlib.Path) -> pathlib.Path:
    """Bar chart of the ROC AUC (with the spread between walkers) of every signal, one bar per GAP."""
    from aiida_mlfail.science.plots import plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    models = [m for m, rows in tables.items() if rows is not None]
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(SIGNALS))
    for i, model in enumerate(models):
        rows = tables[model]
        auc = [rows[s]['auc_roc'] if s in rows and rows[s]['auc_roc'] is not None else np.nan for s in SIGNALS]
        err = [rows[s]['auc_error'] or 0.0 if s in rows else 0.0 for s in SIGNALS]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, auc, width, yerr=err, capsize=2, label=f'GAP {model}')
    ax.axhline(0.5, color='k', lw=0.8, ls='--', label='no skill (0.5)')
    ax.axvspan(-0.5, len(NOVELTY) - 0.5, color='tab:green', alpha=0.08)
    ax.axvspan(len(NOVELTY) - 0.5, len(NOVELTY) + len(OBSERVABLES) - 0.5, color='tab:orange', alpha=0.08)
    ax.set_xticks(x)
    ax.set_xticklabels(SIGNALS, rotation=35, ha='right', fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel('ROC AUC for force RMSE > x')
    ax.set_title('novelty (green) | physical observables (orange) | guards', fontsize=9)
    ax.legend(fontsize=7, loc='lower right')
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_study(codes: dict, size: str, out: pathlib.Path, command: str = '') -> dict:
    """Sampling, the two GAPs and their calibrations at ``size``; prints the tables and writes
    ``failure_signals_<size>.json`` and the PNGs into ``out``; returns the summary."""
    from aiida import orm

    from aiida_mlfail.workflows.calibrate import CalibrateWorkChain

    start_time = time.time()
    s = SIZES[size]
    liquid = f"nvt_V{s['liquid_volume']:g}"
    points = [{'temperature': TEMPERATURE, 'volume': float(v), 'label': f'nvt_V{v:g}'} for v in s['volumes']]

    print('== classical BMHTF + PPPM sampling (NVT, five densities)')
    nvt = common.run_foreground('NVT sampling', common.sampling_builder(codes, points, size=size, n_ions=s['n_ions'],
                                                                        md=s['sampling']))
    print('== GAPs: single density vs five densities (same number of training configurations)')
    gaps = common.run_together({
        'single density': common.gap_builder(codes, nvt.outputs.sampled[liquid].training_set, size=size, **s['gap']),
        'five densities': common.gap_builder(codes, nvt.outputs.pool, size=size, **s['gap']),
    })

    print(f'== calibration: oracle NPT explorations ({TEMPERATURE:g} K, {PRESSURE:g} bar), seeds {s["seeds"]}')
    start = orm.StructureData(ase=nvt.outputs.sampled[liquid].training_set.get_atoms()[-1])
    explore = {'ensemble': 'NPT', 'temperature': TEMPERATURE, 'pressure': PRESSURE, **s['explore']}
    builders = {}
    for name, gap in gaps.items():
        builders[name] = CalibrateWorkChain.get_builder_from_protocol(
            codes['explore'], gap.outputs.potential, start, common.BMHTF_PPPM, protocol=common.PROTOCOL_OF_SIZE[size],
            metrics=gap.outputs.metrics,
            overrides={'seeds': s['seeds'], 'explore': {'job': {'parameters': explore}},
                       'calibration': {'error': 'force_rmse',
                                       'error_threshold': s['error_factor'] * gap.outputs.metrics['forces']['rmse']}})
    # 404: the walkers never (or always) exceed the error threshold: nothing to rate, reported as such
    calibrations = common.run_together(builders, allowed=(0, 404))

    tables, json_tables, walkers, recommended, gap_rows = {}, {}, {}, {}, []
    for name, node in calibrations.items():
        metrics = gaps[name].outputs.metrics.get_dict()
        gap_rows.append([f'GAP {name}', f"{metrics['energy']['rmse']:.4f}", f"{metrics['forces']['rmse']:.3f}",
                         f"{metrics['virial']['rmse']:.4f}"])
        series = node.outputs.signals if 'signals' in node.outputs else {}
        signals = {label: {a: series[label].get_array(a) for a in series[label].get_arraynames()} for label in series}
        walkers[name] = [{'seed': label, 'checks': int(len(run['step'])), 'last_step': int(run['step'][-1]),
                          'max_force_rmse': float(np.nanmax(run['force_rmse'])),
                          'first_failure_step': _first_failure(run, s['error_factor'] * metrics['forces']['rmse'])}
                         for label, run in sorted(signals.items())]
        if not node.is_finished_ok:
            tables[name] = None
            print(f'GAP {name}: nothing to calibrate: {node.exit_message}')
            continue
        table = node.outputs.table.get_dict()
        recommended[name] = node.outputs.recommended.get_dict()
        rows = {}
        for signal in SIGNALS:
            row = table['table'].get(signal)
            if row is None:
                continue
            aucs = per_seed_auc(signals, signal, table['error'], table['error_threshold'], row['direction'])
            rows[signal] = {**row, 'auc_error': float(np.std(aucs, ddof=1)) if len(aucs) > 1 else None,
                            'n_seeds_rated': len(aucs)}
        tables[name] = rows
        print()
        print(f"GAP {name}: {table['error']} > {table['error_threshold']:.3g} eV/Å in {table['n_failures']} of "
              f"{table['n_checks']} checks")
        header = ['signal', 'kind', 'ROC AUC', 'PR AUC (baseline)', 'threshold at 5 % FPR', 'TPR', 'mean lead (steps)',
                  'walkers alarmed before failure']
        body = [[signal, _kind(signal), common.with_error(r['auc_roc'], r['auc_error'], '.2f'),
                 'nan' if r['auc_pr'] is None else f"{r['auc_pr']:.2f} ({r['pr_baseline']:.2f})",
                 'nan' if r['threshold'] is None else f"{r['threshold']:.6g}",
                 'nan' if r['tpr'] is None else f"{r['tpr']:.2f}",
                 'nan' if r['mean_lead_steps'] is None else f"{r['mean_lead_steps']:.0f}",
                 f"{r['n_alarmed_before_failure']} of {r['n_runs_failed']}"] for signal, r in rows.items()]
        common.print_table(header, body)
        json_tables[f'signals GAP {name}'] = {'header': header, 'rows': body}
        common.export(node.outputs.figure, out, f"calibration_{name.replace(' ', '_')}_{size}.png")

    print()
    gap_header = ['model', 'energy RMSE eV/atom', 'force RMSE eV/Å', 'virial RMSE eV/atom']
    common.print_table(gap_header, gap_rows)
    walker_header = ['model', 'seed', 'checks', 'last step', 'max force RMSE eV/Å', 'first failure step']
    walker_rows = [[f'GAP {name}', w['seed'], w['checks'], w['last_step'], f"{w['max_force_rmse']:.3g}",
                    w['first_failure_step']] for name, ws in walkers.items() for w in ws]
    print()
    common.print_table(walker_header, walker_rows)
    figure = auc_figure(tables, out / f'auc_{size}.png')
    text = finding(tables)
    print()
    print(text)
    print(f'figures: {figure}')
    summary = {
        'study': 'failure_signals', 'size': size, 'command': command, 'seconds': round(time.time() - start_time, 1),
        'sizes': {'ions': s['n_ions'], 'sampling_volumes_A3': list(s['volumes']),
                  'sampling_steps_per_volume': s['sampling']['production_steps'],
                  'sampling_ps_per_volume': s['sampling']['production_steps'] * 2.0 / 1000,
                  'configurations': s['gap']['n_select'], 'walkers': len(s['seeds']),
                  'exploration_steps': s['explore']['max_steps'],
                  'exploration_ps': s['explore']['max_steps'] * 2.0 / 1000,
                  'error_factor': s['error_factor'],
                  'checks_per_walker': s['explore']['max_steps'] // s['explore']['comparison_step'] + 1},
        'tables': {'gaps': {'header': gap_header, 'rows': gap_rows},
                   'walkers': {'header': walker_header, 'rows': walker_rows}, **json_tables},
        'signals': tables, 'recommended': recommended,
        'exit_status': {name: node.exit_status for name, node in calibrations.items()},
        'finding': text,
    }
    common.write_json(out, f'failure_signals_{size}.json', summary)
    return summary


def _kind(signal: str) -> str:
    return 'novelty' if signal in NOVELTY else 'observable' if signal in OBSERVABLES else 'guard'


def _first_failure(run: dict, threshold: float):
    failed = np.asarray(run['force_rmse'], dtype=float) > threshold
    return int(run['step'][np.argmax(failed)]) if failed.any() else None


def main(argv=None) -> int:
    return common.study_main(
        'failure_signals', __doc__.splitlines()[0], run_study, argv, sizes=SIZES, extra_codes=('explore',))


if __name__ == '__main__':
    sys.exit(main())
