"""The failure-signals study (``workflows/failure_signals.py``) end to end at its ``tiny`` size with the real programs:
BMHTF + PPPM sampling of 32 NaCl ions at five volumes (LAMMPS), a single-density and a five-density GAP (gap_fit,
quip), and ``mlfail.calibrate`` of each (oracle NPT explorations in the explorer, two walkers of 100 steps).
Which signal wins is not robust at this size (22 checks per GAP); the test checks the summary the docs page is
built from, and that the calibration tables are the science function on the stored series."""

import json
import math

import pytest

from tests.helpers import load_study

pytestmark = pytest.mark.integration


def test_failure_signals_study_at_tiny_size(tmp_path, lammps_code, gap_fit_code, quip_code, explore_code):
    study = load_study('failure_signals')
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code}
    summary = study.run_study(codes, 'tiny', tmp_path, command='pytest')

    saved = json.loads((tmp_path / 'failure_signals_tiny.json').read_text())
    assert saved == json.loads(json.dumps(summary))
    for key in ('study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding'):
        assert key in saved, key
    assert (saved['study'], saved['size'], saved['sizes']['ions']) == ('failure_signals', 'tiny', 32)
    assert (tmp_path / 'auc_tiny.png').read_bytes().startswith(b'\x89PNG')

    # both GAPs fitted, with finite validation errors; molten-NaCl forces are ~1 eV/Å, a GAP of 20
    # configurations is within a few tenths
    gaps = {row[0]: row for row in saved['tables']['gaps']['rows']}
    assert sorted(gaps) == ['GAP five densities', 'GAP single density']
    for row in gaps.values():
        assert 0 < float(row[2]) < 0.5

    # every walker ran its 100 steps (11 checks; a guard stop would end earlier) and has oracle errors
    walkers = saved['tables']['walkers']['rows']
    assert len(walkers) == 4
    for _model, _seed, checks, last_step, max_rmse, _first in walkers:
        assert int(checks) == int(last_step) // 10 + 1 and int(last_step) <= 100
        assert 0 < float(max_rmse) < 50

    # at tiny size both GAPs have failures and non-failures among their checks: both are calibrated (exit 0;
    # 404 would mean nothing to rate)
    assert saved['exit_status'] == {'single density': 0, 'five densities': 0}
    for model in saved['exit_status']:
        rows = saved['signals'][model]
        assert f'signals GAP {model}' in saved['tables']
        for name in ('similarity', 'temperature', 'afm', 'pressure', 'p_virial'):
            auc = rows[name]['auc_roc']
            assert auc is None or 0.0 <= auc <= 1.0, (model, name, auc)
        assert rows['similarity']['direction'] == 'low' and rows['temperature']['direction'] == 'high'
        recommended = saved['recommended'][model]
        assert recommended['error'] == 'force_rmse'
        threshold = rows['similarity']['threshold']  # None: no similarity value keeps the 5 % false-positive rate
        if threshold is None:
            assert recommended['critical_similarity'] is None
        else:
            assert math.isclose(recommended['critical_similarity'], threshold)
    assert saved['finding'].startswith('Thesis (ch. 11)')
