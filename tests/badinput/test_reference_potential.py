"""Bad generic LAMMPS references (issue 15) through the submit-time port validation of ``mlfail.sample``,
``mlfail.label`` and ``mlfail.mlmd``, and through the builders: each is refused naming the command, file,
species or style, before anything is stored.

``CASES``: ``(case id, entry point, change, words)``; ``change(inputs)`` edits valid inputs of the entry point
(checked valid by :func:`test_base_inputs_are_valid`); the ``builder`` entries call
``ClassicalSamplingWorkChain.get_builder_from_protocol`` with the changed reference instead.
"""

from __future__ import annotations

import io

import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.badinput.harness import api_refused, sandbox, validation_refused
from tests.helpers import FIXTURES

EAM_FILE = FIXTURES / 'eam_cu' / 'Cu_model.eam'


def eam_reference() -> dict:
    return {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic',
            'commands': ['pair_style eam', 'pair_coeff 1 1 Cu_model.eam'], 'files': ['Cu_model.eam']}


def eam_node(filename='Cu_model.eam') -> orm.SinglefileData:
    return orm.SinglefileData(EAM_FILE, filename=filename)


def copper(n=2, rattle=0.0, seed=1):
    atoms = bulk('Cu', 'fcc', a=3.6147, cubic=True).repeat(n)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


def _edit_potential(path, **changes):
    """A change replacing keys of the reference Dict at ``path`` (``potential`` or ``lammps.potential`` ...)."""
    def change(inputs):
        node = _get(inputs, path)
        _set(inputs, path, orm.Dict({**node.get_dict(), **changes}))
    return change


def _get(inputs, path):
    for key in path.split('.'):
        inputs = inputs[key]
    return inputs


def _set(inputs, path, value):
    *parents, last = path.split('.')
    for key in parents:
        inputs = inputs[key]
    inputs[last] = value


def _files(path, files):
    def change(inputs):
        _set(inputs, path, files())
    return change


def _structure(atoms):
    def change(inputs):
        inputs['structure'] = orm.StructureData(ase=atoms)
    return change


SHELL = ['pair_style eam', 'pair_coeff 1 1 Cu_model.eam', 'shell rm -rf /']
CASES = [
    ('sample-file-without-node', 'mlfail.sample', _files('potential_files', dict),
     ['Cu_model.eam', 'no potential file']),
    ('sample-node-not-named', 'mlfail.sample',
     _files('potential_files', lambda: {'Cu_model_eam': eam_node(), 'extra': eam_node('other.eam')}),
     ['other.eam', 'not among the files']),
    ('sample-node-misnamed', 'mlfail.sample', _files('potential_files', lambda: {'Cu_model_eam': eam_node('Cu.eam')}),
     ['Cu_model.eam', 'Cu.eam']),
    ('sample-two-nodes-one-name', 'mlfail.sample',
     _files('potential_files', lambda: {'a': eam_node(), 'b': eam_node()}), ['same file name']),
    ('sample-command-names-unlisted-file', 'mlfail.sample',
     _edit_potential('potential', commands=['pair_style eam', 'pair_coeff 1 1 Cu_u3.eam']),
     ["'Cu_u3.eam'", 'not among the files']),
    ('sample-shell', 'mlfail.sample', _edit_potential('potential', commands=SHELL), ["'shell'", 'not allowed']),
    ('sample-fix', 'mlfail.sample', _edit_potential('potential', commands=[*SHELL[:2], 'fix x all nve']),
     ["'fix'", 'not allowed']),
    ('sample-include', 'mlfail.sample', _edit_potential('potential', commands=[*SHELL[:2], 'include more.in']),
     ["'include'", 'not allowed']),
    ('sample-variable-expansion', 'mlfail.sample',
     _edit_potential('potential', commands=['pair_style eam', 'pair_coeff 1 1 ${f}']), ['pair_coeff 1 1 ${f}', '$']),
    ('sample-pair-style-python', 'mlfail.sample',
     _edit_potential('potential', commands=['pair_style python 5.0', 'pair_coeff * * py.Model Cu'], files=[]),
     ["'python'"]),
    ('sample-species-not-described', 'mlfail.sample', _structure(bulk('Ni', 'fcc', a=3.52, cubic=True).repeat(2)),
     ["['Ni']", 'not described']),
    ('sample-atom-style-full-without-data-file', 'mlfail.sample', _edit_potential('potential', atom_style='full'),
     ['atom_style full', "needs 'data_file'"]),
    ('sample-charge-without-charges', 'mlfail.sample', _edit_potential('potential', atom_style='charge'),
     ['atom_style charge', 'charges']),
    ('sample-file-path', 'mlfail.sample',
     _edit_potential('potential', files=['../Cu_model.eam'], commands=['pair_style eam',
                                                                       'pair_coeff 1 1 ../Cu_model.eam']),
     ["'../Cu_model.eam'"]),
    ('label-file-without-node', 'mlfail.label', _files('lammps.potential_files', dict),
     ['lammps.potential_files', 'Cu_model.eam']),
    ('label-shell', 'mlfail.label', _edit_potential('lammps.potential', commands=SHELL),
     ['lammps.potential', "'shell'"]),
    ('mlmd-file-without-node', 'mlfail.mlmd', _files('reference.potential_files', dict),
     ['reference.potential_files', 'NaCl.eam.alloy']),
    ('mlmd-write-data', 'mlfail.mlmd',
     _edit_potential('reference.potential', commands=['pair_style eam/alloy', 'pair_coeff * * NaCl.eam.alloy Na Cl',
                                                      'write_data out.data']),
     ['reference.potential', "'write_data'"]),
    ('builder-file-missing', 'builder', {'files': {'Cu_model.eam': 'no/such/Cu_model.eam'}},
     ['Cu_model.eam', 'not a readable file']),
    ('builder-files-list', 'builder', {'files': ['Cu_model.eam']}, ['files must be a mapping']),
    ('builder-file-name-path', 'builder', {'files': {'pots/Cu_model.eam': str(EAM_FILE)}},
     ['pots/Cu_model.eam', 'bare file name']),
]


@pytest.fixture
def entries(lammps_code):
    def sample():
        return {'lammps': {'job': {'code': lammps_code}}, 'structure': orm.StructureData(ase=copper()),
                'potential': orm.Dict(eam_reference()), 'potential_files': {'Cu_model_eam': eam_node()},
                'md': orm.Dict({}), 'state_points': orm.List([{'temperature': 600.0, 'volume': 378.0}])}

    def label():
        return {'configurations': TrainingSetData.from_atoms([copper(1, 0.05, 1), copper(1, 0.05, 2)]),
                'lammps': {'potential': orm.Dict(eam_reference()), 'job': {'code': lammps_code},
                           'potential_files': {'Cu_model_eam': eam_node()}}}

    def mlmd():
        reference = {'name': 'lammps', 'species': ['Na', 'Cl'], 'atom_style': 'atomic',
                     'commands': ['pair_style eam/alloy', 'pair_coeff * * NaCl.eam.alloy Na Cl'],
                     'files': ['NaCl.eam.alloy']}
        return {'md': {'job': {'code': lammps_code}}, 'potential': GapPotentialData.from_folder(FIXTURES / 'bridge'),
                'structure': orm.StructureData(ase=bulk('NaCl', 'rocksalt', a=5.64, cubic=True)),
                'parameters': orm.Dict({'steps': 100}),
                'reference': {'job': {'code': lammps_code}, 'potential': orm.Dict(reference),
                              'potential_files': {'table': orm.SinglefileData(io.BytesIO(b'# not read\n'),
                                                                              filename='NaCl.eam.alloy')}}}

    return {'mlfail.sample': (ClassicalSamplingWorkChain, sample), 'mlfail.label': (LabelWorkChain, label),
            'mlfail.mlmd': (MLMDWorkChain, mlmd)}


@pytest.mark.parametrize('entry', ['mlfail.sample', 'mlfail.label', 'mlfail.mlmd'])
def test_base_inputs_are_valid(entries, entry):
    process, make = entries[entry]
    assert process.spec().inputs.validate(make()) is None


@pytest.mark.parametrize('case, entry, change, words', CASES, ids=[c[0] for c in CASES])
def test_bad_reference_is_refused_naming_it(entries, lammps_code, tmp_path, case, entry, change, words):
    if entry == 'builder':
        with sandbox(tmp_path):
            api_refused(lambda: ClassicalSamplingWorkChain.get_builder_from_protocol(
                lammps_code, copper(), reference={**eam_reference(), **change}), words)
        return
    process, make = entries[entry]
    inputs = make()
    change(inputs)
    validation_refused(process, inputs, words, tmp_path, case)


def test_builder_turns_file_paths_into_nodes_named_by_the_reference(lammps_code):
    builder = ClassicalSamplingWorkChain.get_builder_from_protocol(
        lammps_code, copper(), reference={**eam_reference(), 'files': {'Cu_model.eam': str(EAM_FILE)}})
    assert builder.potential.get_dict()['files'] == ['Cu_model.eam']
    nodes = dict(builder.potential_files)
    assert list(nodes) == ['Cu_model_eam'] and nodes['Cu_model_eam'].filename == 'Cu_model.eam'
    assert nodes['Cu_model_eam'].get_content() == EAM_FILE.read_text()
    assert ClassicalSamplingWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None
