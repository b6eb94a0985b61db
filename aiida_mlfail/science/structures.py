"""Structure builders for the systems of the thesis (section 12.1) and its presets (ASE ``Atoms``, Å)."""

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


#: The named structure presets of a ``structure_spec`` (``{'system': name, ...}``): builder and its keywords.
PRESETS = {'nacl': (molten_nacl, ('n_ions', 'volume', 'density', 'seed')), 'argon': (argon, ('n_cells', 'box'))}


def from_spec(spec: dict) -> Atoms:
    """The structure of a preset spec, e.g. ``{'system': 'nacl', 'n_ions': 64, 'density': 1.5}`` or
    ``{'system': 'argon', 'n_cells': 3}`` (:data:`PRESETS`).

    :raises ValueError: naming the value, for an unknown ``system``, a keyword its builder does not take, or a
        value the builder refuses.
    """
    spec = dict(spec)
    system = spec.pop('system', None)
    if system not in PRESETS:
        raise ValueError(f"structure spec: system must be 'nacl' or 'argon', got {system!r}")
    build, allowed = PRESETS[system]
    checks.known_keys(spec, allowed, f'structure spec ({system})')
    return build(**spec)


#: Default of :func:`check_structure`'s ``min_fraction``: the closest allowed distance of two atoms as a
#: fraction of the sum of their covalent radii (``ase.data.covalent_radii``, Cordero et al. 2008).
#: Real condensed matter stays well above it: molten NaCl at 1400 K has Na-Cl contacts down to ~2.0 Å
#: = 0.75 x (1.66 + 1.02) Å (0.78 in the committed 1400 K frames), liquid argon ~3.0 Å = 0.71 x, a
#: chemical bond ~1 x. It is below 0.5 on purpose: the active learner restarts explorations from, and
#: labels, configurations a poor GAP produced, and those go lower (the committed ``explore/novel``
#: trigger has Na-Na at 1.58 Å = 0.475 x; the learner's own outlier screen accepts every pair at
#: >= 1.5 Å, which is >= 0.45 x for Na, Cl and Ar), so 0.4 (Na-Cl 1.07 Å, Na-Na 1.33 Å, Cl-Cl 0.82 Å,
#: Ar-Ar 0.85 Å) refuses overlaps (0 Å, 0.2 Å: LAMMPS loses atoms, PPPM goes out of range, DFT diverges)
#: without refusing a configuration the package itself makes and accepts.
MIN_DISTANCE_FRACTION = 0.4


def check_structure(atoms: Atoms, *, periodic: bool = True, min_fraction: float = MIN_DISTANCE_FRACTION,
                    where: str = 'structure') -> None:
    """Refuse a structure no MD or DFT job can start from, with a message naming the offence.

    Checks, in order: at least one atom; known chemical elements (atomic number 1-118); finite cell
    and positions; with ``periodic`` (LAMMPS and CP2K periodic runs), periodic in all three directions
    with a cell of positive volume (> 1e-6 Å^3); no pair of atoms (minimum image across periodic
    boundaries, ASE's ``neighbor_list``) closer than ``min_fraction`` x the sum of their covalent radii
    (``ase.data.covalent_radii``, Å). Linear in the number of atoms (cell-list neighbour search with a
    cutoff of ``min_fraction`` x the largest radius sum): a few hundred atoms take about a millisecond.

    :param atoms: ``ase.Atoms`` (positions and cell in Å).
    :param periodic: require a 3-D periodic cell of positive volume.
    :param min_fraction: closest allowed distance as a fraction of the covalent radii sum, in [0, 1];
        0 only checks the other conditions.
    :param where: name of the structure in the messages (e.g. the port, ``'structure'``).
    :raises ValueError: naming ``where`` and the offence: the closest offending pair with both indices
        and symbols, the distance and the limit in Å; the bad element; the pbc; the volume.
    """
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    if not 0 <= min_fraction <= 1:
        raise ValueError(f'min_fraction must be in [0, 1], got {min_fraction!r}')
    n_atoms = len(atoms)
    if n_atoms == 0:
        raise ValueError(f'{where}: has no atoms')
    numbers = np.asarray(atoms.numbers)
    bad = np.flatnonzero((numbers < 1) | (numbers >= len(covalent_radii)))
    if bad.size:
        raise ValueError(f'{where}: atom {int(bad[0])} has atomic number {int(numbers[bad[0]])}, '
                         'not a chemical element')
    cell = np.asarray(atoms.cell[:], dtype=float)
    if not np.all(np.isfinite(cell)):
        raise ValueError(f'{where}: the cell has non-finite entries: {cell.tolist()} Å')
    positions = np.asarray(atoms.positions, dtype=float)
    bad = np.flatnonzero(~np.all(np.isfinite(positions), axis=1))
    if bad.size:
        index = int(bad[0])
        raise ValueError(f'{where}: atom {index} ({atoms[index].symbol}) has a non-finite position '
                         f'{positions[index].tolist()} Å ({bad.size} such atom(s))')
    pbc = np.asarray(atoms.pbc, dtype=bool)
    volume = abs(float(np.linalg.det(cell)))
    if periodic:
        if not pbc.all():
            raise ValueError(f'{where}: a periodic cell is needed (periodic in x, y and z), got pbc={pbc.tolist()}')
        if not volume > 1e-6:
            raise ValueError(f'{where}: the cell has zero volume ({volume:.3g} Å^3, cell {cell.tolist()} Å); '
                             'a periodic run needs a 3-D cell')
    if min_fraction == 0 or n_atoms < 2 and not pbc.any():
        return
    # ASE's neighbour list needs a 3-D cell for periodic images: a flat cell (allowed when not `periodic`)
    # is checked without them.
    if pbc.any() and not volume > 1e-6:
        atoms = Atoms(numbers=numbers, positions=positions, pbc=False)
    radii = covalent_radii[numbers]
    cutoff = float(min_fraction * 2.0 * radii.max())
    first, second, distance = neighbor_list('ijd', atoms, cutoff, self_interaction=False)
    if first.size:
        limit = min_fraction * (radii[first] + radii[second])
        ratio = distance / limit
        worst = int(np.argmin(ratio))
        if ratio[worst] < 1.0:
            i, j = sorted((int(first[worst]), int(second[worst])))
            symbols = atoms.get_chemical_symbols()
            n_pairs = (int(np.count_nonzero(ratio < 1.0)) + 1) // 2
            pair = (f'atom {i} ({symbols[i]}) and its own periodic image' if i == j
                    else f'atoms {i} ({symbols[i]}) and {j} ({symbols[j]})')
            raise ValueError(
                f'{where}: {pair} are {distance[worst]:.3f} Å apart, closer '
                f'than {limit[worst]:.3f} Å ({min_fraction:g} x the sum of their covalent radii); '
                f'{n_pairs} pair(s) too close: overlapping atoms?')
