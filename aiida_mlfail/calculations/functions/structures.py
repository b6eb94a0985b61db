"""calcfunctions and checks of start structures: building them from a spec, collecting structures into a set."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import structures


@calcfunction
def build_structure(spec: orm.Dict) -> orm.StructureData:
    """Start structure from a builder spec: ``{'system': 'nacl', 'n_ions': 64, 'volume'|'density': ..., 'seed': 0}``,
    ``{'system': 'argon', 'n_cells': 3, 'box': 17.042}`` or ``{'system': 'liquid', 'composition': {'Cu': 32},
    'density': 7.5, 'seed': 0}`` (see ``science.structures.from_spec``). A ``liquid`` is a random packing
    with a minimum distance (``science.structures.random_liquid``); the sampling's equilibration at each state
    point melts it."""
    return orm.StructureData(ase=structures.from_spec(spec.get_dict()))


def check_structure_spec(spec: dict) -> str | None:
    """Error message for a structure builder spec that cannot build, else ``None``."""
    if spec.get('system') not in structures.PRESETS:
        return f"structure spec: system must be one of {sorted(structures.PRESETS)}, got {spec.get('system')!r}"
    try:
        atoms = structures.from_spec(spec)
    except ValueError as exc:
        return f"structure spec {({k: v for k, v in spec.items() if k != 'system'})!r}: {exc}"
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
