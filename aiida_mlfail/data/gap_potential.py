"""``GapPotentialData``: a fitted GAP (XML + sparseX files) as an AiiDA node."""

from __future__ import annotations

import pathlib
import tempfile

from aiida import orm
from ase.data import chemical_symbols

from aiida_mlfail.science.gap import parse_gap_xml


class GapPotentialData(orm.Data):
    """The GAP XML and its sparseX files (or one file when fitted with ``sparse_separate_file=F``).

    Attributes: ``filename`` (the XML), ``files`` (all file names), ``label`` (the GAP label),
    ``init_args``, ``species`` (symbols), ``cutoff`` (Å, largest descriptor cutoff),
    ``descriptors`` (descriptor strings as stored in the XML), ``n_sparse`` (per descriptor
    coordinate), ``command_line`` (the gap_fit command) and ``training_set_uuid``.
    """

    @classmethod
    def from_folder(cls, folder, filename: str = 'gap.xml', *, command_line: str = '', training_set_uuid: str = '',
                    **kwargs) -> 'GapPotentialData':
        """Build an (unstored) node from a folder holding ``filename`` and the sparseX files it names.

        :param folder: a ``pathlib.Path``/str directory, or any object with ``get_object_content(name, mode)``
            (an AiiDA ``FolderData``/repository).
        :raises ValueError: if the XML is not a GAP file.
        :raises FileNotFoundError: if a sparseX file the XML names is missing.
        """
        reader = _reader(folder)
        xml = reader(filename, 'r')
        info = parse_gap_xml(xml)
        node = cls(**kwargs)
        node.base.repository.put_object_from_bytes(xml.encode(), filename)
        for name in info['sparse_files']:
            node.base.repository.put_object_from_bytes(reader(name, 'rb'), name)
        attrs = node.base.attributes
        attrs.set('filename', filename)
        attrs.set('files', [filename, *info['sparse_files']])
        attrs.set('label', info['label'])
        attrs.set('init_args', info['init_args'])
        attrs.set('species', [chemical_symbols[z] for z in info['species_z']])
        attrs.set('cutoff', info['cutoff'])
        attrs.set('descriptors', info['descriptors'])
        attrs.set('n_sparse', info['n_sparse'])
        attrs.set('command_line', command_line)
        attrs.set('training_set_uuid', training_set_uuid)
        return node

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
        """Write the XML and sparseX files into ``directory``; returns the XML path."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in self.base.attributes.get('files'):
            (directory / name).write_bytes(self.base.repository.get_object_content(name, mode='rb'))
        return directory / self.filename

    def get_calculator(self):
        """A ``quippy.potential.Potential`` (ASE calculator) for this GAP.

        The files are written to a temporary directory kept alive with the returned object.
        """
        from quippy.potential import Potential

        tmp = tempfile.TemporaryDirectory(prefix='mlfail-gap-')
        xml = self.write_files(tmp.name)
        potential = Potential(self.base.attributes.get('init_args'), param_filename=str(xml))
        potential._mlfail_tmpdir = tmp  # keep the files for the lifetime of the calculator
        return potential

    def lammps_pair_commands(self, type_map) -> list[str]:
        """``pair_style quip`` / ``pair_coeff`` lines for LAMMPS (ML-QUIP, or the ``mlfail-lmp`` bridge).

        :param type_map: chemical symbol of LAMMPS type 1, 2, ...
        :raises ValueError: if a symbol of ``type_map`` is not a species of this GAP.
        """
        missing = [s for s in type_map if s not in self.species]
        if missing:
            raise ValueError(f'species {missing} of the type map are not in the GAP (species {self.species})')
        numbers = ' '.join(str(chemical_symbols.index(s)) for s in type_map)
        return ['pair_style quip', f'pair_coeff * * {self.filename} "{self.base.attributes.get("init_args")}" {numbers}']


def _reader(folder):
    if hasattr(folder, 'get_object_content'):
        return lambda name, mode: folder.get_object_content(name, mode=mode)
    base = pathlib.Path(folder)
    return lambda name, mode: (base / name).read_text() if mode == 'r' else (base / name).read_bytes()
