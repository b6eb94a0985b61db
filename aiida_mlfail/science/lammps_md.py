"""LAMMPS classical MD sampling: input scripts and AiiDA-free parsing of their outputs.

Conventions (LAMMPS ``units metal``, https://docs.lammps.org/units.html): energies eV, distances Å,
time ps, pressure bar. The labels written for every sampled frame are the potential energy (eV),
the forces (eV/Å), the per-atom energies (``compute pe/atom``, eV) and the virial
W = V P_vir / nktv2p (eV, 3 x 3, sign as in ASE/extxyz ``virial``), where P_vir is the pressure
tensor of ``compute pressure NULL virial`` (kinetic part excluded, bar) and
nktv2p = 1.6021765e6 bar Å^3 / eV the LAMMPS metal conversion factor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator

import numpy as np
from ase import Atoms

from aiida_mlfail.science import checks
from aiida_mlfail.science.potentials import ReferencePotential
from aiida_mlfail.science.structures import density_to_volume

#: LAMMPS ``metal`` conversion of eV/Å^3 to bar (force.cpp, ``nktv2p``).
NKTV2P_METAL = 1.6021765e6

# File names used inside a sampling job.
#: The start structure (LAMMPS data file).
DATA_FILE = 'structure.data'
#: The start positions and box of a job of an ``atom_style full`` reference (a dump read by ``read_dump`` after
#: ``read_data`` of the reference's data file, which holds the topology).
START_DUMP = 'start.dump'
#: The sampled frames (LAMMPS custom dump: positions, forces, per-atom energies).
DUMP_FILE = 'frames.dump'
#: Per-frame labels (energy, virial) written by ``fix print``.
LABELS_FILE = 'labels.dat'

#: Default MD settings; times in fs, intervals in steps.
MD_DEFAULTS = {
    'timestep': 2.0,
    'equilibration_steps': 1000,
    'production_steps': 2000,
    'sampling_interval': 100,
    'thermo_interval': 10,
    'seed': 12345,
    'thermostat_damping': 100.0,
    'barostat_damping': 1000.0,
}

#: Columns of the thermo series, in order, with units.
THERMO_COLUMNS = (('step', ''), ('time', 'ps'), ('temperature', 'K'), ('potential_energy', 'eV'),
                  ('pressure', 'bar'), ('volume', 'Å^3'))


def normalise_state_point(state_point: dict, symbols) -> dict:
    """Check a state point and return it with the volume resolved.

    :param state_point: ``temperature`` (K, > 0), ``ensemble`` (``NVT`` default or ``NPT``), and for
        NVT either ``volume`` (Å^3) or ``density`` (g/cm^3), for NPT ``pressure`` (bar) and optionally
        a starting ``volume``/``density``; optional ``label``.
    :param symbols: chemical symbols of the structure (to convert a density to a volume).
    :returns: dict with ``temperature``, ``ensemble``, ``volume`` (may be ``None`` for NPT with no
        starting volume), ``pressure`` (NPT only) and ``label``.
    :raises ValueError: naming the offending value (unknown key, non-positive T/volume/density,
        NPT without pressure, both volume and density).
    """
    allowed = {'temperature', 'ensemble', 'volume', 'density', 'pressure', 'label'}
    checks.known_keys(state_point, allowed, 'state point')
    if 'temperature' not in state_point:
        raise ValueError(f'state point {state_point!r} has no temperature')
    temperature = checks.number(state_point['temperature'], 'temperature', gt=0, unit='K')
    ensemble = state_point.get('ensemble', 'NVT')
    ensemble = checks.choice(ensemble.upper() if isinstance(ensemble, str) else ensemble, 'ensemble', ('NVT', 'NPT'))
    if 'volume' in state_point and 'density' in state_point:
        raise ValueError(f'state point {state_point!r} gives both volume and density')
    volume = None
    if 'volume' in state_point:
        volume = checks.number(state_point['volume'], 'volume', gt=0, unit='Å^3')
    elif 'density' in state_point:
        density = checks.number(state_point['density'], 'density', gt=0, unit='g/cm^3')
        volume = density_to_volume(symbols, density)
    result = {'temperature': temperature, 'ensemble': ensemble, 'volume': volume}
    if ensemble == 'NPT':
        if 'pressure' not in state_point:
            raise ValueError(f'NPT state point {state_point!r} needs a pressure (bar)')
        result['pressure'] = checks.number(state_point['pressure'], 'pressure', unit='bar')
    elif volume is None:
        raise ValueError(f'NVT state point {state_point!r} needs a volume (Å^3) or a density (g/cm^3)')
    vol_label = f'_V{volume:.0f}' if volume else ''
    p_label = f"_P{result['pressure']:g}" if ensemble == 'NPT' else ''
    label = state_point.get('label')
    if label is not None and not (isinstance(label, str) and label.isidentifier()):
        raise ValueError(f'state point label must be a Python identifier (letters, digits, _), got {label!r}')
    result['label'] = label or re.sub(r'\W', '_', f'{ensemble.lower()}_T{temperature:g}{vol_label}{p_label}')
    return result


def normalise_md(md: dict) -> dict:
    """Merge ``md`` into :data:`MD_DEFAULTS` and check it.

    :raises ValueError: for an unknown key, a non-positive timestep/interval/damping, negative step
        counts, or a sampling interval that samples no frame.
    """
    checks.known_keys(md, MD_DEFAULTS, 'MD setting')
    merged = {**MD_DEFAULTS, **md}
    for key in ('timestep', 'thermostat_damping', 'barostat_damping'):
        merged[key] = checks.number(merged[key], key, gt=0, unit='fs')
    for key in ('sampling_interval', 'thermo_interval', 'seed'):
        merged[key] = checks.integer(merged[key], key, gt=0)
    for key in ('equilibration_steps', 'production_steps'):
        merged[key] = checks.integer(merged[key], key, ge=0)
    if merged['production_steps'] < merged['sampling_interval']:
        raise ValueError(
            f"production_steps ({merged['production_steps']}) < sampling_interval ({merged['sampling_interval']}): "
            'no frame would be sampled'
        )
    return merged


def sampling_script(potential: ReferencePotential, state_point: dict, md: dict, data_file: str = DATA_FILE) -> str:
    """LAMMPS input script of one sampling run (equilibration, then production with sampled frames).

    :param potential: the reference potential (its ``species`` give the type order).
    :param state_point: output of :func:`normalise_state_point`.
    :param md: output of :func:`normalise_md` (timestep and dampings in fs).
    :param data_file: the ``read_data`` file holding the start structure (``atom_style`` atomic or charge; for
        ``full`` see :func:`read_structure_commands`).
    :returns: the script text. Frames go to :data:`DUMP_FILE` (id type x y z fx fy fz c_pe_atom)
        and their energy / volume / virial pressure tensor (bar) to :data:`~aiida_mlfail.science.lammps_md.LABELS_FILE`.
    """
    dt_ps = float(md['timestep']) / 1000.0
    t = state_point['temperature']
    t_damp = float(md['thermostat_damping']) / 1000.0
    p_damp = float(md['barostat_damping']) / 1000.0
    n_equil = int(md['equilibration_steps'])
    n_prod = int(md['production_steps'])
    every = int(md['sampling_interval'])
    lines = [
        f"# aiida-mlfail classical sampling: {state_point['label']}",
        'units metal',
        f'atom_style {potential.atom_style}',
        'boundary p p p',
        *read_structure_commands(potential.atom_style, data_file, potential.data_file),
    ]
    if state_point.get('volume'):
        lines += [
            f"variable scale equal ({state_point['volume']:.10g}/vol)^(1.0/3.0)",
            'change_box all x scale ${scale} y scale ${scale} z scale ${scale} remap',
        ]
    # the default neighbour settings first, so that a reference's own neighbor/neigh_modify commands win
    lines += [
        'neighbor 2.0 bin',
        'neigh_modify every 1 delay 0 check yes',
        *potential.lammps_commands(),
        f'timestep {dt_ps:.10g}',
        f"velocity all create {t:.10g} {int(md['seed'])} mom yes rot no dist gaussian",
        *label_computes(),
        *thermo_commands(int(md['thermo_interval'])),
    ]
    if state_point['ensemble'] == 'NPT':
        lines.append(
            f"fix ensemble all npt temp {t:.10g} {t:.10g} {t_damp:.10g} iso {state_point['pressure']:.10g} "
            f"{state_point['pressure']:.10g} {p_damp:.10g}"
        )
    else:
        lines.append(f'fix ensemble all nvt temp {t:.10g} {t:.10g} {t_damp:.10g}')
    if n_equil:
        lines.append(f'run {n_equil}')
    lines += [*frame_output_commands(every), f'run {n_prod}']
    return '\n'.join(lines) + '\n'


def read_structure_commands(atom_style: str, data_file: str = DATA_FILE, topology_file: str | None = None) -> list[str]:
    """The commands that read the start structure of a job.

    ``atom_style`` atomic or charge: ``read_data data_file`` (a data file written from the structure). ``full``:
    ``read_data topology_file`` (the reference's own data file: types, charges, molecules, bonds, angles ...),
    then ``read_dump`` of :data:`START_DUMP` (step 0, written by ``science.mlmd.write_dump`` with image flags),
    which replaces the positions and the box by the structure's (atom IDs of the dump = atom IDs of the data
    file).

    :raises ValueError: for ``full`` without ``topology_file``.
    """
    if atom_style != 'full':
        return [f'read_data {data_file}']
    if not topology_file:
        raise ValueError('atom_style full needs the data file with the topology (the reference\'s data_file)')
    return [f'read_data {topology_file}', f'read_dump {START_DUMP} 0 x y z ix iy iz box yes']


def label_computes(atomic_energies: bool = True) -> list[str]:
    """Computes and variables behind the frame labels: per-atom energy (optional), virial pressure tensor."""
    return [
        *(['compute pe_atom all pe/atom'] if atomic_energies else []),
        'compute virial all pressure NULL virial',
        'variable pe equal pe',
        'variable vol equal vol',
        *[f'variable p{k} equal c_virial[{i + 1}]' for i, k in enumerate(('xx', 'yy', 'zz', 'xy', 'xz', 'yz'))],
    ]


def thermo_commands(every: int) -> list[str]:
    """Thermo output parsed by :func:`parse_thermo` (step time temp pe press vol, every ``every`` steps)."""
    return ['thermo_style custom step time temp pe press vol', 'thermo_modify norm no flush yes format float %.10g',
            f'thermo {every}']


def frame_output_commands(every: int, *, atomic_energies: bool = True, velocities: bool = False) -> list[str]:
    """Dump (:data:`DUMP_FILE`) and label file (:data:`~aiida_mlfail.science.lammps_md.LABELS_FILE`) of a frame every
    ``every`` steps.

    Needs the computes of :func:`label_computes`. Velocities are dumped in Å/ps when asked.
    """
    columns = ('id type x y z' + (' vx vy vz' if velocities else '') + ' fx fy fz'
               + (' c_pe_atom' if atomic_energies else ''))
    return [
        f'dump frames all custom {every} {DUMP_FILE} {columns}',
        'dump_modify frames sort id format float %.12g',
        f'fix labels all print {every} '
        '"$(step) ${pe} ${vol} ${pxx} ${pyy} ${pzz} ${pxy} ${pxz} ${pyz}" '
        f'file {LABELS_FILE} screen no title "# step pe_eV vol_A3 pxx pyy pzz pxy pxz pyz (virial pressure, bar)"',
    ]


def parse_dump(text: str, allow_truncated: bool = False) -> list[dict]:
    """Parse a LAMMPS ``dump custom`` text (orthogonal or triclinic boxes): ``list(iter_dump(...))``.

    :returns: one dict per frame, as :func:`~aiida_mlfail.science.lammps_md.iter_dump` yields them.
    :raises ValueError: on a truncated or malformed frame.
    """
    return list(iter_dump(text.splitlines(), allow_truncated=allow_truncated))


def iter_dump(lines: Iterable[str], allow_truncated: bool = False) -> Iterator[dict]:
    """The frames of a LAMMPS ``dump custom`` (orthogonal or triclinic boxes) one at a time, from an iterable of
    lines (a text file handle), so that a long dump is never held in memory as a whole.

    With ``allow_truncated`` a cut-off last frame (a run that died while writing) is dropped instead of raising.
    Box conversion: the LAMMPS ``dump`` doc (bounding box of a triclinic cell, ``xlo_bound`` ... ``yz``).

    :returns: one dict per frame: ``step`` (int), ``cell`` (3 x 3, Å, rows are the LAMMPS
        a, b, c vectors), ``origin`` (3,), and one array per column (``id``, ``type``, ``x`` ...,
        ``c_pe_atom``), rows sorted by atom id.
    :raises ValueError: on a truncated or malformed frame.
    """
    lines = iter(lines)
    number = 0  # lines consumed
    for line in lines:
        number += 1
        if not line.startswith('ITEM: TIMESTEP'):
            continue
        first = number
        try:
            header = [next(lines) for _ in range(8)]
            number += 8
            step = int(header[0])
            n_atoms = int(header[2])
            box_header = header[3]
            bounds = np.array([[float(v) for v in header[4 + k].split()] for k in range(3)])
            columns = header[7].split()[2:]
            rows = [next(lines).split() for _ in range(n_atoms)]
            number += n_atoms
        except (StopIteration, IndexError, ValueError) as exc:
            if allow_truncated:
                return
            raise ValueError(f'truncated or malformed dump frame starting at line {first}') from exc
        if any(len(r) != len(columns) for r in rows):
            if allow_truncated:
                return
            raise ValueError(f'dump frame at step {step}: rows do not have {len(columns)} columns')
        data = np.array(rows, dtype=float)
        order = np.argsort(data[:, columns.index('id')]) if 'id' in columns else np.arange(n_atoms)
        data = data[order]
        if 'xy' in box_header:
            (xlo_b, xhi_b, xy), (ylo_b, yhi_b, xz), (zlo, zhi, yz) = bounds
            xlo = xlo_b - min(0.0, xy, xz, xy + xz)
            xhi = xhi_b - max(0.0, xy, xz, xy + xz)
            ylo = ylo_b - min(0.0, yz)
            yhi = yhi_b - max(0.0, yz)
        else:
            (xlo, xhi), (ylo, yhi), (zlo, zhi) = bounds[:, :2]
            xy = xz = yz = 0.0
        cell = np.array([[xhi - xlo, 0.0, 0.0], [xy, yhi - ylo, 0.0], [xz, yz, zhi - zlo]])
        frame = {'step': step, 'cell': cell, 'origin': np.array([xlo, ylo, zlo])}
        for k, name in enumerate(columns):
            frame[name] = data[:, k].astype(int) if name in ('id', 'type') else data[:, k]
        yield frame


def parse_labels(text: str) -> dict[int, dict]:
    """Parse the :data:`~aiida_mlfail.science.lammps_md.LABELS_FILE` written by ``fix print``.

    :returns: ``{step: {'energy': eV, 'volume': Å^3, 'virial_pressure': (6,) bar}}``.
    :raises ValueError: on a malformed line.
    """
    labels = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        parts = line.split()
        if len(parts) != 9:
            raise ValueError(f'{LABELS_FILE} line {number}: expected 9 values, got {len(parts)}: {line!r}')
        values = [float(v) for v in parts]
        labels[int(values[0])] = {'energy': values[1], 'volume': values[2], 'virial_pressure': np.array(values[3:])}
    return labels


def virial_from_pressure(pressure_voigt, volume: float) -> np.ndarray:
    """Virial tensor (eV, 3 x 3, ASE sign) from a LAMMPS virial pressure (bar, xx yy zz xy xz yz) and volume (Å^3).

    W = V P / nktv2p (LAMMPS ``compute pressure`` docs): positive pressure = positive virial.
    """
    xx, yy, zz, xy, xz, yz = np.asarray(pressure_voigt, dtype=float)
    tensor = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    return tensor * volume / NKTV2P_METAL


def parse_thermo(text: str) -> dict[str, np.ndarray]:
    """Thermo series of a LAMMPS log/screen output (``thermo_style custom`` with a subset of step time temp pe
    press vol).

    Concatenates every run block (steps of consecutive runs continue; a repeated first row of the
    next run is dropped).

    :returns: dict keyed by :data:`~aiida_mlfail.science.lammps_md.THERMO_COLUMNS` names, 1-D float arrays.
    :raises ValueError: if no thermo block is found.
    """
    keys = {'Step': 'step', 'Time': 'time', 'Temp': 'temperature', 'PotEng': 'potential_energy',
            'Press': 'pressure', 'Volume': 'volume'}
    rows: list[list[float]] = []
    header = columns = None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == 'Step' and all(p in keys for p in parts):
            if columns is not None and parts != columns:
                raise ValueError(f'thermo columns change between runs: {columns} then {parts}')
            header = columns = parts
            continue
        if header is None:
            continue
        if len(parts) != len(header):
            header = None if line.startswith('Loop time') else header
            continue
        try:
            values = [float(v) for v in parts]
        except ValueError:
            header = None
            continue
        if rows and values[0] == rows[-1][header.index('Step')]:
            continue
        rows.append(values)
    if not rows:
        raise ValueError('no thermo output found')
    table = np.array(rows)
    return {keys[name]: table[:, k] for k, name in enumerate(columns)}


def frames_to_atoms(frames: Iterable[dict], labels: dict[int, dict], type_map, info: dict | None = None) -> list[Atoms]:
    """Labelled configurations from parsed dump frames and their labels.

    Frames without a label line (the dump writes the first step of a run, ``fix print`` does
    not) are dropped.

    :param type_map: chemical symbol of LAMMPS type 1, 2, ...
    :param info: extra per-configuration metadata (state point, config_type ...) copied into ``atoms.info``.
    :returns: list of ``Atoms`` with ``info['energy']`` (eV), ``info['virial']`` (3 x 3, eV),
        ``info['md_step']``, ``arrays['forces']`` (eV/Å), and where dumped ``arrays['atomic_energies']`` (eV)
        and ``arrays['velocities']`` (Å/ps, LAMMPS metal units, not ASE's).
    :raises ValueError: if a frame's atom type is not in ``type_map`` or the label volume does not
        match the dumped box (a sign of mixed-up files).
    """
    out = []
    for frame in frames:
        label = labels.get(frame['step'])
        if label is None:
            continue
        types = frame['type']
        if types.min() < 1 or types.max() > len(type_map):
            raise ValueError(f'atom type {types.max()} not in type map {list(type_map)}')
        symbols = [type_map[t - 1] for t in types]
        positions = np.column_stack([frame['x'], frame['y'], frame['z']]) - frame['origin']
        atoms = Atoms(symbols=symbols, positions=positions, cell=frame['cell'], pbc=True)
        volume = atoms.get_volume()
        if not math.isclose(volume, label['volume'], rel_tol=1e-6):
            raise ValueError(f"step {frame['step']}: dumped box volume {volume} != printed volume {label['volume']}")
        atoms.info.update(info or {})
        atoms.info['md_step'] = int(frame['step'])
        atoms.info['energy'] = float(label['energy'])
        atoms.info['virial'] = virial_from_pressure(label['virial_pressure'], volume)
        atoms.arrays['forces'] = np.column_stack([frame['fx'], frame['fy'], frame['fz']])
        if 'c_pe_atom' in frame:
            atoms.arrays['atomic_energies'] = np.asarray(frame['c_pe_atom'], dtype=float)
        if 'vx' in frame:
            atoms.arrays['velocities'] = np.column_stack([frame['vx'], frame['vy'], frame['vz']])  # Å/ps
        out.append(atoms)
    return out


#: The LAMMPS error of PPPM's grid check (``src/KSPACE/pppm.cpp``): an atom moved further in one step than the
#: neighbour skin allows, usually atoms overlapping at the start, too large a timestep, or an exploding potential.
PPPM_OUT_OF_RANGE = 'Out of range atoms - cannot compute PPPM'


def _non_finite_quantity(atoms: Atoms) -> str | None:
    """Name of the first non-finite quantity of a configuration (positions, cell, energy, forces ...), or ``None``."""
    checks = [('positions', atoms.positions), ('cell', atoms.cell[:])]
    checks += [(key, atoms.info[key]) for key in ('energy', 'virial') if key in atoms.info]
    checks += [(key, atoms.arrays[key]) for key in ('forces', 'atomic_energies', 'velocities') if key in atoms.arrays]
    for name, value in checks:
        if not np.all(np.isfinite(np.asarray(value, dtype=float))):
            return name
    return None


def split_finite(configurations: list[Atoms]) -> tuple[list[Atoms], dict | None]:
    """The configurations before the first one holding a NaN or infinite value, and where that one is.

    :param configurations: parsed frames (``frames_to_atoms``), in step order.
    :returns: ``(finite, bad)``: the leading finite configurations and ``None``, or, at the first bad one,
        ``{'step': md_step, 'quantity': 'energy' | 'forces' | 'virial' | 'positions' | 'cell' |
        'atomic_energies' | 'velocities'}`` (that one and every later configuration are left out).
    """
    for index, atoms in enumerate(configurations):
        quantity = _non_finite_quantity(atoms)
        if quantity is not None:
            return configurations[:index], {'step': atoms.info.get('md_step'), 'quantity': quantity}
    return list(configurations), None


def first_non_finite_thermo(thermo: dict) -> dict | None:
    """The first thermo row with a NaN or infinite value: ``{'step': int | None, 'quantity': column name}``,
    else ``None``.

    :param thermo: the arrays of :func:`parse_thermo` (or any dict of equally long 1-D arrays with ``step``).
    """
    names = [name for name in thermo if name != 'step']
    if not names:
        return None
    bad = ~np.isfinite(np.column_stack([np.asarray(thermo[name], dtype=float) for name in names]))
    rows = np.flatnonzero(bad.any(axis=1))
    if not rows.size:
        return None
    row = int(rows[0])
    step = thermo.get('step')
    return {'step': None if step is None or not np.isfinite(step[row]) else int(step[row]),
            'quantity': names[int(np.flatnonzero(bad[row])[0])]}


def json_safe(value):
    """``value`` with every NaN / infinite float (also inside dicts, lists, tuples) replaced by ``None``, so
    that it can be stored in an AiiDA ``Dict`` (JSON has no NaN)."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
