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

#: The study by size: the protocol of the builders (protocols/sample.yaml, protocols/gap.yaml), the system
#: (ions, the five NVT volumes in Å^3, the BMHTF real-space cutoff in Å) and the study's overrides of the
#: sampling (``md``) and GAP protocols.
SIZES = {
    # finishes in a few minutes on 2 cores
    'small': {'protocol': 'moderate', 'n_ions': 64, 'volumes': [1950, 2150, 2350, 2550, 2750],
              'reference_cutoff': 6.0,
              'sampling': {'md': {'production_steps': 6000}},
              # 6 Å cutoffs (the BMHTF cutoff), 40 2-body and 400 SOAP sparse points
              'gap': {'fit': {'job': {'parameters': {'descriptors': {
                  'distance_2b': {'cutoff': 6.0, 'n_sparse': 40}, 'soap': {'cutoff': 6.0, 'n_sparse': 400}}}}}}},
    # closer to the thesis (200 ions, 6000-9000 Å^3); hours on a workstation
    'large': {'protocol': 'precise', 'n_ions': 200, 'volumes': [6000, 6750, 7500, 8250, 9000],
              'reference_cutoff': 8.0,
              'sampling': {'md': {'equilibration_steps': 5000}},
              'gap': {}},
}


def sampling_builder(size: str, codes: dict):
    """The ``ClassicalSamplingWorkChain`` builder of a ``size`` of :data:`SIZES`: five NVT state points at 1400 K
    of the ``nacl`` preset, BMHTF + PPPM (the size's real-space cutoff)."""
    from aiida_mlfail.science.structures import from_spec
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    s = SIZES[size]
    points = [{'temperature': 1400.0, 'ensemble': 'NVT', 'volume': float(v), 'label': f'nvt_1400K_V{v}'}
              for v in s['volumes']]
    reference = {'name': 'bmhtf_coul_long', 'parameters': {'cutoff': s['reference_cutoff'], 'kspace_accuracy': 1.0e-5}}
    return ClassicalSamplingWorkChain.get_builder_from_protocol(
        codes, from_spec({'system': 'nacl', 'n_ions': s['n_ions']}), protocol=s['protocol'], overrides=s['sampling'],
        reference=reference, state_points=points)


def gap_builder(size: str, codes: dict, pool):
    """The ``GapWorkChain`` builder of a ``size`` of :data:`SIZES` for the sampled ``pool`` (selection uniform in
    force, 50/50 split, 2-body + SOAP fit, validation)."""
    from aiida_mlfail.workflows.gap import GapWorkChain

    s = SIZES[size]
    builder = GapWorkChain.get_builder_from_protocol(codes, pool, protocol=s['protocol'], overrides=s['gap'])
    return common.with_explicit_species(builder, pool)  # the descriptors name the pool's species


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--profile', default=None, help='AiiDA profile (default: the default profile)')
    parser.add_argument('--output', default='results/nacl_gap', help='folder for the exported figures')
    args = parser.parse_args(argv)

    from aiida import load_profile

    load_profile(args.profile)
    codes = common.load_codes()
    start = time.time()

    sampling = common.submit_all({'5 NVT state points, BMHTF + PPPM': sampling_builder(args.size, codes)})
    sampling = next(iter(sampling.values()))
    pool = sampling.outputs.pool
    print(f'pool: {pool.n_configurations} configurations, labels {pool.labels}')

    gap = common.submit_all({'select, split, gap_fit, validate': gap_builder(args.size, codes, pool)})
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
