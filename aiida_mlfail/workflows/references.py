"""Submit-time reference checks of the WorkChains: which reference a labeller would use, and whether the
data of an active learner and its labeller share it (``science.references`` for the rules)."""

from __future__ import annotations

from aiida import orm

from aiida_mlfail.science import references as refs
from aiida_mlfail.science.potentials import ReferencePotential


def label_reference(label_inputs) -> dict:
    """The reference of a :class:`~aiida_mlfail.workflows.label.LabelWorkChain` input namespace.

    :param label_inputs: mapping with ``lammps`` (``potential``: Dict of ``ReferencePotential``, and the
        ``potential_files`` it names, whose contents enter the reference id) or
        ``cp2k`` (``code``; ``protocol``: Str, default ``workflows.cp2k.DEFAULT_PROTOCOL``;
        ``overrides``: Dict, optional), as ``LabelWorkChain`` takes them.
    :returns: ``science.references.lammps_reference`` of the potential or ``cp2k_reference`` of the
        protocol and overrides.
    :raises ValueError: when neither (or both) references are given, or the potential / protocol is invalid,
        or the potential files do not match the potential's ``files``.
    """
    lammps = label_inputs.get('lammps') or {}
    cp2k = label_inputs.get('cp2k') or {}
    has_lammps, has_cp2k = lammps.get('potential') is not None, 'code' in cp2k
    if has_lammps == has_cp2k:
        raise ValueError('give exactly one reference, `lammps.potential` or `cp2k.code`')
    if has_lammps:
        from aiida_mlfail.calculations.functions.lammps_inputs import file_digests

        potential = lammps['potential'].get_dict()
        digests = file_digests(ReferencePotential.from_dict(potential), dict(lammps.get('potential_files') or {}))
        return refs.lammps_reference(potential, digests)
    from aiida_mlfail.workflows.cp2k import DEFAULT_PROTOCOL

    protocol = cp2k.get('protocol', orm.Str(DEFAULT_PROTOCOL)).value
    overrides = cp2k['overrides'].get_dict() if cp2k.get('overrides') is not None else None
    return refs.cp2k_reference(protocol, overrides)


def active_learning_reference_error(value) -> str | None:
    """Error message if an active learner's inputs would mix references, else None.

    Checks, from the ``ActiveLearningWorkChain`` inputs ``value``: ``training_set`` vs ``validation_set``;
    the labeller (``label``, :func:`label_reference`) vs the labelled initial data (``training_set``, or
    the ``pool`` that is split into the initial data). A ``sampling`` source needs no check: its frames
    are labelled by the learner's own labeller. Inputs missing or invalid for other reasons (no or two
    labellers, unknown protocol, a potential that does not describe the species) are left to the other
    checks (None).
    """
    if 'training_set' in value and 'validation_set' in value:
        message = refs.mixed_reference_message({'training_set': value['training_set'].reference,
                                                'validation_set': value['validation_set'].reference})
        if message:
            return f'validation_set: {message}'
        initial = {'training_set': value['training_set'].reference}
    elif 'pool' in value:
        initial = {'pool': value['pool'].reference}
    else:
        return None
    try:
        labeller = label_reference(value.get('label') or {})
        data = value.get('training_set') or value.get('pool')
        if labeller['kind'] == refs.LAMMPS:  # a species error is named by its own check
            ReferencePotential.from_dict(value['label']['lammps']['potential'].get_dict()).check_species(data.species)
    except ValueError:
        return None
    message = refs.mixed_reference_message({'label': labeller, **initial})
    return f'label: the labeller must use the reference of the initial data: {message}' if message else None
