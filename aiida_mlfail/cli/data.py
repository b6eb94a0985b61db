"""``verdi data mlfail``: import, show and export ``TrainingSetData``; show and export ``GapPotentialData``
(entry point ``aiida.cmdline.data``)."""

from __future__ import annotations

import collections
import pathlib

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import arguments, types
from aiida.cmdline.utils import decorators, echo

from aiida_mlfail.cli.files import atomic_file, atomic_folder, overwrite_option

TRAINING_SET = types.DataParamType(sub_classes=('aiida.data:mlfail.training_set',))
GAP_POTENTIAL = types.DataParamType(sub_classes=('aiida.data:mlfail.gap_potential',))

#: Labels every configuration of an imported training set must carry.
REQUIRED_LABELS = ('energy', 'forces')


def _table(rows) -> str:
    from tabulate import tabulate

    return tabulate(rows, tablefmt='plain')


def training_set_rows(node) -> list[tuple]:
    """Attribute rows of a ``TrainingSetData``: sizes, species, labels and counts of the metadata values."""
    n_atoms = node.n_atoms or {}
    low, high = n_atoms.get('min'), n_atoms.get('max')
    sizes = low if low == high else f'{low}-{high}'
    rows = [('pk', node.pk), ('uuid', node.uuid), ('configurations', node.n_configurations),
            ('species', ' '.join(node.species or [])), ('atoms per configuration', sizes),
            ('labels', ' '.join(node.labels or [])), ('labelled by', describe_reference(node.reference))]
    for key in ('config_type', 'state_point', 'candidate', 'stop_reason', 'reference', 'label_reference'):
        counts = collections.Counter(c[key] for c in node.configurations if key in c)
        if counts:
            rows.append((key, ', '.join(f'{value} x{n}' for value, n in sorted(counts.items(), key=str))))
    if node.creator is not None:
        rows.append(('created by', f'{node.creator.process_label} <{node.creator.pk}>'))
    return rows


def describe_reference(reference: dict) -> str:
    """``'<label> [<kind> <id>]'`` of a training set's reference."""
    from aiida_mlfail.science.references import describe

    return describe(reference)


def potential_rows(node) -> list[tuple]:
    """Attribute rows of a ``GapPotentialData``."""
    attrs = node.base.attributes
    rows = [('pk', node.pk), ('uuid', node.uuid), ('label', node.label), ('species', ' '.join(node.species or [])),
            ('cutoff (Å)', node.cutoff), ('files', ' '.join(attrs.get('files', []))),
            ('init_args', attrs.get('init_args')), ('n_sparse', attrs.get('n_sparse')),
            ('training_set_uuid', attrs.get('training_set_uuid', ''))]
    for index, descriptor in enumerate(attrs.get('descriptors', [])):
        rows.append((f'descriptor {index}', descriptor))
    if node.creator is not None:
        rows.append(('created by', f'{node.creator.process_label} <{node.creator.pk}>'))
    return rows


@click.group('mlfail', cls=VerdiCommandGroup)
def data_mlfail():
    """Inspect and export aiida-mlfail data (training sets, GAP potentials)."""


@data_mlfail.group('trainingset')
def trainingset():
    """TrainingSetData: labelled configurations (one extxyz file)."""


@trainingset.command('show')
@arguments.DATA(type=TRAINING_SET, nargs=1)
@click.option('-c', '--configurations', is_flag=True, help='Also one line per configuration (its metadata).')
@decorators.with_dbenv()
def trainingset_show(data, configurations):
    """Show the attributes of a TrainingSetData.

    Example: verdi data mlfail trainingset show 2009
    """
    echo.echo(_table(training_set_rows(data)))
    if configurations:
        from tabulate import tabulate

        keys = sorted({k for c in data.configurations for k in c if k != 'structure_uuid'})
        rows = [(i, *(c.get(k, '') for k in keys)) for i, c in enumerate(data.configurations)]
        echo.echo('')
        echo.echo(tabulate(rows, headers=('#', *keys)))


@trainingset.command('import')
@click.argument('path', type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option('-r', '--reference', 'reference_text', default=None, metavar='LABEL',
              help='The reference that labelled the file: `lammps:<potential>` (e.g. lammps:bmhtf_coul_long, '
                   'default parameters), `cp2k:<protocol>` (e.g. cp2k:fast, no overrides) or a name of your own. '
                   'Without it the set is of unknown reference and cannot be merged or fitted with any other set.')
@click.option('-L', '--label', 'node_label', default='', help='Label of the new node.')
@decorators.with_dbenv()
def trainingset_import(path, reference_text, node_label):
    """Store an extxyz file of labelled configurations as a TrainingSetData.

    Every configuration must carry an energy and forces, all finite. A file that is not extxyz, is empty,
    lacks the labels or holds NaN/infinity is refused (exit code 2, the file named); nothing is stored.

    Example: verdi data mlfail trainingset import dft.xyz --reference 'PBE-D3 VASP (2019)'
    """
    from aiida_mlfail.data.training_set import TrainingSetData
    from aiida_mlfail.science.references import reference_from_text, unknown_reference

    try:
        reference = reference_from_text(reference_text) if reference_text is not None else unknown_reference()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint='--reference') from exc
    try:
        node = TrainingSetData.from_file(path, reference=reference, label=node_label)
    except Exception as exc:  # noqa: BLE001 (an untrusted file: ASE raises many types; one clear refusal)
        raise click.BadParameter(f'{path} is not a readable extxyz training set: {type(exc).__name__}: {exc}',
                                 param_hint='PATH') from exc
    missing = [label for label in REQUIRED_LABELS if label not in node.labels]
    if missing:
        raise click.BadParameter(f'{path}: not every configuration carries {" and ".join(missing)} (labels present '
                                 f'in all: {", ".join(node.labels) or "none"})', param_hint='PATH')
    node.store()
    echo.echo_success(f'{node.n_configurations} configurations of {path} stored as TrainingSetData <{node.pk}>, '
                      f'reference {describe_reference(node.reference)}')
    if reference_text is None:
        echo.echo_warning('no --reference given: the set is of unknown reference and will not be merged or fitted '
                          'together with any other set')


@trainingset.command('export')
@arguments.DATA(type=TRAINING_SET, nargs=1)
@click.option('-o', '--output', type=click.Path(dir_okay=False, path_type=pathlib.Path), required=True,
              help='File to write.')
@click.option('-F', '--format', 'fmt', default='extxyz', show_default=True,
              help='extxyz (the stored file, as gap_fit reads it) or any other ASE format name.')
@overwrite_option()
@decorators.with_dbenv()
def trainingset_export(data, output, fmt, overwrite):
    """Write a TrainingSetData to a file (extxyz: the stored file; other ASE formats lose the labels).

    An existing OUTPUT is refused unless -f/--overwrite is given; the file is written to a temporary file
    next to it and moved into place, so a failed export (e.g. a format that cannot hold the set) leaves nothing.

    Example: verdi data mlfail trainingset export 2009 -o train.xyz
    """
    if fmt != 'extxyz':
        from ase.io.formats import ioformats

        if fmt not in ioformats or not ioformats[fmt].can_write:
            raise click.BadParameter(f'{fmt!r} is not an ASE format that can be written', param_hint='--format')
    with atomic_file(output, overwrite) as tmp:
        if fmt == 'extxyz':
            data.export(tmp)
        else:
            import ase.io

            ase.io.write(str(tmp), data.get_atoms(), format=fmt)
    echo.echo_success(f'{data.n_configurations} configurations of <{data.pk}> written to {output}')


@data_mlfail.group('potential')
def potential():
    """GapPotentialData: a fitted GAP (XML + sparseX files)."""


@potential.command('show')
@arguments.DATA(type=GAP_POTENTIAL, nargs=1)
@decorators.with_dbenv()
def potential_show(data):
    """Show the attributes of a GapPotentialData.

    Example: verdi data mlfail potential show 2015
    """
    echo.echo(_table(potential_rows(data)))


@potential.command('export')
@arguments.DATA(type=GAP_POTENTIAL, nargs=1)
@click.option('-o', '--output', type=click.Path(file_okay=False, path_type=pathlib.Path), required=True,
              help='Folder for the XML and sparseX files.')
@overwrite_option('Replace an existing folder as a whole (without it an existing folder is refused).')
@decorators.with_dbenv()
def potential_export(data, output, overwrite):
    """Write the files of a GapPotentialData (XML + sparseX) to a folder.

    An existing OUTPUT folder is refused unless -f/--overwrite is given (then it is replaced as a whole);
    the files are written into a temporary folder next to it that is renamed at the end.

    Example: verdi data mlfail potential export 2015 -o gap_final
    """
    with atomic_folder(output, overwrite) as tmp:
        xml = data.write_files(tmp)
    echo.echo_success(f"GAP {data.label} <{data.pk}> written to {output} (XML: {xml.name})")
