#!/usr/bin/env python
"""The main job: active learning makes a single-density molten-NaCl GAP robust in NPT (DOMAIN.md section 7).

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

SIZES = {
    'small': {'n_ions': 64, 'training_volume': 2350.0, 'production_steps': 4000, 'sampling_interval': 50,
              'npt_steps': 10000, 'cutoff': 5.0, 'soap_sparse': 100, 'comparison_step': 25, 'max_steps': 2000,
              'critical_similarity': 0.999, 'max_iterations': 12, 'max_new_configurations': 15,
              'verification_steps': 2500},
    'large': {'n_ions': 200, 'training_volume': 7500.0, 'production_steps': 50000, 'sampling_interval': 100,
              'npt_steps': 100000, 'cutoff': 8.0, 'soap_sparse': 1000, 'comparison_step': 50, 'max_steps': 50000,
              'critical_similarity': 0.999, 'max_iterations': 30, 'max_new_configurations': 60,
              'verification_steps': 100000},
}
TEMPERATURE, PRESSURE = 1400.0, 1.0


def sampling_inputs(codes: dict, s: dict) -> dict:
    """The single-density NVT sampling that gives the initial training and validation data."""
    point = [{'temperature': TEMPERATURE, 'ensemble': 'NVT', 'volume': s['training_volume'],
              'label': f"nvt_1400K_V{s['training_volume']:.0f}"}]
    return common.sampling_inputs(codes, point, n_ions=s['n_ions'], production_steps=s['production_steps'],
                                  sampling_interval=s['sampling_interval'])


def loop_inputs(codes: dict, s: dict, start, soap_r_cut: float = 5.0, n_sparse_2b: int = 20) -> dict:
    """The ``gap``, ``explore`` and ``quip`` inputs of the ``ActiveLearningWorkChain`` for a size dict ``s``:
    2-body + SOAP GAP (``s['cutoff']``, ``s['soap_sparse']``), NPT explorer at 1400 K and 1 bar from ``start``
    (``ase.Atoms``) with the REMatch check of ``s`` (SOAP cutoff ``soap_r_cut`` Å)."""
    from aiida import orm

    descriptors = common.nacl_descriptors(s['cutoff'], s['soap_sparse'])
    descriptors[0]['n_sparse'] = n_sparse_2b
    return {
        'gap': {'fit': {'code': codes['gap_fit'], 'parameters': orm.Dict({
                    'descriptors': descriptors, 'train_on': ['energy', 'forces', 'virial'],
                    'sigma': {'energy': 0.002, 'forces': 0.05, 'virial': 0.05}})},
                'validation': {'code': codes['quip']}},
        'explore': {
            'code': codes['explore'], 'structure': orm.StructureData(ase=start),
            'parameters': orm.Dict({
                'ensemble': 'NPT', 'temperature': TEMPERATURE, 'pressure': PRESSURE, 'timestep': 2.0, 'seed': 11,
                'max_steps': s['max_steps'], 'comparison_step': s['comparison_step'],
                'critical_similarity': s['critical_similarity'], 'alpha': 0.1,
                'soap': {'r_cut': soap_r_cut, 'n_max': 4, 'l_max': 3}, 'thermo_interval': 25}),
        },
        'quip': {'code': codes['quip']},
    }


def active_learning_inputs(codes: dict, s: dict, training_set, validation_set, start) -> dict:
    """Inputs of the ``ActiveLearningWorkChain`` for a size of :data:`SIZES`.

    :param start: ``ase.Atoms``, the start of every exploration (the last frame of the NVT run:
        an equilibrated melt at the training density).
    """
    from aiida import orm

    return {
        'training_set': training_set,
        'validation_set': validation_set,
        **loop_inputs(codes, s, start),
        'label': {'lammps': {'potential': sampling_inputs(codes, s)['potential'], 'code': codes['lammps']}},
        'parameters': orm.Dict({'max_iterations': s['max_iterations'],
                                'max_new_configurations': s['max_new_configurations'], 'restart_from': 'stop'}),
    }


def verification_inputs(codes: dict, potential, structure, s: dict) -> dict:
    """An NPT ``MLMDWorkChain`` run of a GAP from the start structure (loose guards: watch, do not stop early)."""
    from aiida import orm

    return {'potential': potential, 'structure': structure, 'code': codes['lammps'],
            'parameters': orm.Dict({'ensemble': 'NPT', 'temperature': TEMPERATURE, 'pressure': PRESSURE,
                                    'timestep': 2.0, 'steps': s['verification_steps'], 'dump_interval': 50,
                                    'thermo_interval': 25, 'seed': 77})}


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
    from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
    from aiida_mlfail.workflows.mlmd import MLMDWorkChain
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    load_profile()
    s = SIZES[args.size]
    codes = common.load_codes(args.computer, extra=('explore',))
    out = pathlib.Path(args.output).resolve()
    start = time.time()

    print(f"== active learning (NPT {TEMPERATURE:.0f} K, {PRESSURE:.0f} bar, {s['n_ions']} ions) from a GAP trained at "
          f"V = {s['training_volume']:.0f} Å^3 only, next to the classical NPT reference")
    npt_point = [{'temperature': TEMPERATURE, 'ensemble': 'NPT', 'pressure': PRESSURE,
                  'volume': s['training_volume'], 'label': 'npt_1bar'}]
    reference = submit(ClassicalSamplingWorkChain, **common.sampling_inputs(
        codes, npt_point, n_ions=s['n_ions'], production_steps=s['npt_steps'], seed=99))
    print(f'submitted ClassicalSamplingWorkChain <{reference.pk}>: classical NPT reference')
    sampled = common.submit_all({'single-density NVT sampling': (ClassicalSamplingWorkChain, sampling_inputs(codes,
                                                                                                             s))})
    pool = next(iter(sampled.values())).outputs.pool
    parts = split_training_set(pool, orm.Dict({'train_fraction': 0.5, 'seed': 3}))
    start_structure = pool.get_atoms()[-1]
    print(f"initial data: {parts['train'].n_configurations} training, {parts['validation'].n_configurations} "
          f'validation configurations at V = {s["training_volume"]:.0f} Å^3')
    nodes = common.submit_all({'active learning': (ActiveLearningWorkChain, active_learning_inputs(
        codes, s, parts['train'], parts['validation'], start_structure))}, allowed=(0, 701, 702))
    common.wait({'classical NPT reference': reference})
    run = nodes['active learning']
    summary = run.outputs.summary.get_dict()
    print()
    print(f"iterations ({summary['outcome']}; verdi process report {run.pk}):")
    print(summary['table'])

    fits = sorted((n for n in run.called if n.process_label == 'GapWorkChain'), key=lambda n: n.pk)
    initial = fits[0].outputs.potential
    structure = run.inputs.explore.structure
    print()
    print('== verification: initial and final GAP in NPT from the same start')
    verification = common.submit_all({
        'initial GAP, NPT': (MLMDWorkChain, verification_inputs(codes, initial, structure, s)),
        'final GAP, NPT': (MLMDWorkChain, verification_inputs(codes, run.outputs.potential, structure, s)),
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
