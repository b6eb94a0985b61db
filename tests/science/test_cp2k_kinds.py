"""Per-element basis sets and GTH pseudopotentials (``science.cp2k.resolve_kinds``) and the rVV10 dispersion
(``science.cp2k.vdw_potential``, ``vdw_overrides``)."""

import os
import pathlib

import pytest
from aiida_cp2k.utils import Cp2kInput

from aiida_mlfail.science import cp2k
from aiida_mlfail.science.references import cp2k_reference

CP2K_DATA = pathlib.Path('/usr/share/cp2k')

#: Valence electrons of the GTH-PBE pseudopotentials that match the MOLOPT-SR basis sets, as the files state
#: them (BASIS_MOLOPT ``-qN`` aliases, GTH_POTENTIALS electron-count lines).
GTH_PBE_VALENCE = {'Na': 9, 'Cl': 7, 'Ar': 8, 'Si': 4, 'O': 6, 'H': 1, 'Cu': 11}


@pytest.fixture
def cp2k_data():
    if not CP2K_DATA.is_dir():
        if os.environ.get('CI'):
            pytest.fail(f'CP2K data directory {CP2K_DATA} missing, and CI is set')
        pytest.skip(f'CP2K data directory {CP2K_DATA} not installed (Debian cp2k package)')
    return CP2K_DATA


@pytest.mark.parametrize('name, basis', [('fast', 'SZV-MOLOPT-SR-GTH'), ('moderate', 'DZVP-MOLOPT-SR-GTH'),
                                         ('precise', 'DZVP-MOLOPT-SR-GTH')])
def test_real_library_resolves_the_elements_of_many_systems(cp2k_data, name, basis):
    symbols = ['Si', 'O', 'H', 'Cu', 'Ar', 'Na', 'Cl', 'O', 'H']
    choices = cp2k.resolve_kinds(name, symbols, cp2k_data)
    assert list(choices) == sorted(GTH_PBE_VALENCE)
    for element, choice in choices.items():
        q = GTH_PBE_VALENCE[element]
        assert choice == {'basis_set': basis, 'potential': f'GTH-PBE-q{q}', 'valence': q, 'resolved': True}
    # Cu has two GTH-PBE entries (q11, the default alias, and the semicore q19): the basis' q11 decides
    assert 'Cu GTH-PBE-q19' in (cp2k_data / 'GTH_POTENTIALS').read_text()


def test_real_library_refuses_an_element_it_cannot_describe(cp2k_data):
    # BASIS_MOLOPT has no MOLOPT basis for the lanthanides
    with pytest.raises(ValueError) as error:
        cp2k.resolve_kinds('moderate', ['Na', 'Ce', 'Cl'], cp2k_data)
    message = str(error.value)
    assert message.startswith('no basis set for Ce (DZVP-MOLOPT-SR-GTH, DZVP-MOLOPT-GTH)')
    assert f"in {cp2k_data / 'BASIS_MOLOPT'}" in message and "(protocol 'moderate')" in message


def test_kinds_in_the_parameters_name_the_explicit_pseudopotential(cp2k_data, monkeypatch):
    monkeypatch.setenv('CP2K_DATA_DIR', str(cp2k_data))
    kinds = cp2k.single_point_parameters('fast', ['Si'] * 8)['FORCE_EVAL']['SUBSYS']['KIND']
    assert kinds == [{'_': 'Si', 'ELEMENT': 'Si', 'BASIS_SET': 'SZV-MOLOPT-SR-GTH', 'POTENTIAL': 'GTH-PBE-q4'}]
    text = cp2k.describe_kinds(cp2k.resolve_kinds('fast', ['Si', 'O']))
    assert text == 'O: SZV-MOLOPT-SR-GTH / GTH-PBE-q6 (6 e), Si: SZV-MOLOPT-SR-GTH / GTH-PBE-q4 (4 e)'


# A small fake library: Xa has only the second preferred basis, Xb none, Xc a basis whose valence no
# pseudopotential of the family has, Xd a basis without -qN (the family's default entry is taken).
BASIS = """# comment line: Na SHOULD-NOT-COUNT
 Na  SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q9
 1
 3 0 1 1 1 1
  0.5 1.0 1.0
 Cu  SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q19
 1
 3 0 1 1 1 1
  0.5 1.0 1.0
 Ar  SZV-MOLOPT-GTH SZV-MOLOPT-GTH-q8
 1
 3 0 1 1 1 1
  0.5 1.0 1.0
 Si  SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q12
 1
 3 0 1 1 1 1
  0.5 1.0 1.0
 O  SZV-MOLOPT-SR-GTH
 1
 3 0 1 1 1 1
  0.5 1.0 1.0
"""
POTENTIALS = """#
Na GTH-PBE-q9 GTH-PBE
    3    6
     0.2   1  -1.0
    0
#
Cu GTH-PBE-q11 GTH-PBE
    1    0   10
     0.5   1  1.0
    0
#
Cu GTH-PBE-q19
    3    6   10
     0.5   1  1.0
    0
#
Ar GTH-PBE-q8 GTH-PBE
    2    6
     0.4   1  -7.1
    0
#
Si GTH-PBE-q4 GTH-PBE
    2    2
     0.4   1  -7.1
    0
#
O GTH-BLYP-q6 GTH-BLYP
    2    4
     0.2   1  -1.0
    0
O GTH-PBE-q6 GTH-PBE
    2    4
     0.2   1  -1.0
    0
"""


@pytest.fixture
def library(tmp_path):
    (tmp_path / 'BASIS_MOLOPT').write_text(BASIS)
    (tmp_path / 'GTH_POTENTIALS').write_text(POTENTIALS)
    return tmp_path


def test_fake_library_preferences_valences_and_defaults(library):
    choices = cp2k.resolve_kinds('fast', ['Na', 'Cu', 'Ar', 'O'], library)
    assert choices['Na'] == {'basis_set': 'SZV-MOLOPT-SR-GTH', 'potential': 'GTH-PBE-q9', 'valence': 9,
                             'resolved': True}
    # the basis is made for 19 electrons: the semicore entry, not the family's default (q11)
    assert choices['Cu']['potential'] == 'GTH-PBE-q19' and choices['Cu']['valence'] == 19
    # no SR basis for Ar: the second preference
    assert choices['Ar']['basis_set'] == 'SZV-MOLOPT-GTH' and choices['Ar']['potential'] == 'GTH-PBE-q8'
    # a basis that does not state its valence: the family's default entry, not GTH-BLYP
    assert choices['O']['potential'] == 'GTH-PBE-q6'


def test_fake_library_refuses_missing_elements_naming_them(library):
    with pytest.raises(ValueError) as error:
        cp2k.resolve_kinds('fast', ['Na', 'Cl'], library)
    assert str(error.value) == ('no basis set for Cl (SZV-MOLOPT-SR-GTH, SZV-MOLOPT-GTH) in '
                                f"{library / 'BASIS_MOLOPT'} (protocol 'fast')")
    # Si's basis is made for 12 electrons, the family has only q4
    with pytest.raises(ValueError) as error:
        cp2k.resolve_kinds('fast', ['Si'], library)
    assert str(error.value) == (f"no pseudopotential for Si (GTH-PBE with 12 valence electrons (basis "
                                f"SZV-MOLOPT-SR-GTH)) in {library / 'GTH_POTENTIALS'}; of that family: GTH-PBE-q4 (q4) "
                                "(protocol 'fast')")
    # check_species is the same check (what the WorkChains' port validators call)
    with pytest.raises(ValueError, match='no basis set for Cl'):
        cp2k.check_species('moderate', ['Cl'], library)
    # a protocol dict names itself 'custom' unless it has a name
    protocol = {**cp2k.load_protocol('fast'), 'potential': 'GTH-BLYP'}
    with pytest.raises(ValueError, match=r"no pseudopotential for Na \(GTH-BLYP with 9 .*\(protocol 'custom'\)"):
        cp2k.resolve_kinds(protocol, ['Na'], library)


def test_overrides_and_no_library(library, tmp_path_factory):
    protocol = cp2k.deep_merge(cp2k.load_protocol('fast'), {'basis_overrides': {'Ar': ['NOPE', 'SZV-MOLOPT-GTH']}})
    assert cp2k.resolve_kinds(protocol, ['Ar'], library)['Ar']['basis_set'] == 'SZV-MOLOPT-GTH'
    # no files where CP2K will run is no reason to refuse: the first preference and the family name
    empty = tmp_path_factory.mktemp('empty')
    assert cp2k.resolve_kinds('moderate', ['Cl'], empty) == {
        'Cl': {'basis_set': 'DZVP-MOLOPT-SR-GTH', 'potential': 'GTH-PBE', 'valence': None, 'resolved': False}}
    with pytest.raises(ValueError, match='no chemical symbols'):
        cp2k.resolve_kinds('fast', [], library)


def test_read_library_reads_headers_and_valences():
    entries = cp2k.read_library(POTENTIALS, 'potential')
    assert [(e.element, e.names[0], e.valence) for e in entries] == [
        ('Na', 'GTH-PBE-q9', 9), ('Cu', 'GTH-PBE-q11', 11), ('Cu', 'GTH-PBE-q19', 19), ('Ar', 'GTH-PBE-q8', 8),
        ('Si', 'GTH-PBE-q4', 4), ('O', 'GTH-BLYP-q6', 6), ('O', 'GTH-PBE-q6', 6)]
    basis = cp2k.read_library(BASIS, 'basis')
    assert [(e.element, e.valence) for e in basis] == [('Na', 9), ('Cu', 19), ('Ar', 8), ('Si', 12), ('O', None)]
    with pytest.raises(ValueError, match="kind must be 'basis' or 'potential'"):
        cp2k.read_library(BASIS, 'ecp')


def test_rvv10_renders_cp2k_non_local_section(cp2k_data):
    protocol = cp2k.deep_merge(cp2k.load_protocol('fast'), {
        'vdw': {'type': 'rVV10', 'cutoff': 300}, 'xc': {'GGA_X_RPW86': {}, 'GGA_C_PBE': {}}})
    xc = cp2k.single_point_parameters(protocol, ['Ar', 'Ar'])['FORCE_EVAL']['DFT']['XC']
    assert xc['VDW_POTENTIAL'] == {'POTENTIAL_TYPE': 'NON_LOCAL', 'NON_LOCAL': {
        'TYPE': 'RVV10', 'PARAMETERS': '6.3 0.0093', 'KERNEL_FILE_NAME': 'rVV10_kernel_table.dat', 'CUTOFF': 300.0}}
    text = Cp2kInput({'FORCE_EVAL': {'DFT': {'XC': xc}}}).render()
    for line in ('&GGA_X_RPW86', '&GGA_C_PBE', 'POTENTIAL_TYPE NON_LOCAL', '&NON_LOCAL', 'TYPE RVV10',
                 'PARAMETERS 6.3 0.0093', 'KERNEL_FILE_NAME rVV10_kernel_table.dat', 'CUTOFF 300.0'):
        assert line in text, line
    assert 'PAIR_POTENTIAL' not in text and 'XC_FUNCTIONAL PBE' not in text
    assert (cp2k_data / cp2k.RVV10_KERNEL_FILE).is_file()  # CP2K finds it in its data directory
    # own parameters, no cutoff (CP2K then uses the MGRID cutoff)
    section = cp2k.vdw_potential({'type': 'RVV10', 'parameters': [9.3, 0.0093]}, 'PBE')
    assert section['NON_LOCAL'] == {'TYPE': 'RVV10', 'PARAMETERS': '9.3 0.0093',
                                    'KERNEL_FILE_NAME': 'rVV10_kernel_table.dat'}
    with pytest.raises(ValueError, match=r'vdw rVV10: parameters must be \[b, C\], got \[6.3\]'):
        cp2k.vdw_potential({'type': 'rVV10', 'parameters': [6.3]}, 'PBE')
    with pytest.raises(ValueError, match='vdw.parameters\\[1\\] must be a finite number > 0'):
        cp2k.vdw_potential({'type': 'rVV10', 'parameters': [6.3, -1]}, 'PBE')
    with pytest.raises(ValueError, match='D3 reference functional must be a name'):
        cp2k.vdw_potential({'type': 'DFTD3', 'r_cutoff': 15}, {'GGA_X_RPW86': {}})


def test_vdw_overrides_replace_d3_by_rvv10():
    overrides = cp2k.vdw_overrides({'type': 'rVV10'}, 'moderate', xc={'GGA_X_RPW86': {}, 'GGA_C_PBE': {}})
    cp2k.check_overrides(overrides)  # what the WorkChains check
    parameters = cp2k.deep_merge(cp2k.single_point_parameters('moderate', ['Ar']), overrides)
    xc = parameters['FORCE_EVAL']['DFT']['XC']
    assert xc == {'XC_FUNCTIONAL': {'GGA_X_RPW86': {}, 'GGA_C_PBE': {}},
                  'VDW_POTENTIAL': {'POTENTIAL_TYPE': 'NON_LOCAL', 'NON_LOCAL': {
                      'TYPE': 'RVV10', 'PARAMETERS': '6.3 0.0093', 'KERNEL_FILE_NAME': 'rVV10_kernel_table.dat'}}}
    # the reference of such labels says so, and differs from the D3 one
    reference = cp2k_reference('moderate', overrides)
    assert reference['label'].startswith('cp2k moderate: GGA_C_PBE+GGA_X_RPW86+RVV10 DZVP-MOLOPT-SR-GTH/GTH-PBE')
    assert reference['id'] != cp2k_reference('moderate')['id']
    # removing the dispersion
    none = cp2k.deep_merge(cp2k.single_point_parameters('moderate', ['Ar']), cp2k.vdw_overrides(None, 'moderate'))
    assert none['FORCE_EVAL']['DFT']['XC'] == {'XC_FUNCTIONAL': {'_': 'PBE'}}
