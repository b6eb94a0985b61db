"""Walkers of the active learner and the batch choice (science.walkers): validation, seeds, farthest-point."""

import time

import numpy as np
import pytest

from aiida_mlfail.science import active_learning as al
from aiida_mlfail.science import walkers
from aiida_mlfail.science.structures import molten_nacl


@pytest.mark.parametrize('given, message', [
    ([], 'walkers must be a non-empty list'),
    ([{'temperature': 1400.0}, 'hot'], r"walkers\[1\] must be a dict"),
    ([{}, {'temp': 1400.0}], r"walkers\[1\]: unknown key\(s\) \['temp'\]"),
    ([{'temperature': -5.0}], r'walkers\[0\]\.temperature'),
    ([{}, {}, {'ensemble': 'NVE'}], r"walkers\[2\]\.ensemble must be one of .*'NVE'"),
    ([{'seed': 0}], r'walkers\[0\]\.seed'),
    ([{'structure': 'dense'}], r"walkers\[0\]\.structure: 'dense' is not a structure of walker_structures"),
])
def test_bad_walkers_are_named(given, message):
    with pytest.raises(ValueError, match=message):
        walkers.normalise_walkers(given, structures=('dilute',))


def test_walkers_are_normalised():
    out = walkers.normalise_walkers([{'temperature': 1400, 'ensemble': 'npt', 'seed': 3}, {'structure': 'dense'}],
                                    structures=('dense',))
    assert out == [{'temperature': 1400.0, 'ensemble': 'NPT', 'seed': 3}, {'structure': 'dense'}]


def test_walker_parameters_state_point_and_seeds():
    base = {'ensemble': 'NPT', 'temperature': 1400.0, 'pressure': 1.0, 'seed': 11, 'max_steps': 60}
    # one default walker: today's behaviour (seed + iteration - 1 with reseed, the explorer's seed without)
    assert walkers.walker_parameters(base, {}, 3, True, 0) == {**base, 'seed': 13}
    assert walkers.walker_parameters(base, {}, 3, False, 0) == base
    # a second walker without a seed gets its own stream; a given seed is used
    assert walkers.walker_parameters(base, {}, 1, True, 1)['seed'] == 1011
    hot = walkers.walker_parameters(base, {'temperature': 1600.0, 'ensemble': 'NVT', 'seed': 5}, 2, True, 2)
    assert hot == {**base, 'temperature': 1600.0, 'ensemble': 'NVT', 'seed': 6}


def test_candidate_keys_round_trip_and_rank():
    assert walkers.candidate_key(3, 'previous') == 'w3_previous'
    assert walkers.parse_candidate('w12_trigger') == (12, 'trigger')
    assert walkers.parse_candidate('trigger') == (0, 'trigger')  # runs before walkers
    with pytest.raises(ValueError, match='not a candidate key'):
        walkers.parse_candidate('w1-trigger')
    assert al.choose_additions(['w0_previous', 'w0_trigger', 'w1_previous', 'w1_trigger'], [True] * 4, 3) == [1, 3, 0]


def test_farthest_point_picks_the_known_set():
    """Four candidates on a line at x = 0, 0.1, 1.0, 0.55 (distance |x_i - x_j|) with distances 0.5, 0.5, 0.3,
    0.9 to the training set: greedy farthest-point takes w3 (0.9 from the data), then w0 (0.5), then w2 (0.3:
    0.45 from w3 but 0.3 from the data), never w1 (0.1 from w0)."""
    keys = ['w0_previous', 'w1_previous', 'w2_previous', 'w3_previous']
    x = np.array([0.0, 0.1, 1.0, 0.55])
    between = np.abs(x[:, None] - x[None, :])
    to_training = [0.5, 0.5, 0.3, 0.9]
    assert walkers.select_batch(keys, to_training, between, 3) == [3, 0, 2]
    assert walkers.select_batch(keys, to_training, between, 10) == [3, 0, 2, 1]
    # without the distances between candidates only the data rank them (w1 ties w0: the lower walker first)
    assert walkers.select_batch(keys, to_training, None, 3) == [3, 0, 1]
    assert walkers.select_batch(keys, to_training, between, 0) == []


def test_triggers_go_first_and_a_failing_trigger_without_similarity_counts_as_farthest():
    keys = ['w0_previous', 'w0_trigger', 'w1_trigger', 'w2_trigger']
    to_training = [1.9, 0.1, None, 0.3]  # w1 stopped by a guard before any novelty check
    assert walkers.select_batch(keys, to_training, None, 2) == [2, 3]
    assert walkers.select_batch(keys, to_training, None, 4) == [2, 3, 1, 0]
    with pytest.raises(ValueError, match='between has shape'):
        walkers.select_batch(keys, to_training, np.zeros((2, 2)), 2)


def test_candidate_distances_rematch():
    """Real SOAP + REMatch: zero for a copy, symmetric, larger for a denser melt than for a slightly moved copy;
    and the daemon limit (DAEMON_DISTANCE_ATOMS atoms) is fast."""
    a = molten_nacl(8, volume=300.0, seed=1)
    moved = a.copy()
    moved.positions += np.random.default_rng(0).normal(scale=0.05, size=moved.positions.shape)
    dense = molten_nacl(8, volume=200.0, seed=2)
    soap = {'r_cut': 4.0, 'n_max': 3, 'l_max': 2}
    d = walkers.candidate_distances([a, a.copy(), moved, dense], soap)
    assert d.shape == (4, 4) and np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    assert d[0, 1] == pytest.approx(0.0, abs=1e-6)
    assert 0 < d[0, 2] < d[0, 3]
    configurations = [molten_nacl(64, volume=2350.0, seed=s) for s in range(walkers.DAEMON_DISTANCE_ATOMS // 64)]
    start = time.perf_counter()
    d = walkers.candidate_distances(configurations, {'r_cut': 5.0, 'n_max': 4, 'l_max': 3})
    assert d.shape == (16, 16) and time.perf_counter() - start < 5.0
