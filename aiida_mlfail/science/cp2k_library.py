"""CP2K's data-file libraries: basis sets and GTH pseudopotentials, read and chosen per element, AiiDA-free.

CP2K's data directory (:func:`data_dir`), its library files (:func:`read_library`, :class:`LibraryEntry`)
and the basis set and pseudopotential of every element for a protocol (:func:`resolve_kinds`,
:func:`describe_kinds`, :func:`check_species`).

File formats: the header comments of CP2K's ``BASIS_MOLOPT`` / ``GTH_BASIS_SETS`` (basis sets) and
``GTH_POTENTIALS`` / ``POTENTIAL`` (GTH pseudopotentials) files. The protocols and the ``parameters`` dict
these choices go into are in :mod:`aiida_mlfail.science.cp2k`, which re-exports every public name of this
module.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import re


def data_dir() -> pathlib.Path | None:
    """CP2K's data directory on this machine: ``$CP2K_DATA_DIR``, else Debian's ``/usr/share/cp2k``
    (where CP2K looks up ``BASIS_SET_FILE_NAME`` / ``POTENTIAL_FILE_NAME`` given without a path), or
    ``None`` if neither exists."""
    import os

    for candidate in (os.environ.get('CP2K_DATA_DIR'), '/usr/share/cp2k'):
        if candidate and pathlib.Path(candidate).is_dir():
            return pathlib.Path(candidate)
    return None


@dataclasses.dataclass(frozen=True)
class LibraryEntry:
    """One basis set or pseudopotential of a CP2K library file.

    :ivar element: chemical symbol (as written in the file).
    :ivar names: the name and its aliases as written (CP2K compares them case-insensitively).
    :ivar valence: number of valence electrons it is made for, or ``None`` when the file does not say.
        Pseudopotentials: the sum of the ``n_elec(s) n_elec(p) ...`` line that follows the header (GTH
        format, header comment of ``GTH_POTENTIALS``); basis sets: the ``-qN`` suffix of a name ("the -qXX
        documents the valence of the pseudo corresponding to the basis set", header of ``BASIS_MOLOPT``).
    """

    element: str
    names: tuple[str, ...]
    valence: int | None


_VALENCE_SUFFIX = re.compile(r'-Q(\d+)\Z')


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _suffix_valence(names) -> int | None:
    for name in names:
        match = _VALENCE_SUFFIX.search(name.upper())
        if match:
            return int(match.group(1))
    return None


def read_library(text: str, kind: str) -> list[LibraryEntry]:
    """The entries of a CP2K basis-set (``kind='basis'``) or GTH pseudopotential (``kind='potential'``) library.

    An entry starts with a header line ``Element NAME [ALIAS ...]`` (leading blanks allowed, ``#`` starts a
    comment; the element must be a chemical symbol of :data:`ase.data.chemical_symbols`), the format of
    CP2K's ``BASIS_MOLOPT``/``GTH_BASIS_SETS`` and ``GTH_POTENTIALS``/``POTENTIAL`` files (their header
    comments describe it). Valences as documented in :class:`LibraryEntry`.

    :raises ValueError: for an unknown ``kind``.
    """
    from ase.data import chemical_symbols

    if kind not in ('basis', 'potential'):
        raise ValueError(f"kind must be 'basis' or 'potential', got {kind!r}")
    symbols = set(chemical_symbols[1:])
    lines = [line.split('#', 1)[0].split() for line in text.splitlines()]
    entries = []
    for index, parts in enumerate(lines):
        if len(parts) < 2 or parts[0] not in symbols or _is_number(parts[1]):
            continue
        names = tuple(parts[1:])
        valence = _suffix_valence(names)
        if kind == 'potential':
            following = next((p for p in lines[index + 1:] if p), [])
            if following and all(p.isdigit() for p in following):
                valence = sum(int(p) for p in following)
        entries.append(LibraryEntry(parts[0], names, valence))
    return entries


@functools.lru_cache(maxsize=16)
def _read_library_file(path: str, mtime_ns: int, kind: str) -> tuple[LibraryEntry, ...]:
    # cached per file version: the parameters are built often (every reference id), the files are large
    return tuple(read_library(pathlib.Path(path).read_text(errors='replace'), kind))


def _upper(names) -> tuple[str, ...]:
    return tuple(n.upper() for n in names)


def _preferences(value) -> list[str]:
    names = [value] if isinstance(value, str) else list(value or [])
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f'a basis set must be a name or a list of names, got {value!r}')
    return names


def _protocol_label(protocol) -> str:
    return repr(protocol) if isinstance(protocol, str) else repr(dict(protocol).get('name', 'custom'))


def resolve_kinds(protocol, symbols, directory=None) -> dict[str, dict]:
    """Basis set and GTH pseudopotential of every element of ``symbols``, chosen from CP2K's data files.

    For each element: the first name of the protocol's ``basis_set`` preference list (or of
    ``basis_overrides[element]``) that ``basis_set_file`` defines for it, then the pseudopotential of
    ``potential_file`` of the protocol's family (``potential``, e.g. ``GTH-PBE``: entries named
    ``GTH-PBE`` or ``GTH-PBE-qN``) whose valence equals the basis set's (``-qN``; a mismatch makes CP2K
    fail or compute nonsense, header of ``BASIS_MOLOPT``); when the basis does not state its valence,
    the family's default entry (the one carrying the bare family name as alias). The pseudopotential is
    written by its explicit name (``GTH-PBE-q9``), so the input states the valence.

    When the files are not in ``directory`` (default :func:`data_dir`; e.g. CP2K runs on another
    machine), nothing can be looked up: every element gets the first preferred basis set and the family
    name, as CP2K itself would resolve them (``resolved`` False).

    :param protocol: protocol name or dict (:func:`~aiida_mlfail.science.cp2k.load_protocol`).
    :param symbols: chemical symbols (any order, repeats allowed).
    :returns: ``{element: {'basis_set', 'potential', 'valence' (int or None), 'resolved' (bool)}}``,
        elements sorted.
    :raises ValueError: naming the element, the protocol and the files searched, for an element without
        a preferred basis set or without a pseudopotential of the family with the basis set's valence;
        for no symbols.
    """
    from aiida_mlfail.science import cp2k  # protocol names are resolved there; cp2k imports this module

    name = _protocol_label(protocol)
    protocol = cp2k._resolve(protocol)
    elements = sorted(set(symbols))
    if not elements:
        raise ValueError('no chemical symbols given')
    overrides = protocol.get('basis_overrides') or {}
    family = str(protocol['potential']).upper()
    directory = pathlib.Path(directory) if directory is not None else data_dir()
    basis_path = directory / protocol['basis_set_file'] if directory is not None else None
    potential_path = directory / protocol['potential_file'] if directory is not None else None
    choices = {}
    if basis_path is None or not basis_path.is_file() or not potential_path.is_file():
        for element in elements:
            choices[element] = {'basis_set': _preferences(overrides.get(element, protocol['basis_set']))[0],
                                'potential': protocol['potential'], 'valence': None, 'resolved': False}
        return choices
    bases = _read_library_file(str(basis_path), basis_path.stat().st_mtime_ns, 'basis')
    potentials = _read_library_file(str(potential_path), potential_path.stat().st_mtime_ns, 'potential')
    for element in elements:
        preferred = _preferences(overrides.get(element, protocol['basis_set']))
        basis = None
        for wanted in preferred:
            basis = next((e for e in bases if e.element == element and wanted.upper() in _upper(e.names)), None)
            if basis is not None:
                basis = (wanted, basis)
                break
        if basis is None:
            raise ValueError(f"no basis set for {element} ({', '.join(preferred)}) in {basis_path} (protocol {name})")
        wanted, entry = basis
        family_entries = [e for e in potentials if e.element == element
                          and any(n == family or n.startswith(family + '-Q') for n in _upper(e.names))]
        if entry.valence is not None:
            matching = [e for e in family_entries if e.valence == entry.valence]
        else:
            matching = [e for e in family_entries if family in _upper(e.names)]
        if not matching:
            valence = f' with {entry.valence} valence electrons (basis {wanted})' if entry.valence else ''
            found = ', '.join(f'{e.names[0]} (q{e.valence})' for e in family_entries) or 'none'
            raise ValueError(f'no pseudopotential for {element} ({protocol["potential"]}{valence}) in '
                             f'{potential_path}; of that family: {found} (protocol {name})')
        chosen = matching[0]
        explicit = next((n for n in chosen.names if _VALENCE_SUFFIX.search(n.upper()) and n.upper().startswith(family)),
                        chosen.names[0])
        choices[element] = {'basis_set': wanted, 'potential': explicit,
                            'valence': chosen.valence if chosen.valence is not None else entry.valence,
                            'resolved': True}
    return choices


def describe_kinds(choices: dict) -> str:
    """One line for reports: ``Na: DZVP-MOLOPT-SR-GTH / GTH-PBE-q9 (9 e), ...`` from :func:`resolve_kinds`."""
    parts = []
    for element, choice in choices.items():
        valence = f" ({choice['valence']} e)" if choice.get('valence') else ''
        parts.append(f"{element}: {choice['basis_set']} / {choice['potential']}{valence}")
    return ', '.join(parts)


def check_species(protocol, symbols, directory=None) -> None:
    """Check that the protocol can describe every element of ``symbols`` (:func:`resolve_kinds` against
    the files in ``directory``, default :func:`data_dir`; nothing is checked when they are not there).

    :raises ValueError: naming the element, the protocol and the files searched.
    """
    resolve_kinds(protocol, symbols, directory)
