#!/usr/bin/env python
"""Parity of references: DFT (CP2K, PBE) against the classical BMHTF + PPPM potential on the same configurations.

A handful of molten-NaCl configurations are sampled with BMHTF + PPPM (ClassicalSamplingWorkChain, NVT
at 1400 K and the thesis's liquid density, 13.1 Å edge per 64 ions); LabelWorkChain labels them with
both references concurrently: ``lammps`` (BMHTF single points, one job) and ``cp2k`` (one
Cp2kSinglePointWorkChain per configuration). A calcfunction compares the two and draws the parity plot.

The two references have different zeros of energy (BMHTF: separated ions at rest; DFT: electrons
and nuclei), so energies are compared per atom after removing each reference's mean over the set:
the RMSD measures how differently they rank the configurations, and the removed mean offset is
printed separately. Forces are compared component by component.

With ``--size small`` (default) the cells have 8 ions and CP2K uses the ``fast`` protocol (single-zeta
basis, no dispersion: tests and demos only, see protocols/cp2k.yaml), so the numbers show the
plumbing, not converged DFT; ``--size large`` is 64 ions with ``moderate``. ``--protocol`` overrides
the protocol. Measured on the 7 small configurations: the single-zeta basis does not even rank the
liquid configurations' energies (offset-removed RMSD 0.106 eV/atom against BMHTF, uncorrelated),
while ``--protocol moderate`` (DZVP + D3(BJ), about 4 minutes) gives 0.027 eV/atom and 0.20 eV/Å.

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/cp2k_vs_classical.py [--size small|large] [--protocol NAME]

Needs the ``lammps`` and ``cp2k`` codes of ``scripts/setup-aiida.sh`` and a running daemon.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

#: Per size: ions, the CP2K physics protocol (cp2k.yaml) of the DFT labels, and ``sampling``: the overrides of
#: the sampling protocol (``common.PROTOCOL_OF_SIZE``, also the protocol of the LabelWorkChains).
SIZES = {
    # 8 ions (6.55 Å edge), 7 configurations 0.5 ps apart after 4 ps of equilibration; about 2 minutes on 2 cores
    'small': {'n_ions': 8, 'protocol': 'fast',
              'sampling': {'equilibration_steps': 2000, 'production_steps': 1500, 'sampling_interval': 250}},
    # 64 ions, 11 configurations 1 ps apart, DZVP + D3(BJ): hours
    'large': {'n_ions': 64, 'protocol': 'moderate',
              'sampling': {'equilibration_steps': 5000, 'production_steps': 5000, 'sampling_interval': 500}},
}
TEMPERATURE = 1400.0
REFERENCE = common.BMHTF_PPPM


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--profile', default=None, help='AiiDA profile (default: the default profile)')
    parser.add_argument('--output', default='results/cp2k_vs_classical', help='folder for the parity plot')
    parser.add_argument('--protocol', default=None, help='CP2K protocol (default: fast for small, moderate for large)')
    args = parser.parse_args(argv)

    import numpy as np
    from aiida import load_profile, orm

    from aiida_mlfail.calculations.cp2k import compare_references
    from aiida_mlfail.workflows.label import LabelWorkChain

    load_profile(args.profile)
    s = dict(SIZES[args.size], **({'protocol': args.protocol} if args.protocol else {}))
    codes = common.load_codes(extra=('cp2k',))
    start = time.time()
    volume = 13.1**3 * s['n_ions'] / 64
    print(f"== BMHTF + PPPM sampling: {s['n_ions']} ions, NVT {TEMPERATURE:.0f} K, V = {volume:.0f} Å^3")
    sampling = common.submit_all({'sampling': common.sampling_builder(
        codes, [{'temperature': TEMPERATURE, 'volume': volume, 'label': 'nvt_1400K'}], size=args.size,
        n_ions=s['n_ions'], md=s['sampling'], reference=REFERENCE)})['sampling']
    configurations = sampling.outputs.pool
    print(f'== labelling {configurations.n_configurations} configurations with both references')
    protocol = common.PROTOCOL_OF_SIZE[args.size]
    labels = common.submit_all({
        'BMHTF (LAMMPS)': LabelWorkChain.get_builder_from_protocol(codes, configurations, protocol=protocol,
                                                                   reference=REFERENCE),
        f"PBE (CP2K {s['protocol']})": LabelWorkChain.get_builder_from_protocol(
            codes, configurations, protocol=protocol, reference={'cp2k': {'protocol': s['protocol']}}),
    })
    (classical_name, classical), (dft_name, dft) = labels.items()
    excluded = dft.outputs.excluded['excluded']
    for item in excluded:
        print(f"  excluded by CP2K: configuration {item['index']}: {item['reason']}")
    dropped = {item['index'] for item in excluded}
    classical_set = classical.outputs.training_set
    if dropped:  # compare on the configurations both references labelled
        from aiida_mlfail.data.training_set import TrainingSetData

        atoms = [a for i, a in enumerate(classical_set.get_atoms()) if i not in dropped]
        classical_set = TrainingSetData.from_atoms(atoms, reference=classical_set.reference)
    result = compare_references(classical_set, dft.outputs.training_set, orm.List([classical_name, dft_name]))
    metrics = result['metrics'].get_dict()

    a, b = classical_set.get_atoms(), dft.outputs.training_set.get_atoms()
    ea = np.array([x.info['energy'] / len(x) for x in a])
    eb = np.array([x.info['energy'] / len(x) for x in b])
    rows = []
    for i, (x, y) in enumerate(zip(a, b)):
        df = np.sqrt(np.mean((x.arrays['forces'] - y.arrays['forces']) ** 2))
        rows.append([i, x.info.get('md_step', '-'), f'{ea[i] - ea.mean():+.4f}', f'{eb[i] - eb.mean():+.4f}',
                     f'{np.abs(x.arrays["forces"]).max():.2f}', f'{np.abs(y.arrays["forces"]).max():.2f}', f'{df:.3f}'])
    print()
    common.print_table(['config', 'md_step', 'E-<E> BMHTF (eV/at)', 'E-<E> DFT (eV/at)', 'max|F| BMHTF',
                        'max|F| DFT', 'RMSD F (eV/Å)'], rows)
    print()
    common.print_table(
        ['references', 'n', 'RMSD E, offset removed (eV/atom)', 'RMSD F components (eV/Å)',
         'mean offset DFT - BMHTF (eV/atom)'],
        [[f'{dft_name} vs {classical_name}', metrics['n'], f"{metrics['rmsd_energy']:.4f}",
          f"{metrics['rmsd_forces']:.3f}", f"{metrics['offset']:.3f}"]])
    sampled = sampling.outputs.pool.get_atoms()
    relabel = max(float(np.abs(x.arrays['forces'] - y.arrays['forces']).max()) for x, y in
                  zip(sampled, classical.outputs.training_set.get_atoms()))
    print(f'check: BMHTF single points vs the sampling run\'s own labels, max |dF| = {relabel:.2e} eV/Å')
    out = pathlib.Path(args.output).resolve()
    filename = f"parity_{s['protocol']}.png"
    print(f"parity plot: {common.export(result['parity_plot'], out, filename)}")
    print(f'provenance: verdi process report {dft.pk} (CP2K labels), {classical.pk} (BMHTF labels)')
    print(f'wall time: {time.time() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
