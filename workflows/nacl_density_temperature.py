#!/usr/bin/env python
"""Study: density and temperature variation of the training data, NPT volume against the classical reference
(thesis section 10.6).

The thesis trains on five NVT runs at volumes around the liquid's so that the GAP learns where the system
wants to contract and where to expand (10.6, 10.6.2: its NPT volume within 1.2 % of the classical one at 200
ions), and proposes to vary the temperature as well, since the canonical energy distribution (eq. 10.4, a
Gaussian of variance k_B T^2 C around <H>) shifts and widens with T, so several temperatures cover a wider part
of phase space (10.6.1, figure 10.8).

Here, molten NaCl with the BMHTF + PPPM reference (``common.BMHTF_PPPM``):

1. classical NVT sampling at five volumes (``volumes``) and three temperatures (``temperatures``), and the
   classical NPT reference at 1400 K and 1 bar (the same run as ``nacl_npt_failure.py``);
2. the energy distribution of the sampled frames per temperature at the liquid volume: mean and standard
   deviation of the potential energy per atom, the configurational heat capacity from its variance
   (C = N var(U/N) / (k_B T^2), in k_B per atom), and the histograms with the Gaussian of eq. 10.4 drawn on them;
3. two GAPs with the same recipe and number of configurations (``n_select``, uniform in force: a flat histogram
   of the per-atom force magnitudes, ``science.selection``; half for validation): five volumes at 1400 K, and five
   volumes at the three temperatures (``gaps`` of the size);
4. both GAPs run NPT at 1400 K and 1 bar from the same start with the same seed; a run *breaks* at the first
   frame above ``nacl_npt_failure.BREAK_FACTOR`` (1.5) x the classical volume, the guard halts it later, at
   ``nacl_npt_failure.GUARD_FACTOR`` (3) x; their equilibrium volumes (block standard errors over the same
   production window as the classical run, before the break if it breaks, see ``nacl_npt_failure.py``) against
   the classical one.

Sizes (``SIZES``): ``tiny`` (the integration test's plumbing: 32 ions, two volumes at 1400 and 1600 K, 0.2 ps per
state point, 0.1 ps NPT), ``small`` (64 ions, 8 ps per state point, 6 ps NPT; half an hour on 2 cores),
``large`` (200 ions at the thesis's 6000-9000 Å^3, 100 ps per state point, 100 ps NPT; for a cluster).

    AIIDA_PATH=$PWD/.aiida python workflows/nacl_density_temperature.py [--size tiny|small|large] [--out DIR]

Writes ``<out>/nacl_density_temperature_<size>.json`` and the figures (energy distributions, volume traces).
"""

from __future__ import annotations

import math
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import nacl_npt_failure as npt  # noqa: E402

STUDY = 'nacl_density_temperature'
#: Boltzmann constant, eV/K.
KB = 8.617333262e-5
#: Temperatures of the training data (K): the melt at 1400 K and 200 K either side (NaCl melts at 1074 K).
TEMPERATURES = (1200.0, 1400.0, 1600.0)

#: The two GAPs of ``small`` and ``large``: name -> temperatures (K) of their training data (all volumes each).
GAPS = {'five volumes, 1400 K': (npt.TEMPERATURE,), 'five volumes, 1200-1600 K': TEMPERATURES}

#: Per size: as ``nacl_npt_failure.SIZES`` (ions, volumes, sampling, GAP, NPT), plus the ``temperatures`` and the
#: ``gaps``; ``small`` runs 6 ps of NPT (3000 steps) instead of 10 ps, so that its three times more sampling fits
#: in half an hour; ``tiny`` (the CI budget, 35 s) samples two volumes (the liquid's and an expanded one) at two
#: temperatures (4 state points instead of 15), 11 frames each in 100 steps, and runs 50 NPT steps.
SIZES = {size: {**s, 'temperatures': TEMPERATURES, 'gaps': GAPS} for size, s in npt.SIZES.items()}
SIZES['small']['md_steps'] = 3000
SIZES['tiny'].update(volumes=[1175, 1375], temperatures=(npt.TEMPERATURE, 1600.0),
                     gaps={'two volumes, 1400 K': (npt.TEMPERATURE,),
                           'two volumes, 1400-1600 K': (npt.TEMPERATURE, 1600.0)},
                     sampling={'equilibration_steps': 100, 'production_steps': 100, 'sampling_interval': 10},
                     md_steps=50, dump=10)


def label(volume: float, temperature: float) -> str:
    """State-point label; at 1400 K the label of ``nacl_npt_failure.py`` (so its cached runs are reused)."""
    return f'nvt_V{volume:.0f}' if temperature == npt.TEMPERATURE else f'nvt_T{temperature:.0f}_V{volume:.0f}'


def energy_distribution(frames, temperature: float) -> dict:
    """Mean, standard deviation (eV/atom) and the configurational heat capacity of the potential energies of
    ``frames`` (``ase.Atoms`` with ``info['energy']``, eV) at ``temperature`` (K).

    C = N var(u) / (k_B T^2) with u = U/N, in k_B per atom (canonical fluctuation formula, the variance of eq.
    10.4 of the thesis; Allen & Tildesley, *Computer Simulation of Liquids*, section 2.5). The mean's error is a
    block standard error (5 blocks, ``science.observables.mean_and_standard_error``).
    """
    from aiida_mlfail.science.observables import mean_and_standard_error

    n = len(frames[0])
    u = np.array([a.info['energy'] / len(a) for a in frames])
    mean, stderr = mean_and_standard_error(u, blocks=5)
    std = float(np.std(u, ddof=1))
    return {'temperature_K': temperature, 'frames': len(u), 'mean_eV_atom': mean, 'mean_stderr_eV_atom': stderr,
            'std_eV_atom': std, 'heat_capacity_kB_per_atom': n * std**2 / (KB * temperature) ** 2,
            'energies_eV_atom': u.tolist()}


def run_study(codes: dict, size: str, out: pathlib.Path, command: str) -> dict:
    """Run the study at ``size`` with ``codes`` (``lammps``, ``gap_fit``, ``quip``), print its tables, write the
    figures and ``nacl_density_temperature_<size>.json`` into ``out`` and return the summary.

    Exits (``SystemExit`` 1) when a WorkChain ends with a status the study does not accept (0; also 410 for the
    GAP NPT runs).
    """
    from aiida import orm

    from aiida_mlfail.calculations.functions import merge_training_sets

    t0 = time.time()
    s = SIZES[size]
    print(f"== 1. classical BMHTF + PPPM NVT at {s['volumes']} Å^3 x {list(s['temperatures'])} K and the NPT "
          f"reference ({s['n_ions']} ions)")
    points = [{'temperature': t, 'volume': float(v), 'label': label(v, t)} for t in s['temperatures']
              for v in s['volumes']]
    runs = common.Runs()
    runs.start('NVT sampling', common.sampling_builder(codes, points, size=size, n_ions=s['n_ions'],
                                                       md={**s['sampling'], 'thermo_interval': s['thermo']}))
    runs.start('classical NPT', npt.sampling_builders(codes, s, size)['classical NPT'])
    nvt = runs.wait('NVT sampling')['NVT sampling']
    sampled = nvt.outputs.sampled
    pools = {name: merge_training_sets(**{label(v, t): sampled[label(v, t)].training_set
                                          for t in temperatures for v in s['volumes']})
             for name, temperatures in s['gaps'].items()}
    print(f"== 3. GAPs from {s['n_select']} configurations each: {', '.join(s['gaps'])}")
    for name, pool in pools.items():
        runs.start(f'GAP {name}', common.gap_builder(codes, pool, size=size, n_select=s['n_select'], **s['gap']))

    distributions = [energy_distribution(sampled[label(s['liquid_volume'], t)].training_set.get_atoms(), t)
                     for t in s['temperatures']]
    classical = runs.wait('classical NPT')['classical NPT']
    classical_thermo = classical.outputs.sampled.npt_1bar.thermo
    reference = npt.volume_statistics(classical_thermo, s['skip'], s['sampling']['equilibration_steps'])
    fits = runs.wait(*(f'GAP {name}' for name in s['gaps']))
    start = orm.StructureData(ase=sampled[label(s['liquid_volume'], npt.TEMPERATURE)].training_set.get_atoms()[-1])
    print(f"== 4. GAP NPT ({npt.TEMPERATURE:.0f} K, {npt.PRESSURE:.0f} bar, {s['md_steps']} steps, seed "
          f"{npt.NPT_SEED}); classical V_eq {common.with_error(reference['mean'], reference['stderr'], '.0f')} Å^3; "
          f"break at {npt.BREAK_FACTOR} x, guard at {npt.GUARD_FACTOR} x")
    parameters = {'ensemble': 'NPT', 'temperature': npt.TEMPERATURE, 'pressure': npt.PRESSURE,
                  'timestep': npt.TIMESTEP, 'steps': s['md_steps'], 'dump_interval': s['dump'],
                  'thermo_interval': s['thermo'], 'seed': npt.NPT_SEED, 'reference_volume': reference['mean'],
                  'breaking_factor': npt.BREAK_FACTOR, 'guards': {'volume_factor': npt.GUARD_FACTOR}}
    for name in s['gaps']:
        runs.start(f'NPT {name}', common.mlmd_builder(codes, fits[f'GAP {name}'].outputs.potential, start,
                                                      parameters, size=size, equilibrium_thermo=classical_thermo))
    md = runs.wait(*(f'NPT {name}' for name in s['gaps']), allowed=(0, 410))
    return report(s, size, out, command, t0, distributions, fits, md, classical_thermo, reference)


def report(s, size, out, command, t0, distributions, fits, md, classical_thermo, reference) -> dict:
    """Tables, figures and the JSON summary of :func:`run_study`."""
    from aiida_mlfail.science.observables import breaking_step
    from aiida_mlfail.science.plots import plt

    energy_header = ['T (K)', 'frames', '<U>/N (eV/atom)', 'std U/N (meV/atom)', 'C_conf (k_B/atom)']
    energy_rows = [[f"{d['temperature_K']:.0f}", d['frames'],
                    common.with_error(d['mean_eV_atom'], d['mean_stderr_eV_atom'], '.4f'),
                    f"{1000 * d['std_eV_atom']:.2f}", f"{d['heat_capacity_kB_per_atom']:.2f}"]
                   for d in distributions]
    v_ref = reference['mean']
    volume_header = ['training data', 'E RMSE (meV/atom)', 'F RMSE (eV/Å)', 'stop',
                     f'breaking step (V > {npt.BREAK_FACTOR} V_ref)', 'V_eq (Å^3)', 'V_eq / V_ref - 1']
    volume_rows, runs = [], {}
    steps, volume = classical_thermo.get_array('step'), classical_thermo.get_array('volume')
    production = steps >= s['sampling']['equilibration_steps']
    traces = {'classical NPT (production)': (steps[production], volume[production])}
    for name in s['gaps']:
        metrics = fits[f'GAP {name}'].outputs.metrics.get_dict()
        node = md[f'NPT {name}']
        thermo, stop = node.outputs.thermo, node.outputs.stop.get_dict()
        traces[f'GAP {name}'] = (thermo.get_array('step'), thermo.get_array('volume'))
        broke = breaking_step(thermo.get_array('step'), thermo.get_array('volume'), v_ref, npt.BREAK_FACTOR)
        if broke is None and stop.get('stop_reason') == 'volume_blowup':  # halted between two thermo frames
            broke = stop.get('stop_step')
        stats = npt.volume_statistics(thermo, s['skip'])
        if broke is not None:
            stats = {**npt.volume_statistics_until(thermo, s['skip'], broke), 'note': 'mean up to the break'}
        dev, err = npt.relative_deviation(stats, reference)
        runs[name] = {'pk': node.pk, 'fit_pk': fits[f'GAP {name}'].pk, 'exit_status': node.exit_status,
                      'stop_reason': stop.get('stop_reason'), 'stop_step': stop.get('stop_step'),
                      'breaking_step': broke, 'volume': stats, 'deviation': dev, 'deviation_stderr': err,
                      'training_configurations': fits[f'GAP {name}'].outputs.training_set.n_configurations,
                      'gap_metrics': {q: metrics[q]['rmse'] for q in ('energy', 'forces', 'virial')}}
        volume_rows.append([name, f"{1000 * metrics['energy']['rmse']:.2f}", f"{metrics['forces']['rmse']:.3f}",
                            stop.get('stop_reason'), npt.fmt_step(broke),
                            common.with_error(stats['mean'], stats['stderr'], '.0f'), npt.percent(dev, err)])
    volume_rows.append(['classical BMHTF + PPPM', '-', '-', 'completed', '-',
                        common.with_error(v_ref, reference['stderr'], '.0f'), '0'])
    print()
    print(f"energy distributions at V = {s['liquid_volume']} Å^3 (eq. 10.4):")
    common.print_table(energy_header, energy_rows)
    print()
    common.print_table(volume_header, volume_rows)

    fig, (ax_e, ax_v) = plt.subplots(1, 2, figsize=(10, 4))
    for d in distributions:
        u = np.array(d['energies_eV_atom'])
        line = ax_e.hist(u, bins=max(5, len(u) // 6), density=True, alpha=0.45,
                         label=f"{d['temperature_K']:.0f} K")[2][0]
        grid = np.linspace(u.min() - 2 * d['std_eV_atom'], u.max() + 2 * d['std_eV_atom'], 200)
        gauss = np.exp(-((grid - d['mean_eV_atom']) ** 2) / (2 * d['std_eV_atom'] ** 2))
        ax_e.plot(grid, gauss / (d['std_eV_atom'] * math.sqrt(2 * math.pi)), color=line.get_facecolor()[:3])
    ax_e.set_xlabel('potential energy per atom (eV)')
    ax_e.set_ylabel('probability density')
    ax_e.set_title(f"NVT at {s['liquid_volume']} Å$^3$: histogram + Gaussian (eq. 10.4)", fontsize=9)
    ax_e.legend(fontsize=8)
    for name, (steps, volume) in traces.items():
        ax_v.plot((steps - steps[0]) * npt.TIMESTEP / 1000, volume, label=name, lw=1)
    ax_v.axhline(v_ref, color='k', lw=0.8, ls=':', label='classical V_eq')
    ax_v.axhline(npt.BREAK_FACTOR * v_ref, color='red', ls='--', lw=1, label=f'{npt.BREAK_FACTOR} V_eq (break)')
    ax_v.set_xlabel('time in the NPT run (ps)')
    ax_v.set_ylabel('volume (Å$^3$)')
    ax_v.set_title(f"NPT {npt.TEMPERATURE:.0f} K, {npt.PRESSURE:.0f} bar, {s['n_ions']} ions", fontsize=9)
    ax_v.legend(fontsize=7)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    figure = f'energy_distributions_volumes_{size}.png'
    fig.savefig(out / figure, dpi=100)
    plt.close(fig)

    summary = {
        'study': STUDY, 'size': size, 'command': command, 'seconds': round(time.time() - t0, 1),
        'sizes': {'ions': s['n_ions'], 'nvt_volumes_A3': s['volumes'], 'temperatures_K': list(s['temperatures']),
                  'sampling_steps_per_state_point': s['sampling']['production_steps'],
                  'sampling_ps_per_state_point': s['sampling']['production_steps'] * npt.TIMESTEP / 1000,
                  'npt_steps': s['md_steps'], 'npt_ps': s['md_steps'] * npt.TIMESTEP / 1000,
                  'averaged_from_fraction': s['skip'], 'configurations_per_gap': s['n_select'], 'gap': s['gap'],
                  'gap_training_temperatures_K': {name: list(t) for name, t in s['gaps'].items()},
                  'breaking_factor': npt.BREAK_FACTOR, 'guard_factor': npt.GUARD_FACTOR},
        'reference_volume': {**reference, 'source': 'classical BMHTF + PPPM NPT of this study, same production '
                                                    'window'},
        'energy_distributions': distributions,
        'runs': runs,
        'tables': {'energy_distributions': {'header': energy_header, 'rows': energy_rows},
                   'volumes': {'header': volume_header, 'rows': volume_rows}},
        'figures': [figure],
    }
    summary['finding'] = finding(distributions, runs)
    return common.finish_study(out, STUDY, size, summary)


def finding(distributions: list, runs: dict) -> str:
    """One sentence: the thesis's claims (the energy distribution shifts up and widens with T; five-density data
    give the classical NPT volume) and what this run shows, with "inconclusive" where within two errors."""
    means = [d['mean_eV_atom'] for d in distributions]
    stds = [d['std_eV_atom'] for d in distributions]
    shifted = all(b > a for a, b in zip(means, means[1:]))
    widened = all(b > a for a, b in zip(stds, stds[1:]))
    parts = [f"the energy distribution {'shifts up' if shifted else 'does not shift up monotonically'} and "
             f"{'widens' if widened else 'does not widen monotonically'} with T "
             f"(std {', '.join(f'{1000 * x:.1f}' for x in stds)} meV/atom)"]
    for name, run in runs.items():
        if run['breaking_step'] is not None:
            parts.append(f'the GAP of {name} breaks at step {run["breaking_step"]}')
            continue
        dev, err = run['deviation'], run['deviation_stderr'] or 0.0
        verdict = 'consistent with the classical volume' if abs(dev) <= 2 * err else 'off the classical volume'
        parts.append(f'the GAP of {name} gives V_eq {100 * dev:+.1f} ± {100 * err:.1f} % ({verdict})')
    return ('Thesis 10.6: density-varied training data give the classical NPT volume (1.2 % at 200 ions) and '
            f"temperature variation widens the sampled energies; here {'; '.join(parts)}.")


def main(argv=None) -> int:
    return common.study_main(
        STUDY, __doc__.splitlines()[0], run_study, argv)


if __name__ == '__main__':
    sys.exit(main())
