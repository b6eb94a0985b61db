"""Labels from a reference job onto configurations: :func:`with_labels` and the calcfunction :func:`attach_labels`."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mlfail.data.training_set import TrainingSetData

#: Labels (and label-like arrays) a configuration loses when a reference labels it anew.
LABEL_KEYS = ('energy', 'virial', 'atomic_energies', 'forces', 'velocities', 'stress', 'free_energy')


def with_labels(atoms, frame, reference: str, index: int):
    """``atoms`` (metadata kept) carrying the energy (eV), virial (eV) and forces (eV/Å) of ``frame``.

    :param frame: the same configuration as labelled by a reference job.
    :param reference: name stored as ``label_reference``.
    :raises ValueError: if ``frame`` is not ``atoms`` (atom count, or positions differing by more
        than 1e-6 in fractional coordinates modulo lattice vectors), naming configuration ``index``.
    """
    same = len(frame) == len(atoms)
    if same:
        delta = np.linalg.solve(atoms.cell.array.T, (frame.positions - atoms.positions).T).T
        same = np.allclose(delta, np.round(delta), atol=1e-6)
    if not same:
        raise ValueError(f'labelled frame {index} does not match configuration {index} (positions differ)')
    for key in LABEL_KEYS:
        atoms.info.pop(key, None)
        atoms.arrays.pop(key, None)
    atoms.info.update({'energy': frame.info['energy'], 'virial': frame.info['virial'], 'label_reference': reference})
    atoms.arrays['forces'] = frame.arrays['forces']
    return atoms


@calcfunction
def attach_labels(configurations: TrainingSetData, labelled: TrainingSetData):
    """The ``configurations`` carrying the energy (eV), forces (eV/Å) and virial (eV) of a single-point job.

    :returns: ``training_set`` (the labelled configurations) and ``excluded`` (Dict
        ``{'excluded': [...]}``: those without a labelled frame, with index, candidate and reason).

    ``labelled`` holds the frames of :func:`~aiida_mlfail.calculations.functions.lammps_inputs.prepare_single_points`
    (``md_step`` = index of the
    configuration). Metadata of the configurations (``candidate``, ``md_step``, ``similarity`` ...)
    is kept; the reference's name goes to ``label_reference``; the set's ``reference`` is ``labelled``'s
    (the parser records the potential's, see
    :func:`~aiida_mlfail.calculations.functions.lammps_inputs.prepare_single_points`).

    :raises ValueError: if no configuration was labelled, or a frame's positions differ
        from its configuration's (modulo lattice vectors, 1e-6 in fractional coordinates).
    """
    originals = configurations.get_atoms()
    frames = {int(frame.info['md_step']): frame for frame in labelled.get_atoms()}
    out, excluded = [], []
    for index, atoms in enumerate(originals):
        frame = frames.get(index)
        if frame is None:
            excluded.append({'index': index, 'candidate': atoms.info.get('candidate'),
                             'reason': 'no labelled frame came back from the single-point job'})
            continue
        out.append(with_labels(atoms, frame, frame.info.get('reference', ''), index))
    if not out:
        raise ValueError(f'none of the {len(originals)} configurations was labelled')
    return {'training_set': TrainingSetData.from_atoms(out, reference=labelled.reference),
            'excluded': orm.Dict({'excluded': excluded})}
