"""Helpers shared by the tests."""

from __future__ import annotations

import pathlib

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'


def nacl_configurations(n: int = 4):
    """``n`` labelled 64-ion NaCl frames from the committed LAMMPS fixture (3 real frames, cycled)."""
    from aiida_mlfail.science import lammps_md

    base = FIXTURES / 'lammps_sample'
    frames = lammps_md.parse_dump((base / 'frames.dump').read_text())
    labels = lammps_md.parse_labels((base / 'labels.dat').read_text())
    configurations = lammps_md.frames_to_atoms(frames, labels, ['Na', 'Cl'], {'config_type': 'fixture'})
    return [configurations[i % len(configurations)].copy() for i in range(n)]


def nacl_frames():
    """The 64-ion NaCl frames of the committed LAMMPS sampling dump as ``ase.Atoms`` (unlabelled; type 1 Na,
    type 2 Cl), positions and cells as LAMMPS wrote them."""
    import numpy as np
    from ase.io import read

    frames = read(FIXTURES / 'lammps_sample' / 'frames.dump', index=':', format='lammps-dump-text')
    for atoms in frames:
        atoms.numbers = np.where(atoms.arrays['type'] == 1, 11, 17)
    return frames


def lammps_jobs(workchain) -> list:
    """The LAMMPS CalcJobs (``mlfail.lammps``) among the processes ``workchain`` called, at any depth."""
    return [d for d in workchain.called_descendants if d.node_type.startswith('process.calculation.calcjob')
            and d.process_type and 'lammps' in d.process_type]


def load_study(name: str):
    """The study script ``workflows/<name>.py`` as a module (the scripts import ``common`` from their folder)."""
    import importlib.util
    import sys

    folder = pathlib.Path(__file__).resolve().parents[1] / 'workflows'
    spec = importlib.util.spec_from_file_location(f'study_{name}', folder / f'{name}.py')
    sys.path.insert(0, str(folder))
    try:
        study = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(study)
    finally:
        sys.path.remove(str(folder))
    return study


def stop_daemon(client, timeout: int = 30) -> float:
    """Stop the test profile's daemon: circus's graceful ``quit`` for at most ``timeout`` s, then the workers
    (SIGKILL) and circus (SIGTERM) by the PIDs read before the stop. Nothing of the test profile needs the
    workers to finish what they hold: the profile is temporary, and a test that restarts the daemon resubmits
    nothing (the processes continue from their checkpoints).

    A graceful stop waited for circus's whole 120 s call timeout in CI at the session end, after the SLURM
    daemon-kill test had restarted the daemon (a worker that does not end on SIGTERM).

    :param client: an ``aiida.engine.daemon.client.DaemonClient``.
    :param timeout: seconds for the graceful stop.
    :returns: the seconds the stop took.
    """
    import os
    import signal
    import time

    from aiida.engine.daemon.client import DaemonException

    start = time.monotonic()
    if not client.is_daemon_running:
        return 0.0
    try:
        workers = [int(pid) for pid in client.get_worker_info(timeout=10)['info']]
    except (DaemonException, KeyError, TypeError, ValueError):
        workers = []
    circus = client.get_daemon_pid()
    try:
        client.stop_daemon(wait=True, timeout=timeout)
    except DaemonException:
        for pid, sig in [(pid, signal.SIGKILL) for pid in workers] + [(circus, signal.SIGTERM)]:
            try:
                if pid:
                    os.kill(pid, sig)
            except ProcessLookupError:
                pass
        for _ in range(100):
            if not any(pid and pathlib.Path(f'/proc/{pid}').exists() for pid in workers + [circus]):
                break
            time.sleep(0.1)
        pathlib.Path(client.circus_pid_file).unlink(missing_ok=True)
    return time.monotonic() - start


def assert_npt_run_recorded(run: dict, node, v_ref: float, name: str) -> None:
    """A study's record of a GAP NPT run (keys ``breaking_step``, ``stop_step``, ``stop_reason``, ``volume``,
    ``deviation``) against the stored run ``node`` (its ``thermo`` output): the breaking step is the first thermo
    step above 1.5 x ``v_ref`` (Å^3), or the guard's stop step when the guard (``volume_blowup``) halted the run
    before a thermo row showed it; a run that did not break records the mean volume after its first 20 % and
    its deviation from ``v_ref``."""
    import numpy as np
    import pytest

    thermo = node.outputs.thermo
    volume, steps = thermo.get_array('volume'), thermo.get_array('step')
    above = steps[volume > 1.5 * v_ref]
    assert run['breaking_step'] == (int(above[0]) if above.size else
                                    (run['stop_step'] if run['stop_reason'] == 'volume_blowup' else None)), name
    if run['breaking_step'] is None:
        window = volume[int(0.2 * len(volume)):]
        assert run['volume']['mean'] == pytest.approx(np.mean(window)), name
        assert run['deviation'] == pytest.approx(run['volume']['mean'] / v_ref - 1), name
