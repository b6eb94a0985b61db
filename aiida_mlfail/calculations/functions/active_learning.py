"""The active learner's calcfunctions: the batch of flagged configurations to label, outlier screening of
labelled configurations against the GAP, the iteration table and ledger, the first configurations of a set
(``ActiveLearningWorkChain``)."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import active_learning as al
from aiida_mlfail.science import walkers

from .metrics import compare_labels


@calcfunction
def screen_configurations(labelled: TrainingSetData, predictions: TrainingSetData, training_set: TrainingSetData,
                          parameters: orm.Dict):
    """Outlier check of labelled configurations and the GAP-vs-reference error on them.

    The distance thresholds are :func:`~aiida_mlfail.science.active_learning.outlier_distances` of
    ``outliers.min_distance`` and the current ``training_set`` (per species pair unless a number is given).

    :returns: ``screening`` (Dict: ``candidates``, per candidate the verdict of
        :func:`~aiida_mlfail.science.active_learning.outlier_check` plus ``energy_error`` (eV/atom)
        and ``forces_rmse`` (eV/Å) of the GAP, ``structure_uuid``; ``training_energy_per_atom`` (eV);
        ``outlier_distances``, the thresholds used (``{'A-B': Å}`` or one number, Å), and
        ``outlier_distances_source``) and, when any is accepted,
        ``accepted`` (TrainingSetData of the accepted configurations, the trigger first, see
        :func:`~aiida_mlfail.science.active_learning.choose_additions`).
    """
    p = al.normalise_active_learning(parameters.get_dict())
    configurations, predicted = labelled.get_atoms(), predictions.get_atoms()
    training = training_set.get_atoms()
    reference = float(np.mean([a.info['energy'] / len(a) for a in training]))
    limits = al.outlier_distances(p['outliers']['min_distance'], training,
                                  sorted({s for a in configurations for s in a.get_chemical_symbols()}))
    verdicts = al.outlier_check(configurations, {**p['outliers'], 'min_distance': limits}, reference)
    for verdict, atoms, gap in zip(verdicts, configurations, predicted):
        metrics, _ = compare_labels([atoms], [gap])
        verdict.update(candidate=atoms.info.get('candidate'), md_step=atoms.info.get('md_step'),
                       similarity=atoms.info.get('similarity'), structure_uuid=atoms.info.get('structure_uuid'),
                       energy_error=abs(gap.info['energy'] - atoms.info['energy']) / len(atoms),
                       forces_rmse=metrics['forces']['rmse'])
    outputs = {'screening': orm.Dict({'candidates': verdicts, 'training_energy_per_atom': reference,
                                      'outlier_distances': limits,
                                      'outlier_distances_source': 'given' if isinstance(limits, float) else
                                      f'{al.OUTLIER_DISTANCE_FRACTION:g} x the shortest distance of each pair in '
                                      f'the {len(training)} training configurations (covalent radii for a pair '
                                      'they lack), pairs given in outliers.min_distance as given'})}
    order = al.choose_additions([v['candidate'] for v in verdicts], [v['accepted'] for v in verdicts], len(verdicts))
    if order:
        outputs['accepted'] = TrainingSetData.from_atoms([configurations[i] for i in order],
                                                         reference=labelled.reference)
    return outputs


@calcfunction
def active_learning_summary(rows: orm.List, outcome: orm.Str, ledger: orm.List):
    """The iteration table (``summary`` Dict: ``iterations``, ``outcome``, ``table`` text), the ledger of
    configurations that could not be labelled or were rejected (``failed_labels`` Dict: ``failed``, a list
    of ``{iteration, candidate, md_step, structure_uuid, stage, reason}``, and ``count``) and the
    convergence plot."""
    data = rows.get_list()
    png = al.convergence_png(data, title=f'active learning: {outcome.value}')
    failed = ledger.get_list()
    return {'summary': orm.Dict({'iterations': data, 'outcome': outcome.value, 'table': al.format_table(data)}),
            'failed_labels': orm.Dict({'failed': failed, 'count': len(failed)}),
            'convergence_plot': orm.SinglefileData(io.BytesIO(png), filename='active_learning.png')}


@calcfunction
def first_configurations(training_set: TrainingSetData, n: orm.Int) -> TrainingSetData:
    """The first ``n`` configurations of a set (to respect ``max_new_configurations``; the screening puts
    the trigger first)."""
    return TrainingSetData.from_atoms(training_set.get_atoms()[: n.value], reference=training_set.reference)


@calcfunction
def choose_batch(settings: orm.Dict, **structures) -> orm.Dict:
    """The batch of flagged configurations to label (:func:`~aiida_mlfail.science.walkers.select_batch`).

    :param settings: ``max_batch`` (int >= 0), ``soap`` (``science.soap`` parameters), ``alpha``, ``threshold``
        (REMatch), ``distance_atoms`` (default
        :data:`~aiida_mlfail.science.walkers.DAEMON_DISTANCE_ATOMS`): the REMatch distances between the
        candidates are computed here only when candidates x atoms is at most this; otherwise only the distance
        to the training set ranks them.
    :param structures: the candidates by key (``w<walker>_<kind>``), ``StructureData`` with the explorer's
        ``similarity`` attribute (most similar training configuration; ``None`` when not computed).
    :returns: Dict ``chosen`` (keys in the order chosen), ``not_chosen``, ``to_training`` ({key: REMatch
        distance or None}), ``between`` ({key: {key: distance}} or None) and ``distances`` ('rematch' or
        'explorer similarities only').
    """
    p = settings.get_dict()
    keys = sorted(structures)
    similarity = [structures[k].base.attributes.get('similarity', None) for k in keys]
    to_training = [None if s is None else float(walkers.kernel_distance(s)) for s in similarity]
    n_atoms = sum(len(structures[k].sites) for k in keys)
    between = None
    if n_atoms <= int(p.get('distance_atoms', walkers.DAEMON_DISTANCE_ATOMS)):
        between = walkers.candidate_distances([structures[k].get_ase() for k in keys], p.get('soap') or {},
                                              alpha=float(p.get('alpha', 0.1)),
                                              threshold=float(p.get('threshold', 1e-6)))
    order = walkers.select_batch(keys, to_training, between, int(p['max_batch']))
    chosen = [keys[i] for i in order]
    return orm.Dict({'chosen': chosen, 'not_chosen': [k for k in keys if k not in chosen],
                     'to_training': dict(zip(keys, to_training)),
                     'between': None if between is None else
                     {a: {b: float(between[i, j]) for j, b in enumerate(keys)} for i, a in enumerate(keys)},
                     'distances': 'rematch' if between is not None else 'explorer similarities only'})
