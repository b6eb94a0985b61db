"""LAMMPS sampling scripts and output parsing, including real LAMMPS runs (mlfail-lmp engine)."""

import subprocess
import sys

import numpy as np
import pytest
from ase.io import write

from aiida_mlfail.science import lammps_md, structures
from aiida_mlfail.science.potentials import ReferencePotential
from tests.helpers import FIXTURES

LMP = [sys.executable, '-m', 'aiida_mlfail.engines.lmp']


@pytest.mark.parametrize('point, match', [
    ({'temperature': 0, 'volume': 100}, 'temperature must be a finite number > 0 K, got 0'),
    ({'temperature': 1400, 'volume': -3}, r'volume must be a finite number > 0 Å\^3, got -3'),
    ({'temperature': 1400, 'density': 0}, r'density must be a finite number > 0 g/cm\^3, got 0'),
    ({'temperature': 1400}, 'needs a volume'),
    ({'temperature': 1400, 'ensemble': 'NPT'}, 'needs a pressure'),
    ({'temperature': 1400, 'ensemble': 'NVE', 'volume': 10}, r"ensemble must be one of \['NVT', 'NPT'\], got 'NVE'"),
    ({'temperature': 1400, 'volume': 10, 'label': 'a b'}, 'identifier'),
])
def test_bad_state_points_are_named(point, match):
    with pytest.raises(ValueError, match=match):
        lammps_md.normalise_state_point(point, ['Na', 'Cl'])


def test_state_point_density_and_label():
    point = lammps_md.normalise_state_point({'temperature': 1400.5, 'density': 1.5}, ['Na', 'Cl'] * 32)
    assert point['volume'] == pytest.approx(structures.density_to_volume(['Na', 'Cl'] * 32, 1.5))
    assert point['label'].isidentifier()


def test_md_settings_checked():
    with pytest.raises(ValueError, match='no frame would be sampled'):
        lammps_md.normalise_md({'production_steps': 10, 'sampling_interval': 100})
    with pytest.raises(ValueError, match='timestep must be a finite number > 0 fs, got 0'):
        lammps_md.normalise_md({'timestep': 0})
    with pytest.raises(ValueError, match='unknown MD setting'):
        lammps_md.normalise_md({'steps': 10})


def test_npt_script_uses_barostat():
    point = lammps_md.normalise_state_point({'temperature': 1400, 'ensemble': 'NPT', 'pressure': 1.0}, ['Na', 'Cl'])
    script = lammps_md.sampling_script(ReferencePotential('bmhtf_wolf'), point, lammps_md.normalise_md({}))
    assert 'fix ensemble all npt temp 1400 1400 0.1 iso 1 1 1' in script
    assert 'change_box' not in script  # no volume given: start from the structure's box


def test_a_random_liquid_is_melted_by_the_equilibration_at_the_state_point():
    """The behaviour the docs of ``random_liquid`` and sample.md state: the packing is scaled to the state point's
    volume, velocities are drawn at its temperature, and ``equilibration_steps`` of NVT at that temperature run
    before the first sampled frame; no minimisation, no other temperature."""
    atoms = structures.from_spec({'system': 'liquid', 'composition': {'Cu': 32}, 'density': 7.5, 'seed': 0})
    morse = ['pair_style morse 6.0', 'pair_coeff 1 1 0.3429 1.3588 2.866']
    reference = ReferencePotential.from_dict({'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
                                              'commands': morse})
    point = lammps_md.normalise_state_point({'temperature': 1800.0, 'volume': atoms.get_volume()}, ['Cu'])
    md = lammps_md.normalise_md({'equilibration_steps': 500})
    lines = lammps_md.sampling_script(reference, point, md).splitlines()
    velocity = next(i for i, line in enumerate(lines) if line.startswith('velocity all create 1800 '))
    assert velocity < lines.index('fix ensemble all nvt temp 1800 1800 0.1') < lines.index('run 500')
    assert any(line.startswith('change_box all x scale') for line in lines[:velocity])
    assert lines.index('run 500') < min(i for i, line in enumerate(lines) if line.startswith('dump '))
    assert not any(line.startswith(('minimize', 'velocity all scale')) for line in lines)
    assert sum(line.startswith('run ') for line in lines) == 2  # equilibration, production


def test_parse_committed_sampling_output():
    base = FIXTURES / 'lammps_sample'
    frames = lammps_md.parse_dump((base / 'frames.dump').read_text())
    labels = lammps_md.parse_labels((base / 'labels.dat').read_text())
    configurations = lammps_md.frames_to_atoms(frames, labels, ['Na', 'Cl'], {'config_type': 'x'})
    assert [a.info['md_step'] for a in configurations] == [100, 200, 300]
    for atoms in configurations:
        assert len(atoms) == 64
        assert atoms.get_volume() == pytest.approx(2300.0)
        # per-atom energies (compute pe/atom, PPPM included) add up to the potential energy
        assert atoms.arrays['atomic_energies'].sum() == pytest.approx(atoms.info['energy'], abs=1e-6)
        # Newton's third law: the net force vanishes
        assert np.abs(atoms.arrays['forces'].sum(axis=0)).max() < 1e-3
    first = configurations[0]
    assert first.info['energy'] == pytest.approx(-233.387530225677)
    assert first.info['virial'][0, 0] == pytest.approx(-3363.52534734073 * 2300 / 1.6021765e6)
    thermo = lammps_md.parse_thermo((base / 'lammps.out').read_text())
    assert thermo['step'][0] == 0 and thermo['step'][-1] == 300
    assert np.all(np.diff(thermo['step']) > 0)
    assert np.allclose(thermo['volume'][1:], 2300.0)


def test_parse_triclinic_dump():
    text = """ITEM: TIMESTEP
5
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS xy xz yz pp pp pp
-0.5 11.0 1.0
0.0 10.0 -0.5
0.0 10.0 0.0
ITEM: ATOMS id type x y z fx fy fz
2 2 1 1 1 0.1 0.2 0.3
1 1 0 0 0 -0.1 -0.2 -0.3
"""
    (frame,) = lammps_md.parse_dump(text)
    assert frame['step'] == 5
    assert list(frame['id']) == [1, 2]
    assert np.allclose(frame['cell'], [[10.0, 0, 0], [1.0, 10.0, 0], [-0.5, 0.0, 10.0]])
    with pytest.raises(ValueError, match='truncated'):
        lammps_md.parse_dump(text.rsplit('\n', 3)[0])



def test_iter_dump_reads_a_file_frame_by_frame_as_parse_dump_does(tmp_path):
    """The parser's path: frames from an open file handle, one at a time, equal to parsing the whole text; a dump
    cut off in its last frame drops that frame with ``allow_truncated`` and raises without."""
    text = (FIXTURES / 'lammps_sample' / 'frames.dump').read_text()
    path = tmp_path / 'frames.dump'
    path.write_text(text)
    with path.open() as handle:
        frames = lammps_md.iter_dump(handle)
        first = next(frames)
        assert first['step'] == 100 and not handle.closed
        streamed = [first, *frames]
    whole = lammps_md.parse_dump(text)
    assert [f['step'] for f in streamed] == [f['step'] for f in whole] == [100, 200, 300]
    for a, b in zip(streamed, whole):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    path.write_text(text[:len(text) - 200])
    with path.open() as handle:
        assert [f['step'] for f in lammps_md.iter_dump(handle, allow_truncated=True)] == [100, 200]
    with path.open() as handle, pytest.raises(ValueError, match='truncated .* dump frame starting at line 147'):
        list(lammps_md.iter_dump(handle))

def _run_lammps(tmp_path, atoms, potential, extra):
    data = tmp_path / 'structure.data'
    write(data, atoms, format='lammps-data', atom_style=potential.atom_style, specorder=list(potential.species),
          masses=True, units='metal')
    lines = ['units metal', f'atom_style {potential.atom_style}', 'boundary p p p', f'read_data {data}',
             *potential.lammps_commands(), 'compute virial all pressure NULL virial',
             'thermo_style custom step pe vol c_virial[1] c_virial[2] c_virial[3]',
             'thermo_modify format float %.12g', *extra, 'run 0']
    (tmp_path / 'in.lmp').write_text('\n'.join(lines) + '\n')
    result = subprocess.run([*LMP, '-in', str(tmp_path / 'in.lmp'), '-log', 'none'], capture_output=True, text=True,
                            cwd=tmp_path, check=True)
    row = result.stdout.split('Step')[1].splitlines()[1].split()
    return float(row[1]), float(row[2]), np.array([float(v) for v in row[3:6]])


def test_virial_matches_energy_strain_derivative(tmp_path):
    """trace(W) = -dE/d(eps) for a homogeneous isotropic strain r -> (1 + eps) r (W = V P_vir / nktv2p, eV).

    Checks sign and unit conversion of the virial labels against the energy of real LAMMPS runs
    (Ewald, converged tightly; ``born/coul/wolf`` is not used here: its forces are not the
    derivative of its energy, see ``science.potentials``).
    """
    potential = ReferencePotential('bmhtf_coul_long', {'kspace_style': 'ewald', 'kspace_accuracy': 1e-8})
    rng = np.random.default_rng(3)
    atoms = structures.molten_nacl(64, volume=2300.0)
    atoms.positions += rng.normal(scale=0.25, size=atoms.positions.shape)
    _, volume, p_vir = _run_lammps(tmp_path, atoms, potential, [])
    virial_trace = np.trace(lammps_md.virial_from_pressure([*p_vir, 0, 0, 0], volume))
    eps = 1e-4
    energies = []
    for sign in (1, -1):
        strained = structures.scale_to_volume(atoms, volume * (1 + sign * eps) ** 3)
        energies.append(_run_lammps(tmp_path, strained, potential, [])[0])
    dE_deps = (energies[0] - energies[1]) / (2 * eps)
    assert virial_trace == pytest.approx(-dE_deps, rel=2e-3)


def test_mlfail_lmp_reports_lammps_error(tmp_path):
    bad = tmp_path / 'bad.in'
    bad.write_text('units metal\npair_style no_such_style\n')
    result = subprocess.run([*LMP, '-in', str(bad), '-log', 'none'], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "Unrecognized pair style 'no_such_style'" in result.stderr
