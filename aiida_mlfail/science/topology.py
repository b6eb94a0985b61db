"""Molecular topology of a generic LAMMPS reference with ``atom_style full``: its LAMMPS data file, read and
checked against the species of the reference and the atoms of a structure (no AiiDA import here).

The data file holds what LAMMPS cannot get from a structure: molecule ids, charges, Bonds, Angles, Dihedrals,
Impropers (and possibly Masses and Coeffs sections). Every LAMMPS job of such a reference reads it with
``read_data`` and then takes positions and box from the structure (``read_dump``) or the frames (``rerun``), so
atom ``i`` of every structure must be the atom with ID ``i + 1`` of the data file, with the species of its type
(type ``t`` is ``species[t - 1]``).

Format: https://docs.lammps.org/read_data.html; read here with ASE's ``lammps-data`` reader
(``ase.io.lammpsdata.read_lammps_data``, ``atom_style='full'``).
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

#: Sections of a data file with topology, and the ``*_style`` command each needs in the reference's commands.
TOPOLOGY_STYLES = {'bonds': 'bond_style', 'angles': 'angle_style', 'dihedrals': 'dihedral_style',
                   'impropers': 'improper_style'}


def _has(atoms: Atoms, key: str) -> bool:
    """True if ASE read at least one entry of the topology section ``key`` (its arrays hold ``'_'`` for none)."""
    return key in atoms.arrays and any(entry != '_' for entry in atoms.arrays[key])


def read_data_file(text: str, species, name: str = 'data file') -> Atoms:
    """The atoms of a LAMMPS data file (``atom_style full``, ``units metal``), symbols from ``species``.

    :param text: the content of the data file.
    :param species: chemical symbols of LAMMPS types 1, 2, ... (the reference's ``species``).
    :param name: the file's name, for messages.
    :returns: ``Atoms`` in atom-ID order with positions (Å), cell, ``initial_charges`` (e) and ASE's arrays
        ``id``, ``type``, ``mol-id``, ``bonds``, ``angles`` ... (those present).
    :raises ValueError: naming ``name`` when the text is not a data file of ``atom_style full`` (ASE's reason
        given), when it declares another number of ``atom types`` than ``len(species)``, when a type is outside
        1..len(species), or the atom IDs are not 1..N.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'data file {name!r} is empty')
    from ase.io.lammpsdata import read_lammps_data

    types = {index + 1: atomic_numbers[symbol] for index, symbol in enumerate(species)}
    header = [line.split('#')[0].split() for line in text.splitlines()[1:40]]
    counts = [int(words[0]) for words in header if words[1:] == ['atom', 'types'] and words[0].isdigit()]
    if counts and counts[0] != len(species):
        raise ValueError(f'data file {name!r} declares {counts[0]} atom types but the reference has '
                         f'{len(species)} species {list(species)} (type i is species i)')
    try:  # (no Z_of_type: a type outside the species is named below, not a KeyError of ASE)
        atoms = read_lammps_data(io.StringIO(text), atom_style='full', units='metal')
    except Exception as exc:  # noqa: BLE001 (an untrusted file: ASE raises many exception types)
        reason = ' '.join(str(exc).split()) or type(exc).__name__
        raise ValueError(f'data file {name!r} is not a LAMMPS data file of atom_style full '
                         f'({type(exc).__name__}: {reason})') from None
    if not len(atoms):
        raise ValueError(f'data file {name!r} holds no atoms')
    bad = sorted({int(t) for t in atoms.arrays['type']} - set(types))
    if bad:
        raise ValueError(f'data file {name!r}: atom type(s) {bad} are not among the types 1..{len(species)} of the '
                         f'species {list(species)}')
    ids = [int(i) for i in atoms.arrays['id']]
    if ids != list(range(1, len(atoms) + 1)):
        raise ValueError(f'data file {name!r}: atom IDs must be 1..{len(atoms)} (atom i of a structure is atom ID '
                         f'i + 1), got {ids[:5]}{" ..." if len(ids) > 5 else ""}')
    atoms.set_chemical_symbols([species[int(t) - 1] for t in atoms.arrays['type']])
    return atoms


def check_data_file(text: str, name: str, species, commands=(), symbols=None) -> Atoms:
    """Check the data file of an ``atom_style full`` reference, alone and against a structure.

    * it parses as ``atom_style full`` with types within 1..len(species) and atom IDs 1..N (:func:`read_data_file`);
    * it has a Bonds section ("topology missing for full" otherwise: a molecular force field without bonds
      would fly apart);
    * each topology section present (Bonds, Angles, Dihedrals, Impropers) has its ``*_style`` among ``commands``;
    * with ``symbols`` (the chemical symbols of a structure, in order): as many atoms, and the species of atom ID
      ``i + 1`` (its type through ``species``) is ``symbols[i]``.

    :param text: the content of the data file; ``name``: its file name (for messages).
    :param species: the reference's species (LAMMPS type order); ``commands``: its force-field commands.
    :returns: the atoms of the data file (:func:`read_data_file`).
    :raises ValueError: naming the file and the offending section, count, atom or species.
    """
    atoms = read_data_file(text, species, name)
    if not _has(atoms, 'bonds'):
        raise ValueError(f'topology missing for full: data file {name!r} has no Bonds section (atom_style full '
                         'takes bonds, angles ... from the data file; use atom_style atomic or charge for a system '
                         'without bonds)')
    styles = {line.split()[0] for line in commands if line.split()}
    for section, style in TOPOLOGY_STYLES.items():
        if _has(atoms, section) and style not in styles:
            raise ValueError(f'data file {name!r} has {section.capitalize()} but the reference commands set no '
                             f'{style} (its {section} would exert no force)')
    if symbols is not None:
        symbols = list(symbols)
        if len(symbols) != len(atoms):
            raise ValueError(f'data file {name!r} has {len(atoms)} atoms but the structure has {len(symbols)}; '
                             'they must be the same atoms in the same order')
        data_symbols = atoms.get_chemical_symbols()
        for index, (ours, theirs) in enumerate(zip(symbols, data_symbols)):
            if ours != theirs:
                raise ValueError(f'data file {name!r}: atom ID {index + 1} is {theirs} (type '
                                 f'{int(atoms.arrays["type"][index])}) but atom {index} of the structure is {ours}; '
                                 'the structure must list the atoms in the order of the data file\'s atom IDs '
                                 '(structure_from_data_file makes such a structure)')
    return atoms


def structure_from_data_file(path, species) -> Atoms:
    """The structure of an ``atom_style full`` LAMMPS data file, with symbols from ``species``: atom ``i`` is atom
    ID ``i + 1`` and has the species of its type, so it matches the data file by construction.

    :param path: the data file (``units metal``: Å).
    :param species: chemical symbols of LAMMPS types 1, 2, ... (the reference's ``species``).
    :returns: ``Atoms`` (positions Å, cell, pbc) without ASE's topology arrays (plain, as a structure).
    :raises ValueError: as :func:`read_data_file`; ``OSError`` when the file cannot be read.
    """
    path = pathlib.Path(path)
    atoms = read_data_file(path.read_text(), species, path.name)
    structure = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=True)
    structure.wrap()
    return structure


def whole_molecules(atoms: Atoms, molecule_ids) -> Atoms:
    """A copy of ``atoms`` with every molecule whole: each atom moved to the periodic image nearest to the first
    atom of its molecule (minimum image in the cell; molecules must be smaller than half the cell).

    LAMMPS computes bonded forces by minimum image anyway; whole molecules give consistent image flags when a
    job reads the positions (``read_dump``, ``rerun``), so LAMMPS does not warn "Inconsistent image flags".

    :param molecule_ids: molecule id per atom (the ``mol-id`` array of :func:`read_data_file`), same length.
    :raises ValueError: when the lengths differ.
    """
    molecule_ids = np.asarray(molecule_ids)
    if len(molecule_ids) != len(atoms):
        raise ValueError(f'{len(molecule_ids)} molecule ids for {len(atoms)} atoms')
    whole = atoms.copy()
    cell = whole.cell.array
    _, first = np.unique(molecule_ids, return_index=True)
    anchor = dict(zip(molecule_ids[first], first))
    delta = whole.positions - whole.positions[[anchor[m] for m in molecule_ids]]
    fractional = np.linalg.solve(cell.T, delta.T).T
    whole.positions = whole.positions - np.round(fractional) @ cell
    return whole
