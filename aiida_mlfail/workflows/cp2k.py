"""CP2K (DFT) as the reference: a restartable single point and an NVT AIMD run, through aiida-cp2k.

* ``Cp2kSinglePointWorkChain`` (``mlfail.cp2k_single_point``): energy, forces and analytical stress of
  one structure with a protocol of ``protocols/cp2k.yaml``, as a one-configuration ``TrainingSetData``.
  A ``BaseRestartWorkChain`` around aiida-cp2k's ``Cp2kCalculation`` (``cp2k``) with our handlers
  (aiida-cp2k's ``Cp2kBaseWorkChain`` has its own, which cannot see an SCF that CP2K 2023.1 ends
  normally): every finished job goes through the parse step ``parse_single_point`` (a calcfunction:
  420 when the SCF did not converge), then ``handle_unrecoverable``, ``handle_walltime`` and
  ``handle_scf_not_converged`` decide.
* ``Cp2kAimdWorkChain`` (``mlfail.aimd``, in :mod:`aiida_mlfail.workflows.cp2k_aimd`): Born-Oppenheimer NVT MD
  whose frames (energy, forces, stress) become a ``TrainingSetData``, continued from CP2K's checkpoint
  when a job stops at its wall time.

What aiida-cp2k 2.1's ``cp2k_base_parser`` reports (``aiida_cp2k/parsers/__init__.py``): 304 when the
output contains ``ABORT`` (450 if that abort is CP2K >= 2024.1 stopping on an unconverged SCF), 400 when
CP2K stopped at ``GLOBAL/WALLTIME`` (``exceeded requested execution time``), 303 when ``PROGRAM STOPPED IN``
is missing (killed job; this also hides the scheduler's 120), else 0, also for an unconverged SCF in
CP2K 2023.1, which warns and goes on. CP2K manual: https://manual.cp2k.org/trunk/CP2K_INPUT/GLOBAL.html
(WALLTIME), ``FORCE_EVAL/DFT`` (WFN_RESTART_FILE_NAME, SCF/SCF_GUESS, SCF/PRINT/RESTART).
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_
from aiida.plugins import CalculationFactory

from aiida_mlfail.calculations.cp2k import OUTPUT, PARSE_EXIT_STATUS, parse_single_point, read_retrieved
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.parsers.cp2k import abort_message
from aiida_mlfail.science import checks
from aiida_mlfail.science import cp2k as cp2k_science
from aiida_mlfail.workflows.common import forbid_cache_source, node_validator, port_excluded, structure_validator
from aiida_mlfail.workflows.protocols import ProtocolMixin, as_structure, resolve_codes
from aiida_mlfail.workflows.protocols import job_options as protocol_job_options
from aiida_mlfail.workflows.restart import ReportErrorHandledMixin

Cp2kCalculation = CalculationFactory('cp2k')

#: Exit statuses of ``Cp2kCalculation`` (aiida-cp2k) and ``CalcJob`` the handlers act on.
WALLTIME_STATUSES = (Cp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status,  # 400: CP2K stopped at GLOBAL/WALLTIME
                     Cp2kCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME.status)  # 120: the scheduler
SCF_ABORT_STATUS = Cp2kCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED.status  # 450: CP2K >= 2024.1 aborted
#: Exit status of the parse steps (``parse_single_point``, ``parse_aimd``) for an SCF that did not converge.
PARSE_SCF_NOT_CONVERGED = PARSE_EXIT_STATUS['scf_not_converged']  # 420
#: Protocol used when none is given.
DEFAULT_PROTOCOL = 'fast'
#: Top-level sections ``overrides`` may change.
OVERRIDE_SECTIONS = ('GLOBAL', 'FORCE_EVAL', 'MOTION')


def check_protocol(value, ctx=None):
    """Port validator of ``protocol`` (Str): the message names the unknown protocol and the known ones."""
    try:
        cp2k_science.load_protocol(value.value)
    except ValueError as exc:
        return f'protocol: {exc}'
    return None


def _check_overrides(value, ctx=None):
    """Port validator of ``overrides``: top-level CP2K sections only, each a dict (or None to remove it), checked
    as untrusted text by :func:`aiida_mlfail.science.cp2k.check_overrides` (names, finite numbers, no line
    break or preprocessor character in a value, bare names for the files CP2K writes)."""
    overrides = value.get_dict()
    unknown = [key for key in overrides if key not in OVERRIDE_SECTIONS]
    if unknown:
        return f'overrides: unknown top-level section(s) {unknown}; allowed: {list(OVERRIDE_SECTIONS)}'
    wrong = [key for key, section in overrides.items() if section is not None and not isinstance(section, dict)]
    if wrong:
        return f'overrides: section(s) {wrong} must be dicts of CP2K keywords'
    try:
        cp2k_science.check_overrides(overrides, 'overrides')
    except ValueError as exc:
        return str(exc)
    return None


#: Integer ``resources`` of ``metadata.options`` checked as positive integers.
_RESOURCE_INTEGERS = ('num_machines', 'num_mpiprocs_per_machine', 'tot_num_mpiprocs', 'num_cores_per_machine',
                      'num_cores_per_mpiproc')


def _check_options(value, ctx=None):
    """Port validator of ``options``: keys of ``Cp2kCalculation``'s ``metadata.options``; positive integers for
    ``max_wallclock_seconds``, ``max_memory_kb`` and the counts of ``resources``; a bool ``withmpi``."""
    allowed = set(Cp2kCalculation.spec().inputs['metadata']['options'])
    options = value.get_dict()
    unknown = sorted(set(options) - allowed)
    if unknown:
        return f'options: unknown metadata.options {unknown} of the CP2K job'
    try:
        for key in ('max_wallclock_seconds', 'max_memory_kb'):
            if options.get(key) is not None:
                checks.integer(options[key], f'options.{key}', ge=1)
        if 'withmpi' in options:
            checks.boolean(options['withmpi'], 'options.withmpi')
        resources = options.get('resources', {})
        if not isinstance(resources, dict):
            raise ValueError(f'options.resources must be a dict, got {resources!r}')
        for key in _RESOURCE_INTEGERS:
            if key in resources:
                checks.integer(resources[key], f'options.resources.{key}', ge=1)
    except ValueError as exc:
        return str(exc)
    return None


def check_symbols(symbols, protocol: str) -> str | None:
    """Error message if the protocol has no basis set or pseudopotential for one of ``symbols``
    (checked against CP2K's data directory on this machine, when there is one)."""
    try:
        cp2k_science.check_species(protocol, symbols)
    except ValueError as exc:
        message = str(exc)
        return message if 'protocol' in message else f'{message} (protocol {protocol!r})'
    return None


def _validate_single_point(value, ctx=None):
    """Species of the structure known to the protocol (when both are given).

    Skipped when a wrapping process excluded ``structure`` (:func:`~aiida_mlfail.calculations.common.port_excluded`:
    ``LabelWorkChain`` exposes the single point without it and gives one structure per job), so the
    wrapper keeps this validator instead of switching it off."""
    if port_excluded(ctx, 'structure'):
        return None
    protocol = value.get('protocol', orm.Str(DEFAULT_PROTOCOL))
    if 'structure' not in value or check_protocol(protocol):
        return None
    message = check_symbols(value['structure'].get_ase().get_chemical_symbols(), protocol.value)
    return f'structure: {message}' if message else None


def job_options(protocol: str, options: dict | None) -> dict:
    """``metadata.options`` of a CP2K job: one MPI rank on one machine and the protocol's wall time,
    updated with ``options``."""
    return {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1},
            'max_wallclock_seconds': int(cp2k_science.load_protocol(protocol)['walltime_seconds']), **(options or {})}


def _define_common(spec):
    """Inputs both WorkChains share: structure, protocol, code, options, overrides."""
    spec.input('structure', valid_type=orm.StructureData, validator=structure_validator('structure'),
               help='The configuration (cell and positions in Å; periodic, no overlapping atoms: '
                    'science.structures.check_structure).')
    spec.input('protocol', valid_type=orm.Str, default=lambda: orm.Str(DEFAULT_PROTOCOL), validator=check_protocol,
               help=f'CP2K protocol of protocols/cp2k.yaml: {", ".join(cp2k_science.available_protocols())}.')
    spec.input('code', valid_type=orm.AbstractCode, help='CP2K (cp2k.psmp) code.')
    spec.input('options', valid_type=orm.Dict, required=False, validator=_check_options,
               help='metadata.options of the CP2K job (default: 1 rank, the protocol walltime_seconds).')
    spec.input('overrides', valid_type=orm.Dict, required=False, validator=_check_overrides,
               help='Changes deep-merged into the generated CP2K parameters (a value None removes a keyword).')


def _common_ports(owner: str, inputs: dict, codes, options) -> dict:
    """``code``, ``protocol``, ``options`` and (when the protocol inputs have them) ``overrides`` of protocol inputs."""
    code = resolve_codes(codes, ('cp2k',), owner)['cp2k']
    message = check_protocol(orm.Str(inputs['protocol']))
    if message:
        raise ValueError(f'{owner}: {message}')
    ports = {'code': code, 'protocol': orm.Str(inputs['protocol']),
             'options': orm.Dict(protocol_job_options(inputs.get('options'), options, owner))}
    if inputs.get('overrides'):
        ports['overrides'] = orm.Dict(inputs['overrides'])
    return ports


def job_abort_message(node) -> str | None:
    """The message of CP2K's ABORT box in a finished job's output (``aiida.out`` of its retrieved folder), or
    ``None`` (no output, or no abort)."""
    text = read_retrieved(node.outputs.retrieved, OUTPUT) if 'retrieved' in node.outputs else None
    return abort_message(text) if text else None


def protocol_setup(process) -> tuple[str, dict, list[str]]:
    """``(protocol, job options, symbols)`` of a CP2K WorkChain's inputs (``protocol``, ``options``,
    ``structure``), with the basis set and pseudopotential of each element in its report."""
    protocol = process.inputs.protocol.value
    options = job_options(protocol, process.inputs.options.get_dict() if 'options' in process.inputs else None)
    symbols = process.inputs.structure.get_ase().get_chemical_symbols()
    kinds = cp2k_science.describe_kinds(cp2k_science.resolve_kinds(protocol, symbols))
    process.report(f'protocol {protocol}: {kinds}')
    return protocol, options, symbols


class Cp2kSinglePointWorkChain(ProtocolMixin, ReportErrorHandledMixin, BaseRestartWorkChain):
    """DFT energy (eV), forces (eV/Å) and virial (eV) of one structure with CP2K, restarted on known failures.

    Inputs: ``structure``, ``protocol`` (``fast`` | ``moderate`` | ``precise``), ``code``, ``options``,
    ``overrides``, and ``BaseRestartWorkChain``'s ``max_iterations`` (default 5), ``clean_workdir``,
    ``handler_overrides``. Parameters: ``science.cp2k.single_point_parameters`` made restartable by
    ``science.cp2k.job_parameters`` (wavefunction written, CP2K stops itself at 0.9 x the walltime),
    then ``overrides``. Basis sets and pseudopotentials are found by name in CP2K's data directory.

    Outputs: ``training_set`` (one configuration: energy, forces, virial, ``label_reference``
    ``cp2k_<protocol>``, ``scf_steps``; node attribute ``reference`` =
    ``science.references.cp2k_reference(protocol, overrides)``), ``retrieved`` and ``remote_folder`` of
    the successful job.

    Handlers (highest priority first; each job's parse step ``parse_single_point`` runs before them):

    * ``handle_unrecoverable`` (600): CP2K aborted (304; message of CP2K's ABORT box), output truncated
      (303) or missing, or a parse step failing with 320-322 -> exit 310;
    * ``handle_walltime`` (500): CP2K stopped at ``GLOBAL/WALLTIME`` (400) or the scheduler's walltime
      (120) -> restart from the job's wavefunction (``parent_calc_folder`` + ``SCF_GUESS RESTART``);
    * ``handle_scf_not_converged`` (400): parse step 420 (CP2K 2023.1) or 450 (CP2K >= 2024.1 abort) ->
      ``science.cp2k.scf_restart_changes`` attempt 1, 2, 3 (more iterations, mixing, OT), from the
      job's wavefunction; the changed ``parameters`` are the next job's input (provenance) and the
      change is in the report; after the last attempt -> exit 420.
    """

    _process_class = Cp2kCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        _define_common(spec)
        spec.inputs['max_iterations'].validator = node_validator(checks.integer, 'max_iterations', ge=1)
        spec.inputs.validator = _validate_single_point
        spec.outline(cls.setup, while_(cls.should_run_process)(cls.run_process, cls.inspect_process), cls.results)
        spec.output('training_set', valid_type=TrainingSetData, help='One configuration with the DFT labels.')
        spec.output('retrieved', valid_type=orm.FolderData, help='Retrieved files of the successful job.')
        spec.output('remote_folder', valid_type=orm.RemoteData, help='Working directory of the successful job.')
        spec.exit_code(310, 'ERROR_UNRECOVERABLE_FAILURE', message='CP2K failed, no restart can help: {message}')
        spec.exit_code(420, 'ERROR_SCF_NOT_CONVERGED', message='the SCF did not converge after {restarts} restart(s): '
                                                               '{message}')

    _protocol_file = 'cp2k_single_point.yaml'

    @classmethod
    def ports_from_protocol(cls, inputs: dict, codes, options=None) -> dict:
        """Every input but ``structure`` from protocol inputs ``inputs``
        (:meth:`~aiida_mlfail.workflows.protocols.ProtocolMixin.get_protocol_inputs`):
        ``code``, ``protocol``, ``options``, ``overrides`` (when given), ``max_iterations``, ``clean_workdir``.
        Shared with the builder of :class:`~aiida_mlfail.workflows.label.LabelWorkChain`.

        :raises ValueError: naming a missing ``cp2k`` code, an unknown CP2K protocol or scheduler option.
        """
        ports = _common_ports(cls.__name__, inputs, codes, options)
        ports['max_iterations'] = orm.Int(inputs['max_iterations'])
        ports['clean_workdir'] = orm.Bool(inputs['clean_workdir'])
        return ports

    @classmethod
    def get_builder_from_protocol(cls, codes, structure, *, protocol=None, overrides=None, options=None):
        """A builder with every input set from ``protocols/cp2k_single_point.yaml``.

        :param codes: the CP2K code, or a mapping with the role ``cp2k``.
        :param structure: the configuration (``StructureData`` or ``ase.Atoms``).
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``; each uses the CP2K physics protocol
            of the same name (``protocols/cp2k.yaml``).
        :param overrides: nested mapping (or YAML path) merged over the protocol: ``protocol`` (the CP2K
            physics), ``max_iterations``, ``clean_workdir``, ``options``, ``overrides`` (CP2K sections).
        :param options: scheduler options of the CP2K jobs (default: 1 rank, the physics' walltime).
        :raises ValueError: naming the unknown protocol, the missing code role or the bad value.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.structure = as_structure(structure, cls.__name__)
        for key, value in cls.ports_from_protocol(inputs, codes, options).items():
            setattr(builder, key, value)
        return builder

    def setup(self):
        """Build the first job's inputs from the protocol."""
        super().setup()
        protocol, options, symbols = protocol_setup(self)
        parameters = cp2k_science.single_point_parameters(protocol, symbols)
        parameters = cp2k_science.job_parameters(parameters, options['max_wallclock_seconds'])
        if 'overrides' in self.inputs:
            parameters = cp2k_science.deep_merge(parameters, self.inputs.overrides.get_dict())
        self.ctx.inputs = AttributeDict({'code': self.inputs.code, 'structure': self.inputs.structure,
                                         'parameters': orm.Dict(parameters), 'metadata': {'options': options}})
        self.ctx.scf_restarts = 0
        self.ctx.parsed = None

    def inspect_process(self):
        """The parse step of a job that finished OK, then the handlers (``BaseRestartWorkChain``)."""
        node = self.ctx.children[self.ctx.iteration - 1]
        self.ctx.parsed = None
        if node.is_finished_ok:
            overrides = {'overrides': self.inputs.overrides} if 'overrides' in self.inputs else {}
            _, self.ctx.parsed = parse_single_point.run_get_node(
                retrieved=node.outputs.retrieved, structure=self.ctx.inputs.structure, protocol=self.inputs.protocol,
                **overrides, metadata={'call_link_label': f'parse_{self.ctx.iteration:02d}'})
            if not self.ctx.parsed.is_finished_ok:  # e.g. SCF not converged (CP2K 2023.1): no label to reuse
                node.base.caching.is_valid_cache = False
        else:
            forbid_cache_source(node)
        return super().inspect_process()

    def _parse_status(self) -> int | None:
        return None if self.ctx.parsed is None else self.ctx.parsed.exit_status

    def _restart_from(self, node, parameters: dict) -> None:
        """Next job: ``parameters`` starting from ``node``'s wavefunction (when it has a remote folder)."""
        if 'remote_folder' in node.outputs:
            self.ctx.inputs.parent_calc_folder = node.outputs.remote_folder
            parameters = cp2k_science.wavefunction_restart(parameters)
        self.ctx.inputs.parameters = orm.Dict(parameters)

    @process_handler(priority=600)
    def handle_unrecoverable(self, node):
        """CP2K aborted, the output is truncated or missing, or the parse step refused it: exit 310."""
        recoverable = WALLTIME_STATUSES + (SCF_ABORT_STATUS,)
        parsed = self._parse_status()
        if node.is_failed and node.exit_status not in recoverable:
            aborted = job_abort_message(node)
            message = (f'CP2K aborted: {aborted}' if aborted
                       else f'{node.process_label}<{node.pk}> [{node.exit_status}] {node.exit_message}')
            failed, action = node, f'{message}: ' if aborted else ''
        elif parsed not in (None, 0, PARSE_SCF_NOT_CONVERGED):
            message = f'parse step <{self.ctx.parsed.pk}> [{parsed}] {self.ctx.parsed.exit_message}'
            failed, action = self.ctx.parsed, f'the output of {node.process_label}<{node.pk}> is unusable: '
        else:
            return None
        self.report_error_handled(failed, f'{action}no restart can help, stopping with exit '
                                          f'{self.exit_codes.ERROR_UNRECOVERABLE_FAILURE.status}')
        return ProcessHandlerReport(do_break=True, exit_code=self.exit_codes.ERROR_UNRECOVERABLE_FAILURE.format(
            message=message))

    @process_handler(priority=500, exit_codes=[Cp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,
                                               Cp2kCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME])
    def handle_walltime(self, node):
        """Out of walltime (400 CP2K's own stop, 120 the scheduler's): restart from the job's wavefunction."""
        self._restart_from(node, self.ctx.inputs.parameters.get_dict())
        self.report_error_handled(node, f'ran out of walltime: restarting from its wavefunction '
                                        f'({cp2k_science.PARENT_FOLDER}/{cp2k_science.WFN_RESTART_FILE}, SCF_GUESS '
                                        'RESTART)')
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=400)
    def handle_scf_not_converged(self, node):
        """SCF not converged (parse step 420, or 450): the next SCF scheme of ``scf_restart_changes``, exit 420
        when they are used up."""
        if self._parse_status() == PARSE_SCF_NOT_CONVERGED:
            failed = self.ctx.parsed  # the job finished (CP2K 2023.1 goes on), its parse step refused the SCF
        elif node.exit_status == SCF_ABORT_STATUS:
            failed = node
        else:
            return None
        why = failed.exit_message
        self.ctx.scf_restarts += 1
        if self.ctx.scf_restarts > cp2k_science.MAX_SCF_RESTARTS:
            self.report_error_handled(failed, f'no SCF restart left after {cp2k_science.MAX_SCF_RESTARTS}: '
                                              f'stopping with exit {self.exit_codes.ERROR_SCF_NOT_CONVERGED.status}')
            return ProcessHandlerReport(do_break=True, exit_code=self.exit_codes.ERROR_SCF_NOT_CONVERGED.format(
                restarts=cp2k_science.MAX_SCF_RESTARTS, message=why))
        parameters, change = cp2k_science.scf_restart_changes(self.ctx.inputs.parameters.get_dict(),
                                                              self.ctx.scf_restarts)
        self._restart_from(node, parameters)
        self.report_error_handled(failed, f'{change}, from the wavefunction of {node.process_label}<{node.pk}>')
        return ProcessHandlerReport(do_break=True)

    def results(self):
        """Attach the labelled configuration and the successful job's folders."""
        node = self.ctx.children[self.ctx.iteration - 1]
        labelled = self.ctx.parsed.outputs.training_set
        self.out('training_set', labelled)
        self.out('retrieved', node.outputs.retrieved)
        self.out('remote_folder', node.outputs.remote_folder)
        (atoms,) = labelled.get_atoms()
        self.report(f'labelled after {self.ctx.iteration} job(s): energy {atoms.info["energy"]:.6f} eV, '
                    f'{atoms.info.get("scf_steps")} SCF steps')
