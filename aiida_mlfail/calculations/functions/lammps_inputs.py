"""calcfunctions writing the inputs of LAMMPS jobs: classical sampling, GAP MD with failure guards,
``rerun`` re-evaluations and single points (script, data file, parser settings)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from ase.io import write

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import lammps_md
from aiida_mlfail.science.potentials import ReferencePotential, files_message
from aiida_mlfail.science.references import lammps_reference


def file_digests(reference: ReferencePotential, potential_files: dict) -> dict:
    """``{file name: SHA-256 hex}`` of the potential files (``SinglefileData`` by any key, named by their
    ``filename``), which must be exactly the reference's ``files``.

    :raises ValueError: naming the files missing or not named by the reference.
    """
    digests = {}
    for node in potential_files.values():
        with node.open(mode='rb') as handle:
            digests[node.filename] = hashlib.sha256(handle.read()).hexdigest()
    message = files_message(reference.files, list(digests))
    if message:
        raise ValueError(message)
    return digests


def data_file_atoms(reference: ReferencePotential, potential_files: dict, symbols):
    """The atoms of the data file of an ``atom_style full`` reference (its node among ``potential_files``, by file
    name), checked against the chemical symbols ``symbols`` of the structure (``science.topology.check_data_file``);
    None for other atom styles.

    :raises ValueError: naming the data file when it does not match ``symbols`` (or has no topology).
    """
    from aiida_mlfail.science import topology

    if reference.atom_style != 'full':
        return None
    node = next(n for n in potential_files.values() if n.filename == reference.data_file)
    with node.open(mode='rb') as handle:
        text = handle.read().decode('utf-8', errors='replace')
    return topology.check_data_file(text, reference.data_file, list(reference.species), reference.lammps_commands(),
                                    list(symbols))


def structure_file(atoms, reference: ReferencePotential, potential_files: dict) -> orm.SinglefileData:
    """The start structure of a LAMMPS job of ``reference``: a data file written from ``atoms``
    (:data:`~aiida_mlfail.science.lammps_md.DATA_FILE`, ``initial_charges`` of ``atom_style charge`` set from the
    reference), or for ``atom_style full`` a one-frame dump (:data:`~aiida_mlfail.science.lammps_md.START_DUMP`,
    molecules whole: ``science.topology.whole_molecules``) read after the reference's data file, which is
    checked against ``atoms`` first (:func:`data_file_atoms`).

    :raises ValueError: naming the data file when it does not match ``atoms`` (or has no topology).
    """
    from aiida_mlfail.science import mlmd, topology

    type_map = list(reference.species)
    data = data_file_atoms(reference, potential_files, atoms.get_chemical_symbols())
    if data is not None:
        whole = topology.whole_molecules(atoms, data.arrays['mol-id'])
        return orm.SinglefileData(io.BytesIO(mlmd.write_dump([whole], type_map, [0], images=True).encode()),
                                  filename=lammps_md.START_DUMP)
    atoms = atoms.copy()
    atoms.set_initial_charges(reference.atom_charges(atoms.get_chemical_symbols()))
    buffer = io.StringIO()
    write(buffer, atoms, format='lammps-data', atom_style=reference.atom_style, specorder=type_map, masses=True,
          units='metal')
    return orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename=lammps_md.DATA_FILE)


@calcfunction
def prepare_sampling(structure: orm.StructureData, potential: orm.Dict, state_point: orm.Dict, md: orm.Dict,
                     **potential_files):
    """LAMMPS inputs of one sampling run: the script, the ``read_data`` file and the parser settings.

    :param potential_files: the ``SinglefileData`` of the reference's ``files`` (inputs, for provenance and
        the reference id: their content is hashed into it).
    :returns: ``script`` and ``structure_file`` (SinglefileData, see ``structure_file`` of this module),
        ``settings`` (Dict with ``type_map``, ``frame_info`` and ``reference``: the potential's
        ``science.references.lammps_reference``, which the
        parser records on the sampled ``training_set``).
    """
    reference = ReferencePotential.from_dict(potential.get_dict())
    digests = file_digests(reference, potential_files)
    atoms = structure.get_ase()
    symbols = atoms.get_chemical_symbols()
    reference.check_species(symbols)
    point = lammps_md.normalise_state_point(state_point.get_dict(), symbols)
    settings = lammps_md.normalise_md(md.get_dict())
    frame_info = {'config_type': point['label'], 'state_point': point['label'], 'temperature': point['temperature'],
                  'ensemble': point['ensemble'], 'reference': reference.name}
    return {
        'script': orm.SinglefileData(io.BytesIO(lammps_md.sampling_script(reference, point, settings).encode()),
                                     filename='input.in'),
        'structure_file': structure_file(atoms, reference, potential_files),
        'settings': orm.Dict({'type_map': list(reference.species), 'frame_info': frame_info,
                              'reference': lammps_reference(potential.get_dict(), digests)}),
    }


@calcfunction
def prepare_mlmd(structure: orm.StructureData, potential, parameters: orm.Dict, training_set=None):
    """LAMMPS inputs of a GAP MD run with failure guards (``science.mlmd``).

    The reference volume of the volume guard is ``parameters['reference_volume']`` or the start
    structure's volume. The distance guard (``guards.min_distance``) is resolved per species pair
    (:func:`~aiida_mlfail.science.mlmd.guard_distance_record`): a number or the pairs the user gave stay;
    the others are ``GUARD_DISTANCE_FRACTION`` (0.35) x the shortest distance of the pair in
    ``training_set`` (the GAP's training set, optional), or of the covalent-radii estimate without it.

    :param training_set: ``TrainingSetData`` the GAP was fitted to, or ``None``.
    :returns: ``script``, ``structure_file``, ``settings`` (type map, frame info) and ``guard_distances``
        (Dict: ``min_distance`` Å or ``{'A-B': Å}``, ``source``, ``given``).
    """
    from aiida_mlfail.science import mlmd

    p = mlmd.normalise_mlmd(parameters.get_dict())
    atoms = structure.get_ase()
    type_map = [s for s in potential.species if s in set(atoms.get_chemical_symbols())]
    reference_volume = float(p.get('reference_volume', atoms.get_volume()))
    guards = mlmd.guard_distance_record(
        p['guards']['min_distance'], type_map, training_set.get_atoms() if training_set is not None else None,
        f'training set <{training_set.uuid}>' if training_set is not None else 'training set')
    p['guards']['min_distance'] = guards['min_distance']
    script = mlmd.mlmd_script(potential.lammps_pair_commands(type_map), type_map, p, len(atoms), reference_volume)
    buffer = io.StringIO()
    write(buffer, atoms, format='lammps-data', atom_style='atomic', specorder=type_map, masses=True, units='metal')
    return {
        'script': orm.SinglefileData(io.BytesIO(script.encode()), filename='input.in'),
        'structure_file': orm.SinglefileData(io.BytesIO(buffer.getvalue().encode()), filename=lammps_md.DATA_FILE),
        'settings': orm.Dict({'type_map': type_map, 'reference_volume': reference_volume,
                              'checkpoint_interval': int(p['checkpoint_interval']),
                              'frame_info': {'config_type': f"gap_md_{p['ensemble'].lower()}",
                                             'potential_label': potential.label}}),
        'guard_distances': orm.Dict(guards),
    }


@calcfunction
def continue_mlmd(script: orm.SinglefileData, settings: orm.Dict, step: orm.Int):
    """The script and settings of a GAP MD job continuing from the checkpoint at ``step`` of an earlier job of the
    same run (:func:`~aiida_mlfail.science.checkpoints.continuation_script`; the job gets the earlier job's remote
    folder as ``parent_folder``).

    :returns: ``script`` (``input.in``) and ``settings`` (the given ones with ``restart_step`` = ``step``).
    :raises ValueError: for a script without checkpoints or a step that is not positive.
    """
    from aiida_mlfail.science import checkpoints

    text = checkpoints.continuation_script(script.get_content(), step.value)
    return {'script': orm.SinglefileData(io.BytesIO(text.encode()), filename='input.in'),
            'settings': orm.Dict({**settings.get_dict(), 'restart_step': step.value})}


@calcfunction
def join_md_segments(boundaries: orm.List, **segments):
    """Frames and thermo of a GAP MD run continued from checkpoints, joined without repeats
    (:func:`~aiida_mlfail.science.checkpoints.join_segments`: job i keeps the steps after the checkpoint it continued
    from, up to the checkpoint the next job continued from).

    :param boundaries: the checkpoint step each continuation started from (one fewer than the jobs).
    :param segments: ``thermo_<i>`` (``ArrayData`` of the job's thermo series) and ``training_set_<i>`` (its frames,
        ``md_step`` in each configuration's metadata), i = 0, 1, ... in the order the jobs ran; either may be
        missing for a job killed before it wrote any (the last job's thermo is required).
    :returns: ``thermo`` (``ArrayData``, the arrays and ``units`` of the jobs') and ``training_set`` (if any frame;
        the reference of the jobs' sets). The frames are chosen by the ``md_step`` of the sets' stored metadata and
        copied as text (``TrainingSetData.from_selection``): no frame is parsed in the daemon.
    :raises ValueError: when the joined steps repeat or decrease.
    """
    from aiida_mlfail.science import checkpoints

    count = len(boundaries.get_list()) + 1
    thermos = [segments.get(f'thermo_{i}') for i in range(count)]
    last = next(t for t in reversed(thermos) if t is not None)
    rows = [[(step, (i, k)) for k, step in enumerate(t.get_array('step'))] if t is not None else []
            for i, t in enumerate(thermos)]
    kept = checkpoints.join_segments(rows, boundaries.get_list())
    thermo = orm.ArrayData()
    for name in last.get_arraynames():
        arrays = [t.get_array(name) if t is not None else None for t in thermos]
        thermo.set_array(name, np.array([arrays[i][k] for i, k in kept]))
    thermo.base.attributes.set('units', last.base.attributes.get('units', {}))
    result = {'thermo': thermo}
    sets = [segments.get(f'training_set_{i}') for i in range(count)]
    frames = [[(c['md_step'], (s, k)) for k, c in enumerate(s.configurations)] if s is not None else [] for s in sets]
    joined = checkpoints.join_segments(frames, boundaries.get_list())
    if joined:  # the frames' text copied, not parsed: nothing heavy in the daemon (issue 16)
        reference = next(s for s in reversed(sets) if s is not None).reference
        result['training_set'] = TrainingSetData.from_selection(joined, reference=reference)
    return result


def _rerun_inputs(frames, steps, reference: ReferencePotential, info: dict, potential_files: dict) -> dict:
    """LAMMPS ``rerun`` inputs (script, data file, dump, settings) re-evaluating ``frames`` with ``reference``."""
    from aiida_mlfail.science import mlmd

    reference.check_species(set().union(*(a.get_chemical_symbols() for a in frames)))
    digests = file_digests(reference, potential_files)
    type_map = list(reference.species)
    data = data_file_atoms(reference, potential_files, frames[0].get_chemical_symbols())
    if data is not None:  # molecules whole, for consistent image flags (science.topology.whole_molecules)
        from aiida_mlfail.science.topology import whole_molecules

        frames = [whole_molecules(atoms, data.arrays['mol-id']) for atoms in frames]
    every = int(np.gcd.reduce(np.diff(steps))) if len(steps) > 1 else 1
    script = mlmd.rerun_script(reference.lammps_commands(), reference.atom_style, max(every, 1),
                               topology_file=reference.data_file)
    return {
        'script': orm.SinglefileData(io.BytesIO(script.encode()), filename='input.in'),
        'structure_file': structure_file(frames[0], reference, potential_files),
        'dump_file': orm.SinglefileData(io.BytesIO(mlmd.write_dump(frames, type_map, steps,
                                                                   images=data is not None).encode()),
                                        filename='ml_frames.dump'),
        'settings': orm.Dict({'type_map': type_map, 'frame_info': {**info, 'reference': reference.name},
                              'reference': lammps_reference(reference.to_dict(), digests)}),
    }


@calcfunction
def prepare_rerun(trajectory: TrainingSetData, potential: orm.Dict, **potential_files):
    """LAMMPS inputs re-evaluating every frame of an ML trajectory with a classical reference (``rerun``).

    ``potential_files``: the ``SinglefileData`` of the reference's ``files``."""
    frames = trajectory.get_atoms()
    return _rerun_inputs(frames, [a.info['md_step'] for a in frames],
                         ReferencePotential.from_dict(potential.get_dict()),
                         {'config_type': 'rerun'}, potential_files)


@calcfunction
def prepare_single_points(configurations: TrainingSetData, potential: orm.Dict, **potential_files):
    """LAMMPS inputs of classical single points of all ``configurations`` in one job (``rerun``, frame i = step i).

    All configurations must have the same atoms in the same order (one LAMMPS data file); positions
    are wrapped into the cell first. The labelled frames come back with ``md_step`` = their index, in a
    set whose ``reference`` is the potential's (``settings['reference']``, recorded by the parser).
    ``potential_files``: the ``SinglefileData`` of the reference's ``files``.
    """
    frames = configurations.get_atoms()
    for atoms in frames:
        atoms.wrap()
    return _rerun_inputs(frames, list(range(len(frames))), ReferencePotential.from_dict(potential.get_dict()),
                         {'config_type': 'single_point'}, potential_files)
