"""Per-species-pair distance thresholds: the MD guard and the active learner's outlier screen.

A threshold is given, per the user's choice, as

* ``None`` (the default): per pair, a fraction of the shortest distance of that pair in the training
  data, or, for a pair the data lack (or without data), of an estimate from the covalent radii
  (:func:`~aiida_mlfail.science.structures.default_pair_distances`);
* a number (Å): the same threshold for every pair (the behaviour before per-pair thresholds);
* a mapping ``{'A-B': Å}`` (or ``{('A', 'B'): Å}``): the pairs named; the pairs not named get the
  default of ``None``.

Resolved thresholds are dicts ``{'A-B': Å}`` with string keys in
:func:`~aiida_mlfail.science.structures.pair_key` order (lower atomic number first), so they can be
stored in JSON and AiiDA ``Dict`` nodes as they are. No AiiDA imports.
"""

from __future__ import annotations

from aiida_mlfail.science import checks
from aiida_mlfail.science.structures import (
    PAIR_DISTANCE_FRACTION,
    _pairs,
    default_pair_distances,
    pair_key,
    pair_min_distances,
)

#: Default fraction of the outlier screen (``outliers.min_distance`` of the active learner): a labelled
#: configuration with a pair closer than this fraction of that pair's shortest training distance is not
#: added (:data:`~aiida_mlfail.science.structures.PAIR_DISTANCE_FRACTION`, whose docs give the
#: measured NaCl numbers: Na-Cl 1.04 Å, Na-Na 1.48 Å, Cl-Cl 1.62 Å from the 1400 K classical frames).
OUTLIER_DISTANCE_FRACTION = PAIR_DISTANCE_FRACTION

#: Default fraction of the MD distance guard (``guards.min_distance``, stop reason ``too_close_atoms``):
#: lower than :data:`OUTLIER_DISTANCE_FRACTION`, as the former uniform numbers were (guard 1.2 Å below
#: the outlier 1.5 Å), so a configuration the guard stops at is always an outlier of the screen, while
#: a configuration between the two runs on and, if flagged, is judged by the screen. The guard only has
#: to catch a collapse; how far a poor GAP may wander is the novelty check's and the screen's business.
#: Measured: the 1500 K exploration of the tiny test GAP from the 8-ion rock-salt crystal as the only
#: reference (``tests/engines/test_explore_engine.py``, ``hot_run``) reaches Na-Na 1.577 Å, 0.395 x the
#: crystal's 3.99 Å, before its novelty stop; 0.4 stopped it there as ``too_close_atoms``, 0.35 leaves it
#: an 11 % margin. With the 1400 K classical NaCl frames (``tests/fixtures/lammps_sample``) 0.35 gives
#: Na-Na 1.03 Å, Na-Cl 0.73 Å, Cl-Cl 1.13 Å (a collapsed Na-Na pair at 0.8 Å trips it); without data,
#: from the covalent radii (0.35 x 0.75 x (r_A + r_B)): Na-Na 0.87 Å, Na-Cl 0.70 Å, Cl-Cl 0.54 Å,
#: C-H 0.28 Å (a C-H bond, 1.09 Å, is far from it).
GUARD_DISTANCE_FRACTION = 0.35


def pair_label(a: str, b: str) -> str:
    """``'A-B'`` in :func:`~aiida_mlfail.science.structures.pair_key` order: ``pair_label('Cl', 'Na') == 'Na-Cl'``.

    :raises ValueError: naming a value that is not a chemical symbol.
    """
    return '-'.join(pair_key(a, b))


def _parse_pair(key, what: str) -> str:
    parts = key.split('-') if isinstance(key, str) else key
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise ValueError(f"{what}: key {key!r} is not a species pair 'A-B' (e.g. 'Na-Cl', 'H-H')")
    try:
        return pair_label(*parts)
    except ValueError as exc:
        raise ValueError(f'{what}: key {key!r}: {exc}') from None


def normalise_pair_distances(value, what: str = 'min_distance'):
    """Check a threshold setting: ``None``, a number (Å) or a mapping ``{'A-B' | ('A', 'B'): Å}``.

    :returns: ``None``, the number (float), or ``{'A-B': Å}`` (keys in pair-key order).
    :raises ValueError: naming ``what`` and the value, for a number that is not finite and > 0, an
        empty mapping, a key that is not a pair of chemical symbols, a pair named twice.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        return checks.number(value, what, gt=0, unit='Å')
    if not value:
        raise ValueError(f"{what}: an empty mapping; give {{'A-B': Å, ...}}, a number (Å, every pair) or nothing "
                         '(per-pair defaults from the training data)')
    result = {}
    for key, distance in value.items():
        label = _parse_pair(key, what)
        if label in result:
            raise ValueError(f'{what}: the pair {label} is given twice (keys are unordered pairs)')
        result[label] = checks.number(distance, f'{what}[{key!r}]', gt=0, unit='Å')
    return result


def resolve_pair_distances(value, species, configurations=None, *, fraction: float,
                           what: str = 'min_distance') -> dict[str, float]:
    """The threshold (Å) of every species pair of ``species``, from a setting of :func:`normalise_pair_distances`.

    ``None``: ``fraction`` x the shortest distance of each pair in ``configurations``, or of the
    covalent-radii estimate for a pair they lack
    (:func:`~aiida_mlfail.science.structures.default_pair_distances`); a number: that number for every
    pair; a mapping: its pairs, the others as for ``None``.

    :param species: chemical symbols (repeats ignored); the species of ``configurations`` are added.
    :param configurations: ``ase.Atoms`` of the training data, or ``None``.
    :param fraction: in (0, 1], e.g. :data:`GUARD_DISTANCE_FRACTION` or :data:`OUTLIER_DISTANCE_FRACTION`.
    :returns: ``{'A-B': Å}`` for every pair (like pairs included), in pair-key order.
    :raises ValueError: naming the value, as :func:`normalise_pair_distances`, or a mapping naming a
        species that is neither in ``species`` nor in the configurations.
    """
    value = normalise_pair_distances(value, what)
    configurations = list(configurations or [])
    symbols = sorted({*species, *(s for atoms in configurations for s in atoms.get_chemical_symbols())})
    if isinstance(value, float):
        return {'-'.join(pair): value for pair in _pairs(symbols)}
    given = value or {}
    outside = sorted(label for label in given if not set(label.split('-')) <= set(symbols))
    if outside:
        raise ValueError(f'{what}: pair(s) {outside} name a species outside {symbols}')
    defaults = default_pair_distances(symbols, configurations, fraction=fraction)
    return {'-'.join(pair): float(given.get('-'.join(pair), distance)) for pair, distance in defaults.items()}


def close_pairs(atoms, limits: dict[str, float]) -> list[dict]:
    """The species pairs of ``atoms`` closer than their threshold.

    :param atoms: ``ase.Atoms`` (Å; minimum image and periodic images count,
        :func:`~aiida_mlfail.science.structures.pair_min_distances`).
    :param limits: ``{'A-B': Å}`` (:func:`resolve_pair_distances`); a pair without a limit is not checked.
    :returns: ``[{'pair': 'A-B', 'distance': Å, 'limit': Å}, ...]``, the most compressed (smallest
        distance / limit) first; empty when every pair is at or beyond its threshold.
    """
    found = []
    for pair, distance in pair_min_distances([atoms]).items():
        limit = limits.get('-'.join(pair))
        if limit is not None and not distance >= limit:
            found.append({'pair': '-'.join(pair), 'distance': float(distance), 'limit': float(limit)})
    return sorted(found, key=lambda item: item['distance'] / item['limit'])


def describe(limits) -> str:
    """``'Na-Na 1.48 Å, Na-Cl 1.04 Å, Cl-Cl 1.62 Å'`` for a mapping, ``'1.5 Å (every pair)'`` for a number."""
    if isinstance(limits, dict):
        return ', '.join(f'{pair} {distance:.3f} Å' for pair, distance in limits.items())
    return f'{limits:g} Å (every pair)'
