"""Restartable jobs: ``BaseRestartWorkChain`` wrappers with one process handler per failure family.

Failure families (docs: reliability, exit codes) and what the handlers do:

* an outcome, not a failure (``_accepted_failures``, exit-code labels of the job, e.g. the explorer's
  ``ERROR_MD_EXPLODED`` for a guard stop): no restart; the wrapper attaches the job's outputs and ends
  with its own exit code of the same label and status, also on the last attempt ``max_iterations``
  allows (never ``ERROR_MAXIMUM_ITERATIONS_EXCEEDED`` for it);
* cancelled by the scheduler (``scancel``; the scheduler's stderr reads ``CANCELLED AT`` without
  ``DUE TO TIME LIMIT``) or a node failure (exit 140): resubmit unchanged;
* out of walltime (exit 120, ``ERROR_SCHEDULER_OUT_OF_WALLTIME``): resubmit with
  ``walltime_factor`` x the walltime (at most ``max_walltime_s``); programs without a restart
  file start again, the explorer continues from its last checkpoint (``ExploreRestartWorkChain.continue_from``,
  also after a cancellation);
* ``gap_fit`` out of memory (exit 430 from the dryrun preflight, or 110 from the scheduler): fewer
  sparse points (``sparse_factor`` x every descriptor's ``n_sparse``) or more memory (the larger
  of ``memory_factor`` x ``max_memory_kb`` and the dryrun estimate x 1.3 from
  :func:`~aiida_mlfail.science.resources.scheduler_options`, at most ``max_memory_kb_limit``; with
  ``core.slurm`` this is the ``--mem`` of the retry), as ``on_out_of_memory`` says; the changed
  ``parameters`` / options are the next job's inputs, so the change is provenance;
* ``gap_fit`` ill-conditioned (431): ``sparse_jitter`` x 100.

Handler priorities (aiida-core's ``BaseRestartWorkChain`` calls the handlers from the highest priority down
and stops at the first report with ``do_break``). The bands, as they are in this module and in
:mod:`aiida_mlfail.workflows.cp2k`: first what ends the loop (an outcome, an unrecoverable failure), then
what the scheduler or the resources caused (cancelled, walltime, memory), last the physics / numerics of
the program (ill-conditioned fit, SCF not converged), so a job that ran out of walltime in an
unconverged SCF is restarted for its walltime, not given a new SCF scheme:

=========  =================================================  ===============================================
priority   ``JobRestartWorkChain`` and its subclasses         ``Cp2kSinglePointWorkChain`` (``workflows/cp2k``)
=========  =================================================  ===============================================
900        ``handle_accepted_failure`` (outcome: stop)
800        ``handle_cancelled`` (scheduler: resubmit)
700        ``handle_walltime`` (resources)
600        ``handle_out_of_memory`` (gap_fit; resources)      ``handle_unrecoverable`` (stop, 310)
500        ``handle_ill_conditioned`` (gap_fit; numerics)     ``handle_walltime`` (resources)
400                                                           ``handle_scf_not_converged`` (physics)
=========  =================================================  ===============================================

Every handler that acts reports through :meth:`ReportErrorHandledMixin.report_error_handled` (two lines:
what failed, with exit status and message, then ``Action taken: ...`` with the numbers it changed), the
wording of aiida-quantumespresso's ``PwBaseWorkChain``.

AiiDA docs: https://aiida.readthedocs.io/projects/aiida-core/en/stable/howto/workflows.html#restart-workchain
"""

from __future__ import annotations

import inspect

from aiida import orm
from aiida.common import AttributeDict
from aiida.common.log import LOG_LEVEL_REPORT
from aiida.engine import BaseRestartWorkChain, CalcJob, ProcessHandlerReport, process_handler, while_

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.calculations.gap_fit import GapFitCalculation
from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.calculations.quip import QuipPredictCalculation
from aiida_mlfail.calculations.rematch import RematchCalculation
from aiida_mlfail.science import checks
from aiida_mlfail.science.resources import scheduler_options
from aiida_mlfail.workflows.common import dict_validator, forbid_cache_source, node_validator

#: Restart settings: walltime growth, gap_fit memory strategy ('reduce_sparse_points' or
#: 'more_memory'), their factors and caps.
RESTART_DEFAULTS = {
    'walltime_factor': 2.0,
    'max_walltime_s': 7 * 24 * 3600,
    'on_out_of_memory': 'reduce_sparse_points',
    'sparse_factor': 0.5,
    'memory_factor': 2.0,
    'max_memory_kb_limit': 512 * 1024 * 1024,
}


def normalise_restart(settings: dict) -> dict:
    """Merge with :data:`RESTART_DEFAULTS` and check.

    :raises ValueError: naming the offending key or value.
    """
    checks.known_keys(settings, RESTART_DEFAULTS, 'restart setting')
    merged = {**RESTART_DEFAULTS, **settings}
    checks.choice(merged['on_out_of_memory'], 'on_out_of_memory', ('reduce_sparse_points', 'more_memory'))
    for key in ('walltime_factor', 'memory_factor'):
        merged[key] = checks.number(merged[key], key, gt=1)
    merged['sparse_factor'] = checks.number(merged['sparse_factor'], 'sparse_factor', gt=0, lt=1)
    merged['max_walltime_s'] = checks.integer(merged['max_walltime_s'], 'max_walltime_s', gt=0, unit='s')
    merged['max_memory_kb_limit'] = checks.integer(merged['max_memory_kb_limit'], 'max_memory_kb_limit', gt=0,
                                                   le=2**63 - 1, unit='kB')
    return merged


def _scheduler_stderr(node) -> str | None:
    """The scheduler stderr the job retrieved, ``None`` when there is no such file (or nothing retrieved)."""
    if 'retrieved' not in node.outputs:
        return None
    try:
        return node.get_scheduler_stderr()
    except Exception:  # noqa: BLE001 (unreadable: treated as absent)
        return None


def was_cancelled(node) -> bool:
    """Whether the scheduler cancelled the job (``scancel``) rather than the program failing by itself.

    Evidence: the scheduler's stderr reads ``CANCELLED AT`` (SLURM's slurmstepd message) without
    ``DUE TO TIME LIMIT``; or the job was submitted to a scheduler (it has a job id) and came back
    without the scheduler stderr file, which the job script creates as soon as it starts (a job
    cancelled before its script ran).
    """
    if 'retrieved' not in node.outputs:
        return False
    stderr = _scheduler_stderr(node)
    if stderr is None:
        return bool(node.get_job_id()) and node.computer is not None and node.computer.scheduler_type != 'core.direct'
    text = stderr.upper()
    return 'CANCELLED AT' in text and 'DUE TO TIME LIMIT' not in text


#: The scheduler's exit statuses, from aiida-core's ``CalcJob`` (every CalcJob inherits them).
SCHEDULER_OUT_OF_WALLTIME = CalcJob.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME.status  # 120
SCHEDULER_NODE_FAILURE = CalcJob.exit_codes.ERROR_SCHEDULER_NODE_FAILURE.status  # 140


def ran_out_of_walltime(node) -> bool:
    """Whether the job hit its walltime: ``ERROR_SCHEDULER_OUT_OF_WALLTIME`` (120), or SLURM's
    ``CANCELLED AT ... DUE TO TIME LIMIT`` in the scheduler stderr (AiiDA keeps the parser's exit code
    when both the scheduler and the parser report one, so a killed program's "output incomplete" can
    hide the 120)."""
    return (node.exit_status == SCHEDULER_OUT_OF_WALLTIME
            or 'DUE TO TIME LIMIT' in (_scheduler_stderr(node) or '').upper())


class ReportErrorHandledMixin:
    """``report_error_handled`` for restart WorkChains (this module's and :mod:`aiida_mlfail.workflows.cp2k`'s):
    every process handler that acts reports through it."""

    def report_error_handled(self, node, action: str) -> None:
        """Report a failed process and the action a handler took about it, in two report lines:
        ``'{process_label}<{pk}> failed with exit status {status}: {exit_message}'`` and
        ``'Action taken: {action}'`` (aiida-quantumespresso's ``PwBaseWorkChain.report_error_handled``).

        :param node: the failed process node: the job, or the parse step (e.g. CP2K's ``parse_single_point``)
            when the job finished but its output was refused.
        :param action: what the handler does, with the values it changed (e.g. ``'restarting with 240 s'``).

        Both lines carry the prefix ``Process.report`` writes, ``[pk|class|function]``, with the calling
        handler's name as the function (not this helper's), so the log says which handler acted.
        """
        handler = inspect.currentframe().f_back.f_code.co_name
        for message in (f'{node.process_label}<{node.pk}> failed with exit status {node.exit_status}: '
                        f'{node.exit_message}', f'Action taken: {action}'):
            self.logger.log(LOG_LEVEL_REPORT, f'[{self.node.pk}|{self.__class__.__name__}|{handler}]: {message}')


class JobRestartWorkChain(ReportErrorHandledMixin, BaseRestartWorkChain):
    """Run a CalcJob (``_process_class``) until it succeeds, with the handlers every job shares.

    Inputs: the job's inputs under ``job``, ``restart`` (Dict, :data:`RESTART_DEFAULTS`) and the
    usual ``max_iterations`` (default 5). Outputs: those of the last job.

    A job that finishes with an exit code its caller treats as an outcome (e.g. ``ERROR_MD_EXPLODED``,
    410, for an MD run stopped by a guard) is named, by label of ``_process_class``'s exit codes, in
    ``_accepted_failures``: it ends the loop, its outputs are attached, and the wrapper ends with its
    own exit code of the same status, label and message (e.g. 410 ``ERROR_MD_EXPLODED``), also when
    that job was the last attempt ``max_iterations`` allows (see :meth:`handle_accepted_failure`).
    :attr:`STOP_LABELS` and :func:`is_outcome` tell callers which statuses are such outcomes.
    """

    _process_class = None
    #: Exit-code labels of ``_process_class`` that are outcomes, not failures to repair.
    _accepted_failures: tuple[str, ...] = ()
    #: Labels of the stops whose outputs callers use as a result (see :func:`is_outcome`).
    STOP_LABELS: tuple[str, ...] = ()

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(cls._process_class, namespace='job')
        spec.expose_outputs(cls._process_class)
        spec.inputs['max_iterations'].validator = node_validator(checks.integer, 'max_iterations', ge=1)
        spec.input('restart', valid_type=orm.Dict, default=lambda: orm.Dict({}), serializer=orm.to_aiida_type,
                   validator=dict_validator(normalise_restart, 'restart'),
                   help=f'Restart settings, defaults {RESTART_DEFAULTS}.')
        spec.outline(cls.setup, while_(cls.should_run_process)(cls.run_process, cls.inspect_process), cls.results)
        for label in cls._accepted_failures:
            job_code = cls._process_class.spec().exit_codes[label]  # KeyError: not a label of the job
            spec.exit_code(job_code.status, label, message='the job stopped: {message}')

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(self._process_class, namespace='job'))
        self.ctx.settings = normalise_restart(self.inputs.restart.get_dict())

    def inspect_process(self):
        """aiida-core's ``inspect_process``, after marking a failed job as never a cache source
        (:func:`~aiida_mlfail.workflows.common.forbid_cache_source`: its retry may differ only in
        options outside the hash, such as the walltime)."""
        forbid_cache_source(self.ctx.children[self.ctx.iteration - 1])
        return super().inspect_process()

    def _options(self) -> dict:
        return dict(self.ctx.inputs.get('metadata', {}).get('options', {}))

    def _set_options(self, options: dict) -> None:
        metadata = dict(self.ctx.inputs.get('metadata', {}))
        metadata['options'] = options
        self.ctx.inputs.metadata = metadata

    @process_handler(priority=900)
    def handle_accepted_failure(self, node):
        """An outcome of the job (e.g. MD stopped by a guard): stop restarting, attach its outputs, end with its
        exit code (this wrapper's exit code of the same label and status, with the job's message).

        Sets ``ctx.is_finished``: aiida-core's ``BaseRestartWorkChain.inspect_process`` then returns the
        report's exit code at once; without it, a report on the last allowed attempt (``max_iterations``)
        becomes ``ERROR_MAXIMUM_ITERATIONS_EXCEEDED`` (401). The outputs are attached here because a
        non-zero exit code returned by ``inspect_process`` ends the work chain before its ``results``
        step (which, if reached, would return the same exit code: ``ctx.outcome``).
        """
        codes = self._process_class.spec().exit_codes
        label = next((label for label in self._accepted_failures if codes[label].status == node.exit_status), None)
        if label is None:
            return None
        exit_code = getattr(self.exit_codes, label).format(message=node.exit_message)
        self.report_error_handled(node, f'{label} is an outcome, not a failure to repair: outputs attached, '
                                        'no restart')
        self.out_many(self.get_outputs(node))
        self.ctx.is_finished = True
        self.ctx.outcome = exit_code
        return ProcessHandlerReport(do_break=True, exit_code=exit_code)

    def results(self):
        """Attach the last job's outputs (those not attached yet); return the exit code of an accepted
        outcome if the last job was one (``None``, i.e. success, otherwise)."""
        super().results()
        return self.ctx.get('outcome')

    @process_handler(priority=800)
    def handle_cancelled(self, node):
        """Cancelled by the scheduler (``scancel``) or lost to a node failure (140): resubmit unchanged."""
        if node.is_finished_ok:
            return None
        if node.exit_status == SCHEDULER_NODE_FAILURE or was_cancelled(node):
            continued = self.continue_from(node)
            self.report_error_handled(node, 'cancelled by the scheduler or lost its node: '
                                      + (f'resubmitting it, {continued}' if continued else 'resubmitting it unchanged'))
            return ProcessHandlerReport(do_break=True)
        return None

    @process_handler(priority=700)
    def handle_walltime(self, node):
        """Out of walltime (120, or the scheduler's time-limit message when the parser's exit code took
        precedence): resubmit with ``walltime_factor`` x the walltime, at most ``max_walltime_s``."""
        if node.is_finished_ok or not ran_out_of_walltime(node):
            return None
        options = self._options()
        current = int(options.get('max_wallclock_seconds') or node.get_option('max_wallclock_seconds') or 3600)
        limit = int(self.ctx.settings['max_walltime_s'])
        if current >= limit:
            self.report_error_handled(node, f'ran out of its {current} s walltime, already at the max_walltime_s '
                                            'limit: giving up')
            return ProcessHandlerReport(do_break=True, exit_code=self.exit_codes.ERROR_UNHANDLED_FAILURE)
        new = min(limit, int(current * float(self.ctx.settings['walltime_factor'])))
        options['max_wallclock_seconds'] = new
        self._set_options(options)
        continued = self.continue_from(node)
        self.report_error_handled(node, f'ran out of walltime ({current} s): restarting with {new} s'
                                  + (f', {continued}' if continued else ''))
        return ProcessHandlerReport(do_break=True)

    def continue_from(self, node) -> str | None:
        """Hook: prepare the inputs of the restart of a job stopped by its walltime or cancelled (default: start
        again, ``None``). A subclass whose job writes checkpoints points the next job at the last one and returns
        what it did for the report (e.g. ``'continuing from the checkpoint at step 600 of ...'``)."""
        return None


def is_outcome(node) -> bool:
    """Whether a finished job or restart wrapper ended with a result its caller can use: finished OK, or
    stopped with one of the exit codes of :attr:`ExploreRestartWorkChain.STOP_LABELS` /
    :attr:`LammpsRestartWorkChain.STOP_LABELS` (a guard stop, lost atoms), compared by the status of
    those labels in the node's own process class (the job or its wrapper).

    :param node: a ``ProcessNode``; for classes other than ``ExploreCalculation``, ``LammpsCalculation``
        and their wrappers, only finished OK counts. Not finished (running, excepted, killed): ``False``.
    """
    if node.is_finished_ok:
        return True
    if not node.is_finished:
        return False
    for wrapper in (ExploreRestartWorkChain, LammpsRestartWorkChain):
        if node.process_class in (wrapper, wrapper._process_class):
            codes = node.process_class.spec().exit_codes
            return node.exit_status in {codes[label].status for label in wrapper.STOP_LABELS}
    return False


class GapFitRestartWorkChain(JobRestartWorkChain):
    """``gap_fit`` with restarts: out of memory (430/110) and ill-conditioned fits (431) on top of the shared
    handlers."""

    _process_class = GapFitCalculation

    @process_handler(priority=600, exit_codes=[GapFitCalculation.exit_codes.ERROR_OUT_OF_MEMORY,
                                               GapFitCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_MEMORY])
    def handle_out_of_memory(self, node):
        """Fewer sparse points or more memory, as ``restart.on_out_of_memory`` says (the change is the new input)."""
        settings = self.ctx.settings
        if settings['on_out_of_memory'] == 'reduce_sparse_points':
            parameters = self.ctx.inputs.parameters.get_dict()
            before = [d['n_sparse'] for d in parameters['descriptors']]
            after = [max(1, int(n * float(settings['sparse_factor']))) for n in before]
            if after == before:
                self.report_error_handled(node, f'out of memory with n_sparse {before}: cannot reduce further, '
                                                'giving up')
                return ProcessHandlerReport(do_break=True, exit_code=self.exit_codes.ERROR_UNHANDLED_FAILURE)
            for descriptor, n in zip(parameters['descriptors'], after):
                descriptor['n_sparse'] = n
            self.ctx.inputs.parameters = orm.Dict(parameters)
            self.report_error_handled(node, f'out of memory: retrying with n_sparse {before} -> {after}')
            return ProcessHandlerReport(do_break=True)
        options = self._options()
        output = node.outputs.output_parameters.get_dict() if 'output_parameters' in node.outputs else {}
        peak_mb = output.get('memory_peak_mb')
        current = int(options.get('max_memory_kb') or 0) or int(1024 * float(peak_mb or 1024))
        limit = int(settings['max_memory_kb_limit'])
        # the dryrun estimate (with a safety factor) is what the job needs: ask the scheduler for it
        needed = scheduler_options('gap_fit', memory_mb=float(peak_mb))['max_memory_kb'] if peak_mb else 0
        new = min(limit, max(int(current * float(settings['memory_factor'])), needed))
        if new <= current:
            self.report_error_handled(node, f'out of memory at the max_memory_kb_limit {limit} kB: giving up')
            return ProcessHandlerReport(do_break=True, exit_code=self.exit_codes.ERROR_UNHANDLED_FAILURE)
        options['max_memory_kb'] = new
        self._set_options(options)
        self.report_error_handled(node, f'out of memory: retrying with max_memory_kb {current} -> {new}')
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=500, exit_codes=[GapFitCalculation.exit_codes.ERROR_ILL_CONDITIONED])
    def handle_ill_conditioned(self, node):
        """Ill-conditioned sparse covariance (431): ``sparse_jitter`` x 100 (regularises the Cholesky factorisation)."""
        from aiida_mlfail.science.gap import normalise_fit_parameters

        parameters = self.ctx.inputs.parameters.get_dict()
        before = float(normalise_fit_parameters(parameters)['sparse_jitter'])
        parameters['sparse_jitter'] = before * 100.0
        self.ctx.inputs.parameters = orm.Dict(parameters)
        self.report_error_handled(node, f"ill-conditioned: retrying with sparse_jitter {before:g} -> "
                                        f"{parameters['sparse_jitter']:g}")
        return ProcessHandlerReport(do_break=True)


class QuipRestartWorkChain(JobRestartWorkChain):
    """GAP predictions (``mlfail.quip``) with the shared restart handlers."""

    _process_class = QuipPredictCalculation


class ExploreRestartWorkChain(JobRestartWorkChain):
    """The explorer (``mlfail.explore``) with the shared handlers; a guard stop (410 ``ERROR_MD_EXPLODED``),
    lost atoms (411 ``ERROR_LOST_ATOMS``), another LAMMPS error (412 ``ERROR_LAMMPS``) and a NaN/inf
    energy (413 ``ERROR_NON_FINITE``) are outcomes (the explorer stores its outputs for all four). After a walltime
    stop or a cancellation the next job continues from the last checkpoint of the stopped one
    (:meth:`continue_from`: ``parent_folder``; the job's ``checkpoint_interval``)."""

    _process_class = ExploreCalculation
    _accepted_failures = ('ERROR_MD_EXPLODED', 'ERROR_LOST_ATOMS', 'ERROR_LAMMPS', 'ERROR_NON_FINITE')

    def continue_from(self, node) -> str | None:
        """After a walltime stop or a cancellation: the next job continues from the last checkpoint of ``node``.

        The step comes from the job's retrieved stdout (``science.explore.last_checkpoint_step``: its last
        checkpoint line, or the checkpoint it continued from, which is still in its folder); the next job gets
        ``parent_folder`` = ``node``'s remote folder, whose ``checkpoint/`` it copies. Without a checkpoint (or a
        remote folder) the next job starts at step 0 (``parent_folder`` removed).

        :returns: the action for the report.
        """
        from aiida_mlfail.calculations.explore import STDOUT  # noqa: PLC0415
        from aiida_mlfail.science.explore import last_checkpoint_step  # noqa: PLC0415

        step = None
        if 'retrieved' in node.outputs and 'remote_folder' in node.outputs:
            try:
                step = last_checkpoint_step(node.outputs.retrieved.get_object_content(STDOUT))
            except (FileNotFoundError, OSError):
                step = None
        if step is None:
            self.ctx.inputs.pop('parent_folder', None)
            return 'no checkpoint written: starting again from step 0'
        self.ctx.inputs.parent_folder = node.outputs.remote_folder
        return f'continuing from the checkpoint at step {step} of {node.process_label}<{node.pk}>'
    #: Labels (of the job and of this wrapper, same statuses) of the stops whose outputs the active learner
    #: uses as a result of the exploration (its stop configuration is flagged): a guard stop and lost
    #: atoms. ``ERROR_LAMMPS`` (412) and ``ERROR_NON_FINITE`` (413) also end the loop (the same
    #: deterministic input would fail again) but are not a usable result.
    STOP_LABELS = ('ERROR_MD_EXPLODED', 'ERROR_LOST_ATOMS')


class LammpsRestartWorkChain(JobRestartWorkChain):
    """A LAMMPS job (``mlfail.lammps``) with the shared handlers; a guard stop (410 ``ERROR_MD_EXPLODED``) and
    lost atoms (411 ``ERROR_LOST_ATOMS``) are outcomes (the parser stores frames and thermo for both);
    a NaN/inf energy (413 ``ERROR_NON_FINITE``) and PPPM's ``Out of range atoms`` (414
    ``ERROR_PPPM_OUT_OF_RANGE``) end the loop too (the same deterministic input would fail again), with
    the job's outputs and exit code, but are not a usable MD result."""

    _process_class = LammpsCalculation
    _accepted_failures = ('ERROR_MD_EXPLODED', 'ERROR_LOST_ATOMS', 'ERROR_NON_FINITE', 'ERROR_PPPM_OUT_OF_RANGE')
    #: Labels (of the job and of this wrapper, same statuses) whose outputs a caller can use.
    STOP_LABELS = ('ERROR_MD_EXPLODED', 'ERROR_LOST_ATOMS')

    def setup(self):
        """The shared set-up, plus the first job's script and settings (a continuation is made from them) and the
        list of the jobs continued from (``ctx.segments``: ``(job pk, checkpoint step)``)."""
        super().setup()
        self.ctx.segments = []
        self.ctx.first_script = self.ctx.inputs.get('script')
        self.ctx.first_settings = self.ctx.inputs.get('settings')

    def continue_from(self, node) -> str | None:
        """After a walltime stop or a cancellation of a GAP MD job with checkpoints (``settings`` key
        ``checkpoint_interval`` > 0, set by ``prepare_mlmd`` from the MLMD parameter): the next job continues from
        the newest complete checkpoint of ``node`` (:func:`~aiida_mlfail.science.checkpoints.checkpoint_step`, from the
        thermo steps and the frames' ``md_step`` it stored before the kill, read from the nodes' arrays and
        attributes: no frame is loaded; or the checkpoint ``node`` itself continued from).

        The next job gets ``parent_folder`` = ``node``'s remote folder and the continuation script and settings of
        ``continue_mlmd`` (``read_restart``, ``run N upto``, the energy guard's start energy of the whole run,
        ``restart_step``); it copies only that checkpoint's restart file and the start energy
        (:func:`~aiida_mlfail.science.checkpoints.checkpoint_files`). Without a checkpoint the next job starts again at
        step 0 with the first script (``parent_folder`` removed). Other LAMMPS jobs (no ``checkpoint_interval``):
        start again (``None``).

        :returns: the action for the report, or ``None``.
        """
        from aiida_mlfail.calculations.functions import continue_mlmd  # noqa: PLC0415
        from aiida_mlfail.science.checkpoints import checkpoint_step  # noqa: PLC0415

        first = self.ctx.first_settings.get_dict() if self.ctx.first_settings is not None else {}
        interval = int(first.get('checkpoint_interval', 0) or 0)
        if not interval or self.ctx.first_script is None:
            return None
        settings = self.ctx.inputs.settings.get_dict() if 'settings' in self.ctx.inputs else {}
        start = int(settings.get('restart_step', 0) or 0)
        step = None
        if 'remote_folder' in node.outputs:
            thermo = node.outputs.thermo.get_array('step') if 'thermo' in node.outputs else []
            # the frames' steps from the set's stored per-configuration metadata: no frame is loaded
            frames = [c['md_step'] for c in node.outputs.training_set.configurations if 'md_step' in c] \
                if 'training_set' in node.outputs else []
            step = checkpoint_step(interval, start, thermo, frames)
        if step is None:
            self.ctx.inputs.script = self.ctx.first_script
            self.ctx.inputs.settings = self.ctx.first_settings
            self.ctx.inputs.pop('parent_folder', None)
            self.ctx.segments = []
            return 'no checkpoint written: starting again from step 0'
        prepared = continue_mlmd(self.ctx.first_script, self.ctx.first_settings, orm.Int(step))
        self.ctx.inputs.script = prepared['script']
        self.ctx.inputs.settings = prepared['settings']
        self.ctx.inputs.parent_folder = node.outputs.remote_folder
        self.ctx.segments = [*self.ctx.segments, (node.pk, step)]
        return f'continuing from the checkpoint at step {step} of {node.process_label}<{node.pk}>'

    def get_outputs(self, node):
        """The last job's outputs; after continuations from checkpoints, ``thermo`` and ``training_set`` cover the
        whole run: the jobs' series joined by ``join_md_segments`` (each job up to the checkpoint the next one
        continued from, no step twice)."""
        outputs = dict(super().get_outputs(node))
        segments = self.ctx.get('segments') or []
        if not segments or 'thermo' not in outputs:
            return outputs
        from aiida_mlfail.calculations.functions import join_md_segments  # noqa: PLC0415

        jobs = [orm.load_node(pk) for pk, _ in segments] + [node]
        parts = {}
        for i, job in enumerate(jobs):
            for name in ('thermo', 'training_set'):
                if name in job.outputs:
                    parts[f'{name}_{i}'] = job.outputs[name]
        joined = join_md_segments(boundaries=orm.List([step for _, step in segments]), **parts)
        outputs.update(joined)
        return outputs


class RematchRestartWorkChain(JobRestartWorkChain):
    """REMatch comparisons of two sets of configurations (``mlfail.rematch``) with the shared restart handlers."""

    _process_class = RematchCalculation
