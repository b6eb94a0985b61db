"""Every ``fast`` builder submits through the daemon without a validator error; the sampling one runs to the end.

Each builder of ``tests/workflows/test_protocols.py`` (protocol ``fast``, tiny systems) is submitted to the
test profile's daemon, which must pick it up (the process leaves the ``created`` state without excepting),
and is then killed with its children: these tests check the submit path, not the science. Only the
classical sampling builder (64 ions, BMHTF) runs to completion.
"""

from __future__ import annotations

import time

import pytest
from aiida.engine import ProcessState, submit
from aiida.engine.processes.control import kill_processes

from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.workflows.test_protocols import BMHTF, CASES, make_builder, tiny_data

pytestmark = pytest.mark.integration

#: How long the daemon may take to pick a submitted process up on a loaded 2-core machine (s).
PICKUP_TIMEOUT = 120


@pytest.fixture
def codes(lammps_code, gap_fit_code, quip_code, explore_code, rematch_code, cp2k_code):
    return {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code,
            'rematch': rematch_code, 'cp2k': cp2k_code}


@pytest.fixture
def data():
    return tiny_data()


def _wait(node, condition, timeout: float) -> None:
    start = time.monotonic()
    while not condition(node):
        if time.monotonic() - start > timeout:
            raise AssertionError(f'{node.process_label}<{node.pk}> still {node.process_state} after {timeout} s')
        time.sleep(0.5)


@pytest.mark.parametrize('name', [case for case in CASES if case != 'sample'])
def test_fast_builder_is_accepted_by_the_daemon(name, codes, data, started_daemon_client):
    builder = make_builder(name, codes, data, protocol='fast')
    node = submit(builder)  # the port validators run here: a refused builder raises before any node exists
    assert node.pk is not None and node.process_class is builder.process_class
    try:
        _wait(node, lambda n: n.process_state not in (None, ProcessState.CREATED), PICKUP_TIMEOUT)
        assert not node.is_excepted, f'{name}: {node.exit_message} {node.base.attributes.get("exception", "")}'
    finally:
        if not node.is_terminated:
            kill_processes([node], timeout=PICKUP_TIMEOUT)
        _wait(node, lambda n: n.is_terminated, PICKUP_TIMEOUT)
        for child in node.called_descendants:
            _wait(child, lambda n: n.is_terminated, PICKUP_TIMEOUT)
    assert node.is_killed or node.is_finished, f'{name}: {node.process_state} [{node.exit_status}]'
    assert not node.is_excepted


def test_fast_sampling_builder_runs_to_completion(lammps_code, data, submit_and_await):
    builder = ClassicalSamplingWorkChain.get_builder_from_protocol(lammps_code, data['structure'], reference=BMHTF)
    start = time.monotonic()
    node = submit_and_await(builder, timeout=600)
    elapsed = time.monotonic() - start
    assert node.is_finished_ok, f'[{node.exit_status}] {node.exit_message}'
    md = builder.md.get_dict()
    pool = node.outputs.pool
    # a frame at the first production step and then every sampling_interval steps
    assert pool.n_configurations == md['production_steps'] // md['sampling_interval'] + 1
    assert pool.species == ['Cl', 'Na'] and pool.n_atoms == {'min': 64, 'max': 64}
    assert pool.reference['kind'] == 'lammps'
    # the state point's job ran in the exposed restart wrapper, with the protocol's scheduler options
    (wrapper,) = [n for n in node.called if n.process_label == 'LammpsRestartWorkChain']
    assert wrapper.inputs.max_iterations.value == 5
    (job,) = wrapper.called
    assert job.get_option('max_wallclock_seconds') == builder.lammps.job.metadata.options['max_wallclock_seconds']
    print(f'fast sampling of 64 ions: {pool.n_configurations} frames in {elapsed:.0f} s (submit to finished)')
