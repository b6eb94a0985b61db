"""Selection of training configurations from a pool (thesis sections 10.3 and 10.6.2).

Five methods, all deterministic for a given seed (``numpy.random.default_rng``):

* ``uniform_energy``: flat in the energy per atom ``E / N`` of the configuration: a weighted draw
  without replacement in which each configuration weighs ``1 / (number of pool configurations in its
  histogram bin)`` (:func:`flat_histogram_weights`, Freedman-Diaconis bins), so every populated bin
  of the pool's ``E / N`` histogram is equally likely to give the next configuration and the selected
  histogram is flat where the pool has data (rare energies are over-represented relative to the pool,
  common ones under-represented); a single outlier is one bin among many, not a certainty;
* ``uniform_force``: the same draw over the per-atom force magnitudes ``|F_i|`` of all atoms of the
  pool (per-atom semantics: each atom is one value; drawing an atom takes its configuration, with all its
  atoms, unless that configuration is already taken). The values that drove the selection (one atom
  per selected configuration) are flat over the range; the other atoms of a selected configuration
  follow the pool's distribution;
* ``uniform_atomic_energy``: the same per-atom draw over the per-atom energies;
* ``random``: uniformly at random without replacement;
* ``temporal``: evenly spaced in pool order (the pool is in MD time order per state point).
"""

from __future__ import annotations

import numpy as np

from aiida_mlfail.science import checks

METHODS = ('uniform_energy', 'uniform_force', 'uniform_atomic_energy', 'random', 'temporal')

#: The label each method needs.
REQUIRED_LABEL = {'uniform_energy': 'energy', 'uniform_force': 'forces', 'uniform_atomic_energy': 'atomic_energies'}


def normalise_selection(parameters: dict, *, n_min: int = 1, n_pool: int | None = None) -> dict:
    """Check a selection spec ``{'method': ..., 'n': ..., 'seed': ...}`` (``method`` default ``'random'``,
    ``seed`` default 0).

    :param n_min: the smallest ``n`` accepted; ``n_pool``: the largest (the pool size), when known.
    :returns: the spec with defaults, ``n`` and ``seed`` as ``int``.
    :raises ValueError: naming the key and value (unknown key or method, ``n`` not an integer in range,
        ``seed`` not a non-negative integer).
    """
    checks.known_keys(parameters, ('method', 'n', 'seed'), 'selection')
    method = checks.choice(parameters.get('method', 'random'), 'selection.method', METHODS)
    if 'n' not in parameters:
        raise ValueError('selection.n (how many configurations to select) is required')
    upper = checks.INT32_MAX if n_pool is None else n_pool
    n = checks.integer(parameters['n'], 'selection.n', ge=n_min, le=upper,
                       unit='' if n_pool is None else f'(the pool holds {n_pool})')
    seed = checks.integer(parameters.get('seed', 0), 'selection.seed', ge=0)
    return {'method': method, 'n': n, 'seed': seed}


def normalise_split(parameters: dict) -> dict:
    """Check a train/validation split spec ``{'train_fraction': float in (0, 1), 'seed': int >= 0}``
    (defaults 0.5 and 0).

    :raises ValueError: naming the key and value.
    """
    checks.known_keys(parameters, ('train_fraction', 'seed'), 'split')
    return {'train_fraction': checks.number(parameters.get('train_fraction', 0.5), 'split.train_fraction', gt=0, lt=1),
            'seed': checks.integer(parameters.get('seed', 0), 'split.seed', ge=0)}


def flat_histogram_weights(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights that make a weighted draw of ``values`` flat over their histogram, and the bin edges.

    The bins are numpy's Freedman-Diaconis bins (``numpy.histogram_bin_edges(values, 'fd')``: width
    2 IQR n^(-1/3), from the interquartile range, so a single outlier adds one far bin instead of
    stretching every bin as equal-width bins over min..max do; Freedman and Diaconis, Z. Wahrscheinlichkeitstheorie
    verw. Gebiete 57, 453 (1981)); ``'sturges'`` when the IQR is zero. Each value gets
    ``1 / (count of its bin)``, so every populated bin carries the same total weight.

    :param values: 1-d array (any unit), finite.
    :returns: ``(weights, edges)``, weights of shape ``values.shape`` (> 0), edges of the bins.
    """
    values = np.asarray(values, dtype=float)
    iqr = np.subtract(*np.percentile(values, [75, 25]))
    edges = np.histogram_bin_edges(values, bins='fd' if iqr > 0 else 'sturges')
    bins = np.clip(np.searchsorted(edges, values, side='right') - 1, 0, len(edges) - 2)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    return 1.0 / counts[bins], edges


def _uniform(values: np.ndarray, owners: np.ndarray, n: int, rng: np.random.Generator) -> list[int]:
    """Pick ``n`` distinct owners by a flat-histogram draw of ``values`` (``values[k]`` belongs to ``owners[k]``).

    Weighted sampling without replacement with the weights of :func:`flat_histogram_weights`
    (Efraimidis and Spirakis, Inf. Process. Lett. 97, 181 (2006): key ``log(u) / w``, ``u`` uniform in (0, 1),
    largest keys first); a value whose owner is already taken is skipped. Every value has a positive
    weight, so ``n`` distinct owners are always reached when ``n`` <= the number of owners.
    """
    weights, _ = flat_histogram_weights(values)
    keys = np.log(rng.random(len(values))) / weights
    chosen: list[int] = []
    taken = set()
    for k in np.argsort(-keys, kind='stable'):
        owner = int(owners[k])
        if owner not in taken:
            taken.add(owner)
            chosen.append(owner)
            if len(chosen) == n:
                break
    return chosen


def select(configurations, n: int, method: str, seed: int = 0) -> list[int]:
    """Indices (sorted) of ``n`` configurations chosen from ``configurations`` by ``method``.

    :param configurations: list of ``ase.Atoms`` carrying the label the method needs
        (``info['energy']`` eV, ``arrays['forces']`` eV/Å, ``arrays['atomic_energies']`` eV).
    :param n: how many to select, 1 <= n <= len(configurations).
    :raises ValueError: for an unknown method, an impossible ``n`` or a missing label (naming the configuration).
    """
    if method not in METHODS:
        raise ValueError(f'unknown selection method {method!r}; use one of {list(METHODS)}')
    total = len(configurations)
    if not 1 <= int(n) <= total:
        raise ValueError(f'cannot select {n!r} configurations from a pool of {total}')
    n = int(n)
    rng = np.random.default_rng(seed)
    label = REQUIRED_LABEL.get(method)
    if label:
        for index, atoms in enumerate(configurations):
            present = atoms.info if label == 'energy' else atoms.arrays
            if label not in present:
                raise ValueError(f'selection {method!r} needs {label!r}, missing in configuration {index}')
    if method == 'random':
        return sorted(int(i) for i in rng.choice(total, size=n, replace=False))
    if method == 'temporal':
        return sorted({int(round(x)) for x in np.linspace(0, total - 1, n)})
    if method == 'uniform_energy':
        values = np.array([a.info['energy'] / len(a) for a in configurations])
        owners = np.arange(total)
    else:
        key = 'forces' if method == 'uniform_force' else 'atomic_energies'
        per_atom = [np.linalg.norm(a.arrays[key], axis=1) if key == 'forces' else np.asarray(a.arrays[key], float)
                    for a in configurations]
        values = np.concatenate(per_atom)
        owners = np.concatenate([np.full(len(v), i) for i, v in enumerate(per_atom)])
    return sorted(_uniform(values, owners, n, rng))


def split(n_total: int, train_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Random train / validation split of ``range(n_total)`` (sorted index lists).

    :raises ValueError: if the fraction is not in (0, 1] or leaves the training set empty.
    """
    if not 0 < float(train_fraction) <= 1:
        raise ValueError(f'train_fraction must be in (0, 1], got {train_fraction!r}')
    order = np.random.default_rng(seed).permutation(n_total)
    n_train = int(round(train_fraction * n_total))
    if n_train < 1:
        raise ValueError(f'train_fraction {train_fraction} of {n_total} configurations leaves no training data')
    return sorted(int(i) for i in order[:n_train]), sorted(int(i) for i in order[n_train:])
