"""gap_fit fits the same GAP from a protocol's add_species descriptors and from them written out per species
(``science.gap.explicit_descriptors``, used by the study scripts): 6 BMHTF-labelled 64-ion NaCl frames."""

import subprocess

import numpy as np
import pytest
from ase.io import read, write

from aiida_mlfail.science import gap
from tests.helpers import nacl_configurations
from tests.science.test_explicit_descriptors import PROTOCOL

pytestmark = pytest.mark.integration


def test_gap_fit_gives_the_same_gap_both_ways(tmp_path):
    import quippy.potential  # a dependency of the package: never skipped

    write(tmp_path / 'train.xyz', nacl_configurations(6), format='extxyz')
    predictions = {}
    for name, descriptors in (('protocol', PROTOCOL), ('explicit', gap.explicit_descriptors(PROTOCOL, ['Na', 'Cl']))):
        arguments = gap.gap_fit_arguments(gap.normalise_fit_parameters({'descriptors': descriptors}), 'train.xyz',
                                          f'{name}.xml')
        done = subprocess.run(['gap_fit', *arguments], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        potential = quippy.potential.Potential(param_filename=str(tmp_path / f'{name}.xml'))
        energies, forces = [], []
        for atoms in read(tmp_path / 'train.xyz', ':'):
            atoms.calc = potential
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
        predictions[name] = (np.array(energies), np.array(forces))
    assert 'add_species=T' in gap.descriptor_string(PROTOCOL[1])
    np.testing.assert_array_equal(predictions['explicit'][0], predictions['protocol'][0])
    np.testing.assert_array_equal(predictions['explicit'][1], predictions['protocol'][1])
    assert np.ptp(predictions['protocol'][0]) > 0  # a real fit, not a constant
