"""Checkpoints of the ``mlfail-explore`` engine: an exploration cut at a checkpoint and continued in a new folder
(the checkpoint folder copied, as the CalcJob's ``parent_folder`` does) gives one series equal to the uninterrupted
run's (no AiiDA; the tiny GAP and 8-ion crystal of ``test_explore_engine``)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from aiida_mlfail.science import explore as sx
from tests.engines.test_explore_engine import explore, prepare

#: 300 K, nothing novel (critical similarity 0.5): the run goes to max_steps; checks every 20 steps.
COOL = {'temperature': 300.0, 'max_steps': 120, 'comparison_step': 20, 'critical_similarity': 0.5,
        'checkpoint_interval': 30}


@pytest.fixture(scope='module')
def whole_run(tmp_path_factory):
    directory = prepare(tmp_path_factory.mktemp('whole'), COOL)
    with pytest.MonkeyPatch.context() as monkeypatch:
        results = explore(directory, monkeypatch)
    return directory, results


def test_checkpoints_follow_the_interval_and_keep_one_restart_file(whole_run):
    directory, results = whole_run
    assert results['stop_reason'] == 'max_steps' and results['resumed_from'] == []
    # checks at 20, 40, 60, ...: the first check >= 30 steps after the last checkpoint: 40, 80, 120
    assert results['checkpoint_step'] == 120
    assert sorted(p.name for p in (directory / sx.CHECKPOINT_DIR).iterdir()) == ['lammps.120.restart', 'state.json']
    state = sx.read_checkpoint_state((directory / sx.CHECKPOINT_STATE_FILE).read_text())
    assert state['step'] == 120 and [row[0] for row in state['similarity']] == list(range(0, 121, 20))
    assert state['thermo'][-1][0] == 120
    stdout_steps = [40, 80, 120]
    text = ''.join(sx.CHECKPOINT_LINE.format(step=s, restart_file='x') + '\n' for s in stdout_steps)
    assert sx.last_checkpoint_step(text) == 120


def test_a_continued_run_joins_into_the_uninterrupted_series(whole_run, tmp_path, monkeypatch):
    """First job: 60 steps (checkpoint at 40: the next is due at 80); second job: a new folder with the
    checkpoint folder copied and max_steps 120. Steps strictly increasing, no gap, no repeat; values equal to
    the uninterrupted run's."""
    whole, whole_results = whole_run
    first = prepare(tmp_path / 'first', {**COOL, 'max_steps': 60})
    assert explore(first, monkeypatch)['checkpoint_step'] == 40  # steps 41-60 are run again by the second job
    # what the CalcJob's parent_folder copies: the state and the one restart file it names, nothing else
    assert sorted(p.name for p in (first / sx.CHECKPOINT_DIR).iterdir()) == ['lammps.40.restart', 'state.json']
    second = prepare(tmp_path / 'second', COOL)
    shutil.copytree(first / sx.CHECKPOINT_DIR, second / sx.CHECKPOINT_DIR)
    results = explore(second, monkeypatch)
    # the restart file continued from is removed once the newer checkpoints are written
    assert sorted(p.name for p in (second / sx.CHECKPOINT_DIR).iterdir()) == ['lammps.120.restart', 'state.json']
    assert results['stop_reason'] == 'max_steps' and results['stop_step'] == 120 == results['steps_run']
    assert results['resumed_from'] == [40] and results['checkpoint_step'] == 120
    assert results['n_checks'] == whole_results['n_checks'] == 7
    joined = sx.parse_similarity((second / sx.SIMILARITY_FILE).read_text())
    reference = sx.parse_similarity((whole / sx.SIMILARITY_FILE).read_text())
    np.testing.assert_array_equal(joined['step'], np.arange(0, 121, 20))
    # the same equations of motion from the restart file (neighbour lists rebuilt: not bit for bit)
    np.testing.assert_allclose(joined['similarity'], reference['similarity'], rtol=0, atol=1e-6)
    thermo = sx.parse_thermo_table((second / sx.THERMO_FILE).read_text())
    uninterrupted = sx.parse_thermo_table((whole / sx.THERMO_FILE).read_text())
    np.testing.assert_array_equal(thermo['step'], uninterrupted['step'])
    assert (np.diff(thermo['step']) > 0).all()
    np.testing.assert_allclose(thermo['total_energy'], uninterrupted['total_energy'], rtol=1e-6)
    print(f"continued vs uninterrupted: max |d similarity| "
          f"{np.abs(joined['similarity'] - reference['similarity']).max():.1e}, max |d E_total / E_total| "
          f"{np.abs(thermo['total_energy'] / uninterrupted['total_energy'] - 1).max():.1e}, max |d T| "
          f"{np.abs(thermo['temperature'] - uninterrupted['temperature']).max():.1e} K")
    setup = (second / sx.SCRIPT_FILE).read_text()
    assert 'read_restart checkpoint/lammps.40.restart' in setup and 'velocity all create' not in setup
    assert 'read_data' not in setup


def test_a_checkpoint_of_another_exploration_is_refused(whole_run, tmp_path, monkeypatch, capsys):
    whole, _ = whole_run
    other = prepare(tmp_path, {**COOL, 'temperature': 400.0})
    shutil.copytree(whole / sx.CHECKPOINT_DIR, other / sx.CHECKPOINT_DIR)
    monkeypatch.chdir(other)
    from aiida_mlfail.engines.explore import main

    assert main([]) == 1
    assert 'checkpoint of another exploration' in capsys.readouterr().err


def test_state_round_trip_and_checks():
    state = sx.checkpoint_state(40, 'checkpoint/lammps.40.restart', 'abc', -12.5,
                                [(0, 1.0, 0), (20, None, None), (40, 0.97, 0)], [[0, 300.0, -1, 1, 0, 2, 3]], [])
    back = sx.read_checkpoint_state(json.dumps(state), 'abc')
    assert back['similarity'] == [(0, 1.0, 0), (20, None, None), (40, 0.97, 0)]
    assert back['start_energy'] == -12.5 and back['step'] == 40
    with pytest.raises(ValueError, match='another exploration'):
        sx.read_checkpoint_state(json.dumps(state), 'abd')
    with pytest.raises(ValueError, match='rows after it'):
        sx.checkpoint_state(20, 'x', 'abc', 0.0, [(0, 1.0, 0), (40, 1.0, 0)], [], [])
    signals = [{'step': 0, 'similarity': 1.0, 'max_variance': np.float64(0.002)}, {'step': 20, 'similarity': None}]
    carried = sx.read_checkpoint_state(json.dumps(sx.checkpoint_state(20, 'x', 'abc', 0.0, [], [], [], signals)))
    assert carried['signals'] == [{'step': 0, 'similarity': 1.0, 'max_variance': 0.002},
                                  {'step': 20, 'similarity': None}]
    with pytest.raises(ValueError, match='signal rows after it'):
        sx.checkpoint_state(0, 'x', 'abc', 0.0, [], [], [], signals)
    with pytest.raises(ValueError, match='do not increase'):
        sx.read_checkpoint_state(json.dumps({**state, 'similarity': [[0, 1, 0], [0, 1, 0]]}))
    with pytest.raises(ValueError, match='lacks'):
        sx.read_checkpoint_state('{}')
    assert sx.last_checkpoint_step('step 0 similarity 1\n') is None
    assert sx.last_checkpoint_step(sx.CONTINUE_LINE.format(step=60, restart_file='r') + '\nstep 80 ...\n') == 60
    assert [sx.checkpoint_due(s, 0, 50) for s in (20, 40, 60)] == [False, False, True]
    assert not sx.checkpoint_due(1000, 0, 0)
    with pytest.raises(ValueError, match='checkpoint_interval'):
        sx.normalise_explore({'checkpoint_interval': -1})
