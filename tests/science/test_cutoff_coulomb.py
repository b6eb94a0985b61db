"""The cutoff-Coulomb references against their own energy: a central finite difference of the LAMMPS energy of a
64-ion NaCl melt along one atom's x coordinate, compared with the force LAMMPS reports on that atom.

``born/coul/dsf`` (damped shifted force, Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006)) is force-consistent;
``born/coul/wolf`` in LAMMPS is not (the reason the long-range study uses DSF as its cutoff reference,
``workflows/nacl_long_range.py``)."""

import subprocess
import sys

import numpy as np
import pytest
from ase.io import write

from aiida_mlfail.science import structures
from aiida_mlfail.science.potentials import ReferencePotential

LMP = [sys.executable, '-m', 'aiida_mlfail.engines.lmp']
#: Displacement (Å) of the central difference; its truncation error (h^2 f'''/6) is far below the tolerances.
H = 1e-4


def _energies_and_force(tmp_path, potential, atoms, atom: int):
    """Energy (eV) at x - H, x + H of ``atom`` and the LAMMPS force (eV/Å) on it at x, in one LAMMPS run."""
    data = tmp_path / 'structure.data'
    write(data, atoms, format='lammps-data', atom_style=potential.atom_style, specorder=list(potential.species),
          masses=True, units='metal')
    i = atom + 1
    lines = ['units metal', f'atom_style {potential.atom_style}', 'atom_modify map array', 'boundary p p p',
             f'read_data {data}', *potential.lammps_commands(), f'group one id {i}', f'variable fx equal fx[{i}]',
             'thermo_style custom step pe v_fx', 'thermo_modify format float %.12g', 'run 0',
             f'displace_atoms one move {-H} 0 0 units box', 'run 0',
             f'displace_atoms one move {2 * H} 0 0 units box', 'run 0']
    (tmp_path / 'in.lmp').write_text('\n'.join(lines) + '\n')
    result = subprocess.run([*LMP, '-in', str(tmp_path / 'in.lmp'), '-log', 'none'], capture_output=True, text=True,
                            cwd=tmp_path, check=True)
    rows = [block.splitlines()[1].split() for block in result.stdout.split('Step')[1:]]
    (_, _, force), (_, e_minus, _), (_, e_plus, _) = [[float(v) for v in row] for row in rows]
    return e_minus, e_plus, force


@pytest.fixture(scope='module')
def melt():
    """64 ions of NaCl at 2300 Å^3 (the molten density at 1400 K), rattled by 0.25 Å: a melt-like configuration."""
    atoms = structures.molten_nacl(64, volume=2300.0)
    atoms.positions += np.random.default_rng(3).normal(scale=0.25, size=atoms.positions.shape)
    return atoms


def _force_error(tmp_path, name, melt):
    potential = ReferencePotential(name, {'alpha': 0.25, 'cutoff': 6.0})
    errors = []
    for atom in (0, 1, 17):  # a Na and two Cl
        e_minus, e_plus, force = _energies_and_force(tmp_path, potential, melt, atom)
        errors.append((force, -(e_plus - e_minus) / (2 * H)))
    return np.array(errors)


def test_dsf_forces_are_the_negative_energy_gradient(tmp_path, melt):
    pairs = _force_error(tmp_path, 'bmhtf_dsf', melt)
    force, gradient = pairs.T
    assert np.all(np.abs(force) > 0.01)  # forces of a rattled melt, not a symmetric site
    assert force == pytest.approx(gradient, abs=2e-4)


def test_wolf_forces_are_not_the_negative_energy_gradient(tmp_path, melt):
    pairs = _force_error(tmp_path, 'bmhtf_wolf', melt)
    force, gradient = pairs.T
    assert np.max(np.abs(force - gradient)) > 5e-3
    print('born/coul/wolf force vs -dE/dx (eV/Å):', pairs.tolist())
