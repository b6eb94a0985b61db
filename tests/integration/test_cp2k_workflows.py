"""CP2K as the reference through the daemon with the real ``cp2k.psmp`` (8-atom NaCl, fast protocol, 1 rank):
LabelWorkChain's ``cp2k`` reference, the SCF handler fixing a run, and the AIMD WorkChain.
Runs in CI (never skipped there); elsewhere skipped only when cp2k.psmp is missing."""


import numpy as np
import pytest
from aiida import orm
from aiida.orm import CalcJobNode

from aiida_mlfail.parsers.cp2k import parse_cp2k_output
from aiida_mlfail.workflows.cp2k import Cp2kSinglePointWorkChain
from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain
from aiida_mlfail.workflows.label import LabelWorkChain
from tests.fixtures.cp2k import make_fixtures
from tests.helpers import FIXTURES

pytestmark = pytest.mark.integration

#: |sum of forces| bound (eV/Å): grid and SCF noise of the fast protocol (tests/parsers/test_cp2k_parser.py).
FORCE_SUM_TOL = 3e-3


def _jobs(workchain):
    return sorted((n for n in workchain.called if isinstance(n, CalcJobNode)), key=lambda n: n.pk)


def _report(node):
    return [log.message for log in orm.Log.collection.get_logs_for(node)]


def test_label_two_configurations_with_cp2k(submit_and_await, cp2k_code):
    structures = {}
    for i, seed in enumerate((1, 2)):
        node = orm.StructureData(ase=make_fixtures.nacl8(seed=seed))
        node.base.attributes.set('md_step', 50 * i)
        structures[f'c{i}'] = node
    node = submit_and_await(LabelWorkChain, timeout=300, structures=structures, cp2k={'code': cp2k_code})
    assert node.is_finished_ok, (node.exit_status, node.exit_message, _report(node))
    assert node.outputs.excluded['excluded'] == []
    from aiida_mlfail.science.references import cp2k_reference

    assert node.outputs.training_set.reference == cp2k_reference('fast')
    labelled = node.outputs.training_set.get_atoms()
    assert [a.info['candidate'] for a in labelled] == ['c0', 'c1'] and [a.info['md_step'] for a in labelled] == [0, 50]
    assert [a.info['structure_uuid'] for a in labelled] == [structures[k].uuid for k in ('c0', 'c1')]
    single_points = [n for n in node.called if n.process_label == 'Cp2kSinglePointWorkChain']
    by_structure = {n.inputs.structure.uuid: n for n in single_points}
    assert len(by_structure) == 2
    for key, atoms in zip(('c0', 'c1'), labelled):
        sp = by_structure[structures[key].uuid]
        direct = parse_cp2k_output(sp.outputs.retrieved.base.repository.get_object_content('aiida.out'))
        assert direct['scf_converged']
        assert atoms.info['energy'] == pytest.approx(direct['energy'], abs=1e-6)
        np.testing.assert_allclose(atoms.arrays['forces'], direct['forces'], rtol=0, atol=1e-7)
        np.testing.assert_allclose(atoms.info['virial'], -direct['stress'] * atoms.get_volume(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(atoms.positions, structures[key].get_ase().positions, atol=1e-6)
        assert np.abs(atoms.arrays['forces'].sum(axis=0)).max() < FORCE_SUM_TOL
        assert np.abs(atoms.arrays['forces']).max() > 0.05
        assert atoms.info['label_reference'] == 'cp2k_fast'
    # different configurations, different labels; seed 1 is the committed fixture's configuration
    assert abs(labelled[0].info['energy'] - labelled[1].info['energy']) > 1e-4
    committed = parse_cp2k_output((FIXTURES / 'cp2k' / 'converged' / 'aiida.out').read_text())
    assert labelled[0].info['energy'] == pytest.approx(committed['energy'], abs=1e-5)


def test_scf_not_converged_is_fixed_by_the_handler(submit_and_await, cp2k_code):
    """MAX_SCF 4 cannot converge the fast SCF (about 12 steps): the parse step says 420, the handler
    restarts from the wavefunction with MAX_SCF 8 and alpha 0.15, which converges."""
    node = submit_and_await(Cp2kSinglePointWorkChain, timeout=300, code=cp2k_code,
                            structure=orm.StructureData(ase=make_fixtures.nacl8()),
                            overrides=orm.Dict({'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 4}}}}))
    assert node.is_finished_ok, (node.exit_status, node.exit_message, _report(node))
    first, second = _jobs(node)
    parse_steps = {n.base.links.get_incoming(node_class=orm.WorkflowNode).one().link_label: n
                   for n in node.called if n.process_label == 'parse_single_point'}
    assert parse_steps['parse_01'].exit_status == 420 and parse_steps['parse_02'].is_finished_ok
    assert any('SCF restart 1: doubled MAX_SCF and halved the mixing alpha to 0.15' in m for m in _report(node))
    scf = second.inputs.parameters['FORCE_EVAL']['DFT']['SCF']
    assert scf['MAX_SCF'] == 8 and scf['MIXING']['ALPHA'] == pytest.approx(0.15) and scf['SCF_GUESS'] == 'RESTART'
    assert second.inputs.parent_calc_folder.uuid == first.outputs.remote_folder.uuid
    assert 'Density guess:' in (text := second.outputs.retrieved.base.repository.get_object_content('aiida.out'))
    assert 'RESTART' in next(line for line in text.splitlines() if 'Density guess:' in line)
    (atoms,) = node.outputs.training_set.get_atoms()
    committed = parse_cp2k_output((FIXTURES / 'cp2k' / 'converged' / 'aiida.out').read_text())
    assert atoms.info['energy'] == pytest.approx(committed['energy'], abs=1e-4)
    np.testing.assert_allclose(atoms.arrays['forces'], committed['forces'], rtol=0, atol=1e-3)


#: MD steps of the AIMD tests, and the CP2K wall time (s) of the run that is stopped: in CI one step of
#: 8 ions takes 1.5-3 s and the first (with CP2K's start-up) 5-10 s, so a 30 s job stops after several
#: steps, and every job gets at least one checkpoint further (each writes one per step).
AIMD_STEPS = 16
AIMD_WALLTIME_S = 30


def test_aimd_trajectory_becomes_training_data_and_a_stopped_run_continues(submit_and_await, cp2k_code):
    """The same AIMD twice, at once: uninterrupted, and with CP2K's wall time at 30 s, so that its jobs stop
    and each continues from the previous one's checkpoint. The continued trajectory is the uninterrupted
    one: every step once, same energies and positions (CP2K restores velocities, thermostat and RNG)."""
    from aiida.engine import submit

    atoms0 = make_fixtures.nacl8()
    inputs = {'code': cp2k_code, 'structure': orm.StructureData(ase=atoms0), 'temperature': orm.Float(1000.0),
              'steps': orm.Int(AIMD_STEPS), 'timestep': orm.Float(1.0)}
    whole = submit(Cp2kAimdWorkChain, **inputs)
    stopped = submit(Cp2kAimdWorkChain, **inputs, max_iterations=orm.Int(12),
                     overrides=orm.Dict({'GLOBAL': {'WALLTIME': AIMD_WALLTIME_S}}))
    node = submit_and_await(whole, timeout=600)
    assert node.is_finished_ok, (node.exit_status, node.exit_message, _report(node))
    continued = submit_and_await(stopped, timeout=600)
    assert continued.is_finished_ok, (continued.exit_status, continued.exit_message, _report(continued))
    jobs = _jobs(continued)
    assert len(jobs) >= 2 and [job.exit_status for job in jobs] == [400] * (len(jobs) - 1) + [0], \
        [(job.exit_status, job.exit_message) for job in jobs]
    steps = [a.info['md_step'] for a in continued.outputs.trajectory.get_atoms()]
    assert steps == list(range(AIMD_STEPS + 1))
    # every stopped job is continued from its checkpoint, or (on a loaded machine) run once more if it wrote none
    continuations = [m for m in _report(continued) if '(parent_calc/aiida-1.restart) for the' in m]
    reruns = [m for m in _report(continued) if 'running the same job once more' in m]
    assert continuations and len(continuations) + len(reruns) == len(jobs) - 1, _report(continued)
    assert 'EXT_RESTART' not in jobs[0].inputs.parameters.get_dict()
    assert jobs[-1].inputs.parameters['EXT_RESTART'] == {'RESTART_FILE_NAME': 'parent_calc/aiida-1.restart'}
    for a, b in zip(node.outputs.trajectory.get_atoms(), continued.outputs.trajectory.get_atoms(), strict=True):
        assert b.info['energy'] == pytest.approx(a.info['energy'], abs=1e-4)  # eV, 8 atoms (SCF tolerance)
        np.testing.assert_allclose(b.positions, a.positions, atol=1e-4)
        np.testing.assert_allclose(b.arrays['forces'], a.arrays['forces'], atol=5e-3)
        np.testing.assert_allclose(b.info['virial'], a.info['virial'], atol=5e-3)

    frames = node.outputs.trajectory.get_atoms()
    assert [a.info['md_step'] for a in frames] == list(range(AIMD_STEPS + 1))
    assert [a.info['time_fs'] for a in frames] == pytest.approx([float(i) for i in range(AIMD_STEPS + 1)])
    assert node.outputs.trajectory.labels == ['energy', 'forces', 'virial']
    from aiida_mlfail.science.references import cp2k_reference

    assert node.outputs.trajectory.reference == cp2k_reference('fast')
    np.testing.assert_allclose(frames[0].positions, atoms0.positions, atol=1e-6)
    assert not np.allclose(frames[-1].positions, atoms0.positions, atol=1e-3)  # the atoms moved
    for atoms in frames:
        assert np.abs(atoms.arrays['forces'].sum(axis=0)).max() < FORCE_SUM_TOL
        np.testing.assert_allclose(atoms.cell.array, atoms0.cell.array)
    # step 0 is a fast single point of the start structure: the committed fixture's numbers
    committed = parse_cp2k_output((FIXTURES / 'cp2k' / 'converged' / 'aiida.out').read_text())
    assert frames[0].info['energy'] == pytest.approx(committed['energy'], abs=1e-4)
    np.testing.assert_allclose(frames[0].arrays['forces'], committed['forces'], rtol=0, atol=1e-3)
    np.testing.assert_allclose(frames[0].info['virial'], -committed['stress'] * atoms0.get_volume(), rtol=0, atol=1e-3)
    (job,) = _jobs(node)
    assert 'aiida-1.ener' in job.outputs.retrieved.base.repository.list_object_names()


def test_cp2k_single_points_run_at_most_max_concurrent_jobs_at_once(submit_and_await, cp2k_code):
    """Three configurations with max_concurrent_jobs=2: two single points, then the third after both ended."""
    structures = {f'c{i}': orm.StructureData(ase=make_fixtures.nacl8(seed=seed)) for i, seed in enumerate((1, 2, 3))}
    node = submit_and_await(LabelWorkChain, timeout=400, structures=structures, cp2k={'code': cp2k_code},
                            max_concurrent_jobs=orm.Int(2))
    assert node.is_finished_ok, (node.exit_status, node.exit_message, _report(node))
    assert node.outputs.training_set.n_configurations == 3
    single_points = sorted((n for n in node.called if n.process_label == 'Cp2kSinglePointWorkChain'),
                           key=lambda n: n.ctime)
    assert len(single_points) == 3
    first_batch, last = single_points[:2], single_points[2]
    # the third was created only after both of the first batch had terminated
    assert all(last.ctime >= n.mtime for n in first_batch)
    assert all(last.ctime > n.ctime for n in first_batch)
    batches = [m for m in _report(node) if 'submitted CP2K single point(s)' in m]  # '[pk|...|run_cp2k]: ...'
    assert len(batches) == 2
    assert 'submitted CP2K single point(s) 1-2 of 3' in batches[0] and 'at most 2 at once' in batches[0]
    assert 'submitted CP2K single point(s) 3-3 of 3' in batches[1]


def test_single_point_of_silicon_chooses_its_kinds(submit_and_await, cp2k_code):
    """Any element through the daemon: 8 silicon atoms, basis set and pseudopotential chosen from CP2K's files,
    written into the job's KIND and reported."""
    from ase.build import bulk

    atoms = bulk('Si', 'diamond', a=5.43, cubic=True)
    atoms.rattle(0.05, seed=3)
    node = submit_and_await(Cp2kSinglePointWorkChain, timeout=300, structure=orm.StructureData(ase=atoms),
                            code=cp2k_code)
    assert node.is_finished_ok, (node.exit_status, node.exit_message, _report(node))
    (job,) = _jobs(node)
    kinds = job.inputs.parameters.get_dict()['FORCE_EVAL']['SUBSYS']['KIND']
    assert kinds == [{'_': 'Si', 'ELEMENT': 'Si', 'BASIS_SET': 'SZV-MOLOPT-SR-GTH', 'POTENTIAL': 'GTH-PBE-q4'}]
    assert any(m.endswith('protocol fast: Si: SZV-MOLOPT-SR-GTH / GTH-PBE-q4 (4 e)') for m in _report(node))
    (labelled,) = node.outputs.training_set.get_atoms()
    assert -115 < labelled.info['energy'] / 8 < -95  # GTH-PBE-q4 silicon, about -106 eV per atom
    assert np.abs(labelled.arrays['forces'].sum(axis=0)).max() < 5e-3
