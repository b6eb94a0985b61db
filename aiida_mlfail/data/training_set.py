"""``TrainingSetData``: an immutable set of labelled configurations (one extxyz file in the repository)."""

from __future__ import annotations

import io
import pathlib

from aiida import orm

from aiida_mlfail.science import extxyz
from aiida_mlfail.science import references as refs


class TrainingSetData(orm.Data):
    """Labelled configurations stored as one extended-XYZ file in the node repository.

    Attributes: ``n_configurations``, ``species`` (sorted symbols), ``n_atoms`` (``{'min', 'max'}``),
    ``labels`` (the labels every configuration carries, subset of energy, forces, virial,
    atomic_energies), ``configurations`` (per-configuration metadata dicts: ``config_type``,
    ``md_step``, ``state_point`` ... as given in ``atoms.info``), ``reference`` (which reference
    labelled the set: ``{'kind', 'id', 'label'}``, see :mod:`aiida_mlfail.science.references`; sets of
    different references are never merged or fitted together, :func:`check_same_reference`).

    Units in the file: energy eV, forces eV/Å, virial eV (ASE sign), atomic energies eV.
    """

    FILENAME = 'training_set.xyz'

    @classmethod
    def from_atoms(cls, configurations, reference: dict | None = None, **kwargs) -> TrainingSetData:
        """Build an (unstored) node from a list of ``ase.Atoms``.

        Labels are read from ``atoms.info['energy']``, ``atoms.info['virial']``,
        ``atoms.arrays['forces']``, ``atoms.arrays['atomic_energies']`` or from an attached
        calculator's results.

        :param reference: the reference that labelled the configurations (a dict of
            :mod:`aiida_mlfail.science.references`); default: unknown. A set derived from another
            (selected, split, merged) passes the other's ``reference``.
        :raises ValueError: for an empty list, a NaN / infinite label (naming the configuration) or a
            malformed reference.
        """
        reference = refs.unknown_reference() if reference is None else refs.check_reference(reference)
        configurations = [extxyz.normalise_labels(a.copy() if a.calc is None else _with_calc(a))
                          for a in configurations]
        if not configurations:
            raise ValueError('a training set needs at least one configuration')
        extxyz.check_finite(configurations)
        node = cls(**kwargs)
        node._set_content(configurations)
        node.base.attributes.set('reference', reference)
        return node

    @classmethod
    def from_file(cls, path, reference: dict | None = None, **kwargs) -> TrainingSetData:
        """Build an (unstored) node from an extxyz file (``reference`` as for :meth:`from_atoms`, default
        unknown); raises ``ValueError`` on NaN labels."""
        return cls.from_atoms(extxyz.read_configurations(str(path)), reference=reference, **kwargs)

    def _set_content(self, configurations) -> None:
        text = extxyz.to_text(configurations)
        self.base.repository.put_object_from_bytes(text.encode(), self.FILENAME)
        labels = set(extxyz.LABELS)
        species = set()
        sizes = []
        for atoms in configurations:
            labels &= extxyz.labels_of(atoms)
            species.update(atoms.get_chemical_symbols())
            sizes.append(len(atoms))
        self.base.attributes.set('n_configurations', len(configurations))
        self.base.attributes.set('species', sorted(species))
        self.base.attributes.set('n_atoms', {'min': min(sizes), 'max': max(sizes)})
        self.base.attributes.set('labels', [label for label in extxyz.LABELS if label in labels])
        self.base.attributes.set('configurations', [extxyz.metadata_of(a) for a in configurations])

    @property
    def n_configurations(self) -> int:
        """Number of configurations."""
        return self.base.attributes.get('n_configurations')

    @property
    def species(self) -> list[str]:
        """Sorted chemical symbols present in the set."""
        return self.base.attributes.get('species')

    @property
    def labels(self) -> list[str]:
        """Labels carried by every configuration."""
        return self.base.attributes.get('labels')

    @property
    def n_atoms(self) -> dict:
        """``{'min': int, 'max': int}`` atoms per configuration."""
        return self.base.attributes.get('n_atoms')

    @property
    def configurations(self) -> list[dict]:
        """Per-configuration metadata, in file order."""
        return self.base.attributes.get('configurations')

    @property
    def reference(self) -> dict:
        """``{'kind', 'id', 'label'}`` of the reference that labelled the set (unknown for nodes made before
        references were recorded)."""
        return self.base.attributes.get('reference', None) or refs.unknown_reference()

    def get_text(self) -> str:
        """The extxyz text."""
        return self.base.repository.get_object_content(self.FILENAME, mode='r')

    def get_atoms(self) -> list:
        """The configurations as ``ase.Atoms`` with labels in ``info``/``arrays`` (see ``science.extxyz``)."""
        return extxyz.read_configurations(io.StringIO(self.get_text()))

    def iter_atoms(self):
        """Yield the configurations one at a time (as :meth:`get_atoms`), reading the stored file as a stream:
        one frame in memory at a time, for trajectories too large to load whole in a daemon worker."""
        with self.base.repository.open(self.FILENAME, mode='r') as handle:
            yield from extxyz.iter_configurations(handle)

    def export(self, path) -> pathlib.Path:
        """Write the extxyz file (readable by ``ase.io.read`` and gap_fit) to ``path``; returns the path."""
        path = pathlib.Path(path)
        path.write_text(self.get_text())
        return path


def check_same_reference(*sets, **named_sets) -> dict:
    """The common reference of training sets, checked before anything is merged or fitted.

    :param sets: ``TrainingSetData`` (named ``set <pk>`` or ``set <position>`` in the message).
    :param named_sets: ``TrainingSetData`` by what they are (e.g. ``pool=..., validation_set=...``).
    :returns: the reference dict they share (for one set: its reference, even unknown).
    :raises ValueError: naming every distinct reference (label, kind, id) when they differ, or when
        two or more sets are given and one is of unknown reference.
    """
    references = {f'set {node.pk if node.pk is not None else index + 1}': node.reference
                  for index, node in enumerate(sets)}
    references.update({key: node.reference for key, node in named_sets.items()})
    if not references:
        raise ValueError('check_same_reference needs at least one training set')
    message = refs.mixed_reference_message(references)
    if message:
        raise ValueError(message)
    return next(iter(references.values()))


def _with_calc(atoms):
    copy = atoms.copy()
    copy.calc = atoms.calc
    return copy
