"""science.references: stable ids of the references that label training sets, and the mixing rule."""

import json
import subprocess
import sys

import pytest

from aiida_mlfail.science import references as refs


def test_lammps_id_is_stable_across_key_order_defaults_and_processes():
    a = refs.lammps_reference({'name': 'bmhtf_coul_long', 'parameters': {'cutoff': 6.0, 'kspace_style': 'pppm'}})
    b = refs.lammps_reference({'parameters': {'kspace_style': 'pppm', 'cutoff': 6}, 'name': 'bmhtf_coul_long'})
    defaults = refs.lammps_reference({'name': 'bmhtf_coul_long'})  # the defaults merged in: the same potential
    assert a == b == defaults
    assert a['kind'] == 'lammps' and len(a['id']) == refs.ID_LENGTH and 'bmhtf_coul_long' in a['label']
    # another interpreter (another hash seed) computes the same id
    code = ('import json; from aiida_mlfail.science.references import lammps_reference, cp2k_reference; '
            "print(json.dumps([lammps_reference({'name': 'bmhtf_coul_long'})['id'], cp2k_reference('fast')['id']]))")
    other = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                           env={'PYTHONHASHSEED': '123', 'PATH': '', 'PYTHONPATH': ':'.join(sys.path)})
    assert json.loads(other.stdout) == [a['id'], refs.cp2k_reference('fast')['id']]


def test_lammps_id_changes_with_a_parameter_or_the_potential():
    base = refs.lammps_reference({'name': 'bmhtf_coul_long'})
    assert refs.lammps_reference({'name': 'bmhtf_coul_long', 'parameters': {'cutoff': 7.0}})['id'] != base['id']
    assert refs.lammps_reference({'name': 'bmhtf_coul_long',
                                  'parameters': {'kspace_style': 'ewald'}})['id'] != base['id']
    assert refs.lammps_reference({'name': 'bmhtf_wolf'})['id'] != base['id']
    with pytest.raises(ValueError, match="unknown reference potential 'nope'"):
        refs.lammps_reference({'name': 'nope'})


def test_cp2k_id_changes_with_protocol_and_overrides():
    fast = refs.cp2k_reference('fast')
    assert fast == refs.cp2k_reference('fast', {}) == refs.cp2k_reference('fast', None)
    assert fast['kind'] == 'cp2k' and fast['label'].startswith('cp2k fast: PBE SZV-MOLOPT-SR-GTH/GTH-PBE 300 Ry')
    cutoff = refs.cp2k_reference('fast', {'FORCE_EVAL': {'DFT': {'MGRID': {'CUTOFF': 600}}}})
    blyp = refs.cp2k_reference('fast', {'FORCE_EVAL': {'DFT': {'XC': {'XC_FUNCTIONAL': {'_': 'BLYP'}}}}})
    moderate = refs.cp2k_reference('moderate')
    assert len({fast['id'], cutoff['id'], blyp['id'], moderate['id']}) == 4
    assert '600 Ry + overrides' in cutoff['label'] and 'BLYP' in blyp['label'] and 'PBE+DFTD3(BJ)' in moderate['label']
    # the physics actually used: the overridden cutoff and functional
    assert refs.cp2k_physics('fast', {'FORCE_EVAL': {'DFT': {'MGRID': {'CUTOFF': 600}}}})['cutoff'] == 600
    assert refs.cp2k_physics('moderate')['xc']['VDW_POTENTIAL']['PAIR_POTENTIAL']['TYPE'] == 'DFTD3(BJ)'
    with pytest.raises(ValueError, match="unknown CP2K protocol 'ultra'"):
        refs.cp2k_reference('ultra')


def test_unknown_matches_nothing_and_named_references_match_by_label():
    unknown = refs.unknown_reference()
    assert not refs.same_reference(unknown, refs.unknown_reference())
    assert refs.mixed_reference_message({'a': unknown, 'b': refs.unknown_reference()}) is not None
    assert refs.mixed_reference_message({'a': unknown}) is None  # one set alone is not a mix
    mine = refs.named_reference('PBE-D3 VASP 2019')
    assert refs.same_reference(mine, refs.named_reference('  PBE-D3 VASP 2019 '))
    assert not refs.same_reference(mine, refs.named_reference('PBE VASP 2019'))
    with pytest.raises(ValueError, match='non-empty label'):
        refs.named_reference(' ')
    with pytest.raises(ValueError, match='non-empty label'):
        refs.named_reference('unknown')


def test_reference_from_text():
    assert refs.reference_from_text('cp2k:fast') == refs.cp2k_reference('fast')
    assert refs.reference_from_text('lammps:bmhtf_wolf') == refs.lammps_reference({'name': 'bmhtf_wolf'})
    assert refs.reference_from_text('my DFT') == refs.named_reference('my DFT')
    with pytest.raises(ValueError, match='unknown CP2K protocol'):
        refs.reference_from_text('cp2k:nope')


def test_mixed_message_names_both_labels_and_ids():
    classical = refs.lammps_reference({'name': 'bmhtf_coul_long'})
    dft = refs.cp2k_reference('fast')
    assert refs.mixed_reference_message({'pool': classical, 'validation_set': dict(classical)}) is None
    message = refs.mixed_reference_message({'pool': classical, 'validation_set': dft})
    assert f"pool: {classical['label']} [lammps {classical['id']}]" in message
    assert f"validation_set: {dft['label']} [cp2k {dft['id']}]" in message
    message = refs.mixed_reference_message({'base': classical, 'new': refs.unknown_reference()})
    assert 'new: unknown reference' in message and '--reference' in message


def test_check_reference_refuses_malformed_dicts():
    assert refs.check_reference({**refs.cp2k_reference('fast'), 'extra': 1}) == refs.cp2k_reference('fast')
    with pytest.raises(ValueError, match=r"misses \['id'\]"):
        refs.check_reference({'kind': 'cp2k', 'label': 'x'})
    with pytest.raises(ValueError, match="unknown reference kind 'vasp'"):
        refs.check_reference({'kind': 'vasp', 'id': 'x', 'label': 'x'})
    with pytest.raises(ValueError, match='must be a dict'):
        refs.check_reference('cp2k')
