"""Selection of training configurations from a pool (thesis sections 10.3 and 10.6.2).

Five methods, all deterministic for a given seed (``numpy.random.default_rng``):

* ``uniform_energy``: uniform in the global energy per atom (equal counts per energy bin);
* ``uniform_force``: uniform in the per-atom force magnitude ``|F_i|``: bins over all atoms of the
  pool, a configuration is taken for an atom drawn from each bin in turn, so the tails of the
  distribution are represented;
* ``uniform_atomic_energy``: the same over the per-atom energies;
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


def _uniform(values: np.ndarray, owners: np.ndarray, n: int, rng: np.random.Generator,
             n_configurations: int) -> list[int]:
    """Pick ``n`` distinct owners so that the picked values cover the range of ``values`` evenly.

    ``values[k]`` belongs to configuration ``owners[k]``. The range is cut into ``n`` equal bins;
    bins are visited in turn, each giving a random not-yet-chosen configuration among its values.
    """
    edges = np.linspace(values.min(), values.max(), n + 1)
    bins = np.clip(np.searchsorted(edges, values, side='right') - 1, 0, n - 1)
    members = [rng.permutation(np.flatnonzero(bins == b)) for b in range(n)]
    cursor = [0] * n
    chosen: list[int] = []
    taken = np.zeros(n_configurations, dtype=bool)
    while len(chosen) < n:
        progressed = False
        for b in range(n):
            while cursor[b] < len(members[b]) and taken[owners[members[b][cursor[b]]]]:
                cursor[b] += 1
            if cursor[b] < len(members[b]):
                owner = int(owners[members[b][cursor[b]]])
                taken[owner] = True
                chosen.append(owner)
                progressed = True
                if len(chosen) == n:
                    break
        if not progressed:
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
    chosen = _uniform(values, owners, n, rng, total)
    if len(chosen) < n:  # fewer distinct owners reachable than asked: top up at random
        rest = np.setdiff1d(np.arange(total), chosen)
        chosen += [int(i) for i in rng.choice(rest, size=n - len(chosen), replace=False)]
    return sorted(chosen)


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
