"""The generic LAMMPS reference (``science.potentials``): command grammar, files, charges, and the presets as
named instances of it."""

import pytest

from aiida_mlfail.science import references as refs
from aiida_mlfail.science.potentials import (
    PRESETS,
    ReferencePotential,
    check_commands,
    check_generic,
    files_message,
    resolve_reference,
)

EAM = {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
       'commands': ['pair_style eam', 'pair_coeff 1 1 Cu_u3.eam'], 'files': ['Cu_u3.eam']}
MORSE = {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
         'commands': ['pair_style morse 6.0', 'pair_coeff 1 1 0.3429 1.3588 2.866']}


def test_generic_reference_renders_masses_then_the_commands():
    potential = ReferencePotential.from_dict(EAM)
    assert potential.species == ('Cu',) and potential.atom_style == 'atomic' and potential.files == ('Cu_u3.eam',)
    assert potential.lammps_commands() == ['mass 1 63.546', 'pair_style eam', 'pair_coeff 1 1 Cu_u3.eam']
    assert potential.to_dict() == {**EAM, 'charges': {}}
    assert ReferencePotential.from_dict(potential.to_dict()).to_dict() == potential.to_dict()
    assert potential.atom_charges(['Cu', 'Cu']) == [0.0, 0.0]


@pytest.mark.parametrize('commands', [
    ['pair_style   morse 6.0', 'pair_coeff * * 0.3429 1.3588 2.866', 'pair_modify shift yes'],
    ['pair_style eam/alloy', 'pair_coeff * * CuNi.eam.alloy Cu Ni'],
    ['pair_style hybrid/overlay eam/alloy morse 5.0', 'pair_coeff * * eam/alloy CuNi.eam.alloy Cu Ni',
     'pair_coeff 1 2 morse 0.1 1.0 2.5'],
    ['pair_style sw/omp', 'pair_coeff * * CuNi.eam.alloy Cu Ni'],
    ['pair_style coul/long 8.0', 'pair_coeff * *', 'kspace_style ewald 1e-6', 'kspace_modify gewald 0.3',
     'set type 2 charge -0.5', 'dielectric 1.0', 'neighbor 1.0 bin', 'neigh_modify every 1 delay 0 check yes',
     'special_bonds lj/coul 0.0 0.0 0.5'],
])
def test_force_field_commands_are_accepted(commands):
    lines = check_commands(commands, ['Cu', 'Ni'], ['CuNi.eam.alloy'])
    assert lines[0] == ' '.join(commands[0].split())


@pytest.mark.parametrize('command, words', [
    ('shell rm -rf x', ["'shell' is not allowed"]),
    ('python f input 1 x format f file x.py', ["'python' is not allowed"]),
    ('include other.in', ["'include' is not allowed"]),
    ('print hello', ["'print' is not allowed"]),
    ('log /tmp/x.log', ["'log' is not allowed"]),
    ('dump d all atom 1 x.dump', ["'dump' is not allowed"]),
    ('fix f all nve', ["'fix' is not allowed"]),
    ('variable a equal 1', ["'variable' is not allowed"]),
    ('read_restart x.restart', ["'read_restart' is not allowed"]),
    ('write_data x.data', ["'write_data' is not allowed"]),
    ('run 10', ["'run' is not allowed"]),
    ('pair_coeff 1 1 ${eps} 1.0', ['no quote, $']),
    ('pair_coeff 1 1 $(1+1) 1.0', ['no quote, $']),
    ('pair_coeff 1 1 "a" 1.0', ['no quote']),
    ('pair_coeff 1 1 1.0 1.0 & ', ['no quote']),
    ('pair_coeff 1 1 1.0 1.0; shell ls', ['no quote']),
    ('pair_coeff 1 1 1.0 1.0\nshell ls', ['no quote']),
    ('pair_coeff 1 1 1.0 1.0 # comment', ['no quote']),
    ('pair_style python 5.0', ["style 'python' is not allowed"]),
    ('pair_style hybrid morse 5.0 kim', ["style 'kim' is not allowed"]),
    ('set type 1 mass 2.0', ['set type N charge Q']),
    ('set group all charge 1.0', ['set type N charge Q']),
    ('pair_coeff 1 3 1.0 1.0 2.0', ['type 3 is outside 1..2']),
    ('pair_coeff 1 x 1.0 1.0 2.0', ["'x' is not a type"]),
])
def test_refused_commands_are_named(command, words):
    with pytest.raises(ValueError) as info:
        check_commands(['pair_style morse 6.0', command], ['Cu', 'Ni'])
    for word in words:
        assert word in str(info.value)
    assert f'command {command[:12]!r}'[:-1] in str(info.value)  # the message quotes the command


@pytest.mark.parametrize('commands, files, words', [
    (['pair_style eam', 'pair_coeff 1 1 Cu_u3.eam'], [], ["file 'Cu_u3.eam' is not among the files"]),
    (['pair_style eam', 'pair_coeff 1 1 Cu_u3'], ['Cu_u3.eam'], ["file 'Cu_u3' is not among the files"]),
    (['pair_style eam/alloy', 'pair_coeff * * ../pot/Cu.eam.alloy Cu'], [], ["'../pot/Cu.eam.alloy'"]),
    (['pair_style eam/alloy', 'pair_coeff * * /etc/passwd Cu'], [], ["'/etc/passwd' is not among the files"]),
    (['pair_style hybrid eam/alloy morse 5', 'pair_coeff * * eam/alloy other Cu'], ['Cu.eam'],
     ["file 'other' is not among"]),
    (['pair_style table linear 100', 'pair_coeff 1 1 tab KEY'], [], ["file 'tab' is not among"]),
    (['pair_coeff 1 1 1.0 1.0 2.0'], [], ['define no pair_style']),
])
def test_files_named_by_commands_must_be_listed(commands, files, words):
    with pytest.raises(ValueError) as info:
        check_commands(commands, ['Cu'], files)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize('change, words', [
    ({'files': ['../Cu_u3.eam']}, ['files must be a bare file name', "'../Cu_u3.eam'"]),
    ({'files': ['Cu_u3.eam', 'Cu_u3.eam']}, ['lists a name twice']),
    ({'files': ['Cu_u3.eam', 'unused.eam']}, ["files ['unused.eam'] are named by no command"]),
    ({'files': ['structure.data'], 'commands': ['pair_style eam', 'pair_coeff 1 1 structure.data']},
     ["'structure.data' is a name the package writes"]),
    ({'species': ['Cu', 'Cu']}, ['lists a symbol twice']),
    ({'species': ['Xx']}, ["'Xx' is not a chemical symbol"]),
    ({'species': []}, ['species must be a non-empty list']),
    ({'atom_style': 'full'}, ["atom_style full needs 'data_file'"]),
    ({'atom_style': 'full', 'data_file': 'water.data'}, ["data_file 'water.data' is not among the files"]),
    ({'data_file': 'Cu_u3.eam'}, ["data_file 'Cu_u3.eam' given with", 'only read with atom_style full']),
    ({'atom_style': 'full', 'data_file': 'Cu_u3.eam', 'charges': {'Cu': 1.0}}, ['those of the data file']),
    ({'atom_style': 'molecular'}, ["atom_style must be one of ['atomic', 'charge', 'full'], got 'molecular'"]),
    ({'atom_style': 'charge'}, ['atom_style charge needs charges of exactly the species', "['Cu']"]),
    ({'charges': {'Cu': 1.0}}, ['given with atom_style atomic']),
    ({'commands': 'pair_style eam'}, ['commands must be a non-empty list']),
    ({'colour': 'red'}, ["unknown reference potential key(s) ['colour']"]),
])
def test_bad_generic_references_are_refused(change, words):
    with pytest.raises(ValueError) as info:
        ReferencePotential.from_dict({**EAM, **change})
    for word in words:
        assert word in str(info.value)


def test_charges_must_cover_the_species_and_be_numbers():
    charged = {**MORSE, 'species': ['Na', 'Cl'], 'atom_style': 'charge'}
    potential = ReferencePotential.from_dict({**charged, 'charges': {'Na': 1, 'Cl': -1}})
    assert potential.atom_charges(['Cl', 'Na']) == [-1.0, 1.0]
    with pytest.raises(ValueError, match=r"charges of exactly the species \['Na', 'Cl'\], got charges of \['Na'\]"):
        ReferencePotential.from_dict({**charged, 'charges': {'Na': 1}})
    with pytest.raises(ValueError, match="charges.Cl must be a finite number e, got 'minus one'"):
        ReferencePotential.from_dict({**charged, 'charges': {'Na': 1, 'Cl': 'minus one'}})


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_presets_resolve_to_the_generic_form(name):
    """Every preset passes the same checks as a user's reference and renders the same commands from it."""
    generic = resolve_reference({'name': name})
    assert generic == check_generic(generic)
    assert ReferencePotential.from_dict(generic).lammps_commands() == ReferencePotential(name).lammps_commands()
    if name.startswith('bmhtf'):
        assert generic['atom_style'] == 'charge' and generic['charges'] == {'Na': 1.0, 'Cl': -1.0}
    else:
        assert generic['atom_style'] == 'atomic' and generic['charges'] == {}


def test_preset_reference_ids_are_unchanged_and_generic_ids_hash_the_file_contents():
    # the id of a preset is the digest of {'name', 'parameters'} as before generic references
    assert refs.lammps_reference({'name': 'lj_argon'})['id'] == refs.digest(
        {'kind': 'lammps', 'potential': {'name': 'lj_argon', 'parameters': {'cutoff': 13.0}}})
    a = refs.lammps_reference(EAM, {'Cu_u3.eam': 'a' * 64})
    b = refs.lammps_reference(EAM, {'Cu_u3.eam': 'b' * 64})
    assert a['id'] != b['id'] and a['label'] == 'lammps Cu (pair_style eam; files Cu_u3.eam)'
    assert refs.lammps_reference(MORSE)['label'] == 'lammps Cu (pair_style morse 6.0)'
    with pytest.raises(ValueError, match='do not match'):
        refs.lammps_reference(EAM)


def test_files_message_names_missing_extra_and_twice():
    assert files_message(['a.eam'], ['a.eam']) is None
    assert "['a.eam']" in files_message(['a.eam'], [])
    assert "potential file(s) ['b.eam'] are not among" in files_message(['a.eam'], ['a.eam', 'b.eam'])
    assert 'same file name' in files_message(['a.eam'], ['a.eam', 'a.eam'])
