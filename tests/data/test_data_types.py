"""TrainingSetData and GapPotentialData."""

import numpy as np
import pytest
from ase.io import read

from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from tests.helpers import FIXTURES, nacl_configurations


def test_training_set_attributes_and_round_trip(tmp_path):
    configurations = nacl_configurations(3)
    node = TrainingSetData.from_atoms(configurations).store()
    assert node.n_configurations == 3
    assert node.species == ['Cl', 'Na']
    assert node.n_atoms == {'min': 64, 'max': 64}
    assert node.labels == ['energy', 'forces', 'virial', 'atomic_energies']
    assert [c['md_step'] for c in node.configurations] == [100, 200, 300]
    back = node.get_atoms()
    assert np.allclose(back[2].arrays['forces'], configurations[2].arrays['forces'])
    path = node.export(tmp_path / 'set.xyz')
    frames = read(path, ':')  # plain ASE reads it
    assert len(frames) == 3 and frames[0].get_potential_energy() == pytest.approx(configurations[0].info['energy'])


def test_training_set_labels_are_the_common_subset():
    configurations = nacl_configurations(2)
    del configurations[1].info['virial']
    assert TrainingSetData.from_atoms(configurations).labels == ['energy', 'forces', 'atomic_energies']


def test_training_set_rejects_nan_and_empty(tmp_path):
    configurations = nacl_configurations(2)
    configurations[0].arrays['forces'][0, 0] = np.nan
    path = tmp_path / 'nan.xyz'
    from aiida_mlfail.science.extxyz import write_configurations

    write_configurations(path, configurations)
    with pytest.raises(ValueError, match='configuration 0: forces of atom 0 is not finite'):
        TrainingSetData.from_file(path)
    with pytest.raises(ValueError, match='at least one configuration'):
        TrainingSetData.from_atoms([])


def test_gap_potential_from_folder_calculator_and_pair_commands():
    node = GapPotentialData.from_folder(FIXTURES / 'gap_fit_ok', command_line='gap_fit ...', training_set_uuid='x')
    node.store()
    assert node.species == ['Na', 'Cl'] and node.cutoff == 5.0
    assert len(node.base.attributes.get('files')) == 4
    lines = node.lammps_pair_commands(['Na', 'Cl'])
    assert lines == ['pair_style quip', f'pair_coeff * * gap.xml "IP GAP label={node.label}" 11 17']
    with pytest.raises(ValueError, match=r"\['Ar'\]"):
        node.lammps_pair_commands(['Ar'])
    atoms = nacl_configurations(1)[0]
    atoms.calc = node.get_calculator()
    energy = atoms.get_potential_energy()
    assert np.isfinite(energy)
    # a 2-body GAP on three frames reproduces the training energy to within a few meV/atom
    assert abs(energy - nacl_configurations(1)[0].info['energy']) / len(atoms) < 0.01
