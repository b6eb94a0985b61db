"""The real ``cp2k.psmp`` on the 8-atom NaCl cell with the fast protocol, input from the builder
rendered as aiida-cp2k renders it, output through the parser. Runs in CI (never skipped there)."""

import time

import numpy as np
import pytest

from aiida_mlfail.parsers.cp2k import parse_cp2k_output
from aiida_mlfail.science import cp2k
from tests.fixtures.cp2k import make_fixtures
from tests.helpers import FIXTURES

pytestmark = pytest.mark.integration


def test_fast_single_point_of_8_atom_nacl(cp2k_executable, tmp_path):
    atoms = make_fixtures.nacl8()
    parameters = cp2k.single_point_parameters('fast', atoms.get_chemical_symbols())
    make_fixtures.write_input(tmp_path, parameters, atoms)
    start = time.perf_counter()
    make_fixtures.run_cp2k(tmp_path, executable=cp2k_executable, timeout=300)
    seconds = time.perf_counter() - start
    result = parse_cp2k_output((tmp_path / 'aiida.out').read_text())
    assert result['scf_converged'] and result['n_atoms'] == len(atoms)
    assert np.isfinite(result['energy'])
    # 3e-3 eV/Å: grid and SCF noise of the fast protocol (see tests/parsers/test_cp2k_parser.py)
    assert np.abs(result['forces'].sum(axis=0)).max() < 3e-3
    assert np.abs(result['forces']).max() > 0.05
    assert result['volume'] == pytest.approx(atoms.get_volume(), abs=1e-5)
    np.testing.assert_allclose(result['virial'], -result['stress'] * atoms.get_volume(), rtol=1e-5)
    # same binary and input as the committed fixture: same numbers up to SCF noise
    # (1e-5 eV energy, 1e-4 eV/Å forces, 1e-6 eV/Å^3 stress)
    committed = parse_cp2k_output((FIXTURES / 'cp2k' / 'converged' / 'aiida.out').read_text())
    assert result['energy'] == pytest.approx(committed['energy'], abs=1e-5)
    np.testing.assert_allclose(result['forces'], committed['forces'], rtol=0, atol=1e-4)
    np.testing.assert_allclose(result['stress'], committed['stress'], rtol=0, atol=1e-6)
    print(f'cp2k.psmp fast single point, 8 atoms, 1 rank: {seconds:.1f} s')
