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


# --- check_structure: structures refused before any job (issue 13) ---------------------------------


from ase import Atoms  # noqa: E402
from ase.io import read  # noqa: E402

from aiida_mlfail.science.structures import MIN_DISTANCE_FRACTION, argon, check_structure, molten_nacl  # noqa: E402
from tests.helpers import FIXTURES  # noqa: E402


def _overlap(distance):
    atoms = molten_nacl(64)
    atoms.positions[1] = atoms.positions[0] + [distance, 0.0, 0.0]
    return atoms


@pytest.mark.parametrize('distance', [0.0, 0.2])
def test_check_structure_names_the_overlapping_pair_and_distance(distance):
    with pytest.raises(ValueError,
                       match=rf'atoms 0 \(Na\) and 1 \(Cl\) are {distance:.3f} Å apart, closer than 1.072 Å'):
        check_structure(_overlap(distance))


def test_check_structure_uses_the_minimum_image():
    atoms = Atoms('NaCl', positions=[[0.1, 5, 5], [9.95, 5, 5]], cell=[10, 10, 10], pbc=True)  # 0.15 Å across the face
    with pytest.raises(ValueError, match=r'0.150 Å apart'):
        check_structure(atoms)
    atoms.pbc = False
    check_structure(atoms, periodic=False)  # 9.85 Å apart without periodic images


@pytest.mark.parametrize('atoms, words', [
    (Atoms(cell=[5, 5, 5], pbc=True), 'has no atoms'),
    (Atoms('NaCl', positions=[[0, 0, 0], [2.8, 0, 0]]), 'periodic cell is needed'),
    (Atoms('NaCl', positions=[[0, 0, 0], [2.8, 0, 0]], cell=[5.6, 5.6, 0], pbc=True), 'zero volume'),
    (Atoms('NaCl', positions=[[0, 0, 0], [np.nan, 0, 0]], cell=[5.6, 5.6, 5.6], pbc=True),
     'atom 1 (Cl) has a non-finite'),
    (Atoms('NaCl', positions=[[0, 0, 0], [2.8, 0, 0]], cell=[5.6, 5.6, np.inf], pbc=True), 'cell has non-finite'),
    (Atoms('Na', cell=[1.0, 5, 5], pbc=True), 'atom 0 (Na) and its own periodic image are 1.000 Å apart'),
    (Atoms('XNa', positions=[[0, 0, 0], [3, 0, 0]], cell=[6, 6, 6], pbc=True),
     'atomic number 0, not a chemical element'),
])
def test_check_structure_refusals(atoms, words):
    with pytest.raises(ValueError) as info:
        check_structure(atoms, where='start')
    assert str(info.value).startswith('start: ') and words in str(info.value)


def test_check_structure_non_periodic_run_accepts_a_molecule():
    check_structure(Atoms('NaCl', positions=[[0, 0, 0], [2.4, 0, 0]]), periodic=False)
    with pytest.raises(ValueError, match='0.500 Å apart'):
        check_structure(Atoms('NaCl', positions=[[0, 0, 0], [0.5, 0, 0]]), periodic=False)


def test_check_structure_accepts_the_built_and_committed_structures():
    """The study structures and every committed input/MD frame pass (liquids, compressed, guard-free frames)."""
    for atoms in (molten_nacl(64), molten_nacl(216), molten_nacl(64, density=2.2), argon(3), argon(4)):
        check_structure(atoms)
    frames = read(FIXTURES / 'lammps_sample' / 'frames.dump', index=':', format='lammps-dump-text')
    frames += read(FIXTURES / 'cp2k' / 'aimd' / 'aiida-pos-1.xyz', index=':')
    frames += [read(FIXTURES / 'cp2k' / 'compressed' / 'aiida.coords.xyz'),
               read(FIXTURES / 'explore' / 'novel' / 'trigger.xyz')]  # a poor GAP's novel config: Na-Na 0.475 x
    for atoms in frames:
        if 'type' in atoms.arrays:  # dump: type 1 Na, 2 Cl
            atoms.numbers = np.where(atoms.arrays['type'] == 1, 11, 17)
        if not atoms.pbc.all():  # CP2K xyz frames carry no cell: the run's 13.1 Å box
            atoms.cell, atoms.pbc = [13.1] * 3, True
        check_structure(atoms)


def test_check_structure_min_fraction():
    atoms = _overlap(1.2)  # Na-Cl 1.2 Å = 0.448 x (1.66 + 1.02)
    check_structure(atoms)  # default 0.4
    with pytest.raises(ValueError, match='closer than 1.340 Å'):
        check_structure(atoms, min_fraction=0.5)
    check_structure(_overlap(0.0), min_fraction=0.0)  # 0: other checks only
    with pytest.raises(ValueError, match='min_fraction'):
        check_structure(atoms, min_fraction=1.5)
    assert MIN_DISTANCE_FRACTION == 0.4
    check_structure(molten_nacl(512))  # a 512-ion melt passes (no timing here: performance is for benchmarks/)
