"""``atom_style full`` references (issue 15): the data file with the topology (``science.topology``), its place in
the generic reference and the reference id, and the LAMMPS commands that read it."""

import pathlib

import numpy as np
import pytest
import yaml

from aiida_mlfail.science import lammps_md, mlmd
from aiida_mlfail.science import references as refs
from aiida_mlfail.science.potentials import ReferencePotential, check_commands
from aiida_mlfail.science.structures import structure_from_data_file
from aiida_mlfail.science.topology import check_data_file, read_data_file, whole_molecules

WATER_DIR = pathlib.Path(__file__).parents[2] / 'examples' / 'water'
WATER_DATA = WATER_DIR / 'water.data'


def water_reference() -> dict:
    """The reference of examples/water/water.yaml, with ``files`` as the list of names."""
    reference = yaml.safe_load((WATER_DIR / 'water.yaml').read_text())['reference']
    return {**reference, 'files': list(reference['files'])}


def test_the_water_reference_is_a_full_reference_with_its_data_file():
    potential = ReferencePotential.from_dict(water_reference())
    assert potential.atom_style == 'full' and potential.data_file == 'water.data'
    assert potential.files == ('water.data',) and potential.charges == {}
    assert potential.lammps_commands()[:2] == ['mass 1 15.999', 'mass 2 1.008']
    assert 'bond_style harmonic' in potential.lammps_commands()
    assert potential.to_dict()['data_file'] == 'water.data'
    assert ReferencePotential.from_dict(potential.to_dict()).to_dict() == potential.to_dict()


def test_other_references_keep_their_generic_form_and_id():
    """``data_file`` appears only for full references, so existing ids do not change."""
    morse = {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
             'commands': ['pair_style morse 6.0', 'pair_coeff 1 1 0.3429 1.3588 2.866']}
    assert 'data_file' not in ReferencePotential.from_dict(morse).to_dict()
    assert refs.lammps_reference(morse)['id'] == refs.digest(
        {'kind': 'lammps', 'potential': {**morse, 'files': [], 'charges': {}}, 'file_digests': {}})


def test_the_reference_id_hashes_the_data_file_content():
    first = refs.lammps_reference(water_reference(), {'water.data': 'a' * 64})
    second = refs.lammps_reference(water_reference(), {'water.data': 'b' * 64})
    assert first['id'] != second['id']
    assert first['label'] == 'lammps O-H (pair_style lj/cut/coul/long 7.0; files water.data)'


def test_topology_commands_pass_the_whitelist_and_dangerous_ones_do_not():
    lines = ['pair_style lj/cut/coul/long 7.0', 'pair_coeff 1 1 0.0067 3.16', 'bond_style harmonic',
             'bond_coeff 1 22.96 1.012', 'angle_style harmonic', 'angle_coeff 1 1.65 113.24',
             'dihedral_style opls', 'dihedral_coeff 1 1.0 0.0 0.0 0.0', 'improper_style harmonic',
             'improper_coeff 1 1.0 0.0', 'special_bonds lj/coul 0.0 0.0 0.5', 'kspace_style pppm 1.0e-5']
    assert check_commands(lines, ['O', 'H']) == lines
    with pytest.raises(ValueError, match="style 'python' is not allowed"):
        check_commands(['pair_style lj/cut 5.0', 'bond_style python'], ['O', 'H'])
    with pytest.raises(ValueError, match="file 'bonds.table' is not among the files"):
        check_commands(['pair_style lj/cut 5.0', 'bond_style table linear 100', 'bond_coeff 1 bonds.table OH'],
                       ['O', 'H'])


def test_the_water_data_file_reads_with_symbols_from_the_species():
    atoms = read_data_file(WATER_DATA.read_text(), ['O', 'H'], 'water.data')
    assert atoms.get_chemical_symbols() == ['O', 'H', 'H'] * 16
    assert np.allclose(atoms.get_initial_charges(), [-0.82, 0.41, 0.41] * 16)
    density = atoms.get_masses().sum() / atoms.get_volume() * 1.66053907  # amu/Å^3 -> g/cm^3
    assert density == pytest.approx(1.0, abs=1e-4)
    distances = [atoms.get_distance(3 * m, 3 * m + k, mic=True) for m in range(16) for k in (1, 2)]
    assert np.allclose(distances, 1.012)
    structure = structure_from_data_file(WATER_DATA, ['O', 'H'])
    assert structure.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert np.allclose(structure.positions, atoms.positions) and 'bonds' not in structure.arrays


WATER_COMMANDS = ['bond_style harmonic', 'angle_style harmonic']


@pytest.mark.parametrize('edit, symbols, words', [
    (lambda t: t.replace('Bonds', 'Bondz'), None, ['topology missing for full', "'water.data'", 'no Bonds']),
    (lambda t: 'not a data file\n', None, ["'water.data' is not a LAMMPS data file of atom_style full"]),
    (lambda t: t.replace('2 atom types', '3 atom types'), None, ['declares 3 atom types', "['O', 'H']"]),
    (lambda t: t, ['O', 'H', 'H'] * 15, ['has 48 atoms but the structure has 45']),
    (lambda t: t, ['H', 'O', 'H'] * 16, ['atom ID 1 is O (type 1) but atom 0 of the structure is H']),
    (lambda t: t.replace('\n48 16 2', '\n50 16 2').replace('32 1 46 48', '32 1 46 50').replace('16 1 47 46 48',
                                                                                                '16 1 47 46 50'),
     None, ['atom IDs must be 1..48']),
])
def test_bad_data_files_are_refused_naming_the_file(edit, symbols, words):
    with pytest.raises(ValueError) as info:
        check_data_file(edit(WATER_DATA.read_text()), 'water.data', ['O', 'H'], WATER_COMMANDS, symbols)
    for word in words:
        assert word in str(info.value)


def test_a_data_file_with_angles_needs_an_angle_style():
    with pytest.raises(ValueError, match="'water.data' has Angles but the reference commands set no angle_style"):
        check_data_file(WATER_DATA.read_text(), 'water.data', ['O', 'H'], ['bond_style harmonic'])


def test_whole_molecules_moves_atoms_to_the_image_nearest_their_molecule():
    atoms = structure_from_data_file(WATER_DATA, ['O', 'H'])
    whole = whole_molecules(atoms, np.repeat(np.arange(1, 17), 3))
    plain = [np.linalg.norm(whole.positions[3 * m + k] - whole.positions[3 * m]) for m in range(16) for k in (1, 2)]
    assert np.allclose(plain, 1.012)  # without minimum image: the molecules are whole
    assert not np.allclose(whole.positions, atoms.positions)  # (some molecule was split by the box)
    with pytest.raises(ValueError, match='3 molecule ids for 48 atoms'):
        whole_molecules(atoms, [1, 1, 1])


def test_jobs_of_a_full_reference_read_the_data_file_then_the_positions():
    potential = ReferencePotential.from_dict(water_reference())
    point = lammps_md.normalise_state_point({'temperature': 300.0, 'volume': 478.6}, ['O', 'H', 'H'] * 16)
    script = lammps_md.sampling_script(potential, point, lammps_md.normalise_md({}))
    assert 'full\nboundary p p p\nread_data water.data\nread_dump start.dump 0 x y z ix iy iz box yes' in script
    rerun = mlmd.rerun_script(potential.lammps_commands(), 'full', 10, topology_file='water.data')
    assert 'read_data water.data\nread_dump start.dump 0 x y z ix iy iz box yes\n' in rerun
    assert rerun.rstrip().endswith('rerun ml_frames.dump dump x y z ix iy iz box yes')
    assert 'read_data structure.data\n' in mlmd.rerun_script(['pair_style lj/cut 5.0'], 'atomic', 10)
    with pytest.raises(ValueError, match='atom_style full needs the data file'):
        lammps_md.read_structure_commands('full')


def test_a_dump_with_image_flags_gives_back_the_whole_molecules():
    atoms = whole_molecules(structure_from_data_file(WATER_DATA, ['O', 'H']), np.repeat(np.arange(1, 17), 3))
    frame = lammps_md.parse_dump(mlmd.write_dump([atoms], ['O', 'H'], [0], images=True))[0]
    wrapped = np.column_stack([frame['x'], frame['y'], frame['z']])
    flags = np.column_stack([frame['ix'], frame['iy'], frame['iz']])
    assert np.all((wrapped >= 0) & (wrapped < atoms.cell.lengths()))
    assert np.abs(flags).max() == 1  # some atoms sit outside the cell
    np.testing.assert_allclose(wrapped + flags @ atoms.cell.array, atoms.positions, atol=1e-9)
