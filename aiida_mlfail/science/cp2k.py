"""CP2K (Quickstep) inputs for DFT labels: protocols and the nested ``parameters`` dict of aiida-cp2k.

The dicts follow aiida-cp2k's convention (rendered by ``aiida_cp2k.utils.Cp2kInput``): upper-case
section names map to dicts, ``'_'`` is a section parameter, lists repeat a keyword or section. The
structure is not part of them: aiida-cp2k adds ``FORCE_EVAL/SUBSYS/CELL`` (A, B, C in Å) and
``TOPOLOGY/COORD_FILE_NAME`` from its ``structure`` input, and ``GLOBAL/PROJECT aiida``.

CP2K manual (https://manual.cp2k.org/trunk/CP2K_INPUT/): ``FORCE_EVAL/STRESS_TENSOR`` (ANALYTICAL),
``FORCE_EVAL/PRINT/FORCES`` and ``STRESS_TENSOR``, ``FORCE_EVAL/DFT/SCF`` (OT, OUTER_SCF, MIXING,
IGNORE_CONVERGENCE_FAILURE), ``FORCE_EVAL/DFT/XC/VDW_POTENTIAL/PAIR_POTENTIAL`` (DFTD3(BJ):
Grimme et al., J. Chem. Phys. 132, 154104 (2010) and J. Comput. Chem. 32, 1456 (2011)),
``MOTION/MD`` (THERMOSTAT CSVR: Bussi, Donadio, Parrinello, J. Chem. Phys. 126, 014101 (2007);
NOSE: Martyna, Klein, Tuckerman, J. Chem. Phys. 97, 2635 (1992)) and ``MOTION/PRINT``.
Protocols are documented in ``aiida_mlfail/workflows/protocols/cp2k.yaml``.
"""

from __future__ import annotations

import copy
import pathlib
import re

import yaml

from aiida_mlfail.science import checks

# CP2K's data-file libraries live in science.cp2k_library; imported here so that every name importable from
# science.cp2k stays importable from it.
from aiida_mlfail.science.cp2k_library import (  # noqa: F401
    _VALENCE_SUFFIX,
    LibraryEntry,
    _is_number,
    _preferences,
    _protocol_label,
    _read_library_file,
    _suffix_valence,
    _upper,
    check_species,
    data_dir,
    describe_kinds,
    read_library,
    resolve_kinds,
)

#: The protocol file (package data of ``aiida_mlfail.workflows``).
PROTOCOL_FILE = pathlib.Path(__file__).resolve().parents[1] / 'workflows' / 'protocols' / 'cp2k.yaml'

#: aiida-cp2k's project name: CP2K names its files ``<project>-pos-1.xyz`` and so on.
PROJECT = 'aiida'

#: Files an AIMD job writes that :func:`aiida_mlfail.science.outputs.cp2k.parse_cp2k_md` reads (with the main
#: output); aiida-cp2k retrieves positions, forces and cell by default, the energies need
#: ``settings['additional_retrieve_list']``.
AIMD_FILES = {
    'positions': f'{PROJECT}-pos-1.xyz',
    'forces': f'{PROJECT}-frc-1.xyz',
    'energies': f'{PROJECT}-1.ener',
    'cell': f'{PROJECT}-1.cell',
}

#: Where aiida-cp2k links the ``parent_calc_folder`` of a restart inside the new job's folder.
PARENT_FOLDER = 'parent_calc'

#: The MD checkpoint CP2K writes (``MOTION/PRINT/RESTART``): positions, velocities, thermostat state and
#: step counter, which :func:`md_continuation` restarts from (``EXT_RESTART``).
AIMD_RESTART_FILE = f'{PROJECT}-1.restart'

#: Written by :func:`aimd_parameters` for diagnostics only: the total pressure tensor (bar) with the
#: kinetic part, which training labels must not contain (the parser takes the output's STRESS| blocks).
AIMD_STRESS_FILE = f'{PROJECT}-1.stress'

_PROTOCOL_KEYS = {'description', 'method', 'basis_set_file', 'potential_file', 'basis_set', 'potential',
                  'basis_overrides', 'xc', 'vdw', 'cutoff', 'rel_cutoff', 'eps_default', 'scf', 'walltime_seconds'}
_THERMOSTATS = ('CSVR', 'NOSE')


def available_protocols() -> list[str]:
    """Names of the protocols in :data:`PROTOCOL_FILE`, in file order."""
    return list(yaml.safe_load(PROTOCOL_FILE.read_text()))


def load_protocol(name: str) -> dict:
    """The protocol ``name`` (``fast``, ``moderate`` or ``precise``) as a dict (a fresh copy).

    :raises ValueError: for an unknown name (naming it and the available ones) or a protocol
        missing keys of the schema documented in the YAML file.
    """
    protocols = yaml.safe_load(PROTOCOL_FILE.read_text())
    if name not in protocols:
        raise ValueError(f'unknown CP2K protocol {name!r}; available: {", ".join(protocols)}')
    protocol = protocols[name]
    missing = _PROTOCOL_KEYS - set(protocol)
    if missing:
        raise ValueError(f'CP2K protocol {name!r} misses {sorted(missing)}')
    return copy.deepcopy(protocol)


def _resolve(protocol) -> dict:
    return load_protocol(protocol) if isinstance(protocol, str) else copy.deepcopy(protocol)


def deep_merge(base: dict, changes: dict) -> dict:
    """A copy of ``base`` with ``changes`` merged in recursively (dict values merge, others replace;
    a value ``None`` removes the key)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _kinds(protocol: dict, symbols, directory=None) -> list[dict]:
    choices = resolve_kinds(protocol, symbols, directory)
    return [{'_': element, 'ELEMENT': element, 'BASIS_SET': choice['basis_set'], 'POTENTIAL': choice['potential']}
            for element, choice in choices.items()]


def _scf(protocol: dict, ignore_convergence_failure: bool) -> dict:
    settings = protocol['scf']
    scf = {'EPS_SCF': settings['eps_scf'], 'MAX_SCF': settings['max_scf'], 'SCF_GUESS': 'ATOMIC',
           'PRINT': {'RESTART': {'_': 'OFF'}}}
    if settings['method'] == 'OT':
        scf['OT'] = {'_': 'ON', 'MINIMIZER': settings['ot_minimizer'], 'PRECONDITIONER': settings['ot_preconditioner']}
        if settings.get('outer_max_scf'):
            scf['OUTER_SCF'] = {'_': 'ON', 'EPS_SCF': settings['eps_scf'], 'MAX_SCF': settings['outer_max_scf']}
    elif settings['method'] == 'DIAG':
        scf['DIAGONALIZATION'] = {'_': 'ON', 'ALGORITHM': 'STANDARD'}
        scf['MIXING'] = {'_': 'ON', 'METHOD': 'BROYDEN_MIXING', 'ALPHA': settings['mixing_alpha'], 'NBUFFER': 8}
    else:
        raise ValueError(f"unknown SCF method {settings['method']!r}: use OT or DIAG")
    if ignore_convergence_failure:
        scf['IGNORE_CONVERGENCE_FAILURE'] = True
    return scf


#: Dispersion corrections :func:`vdw_potential` renders (``vdw['type']``).
VDW_TYPES = ('DFTD3', 'DFTD3(BJ)', 'rVV10')

#: rVV10 b and C of Sabatini, Gorni, de Gironcoli, PRB 87, 041108 (2013), fitted with rPW86 exchange and
#: PBE correlation; CP2K's defaults of ``NON_LOCAL/PARAMETERS`` (manual of CP2K 2023.1).
RVV10_PARAMETERS = (6.3, 0.0093)

#: rVV10's kernel table in CP2K's data directory (``NON_LOCAL/KERNEL_FILE_NAME``; ``vdW_kernel_table.dat``
#: is for DRSLL/LMKLL).
RVV10_KERNEL_FILE = 'rVV10_kernel_table.dat'


def vdw_potential(vdw: dict, xc) -> dict:
    """The ``FORCE_EVAL/DFT/XC/VDW_POTENTIAL`` section of a protocol's ``vdw`` setting.

    - ``{type: DFTD3 | DFTD3(BJ), r_cutoff: Å, three_body: bool}``: Grimme's pair potential
      (``PAIR_POTENTIAL``, parameters of ``xc`` from ``dftd3.dat``; Grimme et al., J. Chem. Phys. 132,
      154104 (2010); J. Comput. Chem. 32, 1456 (2011)).
    - ``{type: rVV10, parameters: [b, C] (default :data:`RVV10_PARAMETERS`), cutoff: Ry (FFT grid of the
      non-local term; default the MGRID cutoff, CP2K's default), kernel_file: name (default
      :data:`RVV10_KERNEL_FILE`)}``: the non-local rVV10 correlation (``NON_LOCAL TYPE RVV10``; Vydrov &
      Van Voorhis, J. Chem. Phys. 133, 244103 (2010); Sabatini et al., PRB 87, 041108 (2013)). Its b and C
      belong to the semilocal functional they were fitted with: rVV10 proper is rPW86 exchange + PBE
      correlation (``xc: {GGA_X_RPW86: {}, GGA_C_PBE: {}}``, libxc); with PBE exchange b must be refitted.

    :param vdw: the setting (a dict with ``type`` of :data:`VDW_TYPES`, case-insensitive).
    :param xc: the protocol's ``xc`` (the D3 reference functional when it is a name).
    :raises ValueError: naming an unknown type or a bad value.
    """
    kind = str(vdw.get('type', ''))
    if kind.upper() in ('DFTD3', 'DFTD3(BJ)'):
        if not isinstance(xc, str):
            raise ValueError(f'vdw {kind}: the D3 reference functional must be a name, the protocol xc is {xc!r}')
        return {
            'POTENTIAL_TYPE': 'PAIR_POTENTIAL',
            'PAIR_POTENTIAL': {
                'TYPE': kind.upper(),
                'PARAMETER_FILE_NAME': 'dftd3.dat',
                'REFERENCE_FUNCTIONAL': xc,
                'R_CUTOFF': f"[angstrom] {checks.number(vdw['r_cutoff'], 'vdw.r_cutoff', gt=0, unit='Å')}",
                'CALCULATE_C9_TERM': bool(vdw.get('three_body', False)),
            },
        }
    if kind.upper() == 'RVV10':
        parameters = vdw.get('parameters', RVV10_PARAMETERS)
        if not isinstance(parameters, (list, tuple)) or len(parameters) != 2:
            raise ValueError(f'vdw rVV10: parameters must be [b, C], got {parameters!r}')
        b, c = (checks.number(v, f'vdw.parameters[{i}]', gt=0) for i, v in enumerate(parameters))
        section = {'TYPE': 'RVV10', 'PARAMETERS': f'{b} {c}',
                   'KERNEL_FILE_NAME': str(vdw.get('kernel_file', RVV10_KERNEL_FILE))}
        if vdw.get('cutoff') is not None:
            section['CUTOFF'] = checks.number(vdw['cutoff'], 'vdw.cutoff', gt=0, unit='Ry')
        return {'POTENTIAL_TYPE': 'NON_LOCAL', 'NON_LOCAL': section}
    raise ValueError(f"unsupported vdw type {vdw.get('type')!r}: use one of {', '.join(VDW_TYPES)}")


def _xc(protocol: dict) -> dict:
    xc = protocol['xc']
    functional = {'_': xc} if isinstance(xc, str) else copy.deepcopy(dict(xc))
    section = {'XC_FUNCTIONAL': functional}
    if protocol.get('vdw'):
        section['VDW_POTENTIAL'] = vdw_potential(protocol['vdw'], xc)
    return section


def vdw_overrides(vdw: dict | None, protocol, xc=None) -> dict:
    """``overrides`` for the CP2K WorkChains that replace the protocol's dispersion by ``vdw`` (and, with
    ``xc``, its functional): e.g. rVV10 on top of a D3 protocol,
    ``vdw_overrides({'type': 'rVV10'}, 'moderate', xc={'GGA_X_RPW86': {}, 'GGA_C_PBE': {}})``. ``vdw`` None
    removes the dispersion. Keys of the old section that the new one does not have are removed (``None``,
    see :func:`deep_merge`).

    :raises ValueError: as :func:`vdw_potential`, or for an unknown protocol.
    """
    protocol = _resolve(protocol)
    old = _xc(protocol)
    new = _xc({**protocol, 'vdw': vdw, 'xc': protocol['xc'] if xc is None else xc})
    changes = {}
    for name in set(old) | set(new):
        if name not in new:
            changes[name] = None
        else:
            changes[name] = {**dict.fromkeys(old.get(name, {})), **new[name]}
    return {'FORCE_EVAL': {'DFT': {'XC': changes}}}


def single_point_parameters(protocol, symbols, *, ignore_convergence_failure: bool = False) -> dict:
    """aiida-cp2k ``parameters`` for an energy, forces and analytical stress single point.

    :param protocol: a protocol name (see :func:`load_protocol`) or a protocol dict.
    :param symbols: chemical symbols of the structure (one ``KIND`` per distinct element, its basis set
        and pseudopotential chosen by :func:`~aiida_mlfail.science.cp2k_library.resolve_kinds` from the
        files of :func:`~aiida_mlfail.science.cp2k_library.data_dir`).
    :param ignore_convergence_failure: add ``SCF/IGNORE_CONVERGENCE_FAILURE`` (CP2K >= 2024.1 only;
        those versions abort on an unconverged SCF without it, 2023.1 ends normally and rejects
        the keyword as unknown).
    :returns: nested dict with ``GLOBAL`` (RUN_TYPE ENERGY_FORCE) and ``FORCE_EVAL`` (METHOD QS,
        STRESS_TENSOR ANALYTICAL, PRINT FORCES and STRESS_TENSOR on, DFT, SUBSYS with one KIND per
        element and the cell printed (for the volume)); the output is what
        :func:`aiida_mlfail.science.outputs.cp2k.parse_cp2k_output` reads.
    :raises ValueError: for an unknown protocol, no symbols, an element the protocol cannot describe
        (:func:`~aiida_mlfail.science.cp2k_library.resolve_kinds`) or an unsupported dispersion setting
        (:func:`vdw_potential`).
    """
    protocol = _resolve(protocol)
    return {
        'GLOBAL': {'RUN_TYPE': 'ENERGY_FORCE', 'PRINT_LEVEL': 'LOW'},
        'FORCE_EVAL': {
            'METHOD': 'QS',
            'STRESS_TENSOR': 'ANALYTICAL',
            'PRINT': {'FORCES': {'_': 'ON'}, 'STRESS_TENSOR': {'_': 'ON'}},
            'DFT': {
                'BASIS_SET_FILE_NAME': protocol['basis_set_file'],
                'POTENTIAL_FILE_NAME': protocol['potential_file'],
                'MGRID': {'CUTOFF': protocol['cutoff'], 'REL_CUTOFF': protocol['rel_cutoff']},
                'QS': {'METHOD': protocol['method'], 'EPS_DEFAULT': protocol['eps_default']},
                'SCF': _scf(protocol, ignore_convergence_failure),
                'XC': _xc(protocol),
            },
            'SUBSYS': {'KIND': _kinds(protocol, symbols), 'PRINT': {'CELL': {'_': 'ON'}}},
        },
    }


def aimd_parameters(protocol, symbols, temperature: float, steps: int, timestep_fs: float = 1.0,
                    thermostat: str = 'CSVR', thermostat_timecon_fs: float = 100.0, seed: int = 2000,
                    ignore_convergence_failure: bool = False, checkpoint_interval: int = 1) -> dict:
    """aiida-cp2k ``parameters`` for Born-Oppenheimer NVT MD whose frames carry energy, forces and stress.

    Every step writes the positions (``<project>-pos-1.xyz``, Å), forces (``-frc-1.xyz``,
    Hartree/Bohr), the energies (``-1.ener``, Hartree), the cell (``-1.cell``, Å) and the total
    pressure tensor (``-1.stress``, bar, kinetic part included: diagnostics only); the analytical
    stress of every force evaluation goes to the main output (``STRESS|`` blocks, potential part
    only), from which :func:`aiida_mlfail.science.outputs.cp2k.parse_cp2k_md` takes the virial. The initial
    velocities are drawn at ``temperature`` from ``GLOBAL/SEED``.

    :param protocol: protocol name or dict (as for :func:`single_point_parameters`).
    :param symbols: chemical symbols of the structure.
    :param temperature: thermostat and initial-velocity temperature (K, > 0).
    :param steps: number of MD steps (>= 1; CP2K writes steps 0 .. steps).
    :param timestep_fs: time step (fs, > 0).
    :param thermostat: ``CSVR`` (stochastic velocity rescaling) or ``NOSE`` (Nose-Hoover chain of 3).
    :param thermostat_timecon_fs: thermostat time constant (fs, > 0).
    :param seed: ``GLOBAL/SEED`` (initial velocities, CSVR noise).
    :param ignore_convergence_failure: as for :func:`single_point_parameters`.
    :param checkpoint_interval: MD steps between the checkpoints CP2K writes (:data:`AIMD_RESTART_FILE`,
        ``MOTION/PRINT/RESTART`` ``EACH/MD``), from which a stopped run continues
        (:func:`md_continuation`); CP2K writes none when it stops at ``GLOBAL/WALLTIME``, so the steps
        after the last checkpoint are run again. 1 (default) costs a small file write per DFT step.
    :raises ValueError: naming the offending argument.
    """
    checkpoint_interval = checks.integer(checkpoint_interval, 'checkpoint_interval', ge=1)
    # checked, but written as given (the CP2K input text, hence the job's hash, stays that of the caller's values)
    checks.number(temperature, 'temperature', gt=0, unit='K')
    steps = checks.integer(steps, 'steps', ge=1)
    checks.number(timestep_fs, 'timestep_fs', gt=0, unit='fs')
    checks.number(thermostat_timecon_fs, 'thermostat_timecon_fs', gt=0, unit='fs')
    seed = checks.integer(seed, 'seed', ge=0)
    if not isinstance(thermostat, str):
        raise ValueError(f'thermostat must be one of {_THERMOSTATS}, got {thermostat!r}')
    thermostat = thermostat.upper()
    if thermostat not in _THERMOSTATS:
        raise ValueError(f'thermostat must be one of {_THERMOSTATS}, got {thermostat!r}')
    parameters = single_point_parameters(protocol, symbols, ignore_convergence_failure=ignore_convergence_failure)
    parameters['GLOBAL'] = {'RUN_TYPE': 'MD', 'PRINT_LEVEL': 'LOW', 'SEED': int(seed)}
    parameters['FORCE_EVAL']['PRINT']['FORCES'] = {'_': 'OFF'}  # in -frc-1.xyz; keeps the output small
    timecon = {'TIMECON': f'[fs] {thermostat_timecon_fs}'}
    each_step = {'EACH': {'MD': 1}}
    parameters['MOTION'] = {
        'MD': {
            'ENSEMBLE': 'NVT',
            'STEPS': int(steps),
            'TIMESTEP': f'[fs] {timestep_fs}',
            'TEMPERATURE': f'[K] {temperature}',
            'THERMOSTAT': {'TYPE': thermostat, 'REGION': 'GLOBAL',
                           thermostat: timecon if thermostat == 'CSVR' else {'LENGTH': 3, **timecon}},
            'PRINT': {'ENERGY': {'_': 'ON', **each_step}},
        },
        'PRINT': {
            'TRAJECTORY': {'_': 'ON', 'FORMAT': 'XYZ', **each_step},
            'FORCES': {'_': 'ON', 'FORMAT': 'XYZ', **each_step},
            'CELL': {'_': 'ON', **each_step},
            'STRESS': {'_': 'ON', **each_step},
            'RESTART': {'_': 'ON', 'BACKUP_COPIES': 0, 'EACH': {'MD': checkpoint_interval}},
            'RESTART_HISTORY': {'_': 'OFF'},
        },
    }
    return parameters


_STEP_START_VAL = re.compile(r'^\s*STEP_START_VAL\s+(\d+)\s*$', re.M)


def restart_step(restart_text: str) -> int:
    """The MD step of a CP2K checkpoint (:data:`AIMD_RESTART_FILE`): its ``MOTION/MD/STEP_START_VAL``.

    :raises ValueError: if the text has no ``STEP_START_VAL`` (not an MD restart file, or cut).
    """
    match = _STEP_START_VAL.search(restart_text)
    if match is None:
        raise ValueError('the CP2K restart file has no MOTION/MD/STEP_START_VAL: not an MD checkpoint, or cut')
    return int(match.group(1))


def md_continuation(parameters: dict, checkpoint_step: int, total_steps: int, folder: str = PARENT_FOLDER) -> dict:
    """``parameters`` of an MD run continuing from the checkpoint of a previous job linked as ``folder``.

    ``EXT_RESTART/RESTART_FILE_NAME`` = ``folder/``:data:`AIMD_RESTART_FILE` with CP2K's defaults
    (``RESTART_DEFAULT``: positions, velocities, thermostat and random-number state, and the step
    counter, so the continuation writes steps ``checkpoint_step + 1`` ...), and ``MOTION/MD/STEPS`` =
    ``total_steps - checkpoint_step``: CP2K counts ``STEPS`` from the restarted step (CP2K 2023.1,
    measured: a run stopped at step 3 with ``STEPS 10`` and restarted unchanged went on to step 13).
    Checked here on 8 NaCl ions (fast protocol, CSVR): the continued steps' energies equal an
    uninterrupted run's to 1e-9 Hartree. Returns a new dict.

    :raises ValueError: if ``checkpoint_step`` is not in ``0 .. total_steps - 1``.
    """
    checkpoint_step = checks.integer(checkpoint_step, 'checkpoint_step', ge=0)
    if checkpoint_step >= total_steps:
        raise ValueError(f'checkpoint_step must be below total_steps {total_steps}, got {checkpoint_step}')
    return deep_merge(parameters, {'EXT_RESTART': {'RESTART_FILE_NAME': f'{folder}/{AIMD_RESTART_FILE}'},
                                   'MOTION': {'MD': {'STEPS': int(total_steps - checkpoint_step)}}})


def _ot_restarts(scf: dict) -> list[tuple[str, dict]]:
    return [
        ('doubled MAX_SCF and switched the OT preconditioner to FULL_ALL',
         {'MAX_SCF': 2 * scf['MAX_SCF'], 'OT': {'PRECONDITIONER': 'FULL_ALL'}}),
        ('switched the OT minimizer to CG with a 2-point line search and added an outer SCF loop of 20',
         {'OT': {'MINIMIZER': 'CG', 'LINESEARCH': '2PNT'},
          'OUTER_SCF': {'_': 'ON', 'EPS_SCF': scf['EPS_SCF'], 'MAX_SCF': 20}}),
        ('replaced OT by diagonalisation with Broyden mixing (alpha 0.1) and MAX_SCF 300',
         {'OT': None, 'OUTER_SCF': None, 'MAX_SCF': 300, 'DIAGONALIZATION': {'_': 'ON', 'ALGORITHM': 'STANDARD'},
          'MIXING': {'_': 'ON', 'METHOD': 'BROYDEN_MIXING', 'ALPHA': 0.1, 'NBUFFER': 8}}),
    ]


def _diag_restarts(scf: dict) -> list[tuple[str, dict]]:
    alpha = float(scf.get('MIXING', {}).get('ALPHA', 0.4))
    return [
        (f'doubled MAX_SCF and halved the mixing alpha to {alpha / 2:g}',
         {'MAX_SCF': 2 * scf['MAX_SCF'], 'MIXING': {'ALPHA': alpha / 2}}),
        (f'halved the mixing alpha to {alpha / 2:g} with a Broyden history of 15',
         {'MIXING': {'ALPHA': alpha / 2, 'NBUFFER': 15}}),
        ('replaced diagonalisation by OT (CG minimizer, FULL_ALL preconditioner) with an outer SCF loop of 20',
         {'DIAGONALIZATION': None, 'MIXING': None, 'ADDED_MOS': None,
          'OT': {'_': 'ON', 'MINIMIZER': 'CG', 'PRECONDITIONER': 'FULL_ALL'},
          'OUTER_SCF': {'_': 'ON', 'EPS_SCF': scf['EPS_SCF'], 'MAX_SCF': 20}}),
    ]


#: Number of restarts :func:`scf_restart_changes` knows.
MAX_SCF_RESTARTS = 3


def scf_restart_changes(parameters: dict, attempt: int) -> tuple[dict, str]:
    """The parameters for restart ``attempt`` (1, 2, ...) after an unconverged SCF, and what changed.

    With OT (``SCF/OT`` present): 1. double ``MAX_SCF`` and use the FULL_ALL preconditioner;
    2. CG minimizer with a 2-point line search and an outer SCF loop; 3. diagonalisation with
    Broyden mixing (alpha 0.1). With diagonalisation: 1. double ``MAX_SCF`` and halve the mixing
    alpha; 2. halve alpha again with a longer Broyden history; 3. OT (CG, FULL_ALL) with an outer
    loop. The scheme is chosen from ``parameters`` and each attempt is applied to them, so calling
    it on the previous attempt's output accumulates the changes (the intended use).

    :param parameters: the aiida-cp2k parameters of the failed run (not modified).
    :param attempt: 1-based restart number.
    :returns: ``(new_parameters, description)``.
    :raises ValueError: if ``attempt`` is not in 1 .. :data:`MAX_SCF_RESTARTS` or the parameters
        have no ``FORCE_EVAL/DFT/SCF`` section.
    """
    if not 1 <= attempt <= MAX_SCF_RESTARTS:
        raise ValueError(f'SCF restart attempt must be in 1..{MAX_SCF_RESTARTS}, got {attempt!r}')
    try:
        scf = parameters['FORCE_EVAL']['DFT']['SCF']
    except (KeyError, TypeError) as exc:
        raise ValueError('parameters have no FORCE_EVAL/DFT/SCF section') from exc
    restarts = _ot_restarts(scf) if 'OT' in scf else _diag_restarts(scf)
    description, change = restarts[attempt - 1]
    new = copy.deepcopy(parameters)
    new['FORCE_EVAL']['DFT']['SCF'] = deep_merge(scf, change)
    return new, f'SCF restart {attempt}: {description}'


#: The wavefunction CP2K writes with ``SCF/PRINT/RESTART`` on (``<project>-RESTART.wfn``).
WFN_RESTART_FILE = f'{PROJECT}-RESTART.wfn'



def job_parameters(parameters: dict, max_wallclock_seconds: float) -> dict:
    """``parameters`` made restartable for a job of ``max_wallclock_seconds``: CP2K writes the
    wavefunction (``SCF/PRINT/RESTART`` on, no backup copies; at the end of every SCF and every 20 SCF
    steps, CP2K defaults) and stops itself at ``GLOBAL/WALLTIME`` = ``min(0.9 T, T - 60 s)`` (at
    least 1 s), before the scheduler would kill it: it then ends the SCF, prints the forces and the
    line ``SCF run terminated - exceeded requested execution time``, so the job can be restarted from
    the wavefunction (:func:`wavefunction_restart`). A ``GLOBAL/WALLTIME`` already in ``parameters``
    is kept. Returns a new dict.

    :raises ValueError: for a non-positive wall time.
    """
    if not max_wallclock_seconds > 0:
        raise ValueError(f'max_wallclock_seconds must be positive, got {max_wallclock_seconds!r}')
    walltime = max(1, int(min(0.9 * max_wallclock_seconds, max_wallclock_seconds - 60)))
    changes = {'FORCE_EVAL': {'DFT': {'SCF': {'PRINT': {'RESTART': {'_': 'ON', 'BACKUP_COPIES': 0}}}}}}
    if 'WALLTIME' not in parameters.get('GLOBAL', {}):
        changes['GLOBAL'] = {'WALLTIME': walltime}
    return deep_merge(parameters, changes)


def wavefunction_restart(parameters: dict, folder: str = PARENT_FOLDER) -> dict:
    """``parameters`` starting the SCF from the wavefunction of a previous job linked as ``folder``
    (``DFT/WFN_RESTART_FILE_NAME`` and ``SCF/SCF_GUESS RESTART``; CP2K falls back to the atomic guess
    with a warning when the file does not exist). Returns a new dict."""
    return deep_merge(parameters, {'FORCE_EVAL': {'DFT': {'WFN_RESTART_FILE_NAME': f'{folder}/{WFN_RESTART_FILE}',
                                                          'SCF': {'SCF_GUESS': 'RESTART'}}}})


#: CP2K keywords whose value names a file the job WRITES (print keys' ``FILENAME``, the project name that
#: prefixes every output file): a bare name only (CP2K manual, ``GLOBAL/PROJECT`` and the ``FILENAME``
#: keyword of every print key, https://manual.cp2k.org/). Keywords naming files CP2K reads (basis set,
#: potential, parameter files) may be paths.
WRITTEN_FILE_KEYWORDS = ('FILENAME', 'PROJECT', 'PROJECT_NAME')

_CP2K_NAME = re.compile(r'[A-Za-z0-9_+\-]+\Z')
#: Characters that change the structure of a CP2K input: a new line, a section start (``&``), the
#: preprocessor (``@INCLUDE``, ``@SET``, ...) and its variables (``$``), a comment (``!``, ``#``).
_CP2K_FORBIDDEN = re.compile(r'[\n\r&@$!#]')


def check_overrides(overrides, where: str = 'overrides') -> None:
    """Check the keys and values of CP2K input overrides (nested dicts as aiida-cp2k turns into an input file)
    as untrusted text.

    Section and keyword names: letters, digits, ``_``, ``+``, ``-``. String values: no new line, ``&``,
    ``@``, ``$``, ``!`` or ``#`` (they would start a section, a preprocessor directive such as
    ``@INCLUDE``, a variable or a comment); the value of a keyword of :data:`WRITTEN_FILE_KEYWORDS` is a
    bare file name (CP2K's leading ``=`` allowed; no ``/``, no ``..``), so no output is written outside
    the job folder. Numbers are finite. Lists are repeated keywords or sections.

    :raises ValueError: naming the dotted key and the value.
    """
    import math

    def walk(value, path, key):
        if isinstance(value, dict):
            for name, child in value.items():
                if not isinstance(name, str) or not _CP2K_NAME.match(name):
                    raise ValueError(f'{path}: {name!r} is not a CP2K section or keyword name '
                                     '(letters, digits, _, + and -)')
                walk(child, f'{path}.{name}', name)
        elif isinstance(value, (list, tuple)):
            for index, child in enumerate(value):
                walk(child, f'{path}[{index}]', key)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise ValueError(f'{path} must be a finite number, got {value!r}')
        elif isinstance(value, str):
            if _CP2K_FORBIDDEN.search(value):
                raise ValueError(f'{path}: {value!r} contains a character that changes the CP2K input '
                                 '(new line, &, @, $, ! or #)')
            if key is not None and key.upper() in WRITTEN_FILE_KEYWORDS:
                name = value.strip().lstrip('=')
                if not name or '/' in name or '\\' in name or '..' in name:
                    raise ValueError(f'{path}: the file CP2K writes must be a bare file name in the job folder, '
                                     f'got {value!r}')
        else:
            raise ValueError(f'{path}: {value!r} is not a CP2K value (text, number, boolean or a list)')

    if not isinstance(overrides, dict):
        raise ValueError(f'{where} must be a mapping of CP2K sections, got {overrides!r}')
    walk(overrides, where, None)
