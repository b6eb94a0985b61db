"""The QueryBuilder helpers of aiida_mlfail.provenance on a real tiny active-learning run (tests/cli/shared.py)."""

import pytest

from aiida_mlfail.provenance import (
    FAILURE_STOP_REASONS,
    called_processes,
    configuration_origins,
    failed_md_runs,
    potentials_of_run,
)
from tests.cli import shared

pytestmark = pytest.mark.integration


@pytest.fixture
def runs(aiida_profile, started_daemon_client, lammps_code, gap_fit_code, quip_code, explore_code):
    return shared.real_runs(aiida_profile, lammps_code, gap_fit_code, quip_code, explore_code)


def test_potentials_of_run_is_one_entry_per_fit_with_its_validation_rmse(runs):
    records = potentials_of_run(runs.run)
    assert len(records) == len(runs.fits) == 1 + sum(1 for r in runs.run.outputs.summary['iterations'] if r['added'])
    assert [r['iteration'] for r in records] == list(range(len(records)))
    for record, fit in zip(records, runs.fits):
        metrics = fit.outputs.metrics.get_dict()
        assert record['fit'].pk == fit.pk and record['potential'].uuid == fit.outputs.potential.uuid
        assert record['energy_rmse'] == metrics['energy']['rmse'] and record['forces_rmse'] == metrics['forces']['rmse']
        assert record['virial_rmse'] == metrics['virial']['rmse']
        assert record['training_set_size'] == fit.outputs.training_set.n_configurations
    assert [r['final'] for r in records] == [False] * (len(records) - 1) + [True]
    # rows of the iteration table name the GAP each exploration used
    rows = runs.run.outputs.summary['iterations']
    assert [r['potential_uuid'] for r in rows][0] == records[0]['potential'].uuid


def test_failed_md_runs_finds_the_guard_stop_and_the_gap_responsible(runs):
    everything = failed_md_runs()
    found = [r for r in everything if r['process'].pk == runs.mlmd.pk]
    assert len(found) == 1
    record = found[0]
    stop = runs.mlmd.outputs.stop.get_dict()
    assert record['process_label'] == 'MLMDWorkChain' and record['exit_status'] == 410
    assert record['stop_reason'] == 'too_close_atoms' == stop['stop_reason']
    assert record['stop_step'] == stop['stop_step'] and record['value'] < 2.6
    assert record['potential'].uuid == runs.fits[0].outputs.potential.uuid
    assert all(r['exit_status'] in (410, 411, 412) or r['stop_reason'] in FAILURE_STOP_REASONS for r in everything)
    # the LAMMPS job inside is listed only on request
    (wrapper,) = [n for n in runs.mlmd.called if n.process_label == 'LammpsRestartWorkChain']
    job = next(n for n in wrapper.called if n.process_label == 'LammpsCalculation')
    assert job.pk not in {r['process'].pk for r in everything}
    nested = failed_md_runs(nested=True)
    inner = next(r for r in nested if r['process'].pk == job.pk)
    assert inner['caller'].pk == wrapper.pk and inner['stop_reason'] == 'too_close_atoms'
    assert wrapper.caller.pk == runs.mlmd.pk

    # restricted to a run: the MLMD run ran a GAP of the AL run, so it belongs to it, not to its sampling
    assert runs.mlmd.pk in {r['process'].pk for r in failed_md_runs(runs.run)}
    assert failed_md_runs(runs.sampling) == []
    explorations = {n.pk for n in called_processes(runs.run) if n.process_label == 'ExploreCalculation'}
    assert {r['process'].pk for r in failed_md_runs(runs.run)} <= explorations | {runs.mlmd.pk}


def test_configuration_origins_of_the_final_training_set(runs):
    final = runs.run.outputs.training_set
    origins = configuration_origins(final)
    assert len(origins) == final.n_configurations
    added = [o for o in origins if o['iteration'] > 0]
    assert len(added) == sum(r['added'] for r in runs.run.outputs.summary['iterations'])
    assert all(o['trigger'] in ('trigger', 'previous') and o['labelling_job_uuid'] != 'unknown' for o in added)
    assert all(o['trigger'] == 'initial' and o['md_step'] >= 0 for o in origins if o['iteration'] == 0)
