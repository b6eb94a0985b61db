"""CP2K (DFT) NVT AIMD as a restart wrapper: a run stopped at its wall time continues from CP2K's checkpoint.

``Cp2kAimdWorkChain`` (``mlfail.aimd``) is a ``BaseRestartWorkChain`` around aiida-cp2k's
``Cp2kCalculation``, like :class:`~aiida_mlfail.workflows.cp2k.Cp2kSinglePointWorkChain`. Every job writes
CP2K's MD checkpoint (``aiida-1.restart``: positions, velocities, thermostat and random-number state, step
counter) every ``checkpoint_interval`` steps and stops itself at ``GLOBAL/WALLTIME``, below the scheduler's
limit (``science.cp2k.job_parameters``). A job that stopped (CP2K's wall time, 400) or was killed (the
scheduler, which aiida-cp2k reports as 303 or 120) with a checkpoint is continued by the next job from it
(``EXT_RESTART``, ``science.cp2k.md_continuation``) with ``restart.walltime_factor`` x the walltime (at most
``restart.max_walltime_s``, CP2K's ``GLOBAL/WALLTIME`` recomputed from it): the steps up to the checkpoint are
neither run nor counted twice, and ``parse_aimd`` joins the frames of all jobs into one trajectory. CP2K manual:
``EXT_RESTART``, ``MOTION/PRINT/RESTART``, ``GLOBAL/WALLTIME`` (https://manual.cp2k.org/trunk/CP2K_INPUT/).
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from aiida_mlfail.calculations.cp2k import parse_aimd, read_retrieved
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import checks
from aiida_mlfail.science import cp2k as cp2k_science
from aiida_mlfail.workflows.common import dict_validator, forbid_cache_source, node_validator
from aiida_mlfail.workflows.cp2k import (
    DEFAULT_PROTOCOL,
    PARSE_SCF_NOT_CONVERGED,
    WALLTIME_STATUSES,
    Cp2kCalculation,
    _common_ports,
    _define_common,
    check_protocol,
    check_symbols,
    job_abort_message,
    protocol_setup,
)
from aiida_mlfail.workflows.protocols import ProtocolMixin, as_structure
from aiida_mlfail.workflows.restart import RESTART_DEFAULTS, ReportErrorHandledMixin, normalise_restart

#: Defaults of the optional MD inputs of :class:`Cp2kAimdWorkChain` (fs, fs, -, -, MD steps).
AIMD_DEFAULTS = {'timestep': 1.0, 'thermostat': 'CSVR', 'thermostat_timecon': 100.0, 'seed': 2000,
                 'checkpoint_interval': 1}

#: aiida-cp2k's exit status of a job whose output did not end (killed, e.g. by the scheduler at its wall
#: time: it hides the scheduler's 120).
KILLED_STATUS = Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE.status  # 303

#: Exit statuses after which a job with a checkpoint is continued from it.
STOPPED_STATUSES = WALLTIME_STATUSES + (KILLED_STATUS,)

#: The restart settings of the AIMD (keys and defaults of ``workflows.restart.RESTART_DEFAULTS``).
AIMD_RESTART_KEYS = ('walltime_factor', 'max_walltime_s')


def normalise_aimd_restart(settings: dict) -> dict:
    """``walltime_factor`` (> 1) and ``max_walltime_s`` (s, > 0) of ``settings`` merged with
    ``RESTART_DEFAULTS`` and checked (``workflows.restart.normalise_restart``).

    :raises ValueError: naming the offending key or value.
    """
    unknown = sorted(set(settings) - set(AIMD_RESTART_KEYS))
    if unknown:
        raise ValueError(f'unknown restart setting(s) {unknown} for the AIMD: known are {list(AIMD_RESTART_KEYS)}')
    merged = normalise_restart(settings)
    return {key: merged[key] for key in AIMD_RESTART_KEYS}


def _validate_aimd(value, ctx=None):
    """The MD settings (``science.cp2k.aimd_parameters``) and the species of the structure."""
    if 'temperature' not in value or 'steps' not in value:
        return None
    protocol = value.get('protocol', orm.Str(DEFAULT_PROTOCOL))
    if check_protocol(protocol):
        return None
    md = {key: value[key].value if key in value else default for key, default in AIMD_DEFAULTS.items()}
    try:
        cp2k_science.aimd_parameters(protocol.value, ['H'], value['temperature'].value, value['steps'].value,
                                     md['timestep'], thermostat=md['thermostat'],
                                     thermostat_timecon_fs=md['thermostat_timecon'], seed=md['seed'],
                                     checkpoint_interval=md['checkpoint_interval'])
    except ValueError as exc:
        return str(exc)
    if 'structure' in value:
        message = check_symbols(value['structure'].get_ase().get_chemical_symbols(), protocol.value)
        return f'structure: {message}' if message else None
    return None


class Cp2kAimdWorkChain(ProtocolMixin, ReportErrorHandledMixin, BaseRestartWorkChain):
    """Born-Oppenheimer NVT MD with CP2K (aiida-cp2k ``Cp2kCalculation``); the frames as labelled training data.

    Inputs: ``structure``, ``protocol``, ``code``, ``options``, ``overrides`` (as
    :class:`~aiida_mlfail.workflows.cp2k.Cp2kSinglePointWorkChain`), ``temperature`` (K), ``steps``,
    ``timestep`` (fs), ``thermostat`` (CSVR | NOSE), ``thermostat_timecon`` (fs), ``seed``,
    ``checkpoint_interval`` (MD steps between checkpoints), ``restart`` (``walltime_factor``, ``max_walltime_s``;
    defaults ``workflows.restart.RESTART_DEFAULTS``), and ``BaseRestartWorkChain``'s
    ``max_iterations`` (default 5: the first job and up to four continuations), ``clean_workdir``,
    ``handler_overrides``. Parameters: ``science.cp2k.aimd_parameters``, made restartable by
    ``science.cp2k.job_parameters`` (CP2K stops itself at ``GLOBAL/WALLTIME`` = min(0.9 T, T - 60 s) of
    the job's ``max_wallclock_seconds`` T), then ``overrides``.

    Output: ``trajectory`` (TrainingSetData, steps + 1 frames over all jobs: ``energy`` eV, ``forces`` eV/Å,
    ``virial`` eV from the analytical stress (potential part only), ``md_step``, ``time_fs``,
    ``temperature``, ``protocol``, ``config_type`` ``cp2k_aimd``; reference ``cp2k_reference(protocol,
    overrides)``).

    Handlers (highest priority first; the frames of the finished run are read by ``parse_aimd``):

    * ``handle_unrecoverable`` (600): CP2K aborted or failed otherwise, not stopped -> exit 310;
    * ``handle_stopped`` (500): the job stopped at CP2K's wall time (400) or was killed (303, 120) ->
      the next job gets ``walltime_factor`` x the walltime T (at most ``max_walltime_s``; CP2K's
      ``GLOBAL/WALLTIME`` recomputed from the new T unless ``overrides`` set it) and continues from the
      checkpoint (``parent_calc_folder`` + ``EXT_RESTART``, ``STEPS`` = the steps left); a job that wrote no
      checkpoint beyond the one it started from is run once more (with the raised walltime) from where it
      started, and exit 311 (no progress) when that happens twice in a row.

    Exit 330 when the frames cannot be read or joined, 420 when an SCF of the run did not converge.
    """

    _process_class = Cp2kCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        _define_common(spec)
        spec.input('temperature', valid_type=orm.Float, validator=node_validator(checks.number, 'temperature', gt=0),
                   help='Thermostat and initial-velocity temperature (K).')
        spec.input('steps', valid_type=orm.Int, validator=node_validator(checks.integer, 'steps', ge=1),
                   help='MD steps (frames: steps + 1).')
        spec.input('timestep', valid_type=orm.Float, default=lambda: orm.Float(AIMD_DEFAULTS['timestep']),
                   validator=node_validator(checks.number, 'timestep', gt=0), help='Time step (fs).')
        spec.input('thermostat', valid_type=orm.Str, default=lambda: orm.Str(AIMD_DEFAULTS['thermostat']),
                   help='CSVR or NOSE.')
        spec.input('thermostat_timecon', valid_type=orm.Float,
                   default=lambda: orm.Float(AIMD_DEFAULTS['thermostat_timecon']),
                   validator=node_validator(checks.number, 'thermostat_timecon', gt=0),
                   help='Thermostat time constant (fs).')
        spec.input('seed', valid_type=orm.Int, default=lambda: orm.Int(AIMD_DEFAULTS['seed']),
                   validator=node_validator(checks.integer, 'seed', ge=0), help='GLOBAL/SEED (velocities, noise).')
        spec.input('checkpoint_interval', valid_type=orm.Int,
                   default=lambda: orm.Int(AIMD_DEFAULTS['checkpoint_interval']),
                   validator=node_validator(checks.integer, 'checkpoint_interval', ge=1),
                   help='MD steps between the checkpoints (aiida-1.restart) a stopped job is continued from.')
        spec.input('restart', valid_type=orm.Dict, default=lambda: orm.Dict({}), serializer=orm.to_aiida_type,
                   validator=dict_validator(normalise_aimd_restart, 'restart'),
                   help='Walltime growth of the continuations: walltime_factor (> 1, default '
                        f'{RESTART_DEFAULTS["walltime_factor"]}) and max_walltime_s (default '
                        f'{RESTART_DEFAULTS["max_walltime_s"]}).')
        spec.inputs['max_iterations'].validator = node_validator(checks.integer, 'max_iterations', ge=1)
        spec.inputs.validator = _validate_aimd
        spec.outline(cls.setup, while_(cls.should_run_process)(cls.run_process, cls.inspect_process), cls.results)
        spec.output('trajectory', valid_type=TrainingSetData, help='The MD frames with DFT labels.')
        spec.exit_code(310, 'ERROR_JOB_FAILED', message='the CP2K job failed: {message}')
        spec.exit_code(311, 'ERROR_NO_PROGRESS', message='{message}')
        spec.exit_code(330, 'ERROR_TRAJECTORY', message='the trajectory could not be read: {message}')
        spec.exit_code(420, 'ERROR_SCF_NOT_CONVERGED', message='{message}')

    _protocol_file = 'cp2k_aimd.yaml'

    @classmethod
    def get_builder_from_protocol(cls, codes, structure, *, protocol=None, overrides=None, options=None):
        """A builder with every input set from ``protocols/cp2k_aimd.yaml``.

        :param codes: the CP2K code, or a mapping with the role ``cp2k``.
        :param structure: the start configuration (``StructureData`` or ``ase.Atoms``; its cell is the volume).
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``.
        :param overrides: nested mapping (or YAML path) merged over the protocol: ``protocol`` (CP2K physics),
            ``temperature`` (K), ``steps``, ``timestep`` (fs), ``thermostat``, ``thermostat_timecon`` (fs),
            ``seed``, ``checkpoint_interval``, ``restart``, ``max_iterations``, ``clean_workdir``, ``options``,
            ``overrides`` (CP2K sections).
        :param options: scheduler options of the CP2K jobs (default: 1 rank, the physics' walltime).
        :raises ValueError: naming the unknown protocol, the missing code role or the bad value.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.structure = as_structure(structure, cls.__name__)
        for key, value in _common_ports(cls.__name__, inputs, codes, options).items():
            setattr(builder, key, value)
        for key, node in (('temperature', orm.Float), ('steps', orm.Int), ('timestep', orm.Float),
                          ('thermostat', orm.Str), ('thermostat_timecon', orm.Float), ('seed', orm.Int),
                          ('checkpoint_interval', orm.Int), ('max_iterations', orm.Int),
                          ('clean_workdir', orm.Bool), ('restart', orm.Dict)):
            if key in inputs:
                setattr(builder, key, node(inputs[key]))
        return builder

    def setup(self):
        """The CP2K parameters of the run (``science.cp2k.aimd_parameters``, restartable, ``overrides`` merged in)."""
        super().setup()
        protocol, options, symbols = protocol_setup(self)
        parameters = cp2k_science.aimd_parameters(
            protocol, symbols, self.inputs.temperature.value,
            self.inputs.steps.value, self.inputs.timestep.value, thermostat=self.inputs.thermostat.value,
            thermostat_timecon_fs=self.inputs.thermostat_timecon.value, seed=self.inputs.seed.value,
            checkpoint_interval=self.inputs.checkpoint_interval.value)
        self.ctx.md_parameters = parameters
        self.ctx.settings = normalise_aimd_restart(self.inputs.restart.get_dict())
        parameters = self._job_parameters(options['max_wallclock_seconds'])
        self.ctx.parameters = parameters
        retrieve = [cp2k_science.AIMD_FILES['energies'], cp2k_science.AIMD_STRESS_FILE,
                    cp2k_science.AIMD_RESTART_FILE]
        self.ctx.inputs = AttributeDict({'code': self.inputs.code, 'structure': self.inputs.structure,
                                         'parameters': orm.Dict(parameters),
                                         'settings': orm.Dict({'additional_retrieve_list': retrieve}),
                                         'metadata': {'options': options}})
        self.ctx.segments = []  # the stopped jobs the current one continues, in order
        self.ctx.checkpoint = None  # the MD step of the checkpoint the current job continues from
        self.report(f'CP2K NVT AIMD: {self.inputs.steps.value} steps of {self.inputs.timestep.value} fs at '
                    f'{self.inputs.temperature.value} K, protocol {protocol}, a checkpoint every '
                    f'{self.inputs.checkpoint_interval.value} step(s), CP2K wall time '
                    f'{parameters["GLOBAL"]["WALLTIME"]} s of the job\'s {options["max_wallclock_seconds"]} s')

    def _job_parameters(self, max_wallclock_seconds: int) -> dict:
        """The MD parameters made restartable for a job of ``max_wallclock_seconds`` (``job_parameters``: CP2K's
        ``GLOBAL/WALLTIME`` below it), then ``overrides``."""
        parameters = cp2k_science.job_parameters(self.ctx.md_parameters, max_wallclock_seconds)
        if 'overrides' in self.inputs:
            parameters = cp2k_science.deep_merge(parameters, self.inputs.overrides.get_dict())
        return parameters

    def _raise_walltime(self) -> str:
        """The next job's walltime: ``walltime_factor`` x the current one, at most ``max_walltime_s``; the parameters
        (CP2K's ``GLOBAL/WALLTIME``) follow. Returns the change for the report."""
        options = dict(self.ctx.inputs.metadata['options'])
        current = int(options['max_wallclock_seconds'])
        new = min(int(self.ctx.settings['max_walltime_s']), int(current * float(self.ctx.settings['walltime_factor'])))
        if new <= current:
            return f'keeping the {current} s walltime (max_walltime_s)'
        options['max_wallclock_seconds'] = new
        self.ctx.inputs.metadata = {**self.ctx.inputs.metadata, 'options': options}
        self.ctx.parameters = self._job_parameters(new)
        return f'restarting with {new} s (CP2K WALLTIME {self.ctx.parameters["GLOBAL"]["WALLTIME"]} s)'

    def inspect_process(self):
        """The finished run's frames of all its jobs (``parse_aimd``), then the handlers (``BaseRestartWorkChain``)."""
        node = self.ctx.children[self.ctx.iteration - 1]
        if not node.is_finished_ok:
            forbid_cache_source(node)
            return super().inspect_process()
        info = {'temperature': self.inputs.temperature.value, 'protocol': self.inputs.protocol.value}
        overrides = {'overrides': self.inputs.overrides} if 'overrides' in self.inputs else {}
        segments = {f'segment_{i:02d}': job.outputs.retrieved for i, job in enumerate(self.ctx.segments)}
        result, parse = parse_aimd.run_get_node(retrieved=node.outputs.retrieved, structure=self.inputs.structure,
                                                info=orm.Dict(info), protocol=self.inputs.protocol, **overrides,
                                                **segments, metadata={'call_link_label': 'parse'})
        if parse.exit_status == PARSE_SCF_NOT_CONVERGED:
            return self.exit_codes.ERROR_SCF_NOT_CONVERGED.format(message=parse.exit_message)
        if not parse.is_finished_ok:
            return self.exit_codes.ERROR_TRAJECTORY.format(message=f'[{parse.exit_status}] {parse.exit_message}')
        self.ctx.trajectory = result['trajectory']
        return super().inspect_process()

    def _checkpoint_step(self, node) -> int | None:
        """The MD step of the checkpoint ``node`` left in its retrieved folder, or ``None``."""
        if 'retrieved' not in node.outputs or 'remote_folder' not in node.outputs:
            return None
        text = read_retrieved(node.outputs.retrieved, cp2k_science.AIMD_RESTART_FILE)
        try:
            return cp2k_science.restart_step(text) if text else None
        except ValueError:
            return None

    @process_handler(priority=600)
    def handle_unrecoverable(self, node):
        """CP2K aborted or failed otherwise (not stopped at, or killed for, its wall time): exit 310."""
        if not node.is_failed or node.exit_status in STOPPED_STATUSES:
            return None
        aborted = job_abort_message(node)
        message = f'CP2K aborted: {aborted}' if aborted else f'<{node.pk}> [{node.exit_status}] {node.exit_message}'
        self.report_error_handled(node, f'no restart can help, stopping with exit '
                                        f'{self.exit_codes.ERROR_JOB_FAILED.status}')
        return ProcessHandlerReport(do_break=True, exit_code=self.exit_codes.ERROR_JOB_FAILED.format(message=message))

    @process_handler(priority=500, exit_codes=[Cp2kCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,
                                               Cp2kCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,
                                               Cp2kCalculation.exit_codes.ERROR_OUTPUT_INCOMPLETE])
    def handle_stopped(self, node):
        """Stopped at CP2K's wall time or killed: more walltime, and continue from the job's checkpoint (exit 311
        if it wrote none beyond the one it started from, twice in a row)."""
        step = self._checkpoint_step(node)
        total = self.inputs.steps.value
        walltime = f'ran out of walltime ({node.get_option("max_wallclock_seconds")} s)'
        if step is None or (self.ctx.checkpoint is not None and step <= self.ctx.checkpoint):
            since = 'at all' if self.ctx.checkpoint is None else f'after step {self.ctx.checkpoint}'
            message = f'{node.process_label}<{node.pk}> stopped before writing a checkpoint {since}'
            self.ctx.stalled = self.ctx.get('stalled', 0) + 1
            if self.ctx.stalled == 1:  # e.g. a node shared with other jobs: once more, with more walltime
                raised = self._raise_walltime()
                if self.ctx.checkpoint is not None:  # the raised walltime's parameters, from the same checkpoint
                    self.ctx.inputs.parameters = orm.Dict(cp2k_science.md_continuation(
                        self.ctx.parameters, self.ctx.checkpoint, total))
                else:
                    self.ctx.inputs.parameters = orm.Dict(self.ctx.parameters)
                self.report_error_handled(node, f'{message}: {walltime}, {raised}, running the same job once more')
                return ProcessHandlerReport(do_break=True)
            message += (f', {self.ctx.stalled} times in a row: give the jobs more max_wallclock_seconds or a '
                        'smaller checkpoint_interval')
            self.report_error_handled(node, f'{message}; stopping with exit {self.exit_codes.ERROR_NO_PROGRESS.status}')
            return ProcessHandlerReport(do_break=True, exit_code=self.exit_codes.ERROR_NO_PROGRESS.format(
                message=message))
        self.ctx.stalled = 0
        self.ctx.segments.append(node)
        self.ctx.checkpoint = step
        raised = self._raise_walltime()
        self.ctx.inputs.parent_calc_folder = node.outputs.remote_folder
        self.ctx.inputs.parameters = orm.Dict(cp2k_science.md_continuation(self.ctx.parameters, step, total))
        self.report_error_handled(node, f'{walltime}: {raised}, continuing from the checkpoint of step {step} of '
                                        f'{total} of {node.process_label}<{node.pk}> ({cp2k_science.PARENT_FOLDER}/'
                                        f'{cp2k_science.AIMD_RESTART_FILE}) for the {total - step} steps left')
        return ProcessHandlerReport(do_break=True)

    def results(self):
        """The joined trajectory of all jobs."""
        trajectory = self.ctx.trajectory
        self.out('trajectory', trajectory)
        energies = [a.info['energy'] for a in trajectory.get_atoms()]
        self.report(f'{trajectory.n_configurations} frames from {self.ctx.iteration} job(s); potential energy '
                    f'{energies[0]:.4f} -> {energies[-1]:.4f} eV')
        return None
