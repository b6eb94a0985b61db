"""Reference potentials and structure builders."""

import numpy as np
import pytest

from aiida_mlfail.science import structures
from aiida_mlfail.science.potentials import BMHTF_NACL, ReferencePotential


def test_bmhtf_coul_long_commands_carry_domain_parameters():
    commands = ReferencePotential('bmhtf_coul_long', {'kspace_accuracy': 1e-6}).lammps_commands()
    assert 'pair_style born/coul/long 6.0' in commands
    assert 'kspace_style pppm 1e-06' in commands
    assert 'pair_coeff 1 2 1256.31 0.317 0.0 7.0 8.676' in commands
    assert 'pair_coeff 2 2 3488.998 0.317 0.0 72.5 145.427' in commands
    assert sum(c.startswith('pair_coeff') for c in commands) == len(BMHTF_NACL) == 3


def test_wolf_and_lj_commands():
    wolf = ReferencePotential('bmhtf_wolf', {'alpha': 0.3, 'cutoff': 9.0}).lammps_commands()
    assert 'pair_style born/coul/wolf 0.3 9.0' in wolf
    assert not any(c.startswith('kspace_style') for c in wolf)
    lj = ReferencePotential('lj_argon').lammps_commands()
    assert 'pair_style lj/cut 13.0' in lj
    epsilon = float(next(c for c in lj if c.startswith('pair_coeff')).split()[3])
    assert epsilon == pytest.approx(0.2381 * 0.0433641, rel=1e-6)  # kcal/mol -> eV


@pytest.mark.parametrize('name, parameters, match', [
    ('bmhtf', {}, 'unknown reference potential'),
    ('bmhtf_wolf', {'cutoff': -1.0}, 'bmhtf_wolf cutoff must be a finite number > 0 Å, got -1.0'),
    ('bmhtf_coul_long', {'kspace_style': 'msm'}, 'kspace_style'),
    ('lj_argon', {'alpha': 0.2}, r"unknown lj_argon parameter key\(s\) \['alpha'\]"),
])
def test_bad_potential_parameters_are_named(name, parameters, match):
    with pytest.raises(ValueError, match=match):
        ReferencePotential(name, parameters)


def test_species_check_names_missing_species():
    with pytest.raises(ValueError, match=r"\['K'\]"):
        ReferencePotential('bmhtf_wolf').check_species(['Na', 'Cl', 'K'])


@pytest.mark.parametrize('n_ions', [64, 200, 1000])
def test_molten_nacl_is_neutral_with_requested_size_and_volume(n_ions):
    atoms = structures.molten_nacl(n_ions, volume=40.0 * n_ions)
    symbols = atoms.get_chemical_symbols()
    assert len(atoms) == n_ions
    assert symbols.count('Na') == symbols.count('Cl')
    assert atoms.get_initial_charges().sum() == 0
    assert atoms.get_volume() == pytest.approx(40.0 * n_ions)


def test_density_volume_round_trip_and_default_box():
    atoms = structures.molten_nacl(64)
    assert atoms.get_volume() == pytest.approx(13.1**3)
    rho = structures.volume_to_density(atoms.get_chemical_symbols(), atoms.get_volume())
    assert rho == pytest.approx(1.381, abs=0.002)  # 32 NaCl (58.44 g/mol) in 13.1^3 Å^3
    assert structures.density_to_volume(atoms.get_chemical_symbols(), rho) == pytest.approx(atoms.get_volume())


def test_builders_reject_bad_input():
    with pytest.raises(ValueError, match='even'):
        structures.molten_nacl(63)
    with pytest.raises(ValueError, match=r'density must be a finite number > 0 g/cm\^3, got 0'):
        structures.molten_nacl(64, density=0.0)
    with pytest.raises(ValueError, match='volume must be positive'):
        structures.scale_to_volume(structures.argon(), -5.0)


def test_argon_box():
    atoms = structures.argon()
    assert len(atoms) == 108
    assert np.allclose(atoms.cell.lengths(), 17.042)
