"""``TrainingSetData.from_selection``: chosen frames of stored sets copied as text, the same set as ``from_atoms``."""

from __future__ import annotations

import io

import pytest

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import extxyz, references
from tests.helpers import nacl_configurations


@pytest.fixture
def two_sets(aiida_profile):
    frames = nacl_configurations(5)
    for step, atoms in enumerate(frames):
        atoms.info['md_step'] = 10 * step
    reference = references.named_reference('bmhtf')
    first = TrainingSetData.from_atoms(frames[:3], reference=reference).store()
    second = TrainingSetData.from_atoms(frames[3:], reference=reference).store()
    return frames, first, second


def test_a_selection_is_the_set_from_atoms_would_make(two_sets):
    frames, first, second = two_sets
    selection = [(first, 2), (first, 0), (second, 1), (first, 1)]  # out of order, and back to the first set
    chosen = TrainingSetData.from_selection(selection)
    same = TrainingSetData.from_atoms([frames[2], frames[0], frames[4], frames[1]], reference=first.reference)
    assert chosen.get_text() == same.get_text()
    for name in ('n_configurations', 'species', 'n_atoms', 'labels', 'configurations', 'reference'):
        assert chosen.base.attributes.get(name) == same.base.attributes.get(name), name
    assert [c['md_step'] for c in chosen.configurations] == [20, 0, 40, 10]
    assert [a.info['md_step'] for a in chosen.store().get_atoms()] == [20, 0, 40, 10]


def test_a_selection_out_of_range_or_empty_is_refused(two_sets):
    _, first, second = two_sets
    with pytest.raises(ValueError, match=rf'configuration 2 of training set <{second.pk}>: it has 2'):
        TrainingSetData.from_selection([(first, 0), (second, 2)])
    with pytest.raises(ValueError, match='at least one configuration'):
        TrainingSetData.from_selection([])


def test_sets_of_different_references_are_not_joined(two_sets):
    frames, first, _ = two_sets
    other = TrainingSetData.from_atoms(frames[:1]).store()  # unknown reference
    with pytest.raises(ValueError, match='unknown'):
        TrainingSetData.from_selection([(first, 0), (other, 0)])


def test_frame_texts_split_an_extxyz_file_without_parsing_it():
    text = extxyz.to_text(nacl_configurations(3))
    texts = list(extxyz.iter_frame_texts(io.StringIO(text)))
    assert ''.join(texts) == text and len(texts) == 3
    assert all(len(t.splitlines()) == len(nacl_configurations(1)[0]) + 2 for t in texts)
    with pytest.raises(ValueError, match='extxyz frame 2: the file ends inside the frame'):
        list(extxyz.iter_frame_texts(io.StringIO(''.join(text.splitlines(keepends=True)[:-2]))))
    with pytest.raises(ValueError, match="extxyz frame 0: the first line must be the atom count, got 'Lattice"):
        list(extxyz.iter_frame_texts(io.StringIO(text.split('\n', 1)[1])))
