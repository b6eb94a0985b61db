"""LabelWorkChain: validation at submit time, and real LAMMPS single points through the daemon."""

import numpy as np
import pytest
from aiida import orm

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.label import LabelWorkChain
from tests.helpers import nacl_configurations

BMHTF = {'name': 'bmhtf_coul_long'}


def _validate(inputs):
    return LabelWorkChain.spec().inputs.validate(inputs)


def test_needs_exactly_one_source_and_a_reference(lammps_code):
    structures = {'a': orm.StructureData(ase=nacl_configurations(1)[0])}
    training_set = TrainingSetData.from_atoms(nacl_configurations(2))
    lammps = {'potential': orm.Dict(BMHTF), 'code': lammps_code}
    assert 'not both or none' in str(_validate({'lammps': lammps}))
    assert 'not both or none' in str(_validate({'lammps': lammps, 'structures': structures,
                                                'configurations': training_set}))
    assert 'no reference given' in str(_validate({'structures': structures}))
    assert _validate({'lammps': lammps, 'structures': structures}) is None


def test_reference_must_describe_the_species(lammps_code):
    structures = {'a': orm.StructureData(ase=nacl_configurations(1)[0])}
    error = _validate({'structures': structures, 'lammps': {'potential': orm.Dict({'name': 'lj_argon'}),
                                                            'code': lammps_code}})
    assert 'lammps.potential' in str(error) and 'Na' in str(error)


def test_one_atom_sequence_per_lammps_job(lammps_code):
    a, b = nacl_configurations(2)
    del b[0]
    error = _validate({'structures': {'a': orm.StructureData(ase=a), 'b': orm.StructureData(ase=b)},
                       'lammps': {'potential': orm.Dict(BMHTF), 'code': lammps_code}})
    assert 'one atom sequence per job' in str(error)


@pytest.mark.integration
def test_lammps_single_points_reproduce_the_sampling_labels(submit_and_await, lammps_code):
    """Relabelling frames of a real BMHTF run with the same potential gives back their labels."""
    frames = nacl_configurations(3)
    structures = {}
    for i, atoms in enumerate(frames):
        node = orm.StructureData(ase=atoms)
        node.base.attributes.set('md_step', 100 * i)
        structures[f'c{i}'] = node
    node = submit_and_await(LabelWorkChain, timeout=300, structures=structures,
                            lammps={'potential': orm.Dict(BMHTF), 'code': lammps_code})
    assert node.is_finished_ok, node.exit_message
    labelled = node.outputs.training_set.get_atoms()
    assert node.outputs.excluded['excluded'] == []
    assert [a.info['candidate'] for a in labelled] == ['c0', 'c1', 'c2']
    assert [a.info['md_step'] for a in labelled] == [0, 100, 200]
    assert [a.info['structure_uuid'] for a in labelled] == [structures[k].uuid for k in ('c0', 'c1', 'c2')]
    for original, new in zip(frames, labelled):
        assert new.info['energy'] == pytest.approx(original.info['energy'], abs=2e-3)
        np.testing.assert_allclose(new.arrays['forces'], original.arrays['forces'], atol=2e-3)
        np.testing.assert_allclose(new.info['virial'], original.info['virial'], atol=2e-2)
        assert new.info['label_reference'] == 'bmhtf_coul_long'
