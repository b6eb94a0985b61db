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


def test_a_full_reference_ships_a_start_dump_and_reads_its_data_file():
    """``atom_style full``: no data file is written from the structure; the job reads the reference's data file and
    then the start dump (molecules whole, with image flags); single points rerun the frames the same way."""
    from aiida_mlfail.science import lammps_md
    from aiida_mlfail.science.structures import structure_from_data_file
    from tests.science.test_topology import WATER_DATA, water_reference

    node = orm.SinglefileData(WATER_DATA, filename='water.data')
    atoms = structure_from_data_file(WATER_DATA, ['O', 'H'])
    result = prepare_sampling(orm.StructureData(ase=atoms), orm.Dict(water_reference()),
                              orm.Dict({'temperature': 300.0, 'density': 1.0}), orm.Dict(MD), water_data=node)
    assert result['structure_file'].filename == lammps_md.START_DUMP
    frame = lammps_md.parse_dump(result['structure_file'].get_content())[0]
    assert {'ix', 'iy', 'iz'} <= set(frame) and list(frame['id']) == list(range(1, 49))
    assert 'read_data water.data\nread_dump start.dump 0 x y z ix iy iz box yes' in result['script'].get_content()
    assert result['settings']['reference'] == lammps_reference(
        water_reference(), {'water.data': hashlib.sha256(WATER_DATA.read_bytes()).hexdigest()})
    labelled = prepare_single_points(TrainingSetData.from_atoms([atoms, atoms]), orm.Dict(water_reference()),
                                     water_data=node)
    assert labelled['structure_file'].filename == lammps_md.START_DUMP
    assert 'ITEM: ATOMS id type x y z ix iy iz' in labelled['dump_file'].get_content()
    assert labelled['script'].get_content().rstrip().endswith('rerun ml_frames.dump dump x y z ix iy iz box yes')
    swapped = atoms.copy()
    swapped.set_chemical_symbols(['H', 'O', 'H'] * 16)
    with pytest.raises(ValueError, match="'water.data': atom ID 1 is O"):
        prepare_sampling(orm.StructureData(ase=swapped), orm.Dict(water_reference()), orm.Dict(POINT), orm.Dict(MD),
                         water_data=node)
