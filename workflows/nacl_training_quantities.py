#!/usr/bin/env python
"""Study 3 (thesis section 10.3): which training quantities make the pressure right.

One pool of BMHTF + PPPM NVT frames (1400 K, five densities) and one selection; GAPs trained on
energies only (E), forces only (F), virials only (V), E+F and E+F+V with the same descriptors.
Printed: the held-out energy/force/virial errors and the virial-pressure error of each GAP, then
an NVT run of each GAP at the liquid density with a classical rerun of its frames: the mean
pressure of the training run, the ML run and the rerun (± block standard error).

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_training_quantities.py [--size small|large]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

#: Per size: the system, the GAP settings, the GAP MD steps, and ``sampling``: the overrides of the sampling
#: protocol (``common.PROTOCOL_OF_SIZE``).
SIZES = {
    'small': {'n_ions': 64, 'volumes': common.NACL_VOLUMES, 'liquid': 2350, 'n_select': 120, 'soap_sparse': 200,
              'cutoff': 6.0, 'md_steps': 1000, 'sampling': {'production_steps': 6000, 'sampling_interval': 50}},
    'large': {'n_ions': 200, 'volumes': [6000, 6750, 7500, 8250, 9000], 'liquid': 7500, 'n_select': 500,
              'soap_sparse': 1000, 'cutoff': 8.0, 'md_steps': 50000,
              'sampling': {'production_steps': 50000, 'sampling_interval': 50}},
}

#: name -> labels trained on
VARIANTS = {'E': ['energy'], 'F': ['forces'], 'V': ['virial'], 'E+F': ['energy', 'forces'],
            'E+F+V': ['energy', 'forces', 'virial']}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--output', default='results/nacl_training_quantities')
    args = parser.parse_args(argv)

    from aiida import load_profile, orm


    load_profile()
    s = SIZES[args.size]
    codes = common.load_codes()
    out = pathlib.Path(args.output).resolve()
    liquid = f"nvt_V{s['liquid']}"
    points = [{'temperature': 1400.0, 'volume': float(v), 'label': f'nvt_V{v}'} for v in s['volumes']]
    print('== classical BMHTF + PPPM sampling')
    sampling = common.submit_all({'NVT sampling': common.sampling_builder(
        codes, points, size=args.size, n_ions=s['n_ions'], md=s['sampling'])})['NVT sampling']
    print('== GAPs trained on E, F, V, E+F, E+F+V (same selection and descriptors)')
    gaps = common.submit_all({
        name: common.gap_builder(codes, sampling.outputs.pool, size=args.size, n_select=s['n_select'],
                                 cutoff=s['cutoff'], soap_sparse=s['soap_sparse'], train_on=labels)
        for name, labels in VARIANTS.items()
    })
    print('== NVT GAP MD at the liquid density with a classical rerun of the frames')
    start = orm.StructureData(ase=sampling.outputs.sampled[liquid].training_set.get_atoms()[-1])
    md = common.submit_all({
        name: common.mlmd_builder(
            codes, gaps[name].outputs.potential, start, size=args.size,
            parameters={'ensemble': 'NVT', 'temperature': 1400.0, 'steps': s['md_steps'], 'dump_interval': 20,
                        'thermo_interval': 20},
            reference=common.BMHTF_PPPM, training_thermo=sampling.outputs.sampled[liquid].thermo)
        for name in VARIANTS
    }, allowed=(0, 410))
    print()
    import numpy as np

    from aiida_mlfail.science.observables import virial_pressure

    rows = []
    for name, node in gaps.items():
        m = node.outputs.metrics.get_dict()
        reference = node.outputs.validation_set.get_atoms()
        predicted = node.outputs.predictions.get_atoms()
        dp = [virial_pressure(b.info['virial'], b.get_volume()) - virial_pressure(a.info['virial'], a.get_volume())
              for a, b in zip(reference, predicted)]
        rows.append([name, f"{m['energy']['rmse'] * 1000:.1f}", f"{m['forces']['rmse']:.3f}",
                     f"{m['virial']['rmse'] * 1000:.1f}", f'{np.sqrt(np.mean(np.square(dp))):.0f}'])
    common.print_table(['trained on', 'E RMSE meV/atom', 'F RMSE eV/Å', 'virial RMSE meV/atom',
                        'virial pressure RMSE bar'], rows)
    print()
    rows = []
    for name, node in md.items():
        table = node.outputs.summary['pressure']

        def cell(key, table=table):
            entry = table.get(key)
            if not entry:
                return '-'
            error = entry['standard_error_bar']
            return f"{entry['mean_bar']:.0f} ± {error:.0f}" if error is not None else f"{entry['mean_bar']:.0f}"

        rows.append([name, node.outputs.stop['stop_reason'], cell('training run'), cell('ML run'), cell('rerun')])
    common.print_table(['trained on', 'NVT stop', 'P training run (bar)', 'P ML run (bar)', 'P rerun (bar)'], rows)
    print()
    for name, node in gaps.items():
        filename = 'parity_' + name.replace('+', '') + '.png'
        print(f'parity plot ({name}): {common.export(node.outputs.parity_plot, out, filename)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
