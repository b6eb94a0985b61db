#!/usr/bin/env python
"""Descriptors and cutoffs of the GAP: SOAP alone vs SOAP + distance_2b, and the virial error across cutoffs
(thesis sections 10.1 and 10.2).

One classical NVT run of molten NaCl (BMHTF + PPPM, 1400 K, one density) is the data; one selection (uniform in
force, seed 7) and one 50/50 split, the same for every GAP (the selection and split calcfunctions get the same inputs;
the study checks that every GAP's validation set holds the same configurations). Every GAP is trained on energies
and forces (E+F), with the ``moderate``/``fast`` protocol's sigmas.

* **10.1, SOAP alone vs SOAP + distance_2b at equal cost.** At each cutoff of ``soap_only_cutoffs``, a SOAP-only GAP
  (``science.gap.explicit_descriptors`` of a lone ``soap``, one SOAP per centre species) next to the 2-body + SOAP
  GAP of the same cutoff. Equal cost means the same total number of sparse points, the size of the GP's kernel
  matrix K_MM and of the linear system gap_fit solves: the SOAP-only GAP gets, per species, the SOAP sparse points of
  the 2-body + SOAP GAP plus its 2-body sparse points shared out over the species
  (``soap_sparse + n_pairs * n_sparse_2b / n_species``). The cost is then measured, not assumed: gap_fit's wall
  time (its own Hello World / Finalise stamps, 1 s resolution; the two GAPs of a cutoff fit at the same time, so
  they share the machine's load; at ``tiny`` all GAPs run at once, to save CI time) and the prediction time per
  atom (energy, forces and virial with quippy, in this process, one after the other). Compared: energy RMSE
  (eV/atom) and force RMSE (eV/Å) on the held-out configurations, each ± a bootstrap standard error over
  configurations.
* **10.2, cutoff variation.** The 2-body + SOAP E+F GAPs at the cutoffs of ``cutoffs``: per held-out
  configuration, the virial pressure error ``P_GAP - P_ref = (tr W_GAP - tr W_ref) / (3 V)`` (W the virial, V x
  stress with the ASE/extxyz sign; the kinetic term is the same for both and cancels), its mean (the signed error)
  ± its standard error (standard deviation / sqrt(n)) and RMSE. A mean beyond 2 standard errors from 0 is called
  systematically high or low. The thesis finds E+F GAPs whose virial pressure is too high at some cutoffs and too
  low at others (figure 10.4).

Sizes (``SIZES``): ``tiny`` is the integration test (32 ions, two cutoffs, one SOAP-only GAP); ``small`` (default)
runs in minutes on 2 cores (64 ions, the recorded run of ``docs/source/results/nacl_descriptors.md``); ``large`` is
the thesis's size (200 ions, cutoffs up to its 9 Å), for a cluster.

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_descriptors.py [--size tiny|small|large] [--out DIR]

Writes ``<out>/nacl_descriptors_<size>.json``, ``energy_parity.png`` (10.1) and ``pressure_errors.png`` (10.2).
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

STUDY = 'nacl_descriptors'
TEMPERATURE = 1400.0
TRAIN_ON = ('energy', 'forces')
#: Bootstrap resamples of the RMSE standard errors.
BOOTSTRAP = 1000

#: Per size: ions, the NVT volume (Å^3), the sampling ``md`` (2 fs steps), the GAP (``common.gap_builder``
#: keywords: configurations selected, SOAP and 2-body sparse points of the 2-body + SOAP GAP, SOAP settings other
#: than the protocol's), the cutoffs (Å) of
#: the 10.2 GAPs and those at which a SOAP-only GAP is fitted too (10.1).
SIZES = {
    'tiny': {'n_ions': 32, 'volume': 1175.0,
             'md': {'equilibration_steps': 200, 'production_steps': 400, 'sampling_interval': 20,
                    'thermo_interval': 20},
             'gap': {'n_select': 20, 'soap_sparse': 20, 'n_sparse_2b': 10},
             'cutoffs': [4.0, 5.0], 'soap_only_cutoffs': [5.0], 'all_at_once': True},
    'small': {'n_ions': 64, 'volume': 2350.0,
              'md': {'equilibration_steps': 2000, 'production_steps': 10000, 'sampling_interval': 50,
                     'thermo_interval': 25},
              'gap': {'n_select': 120, 'soap_sparse': 200, 'n_sparse_2b': 20},
              'cutoffs': [4.0, 5.0, 6.0, 7.0], 'soap_only_cutoffs': [4.0, 5.0, 6.0, 7.0]},
    'large': {'n_ions': 200, 'volume': 7500.0,
              'md': {'equilibration_steps': 5000, 'production_steps': 50000, 'sampling_interval': 50,
                     'thermo_interval': 25},
              # the thesis's GAP (section 6.4): SOAP n 5, l 4, atom_sigma 1 Å, 500 SOAP and 100 2-body sparse points
              'gap': {'n_select': 500, 'soap_sparse': 500, 'n_sparse_2b': 100,
                      'soap': {'n_max': 5, 'l_max': 4, 'atom_sigma': 1.0}},
              'cutoffs': [5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 'soap_only_cutoffs': [5.0, 9.0]},
}

#: 1 eV/Å^3 in bar.
EV_PER_A3_IN_BAR = 1.602176634e6


def soap_only_sparse(species, soap_sparse: int, n_sparse_2b: int) -> int:
    """Sparse points per centre species of the SOAP-only GAP with as many sparse points in all as the 2-body + SOAP
    GAP (``soap_sparse`` per species, ``n_sparse_2b`` per species pair): ``soap_sparse + n_pairs * n_sparse_2b /
    n_species``, rounded (n_pairs = n(n+1)/2 for n species)."""
    n = len(set(species))
    return int(round(soap_sparse + n * (n + 1) / 2 * n_sparse_2b / n))


def _bootstrap_rmse(per_config_sq: np.ndarray, weights: np.ndarray, seed: int = 0) -> float:
    """Bootstrap standard error (over configurations) of sqrt(sum sq / sum weights)."""
    rng = np.random.default_rng(seed)
    n = len(per_config_sq)
    boot = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, n, n)
        boot.append(np.sqrt(per_config_sq[pick].sum() / weights[pick].sum()))
    return float(np.std(boot, ddof=1))


def held_out_errors(validation, predictions) -> dict:
    """Errors of a GAP on its held-out configurations.

    :returns: ``energy_rmse`` (eV/atom), ``forces_rmse`` (eV/Å, force components), each with ``*_se`` (bootstrap over
        configurations); ``pressure_errors`` (bar, list per configuration: virial pressure GAP - reference),
        ``pressure_mean`` (the signed error) and ``pressure_se`` (standard deviation / sqrt(n)),
        ``pressure_rmse`` (bar), ``reference_pressure`` (bar, mean virial pressure of the reference: the
        configurational part, tr W / 3V, without the kinetic N k_B T / V), ``energy``
        (``reference``/``predicted`` eV/atom lists, for the parity plot), ``n``.
    """
    ref, pred = validation.get_atoms(), predictions.get_atoms()
    e_ref = np.array([a.info['energy'] / len(a) for a in ref])
    e_pred = np.array([b.info['energy'] / len(b) for b in pred])
    f_sq = np.array([np.sum((b.arrays['forces'] - a.arrays['forces']) ** 2) for a, b in zip(ref, pred)])
    f_n = np.array([a.arrays['forces'].size for a in ref], dtype=float)

    def pressure(atoms):
        return float(np.trace(np.reshape(atoms.info['virial'], (3, 3)))) / (3 * atoms.get_volume()) * EV_PER_A3_IN_BAR

    p_ref = np.array([pressure(a) for a in ref])
    dp = np.array([pressure(b) for b in pred]) - p_ref
    de = e_pred - e_ref
    n = len(ref)
    return {
        'n': n,
        'energy_rmse': float(np.sqrt(np.mean(de**2))), 'energy_rmse_se': _bootstrap_rmse(de**2, np.ones(n)),
        'forces_rmse': float(np.sqrt(f_sq.sum() / f_n.sum())), 'forces_rmse_se': _bootstrap_rmse(f_sq, f_n),
        'pressure_errors': dp.tolist(), 'pressure_mean': float(dp.mean()),
        'pressure_se': float(dp.std(ddof=1) / np.sqrt(n)), 'pressure_rmse': float(np.sqrt(np.mean(dp**2))),
        'reference_pressure': float(p_ref.mean()),
        'energy': {'reference': e_ref.tolist(), 'predicted': e_pred.tolist()},
    }


def prediction_ms_per_atom(potential, configurations) -> float:
    """Wall time (ms) per atom of quippy's energy + forces + virial of ``configurations`` with ``potential``
    (``GapPotentialData``), in this process (the calculator is built before the clock starts)."""
    calculator = potential.get_calculator()
    atoms_list = [a.copy() for a in configurations]
    start = time.perf_counter()
    for atoms in atoms_list:
        atoms.calc = calculator
        atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_stress()
    return 1000 * (time.perf_counter() - start) / sum(len(a) for a in atoms_list)


def fit_report(workchain) -> dict:
    """The ``output_parameters`` of the last gap_fit job a ``GapWorkChain`` ran (``fit_wall_time_s``, ...)."""
    jobs = [d for d in workchain.called_descendants
            if d.process_type and d.process_type.endswith('gap_fit') and 'output_parameters' in d.outputs]
    return max(jobs, key=lambda j: j.ctime).outputs.output_parameters.get_dict()


def verdict(mean: float, se: float) -> str:
    """``high``/``low`` when the mean signed error is beyond 2 standard errors from 0, else ``unbiased``."""
    return 'high' if mean > 2 * se else 'low' if mean < -2 * se else 'unbiased'


def energy_parity_png(pairs: dict, out: pathlib.Path) -> pathlib.Path:
    """Energy parity (GAP vs reference, eV/atom) of each GAP of ``pairs`` (``{title: errors}``), one panel each."""
    from aiida_mlfail.science.plots import figure_png, plt

    fig, axes = plt.subplots(1, len(pairs), figsize=(4.0 * len(pairs), 4.0), squeeze=False)
    for ax, (title, e) in zip(axes[0], pairs.items()):
        ref, pred = np.array(e['energy']['reference']), np.array(e['energy']['predicted'])
        lo, hi = min(ref.min(), pred.min()), max(ref.max(), pred.max())
        ax.plot([lo, hi], [lo, hi], color='0.6', lw=1)
        ax.scatter(ref, pred, s=8, alpha=0.7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel('reference energy (eV/atom)')
        ax.set_ylabel('GAP energy (eV/atom)')
        ax.text(0.04, 0.96, f"RMSE {1000 * e['energy_rmse']:.2f} ± {1000 * e['energy_rmse_se']:.2f} meV/atom",
                transform=ax.transAxes, va='top', fontsize=8)
    path = out / 'energy_parity.png'
    path.write_bytes(figure_png(fig))
    return path


def pressure_errors_png(rows: list, out: pathlib.Path) -> pathlib.Path:
    """Mean virial pressure error (GAP - reference, bar) ± standard error against the cutoff, with the errors of the
    single configurations."""
    from aiida_mlfail.science.plots import figure_png, plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for cutoff, e in rows:
        ax.scatter(np.full(e['n'], cutoff) + np.linspace(-0.08, 0.08, e['n']), e['pressure_errors'], s=5,
                   color='0.6', alpha=0.6)
    cutoffs = [c for c, _ in rows]
    ax.errorbar(cutoffs, [e['pressure_mean'] for _, e in rows], yerr=[2 * e['pressure_se'] for _, e in rows],
                fmt='o', color='C3', capsize=4, label='mean ± 2 standard errors')
    ax.axhline(0, color='0.3', lw=1)
    ax.set_xlabel('descriptor cutoff (Å)')
    ax.set_ylabel('virial pressure error, GAP - reference (bar)')
    ax.set_title('E+F GAPs (2-body + SOAP) on the same held-out configurations', fontsize=9)
    ax.legend(fontsize=8)
    path = out / 'pressure_errors.png'
    path.write_bytes(figure_png(fig))
    return path


def finding(gaps: dict, size: dict) -> str:
    """The thesis's claims of 10.1 and 10.2 and whether this run reproduces them (2 standard errors)."""
    better = worse = 0
    for cutoff in size['soap_only_cutoffs']:
        a, b = gaps[f'SOAP, {cutoff:g} Å']['errors'], gaps[f'2b + SOAP, {cutoff:g} Å']['errors']
        margin = 2 * np.hypot(a['energy_rmse_se'], b['energy_rmse_se'])
        better += a['energy_rmse'] - b['energy_rmse'] > margin
        worse += b['energy_rmse'] - a['energy_rmse'] > margin
    n = len(size['soap_only_cutoffs'])
    part1 = ('Thesis 10.1: SOAP + distance_2b predicts energies much better than SOAP alone with otherwise equal '
             f'settings; here, at equal sparse points, the 2-body + SOAP energy RMSE is lower beyond 2 standard errors '
             f'at {better} of {n} cutoffs (higher at {worse}): '
             + ('reproduced' if better == n else 'not reproduced' if worse else 'partly reproduced' if better
                else 'inconclusive') + '.')
    signs = {c: gaps[f'2b + SOAP, {c:g} Å']['pressure_verdict'] for c in size['cutoffs']}
    listed = ', '.join(f'{c:g} Å {v}' for c, v in signs.items())
    kinds = set(signs.values())
    if {'high', 'low'} <= kinds:
        v2 = 'reproduced (both signs occur)'
    elif kinds & {'high', 'low'}:
        v2 = 'partly reproduced (systematic errors, of one sign only)'
    else:
        v2 = 'inconclusive (no mean error beyond 2 standard errors)'
    part2 = ('Thesis 10.2: E+F GAPs predict the virial pressure systematically too high at some cutoffs and too low '
             f'at others; here {listed}: {v2}.')
    return f'{part1} {part2}'


def run_study(codes: dict, size: str, out: pathlib.Path, command: str = '') -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``), print its tables, write the
    JSON summary and figures to ``out``; return the summary (see the module docstring)."""
    t0 = time.time()
    s = SIZES[size]
    out.mkdir(parents=True, exist_ok=True)
    point = [{'temperature': TEMPERATURE, 'volume': s['volume'], 'label': 'nvt'}]
    print('== classical BMHTF + PPPM NVT at one density')
    sampling = common.run_foreground('sampling', common.sampling_builder(
        codes, point, size=size, n_ions=s['n_ions'], md=s['md']))
    pool = sampling.outputs.pool
    g = s['gap']
    soap_only = soap_only_sparse(pool.species, g['soap_sparse'], g['n_sparse_2b'])
    print(f'== E+F GAPs: 2-body + SOAP at cutoffs {s["cutoffs"]} Å, SOAP alone ({soap_only} sparse points per '
          f'species) at {s["soap_only_cutoffs"]} Å; the GAPs of one cutoff fit together')
    gaps = {}
    cutoffs = sorted(set(s['cutoffs']) | set(s['soap_only_cutoffs']))
    # one round per cutoff (its two GAPs share the machine while they fit), or all GAPs at once (tiny: CI time)
    rounds = [cutoffs] if s.get('all_at_once') else [[c] for c in cutoffs]
    for round_cutoffs in rounds:
        runs = common.Runs()
        names = []
        for cutoff in round_cutoffs:
            name = f'2b + SOAP, {cutoff:g} Å'
            runs.start(name, common.gap_builder(codes, pool, size=size, n_select=g['n_select'], cutoff=cutoff,
                                                soap_sparse=g['soap_sparse'], n_sparse_2b=g['n_sparse_2b'],
                                                soap=g.get('soap'), train_on=TRAIN_ON))
            names.append((name, '2b + SOAP', cutoff))
            if cutoff in s['soap_only_cutoffs']:
                name = f'SOAP, {cutoff:g} Å'
                runs.start(name, common.gap_builder(codes, pool, size=size, n_select=g['n_select'], cutoff=cutoff,
                                                    soap_sparse=soap_only, n_sparse_2b=None, soap=g.get('soap'),
                                                    train_on=TRAIN_ON))
                names.append((name, 'SOAP', cutoff))
        nodes = runs.wait()
        for name, kind, c in names:
            gaps[name] = {'node': nodes[name], 'descriptors': kind, 'cutoff': c}

    validation = None
    same_validation = True
    for gap in gaps.values():
        node = gap['node']
        v = node.outputs.validation_set.get_atoms()
        if validation is None:
            validation = v
        same_validation &= len(v) == len(validation) and all(
            np.array_equal(a.positions, b.positions) for a, b in zip(v, validation))
        potential = node.outputs.potential
        gap.update({
            'pk': node.pk, 'errors': held_out_errors(node.outputs.validation_set, node.outputs.predictions),
            'n_sparse': int(sum(potential.base.attributes.get('n_sparse'))),
            'fit_wall_time_s': fit_report(node).get('fit_wall_time_s'),
            'predict_ms_per_atom': prediction_ms_per_atom(potential, v),
            'command_line': potential.base.attributes.get('command_line'),
        })
        gap['pressure_verdict'] = verdict(gap['errors']['pressure_mean'], gap['errors']['pressure_se'])
    if not same_validation:
        print('WARNING: the GAPs were validated on different configurations', file=sys.stderr)

    print()
    desc_header = ['cutoff (Å)', 'descriptors', 'sparse points', 'gap_fit wall time (s)', 'prediction (ms/atom)',
                   'E RMSE (meV/atom)', 'F RMSE (eV/Å)']
    desc_rows = []
    for cutoff in s['soap_only_cutoffs']:
        for kind in ('SOAP', '2b + SOAP'):
            gap = gaps[f'{kind}, {cutoff:g} Å']
            e = gap['errors']
            desc_rows.append([f'{cutoff:g}', kind, gap['n_sparse'], gap['fit_wall_time_s'],
                              f"{gap['predict_ms_per_atom']:.2f}",
                              common.with_error(1000 * e['energy_rmse'], 1000 * e['energy_rmse_se'], '.2f'),
                              common.with_error(e['forces_rmse'], e['forces_rmse_se'], '.3f')])
    common.print_table(desc_header, desc_rows)
    print()
    cut_header = ['cutoff (Å)', 'E RMSE (meV/atom)', 'F RMSE (eV/Å)', 'P_virial ref (bar)', 'P error mean (bar)',
                  'P error RMSE (bar)', 'systematic']
    cut_rows, cut_plot = [], []
    for cutoff in s['cutoffs']:
        gap = gaps[f'2b + SOAP, {cutoff:g} Å']
        e = gap['errors']
        cut_rows.append([f'{cutoff:g}', common.with_error(1000 * e['energy_rmse'], 1000 * e['energy_rmse_se'], '.2f'),
                         common.with_error(e['forces_rmse'], e['forces_rmse_se'], '.3f'),
                         f"{e['reference_pressure']:.0f}",
                         common.with_error(e['pressure_mean'], e['pressure_se'], '.0f'),
                         f"{e['pressure_rmse']:.0f}", gap['pressure_verdict']])
        cut_plot.append((cutoff, e))
    common.print_table(cut_header, cut_rows)

    soap_pairs = {f'{name} ({gaps[name]["n_sparse"]} sparse points)': gaps[name]['errors']
                  for c in s['soap_only_cutoffs'][-1:] for name in (f'SOAP, {c:g} Å', f'2b + SOAP, {c:g} Å')}
    figures = [energy_parity_png(soap_pairs, out).name, pressure_errors_png(cut_plot, out).name]
    summary = {
        'study': STUDY, 'size': size, 'command': command, 'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'volume_A3': s['volume'], 'training_run_ps': s['md']['production_steps'] * 0.002,
                  'frames': pool.n_configurations, 'configurations_selected': g['n_select'],
                  'validation_configurations': len(validation), 'cutoffs_A': s['cutoffs'],
                  'soap_only_cutoffs_A': s['soap_only_cutoffs'], 'soap_sparse_per_species': g['soap_sparse'],
                  'n_sparse_2b_per_pair': g['n_sparse_2b'], 'soap_only_sparse_per_species': soap_only,
                  'train_on': list(TRAIN_ON)},
        'tables': {'SOAP vs 2-body + SOAP (10.1)': {'header': desc_header, 'rows': desc_rows},
                   'cutoff variation (10.2)': {'header': cut_header, 'rows': cut_rows}},
        'same_validation_set': bool(same_validation),
        'gaps': {name: {k: v for k, v in gap.items() if k != 'node'} for name, gap in gaps.items()},
        'figures': figures,
    }
    summary['finding'] = finding(gaps, s)
    return common.finish_study(out, STUDY, size, summary)


def main(argv=None) -> int:
    return common.study_main(STUDY, __doc__.splitlines()[0], run_study, argv, sizes=SIZES)


if __name__ == '__main__':
    sys.exit(main())
