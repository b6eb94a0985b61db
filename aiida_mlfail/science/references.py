"""Which reference labelled a training set: a small, stable record, and the rule that sets of different
references never mix.

Two references (e.g. a classical LAMMPS potential and CP2K DFT) are two potential-energy surfaces with
different zeros of energy: one GAP fitted to labels of both learns neither. Every ``TrainingSetData``
therefore carries a *reference* dict::

    {'kind': 'lammps' | 'cp2k' | 'named' | 'unknown', 'id': str, 'label': str}

``id`` is the first 16 hex digits of the SHA-256 of the canonical JSON (sorted keys, no spaces,
integers written as floats) of what determines the labels, so it is the same in every process and on
every machine; ``label`` is for people. Two references *match* when their ``kind`` and ``id`` are
equal and neither is ``unknown``: an unknown reference matches nothing, not even another unknown
one (the user must name it, :func:`named_reference`, before it can be mixed with anything).

No AiiDA import here (the science layer).
"""

from __future__ import annotations

import copy
import hashlib
import json

#: Kinds of reference.
LAMMPS, CP2K, NAMED, UNKNOWN = 'lammps', 'cp2k', 'named', 'unknown'
KINDS = (LAMMPS, CP2K, NAMED, UNKNOWN)
#: Hex digits of the SHA-256 digest kept as ``id``.
ID_LENGTH = 16


def _normalise(value):
    """JSON-ready copy of ``value`` with integers as floats (``6`` and ``6.0`` are the same cutoff)."""
    if isinstance(value, dict):
        return {str(key): _normalise(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, 'tolist'):  # numpy scalars and arrays
        return _normalise(value.tolist())
    raise TypeError(f'cannot hash a value of type {type(value).__name__}: {value!r}')


def canonical_json(value) -> str:
    """The canonical JSON text of ``value`` (sorted keys, compact, ints as floats).

    :raises TypeError: for a value that is not made of dicts, lists, strings, numbers, booleans, None.
    """
    return json.dumps(_normalise(value), sort_keys=True, separators=(',', ':'), ensure_ascii=True, allow_nan=False)


def digest(value) -> str:
    """First :data:`ID_LENGTH` hex digits of the SHA-256 of :func:`canonical_json` of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:ID_LENGTH]


def lammps_reference(potential_dict: dict, file_digests: dict | None = None) -> dict:
    """The reference of labels computed with a classical LAMMPS potential.

    :param potential_dict: a preset ``{'name': ..., 'parameters': {...}}`` or a generic reference
        ``{'name': 'lammps', 'species': ..., 'commands': ...}`` as for
        :class:`~aiida_mlfail.science.potentials.ReferencePotential`; a preset's defaults are merged in first,
        so ``{'name': 'bmhtf_wolf'}`` and ``{'name': 'bmhtf_wolf', 'parameters': {'alpha': 0.25}}`` give
        the same id (and a preset keeps the id it had before generic references existed).
    :param file_digests: ``{file name: SHA-256 hex of its content}`` of a generic reference's ``files``, so
        that two EAM tables of the same name give different ids.
    :returns: ``{'kind': 'lammps', 'id': ..., 'label': 'lammps <name> (<parameters>)'}``; for a generic
        reference the label is ``lammps <species> (<pair_style line>[; files ...])``.
    :raises ValueError: for a potential ``ReferencePotential`` refuses (unknown name or parameter, bad command),
        or digests of other files than the reference's ``files``.
    """
    from aiida_mlfail.science.potentials import GENERIC, ReferencePotential

    potential = ReferencePotential.from_dict(dict(potential_dict)).to_dict()
    if potential['name'] != GENERIC:
        parameters = ', '.join(f'{key}={_normalise(value)}' for key, value in sorted(potential['parameters'].items()))
        return {'kind': LAMMPS, 'id': digest({'kind': LAMMPS, 'potential': potential}),
                'label': f"lammps {potential['name']} ({parameters})"}
    digests = dict(file_digests or {})
    if set(digests) != set(potential['files']):
        raise ValueError(f"file digests of {sorted(digests)} do not match the reference's files "
                         f"{potential['files']}")
    pair_style = next(line for line in potential['commands'] if line.startswith('pair_style'))
    files = f"; files {' '.join(potential['files'])}" if potential['files'] else ''
    return {'kind': LAMMPS, 'id': digest({'kind': LAMMPS, 'potential': potential, 'file_digests': digests}),
            'label': f"lammps {'-'.join(potential['species'])} ({pair_style}{files})"}


def cp2k_physics(protocol, overrides: dict | None = None) -> dict:
    """What of a CP2K protocol (after ``overrides``) determines the DFT labels.

    :param protocol: protocol name (``science.cp2k.load_protocol``) or protocol dict.
    :param overrides: changes deep-merged into the generated parameters (as the CP2K WorkChains do).
    :returns: ``method`` (QS METHOD), ``xc`` (the ``FORCE_EVAL/DFT/XC`` section actually used, with the
        dispersion correction), ``basis_set_file``, ``potential_file``, ``basis_set``,
        ``basis_overrides``, ``potential``, ``cutoff`` and ``rel_cutoff`` (Ry, ``MGRID``), ``kinds``
        (``FORCE_EVAL/SUBSYS/KIND`` of the overrides, if they set any).
    :raises ValueError: for an unknown protocol name.
    """
    from aiida_mlfail.science import cp2k

    resolved = cp2k.load_protocol(protocol) if isinstance(protocol, str) else copy.deepcopy(dict(protocol))
    parameters = cp2k.single_point_parameters(resolved, ['H'])  # the symbols only shape SUBSYS/KIND
    if overrides:
        parameters = cp2k.deep_merge(parameters, overrides)
    dft = parameters.get('FORCE_EVAL', {}).get('DFT', {})
    mgrid = dft.get('MGRID', {})
    kinds = ((overrides or {}).get('FORCE_EVAL') or {}).get('SUBSYS', {}) or {}
    return {
        'method': dft.get('QS', {}).get('METHOD'),
        'xc': dft.get('XC'),
        'basis_set_file': dft.get('BASIS_SET_FILE_NAME'),
        'potential_file': dft.get('POTENTIAL_FILE_NAME'),
        'basis_set': resolved.get('basis_set'),
        'basis_overrides': resolved.get('basis_overrides') or {},
        'potential': resolved.get('potential'),
        'cutoff': mgrid.get('CUTOFF'),
        'rel_cutoff': mgrid.get('REL_CUTOFF'),
        'kinds': kinds.get('KIND') if isinstance(kinds, dict) else None,
    }


def cp2k_reference(protocol, overrides: dict | None = None) -> dict:
    """The reference of DFT labels computed with CP2K.

    The id hashes the protocol name, the ``overrides`` (verbatim: any override, even of SCF settings,
    makes another reference) and :func:`cp2k_physics` (functional and dispersion, basis sets,
    pseudopotentials, cutoffs as actually used, so editing the protocol file changes the id too).

    :param protocol: protocol name (e.g. ``'fast'``) or a protocol dict (its ``name`` key, if any,
        is the name, else ``custom``).
    :param overrides: the ``overrides`` input of the CP2K WorkChains (top-level CP2K sections), or None.
    :returns: ``{'kind': 'cp2k', 'id': ..., 'label': 'cp2k <protocol>: <xc>[+<vdw>] <basis>/<pseudo> <cutoff> Ry'}``.
    :raises ValueError: for an unknown protocol name.
    """
    name = protocol if isinstance(protocol, str) else str(dict(protocol).get('name', 'custom'))
    overrides = copy.deepcopy(dict(overrides)) if overrides else {}
    physics = cp2k_physics(protocol, overrides)
    xc = physics['xc'] or {}
    sections = xc.get('XC_FUNCTIONAL') if isinstance(xc.get('XC_FUNCTIONAL'), dict) else {}
    # a named functional, or its (libxc) subsections, e.g. GGA_C_PBE+GGA_X_RPW86 for rVV10's semilocal part
    functional = sections.get('_') or '+'.join(sorted(k for k in sections if k != '_')) or '?'
    vdw_section = xc.get('VDW_POTENTIAL') or {}
    vdw = (vdw_section.get('PAIR_POTENTIAL') or vdw_section.get('NON_LOCAL') or {}).get('TYPE')
    basis = physics['basis_set']
    basis = basis if isinstance(basis, str) else (basis or ['?'])[0]  # first of the preference list (the id has all)
    label = (f"cp2k {name}: {functional}{'+' + vdw if vdw else ''} {basis}/{physics['potential']} "
             f"{physics['cutoff']} Ry{' + overrides' if overrides else ''}")
    return {'kind': CP2K, 'id': digest({'kind': CP2K, 'protocol': name, 'overrides': overrides, 'physics': physics}),
            'label': label}


def unknown_reference() -> dict:
    """The reference of data whose labeller is not recorded (e.g. an imported extxyz file).

    It matches no reference, not even another unknown one.
    """
    return {'kind': UNKNOWN, 'id': UNKNOWN, 'label': 'unknown reference'}


def named_reference(label: str) -> dict:
    """A reference the user names, e.g. for imported data: sets named alike match.

    :param label: non-empty name (surrounding white space is dropped), e.g. ``'PBE-D3 VASP 2019'``.
    :raises ValueError: for an empty label or the label ``unknown``.
    """
    label = str(label).strip()
    if not label or label.lower() == UNKNOWN:
        raise ValueError(f'a reference name must be a non-empty label other than {UNKNOWN!r}, got {label!r}')
    return {'kind': NAMED, 'id': digest({'kind': NAMED, 'label': label}), 'label': label}


def reference_from_text(text: str) -> dict:
    """The reference a user gives on the command line (``--reference``).

    ``lammps:<potential name>`` is that classical potential with its default parameters,
    ``cp2k:<protocol>`` that CP2K protocol without overrides (so imported data can join a set the
    package labelled), anything else a :func:`named_reference`.

    :raises ValueError: for an unknown potential or protocol, or an empty name.
    """
    text = str(text).strip()
    kind, sep, rest = text.partition(':')
    if sep and kind.strip().lower() == LAMMPS:
        return lammps_reference({'name': rest.strip()})
    if sep and kind.strip().lower() == CP2K:
        return cp2k_reference(rest.strip())
    return named_reference(text)


def check_reference(reference) -> dict:
    """``reference`` if it is a valid reference dict (as built here), else ``ValueError`` naming what is wrong."""
    if not isinstance(reference, dict):
        raise ValueError(f'a reference must be a dict with kind, id and label, got {reference!r}')
    missing = sorted({'kind', 'id', 'label'} - set(reference))
    if missing:
        raise ValueError(f'reference {reference!r} misses {missing}')
    if reference['kind'] not in KINDS:
        raise ValueError(f"unknown reference kind {reference['kind']!r}; known: {list(KINDS)}")
    if not all(isinstance(reference[key], str) and reference[key] for key in ('kind', 'id', 'label')):
        raise ValueError(f'reference kind, id and label must be non-empty strings, got {reference!r}')
    return {'kind': reference['kind'], 'id': reference['id'], 'label': reference['label']}


def same_reference(first: dict, second: dict) -> bool:
    """True if both are the same known reference (equal kind and id, neither unknown)."""
    if first.get('kind') == UNKNOWN or second.get('kind') == UNKNOWN:
        return False
    return first.get('kind') == second.get('kind') and first.get('id') == second.get('id')


def describe(reference: dict) -> str:
    """``'<label> [<kind> <id>]'``."""
    return f"{reference.get('label')} [{reference.get('kind')} {reference.get('id')}]"


def mixed_reference_message(references: dict[str, dict]) -> str | None:
    """A message naming every distinct reference if ``references`` do not all match, else None.

    :param references: ``{what: reference}``, e.g. ``{'pool': ..., 'validation_set': ...}``.
    :returns: None when there are fewer than two entries or all are the same known reference;
        otherwise ``'mixed references: pool: <label> [<kind> <id>]; validation_set: ...'`` with a hint
        for unknown references.
    """
    items = list(references.items())
    if len(items) < 2:
        return None
    first = items[0][1]
    if all(same_reference(first, ref) for _, ref in items[1:]):
        return None
    parts = '; '.join(f'{what}: {describe(ref)}' for what, ref in items)
    message = (f'mixed references: {parts}. Labels of different references (different potential-energy '
               'surfaces and zeros of energy) must not be fitted together')
    if any(ref.get('kind') == UNKNOWN for _, ref in items):
        message += ('; a set of unknown reference matches nothing: name its reference when importing it '
                    '(`verdi data mlfail trainingset import FILE --reference LABEL`, LABEL e.g. `cp2k:fast`, '
                    '`lammps:bmhtf_coul_long` or a name of your own) or relabel it')
    return message
