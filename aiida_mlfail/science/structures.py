"""Structure builders for the systems of DOMAIN.md section 2 (ASE ``Atoms``, Å)."""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms
from ase.build import bulk

from aiida_mlfail.science import checks
from aiida_mlfail.science.potentials import MASSES

#: Avogadro's number, 1/mol (CODATA 2018, exact).
AVOGADRO = 6.02214076e23

#: Most atoms the builders make (a spec is built at submit time to check it: keep that fast).
MAX_BUILT_ATOMS = 100_000

#: Rock-salt lattice constant of NaCl at room temperature (Å), only the starting lattice before scaling.
NACL_LATTICE = 5.64


def density_to_volume(symbols, density: float) -> float:
    """Volume (Å^3) of a cell holding ``symbols`` at mass ``density`` (g/cm^3).

    :raises ValueError: if ``density`` is not positive.
    """
    if not density > 0:
        raise ValueError(f'density must be positive, got {density!r} g/cm^3')
    mass_g = sum(MASSES[s] for s in symbols) / AVOGADRO
    return mass_g / density * 1.0e24


def volume_to_density(symbols, volume: float) -> float:
    """Mass density (g/cm^3) of ``symbols`` in ``volume`` Å^3."""
    mass_g = sum(MASSES[s] for s in symbols) / AVOGADRO
    return mass_g / (volume * 1.0e-24)


def scale_to_volume(atoms: Atoms, volume: float) -> Atoms:
    """Copy of ``atoms`` with the cell scaled isotropically (atoms follow) to ``volume`` Å^3.

    :raises ValueError: if ``volume`` is not positive.
    """
    if not volume > 0:
        raise ValueError(f'volume must be positive, got {volume!r} Å^3')
    scaled = atoms.copy()
    factor = (volume / atoms.get_volume()) ** (1.0 / 3.0)
    scaled.set_cell(atoms.cell[:] * factor, scale_atoms=True)
    return scaled


def molten_nacl(n_ions: int = 64, *, volume: float | None = None, density: float | None = None, seed: int = 0) -> Atoms:
    """A charge-neutral NaCl cell of ``n_ions`` ions, to be molten by MD.

    Built from the smallest cubic rock-salt supercell with at least ``n_ions`` ions; surplus
    ion pairs (one Na, one Cl) are removed at random (``seed``), then the cell is scaled to the
    requested ``volume`` (Å^3) or ``density`` (g/cm^3); with neither, the 1400 K liquid density
    of the thesis's 64-ion box (13.1 Å edge, 2248 Å^3) is used per ion.

    :returns: ``Atoms`` with ``pbc=True`` and initial charges +1 (Na) / -1 (Cl).
    :raises ValueError: naming the value, for an ``n_ions`` that is not an even integer in [2, :data:`MAX_BUILT_ATOMS`],
        a volume or density that is not a positive finite number, both volume and density given.
    """
    n_ions = checks.integer(n_ions, 'n_ions', ge=2, le=MAX_BUILT_ATOMS)
    if n_ions % 2:
        raise ValueError(f'n_ions must be a positive even number, got {n_ions!r}')
    if volume is not None and density is not None:
        raise ValueError('give either volume or density, not both')
    if volume is not None:
        volume = checks.number(volume, 'volume', gt=0, unit='Å^3')
    if density is not None:
        density = checks.number(density, 'density', gt=0, unit='g/cm^3')
    seed = checks.integer(seed, 'seed', ge=0)
    reps = math.ceil((n_ions / 8) ** (1.0 / 3.0) - 1e-9)
    atoms = bulk('NaCl', 'rocksalt', a=NACL_LATTICE, cubic=True).repeat(reps)
    surplus = (len(atoms) - n_ions) // 2
    if surplus:
        rng = np.random.default_rng(seed)
        symbols = np.array(atoms.get_chemical_symbols())
        drop = np.concatenate(
            [rng.choice(np.flatnonzero(symbols == s), surplus, replace=False) for s in ('Na', 'Cl')]
        )
        del atoms[sorted(drop.tolist())]
    if volume is None:
        volume = (density_to_volume(atoms.get_chemical_symbols(), density) if density is not None
                  else 13.1**3 * n_ions / 64)
    atoms = scale_to_volume(atoms, volume)
    atoms.set_initial_charges([1.0 if s == 'Na' else -1.0 for s in atoms.get_chemical_symbols()])
    atoms.pbc = True
    return atoms


def argon(n_cells: int = 3, *, box: float = 17.042) -> Atoms:
    """fcc argon of ``4 n_cells^3`` atoms in a cubic box of edge ``box`` Å (108 atoms, 17.042 Å: liquid at 85 K).

    :raises ValueError: naming the value, for ``n_cells`` not a positive integer (at most ~29: :data:`MAX_BUILT_ATOMS`)
        or ``box`` not a positive finite number.
    """
    n_cells = checks.integer(n_cells, 'n_cells', ge=1, le=round((MAX_BUILT_ATOMS / 4) ** (1 / 3)))
    box = checks.number(box, 'box', gt=0, unit='Å')
    atoms = bulk('Ar', 'fcc', a=box / n_cells, cubic=True).repeat(n_cells)
    atoms.pbc = True
    return atoms
