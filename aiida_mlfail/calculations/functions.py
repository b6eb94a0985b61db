"""calcfunctions: cheap, provenance-tracked transformations (inputs, selection, merging, metrics).

The science lives in ``aiida_mlfail.science``; these wrap it so each step is a node in the graph.
"""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from ase.io import write

from aiida_mlfail.data.training_set import TrainingSetData, check_same_reference
from aiida_mlfail.science import gap as gap_science
from aiida_mlfail.science import checks, lammps_md, plots, selection, structures
from aiida_mlfail.science.references import lammps_reference
from aiida_mlfail.science.potentials import CHARGES, ReferencePotential


@calcfunction
def build_structure(spec: orm.Dict) -> orm.StructureData:
    """Start structure from a builder spec: ``{'system': 'nacl', 'n_ions': 64, 'volume'|'density': ..., 'seed': 0}``
    or ``{'system': 'argon', 'n_cells': 3, 'box': 17.042}`` (see ``science.structures``)."""
    spec = dict(spec.get_dict())
    system = spec.pop('system')
    atoms = structures.molten_nacl(**spec) if system == 'nacl' else structures.argon(**spec)
    return orm.StructureData(ase=atoms)


def check_structure_spec(spec: dict) -> str | None:
    """Error message for a structure builder spec that cannot build, else ``None``."""
    spec = dict(spec)
    system = spec.pop('system', None)
    if system not in ('nacl', 'argon'):
        return f"structure spec: system must be 'nacl' or 'argon', got {system!r}"
    allowed = ('n_ions', 'volume', 'density', 'seed') if system == 'nacl' else ('n_cells', 'box')
    try:
        checks.known_keys(spec, allowed, f'structure spec ({system})')
        atoms = structures.molten_nacl(**spec) if system == 'nacl' else structures.argon(**spec)
    except ValueError as exc:
        return f'structure spec {spec!r}: {exc}'
    return None if len(atoms) else 'structure spec builds no atoms'


@calcfunction
def prepare_sampling(structure: orm.StructureData, potential: orm.Dict, state_point: orm.Dict, md: orm.Dict):
    """LAMMPS inputs of one sampling run: the script, the ``read_data`` file and the parser settings.

    :returns: ``script`` and ``structure_file`` (SinglefileData), ``settings`` (Dict with ``type_map``,
        ``frame_info`` and ``reference``: the potential's ``science.references.lammps_reference``, which the
        parser records on the sampled ``training_set``).
    """
    reference = ReferencePotential.from_dict(potential.get_dict())
    atoms = structure.get_ase()
    symbols = atoms.get_chemical_symbols()
    reference.check_species(symbols)
    point = lammps_md.normalise_state_point(state_point.get_dict(), symbols)
    settings = lammps_md.normalise_md(md.get_dict())
    atoms.set_initial_charges([CHARGES[s] for s in symbols])
    buffer = io.StringIO()
    write(buffer, atoms, format='lammps-data', atom_style=reference.atom_style, specorder=list(reference.species),
          masses=True, units='metal')
    frame_info = {'config_type': point['label'], 'state_point': point['label'], 'temperature': point['temperature'],
                  'ensemble': point['ensemble'], 'reference': reference.name}
    return {
        'script': orm.SinglefileData(io.BytesIO(lammps_md.sampling_script(reference, point, settings).encode()),
                                     filename='input.in'),
        'structure_file': orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename=lammps_md.DATA_FILE),
        'settings': orm.Dict({'type_map': list(reference.species), 'frame_info': frame_info,
                              'reference': lammps_reference(potential.get_dict())}),
    }


@calcfunction
def merge_training_sets(**training_sets) -> TrainingSetData:
    """One training set of all configurations of the inputs, in keyword order (sorted keys), with their
    common reference.

    Mixed references are refused by the port validator (:func:`_merge_validator`, i.e.
    :func:`~aiida_mlfail.data.training_set.check_same_reference`) before anything is stored; the body
    checks again.

    :raises ValueError: if the sets were labelled by different references (or two or more are of unknown
        reference), naming each with its label and id.
    """
    reference = check_same_reference(**{key: training_sets[key] for key in sorted(training_sets)})
    configurations = []
    for key in sorted(training_sets):
        configurations += training_sets[key].get_atoms()
    return TrainingSetData.from_atoms(configurations, reference=reference)


def _merge_validator(value, ctx=None):
    """Port validator of ``merge_training_sets``: refuse mixed references before the process is stored."""
    sets = {key: node for key, node in value.items() if isinstance(node, TrainingSetData)}
    try:
        check_same_reference(**{key: sets[key] for key in sorted(sets)})
    except ValueError as exc:
        return str(exc)
    return None


merge_training_sets.process_class.spec().inputs.validator = _merge_validator


@calcfunction
def select_configurations(pool: TrainingSetData, parameters: orm.Dict) -> TrainingSetData:
    """``parameters['n']`` configurations of ``pool`` chosen by ``parameters['method']`` (seeded), see
    ``science.selection.select``; the pool index of each is kept as ``pool_index``."""
    p = selection.normalise_selection(parameters.get_dict())
    configurations = pool.get_atoms()
    chosen = selection.select(configurations, p['n'], p['method'], p['seed'])
    picked = []
    for index in chosen:
        atoms = configurations[index]
        atoms.info['pool_index'] = index
        picked.append(atoms)
    return TrainingSetData.from_atoms(picked, reference=pool.reference)


@calcfunction
def split_training_set(training_set: TrainingSetData, parameters: orm.Dict):
    """Random train / validation split (``train_fraction``, ``seed``); returns ``train`` and ``validation``
    (both keep the set's reference)."""
    p = selection.normalise_split(parameters.get_dict())
    configurations = training_set.get_atoms()
    train, validation = selection.split(len(configurations), p['train_fraction'], p['seed'])
    reference = training_set.reference
    return {
        'train': TrainingSetData.from_atoms([configurations[i] for i in train], reference=reference),
        'validation': TrainingSetData.from_atoms([configurations[i] for i in validation], reference=reference),
    }


def compare_labels(reference, predicted) -> tuple[dict, dict]:
    """Metrics and parity pairs of predicted vs reference configurations (same order).

    Energy and virial per atom (eV/atom), force components (eV/Å).

    :returns: ``(metrics, pairs)`` keyed by ``energy``/``forces``/``virial`` for labels both sides carry.
    :raises ValueError: if the two lists differ in length or atom counts.
    """
    if len(reference) != len(predicted):
        raise ValueError(f'{len(reference)} reference vs {len(predicted)} predicted configurations')
    pairs = {}
    if all('energy' in a.info for a in reference + predicted):
        pairs['energy'] = ([a.info['energy'] / len(a) for a in reference], [a.info['energy'] / len(a) for a in predicted])
    if all('forces' in a.arrays for a in reference + predicted):
        pairs['forces'] = (np.concatenate([a.arrays['forces'].ravel() for a in reference]),
                           np.concatenate([a.arrays['forces'].ravel() for a in predicted]))
    if all('virial' in a.info for a in reference + predicted):
        pairs['virial'] = (np.concatenate([np.ravel(a.info['virial']) / len(a) for a in reference]),
                           np.concatenate([np.ravel(a.info['virial']) / len(a) for a in predicted]))
    metrics = {key: gap_science.error_metrics(*value) for key, value in pairs.items()}
    return metrics, pairs


@calcfunction
def validation_metrics(reference: TrainingSetData, predictions: TrainingSetData):
    """RMSE / MAE / max error of the GAP on the validation set and the parity plot (PNG).

    :returns: ``metrics`` (Dict: ``energy`` eV/atom, ``forces`` eV/Å, ``virial`` eV/atom, each with
        rmse, mae, max, n) and ``parity_plot`` (SinglefileData ``parity.png``).
    """
    metrics, pairs = compare_labels(reference.get_atoms(), predictions.get_atoms())
    png = plots.parity_png(pairs, metrics, title=f'GAP vs reference, {reference.n_configurations} validation configurations')
    return {
        'metrics': orm.Dict(metrics),
        'parity_plot': orm.SinglefileData(io.BytesIO(png), filename='parity.png'),
    }


@calcfunction
def prepare_mlmd(structure: orm.StructureData, potential, parameters: orm.Dict):
    """LAMMPS inputs of a GAP MD run with failure guards (``science.mlmd``).

    The reference volume of the volume guard is ``parameters['reference_volume']`` or the start
    structure's volume. Returns ``script``, ``structure_file`` and ``settings`` (type map, frame info).
    """
    from aiida_mlfail.science import mlmd

    p = mlmd.normalise_mlmd(parameters.get_dict())
    atoms = structure.get_ase()
    type_map = [s for s in potential.species if s in set(atoms.get_chemical_symbols())]
    reference_volume = float(p.get('reference_volume', atoms.get_volume()))
    script = mlmd.mlmd_script(potential.lammps_pair_commands(type_map), type_map, p, len(atoms), reference_volume)
    buffer = io.StringIO()
    write(buffer, atoms, format='lammps-data', atom_style='atomic', specorder=type_map, masses=True, units='metal')
    return {
        'script': orm.SinglefileData(io.BytesIO(script.encode()), filename='input.in'),
        'structure_file': orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename=lammps_md.DATA_FILE),
        'settings': orm.Dict({'type_map': type_map, 'reference_volume': reference_volume,
                              'frame_info': {'config_type': f"gap_md_{p['ensemble'].lower()}",
                                             'potential_label': potential.label}}),
    }


def _rerun_inputs(frames, steps, reference: ReferencePotential, info: dict) -> dict:
    """LAMMPS ``rerun`` inputs (script, data file, dump, settings) re-evaluating ``frames`` with ``reference``."""
    from aiida_mlfail.science import mlmd

    reference.check_species(set().union(*(a.get_chemical_symbols() for a in frames)))
    type_map = list(reference.species)
    first = frames[0].copy()
    first.set_initial_charges([CHARGES[s] for s in first.get_chemical_symbols()])
    buffer = io.StringIO()
    write(buffer, first, format='lammps-data', atom_style=reference.atom_style, specorder=type_map, masses=True,
          units='metal')
    every = int(np.gcd.reduce(np.diff(steps))) if len(steps) > 1 else 1
    return {
        'script': orm.SinglefileData(io.BytesIO(mlmd.rerun_script(reference.lammps_commands(), reference.atom_style,
                                                                  max(every, 1)).encode()), filename='input.in'),
        'structure_file': orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename=lammps_md.DATA_FILE),
        'dump_file': orm.SinglefileData(io.BytesIO(mlmd.write_dump(frames, type_map, steps).encode()),
                                        filename='ml_frames.dump'),
        'settings': orm.Dict({'type_map': type_map, 'frame_info': {**info, 'reference': reference.name},
                              'reference': lammps_reference(reference.to_dict())}),
    }


@calcfunction
def prepare_rerun(trajectory: TrainingSetData, potential: orm.Dict):
    """LAMMPS inputs re-evaluating every frame of an ML trajectory with a classical reference (``rerun``)."""
    frames = trajectory.get_atoms()
    return _rerun_inputs(frames, [a.info['md_step'] for a in frames], ReferencePotential.from_dict(potential.get_dict()),
                         {'config_type': 'rerun'})


@calcfunction
def prepare_single_points(configurations: TrainingSetData, potential: orm.Dict):
    """LAMMPS inputs of classical single points of all ``configurations`` in one job (``rerun``, frame i = step i).

    All configurations must have the same atoms in the same order (one LAMMPS data file); positions
    are wrapped into the cell first. The labelled frames come back with ``md_step`` = their index, in a
    set whose ``reference`` is the potential's (``settings['reference']``, recorded by the parser).
    """
    frames = configurations.get_atoms()
    for atoms in frames:
        atoms.wrap()
    return _rerun_inputs(frames, list(range(len(frames))), ReferencePotential.from_dict(potential.get_dict()),
                         {'config_type': 'single_point'})


@calcfunction
def collect_structures(**structures) -> TrainingSetData:
    """An unlabelled ``TrainingSetData`` of the given ``StructureData`` (sorted by keyword).

    Each configuration keeps the structure's attributes ``md_step``, ``similarity`` and
    ``stop_reason`` when present, its keyword as ``candidate`` and its ``structure_uuid``.
    """
    configurations = []
    for key in sorted(structures):
        node = structures[key]
        atoms = node.get_ase()
        atoms.info = {'candidate': key, 'structure_uuid': node.uuid}
        for name in ('md_step', 'similarity', 'stop_reason'):
            value = node.base.attributes.get(name, None)
            if value is not None:
                atoms.info[name] = value
        configurations.append(atoms)
    return TrainingSetData.from_atoms(configurations)


#: Labels (and label-like arrays) a configuration loses when a reference labels it anew.
LABEL_KEYS = ('energy', 'virial', 'atomic_energies', 'forces', 'velocities', 'stress', 'free_energy')


def with_labels(atoms, frame, reference: str, index: int):
    """``atoms`` (metadata kept) carrying the energy (eV), virial (eV) and forces (eV/Å) of ``frame``.

    :param frame: the same configuration as labelled by a reference job.
    :param reference: name stored as ``label_reference``.
    :raises ValueError: if ``frame`` is not ``atoms`` (atom count, or positions differing by more
        than 1e-6 in fractional coordinates modulo lattice vectors), naming configuration ``index``.
    """
    same = len(frame) == len(atoms)
    if same:
        delta = np.linalg.solve(atoms.cell.array.T, (frame.positions - atoms.positions).T).T
        same = np.allclose(delta, np.round(delta), atol=1e-6)
    if not same:
        raise ValueError(f'labelled frame {index} does not match configuration {index} (positions differ)')
    for key in LABEL_KEYS:
        atoms.info.pop(key, None)
        atoms.arrays.pop(key, None)
    atoms.info.update({'energy': frame.info['energy'], 'virial': frame.info['virial'], 'label_reference': reference})
    atoms.arrays['forces'] = frame.arrays['forces']
    return atoms


@calcfunction
def attach_labels(configurations: TrainingSetData, labelled: TrainingSetData):
    """The ``configurations`` carrying the energy (eV), forces (eV/Å) and virial (eV) of a single-point job.

    :returns: ``training_set`` (the labelled configurations) and ``excluded`` (Dict
        ``{'excluded': [...]}``: those without a labelled frame, with index, candidate and reason).

    ``labelled`` holds the frames of :func:`prepare_single_points` (``md_step`` = index of the
    configuration). Metadata of the configurations (``candidate``, ``md_step``, ``similarity`` ...)
    is kept; the reference's name goes to ``label_reference``; the set's ``reference`` is ``labelled``'s
    (the parser records the potential's, see :func:`prepare_single_points`).

    :raises ValueError: if no configuration was labelled, or a frame's positions differ
        from its configuration's (modulo lattice vectors, 1e-6 in fractional coordinates).
    """
    originals = configurations.get_atoms()
    frames = {int(frame.info['md_step']): frame for frame in labelled.get_atoms()}
    out, excluded = [], []
    for index, atoms in enumerate(originals):
        frame = frames.get(index)
        if frame is None:
            excluded.append({'index': index, 'candidate': atoms.info.get('candidate'),
                             'reason': 'no labelled frame came back from the single-point job'})
            continue
        out.append(with_labels(atoms, frame, frame.info.get('reference', ''), index))
    if not out:
        raise ValueError(f'none of the {len(originals)} configurations was labelled')
    return {'training_set': TrainingSetData.from_atoms(out, reference=labelled.reference),
            'excluded': orm.Dict({'excluded': excluded})}


@calcfunction
def analyse_mlmd(trajectory: TrainingSetData, thermo: orm.ArrayData, parameters: orm.Dict, **optional):
    """Breaking step, pressure table (training run / ML run / rerun) and the forensics figure of a GAP MD run.

    ``optional`` may hold ``rerun`` (TrainingSetData: the reference labels of the same frames) and
    ``training_thermo`` (ArrayData with ``pressure`` in bar of the training-data run).

    :returns: ``summary`` (Dict: breaking_step, reference_volume, pressure table in bar, final
        volume, error of the GAP vs the rerun), ``forensics_plot`` (SinglefileData PNG) and
        ``breaking_step`` (Int) when the volume exceeded the threshold.
    """
    from aiida_mlfail.science import forensics, mlmd
    from aiida_mlfail.science import observables as obs

    p = parameters.get_dict()
    frames = trajectory.get_atoms()
    series = forensics.frame_series(frames, float(p['timestep']))
    steps, volumes = thermo.get_array('step'), thermo.get_array('volume')
    reference_volume = float(p['reference_volume'])
    factor = float(p['volume_factor'])
    break_step = obs.breaking_step(steps, volumes, reference_volume, factor)
    break_index = None
    if break_step is not None:
        later = np.flatnonzero(series['step'] >= break_step)
        break_index = int(later[0]) if later.size else len(frames)
    pressures = {'ML run': thermo.get_array('pressure')}
    summary = {'breaking_step': break_step, 'reference_volume': reference_volume, 'volume_factor': factor,
               'final_volume': float(volumes[-1]), 'n_frames': len(frames)}
    if 'training_thermo' in optional:
        pressures['training run'] = optional['training_thermo'].get_array('pressure')
    if 'rerun' in optional:
        reference = optional['rerun'].get_atoms()
        pressures['rerun'] = np.array([obs.pressure(len(a), t, a.get_volume(), a.info['virial'])
                                       for a, t in zip(reference, series['temperature'])])
        metrics, _ = compare_labels(reference, frames)
        summary['gap_vs_rerun'] = metrics
    summary['pressure'] = mlmd.pressure_table(pressures)
    histograms = forensics.before_after_histograms(frames, break_index) if break_index else None
    break_time = break_step * float(p['timestep']) / 1000.0 if break_step is not None else None
    png = forensics.forensics_png(series, histograms, break_time, title=f'GAP MD, {len(frames[0])} atoms')
    outputs = {'summary': orm.Dict(summary),
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
        ``lag_ps`` and ``msd_<species>`` in Å^2), ``diffusion`` (Dict: per species D in m^2/s and the
        fit range) and ``plot`` (PNG with the RDFs and MSDs).
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
            diffusion[symbol] = obs.diffusion_coefficient(lag, values)
        except ValueError as exc:
            diffusion[symbol] = {'error': str(exc)}
    ax_rdf.set_xlabel('r (Å)'), ax_rdf.set_ylabel('g(r)'), ax_rdf.legend(fontsize=8)
    ax_msd.set_xlabel('lag (ps)'), ax_msd.set_ylabel('MSD (Å$^2$)'), ax_msd.legend(fontsize=8)
    fig.suptitle(p.get('label', ''))
    return {'rdf': rdf, 'msd': msd, 'diffusion': orm.Dict(diffusion),
            'plot': orm.SinglefileData(io.BytesIO(figure_png(fig, dpi=100)), filename='structure_dynamics.png')}
