"""The GAP-MD distance guard from the GAP's training set (issue 15): ``mlfail.mlmd`` looks the training set up by
the GAP's ``training_set_uuid``, resolves 0.35 x the shortest distance of each pair in it (covalent radii without
it), keeps the user's numbers and pairs, and says which it used (``guard_distances`` of ``prepare_mlmd``)."""

import pytest
from aiida import orm

from aiida_mlfail.calculations.functions import prepare_mlmd
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import mlmd
from aiida_mlfail.science.pair_distances import GUARD_DISTANCE_FRACTION
from aiida_mlfail.science.structures import default_pair_distances, pair_min_distances
from aiida_mlfail.workflows.mlmd import gap_training_set
from tests.helpers import FIXTURES, nacl_configurations


def _shortest(frames):
    return {'-'.join(pair): d for pair, d in pair_min_distances(frames).items()}


def test_the_record_says_where_the_guard_distances_come_from():
    frames = nacl_configurations(3)
    shortest = _shortest(frames)
    record = mlmd.guard_distance_record(None, ['Na', 'Cl'], frames, 'training set <x>')
    assert record['source'] == 'training set <x>' and record['given'] == []
    assert record['min_distance'] == pytest.approx({k: GUARD_DISTANCE_FRACTION * d for k, d in shortest.items()})
    radii = mlmd.guard_distance_record(None, ['Na', 'Cl'])
    covalent = default_pair_distances(['Na', 'Cl'], fraction=GUARD_DISTANCE_FRACTION)
    assert radii['source'] == 'covalent radii'
    assert radii['min_distance'] == pytest.approx({'-'.join(p): d for p, d in covalent.items()})
    assert radii['min_distance'] != pytest.approx(record['min_distance'])
    partial = mlmd.guard_distance_record({'Cl-Na': 1.1}, ['Na', 'Cl'], frames, 'training set <x>')
    assert partial['given'] == ['Na-Cl'] and partial['min_distance']['Na-Cl'] == 1.1
    assert partial['min_distance']['Na-Na'] == pytest.approx(GUARD_DISTANCE_FRACTION * shortest['Na-Na'])
    full = mlmd.guard_distance_record({'Na-Na': 1.0, 'Na-Cl': 0.9, 'Cl-Cl': 1.2}, ['Na', 'Cl'], frames)
    assert full['source'] == 'given'
    assert mlmd.guard_distance_record(1.2, ['Na', 'Cl'], frames) == {'min_distance': 1.2, 'source': 'given',
                                                                      'given': ['every pair']}


def _gap(training_set_uuid=''):
    return GapPotentialData.from_folder(FIXTURES / 'bridge', training_set_uuid=training_set_uuid).store()


def test_the_training_set_is_found_by_the_uuid_of_the_gap():
    training = TrainingSetData.from_atoms(nacl_configurations(2)).store()
    assert gap_training_set(_gap(training.uuid)).uuid == training.uuid
    assert gap_training_set(_gap()) is None
    assert gap_training_set(_gap('00000000-0000-4000-8000-000000000000')) is None  # not in this database


def test_prepare_mlmd_writes_the_training_set_distances_into_the_guard():
    frames = nacl_configurations(3)
    training = TrainingSetData.from_atoms(frames).store()
    gap = _gap(training.uuid)
    structure = orm.StructureData(ase=frames[0])
    parameters = orm.Dict({'ensemble': 'NVT', 'temperature': 1400.0, 'steps': 10})
    with_data = prepare_mlmd(structure, gap, parameters, training_set=training)
    guards = with_data['guard_distances'].get_dict()
    assert guards['source'] == f'training set <{training.uuid}>'
    na_na = GUARD_DISTANCE_FRACTION * _shortest(training.get_atoms())['Na-Na']  # as stored (extxyz digits)
    assert guards['min_distance']['Na-Na'] == pytest.approx(na_na)
    assert f'coord/atom cutoff {na_na:.10g} 1' in with_data['script'].get_content()
    without = prepare_mlmd(structure, gap, parameters)['guard_distances'].get_dict()
    assert without['source'] == 'covalent radii' and without['min_distance']['Na-Na'] != pytest.approx(na_na)
    given = prepare_mlmd(structure, gap, orm.Dict({**parameters.get_dict(), 'guards': {'min_distance': 0.8}}),
                         training_set=training)
    assert given['guard_distances'].get_dict()['min_distance'] == 0.8
    assert 'v_min_distance < 0.8 ' in given['script'].get_content()
