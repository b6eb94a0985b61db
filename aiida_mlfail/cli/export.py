"""``aiida-mlfail export``: a training set with per-frame provenance, a GAP's files, an AiiDA archive of a run."""

from __future__ import annotations

import pathlib

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import arguments, types
from aiida.cmdline.utils import decorators, echo

from aiida_mlfail.cli.files import atomic_file, atomic_folder, overwrite_option

#: Per-frame fields written by ``export training-set`` (see :func:`aiida_mlfail.provenance.configuration_origins`).
PROVENANCE_FIELDS = ('iteration', 'md_step', 'trigger', 'walker', 'labelling_job_uuid')


def training_set_of(node):
    """A ``TrainingSetData`` itself, or the ``training_set`` (else ``pool``) output of a process."""
    from aiida import orm

    from aiida_mlfail.data.training_set import TrainingSetData

    if isinstance(node, TrainingSetData):
        return node
    if isinstance(node, orm.ProcessNode):
        for label in ('training_set', 'pool'):
            if label in node.outputs and isinstance(node.outputs[label], TrainingSetData):
                return node.outputs[label]
    raise click.BadParameter(f'<{node.pk}> is a {type(node).__name__}: give a TrainingSetData or a process with a '
                             'training_set or pool output', param_hint='NODE')


def potential_of(node):
    """A ``GapPotentialData`` itself, or the ``potential`` output of a process."""
    from aiida import orm

    from aiida_mlfail.data.gap_potential import GapPotentialData

    if isinstance(node, GapPotentialData):
        return node
    if isinstance(node, orm.ProcessNode) and 'potential' in node.outputs:
        return node.outputs.potential
    raise click.BadParameter(f'<{node.pk}> is a {type(node).__name__}: give a GapPotentialData or a process with a '
                             'potential output', param_hint='NODE')


def atoms_with_provenance(training_set, run=None) -> list:
    """The configurations of a set with the fields of :data:`PROVENANCE_FIELDS` (and, for added ones,
    ``stop_reason``, ``explore_uuid``, ``potential_uuid``) in ``atoms.info``."""
    from aiida_mlfail.provenance import configuration_origins

    configurations = training_set.get_atoms()
    for atoms, origin in zip(configurations, configuration_origins(training_set, run)):
        atoms.info.update(origin)
    return configurations


def write_extxyz(configurations, path: pathlib.Path, overwrite: bool = False) -> pathlib.Path:
    """Write ``configurations`` as extxyz to ``path`` atomically (see :mod:`aiida_mlfail.cli.files`).

    :raises click.BadParameter: ``path`` exists and not ``overwrite``, or a parent of it is a file.
    """
    from aiida_mlfail.science.extxyz import write_configurations

    with atomic_file(path, overwrite) as tmp:
        write_configurations(str(tmp), configurations)
    return path


@click.group('export', cls=VerdiCommandGroup)
def export():
    """Export a training set (extxyz with provenance), a GAP's files or an AiiDA archive of a run."""


@export.command('training-set')
@arguments.NODE()
@click.option('-o', '--output', type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help='extxyz file to write (default: training_set_<pk>.xyz).')
@click.option('--run', type=types.ProcessParamType(), default=None,
              help='The active-learning run to trace added configurations in (default: the run that made the set).')
@overwrite_option()
@decorators.with_dbenv()
def export_training_set(node, output, run, overwrite):
    """Write a training set as extxyz with per-frame provenance fields.

    NODE is a TrainingSetData or a process with a training_set (or pool) output, e.g. an active-learning
    run. Every frame gets iteration (0 for the initial data), md_step, trigger ('initial', or 'trigger' /
    'previous' for a configuration the run added), walker (the walker that flagged it; -1 for the initial data)
    and labelling_job_uuid (the LAMMPS sampling job of
    its state point, or the labelling job); added frames also stop_reason, explore_uuid, potential_uuid.

    An existing OUTPUT is refused unless -f/--overwrite is given; the file is written to a temporary file
    next to it and moved into place, so a failed export leaves nothing.

    Example: aiida-mlfail export training-set 1859 -o training_set.xyz
    """
    training_set = training_set_of(node)
    output = output or pathlib.Path(f'training_set_{training_set.pk}.xyz')
    configurations = atoms_with_provenance(training_set, run)
    write_extxyz(configurations, output, overwrite)
    added = sum(1 for a in configurations if a.info['iteration'] > 0)
    echo.echo_success(f'{len(configurations)} configurations of TrainingSetData <{training_set.pk}> '
                      f'({added} added by active learning) written to {output}')


@export.command('potential')
@arguments.NODE()
@click.option('-o', '--output', type=click.Path(file_okay=False, path_type=pathlib.Path),
              help='Folder for the GAP XML and sparseX files (default: potential_<pk>).')
@overwrite_option('Replace an existing folder as a whole (without it an existing folder is refused).')
@decorators.with_dbenv()
def export_potential(node, output, overwrite):
    """Write the files of a GAP (XML + sparseX) to a folder.

    NODE is a GapPotentialData or a process with a potential output (GapWorkChain, active-learning run).

    An existing OUTPUT folder is refused unless -f/--overwrite is given (then it is replaced as a whole);
    the files are written into a temporary folder next to it that is renamed at the end.

    Example: aiida-mlfail export potential 1859 -o gap_final
    """
    potential = potential_of(node)
    output = output or pathlib.Path(f'potential_{potential.pk}')
    with atomic_folder(output, overwrite) as tmp:
        xml = potential.write_files(tmp)
    xml = output / xml.name
    echo.echo_success(f'GAP {potential.label} <{potential.pk}> written to {output} '
                      f"({', '.join(potential.base.attributes.get('files'))}); in LAMMPS: "
                      f'pair_style quip / pair_coeff * * {xml.name} "{potential.base.attributes.get("init_args")}" ...')


@export.command('archive')
@arguments.PROCESS()
@click.option('-o', '--output', type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help='Archive file to write (default: run_<pk>.aiida).')
@overwrite_option()
@decorators.with_dbenv()
def export_archive(process, output, overwrite):
    """Write an AiiDA archive of a run (with everything it called and created; `verdi archive import` reads it).

    An existing OUTPUT is refused unless -f/--overwrite is given; the archive is written to a temporary file
    next to it and moved into place, so a failed export leaves nothing.

    Example: aiida-mlfail export archive 1859 -o al_1859.aiida
    """
    from aiida.tools.archive import create_archive

    output = output or pathlib.Path(f'run_{process.pk}.aiida')
    with atomic_file(output, overwrite) as tmp:
        # (create_archive writes into the system temporary folder and moves the result: a copy across file
        # systems, so not atomic by itself; the temporary file next to the target makes the last step atomic)
        create_archive([process], filename=tmp, overwrite=False)
    echo.echo_success(f'{process.process_label} <{process.pk}> archived to {output} '
                      f'({output.stat().st_size / 1e6:.1f} MB)')
