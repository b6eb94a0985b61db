#!/usr/bin/env python
"""Molten NaCl GAP from classical BMHTF reference data, every step an AiiDA process.

64 ions at 1400 K, five NVT state points spanning densities above and below the liquid density,
BMHTF + PPPM reference (ClassicalSamplingWorkChain), selection uniform in force magnitude, a
2-body + SOAP GAP trained on energies, forces and virials, validation on held-out frames
(GapWorkChain). Prints the metrics table and the path of the exported parity plot.

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_gap.py [--size small|large]

`make demo` runs it after setting up the profile, the computer and the codes.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

SIZES = {
    # finishes in a few minutes on 2 cores
    'small': {'n_ions': 64, 'volumes': [1950, 2150, 2350, 2550, 2750], 'equilibration_steps': 2000,
              'production_steps': 6000, 'sampling_interval': 50, 'n_select': 300, 'soap_sparse': 400,
              'cutoff': 6.0, 'reference_cutoff': 6.0},
    # closer to the thesis (200 ions, 6000-9000 Å^3); hours on a workstation
    'large': {'n_ions': 200, 'volumes': [6000, 6750, 7500, 8250, 9000], 'equilibration_steps': 5000,
              'production_steps': 50000, 'sampling_interval': 100, 'n_select': 500, 'soap_sparse': 1000,
              'cutoff': 8.0, 'reference_cutoff': 8.0},
}


def build_inputs(size: str, lammps_code, gap_fit_code, quip_code):
    """Inputs of the sampling and the GAP WorkChains for a ``size`` of :data:`SIZES`."""
    from aiida import orm

    s = SIZES[size]
    sampling = {
        'structure_spec': orm.Dict({'system': 'nacl', 'n_ions': s['n_ions']}),
        'potential': orm.Dict({'name': 'bmhtf_coul_long', 'parameters': {'cutoff': s['reference_cutoff'],
                                                                         'kspace_accuracy': 1.0e-5}}),
        'state_points': orm.List([{'temperature': 1400.0, 'ensemble': 'NVT', 'volume': float(v),
                                   'label': f'nvt_1400K_V{v}'} for v in s['volumes']]),
        'md': orm.Dict({'timestep': 2.0, 'equilibration_steps': s['equilibration_steps'],
                        'production_steps': s['production_steps'], 'sampling_interval': s['sampling_interval'],
                        'thermo_interval': 20, 'seed': 2026}),
        'code': lammps_code,
    }
    fit_parameters = {
        'descriptors': [
            {'type': 'distance_2b', 'cutoff': s['cutoff'], 'delta': 1.0, 'n_sparse': 40, 'sparse_method': 'uniform'},
            {'type': 'soap', 'n_max': 4, 'l_max': 3, 'atom_sigma': 0.7, 'cutoff': s['cutoff'], 'zeta': 4,
             'delta': 0.5, 'n_sparse': s['soap_sparse']},
        ],
        'sigma': {'energy': 0.002, 'forces': 0.05, 'virial': 0.05},
        'train_on': ['energy', 'forces', 'virial'],
    }
    gap = {
        'selection': orm.Dict({'method': 'uniform_force', 'n': s['n_select'], 'seed': 7}),
        'split': orm.Dict({'train_fraction': 0.5, 'seed': 7}),
        'fit': {'code': gap_fit_code, 'parameters': orm.Dict(fit_parameters)},
        'validation': {'code': quip_code},
    }
    return sampling, gap


def wait(node, what: str):
    """Block until ``node`` terminates, printing a line when it does; exit 1 if it failed."""
    while not node.is_terminated:
        time.sleep(2)
    print(f'{what} <{node.pk}> finished [{node.exit_status}] {node.exit_message or ""}'.rstrip())
    if not node.is_finished_ok:
        print(f'see: verdi process report {node.pk}', file=sys.stderr)
        sys.exit(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--profile', default=None, help='AiiDA profile (default: the default profile)')
    parser.add_argument('--output', default='results/nacl_gap', help='folder for the exported figures')
    args = parser.parse_args(argv)

    from aiida import load_profile, orm
    from aiida.engine import submit

    from aiida_mlfail.workflows.gap import GapWorkChain
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    load_profile(args.profile)
    codes = [orm.load_code(label) for label in ('lammps@localhost', 'gap_fit@localhost', 'quip@localhost')]
    sampling_inputs, gap_inputs = build_inputs(args.size, *codes)
    start = time.time()

    sampling = submit(ClassicalSamplingWorkChain, **sampling_inputs)
    print(f'submitted ClassicalSamplingWorkChain <{sampling.pk}> (5 NVT state points, BMHTF + PPPM)')
    wait(sampling, 'ClassicalSamplingWorkChain')
    pool = sampling.outputs.pool
    print(f'pool: {pool.n_configurations} configurations, labels {pool.labels}')

    gap = submit(GapWorkChain, pool=pool, **gap_inputs)
    print(f'submitted GapWorkChain <{gap.pk}> (select, split, gap_fit, validate)')
    wait(gap, 'GapWorkChain')

    metrics = gap.outputs.metrics.get_dict()
    fit = gap.outputs.fit_parameters.get_dict()
    print()
    print(f"GAP {gap.outputs.potential.label}: {gap.outputs.training_set.n_configurations} training, "
          f"{gap.outputs.validation_set.n_configurations} validation configurations; gap_fit memory estimate "
          f"{fit.get('memory_peak_mb')} MB, wall time {fit.get('fit_wall_time_s')} s")
    print(f"{'quantity':<28}{'RMSE':>12}{'MAE':>12}{'max':>12}{'n':>8}")
    units = {'energy': 'energy (eV/atom)', 'forces': 'force components (eV/Å)', 'virial': 'virial (eV/atom)'}
    for key in ('energy', 'forces', 'virial'):
        if key in metrics:
            m = metrics[key]
            print(f"{units[key]:<28}{m['rmse']:>12.5f}{m['mae']:>12.5f}{m['max']:>12.5f}{m['n']:>8d}")
    out = pathlib.Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    plot = out / 'parity.png'
    plot.write_bytes(gap.outputs.parity_plot.get_content(mode='rb'))
    gap.outputs.potential.write_files(out / 'potential')
    print()
    print(f'parity plot: {plot}')
    print(f'potential files: {out / "potential"}')
    print(f'provenance: AIIDA_PATH={pathlib.Path.cwd() / ".aiida"} verdi process list -a ; '
          f'verdi process report {gap.pk}')
    print(f'wall time: {time.time() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
