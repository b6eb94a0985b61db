"""Submit-time validation of the WorkChains: bad input is named before anything runs or is stored."""

import pytest
from aiida import orm
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from ase.build import bulk

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.references import cp2k_reference, lammps_reference
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.helpers import nacl_configurations

POTENTIAL = {'name': 'bmhtf_coul_long'}


def _instantiate(cls, **inputs):
    return instantiate_process(get_manager().get_runner(), cls, **inputs)


def _no_new_processes(before):
    return orm.QueryBuilder().append(orm.ProcessNode).count() == before


@pytest.mark.parametrize('point, match', [
    ({'temperature': 1400, 'volume': -100.0},
     r'state_points\[0\]: volume must be a finite number > 0 Å\^3, got -100.0'),
    ({'temperature': -5, 'volume': 2000.0}, r'state_points\[0\]: temperature must be a finite number > 0 K, got -5'),
])
def test_sampling_rejects_bad_state_points(lammps_code, point, match):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=match):
        _instantiate(ClassicalSamplingWorkChain, lammps={'job': {'code': lammps_code}},
                     structure_spec=orm.Dict({'system': 'nacl', 'n_ions': 64}),
                     potential=orm.Dict(POTENTIAL), state_points=orm.List([point]))
    assert _no_new_processes(before)


def test_sampling_rejects_species_missing_from_potential(lammps_code):
    structure = orm.StructureData(ase=bulk('KCl', 'rocksalt', a=6.3, cubic=True))
    with pytest.raises(ValueError, match=r"species \['K'\] are not described by the bmhtf_coul_long potential"):
        _instantiate(ClassicalSamplingWorkChain, lammps={'job': {'code': lammps_code}}, structure=structure,
                     potential=orm.Dict(POTENTIAL),
                     state_points=orm.List([{'temperature': 1400, 'volume': 300.0}]))


def test_sampling_rejects_bad_potential_and_md(lammps_code):
    common = {'lammps': {'job': {'code': lammps_code}}, 'structure_spec': orm.Dict({'system': 'nacl', 'n_ions': 64}),
              'state_points': orm.List([{'temperature': 1400, 'volume': 2300.0}])}
    with pytest.raises(ValueError, match='potential: bmhtf_wolf cutoff must be a finite number > 0 Å, got 0'):
        _instantiate(ClassicalSamplingWorkChain, potential=orm.Dict({'name': 'bmhtf_wolf',
                                                                     'parameters': {'cutoff': 0}}),
                     **common)
    with pytest.raises(ValueError, match='md: sampling_interval must be an integer > 0, got -10'):
        _instantiate(ClassicalSamplingWorkChain, potential=orm.Dict(POTENTIAL),
                     md=orm.Dict({'sampling_interval': -10}), **common)


def _gap_inputs(gap_fit_code, quip_code, pool, **fit):
    parameters = {'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}], **fit}
    return {'pool': pool, 'split': orm.Dict({'train_fraction': 0.5}),
            'fit': {'job': {'code': gap_fit_code, 'parameters': orm.Dict(parameters)}},
            'predict': {'job': {'code': quip_code}}}


def test_gap_workchain_rejects_missing_label_and_too_many_sparse_points(gap_fit_code, quip_code):
    configurations = nacl_configurations(6)
    for atoms in configurations:
        del atoms.info['virial']
    pool = TrainingSetData.from_atoms(configurations)
    with pytest.raises(ValueError, match=r"lacks the label\(s\) \['virial'\]"):
        _instantiate(GapWorkChain, **_gap_inputs(gap_fit_code, quip_code, pool, train_on=['energy', 'virial']))
    huge = _gap_inputs(gap_fit_code, quip_code, pool)
    huge['fit']['job']['parameters'] = orm.Dict({
        'descriptors': [{'type': 'soap', 'n_max': 2, 'l_max': 2, 'atom_sigma': 0.5, 'cutoff': 4.0, 'delta': 0.1,
                         'n_sparse': 500}],
        'train_on': ['energy', 'forces']})
    with pytest.raises(ValueError, match='n_sparse=500 is larger than the about 96 environments'):
        _instantiate(GapWorkChain, **huge)
    bad_selection = _gap_inputs(gap_fit_code, quip_code, pool)
    bad_selection['selection'] = orm.Dict({'method': 'uniform_force', 'n': 60})
    with pytest.raises(ValueError, match=r'selection.n must be an integer >= 1 and <= 6 \(the pool holds 6\), got 60'):
        _instantiate(GapWorkChain, **bad_selection)


def test_gap_workchain_with_a_validation_set_needs_no_split(gap_fit_code, quip_code):
    pool = TrainingSetData.from_atoms(nacl_configurations(4), reference=lammps_reference(POTENTIAL))
    inputs = _gap_inputs(gap_fit_code, quip_code, pool)
    inputs['split'] = orm.Dict({'train_fraction': 1.0})  # would leave no validation data, ignored here
    inputs['validation_set'] = TrainingSetData.from_atoms(nacl_configurations(2), reference=lammps_reference(POTENTIAL))
    assert GapWorkChain.spec().inputs.validate(inputs) is None
    del inputs['validation_set']
    message = str(GapWorkChain.spec().inputs.validate(inputs))
    assert 'split.train_fraction must be a finite number > 0 and < 1, got 1.0' in message
    argon = bulk('Ar', 'fcc', a=5.26, cubic=True)
    argon.info['energy'] = 0.0
    inputs['validation_set'] = TrainingSetData.from_atoms([argon], reference=lammps_reference(POTENTIAL))
    assert "validation_set: species ['Ar']" in str(GapWorkChain.spec().inputs.validate(inputs))


def test_gap_workchain_refuses_a_validation_set_of_another_reference(gap_fit_code, quip_code):
    """Pool and validation set labelled by different references: refused at submit time, naming both."""
    classical = lammps_reference(POTENTIAL)
    pool = TrainingSetData.from_atoms(nacl_configurations(4), reference=classical)
    inputs = _gap_inputs(gap_fit_code, quip_code, pool)
    inputs['validation_set'] = TrainingSetData.from_atoms(nacl_configurations(2), reference=cp2k_reference('fast'))
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=rf"validation_set: mixed references: pool: lammps bmhtf_coul_long .*"
                                         rf"\[lammps {classical['id']}\]; validation_set: cp2k fast: PBE"):
        _instantiate(GapWorkChain, **inputs)
    assert _no_new_processes(before)
    inputs['validation_set'] = TrainingSetData.from_atoms(nacl_configurations(2))  # unknown matches nothing
    assert 'validation_set: unknown reference' in str(GapWorkChain.spec().inputs.validate(inputs))
    del inputs['validation_set']  # one set, split: nothing to mix
    assert GapWorkChain.spec().inputs.validate(inputs) is None
