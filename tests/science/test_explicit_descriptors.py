"""``science.gap.explicit_descriptors``: a protocol's add_species descriptors written out per species."""

import pytest

from aiida_mlfail.science import gap

PROTOCOL = [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 1.0, 'n_sparse': 15, 'sparse_method': 'uniform'},
            {'type': 'soap', 'n_max': 4, 'l_max': 3, 'atom_sigma': 0.7, 'cutoff': 5.0, 'zeta': 4, 'delta': 0.5,
             'n_sparse': 20}]


def test_the_fast_protocol_written_out_is_default_descriptors():
    assert gap.explicit_descriptors(PROTOCOL, ['Na', 'Cl']) == gap.default_descriptors(['Na', 'Cl'], 5.0)
    wide = [{**PROTOCOL[0], 'cutoff': 6.0, 'n_sparse': 40}, {**PROTOCOL[1], 'cutoff': 6.0, 'n_sparse': 400}]
    assert gap.explicit_descriptors(wide, ['O', 'H']) == gap.default_descriptors(['H', 'O'], 6.0, n_sparse_2b=40,
                                                                                  n_sparse_soap=400)
    two_body = gap.explicit_descriptors(PROTOCOL[:1], ['C', 'H', 'O'])
    assert [(d['Z1'], d['Z2']) for d in two_body] == [(1, 1), (1, 6), (1, 8), (6, 6), (6, 8), (8, 8)]


def test_soap_alone_is_written_out_per_centre_species_without_a_pair_term():
    """Thesis 10.1's SOAP-only GAP: one SOAP per centre species with the protocol's settings, no distance_2b."""
    soap_only = gap.explicit_descriptors([{**PROTOCOL[1], 'n_sparse': 35}], ['Na', 'Cl'])
    assert [d['type'] for d in soap_only] == ['soap', 'soap']
    assert soap_only == [d for d in gap.default_descriptors(['Na', 'Cl'], 5.0, n_sparse_soap=35) if d['type'] == 'soap']
    assert [d['Z'] for d in soap_only] == [11, 17] and all(d['species_Z'] == [11, 17] for d in soap_only)
    assert gap.uncovered_species(soap_only, ['Na', 'Cl']) == []
    string = gap.descriptor_string(soap_only[0])
    assert string.startswith('soap ') and 'distance_2b' not in string


@pytest.mark.parametrize('descriptors, match', [
    ([PROTOCOL[1], PROTOCOL[1]], r"types \['soap', 'soap'\]"),
    ([PROTOCOL[1], PROTOCOL[0]], r"types \['soap', 'distance_2b'\]"),
    ([], r'types \[\]'),
    ([{**PROTOCOL[1], 'n_max': 0}], r'soap descriptor: n_max'),
    ([{**PROTOCOL[1], 'Z': 11}], r"already names species or add_species=False: \['Z'\]"),
    ([{**PROTOCOL[0], 'delta': 0.5}, PROTOCOL[1]], r"distance_2b: default_descriptors would change \['delta'\]"),
    ([PROTOCOL[0], {**PROTOCOL[1], 'cutoff': 4.0}], 'cutoff 5.0 and soap cutoff 4.0 differ'),
    ([{**PROTOCOL[0], 'Z1': 11}, PROTOCOL[1]], r"already names species or add_species=False: \['Z1'\]"),
    ([PROTOCOL[0], {**PROTOCOL[1], 'add_species': False}], r"add_species=False: \['add_species'\]"),
])
def test_descriptors_it_would_change_are_refused(descriptors, match):
    with pytest.raises(ValueError, match=match):
        gap.explicit_descriptors(descriptors, ['Na', 'Cl'])
