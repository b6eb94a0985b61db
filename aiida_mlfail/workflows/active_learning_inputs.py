"""Submit-time checks of the ``ActiveLearningWorkChain`` inputs as a whole (the namespace validator): where the
initial data come from and whether data, structure and labeller fit together. The checks of single ports
stay with the ports; the reference rules are :mod:`aiida_mlfail.workflows.references`."""

from __future__ import annotations

from aiida import orm

from aiida_mlfail.science.walkers import normalise_walkers
from aiida_mlfail.workflows.references import active_learning_reference_error

#: The inputs that give the initial data; exactly one of them.
INITIAL_DATA = ('training_set', 'sampling', 'pool')


def validate_inputs(value, ctx=None):
    """Port validator of the ``ActiveLearningWorkChain`` namespace: initial data from exactly one source
    (:data:`INITIAL_DATA`), ``validation_set`` only with ``training_set``, one reference for all data and the
    labeller, every walker's ``structure`` naming one of ``walker_structures``, the species of
    ``explore.job.structure`` and of the walkers' structures covered by the initial data, the labeller and the
    per-pair outlier distances.

    :returns: the message naming the offending input, or ``None`` when the inputs are consistent.
    """
    given = [key for key in INITIAL_DATA if key in value and (key != 'sampling' or bool(value['sampling']))]
    if len(given) != 1:
        return ('give the initial data from exactly one source: `training_set` (+ `validation_set`), a `sampling` '
                f'spec (labelled by the learner\'s labeller) or a labelled `pool` (e.g. a CP2K AIMD trajectory); '
                f'got {given or "none"}')
    has_set = given == ['training_set']
    if has_set and 'validation_set' not in value:
        return '`validation_set` is required with `training_set` (each refit is validated on it)'
    if not has_set and 'validation_set' in value:
        return f'`validation_set` goes with `training_set` only; with `{given[0]}` the split makes it'
    if 'selection' in value and has_set:
        return '`selection` applies to a `sampling` or `pool` source, not to `training_set`'
    if message := active_learning_reference_error(value):  # one reference for all data and the labeller
        return message
    named = dict(value.get('walker_structures') or {})
    if value.get('walkers') is not None:
        try:
            normalise_walkers(value['walkers'].get_list(), named)
        except ValueError as exc:
            return f'walkers: {exc}'
    structure = (value.get('explore') or {}).get('job', {}).get('structure')
    if structure is None:
        return None
    symbols = set(structure.get_ase().get_chemical_symbols())
    symbols.update(s for node in named.values() for s in node.get_symbols_set())
    parameters = value.get('parameters')
    limits = ((parameters.get_dict().get('outliers') or {}).get('min_distance') if parameters is not None else None)
    if isinstance(limits, dict):  # per-pair outlier distances of the species explored (keys checked by the port)
        outside = sorted(str(key) for key in limits
                         if not set(key.split('-') if isinstance(key, str) else key) <= symbols)
        if outside:
            return (f'parameters.outliers.min_distance names the pair(s) {outside}, but explore.job.structure has '
                    f'the species {sorted(symbols)} only')
    data = value['training_set'] if has_set else value.get('pool')
    if data is not None:
        missing = sorted(symbols - set(data.species))
        if missing:
            where = 'explore.job.structure and walker_structures have' if named else 'explore.job.structure has'
            return f'{where} species {missing} that the initial data lack'
    # exactly one labeller, a known CP2K protocol, a valid classical potential: LabelWorkChain's validator
    label = value.get('label', {})
    if 'code' in label.get('cp2k', {}):
        from aiida_mlfail.workflows.cp2k import DEFAULT_PROTOCOL, check_symbols

        message = check_symbols(symbols, label['cp2k'].get('protocol', orm.Str(DEFAULT_PROTOCOL)).value)
        return f'label.cp2k: {message}' if message else None
    if 'potential' not in label.get('lammps', {}):
        return None
    reference = label['lammps']['potential']
    if reference is not None:
        from aiida_mlfail.science.potentials import ReferencePotential

        try:
            ReferencePotential.from_dict(reference.get_dict()).check_species(symbols)
        except ValueError as exc:
            return f'label.lammps.potential: {exc}'
    return None
