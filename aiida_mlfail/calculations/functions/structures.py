"""calcfunctions and checks of start structures: building them from a spec, collecting structures into a set."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import checks, structures


@calcfunction
def build_structure(spec: orm.Dict) -> orm.StructureData:
    """Start structure from a builder spec: ``{'system': 'nacl', 'n_ions': 64, 'volume'|'density': ..., 'seed': 0}``
    or ``{'system': 'argon', 'n_cells': 3, 'box': 17.042}`` (see ``science.structures``)."""
    spec = dict(spec.get_dict())
    system = spec.pop('system')
    atoms = structures.molten_nacl(**spec) if system == 'nacl' else structures.argon(**spec)
    return orm.StructureData(ase=atoms)


def check_structure_spec(spec: dict) -> str | None:
    """Error message for a structure builder spec that cannot build, else ``None``."""
    spec = dict(spec)
    system = spec.pop('system', None)
    if system not in ('nacl', 'argon'):
        return f"structure spec: system must be 'nacl' or 'argon', got {system!r}"
    allowed = ('n_ions', 'volume', 'density', 'seed') if system == 'nacl' else ('n_cells', 'box')
    try:
        checks.known_keys(spec, allowed, f'structure spec ({system})')
        atoms = structures.molten_nacl(**spec) if system == 'nacl' else structures.argon(**spec)
    except ValueError as exc:
        return f'structure spec {spec!r}: {exc}'
    return None if len(atoms) else 'structure spec builds no atoms'


@calcfunction
def collect_structures(**structures) -> TrainingSetData:
    """An unlabelled ``TrainingSetData`` of the given ``StructureData`` (sorted by keyword).

    Each configuration keeps the structure's attributes ``md_step``, ``similarity`` and
    ``stop_reason`` when present, its keyword as ``candidate`` and its ``structure_uuid``.
    """
    configurations = []
    for key in sorted(structures):
        node = structures[key]
        atoms = node.get_ase()
        atoms.info = {'candidate': key, 'structure_uuid': node.uuid}
        for name in ('md_step', 'similarity', 'stop_reason'):
            value = node.base.attributes.get(name, None)
            if value is not None:
                atoms.info[name] = value
        configurations.append(atoms)
    return TrainingSetData.from_atoms(configurations)
