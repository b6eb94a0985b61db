"""Configuration-space statistics, plateau and figures (no AiiDA)."""

import numpy as np
import pytest

from aiida_mlfail.science import config_space as cs

PNG = b'\x89PNG\r\n\x1a\n'


def test_statistics_and_plateau():
    d = np.array([0.4, 0.1, 0.3, 0.2, 0.0])
    s = cs.distance_statistics(d)
    assert s == pytest.approx({'n': 5, 'min': 0.0, 'mean': 0.2, 'median': 0.2, 'p95': 0.38, 'max': 0.4})
    assert cs.plateau([0.0, 0.2, 0.4, 0.5, 0.6, 0.7]) == pytest.approx(0.6)  # mean of the last 3
    assert cs.plateau([0.0, 0.5], fraction=0.1) == 0.5  # at least one frame
    with pytest.raises(ValueError, match='no distances'):
        cs.distance_statistics([])
    with pytest.raises(ValueError, match='1 distance'):
        cs.distance_statistics([0.1, np.nan])
    with pytest.raises(ValueError, match=r'fraction must be in \(0, 1\], got 0'):
        cs.plateau([0.1], fraction=0)


def test_summary():
    s = cs.config_space_summary([0, 0.1, 0.3, 0.3], [0, 0.2], [0.05, 0.1, 0.2], [1, 1, 0])
    assert s['nearest_neighbour']['median'] == pytest.approx(0.1)
    assert s['nearest_neighbour']['distinct_neighbours'] == 2
    assert s['distance_to_first']['x'] == pytest.approx({'n': 4, 'max': 0.3, 'plateau': 0.3, 'final': 0.3})
    assert s['distance_to_first']['y']['plateau'] == pytest.approx(0.2)
    with pytest.raises(ValueError, match='differ in shape'):
        cs.config_space_summary([0], [0], [0.1, 0.2], [0])


def test_figures_are_png():
    steps = np.arange(0, 100, 10)
    png = cs.distance_to_first_png([('hot', steps, np.linspace(0, 0.3, 10)), ('cold', steps, np.linspace(0, 0.2, 10))])
    assert png[:8] == PNG
    assert cs.nearest_neighbour_png(np.random.default_rng(0).random(20), bins=5, reference={'plateau': 0.5})[:8] == PNG
    with pytest.raises(ValueError, match="series 'hot': 10 steps but 3 distances"):
        cs.distance_to_first_png([('hot', steps, [0, 0.1, 0.2])])
    with pytest.raises(ValueError, match='bins must be >= 1, got 0'):
        cs.nearest_neighbour_png([0.1], bins=0)
