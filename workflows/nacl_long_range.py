#!/usr/bin/env python
"""Long-range electrostatics beyond the descriptor cutoff (thesis chapter 9).

Molten NaCl at 1400 K with three classical references that share the BMHTF short-range part
(presets of ``aiida_mlfail.science.potentials``) and differ in the Coulomb part:

* ``Coulomb (PPPM)``: full long-range Coulomb (``bmhtf_coul_long``, PPPM, relative force accuracy 1e-5);
* ``Wolf``: the Wolf-summed Coulomb, zero beyond the cutoff (``bmhtf_wolf``; the thesis's cutoff reference);
* ``DSF``: the damped shifted force Coulomb of Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006), zero
  beyond the cutoff (``bmhtf_dsf``).

LAMMPS's ``born/coul/wolf`` forces are not the negative gradient of its energy (they are the DSF forces, while its
energy is the Wolf energy; ``tests/science/test_cutoff_coulomb.py``), so a GAP trained on Wolf energies and forces
learns two inconsistent labels. DSF with the same damping and cutoff is force-consistent: it is the clean cutoff
reference here, Wolf is kept next to it for the thesis's comparison.

Steps (each a WorkChain run in this process, no daemon needed; ``common.Runs``):

1. NVT sampling of each reference at ONE density (the thesis trains on a single NVT run until its section 10.6),
   same start, seed and MD settings; a classical NPT run (1 bar) of the DSF reference for the reference volume;
2. one GAP per reference with the same selection (uniform in force), split and hyperparameters; the descriptor
   cutoff is the Coulomb cutoff, so everything the cutoff references see is inside the descriptor;
3. energy parity on the held-out frames: RMSE (± bootstrap standard error) and the mean error, the bias
   (± standard error), per reference;
4. NPT GAP-MD (1400 K, 1 bar) of the DSF GAP from the last sampled frame, with the DSF rerun of its frames:
   stop reason (the volume guard halts at 3 x the classical NPT volume), breaking step (first frame above 1.5 x
   the classical NPT volume, ``science.observables.breaking_step``), mean volume (± block standard error) of its
   second half against the classical NPT volume.

Sizes (``SIZES``): ``tiny`` is the integration test (32 ions, seconds per step); ``small`` (default) runs in
minutes on 2 cores (64 ions, the recorded run of ``docs/source/results/nacl_long_range.md``); ``large`` is the
thesis's size (200 ions, 100 ps per reference), for a cluster.

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_long_range.py [--size tiny|small|large] [--out DIR]

Prints the tables and writes ``<out>/nacl_long_range_<size>.json`` and the figures ``energy_parity.png``,
``parity_<reference>.png`` and ``npt_volume.png``.
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

STUDY = 'nacl_long_range'
TEMPERATURE, PRESSURE = 1400.0, 1.0
#: The breaking step is the first frame above BREAK_FACTOR x the classical NPT volume; the GAP-MD's volume guard
#: halts the run later, at HALT_FACTOR x.
BREAK_FACTOR, HALT_FACTOR = 1.5, 3.0

#: Per size: ions, the NVT volume (Å^3, the BMHTF liquid at 1400 K is about 2450 Å^3 for 64 ions), the Coulomb and
#: descriptor cutoff (Å), the damping of Wolf and DSF (1/Å), the sampling ``md`` (NVT) and ``npt_md`` (the classical
#: NPT reference), the GAP (``common.gap_builder`` keywords) and the NPT GAP-MD steps (2 fs).
SIZES = {
    'tiny': {'n_ions': 32, 'volume': 1175.0, 'cutoff': 5.0, 'alpha': 0.25,
             'md': {'equilibration_steps': 200, 'production_steps': 400, 'sampling_interval': 20,
                    'thermo_interval': 20},
             'npt_md': {'equilibration_steps': 200, 'production_steps': 400, 'thermo_interval': 20,
                        'sampling_interval': 100},
             'gap': {'n_select': 20, 'soap_sparse': 20, 'n_sparse_2b': 10},
             'mlmd': {'steps': 100, 'dump_interval': 10, 'thermo_interval': 10}},
    'small': {'n_ions': 64, 'volume': 2350.0, 'cutoff': 6.0, 'alpha': 0.25,
              'md': {'equilibration_steps': 2000, 'production_steps': 10000, 'sampling_interval': 50,
                     'thermo_interval': 25},
              'npt_md': {'equilibration_steps': 2000, 'production_steps': 10000, 'thermo_interval': 25,
                         'sampling_interval': 500},
              'gap': {'n_select': 200, 'soap_sparse': 200, 'n_sparse_2b': 20},
              'mlmd': {'steps': 2500, 'dump_interval': 50, 'thermo_interval': 25}},
    'large': {'n_ions': 200, 'volume': 7500.0, 'cutoff': 9.0, 'alpha': 0.2,
              'md': {'equilibration_steps': 5000, 'production_steps': 50000, 'sampling_interval': 50,
                     'thermo_interval': 25},
              'npt_md': {'equilibration_steps': 5000, 'production_steps': 50000, 'thermo_interval': 25,
                         'sampling_interval': 1000},
              'gap': {'n_select': 500, 'soap_sparse': 1000, 'n_sparse_2b': 40},
              'mlmd': {'steps': 50000, 'dump_interval': 50, 'thermo_interval': 25}},
}


def references(size: str) -> dict:
    """The three references of ``size``: ``{name: reference dict}`` (presets, same cutoff and damping)."""
    s = SIZES[size]
    return {
        'Coulomb (PPPM)': {'name': 'bmhtf_coul_long', 'parameters': {'cutoff': s['cutoff'], 'kspace_accuracy': 1e-5}},
        'Wolf': {'name': 'bmhtf_wolf', 'parameters': {'cutoff': s['cutoff'], 'alpha': s['alpha']}},
        'DSF': {'name': 'bmhtf_dsf', 'parameters': {'cutoff': s['cutoff'], 'alpha': s['alpha']}},
    }


def slug(name: str) -> str:
    """File-name form of a reference name (``Coulomb (PPPM)`` -> ``coulomb``)."""
    return name.split()[0].lower()


def energy_errors(validation, predictions, n_boot: int = 1000, seed: int = 0) -> dict:
    """Energy per atom of the held-out frames (eV/atom) and the GAP's errors on them.

    :returns: ``reference``, ``predicted`` (lists), ``rmse`` and ``rmse_se`` (bootstrap over frames, ``n_boot``
        resamples), ``bias`` (mean of predicted - reference) and ``bias_se`` (standard deviation / sqrt(n)), ``n``.
    """
    ref = np.array([a.info['energy'] / len(a) for a in validation.get_atoms()])
    pred = np.array([a.info['energy'] / len(a) for a in predictions.get_atoms()])
    diff = pred - ref
    rng = np.random.default_rng(seed)
    boot = [np.sqrt(np.mean(diff[rng.integers(0, len(diff), len(diff))] ** 2)) for _ in range(n_boot)]
    return {'reference': ref.tolist(), 'predicted': pred.tolist(), 'n': len(diff),
            'rmse': float(np.sqrt(np.mean(diff**2))), 'rmse_se': float(np.std(boot, ddof=1)),
            'bias': float(diff.mean()), 'bias_se': float(diff.std(ddof=1) / np.sqrt(len(diff)))}


def second_half(thermo, key: str):
    """``key`` of the second half of a thermo ``ArrayData`` (the production part of an NPT run from a lattice or
    another density): mean and block standard error (``science.observables.mean_and_standard_error``)."""
    from aiida_mlfail.science.observables import mean_and_standard_error

    values = thermo.get_array(key)
    return mean_and_standard_error(values[len(values) // 2:])


def energy_parity_png(errors: dict, out: pathlib.Path) -> pathlib.Path:
    """One energy parity panel per reference (GAP vs reference energy per atom, eV/atom) with RMSE and bias."""
    from aiida_mlfail.science.plots import figure_png, plt

    fig, axes = plt.subplots(1, len(errors), figsize=(4.0 * len(errors), 4.0), squeeze=False)
    for ax, (name, e) in zip(axes[0], errors.items()):
        ref, pred = np.array(e['reference']), np.array(e['predicted'])
        lo, hi = min(ref.min(), pred.min()), max(ref.max(), pred.max())
        ax.plot([lo, hi], [lo, hi], color='0.6', lw=1)
        ax.scatter(ref, pred, s=6, alpha=0.6)
        ax.set_title(name)
        ax.set_xlabel('reference energy (eV/atom)')
        ax.set_ylabel('GAP energy (eV/atom)')
        ax.text(0.04, 0.96, f"RMSE {1000 * e['rmse']:.2f} ± {1000 * e['rmse_se']:.2f} meV/atom\n"
                f"bias {1000 * e['bias']:+.2f} ± {1000 * e['bias_se']:.2f} meV/atom", transform=ax.transAxes,
                va='top', fontsize=8)
    path = out / 'energy_parity.png'
    path.write_bytes(figure_png(fig))
    return path


def volume_png(traces: dict, v_ref: float, out: pathlib.Path) -> pathlib.Path:
    """Volume against time of the NPT runs (``{label: (time ps, volume Å^3)}``) with the 1.5 x reference line."""
    from aiida_mlfail.science.plots import figure_png, plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (t, v) in traces.items():
        ax.plot(np.asarray(t) - t[0], v, label=name)
    ax.axhline(BREAK_FACTOR * v_ref, color='red', ls='--', lw=1,
               label=f'{BREAK_FACTOR} x classical NPT volume (break)')
    ax.set_xlabel('time (ps)')
    ax.set_ylabel('volume (Å$^3$)')
    ax.legend(fontsize=8)
    path = out / 'npt_volume.png'
    path.write_bytes(figure_png(fig))
    return path


def finding(errors: dict, npt: dict) -> str:
    """One sentence: the thesis's claims (chapter 9) and whether this run reproduces them, within 2 standard errors."""
    coul, dsf = errors['Coulomb (PPPM)'], errors['DSF']
    diff = coul['rmse'] - dsf['rmse']
    error = 2 * np.hypot(coul['rmse_se'], dsf['rmse_se'])
    if diff > error:
        parity = (f"reproduced: the PPPM GAP's energy RMSE ({1000 * coul['rmse']:.2f} meV/atom) is above the "
                  f"cutoff (DSF) GAP's ({1000 * dsf['rmse']:.2f}) by more than 2 standard errors")
    elif diff < -error:
        parity = (f"not reproduced: the PPPM GAP's energy RMSE ({1000 * coul['rmse']:.2f} meV/atom) is below the "
                  f"DSF GAP's ({1000 * dsf['rmse']:.2f}) by more than 2 standard errors")
    else:
        parity = (f"inconclusive: energy RMSE PPPM {1000 * coul['rmse']:.2f} vs DSF {1000 * dsf['rmse']:.2f} "
                  'meV/atom differ by less than 2 standard errors')
    if npt.get('breaking_step') is not None:
        npt_text = f"breaks at step {npt['breaking_step']} (volume above {BREAK_FACTOR} x the classical NPT volume)"
    elif npt['stop_reason'] != 'completed':
        npt_text = f"stops ({npt['stop_reason']} at step {npt['stop_step']})"
    else:
        npt_text = 'stays below the breaking volume'
    failed = npt['stop_reason'] != 'completed' or npt.get('breaking_step') is not None
    return (f"Thesis ch. 9: the long-range (Coulomb) GAP's energies are noisier than the cutoff GAP's, and the "
            f"cutoff GAP still fails in NPT; here the first is {parity}, and the DSF GAP's NPT run {npt_text} "
            f"({'reproduced' if failed else 'not reproduced'}).")


def run_study(codes: dict, size: str, out: pathlib.Path, command: str = '') -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``), print its tables, write the
    JSON summary and the figures to ``out``; return the summary (see the module docstring)."""
    from aiida import orm

    t0 = time.time()
    s = SIZES[size]
    refs = references(size)
    out.mkdir(parents=True, exist_ok=True)
    runs = common.Runs()
    point = [{'temperature': TEMPERATURE, 'volume': s['volume'], 'label': 'nvt'}]
    npt_point = [{'temperature': TEMPERATURE, 'ensemble': 'NPT', 'pressure': PRESSURE, 'volume': s['volume'],
                  'label': 'npt'}]
    structure = common.nacl_structure(s['n_ions'])
    print('== 1. classical NVT sampling with each reference; classical NPT of the DSF reference')
    for name, reference in refs.items():
        runs.start(f'NVT {name}', common.sampling_builder(codes, point, size=size, structure=structure, md=s['md'],
                                                         reference=reference))
    runs.start('NPT DSF', common.sampling_builder(codes, npt_point, size=size, structure=structure,
                                                  md={**s['npt_md'], 'seed': 99}, reference=refs['DSF']))
    print(f"== 2. GAPs, descriptor cutoff {s['cutoff']} Å = the Coulomb cutoff")
    sampled = {}
    for name in refs:
        sampled[name] = runs.wait(f'NVT {name}')[f'NVT {name}']
        runs.start(f'GAP {name}', common.gap_builder(codes, sampled[name].outputs.pool, size=size,
                                                     cutoff=s['cutoff'], **s['gap']))
    npt_reference = runs.wait('NPT DSF')['NPT DSF']
    npt_thermo = npt_reference.outputs.sampled.npt.thermo
    v_ref, v_ref_se = second_half(npt_thermo, 'volume')
    gaps = {name: runs.wait(f'GAP {name}')[f'GAP {name}'] for name in refs}
    print('== 4. NPT GAP-MD of the DSF GAP, with the DSF rerun')
    start = orm.StructureData(ase=sampled['DSF'].outputs.sampled.nvt.training_set.get_atoms()[-1])
    # the guard halts at 3 x the reference volume, so the frames after the break (1.5 x) are in the trajectory
    parameters = {'ensemble': 'NPT', 'temperature': TEMPERATURE, 'pressure': PRESSURE, **s['mlmd'],
                  'reference_volume': v_ref, 'guards': {'volume_factor': HALT_FACTOR}}
    runs.start('NPT GAP DSF', common.mlmd_builder(codes, gaps['DSF'].outputs.potential, start, parameters, size=size,
                                                  reference=refs['DSF'], training_thermo=npt_thermo))
    mlmd = runs.wait('NPT GAP DSF', allowed=(0, 410))['NPT GAP DSF']

    print()
    errors, gap_rows, gap_summary = {}, [], {}
    for name, node in gaps.items():
        errors[name] = energy_errors(node.outputs.validation_set, node.outputs.predictions)
        m = node.outputs.metrics.get_dict()
        e = errors[name]
        gap_summary[name] = {'reference': refs[name], 'pk': node.pk, 'metrics': m,
                             'energy': {k: e[k] for k in ('rmse', 'rmse_se', 'bias', 'bias_se', 'n')},
                             'training': node.outputs.training_set.n_configurations,
                             'seconds': round((node.mtime - node.ctime).total_seconds(), 1)}
        gap_rows.append([name, common.with_error(1000 * e['rmse'], 1000 * e['rmse_se'], '.2f'),
                         f"{1000 * e['bias']:+.2f} ± {1000 * e['bias_se']:.2f}",
                         f"{m['forces']['rmse']:.4f}", f"{1000 * m['virial']['rmse']:.2f}", e['n']])
    gap_header = ['reference', 'E RMSE (meV/atom)', 'E bias (meV/atom)', 'F RMSE (eV/Å)', 'virial RMSE (meV/atom)',
                  'validation frames']
    common.print_table(gap_header, gap_rows)

    stop = mlmd.outputs.stop.get_dict()
    summary_md = mlmd.outputs.summary.get_dict()  # pressure table (its breaking step is at the guard's factor)
    thermo = mlmd.outputs.thermo
    v_ml, v_ml_se = second_half(thermo, 'volume')
    pressure = summary_md.get('pressure', {})
    from aiida_mlfail.science.observables import breaking_step

    broken = breaking_step(thermo.get_array('step'), thermo.get_array('volume'), v_ref, BREAK_FACTOR)
    npt = {'stop_reason': stop['stop_reason'], 'stop_step': stop.get('stop_step'),
           'breaking_step': None if broken is None else int(broken), 'break_factor': BREAK_FACTOR,
           'halt_factor': HALT_FACTOR, 'steps': s['mlmd']['steps'],
           'volume_A3': v_ml, 'volume_se_A3': v_ml_se, 'reference_volume_A3': v_ref,
           'reference_volume_se_A3': v_ref_se, 'pressure_bar': pressure, 'pk': mlmd.pk}
    dv = 100 * (v_ml / v_ref - 1)
    dv_se = (100 * (v_ml / v_ref) * np.hypot(v_ml_se / v_ml, (v_ref_se or 0) / v_ref)) if v_ml_se else None
    print()

    def p(key):
        entry = pressure.get(key) or {}
        return common.with_error(entry.get('mean_bar'), entry.get('standard_error_bar'), '.0f')

    npt_rows = [['classical DSF NPT', 'completed', '-', '-', common.with_error(v_ref, v_ref_se, '.0f'), '', '-',
                 '-'],
                ['GAP (DSF) NPT', stop['stop_reason'], stop.get('stop_step') or '-', npt['breaking_step'] or '-',
                 common.with_error(v_ml, v_ml_se, '.0f'),
                 f'{dv:+.1f} ± {dv_se:.1f} %' if dv_se is not None else f'{dv:+.1f} %', p('ML run'), p('rerun')]]
    npt_header = ['run', 'stop', 'stop step', f'breaking step ({BREAK_FACTOR} x V_classical)',
                  'volume (Å^3, 2nd half)', 'vs classical', 'P ML run (bar)',
                  'P rerun (bar)']
    common.print_table(npt_header, npt_rows)

    figures = [energy_parity_png(errors, out).name]
    for name, node in gaps.items():
        figures.append(common.export(node.outputs.parity_plot, out, f'parity_{slug(name)}.png').name)
    traces = {'classical DSF NPT': (npt_thermo.get_array('time'), npt_thermo.get_array('volume')),
              'GAP (DSF) NPT': (thermo.get_array('time'), thermo.get_array('volume'))}
    figures.append(volume_png(traces, v_ref, out).name)
    figures.append(common.export(mlmd.outputs.forensics_plot, out, 'forensics_npt_dsf.png').name)

    md_ps = s['md']['production_steps'] * 2.0 / 1000
    summary = {
        'study': STUDY, 'size': size, 'command': command,
        'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'nvt_volume_A3': s['volume'], 'cutoff_A': s['cutoff'], 'alpha_per_A': s['alpha'],
                  'nvt_production_ps': md_ps, 'frames_per_reference': sampled['DSF'].outputs.pool.n_configurations,
                  'configurations_selected': s['gap']['n_select'],
                  'npt_reference_ps': s['npt_md']['production_steps'] * 2.0 / 1000,
                  'gap_npt_steps': s['mlmd']['steps'], 'gap_npt_ps': s['mlmd']['steps'] * 2.0 / 1000},
        'tables': {'energy parity': {'header': gap_header, 'rows': gap_rows},
                   'NPT of the cutoff GAP': {'header': npt_header, 'rows': npt_rows}},
        'gaps': gap_summary, 'npt': npt, 'figures': figures,
    }
    summary['finding'] = finding(errors, npt)
    return common.finish_study(out, STUDY, size, summary)


def main(argv=None) -> int:
    return common.study_main(
        STUDY, __doc__.splitlines()[0], run_study, argv, sizes=SIZES)


if __name__ == '__main__':
    sys.exit(main())
