"""``get_builder_from_protocol`` of every public WorkChain, for every protocol, on tiny systems.

Each builder is checked three ways: the WorkChain's own port validation accepts it (the submit-time
check), its serialised inputs equal the committed regression file (``tests/workflows/test_protocols/``,
pytest-regressions' ``data_regression``; regenerate with ``--force-regen`` after a deliberate protocol
change and review the diff), and overrides / scheduler options reach the ports they are meant for.
"""

from __future__ import annotations

import pytest
import yaml
from aiida import orm
from aiida.engine.processes.builder import ProcessBuilderNamespace

from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.references import cp2k_reference, lammps_reference
from aiida_mlfail.science.structures import molten_nacl
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlfail.workflows.config_space import ConfigSpaceWorkChain
from aiida_mlfail.workflows.cp2k import Cp2kSinglePointWorkChain
from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from aiida_mlfail.workflows.protocols import PROTOCOLS_FOLDER
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.helpers import FIXTURES, load_study, nacl_configurations

PROTOCOLS = ('fast', 'moderate', 'precise')
#: The classical reference of the fixture frames (tests/fixtures/lammps_sample) and of the labellers.
BMHTF = {'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1.0e-4}}
CP2K = {'cp2k': {}}
WORKCHAINS = (ClassicalSamplingWorkChain, GapWorkChain, MLMDWorkChain, LabelWorkChain, ConfigSpaceWorkChain,
              Cp2kSinglePointWorkChain, Cp2kAimdWorkChain, ActiveLearningWorkChain)


def serialize(value):
    """Builder inputs as plain values: Dict -> dict, List -> list, base types -> value, Code -> label,
    StructureData -> formula + cell (Å), TrainingSetData -> n_configurations + species, GAP -> species."""
    if isinstance(value, (dict, ProcessBuilderNamespace)):
        return {key: serialize(item) for key, item in sorted(value.items())}
    if isinstance(value, orm.Dict):
        return serialize(value.get_dict())
    if isinstance(value, orm.List):
        return [serialize(item) for item in value.get_list()]
    if isinstance(value, orm.BaseType):
        return value.value
    if isinstance(value, orm.AbstractCode):
        return value.label
    if isinstance(value, orm.StructureData):
        return {'formula': value.get_formula(), 'cell': [[round(x, 6) for x in row] for row in value.cell]}
    if isinstance(value, TrainingSetData):
        return {'n_configurations': value.n_configurations, 'species': value.species}
    if isinstance(value, GapPotentialData):
        return {'gap_species': value.species}
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (list, tuple)):
        return [serialize(item) for item in value]
    return value


@pytest.fixture
def codes(lammps_code, gap_fit_code, quip_code, explore_code, rematch_code, cp2k_code):
    return {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code,
            'rematch': rematch_code, 'cp2k': cp2k_code}


def tiny_data() -> dict:
    """Tiny systems: 64-ion frames of the committed LAMMPS fixture, an 8-ion cell for CP2K, the test GAP."""
    frames = nacl_configurations(4)
    return {
        'structure': orm.StructureData(ase=frames[0]),
        'small_structure': orm.StructureData(ase=molten_nacl(8, volume=280.0, seed=1)),
        'pool': TrainingSetData.from_atoms(frames, reference=lammps_reference(BMHTF)),
        # 64 frames (the 3 fixture frames cycled): enough environments for the precise protocol's 1000 SOAP
        # sparse points, which the GapWorkChain checks at submit time
        'big_pool': TrainingSetData.from_atoms(nacl_configurations(64), reference=lammps_reference(BMHTF)),
        'other': TrainingSetData.from_atoms(nacl_configurations(2), reference=lammps_reference(BMHTF)),
        'potential': GapPotentialData.from_folder(FIXTURES / 'gap_fit_ok'),
    }


@pytest.fixture
def data():
    return tiny_data()


def make_builder(name: str, codes: dict, data: dict, **kwargs):
    """The builder of the case ``name`` (a WorkChain, or ``label_cp2k`` / ``active_learning_cp2k``)."""
    if name in ('sample', 'mlmd', 'label', 'active_learning'):
        kwargs.setdefault('reference', BMHTF)
    if name == 'sample':
        return ClassicalSamplingWorkChain.get_builder_from_protocol(codes, data['structure'], **kwargs)
    if name == 'gap':
        return GapWorkChain.get_builder_from_protocol(codes, data['big_pool'], **kwargs)
    if name == 'mlmd':
        return MLMDWorkChain.get_builder_from_protocol(codes, data['potential'], data['structure'], **kwargs)
    if name == 'label':
        return LabelWorkChain.get_builder_from_protocol(codes, data['pool'], **kwargs)
    if name == 'label_cp2k':
        return LabelWorkChain.get_builder_from_protocol(codes, data['other'], reference=CP2K, **kwargs)
    if name == 'config_space':
        return ConfigSpaceWorkChain.get_builder_from_protocol(codes, data['pool'], data['other'], **kwargs)
    if name == 'cp2k_single_point':
        return Cp2kSinglePointWorkChain.get_builder_from_protocol(codes, data['small_structure'], **kwargs)
    if name == 'cp2k_aimd':
        return Cp2kAimdWorkChain.get_builder_from_protocol(codes, data['small_structure'], **kwargs)
    if name == 'active_learning':
        return ActiveLearningWorkChain.get_builder_from_protocol(codes, data['structure'], **kwargs)
    if name == 'active_learning_cp2k':
        return ActiveLearningWorkChain.get_builder_from_protocol(codes, data['small_structure'], reference=CP2K,
                                                                 sampling_reference=BMHTF, **kwargs)
    raise AssertionError(name)


CASES = ('sample', 'gap', 'mlmd', 'label', 'label_cp2k', 'config_space', 'cp2k_single_point', 'cp2k_aimd',
         'active_learning', 'active_learning_cp2k')


@pytest.mark.parametrize('protocol', PROTOCOLS)
@pytest.mark.parametrize('name', CASES)
def test_builder_is_valid_and_matches_the_regression_file(name, protocol, codes, data, data_regression):
    builder = make_builder(name, codes, data, protocol=protocol)
    inputs = builder._inputs(prune=True)
    error = builder.process_class.spec().inputs.validate(inputs)
    assert error is None, f'{name} {protocol}: {error}'
    data_regression.check(serialize(inputs), basename=f'{name}_{protocol}')


@pytest.mark.parametrize('cls', WORKCHAINS, ids=lambda cls: cls.__name__)
def test_protocol_files_hold_only_differences(cls):
    """default_protocol fast; fast, moderate, precise exist; fast adds nothing to default_inputs; no value of
    a protocol repeats the default (each protocol holds only its differences)."""
    content = yaml.safe_load((PROTOCOLS_FOLDER / cls._protocol_file).read_text())
    assert content['default_protocol'] == 'fast' == cls.get_default_protocol()
    assert set(content['protocols']) == set(PROTOCOLS) == set(cls.get_available_protocols())
    assert set(content['protocols']['fast']) == {'description'}

    def repeated(difference, default, path=''):
        if isinstance(difference, dict) and isinstance(default, dict):
            return [p for key, value in difference.items() if key in default
                    for p in repeated(value, default[key], f'{path}.{key}')]
        return [path] if difference == default else []

    for name in ('moderate', 'precise'):
        differences = {k: v for k, v in content['protocols'][name].items() if k != 'description'}
        assert differences, f'{cls._protocol_file}: {name} holds no difference'
        assert not repeated(differences, content['default_inputs']), f'{cls._protocol_file} {name} repeats defaults'


@pytest.mark.parametrize('name', CASES)
def test_unknown_protocol_is_refused_naming_it(name, codes, data):
    with pytest.raises(ValueError, match=r"unknown protocol 'ultra'; available: \['fast', 'moderate', 'precise'\]"):
        make_builder(name, codes, data, protocol='ultra')


def test_sampling_overrides_and_options_reach_their_ports(codes, data):
    builder = make_builder('sample', codes, data, protocol='moderate',
                           overrides={'temperatures': [500.0, 700.0], 'pressure': 10.0, 'md': {'seed': 9}},
                           options={'max_wallclock_seconds': 77, 'resources': {'num_mpiprocs_per_machine': 2}})
    volume = data['structure'].get_cell_volume()
    points = builder.state_points.get_list()
    assert [(p['temperature'], p['ensemble'], p['pressure']) for p in points] == [(500.0, 'NPT', 10.0),
                                                                                   (700.0, 'NPT', 10.0)]
    assert all(p['volume'] == pytest.approx(volume) for p in points)
    md = builder.md.get_dict()
    assert md['seed'] == 9 and md['production_steps'] == 4000  # the override, and the moderate value kept
    assert builder._inputs(prune=True)['lammps']['job']['metadata']['options'] == {
        'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 2}, 'max_wallclock_seconds': 77}
    assert builder.lammps.max_iterations.value == 5  # the wrapper's protocol value, untouched by `options`
    explicit = [{'temperature': 1400.0, 'density': 1.4, 'label': 'melt'}]
    builder = make_builder('sample', codes, data, state_points=explicit)
    assert builder.state_points.get_list() == explicit


@pytest.mark.parametrize('name, role', [('sample', 'lammps'), ('mlmd', 'md'), ('mlmd', 'reference'),
                                        ('label', 'lammps'), ('config_space', 'rematch')])
def test_restart_wrapper_settings_of_a_role_reach_its_ports(name, role, codes, data):
    """The role's restart wrapper (max_iterations, restart, job options) is set from the overrides; the
    builder's `options` merge into its job's metadata.options."""
    overrides = {role: {'max_iterations': 7, 'restart': {'walltime_factor': 3.0},
                        'job': {'metadata': {'options': {'queue_name': 'short'}}}}}
    builder = make_builder(name, codes, data, overrides=overrides, options={'max_wallclock_seconds': 55})
    wrapper = builder._inputs(prune=True)[role]
    assert wrapper['max_iterations'].value == 7
    assert wrapper['restart'].get_dict() == {'walltime_factor': 3.0}
    assert wrapper['job']['code'].label == ('rematch' if role == 'rematch' else 'lammps')
    options = wrapper['job']['metadata']['options']
    assert (options['queue_name'], options['max_wallclock_seconds']) == ('short', 55)
    assert options['resources'] == {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
    assert builder.process_class.spec().inputs.validate(builder._inputs(prune=True)) is None


@pytest.mark.parametrize('name, role', [('sample', 'lammps'), ('mlmd', 'md'), ('mlmd', 'reference'),
                                        ('label', 'lammps'), ('config_space', 'rematch')])
def test_a_role_without_code_or_with_a_misspelt_key_is_refused_at_submit(name, role, codes, data):
    """The exposed wrapper namespaces are closed and need their job's code: the mistake is named at submit time."""
    spec = make_builder(name, codes, data).process_class.spec().inputs
    inputs = make_builder(name, codes, data)._inputs(prune=True)
    del inputs[role]['job']['code']
    assert f"'inputs.{role}.job.code': required value was not provided" in str(spec.validate(inputs))
    inputs = make_builder(name, codes, data)._inputs(prune=True)
    inputs[role]['max_iteration'] = orm.Int(2)
    assert "Unexpected ports {'max_iteration'" in str(spec.validate(inputs))
    inputs = make_builder(name, codes, data)._inputs(prune=True)
    inputs[role]['job']['metdata'] = {}
    assert "Unexpected ports {'metdata'" in str(spec.validate(inputs))


def test_gap_overrides_from_a_yaml_file_and_options(codes, data, tmp_path):
    path = tmp_path / 'overrides.yaml'
    path.write_text('fit:\n  max_iterations: 2\n  restart: {on_out_of_memory: reduce_sparse_points}\n'
                    '  job:\n    parameters:\n      descriptors:\n        soap: null\n      sigma: {energy: 0.01}\n'
                    'predict:\n  clean_workdir: true\n'
                    'selection: {n: 100}\n')
    builder = make_builder('gap', codes, data, overrides=str(path), options={'max_wallclock_seconds': 120})
    parameters = builder.fit.job.parameters.get_dict()
    assert [d['type'] for d in parameters['descriptors']] == ['distance_2b']
    assert parameters['sigma'] == {'energy': 0.01, 'forces': 0.05, 'virial': 0.05}
    assert builder.selection['n'] == 64  # capped at the pool size
    assert builder.fit.job.metadata.options['max_wallclock_seconds'] == 120
    assert builder.predict.job.metadata.options['max_wallclock_seconds'] == 120
    # the restart wrappers' own inputs, by role
    assert builder.fit.max_iterations.value == 2
    assert builder.fit.restart.get_dict() == {'on_out_of_memory': 'reduce_sparse_points'}
    assert builder.predict.clean_workdir.value is True
    assert GapWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None


@pytest.mark.parametrize('role', ['fit', 'predict'])
def test_gap_option_typo_fails_at_submit_time_naming_it(codes, data, role):
    """A misspelt scheduler option under ``<role>.job.metadata.options`` is refused by the CalcJob's own
    ``metadata.options`` ports at submit time (not hours later), and by the builder's ``options=``."""
    inputs = make_builder('gap', codes, data)._inputs(prune=True)
    inputs[role]['job']['metadata']['options']['max_walclock_seconds'] = 5
    assert 'max_walclock_seconds' in str(GapWorkChain.spec().inputs.validate(inputs))
    with pytest.raises(ValueError, match=r"unknown scheduler option\(s\) \['max_walclock_seconds'\]"):
        make_builder('gap', codes, data, options={'max_walclock_seconds': 5})


def test_gap_unknown_wrapper_key_is_named(codes, data):
    with pytest.raises(ValueError, match=r"GapWorkChain predict: unknown key\(s\) \['max_iteration'\]"):
        make_builder('gap', codes, data, overrides={'predict': {'max_iteration': 3}})


def test_label_cp2k_reference_protocol_and_overrides_reach_the_single_points(codes, data):
    cp2k_sections = {'FORCE_EVAL': {'DFT': {'SCF': {'MAX_SCF': 80}}}}
    reference = {'cp2k': {'protocol': 'moderate', 'overrides': cp2k_sections}}
    builder = make_builder('label', codes, data, reference=reference, protocol='fast',
                           overrides={'cp2k': {'max_iterations': 3}, 'max_concurrent_jobs': 5},
                           options={'max_wallclock_seconds': 900})
    assert 'lammps' not in builder._inputs(prune=True)
    assert builder.cp2k.protocol.value == 'moderate'  # the reference's physics wins over the label protocol's
    assert builder.cp2k.overrides.get_dict() == cp2k_sections
    assert builder.cp2k.max_iterations.value == 3 and builder.max_concurrent_jobs.value == 5
    assert builder.cp2k.options['max_wallclock_seconds'] == 900
    assert LabelWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None


def test_active_learning_builds_its_parts_from_the_inner_protocols(codes, data):
    options = {'max_wallclock_seconds': 4321}
    builder = make_builder('active_learning', codes, data, protocol='moderate', options=options, overrides={
        'temperature': 1400.0, 'gap': {'fit': {'job': {'parameters': {'sigma': {'energy': 0.01}}}}},
        'explore': {'max_iterations': 2, 'job': {'parameters': {'max_steps': 99}}},
        'predict': {'restart': {'walltime_factor': 3.0}}, 'sampling': {'md': {'production_steps': 1000}}})
    # inner protocols of the same name, with the outer overrides on top
    gap = GapWorkChain.get_protocol_inputs('moderate')
    fit = builder.gap.fit.job.parameters.get_dict()
    assert fit['sigma']['energy'] == 0.01
    soap = gap['fit']['job']['parameters']['descriptors']['soap']
    assert fit['descriptors'][1]['n_sparse'] == soap['n_sparse'] == 100
    sampling = ClassicalSamplingWorkChain.get_protocol_inputs('moderate')
    md = builder.sampling.md.get_dict()
    assert md['production_steps'] == 1000 and md['equilibration_steps'] == sampling['md']['equilibration_steps']
    (point,) = builder.sampling.state_points.get_list()
    assert point['temperature'] == 1400.0 and point['ensemble'] == 'NVT'
    explore = builder.explore.job.parameters.get_dict()
    assert explore['max_steps'] == 99 and explore['temperature'] == 1400.0 and explore['pressure'] == 1.0
    assert builder.explore.max_iterations.value == 2  # the explorer's restart wrapper
    assert builder.predict.restart.get_dict() == {'walltime_factor': 3.0}
    assert 'selection' not in builder._inputs(prune=True)  # classical labels: every sampled frame
    # the options reach every job
    assert builder.sampling.lammps.job.metadata.options['max_wallclock_seconds'] == 4321
    assert builder.gap.fit.job.metadata.options['max_wallclock_seconds'] == 4321
    assert builder.gap.predict.job.metadata.options['max_wallclock_seconds'] == 4321
    assert builder.explore.job.metadata.options['max_wallclock_seconds'] == 4321
    assert builder.label.lammps.job.metadata.options['max_wallclock_seconds'] == 4321
    assert builder.predict.job.metadata.options['max_wallclock_seconds'] == 4321
    assert ActiveLearningWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None


def test_active_learning_with_cp2k_labels_selects_and_keeps_one_reference(codes, data):
    builder = make_builder('active_learning_cp2k', codes, data, protocol='precise')
    assert builder.selection.get_dict() == {'method': 'temporal', 'n': 24, 'seed': 0}
    assert builder.label.cp2k.protocol.value == 'precise'
    assert builder.sampling.potential.get_dict() == BMHTF
    assert cp2k_reference('precise')['kind'] == 'cp2k'


@pytest.mark.parametrize('codes_value, match', [
    ({'lammps': 'x'}, r"codes lack the role\(s\) \['gap_fit', 'quip', 'explore'\]"),
    ('single', r"give the codes as a mapping by role \['lammps', 'gap_fit', 'quip', 'explore'\]"),
])
def test_missing_code_roles_are_named(codes_value, match, data):
    with pytest.raises(ValueError, match=match):
        ActiveLearningWorkChain.get_builder_from_protocol(codes_value, data['structure'], reference=BMHTF)


def test_bad_references_and_options_are_named(codes, data):
    with pytest.raises(ValueError, match=r"reference \{'name': 'lj_neon'\}: unknown reference potential 'lj_neon'"):
        make_builder('sample', codes, data, reference={'name': 'lj_neon'})
    with pytest.raises(ValueError, match=r"give `reference`"):
        LabelWorkChain.get_builder_from_protocol(codes, data['pool'])
    with pytest.raises(ValueError, match=r"reference.cp2k.protocol: .*'ultra'"):
        make_builder('label', codes, data, reference={'cp2k': {'protocol': 'ultra'}})
    with pytest.raises(ValueError, match=r"reference.cp2k has unknown key\(s\) \['basis'\]"):
        make_builder('label', codes, data, reference={'cp2k': {'basis': 'DZVP'}})
    with pytest.raises(ValueError, match=r'with a CP2K reference give `sampling_reference`'):
        make_builder('active_learning', codes, data, reference=CP2K)
    with pytest.raises(ValueError, match=r"unknown scheduler option\(s\) \['max_walltime'\]"):
        make_builder('mlmd', codes, data, options={'max_walltime': 10})


def test_a_single_code_serves_a_one_role_workchain(lammps_code, data):
    builder = ClassicalSamplingWorkChain.get_builder_from_protocol(lammps_code, data['structure'], reference=BMHTF)
    assert builder.lammps.job.code.uuid == lammps_code.uuid
    builder = ClassicalSamplingWorkChain.get_builder_from_protocol(lammps_code.full_label, data['structure'],
                                                                   reference=BMHTF)
    assert builder.lammps.job.code.uuid == lammps_code.uuid


def _walk_keys(value, path=''):
    if isinstance(value, dict):
        for key, item in value.items():
            yield f'{path}.{key}', key
            yield from _walk_keys(item, f'{path}.{key}')


@pytest.mark.parametrize('cls', WORKCHAINS, ids=lambda cls: cls.__name__)
def test_protocol_files_name_no_system(cls):
    """No volume, density, species or element in the generic protocols: those come from the data and the
    builder arguments."""
    content = yaml.safe_load((PROTOCOLS_FOLDER / cls._protocol_file).read_text())
    found = [path for path, key in _walk_keys(content) if key in ('volume', 'density', 'species', 'Z', 'structure')]
    assert not found
    text = yaml.safe_dump(content)
    assert not any(f"'{symbol}'" in text or f' {symbol}\n' in text for symbol in ('Na', 'Cl', 'Ar')), text


#: The settings of workflows/nacl_active_learning.py before it used the builders (its SIZES then): the
#: builders with the study's overrides must reproduce them.
STUDY_SETTINGS = {
    'small': {'production_steps': 4000, 'sampling_interval': 50, 'cutoff': 5.0, 'soap_sparse': 100, 'n_sparse_2b': 20,
              'comparison_step': 25, 'max_steps': 2000, 'critical_similarity': 0.999, 'max_iterations': 12,
              'max_new_configurations': 15},
    'large': {'production_steps': 50000, 'sampling_interval': 100, 'cutoff': 8.0, 'soap_sparse': 1000,
              'n_sparse_2b': 20, 'comparison_step': 50, 'max_steps': 50000, 'critical_similarity': 0.999,
              'max_iterations': 30, 'max_new_configurations': 60},
}


@pytest.mark.parametrize('size', ['small', 'large'])
def test_active_learning_study_is_the_protocol_with_the_studys_overrides(size, codes, data):
    """workflows/nacl_active_learning.py builds its learner and sampling from the protocols (moderate: the demo,
    --size small; precise: --size large) with its overrides, and so keeps its settings."""
    study = load_study('nacl_active_learning')
    s, expected = study.SIZES[size], STUDY_SETTINGS[size]
    # the study's initial data: sampled with its reference, which is the labeller's
    training_set, validation_set = (TrainingSetData.from_atoms(nacl_configurations(n),
                                                               reference=lammps_reference(study.REFERENCE))
                                    for n in (4, 2))
    builder = study.active_learning_builder(codes, s, training_set, validation_set, data['structure'])
    inputs = builder._inputs(prune=True)
    assert 'sampling' not in inputs and inputs['training_set'].uuid == training_set.uuid
    assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None
    explore = builder.explore.job.parameters.get_dict()
    assert (explore['max_steps'], explore['comparison_step'], explore['critical_similarity']) == (
        expected['max_steps'], expected['comparison_step'], expected['critical_similarity'])
    assert (explore['temperature'], explore['pressure'], explore['ensemble']) == (1400.0, 1.0, 'NPT')
    loop = builder.parameters.get_dict()
    assert (loop['max_iterations'], loop['max_new_configurations']) == \
        (expected['max_iterations'], expected['max_new_configurations'])
    two_body, soap = builder.gap.fit.job.parameters['descriptors']
    assert (soap['cutoff'], soap['n_sparse']) == (expected['cutoff'], expected['soap_sparse'])
    assert (two_body['cutoff'], two_body['n_sparse']) == (expected['cutoff'], expected['n_sparse_2b'])
    assert builder.label.lammps.potential.get_dict() == study.REFERENCE
    md = study.training_sampling_builder(codes, s).md.get_dict()
    assert (md['production_steps'], md['sampling_interval']) == (expected['production_steps'],
                                                                 expected['sampling_interval'])


@pytest.mark.parametrize('size', ['small', 'large'])
def test_dft_active_learning_study_is_the_protocol_with_the_studys_overrides(size, codes, data):
    """workflows/nacl_dft_active_learning.py: the learner from the protocol with the study's overrides keeps the
    study's settings (CP2K labels of a temporal selection of BMHTF NVT frames of the nacl preset)."""
    study = load_study('nacl_dft_active_learning')
    s = study.SIZES[size]
    builder = study.active_learning_builder(codes, s, molten_nacl(s['n_ions'], volume=s['training_volume'], seed=1))
    assert ActiveLearningWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None
    assert builder.label.cp2k.protocol.value == 'moderate' and builder.sampling.potential.get_dict() == study.BMHTF
    (point,) = builder.sampling.state_points.get_list()
    assert (point['volume'], point['temperature'], point['ensemble']) == (s['training_volume'], 1400.0, 'NVT')
    assert len(builder.sampling.structure.sites) == s['n_ions']
    assert builder.selection.get_dict() == {'method': 'temporal', 'n': {'small': 12, 'large': 24}[size], 'seed': 0}
    explore = builder.explore.job.parameters.get_dict()
    assert (explore['max_steps'], explore['critical_similarity'], explore['soap']['r_cut']) == {
        'small': (3000, 0.995, 5.0), 'large': (20000, 0.999, 6.0)}[size]
    two_body, soap = builder.gap.fit.job.parameters['descriptors']
    assert (two_body['n_sparse'], soap['n_sparse'], soap['cutoff']) == {'small': (15, 20, 5.0),
                                                                        'large': (15, 400, 6.0)}[size]
    md = builder.sampling.md.get_dict()
    assert (md['equilibration_steps'], md['production_steps'], md['sampling_interval']) == {
        'small': (1000, 2400, 100), 'large': (2000, 12000, 250)}[size]
    loop = builder.parameters.get_dict()
    assert (loop['max_iterations'], loop['max_new_configurations'], loop['max_failed_labels'],
            loop['max_concurrent_labels']) == {'small': (12, 16, 6, 2), 'large': (30, 40, 20, 16)}[size]


@pytest.mark.parametrize('size', ['small', 'large'])
def test_gap_study_is_the_protocol_with_the_studys_overrides(size, codes):
    """workflows/nacl_gap.py: sampling and GAP builders from the protocols with the study's overrides keep the
    settings the study had before it used the builders (numbers below)."""
    study = load_study('nacl_gap')
    expected = {'small': {'md': (2000, 6000, 50), 'n': 300, 'cutoff': 6.0, 'sparse': (40, 400)},
                'large': {'md': (5000, 50000, 100), 'n': 500, 'cutoff': 8.0, 'sparse': (40, 1000)}}[size]
    sampling = study.sampling_builder(size, codes)
    assert ClassicalSamplingWorkChain.spec().inputs.validate(sampling._inputs(prune=True)) is None
    md = sampling.md.get_dict()
    assert (md['equilibration_steps'], md['production_steps'], md['sampling_interval']) == expected['md']
    assert [p['volume'] for p in sampling.state_points.get_list()] == study.SIZES[size]['volumes']
    assert sampling.potential['parameters']['cutoff'] == expected['cutoff']
    pool = TrainingSetData.from_atoms(nacl_configurations(64), reference=lammps_reference(
        sampling.potential.get_dict()))
    builder = study.gap_builder(size, codes, pool)
    assert GapWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None
    assert builder.selection.get_dict() == {'method': 'uniform_force', 'n': min(expected['n'], 64), 'seed': 7}
    # the protocol's descriptors written out for the pool's species (science.gap.explicit_descriptors)
    descriptors = builder.fit.job.parameters['descriptors']
    two_body = [d for d in descriptors if d['type'] == 'distance_2b']
    soap = [d for d in descriptors if d['type'] == 'soap']
    assert [(d['Z1'], d['Z2']) for d in two_body] == [(11, 11), (11, 17), (17, 17)]
    assert [(d['Z'], d['species_Z']) for d in soap] == [(11, [11, 17]), (17, [11, 17])]
    assert {d['cutoff'] for d in descriptors} == {expected['cutoff']}
    assert ({d['n_sparse'] for d in two_body}, {d['n_sparse'] for d in soap}) == ({expected['sparse'][0]},
                                                                                   {expected['sparse'][1]})
    assert not any(d['add_species'] for d in descriptors)


@pytest.mark.parametrize('overrides, match', [
    ({'explore': {'parameters': {'max_steps': 99}}}, r"ActiveLearningWorkChain explore: unknown key\(s\) "
                                                     r"\['parameters'\]"),
    ({'predict': {'options': {'max_wallclock_seconds': 9}}}, r"ActiveLearningWorkChain predict: unknown key\(s\) "
                                                             r"\['options'\]"),
    ({'gap': {'fit': {'parameters': {'sigma': {'energy': 0.01}}}}}, r"GapWorkChain fit: unknown key\(s\) "
                                                                   r"\['parameters'\]"),
])
def test_active_learning_overrides_outside_the_port_layout_are_named(codes, data, overrides, match):
    """An override written for ports that do not exist (here the layout before the restart wrappers were exposed:
    ``explore.parameters`` instead of ``explore.job.parameters``) is refused, naming the key, not ignored."""
    with pytest.raises(ValueError, match=match):
        make_builder('active_learning', codes, data, overrides=overrides)
