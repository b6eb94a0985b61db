"""calcfunctions on training sets: merging (one reference only), selecting, splitting train / validation."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_mlfail.data.training_set import TrainingSetData, check_same_reference
from aiida_mlfail.science import selection


@calcfunction
def merge_training_sets(**training_sets) -> TrainingSetData:
    """One training set of all configurations of the inputs, in keyword order (sorted keys), with their
    common reference.

    Mixed references are refused by the port validator (``_merge_validator``, i.e.
    :func:`~aiida_mlfail.data.training_set.check_same_reference`) before anything is stored; the body
    checks again.

    :raises ValueError: if the sets were labelled by different references (or two or more are of unknown
        reference), naming each with its label and id.
    """
    reference = check_same_reference(**{key: training_sets[key] for key in sorted(training_sets)})
    configurations = []
    for key in sorted(training_sets):
        configurations += training_sets[key].get_atoms()
    return TrainingSetData.from_atoms(configurations, reference=reference)


def _merge_validator(value, ctx=None):
    """Port validator of ``merge_training_sets``: refuse mixed references before the process is stored."""
    sets = {key: node for key, node in value.items() if isinstance(node, TrainingSetData)}
    try:
        check_same_reference(**{key: sets[key] for key in sorted(sets)})
    except ValueError as exc:
        return str(exc)
    return None


merge_training_sets.process_class.spec().inputs.validator = _merge_validator


@calcfunction
def select_configurations(pool: TrainingSetData, parameters: orm.Dict) -> TrainingSetData:
    """``parameters['n']`` configurations of ``pool`` chosen by ``parameters['method']`` (seeded), see
    ``science.selection.select``; the pool index of each is kept as ``pool_index``."""
    p = selection.normalise_selection(parameters.get_dict())
    configurations = pool.get_atoms()
    chosen = selection.select(configurations, p['n'], p['method'], p['seed'])
    picked = []
    for index in chosen:
        atoms = configurations[index]
        atoms.info['pool_index'] = index
        picked.append(atoms)
    return TrainingSetData.from_atoms(picked, reference=pool.reference)


@calcfunction
def split_training_set(training_set: TrainingSetData, parameters: orm.Dict):
    """Random train / validation split (``train_fraction``, ``seed``); returns ``train`` and ``validation``
    (both keep the set's reference)."""
    p = selection.normalise_split(parameters.get_dict())
    configurations = training_set.get_atoms()
    train, validation = selection.split(len(configurations), p['train_fraction'], p['seed'])
    reference = training_set.reference
    return {
        'train': TrainingSetData.from_atoms([configurations[i] for i in train], reference=reference),
        'validation': TrainingSetData.from_atoms([configurations[i] for i in validation], reference=reference),
    }
