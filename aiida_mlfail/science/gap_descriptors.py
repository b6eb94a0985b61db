"""gap_fit's descriptor grammar and the GAP descriptors built from it, AiiDA-free.

The whitelisted keys of each descriptor type (:data:`DESCRIPTOR_KEYS`, :data:`GAP_KEYS`), their check
(:func:`check_descriptor`) and rendering as gap_fit descriptor strings (:func:`descriptor_string`),
per-species 2-body + SOAP descriptors (:func:`default_descriptors`, :func:`explicit_descriptors`) and the
environments gap_fit will find for a descriptor in a training set (:func:`count_environments`,
:func:`check_sparse_points`).

The fit parameters, gap_fit's command line and the parsing of its output and of GAP XML files are in
:mod:`aiida_mlfail.science.gap`, which re-exports every name of this module.

gap_fit reference: QUIP/GAP documentation, https://libatoms.github.io/GAP/gap_fit.html.
"""

from __future__ import annotations

import numbers
import re

from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list

from aiida_mlfail.science import checks

#: Descriptor types accepted, with the keys each must have.
DESCRIPTOR_REQUIRED = {
    'soap': ('n_max', 'l_max', 'atom_sigma', 'cutoff', 'delta', 'n_sparse'),
    'distance_2b': ('cutoff', 'delta', 'n_sparse'),
    'angle_3b': ('cutoff', 'delta', 'n_sparse'),
}

# Value kinds of descriptor keys: (kind, bounds). ``number``/``integer`` are checked with
# ``science.checks``; ``logical`` must be a bool; ``choice`` one of the listed (lower-case) words; ``z``
# an atomic number (0 = any species, QUIP's default); ``z_list`` a list of atomic numbers.
_POSITIVE = ('number', {'gt': 0})
_NON_NEGATIVE = ('number', {'ge': 0})
_ANY_NUMBER = ('number', {})
_LOGICAL = ('logical', {})
_Z = ('integer', {'ge': 0, 'le': 118})

#: Keys of the GAP part of a descriptor string (gap_fit's ``gap_fit_parse_gap_str``: delta, f0, n_sparse,
#: sparse_method, covariance_type, theta_uniform/theta_fac, zeta, add_species, unique_*_tolerance),
#: common to every descriptor type. Left out on purpose, because they name files gap_fit reads or
#: writes: ``sparse_file``, ``lengthscale_file``/``theta_file``, ``print_sparse_index``,
#: ``mark_sparse_atoms`` (rewrites the training file), and the sparse methods ``file``/``index_file``;
#: also ``config_type_n_sparse`` (a ``{type:n:...}`` string).
GAP_KEYS = {
    'delta': _POSITIVE,
    'f0': _ANY_NUMBER,
    'n_sparse': ('integer', {'gt': 0}),
    'sparse_method': ('choice', {'choices': ('random', 'pivot', 'cluster', 'uniform', 'kmeans', 'covariance',
                                             'fuzzy', 'cur_covariance', 'cur_points', 'none')}),
    'covariance_type': ('choice', {'choices': ('ard_se', 'gaussian', 'dot_product', 'pp')}),
    'theta_uniform': _POSITIVE,
    'theta_fac': _POSITIVE,
    'zeta': _POSITIVE,
    'add_species': _LOGICAL,
    'unique_hash_tolerance': _NON_NEGATIVE,
    'unique_descriptor_tolerance': _NON_NEGATIVE,
}

#: Keys of each descriptor type, from QUIP's descriptor parameters (``descriptors.f95``; printed by
#: ``quippy.descriptors.Descriptor('<type> ... --help')`` of the quippy-ase 0.10 wheel, and
#: https://libatoms.github.io/GAP/gap_fit.html). A small, documented subset: the SOAP compression
#: options (``nu_R``, ``Z_mix`` ...), ``radial_basis``/``Z_map`` strings and molecule-only keys
#: (``resid_name``, ``only_intra`` ...) are not offered.
DESCRIPTOR_KEYS = {
    'soap': {
        'cutoff': _POSITIVE, 'cutoff_transition_width': _POSITIVE, 'cutoff_dexp': ('integer', {'ge': 0}),
        'cutoff_scale': _POSITIVE, 'cutoff_rate': _POSITIVE,
        'n_max': ('integer', {'gt': 0}), 'l_max': ('integer', {'ge': 0}), 'atom_sigma': _POSITIVE,
        'central_weight': _ANY_NUMBER, 'central_reference_all_species': _LOGICAL, 'average': _LOGICAL,
        'diagonal_radial': _LOGICAL, 'covariance_sigma0': _NON_NEGATIVE, 'normalise': _LOGICAL,
        'basis_error_exponent': _POSITIVE, 'n_species': ('integer', {'gt': 0}), 'species_Z': ('z_list', {}),
        'Z': _Z,
    },
    'distance_2b': {'cutoff': _POSITIVE, 'cutoff_transition_width': _POSITIVE, 'Z1': _Z, 'Z2': _Z},
    'angle_3b': {'cutoff': _POSITIVE, 'cutoff_transition_width': _POSITIVE, 'Z': _Z, 'Z1': _Z, 'Z2': _Z},
}

#: Default SOAP settings of :func:`default_descriptors` (those of the ``mlfail.gap`` protocol): n_max 4 /
#: l_max 3 with a 0.7 Å Gaussian is a coarse, cheap SOAP that still tells a compressed from a dilute
#: environment; zeta 4 is the exponent of the dot-product kernel of Bartók et al. (2013); delta 0.5 eV
#: makes the many-body term a correction to the 2-body one (delta 1.0 eV).
DEFAULT_SOAP = {'n_max': 4, 'l_max': 3, 'atom_sigma': 0.7, 'zeta': 4, 'delta': 0.5}

#: Energy scale (eV) of the 2-body term of :func:`default_descriptors`, of the order of the spread of the
#: energies per atom of a training set.
DEFAULT_DELTA_2B = 1.0

#: SOAP keys :func:`default_descriptors` sets from its own arguments (not through ``soap``).
_SOAP_MANAGED = ('cutoff', 'n_sparse', 'Z', 'n_species', 'species_Z', 'add_species')


def default_descriptors(species, cutoff: float, *, n_sparse_2b: int = 15, n_sparse_soap: int = 20,
                        soap: dict | None = None) -> list[dict]:
    """The 2-body + SOAP GAP descriptors for any list of species, in the list format of
    :func:`~aiida_mlfail.science.gap.normalise_fit_parameters`.

    The GAP of Bartók, Payne, Kondor and Csányi (PRL 104, 136403 (2010)) with a pair term plus the SOAP
    many-body term of Bartók, Kondor and Csányi (PRB 87, 184115 (2013)), written out per species as
    gap_fit would make it with ``add_species=T`` (https://libatoms.github.io/GAP/gap_fit.html), so the
    species are explicit and checkable:

    * one ``distance_2b`` per species pair (``Z1 <= Z2``), ``delta`` :data:`DEFAULT_DELTA_2B`,
      ``n_sparse_2b`` points spread uniformly along the pair distance (the 2-body curve is smooth and
      one-dimensional);
    * one ``soap`` per centre species (``Z``), each seeing all species (``n_species``, ``species_Z``),
      with :data:`DEFAULT_SOAP` updated by ``soap``, ``n_sparse_soap`` environments (CUR);

    all with ``add_species=False`` (the species are given) and the same ``cutoff``. The defaults are the
    ``mlfail.gap`` protocol's (``fast``): 5 Å covers the first two neighbour shells of a dense liquid.
    Ordered by atomic number: for ``['Cl', 'Na']`` the pairs Na-Na, Na-Cl, Cl-Cl, then SOAP on Na and on
    Cl: n(n+1)/2 pair descriptors and n SOAP descriptors for n species.

    :param species: chemical symbols (any order; repeats are ignored).
    :param cutoff: cutoff radius of every descriptor, Å (> 0).
    :param n_sparse_2b: sparse points per pair descriptor (integer > 0).
    :param n_sparse_soap: sparse environments per SOAP descriptor (integer > 0).
    :param soap: overrides of :data:`DEFAULT_SOAP` and other SOAP / GAP keys (``n_max``, ``l_max``,
        ``atom_sigma``, ``zeta``, ``delta``, ``cutoff_transition_width``, ``sparse_method`` ...), not the keys
        this function sets (``cutoff``, ``n_sparse``, ``Z``, ``n_species``, ``species_Z``, ``add_species``).
    :returns: list of descriptor dicts, each passing :func:`check_descriptor`.
    :raises ValueError: naming the value, for an empty species list or one that is not a chemical symbol, a
        cutoff / n_sparse that is not a positive number, a ``soap`` that is not a mapping, names a key
        set here or a key/value :func:`check_descriptor` refuses.
    """
    if isinstance(species, str) or not isinstance(species, (list, tuple, set)) or not species:
        raise ValueError(f'species must be a non-empty list of chemical symbols, got {species!r}')
    for symbol in species:
        if not isinstance(symbol, str) or not atomic_numbers.get(symbol):
            raise ValueError(f'species: {symbol!r} is not a chemical symbol (e.g. Na, Cl, Ar, C, H)')
    cutoff = checks.number(cutoff, 'cutoff', gt=0, unit='Å')
    n_sparse_2b = checks.integer(n_sparse_2b, 'n_sparse_2b', gt=0, le=checks.INT32_MAX)
    n_sparse_soap = checks.integer(n_sparse_soap, 'n_sparse_soap', gt=0, le=checks.INT32_MAX)
    if soap is None:
        soap = {}
    if not isinstance(soap, dict):
        raise ValueError(f'soap must be a mapping of SOAP settings, got {soap!r}')
    managed = sorted(set(soap) & set(_SOAP_MANAGED))
    if managed:
        raise ValueError(f'soap: {managed} are set by default_descriptors from its arguments and the species')
    numbers = sorted({atomic_numbers[s] for s in species})
    descriptors = [
        {'type': 'distance_2b', 'cutoff': cutoff, 'Z1': z1, 'Z2': z2, 'delta': DEFAULT_DELTA_2B,
         'n_sparse': n_sparse_2b, 'sparse_method': 'uniform', 'add_species': False}
        for i, z1 in enumerate(numbers) for z2 in numbers[i:]
    ]
    descriptors += [
        {'type': 'soap', **DEFAULT_SOAP, **soap, 'cutoff': cutoff, 'Z': z, 'n_species': len(numbers),
         'species_Z': list(numbers), 'n_sparse': n_sparse_soap, 'add_species': False}
        for z in numbers
    ]
    return [check_descriptor(d) for d in descriptors]


def _format(value) -> str:
    if isinstance(value, bool):
        return 'T' if value else 'F'
    if isinstance(value, (list, tuple)):
        return '{' + ' '.join(_format(v) for v in value) + '}'
    return str(value)


def _check_value(value, key: str, kind: str, options: dict):
    if kind == 'number':
        checked = checks.number(value, key, **options)
        return int(value) if isinstance(value, numbers.Integral) else checked  # 4 stays 4 in the string
    if kind == 'integer':
        return checks.integer(value, key, **options)
    if kind == 'logical':
        return checks.boolean(value, key)
    if kind == 'choice':
        word = value.lower() if isinstance(value, str) else value
        return checks.choice(word, key, options['choices'])
    if kind == 'z_list':
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f'{key} must be a non-empty list of atomic numbers, got {value!r}')
        return [checks.integer(z, f'{key}[{i}]', ge=1, le=118) for i, z in enumerate(value)]
    raise AssertionError(kind)  # pragma: no cover


def check_descriptor(descriptor: dict) -> dict:
    """Check one gap_fit descriptor dict and return it normalised (integral floats as ints, bools kept,
    ``sparse_method``/``covariance_type`` in lower case).

    The ``type`` must be one of :data:`DESCRIPTOR_REQUIRED` (its required keys present); every other key
    must be a key of that type (:data:`DESCRIPTOR_KEYS`) or of the GAP part (:data:`GAP_KEYS`), and its
    value of the key's kind: finite numbers in range (``cutoff``, ``delta``, ``atom_sigma`` ... > 0),
    integers (``n_sparse`` > 0, ``n_max`` > 0, ``l_max`` >= 0, atomic numbers 0..118), ``true``/``false``
    for logical keys, one of the listed words for ``sparse_method``/``covariance_type``. So nothing
    that reaches gap_fit's ``gap={...}`` can carry a space, brace, quote, ``=``, ``:`` or a file name.

    :raises ValueError: naming the descriptor type, the key and the value (an unknown key names the
        allowed ones).
    """
    if not isinstance(descriptor, dict):
        raise ValueError(f'a descriptor must be a mapping with a type, got {descriptor!r}')
    kind = descriptor.get('type')
    if not isinstance(kind, str) or kind not in DESCRIPTOR_REQUIRED:
        raise ValueError(f'descriptor type {kind!r} is not supported; use one of {sorted(DESCRIPTOR_REQUIRED)}')
    allowed = {**GAP_KEYS, **DESCRIPTOR_KEYS[kind]}
    checks.known_keys({k: v for k, v in descriptor.items() if k != 'type'}, allowed, f'{kind} descriptor')
    missing = [k for k in DESCRIPTOR_REQUIRED[kind] if k not in descriptor]
    if missing:
        raise ValueError(f'{kind} descriptor misses {missing}')
    checked = {'type': kind}
    for key, value in descriptor.items():
        if key == 'type':
            continue
        value_kind, options = allowed[key]
        checked[key] = _check_value(value, f'{kind} descriptor: {key}', value_kind, options)
    return checked


def descriptor_string(descriptor: dict) -> str:
    """gap_fit descriptor string, e.g. ``{'type': 'soap', 'n_max': 5}`` -> ``soap n_max=5``.

    The descriptor is checked with :func:`check_descriptor` first (whitelisted keys, typed values).
    ``add_species`` defaults to ``T`` and ``sparse_method`` to ``cur_points`` when not given;
    ``distance_2b``/``angle_3b`` default to ``covariance_type=ard_se theta_uniform=1.0``, SOAP to
    ``covariance_type=dot_product zeta=4``.

    :raises ValueError: as :func:`check_descriptor`.
    """
    checked = check_descriptor(descriptor)
    kind = checked['type']
    values = {'add_species': True, 'sparse_method': 'cur_points'}
    if kind == 'soap':
        values.update(covariance_type='dot_product', zeta=4)
    else:
        values.update(covariance_type='ard_se', theta_uniform=1.0)
    values.update({k: v for k, v in checked.items() if k != 'type'})
    return kind + ' ' + ' '.join(f'{k}={_format(v)}' for k, v in values.items())


def count_environments(configurations, descriptor: dict, *, enough: float | None = None,
                       species=None) -> dict[str, int]:
    """Number of environments gap_fit will find for one descriptor, per species (combination).

    SOAP with ``add_species``: atoms per centre species; ``distance_2b``: pairs within the cutoff
    per species pair, every pair counted from both ends as in gap_fit's dryrun report; ``angle_3b``: atoms per
    centre species (an upper bound is not
    needed there: n_sparse is checked against centres). A descriptor with ``add_species=False`` and its
    species given (``Z`` of SOAP / ``angle_3b``, ``Z1``/``Z2`` of ``distance_2b``, non-zero; as
    :func:`default_descriptors` makes them) counts only its own species (pair).

    :param configurations: iterable of ``ase.Atoms`` (Å), e.g. ``TrainingSetData.iter_atoms()``; it is consumed
        only as far as needed.
    :param enough: with ``species``, stop counting once every key that ``species`` allows (each species, or
        each species pair, restricted as above) has at least ``enough`` environments: the counts returned are
        then lower bounds, all of them ``>= enough`` (a submit-time check of ``n_sparse`` reads one or two
        configurations instead of the whole pool). ``None`` (default): count everything.
    :param species: chemical symbols of the whole set (e.g. ``TrainingSetData.species``), needed with ``enough``.
    :returns: ``{'Na': 352, 'Cl': 352}`` or ``{'Na-Cl': 4562, ...}``.
    """
    kind = descriptor['type']
    counts: dict[str, int] = {}
    ordered = sorted(set(species or ()), key=atomic_numbers.__getitem__)
    if kind in ('soap', 'angle_3b'):
        possible = ordered
    else:
        possible = [f'{a}-{b}' for i, a in enumerate(ordered) for b in ordered[i:]]
    possible = list(_own_species(dict.fromkeys(possible, 0), descriptor)) if possible else []
    cutoff = float(descriptor.get('cutoff', 0.0))
    for atoms in configurations:
        if kind in ('soap', 'angle_3b'):
            for symbol in atoms.get_chemical_symbols():
                counts[symbol] = counts.get(symbol, 0) + 1
        else:
            i, j = neighbor_list('ij', atoms, cutoff)
            keep = i < j
            numbers = atoms.numbers
            for a, b in zip(numbers[i[keep]], numbers[j[keep]]):
                key = '-'.join(sorted((_symbol(a), _symbol(b)), key=lambda s: atomic_numbers[s]))
                counts[key] = counts.get(key, 0) + 2  # gap_fit counts every pair from both ends
        if enough is not None and possible and all(counts.get(key, 0) >= enough for key in possible):
            break
    return _own_species(counts, descriptor)


def _own_species(counts: dict[str, int], descriptor: dict) -> dict[str, int]:
    """``counts`` restricted to the species (pair) of a descriptor that names them without ``add_species``."""
    if descriptor.get('add_species', True) is not False:
        return counts
    if descriptor['type'] == 'distance_2b':
        z1, z2 = int(descriptor.get('Z1', 0)), int(descriptor.get('Z2', 0))
        if not (z1 and z2):
            return counts
        key = '-'.join(_symbol(z) for z in sorted((z1, z2)))
    else:
        z = int(descriptor.get('Z', 0))
        if not z:
            return counts
        key = _symbol(z)
    return {key: counts.get(key, 0)}


def _symbol(number: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(number)]


def check_sparse_points(configurations, descriptors) -> None:
    """Raise ``ValueError`` if a descriptor asks for more sparse points than there are environments."""
    for descriptor in descriptors:
        counts = count_environments(configurations, descriptor)
        if not counts or not any(counts.values()):
            where = f' for {sorted(counts)}' if counts else ''
            raise ValueError(f"{descriptor['type']} descriptor finds no environment{where} in the training set")
        key, smallest = min(counts.items(), key=lambda kv: kv[1])
        if int(descriptor['n_sparse']) > smallest:
            raise ValueError(
                f"{descriptor['type']} descriptor: n_sparse={descriptor['n_sparse']} is larger than the "
                f'{smallest} environments available for {key} in the training set'
            )


#: Keys :func:`default_descriptors` adds per species (not settings of the descriptor).
_SPECIES_KEYS = ('Z', 'Z1', 'Z2', 'n_species', 'species_Z', 'add_species')


def explicit_descriptors(descriptors, species) -> list[dict]:
    """The ``distance_2b`` + ``soap``, ``distance_2b``-only or ``soap``-only descriptors of a protocol
    (``add_species`` left to gap_fit) written out per species with :func:`default_descriptors`, with the same
    settings.

    gap_fit's ``add_species=T`` makes one descriptor per species pair / centre species of the training file;
    :func:`default_descriptors` writes the same ones out, so the species are explicit in the inputs. Measured:
    gap_fit 0.10 on 6 BMHTF-labelled 64-ion NaCl frames (``tests.helpers.nacl_configurations(6)``) with the
    ``fast`` protocol's descriptors, written both ways, gives the same GAP: energies and forces of the 6
    frames equal to the last digit (largest energy difference 0.0 eV, largest force difference 0.0 eV/Å).

    A SOAP-only GAP (no pair term; the comparison of thesis section 10.1, ``workflows/nacl_descriptors.py``) is a
    valid choice: every species still gets an energy term of its own (one SOAP per centre species), only the
    explicit pair repulsion is missing, which SOAP then has to learn.

    :param descriptors: list of descriptor dicts, in this order: ``[distance_2b]``, ``[soap]`` or
        ``[distance_2b, soap]``, with the same ``cutoff`` (Å), no species keys (``Z``, ``Z1``, ``Z2``,
        ``n_species``, ``species_Z``) and ``add_species`` absent or true.
    :param species: chemical symbols of the training data.
    :returns: the list of :func:`default_descriptors` (2-body only when no ``soap`` is given, SOAP only when no
        ``distance_2b`` is given).
    :raises ValueError: naming the value, for descriptors of another shape (e.g. two SOAPs, an empty list, the
        SOAP before the 2-body term), or settings
        :func:`default_descriptors` would not reproduce (e.g. a 2-body ``delta`` other than
        :data:`DEFAULT_DELTA_2B`, a ``sparse_method`` other than ``uniform`` for the 2-body term).
    """
    if not isinstance(descriptors, list) or not all(isinstance(d, dict) for d in descriptors):
        raise ValueError(f'descriptors must be a list of descriptor dicts, got {descriptors!r}')
    kinds = [d.get('type') for d in descriptors]
    if kinds not in (['distance_2b'], ['soap'], ['distance_2b', 'soap']):
        raise ValueError('explicit_descriptors takes a distance_2b, a soap, or a distance_2b and a soap descriptor '
                         f'(in this order), got types {kinds}')
    for d in descriptors:
        named = sorted(k for k in _SPECIES_KEYS if k in d and not (k == 'add_species' and d[k] is True))
        if named:
            raise ValueError(f'{d["type"]} descriptor already names species or add_species=False: {named}')
    two_body = descriptors[0] if kinds[0] == 'distance_2b' else None
    soap = descriptors[-1] if kinds[-1] == 'soap' else None
    cutoff = (two_body or soap).get('cutoff')
    if two_body is not None and soap is not None and soap.get('cutoff') != cutoff:
        raise ValueError(f"distance_2b cutoff {cutoff!r} and soap cutoff {soap.get('cutoff')!r} differ")
    soap_settings = {k: v for k, v in (soap or {}).items() if k not in ('type', 'cutoff', 'n_sparse', 'add_species')}
    explicit = default_descriptors(species, cutoff, n_sparse_2b=(two_body or {}).get('n_sparse', 15),
                                   n_sparse_soap=(soap or {}).get('n_sparse', 20), soap=soap_settings)
    explicit = [d for d in explicit if d['type'] in kinds]
    for d in explicit:
        given = {k: v for k, v in descriptors[kinds.index(d['type'])].items() if k != 'add_species'}
        made = {k: v for k, v in d.items() if k not in _SPECIES_KEYS}
        if given != made:
            differ = sorted(k for k in {*given, *made} if given.get(k) != made.get(k))
            raise ValueError(f"{d['type']}: default_descriptors would change {differ}: given {given}, made {made}")
    return explicit


#: Species keys of a descriptor: the centre (``Z``) and pair (``Z1``, ``Z2``) species that get an energy term.
_ENERGY_SPECIES_KEYS = {'soap': ('Z',), 'angle_3b': ('Z',), 'distance_2b': ('Z1', 'Z2')}


def _species_of(kind: str, values: dict, add_species) -> set[int] | None:
    """Atomic numbers a descriptor gives an energy term, or ``None`` for every species (``add_species``, or a
    species key missing or 0, QUIP's "any species")."""
    if add_species is not False:
        return None
    numbers = [int(values.get(key, 0) or 0) for key in _ENERGY_SPECIES_KEYS.get(kind, ('Z',))]
    return None if not all(numbers) else set(numbers)


def uncovered_species(descriptors, species) -> list[str]:
    """The species of ``species`` that no descriptor gives an energy term, in atomic-number order.

    A species is covered by a descriptor that names it as a centre (``Z`` of ``soap`` / ``angle_3b``) or as
    one end of a pair (``Z1``/``Z2`` of ``distance_2b``), or by any descriptor with ``add_species`` true
    (gap_fit's default, which makes one descriptor per species of the training file) or without its species
    keys (QUIP's ``Z=0``: any species). A species only in a SOAP's ``species_Z`` (a neighbour, never a
    centre) is not covered: gap_fit would give its atoms no energy term of their own.

    :param descriptors: descriptor dicts (``{'type': ..., ...}``, as :func:`check_descriptor` takes) or the
        descriptor strings of a GAP XML (``GapPotentialData`` attribute ``descriptors``: gap_fit writes the
        species out there, e.g. ``soap ... Z=11 species_Z={11 17 }``).
    :param species: chemical symbols (repeats ignored).
    :returns: the uncovered symbols, ``[]`` when every one is covered.
    """
    covered: set[int] = set()
    for descriptor in descriptors:
        if isinstance(descriptor, str):
            words = descriptor.split()
            kind = words[0] if words else ''
            values = dict(re.findall(r'\b(Z\d?)=(\d+)', descriptor))
            flag = re.search(r'\badd_species=(\S+)', descriptor)
            add_species = flag is not None and flag.group(1).upper().startswith('T')
        else:
            kind, values, add_species = descriptor.get('type'), descriptor, descriptor.get('add_species', True)
        numbers = _species_of(kind, values, add_species)
        if numbers is None:
            return []
        covered |= numbers
    return sorted({s for s in species if atomic_numbers.get(s) not in covered}, key=lambda s: atomic_numbers[s])
