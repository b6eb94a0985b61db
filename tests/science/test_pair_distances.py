"""Guard and outlier distances per species pair (issue 15): defaults from the training data (covalent radii
without data), user numbers and mappings, the outlier verdicts and the LAMMPS guard commands."""

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.data import atomic_numbers, covalent_radii

from aiida_mlfail.science import active_learning as al
from aiida_mlfail.science import explore as sx
from aiida_mlfail.science import mlmd
from aiida_mlfail.science.pair_distances import (
    GUARD_DISTANCE_FRACTION,
    OUTLIER_DISTANCE_FRACTION,
    close_pairs,
    describe,
    normalise_pair_distances,
    resolve_pair_distances,
)
from aiida_mlfail.science.structures import COVALENT_CONTACT_FACTOR, pair_min_distances
from tests.helpers import nacl_frames


def _methane_box(shift=0.0):
    """8 CH4 molecules (C-H 1.09 Å, ase.build.molecule) on a 2x2x2 grid, 4.2 Å apart, in a periodic 8.4 Å box."""
    box = Atoms(cell=[8.4] * 3, pbc=True)
    for corner in np.ndindex(2, 2, 2):
        methane = molecule('CH4')
        methane.translate(np.array(corner) * 4.2 + 2.1 + shift)
        box += methane
    return box


def _labelled(atoms, energy_per_atom=-3.0):
    atoms = atoms.copy()
    atoms.info['energy'] = energy_per_atom * len(atoms)
    atoms.arrays['forces'] = np.ones((len(atoms), 3))
    return atoms


def _covalent(a, b):
    return COVALENT_CONTACT_FACTOR * (covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])


# --- defaults: a fraction of the shortest training distance per pair ---------------------------------


def test_nacl_defaults_come_from_the_shortest_distance_of_each_pair_in_the_training_data():
    frames = nacl_frames()
    measured = {'-'.join(pair): d for pair, d in pair_min_distances(frames).items()}
    assert measured == pytest.approx({'Na-Na': 2.95, 'Na-Cl': 2.09, 'Cl-Cl': 3.24}, abs=0.01)
    outliers = al.outlier_distances(None, frames)
    guards = mlmd.guard_distances(None, ['Na', 'Cl'], frames)
    assert list(outliers) == list(guards) == ['Na-Na', 'Na-Cl', 'Cl-Cl']
    for pair, shortest in measured.items():
        assert outliers[pair] == pytest.approx(OUTLIER_DISTANCE_FRACTION * shortest)
        assert guards[pair] == pytest.approx(GUARD_DISTANCE_FRACTION * shortest)
        assert guards[pair] < outliers[pair] < shortest  # a guard stop is always an outlier
    assert describe(guards) == 'Na-Na 1.033 Å, Na-Cl 0.731 Å, Cl-Cl 1.133 Å'
    assert describe(1.5) == '1.5 Å (every pair)'


def test_without_data_the_defaults_come_from_the_covalent_radii():
    guards = mlmd.guard_distances(None, ['H', 'C'])
    assert guards == pytest.approx({pair: GUARD_DISTANCE_FRACTION * _covalent(*pair.split('-'))
                                    for pair in ('H-H', 'H-C', 'C-C')})
    assert guards['H-C'] == pytest.approx(0.28, abs=0.005)  # far below a C-H bond (1.09 Å)


def test_a_c_h_bond_does_not_trip_the_defaults_but_tripped_the_former_uniform_ones():
    training, candidate = _methane_box(), _methane_box(shift=0.3)
    bond = pair_min_distances([candidate])[('H', 'C')]
    assert bond == pytest.approx(1.09, abs=0.001)
    for guards in (mlmd.guard_distances(None, ['C', 'H'], [training]), mlmd.guard_distances(None, ['C', 'H'])):
        assert close_pairs(candidate, guards) == []
    bounds = {**al.ACTIVE_LEARNING_DEFAULTS['outliers'], 'min_distance': al.outlier_distances(None, [training])}
    (verdict,) = al.outlier_check([_labelled(candidate)], bounds, -3.0)
    assert verdict['accepted'] and verdict['pair_min_distances']['H-C'] == pytest.approx(bond)
    # the former NaCl numbers (guard 1.2 Å, outlier 1.5 Å for every pair) refuse every hydrocarbon
    assert close_pairs(candidate, mlmd.guard_distances(None, ['C', 'H'], [training]) | {'H-C': 1.2})
    (old,) = al.outlier_check([_labelled(candidate)], {**bounds, 'min_distance': 1.5}, -3.0)
    assert old['reasons'] == [f'minimum distance {bond:.3f} Å < 1.5 Å']


@pytest.mark.parametrize('with_data', [True, False], ids=['training-data', 'covalent-radii'])
def test_a_collapsed_na_na_pair_trips_guard_and_outlier_screen_naming_the_pair(with_data):
    frames = nacl_frames()
    data = frames if with_data else None
    collapsed = frames[-1].copy()
    sodium = [i for i, s in enumerate(collapsed.get_chemical_symbols()) if s == 'Na']
    collapsed.positions[sodium[1]] = collapsed.positions[sodium[0]] + [0.8, 0.0, 0.0]
    guards = mlmd.guard_distances(None, ['Na', 'Cl'], data)
    found = {c['pair']: c for c in close_pairs(collapsed, guards)}
    assert found['Na-Na']['distance'] == pytest.approx(0.8) and found['Na-Na']['limit'] == guards['Na-Na']
    limits = al.outlier_distances(None, data or [], ['Na', 'Cl'])
    bounds = {**al.ACTIVE_LEARNING_DEFAULTS['outliers'], 'min_distance': limits}
    good, bad = al.outlier_check([_labelled(frames[0]), _labelled(collapsed)], bounds, -3.0)
    assert good['accepted'] and good['reasons'] == []
    assert not bad['accepted']
    assert f"Na-Na distance 0.800 Å < {limits['Na-Na']:.3f} Å (the Na-Na outlier distance)" in bad['reasons']


# --- users can still set them ---------------------------------------------------------------------------------


def test_a_mapping_sets_the_pairs_it_names_and_the_others_keep_their_defaults():
    assert normalise_pair_distances({'Cl-Na': 1.0, ('H', 'C'): 0.5}) == {'Na-Cl': 1.0, 'H-C': 0.5}
    frames = nacl_frames()
    limits = resolve_pair_distances({'Cl-Na': 1.0}, ['Na', 'Cl'], frames, fraction=0.5)
    assert limits['Na-Cl'] == 1.0
    assert limits['Na-Na'] == pytest.approx(0.5 * pair_min_distances(frames)[('Na', 'Na')])
    assert resolve_pair_distances(1.2, ['Cl', 'Na'], fraction=0.5) == {'Na-Na': 1.2, 'Na-Cl': 1.2, 'Cl-Cl': 1.2}
    assert mlmd.guard_distances(1.2, ['Na', 'Cl'], frames) == 1.2  # a number stays one number
    p = al.normalise_active_learning({'outliers': {'min_distance': {'Na-Na': 1.3}}})
    assert p['outliers']['min_distance'] == {'Na-Na': 1.3}
    assert json.loads(json.dumps(p)) == p  # storable as it is (Dict nodes, explore.json)
    assert al.normalise_active_learning({})['outliers']['min_distance'] is None
    assert mlmd.normalise_mlmd({})['guards']['min_distance'] is None


@pytest.mark.parametrize('value, match', [
    ({}, 'an empty mapping'),
    ({'Na': 1.0}, "key 'Na' is not a species pair"),
    ({'Na-Xx': 1.0}, "key 'Na-Xx'.*'Xx' is not a chemical symbol"),
    ({'Na-Cl': 1.0, 'Cl-Na': 1.1}, 'the pair Na-Cl is given twice'),
    ({'Na-Cl': -1.0}, r"min_distance\['Na-Cl'\] must be a finite number > 0 Å"),
    ('1.2', 'min_distance must be a finite number'),
])
def test_bad_pair_distances_are_refused_naming_the_value(value, match):
    with pytest.raises(ValueError, match=match):
        normalise_pair_distances(value)
    with pytest.raises(ValueError, match=r'^guards\.min_distance'):
        mlmd.normalise_mlmd({'guards': {'min_distance': value}})
    with pytest.raises(ValueError, match=r'^outliers\.min_distance'):
        al.normalise_active_learning({'outliers': {'min_distance': value}})


def test_a_pair_outside_the_species_is_refused():
    with pytest.raises(ValueError, match=r"outliers.min_distance: pair\(s\) \['Ar-Ar'\] name a species outside"):
        al.outlier_distances({'Ar-Ar': 2.0}, nacl_frames()[:1])


# --- the LAMMPS guard and the explorer input ----------------------------------------------------------------


def test_per_pair_guard_commands_count_close_contacts_per_type_pair():
    limits = {'H-H': 0.7, 'H-C': 0.44, 'C-C': 0.6}
    lines = mlmd.distance_guard_commands(limits, ['C', 'H'])
    assert lines == [
        'group guard_type_1 type 1', 'group guard_type_2 type 2',
        'compute guard_close_1_1 guard_type_1 coord/atom cutoff 0.6 1',
        'compute guard_contacts_1_1 guard_type_1 reduce sum c_guard_close_1_1',
        'compute guard_close_1_2 guard_type_1 coord/atom cutoff 0.44 2',
        'compute guard_contacts_1_2 guard_type_1 reduce sum c_guard_close_1_2',
        'compute guard_close_2_2 guard_type_2 coord/atom cutoff 0.7 2',
        'compute guard_contacts_2_2 guard_type_2 reduce sum c_guard_close_2_2',
        'variable close_contacts equal c_guard_contacts_1_1+c_guard_contacts_1_2+c_guard_contacts_2_2',
        'fix guard_distance all halt 1 v_close_contacts > 0 error soft message yes']
    # a number: the former single minimum distance over all pairs
    assert mlmd.distance_guard_commands(1.2, ['C', 'H'])[-1] == \
        'fix guard_distance all halt 1 v_min_distance < 1.2 error soft message yes'
    # the MD script: default guards from the covalent radii of its type map
    script = mlmd.mlmd_script(['pair_style quip', 'pair_coeff * * gap.xml "IP GAP" 6 1'], ['C', 'H'],
                              mlmd.normalise_mlmd({}), 40, 600.0)
    expected = GUARD_DISTANCE_FRACTION * _covalent('C', 'H')
    assert f'compute guard_close_1_2 guard_type_1 coord/atom cutoff {expected:.10g} 2' in script.splitlines()
    with pytest.raises(ValueError, match='needs the type map'):
        mlmd.guard_commands(mlmd.normalise_mlmd({}), 600.0, 40)


def test_the_explorer_job_resolves_the_guards_from_the_training_set_and_soap_species_from_the_data(
        tmp_path, monkeypatch):
    """The daemon writes the guard unresolved (no neighbour lists there); the job resolves it from the references."""
    from aiida_mlfail.engines.explore import Explorer

    frames = nacl_frames()[:2]
    files = sx.job_files(frames[0], ['Na', 'Cl'], ['pair_style quip', 'pair_coeff * * gap.xml "IP GAP" 11 17'],
                         {'max_steps': 10, 'comparison_step': 5}, frames)
    config = json.loads(files[sx.INPUT_FILE])
    assert config['parameters']['guards']['min_distance'] is None
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    monkeypatch.chdir(tmp_path)
    explorer = Explorer.from_files()
    measured = pair_min_distances(frames)
    assert explorer.p['guards']['min_distance'] == pytest.approx(
        {'-'.join(pair): GUARD_DISTANCE_FRACTION * d for pair, d in measured.items()})
    assert config['parameters']['soap']['species'] == ['Cl', 'Na']
    assert sx.read_engine_input(files[sx.INPUT_FILE].decode()) == config  # the engine re-reads it unchanged
    given = json.loads(sx.job_files(frames[0], ['Na', 'Cl'], [], {'max_steps': 10, 'comparison_step': 5,
                                                                    'guards': {'min_distance': 1.2}},
                                    frames)[sx.INPUT_FILE])
    assert given['parameters']['guards']['min_distance'] == 1.2
