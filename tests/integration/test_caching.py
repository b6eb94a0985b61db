"""AiiDA caching of the labelling jobs with the real programs: a repeated labelling reuses the finished
single points (``get_cache_source`` is the first job), gives the same labels, and a failed job is never
reused. Caching is switched on in this test process only (``enable_caching`` in a fixture, cleared at its
teardown even when the test fails), and the work chains run in this process (``run``), so the test
profile's daemon and its configuration play no part."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching, get_use_cache
from aiida.orm import CalcJobNode

from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.label import LabelWorkChain
from tests.fixtures.cp2k import make_fixtures
from tests.helpers import nacl_configurations

pytestmark = pytest.mark.integration

LAMMPS = 'aiida.calculations:mlfail.lammps'
CP2K = 'aiida.calculations:cp2k'


@pytest.fixture
def caching():
    """Factory: enable caching for a CalcJob entry point in this process until the test ends."""
    import contextlib

    with contextlib.ExitStack() as stack:
        def enable(identifier):
            stack.enter_context(enable_caching(identifier=identifier))
        yield enable
    assert not get_use_cache(identifier=LAMMPS) and not get_use_cache(identifier=CP2K)  # nothing leaks


def _jobs(workchain):
    return sorted((n for n in workchain.called_descendants if isinstance(n, CalcJobNode)), key=lambda n: n.pk)


def _labels(node):
    return [(a.info['energy'], a.arrays['forces'], a.info['virial']) for a in node.outputs.training_set.get_atoms()]


def _assert_same_labels(first, second):
    for (e1, f1, v1), (e2, f2, v2) in zip(_labels(first), _labels(second), strict=True):
        assert e1 == e2
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(v1, v2)


def test_lammps_single_points_are_reused(caching, lammps_code):
    """Two configurations, labelled twice from new (equal) input nodes: the second LAMMPS job is a copy."""
    caching(LAMMPS)
    frames = nacl_configurations(2)
    runs = []
    for _ in range(2):
        _, node = run_get_node(LabelWorkChain, configurations=TrainingSetData.from_atoms(frames),
                               lammps={'potential': orm.Dict({'name': 'bmhtf_coul_long'}),
                                       'job': {'code': lammps_code}})
        assert node.is_finished_ok, node.exit_message
        runs.append(node)
    (first,), (second,) = _jobs(runs[0]), _jobs(runs[1])
    assert first.process_type == second.process_type == LAMMPS
    assert first.base.caching.get_cache_source() is None
    assert second.base.caching.get_cache_source() == first.uuid
    assert second.base.caching.is_created_from_cache and second.is_finished_ok
    assert runs[1].outputs.training_set.n_configurations == 2
    _assert_same_labels(runs[0], runs[1])
    assert runs[0].outputs.training_set.uuid != runs[1].outputs.training_set.uuid  # new nodes, same content


def test_a_failed_lammps_job_is_never_reused(caching, lammps_code):
    """LAMMPS stops on an unknown command (parser: 309, not ``invalidates_cache`` in aiida-lammps): the
    identical second job runs again instead of being a copy of the failure."""
    caching(LAMMPS)
    nodes = []
    for _ in range(2):
        _, node = run_get_node(LammpsCalculation, code=lammps_code,
                               script=orm.SinglefileData.from_string('units metal\nnot_a_lammps_command 1\n',
                                                                      filename='input.in'),
                               metadata={'options': {'resources': {'num_machines': 1}}})
        nodes.append(node)
    first, second = nodes
    assert first.is_failed and second.is_failed, (first.exit_status, first.exit_message)
    assert first.base.caching.get_hash() == second.base.caching.get_hash()  # a cache hit if it were allowed
    assert first.exit_status == LammpsCalculation.exit_codes.ERROR_PARSER_DETECTED_LAMMPS_RUN_ERROR.status
    assert second.base.caching.get_cache_source() is None
    assert not LammpsCalculation.is_valid_cache(first)


def test_cp2k_single_points_are_reused(caching, cp2k_code):  # noqa: F811
    """Two 8-atom NaCl configurations with CP2K (fast protocol), labelled twice: both DFT jobs are copies."""
    caching(CP2K)
    runs = []
    for _ in range(2):
        structures = {f'c{i}': orm.StructureData(ase=make_fixtures.nacl8(seed=seed))
                      for i, seed in enumerate((1, 2))}
        _, node = run_get_node(LabelWorkChain, structures=structures, cp2k={'code': cp2k_code})
        assert node.is_finished_ok, node.exit_message
        runs.append(node)
    first, second = _jobs(runs[0]), _jobs(runs[1])
    assert len(first) == len(second) == 2 and all(n.process_type == CP2K for n in first + second)
    by_structure = {n.inputs.structure.base.caching.get_hash(): n for n in first}
    for job in second:
        source = by_structure[job.inputs.structure.base.caching.get_hash()]
        assert job.base.caching.get_cache_source() == source.uuid
    assert all(job.base.caching.get_cache_source() is None for job in first)
    _assert_same_labels(runs[0], runs[1])
