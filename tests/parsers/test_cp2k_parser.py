"""AiiDA-free CP2K parsing (aiida_mlfail.parsers.cp2k) on the committed real CP2K 2023.1 outputs.

Expected values are read from the output files themselves (the printed a.u./GPa numbers, converted
here with ase.units) or from other real runs (strained and compressed cells, a single point at an
MD geometry); see tests/fixtures/cp2k/make_fixtures.py for how each fixture was made.
"""

import io
import re

import numpy as np
import pytest
from ase.io import read
from ase.units import Bohr, GPa, Hartree

from aiida_mlfail.parsers.cp2k import Cp2kOutputError, abort_message, parse_cp2k_md, parse_cp2k_output
from aiida_mlfail.science import cp2k, extxyz
from tests.fixtures.cp2k import make_fixtures
from tests.helpers import FIXTURES

BASE = FIXTURES / 'cp2k'
#: Bound on |sum of forces| (eV/Å): the fast protocol (GAPW, 300 Ry) leaves ~1e-3 eV/Å of grid and SCF
#: noise, against 0.1-0.5 eV/Å for plain GPW at 400-800 Ry with the Na semicore pseudopotential.
FORCE_SUM_TOL = 3e-3


def _text(*parts):
    return BASE.joinpath(*parts).read_text()


def _parse(name):
    return parse_cp2k_output(_text(name, 'aiida.out'))


def _printed_forces(text):
    """The ATOMIC FORCES table of ``text`` in Hartree/Bohr, read independently of the parser."""
    block = text.split('ATOMIC FORCES in [a.u.]')[-1].split('SUM OF ATOMIC FORCES')[0]
    return np.array([[float(x) for x in line.split()[3:6]] for line in block.splitlines()
                     if re.match(r'\s+\d+\s+\d+\s+[A-Z][a-z]?\s', line)])


def _printed_pressure(text):
    """The last analytical stress tensor block of ``text`` (GPa), read independently of the parser."""
    lines = text.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith(' STRESS| Analytical stress tensor [GPa]'))
    rows = [line.split() for line in lines[start + 2:start + 5]]
    assert [r[1] for r in rows] == ['x', 'y', 'z']
    return np.array([[float(v) for v in r[2:]] for r in rows])


def test_converged_single_point_values_and_units():
    text = _text('converged', 'aiida.out')
    result = parse_cp2k_output(text)
    atoms = read(BASE / 'converged' / 'aiida.coords.xyz', format='xyz')
    printed_energy = float(re.search(r'ENERGY\| Total FORCE_EVAL \( QS \) energy \[a\.u\.\]:\s+(\S+)', text).group(1))
    assert result['energy'] == pytest.approx(printed_energy * Hartree, abs=1e-9)
    assert result['forces'].shape == (len(atoms), 3) == (result['n_atoms'], 3)
    np.testing.assert_allclose(result['forces'], _printed_forces(text) * Hartree / Bohr, rtol=0, atol=1e-12)
    assert np.abs(result['forces'].sum(axis=0)).max() < FORCE_SUM_TOL
    assert np.abs(result['forces']).max() > 0.05  # the displaced atoms feel real forces
    np.testing.assert_allclose(result['stress'], -_printed_pressure(text) * GPa, rtol=0, atol=1e-15)
    np.testing.assert_allclose(result['stress'], result['stress'].T, atol=1e-12)
    cell = np.array([[float(x) for x in line.split()[1:4]] for line in _text('converged', 'aiida.inp').splitlines()
                     if re.match(r'\s+[ABC] ', line)])
    assert result['volume'] == pytest.approx(abs(np.linalg.det(cell)), abs=1e-5)
    np.testing.assert_allclose(result['cell'], cell, atol=1e-3)  # CP2K prints the vectors to 1e-3 Å
    np.testing.assert_allclose(result['virial'], -result['stress'] * result['volume'], rtol=1e-12)
    n_steps = len(re.findall(r'^\s+\d+ (?:OT|Broy|Pulay|P_Mix|Diag|NoMix)', text, re.M))
    assert result['scf_converged'] is True and result['scf_steps'] == n_steps > 0
    assert result['cp2k_version'] == re.search(r'CP2K version (\S+)', text).group(1)
    assert result['warnings'] == []


def test_layout_of_newer_cp2k_versions():
    """CP2K 2025+ prints ``energy [hartree]`` and a ``FORCES|`` table; the committed 2023.1 output
    re-printed in that layout (as in public 2025 outputs) must parse to the same numbers."""
    text = _text('converged', 'aiida.out')
    expected = parse_cp2k_output(text)
    head, rest = text.split(' ATOMIC FORCES in [a.u.]')
    table, tail = rest.split(' SUM OF ATOMIC FORCES')
    tail = tail.split('\n', 1)[1]
    forces = _printed_forces(text)
    rows = [' FORCES| Atomic forces [hartree/bohr]',
            ' FORCES|   Atom     x               y               z               |f|']
    rows += [f' FORCES| {i:6d} {x:15.8E} {y:15.8E} {z:15.8E} {np.sqrt(x * x + y * y + z * z):15.8E}'
             for i, (x, y, z) in enumerate(forces, start=1)]
    rows.append(' FORCES| Sum    {:15.8E} {:15.8E} {:15.8E}'.format(*forces.sum(axis=0)))
    newer = head.replace('energy [a.u.]:', 'energy [hartree]') + '\n'.join(rows) + '\n' + tail
    result = parse_cp2k_output(newer)
    assert result['energy'] == expected['energy']
    np.testing.assert_allclose(result['forces'], expected['forces'], rtol=1e-12, atol=0)
    np.testing.assert_allclose(result['stress'], expected['stress'])


def test_stress_sign_compressed_cell():
    """CP2K prints the pressure tensor: compressing the cell raises it, and the ASE stress is its negative."""
    reference, compressed = _parse('converged'), _parse('compressed')
    assert compressed['volume'] < reference['volume']
    pressure = -np.trace(compressed['stress']) / 3
    assert pressure > 0 and pressure > -np.trace(reference['stress']) / 3
    assert np.trace(compressed['virial']) > 0  # virial = P V > 0 under compression (extxyz sign)
    assert np.trace(_printed_pressure(_text('compressed', 'aiida.out'))) > 0


def test_stress_matches_finite_differences_of_the_energy():
    """ASE stress = (1/V) dE/d(strain) at fixed fractional coordinates: central differences with
    strains of +-0.5 % (fixtures strain/*) must match the analytical stress of the unstrained cell.
    Tolerance 2e-4 eV/Å^3 (0.03 GPa, 3 % of the xx component): measured 1.0e-4 (xx) and 3.5e-5 (trace),
    from the O(strain^2) error and the coarse discretisation of the fast protocol. A wrong sign
    or unit would miss by 1e-2 or more."""
    reference = _parse('converged')
    volume, stress = reference['volume'], reference['stress']
    energies = {name: _parse(f'strain/{name}')['energy'] for name in make_fixtures.STRAINS}
    epsilon = make_fixtures.STRAINS['xx_plus'][1]
    d_xx = (energies['xx_plus'] - energies['xx_minus']) / (2 * epsilon) / volume
    d_iso = (energies['iso_plus'] - energies['iso_minus']) / (2 * epsilon) / volume
    assert d_xx == pytest.approx(stress[0, 0], abs=2e-4)
    assert d_iso == pytest.approx(np.trace(stress), abs=2e-4)
    assert abs(stress[0, 0]) > 10 * 2e-4  # the check is not trivially passed


def test_unconverged_scf_is_flagged_not_raised():
    text = _text('scf_not_converged', 'aiida.out')
    result = parse_cp2k_output(text)
    max_scf = int(re.search(r'MAX_SCF (\d+)', _text('scf_not_converged', 'aiida.inp')).group(1))
    assert result['scf_converged'] is False and result['scf_steps'] == max_scf
    assert any('SCF run NOT converged' in w for w in result['warnings'])
    assert np.isfinite(result['energy']) and result['forces'].shape == (8, 3)


def test_truncated_output_raises():
    with pytest.raises(Cp2kOutputError, match=r'truncated CP2K output: no "PROGRAM ENDED" line') as info:
        _parse('truncated')
    assert info.value.reason == 'truncated'
    assert isinstance(info.value, ValueError)
    assert 'a cut force table of 4 rows' in str(info.value)


def test_aborted_run_raises_with_cp2k_message():
    text = _text('aborted', 'aiida.out')
    with pytest.raises(Cp2kOutputError, match='CP2K aborted: .*NO-SUCH-BASIS') as info:
        parse_cp2k_output(text)
    assert info.value.reason == 'aborted'
    assert info.value.cp2k_message == abort_message(text)
    assert re.search(r'\[\S+\.F:\d+\]$', info.value.cp2k_message)  # CP2K's source location


def test_scf_abort_of_newer_cp2k_is_classified():
    """CP2K >= 2024.1 aborts on an unconverged SCF; its message (qs_scf.F) put into the real ABORT box."""
    lines = _text('aborted', 'aiida.out').splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith(' * [ABORT]'))
    art = [lines[i + 1][:11], lines[i + 2][:11]]
    lines[i + 1] = f'{art[0]}  SCF run NOT converged. To continue the calculation regardless,'.ljust(79) + '*'
    lines[i + 2] = f'{art[1]}  please set the keyword IGNORE_CONVERGENCE_FAILURE.'.ljust(79) + '*'
    with pytest.raises(Cp2kOutputError, match='SCF did not converge') as info:
        parse_cp2k_output('\n'.join(lines))
    assert info.value.reason == 'scf_not_converged'
    assert 'IGNORE_CONVERGENCE_FAILURE' in info.value.cp2k_message


def test_output_without_forces_raises():
    text = _text('converged', 'aiida.out')
    start, end = text.index(' ATOMIC FORCES in [a.u.]'), text.index(' STRESS| Analytical')
    with pytest.raises(Cp2kOutputError, match='no atomic forces') as info:
        parse_cp2k_output(text[:start] + text[end:])
    assert info.value.reason == 'missing'


def _md_frames():
    files = {key: _text('aimd', name) for key, name in cp2k.AIMD_FILES.items()}
    return parse_cp2k_md(files['positions'], files['forces'], _text('aimd', 'aiida.out'), files['cell'],
                         energies=files['energies'])


def test_md_frames_and_labels():
    frames = _md_frames()
    ener = np.loadtxt(BASE / 'aimd' / cp2k.AIMD_FILES['energies'])
    settings = make_fixtures.AIMD
    assert len(frames) == settings['steps'] + 1 == len(ener)
    assert [a.info['md_step'] for a in frames] == list(range(settings['steps'] + 1))
    np.testing.assert_allclose([a.info['time_fs'] for a in frames], ener[:, 1])
    np.testing.assert_allclose([a.info['time_fs'] for a in frames], np.arange(len(frames)) * settings['timestep_fs'])
    # the .ener file prints 9 decimals (Hartree), the trajectory titles 10
    np.testing.assert_allclose([a.info['energy'] for a in frames], ener[:, 4] * Hartree, rtol=0, atol=1e-9 * Hartree)
    for atoms in frames:
        assert extxyz.labels_of(atoms) == {'energy', 'forces', 'virial'}
        assert atoms.arrays['forces'].shape == (8, 3) and atoms.info['virial'].shape == (3, 3)
        assert atoms.get_volume() == pytest.approx(make_fixtures.A0 ** 3)
        assert np.abs(atoms.arrays['forces'].sum(axis=0)).max() < FORCE_SUM_TOL
    # the extxyz round trip keeps every label (ASE writes 8 decimals)
    again = extxyz.read_configurations(io.StringIO(extxyz.to_text(frames)))
    np.testing.assert_allclose(again[-1].info['virial'], frames[-1].info['virial'], rtol=0, atol=1e-7)
    np.testing.assert_allclose(again[-1].arrays['forces'], frames[-1].arrays['forces'], rtol=0, atol=1e-7)


def test_md_virial_excludes_the_kinetic_part():
    """The .stress file (MOTION/PRINT/STRESS, bar) holds the total pressure tensor; the output's
    STRESS| blocks used for the virial do not: trace(P_file V) - trace(virial) = 2 E_kin (.ener)."""
    frames = _md_frames()
    total = np.loadtxt(BASE / 'aimd' / cp2k.AIMD_STRESS_FILE)[:, 2:].reshape(-1, 3, 3) * 1e-4 * GPa  # bar -> eV/Å^3
    kinetic = np.loadtxt(BASE / 'aimd' / cp2k.AIMD_FILES['energies'])[:, 2] * Hartree
    for atoms, pressure, ekin in zip(frames, total, kinetic):
        difference = np.trace(pressure) * atoms.get_volume() - np.trace(atoms.info['virial'])
        assert difference == pytest.approx(2 * ekin, rel=1e-6)


def test_md_frames_agree_with_single_points():
    """Frame 0 is the geometry of the converged single point; the last frame was recomputed as a single
    point (aimd/last_frame). Tolerances 1e-5 eV/Å (forces), 1e-6 eV (energy), 1e-4 eV (virial); measured
    6e-7 eV/Å, 2e-9 eV and 1e-6 eV (MD starts each SCF from an extrapolated wavefunction, the single
    point from atomic densities; both converge to eps_scf)."""
    frames = _md_frames()
    for atoms, name in ((frames[0], 'converged'), (frames[-1], 'aimd/last_frame')):
        single = _parse(name)
        reference = read(BASE / name / 'aiida.coords.xyz', format='xyz')
        np.testing.assert_allclose(atoms.positions, reference.positions, atol=1e-6)
        np.testing.assert_allclose(atoms.arrays['forces'], single['forces'], rtol=0, atol=1e-5)
        assert atoms.info['energy'] == pytest.approx(single['energy'], abs=1e-6)
        np.testing.assert_allclose(atoms.info['virial'], single['virial'], rtol=0, atol=1e-4)


def test_md_frames_become_a_training_set():
    from aiida_mlfail.data.training_set import TrainingSetData

    node = TrainingSetData.from_atoms(_md_frames())
    assert node.labels == ['energy', 'forces', 'virial']
    assert node.n_configurations == make_fixtures.AIMD['steps'] + 1
    assert [c['md_step'] for c in node.configurations] == list(range(node.n_configurations))


def test_md_errors():
    files = {key: _text('aimd', name) for key, name in cp2k.AIMD_FILES.items()}
    output = _text('aimd', 'aiida.out')
    cut = files['positions'][:len(files['positions']) - 100]
    with pytest.raises(Cp2kOutputError, match='positions: frame 6 is cut'):
        parse_cp2k_md(cut, files['forces'], output, files['cell'])
    with pytest.raises(Cp2kOutputError, match='truncated CP2K MD output'):
        parse_cp2k_md(files['positions'], files['forces'], output[:len(output) // 2], files['cell'])
    with pytest.raises(Cp2kOutputError, match='7 position frames, 7 force frames, 6 stress tensors'):
        parse_cp2k_md(files['positions'], files['forces'], output.replace(' STRESS| Analytical', ' XX', 1),
                      files['cell'])
    with pytest.raises(Cp2kOutputError, match='energy file row'):
        parse_cp2k_md(files['positions'], files['forces'], output, files['cell'],
                      energies=files['energies'].replace(' -248.', ' -247.', 1))
    fixed = parse_cp2k_md(files['positions'], files['forces'], output, np.eye(3) * make_fixtures.A0)
    assert fixed[0].get_volume() == pytest.approx(make_fixtures.A0 ** 3)
