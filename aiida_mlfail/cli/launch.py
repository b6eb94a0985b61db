"""``aiida-mlfail launch``: run a study script, or build and launch a WorkChain/CalcJob from YAML + ``key=value``
(the input tree is read and checked by :mod:`aiida_mlfail.cli.inputs`)."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import pathlib
import sys
import time

import click
from aiida.cmdline.utils import decorators, echo

from aiida_mlfail.cli.inputs import (  # noqa: F401 (convert_inputs, fill_default_codes: used by the tests as before)
    apply_override,
    assign_inputs,
    builder_from_protocol,
    convert_inputs,
    fill_default_codes,
    parse_override,
    read_inputs_file,
    validate_inputs,
)

#: ``--protocol`` of the studies: they have two sizes (``small``: minutes on a laptop, ``large``: the
#: 200-ion setting for real use, hours), so ``fast`` and ``moderate`` both run ``small``.
PROTOCOL_SIZES = {'fast': 'small', 'moderate': 'small', 'precise': 'large'}


def studies_folder() -> pathlib.Path:
    """The ``workflows/`` folder of the source tree (the package is installed editable from it)."""
    import aiida_mlfail

    return pathlib.Path(aiida_mlfail.__file__).resolve().parent.parent / 'workflows'


def study_names() -> list[str]:
    """Names of the study scripts (``workflows/<name>.py`` with a ``main(argv)``)."""
    folder = studies_folder()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob('*.py') if p.stem != 'common' and 'def main(' in p.read_text())


def _load_study(name: str):
    path = studies_folder() / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'mlfail_study_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path.read_text()


def _process_class(name: str):
    """The Process class of a ``aiida.workflows`` or ``aiida.calculations`` entry point, or ``None``."""
    from aiida.common.exceptions import MissingEntryPointError
    from aiida.plugins import CalculationFactory, WorkflowFactory

    for factory in (WorkflowFactory, CalculationFactory):
        try:
            return factory(name)
        except MissingEntryPointError:
            continue
    return None



class _ProgressHandler(logging.Handler):
    """Echo process reports (and warnings/errors) of a foreground run, with the elapsed time."""

    def __init__(self, start: float):
        super().__init__(level=logging.INFO)
        self.start = start

    def emit(self, record):
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001
            return
        prefix = '' if record.levelname in ('REPORT', 'INFO') else f'{record.levelname}: '
        click.echo(f'[{time.time() - self.start:7.1f} s] {prefix}{message}')


@contextlib.contextmanager
def _echo_reports():
    """Within the block, the terminal handlers of the ``aiida`` logger are swapped for one that echoes each report
    with the elapsed time; the database log handler stays, so ``verdi process report`` is complete."""
    from aiida.cmdline.utils.log import CliHandler
    from aiida.common.log import configure_logging

    configure_logging(with_orm=True)  # the database handler, whatever configured logging before
    logger = logging.getLogger('aiida')
    terminal = [h for h in logger.handlers if type(h) is logging.StreamHandler or isinstance(h, CliHandler)]
    handler = _ProgressHandler(time.time())
    for h in terminal:
        logger.removeHandler(h)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        for h in terminal:
            logger.addHandler(h)


#: Seconds between two polls of the state of child processes in a foreground run (:func:`run_foreground`,
#: :class:`ForegroundRuns`) when no ``poll_interval`` is given: a step of a WorkChain starts at most this long after
#: the child it waits for ended. The test suite sets 0.1 s (tests/conftest.py); each poll of a waiting process is
#: one database query.
POLL_INTERVAL = 1.0


def run_foreground(builder, poll_interval: float | None = None):
    """Run a builder in this interpreter, echoing the reports of the process and its children as they come.

    Like ``aiida.engine.run_get_node`` (a local runner without a communicator), but the runner polls the
    state of the child processes every ``poll_interval`` seconds (default :data:`POLL_INTERVAL`) instead of
    ``runner.poll.interval``
    (60 s by default, which would idle a minute after every step of a WorkChain). The terminal
    handlers of the ``aiida`` logger are swapped for one that prefixes the elapsed time; the
    database log handler stays, so ``verdi process report`` is complete.
    """
    from aiida.manage import get_manager

    with _echo_reports():
        # (not runner.close() afterwards: that closes the event loop the runner shares with this interpreter)
        runner = get_manager().create_runner(communicator=None, poll_interval=poll_interval or POLL_INTERVAL)
        _, node = runner.run_get_node(builder)
    return node


class ForegroundRuns:
    """Processes run concurrently in this interpreter, started and awaited by name: what a daemon worker does for
    submitted processes, without a daemon. The processes make progress (and their children are polled every
    ``poll_interval`` seconds, as in :func:`run_foreground`) while :meth:`wait` runs, including those not waited
    for, so a later step can start as soon as the processes it needs have ended while the others go on::

        runs = ForegroundRuns()
        runs.start('gap', gap_builder)
        runs.start('learner', learner_builder)      # independent of the GAP
        gap = runs.wait('gap')['gap']
        runs.start('md', md_builder(gap.outputs.potential))
        nodes = runs.wait('md', 'learner')
    """

    def __init__(self, poll_interval: float | None = None):
        from aiida.manage import get_manager

        # (never runner.close(): that closes the event loop the runner shares with this interpreter)
        self._runner = get_manager().create_runner(communicator=None, poll_interval=poll_interval or POLL_INTERVAL)
        self._processes = {}
        self._tasks = {}

    def start(self, name: str, builder):
        """Instantiate the process of ``builder`` under ``name`` (it runs during :meth:`wait`); returns its node.

        :raises ValueError: for a name already started.
        """
        from aiida.engine.utils import loop_scope

        if name in self._processes:
            raise ValueError(f'a process named {name!r} was already started')
        with _echo_reports(), loop_scope(self._runner.loop):
            process = self._runner.instantiate_process(builder)
            self._tasks[name] = self._runner.loop.create_task(process.step_until_terminated())
        self._processes[name] = process
        return process.node

    def wait(self, *names: str) -> dict:
        """Run the event loop until the processes ``names`` (default: all started) have terminated, echoing the
        reports (:func:`run_foreground`); returns ``{name: node}`` of those.

        :raises KeyError: for a name never started.
        """
        import asyncio

        from aiida.engine.utils import loop_scope

        names = names or tuple(self._processes)
        tasks = [self._tasks[name] for name in names]

        async def terminated():
            await asyncio.gather(*tasks)

        with _echo_reports(), loop_scope(self._runner.loop):
            self._runner.loop.run_until_complete(terminated())
        return {name: self._processes[name].node for name in names}


def run_foreground_together(builders: dict, poll_interval: float | None = None) -> dict:
    """Run several builders ``{name: builder}`` concurrently in this interpreter (:class:`ForegroundRuns`) and
    return ``{name: node}`` once all have terminated.

    :raises ValueError: for no builders.
    """
    if not builders:
        raise ValueError('run_foreground_together: no builders given')
    runs = ForegroundRuns(poll_interval)
    for name, builder in builders.items():
        runs.start(name, builder)
    return runs.wait()


def _launch_study(name, size, computer, submit, args):
    if submit:
        raise click.UsageError('studies submit their processes to the daemon themselves and wait for them; '
                               '--submit applies to workflow entry points')
    from aiida.engine.daemon.client import get_daemon_client

    module, source = _load_study(name)
    argv = ['--size', size]
    if computer:
        if "'--computer'" not in source:
            raise click.UsageError(f'study {name} has no --computer option (it uses the localhost codes)')
        argv += ['--computer', computer]
    argv += list(args)
    client = get_daemon_client()
    # a study that runs its WorkChains in its own process (module attribute FOREGROUND = True) needs no daemon
    foreground = getattr(module, 'FOREGROUND', False) or {'-h', '--help', '--foreground'} & set(args)
    if not foreground and not client.is_daemon_running:
        echo.echo_critical(f'the daemon of profile {client.profile.name!r} is not running (the study submits to it): '
                           f'verdi -p {client.profile.name} daemon start')
    echo.echo_report(f'running workflows/{name}.py {" ".join(argv)}')
    status = module.main(argv)
    sys.exit(status or 0)


def _launch_entry_point(name, process_class, inputs_file, protocol, computer, submit, args):
    tree = read_inputs_file(inputs_file) if inputs_file else {}
    for text in args:
        keys, value = parse_override(text)
        apply_override(tree, keys, value)
    launch_tree(name, process_class, tree, protocol, computer or 'localhost', submit)


def launch_tree(name, process_class, tree: dict, protocol, computer: str, submit: bool):
    """Build ``process_class`` from the input ``tree`` (from its protocol when ``protocol`` is given), validate
    every input, then submit it or run it in the foreground (see ``aiida-mlfail launch``)."""
    from aiida.engine import submit as submit_process

    if protocol:
        if not hasattr(process_class, 'get_builder_from_protocol'):
            raise click.UsageError(f'{name} has no get_builder_from_protocol: give its inputs with --inputs FILE '
                                   'and key=value')
        builder = builder_from_protocol(process_class, protocol, tree, computer)
    else:
        spec = process_class.spec().inputs
        inputs = convert_inputs(tree, spec, computer)
        for line in fill_default_codes(inputs, spec, name, computer):
            echo.echo_report(f'default code {line}')
        builder = process_class.get_builder()
        assign_inputs(builder, inputs)
    validate_inputs(process_class, builder)  # nothing is stored before every input is valid
    if submit:
        try:
            node = submit_process(builder)
        except ValueError as exc:  # port validation: a clear message, nothing was created
            echo.echo_critical(f'invalid inputs: {exc}')
        echo.echo_success(f'submitted {process_class.__name__} <{node.pk}> to the daemon')
        echo.echo(f'follow it with: aiida-mlfail status {node.pk}   (or verdi process report {node.pk})')
        return
    echo.echo_report(f'running {process_class.__name__} in the foreground (Ctrl-C kills it)')
    start = time.time()
    try:
        node = run_foreground(builder)
    except ValueError as exc:
        if 'validating' not in str(exc):
            raise
        echo.echo_critical(f'invalid inputs: {exc}')
    elapsed = time.time() - start
    status = node.exit_status
    message = f' {node.exit_message}' if node.exit_message else ''
    echo.echo(f'{process_class.__name__} <{node.pk}> finished [{status}]{message} in {elapsed:.0f} s')
    for label in sorted(node.outputs):
        output = node.outputs[label]
        if hasattr(output, 'pk'):
            echo.echo(f'  output {label}: <{output.pk}> {type(output).__name__}')
        else:
            echo.echo(f'  output {label}: namespace ({", ".join(sorted(output))})')
    if status is None or not (status == 0 or 700 <= status < 800):
        sys.exit(1)


@click.command('launch', context_settings={'help_option_names': ['-h', '--help']})
@click.argument('name')
@click.argument('args', nargs=-1, metavar='[KEY=VALUE]... | [-- STUDY OPTIONS]')
@click.option('-i', '--inputs', 'inputs_file', type=click.Path(exists=True, dir_okay=False),
              help='YAML file with the input tree of a workflow entry point (same nesting as the builder).')
@click.option('--protocol', type=click.Choice(sorted(PROTOCOL_SIZES)),
              help='Studies: fast and moderate run --size small, precise runs --size large (the studies have two '
                   'sizes). Workflow entry points: get_builder_from_protocol with that protocol; key=value and '
                   '--inputs give its arguments (structure=FILE, reference={...}, codes={role: label}) and '
                   'overrides of the protocol inputs.')
@click.option('--size', type=click.Choice(['small', 'large']), help='Study size (instead of --protocol).')
@click.option('-Y', '--computer', help='Computer of the codes: studies that have --computer get it; for entry points '
                                       'codes given by label and default codes are looked up as LABEL@COMPUTER '
                                       '(default localhost).')
@click.option('--submit', is_flag=True, help='Submit a workflow entry point to the daemon instead of running it here.')
@decorators.with_dbenv()
def launch(name, args, inputs_file, protocol, size, computer, submit):
    """Launch a study (NAME = a script of workflows/) or a process (NAME = an entry point such as mlfail.sample).

    \b
    Studies:      aiida-mlfail launch nacl_active_learning --protocol fast
                  aiida-mlfail launch config_space --size small -- --output results/cs
    Entry points: aiida-mlfail launch mlfail.sample --inputs sample.yaml md.production_steps=400
                  aiida-mlfail launch mlfail.active_learning -i al.yaml --submit
    Protocols:    aiida-mlfail launch mlfail.active_learning --protocol fast \\
                      'structure={system: nacl, n_ions: 64}' 'reference={name: bmhtf_coul_long}'

    Inputs of an entry point: a YAML tree of port names (--inputs) updated by KEY=VALUE pairs with dotted keys
    (values parsed as YAML). Codes are LABEL@COMPUTER or LABEL; structures, training sets and GAPs are files
    or node pks/uuids; mappings become Dict, lists List. Missing code ports get the codes set up by
    `make demo` (lammps, gap_fit, quip, explore, rematch) on --computer. Without --submit the process runs in
    the foreground and its reports are shown as they come.

    Every input is converted and validated (port validators and the whole input namespace) before anything
    is stored. A value that cannot be read (YAML, a structure or training-set file, a GAP folder, a node or
    code that does not exist, .inf/.nan or a date) stops with exit code 2 and `Error: ... <port>: <reason>`;
    a value the process refuses stops with exit code 1 and `Error: invalid inputs: <port>: <reason>`.
    """
    if protocol and size:
        raise click.UsageError('give --protocol or --size, not both')
    studies = study_names()
    if name in studies:
        _launch_study(name, size or PROTOCOL_SIZES.get(protocol, 'small'), computer, submit, args)
        return
    if size:
        raise click.UsageError('--size applies to the studies only')
    process_class = _process_class(name)
    if process_class is None:
        raise click.BadParameter(f'{name!r} is neither a study ({", ".join(studies) or "none found"}) nor a workflow '
                                 'or calculation entry point (e.g. mlfail.sample, mlfail.active_learning)',
                                 param_hint='NAME')
    _launch_entry_point(name, process_class, inputs_file, protocol, computer, submit, args)
