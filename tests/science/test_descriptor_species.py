"""Which species GAP descriptors give an energy term (``science.gap_descriptors.uncovered_species``, issue 15):
descriptor dicts and the descriptor strings of a GAP XML."""

from aiida_mlfail.science.gap_descriptors import default_descriptors, descriptor_string, uncovered_species
from tests.helpers import FIXTURES


def test_explicit_descriptors_cover_their_species_only():
    assert uncovered_species(default_descriptors(['Si', 'C'], 4.0), ['C', 'Si']) == []
    assert uncovered_species(default_descriptors(['Si'], 4.0), ['Si', 'H', 'C']) == ['H', 'C']  # Z order


def test_add_species_or_no_species_key_covers_every_species():
    soap = {'type': 'soap', 'n_max': 2, 'l_max': 2, 'atom_sigma': 0.5, 'cutoff': 4.0, 'delta': 0.1, 'n_sparse': 5}
    assert uncovered_species([soap], ['Na', 'Xe']) == []  # add_species defaults to true (descriptor_string)
    assert uncovered_species([{**soap, 'add_species': False}], ['Na']) == []  # Z=0: any species
    assert uncovered_species([{**soap, 'add_species': False, 'Z': 11}], ['Na', 'Cl']) == ['Cl']
    pair = {'type': 'distance_2b', 'cutoff': 4.0, 'delta': 1.0, 'n_sparse': 5, 'add_species': False}
    assert uncovered_species([{**pair, 'Z1': 11, 'Z2': 17}], ['Cl', 'Na', 'K']) == ['K']  # both ends of a pair
    assert uncovered_species([descriptor_string(soap)], ['Na']) == []  # a string with add_species=T


def test_strings_of_a_gap_xml():
    from aiida_mlfail.science.gap import parse_gap_xml

    strings = parse_gap_xml((FIXTURES / 'bridge' / 'gap.xml').read_text())['descriptors']
    assert uncovered_species(strings, ['Na', 'Cl']) == []
    na_only = [s for s in strings if 'Z=11 ' in s or 'Z1=11 Z2=11' in s]
    assert uncovered_species(na_only, ['Na', 'Cl']) == ['Cl']  # Cl only in species_Z: a neighbour, not a centre
