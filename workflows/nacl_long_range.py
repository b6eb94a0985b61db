#!/usr/bin/env python
"""Study 2 (thesis chapter 9): long-range electrostatics beyond the descriptor cutoff.

Two references for molten NaCl at 1400 K: BMHTF + Coulomb with PPPM, and BMHTF + Wolf-summed
Coulomb (damping 0.25/Å, cutoff 6 Å). Each is sampled in NVT at three densities; a GAP whose
descriptor cutoff equals the Wolf cutoff is fitted to each, with the same selection and
hyperparameters. Energy/force/virial RMSE on held-out frames and the parity plots show how much
of the PPPM long-range part the local GAP misses, next to a reference that is local by design.

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_long_range.py [--size small|large]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

#: Per size: the system, the GAP settings, the Wolf damping, and ``sampling``: the overrides of the sampling
#: protocol (``common.PROTOCOL_OF_SIZE``).
SIZES = {
    'small': {'n_ions': 64, 'volumes': [2150, 2350, 2550], 'n_select': 160, 'soap_sparse': 200, 'cutoff': 6.0,
              'wolf_alpha': 0.25, 'sampling': {'production_steps': 6000, 'sampling_interval': 50}},
    'large': {'n_ions': 200, 'volumes': [6750, 7500, 8250], 'n_select': 500, 'soap_sparse': 1000, 'cutoff': 9.0,
              'wolf_alpha': 0.2, 'sampling': {'production_steps': 50000, 'sampling_interval': 50}},
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--output', default='results/nacl_long_range')
    args = parser.parse_args(argv)

    from aiida import load_profile


    load_profile()
    s = SIZES[args.size]
    codes = common.load_codes()
    out = pathlib.Path(args.output).resolve()
    points = [{'temperature': 1400.0, 'volume': float(v), 'label': f'nvt_V{v}'} for v in s['volumes']]
    references = {
        'Coulomb (PPPM)': {'name': 'bmhtf_coul_long', 'parameters': {'cutoff': s['cutoff'], 'kspace_accuracy': 1e-5}},
        'Wolf': {'name': 'bmhtf_wolf', 'parameters': {'cutoff': s['cutoff'], 'alpha': s['wolf_alpha']}},
    }
    print('== classical sampling with both references')
    sampled = common.submit_all({
        name: common.sampling_builder(codes, points, size=args.size, n_ions=s['n_ions'], md=s['sampling'],
                                      reference=reference)
        for name, reference in references.items()
    })
    print(f"== GAPs with descriptor cutoff {s['cutoff']} Å = Wolf cutoff")
    gaps = common.submit_all({
        name: common.gap_builder(codes, sampled[name].outputs.pool, size=args.size, n_select=s['n_select'],
                                 cutoff=s['cutoff'], soap_sparse=s['soap_sparse'])
        for name in references
    })
    print()
    rows = []
    for name, node in gaps.items():
        m = node.outputs.metrics.get_dict()
        rows.append([name, f"{m['energy']['rmse'] * 1000:.2f}", f"{m['energy']['max'] * 1000:.2f}",
                     f"{m['forces']['rmse']:.4f}", f"{m['virial']['rmse'] * 1000:.2f}",
                     node.outputs.validation_set.n_configurations])
    common.print_table(['reference', 'E RMSE meV/atom', 'E max meV/atom', 'F RMSE eV/Å', 'virial RMSE meV/atom',
                        'validation frames'], rows)
    print()
    for name, node in gaps.items():
        filename = 'parity_' + name.split()[0].lower() + '.png'
        print(f'parity plot ({name}): {common.export(node.outputs.parity_plot, out, filename)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
