"""Species-generic science (issue 15): masses from ASE, default GAP descriptors, per-pair distances, random liquids."""

import itertools

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_masses, atomic_numbers, covalent_radii
from ase.geometry import get_distances
from ase.io import read

from aiida_mlfail.science import gap, mlmd, potentials, structures
from aiida_mlfail.science.structures import (
    COVALENT_CONTACT_FACTOR,
    PAIR_DISTANCE_FRACTION,
    default_pair_distances,
    pair_key,
    pair_min_distances,
    random_liquid,
)
from tests.helpers import FIXTURES, nacl_frames

# --- masses: ase.data, no species table ------------------------------------------------------------


def test_masses_come_from_ase_for_any_element():
    assert not hasattr(potentials, 'MASSES')
    assert potentials.atomic_mass('Cu') == atomic_masses[29] == pytest.approx(63.546)
    assert potentials.mass_commands(['C', 'H', 'O']) == ['mass 1 12.011', 'mass 2 1.008', 'mass 3 15.999']
    assert 'mass 2 35.45' in potentials.ReferencePotential('bmhtf_coul_long').lammps_commands()
    script = mlmd.mlmd_script(['pair_style quip', 'pair_coeff * * gap.xml "IP GAP label=X" 29 40'], ['Cu', 'Zr'],
                              mlmd.normalise_mlmd({}), 8, 100.0)
    assert 'mass 1 63.546' in script and 'mass 2 91.224' in script


@pytest.mark.parametrize('symbol', ['X', 'Xx', 'na', 12, None])
def test_atomic_mass_names_a_bad_symbol(symbol):
    with pytest.raises(ValueError, match=rf'{symbol!r} is not a chemical symbol'):
        potentials.atomic_mass(symbol)


def test_density_of_any_composition():
    # 100 H2O in 2990.0 Å^3: 1.0 g/cm^3 with ASE's H 1.008, O 15.999
    symbols = ['O'] * 100 + ['H'] * 200
    volume = structures.density_to_volume(symbols, 1.0)
    assert volume == pytest.approx(100 * 18.015 / 6.02214076e23 * 1e24)
    assert structures.volume_to_density(symbols, volume) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'Xx' is not a chemical symbol"):
        structures.density_to_volume(['Xx'], 1.0)


# --- default GAP descriptors -----------------------------------------------------------------------


@pytest.mark.parametrize('species, pairs, centres', [
    (['Ar'], [(18, 18)], [18]),
    (['Cl', 'Na'], [(11, 11), (11, 17), (17, 17)], [11, 17]),
    (['O', 'H', 'C', 'H'], [(1, 1), (1, 6), (1, 8), (6, 6), (6, 8), (8, 8)], [1, 6, 8]),
])
def test_default_descriptors_for_one_two_three_species(species, pairs, centres):
    descriptors = gap.default_descriptors(species, 5.0)
    two_body = [d for d in descriptors if d['type'] == 'distance_2b']
    soap = [d for d in descriptors if d['type'] == 'soap']
    assert len(descriptors) == len(two_body) + len(soap)
    assert [(d['Z1'], d['Z2']) for d in two_body] == pairs
    assert [d['Z'] for d in soap] == centres
    assert all(d['species_Z'] == centres and d['n_species'] == len(centres) for d in soap)
    assert all(d['cutoff'] == 5.0 and d['add_species'] is False for d in descriptors)
    assert {d['n_sparse'] for d in two_body} == {15} and {d['n_sparse'] for d in soap} == {20}
    parameters = gap.normalise_fit_parameters({'descriptors': descriptors})
    assert parameters['descriptors'] == descriptors
    strings = [gap.descriptor_string(d) for d in descriptors]
    assert all('add_species=F' in s for s in strings)
    assert f"species_Z={{{' '.join(map(str, centres))}}}" in strings[-1]
    arguments = gap.gap_fit_arguments(parameters, 'train.xyz', 'gap.xml')
    gap_argument = next(a for a in arguments if a.startswith('gap='))
    assert gap_argument.count(' : ') == len(descriptors) - 1
    # gap_fit strips one level of braces inside gap={...}: the list needs two
    assert f"species_Z={{{{{' '.join(map(str, centres))}}}}}" in gap_argument


def test_default_descriptors_soap_overrides_and_sparse_points():
    descriptors = gap.default_descriptors(['Na', 'Cl'], 6.0, n_sparse_2b=8, n_sparse_soap=30,
                                          soap={'n_max': 6, 'l_max': 4, 'cutoff_transition_width': 1.0})
    soap = [d for d in descriptors if d['type'] == 'soap']
    assert {(d['n_max'], d['l_max'], d['atom_sigma'], d['cutoff_transition_width'], d['n_sparse'])
            for d in soap} == {(6, 4, 0.7, 1.0, 30)}
    assert {d['n_sparse'] for d in descriptors if d['type'] == 'distance_2b'} == {8}


@pytest.mark.parametrize('species, kwargs, match', [
    ([], {}, 'species must be a non-empty list'),
    ('NaCl', {}, 'species must be a non-empty list'),
    (['Na', 'Qq'], {}, "species: 'Qq' is not a chemical symbol"),
    (['Na'], {'cutoff': 0.0}, 'cutoff must be a finite number > 0 Å, got 0.0'),
    (['Na'], {'n_sparse_soap': 2.5}, 'n_sparse_soap must be an integer'),
    (['Na'], {'soap': {'Z': 11}}, r"soap: \['Z'\] are set by default_descriptors"),
    (['Na'], {'soap': {'n_max': 0}}, 'n_max must be an integer > 0'),
    (['Na'], {'soap': {'nmax': 4}}, 'nmax'),
    (['Na'], {'soap': 4}, 'soap must be a mapping'),
])
def test_default_descriptors_refuse_bad_input(species, kwargs, match):
    kwargs = {'cutoff': 5.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        gap.default_descriptors(species, kwargs.pop('cutoff'), **kwargs)


def test_sparse_points_are_counted_per_species_of_explicit_descriptors():
    frames = nacl_frames()
    two_body = gap.default_descriptors(['Na', 'Cl'], 5.0)[:3]
    all_pairs = gap.count_environments(frames, {**two_body[0], 'add_species': True})
    assert set(all_pairs) == {'Na-Na', 'Na-Cl', 'Cl-Cl'}
    for descriptor, key in zip(two_body, ('Na-Na', 'Na-Cl', 'Cl-Cl')):
        assert gap.count_environments(frames, descriptor) == {key: all_pairs[key]}
    soap_cl = gap.default_descriptors(['Na', 'Cl'], 5.0)[-1]
    assert gap.count_environments(frames, soap_cl) == {'Cl': 32 * len(frames)}
    gap.check_sparse_points(frames, gap.default_descriptors(['Na', 'Cl'], 5.0))
    with pytest.raises(ValueError, match=r"finds no environment for \['Ar'\]"):
        gap.check_sparse_points(frames, gap.default_descriptors(['Ar'], 5.0)[1:])
    with pytest.raises(ValueError, match='larger than the 96 environments available for Cl'):
        gap.check_sparse_points(frames, [{**soap_cl, 'n_sparse': 97}])


# --- per-pair shortest distances ---------------------------------------------------------------------


def test_pair_min_distances_of_the_committednacl_frames():
    shortest = pair_min_distances(nacl_frames())
    assert list(shortest) == [('Na', 'Na'), ('Na', 'Cl'), ('Cl', 'Cl')]  # lower atomic number first
    assert shortest[('Na', 'Cl')] == pytest.approx(2.0874, abs=1e-4)
    assert shortest[('Na', 'Na')] == pytest.approx(2.9523, abs=1e-4)
    assert shortest[('Cl', 'Cl')] == pytest.approx(3.2382, abs=1e-4)


def test_pair_min_distances_matches_a_brute_force_minimum_image():
    rng = np.random.default_rng(3)
    atoms = Atoms('Cu10Zr6H4', positions=rng.random((20, 3)) * 9.0, cell=[9.0, 9.5, 10.0], pbc=True)
    _, d = get_distances(atoms.positions, cell=atoms.cell, pbc=True)
    expected = {}
    for i, j in itertools.combinations(range(len(atoms)), 2):
        key = pair_key(atoms[i].symbol, atoms[j].symbol)
        expected[key] = min(expected.get(key, np.inf), d[i, j])
    assert pair_min_distances([atoms]) == pytest.approx(expected)


def test_pair_min_distances_images_far_pairs_and_lone_atoms():
    across = Atoms('NaCl', positions=[[0.1, 5, 5], [9.95, 5, 5]], cell=[10, 10, 10], pbc=True)
    assert pair_min_distances([across]) == pytest.approx({('Na', 'Na'): 10.0, ('Na', 'Cl'): 0.15,
                                                          ('Cl', 'Cl'): 10.0})  # own images at the edge
    far = Atoms('HeAr', positions=[[0, 0, 0], [7.0, 0, 0]])  # beyond the first 3 Å cutoff, no cell
    assert pair_min_distances([far]) == pytest.approx({('He', 'Ar'): 7.0})  # no like pairs without images
    assert pair_min_distances([bulk('Cu', 'fcc', a=3.61)]) == pytest.approx({('Cu', 'Cu'): 3.61 / 2**0.5})
    assert pair_min_distances([]) == {}
    with pytest.raises(ValueError, match='configuration 1: periodic .* zero volume'):
        pair_min_distances([far, Atoms('Ar2', positions=[[0, 0, 0], [1, 0, 0]], cell=[5, 5, 0], pbc=True)])


def test_default_pair_distances_from_data_or_covalent_radii():
    frames = nacl_frames()
    measured = pair_min_distances(frames)
    from_data = default_pair_distances(['Cl', 'Na'], frames)
    assert PAIR_DISTANCE_FRACTION == 0.5
    assert from_data == pytest.approx({pair: 0.5 * d for pair, d in measured.items()})
    assert from_data[('Na', 'Cl')] == pytest.approx(1.0437, abs=1e-4)
    # the committed explore/novel trigger (Na-Na 1.58 Å, a configuration a poor GAP made) stays above
    trigger = pair_min_distances([read(FIXTURES / 'explore' / 'novel' / 'trigger.xyz')])
    assert all(trigger[pair] > from_data[pair] for pair in from_data)
    # no data: COVALENT_CONTACT_FACTOR x radii sum, times the fraction
    no_data = default_pair_distances(['H', 'C'], fraction=0.4)
    assert no_data[('H', 'C')] == pytest.approx(0.4 * COVALENT_CONTACT_FACTOR * (covalent_radii[1] + covalent_radii[6]))
    assert list(no_data) == [('H', 'H'), ('H', 'C'), ('C', 'C')]
    # data for Na-Cl only: the others from the radii
    mixed = default_pair_distances(['Na', 'Cl', 'Ar'], [Atoms('NaCl', positions=[[0, 0, 0], [2.5, 0, 0]])])
    assert mixed[('Na', 'Cl')] == pytest.approx(1.25)
    radius = covalent_radii[atomic_numbers['Ar']]
    assert mixed[('Ar', 'Ar')] == pytest.approx(0.5 * 0.75 * 2 * radius)
    assert len(mixed) == 6


@pytest.mark.parametrize('species, configurations, fraction, match', [
    ([], None, 0.5, 'species must be a non-empty list'),
    (['Na', 'Zz'], None, 0.5, "'Zz' is not a chemical symbol"),
    (['Na'], None, 1.5, 'fraction must be a finite number > 0 and <= 1, got 1.5'),
    (['Na'], [Atoms('NaCl', positions=[[0, 0, 0], [2.5, 0, 0]])], 0.5,
     r"configuration 0 has species \['Cl'\] not in the species \['Na'\]"),
])
def test_default_pair_distances_refuse_bad_input(species, configurations, fraction, match):
    with pytest.raises(ValueError, match=match):
        default_pair_distances(species, configurations, fraction=fraction)


# --- random liquids ----------------------------------------------------------------------------------


def test_random_liquid_composition_density_and_spacing():
    atoms = random_liquid({'Na': 32, 'Cl': 32}, 1.5, seed=4)
    assert atoms.get_chemical_symbols() == ['Na'] * 32 + ['Cl'] * 32
    assert atoms.pbc.all() and np.allclose(atoms.cell[:], np.eye(3) * atoms.cell[0, 0])
    assert structures.volume_to_density(atoms.get_chemical_symbols(), atoms.get_volume()) == pytest.approx(1.5)
    assert np.all((atoms.get_scaled_positions(wrap=False) >= 0) & (atoms.get_scaled_positions(wrap=False) < 1))
    spacing = (atoms.get_volume() / 64) ** (1 / 3)
    assert min(pair_min_distances([atoms]).values()) >= structures.LIQUID_SPACING_FRACTION * spacing
    assert spacing * structures.LIQUID_SPACING_FRACTION == pytest.approx(2.23, abs=0.005)  # as documented
    structures.check_structure(atoms)
    assert np.array_equal(atoms.positions, random_liquid({'Na': 32, 'Cl': 32}, 1.5, seed=4).positions)
    assert not np.allclose(atoms.positions, random_liquid({'Na': 32, 'Cl': 32}, 1.5, seed=5).positions)


def test_random_liquid_per_pair_minimum_distances():
    limits = {'O-O': 2.5, ('H', 'O'): 0.9, ('O', 'H'): 0.9, 'H-H': 1.4}
    atoms = random_liquid({'O': 50, 'H': 100}, 1.0, min_distance=limits, seed=1)
    shortest = pair_min_distances([atoms])
    assert shortest[('O', 'O')] >= 2.5 and shortest[('H', 'O')] >= 0.9 and shortest[('H', 'H')] >= 1.4
    argon = random_liquid({'Ar': 108}, structures.volume_to_density(['Ar'] * 108, 17.042**3), min_distance=3.0)
    assert argon.cell.lengths() == pytest.approx([17.042] * 3)
    assert pair_min_distances([argon])[('Ar', 'Ar')] >= 3.0
    mixture = random_liquid({'Cu': 500, 'Zr': 500}, 7.0, min_distance=default_pair_distances(['Cu', 'Zr'],
                                                                                             fraction=0.8))
    assert len(mixture) == 1000


@pytest.mark.parametrize('composition, density, kwargs, match', [
    ({}, 1.0, {}, 'composition must be a non-empty mapping'),
    (['Ar'], 1.0, {}, 'composition must be a non-empty mapping'),
    ({'Ar': 0}, 1.0, {}, r"composition\['Ar'\] must be an integer >= 1"),
    ({'Ar': 2.5}, 1.0, {}, r"composition\['Ar'\] must be an integer"),
    ({'Qq': 4}, 1.0, {}, "composition: 'Qq' is not a chemical symbol"),
    ({'Ar': 60_000, 'Ne': 60_000}, 1.0, {}, 'has 120000 atoms, more than 100000'),
    ({'Ar': 4}, 0.0, {}, r'density must be a finite number > 0 g/cm\^3, got 0.0'),
    ({'Ar': 4}, 1.0, {'min_distance': -1.0}, 'min_distance must be a finite number > 0 Å'),
    ({'Na': 4, 'Cl': 4}, 1.0, {'min_distance': {'Na-Na': 2.0, 'Cl-Cl': 2.0}}, r"misses the pair\(s\) \['Na-Cl'\]"),
    ({'Ar': 4}, 1.0, {'min_distance': {'Ar-Ar': 2.0, 'Ar-Ne': 2.0}}, "pair 'Ar-Ne' names a species outside"),
    ({'Ar': 4}, 1.0, {'min_distance': {'Ar': 2.0}}, "key 'Ar' is not a species pair"),
    ({'Ar': 1}, 1.4, {'min_distance': 5.0}, 'box edge is shorter than .*Ar-Ar 5.000 Å.*own periodic image'),
    ({'Ar': 4}, 1.0, {'seed': -1}, 'seed must be an integer >= 0'),
])
def test_random_liquid_refuses_bad_input(composition, density, kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_liquid(composition, density, **kwargs)


def test_random_liquid_that_cannot_be_packed_names_composition_and_density():
    with pytest.raises(ValueError) as info:
        random_liquid({'Ar': 108}, 1.4, min_distance=4.0, max_sweeps=50)
    message = str(info.value)
    assert message.startswith("random liquid {'Ar': 108} at 1.4 g/cm^3 (cubic box 17.232 Å) with minimum distances "
                              'Ar-Ar 4.000 Å: cannot place the atoms')
    assert 'after 50 sweeps' in message and 'fill 0.71 of the box' in message


def test_liquid_structure_spec():
    spec = {'system': 'liquid', 'composition': {'Cu': 16, 'Zr': 16}, 'density': 7.0, 'seed': 2,
            'min_distance': {'Cu-Cu': 2.0, 'Cu-Zr': 2.2, 'Zr-Zr': 2.4}}
    atoms = structures.from_spec(spec)
    assert atoms.get_chemical_formula() == 'Cu16Zr16'
    assert np.array_equal(atoms.positions, structures.from_spec(spec).positions)  # validator and calcfunction agree
    assert 'liquid' in structures.PRESETS
    with pytest.raises(ValueError, match=r"structure spec \(liquid\) needs \['density'\]"):
        structures.from_spec({'system': 'liquid', 'composition': {'Cu': 4}})
    with pytest.raises(ValueError, match=r"unknown structure spec \(liquid\) .*n_ions"):
        structures.from_spec({**spec, 'n_ions': 4})
    with pytest.raises(ValueError, match=r"system must be one of \['argon', 'liquid', 'nacl'\], got 'water'"):
        structures.from_spec({'system': 'water'})
