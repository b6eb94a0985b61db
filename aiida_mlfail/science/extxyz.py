"""Labelled configurations as ASE extended XYZ (the training-set file format of gap_fit).

Labels are kept as plain extxyz keys, as gap_fit reads them: ``energy`` (eV, info), ``forces``
(eV/Å, per atom), ``virial`` (eV, 3 x 3 in info, ASE sign: virial = -stress x volume) and
``atomic_energies`` (eV, per atom). ASE >= 3.23 moves ``energy``/``forces``/``stress`` into a
``SinglePointCalculator`` when reading; :func:`read_configurations` moves them back.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from ase import Atoms
from ase.io import iread, read, write

#: The labels a training configuration can carry, in canonical order.
LABELS = ('energy', 'forces', 'virial', 'atomic_energies')

#: ``atoms.info`` keys that are labels or geometry, not per-configuration metadata.
_NOT_METADATA = {'energy', 'virial', 'stress', 'free_energy', 'pbc'}


def normalise_labels(atoms: Atoms) -> Atoms:
    """Move calculator results of ``atoms`` (as ASE's extxyz reader creates) into ``info``/``arrays`` in place.

    ``stress`` (Voigt or 3 x 3, eV/Å^3) becomes ``virial = -stress x volume`` (eV).
    """
    calc = atoms.calc
    if calc is not None and getattr(calc, 'results', None):
        results = calc.results
        if 'energy' in results:
            atoms.info['energy'] = float(results['energy'])
        if 'forces' in results:
            atoms.arrays['forces'] = np.array(results['forces'], dtype=float)
        if 'stress' in results and 'virial' not in atoms.info:
            stress = np.asarray(results['stress'], dtype=float)
            if stress.shape == (6,):
                xx, yy, zz, yz, xz, xy = stress
                stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
            atoms.info['virial'] = -stress * atoms.get_volume()
        if 'energies' in results and 'atomic_energies' not in atoms.arrays:
            atoms.arrays['atomic_energies'] = np.array(results['energies'], dtype=float)
        atoms.calc = None
    if 'virial' in atoms.info:
        atoms.info['virial'] = np.asarray(atoms.info['virial'], dtype=float).reshape(3, 3)
    for key, value in list(atoms.info.items()):
        if isinstance(value, np.generic):
            atoms.info[key] = value.item()
    return atoms


def labels_of(atoms: Atoms) -> set[str]:
    """The labels (subset of :data:`LABELS`) that ``atoms`` carries."""
    present = set()
    if 'energy' in atoms.info:
        present.add('energy')
    if 'virial' in atoms.info:
        present.add('virial')
    for key in ('forces', 'atomic_energies'):
        if key in atoms.arrays:
            present.add(key)
    return present


def metadata_of(atoms: Atoms) -> dict:
    """Per-configuration metadata: the scalar ``info`` entries that are not labels (config_type, md_step, ...)."""
    return {
        k: v for k, v in atoms.info.items()
        if k not in _NOT_METADATA and isinstance(v, (str, int, float, bool)) and not isinstance(v, np.ndarray)
    }


def check_finite(configurations: list[Atoms]) -> None:
    """Raise ``ValueError`` naming the first configuration and label holding NaN or infinity."""
    for index, atoms in enumerate(configurations):
        if not np.all(np.isfinite(atoms.positions)):
            raise ValueError(f'configuration {index}: positions are not finite')
        for key in ('energy', 'virial'):
            if key in atoms.info and not np.all(np.isfinite(atoms.info[key])):
                raise ValueError(f'configuration {index}: {key} is not finite ({atoms.info[key]!r})')
        for key in ('forces', 'atomic_energies'):
            if key in atoms.arrays:
                values = np.asarray(atoms.arrays[key], dtype=float).reshape(len(atoms), -1)
                bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
                if bad.size:
                    raise ValueError(f'configuration {index}: {key} of atom {int(bad[0])} is not finite '
                                     f'({atoms.arrays[key][bad[0]]!r})')


def read_configurations(source) -> list[Atoms]:
    """Read every frame of an extxyz file (path or text handle) with labels normalised (see module doc)."""
    return [normalise_labels(a) for a in read(source, index=':', format='extxyz')]


def iter_configurations(source) -> Iterator[Atoms]:
    """The frames of an extxyz file (path or text handle) one at a time (``ase.io.iread``), labels normalised as
    by :func:`read_configurations`; a caller that stops early reads no further."""
    for atoms in iread(source, index=':', format='extxyz'):
        yield normalise_labels(atoms)


def iter_frame_texts(handle) -> Iterator[str]:
    """The frames of an extxyz text handle as their text, one at a time, without parsing them into ``Atoms``: the
    atom-count line, the comment line and one line per atom (the XYZ layout, https://wiki.fysik.dtu.dk/ase/ase/io/
    formatoptions.html#extxyz). For copying chosen frames from one file to another at the cost of reading lines.

    :raises ValueError: for a count line that is not an integer, or a file that ends inside a frame (naming the
        frame's index).
    """
    index = 0
    for count_line in handle:
        if not count_line.strip():
            continue
        try:
            count = int(count_line.split()[0])
        except ValueError:
            raise ValueError(f'extxyz frame {index}: the first line must be the atom count, '
                             f'got {count_line!r}') from None
        lines = [count_line]
        for _ in range(count + 1):
            line = handle.readline()
            if not line:
                raise ValueError(f'extxyz frame {index}: the file ends inside the frame ({count} atoms expected)')
            lines.append(line)
        yield ''.join(lines)
        index += 1


def write_configurations(target, configurations: list[Atoms]) -> None:
    """Write labelled configurations as extxyz readable by ``ase.io.read`` and by gap_fit."""
    clean = []
    for atoms in configurations:
        copy = atoms.copy()
        copy.calc = None
        clean.append(copy)
    write(target, clean, format='extxyz')


def to_text(configurations: list[Atoms]) -> str:
    """extxyz text of ``configurations``."""
    handle = io.StringIO()
    write_configurations(handle, configurations)
    return handle.getvalue()
