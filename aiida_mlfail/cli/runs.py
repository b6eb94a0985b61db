"""``aiida-mlfail status`` and ``aiida-mlfail report``: follow an active-learning run, export its results."""

from __future__ import annotations

import json
import pathlib
import re

import click
from aiida.cmdline.params import arguments
from aiida.cmdline.utils import decorators, echo

from aiida_mlfail.cli.files import atomic_folder, overwrite_option

AL_LABEL = 'ActiveLearningWorkChain'


def _state(node, message: bool = True) -> str:
    state = node.process_state.value if node.process_state is not None else 'created'
    if node.is_finished:
        return f'{state} [{node.exit_status}]' + (f' {node.exit_message}' if node.exit_message and message else '')
    return state


def iteration_rows(run) -> list[dict]:
    """The iteration rows of an active-learning run: the ``summary`` output when finished, else the extras so far."""
    if 'summary' in run.outputs:
        return run.outputs.summary.get_dict()['iterations']
    return run.base.extras.get('mlfail_iterations', [])


def _active_children(node) -> list[str]:
    from aiida.common.links import LinkType

    from aiida_mlfail.provenance import called_processes

    lines = []
    for child in called_processes(node):
        if not child.is_terminated:
            incoming = child.base.links.get_incoming(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).first()
            label = incoming.link_label if incoming is not None else ''
            lines.append(f'  {label or child.process_label} <{child.pk}> {child.process_label}: {_state(child)}')
    return lines


def _list_runs(limit: int = 20) -> None:
    from aiida import orm
    from tabulate import tabulate

    qb = orm.QueryBuilder()
    qb.append(orm.WorkChainNode, filters={'attributes.process_label': AL_LABEL}, project='*')
    qb.order_by({orm.WorkChainNode: {'ctime': 'desc'}})
    qb.limit(limit)
    rows = []
    for (node,) in qb.all():
        outcome = node.outputs.summary['outcome'] if 'summary' in node.outputs else ''
        rows.append((node.pk, node.ctime.strftime('%Y-%m-%d %H:%M'), _state(node, message=False),
                     len(iteration_rows(node)), outcome))
    if not rows:
        echo.echo_report('no ActiveLearningWorkChain in this profile')
        return
    echo.echo(tabulate(rows, headers=('pk', 'created', 'state', 'iterations', 'outcome')))
    echo.echo('details: aiida-mlfail status PK')


@click.command('status')
@arguments.PROCESS(required=False)
@decorators.with_dbenv()
def status(process):
    """The iteration table of an active-learning run so far (running or finished).

    Without PROCESS: the latest active-learning runs of the profile. For another process: its state,
    outputs and the processes it called.

    Example: aiida-mlfail status 1859
    """
    if process is None:
        _list_runs()
        return
    echo.echo(f'{process.process_label} <{process.pk}>: {_state(process)}')
    if process.process_label == AL_LABEL:
        rows = iteration_rows(process)
        parameters = process.inputs.parameters.get_dict() if 'parameters' in process.inputs else {}
        limits = ', '.join(f'{k} {parameters[k]}' for k in ('max_iterations',
                                                            'max_new_configurations') if k in parameters)
        if rows:
            from aiida_mlfail.science.active_learning import format_table

            echo.echo(format_table(rows))
        else:
            echo.echo('no iteration finished yet')
        if 'summary' in process.outputs:
            summary = process.outputs.summary.get_dict()
            added = sum(r.get('added', 0) for r in rows)
            echo.echo(f"outcome: {summary['outcome']} after {len(rows)} exploration(s), {added} configuration(s) added"
                      + (f' ({limits})' if limits else ''))
        elif limits:
            echo.echo(f'limits: {limits}')
    else:
        for label in sorted(process.outputs):
            output = process.outputs[label]
            kind = type(output).__name__ if hasattr(output, 'pk') else 'namespace'
            echo.echo(f'  output {label}: {kind}' + (f' <{output.pk}>' if hasattr(output, 'pk') else ''))
    if not process.is_terminated:
        active = _active_children(process)
        echo.echo('running now:' if active else 'running now: (nothing; waiting to be picked up by the daemon?)')
        for line in active:
            echo.echo(line)


def _file_name(text: str) -> str:
    """A file name made of ``text``, which may come from a node (an archive's ``SinglefileData`` filename):
    one path component of letters, digits, ``_``, ``-`` and ``.``, not starting with ``.``."""
    return re.sub(r'[^A-Za-z0-9_.\-]', '_', text).lstrip('.') or '_'


def _write(path: pathlib.Path, content, written: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    written.append(path)


def _fmt(value, spec: str = '{:.4g}') -> str:
    return '-' if value is None else spec.format(value)


def mlmd_runs_of(potentials: list) -> list:
    """``MLMDWorkChain`` nodes that ran one of ``potentials`` (``GapPotentialData``), by pk."""
    from aiida import orm

    if not potentials:
        return []
    qb = orm.QueryBuilder()
    qb.append(orm.Data, filters={'id': {'in': [p.pk for p in potentials]}}, tag='potential')
    qb.append(orm.WorkChainNode, with_incoming='potential', edge_filters={'label': 'potential'}, project='*',
              filters={'attributes.process_label': 'MLMDWorkChain'})
    return sorted({node.pk: node for (node,) in qb.all()}.values(), key=lambda n: n.pk)


def write_active_learning_report(run, folder: pathlib.Path) -> list[pathlib.Path]:
    """Export the tables and figures of an active-learning run to ``folder``; returns the written paths.

    ``summary.txt`` (iteration table, GAPs with validation RMSE, added configurations, GAP-MD runs of
    the run's GAPs, failed GAP-MD runs), ``summary.json`` (the same data), ``convergence.png``,
    ``parity_iteration_<i>.png`` per fit, ``forensics_mlmd_<pk>.png`` per ``MLMDWorkChain`` that ran
    one of the run's GAPs, and ``process_report.txt`` (``verdi process report``).
    """
    from aiida.cmdline.utils.common import get_workchain_report

    from aiida_mlfail.provenance import added_configurations, failed_md_runs, potentials_of_run
    from aiida_mlfail.science.active_learning import convergence_png, format_table

    written: list[pathlib.Path] = []
    rows = iteration_rows(run)
    outcome = run.outputs.summary['outcome'] if 'summary' in run.outputs else None
    potentials = potentials_of_run(run)
    added = added_configurations(run)
    iteration_of = {r['potential'].pk: r['iteration'] for r in potentials}
    mlmd = mlmd_runs_of([r['potential'] for r in potentials])
    failed = failed_md_runs(run)

    lines = [f'{run.process_label} <{run.pk}> ({run.uuid}): {_state(run)}',
             f'outcome: {outcome or "(not finished)"}', '', 'iterations:',
             format_table(rows) if rows else '(none finished)', '', 'GAPs fitted (validation RMSE):']
    lines.append(f"{'it':>3}  {'label':<32}{'train':>6}{'E (eV/at)':>11}{'F (eV/Å)':>10}{'V (eV/at)':>11}  final")
    for r in potentials:
        lines.append(f"{_fmt(r['iteration'], '{}'):>3}  {r['label']:<32}{_fmt(r['training_set_size'], '{}'):>6}"
                     f"{_fmt(r['energy_rmse'], '{:.4f}'):>11}{_fmt(r['forces_rmse'], '{:.3f}'):>10}"
                     f"{_fmt(r['virial_rmse'], '{:.4f}'):>11}  {'yes' if r['final'] else ''}")
    lines += ['', 'configurations added:']
    for r in added:
        lines.append(f"  iteration {r['iteration']} walker {r['walker']} {r['candidate']}: MD step {r['md_step']}, "
                     "similarity "
                     f"{_fmt(r['similarity'], '{:.6f}')}, explorer <{r['explorer'].pk}>, GAP {r['potential'].label}, "
                     f"labelled by <{', '.join(str(j.pk) for j in r['labelling_jobs'])}>, E {r['energy']:.4f} eV")
    if not added:
        lines.append('  (none)')
    lines += ['', "GAP-MD runs (MLMDWorkChain) of the run's GAPs:"]
    for node in mlmd:
        stop = node.outputs.stop.get_dict() if 'stop' in node.outputs else {}
        lines.append(f"  <{node.pk}> GAP of iteration {iteration_of.get(node.inputs.potential.pk)}: "
                     f"{stop.get('stop_reason', '?')} at step {stop.get('stop_step', '?')} [{node.exit_status}]")
    if not mlmd:
        lines.append('  (none)')
    lines += ['', 'failed GAP-MD runs (aiida_mlfail.provenance.failed_md_runs):']
    for r in failed:
        lines.append(f"  {r['process_label']} <{r['process'].pk}> [{r['exit_status']}]: {r['stop_reason']} at step "
                     f"{r['stop_step']} with GAP {r['potential'].label} "
                     f"(iteration {iteration_of.get(r['potential'].pk)})")
    if not failed:
        lines.append('  (none)')
    _write(folder / 'summary.txt', '\n'.join(lines) + '\n', written)

    data = {
        'pk': run.pk, 'uuid': run.uuid, 'state': _state(run), 'exit_status': run.exit_status, 'outcome': outcome,
        'iterations': rows,
        'potentials': [{'iteration': r['iteration'], 'label': r['label'], 'uuid': r['potential'].uuid,
                        'fit_uuid': r['fit'].uuid, 'training_set_size': r['training_set_size'],
                        'energy_rmse': r['energy_rmse'], 'forces_rmse': r['forces_rmse'],
                        'virial_rmse': r['virial_rmse'], 'final': r['final']} for r in potentials],
        'added_configurations': [{'iteration': r['iteration'], 'walker': r['walker'], 'candidate': r['candidate'],
                                  'md_step': r['md_step'],
                                  'similarity': r['similarity'], 'stop_reason': r['stop_reason'],
                                  'structure_uuid': r['structure'].uuid, 'explore_uuid': r['explorer'].uuid,
                                  'potential_uuid': r['potential'].uuid,
                                  'labelling_job_uuids': [j.uuid for j in r['labelling_jobs']],
                                  'energy': r['energy']} for r in added],
        'mlmd_runs': [{'pk': n.pk, 'uuid': n.uuid, 'exit_status': n.exit_status,
                       'potential_iteration': iteration_of.get(n.inputs.potential.pk),
                       'stop': n.outputs.stop.get_dict() if 'stop' in n.outputs else None} for n in mlmd],
        'failed_md_runs': [{'process_label': r['process_label'], 'uuid': r['process'].uuid,
                            'exit_status': r['exit_status'], 'stop_reason': r['stop_reason'],
                            'stop_step': r['stop_step'], 'value': r['value'],
                            'potential_uuid': r['potential'].uuid} for r in failed],
    }
    _write(folder / 'summary.json', json.dumps(data, indent=2, default=str) + '\n', written)

    if 'convergence_plot' in run.outputs:
        png = run.outputs.convergence_plot.get_content(mode='rb')
    else:
        png = convergence_png(rows, title=f'active learning <{run.pk}>: {_state(run)}') if rows else None
    if png:
        _write(folder / 'convergence.png', png, written)
    for r in potentials:
        if 'parity_plot' in r['fit'].outputs:
            iteration = r['iteration']
            name = f'parity_iteration_{iteration}.png' if iteration is not None else f"parity_{r['fit'].pk}.png"
            _write(folder / name, r['fit'].outputs.parity_plot.get_content(mode='rb'), written)
    for node in mlmd:
        if 'forensics_plot' in node.outputs:
            _write(folder / f'forensics_mlmd_{node.pk}.png', node.outputs.forensics_plot.get_content(mode='rb'),
                   written)
    _write(folder / 'process_report.txt', get_workchain_report(run, 'REPORT') + '\n', written)
    return written


def write_generic_report(node, folder: pathlib.Path) -> list[pathlib.Path]:
    """Export the figures (``SinglefileData``) and ``Dict`` outputs of any process, and its report."""
    from aiida import orm
    from aiida.cmdline.utils.common import get_calcjob_report, get_workchain_report

    written: list[pathlib.Path] = []

    def walk(outputs, prefix):
        for label in sorted(outputs):
            output = outputs[label]
            name = f'{prefix}{label}'
            if isinstance(output, orm.SinglefileData):
                _write(folder / _file_name(f'{name}_{output.filename}'), output.get_content(mode='rb'), written)
            elif isinstance(output, orm.Dict):
                _write(folder / f'{name}.json', json.dumps(output.get_dict(), indent=2, default=str) + '\n', written)
            elif not hasattr(output, 'pk'):
                walk(output, f'{name}_')

    walk(node.outputs, '')
    report = get_calcjob_report(node) if isinstance(node, orm.CalcJobNode) else get_workchain_report(node, 'REPORT')
    _write(folder / 'summary.txt', f'{node.process_label} <{node.pk}> ({node.uuid}): {_state(node)}\n', written)
    _write(folder / 'process_report.txt', report + '\n', written)
    return written


@click.command('report')
@arguments.PROCESS()
@click.option('-o', '--output', 'folder', type=click.Path(file_okay=False, path_type=pathlib.Path),
              help='Folder to write to (default: report_<pk>).')
@overwrite_option()
@decorators.with_dbenv()
def report(process, folder, overwrite):
    """Export the tables and figures of a run to a folder.

    For an active-learning run: summary.txt and summary.json (iteration table, GAPs with validation RMSE,
    added configurations, GAP-MD runs of its GAPs, failed GAP-MD runs), convergence.png, the parity plot
    of every fit, the forensics plot of every MLMDWorkChain that ran one of its GAPs, process_report.txt.
    For any other process: its figures and Dict outputs.

    An existing folder is refused without -f/--overwrite; the folder is written next to the target and
    renamed at the end, so a failed report leaves nothing behind.

    Example: aiida-mlfail report 1859 -o results/report_1859
    """
    folder = folder or pathlib.Path(f'report_{process.pk}')
    if not process.is_terminated:
        echo.echo_warning(f'<{process.pk}> is {_state(process)}: exporting what exists so far')
    with atomic_folder(folder, overwrite) as tmp:
        if process.process_label == AL_LABEL:
            written = write_active_learning_report(process, tmp)
        else:
            written = write_generic_report(process, tmp)
    for path in written:
        echo.echo(f'  {folder / path.relative_to(tmp)}')
    echo.echo_success(f'{len(written)} files written to {folder}')
