#!/usr/bin/env python
"""Study: selection methods compared on the same pool, by the max error, RMSE and MAE of the forces.

The thesis builds its training sets by selecting configurations of a classical trajectory uniformly in energy
(section 8.2) and does not compare selection methods; the issue asks for the comparison (max error, RMSE and MAE
of the forces of GAPs trained on configurations chosen by each method from the same pool).

Here: the pool is the classical BMHTF + PPPM NVT sampling of molten NaCl at 1400 K and five volumes (the runs of
``nacl_npt_failure.py``); a random half of it is the candidates, the other half the fixed validation set. Every
selection method of ``science.selection.METHODS`` whose label the pool carries picks ``n_train`` candidates; each
selection trains a GAP with the same recipe (``common.gap_builder``) and is validated on the same set. The
force errors are computed per validation configuration from the GAP's predictions; the errors of RMSE, MAE and
max error are bootstrap standard errors over the validation configurations (``BOOTSTRAP`` resamples), so the
difference between two methods is significant only where it exceeds them.

Sizes: ``tiny`` (the integration test: 32 ions, 11 frames per volume, 5 configurations per GAP, three methods),
``small`` (64 ions, 81 frames per volume, 40 per GAP; minutes on 2 cores), ``large`` (200 ions, 501 frames per
volume, 250 per GAP; for a cluster).

    AIIDA_PATH=$PWD/.aiida python workflows/nacl_selection.py [--size tiny|small|large] [--out DIR]
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import nacl_npt_failure as npt  # noqa: E402

STUDY = 'nacl_selection'
#: Bootstrap resamples of the validation configurations (error bars of RMSE, MAE, max error).
BOOTSTRAP = 1000
#: Configurations each method selects, per size (the rest of a size: ``nacl_npt_failure.SIZES``).
N_TRAIN = {'tiny': 5, 'small': 40, 'large': 250}
#: Seed of the candidate / validation split and of the selections.
SEED = 7
#: The methods compared per size (default: every method of ``science.selection.METHODS``): ``tiny`` keeps three
#: to stay within the integration test's time.
METHODS_OF_SIZE = {'tiny': ('uniform_energy', 'uniform_force', 'random')}


def force_errors(predictions, validation) -> dict:
    """Force errors of a GAP on a validation set, with bootstrap standard errors over configurations.

    :param predictions: ``ase.Atoms`` list as predicted by the GAP (``arrays['forces']``, eV/Å).
    :param validation: the reference ``ase.Atoms`` list in the same order.
    :returns: ``{'rmse', 'mae', 'max'}`` (eV/Å, over all force components) and ``{'rmse_stderr', 'mae_stderr',
        'max_stderr'}`` (standard deviation of each over :data:`BOOTSTRAP` resamples of the configurations,
        Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993).
    """
    diffs = [np.asarray(p.arrays['forces']) - np.asarray(v.arrays['forces']) for p, v in zip(predictions, validation)]
    sq = np.array([np.sum(d**2) for d in diffs])
    ab = np.array([np.sum(np.abs(d)) for d in diffs])
    mx = np.array([np.max(np.abs(d)) for d in diffs])
    count = np.array([d.size for d in diffs])
    def stats(idx):
        return (np.sqrt(sq[idx].sum() / count[idx].sum()), ab[idx].sum() / count[idx].sum(), mx[idx].max())
    rmse, mae, largest = stats(np.arange(len(diffs)))
    rng = np.random.default_rng(SEED)
    boot = np.array([stats(rng.integers(0, len(diffs), len(diffs))) for _ in range(BOOTSTRAP)])
    errors = boot.std(axis=0, ddof=1)
    return {'rmse': float(rmse), 'mae': float(mae), 'max': float(largest), 'rmse_stderr': float(errors[0]),
            'mae_stderr': float(errors[1]), 'max_stderr': float(errors[2]), 'configurations': len(diffs)}


def run_study(codes: dict, size: str, out: pathlib.Path, command: str) -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``), print the table, write the
    figure and ``nacl_selection_<size>.json`` into ``out`` and return the summary."""
    from aiida import orm

    from aiida_mlfail.calculations.functions import split_training_set
    from aiida_mlfail.science.selection import METHODS, REQUIRED_LABEL

    t0 = time.time()
    s, n_train = npt.SIZES[size], N_TRAIN[size]
    print(f"== 1. classical BMHTF + PPPM NVT at {s['volumes']} Å^3, {npt.TEMPERATURE:.0f} K ({s['n_ions']} ions)")
    nvt = common.run_foreground('NVT sampling', npt.sampling_builders(codes, s, size)['NVT sampling'])
    pool = nvt.outputs.pool
    parts = split_training_set(pool, orm.Dict({'train_fraction': 0.5, 'seed': SEED}))
    candidates, validation = parts['train'], parts['validation']
    compared = METHODS_OF_SIZE.get(size, METHODS)
    methods = [m for m in compared if REQUIRED_LABEL.get(m) in (None, *pool.labels)]
    skipped = [m for m in compared if m not in methods]
    print(f'== 2. {n_train} of {candidates.n_configurations} candidates per method ({", ".join(methods)}), '
          f'validated on the same {validation.n_configurations} configurations'
          + (f'; skipped (label missing in the pool): {", ".join(skipped)}' if skipped else ''))
    builders = {}
    for method in methods:
        builder = common.gap_builder(codes, candidates, size=size, n_select=n_train, validation_set=validation,
                                     seed=SEED, **s['gap'])
        builder.selection = orm.Dict({'method': method, 'n': n_train, 'seed': SEED})
        builders[method] = builder
    fits = common.run_together(builders)

    reference = validation.get_atoms()
    header = ['selection', 'F RMSE (eV/Å)', 'F MAE (eV/Å)', 'F max error (eV/Å)', 'E RMSE (meV/atom)',
              'virial RMSE (meV/atom)']
    rows, results = [], {}
    for method, node in fits.items():
        errors = force_errors(node.outputs.predictions.get_atoms(), reference)
        metrics = node.outputs.metrics.get_dict()
        selected = node.outputs.training_set.get_atoms()
        results[method] = {'pk': node.pk, 'forces': errors, 'energy_rmse': metrics['energy']['rmse'],
                           'virial_rmse': metrics['virial']['rmse'],
                           'selected_energy_range_eV_atom': [float(min(a.info['energy'] / len(a) for a in selected)),
                                                             float(max(a.info['energy'] / len(a) for a in selected))]}
        rows.append([method, common.with_error(errors['rmse'], errors['rmse_stderr'], '.4f'),
                     common.with_error(errors['mae'], errors['mae_stderr'], '.4f'),
                     common.with_error(errors['max'], errors['max_stderr'], '.3f'),
                     f"{1000 * metrics['energy']['rmse']:.2f}", f"{1000 * metrics['virial']['rmse']:.1f}"])
    print()
    common.print_table(header, rows)

    from aiida_mlfail.science.plots import plt

    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(results))
    for offset, key in zip((-0.25, 0.0, 0.25), ('rmse', 'mae', 'max')):
        values = [r['forces'][key] for r in results.values()]
        errs = [r['forces'][f'{key}_stderr'] for r in results.values()]
        ax.bar(x + offset, values, width=0.25, yerr=errs, capsize=3, label=f'force {key}')
    ax.set_xticks(x, list(results), fontsize=8)
    ax.set_yscale('log')
    ax.set_ylabel('eV/Å')
    ax.set_title(f"{n_train} configurations per GAP, {validation.n_configurations} validation "
                 f"({s['n_ions']} ions)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    figure = f'selection_errors_{size}.png'
    fig.savefig(out / figure, dpi=100)
    plt.close(fig)

    summary = {
        'study': STUDY, 'size': size, 'command': command, 'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'nvt_volumes_A3': s['volumes'], 'temperature_K': npt.TEMPERATURE,
                  'pool_configurations': pool.n_configurations, 'candidates': candidates.n_configurations,
                  'validation_configurations': validation.n_configurations, 'configurations_per_gap': n_train,
                  'sampling_ps_per_volume': s['sampling']['production_steps'] * npt.TIMESTEP / 1000,
                  'gap': s['gap'], 'bootstrap_resamples': BOOTSTRAP},
        'methods': results, 'skipped_methods': skipped,
        'tables': {'force_errors': {'header': header, 'rows': rows}},
        'figures': [figure],
    }
    summary['finding'] = finding(results)
    return common.finish_study(out, STUDY, size, summary)


def finding(results: dict) -> str:
    """One sentence: the best method by each force metric and whether it beats the runner-up by more than two
    combined (bootstrap) standard errors, else "inconclusive"."""
    parts = []
    for key in ('rmse', 'mae', 'max'):
        ranked = sorted(results, key=lambda m: results[m]['forces'][key])
        if len(ranked) < 2:
            parts.append(f'{key}: {ranked[0]}')
            continue
        a, b = results[ranked[0]]['forces'], results[ranked[1]]['forces']
        margin = 2 * np.hypot(a[f'{key}_stderr'], b[f'{key}_stderr'])
        verdict = 'beyond two errors of' if b[key] - a[key] > margin else 'inconclusive against'
        parts.append(f'{key}: {ranked[0]} ({verdict} {ranked[1]})')
    return ('The thesis selects uniformly in energy (8.2) without comparing methods; lowest force errors here: '
            + '; '.join(parts) + '.')


def main(argv=None) -> int:
    return common.study_main(
        STUDY, __doc__.splitlines()[0], run_study, argv)


if __name__ == '__main__':
    sys.exit(main())
