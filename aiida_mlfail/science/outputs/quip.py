"""Raw ``quip`` standard output (``AT``-prefixed extended XYZ), read from plain text, AiiDA-free."""

from __future__ import annotations

import io

import numpy as np

from aiida_mlfail.science import extxyz

__all__ = ['parse_quip_output']


def parse_quip_output(text: str) -> list:
    """Configurations of a ``quip`` standard output (the ``AT``-prefixed extended XYZ lines).

    ``force`` is renamed ``forces``; energy (eV) and virial (eV) stay in ``info``.

    :returns: list of ``ase.Atoms``; empty if there is no ``AT`` line.
    """
    lines = [line[3:] for line in text.splitlines() if line.startswith('AT ')]
    if not lines:
        return []
    configurations = extxyz.read_configurations(io.StringIO('\n'.join(lines) + '\n'))
    for atoms in configurations:
        if 'force' in atoms.arrays:
            atoms.arrays['forces'] = np.array(atoms.arrays.pop('force'))
    return configurations
