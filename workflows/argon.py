#!/usr/bin/env python
"""Liquid argon, the thesis's second system: sampling, GAP, GAP-MD, active learning, configuration space.

The thesis's setup (section 12.1): 108 argon atoms in a cubic box of 17.042 Å (0.02181 atoms/Å^3), Lennard-Jones
epsilon 0.2381 kcal/mol, sigma 3.405 Å, cutoff 13 Å (the ``lj_argon`` preset of
``aiida_mlfail.science.potentials``), 85 K, 10 fs time step. The start structure is the ``argon`` preset of
``aiida_mlfail.science.structures`` (fcc at the liquid density, melted by the sampling's equilibration). Five
steps, each a WorkChain run in this process (no daemon needed):

1. classical NVT sampling with ``lj_argon`` (``mlfail.sample``): frames, temperature and pressure of the
   production run, and the self-diffusion coefficient from the MSD as a liquid check (a crystal gives 0);
2. a GAP fit on the sampled frames (``mlfail.gap``): 2-body + SOAP descriptors written out for argon
   (``science.gap_descriptors``), the cutoff just beyond argon's first neighbour shell (the ``--size small``
   sampling's g(r) peaks at 3.73 Å and has its first minimum at 5.28 Å: 6 Å), expected errors (``sigma``)
   scaled to the small Lennard-Jones forces;
3. NVT GAP-MD in the thesis's box (``mlfail.mlmd``) with the Lennard-Jones rerun of its frames: errors of the
   GAP along the trajectory (energy, forces per block of frames), stop reason, pressure of the GAP and of the
   rerun (and the volume when the size runs NPT);
4. active learning (``mlfail.active_learning``) from the GAP of step 2, labelled by Lennard-Jones single points,
   exploring NPT at 1 bar: the critical similarity is calibrated first (``mlfail.config_space``: the lowest
   REMatch similarity of a validation frame to its nearest training frame, with the explorer's SOAP), so that
   configurations farther from the training set than any validation frame are flagged;
5. the configuration-space comparison (``mlfail.config_space``) of a classical trajectory (Y) and a short CP2K
   AIMD (X, ``Cp2kAimdWorkChain``, rPW86 + PBE correlation + rVV10 as in the thesis) of the same cell, the AIMD
   continuing from the last classical frame, both at the same time step.

Sizes (``SIZES``): ``small`` (default) runs in minutes on 2 cores. Its AIMD is shrunk to what runs in
one to two minutes: 32 atoms at the same density (2 fcc cells, 11.36 Å), 5 steps of 10 fs, the ``fast`` CP2K
protocol (single-zeta basis) with the non-local rVV10 kernel on a 100 Ry grid (against the 300 Ry of the density
grid: 0.15 meV/atom in the energy of a 32-atom frame, 2.5 times faster), so step 5 shows the comparison
working, not converged DFT. ``large`` is the thesis's size (108 atoms; 50000 steps of sampling and GAP-MD, a
108-atom AIMD with the ``moderate`` CP2K protocol and rVV10): days, for a cluster (``--computer``). ``tiny`` is the
setting of the integration test (32 atoms, a 4-atom AIMD of 2 steps).

    AIIDA_PATH=$PWD/.aiida .venv/bin/python workflows/argon.py [--size small|large] [--output results/argon]

Prints a table per step and writes ``<output>/argon_<size>.json`` (settings, numbers, timings, pks) and the
figures. Needs the ``lammps``, ``gap_fit``, ``quip``, ``explore``, ``rematch`` and ``cp2k`` codes of
``scripts/setup-aiida.sh``.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

#: The study runs its WorkChains in this process (``common.Runs``): ``aiida-mlfail launch argon`` needs no
#: daemon.
FOREGROUND = True

#: Box edge per fcc cell (Å): the thesis's 108 atoms (3 x 3 x 3 cells of 4) in 17.042 Å, 0.02181 atoms/Å^3.
BOX_PER_CELL = 17.042 / 3
#: Temperature (K), time step (fs) and the pressure of the NPT explorations (bar).
TEMPERATURE, TIMESTEP, PRESSURE = 85.0, 10.0, 1.0
#: Thermostat and barostat damping (fs): 100 and 1000 time steps, as LAMMPS recommends (the protocols' 100 /
#: 1000 fs are 50 / 500 steps of 2 fs; with 10 fs steps they would be 10 / 100 steps).
DAMPING = {'thermostat_damping': 100 * TIMESTEP, 'barostat_damping': 1000 * TIMESTEP}
#: The classical reference of the sampling, the rerun and the labeller: Lennard-Jones argon.
REFERENCE = {'name': 'lj_argon'}
#: The thesis's DFT for argon: rPW86 exchange + PBE correlation + the non-local rVV10 dispersion (Sabatini,
#: Gorni, de Gironcoli, PRB 87, 041108 (2013)).
RVV10_XC = {'GGA_X_RPW86': {}, 'GGA_C_PBE': {}}

#: Per size: ``n_cells`` (fcc cells per edge: 4 n^3 atoms), the overrides of the sampling ``md``, the GAP
#: (``gap``: keyword arguments of ``common.gap_builder``), the GAP-MD (``mlmd``), the active learner
#: (``active_learning``), the AIMD (``aimd``) and the configuration-space SOAP (``config_space``).
#: The expected errors ``sigma`` are argon's: Lennard-Jones forces in the 85 K liquid are ~0.05 eV/Å (the
#: protocols' 0.05 eV/Å suits molten NaCl, whose forces are ten times larger).
SIGMA = {'energy': 0.0005, 'forces': 0.005, 'virial': 0.01}
SIZES = {
    # the integration test: 32 atoms, 2 + 4 ps of sampling (21 frames), 4 atoms of AIMD
    'tiny': {
        'n_cells': 2,
        'sampling': {'equilibration_steps': 200, 'production_steps': 400, 'sampling_interval': 20,
                     'thermo_interval': 20},
        'gap': {'n_select': 20, 'cutoff': 5.0, 'n_sparse_2b': 10, 'soap_sparse': 20, 'sigma': SIGMA},
        'mlmd': {'ensemble': 'NVT', 'steps': 100, 'dump_interval': 10, 'thermo_interval': 10},
        'active_learning': {'critical_similarity': 0.998, 'soap': {'r_cut': 5.0, 'n_max': 3, 'l_max': 2},
                            'max_steps': 40, 'comparison_step': 20, 'max_iterations': 2,
                            'max_new_configurations': 3},
        'aimd': {'n_cells': 1, 'protocol': 'fast', 'steps': 2, 'rvv10_cutoff': 100.0},
        'config_space': {'soap': {'r_cut': 5.0, 'n_max': 3, 'l_max': 2}},
    },
    # minutes on 2 cores: 108 atoms, 10 ps of equilibration, 40 ps sampled every 500 fs (81 frames); GAP and SOAP
    # cutoff 6 Å (the first minimum of g(r) is at 5.28 Å), 5 ps of GAP-MD, explorations of up to 5 ps
    'small': {
        'n_cells': 3,
        'sampling': {'equilibration_steps': 1000, 'production_steps': 4000, 'sampling_interval': 50,
                     'thermo_interval': 10},
        'gap': {'n_select': 80, 'cutoff': 6.0, 'n_sparse_2b': 20, 'soap_sparse': 100, 'sigma': SIGMA},
        'mlmd': {'ensemble': 'NVT', 'steps': 500, 'dump_interval': 10, 'thermo_interval': 10},
        'active_learning': {'critical_similarity': 'calibrate', 'soap': {'r_cut': 6.0, 'n_max': 4, 'l_max': 3},
                            'max_steps': 500, 'comparison_step': 50, 'max_iterations': 3,
                            'max_new_configurations': 6},
        'aimd': {'n_cells': 2, 'protocol': 'fast', 'steps': 5, 'rvv10_cutoff': 100.0},
        'config_space': {'soap': {'r_cut': 6.0, 'n_max': 6, 'l_max': 4}},
    },
    # the thesis's size: 108 atoms, 50000 steps (500 ps) of sampling and GAP-MD, a 108-atom AIMD of 5000 steps
    # (50 ps) with the moderate CP2K protocol and rVV10 on the density grid: days, for a cluster
    'large': {
        'n_cells': 3,
        'sampling': {'equilibration_steps': 5000, 'production_steps': 50000, 'sampling_interval': 100,
                     'thermo_interval': 10},
        'gap': {'n_select': 500, 'cutoff': 8.0, 'n_sparse_2b': 40, 'soap_sparse': 1000, 'sigma': SIGMA},
        'mlmd': {'ensemble': 'NVT', 'steps': 50000, 'dump_interval': 100, 'thermo_interval': 10},
        'active_learning': {'critical_similarity': 'calibrate', 'soap': {'r_cut': 8.0, 'n_max': 6, 'l_max': 4},
                            'max_steps': 50000, 'comparison_step': 100, 'max_iterations': 30,
                            'max_new_configurations': 60},
        'aimd': {'n_cells': 3, 'protocol': 'moderate', 'steps': 5000, 'rvv10_cutoff': None},
        'config_space': {'soap': {'r_cut': 8.0, 'n_max': 6, 'l_max': 4}},
    },
}


#: Closest distance (Å) of the random liquid start: 0.88 sigma, where the Lennard-Jones pair energy is 0.1 eV
#: above zero (the builder's default, 0.7 x the mean spacing, is 2.5 Å here: 1.4 eV).
MIN_DISTANCE = 3.0


def argon_spec(n_cells: int, start: str = 'liquid') -> dict:
    """Structure spec of ``4 n_cells^3`` argon atoms at the thesis's density, box ``n_cells x`` :data:`BOX_PER_CELL`.

    :param start: ``liquid``: a random packing (``science.structures.random_liquid``, closest distance
        :data:`MIN_DISTANCE`, seed 1) melted by the sampling's equilibration; ``fcc``: the ``argon`` preset's fcc
        lattice, which does not melt at 85 K on these time scales (the density is at the Lennard-Jones freezing
        line: rho sigma^3 = 0.861 at kT/epsilon = 0.71; with ``--size small`` the sampled crystal's diffusion
        coefficient is 0.00).
    :raises ValueError: for another ``start``.
    """
    from aiida_mlfail.science.structures import volume_to_density

    box = BOX_PER_CELL * n_cells
    if start == 'fcc':
        return {'system': 'argon', 'n_cells': n_cells, 'box': box}
    if start == 'liquid':
        n_atoms = 4 * n_cells**3
        return {'system': 'liquid', 'composition': {'Ar': n_atoms},
                'density': volume_to_density(['Ar'] * n_atoms, box**3), 'min_distance': MIN_DISTANCE, 'seed': 1}
    raise ValueError(f"start must be 'liquid' or 'fcc', got {start!r}")


def sampling_builder(codes, size: str, structure, seed: int = 2026):
    """NVT Lennard-Jones sampling of ``structure`` at :data:`TEMPERATURE` in its own volume (the size's ``md``)."""
    volume = structure.get_cell_volume()
    md = {**SIZES[size]['sampling'], 'timestep': TIMESTEP, **DAMPING, 'seed': seed}
    point = {'temperature': TEMPERATURE, 'volume': volume, 'label': f'nvt_{TEMPERATURE:.0f}K'}
    return common.sampling_builder(codes, [point], size=size, structure=structure, md=md, reference=REFERENCE)


def initial_data(size: str, pool) -> dict:
    """``train`` and ``validation`` sets of the sampled ``pool``: the size's ``n_select`` frames uniform in force
    magnitude, split 50/50 (the ``select_configurations`` and ``split_training_set`` calcfunctions). The GAP, the
    calibration and the active learner all start from them."""
    from aiida import orm

    from aiida_mlfail.calculations.functions import select_configurations, split_training_set

    n = min(SIZES[size]['gap']['n_select'], pool.n_configurations)
    selected = select_configurations(pool, orm.Dict({'method': 'uniform_force', 'n': n, 'seed': 7}))
    return split_training_set(selected, orm.Dict({'train_fraction': 0.5, 'seed': 7}))


def gap_builder(codes, size: str, training_set, validation_set):
    """The GAP of ``training_set`` validated on ``validation_set`` (``common.gap_builder`` with the size's ``gap``
    settings)."""
    gap = {**SIZES[size]['gap'], 'n_select': None}
    return common.gap_builder(codes, training_set, size=size, validation_set=validation_set, **gap)


def mlmd_builder(codes, size: str, potential, structure):
    """GAP-MD of ``potential`` from ``structure`` at :data:`TEMPERATURE` (the size's ``mlmd``) with the Lennard-Jones
    rerun of its frames."""
    parameters = {'temperature': TEMPERATURE, 'pressure': PRESSURE, 'timestep': TIMESTEP, **DAMPING,
                  **SIZES[size]['mlmd']}
    return common.mlmd_builder(codes, potential, structure, parameters, size=size, reference=REFERENCE)


def calibration_builder(codes, size: str, training_set, validation_set):
    """``ConfigSpaceWorkChain`` of the validation frames (X) against the training frames (Y) with the explorer's SOAP:
    its nearest-neighbour distances calibrate the critical similarity (:func:`critical_similarity`)."""
    from aiida_mlfail.workflows.config_space import ConfigSpaceWorkChain

    return ConfigSpaceWorkChain.get_builder_from_protocol(
        codes, validation_set, training_set, protocol=common.PROTOCOL_OF_SIZE[size],
        overrides={'soap': SIZES[size]['active_learning']['soap'],
                   'parameters': {'x_label': 'validation', 'y_label': 'training'}})


def critical_similarity(summary: dict) -> float:
    """The lowest REMatch similarity of an X frame to its nearest Y frame, ``K = 1 - D^2 / 2`` for the largest
    nearest-neighbour distance ``D = sqrt(2 - 2K)`` of a ``ConfigSpaceWorkChain`` summary, rounded down to 1e-8
    (frames of a liquid 0.5 ps apart differ in the sixth digit of K)."""
    d_max = summary['nearest_neighbour']['max']
    return 1.0 - math.ceil(round(d_max**2 / 2.0 * 1e8, 6)) / 1e8


def active_learning_builder(codes, size: str, training_set, validation_set, start, similarity: float):
    """``ActiveLearningWorkChain.get_builder_from_protocol`` with the study's overrides: the GAP settings of step 2,
    Lennard-Jones labels, NPT explorations at :data:`TEMPERATURE` and :data:`PRESSURE` from ``start`` with
    the critical ``similarity``; initial data ``training_set`` + ``validation_set`` (no sampling of its own)."""
    from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain

    s, al = SIZES[size], SIZES[size]['active_learning']
    gap = {key: value for key, value in s['gap'].items() if key != 'n_select'}
    overrides = {
        'temperature': TEMPERATURE, 'pressure': PRESSURE,
        'gap': common.gap_overrides(**gap),
        'explore': {'job': {'parameters': {
            'ensemble': 'NPT', 'timestep': TIMESTEP, **DAMPING, 'max_steps': al['max_steps'],
            'comparison_step': al['comparison_step'], 'critical_similarity': similarity, 'soap': al['soap']}}},
        'parameters': {'max_iterations': al['max_iterations'], 'max_new_configurations': al['max_new_configurations']},
    }
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes, start, protocol=common.PROTOCOL_OF_SIZE[size], overrides=overrides, reference=REFERENCE)
    del builder['sampling']  # the initial data are given
    builder.training_set = training_set
    builder.validation_set = validation_set
    builder.gap.fit.job.parameters = common.explicit_species_parameters(builder.gap.fit.job.parameters,
                                                                        training_set.species)
    return builder


def aimd_builder(codes, size: str, start):
    """CP2K NVT AIMD from ``start`` at :data:`TEMPERATURE` with :data:`TIMESTEP` and rVV10 (the size's ``aimd``)."""
    from aiida_mlfail.science.cp2k import vdw_overrides
    from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain

    a = SIZES[size]['aimd']
    vdw = {'type': 'rVV10', **({'cutoff': a['rvv10_cutoff']} if a['rvv10_cutoff'] else {})}
    return Cp2kAimdWorkChain.get_builder_from_protocol(codes, start, protocol=common.PROTOCOL_OF_SIZE[size], overrides={
        'protocol': a['protocol'], 'temperature': TEMPERATURE, 'steps': a['steps'], 'timestep': TIMESTEP,
        'thermostat_timecon': DAMPING['thermostat_damping'],
        'overrides': vdw_overrides(vdw, a['protocol'], xc=RVV10_XC)})


def config_space_builder(codes, size: str, x, y):
    """``ConfigSpaceWorkChain`` of the AIMD frames ``x`` against the classical frames ``y`` (the size's SOAP)."""
    from aiida_mlfail.workflows.config_space import ConfigSpaceWorkChain

    return ConfigSpaceWorkChain.get_builder_from_protocol(
        codes, x, y, protocol=common.PROTOCOL_OF_SIZE[size],
        overrides={'soap': SIZES[size]['config_space']['soap'],
                   'parameters': {'x_label': 'AIMD', 'y_label': 'classical'}})


# -- numbers of the steps ------------------------------------------------------------------------------------


def diffusion(frames) -> float | None:
    """Self-diffusion coefficient (1e-9 m^2/s) of the frames (``md_step`` in ``info``, :data:`TIMESTEP`), or None
    when the run is too short to fit."""
    from aiida_mlfail.science import observables

    times = [a.info['md_step'] * TIMESTEP / 1000.0 for a in frames]
    try:
        lag, msd = observables.msd(frames, times)
        return observables.diffusion_coefficient(lag, msd)['D_m2_s'] * 1e9
    except (ValueError, KeyError):
        return None


def rdf_shell(frames) -> dict:
    """First peak and the first minimum after it (Å) of the Ar-Ar g(r) of the frames (``science.observables.rdf``,
    bins of about 0.05 Å up to just below half the cell), None where the range does not reach them."""
    from aiida_mlfail.science import observables

    r_max = 0.49 * min(frames[0].cell.lengths())
    r, g = observables.rdf(frames, ('Ar', 'Ar'), r_max, n_bins=int(r_max / 0.05))
    peak = int(np.argmax(g))
    after = g[peak:]
    minimum = peak + int(np.argmin(after)) if len(after) > 2 and np.argmin(after) < len(after) - 1 else None
    return {'peak_A': float(r[peak]), 'g_peak': float(g[peak]),
            'first_minimum_A': None if minimum is None else float(r[minimum])}


def thermo_means(thermo, from_step: int = 0) -> dict:
    """Means and block standard errors of ``temperature`` (K), ``pressure`` (bar), ``volume`` (Å^3) of a thermo
    ArrayData over its rows from MD step ``from_step`` on (e.g. after the equilibration)."""
    from aiida_mlfail.science.observables import mean_and_standard_error

    keep = thermo.get_array('step') >= from_step
    result = {}
    for key in ('temperature', 'pressure', 'volume'):
        mean, error = mean_and_standard_error(thermo.get_array(key)[keep])
        result[key] = {'mean': float(mean), 'standard_error': None if error is None else float(error)}
    return result


def errors_along(trajectory, rerun, blocks: int = 4) -> list[dict]:
    """GAP vs reference along a GAP-MD trajectory, in ``blocks`` consecutive blocks of frames: first and last MD
    step, energy RMSE (meV/atom, mean offset not removed) and force-component RMSE (meV/Å)."""
    gap, ref = trajectory.get_atoms(), rerun.get_atoms()
    rows = []
    for part in np.array_split(np.arange(len(gap)), blocks):
        if not len(part):
            continue
        de = [(gap[i].info['energy'] - ref[i].info['energy']) / len(gap[i]) for i in part]
        df = np.concatenate([(gap[i].arrays['forces'] - ref[i].arrays['forces']).ravel() for i in part])
        rows.append({'steps': [int(gap[part[0]].info.get('md_step', part[0])),
                               int(gap[part[-1]].info.get('md_step', part[-1]))],
                     'energy_rmse_meV_atom': float(1000 * np.sqrt(np.mean(np.square(de)))),
                     'forces_rmse_meV_A': float(1000 * np.sqrt(np.mean(df**2)))})
    return rows


def fmt(value, spec: str = '.3f') -> str:
    """``value`` formatted, '-' for None."""
    return '-' if value is None else format(value, spec)


# -- the study ------------------------------------------------------------------------------------------------


def seconds(node) -> float:
    """Wall time of a process (s): from its creation to its last change."""
    return round((node.mtime - node.ctime).total_seconds(), 1)


def report_sampling(sampling) -> dict:
    """Print and return the numbers of step 1 (a ``ClassicalSamplingWorkChain`` node)."""
    frames = sampling.outputs.pool.get_atoms()
    # the production run only (the thermo series starts with the equilibration, which melts the start structure)
    means = thermo_means(sampling.outputs.sampled[f'nvt_{TEMPERATURE:.0f}K'].thermo,
                         from_step=sampling.inputs.md['equilibration_steps'])
    d_ar = diffusion(frames)
    shell = rdf_shell(frames)
    forces = np.concatenate([a.arrays['forces'].ravel() for a in frames])
    step = {'pk': sampling.pk, 'n_atoms': len(frames[0]), 'frames': len(frames), 'thermo': means,
            'diffusion_1e-9_m2_s': d_ar, 'rdf': shell, 'forces_rms_eV_A': float(np.sqrt(np.mean(forces**2))),
            'energy_per_atom_eV': float(np.mean([a.info['energy'] / len(a) for a in frames])),
            'seconds': seconds(sampling)}
    common.print_table(['atoms', 'frames', 'T (K)', 'P (bar)', 'E_pot (eV/atom)', 'RMS force (eV/Å)',
                        'D_Ar (1e-9 m^2/s)', 'g(r): peak, 1st min. (Å)', 'wall (s)'],
                       [[step['n_atoms'], step['frames'], f"{means['temperature']['mean']:.1f}",
                         f"{means['pressure']['mean']:.0f} ± {fmt(means['pressure']['standard_error'], '.0f')}",
                         f"{step['energy_per_atom_eV']:.4f}", f"{step['forces_rms_eV_A']:.4f}", fmt(d_ar, '.2f'),
                         f"{shell['peak_A']:.2f}, {fmt(shell['first_minimum_A'], '.2f')}", step['seconds']]])
    return step


def report_gap(gap, out: pathlib.Path, size: str) -> dict:
    """Print and return the numbers of step 2 (a ``GapWorkChain`` node); export its parity plot."""
    metrics = gap.outputs.metrics.get_dict()
    step = {'pk': gap.pk, 'training': gap.outputs.training_set.n_configurations,
            'validation': gap.outputs.validation_set.n_configurations, 'metrics': metrics,
            'descriptors': [d['description'] for d in gap.outputs.fit_parameters['descriptors']],
            'seconds': seconds(gap)}
    common.print_table(['train', 'validation', 'E RMSE (meV/atom)', 'F RMSE (meV/Å)', 'F max (meV/Å)',
                        'virial RMSE (meV/atom)', 'wall (s)'],
                       [[step['training'], step['validation'], f"{1000 * metrics['energy']['rmse']:.3f}",
                         f"{1000 * metrics['forces']['rmse']:.2f}", f"{1000 * metrics['forces']['max']:.1f}",
                         f"{1000 * metrics['virial']['rmse']:.2f}" if 'virial' in metrics else '-', step['seconds']]])
    for line in step['descriptors']:
        print(f'descriptor: {line}')
    print(f"parity plot: {common.export(gap.outputs.parity_plot, out, f'parity_{size}.png')}")
    return step


def report_mlmd(mlmd, out: pathlib.Path, size: str) -> dict:
    """Print and return the numbers of step 3 (an ``MLMDWorkChain`` node with a rerun); export its forensics."""
    stop, summary = mlmd.outputs.stop.get_dict(), mlmd.outputs.summary.get_dict()
    along = errors_along(mlmd.outputs.trajectory, mlmd.outputs.rerun) if 'rerun' in mlmd.outputs else []
    means = thermo_means(mlmd.outputs.thermo)
    step = {'pk': mlmd.pk, 'stop_reason': stop['stop_reason'], 'stop_step': stop['stop_step'],
            'breaking_step': summary.get('breaking_step'), 'gap_vs_rerun': summary.get('gap_vs_rerun'),
            'pressure_bar': summary['pressure'], 'thermo': means, 'errors_along': along,
            'stable': stop['stop_reason'] == 'completed' and summary.get('breaking_step') is None,
            'seconds': seconds(mlmd)}
    common.print_table(['MD steps', 'GAP E RMSE (meV/atom)', 'GAP F RMSE (meV/Å)'],
                       [[f"{r['steps'][0]}-{r['steps'][1]}", f"{r['energy_rmse_meV_atom']:.3f}",
                         f"{r['forces_rmse_meV_A']:.2f}"] for r in along])
    print()
    pressure = summary['pressure']
    nvt = mlmd.inputs.parameters['ensemble'] == 'NVT'
    common.print_table(['stop', 'stable', 'T (K)', 'P GAP (bar)', 'P rerun LJ (bar)', 'V (Å^3)', 'wall (s)'],
                       [[f"{stop['stop_reason']} at step {stop['stop_step']}", step['stable'],
                         f"{means['temperature']['mean']:.1f}", f"{pressure['ML run']['mean_bar']:.0f}",
                         f"{pressure['rerun']['mean_bar']:.0f}" if 'rerun' in pressure else '-',
                         f"{means['volume']['mean']:.0f}" + (' (NVT)' if nvt else ''), step['seconds']]])
    print(f"forensics: {common.export(mlmd.outputs.forensics_plot, out, f'forensics_{size}.png')}")
    return step


def report_calibration(calibration, n_training: int) -> dict:
    """Print and return the critical similarity of a ``ConfigSpaceWorkChain`` of validation against training."""
    nn = calibration.outputs.summary['nearest_neighbour']
    similarity = critical_similarity(calibration.outputs.summary.get_dict())
    common.print_table(['nearest training frame of a validation frame', 'median D', 'max D',
                        'critical similarity 1 - max D^2 / 2', 'wall (s)'],
                       [[f"{nn['distinct_neighbours']} distinct of {n_training}", f"{nn['median']:.4f}",
                         f"{nn['max']:.4f}", f'{similarity:.8f}', seconds(calibration)]])
    return {'pk': calibration.pk, 'nearest_neighbour': nn, 'critical_similarity': similarity,
            'seconds': seconds(calibration)}


def report_active_learning(learner, similarity: float, n_initial: int, out: pathlib.Path, size: str) -> dict:
    """Print and return the numbers of step 4 (an ``ActiveLearningWorkChain`` node); export its convergence plot."""
    summary = learner.outputs.summary.get_dict()
    rows = summary['iterations']
    step = {'pk': learner.pk, 'exit_status': learner.exit_status, 'outcome': summary['outcome'],
            'critical_similarity': similarity, 'iterations': rows,
            'training_set': [n_initial, learner.outputs.training_set.n_configurations],
            'final_metrics': learner.outputs.metrics.get_dict(), 'seconds': seconds(learner)}
    common.print_table(['iteration', 'train', 'stop', 'steps', 'similarity', 'added', 'val. E RMSE (meV/atom)',
                        'val. F RMSE (meV/Å)'],
                       [[r['iteration'], r['training_set_size'], r.get('stop_reason'), r.get('steps'),
                         fmt(r.get('similarity'), '.8f'), r['added'], f"{1000 * r['validation_energy_rmse']:.3f}",
                         f"{1000 * r['validation_forces_rmse']:.2f}"] for r in rows])
    print(f"outcome: {summary['outcome']} [{learner.exit_status}]; training set {n_initial} -> "
          f"{step['training_set'][1]} configurations; wall {step['seconds']} s")
    print(f"convergence plot: {common.export(learner.outputs.convergence_plot, out, f'active_learning_{size}.png')}")
    return step


def report_config_space(work, aimd, classical, out: pathlib.Path, size: str) -> dict:
    """Print and return the numbers of step 5 (a ``ConfigSpaceWorkChain`` node of the AIMD X against the classical
    Y); export its figures."""
    cs = work.outputs.summary.get_dict()
    first, nn = cs['distance_to_first'], cs['nearest_neighbour']
    step = {'pk': work.pk, 'aimd_pk': aimd.pk, 'classical_pk': classical.pk,
            'n_atoms': len(aimd.inputs.structure.sites), 'frames': {'x': cs['n_x'], 'y': cs['n_y']},
            'distance_to_first': first, 'nearest_neighbour': nn, 'soap': work.inputs.soap.get_dict(),
            'aimd_energy_eV': [a.info['energy'] for a in aimd.outputs.trajectory.get_atoms()],
            'seconds': seconds(work), 'aimd_seconds': seconds(aimd)}
    common.print_table(['set', 'frames', 'distance to first: plateau', 'max', 'wall (s)'],
                       [['X = CP2K AIMD', first['x']['n'], f"{first['x']['plateau']:.4f}", f"{first['x']['max']:.4f}",
                         step['aimd_seconds']],
                        ['Y = Lennard-Jones', first['y']['n'], f"{first['y']['plateau']:.4f}",
                         f"{first['y']['max']:.4f}", seconds(classical)]])
    print()
    common.print_table(['nearest neighbour of X in Y', 'median', 'p95', 'max', 'distinct Y neighbours', 'wall (s)'],
                       [['AIMD in classical', f"{nn['median']:.4f}", f"{nn['p95']:.4f}", f"{nn['max']:.4f}",
                         f"{nn['distinct_neighbours']} of {cs['n_y']}", step['seconds']]])
    for key in ('distance_to_first_plot', 'nearest_neighbour_plot'):
        print(f"{key.replace('_', ' ')}: {common.export(work.outputs[key], out, f'{key}_{size}.png')}")
    return step


def run_study(codes: dict, size: str, out: pathlib.Path, start: str = 'liquid') -> dict:
    """Run the five steps of the study at ``size`` with ``codes`` (roles ``lammps``, ``gap_fit``, ``quip``,
    ``explore``, ``rematch``, ``cp2k``) from the ``start`` structure (:func:`argon_spec`), print a table per step,
    write figures and ``argon_<size>.json`` into ``out``; returns the summary written there.

    The WorkChains run concurrently in this process (``common.Runs``), each started as soon as the ones it needs
    have ended: the two samplings; then (after the selection and split of the initial data) the GAP, the AIMD and
    the calibration of the critical similarity (or, when the size fixes it, the active learner); the GAP-MD after
    the GAP, the configuration space after the AIMD, the active learner after the calibration. Each step's
    ``seconds`` is the wall time of its WorkChain; ``seconds.total`` that of the study.

    Exits (``SystemExit`` 1) when a WorkChain ends with a status the study does not accept (0; 410 for the GAP-MD
    (a guard stop is a result); 701 / 702 for the active learner (a limit reached)).
    """
    from aiida import orm

    t0 = time.time()
    s, al, a = SIZES[size], SIZES[size]['active_learning'], SIZES[size]['aimd']
    summary = {'size': size, 'protocol': common.PROTOCOL_OF_SIZE[size], 'temperature_K': TEMPERATURE,
               'timestep_fs': TIMESTEP, 'reference': REFERENCE, 'start': start, 'settings': s}
    allowed = {'GAP-MD': (0, 410), 'active learning': (0, 701, 702)}

    spec, aimd_spec = argon_spec(s['n_cells'], start), argon_spec(a['n_cells'], start)
    structure = common.structure_from_spec(spec)
    n_atoms = len(structure.sites)
    print(f'== 1. Lennard-Jones NVT sampling from {"a random liquid packing" if start == "liquid" else "fcc"}: '
          f'{n_atoms} Ar, box {BOX_PER_CELL * s["n_cells"]:.3f} Å ({n_atoms / structure.get_cell_volume():.5f} '
          f'atoms/Å^3), {TEMPERATURE:.0f} K, {TIMESTEP:.0f} fs steps'
          + ('' if aimd_spec == spec else
             f"; and of the AIMD's cell ({4 * a['n_cells']**3} Ar, {BOX_PER_CELL * a['n_cells']:.3f} Å)"))
    # (the structures first: a calcfunction run between start and wait would run the started processes too, with
    # their reports printed outside the echo of common.Runs)
    aimd_structure = common.structure_from_spec(aimd_spec) if aimd_spec != spec else None
    runs = common.Runs()
    runs.start('sampling', sampling_builder(codes, size, structure))
    if aimd_structure is not None:
        runs.start('sampling of the AIMD cell', sampling_builder(codes, size, aimd_structure, seed=2027))
    nodes = runs.wait()
    sampling = nodes['sampling']
    classical = nodes.get('sampling of the AIMD cell', sampling)
    summary['sampling'] = report_sampling(sampling)
    pool = sampling.outputs.pool
    last_frame = pool.get_atoms()[-1]
    y_set = classical.outputs.pool
    parts = initial_data(size, pool)
    training_set, validation_set = parts['train'], parts['validation']
    print(f"initial data: {training_set.n_configurations} training and {validation_set.n_configurations} validation "
          f"configurations, {s['gap']['n_select']} of {pool.n_configurations} frames uniform in force")

    print()
    aimd_start = orm.StructureData(ase=y_set.get_atoms()[-1])
    calibrate = al['critical_similarity'] == 'calibrate'
    print(f"== 2. GAP fit: 2-body + SOAP, cutoff {s['gap']['cutoff']} Å, sigma {s['gap']['sigma']}")
    runs.start('GAP', gap_builder(codes, size, training_set, validation_set))
    print(f"== 5. CP2K NVT AIMD ({a['protocol']} protocol, rPW86 + PBE + rVV10"
          + (f", non-local kernel on a {a['rvv10_cutoff']:.0f} Ry grid" if a['rvv10_cutoff'] else '')
          + f"): {len(aimd_start.sites)} Ar, {a['steps']} steps of {TIMESTEP:.0f} fs from the last classical frame"
          + (' (shrunk to run in minutes: shows the comparison working, not converged DFT)' if size != 'large' else ''))
    runs.start('AIMD', aimd_builder(codes, size, aimd_start))
    if calibrate:
        print("== 4a. critical similarity: validation frames (X) against training frames (Y) with the explorer's "
              f"SOAP {al['soap']}")
        runs.start('calibration', calibration_builder(codes, size, training_set, validation_set))
    else:
        similarity = al['critical_similarity']
        print(f'== 4. active learning (critical similarity {similarity:.8f})')
        runs.start('active learning', active_learning_builder(codes, size, training_set, validation_set, last_frame,
                                                              similarity))

    # each step starts as soon as the one it needs has ended; the others go on meanwhile
    gap = runs.wait('GAP')['GAP']
    print()
    print('== 2. GAP fit')
    summary['gap'] = report_gap(gap, out, size)
    md = s['mlmd']
    print(f"== 3. GAP-MD: {md['ensemble']} {TEMPERATURE:.0f} K, {md['steps']} steps of {TIMESTEP:.0f} fs from the last "
          'sampled frame, every frame rerun with Lennard-Jones')
    runs.start('GAP-MD', mlmd_builder(codes, size, gap.outputs.potential, orm.StructureData(ase=last_frame)))
    calibration = None
    if calibrate:
        node = runs.wait('calibration')['calibration']
        print()
        print('== 4a. critical similarity')
        calibration = report_calibration(node, training_set.n_configurations)
        similarity = calibration['critical_similarity']
        print(f"== 4. active learning: NPT {TEMPERATURE:.0f} K, {PRESSURE:.0f} bar explorations of up to "
              f"{al['max_steps']} steps (novelty check every {al['comparison_step']}, critical similarity "
              f'{similarity:.8f}), Lennard-Jones labels')
        runs.start('active learning', active_learning_builder(codes, size, training_set, validation_set, last_frame,
                                                              similarity))
    aimd = runs.wait('AIMD')['AIMD']
    print('== 5. configuration space: the AIMD frames (X) against the classical frames of the same cell (Y)')
    runs.start('configuration space', config_space_builder(codes, size, aimd.outputs.trajectory, y_set))

    nodes = runs.wait('GAP-MD', allowed=allowed)
    print()
    print('== 3. GAP-MD')
    summary['mlmd'] = report_mlmd(nodes['GAP-MD'], out, size)
    nodes = runs.wait('configuration space')
    print()
    print('== 5. configuration space, CP2K AIMD (X) against Lennard-Jones (Y)')
    summary['config_space'] = report_config_space(nodes['configuration space'], aimd, classical, out, size)
    nodes = runs.wait('active learning', allowed=allowed)
    print()
    print('== 4. active learning')
    summary['active_learning'] = report_active_learning(nodes['active learning'], similarity,
                                                        training_set.n_configurations, out, size)
    if calibration:
        summary['active_learning']['calibration'] = calibration

    summary['seconds'] = {'sampling': summary['sampling']['seconds'], 'gap': summary['gap']['seconds'],
                          'mlmd': summary['mlmd']['seconds'], 'aimd': summary['config_space']['aimd_seconds'],
                          'config_space': summary['config_space']['seconds'],
                          **({'calibration': calibration['seconds']} if calibration else {}),
                          'active_learning': summary['active_learning']['seconds'],
                          'total': round(time.time() - t0, 1)}
    print()
    print('wall times (s; independent steps overlap):')
    common.print_table(['step', 'wall (s)'], list(summary['seconds'].items()))
    print(f"summary: {common.write_json(out, f'argon_{size}.json', summary)}")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='small')
    parser.add_argument('--computer', default='localhost', help='computer of the codes (e.g. a SLURM cluster)')
    parser.add_argument('--profile', default=None, help='AiiDA profile (default: the default profile)')
    parser.add_argument('--output', default='results/argon', help='folder for the JSON summary and the figures')
    parser.add_argument('--start', choices=('liquid', 'fcc'), default='liquid',
                        help='start structure: a random packing melted by the equilibration (default), or the fcc '
                             'lattice of the argon preset (stays crystalline at 85 K)')
    args = parser.parse_args(argv)

    from aiida import load_profile

    load_profile(args.profile)
    codes = common.load_codes(args.computer, extra=('explore', 'rematch', 'cp2k'))
    run_study(codes, args.size, pathlib.Path(args.output).resolve(), args.start)
    return 0


if __name__ == '__main__':
    sys.exit(main())
