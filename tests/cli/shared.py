"""Real runs shared by tests/cli/test_cli.py and tests/test_provenance.py (made once per test session).

A tiny ``ActiveLearningWorkChain`` (``two_walker_inputs`` of tests/integration/test_active_learning.py, whose
test checks this run: 32 NaCl ions, a 2-body GAP, two walkers exploring NPT from a dilute melt, at most two
iterations) through the daemon,
with ``aiida-mlfail status`` called while it runs, then an ``MLMDWorkChain`` of the run's first GAP
with a minimum-distance guard of 2.6 Å that trips (exit 410, ``too_close_atoms``).
"""

from __future__ import annotations

import time
import types

from aiida import orm
from click.testing import CliRunner

from aiida_mlfail.cli.main import cli

_CACHE: dict = {}


def invoke(command, args, **kwargs):
    """``CliRunner().invoke`` that re-raises an unexpected exception (so a test shows its traceback)."""
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False, **kwargs)
    return result


def wait(node, timeout: float, interval: float = 2.0, during=None):
    """Block until ``node`` terminates (``during(node)`` is called every ``interval`` s meanwhile)."""
    deadline = time.time() + timeout
    while not node.is_terminated:
        if during is not None:
            during(node)
        if time.time() > deadline:
            raise TimeoutError(f'<{node.pk}> not terminated after {timeout} s: {node.process_state}')
        time.sleep(interval)
    return node


def real_runs(profile, lammps_code, gap_fit_code, quip_code, explore_code):
    """The active-learning run, the guard-stopped MLMD run and the status outputs taken while the run ran."""
    if profile.name in _CACHE:
        return _CACHE[profile.name]
    from aiida.engine import submit

    from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
    from aiida_mlfail.workflows.mlmd import MLMDWorkChain
    from tests.integration.test_active_learning import two_walker_inputs

    run = submit(ActiveLearningWorkChain, **two_walker_inputs(lammps_code, gap_fit_code, quip_code, explore_code))
    while_running = []

    def status(node):
        if not node.is_terminated:
            while_running.append(invoke(cli, ['status', node.pk]).output)

    wait(run, timeout=900, interval=3.0, during=status)
    assert run.exit_status == 701, f'[{run.exit_status}] {run.exit_message}'
    fits = sorted((n for n in run.called if n.process_label == 'GapWorkChain'), key=lambda n: n.pk)
    sampling = next(n for n in run.called if n.process_label == 'ClassicalSamplingWorkChain')
    start = sampling.outputs.pool.get_atoms()[-1]
    mlmd = submit(MLMDWorkChain, potential=fits[0].outputs.potential, structure=orm.StructureData(ase=start),
                  md={'job': {'code': lammps_code}},
                  parameters=orm.Dict({'ensemble': 'NPT', 'temperature': 1400.0, 'pressure': 1.0, 'steps': 400,
                                       'dump_interval': 5, 'thermo_interval': 5, 'guards': {'min_distance': 2.6}}))
    wait(mlmd, timeout=600)
    assert mlmd.exit_status == 410, f'[{mlmd.exit_status}] {mlmd.exit_message}'
    _CACHE[profile.name] = types.SimpleNamespace(run=run, fits=fits, sampling=sampling, mlmd=mlmd,
                                                 while_running=while_running)
    return _CACHE[profile.name]
