"""Bad ``atom_style full`` references (issue 15: "topology missing for full" and a data file that does not match the
structure) through the submit-time port validation of ``mlfail.sample``, ``mlfail.label`` and ``mlfail.mlmd`` (its
reference rerun), and through the sampling builder and the CLI: each is refused naming the data file and what is
wrong, before anything is stored.

``CASES``: ``(case id, entry point, change, words)`` as in ``test_reference_potential``; the base inputs are the SPC/Fw
water of ``examples/water`` (checked valid by :func:`test_base_inputs_are_valid`).
"""

from __future__ import annotations

import io

import pytest
from aiida import orm

from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.structures import structure_from_data_file
from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.badinput.harness import api_refused, cli_refused, sandbox, validation_refused
from tests.helpers import FIXTURES
from tests.science.test_topology import WATER_DATA, water_reference


def water(n_molecules=16, rattle=0.0, seed=1):
    atoms = structure_from_data_file(WATER_DATA, ['O', 'H'])[:3 * n_molecules]
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


def data_node(text=None, filename='water.data') -> orm.SinglefileData:
    text = WATER_DATA.read_text() if text is None else text
    return orm.SinglefileData(io.BytesIO(text.encode()), filename=filename)


def _data_file(path, edit):
    """A change replacing the data file node under ``path`` (a ``potential_files`` namespace) by an edited copy."""
    def change(inputs):
        namespace = inputs
        for key in path.split('.'):
            namespace = namespace[key]
        namespace['water_data'] = data_node(edit(WATER_DATA.read_text()))
    return change


def _structure(key, atoms):
    def change(inputs):
        inputs[key] = orm.StructureData(ase=atoms)
    return change


def _configurations(atoms_list):
    def change(inputs):
        inputs['configurations'] = TrainingSetData.from_atoms(atoms_list)
    return change


def _potential(path, **changes):
    def change(inputs):
        namespace = inputs
        *parents, last = path.split('.')
        for key in parents:
            namespace = namespace[key]
        namespace[last] = orm.Dict({**namespace[last].get_dict(), **changes})
    return change


def _without_bonds(text):
    head, _, tail = text.partition('\nBonds\n')
    return head + '\nAngles\n' + tail.partition('\nAngles\n')[2]


SWAPPED = water()
SWAPPED.set_chemical_symbols(['H', 'O', 'H'] * 16)
CASES = [
    ('sample-full-no-bonds', 'mlfail.sample',
     _data_file('potential_files', lambda t: _without_bonds(t).replace('32 bonds\n', '').replace('1 bond types\n', '')),
     ['potential_files', 'topology missing for full', "'water.data'", 'no Bonds']),
    ('sample-full-not-a-data-file', 'mlfail.sample', _data_file('potential_files', lambda t: 'O 0 0 0\nH 1 0 0\n'),
     ["'water.data'", 'not a LAMMPS data file of atom_style full']),
    ('sample-full-binary-data-file', 'mlfail.sample', _data_file('potential_files', lambda t: '\x00\xff' * 40),
     ["'water.data'", 'not a LAMMPS data file']),
    ('sample-full-atom-count', 'mlfail.sample', _structure('structure', water(15)),
     ["'water.data'", 'has 48 atoms but the structure has 45']),
    ('sample-full-atom-order', 'mlfail.sample', _structure('structure', SWAPPED),
     ["'water.data'", 'atom ID 1 is O', 'atom 0 of the structure is H']),
    ('sample-full-atom-types', 'mlfail.sample', _data_file('potential_files', lambda t: t.replace('2 atom types',
                                                                                                   '3 atom types')),
     ["'water.data'", 'declares 3 atom types', "['O', 'H']"]),
    ('sample-full-angles-without-style', 'mlfail.sample',
     _potential('potential', commands=[c for c in water_reference()['commands'] if not c.startswith('angle_')]),
     ["'water.data' has Angles", 'no angle_style']),
    ('sample-full-data-file-not-listed', 'mlfail.sample', _potential('potential', data_file='ice.data'),
     ["data_file 'ice.data' is not among the files"]),
    ('sample-data-file-with-atomic', 'mlfail.sample', _potential('potential', atom_style='atomic'),
     ["data_file 'water.data' given with atom_style atomic"]),
    ('sample-full-with-charges', 'mlfail.sample', _potential('potential', charges={'O': -0.82, 'H': 0.41}),
     ['charges', 'those of the data file']),
    ('label-full-atom-order', 'mlfail.label', _configurations([SWAPPED]),
     ['lammps.potential_files', "'water.data'", 'atom ID 1 is O']),
    ('label-full-no-bonds', 'mlfail.label',
     _data_file('lammps.potential_files', lambda t: t.replace('\nBonds\n', '\nBondz\n')),
     ['lammps.potential_files', 'topology missing for full']),
    ('mlmd-full-atom-count', 'mlfail.mlmd', _structure('structure', water(12)),
     ['reference.potential_files', "'water.data'", 'has 48 atoms but the structure has 36']),
    ('builder-full-without-data-file-path', 'builder', {'files': {}},
     ["data_file 'water.data' is not among the files"]),
]


@pytest.fixture
def entries(lammps_code, tmp_path_factory):
    def sample():
        return {'lammps': {'job': {'code': lammps_code}}, 'structure': orm.StructureData(ase=water()),
                'potential': orm.Dict(water_reference()), 'potential_files': {'water_data': data_node()},
                'md': orm.Dict({}), 'state_points': orm.List([{'temperature': 300.0, 'density': 1.0}])}

    def label():
        return {'configurations': TrainingSetData.from_atoms([water(rattle=0.02, seed=1), water(rattle=0.02, seed=2)]),
                'lammps': {'potential': orm.Dict(water_reference()), 'job': {'code': lammps_code},
                           'potential_files': {'water_data': data_node()}}}

    def mlmd():
        # the NaCl test GAP relabelled as O (Na) and H (Cl): the validators read the species and the
        # descriptor strings of the XML; the GAP is not run
        folder = tmp_path_factory.mktemp('water_gap')
        for path in (FIXTURES / 'bridge').glob('gap.xml*'):
            text = path.read_text()
            for old, new in (('Z1=11', 'Z1=8'), ('Z2=11', 'Z2=8'), ('Z1=17', 'Z1=1'), ('Z2=17', 'Z2=1'),
                             ('Z=11 ', 'Z=8 '), ('Z=17 ', 'Z=1 '), ('species_Z={11 17 }', 'species_Z={8 1 }')):
                text = text.replace(old, new)
            (folder / path.name).write_text(text)
        gap = GapPotentialData.from_folder(folder)
        gap.base.attributes.set('species', ['O', 'H'])
        return {'md': {'job': {'code': lammps_code}}, 'potential': gap, 'structure': orm.StructureData(ase=water()),
                'parameters': orm.Dict({'steps': 100}),
                'reference': {'job': {'code': lammps_code}, 'potential': orm.Dict(water_reference()),
                              'potential_files': {'water_data': data_node()}}}

    return {'mlfail.sample': (ClassicalSamplingWorkChain, sample), 'mlfail.label': (LabelWorkChain, label),
            'mlfail.mlmd': (MLMDWorkChain, mlmd)}


@pytest.mark.parametrize('entry', ['mlfail.sample', 'mlfail.label', 'mlfail.mlmd'])
def test_base_inputs_are_valid(entries, entry):
    process, make = entries[entry]
    assert process.spec().inputs.validate(make()) is None


@pytest.mark.parametrize('case, entry, change, words', CASES, ids=[c[0] for c in CASES])
def test_bad_molecular_reference_is_refused_naming_it(entries, lammps_code, tmp_path, case, entry, change, words):
    if entry == 'builder':
        with sandbox(tmp_path):
            api_refused(lambda: ClassicalSamplingWorkChain.get_builder_from_protocol(
                lammps_code, water(), reference={**water_reference(), **change}), words)
        return
    process, make = entries[entry]
    inputs = make()
    change(inputs)
    validation_refused(process, inputs, words, tmp_path, case)


def test_cli_refuses_a_structure_that_is_not_a_full_data_file(tmp_path, lammps_code):
    """With an ``atom_style full`` reference, ``structure:`` is read as a data file of that style (named in the
    message when it is not one)."""
    import yaml

    from aiida_mlfail.cli.main import cli

    work = tmp_path / 'work'
    work.mkdir()
    (work / 'water.data').write_text(WATER_DATA.read_text())
    water().write(work / 'water.xyz')
    reference = {**water_reference(), 'files': {'water.data': 'water.data'}}
    (work / 'bad.yaml').write_text(yaml.safe_dump({'structure': 'water.xyz', 'reference': reference}))
    with sandbox(tmp_path):
        cli_refused(cli, ['launch', 'mlfail.sample', '--protocol', 'fast', '-i', 'bad.yaml'],
                    ['structure', 'water.xyz', 'not a LAMMPS data file of atom_style full'])


def test_the_documented_water_yaml_builds_valid_inputs(tmp_path, monkeypatch, lammps_code):
    """``examples/water/water.yaml`` as ``aiida-mlfail launch mlfail.sample --protocol fast -i water.yaml`` reads it:
    the structure comes from the data file (atom order = atom IDs), the data file becomes a potential file node."""
    import shutil

    import yaml

    from aiida_mlfail.cli.inputs import builder_from_protocol

    monkeypatch.chdir(tmp_path)
    shutil.copy(WATER_DATA, tmp_path / 'water.data')
    tree = yaml.safe_load((WATER_DATA.parent / 'water.yaml').read_text())
    builder = builder_from_protocol(ClassicalSamplingWorkChain, 'fast', tree, lammps_code.computer.label)
    structure = builder.structure.get_ase()
    assert structure.get_chemical_symbols() == ['O', 'H', 'H'] * 16
    assert structure.get_volume() == pytest.approx(478.634, abs=1e-3)
    assert builder.potential.get_dict()['data_file'] == 'water.data'
    assert dict(builder.potential_files)['water_data'].get_content() == WATER_DATA.read_text()
    assert builder.md.get_dict()['timestep'] == 0.5
    assert ClassicalSamplingWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None
