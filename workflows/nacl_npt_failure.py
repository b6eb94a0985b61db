#!/usr/bin/env python
"""Study: a GAP trained at one density against one trained at five, run in NPT (thesis sections 10.5, 10.6.2, 11).

The thesis (section 10.5, figure 10.7) finds that its best NVT GAP, trained on configurations of one NVT run
at one density, expands without bound as soon as it runs NPT; trained on five NVT runs at densities around the
liquid's (section 10.6.2, figure 10.10), the same kind of GAP holds the classical NPT equilibrium volume within
1.2 % (200 ions) and 2.8 % (1000 ions).

Here, molten NaCl at 1400 K with the BMHTF + PPPM reference (``common.BMHTF_PPPM``):

1. classical NVT sampling at five volumes (``volumes``) and a classical NPT run at 1 bar (the reference) whose
   production part is exactly as long as the GAP NPT runs;
2. two GAPs from the same recipe (the demo's: the protocol's descriptors at ``cutoff``), with the same number of
   configurations (``n_select``, uniform in force; a 50/50 train/validation split): one from the NVT run at
   ``liquid_volume`` only, one from the pool of all five;
3. both GAPs run NPT (1400 K, 1 bar, ``md_steps`` of 2 fs, same seed) from the last frame of the liquid NVT
   run; the breaking step is the first frame above 1.5 x the classical equilibrium volume (the thesis's breaking
   volume, section 11), and the guard halts a run later, at 3 x, so the forensics show the frames after the break.

Every equilibrium volume is the mean over the production window (the runs after the first ``skip`` fraction,
the same window for GAP and classical runs) with a block standard error (``science.observables.
mean_and_standard_error``, 5 blocks); the deviation from the classical volume carries the propagated error,
and the finding says "inconclusive" where the deviation is within two errors.

Sizes (``SIZES``): ``tiny`` (the integration test: 32 ions at the same densities, 0.4 ps of sampling per volume
and 0.2 ps NPT; shows the plumbing and the statistics, not the finding), ``small`` (64 ions, the demo's
sampling, 10 ps NPT; minutes on 2 cores), ``large`` (the thesis's 200 ions at 6000-9000 Å^3, 100 ps sampling
per volume, 100 ps NPT; for a cluster, ``--computer``).

    AIIDA_PATH=$PWD/.aiida python workflows/nacl_npt_failure.py [--size tiny|small|large] [--out DIR]

Prints the tables and writes ``<out>/nacl_npt_failure_<size>.json`` and the figures (volume traces, the
forensics of both GAP NPT runs, the parity plots of both GAPs).
"""

from __future__ import annotations

import math
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

STUDY = 'nacl_npt_failure'
TEMPERATURE, PRESSURE, TIMESTEP = 1400.0, 1.0, 2.0
#: The thesis's breaking volume: 1.5 x the classical equilibrium volume (section 11).
BREAK_FACTOR = 1.5
#: The guard that halts a GAP NPT run: 3 x the classical volume, later than the break, so the forensics show the
#: frames after it (the thesis's figures 11.3-11.5).
GUARD_FACTOR = 3.0
#: Seed of both GAP NPT runs (the demo's verification seed, ``workflows/nacl_active_learning.py``).
NPT_SEED = 77
#: Blocks of the block standard errors.
BLOCKS = 5

#: Per size: ions, NVT volumes (Å^3) and the liquid one (the single-density GAP's), the sampling overrides
#: (``sampling``: NVT, every volume), configurations per GAP (``n_select``; half train, half validation), the
#: GAP descriptors (``gap``: keyword arguments of ``common.gap_builder``), steps of the GAP NPT runs and of the
#: classical NPT production (``md_steps``, 2 fs each), the fraction of each NPT run skipped before averaging
#: (``skip``), thermo interval (``thermo``).
SIZES = {
    'tiny': {'n_ions': 32, 'volumes': [v / 2 for v in common.NACL_VOLUMES], 'liquid_volume': 1175,
             'sampling': {'equilibration_steps': 100, 'production_steps': 200, 'sampling_interval': 20},
             'n_select': 10, 'gap': {'cutoff': 4.5, 'soap_sparse': 20, 'n_sparse_2b': 10},
             'md_steps': 100, 'skip': 0.2, 'thermo': 5, 'dump': 20},
    'small': {'n_ions': 64, 'volumes': common.NACL_VOLUMES, 'liquid_volume': 2350,
              'sampling': {'equilibration_steps': 2000, 'production_steps': 4000, 'sampling_interval': 50},
              'n_select': 81, 'gap': {'cutoff': 5.0, 'soap_sparse': 100, 'n_sparse_2b': 20},
              'md_steps': 5000, 'skip': 0.2, 'thermo': 25, 'dump': 100},
    'large': {'n_ions': 200, 'volumes': [6000, 6750, 7500, 8250, 9000], 'liquid_volume': 7500,
              'sampling': {'equilibration_steps': 2000, 'production_steps': 50000, 'sampling_interval': 100},
              'n_select': 500, 'gap': {'cutoff': 8.0, 'soap_sparse': 1000, 'n_sparse_2b': 40},
              'md_steps': 50000, 'skip': 0.2, 'thermo': 25, 'dump': 100},
}


def volume_statistics(thermo, skip: float, production_from: int = 0) -> dict:
    """Mean volume (Å^3) and its block standard error over the production part of a thermo series (the frames at
    steps >= ``production_from``: a sampling run's thermo also covers its equilibration) after its first ``skip``
    fraction.

    :param thermo: ``orm.ArrayData`` with ``volume`` (Å^3) and ``step`` arrays.
    :returns: ``{'mean', 'stderr', 'samples', 'from_step', 'to_step'}`` (steps of the averaged window).
    """
    from aiida_mlfail.science.observables import mean_and_standard_error

    volume, steps = thermo.get_array('volume'), thermo.get_array('step')
    production = steps >= production_from
    volume, steps = volume[production], steps[production]
    first = int(skip * len(volume))
    mean, stderr = mean_and_standard_error(volume[first:], blocks=BLOCKS)
    return {'mean': mean, 'stderr': stderr, 'samples': int(len(volume) - first),
            'from_step': int(steps[first]) if first < len(steps) else None, 'to_step': int(steps[-1])}


def relative_deviation(stats: dict, reference: dict) -> tuple[float | None, float | None]:
    """``V / V_ref - 1`` and its standard error (independent errors propagated to first order)."""
    v, sv, r, sr = stats['mean'], stats['stderr'], reference['mean'], reference['stderr']
    if v is None:
        return None, None
    if sv is None or sr is None:
        return v / r - 1.0, None
    return v / r - 1.0, math.hypot(sv / r, v * sr / r**2)


def sampling_builders(codes, s: dict, size: str) -> dict:
    """The classical NVT sampling at every volume of ``s`` and the classical NPT reference (1 bar; its production
    as long as the GAP NPT runs, thermo at the same interval)."""
    nvt_points = [{'temperature': TEMPERATURE, 'volume': float(v), 'label': f'nvt_V{v:.0f}'} for v in s['volumes']]
    npt_point = [{'temperature': TEMPERATURE, 'ensemble': 'NPT', 'pressure': PRESSURE,
                  'volume': float(s['liquid_volume']), 'label': 'npt_1bar'}]
    npt_md = {**s['sampling'], 'production_steps': s['md_steps'], 'sampling_interval': s['dump'],
              'thermo_interval': s['thermo'], 'seed': 99}
    return {'NVT sampling': common.sampling_builder(codes, nvt_points, size=size, n_ions=s['n_ions'],
                                                    md={**s['sampling'], 'thermo_interval': s['thermo']}),
            'classical NPT': common.sampling_builder(codes, npt_point, size=size, n_ions=s['n_ions'], md=npt_md)}


def run_study(codes: dict, size: str, out: pathlib.Path, command: str) -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``), print its tables, write the
    figures and ``nacl_npt_failure_<size>.json`` into ``out`` and return the summary written there.

    Exits (``SystemExit`` 1) when a WorkChain ends with a status the study does not accept (0; also 410 for the
    GAP NPT runs: a guard stop is the result).
    """
    from aiida import orm

    t0 = time.time()
    s = SIZES[size]
    liquid = f"nvt_V{s['liquid_volume']:.0f}"
    print(f"== 1. classical BMHTF + PPPM: NVT at {s['volumes']} Å^3 and NPT at {PRESSURE:.0f} bar "
          f"({s['n_ions']} ions, {TEMPERATURE:.0f} K)")
    runs = common.Runs()
    for name, builder in sampling_builders(codes, s, size).items():
        runs.start(name, builder)
    nvt = runs.wait('NVT sampling')['NVT sampling']

    gaps = {'single density': nvt.outputs.sampled[liquid].training_set, 'five densities': nvt.outputs.pool}
    print(f"== 2. GAPs from {s['n_select']} configurations each (uniform in force, half for validation): "
          f"single density (V = {s['liquid_volume']} Å^3) and five densities")
    for name, pool in gaps.items():
        runs.start(f'GAP {name}', common.gap_builder(codes, pool, size=size, n_select=s['n_select'], **s['gap']))
    classical = runs.wait('classical NPT')['classical NPT']
    classical_thermo = classical.outputs.sampled.npt_1bar.thermo
    reference = volume_statistics(classical_thermo, s['skip'], s['sampling']['equilibration_steps'])
    v_ref = reference['mean']
    print(f"classical NPT equilibrium volume: {common.with_error(v_ref, reference['stderr'], '.0f')} Å^3")

    fits = runs.wait(*(f'GAP {name}' for name in gaps))
    start = orm.StructureData(ase=nvt.outputs.sampled[liquid].training_set.get_atoms()[-1])
    print(f"== 3. GAP NPT ({TEMPERATURE:.0f} K, {PRESSURE:.0f} bar, {s['md_steps']} steps of {TIMESTEP:.0f} fs, "
          f'seed {NPT_SEED}) from the last liquid NVT frame; break at {BREAK_FACTOR} x, guard at {GUARD_FACTOR} x '
          f'{v_ref:.0f} Å^3')
    parameters = {'ensemble': 'NPT', 'temperature': TEMPERATURE, 'pressure': PRESSURE, 'timestep': TIMESTEP,
                  'steps': s['md_steps'], 'dump_interval': s['dump'], 'thermo_interval': s['thermo'],
                  'seed': NPT_SEED, 'reference_volume': v_ref, 'breaking_factor': BREAK_FACTOR,
                  'guards': {'volume_factor': GUARD_FACTOR}}
    for name in gaps:
        runs.start(f'NPT {name}', common.mlmd_builder(codes, fits[f'GAP {name}'].outputs.potential, start, parameters,
                                                      size=size, equilibrium_thermo=classical_thermo))
    md = runs.wait(*(f'NPT {name}' for name in gaps), allowed=(0, 410))
    return report(s, size, out, command, t0, fits, md, classical_thermo, reference)


def report(s, size, out, command, t0, fits, md, classical_thermo, reference) -> dict:
    """Tables, figures and the JSON summary of :func:`run_study`."""
    from aiida_mlfail.science.observables import breaking_step
    from aiida_mlfail.science.plots import plt

    v_ref = reference['mean']
    fit_rows, volume_rows, runs = [], [], {}
    steps, volume = classical_thermo.get_array('step'), classical_thermo.get_array('volume')
    production = steps >= s['sampling']['equilibration_steps']
    traces = {'classical NPT (production)': (steps[production], volume[production])}
    for key, fit in fits.items():
        name = key.removeprefix('GAP ')
        metrics = fit.outputs.metrics.get_dict()
        fit_rows.append([name, fit.outputs.training_set.n_configurations,
                         f"{1000 * metrics['energy']['rmse']:.2f}", f"{metrics['forces']['rmse']:.3f}",
                         f"{1000 * metrics['virial']['rmse']:.1f}"])
        node = md[f'NPT {name}']
        thermo = node.outputs.thermo
        traces[f'GAP {name}'] = (thermo.get_array('step'), thermo.get_array('volume'))
        stop = node.outputs.stop.get_dict()
        broke = breaking_step(thermo.get_array('step'), thermo.get_array('volume'), v_ref, BREAK_FACTOR)
        if broke is None and stop.get('stop_reason') == 'volume_blowup':  # halted between two thermo frames
            broke = stop.get('stop_step')
        stats = volume_statistics(thermo, s['skip'])
        if broke is not None:  # the window before the break: the volume the GAP held, if any
            steps = thermo.get_array('step')
            stats['note'] = 'mean up to the break'
            stats.update(volume_statistics_until(thermo, s['skip'], broke))
            stats['to_step'] = int(steps[steps < broke][-1]) if np.any(steps < broke) else None
        dev, dev_err = relative_deviation(stats, reference)
        runs[name] = {'pk': node.pk, 'exit_status': node.exit_status, 'stop_reason': stop.get('stop_reason'),
                      'stop_step': stop.get('stop_step'), 'breaking_step': broke,
                      'breaking_time_ps': None if broke is None else broke * TIMESTEP / 1000,
                      'volume': stats, 'deviation': dev, 'deviation_stderr': dev_err,
                      'gap_metrics': {q: metrics[q]['rmse'] for q in ('energy', 'forces', 'virial')}}
        volume_rows.append([f'GAP {name}', stop.get('stop_reason'), fmt_step(broke),
                            common.with_error(stats['mean'], stats['stderr'], '.0f'),
                            percent(dev, dev_err)])
    volume_rows.append(['classical BMHTF + PPPM', 'completed', '-',
                        common.with_error(v_ref, reference['stderr'], '.0f'), '0'])
    fit_header = ['GAP', 'training configurations', 'E RMSE (meV/atom)', 'F RMSE (eV/Å)', 'virial RMSE (meV/atom)']
    volume_header = ['run', 'stop', f'breaking step (V > {BREAK_FACTOR} V_ref)', 'V_eq (Å^3)', 'V_eq / V_ref - 1']
    print()
    common.print_table(fit_header, fit_rows)
    print()
    common.print_table(volume_header, volume_rows)

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, (steps, volume) in traces.items():
        ax.plot((steps - steps[0]) * TIMESTEP / 1000, volume, label=name, lw=1)
    ax.axhline(v_ref, color='k', lw=0.8, ls=':', label='classical V_eq')
    ax.axhline(BREAK_FACTOR * v_ref, color='red', ls='--', lw=1, label=f'{BREAK_FACTOR} V_eq (break)')
    ax.set_xlabel('time in the NPT run (ps)')
    ax.set_ylabel('volume (Å$^3$)')
    ax.set_title(f"NaCl, {s['n_ions']} ions, {TEMPERATURE:.0f} K, {PRESSURE:.0f} bar")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    figures = [f'volume_traces_{size}.png']
    fig.savefig(out / figures[0], dpi=100)
    plt.close(fig)
    for name in runs:
        slug = name.replace(' ', '_')
        for node, plot, prefix in ((md[f'NPT {name}'], 'forensics_plot', 'forensics'),
                                   (fits[f'GAP {name}'], 'parity_plot', 'parity')):
            figures.append(common.export(node.outputs[plot], out, f'{prefix}_{slug}_{size}.png').name)

    summary = {
        'study': STUDY, 'size': size, 'command': command, 'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'nvt_volumes_A3': s['volumes'], 'liquid_volume_A3': s['liquid_volume'],
                  'sampling_steps_per_volume': s['sampling']['production_steps'],
                  'sampling_ps_per_volume': s['sampling']['production_steps'] * TIMESTEP / 1000,
                  'npt_steps': s['md_steps'], 'npt_ps': s['md_steps'] * TIMESTEP / 1000,
                  'averaged_from_fraction': s['skip'], 'blocks': BLOCKS, 'configurations_per_gap': s['n_select'],
                  'gap': s['gap'], 'temperature_K': TEMPERATURE, 'pressure_bar': PRESSURE, 'timestep_fs': TIMESTEP},
        'reference_volume': {**reference, 'source': 'classical BMHTF + PPPM NPT of this study, same production '
                                                    'window'},
        'runs': runs,
        'tables': {'gaps': {'header': fit_header, 'rows': fit_rows},
                   'volumes': {'header': volume_header, 'rows': volume_rows}},
        'figures': figures,
    }
    summary['finding'] = finding(runs)
    return common.finish_study(out, STUDY, size, summary)


def volume_statistics_until(thermo, skip: float, step: int) -> dict:
    """Mean volume and block standard error of the frames after the first ``skip`` fraction and before ``step``
    (the breaking step); ``None`` values when that window is empty."""
    from aiida_mlfail.science.observables import mean_and_standard_error

    volume, steps = thermo.get_array('volume'), thermo.get_array('step')
    before = volume[steps < step]
    window = before[int(skip * len(before)):]
    mean, stderr = mean_and_standard_error(window, blocks=BLOCKS) if len(window) else (None, None)
    return {'mean': mean, 'stderr': stderr, 'samples': int(len(window))}


def percent(value, error) -> str:
    """``'+x.x ± y.y %'`` of a relative deviation and its error (``'nan'`` without a value)."""
    if value is None:
        return 'nan'
    return f'{100 * value:+.1f} %' if error is None else f'{100 * value:+.1f} ± {100 * error:.1f} %'


def fmt_step(step) -> str:
    return '-' if step is None else str(step)


def finding(runs: dict) -> str:
    """One sentence: the thesis's claim (single density breaks, five densities hold the classical volume) and
    whether this run reproduces it; a deviation within two standard errors of zero counts as agreement, one
    within two errors of the thesis's 2.8 % tolerance as inconclusive."""
    single, five = runs['single density'], runs['five densities']
    broke_single = single['breaking_step'] is not None
    held_five = five['breaking_step'] is None and five['deviation'] is not None
    broke_at = f"breaks at step {single['breaking_step']}" if broke_single else 'does not break'
    parts = [f'single-density GAP {broke_at}']
    if held_five:
        dev, err = five['deviation'], five['deviation_stderr'] or 0.0
        parts.append(f'five-density GAP runs through, V_eq {100 * dev:+.1f} ± {100 * err:.1f} % off the classical one')
    else:
        parts.append('five-density GAP breaks' if five['breaking_step'] is not None else 'five-density GAP: no volume')
    if broke_single and held_five and abs(five['deviation']) <= 0.028 + 2 * (five['deviation_stderr'] or 0.0):
        verdict = 'reproduced'
    elif not broke_single and held_five:
        dev, err = single['deviation'] or 0.0, single['deviation_stderr'] or 0.0
        verdict = (f'not reproduced: the single-density GAP does not break in this run length, its V_eq is '
                   f'{100 * dev:+.1f} ± {100 * err:.1f} % off the classical one'
                   + (' (beyond two errors)' if abs(dev) > 2 * err else ' (within two errors)'))
    else:
        verdict = 'not reproduced'
    return ('Thesis 10.5/10.6.2: a GAP trained at one density expands without bound in NPT, one trained at five '
            f"densities holds the classical volume (1.2-2.8 %); here {'; '.join(parts)}: {verdict}.")


def main(argv=None) -> int:
    return common.study_main(
        STUDY, __doc__.splitlines()[0], run_study, argv)


if __name__ == '__main__':
    sys.exit(main())
