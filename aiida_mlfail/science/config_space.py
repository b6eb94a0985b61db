"""Configuration-space analyses built on REMatch distances: statistics, plateaus and their figures.

Distances are REMatch distances ``D = sqrt(2 - 2 K)`` between whole configurations (normalised
REMatch kernel ``K`` of per-atom SOAP spectra; De, Bartók, Csányi, Ceriotti, PCCP 18, 13754 (2016);
docs: science/rematch); they are dimensionless, in [0, 2]. Two analyses:

* distance to first: ``D(frame_t, frame_0)`` along a trajectory; it rises while the run leaves its
  starting region and levels off (a plateau) once the frames are decorrelated from the start;
* nearest neighbour: for every configuration of a set X the distance to its nearest configuration
  of a set Y; its histogram shows whether Y covers the configuration space of X.

Pure numpy / matplotlib (figures via :func:`aiida_mlfail.science.plots.figure_png`), no AiiDA.
"""

from __future__ import annotations

import numpy as np


def distance_statistics(distances) -> dict:
    """Summary numbers of a set of REMatch distances.

    :param distances: array of any shape (dimensionless distances).
    :returns: ``{'n', 'min', 'mean', 'median', 'p95', 'max'}`` (floats; ``n`` int); ``p95`` is the
        95th percentile (linear interpolation).
    :raises ValueError: for an empty array or non-finite values.
    """
    d = np.asarray(distances, dtype=np.float64).ravel()
    if d.size == 0:
        raise ValueError('no distances to summarise')
    if not np.all(np.isfinite(d)):
        raise ValueError(f'{int(np.sum(~np.isfinite(d)))} distance(s) are NaN or infinite')
    return {'n': int(d.size), 'min': float(d.min()), 'mean': float(d.mean()), 'median': float(np.median(d)),
            'p95': float(np.percentile(d, 95)), 'max': float(d.max())}


def plateau(distance_to_first, fraction: float = 0.5) -> float:
    """Plateau of a distance-to-first series: the mean over its last ``fraction`` of frames.

    A heuristic level of the series once the trajectory has decorrelated from its first frame
    (meaningful only if the series has levelled off; compare with the figure).

    :param distance_to_first: 1-D series, first entry the first frame (distance 0).
    :param fraction: share of the series (from the end) to average, in (0, 1]; at least one frame.
    :raises ValueError: for an empty series or ``fraction`` outside (0, 1].
    """
    d = np.asarray(distance_to_first, dtype=np.float64).ravel()
    if d.size == 0:
        raise ValueError('empty distance-to-first series')
    if not 0 < fraction <= 1:
        raise ValueError(f'fraction must be in (0, 1], got {fraction!r}')
    n = max(1, int(round(fraction * d.size)))
    return float(d[-n:].mean())


def config_space_summary(first_x, first_y, nn_distance, nn_index) -> dict:
    """Summary of a comparison of sets X and Y (e.g. X = DFT or hot run, Y = classical or cold run).

    :param first_x: distance-to-first series of trajectory X, shape ``(n_x,)``.
    :param first_y: the same of trajectory Y, shape ``(n_y,)``.
    :param nn_distance: ``(n_x,)`` REMatch distance of each X configuration to its nearest Y configuration.
    :param nn_index: ``(n_x,)`` index in Y of that nearest configuration.
    :returns: ``{'nearest_neighbour': distance_statistics + 'distinct_neighbours' (how many Y
        configurations are someone's nearest neighbour), 'distance_to_first': {'x'|'y': {'max',
        'plateau', 'final', 'n'}}}``.
    :raises ValueError: if ``nn_distance`` and ``nn_index`` differ in length, or as
        :func:`distance_statistics`.
    """
    nn_distance, nn_index = np.asarray(nn_distance, dtype=float), np.asarray(nn_index)
    if nn_distance.shape != nn_index.shape:
        raise ValueError(f'nearest-neighbour distances {nn_distance.shape} and indices {nn_index.shape} '
                         'differ in shape')
    nearest = distance_statistics(nn_distance)
    nearest['distinct_neighbours'] = int(np.unique(nn_index).size)
    first = {}
    for name, series in (('x', first_x), ('y', first_y)):
        d = np.asarray(series, dtype=float)
        first[name] = {'n': int(d.size), 'max': distance_statistics(d)['max'], 'plateau': plateau(d),
                       'final': float(d[-1])}
    return {'nearest_neighbour': nearest, 'distance_to_first': first}


def distance_to_first_png(series, *, step_label: str = 'MD step', title: str = '') -> bytes:
    """Distance-to-first series of one or more trajectories against MD step (or frame index).

    :param series: list of ``(label, steps, distances)``, ``steps`` and ``distances`` 1-D of equal length.
    :param step_label: x-axis label ('MD step' or 'frame').
    :returns: PNG bytes.
    :raises ValueError: for no series or mismatched lengths (naming the series).
    """
    from aiida_mlfail.science.plots import figure_png, plt  # noqa: PLC0415 (matplotlib only when plotting)

    if not series:
        raise ValueError('nothing to plot: no distance-to-first series')
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, steps, distances in series:
        steps, distances = np.asarray(steps, dtype=float), np.asarray(distances, dtype=float)
        if steps.shape != distances.shape:
            raise ValueError(f'series {label!r}: {steps.size} steps but {distances.size} distances')
        ax.plot(steps, distances, marker='.', ms=3, lw=1,
                label=f'{label} (plateau {plateau(distances):.3f})')
        ax.axhline(plateau(distances), color=ax.lines[-1].get_color(), lw=0.8, ls=':')
    ax.set_xlabel(step_label)
    ax.set_ylabel('REMatch distance to first frame')
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.set_title(title or 'distance to first frame')
    return figure_png(fig)


def nearest_neighbour_png(distances, *, bins: int = 30, x_label: str = 'X', y_label: str = 'Y',
                          reference=None) -> bytes:
    """Histogram of the nearest-neighbour REMatch distances of the configurations of X in Y.

    :param distances: ``(n_x,)`` distances.
    :param bins: number of histogram bins (>= 1).
    :param x_label: name of set X for the axis and title.
    :param y_label: name of set Y.
    :param reference: optional ``{label: distance}`` drawn as vertical lines (e.g. the
        distance-to-first plateaus of the two sets, a scale for "far").
    :returns: PNG bytes.
    :raises ValueError: for ``bins < 1`` or as :func:`distance_statistics`.
    """
    from aiida_mlfail.science.plots import figure_png, plt  # noqa: PLC0415

    if int(bins) < 1:
        raise ValueError(f'bins must be >= 1, got {bins!r}')
    stats = distance_statistics(distances)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.hist(np.asarray(distances, dtype=float), bins=int(bins), color='C0', alpha=0.8)
    ax.axvline(stats['median'], color='k', lw=1, label=f"median {stats['median']:.3f}")
    ax.axvline(stats['p95'], color='k', lw=1, ls='--', label=f"95th percentile {stats['p95']:.3f}")
    for i, (label, value) in enumerate((reference or {}).items()):
        ax.axvline(value, color=f'C{i + 1}', lw=1, ls=':', label=f'{label} {value:.3f}')
    ax.set_xlim(left=0)
    ax.set_xlabel(f'REMatch distance of each {x_label} configuration to its nearest {y_label} configuration')
    ax.set_ylabel('configurations')
    ax.legend(fontsize=8, loc='best')
    ax.set_title(f'nearest neighbour of {x_label} in {y_label} ({stats["n"]} configurations)')
    return figure_png(fig)
