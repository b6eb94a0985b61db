"""The descriptor and cutoff study (issue 17, thesis 10.1-10.2) at its ``tiny`` size with the real programs (LAMMPS,
gap_fit, quip), in this process against the test profile."""

import json
import math

import numpy as np
import pytest
from aiida import orm

from tests.helpers import load_study

pytestmark = pytest.mark.integration


@pytest.fixture
def codes(lammps_code, gap_fit_code, quip_code):
    return {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code}


def test_descriptors_study_tiny(tmp_path, codes):
    """What holds at 32 ions whatever the numbers: the SOAP-only GAP's gap_fit command has no distance_2b and as
    many sparse points as the 2-body + SOAP GAP of its cutoff (the equal cost), its fit and prediction were timed;
    every GAP was validated on the same configurations; the tables' RMSEs are those the GapWorkChain computed from
    its stored predictions (``metrics``), the pressure errors are the stored predictions' virials against the
    references', and the verdict follows the mean and its standard error."""
    study = load_study('nacl_descriptors')
    study.run_study(codes, 'tiny', tmp_path, command='python workflows/nacl_descriptors.py --size tiny')
    summary = json.loads((tmp_path / 'nacl_descriptors_tiny.json').read_text())
    assert {'study', 'size', 'command', 'seconds', 'sizes', 'tables', 'finding'} <= set(summary)
    assert summary['study'] == 'nacl_descriptors' and summary['size'] == 'tiny' and summary['seconds'] > 0
    for figure in summary['figures']:
        assert (tmp_path / figure).read_bytes()[:4] == b'\x89PNG', figure
    assert summary['same_validation_set'] is True
    gaps = summary['gaps']
    assert sorted(gaps) == ['2b + SOAP, 4 Å', '2b + SOAP, 5 Å', 'SOAP, 5 Å']

    soap, both = gaps['SOAP, 5 Å'], gaps['2b + SOAP, 5 Å']
    assert 'distance_2b' not in soap['command_line'] and 'soap' in soap['command_line']
    assert both['command_line'].count('distance_2b') == 3  # Na-Na, Na-Cl, Cl-Cl
    assert soap['n_sparse'] == both['n_sparse'] == 2 * 20 + 3 * 10  # equal cost: the same sparse points in all
    for gap in (soap, both):
        assert gap['fit_wall_time_s'] is not None and gap['fit_wall_time_s'] >= 0
        assert gap['predict_ms_per_atom'] > 0

    table = summary['tables']['cutoff variation (10.2)']
    assert [row[0] for row in table['rows']] == ['4', '5']
    assert len(summary['tables']['SOAP vs 2-body + SOAP (10.1)']['rows']) == 2
    reference = None
    for name, gap in gaps.items():
        node = orm.load_node(gap['pk'])
        metrics = node.outputs.metrics.get_dict()
        errors = gap['errors']
        assert errors['n'] == 10 == metrics['energy']['n']
        assert math.isclose(errors['energy_rmse'], metrics['energy']['rmse'], rel_tol=1e-9), name
        assert math.isclose(errors['forces_rmse'], metrics['forces']['rmse'], rel_tol=1e-9), name
        assert errors['energy_rmse_se'] > 0 and errors['forces_rmse_se'] > 0
        ref, pred = node.outputs.validation_set.get_atoms(), node.outputs.predictions.get_atoms()
        dp = [(np.trace(np.reshape(b.info['virial'], (3, 3))) - np.trace(np.reshape(a.info['virial'], (3, 3))))
              / (3 * a.get_volume()) * 1.602176634e6 for a, b in zip(ref, pred)]
        assert np.allclose(errors['pressure_errors'], dp)
        assert math.isclose(errors['pressure_mean'], np.mean(dp))
        assert math.isclose(errors['pressure_se'], np.std(dp, ddof=1) / np.sqrt(len(dp)))
        mean, se = errors['pressure_mean'], errors['pressure_se']
        assert gap['pressure_verdict'] == ('high' if mean > 2 * se else 'low' if mean < -2 * se else 'unbiased')
        if reference is None:
            reference = errors['reference_pressure']
        assert math.isclose(errors['reference_pressure'], reference)  # the same configurations for every GAP
    assert summary['finding'].startswith('Thesis 10.1') and 'Thesis 10.2' in summary['finding']
    print(f"descriptors, tiny: {summary['seconds']} s; {summary['finding']}")
