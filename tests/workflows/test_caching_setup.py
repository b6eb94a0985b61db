"""Caching set-up and the rule that a failed job is never a cache source (no programs run)."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest
from aiida import orm
from plumpy import ProcessState

from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.workflows.common import forbid_cache_source

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: What README.md and profiles/README.md promise: caching.enabled_for of the profile.
DOCUMENTED = {'aiida.calculations:cp2k', 'aiida.calculations:mlfail.lammps'}


def _job(computer, entry_point, exit_status):
    node = orm.CalcJobNode(computer=computer, process_type=f'aiida.calculations:{entry_point}')
    node.set_option('resources', {'num_machines': 1})
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_status)
    node.store()
    node.seal()
    return node


def test_the_docs_name_the_cached_calcjobs_and_setup_aiida_runs_the_caching_step():
    for doc in ('README.md', 'profiles/README.md'):
        text = (ROOT / doc).read_text()
        assert all(identifier in text for identifier in DOCUMENTED), doc
    setup = (ROOT / 'scripts/setup-aiida.sh').read_text()
    assert 'scripts/setup-caching.sh" "$PROFILE"' in setup


def test_setup_caching_sets_the_documented_entry_points_idempotently(tmp_path):
    """The script's own verdi commands against a new profile in a temporary AIIDA_PATH (the test
    profile's configuration is not touched); a second run changes nothing."""
    verdi = str(pathlib.Path(sys.executable).parent / 'verdi')
    env = {**os.environ, 'AIIDA_PATH': str(tmp_path), 'VERDI': verdi}
    env.pop('AIIDA_PROFILE', None)
    subprocess.run([verdi, 'profile', 'setup', 'core.sqlite_dos', '-n', '--profile-name', 'cachetest',
                    '--filepath', str(tmp_path / 'storage'), '--email', 'test@localhost', '--first-name', 'a',
                    '--last-name', 'b', '--institution', 'c', '--no-use-rabbitmq'],
                   env=env, check=True, capture_output=True)
    script = str(ROOT / 'scripts/setup-caching.sh')
    first = subprocess.run(['bash', script, 'cachetest'], env=env, check=True, capture_output=True, text=True)
    second = subprocess.run(['bash', script, 'cachetest'], env=env, check=True, capture_output=True, text=True)
    assert first.stdout.count('caching enabled for') == len(DOCUMENTED) and second.stdout == ''
    got = subprocess.run([verdi, '-p', 'cachetest', 'config', 'get', 'caching.enabled_for'], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert set(ast.literal_eval(got.strip())) == DOCUMENTED


def test_only_a_lammps_job_that_finished_ok_is_a_cache_source(aiida_localhost):
    assert LammpsCalculation.is_valid_cache(_job(aiida_localhost, 'mlfail.lammps', 0))
    for label in ('ERROR_OUTPUT_INCOMPLETE', 'ERROR_MD_EXPLODED', 'ERROR_PARSER_DETECTED_LAMMPS_RUN_ERROR'):
        node = _job(aiida_localhost, 'mlfail.lammps', LammpsCalculation.exit_codes[label].status)
        assert not LammpsCalculation.is_valid_cache(node), label
        assert not node.base.caching.is_valid_cache, label


@pytest.mark.parametrize('status, marked', [(0, False), (303, True), (400, True)])
def test_forbid_cache_source_marks_failed_jobs(aiida_localhost, status, marked):
    """aiida-cp2k's 303 (output incomplete) and 400 (walltime) are valid cache sources for aiida-core."""
    node = _job(aiida_localhost, 'cp2k', status)
    assert node.base.caching.is_valid_cache  # aiida-core's default for these exit codes
    assert forbid_cache_source(node) is marked
    assert node.base.caching.is_valid_cache is not marked
