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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

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


def build_inputs(size: str, codes: dict):
    """Inputs of the sampling and the GAP WorkChains for a ``size`` of :data:`SIZES` (GAP inputs without the pool)."""
    s = SIZES[size]
    points = [{'temperature': 1400.0, 'ensemble': 'NVT', 'volume': float(v), 'label': f'nvt_1400K_V{v}'}
              for v in s['volumes']]
    sampling = common.sampling_inputs(
        codes, points, n_ions=s['n_ions'], equilibration_steps=s['equilibration_steps'],
        production_steps=s['production_steps'], sampling_interval=s['sampling_interval'],
        reference_parameters={'cutoff': s['reference_cutoff'], 'kspace_accuracy': 1.0e-5})
    return sampling, {'n_select': s['n_select'], 'descriptors': common.nacl_descriptors(s['cutoff'], s['soap_sparse'])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--profile', default=None, help='AiiDA profile (default: the default profile)')
    parser.add_argument('--output', default='results/nacl_gap', help='folder for the exported figures')
    args = parser.parse_args(argv)

    from aiida import load_profile

    from aiida_mlfail.workflows.gap import GapWorkChain
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    load_profile(args.profile)
    codes = common.load_codes()
    sampling_inputs, gap_settings = build_inputs(args.size, codes)
    start = time.time()

    sampling = common.submit_all({'5 NVT state points, BMHTF + PPPM': (ClassicalSamplingWorkChain, sampling_inputs)})
    sampling = next(iter(sampling.values()))
    pool = sampling.outputs.pool
    print(f'pool: {pool.n_configurations} configurations, labels {pool.labels}')

    gap = common.submit_all({'select, split, gap_fit, validate': (
        GapWorkChain, common.gap_inputs(codes, pool, **gap_settings))})
    gap = next(iter(gap.values()))

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
