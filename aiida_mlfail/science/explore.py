"""The explorer of the active learner: GAP MD that runs until a novel configuration or a failure.

One job (the ``mlfail-explore`` engine, :mod:`aiida_mlfail.engines.explore`) runs GAP MD in
LAMMPS for up to ``max_steps`` steps. Every ``comparison_step`` steps (and at step 0) it computes
the per-atom SOAP spectra of the current configuration and its largest normalised REMatch
similarity to the training configurations (De, Bartók, Csányi, Ceriotti, PCCP 18, 13754 (2016);
:class:`~aiida_mlfail.science.rematch.RematchIndex`). It stops with

* ``novel`` when that similarity is below ``critical_similarity`` (docs: science/active_learner: no
  training configuration is similar enough);
* a guard reason of :mod:`aiida_mlfail.science.mlmd` (``volume_blowup``, ``too_close_atoms``,
  ``temperature_runaway``, ``energy_runaway``) when a ``fix halt ... error soft`` guard trips
  (LAMMPS docs: https://docs.lammps.org/fix_halt.html);
* ``lost_atoms`` / ``lammps_error`` when LAMMPS (or the GAP evaluation) fails;
* ``max_steps`` when nothing happened.

This module holds the AiiDA-free pieces shared by the engine, the CalcJob and the parser: the
parameters, the LAMMPS set-up script, the file formats and their parsers. Units: eV, Å, fs (LAMMPS
``metal`` ps at the script boundary), bar, K.
"""

from __future__ import annotations

import io
import json

import numpy as np

from aiida_mlfail.science import checks, lammps_md, mlmd
from aiida_mlfail.science.signals import NOVELTY_SIGNALS, numeric_table
from aiida_mlfail.science.soap import normalise_soap_parameters

#: Explorer settings on top of the MD ones: steps, novelty check interval, critical REMatch
#: similarity, SOAP parameters (``science.soap``), REMatch regularisation ``alpha`` and Sinkhorn
#: convergence ``threshold`` (``science.rematch``), and ``checkpoint_interval`` (steps; 0: no
#: checkpoints; see :func:`checkpoint_due`). With the default SOAP, frames of 64-ion molten
#: NaCl 200 fs apart have similarity ~0.999 to each other and ~0.97 to the rock-salt crystal, hence
#: the default critical similarity of 0.99 (system- and SOAP-dependent: calibrate it).
EXPLORE_DEFAULTS = {
    'max_steps': 10000,
    'comparison_step': 100,
    'critical_similarity': 0.99,
    'soap': {},
    'alpha': 0.1,
    'threshold': 1e-6,
    'checkpoint_interval': 1000,
    'novelty_signal': 'rematch',
    'critical_variance': None,
    'oracle': False,
}

#: MD settings the explorer takes from :data:`~aiida_mlfail.science.mlmd.MLMD_DEFAULTS` (``steps`` is
#: ``max_steps``; the explorer writes no frame dump).
MD_KEYS = ('ensemble', 'temperature', 'pressure', 'timestep', 'thermo_interval', 'seed', 'thermostat_damping',
           'barostat_damping')

GUARD_REASONS = tuple(mlmd.GUARD_FIX_IDS)
#: Every stop reason of an exploration.
STOP_REASONS = ('novel', 'max_steps', *GUARD_REASONS, 'lost_atoms', 'lammps_error')

# Files of an explorer job (inputs: INPUT_FILE, DATA_FILE, REFERENCE_FILE and the GAP files).
#: Input: the exploration settings (JSON).
INPUT_FILE = 'explore.json'
#: Input: the start structure (LAMMPS data file).
DATA_FILE = lammps_md.DATA_FILE
#: Input: the training configurations (extxyz: species, positions, cell; no labels), the novelty reference,
#: whose SOAP spectra the job computes (:func:`read_references`), not the daemon.
REFERENCE_FILE = 'references.xyz'
#: The LAMMPS setup script the engine writes.
SCRIPT_FILE = 'explore_setup.in'
#: LAMMPS's log.
LOG_FILE = 'log.lammps'
#: Output: stop reason, step and similarity summary (JSON, :data:`~aiida_mlfail.science.explore.RESULT_KEYS`).
RESULTS_FILE = 'explore_results.json'
#: Output: the similarity series (:data:`SIMILARITY_COLUMNS`).
SIMILARITY_FILE = 'similarity.dat'
#: Output: the thermo series (:data:`~aiida_mlfail.science.explore.THERMO_COLUMNS`).
THERMO_FILE = 'thermo.dat'
#: Output: the configuration that stopped the run (extended XYZ).
TRIGGER_FILE = 'trigger.xyz'
#: Output: the last configuration checked before the trigger (extended XYZ).
PREVIOUS_FILE = 'previous.xyz'
#: Checkpoints (:func:`checkpoint_due`): a folder with the engine's state (:data:`CHECKPOINT_STATE_FILE`) and the
#: LAMMPS restart file it names (``lammps.<step>.restart``). A continuation job gets this folder copied from the
#: previous job's remote folder and continues from it (:func:`explore_script` with ``restart_file``).
CHECKPOINT_DIR = 'checkpoint'
#: The engine's state at the last checkpoint (JSON, :func:`checkpoint_state`).
CHECKPOINT_STATE_FILE = f'{CHECKPOINT_DIR}/state.json'
#: The raw ``fix print`` output the engine turns into :data:`~aiida_mlfail.science.explore.THERMO_FILE`.
RAW_THERMO_FILE = 'thermo_lammps.dat'

#: Columns of :data:`~aiida_mlfail.science.explore.THERMO_FILE` with units, and the LAMMPS thermo keywords behind them.
THERMO_COLUMNS = (('step', ''), ('temperature', 'K'), ('potential_energy', 'eV'), ('kinetic_energy', 'eV'),
                  ('total_energy', 'eV'), ('pressure', 'bar'), ('volume', 'Å^3'))
#: The LAMMPS thermo keywords of :data:`~aiida_mlfail.science.explore.THERMO_COLUMNS`, in the same order.
THERMO_KEYWORDS = ('step', 'temp', 'pe', 'ke', 'etotal', 'press', 'vol')
#: Columns of :data:`~aiida_mlfail.science.explore.SIMILARITY_FILE`.
SIMILARITY_COLUMNS = ('step', 'similarity', 'reference_index')

#: Keys of :data:`~aiida_mlfail.science.explore.RESULTS_FILE` (see :func:`parse_explore_results`).
RESULT_KEYS = ('stop_reason', 'stop_step', 'steps_run', 'similarity', 'reference_index', 'min_similarity',
               'n_checks', 'message', 'timings')
#: Keys the engine adds for checkpoints: ``checkpoint_step`` (the last checkpoint of this job or the one it continued
#: from, ``None``) and ``resumed_from`` (the checkpoint steps earlier jobs continued from, oldest first).
CHECKPOINT_RESULT_KEYS = ('checkpoint_step', 'resumed_from')


def normalise_explore(parameters: dict, species=None) -> dict:
    """Merge with the defaults and check an explorer parameter dict.

    :param parameters: MD keys of :data:`MD_KEYS` (``ensemble`` NVT/NPT, ``temperature`` K,
        ``pressure`` bar, ``timestep`` fs, ``thermo_interval`` steps, ``seed``, dampings fs), ``guards``
        (``volume_factor``, ``min_distance`` (``None``: per species pair from the training set, see
        :func:`job_files`; a number in Å for every pair; or ``{'A-B': Å}``), ``temperature_factor``,
        ``max_energy_change_per_atom``
        eV/atom, relative to the start energy),
        optional ``reference_volume`` (Å^3; default: the start volume), and the keys of
        :data:`EXPLORE_DEFAULTS`: ``max_steps``, ``comparison_step`` (steps between novelty checks),
        ``critical_similarity`` in (0, 1], ``soap`` (``science.soap`` parameters), ``alpha`` (> 0)
        and ``threshold`` (in (0, 1)), ``checkpoint_interval`` (steps, >= 0; 0 switches checkpoints off),
        ``novelty_signal`` (``rematch``: similarity below
        ``critical_similarity``; ``variance``: the largest local GAP predictive variance above
        ``critical_variance`` (eV^2, required then); ``both``: either fires), ``oracle`` (bool: calibration
        mode, the classical reference of :func:`job_files` evaluates every checked configuration, the
        GAP's errors are recorded in ``science.signals.SIGNALS_FILE``, and a novelty does not stop the run).
    :param species: element symbols for the SOAP descriptor when ``soap`` names none; without
        either, ``soap['species']`` stays ``None`` (resolved later, e.g. by the CalcJob).
    :returns: the merged dict (MD keys, ``guards``, explorer keys, ``reference_volume`` if given).
    :raises ValueError: naming the offending key or value.
    """
    parameters = {k: v for k, v in dict(parameters).items() if not (k == 'reference_volume' and v is None)}
    allowed = {*MD_KEYS, 'guards', 'reference_volume', *EXPLORE_DEFAULTS}
    checks.known_keys(parameters, allowed, 'explore parameter')
    explore = {**EXPLORE_DEFAULTS, **{k: v for k, v in parameters.items() if k in EXPLORE_DEFAULTS}}
    for key in ('max_steps', 'comparison_step'):
        explore[key] = checks.integer(explore[key], key, gt=0)
    explore['checkpoint_interval'] = checks.integer(explore['checkpoint_interval'], 'checkpoint_interval', ge=0)
    if explore['comparison_step'] > explore['max_steps']:
        raise ValueError(f"comparison_step ({explore['comparison_step']}) > max_steps ({explore['max_steps']}): "
                         'no novelty check would run before the end')
    critical = checks.number(explore['critical_similarity'], 'critical_similarity', gt=0, le=1)
    signal = checks.choice(explore['novelty_signal'], 'novelty_signal', NOVELTY_SIGNALS)
    critical_variance = explore['critical_variance']
    if critical_variance is not None:
        critical_variance = checks.number(critical_variance, 'critical_variance (GAP variance, eV^2)', gt=0)
    elif signal in ('variance', 'both'):
        raise ValueError(f"novelty_signal {signal!r} needs critical_variance (the largest local GAP variance, eV^2, "
                         'that is not novel; calibrate it with mlfail.calibrate)')
    oracle = checks.boolean(explore['oracle'], 'oracle')
    alpha = checks.number(explore['alpha'], 'alpha (REMatch regularisation)', gt=0)
    threshold = checks.number(explore['threshold'], 'threshold (Sinkhorn convergence)', gt=0, lt=1)
    if not isinstance(explore['soap'], dict):
        raise ValueError(f"soap must be a dict of SOAP parameters, got {explore['soap']!r}")
    soap = dict(explore['soap'])
    if soap.get('species') or species:
        soap = normalise_soap_parameters(soap, species)
    else:  # check everything else now; the species come later
        soap = {**normalise_soap_parameters(soap, ['H']), 'species': None}
    md = {k: v for k, v in parameters.items() if k in (*MD_KEYS, 'guards', 'reference_volume')}
    merged = mlmd.normalise_mlmd({**md, 'steps': explore['max_steps']})
    for key in ('steps', 'dump_interval', 'atomic_energies', 'breaking_factor'):  # breaking_factor: MLMD forensics
        merged.pop(key)
    merged.update(explore, critical_similarity=critical, alpha=alpha, threshold=threshold, soap=soap,
                  novelty_signal=signal, critical_variance=critical_variance, oracle=oracle)
    return merged


def check_steps(max_steps: int, comparison_step: int) -> list[int]:
    """The MD steps after which the novelty check runs: ``comparison_step``, ``2 comparison_step``, ...
    and ``max_steps`` (the start, step 0, is checked too but is not listed)."""
    steps = list(range(comparison_step, max_steps + 1, comparison_step))
    if not steps or steps[-1] != max_steps:
        steps.append(max_steps)
    return steps


def checkpoint_due(step: int, last_checkpoint: int, interval: int) -> bool:
    """Whether the engine writes a checkpoint after the (passed) novelty check at ``step``.

    Checkpoints go with novelty checks, so the similarity series of a checkpoint ends at its step: one is
    written at the first check step at least ``interval`` steps after the last checkpoint (or the start,
    ``last_checkpoint`` 0 or the step continued from). ``interval`` 0: never.
    """
    return interval > 0 and step - last_checkpoint >= interval


def explore_script(pair_commands: list[str], type_map, parameters: dict, n_atoms: int, reference_volume: float,
                   data_file: str = DATA_FILE, restart_file: str | None = None) -> str:
    """LAMMPS set-up script of an exploration (no ``run``: the engine runs it in chunks).

    With ``restart_file`` (a continuation from a checkpoint) the box, atoms, velocities, image flags, the
    step number and the Nose-Hoover thermostat/barostat variables of ``fix nvt``/``fix npt`` (same fix ID
    ``ensemble``) come from the LAMMPS restart file (``read_restart`` instead of ``read_data``; LAMMPS docs:
    https://docs.lammps.org/read_restart.html, https://docs.lammps.org/fix_nh.html "Restart, fix_modify ...
    info"), and there is no ``velocity ... create`` (the velocities are in the file). Everything a restart
    file does not keep is issued again by this script: the GAP ``pair_coeff`` (``pair_style quip`` writes
    no coefficients to restart files, nor does the bridge's ``fix external``), the computes, variables,
    ``fix halt`` guards and the ``fix print`` of the thermo. The explorer draws no random numbers itself
    and its thermostat (Nose-Hoover) has none: the only random draw of a run is the start velocities
    (``velocity create`` with ``seed``), so the continuation follows the same equations of motion (with the
    tiny test GAP through the bridge it is bit for bit the uninterrupted run,
    ``tests/engines/test_explore_checkpoint.py``; not promised in general: LAMMPS rebuilds the neighbour
    lists at the restart). A stochastic thermostat (``fix langevin``) would
    need reseeding from ``seed`` and the step, as a restart file keeps no random state; the explorer uses none.

    The GAP MD set-up of :func:`~aiida_mlfail.science.mlmd.mlmd_setup_commands` (standard
    ``pair_style quip`` commands, thermostat/barostat, ``fix halt`` guards) plus a ``fix print``
    of the thermo keywords :data:`THERMO_KEYWORDS` every ``thermo_interval`` steps to
    :data:`RAW_THERMO_FILE`. The energy guard's start energy (``mlmd.ENERGY_START_VARIABLE``) is
    not defined here: the engine defines it after its set-up ``run 0``
    (``mlmd.energy_start_commands``).

    :param parameters: output of :func:`normalise_explore`.
    :param reference_volume: Å^3, the volume the ``volume_factor`` guard refers to.
    """
    lines = mlmd.mlmd_setup_commands(pair_commands, type_map, parameters, n_atoms, reference_volume, data_file)
    lines[0] = '# aiida-mlfail explorer: GAP molecular dynamics, run in chunks by mlfail-explore'
    if restart_file is not None:
        lines = [f'read_restart {restart_file}' if line.startswith('read_data ') else line for line in lines
                 if not line.startswith('velocity all create ')]
        lines[0] += f' (continued from {restart_file})'
    lines.append(thermo_print_command(int(parameters['thermo_interval'])))
    return '\n'.join(lines) + '\n'


#: The fix ID of the thermo ``fix print`` (:func:`thermo_print_command`).
THERMO_FIX_ID = 'explore_thermo'


def thermo_print_command(interval: int, append: bool = False) -> str:
    """``fix print`` of :data:`THERMO_KEYWORDS` every ``interval`` steps to :data:`RAW_THERMO_FILE`.

    LAMMPS buffers the file (C stdio) until the fix is deleted: at a checkpoint the engine deletes the fix
    (``unfix``, which closes the file) and defines it again with ``append`` (``append=True``), so the rows up to
    the checkpoint are on disk. (The new fix prints the current step's row again at the next run's set-up;
    the engine keeps the first row of every step.)
    """
    row = ' '.join(f'$({k})' for k in THERMO_KEYWORDS)
    mode = 'append' if append else 'file'
    return (f'fix {THERMO_FIX_ID} all print {int(interval)} "{row}" {mode} {RAW_THERMO_FILE} screen no '
            f'title "# {" ".join(THERMO_KEYWORDS)}"')


def engine_input(parameters: dict, type_map, pair_commands: list[str], reference_volume: float,
                 oracle_reference: dict | None = None) -> dict:
    """The content of :data:`INPUT_FILE`: normalised parameters (SOAP species resolved), the LAMMPS
    type map, the GAP ``pair_style``/``pair_coeff`` commands, the reference volume (Å^3) and, in
    oracle mode, the classical reference (``ReferencePotential.to_dict()``, ``atom_style`` atomic or charge).

    :raises ValueError: if the SOAP species are unresolved or do not cover the type map, or if
        ``parameters['oracle']`` is set without an ``oracle_reference`` (or the reverse).
    """
    if parameters.get('oracle') and oracle_reference is None:
        raise ValueError('oracle mode needs the classical reference that evaluates the checked configurations')
    if oracle_reference is not None and not parameters.get('oracle'):
        raise ValueError('an oracle reference was given but the parameters do not set oracle: true')
    if oracle_reference is not None:
        from aiida_mlfail.science.potentials import ReferencePotential  # noqa: PLC0415

        reference = ReferencePotential.from_dict(oracle_reference)
        reference.check_species(type_map)
        if reference.atom_style == 'full':
            raise ValueError('the oracle cannot evaluate an atom_style full reference (topology); use atomic or charge')
        oracle_reference = reference.to_dict()
    species = parameters['soap'].get('species')
    if not species:
        raise ValueError('the SOAP species must be resolved before writing the explorer input')
    missing = sorted(set(type_map) - set(species))
    if missing:
        raise ValueError(f'SOAP species {species} do not cover the species {missing} of the structure')
    return {'parameters': parameters, 'type_map': list(type_map), 'pair_commands': list(pair_commands),
            'reference_volume': float(reference_volume), 'data_file': DATA_FILE, 'reference_file': REFERENCE_FILE,
            'oracle_reference': oracle_reference}


def job_files(structure, type_map, pair_commands: list[str], parameters: dict, references,
              oracle_reference: dict | None = None) -> dict[str, bytes]:
    """The explorer's input files besides the GAP files: :data:`INPUT_FILE`, :data:`DATA_FILE`, :data:`REFERENCE_FILE`.

    :param structure: the start configuration (``ase.Atoms``, periodic).
    :param type_map: chemical symbol of LAMMPS type 1, 2, ... (every species of ``structure``).
    :param pair_commands: the GAP ``pair_style quip`` / ``pair_coeff`` commands for ``type_map``.
    :param parameters: explorer parameters; SOAP species default to the union of the species of
        ``structure`` and ``references`` (the training set); ``reference_volume`` defaults to the start
        volume (Å^3); ``guards.min_distance`` ``None`` (default) or a partial ``{'A-B': Å}`` mapping is
        checked here and resolved per species pair by the job (:func:`read_references`,
        :func:`~aiida_mlfail.science.mlmd.guard_distances`: 0.35 x the shortest distance of each pair in
        the training set).
    :param references: the training configurations (``ase.Atoms``) the novelty check compares with.
    :param oracle_reference: oracle mode only: the classical reference (``ReferencePotential.to_dict()``)
        whose files the caller puts into the job folder.
    :returns: ``{file name: content}``.
    :raises ValueError: for bad parameters, SOAP species not covering a configuration, a guard pair
        naming a species outside the type map and references, or no reference configuration. (The SOAP
        spectra of the references are computed by the job, :func:`read_references`.)
    """
    from ase.io import write  # noqa: PLC0415

    references = list(references)
    species = sorted({*structure.get_chemical_symbols(), *(s for a in references for s in a.get_chemical_symbols())})
    p = normalise_explore(parameters, species)
    missing = sorted(set(structure.get_chemical_symbols()) - set(type_map))
    if missing:
        raise ValueError(f'species {missing} of the structure are not in the type map {list(type_map)}')
    missing = sorted(set(species) - set(p['soap']['species']))
    if missing:
        raise ValueError(f"species {missing} that the SOAP descriptor (species {p['soap']['species']}) does not "
                         'describe are in the structure or the reference configurations')
    # the distance guard per species pair: its pair names are checked here (covalent radii, no neighbour list);
    # the job resolves the pairs not given from the references (read_references), not the daemon
    mlmd.guard_distances(p['guards']['min_distance'], species, None)
    buffer = io.StringIO()
    write(buffer, structure, format='lammps-data', atom_style='atomic', specorder=list(type_map), masses=True,
          units='metal')
    config = engine_input(p, type_map, pair_commands, float(p.get('reference_volume', structure.get_volume())),
                          oracle_reference)
    return {INPUT_FILE: json.dumps(config, indent=1).encode(), DATA_FILE: buffer.getvalue().encode(),
            REFERENCE_FILE: write_references(references)}


def read_engine_input(text: str) -> dict:
    """Parse and re-check :data:`INPUT_FILE` (see :func:`engine_input`).

    :raises ValueError: for malformed JSON, a missing key or invalid parameters.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{INPUT_FILE} is not valid JSON: {exc}') from None
    missing = [k for k in ('parameters', 'type_map', 'pair_commands', 'reference_volume') if k not in data]
    if missing:
        raise ValueError(f'{INPUT_FILE} lacks {missing}')
    data['parameters'] = normalise_explore(data['parameters'])
    return engine_input(data['parameters'], data['type_map'], data['pair_commands'], data['reference_volume'],
                        data.get('oracle_reference'))


def write_references(references) -> bytes:
    """The :data:`REFERENCE_FILE`: the reference configurations as extxyz (species, positions in Å, cell,
    pbc), without labels or other arrays, so the file is as small as the structures.

    :param references: ``ase.Atoms`` (the training configurations).
    :raises ValueError: for an empty list.
    """
    from ase import Atoms  # noqa: PLC0415
    from ase.io import write  # noqa: PLC0415

    bare = [Atoms(a.get_chemical_symbols(), positions=a.positions, cell=a.cell, pbc=a.pbc) for a in references]
    if not bare:
        raise ValueError('no reference configuration: the training set is empty')
    buffer = io.StringIO()
    write(buffer, bare, format='extxyz')
    return buffer.getvalue().encode()


def read_references(source, soap_parameters: dict) -> tuple[list, list[np.ndarray]]:
    """The configurations of :data:`REFERENCE_FILE` and their L2-normalised per-atom SOAP spectra, computed
    with ``soap_parameters`` (``science.soap.normalised_features``; in the job, not the daemon).

    :param source: path or text file object of the extxyz.
    :returns: ``(configurations, features)``: the ``ase.Atoms`` and one ``(n_atoms_j, n_features)`` array
        per configuration.
    :raises ValueError: if the file cannot be read as extxyz, has no configuration, or a configuration
        has an atom with an empty SOAP spectrum.
    """
    from ase.io import read  # noqa: PLC0415

    from aiida_mlfail.science.soap import normalised_features, soap_descriptor  # noqa: PLC0415

    try:
        references = read(source, index=':', format='extxyz')
    except (OSError, ValueError, IndexError, KeyError) as exc:  # what ASE's extxyz reader raises for a bad file
        raise ValueError(f'{REFERENCE_FILE} is not an extxyz file of configurations: {exc}') from None
    if not references:
        raise ValueError(f'{REFERENCE_FILE} has no configuration')
    return references, normalised_features(soap_descriptor(soap_parameters), references)


def input_fingerprint(config: dict, files: dict[str, bytes]) -> str:
    """SHA-256 of what a checkpoint belongs to: the engine input without ``max_steps`` and
    ``checkpoint_interval`` (a continuation may run longer or checkpoint at another interval) and the content
    of the start structure and reference files (``files``: name -> bytes)."""
    import hashlib  # noqa: PLC0415

    parameters = {k: v for k, v in config['parameters'].items() if k not in ('max_steps', 'checkpoint_interval')}
    digest = hashlib.sha256(json.dumps({**config, 'parameters': parameters}, sort_keys=True).encode())
    for name in sorted(files):
        digest.update(name.encode() + b'\0' + files[name])
    return digest.hexdigest()


#: Keys of the checkpoint state (:func:`checkpoint_state`).
CHECKPOINT_KEYS = ('step', 'restart_file', 'fingerprint', 'start_energy', 'similarity', 'thermo', 'resumed_from')


def checkpoint_state(step: int, restart_file: str, fingerprint: str, start_energy: float, similarity_rows,
                     thermo_rows, resumed_from: list[int], signal_rows=()) -> dict:
    """The engine's state at a checkpoint (the content of :data:`CHECKPOINT_STATE_FILE`).

    :param step: the MD step of the checkpoint (a novelty check step).
    :param restart_file: the LAMMPS restart file written at ``step`` (path relative to the job folder).
    :param fingerprint: :func:`input_fingerprint` of the exploration.
    :param start_energy: eV, the potential energy of the start configuration (the energy guard's reference,
        ``mlmd.ENERGY_START_VARIABLE``): kept, not recomputed from the checkpoint configuration.
    :param similarity_rows: ``(step, similarity or None, reference_index or None)`` of every check up to ``step``.
    :param thermo_rows: rows of :data:`THERMO_COLUMNS` values up to ``step``.
    :param resumed_from: the steps earlier jobs of this exploration continued from (oldest first).
    :param signal_rows: the rows of ``science.signals.SIGNAL_COLUMNS`` recorded up to ``step``
        (``engines.signals.SignalRecorder.rows``: dicts of numbers), stored as ``signals``.
    :raises ValueError: if a similarity, thermo or signal row lies after ``step``.
    """
    similarity = [[int(s), None if v is None else float(v), None if i is None else int(i)]
                  for s, v, i in similarity_rows]
    thermo = [[float(v) for v in row] for row in thermo_rows]
    signals = [{k: int(v) if k == 'step' else None if v is None else float(v) for k, v in row.items()}
               for row in signal_rows]
    if any(row[0] > step for row in similarity) or any(row[0] > step for row in thermo) \
            or any(row['step'] > step for row in signals):
        raise ValueError(f'checkpoint at step {step} with similarity, thermo or signal rows after it')
    return {'step': int(step), 'restart_file': restart_file, 'fingerprint': fingerprint,
            'start_energy': float(start_energy), 'similarity': similarity, 'thermo': thermo,
            'resumed_from': [int(s) for s in resumed_from], 'signals': signals}


def read_checkpoint_state(text: str, fingerprint: str | None = None) -> dict:
    """Parse and check :data:`CHECKPOINT_STATE_FILE` (:func:`checkpoint_state`).

    :param fingerprint: when given, the :func:`input_fingerprint` of the exploration to continue: a
        checkpoint of another exploration (other parameters, structure or references) is refused.
    :returns: the state dict, ``similarity`` as ``(step, value, index)`` tuples.
    :raises ValueError: for malformed JSON, a missing key, another exploration's checkpoint, or similarity
        steps that do not increase strictly or end after the checkpoint step.
    """
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{CHECKPOINT_STATE_FILE} is not valid JSON: {exc}') from None
    missing = [k for k in CHECKPOINT_KEYS if k not in (state if isinstance(state, dict) else {})]
    if missing:
        raise ValueError(f'{CHECKPOINT_STATE_FILE} lacks {missing}')
    if fingerprint is not None and state['fingerprint'] != fingerprint:
        raise ValueError(f'{CHECKPOINT_STATE_FILE} (step {state["step"]}) is the checkpoint of another exploration '
                         '(other parameters, start structure or references): not continuing from it')
    steps = [row[0] for row in state['similarity']]
    if any(b <= a for a, b in zip(steps, steps[1:])) or (steps and steps[-1] > state['step']):
        raise ValueError(f'{CHECKPOINT_STATE_FILE}: similarity steps {steps} do not increase up to the checkpoint '
                         f'step {state["step"]}')
    state['similarity'] = [tuple(row) for row in state['similarity']]
    return state


#: The engine's stdout line of a checkpoint (:func:`last_checkpoint_step` reads it).
CHECKPOINT_LINE = 'checkpoint at step {step}: {restart_file}'
#: The engine's stdout line when it continues from a checkpoint (:func:`last_checkpoint_step` reads it).
CONTINUE_LINE = 'continuing from the checkpoint at step {step}: {restart_file}'


def last_checkpoint_step(stdout: str) -> int | None:
    """The step of the newest checkpoint a job's folder holds, from the engine's stdout: its last
    :data:`CHECKPOINT_LINE`, or the :data:`CONTINUE_LINE` of the checkpoint it was started from (still in
    its folder); ``None`` when there is neither (the job wrote no checkpoint)."""
    import re  # noqa: PLC0415

    steps = re.findall(r'^(?:checkpoint|continuing from the checkpoint) at step (\d+):', stdout, re.MULTILINE)
    return int(steps[-1]) if steps else None


def lammps_atoms(boxlo, boxhi, tilt, positions, types, ids, type_map):
    """An ``ase.Atoms`` (periodic, sorted by atom id) from LAMMPS box and per-atom arrays.

    :param boxlo: lower box corner (3,), Å.
    :param boxhi: upper box corner (3,), Å.
    :param tilt: ``(xy, xz, yz)``, Å (LAMMPS lower-triangular cell rows a = (lx, 0, 0), b = (xy, ly, 0),
        c = (xz, yz, lz)).
    :param positions: ``(n, 3)`` Å; ``types``: LAMMPS types 1..; ``ids``: atom ids (for the order).
    :param type_map: chemical symbol of type 1, 2, ...
    :raises ValueError: for a type outside the type map.
    """
    from ase import Atoms  # noqa: PLC0415

    types = np.asarray(types, dtype=int)
    if len(types) and (types.min() < 1 or types.max() > len(type_map)):
        raise ValueError(f'atom type {int(types.max())} not in type map {list(type_map)}')
    order = np.argsort(np.asarray(ids))
    xy, xz, yz = tilt
    cell = np.array([[boxhi[0] - boxlo[0], 0.0, 0.0], [xy, boxhi[1] - boxlo[1], 0.0], [xz, yz, boxhi[2] - boxlo[2]]])
    return Atoms(symbols=[type_map[t - 1] for t in types[order]],
                 positions=np.asarray(positions, dtype=float)[order] - np.asarray(boxlo, dtype=float),
                 cell=cell, pbc=True)


def classify_lammps_error(message: str) -> str:
    """``lost_atoms`` for LAMMPS's "Lost atoms" error, else ``lammps_error``."""
    return 'lost_atoms' if 'Lost atoms' in message else 'lammps_error'


def similarity_table(rows) -> str:
    """Text of :data:`~aiida_mlfail.science.explore.SIMILARITY_FILE` from ``(step, similarity, reference_index)`` rows
    (NaN / -1 when unknown)."""
    lines = ['# step similarity reference_index (normalised REMatch; -1: not computed)']
    for step, value, index in rows:
        value = float('nan') if value is None else float(value)
        lines.append(f'{int(step)} {value!r} {-1 if index is None else int(index)}')
    return '\n'.join(lines) + '\n'


def parse_similarity(text: str) -> dict[str, np.ndarray]:
    """Parse :data:`~aiida_mlfail.science.explore.SIMILARITY_FILE`: arrays ``step`` (int), ``similarity`` (float),
    ``reference_index`` (int).

    :raises ValueError: on a malformed line.
    """
    rows = numeric_table(text, 3, SIMILARITY_FILE)
    return {'step': rows[:, 0].astype(int), 'similarity': rows[:, 1], 'reference_index': rows[:, 2].astype(int)}


def thermo_table(rows) -> str:
    """Text of :data:`~aiida_mlfail.science.explore.THERMO_FILE` from rows of the
    :data:`~aiida_mlfail.science.explore.THERMO_COLUMNS` values."""
    header = '# ' + ' '.join(f'{name}({unit})' if unit else name for name, unit in THERMO_COLUMNS)
    return '\n'.join([header, *(' '.join(f'{v:.12g}' for v in row) for row in rows)]) + '\n'


def parse_thermo_table(text: str) -> dict[str, np.ndarray]:
    """Parse :data:`~aiida_mlfail.science.explore.THERMO_FILE` (or the raw ``fix print`` file): arrays keyed by
    :data:`~aiida_mlfail.science.explore.THERMO_COLUMNS` names.

    :raises ValueError: on a malformed line.
    """
    rows = numeric_table(text, len(THERMO_COLUMNS), THERMO_FILE)
    return {name: rows[:, k] for k, (name, _unit) in enumerate(THERMO_COLUMNS)}


def parse_explore_results(text: str) -> dict:
    """Parse and check :data:`~aiida_mlfail.science.explore.RESULTS_FILE`, the engine's JSON result.

    :returns: the dict (keys :data:`~aiida_mlfail.science.explore.RESULT_KEYS` and more): ``stop_reason`` (one of
        :data:`~aiida_mlfail.science.explore.STOP_REASONS`), ``stop_step`` (MD step of the stop, int or ``None``),
        ``steps_run``,
        ``similarity`` (REMatch similarity of the stop configuration, ``None`` when not computed),
        ``reference_index`` (its most similar training configuration), ``min_similarity``,
        ``n_checks`` (similarity evaluations: step 0, every ``comparison_step``, and the stop
        configuration of a guard or error stop), ``message``, ``timings`` (seconds: ``setup``,
        ``md``, ``soap``, ``rematch``, ``total``); the engine adds ``guard_value`` (the value of the
        guard variable that tripped), ``critical_similarity``, ``n_atoms``, ``n_references`` and
        ``previous`` (``step``, ``similarity``, ``reference_index`` of
        :data:`~aiida_mlfail.science.explore.PREVIOUS_FILE`, or ``None``) and ``guard_distances`` (the
        distance guard's thresholds, ``{'A-B': Å}`` or one number in Å); after a per-pair
        ``too_close_atoms`` stop ``guard_value`` is the number of close contacts and ``close_pairs``
        lists ``{pair, distance, limit}`` (Å) of the stop configuration;
        :data:`~aiida_mlfail.science.explore.CHECKPOINT_RESULT_KEYS`
        (``checkpoint_step``, ``resumed_from``) say which checkpoints the job wrote and continued from.
    :raises ValueError: for malformed JSON, a missing key or an unknown stop reason.
    """
    try:
        results = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{RESULTS_FILE} is not valid JSON: {exc}') from None
    if not isinstance(results, dict):
        raise ValueError(f'{RESULTS_FILE} holds {type(results).__name__}, not an object')
    missing = [k for k in RESULT_KEYS if k not in results]
    if missing:
        raise ValueError(f'{RESULTS_FILE} lacks {missing}')
    if results['stop_reason'] not in STOP_REASONS:
        raise ValueError(f"unknown stop reason {results['stop_reason']!r} (known: {list(STOP_REASONS)})")
    return results
