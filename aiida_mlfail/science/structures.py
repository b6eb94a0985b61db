"""Structure builders for the systems of the thesis (section 12.1) and its presets (ASE ``Atoms``, Å)."""

from __future__ import annotations

import itertools
import math

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, chemical_symbols, covalent_radii
from ase.neighborlist import neighbor_list
from scipy.spatial import cKDTree

from aiida_mlfail.science import checks
from aiida_mlfail.science.potentials import atomic_mass

#: Avogadro's number, 1/mol (CODATA 2018, exact).
AVOGADRO = 6.02214076e23

#: Most atoms the builders make (a spec is built at submit time to check it: keep that fast).
MAX_BUILT_ATOMS = 100_000

#: Rock-salt lattice constant of NaCl at room temperature (Å), only the starting lattice before scaling.
NACL_LATTICE = 5.64


def density_to_volume(symbols, density: float) -> float:
    """Volume (Å^3) of a cell holding ``symbols`` at mass ``density`` (g/cm^3).

    Masses are ASE's standard atomic weights (:func:`~aiida_mlfail.science.potentials.atomic_mass`).

    :raises ValueError: if ``density`` is not positive, or naming a symbol that is not a chemical element.
    """
    if not density > 0:
        raise ValueError(f'density must be positive, got {density!r} g/cm^3')
    mass_g = sum(atomic_mass(s) for s in symbols) / AVOGADRO
    return mass_g / density * 1.0e24


def volume_to_density(symbols, volume: float) -> float:
    """Mass density (g/cm^3) of ``symbols`` in ``volume`` Å^3 (masses of ``ase.data``, amu).

    :raises ValueError: naming a symbol that is not a chemical element.
    """
    mass_g = sum(atomic_mass(s) for s in symbols) / AVOGADRO
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


#: Default minimum distance of :func:`random_liquid` as a fraction of the mean atomic spacing
#: ``(V/N)^(1/3)``. Hard spheres of that diameter fill ``pi/6 x 0.7^3 = 0.18`` of the volume at any
#: density, under half the jamming limit of random sequential addition (0.384: Torquato, Uche and
#: Stillinger, Phys. Rev. E 74, 061308 (2006)), so the packing always succeeds in a few sweeps; and the
#: closest pairs land near real liquid contacts: 64-ion NaCl at 1.5 g/cm^3 gets 2.23 Å (the shortest
#: Na-Cl of the committed 1400 K classical frames is 2.09 Å), argon at the thesis's 108 atoms in
#: 17.042 Å gets 2.50 Å (Lennard-Jones sigma 3.405 Å: about 1.4 eV above the minimum for the
#: pair, which a short minimisation or a small first timestep removes before melting).
LIQUID_SPACING_FRACTION = 0.7

#: Most sweeps of :func:`random_liquid` (each redraws every atom still too close to an earlier one).
RANDOM_LIQUID_MAX_SWEEPS = 1000

#: Candidate positions per sweep of :func:`random_liquid`, shared by the atoms still to place (at least one
#: each): the last atoms of a dense packing get thousands of tries per sweep, checked at once by a k-d tree.
RANDOM_LIQUID_TRIALS = 4096


def random_liquid(composition: dict, density: float, *, min_distance=None, seed: int = 0,
                  max_sweeps: int = RANDOM_LIQUID_MAX_SWEEPS) -> Atoms:
    """A random packing of atoms of any ``composition`` in a periodic cubic box at mass ``density``, to be melted.

    Every atom is drawn uniformly in the box; then, sweep after sweep, each atom that is closer than
    the minimum distance of its pair to an atom already placed, or to one drawn in the same sweep with a
    lower index, is drawn again (from up to :data:`RANDOM_LIQUID_TRIALS` candidates per sweep, the first
    one clear of the placed atoms taken), until no pair is too close (periodic distances of scipy's
    ``cKDTree`` with ``boxsize``: the minimum image of the cubic box; an atom's own images are at the
    box edge). Without a maintained packer that runs here (Packmol needs its own binary),
    this is random sequential addition done in sweeps. The result
    is a hard-sphere-like random packing with no structure of its own. It is melted by the sampling
    itself: ``mlfail.sample`` (``science.lammps_md.sampling_script``) scales it to each state point's
    volume (NVT) or starts NPT from it, draws velocities at the state point's temperature and runs
    ``md.equilibration_steps`` steps of NVT/NPT with the reference potential before the first sampled
    frame (no energy minimisation, no separate hotter melt). Above the reference's melting point that
    equilibration is the melt, and the frames are of the liquid; below it, a few ps leave a disordered
    (supercooled or glassy) packing, not a crystal: sample such a state point from a melted
    configuration, or give a longer ``md.equilibration_steps``. Atoms come in the order of
    ``composition`` (all of its first species, then the second, ...); no charges are set (the reference
    potential carries them).

    :param composition: ``{symbol: count}``, e.g. ``{'Na': 32, 'Cl': 32}`` or ``{'Ar': 108}``; counts are
        integers >= 1, at most :data:`MAX_BUILT_ATOMS` atoms in all.
    :param density: mass density in g/cm^3 (ASE's standard atomic weights); fixes the cubic box edge.
    :param min_distance: closest allowed distance in Å: one number for every pair, or a mapping
        ``{(A, B): Å}`` (keys may also be ``'A-B'`` strings, as in a JSON spec) covering every pair of
        the composition, e.g. from :func:`default_pair_distances`; ``None`` (default) for
        :data:`LIQUID_SPACING_FRACTION` x the mean spacing ``(V/N)^(1/3)``.
    :param seed: seed of numpy's ``default_rng``: the same arguments give the same structure.
    :param max_sweeps: most redraw sweeps before giving up.
    :returns: ``Atoms`` with a cubic cell (Å), ``pbc=True``, positions inside the cell.
    :raises ValueError: naming the value, for a bad composition (not a mapping, unknown symbol, count not
        an integer >= 1, too many atoms), a density / min_distance / seed that is not a positive number
        (seed >= 0), a min_distance mapping that misses a pair or names a species outside the
        composition, a box edge shorter than a like-pair minimum distance (an atom would overlap its
        own periodic image), or, naming the composition, density and minimum distances, when the
        atoms cannot be placed within ``max_sweeps`` sweeps (too dense for that minimum distance).
    """
    counts = _composition(composition)
    density = checks.number(density, 'density', gt=0, unit='g/cm^3')
    seed = checks.integer(seed, 'seed', ge=0)
    max_sweeps = checks.integer(max_sweeps, 'max_sweeps', ge=1)
    symbols = [symbol for symbol, count in counts.items() for _ in range(count)]
    volume = density_to_volume(symbols, density)
    edge = volume ** (1.0 / 3.0)
    if min_distance is None:
        limits = dict.fromkeys(_pairs(counts), LIQUID_SPACING_FRACTION * (volume / len(symbols)) ** (1.0 / 3.0))
    else:
        limits = _pair_limits(min_distance, counts)
    described = (f'random liquid {counts} at {density:g} g/cm^3 (cubic box {edge:.3f} Å) with minimum '
                 f"distances {', '.join(f'{a}-{b} {d:.3f} Å' for (a, b), d in limits.items())}")
    too_long = [f'{a}-{b} {d:.3f} Å' for (a, b), d in limits.items() if a == b and d > edge]
    if too_long:
        raise ValueError(f'{described}: the box edge is shorter than {too_long}, so an atom would overlap its '
                         'own periodic image; give more atoms or a smaller min_distance')
    species = list(counts)
    kinds = np.repeat(np.arange(len(species)), list(counts.values()))
    table = np.array([[limits[pair_key(a, b)] for b in species] for a in species])
    reach = float(table.max())
    rng = np.random.default_rng(seed)
    top = np.nextafter(edge, 0.0)  # cKDTree's periodic box is [0, edge)

    def draw(n):
        return np.minimum(rng.random((n, 3)) * edge, top)

    positions = np.zeros((len(symbols), 3))
    fixed = np.zeros(len(symbols), dtype=bool)  # placed and clear of every other fixed atom
    pending = np.arange(len(symbols))  # to be (re)drawn
    for _ in range(max_sweeps):
        # each pending atom gets `trials` candidate positions; the first one clear of the fixed atoms is taken
        trials = max(1, RANDOM_LIQUID_TRIALS // pending.size)
        candidates = draw(pending.size * trials)
        clear = np.ones(candidates.shape[0], dtype=bool)
        if fixed.any():
            placed = np.flatnonzero(fixed)
            pairs = cKDTree(positions[placed], boxsize=edge).sparse_distance_matrix(
                cKDTree(candidates, boxsize=edge), reach, output_type='ndarray')
            owner = pending[pairs['j'] // trials]
            clear[pairs['j'][pairs['v'] < table[kinds[placed[pairs['i']]], kinds[owner]]]] = False
        clear = clear.reshape(pending.size, trials)
        positions[pending] = candidates.reshape(pending.size, trials, 3)[np.arange(pending.size), clear.argmax(axis=1)]
        # pending atoms among themselves: the later of a too-close pair is drawn again
        tree = cKDTree(positions[pending], boxsize=edge)
        pairs = tree.sparse_distance_matrix(tree, reach, output_type='ndarray')
        a, b = pending[pairs['i']], pending[pairs['j']]
        again = np.unique(np.concatenate([pending[~clear.any(axis=1)],
                                          b[(a < b) & (pairs['v'] < table[kinds[a], kinds[b]])]]))
        fixed[pending] = True
        if again.size == 0:
            return Atoms(symbols, positions=positions, cell=[edge] * 3, pbc=True)
        fixed[again] = False
        pending = again
    fraction = sum(math.pi / 6.0 * limits[(s, s)] ** 3 * n for s, n in counts.items()) / volume
    raise ValueError(f'{described}: cannot place the atoms: {again.size} still too close after {max_sweeps} '
                     f'sweeps (like-pair spheres fill {fraction:.2f} of the box; random packings jam near '
                     '0.38): lower the density or min_distance')


def _symbol(value, what: str) -> str:
    """``value`` if it is a chemical symbol (ASE's, not the dummy ``X``), else ``ValueError`` naming it."""
    if not isinstance(value, str) or not atomic_numbers.get(value):
        raise ValueError(f'{what}: {value!r} is not a chemical symbol (e.g. Na, Cl, Ar, C, H)')
    return value


def _composition(composition) -> dict[str, int]:
    if not isinstance(composition, dict) or not composition:
        raise ValueError(f'composition must be a non-empty mapping {{symbol: count}}, got {composition!r}')
    counts = {_symbol(s, 'composition'): checks.integer(n, f'composition[{s!r}]', ge=1, le=MAX_BUILT_ATOMS)
              for s, n in composition.items()}
    total = sum(counts.values())
    if total > MAX_BUILT_ATOMS:
        raise ValueError(f'composition {counts} has {total} atoms, more than {MAX_BUILT_ATOMS}')
    return counts


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The key of the species pair ``a``-``b`` in this module's dicts: the two symbols, lower atomic number first.

    ``pair_key('Cl', 'Na') == ('Na', 'Cl')`` (the order of
    :func:`~aiida_mlfail.science.gap_descriptors.count_environments`).

    :raises ValueError: naming a value that is not a chemical symbol.
    """
    a, b = _symbol(a, 'species pair'), _symbol(b, 'species pair')
    return (a, b) if atomic_numbers[a] <= atomic_numbers[b] else (b, a)


def _pairs(species) -> list[tuple[str, str]]:
    ordered = sorted(set(species), key=atomic_numbers.__getitem__)
    return list(itertools.combinations_with_replacement(ordered, 2))


def _pair_limits(min_distance, species) -> dict[tuple[str, str], float]:
    """Per-pair distances (Å) for every pair of ``species`` from a number or a ``{(A, B) | 'A-B': Å}`` mapping."""
    pairs = _pairs(species)
    if not isinstance(min_distance, dict):
        value = checks.number(min_distance, 'min_distance', gt=0, unit='Å')
        return dict.fromkeys(pairs, value)
    given = {}
    for key, value in min_distance.items():
        parts = key.split('-') if isinstance(key, str) else key
        if not isinstance(parts, (list, tuple)) or len(parts) != 2:
            raise ValueError(f"min_distance: key {key!r} is not a species pair (A, B) or 'A-B'")
        pair = pair_key(*parts)
        if not set(pair) <= set(species):
            raise ValueError(f'min_distance: pair {key!r} names a species outside {sorted(set(species))}')
        given[pair] = checks.number(value, f'min_distance[{key!r}]', gt=0, unit='Å')
    missing = [f'{a}-{b}' for a, b in pairs if (a, b) not in given]
    if missing:
        raise ValueError(f'min_distance misses the pair(s) {missing}')
    return {pair: given[pair] for pair in pairs}


#: The named structure presets of a ``structure_spec`` (``{'system': name, ...}``): builder and its keywords.
#: ``liquid`` is the generic one: any composition at a density (:func:`random_liquid`).
PRESETS = {
    'nacl': (molten_nacl, ('n_ions', 'volume', 'density', 'seed')),
    'argon': (argon, ('n_cells', 'box')),
    'liquid': (random_liquid, ('composition', 'density', 'min_distance', 'seed')),
}


def from_spec(spec: dict) -> Atoms:
    """The structure of a preset spec, e.g. ``{'system': 'nacl', 'n_ions': 64, 'density': 1.5}``,
    ``{'system': 'argon', 'n_cells': 3}`` or ``{'system': 'liquid', 'composition': {'Cu': 50, 'Zr': 50},
    'density': 7.0, 'seed': 1}`` (:data:`PRESETS`).

    :raises ValueError: naming the value, for an unknown ``system``, a keyword its builder does not take, a
        missing ``composition``/``density`` of ``liquid``, or a value the builder refuses.
    """
    spec = dict(spec)
    system = spec.pop('system', None)
    if not isinstance(system, str) or system not in PRESETS:
        raise ValueError(f'structure spec: system must be one of {sorted(PRESETS)}, got {system!r}')
    build, allowed = PRESETS[system]
    checks.known_keys(spec, allowed, f'structure spec ({system})')
    if system == 'liquid':
        missing = [key for key in ('composition', 'density') if key not in spec]
        if missing:
            raise ValueError(f'structure spec (liquid) needs {missing}')
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


#: Default ``fraction`` of :func:`default_pair_distances`: the guard / outlier distance of a species pair
#: as a fraction of the shortest distance of that pair in the training data. Measured (``pair_min_distances``,
#: see the tests): the 1400 K classical NaCl frames (``tests/fixtures/lammps_sample``) have Na-Cl 2.09 Å,
#: Na-Na 2.95 Å, Cl-Cl 3.24 Å, so 0.5 gives Na-Cl 1.04 Å, Na-Na 1.48 Å, Cl-Cl 1.62 Å: near the uniform
#: NaCl numbers it replaces (MD guard 1.2 Å = 0.57 x, learner outlier screen 1.5 Å = 0.72 x Na-Cl) and
#: below the Na-Na 1.58 Å of the committed ``explore/novel`` trigger, a configuration a poor GAP made that
#: the learner must still label. Half the closest approach seen is far up the repulsive wall of any
#: pair (a pair potential's energy there is many kT), so MD that gets there has collapsed, while
#: thermal fluctuations beyond the sampled minimum (a few per cent) stay far above it.
PAIR_DISTANCE_FRACTION = 0.5

#: Shortest distance of a pair without data, as a multiple of the sum of the covalent radii
#: (``ase.data.covalent_radii``, Cordero et al., Dalton Trans. 2832 (2008)); :func:`default_pair_distances`
#: multiplies it by its ``fraction``. 0.75 is the smallest ratio of shortest distance to radii sum measured
#: in the committed frames (Na-Cl 2.09 Å / 2.68 Å = 0.78 at 1400 K; Na-Na 0.89, Cl-Cl 1.59); other
#: systems sit higher (liquid argon's closest contacts, ~3.0 Å by :data:`MIN_DISTANCE_FRACTION`'s note,
#: / 2.12 Å = 1.4; a textbook C-H bond 1.09 Å / 1.07 Å = 1.0), so the estimate errs to the short side
#: and a guard built on it does not stop a sound run.
COVALENT_CONTACT_FACTOR = 0.75


def pair_min_distances(configurations) -> dict[tuple[str, str], float]:
    """The shortest distance (Å) of each species pair over a list of configurations.

    Minimum image and periodic images included (``ase.neighborlist.neighbor_list``; an atom and its own
    periodic image count for the like pair), in periodic and non-periodic cells alike. Per
    configuration, the neighbour cutoff starts at 3 Å and doubles until every pair present is found
    (or the cutoff spans the whole cell), so sparse species pairs far apart are found too.

    :param configurations: iterable of ``ase.Atoms`` (Å).
    :returns: ``{(A, B): Å}``, keys :func:`pair_key` (lower atomic number first); a pair that never
        occurs (a lone atom in a non-periodic configuration, two species never in one configuration)
        is absent; ``{}`` for no configurations.
    :raises ValueError: naming the configuration index, for an atom that is not a chemical element or a
        periodic configuration with a cell of zero volume.
    """
    best: dict[tuple[str, str], float] = {}
    for index, atoms in enumerate(configurations):
        numbers = np.asarray(atoms.numbers)
        if numbers.size == 0:
            continue
        if np.any((numbers < 1) | (numbers >= len(chemical_symbols))):
            raise ValueError(f'configuration {index}: atomic number {int(numbers.min())} is not a chemical element')
        pbc = np.asarray(atoms.pbc, dtype=bool)
        cell = np.asarray(atoms.cell[:], dtype=float)
        if pbc.any() and not abs(np.linalg.det(cell)) > 1e-6:
            raise ValueError(f'configuration {index}: periodic (pbc={pbc.tolist()}) with a cell of zero volume')
        present, counts = np.unique(numbers, return_counts=True)
        expected = {(a, b) for a, b in itertools.combinations_with_replacement(present.tolist(), 2)
                    if a != b or counts[present.tolist().index(a)] > 1 or pbc.any()}
        span = float(np.linalg.norm(np.ptp(atoms.positions, axis=0))) + float(np.linalg.norm(cell, axis=1).sum())
        # A pair farther apart than its shortest distance so far cannot lower it: once every pair present has a
        # bound, one neighbour list out to the largest bound decides this configuration.
        bound = max((best.get(pair, math.inf) for pair in expected), default=math.inf)
        cutoff = bound * (1 + 1e-9) if math.isfinite(bound) else 3.0
        while True:
            first, second, distance = neighbor_list('ijd', atoms, cutoff, self_interaction=False)
            codes = np.minimum(numbers[first], numbers[second]) * 1000 + np.maximum(numbers[first], numbers[second])
            unique, inverse = np.unique(codes, return_inverse=True)
            shortest = np.full(unique.size, np.inf)
            np.minimum.at(shortest, inverse, distance)
            found = {(int(code) // 1000, int(code) % 1000): float(d) for code, d in zip(unique, shortest)}
            if set(found) >= expected or cutoff > span or cutoff >= bound:
                break
            cutoff *= 2.0
        for pair, d in found.items():
            best[pair] = min(best.get(pair, math.inf), d)
    best = {(chemical_symbols[a], chemical_symbols[b]): d for (a, b), d in best.items()}
    return dict(sorted(best.items(), key=lambda kv: (atomic_numbers[kv[0][0]], atomic_numbers[kv[0][1]])))


def default_pair_distances(species, configurations=None, *,
                           fraction: float = PAIR_DISTANCE_FRACTION) -> dict[tuple[str, str], float]:
    """Per-pair guard / outlier distances (Å): ``fraction`` x the shortest distance of each pair.

    The shortest distance of a pair is taken from ``configurations`` (:func:`pair_min_distances`, the
    training data) when the pair occurs there, else estimated as :data:`COVALENT_CONTACT_FACTOR` x the sum
    of the covalent radii of the two elements (``ase.data.covalent_radii``). So with data, NaCl gets
    Na-Cl 1.04 Å, Na-Na 1.48 Å, Cl-Cl 1.62 Å (1400 K classical frames, default fraction 0.5); without,
    ``0.5 x 0.75 x (r_A + r_B)``: Na-Cl 1.00 Å, Ar-Ar 0.80 Å, C-H 0.40 Å, O-H 0.36 Å.

    :param species: chemical symbols (any order, repeats ignored) whose pairs to give.
    :param configurations: ``ase.Atoms`` of the training data, or ``None``/empty for no data.
    :param fraction: in (0, 1], default :data:`PAIR_DISTANCE_FRACTION` (its docs give the reasons).
    :returns: ``{(A, B): Å}`` for every pair of ``species`` (:func:`pair_key` order), the like pairs included.
    :raises ValueError: naming the value, for an empty species list, a value that is not a chemical
        symbol, a fraction outside (0, 1], or a species of the configurations not in ``species``.
    """
    if isinstance(species, str) or not species:
        raise ValueError(f'species must be a non-empty list of chemical symbols, got {species!r}')
    species = [_symbol(s, 'species') for s in species]
    fraction = checks.number(fraction, 'fraction', gt=0, le=1)
    configurations = list(configurations or [])
    for index, atoms in enumerate(configurations):
        extra = sorted(set(atoms.get_chemical_symbols()) - set(species))
        if extra:
            raise ValueError(f'configuration {index} has species {extra} not in the species {sorted(set(species))}')
    measured = pair_min_distances(configurations)
    result = {}
    for a, b in _pairs(species):
        shortest = measured.get((a, b))
        if shortest is None:
            radii = covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]
            shortest = COVALENT_CONTACT_FACTOR * float(radii)
        result[(a, b)] = fraction * shortest
    return result


def structure_from_data_file(path, species):
    """The structure of a LAMMPS data file of ``atom_style full`` (a molecular force field's topology), with the
    chemical symbols of its types from ``species`` (type ``t`` is ``species[t - 1]``) and atom ``i`` = atom ID
    ``i + 1``, so that it matches the data file by construction (see ``science.topology``).

    :param path: the data file (``units metal``: Å); ``species``: the reference's species in LAMMPS type order.
    :returns: ``ase.Atoms`` (positions Å wrapped into the cell, periodic).
    :raises ValueError: naming the file when it is not a data file of ``atom_style full``, declares another number
        of atom types, or its atom IDs are not 1..N; ``OSError`` when it cannot be read.
    """
    from aiida_mlfail.science.topology import structure_from_data_file as read

    return read(path, species)
