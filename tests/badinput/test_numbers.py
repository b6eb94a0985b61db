"""Bad numbers through the processes' port validation (issue 13): each is refused before anything is stored.

One table, ``CASES``: ``(entry point, input path, bad value, words the message must hold)``. The input path is
``<port>:<key>.<key>`` for a key inside a ``Dict``/``List`` port (``state_points:0.temperature``) and
``<port>`` for a base-type port (the value then becomes an ``Int``/``Float`` node). Each case puts the bad value
into a valid set of inputs of the entry point (checked valid by :func:`test_base_inputs_are_valid`), asks the
process spec to validate them (what ``submit``/``run`` and the CLI do before storing anything) and checks that
the message names the key and the value and that no node was stored. The ``SUBMITTED`` cases go through
``aiida.engine.run`` itself.
"""

from __future__ import annotations

import copy
import math

import pytest
from aiida import orm
from aiida.engine import run
from ase.build import bulk

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.calculations.gap_fit import GapFitCalculation
from aiida_mlfail.calculations.rematch import RematchCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.references import lammps_reference
from aiida_mlfail.science.structures import molten_nacl
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlfail.workflows.config_space import ConfigSpaceWorkChain
from aiida_mlfail.workflows.cp2k import Cp2kSinglePointWorkChain
from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.badinput.harness import assert_words, node_count, sandbox
from tests.helpers import FIXTURES, nacl_configurations

INF, NAN = math.inf, math.nan
BMHTF = {'name': 'bmhtf_coul_long'}
TWO_BODY = {'descriptors': [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 0.5, 'n_sparse': 10}]}
SOAP = {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}

CASES = [
    # classical sampling (mlfail.sample): MD settings, state points, potential, structure spec
    ('mlfail.sample', 'md:timestep', INF, ['timestep', 'inf']),
    ('mlfail.sample', 'md:timestep', '2', ['timestep', "'2'"]),
    ('mlfail.sample', 'md:timestep', 0.0, ['timestep', '> 0', 'got 0.0']),
    ('mlfail.sample', 'md:production_steps', 1e30, ['production_steps', '1e+30']),
    ('mlfail.sample', 'md:production_steps', -1, ['production_steps', '>= 0', 'got -1']),
    ('mlfail.sample', 'md:seed', True, ['seed', 'True']),
    ('mlfail.sample', 'md:seed', 0, ['seed', 'got 0']),
    ('mlfail.sample', 'md:sampling_interval', 2.5, ['sampling_interval', '2.5']),
    ('mlfail.sample', 'md:thermo_interval', None, ['thermo_interval', 'None']),
    ('mlfail.sample', 'state_points:0.temperature', NAN, ['state_points[0]', 'temperature', 'nan']),
    ('mlfail.sample', 'state_points:0.temperature', None, ['state_points[0]', 'temperature', 'None']),
    ('mlfail.sample', 'state_points:0.temperature', '300', ['temperature', "'300'"]),
    ('mlfail.sample', 'state_points:0.temperature', -300.0, ['temperature', '> 0', '-300.0']),
    ('mlfail.sample', 'state_points:0.volume', -INF, ['volume', '-inf']),
    ('mlfail.sample', 'state_points:0.volume', 0, ['volume', '> 0', 'got 0']),
    ('mlfail.sample', 'state_points:1.density', INF, ['state_points[1]', 'density', 'inf']),
    ('mlfail.sample', 'state_points:1.density', -1.2, ['density', '-1.2']),
    ('mlfail.sample', 'state_points:2.pressure', INF, ['state_points[2]', 'pressure', 'inf']),
    ('mlfail.sample', 'state_points:2.pressure', True, ['pressure', 'True']),
    ('mlfail.sample', 'potential:parameters.cutoff', INF, ['potential', 'cutoff', 'inf']),
    ('mlfail.sample', 'potential:parameters.kspace_accuracy', 0.0, ['kspace_accuracy', '0.0']),
    ('mlfail.sample', 'structure_spec:n_ions', 1e30, ['n_ions', '1e+30']),
    ('mlfail.sample', 'structure_spec:density', NAN, ['density', 'nan']),
    # GAP MD with guards (mlfail.mlmd)
    ('mlfail.mlmd', 'parameters:timestep', -INF, ['timestep', '-inf']),
    ('mlfail.mlmd', 'parameters:steps', 2.5, ['steps', '2.5']),
    ('mlfail.mlmd', 'parameters:steps', 1e30, ['steps', '1e+30']),
    ('mlfail.mlmd', 'parameters:temperature', '300', ['temperature', "'300'"]),
    ('mlfail.mlmd', 'parameters:seed', None, ['seed', 'None']),
    ('mlfail.mlmd', 'parameters:dump_interval', 0, ['dump_interval', 'got 0']),
    ('mlfail.mlmd', 'parameters:pressure', NAN, ['pressure', 'nan']),
    ('mlfail.mlmd', 'parameters:atomic_energies', 1, ['atomic_energies', 'got 1']),
    ('mlfail.mlmd', 'parameters:checkpoint_interval', -1, ['checkpoint_interval', '-1']),
    ('mlfail.mlmd', 'parameters:guards.min_distance', NAN, ['guards.min_distance', 'nan']),
    ('mlfail.mlmd', 'parameters:guards.volume_factor', 1.0, ['guards.volume_factor', '> 1', '1.0']),
    ('mlfail.mlmd', 'parameters:guards.temperature_factor', None, ['guards.temperature_factor', 'None']),
    ('mlfail.mlmd', 'parameters:guards.max_energy_change_per_atom', INF, ['max_energy_change_per_atom', 'inf']),
    # explorer (mlfail.explore): novelty check and SOAP
    ('mlfail.explore', 'parameters:critical_similarity', 0.0, ['critical_similarity', '> 0', '0.0']),
    ('mlfail.explore', 'parameters:critical_similarity', 1.5, ['critical_similarity', '<= 1', '1.5']),
    ('mlfail.explore', 'parameters:critical_similarity', NAN, ['critical_similarity', 'nan']),
    ('mlfail.explore', 'parameters:comparison_step', 2.5, ['comparison_step', '2.5']),
    ('mlfail.explore', 'parameters:comparison_step', True, ['comparison_step', 'True']),
    ('mlfail.explore', 'parameters:max_steps', INF, ['max_steps', 'inf']),
    ('mlfail.explore', 'parameters:alpha', NAN, ['alpha', 'nan']),
    ('mlfail.explore', 'parameters:threshold', 1.0, ['threshold', '< 1', '1.0']),
    ('mlfail.explore', 'parameters:soap.r_cut', INF, ['r_cut', 'inf']),
    ('mlfail.explore', 'parameters:soap.n_max', 2.5, ['n_max', '2.5']),
    ('mlfail.explore', 'parameters:soap.l_max', 1e30, ['l_max', '1e+30']),
    ('mlfail.explore', 'parameters:soap.l_max', 21, ['l_max', '<= 20', '21']),
    ('mlfail.explore', 'parameters:soap.sigma', 0, ['sigma', 'got 0']),
    ('mlfail.explore', 'parameters:reference_volume', -INF, ['reference_volume', '-inf']),
    # GAP fit (mlfail.gap_fit)
    ('mlfail.gap_fit', 'parameters:sigma.energy', INF, ['sigma.energy', 'inf']),
    ('mlfail.gap_fit', 'parameters:sigma.forces', -0.1, ['sigma.forces', '-0.1']),
    ('mlfail.gap_fit', 'parameters:sigma.virial', None, ['sigma.virial', 'None']),
    ('mlfail.gap_fit', 'parameters:sparse_jitter', NAN, ['sparse_jitter', 'nan']),
    ('mlfail.gap_fit', 'parameters:sparse_jitter', 0.0, ['sparse_jitter', '0.0']),
    ('mlfail.gap_fit', 'parameters:seed', 1.5, ['seed', '1.5']),
    ('mlfail.gap_fit', 'parameters:sparse_separate_file', 'yes', ['sparse_separate_file', "'yes'"]),
    # GAP fit + validation (mlfail.gap): selection, split, restart settings
    ('mlfail.gap', 'selection:n', 2.5, ['selection.n', '2.5']),
    ('mlfail.gap', 'selection:n', True, ['selection.n', 'True']),
    ('mlfail.gap', 'selection:seed', -1, ['selection.seed', '-1']),
    ('mlfail.gap', 'split:train_fraction', NAN, ['train_fraction', 'nan']),
    ('mlfail.gap', 'fit.restart:walltime_factor', INF, ['walltime_factor', 'inf']),
    ('mlfail.gap', 'fit.restart:sparse_factor', 1.0, ['sparse_factor', '< 1', '1.0']),
    ('mlfail.gap', 'predict.restart:max_walltime_s', 2.5, ['max_walltime_s', '2.5']),
    ('mlfail.gap', 'fit.restart:max_memory_kb_limit', NAN, ['max_memory_kb_limit', 'nan']),
    # active learning (mlfail.active_learning)
    ('mlfail.active_learning', 'parameters:max_iterations', INF, ['max_iterations', 'inf']),
    ('mlfail.active_learning', 'parameters:max_iterations', 0, ['max_iterations', '>= 1', 'got 0']),
    ('mlfail.active_learning', 'parameters:max_iterations', True, ['max_iterations', 'True']),
    ('mlfail.active_learning', 'parameters:max_failed_labels', -1, ['max_failed_labels', '>= 0', '-1']),
    ('mlfail.active_learning', 'parameters:max_failed_labels', 2.5, ['max_failed_labels', '2.5']),
    ('mlfail.active_learning', 'parameters:max_concurrent_labels', 1e30, ['max_concurrent_labels', '1e+30']),
    ('mlfail.active_learning', 'parameters:max_new_configurations', None, ['max_new_configurations', 'None']),
    ('mlfail.active_learning', 'parameters:outliers.max_force', NAN, ['outliers.max_force', 'nan']),
    ('mlfail.active_learning', 'parameters:reseed', 'no', ['reseed', "'no'"]),
    ('mlfail.active_learning', 'explore.restart:memory_factor', -INF, ['memory_factor', '-inf']),
    ('mlfail.active_learning', 'explore.job.parameters:critical_similarity', INF, ['critical_similarity', 'inf']),
    ('mlfail.active_learning', 'explore.job.parameters:seed', '42', ['seed', "'42'"]),
    # labelling (mlfail.label)
    ('mlfail.label', 'max_concurrent_jobs', 0, ['max_concurrent_jobs', 'got 0']),
    # REMatch (mlfail.rematch) and the configuration-space comparison (mlfail.config_space)
    ('mlfail.rematch', 'parameters:alpha', INF, ['alpha', 'inf']),
    ('mlfail.rematch', 'parameters:alpha', True, ['alpha', 'True']),
    ('mlfail.rematch', 'parameters:threshold', NAN, ['threshold', 'nan']),
    ('mlfail.rematch', 'parameters:threshold', 0, ['threshold', 'got 0']),
    ('mlfail.rematch', 'soap:n_max', 0, ['n_max', 'got 0']),
    ('mlfail.config_space', 'parameters:bins', 2.5, ['bins', '2.5']),
    ('mlfail.config_space', 'parameters:alpha', -INF, ['alpha', '-inf']),
    # CP2K (mlfail.cp2k_single_point, mlfail.aimd): scheduler options, overrides, MD ports
    ('mlfail.cp2k_single_point', 'options:max_wallclock_seconds', INF, ['max_wallclock_seconds', 'inf']),
    ('mlfail.cp2k_single_point', 'options:max_wallclock_seconds', 2.5, ['max_wallclock_seconds', '2.5']),
    ('mlfail.cp2k_single_point', 'options:max_wallclock_seconds', True, ['max_wallclock_seconds', 'True']),
    ('mlfail.cp2k_single_point', 'options:resources.num_machines', 0, ['num_machines', 'got 0']),
    ('mlfail.cp2k_single_point', 'options:resources.num_mpiprocs_per_machine', '4',
     ['num_mpiprocs_per_machine', "'4'"]),
    ('mlfail.cp2k_single_point', 'options:max_memory_kb', -1, ['max_memory_kb', '-1']),
    ('mlfail.cp2k_single_point', 'overrides:FORCE_EVAL.DFT.SCF.EPS_SCF', NAN, ['overrides.FORCE_EVAL.DFT.SCF.EPS_SCF',
                                                                               'nan']),
    ('mlfail.cp2k_single_point', 'max_iterations', 0, ['max_iterations', 'got 0']),
    ('mlfail.cp2k_single_point', 'max_iterations', -3, ['max_iterations', '-3']),
    ('mlfail.aimd', 'temperature', INF, ['temperature', 'inf']),
    ('mlfail.aimd', 'temperature', -300.0, ['temperature', '-300.0']),
    ('mlfail.aimd', 'steps', 0, ['steps', 'got 0']),
    ('mlfail.aimd', 'timestep', NAN, ['timestep', 'nan']),
    ('mlfail.aimd', 'seed', -5, ['seed', '-5']),
]


def _crystal(rattle=0.0, seed=1):
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


@pytest.fixture
def entries(request, lammps_code, gap_fit_code, quip_code, explore_code, rematch_code):
    """Entry point -> (process class, a function returning valid inputs with unstored Data nodes). The CP2K code is
    made only for the CP2K entries (its fixture skips where ``cp2k.psmp`` is missing, and fails in CI)."""
    reference = lammps_reference(BMHTF)

    def sample():
        return {'lammps': {'job': {'code': lammps_code}}, 'structure_spec': orm.Dict({'system': 'nacl', 'n_ions': 64}),
                'potential': orm.Dict(BMHTF), 'md': orm.Dict({}),
                'state_points': orm.List([{'temperature': 1400.0, 'volume': 2300.0},
                                          {'temperature': 1400.0, 'density': 1.5},
                                          {'temperature': 1400.0, 'ensemble': 'NPT', 'pressure': 1.0}])}

    def mlmd():
        return {'md': {'job': {'code': lammps_code}}, 'potential': GapPotentialData.from_folder(FIXTURES / 'bridge'),
                'structure': orm.StructureData(ase=_crystal()), 'parameters': orm.Dict({'steps': 100})}

    def explore():
        return {'code': explore_code, 'potential': GapPotentialData.from_folder(FIXTURES / 'bridge'),
                'structure': orm.StructureData(ase=_crystal()),
                'training_set': TrainingSetData.from_atoms([_crystal(), _crystal(0.1, 2)]),
                'parameters': orm.Dict({'max_steps': 100, 'comparison_step': 20, 'critical_similarity': 0.9,
                                        'soap': dict(SOAP)})}

    def gap_fit():
        return {'code': gap_fit_code, 'training_set': TrainingSetData.from_atoms(nacl_configurations(3)),
                'parameters': orm.Dict(copy.deepcopy(TWO_BODY))}

    def gap():
        return {'pool': TrainingSetData.from_atoms(nacl_configurations(6), reference=reference),
                'selection': orm.Dict({'method': 'random', 'n': 4, 'seed': 0}),
                'split': orm.Dict({'train_fraction': 0.5, 'seed': 0}),
                'fit': {'job': {'code': gap_fit_code, 'parameters': orm.Dict(copy.deepcopy(TWO_BODY))},
                        'restart': orm.Dict({})},
                'predict': {'job': {'code': quip_code}, 'restart': orm.Dict({})}}

    def active_learning():
        return {
            'training_set': TrainingSetData.from_atoms(nacl_configurations(4), reference=reference),
            'validation_set': TrainingSetData.from_atoms(nacl_configurations(2), reference=reference),
            'gap': {'fit': {'job': {'code': gap_fit_code, 'parameters': orm.Dict(copy.deepcopy(TWO_BODY))}},
                    'predict': {'job': {'code': quip_code}}},
            'explore': {'job': {'code': explore_code,
                                'structure': orm.StructureData(ase=molten_nacl(64, volume=2300.0)),
                                'parameters': orm.Dict({'ensemble': 'NPT', 'max_steps': 100,
                                                        'comparison_step': 10})},
                        'restart': orm.Dict({})},
            'label': {'lammps': {'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}}},
            'predict': {'job': {'code': quip_code}}, 'parameters': orm.Dict({}),
        }

    def label():
        return {'configurations': TrainingSetData.from_atoms(nacl_configurations(2)),
                'lammps': {'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}},
                'max_concurrent_jobs': orm.Int(2)}

    def rematch():
        return {'code': rematch_code, 'x': TrainingSetData.from_atoms(nacl_configurations(2)),
                'soap': orm.Dict(dict(SOAP)), 'parameters': orm.Dict({'mode': 'matrix'})}

    def config_space():
        return {'rematch': {'job': {'code': rematch_code}}, 'x': TrainingSetData.from_atoms(nacl_configurations(2)),
                'y': TrainingSetData.from_atoms(nacl_configurations(3)), 'soap': orm.Dict(dict(SOAP)),
                'parameters': orm.Dict({})}

    def cp2k_single_point():
        return {'code': request.getfixturevalue('cp2k_code'), 'structure': orm.StructureData(ase=_crystal()),
                'options': orm.Dict({'max_wallclock_seconds': 600,
                                     'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}),
                'overrides': orm.Dict({'FORCE_EVAL': {'DFT': {'SCF': {'EPS_SCF': 1e-6}}}}),
                'max_iterations': orm.Int(3)}

    def aimd():
        return {'code': request.getfixturevalue('cp2k_code'), 'structure': orm.StructureData(ase=_crystal()),
                'temperature': orm.Float(300.0),
                'steps': orm.Int(3), 'timestep': orm.Float(1.0), 'seed': orm.Int(7)}

    return {
        'mlfail.sample': (ClassicalSamplingWorkChain, sample),
        'mlfail.mlmd': (MLMDWorkChain, mlmd),
        'mlfail.explore': (ExploreCalculation, explore),
        'mlfail.gap_fit': (GapFitCalculation, gap_fit),
        'mlfail.gap': (GapWorkChain, gap),
        'mlfail.active_learning': (ActiveLearningWorkChain, active_learning),
        'mlfail.label': (LabelWorkChain, label),
        'mlfail.rematch': (RematchCalculation, rematch),
        'mlfail.config_space': (ConfigSpaceWorkChain, config_space),
        'mlfail.cp2k_single_point': (Cp2kSinglePointWorkChain, cp2k_single_point),
        'mlfail.aimd': (Cp2kAimdWorkChain, aimd),
    }


def with_value(inputs: dict, path: str, value) -> dict:
    """``inputs`` with ``value`` at ``path`` (``port.subport:key.key`` inside a Dict/List, or ``port.subport``
    for a base-type port, whose node is replaced by a new one of the same type holding ``value``)."""
    ports, _, keys = path.partition(':')
    *outer, port = ports.split('.')
    namespace = inputs
    for name in outer:
        namespace = namespace[name]
    node = namespace[port]
    if not keys:
        namespace[port] = type(node)(value)
        return inputs
    content = node.get_list() if isinstance(node, orm.List) else node.get_dict()
    *parents, last = keys.split('.')
    target = content
    for key in parents:
        key = int(key) if isinstance(target, list) else key
        target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
    target[int(last) if isinstance(target, list) else last] = value
    namespace[port] = type(node)(content)
    return inputs


@pytest.mark.parametrize('entry', sorted({case[0] for case in CASES}))
def test_base_inputs_are_valid(entries, entry):
    """Each case changes one value of inputs that are valid, so its refusal is due to that value."""
    process, make = entries[entry]
    assert process.spec().inputs.validate(make()) is None


@pytest.mark.parametrize('entry, path, value, words', CASES, ids=[f'{c[0]}-{c[1]}={c[2]!r}' for c in CASES])
def test_bad_number_is_refused_naming_key_and_value(entries, tmp_path, entry, path, value, words):
    process, make = entries[entry]
    inputs = with_value(make(), path, value)
    with sandbox(tmp_path):
        error = process.spec().inputs.validate(inputs)
    assert error is not None, f'{entry} accepted {path}={value!r}'
    assert_words(str(error), words)


#: Bad values through ``run`` (``submit`` builds the process the same way, through ``instantiate_process``, but
#: needs a running daemon): (launcher, entry point, input path, value, words).
SUBMITTED = [
    (run, 'mlfail.sample', 'md:timestep', INF, ['timestep', 'inf']),
    (run, 'mlfail.explore', 'parameters:critical_similarity', INF, ['critical_similarity', 'inf']),
    (run, 'mlfail.rematch', 'parameters:alpha', INF, ['alpha', 'inf']),
    (run, 'mlfail.gap_fit', 'parameters:sigma.energy', INF, ['sigma.energy', 'inf']),
    (run, 'mlfail.active_learning', 'parameters:max_iterations', INF, ['max_iterations', 'inf']),
]


@pytest.mark.parametrize('launch, entry, path, value, words', SUBMITTED,
                         ids=[f'{c[0].__name__}-{c[1]}-{c[2]}' for c in SUBMITTED])
def test_launching_an_infinite_value_stores_nothing(entries, tmp_path, launch, entry, path, value, words):
    """``run`` refuses the inputs before storing any node (no ProcessNode, no Data input)."""
    process, make = entries[entry]
    inputs = with_value(make(), path, value)
    before = node_count()
    with sandbox(tmp_path):
        with pytest.raises(ValueError) as info:
            launch(process, **inputs)
    assert_words(str(info.value), words)
    assert node_count() == before
    assert all(not node.is_stored for node in _nodes(inputs))


def _nodes(inputs):
    for value in inputs.values():
        if isinstance(value, dict):
            yield from _nodes(value)
        elif isinstance(value, orm.Data) and not isinstance(value, orm.AbstractCode):
            yield value
