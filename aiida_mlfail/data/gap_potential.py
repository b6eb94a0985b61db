"""``GapPotentialData``: a fitted GAP (XML + sparseX files) as an AiiDA node.

GAP files and nodes are shared between users (files, AiiDA archives), so their content is untrusted:
the XML is checked when read (:func:`aiida_mlfail.science.gap.parse_gap_xml`), and the attributes
again whenever the node is used (:meth:`GapPotentialData.check`, called by
:meth:`~GapPotentialData.lammps_pair_commands`, :meth:`~GapPotentialData.write_files`,
:meth:`~GapPotentialData.get_calculator` and by the port validator :func:`validate_potential` of every
process taking a GAP), because a node imported from an archive never went through
:meth:`~GapPotentialData.from_folder`.
"""

from __future__ import annotations

import pathlib
import tempfile

from aiida import orm
from ase.data import chemical_symbols

from aiida_mlfail.science import checks
from aiida_mlfail.science.gap import check_gap_files, check_init_args, parse_gap_xml


class GapPotentialData(orm.Data):
    """The GAP XML and its sparseX files (or one file when fitted with ``sparse_separate_file=F``).

    Attributes: ``filename`` (the XML), ``files`` (all file names), ``label`` (the GAP label),
    ``init_args``, ``species`` (symbols), ``cutoff`` (Å, largest descriptor cutoff),
    ``descriptors`` (descriptor strings as stored in the XML), ``n_sparse`` (per descriptor
    coordinate), ``command_line`` (the gap_fit command) and ``training_set_uuid``.
    """

    @classmethod
    def from_folder(cls, folder, filename: str = 'gap.xml', *, command_line: str = '', training_set_uuid: str = '',
                    **kwargs) -> GapPotentialData:
        """Build an (unstored) node from a folder holding ``filename`` and the sparseX files it names.

        :param folder: a ``pathlib.Path``/str directory, or any object with ``get_object_content(name, mode)``
            (an AiiDA ``FolderData``/repository).
        :param filename: the XML file, a bare file name inside ``folder``.
        :raises ValueError: if ``filename`` or a sparseX file name of the XML is not a bare file name, if the
            XML is not a GAP file, or if its label or init string are not acceptable (``parse_gap_xml``).
        :raises FileNotFoundError: if a sparseX file the XML names is missing.
        """
        checks.basename(filename, 'GAP filename')
        reader = _reader(folder)
        xml = reader(filename, 'r')
        info = parse_gap_xml(xml)
        files = check_gap_files(filename, [filename, *info['sparse_files']])
        node = cls(**kwargs)
        node.base.repository.put_object_from_bytes(xml.encode(), filename)
        for name in info['sparse_files']:
            node.base.repository.put_object_from_bytes(reader(name, 'rb'), name)
        attrs = node.base.attributes
        attrs.set('filename', filename)
        attrs.set('files', files)
        attrs.set('label', info['label'])
        attrs.set('init_args', info['init_args'])
        attrs.set('species', [chemical_symbols[z] for z in info['species_z']])
        attrs.set('cutoff', info['cutoff'])
        attrs.set('descriptors', info['descriptors'])
        attrs.set('n_sparse', info['n_sparse'])
        attrs.set('command_line', command_line)
        attrs.set('training_set_uuid', training_set_uuid)
        return node

    def check(self) -> None:
        """Check the attributes a job or a file export uses, as untrusted data (e.g. from an archive).

        ``filename`` and ``files``: bare, unique file names (:func:`~aiida_mlfail.science.gap.check_gap_files`),
        each present in the repository; ``label``: a safe name; ``init_args``: the GAP grammar of
        :func:`~aiida_mlfail.science.gap.check_init_args` with that label; ``species``: a non-empty list of
        chemical symbols; ``cutoff``: ``None`` or a finite number > 0 (Å).

        :raises ValueError: naming the attribute and its value.
        """
        attrs = self.base.attributes
        files = check_gap_files(attrs.get('filename', None), attrs.get('files', None))
        stored = set(self.base.repository.list_object_names())
        missing = [name for name in files if name not in stored]
        if missing:
            raise ValueError(f'GAP files {missing} are listed but not in the repository of the node')
        label = checks.safe_name(attrs.get('label', None), 'GAP label')
        check_init_args(attrs.get('init_args', None), label=label)
        species = attrs.get('species', None)
        if (not isinstance(species, list) or not species
                or any(not isinstance(s, str) or s not in chemical_symbols[1:] for s in species)):
            raise ValueError(f'GAP species must be a non-empty list of chemical symbols, got {species!r}')
        if attrs.get('cutoff', None) is not None:
            checks.number(attrs.get('cutoff'), 'GAP cutoff', gt=0, unit='Å')

    @property
    def label(self) -> str:
        """The GAP label (``IP GAP label=...``)."""
        return self.base.attributes.get('label')

    @property
    def species(self) -> list[str]:
        """Chemical symbols the GAP has descriptors for."""
        return self.base.attributes.get('species')

    @property
    def cutoff(self) -> float:
        """Largest descriptor cutoff, Å."""
        return self.base.attributes.get('cutoff')

    @property
    def filename(self) -> str:
        """Name of the XML file."""
        return self.base.attributes.get('filename')

    def write_files(self, directory) -> pathlib.Path:
        """Write the XML and sparseX files into ``directory`` (created if needed); returns the XML path.

        The node is checked first (:meth:`check`) and nothing is written unless every file lands inside
        ``directory`` (names are bare file names, and the resolved path, symbolic links followed, is in
        the resolved ``directory``).

        :raises ValueError: for a bad attribute (:meth:`check`) or a file that would land outside
            ``directory`` (e.g. an existing symbolic link pointing elsewhere).
        """
        self.check()
        directory = pathlib.Path(directory)
        names = self.base.attributes.get('files')
        root = directory.resolve()
        for name in names:
            target = (root / name).resolve()
            if target.parent != root:
                raise ValueError(f'GAP file {name!r} would be written to {target}, outside {directory}')
        directory.mkdir(parents=True, exist_ok=True)
        for name in names:
            (root / name).write_bytes(self.base.repository.get_object_content(name, mode='rb'))
        return directory / self.filename

    def get_calculator(self):
        """A ``quippy.potential.Potential`` (ASE calculator) for this GAP.

        The files are written to a temporary directory kept alive with the returned object.

        :raises ValueError: for a bad attribute (:meth:`check`), before anything is written.
        """
        from quippy.potential import Potential

        self.check()
        tmp = tempfile.TemporaryDirectory(prefix='mlfail-gap-')
        xml = self.write_files(tmp.name)
        potential = Potential(self.base.attributes.get('init_args'), param_filename=str(xml))
        potential._mlfail_tmpdir = tmp  # keep the files for the lifetime of the calculator
        return potential

    def lammps_pair_commands(self, type_map) -> list[str]:
        """``pair_style quip`` / ``pair_coeff`` lines for LAMMPS (ML-QUIP, or the ``mlfail-lmp`` bridge).

        The file name and the init string are checked (:meth:`check`) before they go into the line.

        :param type_map: chemical symbol of LAMMPS type 1, 2, ...
        :raises ValueError: for a bad attribute (:meth:`check`), or if a symbol of ``type_map`` is not a
            species of this GAP.
        """
        self.check()
        missing = [s for s in type_map if s not in self.species]
        if missing:
            raise ValueError(f'species {missing} of the type map are not in the GAP (species {self.species})')
        numbers = ' '.join(str(chemical_symbols.index(s)) for s in type_map)
        return ['pair_style quip',
                f'pair_coeff * * {self.filename} "{self.base.attributes.get("init_args")}" {numbers}']

    def upload(self, folder) -> list[str]:
        """Write the GAP files into a CalcJob's sandbox ``folder`` (``aiida.common.folders.Folder``).

        :returns: the file names written (for ``provenance_exclude_list``).
        :raises ValueError: for a bad attribute (:meth:`check`), before anything is written.
        """
        self.check()
        names = list(self.base.attributes.get('files'))
        root = pathlib.Path(folder.abspath).resolve()
        for name in names:
            if (root / name).resolve().parent != root:
                raise ValueError(f'GAP file {name!r} would be written outside the job folder')
        for name in names:
            with self.base.repository.open(name, mode='rb') as handle:
                folder.create_file_from_filelike(handle, name, mode='wb')
        return names


def validate_potential(value, ctx=None):
    """Port validator of a ``potential`` input: the node passes :meth:`GapPotentialData.check`.

    :returns: ``'potential <pk>: <reason>'`` or ``None``.
    """
    if value is None:
        return None
    try:
        value.check()
    except ValueError as exc:
        return f'potential <{value.pk or "unstored"}>: {exc}'
    return None


def _reader(folder):
    """``read(name, mode)`` for a directory or a repository-like object; in a directory, a file named by
    the XML (sparseX) must not resolve outside it (a symbolic link to elsewhere is refused)."""
    if hasattr(folder, 'get_object_content'):
        return lambda name, mode: folder.get_object_content(name, mode=mode)
    base = pathlib.Path(folder)

    def read(name, mode):
        path = base / name
        if mode == 'rb' and path.resolve().parent != base.resolve():
            raise ValueError(f'GAP file {name!r} resolves to {path.resolve()}, outside the folder {base}')
        return path.read_text() if mode == 'r' else path.read_bytes()

    return read
