"""ActiveLearningWorkChain: bad input is named at submit time, before anything is stored or run."""

import pytest
from aiida import orm
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.references import cp2k_reference, lammps_reference
from aiida_mlfail.science.structures import molten_nacl
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
from tests.helpers import nacl_configurations

#: The classical reference of the initial data and of the labeller (the fixture frames are BMHTF-labelled).
BMHTF = {'name': 'bmhtf_coul_long'}


@pytest.fixture
def inputs(lammps_code, gap_fit_code, quip_code, explore_code):
    return {
        'training_set': TrainingSetData.from_atoms(nacl_configurations(4), reference=lammps_reference(BMHTF)),
        'validation_set': TrainingSetData.from_atoms(nacl_configurations(2), reference=lammps_reference(BMHTF)),
        'gap': {'fit': {'job': {'code': gap_fit_code, 'parameters': orm.Dict({'descriptors': [
            {'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}]})}},
                'predict': {'job': {'code': quip_code}}},
        'explore': {'job': {'code': explore_code, 'structure': orm.StructureData(ase=molten_nacl(64, volume=2300.0)),
                            'parameters': orm.Dict({'ensemble': 'NPT', 'max_steps': 100, 'comparison_step': 10})}},
        'label': {'lammps': {'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}}},
        'predict': {'job': {'code': quip_code}},
    }


def _submit_fails(inputs, match):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=match):
        instantiate_process(get_manager().get_runner(), ActiveLearningWorkChain, **inputs)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_valid_inputs_pass(inputs):
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None


def test_training_set_needs_a_validation_set(inputs):
    del inputs['validation_set']
    _submit_fails(inputs, '`validation_set` is required with `training_set`')


def test_exactly_one_source_of_initial_data(inputs, lammps_code):
    inputs['sampling'] = {'lammps': {'job': {'code': lammps_code}},
                          'structure_spec': orm.Dict({'system': 'nacl', 'n_ions': 64}),
                          'potential': orm.Dict({'name': 'bmhtf_coul_long'}),
                          'state_points': orm.List([{'temperature': 1400.0, 'volume': 2300.0}])}
    _submit_fails(inputs, r"exactly one source: .* got \['training_set', 'sampling'\]")
    del inputs['training_set'], inputs['validation_set']
    inputs['pool'] = TrainingSetData.from_atoms(nacl_configurations(4))
    _submit_fails(inputs, r"got \['sampling', 'pool'\]")
    del inputs['sampling'], inputs['pool']
    _submit_fails(inputs, 'got none')


def test_a_pool_is_split_by_the_learner_and_needs_no_validation_set(inputs):
    inputs['pool'] = inputs.pop('training_set')
    validation = inputs.pop('validation_set')
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None
    inputs['validation_set'] = validation
    _submit_fails(inputs, '`validation_set` goes with `training_set` only')


@pytest.mark.parametrize('selection, message', [
    ({'method': 'best', 'n': 4}, "selection.method must be one of .* got 'best'"),
    ({'method': 'random', 'n': 1}, 'selection.n must be an integer >= 2'),
    ({'method': 'random', 'n': 4, 'count': 3}, r"unknown selection key\(s\) \['count'\]"),
])
def test_bad_selection_is_named(inputs, selection, message):
    inputs['pool'] = inputs.pop('training_set')
    del inputs['validation_set']
    inputs['selection'] = orm.Dict(selection)
    _submit_fails(inputs, message)


def test_selection_does_not_apply_to_a_training_set(inputs):
    inputs['selection'] = orm.Dict({'method': 'random', 'n': 4})
    _submit_fails(inputs, '`selection` applies to a `sampling` or `pool` source')


def test_bad_loop_parameters_are_named(inputs):
    inputs['parameters'] = orm.Dict({'max_iterations': 0})
    _submit_fails(inputs, 'parameters: max_iterations must be an integer >= 1, got 0')
    inputs['parameters'] = orm.Dict({'max_failed_labels': -1})
    _submit_fails(inputs, 'parameters: max_failed_labels must be an integer >= 0, got -1')
    inputs['parameters'] = orm.Dict({'max_concurrent_labels': 0})
    _submit_fails(inputs, 'parameters: max_concurrent_labels must be an integer >= 1, got 0')


def test_bad_explorer_parameters_are_named(inputs):
    inputs['explore']['job']['parameters'] = orm.Dict({'critical_similarity': 1.5})
    _submit_fails(inputs, 'critical_similarity')


def test_labeller_must_describe_the_species(inputs):
    inputs['label']['lammps']['potential'] = orm.Dict({'name': 'lj_argon'})
    _submit_fails(inputs, r"label\.lammps\.potential: species \['Cl', 'Na'\] are not described by the lj_argon")


def test_exactly_one_labeller(inputs, aiida_code_installed):
    del inputs['label']['lammps']
    _submit_fails(inputs, r"'inputs\.label': no reference given: set `lammps\.potential` and `lammps\.job\.code`")
    cp2k = aiida_code_installed(label='cp2k_check', default_calc_job_plugin='cp2k', filepath_executable='/bin/true')
    inputs['label'] = {'cp2k': {'code': cp2k, 'protocol': orm.Str('ultrafast')}}
    _submit_fails(inputs, "unknown CP2K protocol 'ultrafast'")


@pytest.mark.parametrize('namespace, port, value, match', [
    ('gap', ('fit', 'job', 'parameters'),
     {'descriptors': [{'type': 'distance_2b', 'cutoff': -5.0, 'delta': 0.5, 'n_sparse': 10}]},
     r"'inputs\.gap\.fit\.job': parameters: distance_2b descriptor: cutoff must be a finite number > 0, got -5\.0"),
    ('explore', ('job', 'parameters'), {'ensemble': 'NPT', 'max_steps': 100, 'soap': {'species': ['Na']}},
     r"'inputs\.explore\.job': parameters\.soap\.species \['Na'\] do not cover the species \['Cl'\] of the "
     r"structure"),
    ('label', ('lammps', 'potential'), {'name': 'no_such_potential'},
     r"'inputs\.label': lammps\.potential: unknown reference potential 'no_such_potential'"),
])
def test_child_validators_refuse_bad_values_at_submit(inputs, namespace, port, value, match):
    """The validators of the exposed GapWorkChain (the gap_fit job of its ``fit`` wrapper), the explorer job of the
    ``explore`` wrapper and LabelWorkChain run at the learner's submit; the message names the child namespace and
    the value."""
    target = inputs[namespace]
    for key in port[:-1]:
        target = target[key]
    target[port[-1]] = orm.Dict(value)
    _submit_fails(inputs, match)


def test_child_validators_skip_only_the_ports_the_learner_excluded(inputs):
    """Given the learner's namespaces as ``ctx`` (no pool/split/..., no potential/training_set, no
    configurations/structures), the children's validators neither ask for those ports nor check them; their
    other checks still run."""
    from aiida_mlfail.calculations.explore import validate_explore_inputs
    from aiida_mlfail.workflows.gap import _validate_inputs as validate_gap
    from aiida_mlfail.workflows.label import _validate_inputs as validate_label

    spec = ActiveLearningWorkChain.spec().inputs
    assert not {'pool', 'split', 'selection', 'validation_set'} & set(spec['gap'])
    assert not {'potential', 'training_set'} & set(spec['explore']['job'])
    assert not {'configurations', 'structures', 'max_concurrent_jobs'} & set(spec['label'])
    # valid learner inputs: no complaint about the excluded ports
    assert validate_gap(inputs['gap'], spec['gap']) is None
    assert validate_explore_inputs(inputs['explore']['job'], spec['explore']['job']) is None
    assert validate_label(inputs['label'], spec['label']) is None
    # without ctx (nothing excluded) the label validator asks for the configurations the learner supplies later
    assert 'give either `configurations`' in validate_label(inputs['label'])
    # a split that leaves no validation set is checked only where `split` is a port of the namespace
    gap = {**inputs['gap'], 'pool': inputs['training_set'], 'split': orm.Dict({'train_fraction': 0.9})}
    assert 'split: train_fraction 0.9 of 4 configurations' in validate_gap(gap)
    assert validate_gap(gap, spec['gap']) is None
    # the checks that need no excluded port still run
    gap['fit'] = {'job': {**gap['fit']['job'], 'parameters': orm.Dict({'descriptors': []})}}
    assert validate_gap(gap, spec['gap']).startswith('fit.job.parameters: ')
    explore = {**inputs['explore']['job'], 'parameters': orm.Dict({'soap': {'species': ['Cl']}})}
    assert "do not cover the species ['Na'] of the structure" in validate_explore_inputs(explore,
                                                                                        spec['explore']['job'])
    label = {'lammps': inputs['label']['lammps'], 'cp2k': {'code': inputs['predict']['job']['code']}}
    assert validate_label(label, spec['label']).startswith('give exactly one reference')


def test_training_and_validation_sets_of_different_references_are_refused(inputs):
    inputs['validation_set'] = TrainingSetData.from_atoms(nacl_configurations(2), reference=cp2k_reference('fast'))
    _submit_fails(inputs, r'validation_set: mixed references: training_set: lammps bmhtf_coul_long .*\[lammps '
                          r'[0-9a-f]{16}\]; validation_set: cp2k fast: PBE')


def test_unknown_initial_data_is_refused(inputs):
    """Sets of unknown reference (e.g. imported without --reference) match nothing, not even each other."""
    inputs['training_set'] = TrainingSetData.from_atoms(nacl_configurations(4))
    inputs['validation_set'] = TrainingSetData.from_atoms(nacl_configurations(2))
    _submit_fails(inputs, 'training_set: unknown reference .*validation_set: unknown reference.*--reference LABEL')


def test_labeller_of_another_reference_than_the_initial_data_is_refused(inputs, aiida_code_installed):
    cp2k = aiida_code_installed(label='cp2k_check', default_calc_job_plugin='cp2k', filepath_executable='/bin/true')
    inputs['label'] = {'cp2k': {'code': cp2k}}  # DFT labels for a classical training set
    _submit_fails(inputs, r'label: the labeller must use the reference of the initial data: mixed references: '
                          r'label: cp2k fast: PBE .*; training_set: lammps bmhtf_coul_long')
    inputs['label'] = {'lammps': {'potential': orm.Dict({'name': 'bmhtf_coul_long', 'parameters': {'cutoff': 8.0}}),
                                  'job': {'code': inputs['explore']['job']['code']}}}
    _submit_fails(inputs, r'mixed references: label: lammps bmhtf_coul_long \(cutoff=8.0.*training_set: lammps '
                          r'bmhtf_coul_long \(cutoff=6.0')
    # DFT initial data and the same DFT labeller pass the reference check
    for key in ('training_set', 'validation_set'):
        inputs[key] = TrainingSetData.from_atoms(nacl_configurations(2), reference=cp2k_reference('fast'))
    inputs['label'] = {'cp2k': {'code': cp2k}}
    assert 'mixed references' not in str(ActiveLearningWorkChain.spec().inputs.validate(inputs))
    inputs['label']['cp2k']['overrides'] = orm.Dict({'FORCE_EVAL': {'DFT': {'MGRID': {'CUTOFF': 600}}}})
    _submit_fails(inputs, r'mixed references: label: cp2k fast: .*600 Ry \+ overrides')


def test_sampled_frames_take_the_labellers_reference_a_pool_must_have_it(inputs, lammps_code, aiida_code_installed):
    """A sampling source is labelled by the learner's labeller (classical frames, DFT labels: accepted); a labelled
    pool (e.g. a CP2K AIMD trajectory) is split as it is, so its reference must be the labeller's."""
    del inputs['training_set'], inputs['validation_set']
    inputs['sampling'] = {'lammps': {'job': {'code': lammps_code}},
                          'structure_spec': orm.Dict({'system': 'nacl', 'n_ions': 64}),
                          'potential': orm.Dict(BMHTF),
                          'state_points': orm.List([{'temperature': 1400.0, 'volume': 2300.0}])}
    cp2k = aiida_code_installed(label='cp2k_check', default_calc_job_plugin='cp2k', filepath_executable='/bin/true')
    inputs['label'] = {'cp2k': {'code': cp2k}}
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None
    del inputs['sampling']
    inputs['pool'] = TrainingSetData.from_atoms(nacl_configurations(4), reference=lammps_reference(BMHTF))
    _submit_fails(inputs, r'mixed references: label: cp2k fast.*; pool: lammps bmhtf_coul_long')
    inputs['pool'] = TrainingSetData.from_atoms(nacl_configurations(4), reference=cp2k_reference('fast'))
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None


def test_screening_rejects_an_overlapping_configuration_and_records_why():
    """The outlier check as the loop runs it (calcfunction): real BMHTF-labelled frames, one with overlapping atoms."""
    from aiida_mlfail.workflows.active_learning import screen_configurations

    good, bad = nacl_configurations(2)
    bad.positions[1] = bad.positions[0] + [0.4, 0.0, 0.0]
    bad.info['energy'] += 500.0  # what a reference says about overlapping ions
    for atoms, key in ((good, 'trigger'), (bad, 'previous')):
        atoms.info['candidate'] = key
    labelled = TrainingSetData.from_atoms([good, bad], reference=lammps_reference(BMHTF))
    result = screen_configurations(labelled, labelled, TrainingSetData.from_atoms(nacl_configurations(3)),
                                   orm.Dict({}))
    verdicts = {v['candidate']: v for v in result['screening']['candidates']}
    assert verdicts['trigger']['accepted'] and not verdicts['previous']['accepted']
    # per-pair distances from the training set (0.5 x the shortest distance of each pair), reported
    limits = result['screening']['outlier_distances']
    assert list(limits) == ['Na-Na', 'Na-Cl', 'Cl-Cl'] and 'training configurations' in \
        result['screening']['outlier_distances_source']
    pair = '-'.join(sorted(bad.get_chemical_symbols()[:2], key=lambda s: s != 'Na'))
    assert f'{pair} distance 0.400 Å < {limits[pair]:.3f} Å (the {pair} outlier distance)' in \
        verdicts['previous']['reasons']
    assert any('eV/atom from the training mean' in reason for reason in verdicts['previous']['reasons'])
    assert [a.info['candidate'] for a in result['accepted'].get_atoms()] == ['trigger']
    assert result['accepted'].reference == lammps_reference(BMHTF)  # merged into the training set next
    assert verdicts['trigger']['energy_error'] == 0.0 and verdicts['trigger']['forces_rmse'] == 0.0


def test_two_accepted_and_room_for_one_adds_the_trigger():
    """The labeller returns 'previous' before 'trigger' (sorted keys); both pass the outlier check; with room for
    one configuration the screening order and the limit keep the trigger, not the previous configuration."""
    from aiida_mlfail.workflows.active_learning import _first_configurations, screen_configurations

    previous, trigger = nacl_configurations(2)
    previous.info['candidate'], trigger.info['candidate'] = 'previous', 'trigger'
    labelled = TrainingSetData.from_atoms([previous, trigger])
    result = screen_configurations(labelled, labelled, TrainingSetData.from_atoms(nacl_configurations(3)),
                                   orm.Dict({}))
    assert all(v['accepted'] for v in result['screening']['candidates'])
    assert [a.info['candidate'] for a in result['accepted'].get_atoms()] == ['trigger', 'previous']
    (added,) = _first_configurations(result['accepted'], orm.Int(1)).get_atoms()
    assert added.info['candidate'] == 'trigger'
    assert added.info['energy'] == pytest.approx(trigger.info['energy'])


@pytest.mark.parametrize('role, value, match', [
    (('explore', 'job', 'metadata'), {'options': {'max_walclock_seconds': 60}}, 'max_walclock_seconds'),
    (('predict', 'job', 'metadata'), {'options': {'max_walclock_seconds': 60}}, 'max_walclock_seconds'),
    (('gap', 'fit', 'job', 'metadata'), {'options': {'max_walclock_seconds': 60}}, 'max_walclock_seconds'),
    (('explore', 'restart'), {'walltime_factor': 0.5}, 'walltime_factor'),
    (('predict', 'max_iterations'), 0, 'max_iterations'),
])
def test_wrapper_and_scheduler_option_typos_fail_at_submit(inputs, role, value, match):
    """The restart wrappers are exposed by role: a misspelt scheduler option under ``<role>.job.metadata.options``
    (checked by the CalcJob's own ports) and a bad wrapper input are refused at the learner's submit, named."""
    target = inputs
    for key in role[:-1]:
        target = target[key]
    target[role[-1]] = value if role[-1] == 'metadata' else orm.to_aiida_type(value)
    _submit_fails(inputs, match)


def test_wrapper_inputs_by_role_are_accepted(inputs):
    inputs['explore']['max_iterations'] = orm.Int(2)
    inputs['explore']['restart'] = orm.Dict({'walltime_factor': 3.0})
    inputs['predict']['job']['metadata'] = {'options': {'max_wallclock_seconds': 600,
                                                        'resources': {'num_machines': 1}}}
    inputs['gap']['fit']['clean_workdir'] = orm.Bool(True)
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None
    ports = ActiveLearningWorkChain.spec().inputs
    assert 'quip' not in ports and 'restart' not in ports  # by role now: predict, explore.restart ...


@pytest.mark.parametrize('where, match', [
    ('outliers', r"parameters.outliers.min_distance names the pair\(s\) \['Ar-Na'\], but explore.job.structure has "
                 r"the species \['Cl', 'Na'\] only"),
    ('guards', r"parameters.guards.min_distance names the pair 'Ar-Na', but the structure and training set have "
               r"the species \['Cl', 'Na'\] only"),
])
def test_per_pair_distances_of_species_not_explored_are_refused_at_submit(inputs, where, match):
    if where == 'outliers':
        inputs['parameters'] = orm.Dict({'outliers': {'min_distance': {'Na-Cl': 1.0, 'Ar-Na': 1.0}}})
    else:
        parameters = inputs['explore']['job']['parameters'].get_dict()
        inputs['explore']['job']['parameters'] = orm.Dict({**parameters, 'guards': {'min_distance': {'Ar-Na': 1.0}}})
    _submit_fails(inputs, match)


def test_per_pair_distances_given_by_the_user_pass(inputs):
    inputs['parameters'] = orm.Dict({'outliers': {'min_distance': {'Cl-Na': 1.2}}})
    parameters = inputs['explore']['job']['parameters'].get_dict()
    inputs['explore']['job']['parameters'] = orm.Dict({**parameters, 'guards': {'min_distance': {'Na-Na': 1.0}}})
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None


@pytest.mark.parametrize('walkers, message', [
    ([], r'walkers: walkers must be a non-empty list'),
    ([{'temperature': 1400.0}, {'temperatur': 1500.0}], r"walkers: walkers\[1\]: unknown key\(s\) \['temperatur'\]"),
    ([{'ensemble': 'NPT'}, {'ensemble': 'NVE'}], r"walkers\[1\]\.ensemble must be one of .*'NVE'"),
    ([{'seed': 3}, {'seed': -1}], r'walkers\[1\]\.seed'),
    ([{}, {'structure': 'dense'}], r"walkers\[1\]\.structure: 'dense' is not a structure of walker_structures "
                                   r"\(given: none\)"),
])
def test_bad_walkers_are_named_at_submit(inputs, walkers, message):
    inputs['walkers'] = orm.List(walkers)
    _submit_fails(inputs, message)



def test_walkers_with_their_own_start_structures(inputs):
    inputs['walkers'] = orm.List([{'temperature': 1400.0, 'seed': 1},
                                  {'temperature': 1600.0, 'ensemble': 'NVT', 'seed': 2, 'structure': 'dense'}])
    inputs['walker_structures'] = {'dense': orm.StructureData(ase=molten_nacl(64, volume=2000.0))}
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None
    # a walker structure with a species the initial data lack is named
    from ase import Atoms

    inputs['walker_structures'] = {'dense': orm.StructureData(
        ase=Atoms('KCl', positions=[[0, 0, 0], [2.5, 0, 0]], cell=[8, 8, 8], pbc=True))}
    _submit_fails(inputs, r"explore.job.structure and walker_structures have species \['K'\] that the initial "
                          'data lack')


def test_max_batch_is_checked(inputs):
    inputs['parameters'] = orm.Dict({'max_batch': 0})
    _submit_fails(inputs, 'max_batch')


def test_choose_batch_calcfunction_triggers_first_then_farthest():
    """Three candidates of two walkers, room for two: both triggers; the REMatch distances are in the node."""
    from aiida_mlfail.calculations.functions import choose_batch

    structures = {}
    for key, volume, similarity in (('w0_trigger', 2300.0, 0.99), ('w1_trigger', 2300.0, 0.999),
                                    ('w1_previous', 1600.0, 0.9)):
        node = orm.StructureData(ase=molten_nacl(16, volume=volume * 16 / 64, seed=len(structures)))
        node.base.attributes.set('similarity', similarity)
        structures[key] = node
    result = choose_batch(orm.Dict({'max_batch': 2, 'soap': {'r_cut': 4.0, 'n_max': 3, 'l_max': 2}}),
                          **structures).get_dict()
    assert result['chosen'] == ['w0_trigger', 'w1_trigger'] and result['not_chosen'] == ['w1_previous']
    assert result['distances'] == 'rematch' and result['between']['w0_trigger']['w0_trigger'] == 0.0
    assert result['to_training']['w1_previous'] == pytest.approx((2 - 2 * 0.9) ** 0.5)
    # room for one: the trigger farther from the training set (similarity 0.99 < 0.999)
    result = choose_batch(orm.Dict({'max_batch': 1, 'distance_atoms': 0}), **structures).get_dict()
    assert result['chosen'] == ['w0_trigger'] and result['distances'] == 'explorer similarities only'
