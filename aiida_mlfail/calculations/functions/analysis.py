"""calcfunctions analysing trajectories: forensics of a GAP MD run, structure (RDF) and dynamics (MSD, D)."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mlfail.calculations.functions.metrics import compare_labels
from aiida_mlfail.data.training_set import TrainingSetData


@calcfunction
def analyse_mlmd(trajectory: TrainingSetData, thermo: orm.ArrayData, parameters: orm.Dict, **optional):
    """Breaking step, pressure table (training run / ML run / rerun) and the forensics (figure and data) of a GAP MD
    run (``science.forensics``), reading the frames one at a time (``TrainingSetData.iter_atoms``).

    :param parameters: ``timestep`` (fs), ``temperature`` (K, the target: Maxwell-Boltzmann curve),
        ``reference_volume`` (Å^3, the guard's), ``volume_factor`` (the guard's), ``breaking_factor`` (default
        1.5), ``equilibrium_volume`` (Å^3) with ``equilibrium_volume_source`` (default: the guard's reference
        volume, source ``'reference volume of the guard'``), optional ``training_production_start_step`` (the
        first production step of the training run; its pressure is averaged from there, the whole series
        otherwise) and ``window_frames`` (frames per histogram window, default 10).
    :param optional: ``rerun`` (TrainingSetData: the reference labels of the same frames) and
        ``training_thermo`` (ArrayData with ``step`` and ``pressure`` in bar of the training-data run).
    :returns: ``summary`` (Dict: breaking_step, breaking_factor, equilibrium_volume and its source, the
        guard's reference volume and factor, pressure table in bar, final volume, error of the GAP vs the
        rerun), ``forensics_plot`` (SinglefileData PNG), ``forensics_data`` (ArrayData: the time series and
        the histograms with their model curves) and ``breaking_step`` (Int) when the volume exceeded the
        threshold.
    """
    from aiida_mlfail.science import forensics, mlmd
    from aiida_mlfail.science import observables as obs

    p = parameters.get_dict()
    timestep = float(p['timestep'])
    steps, volumes = thermo.get_array('step'), thermo.get_array('volume')
    reference_volume = float(p['reference_volume'])
    equilibrium_volume = float(p.get('equilibrium_volume', reference_volume))
    source = p.get('equilibrium_volume_source', 'reference volume of the guard')
    factor = float(p.get('breaking_factor', forensics.BREAKING_FACTOR))
    break_step = obs.breaking_step(steps, volumes, equilibrium_volume, factor)
    accumulator = forensics.ForensicsAccumulator(timestep, break_step, int(p.get('window_frames',
                                                                                 forensics.WINDOW_FRAMES)))
    for atoms in trajectory.iter_atoms():
        accumulator.add(atoms)
    series = accumulator.series()
    pressures = {'ML run': thermo.get_array('pressure')}
    summary = {'breaking_step': break_step, 'breaking_factor': factor, 'equilibrium_volume': equilibrium_volume,
               'equilibrium_volume_source': source, 'reference_volume': reference_volume,
               'volume_factor': float(p['volume_factor']), 'final_volume': float(volumes[-1]),
               'n_frames': int(len(series['step']))}
    if 'training_thermo' in optional:
        training = optional['training_thermo']
        start = p.get('training_production_start_step')
        pressures['training run'] = (training.get_array('pressure') if start is None else
                                     forensics.production_part(training.get_array('step'),
                                                               training.get_array('pressure'), start))
        summary['training_production_start_step'] = start
    if 'rerun' in optional:
        pressures['rerun'] = np.array([obs.pressure(len(a), t, a.get_volume(), a.info['virial'])
                                       for a, t in zip(optional['rerun'].iter_atoms(), series['temperature'])])
        metrics, _ = compare_labels(optional['rerun'].iter_atoms(), trajectory.iter_atoms())
        summary['gap_vs_rerun'] = metrics
    summary['pressure'] = mlmd.pressure_table(pressures)
    windows = accumulator.windows()
    histograms = (forensics.component_histograms(windows, accumulator.masses, float(p['temperature']))
                  if windows and 'temperature' in p else None)
    break_time = break_step * timestep / 1000.0 if break_step is not None else None
    png = forensics.forensics_png(series, histograms, break_time, title=f'GAP MD, {len(accumulator.masses)} atoms',
                                  temperature=p.get('temperature'), break_volume=factor * equilibrium_volume)
    data = orm.ArrayData()
    for key, values in series.items():
        data.set_array(key, np.asarray(values))
    for key, entry in (histograms or {}).items():
        for name, values in entry.items():
            if isinstance(values, np.ndarray):
                data.set_array(f'{key}_{name}', values)
    if histograms:
        data.base.attributes.set('force_gaussian', {'mean_eV_A': histograms['force']['gaussian_mean'],
                                                    'std_eV_A': histograms['force']['gaussian_std']})
        data.base.attributes.set('windows', {k: v['n_frames'] for k, v in windows.items()})
    data.base.attributes.set('units', {'time_ps': 'ps', 'temperature': 'K', 'afm': 'eV/Å', 'pressure': 'bar',
                                       'virial_pressure': 'bar', 'volume': 'Å^3', 'density': 'g/cm^3',
                                       'velocity_*': 'Å/ps (densities per Å/ps)',
                                       'force_*': 'eV/Å (densities per eV/Å)'})
    outputs = {'summary': orm.Dict(summary), 'forensics_data': data,
               'forensics_plot': orm.SinglefileData(io.BytesIO(png), filename='forensics.png')}
    if break_step is not None:
        outputs['breaking_step'] = orm.Int(break_step)
    return outputs


@calcfunction
def structure_and_dynamics(trajectory: TrainingSetData, parameters: orm.Dict):
    """Partial RDFs and per-species MSD / diffusion coefficients of a trajectory (``science.observables``).

    :param parameters: ``timestep`` (fs of the MD the frames come from), ``r_max`` (Å, default
        just below half the cell), ``n_bins`` (default 100), ``label`` (for the figure).
    :returns: ``rdf`` (ArrayData: ``r`` and ``g_A_B`` per species pair), ``msd`` (ArrayData:
        ``lag_ps`` and ``msd_<species>`` in Å^2), ``diffusion`` (Dict: per species D in m^2/s with its
        standard error from 5 blocks, ``science.observables.diffusion_with_error``, or, when the blocks
        are too short, the whole trajectory's D with ``D_stderr_m2_s`` None and the reason) and ``plot``
        (PNG with the RDFs and MSDs).
    """
    from aiida_mlfail.science import observables as obs
    from aiida_mlfail.science.plots import figure_png, plt

    p = parameters.get_dict()
    frames = trajectory.get_atoms()
    species = sorted(set(frames[0].get_chemical_symbols()))
    cell = frames[0].cell
    r_max = float(p.get('r_max', 0.49 * min(cell.volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
                                              for i in range(3))))
    times = np.array([a.info['md_step'] for a in frames]) * float(p['timestep']) / 1000.0
    rdf, msd, diffusion = orm.ArrayData(), orm.ArrayData(), {}
    fig, (ax_rdf, ax_msd) = plt.subplots(1, 2, figsize=(9, 3.6))
    for i, a in enumerate(species):
        for b in species[i:]:
            r, g = obs.rdf(frames, (a, b), r_max, int(p.get('n_bins', 100)))
            rdf.set_array('r', r)
            rdf.set_array(f'g_{a}_{b}', g)
            ax_rdf.plot(r, g, label=f'{a}-{b}')
    for symbol in species:
        lag, values = obs.msd(frames, times, symbol)
        msd.set_array('lag_ps', lag)
        msd.set_array(f'msd_{symbol}', values)
        ax_msd.plot(lag, values, label=symbol)
        try:
            diffusion[symbol] = obs.diffusion_with_error(frames, times, symbol)
        except ValueError as blocks_error:  # blocks too short for a fit: the whole trajectory's D, no error bar
            try:
                diffusion[symbol] = {**obs.diffusion_coefficient(lag, values), 'D_stderr_m2_s': None,
                                     'stderr_error': str(blocks_error)}
            except ValueError as exc:
                diffusion[symbol] = {'error': str(exc)}
    ax_rdf.set_xlabel('r (Å)'), ax_rdf.set_ylabel('g(r)'), ax_rdf.legend(fontsize=8)
    ax_msd.set_xlabel('lag (ps)'), ax_msd.set_ylabel('MSD (Å$^2$)'), ax_msd.legend(fontsize=8)
    fig.suptitle(p.get('label', ''))
    return {'rdf': rdf, 'msd': msd, 'diffusion': orm.Dict(diffusion),
            'plot': orm.SinglefileData(io.BytesIO(figure_png(fig, dpi=100)), filename='structure_dynamics.png')}
