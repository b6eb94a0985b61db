"""The active learner's own logic (thesis chapter 13): loop parameters, the outlier check, the table.

The loop itself is ``aiida_mlfail.workflows.active_learning.ActiveLearningWorkChain``; what can be
decided on plain numbers lives here, without AiiDA.

Outlier check (the thesis's pitfall: a bad potential lets atoms overlap, the reference then returns
huge energies and forces, and such configurations poison the next fit): a labelled configuration is
not added when the shortest distance of a species pair (minimum image) is below that pair's
``min_distance`` (per pair; by default half the shortest distance of the pair in the current training
set, :func:`outlier_distances`), its
reference energy per atom differs from the mean energy per atom of the training set by more than
``max_energy_deviation``, or its largest reference force exceeds ``max_force``.
"""

from __future__ import annotations

import numpy as np

from aiida_mlfail.science import checks, walkers
from aiida_mlfail.science.pair_distances import (
    OUTLIER_DISTANCE_FRACTION,
    normalise_pair_distances,
    resolve_pair_distances,
)
from aiida_mlfail.science.structures import pair_min_distances

#: Loop defaults: limits, where the next exploration starts ('stop': the flagged configuration
#: when the stop was a novelty flag and the outlier check accepted it; 'start': always the start
#: structure), outlier bounds (``min_distance``: ``None`` for per-pair defaults from the current training
#: set (:func:`outlier_distances`), a number in Å for every pair, or ``{'A-B': Å}``; eV/atom, eV/Å),
#: whether each exploration gets a new velocity seed (seed + iteration), the budget of configurations
#: that could not be labelled or were rejected as outliers (the ledger; the run ends with its own exit
#: code when it holds more), and how many labelling jobs (CP2K single points) may run at once (4: one
#: workstation; raise it on a cluster), and how many flagged configurations of all walkers are labelled per
#: iteration (``max_batch``: triggers first, then farthest-point selection, ``science.walkers.select_batch``).
ACTIVE_LEARNING_DEFAULTS = {
    'max_iterations': 8,
    'max_new_configurations': 20,
    'restart_from': 'stop',
    'reseed': True,
    'outliers': {'min_distance': None, 'max_energy_deviation': 1.0, 'max_force': 20.0},
    'max_failed_labels': 10,
    'max_concurrent_labels': 4,
    'max_batch': 4,
}

#: Order in which candidates of one exploration are added when ``max_new_configurations`` leaves
#: room for fewer than were accepted: the configuration that triggered the stop (novel or failing)
#: first, then the last configuration that passed the novelty check before a guard stop.
CANDIDATE_PRIORITY = ('trigger', 'previous')


def normalise_active_learning(parameters: dict) -> dict:
    """Merge with :data:`ACTIVE_LEARNING_DEFAULTS` (``outliers`` merged key by key) and check.

    ``outliers.min_distance`` stays ``None``, a float (Å) or becomes ``{'A-B': Å}``
    (:func:`~aiida_mlfail.science.pair_distances.normalise_pair_distances`).

    :raises ValueError: naming the offending key or value (unknown key, non-positive limit or bound, a
        ``min_distance`` key that is not a species pair, ``restart_from`` not 'stop' / 'start').
    """
    given = parameters.get('outliers', {})
    if not isinstance(given, dict):
        raise ValueError(f'outliers must be a dict of bounds, got {given!r}')
    known = ACTIVE_LEARNING_DEFAULTS['outliers']
    unknown = sorted(set(parameters) - set(ACTIVE_LEARNING_DEFAULTS))
    unknown += sorted(f'outliers.{k}' for k in set(given) - set(known))
    if unknown:
        raise ValueError(f'unknown active-learning parameter(s) {unknown}; allowed: '
                         f'{sorted(ACTIVE_LEARNING_DEFAULTS)} and outliers {sorted(known)}')
    outliers = {**known, **given}
    merged = {**ACTIVE_LEARNING_DEFAULTS, **parameters, 'outliers': outliers}
    for key in ('max_iterations', 'max_new_configurations', 'max_concurrent_labels', 'max_batch'):
        merged[key] = checks.integer(merged[key], key, ge=1)
    merged['max_failed_labels'] = checks.integer(merged['max_failed_labels'], 'max_failed_labels', ge=0)
    checks.choice(merged['restart_from'], 'restart_from', ('stop', 'start'))
    outliers['min_distance'] = normalise_pair_distances(outliers['min_distance'], 'outliers.min_distance')
    for key, unit in (('max_energy_deviation', 'eV/atom'), ('max_force', 'eV/Å')):
        outliers[key] = checks.number(outliers[key], f'outliers.{key}', gt=0, unit=unit)
    merged['reseed'] = checks.boolean(merged['reseed'], 'reseed')
    return merged


# Exit reasons of the loop.
#: No exploration flagged a configuration.
CONVERGED = 'converged'
#: ``max_iterations`` reached.
MAX_ITERATIONS = 'max_iterations'
#: ``max_new_configurations`` added.
MAX_NEW = 'max_new_configurations'
#: ``max_failed_labels`` labels failed.
FAILED_LABELS = 'max_failed_labels'


def loop_outcome(converged: bool, iterations: int, added: int, parameters: dict, failed_labels: int = 0) -> str:
    """Why the loop ended: :data:`FAILED_LABELS` (the ledger holds more than ``max_failed_labels``
    configurations that could not be labelled or were rejected), :data:`CONVERGED` (an exploration ran
    ``max_steps`` without a flag), :data:`MAX_NEW` (``added >= max_new_configurations``) or
    :data:`MAX_ITERATIONS`, checked in this order.

    :raises ValueError: if none of these holds (the loop must not have ended).
    """
    if failed_labels > parameters['max_failed_labels']:
        return FAILED_LABELS
    if converged:
        return CONVERGED
    if added >= parameters['max_new_configurations']:
        return MAX_NEW
    if iterations >= parameters['max_iterations']:
        return MAX_ITERATIONS
    raise ValueError(f'the loop ended without a reason: {iterations} iterations, {added} added, not converged')


def candidate_rank(candidate) -> int:
    """Position of a candidate's kind in :data:`CANDIDATE_PRIORITY` (unknown names last); the candidate is a kind
    ('trigger') or a walker's key ('w1_trigger', :func:`~aiida_mlfail.science.walkers.candidate_key`)."""
    try:
        _, kind = walkers.parse_candidate(candidate)
    except ValueError:
        return len(CANDIDATE_PRIORITY)
    return CANDIDATE_PRIORITY.index(kind) if kind in CANDIDATE_PRIORITY else len(CANDIDATE_PRIORITY)


def choose_additions(candidates: list, accepted: list[bool], room: int) -> list[int]:
    """Indices of the accepted candidates to add, at most ``room``, the trigger first.

    :param candidates: candidate names (``'trigger'``, ``'previous'`` ...), in set order.
    :param accepted: the outlier verdict of each candidate.
    :param room: how many configurations ``max_new_configurations`` still allows (>= 0).
    :returns: indices into ``candidates``, in :data:`CANDIDATE_PRIORITY` order (then set order).
    """
    order = sorted((i for i, ok in enumerate(accepted) if ok), key=lambda i: (candidate_rank(candidates[i]), i))
    return order[:max(0, int(room))]


def next_start(stop_reason: str, restart_from: str, trigger_accepted: bool) -> str:
    """Where the next exploration starts: ``'stop'`` (the flagged configuration) or ``'start'``.

    Only a novelty stop whose trigger passed the outlier check (and was therefore added to the
    training set) is a start point: a rejected or unlabelled trigger would be flagged again at step 0.

    :param stop_reason: the exploration's stop reason (``novel``, a guard reason, ``max_steps`` ...).
    :param restart_from: the loop parameter (``'stop'`` or ``'start'``).
    :param trigger_accepted: whether the trigger was labelled and accepted by the outlier check.
    """
    return 'stop' if (restart_from == 'stop' and stop_reason == 'novel' and trigger_accepted) else 'start'


def same_configuration(first, second, tolerance: float = 1e-3) -> bool:
    """Whether two ``ase.Atoms`` are the same configuration: same species in the same order, cells
    within ``tolerance`` (Å) and every atom within ``tolerance`` (Å, minimum image, ``ase.geometry.find_mic``).

    Used so that a configuration flagged a second time is not labelled again.
    """
    from ase.geometry import find_mic  # noqa: PLC0415

    if len(first) != len(second) or list(first.numbers) != list(second.numbers):
        return False
    if not np.allclose(first.cell.array, second.cell.array, rtol=0, atol=tolerance):
        return False
    vectors, _ = find_mic(second.positions - first.positions, first.cell, first.pbc)
    return bool(np.linalg.norm(vectors, axis=1).max(initial=0.0) <= tolerance)


def minimum_distance(atoms) -> float:
    """Smallest interatomic distance (Å) under the minimum-image convention (``ase`` ``get_all_distances``)."""
    if len(atoms) < 2:
        return float('inf')
    distances = atoms.get_all_distances(mic=True)
    return float(distances[np.triu_indices(len(atoms), k=1)].min())


def outlier_distances(min_distance, training_configurations, species=()) -> float | dict[str, float]:
    """The outlier screen's distance thresholds: a number (Å, every pair) as given, else ``{'A-B': Å}``.

    ``None`` and the pairs a mapping does not name get
    :data:`~aiida_mlfail.science.pair_distances.OUTLIER_DISTANCE_FRACTION` (0.5) x the shortest distance
    of the pair in ``training_configurations``, or x the covalent-radii estimate for a pair they lack
    (:func:`~aiida_mlfail.science.pair_distances.resolve_pair_distances`). E.g. 1400 K classical NaCl
    frames give Na-Na 1.48 Å, Na-Cl 1.04 Å, Cl-Cl 1.62 Å.

    :param min_distance: ``outliers.min_distance`` (``None``, float Å or ``{'A-B': Å}``).
    :param training_configurations: ``ase.Atoms`` of the current training set.
    :param species: further species to cover (e.g. those of the labelled candidates).
    :raises ValueError: naming the value, for a mapping naming a species outside the data and ``species``.
    """
    min_distance = normalise_pair_distances(min_distance, 'outliers.min_distance')
    if isinstance(min_distance, float):
        return min_distance
    return resolve_pair_distances(min_distance, list(species), training_configurations,
                                  fraction=OUTLIER_DISTANCE_FRACTION, what='outliers.min_distance')


def outlier_check(configurations, bounds: dict, reference_energy_per_atom: float) -> list[dict]:
    """The outlier verdict of each labelled configuration.

    :param configurations: ``ase.Atoms`` with reference ``info['energy']`` (eV) and ``arrays['forces']`` (eV/Å).
    :param bounds: ``min_distance`` (Å for every pair, or ``{'A-B': Å}`` per species pair, e.g. from
        :func:`outlier_distances`; a pair without an entry is not checked), ``max_energy_deviation``
        (eV/atom), ``max_force`` (eV/Å).
    :param reference_energy_per_atom: eV/atom, the training set's mean.
    :returns: one dict per configuration: ``accepted`` (bool), ``reasons`` (list of str, empty when
        accepted; a per-pair distance reason names the pair, its distance and its threshold),
        ``min_distance`` (Å, over all pairs), ``pair_min_distances`` (``{'A-B': Å}``, per-pair bounds
        only), ``energy_per_atom`` (eV), ``max_force`` (eV/Å).
    :raises ValueError: for a ``min_distance`` that is neither a number nor a mapping.
    """
    limits = bounds['min_distance']
    if not isinstance(limits, (dict, int, float)) or isinstance(limits, bool):
        raise ValueError(f'outliers.min_distance must be resolved to a number or a per-pair mapping, got {limits!r}')
    verdicts = []
    for atoms in configurations:
        d_min = minimum_distance(atoms)
        energy = float(atoms.info['energy']) / len(atoms)
        f_max = float(np.linalg.norm(atoms.arrays['forces'], axis=1).max())
        reasons = []
        pairs = None
        if isinstance(limits, dict):
            pairs = {'-'.join(pair): d for pair, d in pair_min_distances([atoms]).items()}
            for pair, distance in pairs.items():
                if pair in limits and not distance >= limits[pair]:
                    reasons.append(f'{pair} distance {distance:.3f} Å < {limits[pair]:.3f} Å (the {pair} outlier '
                                   'distance)')
        elif not d_min >= limits:
            reasons.append(f"minimum distance {d_min:.3f} Å < {bounds['min_distance']} Å")
        if not abs(energy - reference_energy_per_atom) <= bounds['max_energy_deviation']:
            reasons.append(f'energy {energy:.4f} eV/atom is {energy - reference_energy_per_atom:+.4f} eV/atom from the '
                           f"training mean (bound ±{bounds['max_energy_deviation']})")
        if not f_max <= bounds['max_force']:
            reasons.append(f"largest force {f_max:.3g} eV/Å > {bounds['max_force']} eV/Å")
        verdict = {'accepted': not reasons, 'reasons': reasons, 'min_distance': d_min,
                   'energy_per_atom': energy, 'max_force': f_max}
        if pairs is not None:
            verdict['pair_min_distances'] = pairs
        verdicts.append(verdict)
    return verdicts


#: Columns of the iteration table (name, header, format).
TABLE_COLUMNS = (
    ('iteration', 'it', '{}'),
    ('training_set_size', 'train', '{}'),
    ('validation_energy_rmse', 'E RMSE (eV/at)', '{:.4f}'),
    ('validation_forces_rmse', 'F RMSE (eV/Å)', '{:.3f}'),
    ('stop_reason', 'stop', '{}'),
    ('steps', 'steps', '{}'),
    ('similarity', 'similarity', '{:.6f}'),
    ('flagged_energy_error', '|ΔE| flagged (eV/at)', '{:.4f}'),
    ('flagged_forces_rmse', 'F RMSE flagged (eV/Å)', '{:.3f}'),
    ('added', 'added', '{}'),
    ('added_from', 'added from (walker_kind)', '{}'),
    ('rejected', 'rejected', '{}'),
    ('label_failures', 'not labelled', '{}'),
)


def format_table(rows: list[dict]) -> str:
    """The iteration table as fixed-width text (missing values as '-')."""
    cells = [[header for _, header, _ in TABLE_COLUMNS]]
    for row in rows:
        cells.append([fmt.format(row[key]) if row.get(key) is not None else '-' for key, _, fmt in TABLE_COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(TABLE_COLUMNS))]
    return '\n'.join('  '.join(c.rjust(w) for c, w in zip(line, widths)) for line in cells)


def convergence_png(rows: list[dict], title: str = 'active learning') -> bytes:
    """PNG: validation RMSE (energy, forces) and MD steps before the stop (of all walkers) vs iteration, with the stop
    reasons."""
    from aiida_mlfail.science.plots import figure_png, plt  # noqa: PLC0415

    it = [r['iteration'] for r in rows]
    fig, (ax_rmse, ax_steps) = plt.subplots(1, 2, figsize=(9, 3.6))
    energy = [r.get('validation_energy_rmse') for r in rows]
    forces = [r.get('validation_forces_rmse') for r in rows]
    ax_rmse.plot(it, [np.nan if v is None else 1000 * v for v in energy], 'o-', label='energy (meV/atom)')
    ax_rmse.plot(it, [np.nan if v is None else 1000 * v for v in forces], 's-', label='forces (meV/Å)')
    ax_rmse.set_xlabel('iteration'), ax_rmse.set_ylabel('validation RMSE'), ax_rmse.legend(fontsize=8)
    steps = [r.get('steps') or 0 for r in rows]
    def colour(row):  # the walkers' stops joined by ' / ' (science.walkers): all no flag, any guard, else novel
        reasons = set(str(row.get('stop_reason', '')).split(' / '))
        return 'tab:green' if reasons == {'max_steps'} else 'tab:red' if reasons - {'max_steps', 'novel'} else \
            'tab:orange'

    colours = [colour(r) for r in rows]
    ax_steps.bar(it, steps, color=colours)
    for x, y, r in zip(it, steps, rows):
        ax_steps.annotate(str(r.get('stop_reason', '')), (x, y), ha='center', va='bottom', fontsize=7, rotation=90)
    ax_steps.set_xlabel('iteration'), ax_steps.set_ylabel('MD steps before the stop')
    ax_steps.set_title('green: no flag, orange: novel, red: guard', fontsize=8)
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    for ax in (ax_rmse, ax_steps):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    return figure_png(fig, dpi=100)
