"""The studies of the potential's construction (issue 17) at their ``tiny`` size with the real programs (LAMMPS,
gap_fit, quip), in this process against the test profile: each writes its JSON summary with the keys of the study
conventions, and the direction of its main finding is checked where it is robust at that size."""

import json
import math
import pathlib

import pytest

from tests.helpers import load_study

pytestmark = pytest.mark.integration

SUMMARY_KEYS = {'study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding'}


def _check_summary(path: pathlib.Path, study: str) -> dict:
    summary = json.loads(path.read_text())
    assert SUMMARY_KEYS <= set(summary), sorted(SUMMARY_KEYS - set(summary))
    assert summary['study'] == study and summary['size'] == 'tiny'
    assert summary['seconds'] > 0 and summary['finding']
    for name, table in summary['tables'].items():
        assert table['rows'] and all(len(row) == len(table['header']) for row in table['rows']), name
    for figure in summary['figures']:
        assert (path.parent / figure).read_bytes()[:4] == b'\x89PNG', figure
    return summary


@pytest.fixture
def codes(lammps_code, gap_fit_code, quip_code):
    return {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code}


def test_long_range_study_tiny(tmp_path, codes):
    """Chapter 9: PPPM, Wolf and DSF references at one density, one GAP each (descriptor cutoff = Coulomb cutoff),
    energy parity with bias, NPT of the DSF GAP. Robust at 32 ions: the DSF GAP, whose labels are local and
    force-consistent, fits its energies better than the PPPM GAP (long range beyond the cutoff) and the Wolf GAP
    (energies inconsistent with its forces)."""
    study = load_study('nacl_long_range')
    study.run_study(codes, 'tiny', tmp_path, command='python workflows/nacl_long_range.py --size tiny')
    summary = _check_summary(tmp_path / 'nacl_long_range_tiny.json', 'nacl_long_range')
    assert summary['sizes']['ions'] == 32 and summary['sizes']['cutoff_A'] == 5.0
    gaps = summary['gaps']
    assert [g['reference']['name'] for g in gaps.values()] == ['bmhtf_coul_long', 'bmhtf_wolf', 'bmhtf_dsf']
    energy = {name: g['energy'] for name, g in gaps.items()}
    for e in energy.values():
        assert e['n'] == 10 and math.isfinite(e['bias']) and e['rmse_se'] > 0
    assert energy['DSF']['rmse'] < energy['Coulomb (PPPM)']['rmse']
    assert energy['DSF']['rmse'] < energy['Wolf']['rmse']
    npt = summary['npt']
    assert npt['stop_reason'] == 'completed'  # measured: the cutoff-reference GAP runs its 32-ion NPT to the end
    assert 0.5 < npt['volume_A3'] / npt['reference_volume_A3'] < 2.0
    assert {'ML run', 'rerun'} <= set(npt['pressure_bar'])
    print(f"long range, tiny: {summary['seconds']} s; {summary['finding']}")


def test_training_quantities_study_tiny(tmp_path, codes):
    """Sections 10.3-10.4: GAPs trained on virials only (V) and on E+F+V from one NVT run, each run in NVT with the
    classical rerun. Robust at 32 ions: the V-only GAP predicts forces worse than the E+F+V GAP and knows energies
    only up to a large constant (section 10.4: 'the forces and energies are predicted a lot more accurately'); the
    pressure table has a training run, an ML run and a rerun with standard errors for each."""
    study = load_study('nacl_training_quantities')
    study.run_study(codes, 'tiny', tmp_path, command='python workflows/nacl_training_quantities.py --size tiny')
    summary = _check_summary(tmp_path / 'nacl_training_quantities_tiny.json', 'nacl_training_quantities')
    errors = summary['errors']
    assert set(errors) == {'V', 'E+F+V'}
    assert errors['E+F+V']['forces_rmse'] < errors['V']['forces_rmse']
    assert abs(errors['E+F+V']['energy_offset']) < 0.05 < abs(errors['V']['energy_offset'])  # eV/atom
    pressures = summary['pressures']
    mean, error = pressures['training run']
    assert math.isfinite(mean) and error > 0
    for name in ('V', 'E+F+V'):
        assert pressures[name]['stop_reason'] == 'completed', name  # measured: both NVT runs run to the end
        for key in ('ml', 'rerun'):
            assert math.isfinite(pressures[name][key][0]) and pressures[name][key][1] > 0, (name, key)
    assert summary['finding'].startswith('Thesis 10.3-10.4')
    print(f"training quantities, tiny: {summary['seconds']} s; {summary['finding']}")
