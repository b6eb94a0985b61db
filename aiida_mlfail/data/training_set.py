"""``TrainingSetData``: an immutable set of labelled configurations (one extxyz file in the repository)."""

from __future__ import annotations

import io
import pathlib
import tempfile

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

    @classmethod
    def from_selection(cls, selection, reference: dict | None = None, **kwargs) -> TrainingSetData:
        """Build an (unstored) node of chosen configurations of stored sets, copied as extxyz text frame by frame
        (:func:`~aiida_mlfail.science.extxyz.iter_frame_texts`): no ``Atoms`` is built, so the cost in a daemon
        worker is reading lines (for joining the frames of a long run's jobs, ``join_md_segments``).

        The frames are copied verbatim. Attributes: ``configurations`` from the sets' per-configuration metadata;
        ``species`` and ``n_atoms`` from the frames' atom lines (the species is the first column, as ASE writes
        it: every set's file is written by :meth:`from_atoms`); ``labels`` those every contributing set carries
        (a set's labels are those all its configurations carry, so this is exact when the chosen frames carry the
        same labels as their sets, as the frames of an MD run do).

        :param selection: ``(set, index)`` pairs in the order wanted: a ``TrainingSetData`` and the 0-based index of
            one of its configurations.
        :param reference: as for :meth:`from_atoms`; default: the contributing sets' common reference
            (:func:`check_same_reference`).
        :raises ValueError: for an empty selection, an index out of range (naming the set and the index) or sets
            of different references.
        """
        selection = [(node, int(index)) for node, index in selection]
        if not selection:
            raise ValueError('a training set needs at least one configuration')
        for node, index in selection:
            if not 0 <= index < node.n_configurations:
                raise ValueError(f'configuration {index} of training set <{node.pk}>: it has {node.n_configurations}')
        runs = []  # consecutive picks from the same set: (set, [indices])
        for node, index in selection:
            if runs and runs[-1][0] is node:
                runs[-1][1].append(index)
            else:
                runs.append((node, [index]))
        sets = list({id(node): node for node, _ in runs}.values())
        if reference is None:
            reference = check_same_reference(*sets)
        species, sizes = set(), []
        with tempfile.TemporaryDirectory() as folder:
            path = pathlib.Path(folder) / cls.FILENAME
            with path.open('w') as out:
                for node, indices in runs:
                    wanted = set(indices)
                    in_order = indices == sorted(wanted)  # then written as read; else kept until the set is read
                    last = max(indices)
                    texts = {}
                    with node.base.repository.open(cls.FILENAME, mode='r') as handle:
                        for index, text in enumerate(extxyz.iter_frame_texts(handle)):
                            if index in wanted:
                                lines = text.splitlines()
                                sizes.append(len(lines) - 2)
                                species.update(line.split()[0] for line in lines[2:])
                                if in_order:
                                    out.write(text)
                                else:
                                    texts[index] = text
                            if index >= last:
                                break
                    out.writelines(texts[index] for index in indices if not in_order)
            node = cls(**kwargs)
            node.base.repository.put_object_from_file(str(path), cls.FILENAME)
        node.base.attributes.set('n_configurations', len(selection))
        node.base.attributes.set('species', sorted(species))
        node.base.attributes.set('n_atoms', {'min': min(sizes), 'max': max(sizes)})
        node.base.attributes.set('labels', [label for label in extxyz.LABELS
                                            if all(label in s.labels for s in sets)])
        node.base.attributes.set('configurations', [dict(s.configurations[index]) for s, index in selection])
        node.base.attributes.set('reference', refs.check_reference(reference))
        return node

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
        """The configurations of :meth:`get_atoms`, read one at a time from the repository (a caller that needs
        only the first few reads no further)."""
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
