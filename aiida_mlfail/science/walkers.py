"""Parallel walkers of the active learner and the choice of the batch it labels (issue 16; no AiiDA).

A *walker* is one exploration per iteration with its own state point, seed and start structure; all walkers
of an iteration run at once. Their flagged configurations are the *candidates*; at most ``max_batch`` of
them are labelled per iteration, chosen by :func:`select_batch`:

1. by tier: the triggers of failing and novel stops first (:data:`TRIGGER_KINDS`), then the other
   candidates (the last configuration before a guard stop, ``previous``);
2. within a tier, greedy farthest-point selection (Gonzalez, Theor. Comput. Sci. 38, 293 (1985)): the
   next candidate is the one whose smallest distance to the training set and to the candidates already
   chosen is largest. The distance is the REMatch kernel distance ``D = sqrt(2 - 2 K)`` (De, Bartók, Csányi,
   Ceriotti, PCCP 18, 13754 (2016)); the distance of a candidate to the training set is that of its most
   similar training configuration, i.e. ``sqrt(2 - 2 s)`` with ``s`` the similarity its explorer reported.

Candidate keys name the walker and the kind: ``w<walker>_<kind>`` (:func:`candidate_key`), e.g.
``w1_trigger``; these keys are the link labels (``structures__w1_trigger``) that the provenance helpers read.
"""

from __future__ import annotations

import re

import numpy as np

from aiida_mlfail.science import checks

#: Keys of one walker: state point (``temperature`` K, ``pressure`` bar, ``ensemble`` NVT/NPT), velocity
#: ``seed`` and ``structure`` (the start: ``None`` for the explorer's ``job.structure``, else the name of a
#: structure in the ``walker_structures`` input). Missing keys take the explorer's ``job.parameters``.
WALKER_KEYS = ('temperature', 'pressure', 'ensemble', 'seed', 'structure')
#: Candidate kinds that are triggers of a stop (novel or failing configuration): the first tier of a batch.
TRIGGER_KINDS = ('trigger',)
#: Candidate kinds in priority order (then unknown kinds).
CANDIDATE_KINDS = ('trigger', 'previous')
_KEY = re.compile(r'^w(\d+)_([a-z_]+)$')


def candidate_key(walker: int, kind: str) -> str:
    """The key of candidate ``kind`` ('trigger' or 'previous') of walker ``walker`` (0-based): ``w<walker>_<kind>``."""
    return f'w{int(walker)}_{kind}'


def parse_candidate(key: str) -> tuple[int, str]:
    """``(walker, kind)`` of a candidate key (:func:`candidate_key`); a bare kind (runs before walkers) is walker 0.

    :raises ValueError: for a key that is neither.
    """
    match = _KEY.match(str(key))
    if match:
        return int(match.group(1)), match.group(2)
    if key in CANDIDATE_KINDS:
        return 0, str(key)
    raise ValueError(f'not a candidate key: {key!r} (expected w<walker>_<kind>, kind one of {CANDIDATE_KINDS})')


def normalise_walkers(walkers, structures=()) -> list[dict]:
    """Check the ``walkers`` input: a non-empty list of dicts of :data:`WALKER_KEYS`.

    :param walkers: list of dicts, e.g. ``[{'temperature': 1400.0, 'seed': 1}, {'temperature': 1600.0,
        'ensemble': 'NVT', 'seed': 2, 'structure': 'dense'}]`` (K, bar).
    :param structures: the names a walker's ``structure`` may take (the ``walker_structures`` input).
    :returns: a list of dicts with only the keys given, values checked (``ensemble`` upper case).
    :raises ValueError: naming the walker (``walkers[i]``) and the offending key or value.
    """
    if not isinstance(walkers, (list, tuple)) or not walkers:
        raise ValueError(f'walkers must be a non-empty list of dicts, got {walkers!r}')
    out = []
    for index, walker in enumerate(walkers):
        where = f'walkers[{index}]'
        if not isinstance(walker, dict):
            raise ValueError(f'{where} must be a dict with keys {list(WALKER_KEYS)}, got {walker!r}')
        unknown = sorted(set(walker) - set(WALKER_KEYS))
        if unknown:
            raise ValueError(f'{where}: unknown key(s) {unknown}; allowed: {list(WALKER_KEYS)}')
        clean = {}
        if walker.get('temperature') is not None:
            clean['temperature'] = checks.number(walker['temperature'], f'{where}.temperature', gt=0, unit='K')
        if walker.get('pressure') is not None:
            clean['pressure'] = checks.number(walker['pressure'], f'{where}.pressure', unit='bar')
        if walker.get('ensemble') is not None:
            ensemble = walker['ensemble'].upper() if isinstance(walker['ensemble'], str) else walker['ensemble']
            clean['ensemble'] = checks.choice(ensemble, f'{where}.ensemble', ('NVT', 'NPT'))
        if walker.get('seed') is not None:
            clean['seed'] = checks.integer(walker['seed'], f'{where}.seed', ge=1)
        if walker.get('structure') is not None:
            if walker['structure'] not in set(structures):
                raise ValueError(f"{where}.structure: {walker['structure']!r} is not a structure of walker_structures "
                                 f'(given: {sorted(structures) or "none"})')
            clean['structure'] = walker['structure']
        out.append(clean)
    return out


def walker_parameters(base: dict, walker: dict, iteration: int, reseed: bool, index: int) -> dict:
    """The explorer ``parameters`` of walker ``index`` in ``iteration`` (1-based): ``base`` with the walker's
    state point and seed; the seed is the walker's (default ``base['seed']`` (4242 if unset) + 1000 x index)
    plus ``iteration - 1`` when ``reseed``; a key neither gives takes the explorer's default
    (``science.mlmd.MLMD_DEFAULTS``)."""
    parameters = dict(base)
    for key in ('temperature', 'pressure', 'ensemble'):
        if key in walker:
            parameters[key] = walker[key]
    if 'seed' in walker or index > 0 or reseed:  # (one walker without reseed: the explorer's own seed, as before)
        seed = walker.get('seed', int(base.get('seed', 4242)) + 1000 * index)
        parameters['seed'] = int(seed) + (iteration - 1 if reseed else 0)
    return parameters


def kernel_distance(similarity) -> np.ndarray:
    """REMatch kernel distance ``sqrt(2 - 2 K)`` of normalised kernel values (clipped to [0, 2])."""
    k = np.asarray(similarity, dtype=float)
    return np.sqrt(np.clip(2.0 - 2.0 * k, 0.0, 4.0))


def select_batch(keys: list[str], to_training, between, max_batch: int) -> list[int]:
    """Indices of the batch: triggers first, then greedy farthest-point selection by tier (module doc).

    :param keys: candidate keys (:func:`candidate_key`), n of them.
    :param to_training: (n,) distance of each candidate to the training set (REMatch kernel distance, in
        [0, 2]); ``None`` or NaN entries (no similarity computed, e.g. a guard stop before the first check)
        count as the largest distance, 2.
    :param between: (n, n) symmetric distances between the candidates, or ``None`` when they were not
        computed (then only the distance to the training set ranks a tier).
    :param max_batch: at most this many (>= 0).
    :returns: indices into ``keys`` in the order chosen; ties go to the lower walker, then the lower index.
    :raises ValueError: for inconsistent shapes or a negative ``max_batch``.
    """
    n = len(keys)
    max_batch = checks.integer(max_batch, 'max_batch', ge=0)
    d_train = np.array([2.0 if v is None else float(v) for v in (to_training if to_training is not None
                                                                    else [None] * n)], dtype=float)
    if d_train.shape != (n,):
        raise ValueError(f'to_training has {d_train.size} entries for {n} candidates')
    d_train = np.where(np.isfinite(d_train), d_train, 2.0)
    if between is not None:
        between = np.asarray(between, dtype=float)
        if between.shape != (n, n):
            raise ValueError(f'between has shape {between.shape} for {n} candidates')
    parsed = [parse_candidate(k) for k in keys]
    tier = [0 if kind in TRIGGER_KINDS else 1 for _, kind in parsed]
    nearest = d_train.copy()  # smallest distance to the training set and the chosen ones
    chosen: list[int] = []
    for level in sorted(set(tier)):
        while len(chosen) < max_batch:
            left = [i for i in range(n) if tier[i] == level and i not in chosen]
            if not left:
                break
            best = max(left, key=lambda i: (nearest[i], -parsed[i][0], -i))
            chosen.append(best)
            if between is not None:
                nearest = np.minimum(nearest, between[best])
    return chosen


#: Largest number of atoms (candidates x atoms each) whose SOAP and REMatch distances between candidates
#: :func:`candidate_distances` is used for in a calcfunction (a daemon worker): 16 x 64 ions of molten NaCl take
#: 0.06 s with SOAP r_cut 5 Å, n_max 4, l_max 3 (1.6 s for the first call of a process: dscribe's set-up), measured
#: on the 2-core development machine (the last case of ``tests/science/test_walkers.py``); above it, only the
#: similarities the explorers reported rank the candidates (no work in the daemon that grows with the data).
DAEMON_DISTANCE_ATOMS = 1024


def candidate_distances(configurations, soap: dict, alpha: float = 0.1, threshold: float = 1e-6) -> np.ndarray:
    """(n, n) REMatch kernel distances ``sqrt(2 - 2 K)`` between ``configurations`` (``ase.Atoms``), with the
    SOAP of :mod:`aiida_mlfail.science.soap` (``soap`` parameters, species from the configurations when not given)
    and the project's REMatch engine (:func:`aiida_mlfail.science.rematch.rematch_kernel`, ``alpha``,
    ``threshold``).

    :raises ValueError: from the SOAP parameters (naming the key) or a configuration without neighbours.
    """
    from aiida_mlfail.science import soap as soap_module  # noqa: PLC0415 (dscribe is heavy)
    from aiida_mlfail.science.rematch import rematch_kernel  # noqa: PLC0415

    configurations = list(configurations)
    if not configurations:
        return np.zeros((0, 0))
    species = sorted({s for atoms in configurations for s in atoms.get_chemical_symbols()})
    parameters = soap_module.normalise_soap_parameters(dict(soap or {}), species=species)
    features = soap_module.normalised_features(soap_module.soap_descriptor(parameters), configurations)
    distances = kernel_distance(rematch_kernel(features, alpha=alpha, threshold=threshold))
    np.fill_diagonal(distances, 0.0)
    return distances
