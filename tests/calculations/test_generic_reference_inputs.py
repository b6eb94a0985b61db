"""LAMMPS inputs written for a generic reference (``calculations.functions.lammps_inputs``): the commands, the
charges of the reference (no species table), the files as calcfunction inputs hashed into the reference id."""

import hashlib

import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlfail.calculations.functions import prepare_sampling, prepare_single_points
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.references import lammps_reference
from tests.helpers import FIXTURES

EAM_FILE = FIXTURES / 'eam_cu' / 'Cu_model.eam'
EAM = {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
       'commands': ['pair_style eam', 'pair_coeff 1 1 Cu_model.eam'], 'files': ['Cu_model.eam']}
POINT = {'temperature': 600.0, 'volume': 378.0}
MD = {'equilibration_steps': 0, 'production_steps': 10, 'sampling_interval': 5}


def test_sampling_inputs_of_an_eam_reference_record_the_file():
    node = orm.SinglefileData(EAM_FILE, filename='Cu_model.eam')
    structure = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6147, cubic=True).repeat(2))
    result = prepare_sampling(structure, orm.Dict(EAM), orm.Dict(POINT), orm.Dict(MD), Cu_model_eam=node)
    script = result['script'].get_content()
    assert 'atom_style atomic' in script and 'mass 1 63.546\npair_style eam\npair_coeff 1 1 Cu_model.eam' in script
    digest = hashlib.sha256(EAM_FILE.read_bytes()).hexdigest()
    reference = result['settings']['reference']
    assert reference == lammps_reference(EAM, {'Cu_model.eam': digest})
    assert reference['id'] != lammps_reference(EAM, {'Cu_model.eam': '0' * 64})['id']
    # the file is an input of the calcfunction (provenance)
    creator = result['script'].creator
    assert creator.inputs.Cu_model_eam.uuid == node.uuid


def test_sampling_inputs_refuse_a_missing_file():
    structure = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6147, cubic=True).repeat(2))
    with pytest.raises(ValueError, match=r"names the file\(s\) \['Cu_model.eam'\]"):
        prepare_sampling(structure, orm.Dict(EAM), orm.Dict(POINT), orm.Dict(MD))


def test_charges_come_from_the_reference():
    """A generic charged reference of K and F: the data file carries its charges (no table of species)."""
    reference = {'name': 'lammps', 'species': ['K', 'F'], 'atom_style': 'charge', 'charges': {'K': 0.8, 'F': -0.8},
                 'commands': ['pair_style born/coul/wolf 0.25 6.0', 'pair_coeff * * 0.0 0.3 0.0 0.0 0.0']}
    atoms = bulk('KF', 'rocksalt', a=5.35, cubic=True)
    frames = TrainingSetData.from_atoms([atoms, atoms])
    result = prepare_single_points(frames, orm.Dict(reference))
    data = result['structure_file'].get_content()
    rows = [line.split() for line in data.split('Atoms # charge')[1].strip().splitlines()]
    charges = sorted({float(row[2]) for row in rows})
    assert charges == [-0.8, 0.8]
    assert result['settings']['type_map'] == ['K', 'F']
    assert 'pair_style born/coul/wolf 0.25 6.0' in result['script'].get_content()
