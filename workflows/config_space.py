#!/usr/bin/env python
"""Configuration space of molten NaCl at two temperatures, compared with SOAP + REMatch.

As the thesis compared a DFT (AIMD) trajectory X with the classical configurations Y a GAP was
trained on (thesis chapter 12): does Y cover the configurations of X? Here both are classical
BMHTF + PPPM NVT trajectories of molten NaCl (ClassicalSamplingWorkChain, both state points
concurrently) at the experimental liquid densities (Janz: rho = 2.1389 - 5.43e-4 T g/cm^3):
X = 1600 K, Y = 1200 K. ConfigSpaceWorkChain then runs, as three concurrent ``mlfail.rematch`` jobs,
the distance to first of X and of Y and the nearest neighbour of every X frame in Y. Prints a table
(per set: frames, Na self-diffusion as a liquid check, distance-to-first plateau and maximum;
nearest-neighbour distance median / 95th percentile / max of X in Y) and the exported figures.

With ``--x aimd``, X is instead a CP2K NVT AIMD trajectory at 1600 K (Cp2kAimdWorkChain; ``fast``
protocol, 8 ions, 30 steps of 2 fs for ``--size small``), as in the thesis's setting; only the X set
given to ConfigSpaceWorkChain changes. The run starts from the rock-salt lattice at the 1600 K liquid
density and is far too short to melt: it shows AIMD frames used as X, not a liquid AIMD sample.

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/config_space.py [--size small|large] [--x classical|aimd]
        [--foreground]

The WorkChains are builders from their protocols (``--size small``: ``moderate``, ``large``: ``precise``;
``common.PROTOCOL_OF_SIZE``; the AIMD run: ``AIMD``) with the study's overrides below.

``--foreground`` runs the WorkChains in this process instead of submitting them to the daemon.
Needs the ``lammps`` and ``rematch`` codes of ``scripts/setup-aiida.sh``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

#: (label, temperature K): X first, then Y.
TEMPERATURES = {'x': ('T1600K', 1600.0), 'y': ('T1200K', 1200.0)}

#: Per size: ions, and the overrides of the sampling (``sampling``: md) and configuration-space protocols
#: (``config_space``: soap, parameters).
SIZES = {
    # a few minutes on 2 cores: 64 ions, 4 ps equilibration, 12 ps sampled every 100 fs (121 frames per set)
    'small': {'n_ions': 64,
              'sampling': {'equilibration_steps': 2000, 'production_steps': 6000, 'sampling_interval': 50},
              'config_space': {'soap': {'r_cut': 5.0, 'n_max': 6, 'l_max': 4}, 'parameters': {'bins': 20}}},
    # closer to the thesis: 200 ions, 100 ps sampled every 200 fs (501 frames per set)
    'large': {'n_ions': 200,
              'sampling': {'equilibration_steps': 5000, 'production_steps': 50000, 'sampling_interval': 100},
              'config_space': {'soap': {'r_cut': 5.0, 'n_max': 6, 'l_max': 4}, 'parameters': {'bins': 40}}},
}


#: ``--x aimd``: the CP2K AIMD run that replaces X: ions and the Cp2kAimdWorkChain protocol (``fast``: 30
#: steps of 2 fs, 20 fs thermostat; ``moderate``: 2000 steps of 2 fs, 100 fs thermostat; cp2k_aimd.yaml).
AIMD = {
    'small': {'n_ions': 8, 'protocol': 'fast'},
    'large': {'n_ions': 64, 'protocol': 'moderate'},
}


def janz_density(temperature: float) -> float:
    """Density of molten NaCl, g/cm^3 (Janz, J. Phys. Chem. Ref. Data 17, Suppl. 2 (1988); fitted
    1076-1303 K, extrapolated above)."""
    return 2.1389 - 5.43e-4 * temperature


def liquid_check(training_set, timestep_fs: float) -> str:
    """Na self-diffusion coefficient (1e-9 m^2/s) of a trajectory from its MSD, with the standard error of 5
    blocks (``science.observables.diffusion_with_error``); '-' if it cannot be fitted."""
    from aiida_mlfail.science import observables

    frames = training_set.get_atoms()
    times = [a.info['md_step'] * timestep_fs / 1000.0 for a in frames]
    try:
        result = observables.diffusion_with_error(frames, times, species='Na')
    except ValueError:
        return '-'
    return common.with_error(result['D_m2_s'] * 1e9, result['D_stderr_m2_s'] * 1e9, '.2f')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--profile', default=None, help='AiiDA profile (default: the default profile)')
    parser.add_argument('--output', default='results/config_space', help='folder for the exported figures')
    parser.add_argument('--foreground', action='store_true', help='run in this process, not through the daemon')
    parser.add_argument('--x', choices=('classical', 'aimd'), default='classical',
                        help='X set: the classical 1600 K trajectory, or a CP2K AIMD run at 1600 K (cp2k code)')
    args = parser.parse_args(argv)

    from aiida import load_profile

    from aiida_mlfail.workflows.config_space import ConfigSpaceWorkChain
    from aiida_mlfail.workflows.protocols import recursive_merge

    load_profile(args.profile)
    s = SIZES[args.size]
    codes = common.load_codes(extra=('rematch', 'cp2k') if args.x == 'aimd' else ('rematch',))
    start = time.time()
    temperatures = dict(TEMPERATURES)
    timesteps = {'x': 2.0, 'y': 2.0}
    durations = {}  # fs, of runs too short for a diffusion coefficient

    sampled = {key: value for key, value in temperatures.items() if args.x == 'classical' or key == 'y'}
    points = [{'temperature': t, 'density': round(janz_density(t), 4), 'label': label}
              for label, t in sampled.values()]
    sampling = common.launch(' and '.join(f'NVT {t:.0f} K' for _, t in sampled.values()) + ', BMHTF + PPPM',
                      common.sampling_builder(codes, points, size=args.size, n_ions=s['n_ions'], md=s['sampling']),
                      args.foreground)
    sets = {key: sampling.outputs.sampled[label].training_set for key, (label, _) in sampled.items()}
    if args.x == 'aimd':
        from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain

        a = AIMD[args.size]
        t_x = TEMPERATURES['x'][1]
        temperatures['x'] = (f'AIMD{t_x:.0f}K', t_x)
        structure = common.nacl_structure(a['n_ions'], density=round(janz_density(t_x), 4))
        builder = Cp2kAimdWorkChain.get_builder_from_protocol(codes, structure, protocol=a['protocol'],
                                                              overrides={'temperature': t_x})
        steps, timestep = builder.steps.value, builder.timestep.value
        timesteps['x'] = timestep
        durations['x'] = steps * timestep
        aimd = common.launch(f"CP2K NVT AIMD {t_x:.0f} K, {a['n_ions']} ions, {steps} x {timestep} fs, "
                      f"protocol {a['protocol']}", builder, args.foreground)
        sets['x'] = aimd.outputs.trajectory

    (x_label, _), (y_label, _) = temperatures['x'], temperatures['y']
    overrides = recursive_merge(s['config_space'], {'parameters': {'x_label': x_label, 'y_label': y_label}})
    work = common.launch(f'REMatch: {x_label} (X) against {y_label} (Y)',
                         ConfigSpaceWorkChain.get_builder_from_protocol(
                             codes, sets['x'], sets['y'], protocol=common.PROTOCOL_OF_SIZE[args.size],
                             overrides=overrides),
                         args.foreground)

    summary = work.outputs.summary.get_dict()
    first, nn = summary['distance_to_first'], summary['nearest_neighbour']
    print()
    print(f"SOAP {work.inputs.soap.get_dict()}, REMatch alpha {summary['alpha']}; distances are dimensionless, "
          'D = sqrt(2 - 2K)')
    common.print_table(
        ['set', 'T (K)', 'frames', 'D_Na (1e-9 m^2/s)', 'dist. to first: plateau', 'max'],
        [[f'{key.upper()} = {label}', f'{t:.0f}', first[key]['n'],
          liquid_check(sets[key], timesteps[key]) if durations.get(key, 1e9) >= 1000 else '- (< 1 ps)',
          f"{first[key]['plateau']:.4f}", f"{first[key]['max']:.4f}"] for key, (label, t) in temperatures.items()])
    print()
    common.print_table(
        ['nearest neighbour of X in Y', 'median', 'p95', 'max', 'min', 'distinct Y neighbours'],
        [[f'{x_label} in {y_label}', f"{nn['median']:.4f}", f"{nn['p95']:.4f}", f"{nn['max']:.4f}",
          f"{nn['min']:.4f}", f"{nn['distinct_neighbours']} of {summary['n_y']}"]])
    out = pathlib.Path(args.output).resolve()
    print()
    for key in ('distance_to_first_plot', 'nearest_neighbour_plot'):
        print(f"{key.replace('_', ' ')}: {common.export(work.outputs[key], out, work.outputs[key].filename)}")
    print(f'provenance: verdi process report {work.pk}')
    print(f'wall time: {time.time() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
