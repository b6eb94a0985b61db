"""GAP-driven MD in LAMMPS with failure guards, stop classification, and reference reruns.

The scripts use the standard GAP commands (``pair_style quip`` + ``pair_coeff``), so they run in
a LAMMPS built with ML-QUIP and through the ``mlfail-lmp`` bridge alike. Guards are
``fix halt ... error soft`` commands (LAMMPS docs: https://docs.lammps.org/fix_halt.html): a
blow-up ends the run cleanly at the offending step with the guard's fix ID in the log instead of a
"Lost atoms" error. Units: LAMMPS ``metal`` (eV, Å, ps, bar); times given here in fs.
"""

from __future__ import annotations

import re

import numpy as np

from aiida_mlfail.science import checks, lammps_md
from aiida_mlfail.science.checkpoints import ENERGY_START_VARIABLE, checkpoint_commands
from aiida_mlfail.science.forensics import BREAKING_FACTOR
from aiida_mlfail.science.pair_distances import (
    GUARD_DISTANCE_FRACTION,
    normalise_pair_distances,
    pair_label,
    resolve_pair_distances,
)
from aiida_mlfail.science.potentials import mass_commands

#: Default MLMD settings (times in fs, damping in fs, pressure in bar). ``checkpoint_interval``: steps between the
#: LAMMPS restart files of :func:`~.checkpoints.checkpoint_commands` (0: none; else at least ``thermo_interval``,
#: see :func:`~.checkpoints.checkpoint_step`); a long run is continued from the last one after a walltime stop or a
#: cancellation (``LammpsRestartWorkChain.continue_from``).
MLMD_DEFAULTS = {
    'ensemble': 'NVT',
    'temperature': 1400.0,
    'pressure': 1.0,
    'timestep': 2.0,
    'steps': 1000,
    'dump_interval': 10,
    'thermo_interval': 10,
    'seed': 4242,
    'thermostat_damping': 100.0,
    'barostat_damping': 1000.0,
    'atomic_energies': False,
    'checkpoint_interval': 1000,
}

#: Default failure guards: volume factor x reference volume, minimum interatomic distance per species
#: pair (``None``: per-pair defaults, see below; or a number in Å for every pair; or ``{'A-B': Å}``),
#: temperature factor x target temperature, and the largest change of the potential energy per atom from its value at
#: the start of the run (eV/atom, ``|pe(step) - pe(start)| / N``; the guard ``energy_runaway`` also trips
#: on a NaN energy). The energy guard is relative because a GAP fitted to DFT labels predicts absolute
#: energies on the DFT scale (about -850 eV/atom for GTH-PBE NaCl), so no absolute bound fits every
#: potential. The default, 5 eV/atom, is ~35 times the largest change measured in normal runs: 0.14 eV/atom
#: in 300 steps of 64-ion molten NaCl at 1400 K with the classical reference
#: (``tests/fixtures/lammps_sample``), 0.16 eV/atom for the tiny test GAP heating 8 ions from 1500 K to
#: 3600 K (``tests/fixtures/explore/novel``), 0.25 eV/atom for the -850 eV/atom-shifted tiny GAP over 200
#: steps at 300 K. A blow-up: the GAP fitted to 3 frames (``tests/fixtures/gap_fit_ok``) on 64-ion molten
#: NaCl at 1400 K with 8 fs steps (distance and temperature guards off) falls into an unphysical well, pe/N
#: down by 0.9 eV at step 50, 4.8 eV at step 115 and 11.6 eV at step 195; this guard stops it at step 119
#: (``tests/engines/test_energy_guard.py``), the step at which the temperature (5930 K) also passes its
#: default guard (4 x 1400 K). A local blow-up in a large cell is diluted per atom: the distance and
#: temperature guards are meant to catch those.
#:
#: ``min_distance`` ``None`` resolves per species pair (:func:`guard_distances`):
#: :data:`~aiida_mlfail.science.pair_distances.GUARD_DISTANCE_FRACTION` (0.35) x the shortest distance of
#: the pair in the training data when the caller has them (the explorer: its reference configurations),
#: else x the covalent-radii estimate of :func:`~aiida_mlfail.science.structures.default_pair_distances`
#: (GAP MD without training data). A mapping ``{'A-B': Å}`` sets the pairs it names, the others get
#: that default; a number is one threshold for every pair (the former behaviour).
#:
#: ``volume_factor`` is the guard that halts the run; the breaking step of the forensics is separate
#: (``breaking_factor`` of :func:`normalise_mlmd`, default
#: :data:`~aiida_mlfail.science.forensics.BREAKING_FACTOR` 1.5 x the equilibrium volume), so a guard set
#: higher (e.g. 3.0 in studies) keeps the frames after the break. With both at 1.5 and no separate
#: equilibrium volume the run halts at the break (the demo's behaviour).
GUARD_DEFAULTS = {'volume_factor': 1.5, 'min_distance': None, 'temperature_factor': 4.0,
                  'max_energy_change_per_atom': 5.0}

#: Guard keys that were renamed: old key -> (new key, what changed). Given by a user, they are refused
#: with a message naming the new key.
RENAMED_GUARDS = {
    'max_energy_per_atom': ('max_energy_change_per_atom',
                            'the energy guard is now relative to the potential energy at the start of the run '
                            '(eV/atom)'),
}

#: Stop reasons, in the order the parser checks them, with the guard fix ID that signals each.
GUARD_FIX_IDS = {
    'volume_blowup': 'guard_volume',
    'too_close_atoms': 'guard_distance',
    'temperature_runaway': 'guard_temperature',
    'energy_runaway': 'guard_energy',
}
#: Every stop reason of an MD run: completed, a guard, lost atoms, another LAMMPS error, output incomplete.
STOP_REASONS = ('completed', *GUARD_FIX_IDS, 'lost_atoms', 'lammps_error', 'incomplete')

#: Units named in the messages of :func:`normalise_mlmd`.
_UNITS = {'temperature': 'K', 'timestep': 'fs', 'thermostat_damping': 'fs', 'barostat_damping': 'fs'}


def normalise_mlmd(parameters: dict) -> dict:
    """Merge with :data:`MLMD_DEFAULTS` / :data:`GUARD_DEFAULTS` (under ``guards``) and check.

    ``guards.min_distance`` stays ``None`` (per-pair defaults, resolved by :func:`guard_distances`), a
    float (Å, every pair) or becomes ``{'A-B': Å}`` (keys in pair-key order,
    :func:`~aiida_mlfail.science.pair_distances.normalise_pair_distances`).

    :raises ValueError: naming the offending value (unknown key, a renamed guard key of
        :data:`RENAMED_GUARDS` with its new name, non-positive temperature, timestep, steps,
        intervals, dampings or guard thresholds, a ``guards.min_distance`` mapping key that is not a
        species pair, a volume factor <= 1, a ``breaking_factor`` (default 1.5, the forensics' V > factor x V_eq)
        <= 1, or given above ``guards.volume_factor``, unknown ensemble). The default breaking factor is not
        checked against the guard: a guard set below 1.5 halts the run before any break.
    """
    given_guards = parameters.get('guards', {})
    if not isinstance(given_guards, dict):
        raise ValueError(f'guards must be a dict of guard thresholds, got {given_guards!r}')
    renamed = sorted(set(given_guards) & set(RENAMED_GUARDS))
    if renamed:
        raise ValueError('; '.join(f'guards.{old} was renamed guards.{RENAMED_GUARDS[old][0]}: '
                                   f'{RENAMED_GUARDS[old][1]}; got {old}={given_guards[old]!r}'
                                   for old in renamed))
    guards = {**GUARD_DEFAULTS, **dict(given_guards)}
    unknown = (set(parameters) - set(MLMD_DEFAULTS) - {'guards', 'reference_volume',
                                                       'breaking_factor'}) | (set(guards) - set(GUARD_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown MLMD parameter(s) {sorted(unknown)}; allowed: {sorted(MLMD_DEFAULTS)}, '
                         f"'reference_volume', 'breaking_factor', guards {sorted(GUARD_DEFAULTS)}")
    merged = {**MLMD_DEFAULTS, 'breaking_factor': BREAKING_FACTOR,
              **{k: v for k, v in parameters.items() if k != 'guards'}, 'guards': guards}
    ensemble = merged['ensemble']
    merged['ensemble'] = checks.choice(ensemble.upper() if isinstance(ensemble, str) else ensemble, 'ensemble',
                                       ('NVT', 'NPT'))
    for key in ('temperature', 'timestep', 'thermostat_damping', 'barostat_damping'):
        merged[key] = checks.number(merged[key], key, gt=0, unit=_UNITS[key])
    merged['pressure'] = checks.number(merged['pressure'], 'pressure', unit='bar')
    for key in ('steps', 'dump_interval', 'thermo_interval', 'seed'):
        merged[key] = checks.integer(merged[key], key, gt=0)
    merged['checkpoint_interval'] = checks.integer(merged['checkpoint_interval'], 'checkpoint_interval', ge=0)
    if 0 < merged['checkpoint_interval'] < merged['thermo_interval']:
        raise ValueError(f"checkpoint_interval {merged['checkpoint_interval']} is below thermo_interval "
                         f"{merged['thermo_interval']}: a checkpoint is proven complete by a thermo row after it "
                         '(checkpoints.checkpoint_step); use a checkpoint_interval >= thermo_interval, or 0 for none')
    merged['atomic_energies'] = checks.boolean(merged['atomic_energies'], 'atomic_energies')
    if 'reference_volume' in merged:
        merged['reference_volume'] = checks.number(merged['reference_volume'], 'reference_volume', gt=0, unit='Å^3')
    guards['volume_factor'] = checks.number(guards['volume_factor'], 'guards.volume_factor', gt=1)
    merged['breaking_factor'] = checks.number(merged['breaking_factor'], 'breaking_factor', gt=1)
    if 'breaking_factor' in parameters and merged['breaking_factor'] > guards['volume_factor']:
        raise ValueError(f"breaking_factor {merged['breaking_factor']:g} is above guards.volume_factor "
                         f"{guards['volume_factor']:g}: the volume guard would halt the run before the break; "
                         'raise guards.volume_factor (e.g. 3.0) to see the frames after the break')
    guards['min_distance'] = normalise_pair_distances(guards['min_distance'], 'guards.min_distance')
    guards['temperature_factor'] = checks.number(guards['temperature_factor'], 'guards.temperature_factor', gt=0)
    guards['max_energy_change_per_atom'] = checks.number(guards['max_energy_change_per_atom'],
                                                         'guards.max_energy_change_per_atom', gt=0, unit='eV/atom')
    return merged


def guard_distances(min_distance, type_map, configurations=None) -> float | dict[str, float]:
    """The distance guard's thresholds: a number (Å, every pair) as given, else ``{'A-B': Å}`` for every
    species pair of ``type_map`` (and of ``configurations``).

    ``None`` and the pairs a mapping does not name get
    :data:`~aiida_mlfail.science.pair_distances.GUARD_DISTANCE_FRACTION` x the shortest distance of the
    pair in ``configurations`` (the training data), or x the covalent-radii estimate when there are none
    or they lack the pair (:func:`~aiida_mlfail.science.pair_distances.resolve_pair_distances`).

    :param min_distance: ``guards.min_distance`` of :func:`normalise_mlmd` (``None``, float or mapping).
    :param type_map: chemical symbol of LAMMPS type 1, 2, ...
    :param configurations: ``ase.Atoms`` of the training data, or ``None``.
    :raises ValueError: naming the value, for a mapping naming a species outside the type map and data.
    """
    min_distance = normalise_pair_distances(min_distance, 'guards.min_distance')
    if isinstance(min_distance, float):
        return min_distance
    return resolve_pair_distances(min_distance, list(type_map), configurations, fraction=GUARD_DISTANCE_FRACTION,
                                  what='guards.min_distance')


def guard_distance_record(min_distance, type_map, configurations=None, data_name: str = 'training set') -> dict:
    """The distance guard's thresholds and where they come from, for a report and an output node.

    :param min_distance: ``guards.min_distance`` of :func:`normalise_mlmd` (``None``, float or mapping).
    :param type_map: chemical symbol of LAMMPS type 1, 2, ...
    :param configurations: ``ase.Atoms`` of the GAP's training set, or ``None`` (not known).
    :param data_name: how the report names the configurations, e.g. ``'training set <uuid>'``.
    :returns: ``{'min_distance': Å or {'A-B': Å} (:func:`guard_distances`), 'source': str, 'given': [pairs]}``;
        ``source`` is ``'given'`` (a number, or a mapping naming every pair), ``data_name`` (the pairs not
        given are ``GUARD_DISTANCE_FRACTION`` x their shortest distance in ``configurations``) or
        ``'covalent radii'`` (no configurations); ``given`` lists the pairs the user set.
    :raises ValueError: as :func:`guard_distances`.
    """
    given = normalise_pair_distances(min_distance, 'guards.min_distance')
    limits = guard_distances(given, type_map, configurations)
    if isinstance(limits, float):
        return {'min_distance': limits, 'source': 'given', 'given': ['every pair']}
    named = sorted(given or {})
    if set(named) >= set(limits):
        source = 'given'
    else:
        source = data_name if configurations else 'covalent radii'
    return {'min_distance': limits, 'source': source, 'given': named}


def distance_guard_commands(min_distance, type_map) -> list[str]:
    """LAMMPS commands defining ``v_min_distance`` or ``v_close_contacts`` and the ``guard_distance`` halt.

    A number (Å): one ``compute pair/local dist`` reduced to its minimum (``v_min_distance``, Å) and
    ``fix halt`` when it is below the number; the halt value is that distance.

    Per pair (a mapping, or ``None`` resolved by :func:`guard_distances` from the covalent radii):
    ``compute reduce`` of ``compute pair/local`` cannot threshold each type pair (one reduce sees the
    distances of every pair in its group, and a group of types A and B holds the A-A and B-B pairs
    too), so each LAMMPS type pair (i, j) gets ``compute coord/atom cutoff d_ij j`` over the group of
    type i (the number of type-j neighbours of each type-i atom closer than d_ij, periodic images
    included; https://docs.lammps.org/compute_coord_atom.html) summed by ``compute reduce sum``;
    ``v_close_contacts`` adds them up and ``fix halt`` trips when it is > 0. The halt value is then
    the number of close contacts (a like pair counts twice), not a distance: the explorer names the
    pairs and distances from the stop configuration
    (:func:`~aiida_mlfail.science.pair_distances.close_pairs`). ``coord/atom`` needs d_ij at most the
    pair style's cutoff (the GAP's, several Å).

    :param min_distance: float (Å) or ``{'A-B': Å}``; ``None`` or missing pairs: covalent-radii defaults.
    :param type_map: chemical symbol of LAMMPS type 1, 2, ...
    :returns: LAMMPS commands, one per list item.
    """
    limits = guard_distances(min_distance, type_map)
    if isinstance(limits, float):
        return ['compute pair_distances all pair/local dist',
                'compute min_distance all reduce min c_pair_distances inputs local',
                'variable min_distance equal c_min_distance',
                f'fix guard_distance all halt 1 v_min_distance < {limits:.10g} error soft message yes']
    types = range(1, len(type_map) + 1)
    lines = [f'group guard_type_{i} type {i}' for i in types]
    counts = []
    for i in types:
        for j in types:
            if j < i:
                continue
            limit = limits[pair_label(type_map[i - 1], type_map[j - 1])]
            lines += [f'compute guard_close_{i}_{j} guard_type_{i} coord/atom cutoff {limit:.10g} {j}',
                      f'compute guard_contacts_{i}_{j} guard_type_{i} reduce sum c_guard_close_{i}_{j}']
            counts.append(f'c_guard_contacts_{i}_{j}')
    lines += [f"variable close_contacts equal {'+'.join(counts)}",
              'fix guard_distance all halt 1 v_close_contacts > 0 error soft message yes']
    return lines


def guard_commands(parameters: dict, reference_volume: float, n_atoms: int, type_map=None) -> list[str]:
    """The ``fix halt`` guards (checked every step) of a normalised MLMD parameter dict.

    The distance guard ``guard_distance`` (stop reason ``too_close_atoms``) is
    :func:`distance_guard_commands`: one global minimum distance for a number, per species pair
    otherwise (``None`` resolved here from the covalent radii of ``type_map``; callers with training
    data resolve it first with :func:`guard_distances`).

    The energy guard ``guard_energy`` (stop reason ``energy_runaway``) watches the equal-style
    variable ``energy_change``, ``|pe - v_energy_start| / n_atoms`` (eV/atom), and trips when it
    exceeds ``guards.max_energy_change_per_atom``; a NaN ``pe`` (``pe != pe``) makes it 1e300, so
    it trips too. ``v_energy_start`` (:data:`~.checkpoints.ENERGY_START_VARIABLE`) is NOT defined here: the
    caller must issue :func:`energy_start_commands` after a ``run 0`` and before the first step
    (``fix halt`` evaluates its variable only at the end of a step, so a ``run 0`` between these
    commands and that definition is fine). The GAP energy is in ``pe`` both in a LAMMPS with
    ML-QUIP (pair energy) and through the ``mlfail-lmp`` bridge (``fix external`` with
    ``fix_modify ... energy yes``).

    :param parameters: output of :func:`normalise_mlmd` (``guards``, ``temperature`` K).
    :param reference_volume: Å^3, the volume the ``volume_factor`` guard refers to.
    :param n_atoms: number of atoms (the energy guard is per atom).
    :param type_map: chemical symbol of LAMMPS type 1, 2, ... (needed unless ``guards.min_distance`` is a number).
    :returns: LAMMPS commands, one per list item.
    :raises ValueError: for a per-pair distance guard without a type map.
    """
    g = parameters['guards']
    start = ENERGY_START_VARIABLE
    if type_map is None and not isinstance(g['min_distance'], (int, float)):
        raise ValueError('a per-pair distance guard needs the type map (chemical symbol of each LAMMPS type)')
    distance = distance_guard_commands(g['min_distance'], type_map or [])
    return [
        *[line for line in distance if not line.startswith('fix ')],
        f'variable energy_change equal ternary(pe==pe,abs(pe-v_{start})/{int(n_atoms)},1e300)',
        'variable temperature equal temp',
        f"fix guard_volume all halt 1 v_vol > {g['volume_factor'] * reference_volume:.10g} error soft message yes",
        *[line for line in distance if line.startswith('fix ')],
        f"fix guard_temperature all halt 1 v_temperature > {g['temperature_factor'] * parameters['temperature']:.10g} "
        'error soft message yes',
        f"fix guard_energy all halt 1 v_energy_change > {g['max_energy_change_per_atom']:.10g} error soft message yes",
    ]


def energy_start_commands() -> list[str]:
    """Define :data:`~.checkpoints.ENERGY_START_VARIABLE` as the current potential energy (eV), a constant.

    Must follow a ``run 0`` (or a run) on the start configuration: an immediate ``$(pe)`` needs a
    current energy, LAMMPS refuses it before any run ("Variable Accuracy",
    https://docs.lammps.org/variable.html; immediate variables,
    https://docs.lammps.org/Commands_parse.html). The value is substituted once, with 15
    significant digits, so the variable stays the start energy for the rest of the run.
    """
    return [f'variable {ENERGY_START_VARIABLE} equal $(pe)']


def mlmd_setup_commands(pair_commands: list[str], type_map, parameters: dict, n_atoms: int, reference_volume: float,
                        data_file: str = lammps_md.DATA_FILE) -> list[str]:
    """The set-up part of a GAP MD script: box, GAP, velocities, thermo, thermostat/barostat and guards.

    Everything of :func:`mlmd_script` before the start-energy ``run 0``, the frame output and the
    ``run`` (shared with the explorer, ``science.explore``, which runs its own ``run 0`` and
    :func:`energy_start_commands`). ``parameters['atomic_energies']`` (default ``False``) adds the
    per-atom energy compute. The energy guard needs :data:`~.checkpoints.ENERGY_START_VARIABLE`, which these
    commands do not define (see :func:`guard_commands`).

    :param pair_commands: ``GapPotentialData.lammps_pair_commands(type_map)``.
    :param type_map: chemical symbol of LAMMPS type 1, 2, ...
    :param parameters: output of :func:`normalise_mlmd` (temperature K, pressure bar, times in fs).
    :param n_atoms: number of atoms (the energy guard is per atom).
    :param reference_volume: Å^3, the volume the ``volume_factor`` guard refers to.
    :returns: the LAMMPS commands, one per list item.
    """
    p = parameters
    t = float(p['temperature'])
    lines = [
        '# aiida-mlfail GAP molecular dynamics',
        'units metal', 'atom_style atomic', 'boundary p p p', f'read_data {data_file}',
        *mass_commands(type_map),
        *pair_commands,
        'neighbor 1.0 bin', 'neigh_modify every 1 delay 0 check yes',
        f"timestep {float(p['timestep']) / 1000.0:.10g}",
        f"velocity all create {t:.10g} {int(p['seed'])} mom yes rot no dist gaussian",
        *lammps_md.label_computes(atomic_energies=bool(p.get('atomic_energies', False))),
        *lammps_md.thermo_commands(int(p['thermo_interval'])),
    ]
    t_damp = float(p['thermostat_damping']) / 1000.0
    if p['ensemble'] == 'NPT':
        pressure, p_damp = float(p['pressure']), float(p['barostat_damping']) / 1000.0
        lines.append(f'fix ensemble all npt temp {t:.10g} {t:.10g} {t_damp:.10g} iso {pressure:.10g} {pressure:.10g} '
                     f'{p_damp:.10g}')
    else:
        lines.append(f'fix ensemble all nvt temp {t:.10g} {t:.10g} {t_damp:.10g}')
    lines += guard_commands(p, reference_volume, n_atoms, type_map)
    return lines


def mlmd_script(pair_commands: list[str], type_map, parameters: dict, n_atoms: int, reference_volume: float,
                data_file: str = lammps_md.DATA_FILE) -> str:
    """LAMMPS script of a GAP MD run with guards; frames every ``dump_interval`` steps (with velocities).

    After the set-up (:func:`mlmd_setup_commands`) a ``run 0 post no`` evaluates the start
    configuration and :func:`energy_start_commands` records its potential energy for the energy
    guard; then the frame output is defined (so frames start with the MD run at step 0) and the MD
    ``run`` follows. The thermo output therefore starts with the step-0 row of the ``run 0``
    (``lammps_md.parse_thermo`` drops the repeated step-0 row of the MD run). With ``checkpoint_interval`` > 0
    the :func:`~.checkpoints.checkpoint_commands` come after the start energy (a continuation:
    :func:`~.checkpoints.continuation_script`).

    :param pair_commands: ``GapPotentialData.lammps_pair_commands(type_map)``.
    :param parameters: output of :func:`normalise_mlmd`.
    :param reference_volume: Å^3, the volume the ``volume_factor`` guard refers to.
    """
    p = parameters
    lines = mlmd_setup_commands(pair_commands, type_map, p, n_atoms, reference_volume, data_file)
    lines += ['run 0 post no', *energy_start_commands()]
    lines += checkpoint_commands(int(p.get('checkpoint_interval', 0)))
    lines += lammps_md.frame_output_commands(int(p['dump_interval']), atomic_energies=bool(p['atomic_energies']),
                                             velocities=True)
    lines += [f"run {int(p['steps'])}", 'print "MLFAIL_RUN_END step $(step)"']
    return '\n'.join(lines) + '\n'


def rerun_script(reference_commands: list[str], atom_style: str, every: int, dump_file: str = 'ml_frames.dump',
                 data_file: str = lammps_md.DATA_FILE, topology_file: str | None = None) -> str:
    """LAMMPS script re-evaluating a dumped trajectory with a reference potential (``rerun``).

    Writes the reference energy, forces, per-atom energies and virial of every frame in the usual
    :data:`~aiida_mlfail.science.lammps_md.DUMP_FILE` / ``LABELS_FILE`` format. The start structure is read as
    :func:`~aiida_mlfail.science.lammps_md.read_structure_commands` says (``topology_file``: the data file of an
    ``atom_style full`` reference, whose bonds, angles ... the rerun then uses for every frame; the frames then
    come with image flags: :func:`write_dump` with ``images``).
    """
    return '\n'.join([
        '# aiida-mlfail reference rerun of an ML trajectory',
        'units metal', f'atom_style {atom_style}', 'boundary p p p',
        *lammps_md.read_structure_commands(atom_style, data_file, topology_file),
        *reference_commands,
        *lammps_md.label_computes(),
        *lammps_md.thermo_commands(every),
        *lammps_md.frame_output_commands(every),
        f"rerun {dump_file} dump x y z{' ix iy iz' if atom_style == 'full' else ''} box yes",
    ]) + '\n'


def write_dump(configurations, type_map, steps, images: bool = False) -> str:
    """LAMMPS ``dump custom`` text (id type x y z) of configurations, for ``rerun`` and ``read_dump``.

    Cells must be LAMMPS-compatible (lower triangular rows a, b, c as in
    :func:`~aiida_mlfail.science.lammps_md.parse_dump`). With ``images`` the positions are written wrapped into
    the cell with their image flags (columns ``id type x y z ix iy iz``, ``position = x + ix a + iy b + iz c``),
    so that molecules made whole (``science.topology.whole_molecules``) keep consistent image flags in LAMMPS
    (read with the fields ``x y z ix iy iz``).
    """
    chunks = []
    for atoms, step in zip(configurations, steps):
        cell = atoms.cell.array
        if abs(cell[0, 1]) > 1e-9 or abs(cell[0, 2]) > 1e-9 or abs(cell[1, 2]) > 1e-9:
            raise ValueError(f'frame at step {step}: cell is not in LAMMPS lower-triangular form')
        xy, xz, yz = cell[1, 0], cell[2, 0], cell[2, 1]
        lx, ly, lz = cell[0, 0], cell[1, 1], cell[2, 2]
        lo = (0.0, 0.0, 0.0)
        header = ['ITEM: TIMESTEP', str(int(step)), 'ITEM: NUMBER OF ATOMS', str(len(atoms))]
        if any(abs(v) > 1e-12 for v in (xy, xz, yz)):
            xlo_b = lo[0] + min(0.0, xy, xz, xy + xz)
            xhi_b = lo[0] + lx + max(0.0, xy, xz, xy + xz)
            header += ['ITEM: BOX BOUNDS xy xz yz pp pp pp', f'{xlo_b:.12g} {xhi_b:.12g} {xy:.12g}',
                       f'{min(0.0, yz):.12g} {ly + max(0.0, yz):.12g} {xz:.12g}', f'0 {lz:.12g} {yz:.12g}']
        else:
            header += ['ITEM: BOX BOUNDS pp pp pp', f'0 {lx:.12g}', f'0 {ly:.12g}', f'0 {lz:.12g}']
        header.append('ITEM: ATOMS id type x y z' + (' ix iy iz' if images else ''))
        index = {s: i + 1 for i, s in enumerate(type_map)}
        positions = atoms.positions
        flags = np.zeros((len(atoms), 3), dtype=int)
        if images:
            flags = np.floor(np.linalg.solve(cell.T, positions.T).T).astype(int)
            positions = positions - flags @ cell
        rows = [f'{i + 1} {index[s]} {x:.12g} {y:.12g} {z:.12g}' + (' {} {} {}'.format(*f) if images else '')
                for i, (s, (x, y, z), f) in enumerate(zip(atoms.get_chemical_symbols(), positions, flags))]
        chunks.append('\n'.join(header + rows))
    return '\n'.join(chunks) + '\n'


_HALT = re.compile(r'Fix halt condition for fix-id (\S+) met on step (\d+) with value (\S+)')


def parse_stop(text: str) -> dict:
    """Why and where a GAP MD run stopped, from its LAMMPS screen/log output.

    :returns: ``stop_reason`` (one of :data:`~aiida_mlfail.science.mlmd.STOP_REASONS`), ``stop_step`` (int or ``None``),
        ``value`` (the guard's value when one tripped: for ``too_close_atoms`` the distance in Å with a
        uniform guard, the number of close contacts with the per-pair guard, which the message then says)
        and ``message``.
    """
    match = _HALT.search(text)
    if match:
        fix_id, step, value = match.groups()
        reason = next((r for r, f in GUARD_FIX_IDS.items() if f == fix_id), 'lammps_error')
        message = match.group(0)
        if reason == 'too_close_atoms' and 'variable close_contacts' in text:  # the per-pair guard (echoed input)
            message += ' (the number of close contacts: atom pairs closer than their species pair\'s guard distance)'
        return {'stop_reason': reason, 'stop_step': int(step), 'value': float(value), 'message': message}
    error = next((line for line in text.splitlines() if line.startswith('ERROR')), None)
    if error:
        step = None
        reason = 'lost_atoms' if 'Lost atoms' in error else 'lammps_error'
        steps = re.findall(r'^\s+(\d+)\s+\S', text, re.M)
        if steps:
            step = int(steps[-1])
        return {'stop_reason': reason, 'stop_step': step, 'value': None, 'message': error.strip()}
    end = re.search(r'MLFAIL_RUN_END step (\d+)', text)
    if end:
        return {'stop_reason': 'completed', 'stop_step': int(end.group(1)), 'value': None, 'message': 'run completed'}
    return {'stop_reason': 'incomplete', 'stop_step': None, 'value': None,
            'message': 'output ends before the run ended'}


def pressure_table(series: dict) -> dict:
    """Mean pressure and block standard error per named series (``{'training run': array_bar, ...}``), bar."""
    from aiida_mlfail.science.observables import mean_and_standard_error

    return {name: dict(zip(('mean_bar', 'standard_error_bar'), mean_and_standard_error(np.asarray(values))))
            for name, values in series.items() if len(values)}
