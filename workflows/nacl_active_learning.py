#!/usr/bin/env python
"""The main job: active learning makes a single-density molten-NaCl GAP robust in NPT (thesis chapter 13).

64 ions at 1400 K. The starting GAP is trained on BMHTF + PPPM NVT data at one density (the kind
of potential that fails in NPT, study 1). ActiveLearningWorkChain then explores in NPT (1 bar) with
the GAP, checks every ``comparison_step`` steps the REMatch similarity of the current configuration
to the training set, labels novel configurations with classical BMHTF single points, screens out
outliers, refits, and explores again until an exploration runs ``max_steps`` without a flag.
Afterwards the initial and the final GAP run NPT next to the classical NPT reference.

Prints the iteration table, the equilibrium volumes (final GAP vs reference) and the paths of the
figures (convergence plot, parity plot of the final GAP, forensics of the verification runs).

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/nacl_active_learning.py [--size small|large]

``make demo`` runs ``--size small`` (about 15-25 minutes on 2 cores). ``--size large`` is the
setting for real use (200 ions, 8 Å cutoffs, longer explorations; hours on a workstation, submit
it to a cluster by giving codes of a SLURM computer with ``--computer``).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

#: The study by size: the protocol of every builder (``moderate``: the demo; ``precise``: the 200-ion setting,
#: protocols/*.yaml), the study's own runs (the sampling at one density, the classical NPT reference, the
#: verification MD) and the study's ``overrides`` of the ActiveLearningWorkChain protocol.
SIZES = {
    'small': {'protocol': 'moderate', 'n_ions': 64, 'training_volume': 2350.0, 'npt_steps': 10000,
              'verification_steps': 2500, 'overrides': {}},
    'large': {'protocol': 'precise', 'n_ions': 200, 'training_volume': 7500.0, 'npt_steps': 100000,
              'verification_steps': 100000,
              # the studies' 2-body descriptor: 20 sparse points (the precise protocol has 40)
              'overrides': {'gap': {'fit': {'job': {'parameters': {
                  'descriptors': {'distance_2b': {'n_sparse': 20}}}}}}}},
}
TEMPERATURE, PRESSURE = 1400.0, 1.0
#: The classical reference of the data, of the labeller and of the NPT reference run.
REFERENCE = {'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1.0e-5}}


def study_overrides(s: dict) -> dict:
    """The overrides of the ``ActiveLearningWorkChain`` protocol for a size dict ``s``: the state point (1400 K,
    1 bar) and the size's own ``overrides``."""
    from aiida_mlfail.workflows.protocols import recursive_merge

    return recursive_merge({'temperature': TEMPERATURE, 'pressure': PRESSURE}, s['overrides'])


def sampling_builder(codes: dict, s: dict, state_points: list, md: dict | None = None):
    """A ``ClassicalSamplingWorkChain`` builder of ``s['n_ions']`` ions of molten NaCl (the ``nacl`` preset) with
    :data:`REFERENCE` at ``state_points``, from the size's protocol with the ``md`` overrides."""
    from aiida_mlfail.science.structures import from_spec
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    return ClassicalSamplingWorkChain.get_builder_from_protocol(
        codes, from_spec({'system': 'nacl', 'n_ions': s['n_ions']}), protocol=s['protocol'],
        overrides={'md': md or {}}, reference=REFERENCE, state_points=state_points)


def training_sampling_builder(codes: dict, s: dict):
    """The single-density NVT sampling that gives the initial training and validation data."""
    return sampling_builder(codes, s, [{'temperature': TEMPERATURE, 'ensemble': 'NVT', 'volume': s['training_volume'],
                                        'label': f"nvt_1400K_V{s['training_volume']:.0f}"}])


def active_learning_builder(codes: dict, s: dict, training_set, validation_set, start):
    """``ActiveLearningWorkChain.get_builder_from_protocol`` for a size of :data:`SIZES` with the study's overrides,
    initial data ``training_set`` + ``validation_set`` (instead of the builder's own sampling) and the classical
    labeller :data:`REFERENCE`.

    :param start: ``ase.Atoms`` or ``StructureData``, the start of every exploration (the last frame of the NVT
        run: an equilibrated melt at the training density).
    """
    from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain

    builder = ActiveLearningWorkChain.get_builder_from_protocol(codes, start, protocol=s['protocol'],
                                                                overrides=study_overrides(s), reference=REFERENCE)
    del builder['sampling']  # the initial data are given
    builder.training_set = training_set
    builder.validation_set = validation_set
    return builder


def verification_builder(codes: dict, potential, structure, s: dict):
    """An NPT ``MLMDWorkChain`` run of a GAP from the start structure (loose guards: watch, do not stop early)."""
    from aiida_mlfail.workflows.mlmd import MLMDWorkChain

    return MLMDWorkChain.get_builder_from_protocol(codes, potential, structure, overrides={'parameters': {
        'ensemble': 'NPT', 'temperature': TEMPERATURE, 'pressure': PRESSURE, 'timestep': 2.0,
        'steps': s['verification_steps'], 'dump_interval': 50, 'thermo_interval': 25, 'seed': 77}})


def mean_volume(thermo, skip_fraction: float = 0.4) -> tuple[float, float]:
    """Mean volume (Å^3) and its block standard error over the last ``1 - skip_fraction`` of a thermo series."""
    from aiida_mlfail.science.observables import mean_and_standard_error

    volume = thermo.get_array('volume')
    return mean_and_standard_error(volume[int(skip_fraction * len(volume)):])


def print_figures(run, final_fit, verification: dict, out: pathlib.Path) -> None:
    """Export and print the paths of the convergence plot of ``run``, the parity plot of ``final_fit`` (the last
    ``GapWorkChain``) and the forensics of the ``'initial GAP, NPT'`` / ``'final GAP, NPT'`` verification runs."""
    figures = {
        'convergence': common.export(run.outputs.convergence_plot, out, 'active_learning.png'),
        'parity (final GAP)': common.export(final_fit.outputs.parity_plot, out, 'parity_final.png'),
        'forensics (initial GAP NPT)': common.export(verification['initial GAP, NPT'].outputs.forensics_plot, out,
                                                     'forensics_initial.png'),
        'forensics (final GAP NPT)': common.export(verification['final GAP, NPT'].outputs.forensics_plot, out,
                                                   'forensics_final.png'),
    }
    for name, path in figures.items():
        print(f'{name}: {path}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--computer', default='localhost', help='computer of the codes (e.g. a SLURM cluster)')
    parser.add_argument('--output', default='results/nacl_active_learning', help='folder for the exported figures')
    args = parser.parse_args(argv)

    from aiida import load_profile, orm
    from aiida.engine import submit

    from aiida_mlfail.calculations.functions import split_training_set

    load_profile()
    s = SIZES[args.size]
    codes = common.load_codes(args.computer, extra=('explore',))
    out = pathlib.Path(args.output).resolve()
    start = time.time()

    print(f"== active learning (NPT {TEMPERATURE:.0f} K, {PRESSURE:.0f} bar, {s['n_ions']} ions) from a GAP trained at "
          f"V = {s['training_volume']:.0f} Å^3 only, next to the classical NPT reference")
    npt_point = [{'temperature': TEMPERATURE, 'ensemble': 'NPT', 'pressure': PRESSURE,
                  'volume': s['training_volume'], 'label': 'npt_1bar'}]
    reference = submit(sampling_builder(codes, s, npt_point, md={'production_steps': s['npt_steps'], 'seed': 99}))
    print(f'submitted ClassicalSamplingWorkChain <{reference.pk}>: classical NPT reference')
    sampled = common.submit_all({'single-density NVT sampling': training_sampling_builder(codes, s)})
    pool = next(iter(sampled.values())).outputs.pool
    parts = split_training_set(pool, orm.Dict({'train_fraction': 0.5, 'seed': 3}))
    start_structure = pool.get_atoms()[-1]
    print(f"initial data: {parts['train'].n_configurations} training, {parts['validation'].n_configurations} "
          f'validation configurations at V = {s["training_volume"]:.0f} Å^3')
    nodes = common.submit_all({'active learning': active_learning_builder(
        codes, s, parts['train'], parts['validation'], start_structure)}, allowed=(0, 701, 702))
    common.wait({'classical NPT reference': reference})
    run = nodes['active learning']
    summary = run.outputs.summary.get_dict()
    print()
    print(f"iterations ({summary['outcome']}; verdi process report {run.pk}):")
    print(summary['table'])

    fits = sorted((n for n in run.called if n.process_label == 'GapWorkChain'), key=lambda n: n.pk)
    initial = fits[0].outputs.potential
    structure = run.inputs.explore.job.structure
    print()
    print('== verification: initial and final GAP in NPT from the same start')
    verification = common.submit_all({
        'initial GAP, NPT': verification_builder(codes, initial, structure, s),
        'final GAP, NPT': verification_builder(codes, run.outputs.potential, structure, s),
    }, allowed=(0, 410))
    v_ref, e_ref = mean_volume(reference.outputs.sampled.npt_1bar.thermo)
    rows = [('classical BMHTF reference', f'{v_ref:.0f} ± {e_ref:.0f}', '', 'completed')]
    for name, node in verification.items():
        stop = node.outputs.stop.get_dict()
        v, e = mean_volume(node.outputs.thermo)
        rows.append((name, f'{v:.0f} ± {e:.0f}', f'{100 * (v - v_ref) / v_ref:+.1f} %',
                     f"{stop['stop_reason']} at step {stop['stop_step']}"))
    print()
    common.print_table(('run', 'equilibrium volume (Å^3)', 'vs reference', 'stop'), rows)
    print()
    print_figures(run, fits[-1], verification, out)
    added = run.outputs.training_set.n_configurations - fits[0].outputs.training_set.n_configurations
    print(f'training set: {fits[0].outputs.training_set.n_configurations} -> '
          f'{run.outputs.training_set.n_configurations} configurations ({added} added by active learning)')
    print(f'provenance: python -c "from aiida import load_profile; load_profile(); from aiida import orm; '
          f'from aiida_mlfail.provenance import added_configurations; '
          f'print(added_configurations(orm.load_node({run.pk})))"')
    print(f'wall time: {time.time() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
