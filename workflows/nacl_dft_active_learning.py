#!/usr/bin/env python
"""Active learning with DFT labels: a CP2K-trained molten-NaCl GAP repaired in NPT (thesis chapter 13).

Molten NaCl at 1400 K. Classical BMHTF + PPPM NVT frames at one density are the configurations; the
learner's own labeller, CP2K single points (the "single point calculator": classical configurations,
DFT labels), labels a selection of them, which is split into the initial training and validation
data. ``ActiveLearningWorkChain`` then explores in NPT (1 bar) with the DFT-trained GAP, labels each
novel (REMatch) or failing configuration with CP2K, screens out outliers, refits and explores again.
Afterwards the initial and the final GAP run NPT from the same start, and the equilibrium density of
the final GAP is printed next to the experimental density of molten NaCl at 1400 K.

Protocol: the ``small`` setting uses the CP2K ``moderate`` protocol (GAPW, DZVP-MOLOPT-SR-GTH,
GTH-PBE, D3(BJ) dispersion). ``fast`` (single-zeta basis, no dispersion) is for plumbing tests only:
its energies do not track BMHTF (RMSD 0.106 eV/atom against 0.027 for ``moderate``,
``workflows/cp2k_vs_classical.py``), and without dispersion PBE leaves the melt too dilute, so a
density from it would mean nothing. ``moderate`` costs about 50 s per 8-ion single point on one core,
which is why ``small`` has 8 ions: it finishes on a 2-core workstation. A GAP of an 8-ion cell is a
finite-size model: its density is a plumbing-level number, not a converged prediction. ``large`` (64
ions, the thesis's box, 24 initial labels, up to 40 added) is the setting for a cluster: give codes of
a SLURM computer with ``--computer`` (``profiles/``) and raise ``--max-concurrent-labels``.

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_dft_active_learning.py [--size small|large]
    aiida-mlfail launch nacl_dft_active_learning [-- --protocol fast]

Prints the iteration table, the number of DFT single points, the ledger of failed labels, the
equilibrium density of the initial and final GAP next to experiment, and the wall time.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
from nacl_active_learning import mean_volume, print_figures, verification_builder  # noqa: E402

#: Molten NaCl density at 1400 K (g/cm^3) from the critically evaluated correlation
#: rho = 2.1389 - 5.430e-4 T (g/cm^3, T in K; fitted for 1076-1303 K, here extrapolated by 97 K):
#: G. J. Janz, J. Phys. Chem. Ref. Data 17, Suppl. 2 (1988), "Thermodynamic and transport properties
#: for molten salts". The thesis's 64-ion box (13.1 Å, 0.02841 ions/Å^3) has this density.
EXPERIMENTAL_DENSITY_1400K = 2.1389 - 5.430e-4 * 1400.0

#: The study by size: the CP2K physics of the labels (``protocol``, protocols/cp2k.yaml), the protocol of the
#: builders (``builder_protocol``: the sampling and the learner's other defaults, protocols/*.yaml), the size of
#: the system and of its runs, and the study's overrides of the ActiveLearningWorkChain protocol.
SIZES = {
    'small': {'n_ions': 8, 'protocol': 'moderate', 'builder_protocol': 'moderate', 'training_volume': 280.0,
              'verification_steps': 6000,
              'overrides': {
                  'sampling': {'md': {'equilibration_steps': 1000, 'production_steps': 2400, 'sampling_interval': 100}},
                  'selection': {'cp2k': {'n': 12}},
                  # a tiny GAP for 8-ion cells: 15 2-body and 20 SOAP sparse points, 5 Å cutoffs
                  'gap': {'fit': {'job': {'parameters': {'descriptors': {
                      'distance_2b': {'cutoff': 5.0, 'n_sparse': 15}, 'soap': {'cutoff': 5.0, 'n_sparse': 20}}}}}},
                  'explore': {'job': {'parameters': {
                      'max_steps': 3000, 'comparison_step': 25, 'critical_similarity': 0.995,
                      'soap': {'r_cut': 5.0, 'n_max': 4, 'l_max': 3}, 'thermo_interval': 25}}},
                  'parameters': {'max_iterations': 12, 'max_new_configurations': 16, 'max_failed_labels': 6,
                                 'max_concurrent_labels': 2}}},
    'large': {'n_ions': 64, 'protocol': 'moderate', 'builder_protocol': 'precise', 'training_volume': 2250.0,
              'verification_steps': 50000,
              'overrides': {
                  'sampling': {'md': {'equilibration_steps': 2000, 'production_steps': 12000,
                                      'sampling_interval': 250}},
                  'selection': {'cp2k': {'n': 24}},
                  'gap': {'fit': {'job': {'parameters': {'descriptors': {
                      'distance_2b': {'cutoff': 6.0, 'n_sparse': 15}, 'soap': {'cutoff': 6.0, 'n_sparse': 400}}}}}},
                  'explore': {'job': {'parameters': {
                      'max_steps': 20000, 'comparison_step': 50, 'critical_similarity': 0.999,
                      'soap': {'r_cut': 6.0, 'n_max': 4, 'l_max': 3}, 'thermo_interval': 25}}},
                  'parameters': {'max_iterations': 30, 'max_new_configurations': 40, 'max_failed_labels': 20,
                                 'max_concurrent_labels': 16}}},
}
TEMPERATURE, PRESSURE = 1400.0, 1.0
#: The classical potential of the sampled configurations (their labels come from CP2K).
BMHTF = {'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1.0e-5}}


def density(volume: float, n_ions: int) -> float:
    """Mass density (g/cm^3) of ``n_ions`` NaCl ions (half Na, half Cl; masses of ``ase.data``) in ``volume`` Å^3."""
    from ase.data import atomic_masses, atomic_numbers
    from ase.units import _amu

    mass_g = n_ions / 2 * (atomic_masses[atomic_numbers['Na']] + atomic_masses[atomic_numbers['Cl']]) * _amu * 1e3
    return mass_g / (volume * 1e-24)


def active_learning_builder(codes: dict, s: dict, start):
    """``ActiveLearningWorkChain.get_builder_from_protocol`` for a size dict ``s``: the initial data are the
    learner's own sampling (NVT at the training volume, :data:`BMHTF`) of ``s['n_ions']`` ions of the ``nacl``
    preset, a temporal selection of its frames labelled by CP2K (protocol ``s['protocol']``); explorations in
    NPT from ``start`` (``ase.Atoms``)."""
    from aiida import orm

    from aiida_mlfail.science.structures import from_spec
    from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
    from aiida_mlfail.workflows.protocols import recursive_merge

    overrides = recursive_merge({'temperature': TEMPERATURE, 'pressure': PRESSURE}, s['overrides'])
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, start, protocol=s['builder_protocol'], overrides=overrides,
        reference={'cp2k': {'protocol': s['protocol']}}, sampling_reference=BMHTF)
    # the sampling starts from the preset melt (not from the explorations' start), NVT at the training volume
    builder.sampling.structure = orm.StructureData(ase=from_spec({'system': 'nacl', 'n_ions': s['n_ions']}))
    builder.sampling.state_points = orm.List([{'temperature': TEMPERATURE, 'ensemble': 'NVT',
                                               'volume': s['training_volume'],
                                               'label': f"nvt_1400K_V{s['training_volume']:.0f}"}])
    return builder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--protocol', default=None,
                        help='CP2K protocol instead of the size\'s (fast: plumbing only, see the module doc)')
    parser.add_argument('--max-concurrent-labels', type=int, default=None,
                        help='CP2K single points at once (default: the size\'s)')
    parser.add_argument('--computer', default='localhost', help='computer of the codes (e.g. a SLURM cluster)')
    parser.add_argument('--output', default='results/nacl_dft_active_learning', help='folder for the figures')
    args = parser.parse_args(argv)

    from aiida import load_profile

    from aiida_mlfail.science.structures import molten_nacl
    from aiida_mlfail.workflows.protocols import recursive_merge

    load_profile()
    s = dict(SIZES[args.size])
    if args.protocol:
        s['protocol'] = args.protocol
    if args.max_concurrent_labels:
        s['overrides'] = recursive_merge(s['overrides'],
                                         {'parameters': {'max_concurrent_labels': args.max_concurrent_labels}})
    codes = common.load_codes(args.computer, extra=('explore', 'cp2k'))
    out = pathlib.Path(args.output).resolve()
    start = time.time()
    # the explorations start from a crystal at the training density: it melts in the first steps
    start_structure = molten_nacl(s['n_ions'], volume=s['training_volume'], seed=1)
    start_structure.rattle(0.1, seed=5)

    print(f"== active learning with CP2K labels ({s['protocol']}): molten NaCl, {s['n_ions']} ions, NPT "
          f"{TEMPERATURE:.0f} K, {PRESSURE:.0f} bar; initial data: {s['overrides']['selection']['cp2k']['n']} BMHTF "
          f"NVT frames at "
          f"V = {s['training_volume']:.0f} Å^3 labelled by CP2K")
    nodes = common.submit_all({'active learning (CP2K labels)': active_learning_builder(codes, s, start_structure)},
                              allowed=(0, 701, 702, 406))
    run = nodes['active learning (CP2K labels)']
    summary = run.outputs.summary.get_dict()
    print()
    print(f"iterations ({summary['outcome']}; verdi process report {run.pk}):")
    print(summary['table'])

    single_points = [n for n in run.called_descendants if n.process_label == 'Cp2kSinglePointWorkChain']
    cp2k_jobs = [n for n in run.called_descendants if n.process_label == 'Cp2kCalculation']
    cached = [n for n in cp2k_jobs if n.base.caching.get_cache_source() is not None]
    failed = run.outputs.failed_labels.get_dict()
    print()
    print(f'DFT single points: {len(single_points)} configurations, {len(cp2k_jobs)} CP2K jobs '
          f'({len(cp2k_jobs) - len(single_points)} SCF/walltime restarts, {len(cached)} taken from the cache)')
    print(f"failed labels (ledger): {failed['count']}")
    for item in failed['failed']:
        print(f"  iteration {item['iteration']}: {item['candidate']} (MD step {item['md_step']}, {item['stage']}): "
              f"{item['reason']}")

    fits = sorted((n for n in run.called if n.process_label == 'GapWorkChain'), key=lambda n: n.pk)
    structure = run.inputs.explore.job.structure
    print()
    print('== verification: initial and final GAP in NPT from the same start')
    verification = common.submit_all({
        'initial GAP, NPT': verification_builder(codes, fits[0].outputs.potential, structure, s),
        'final GAP, NPT': verification_builder(codes, run.outputs.potential, structure, s),
    }, allowed=(0, 410))
    rho_exp = EXPERIMENTAL_DENSITY_1400K
    rows = [('experiment (Janz 1988, 1400 K)', '', f'{rho_exp:.3f}', '', '')]
    for name, node in verification.items():
        stop = node.outputs.stop.get_dict()
        v, e = mean_volume(node.outputs.thermo)
        rho = density(v, s['n_ions'])
        rows.append((name, f'{v:.0f} ± {e:.0f}', f'{rho:.3f}', f'{100 * (rho - rho_exp) / rho_exp:+.1f} %',
                     f"{stop['stop_reason']} at step {stop['stop_step']}"))
    print()
    common.print_table(('run', 'volume (Å^3)', 'density (g/cm^3)', 'vs experiment', 'stop'), rows)
    print()
    print_figures(run, fits[-1], verification, out)
    reference = run.outputs.training_set.reference
    print(f"training set: {fits[0].outputs.training_set.n_configurations} -> "
          f"{run.outputs.training_set.n_configurations} "
          f"configurations, reference {reference['label']} [{reference['id']}]")
    print(f'wall time: {time.time() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
