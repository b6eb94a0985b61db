"""TrainingSetData and GapPotentialData."""

import re

import numpy as np
import pytest
from ase.io import read

from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from tests.helpers import FIXTURES, nacl_configurations


def test_training_set_attributes_and_round_trip(tmp_path):
    configurations = nacl_configurations(3)
    node = TrainingSetData.from_atoms(configurations).store()
    assert node.n_configurations == 3
    assert node.species == ['Cl', 'Na']
    assert node.n_atoms == {'min': 64, 'max': 64}
    assert node.labels == ['energy', 'forces', 'virial', 'atomic_energies']
    assert [c['md_step'] for c in node.configurations] == [100, 200, 300]
    back = node.get_atoms()
    assert np.allclose(back[2].arrays['forces'], configurations[2].arrays['forces'])
    path = node.export(tmp_path / 'set.xyz')
    frames = read(path, ':')  # plain ASE reads it
    assert len(frames) == 3 and frames[0].get_potential_energy() == pytest.approx(configurations[0].info['energy'])


def test_training_set_labels_are_the_common_subset():
    configurations = nacl_configurations(2)
    del configurations[1].info['virial']
    assert TrainingSetData.from_atoms(configurations).labels == ['energy', 'forces', 'atomic_energies']


def test_training_set_rejects_nan_and_empty(tmp_path):
    configurations = nacl_configurations(2)
    configurations[0].arrays['forces'][0, 0] = np.nan
    path = tmp_path / 'nan.xyz'
    from aiida_mlfail.science.extxyz import write_configurations

    write_configurations(path, configurations)
    with pytest.raises(ValueError, match='configuration 0: forces of atom 0 is not finite'):
        TrainingSetData.from_file(path)
    with pytest.raises(ValueError, match='at least one configuration'):
        TrainingSetData.from_atoms([])


def test_gap_potential_from_folder_calculator_and_pair_commands():
    node = GapPotentialData.from_folder(FIXTURES / 'gap_fit_ok', command_line='gap_fit ...', training_set_uuid='x')
    node.store()
    assert node.species == ['Na', 'Cl'] and node.cutoff == 5.0
    assert len(node.base.attributes.get('files')) == 4
    lines = node.lammps_pair_commands(['Na', 'Cl'])
    assert lines == ['pair_style quip', f'pair_coeff * * gap.xml "IP GAP label={node.label}" 11 17']
    with pytest.raises(ValueError, match=r"\['Ar'\]"):
        node.lammps_pair_commands(['Ar'])
    atoms = nacl_configurations(1)[0]
    atoms.calc = node.get_calculator()
    energy = atoms.get_potential_energy()
    assert np.isfinite(energy)
    # a 2-body GAP on three frames reproduces the training energy to within a few meV/atom
    assert abs(energy - nacl_configurations(1)[0].info['energy']) / len(atoms) < 0.01


def _gap_node(**attributes):
    """A GapPotentialData from the committed fit, with attributes overwritten as an archive could."""
    node = GapPotentialData.from_folder(FIXTURES / 'gap_fit_ok')
    for key, value in attributes.items():
        node.base.attributes.set(key, value)
    return node


def test_legit_gap_fixtures_load_and_pass_the_checks():
    for name in ('gap_fit_ok', 'bridge'):
        node = GapPotentialData.from_folder(FIXTURES / name)
        node.check()
        assert node.base.attributes.get('init_args') == f'IP GAP label={node.label}'
        assert len(node.base.attributes.get('files')) == 1 + len(node.base.attributes.get('n_sparse'))


@pytest.mark.parametrize('attributes, match', [
    ({'init_args': 'IP GAP label=X"\nshell touch pwned\n"'}, 'is not a QUIP init string'),
    ({'init_args': 'IP GAP label=OTHER'}, "label 'OTHER' is not the GAP label"),
    ({'filename': '../gap.xml'}, "GAP filename must be a bare file name (letters"),
    ({'files': ['gap.xml', '../x']}, "'../x'"),
    ({'files': ['gap.xml', 'missing.sparseX']}, "['missing.sparseX'] are listed but not in the repository"),
    ({'label': 'a b'}, "GAP label must be a name"),
    ({'species': ['Na', 'Xx']}, 'chemical symbols'),
    ({'cutoff': float('nan')}, 'GAP cutoff must be a finite number'),
])
def test_check_refuses_crafted_attributes(attributes, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        _gap_node(**attributes).check()


def test_write_files_refuses_crafted_names_and_stays_inside(tmp_path):
    node = _gap_node()
    xml = node.write_files(tmp_path / 'out')
    assert xml == tmp_path / 'out' / 'gap.xml' and len(list((tmp_path / 'out').iterdir())) == 4
    bad = _gap_node(files=['gap.xml', '../escaped'])
    with pytest.raises(ValueError, match='escaped'):
        bad.write_files(tmp_path / 'inner')
    assert not (tmp_path / 'escaped').exists() and not (tmp_path / 'inner').exists()
    # an existing symbolic link in the target folder pointing elsewhere is not followed
    (tmp_path / 'linked').mkdir()
    (tmp_path / 'linked' / 'gap.xml').symlink_to(tmp_path / 'victim.xml')
    with pytest.raises(ValueError, match='outside'):
        node.write_files(tmp_path / 'linked')
    assert not (tmp_path / 'victim.xml').exists()


def test_from_folder_refuses_traversal_and_symlinked_sparse_files(tmp_path):
    source = FIXTURES / 'gap_fit_ok'
    folder = tmp_path / 'gap'
    folder.mkdir()
    text = (source / 'gap.xml').read_text()
    sparse = sorted(p.name for p in source.glob('gap.xml.sparseX.*'))
    (tmp_path / 'secret').write_text('secret')
    (folder / 'gap.xml').write_text(text.replace(f'sparseX_filename="{sparse[0]}"', 'sparseX_filename="../secret"'))
    with pytest.raises(ValueError, match="sparseX_filename must be a bare file name.*'../secret'"):
        GapPotentialData.from_folder(folder)
    (folder / 'gap.xml').write_text(text)
    for name in sparse[1:]:
        (folder / name).write_bytes((source / name).read_bytes())
    (folder / sparse[0]).symlink_to(tmp_path / 'secret')
    with pytest.raises(ValueError, match='outside the folder'):
        GapPotentialData.from_folder(folder)
    with pytest.raises(ValueError, match="GAP filename must be a bare file name.*'../gap/gap.xml'"):
        GapPotentialData.from_folder(folder, '../gap/gap.xml')


def test_pair_commands_calculator_and_validator_refuse_a_crafted_node(tmp_path):
    from aiida_mlfail.data.gap_potential import validate_potential

    node = _gap_node(init_args=f'IP GAP label=X" 11 17\nshell touch {tmp_path}/pwned\n#')
    for use in (lambda: node.lammps_pair_commands(['Na', 'Cl']), node.get_calculator,
                lambda: node.write_files(tmp_path / 'out')):
        with pytest.raises(ValueError, match='is not a QUIP init string'):
            use()
    assert 'is not a QUIP init string' in validate_potential(node)
    assert validate_potential(_gap_node()) is None
    assert list(tmp_path.iterdir()) == []


# -- the reference that labelled a set ------------------------------------------------------------------

BMHTF = {'name': 'bmhtf_coul_long'}


def test_training_set_reference_round_trip_and_default(tmp_path):
    from aiida import orm

    from aiida_mlfail.science.references import cp2k_reference, lammps_reference

    reference = lammps_reference(BMHTF)
    node = TrainingSetData.from_atoms(nacl_configurations(2), reference=reference).store()
    assert orm.load_node(node.pk).reference == reference
    assert node.base.attributes.get('reference') == reference
    unknown = TrainingSetData.from_atoms(nacl_configurations(1))
    assert unknown.reference['kind'] == 'unknown'
    path = node.export(tmp_path / 'set.xyz')
    assert TrainingSetData.from_file(path).reference['kind'] == 'unknown'  # a file alone does not say
    assert TrainingSetData.from_file(path, reference=cp2k_reference('fast')).reference == cp2k_reference('fast')
    with pytest.raises(ValueError, match="unknown reference kind 'vasp'"):
        TrainingSetData.from_atoms(nacl_configurations(1), reference={'kind': 'vasp', 'id': 'x', 'label': 'x'})


def test_derived_sets_keep_the_reference():
    from aiida import orm

    from aiida_mlfail.calculations.functions import merge_training_sets, select_configurations, split_training_set
    from aiida_mlfail.science.references import lammps_reference

    reference = lammps_reference(BMHTF)
    pool = TrainingSetData.from_atoms(nacl_configurations(6), reference=reference)
    selected = select_configurations(pool, orm.Dict({'method': 'random', 'n': 4, 'seed': 1}))
    parts = split_training_set(selected, orm.Dict({'train_fraction': 0.5, 'seed': 0}))
    merged = merge_training_sets(a=parts['train'], b=parts['validation'])
    for node in (selected, parts['train'], parts['validation'], merged):
        assert node.reference == reference
    assert merged.n_configurations == 4


def test_merge_refuses_mixed_references_naming_both():
    from aiida_mlfail.calculations.functions import merge_training_sets
    from aiida_mlfail.data.training_set import check_same_reference
    from aiida_mlfail.science.references import cp2k_reference, lammps_reference, named_reference

    classical = TrainingSetData.from_atoms(nacl_configurations(2), reference=lammps_reference(BMHTF))
    dft = TrainingSetData.from_atoms(nacl_configurations(1), reference=cp2k_reference('fast'))
    # the check before anything is stored
    with pytest.raises(ValueError, match=r'base: lammps bmhtf_coul_long .*\[lammps [0-9a-f]{16}\]; new: cp2k fast'):
        check_same_reference(base=classical, new=dft)
    assert not classical.is_stored and not dft.is_stored
    # the calcfunction itself: refused by its port validator, nothing stored
    from aiida import orm

    before = orm.QueryBuilder().append(orm.Node).count()
    with pytest.raises(ValueError, match=r'mixed references: a: lammps bmhtf_coul_long.*; b: cp2k fast'):
        merge_training_sets(a=classical, b=dft)
    assert orm.QueryBuilder().append(orm.Node).count() == before and not classical.is_stored
    # and its body, should the validator be bypassed
    with pytest.raises(ValueError, match=r'mixed references: a: lammps bmhtf_coul_long.*; b: cp2k fast'):
        merge_training_sets.__wrapped__(a=classical, b=dft)
    # unknown matches nothing, not even another unknown; a named reference matches its own name
    unknown = [TrainingSetData.from_atoms(nacl_configurations(1)) for _ in range(2)]
    with pytest.raises(ValueError, match='unknown reference matches nothing'):
        check_same_reference(*unknown)
    mine = [TrainingSetData.from_atoms(nacl_configurations(1), reference=named_reference('my DFT')) for _ in range(2)]
    assert check_same_reference(*mine) == named_reference('my DFT')
    assert merge_training_sets(a=mine[0], b=mine[1]).reference == named_reference('my DFT')
