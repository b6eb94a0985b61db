"""``mlfail.explore``: the explorer of the active learner as one job.

GAP MD in LAMMPS (``mlfail-explore``, :mod:`aiida_mlfail.engines.explore`) until the current
configuration is novel (its largest REMatch similarity to the training configurations is below
``critical_similarity``), a failure guard trips, LAMMPS fails, or ``max_steps`` are done. The
training configurations go to the job as a bare extxyz (``references.xyz``) and the job computes their
SOAP spectra (``science.explore.read_references``), so the daemon does no SOAP. REMatch: De, Bartók,
Csányi, Ceriotti, PCCP 18, 13754 (2016); guards: LAMMPS ``fix halt`` (https://docs.lammps.org/fix_halt.html).

Checkpoints: the engine writes ``checkpoint/`` (a LAMMPS restart file and its state) every
``checkpoint_interval`` steps, and deletes the older restart file once the state names the newer one, so the
folder holds ``state.json`` and one restart file (two while a checkpoint is written); with ``parent_folder`` (the
``remote_folder`` of an earlier job of the same exploration) that folder, i.e. just what the continuation reads,
is copied into the new job (``remote_copy_list``, on the same computer) and the
engine continues from it (:mod:`aiida_mlfail.engines.explore`). A parent folder without a checkpoint is
skipped by aiida-core's copy (a warning in the job's log) and the exploration starts at step 0.
"""

from __future__ import annotations

import io

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_mlfail.calculations.common import (
    define_job_defaults,
    dict_validator,
    port_excluded,
    structure_validator,
)
from aiida_mlfail.data.gap_potential import GapPotentialData, validate_potential
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import explore as sx
from aiida_mlfail.science.signals import SIGNALS_FILE

STDOUT, STDERR = 'explore.out', 'explore.err'


#: Port validator of ``parameters`` (normalise_explore: the message names the bad value).
validate_parameters = dict_validator(sx.normalise_explore, 'parameters')


def validate_explore_inputs(value, ctx=None):
    """Namespace validator: ``parent_folder`` on the computer of the code, species of the structure described by
    the GAP, and SOAP species (when given)
    covering the species of the structure and of the training set, per-pair guard distances naming only
    species of the structure (messages name them). The structure
    itself (3-D periodic, no overlapping atoms) is checked by its port validator.

    A check that needs a port absent from the namespace ``ctx`` (excluded by a wrapping process, as the
    active learner excludes ``potential`` and ``training_set``) is skipped, the others run
    (:func:`~aiida_mlfail.calculations.common.port_excluded`)."""
    structure, potential = value.get('structure'), value.get('potential')
    training_set, parameters = value.get('training_set'), value.get('parameters')
    parent, code = value.get('parent_folder'), value.get('code')
    if parent is not None and code is not None and getattr(code, 'computer', None) is not None \
            and parent.computer is not None and parent.computer.uuid != code.computer.uuid:
        return (f'parent_folder is on the computer {parent.computer.label!r}, the code {code.label!r} runs on '
                f'{code.computer.label!r}: the checkpoint can only be copied on the same computer')
    if structure is None:
        return None
    symbols = set(structure.get_symbols_set())
    if not port_excluded(ctx, 'potential'):
        if potential is None:
            return None
        missing = sorted(symbols - set(potential.species))
        if missing:
            return f'species {missing} of the structure are not described by the GAP (species {potential.species})'
    if (message := _oracle_message(value, symbols, parameters)) is not None:
        return message
    guards = (parameters.get_dict().get('guards') or {}) if parameters is not None else {}
    limits = guards.get('min_distance') if isinstance(guards, dict) else None
    if isinstance(limits, dict):  # per-pair thresholds of species of the structure or the training set
        known = set(symbols)      # (the keys themselves are checked by the parameters' port validator)
        if training_set is not None and not port_excluded(ctx, 'training_set'):
            known |= set(training_set.species)
        for key in limits:
            parts = set(key.split('-') if isinstance(key, str) else key)
            if not parts <= known:
                return (f'parameters.guards.min_distance names the pair {key!r}, but the structure and training set '
                        f'have the species {sorted(known)} only')
    soap_species = ((parameters.get_dict().get('soap') or {}).get('species') if parameters is not None else None)
    if not soap_species:
        return None
    covered = [('structure', symbols)]
    if training_set is not None and not port_excluded(ctx, 'training_set'):
        covered.append(('training_set', set(training_set.species)))
    for name, species in covered:
        missing = sorted(species - set(soap_species))
        if missing:
            return (f'parameters.soap.species {sorted(soap_species)} do not cover the species {missing} '
                    f'of the {name}')
    return None


def _oracle_message(value, symbols, parameters) -> str | None:
    """Oracle mode and its reference go together; the reference describes the structure and has its files."""
    oracle = parameters.get_dict().get('oracle', False) if parameters is not None else False
    reference = value.get('oracle_reference')
    if oracle and reference is None:
        return ('parameters.oracle is true but no oracle_reference is given: the calibration mode evaluates every '
                'checked configuration with the classical reference')
    if reference is not None and not oracle:
        return 'an oracle_reference is given but parameters.oracle is not true'
    if reference is not None:
        message = _oracle_reference_message(reference.get_dict(), symbols, value.get('oracle_files') or {})
        if message:
            return message
    return None


def _oracle_reference_message(reference: dict, symbols, files: dict) -> str | None:
    """Why the oracle reference cannot serve a structure of ``symbols`` with ``files`` (None when it can)."""
    from aiida_mlfail.science.potentials import ReferencePotential, files_message  # noqa: PLC0415

    try:
        potential = ReferencePotential.from_dict(reference)
        potential.check_species(symbols)
    except ValueError as exc:
        return f'oracle_reference: {exc}'
    if potential.atom_style == 'full':
        return 'oracle_reference: atom_style full (a topology) is not supported by the oracle; use atomic or charge'
    message = files_message(potential.files, [node.filename for node in files.values()])
    return f'oracle_files: {message}' if message else None


class ExploreCalculation(CalcJob):
    """GAP MD that stops at the first novel configuration or failure (``mlfail.explore``).

    Outputs:

    * ``results`` (``Dict``): ``stop_reason`` (``novel``, ``max_steps``, ``volume_blowup``,
      ``too_close_atoms``, ``temperature_runaway``, ``energy_runaway``, ``lost_atoms``,
      ``lammps_error``), ``stop_step``, ``steps_run``, ``similarity`` (of the stop configuration,
      ``None`` when not computable), ``reference_index``, ``min_similarity``, ``n_checks``,
      ``message``, ``guard_value``, ``critical_similarity``, ``n_atoms``, ``n_references``,
      ``previous`` (step, similarity, reference_index of ``previous_configuration``),
      ``checkpoint_step`` (the newest checkpoint in the job's folder, ``None`` without),
      ``resumed_from`` (the checkpoint steps this exploration was continued from, oldest first; ``[]`` for
      a job that started at step 0) and ``timings`` (s; ``checkpoint`` when one was written);
    * ``configuration`` (``StructureData``): the configuration at the stop (the novel one, the last
      one at ``max_steps``, the one on which a guard tripped), with attributes ``md_step``,
      ``similarity``, ``reference_index``, ``stop_reason``; absent only after a LAMMPS error that
      left no usable configuration;
    * ``previous_configuration`` (``StructureData``, guard stops and LAMMPS errors): the last
      configuration that passed the novelty check, same attributes (``stop_reason`` ``previous``);
    * ``similarity`` (``ArrayData``): ``step``, ``similarity`` (NaN when not computable),
      ``reference_index`` (-1 then) of every novelty check (step 0, every ``comparison_step``) and,
      after a guard or LAMMPS error stop, of the stop configuration (``n_checks`` rows);
    * ``signals`` (``ArrayData``): one array per ``science.signals.SIGNAL_COLUMNS`` (every check:
      REMatch similarity, largest and mean local GAP variance, T, AFM, P, P_virial, the guards'
      quantities and, in oracle mode, the GAP's energy/force/virial errors against ``oracle_reference``);
    * ``thermo`` (``ArrayData``): ``step``, ``temperature`` (K), ``potential_energy``,
      ``kinetic_energy``, ``total_energy`` (eV), ``pressure`` (bar), ``volume`` (Å^3).

    Exit status 0 for ``novel`` and ``max_steps``; 410 for a guard stop, 411 for lost atoms, 412
    for another LAMMPS error (all outputs still attached).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('potential', valid_type=GapPotentialData, validator=validate_potential,
                   help='The GAP driving the MD (its files and init string are checked).')
        spec.input('structure', valid_type=orm.StructureData, validator=structure_validator('structure'),
                   help='The start configuration (periodic, no overlapping atoms: science.structures.check_structure).')
        spec.input('training_set', valid_type=TrainingSetData,
                   help='The reference configurations of the novelty check (labels are ignored).')
        spec.input('parameters', valid_type=orm.Dict, validator=validate_parameters,
                   help='max_steps, comparison_step, critical_similarity in (0, 1], novelty_signal (rematch, variance, '
                        'both), critical_variance (eV^2, the largest local GAP variance that is not novel), oracle '
                        '(calibration mode, with oracle_reference), soap (species, r_cut Å, n_max, '
                        'l_max, sigma Å, rbf), alpha, threshold; ensemble NVT/NPT, temperature (K), pressure (bar), '
                        'timestep (fs), thermo_interval, seed, dampings (fs), reference_volume (Å^3), guards '
                        '(volume_factor, min_distance: none for 0.35 x the shortest distance of each species pair '
                        "in the training set, a number in Å for every pair, or {'A-B': Å}; temperature_factor, "
                        'max_energy_change_per_atom eV/atom: '
                        'largest '
                        'change of the potential energy per atom from the start of the run).')
        spec.input('parent_folder', valid_type=orm.RemoteData, required=False,
                   help='The remote folder of an earlier job of the same exploration (same parameters except '
                        'max_steps / checkpoint_interval, structure, training set): its checkpoint/ folder (the '
                        'state and the one restart file it names) is copied and the exploration continues from '
                        'its last checkpoint (ExploreRestartWorkChain sets it after a walltime or cancellation).')
        spec.input('oracle_reference', valid_type=orm.Dict, required=False,
                   help='Oracle (calibration) mode only (parameters.oracle true): the classical reference '
                        '(ReferencePotential.to_dict(), atom_style atomic or charge) evaluating every checked '
                        "configuration in a second LAMMPS instance of the job; the GAP's errors go to the signals "
                        'output.')
        spec.input_namespace('oracle_files', valid_type=orm.SinglefileData, dynamic=True, required=False,
                             help='The files of the oracle reference (by their filename).')
        spec.inputs.validator = validate_explore_inputs
        define_job_defaults(spec, 'mlfail.explore', withmpi=False)  # parser, resources, exit code 350
        spec.output('results', valid_type=orm.Dict, help='Stop reason, step, similarities, timings.')
        spec.output('configuration', valid_type=orm.StructureData, required=False,
                    help='The configuration at the stop; attributes md_step, similarity, reference_index, stop_reason.')
        spec.output('previous_configuration', valid_type=orm.StructureData, required=False,
                    help='After a guard stop or LAMMPS error: the last configuration that passed the novelty check.')
        spec.output('similarity', valid_type=orm.ArrayData,
                    help='step, similarity, reference_index of every check (and of a guard/error stop configuration).')
        spec.output('signals', valid_type=orm.ArrayData, required=False,
                    help='Every signal of every check (science.signals.SIGNAL_COLUMNS: similarity, GAP variance, '
                         "T, AFM, P, P_virial, guard quantities) and, in oracle mode, the GAP's errors; attribute "
                         'units.')
        spec.output('thermo', valid_type=orm.ArrayData,
                    help='step, temperature (K), potential/kinetic/total energy (eV), pressure (bar), volume (Å^3).')
        spec.exit_code(301, 'ERROR_OUTPUT_MISSING', message='mlfail-explore wrote no {filename}: {error}')
        spec.exit_code(302, 'ERROR_OUTPUT_INVALID', message='an output of mlfail-explore is invalid: {error}')
        spec.exit_code(410, 'ERROR_MD_EXPLODED',
                       message='the exploration was stopped by the {reason} guard at step {step}: {message} '
                               '(outputs stored)')
        spec.exit_code(411, 'ERROR_LOST_ATOMS', message='LAMMPS lost atoms at step {step}: {message} (outputs stored)')
        spec.exit_code(412, 'ERROR_LAMMPS', message='LAMMPS failed at step {step}: {message} (outputs stored)')
        spec.exit_code(413, 'ERROR_NON_FINITE',
                       message='the run produced a NaN or infinite {quantity} at step {step} (overlapping atoms or an '
                               'exploding potential?) (outputs stored)')

    def prepare_for_submission(self, folder):
        potential = self.inputs.potential
        atoms = self.inputs.structure.get_ase()
        symbols = set(atoms.get_chemical_symbols())
        type_map = [s for s in potential.species if s in symbols]
        oracle = self.inputs.oracle_reference.get_dict() if 'oracle_reference' in self.inputs else None
        files = sx.job_files(atoms, type_map, potential.lammps_pair_commands(type_map),
                             self.inputs.parameters.get_dict(), self.inputs.training_set.get_atoms(), oracle)
        for name, content in files.items():
            folder.create_file_from_filelike(io.BytesIO(content), name, mode='wb')
        for node in (self.inputs.oracle_files.values() if 'oracle_files' in self.inputs else ()):
            with node.open(mode='rb') as handle:
                folder.create_file_from_filelike(handle, node.filename, mode='wb')
        gap_files = potential.upload(folder)
        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [sx.INPUT_FILE]
        codeinfo.stdout_name = STDOUT
        codeinfo.stderr_name = STDERR
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [sx.RESULTS_FILE, sx.SIMILARITY_FILE, SIGNALS_FILE, sx.THERMO_FILE, sx.TRIGGER_FILE,
                                  sx.PREVIOUS_FILE, sx.LOG_FILE, sx.SCRIPT_FILE, STDOUT, STDERR]
        calcinfo.provenance_exclude_list = [*gap_files, sx.REFERENCE_FILE]
        if 'parent_folder' in self.inputs:
            parent = self.inputs.parent_folder
            calcinfo.remote_copy_list = [(parent.computer.uuid, f'{parent.get_remote_path()}/{sx.CHECKPOINT_DIR}',
                                          sx.CHECKPOINT_DIR)]
        return calcinfo
