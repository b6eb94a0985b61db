"""Structural, dynamical and failure observables of MD trajectories (thesis sections 3.4, 11).

Units: Å, ps, eV, K, bar; diffusion coefficients in m^2/s. Trajectories are lists of
``ase.Atoms`` in time order with a constant atom order.
"""

from __future__ import annotations

import numpy as np
from ase.geometry.rdf import get_rdf

#: Boltzmann constant, eV/K (CODATA 2018).
KB_EV = 8.617333262e-5
#: eV/Å^3 -> bar.
EV_A3_TO_BAR = 1.602176634e6
#: Å^2/ps -> m^2/s.
A2_PS_TO_M2_S = 1.0e-8


def rdf(frames, pair: tuple[str, str], r_max: float, n_bins: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Partial radial distribution function g_ab(r), averaged over ``frames``.

    Uses ``ase.geometry.rdf.get_rdf`` (partial RDFs as LAMMPS ``compute rdf``; an ideal gas gives 1).

    :param pair: the two species, e.g. ``('Na', 'Cl')``.
    :param r_max: largest distance, Å; must be below half the smallest cell height.
    :returns: ``(r, g)``: bin centres (Å) and g(r), each of shape ``(n_bins,)``.
    :raises ValueError: if a species of ``pair`` is absent or ``r_max`` is too large for the cell.
    """
    frames = list(frames)
    for symbol in pair:
        if symbol not in frames[0].get_chemical_symbols():
            raise ValueError(f'species {symbol!r} is not in the trajectory')
    cell = frames[0].cell.array
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    half = 0.5 * heights.min()
    if r_max > half:
        raise ValueError(f'r_max={r_max} Å exceeds half the cell height ({half:.3f} Å)')
    g, r = get_rdf(frames, r_max, n_bins, elements=list(pair))
    return np.asarray(r), np.asarray(g)


def unwrap(frames) -> np.ndarray:
    """Unwrapped positions (n_frames, n_atoms, 3), Å, removing jumps across periodic boundaries.

    Each step's displacement is taken as the minimum image in the cell of the later frame, so
    frames must be close enough in time that no atom moves more than half a cell between them.
    """
    positions = [frames[0].get_positions()]
    for previous, current in zip(frames[:-1], frames[1:]):
        delta = current.get_positions() - previous.get_positions()
        cell = current.cell.array
        fractional = np.linalg.solve(cell.T, delta.T).T
        fractional -= np.round(fractional)
        positions.append(positions[-1] + fractional @ cell)
    return np.array(positions)


def msd(frames, times, species: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared displacement averaged over atoms (of ``species``) and all time origins.

    :param times: time of each frame, ps, equally spaced.
    :returns: ``(lag_times, msd)`` in ps and Å^2, shape ``(n_frames,)``.
    """
    frames = list(frames)
    positions = unwrap(frames)
    if species is not None:
        mask = np.array(frames[0].get_chemical_symbols()) == species
        if not mask.any():
            raise ValueError(f'species {species!r} is not in the trajectory')
        positions = positions[:, mask]
    n = len(positions)
    values = np.zeros(n)
    for lag in range(1, n):
        values[lag] = np.mean(np.sum((positions[lag:] - positions[:-lag]) ** 2, axis=-1))
    times = np.asarray(times, dtype=float)
    return times[:n] - times[0], values


def diffusion_coefficient(lag_times, msd_values, *, min_fraction: float = 0.1, max_fraction: float = 0.5) -> dict:
    """Self-diffusion coefficient from the Einstein relation MSD(t) = 6 D t + c (3-D).

    The fit range is the diffusive regime: lags between ``min_fraction`` and ``max_fraction`` of
    the longest lag (short lags are ballistic, long lags have few time origins), narrowed to the
    points whose local log-log slope is within 0.7-1.3 when there are at least five of them.

    :returns: ``D_m2_s`` (m^2/s), ``D_A2_ps``, ``fit_range_ps`` (start, end), ``loglog_slope``.
    :raises ValueError: with fewer than three points in the fit range.
    """
    t = np.asarray(lag_times, dtype=float)
    m = np.asarray(msd_values, dtype=float)
    window = (t >= min_fraction * t[-1]) & (t <= max_fraction * t[-1]) & (t > 0) & (m > 0)
    if window.sum() >= 5:
        slope = np.gradient(np.log(m[window]), np.log(t[window]))
        diffusive = np.zeros_like(window)
        diffusive[np.flatnonzero(window)[(slope > 0.7) & (slope < 1.3)]] = True
        if diffusive.sum() >= 5:
            window = diffusive
    if window.sum() < 3:
        raise ValueError('fewer than three MSD points in the diffusive fit range; run longer')
    coefficients = np.polyfit(t[window], m[window], 1)
    loglog = np.polyfit(np.log(t[window]), np.log(m[window]), 1)[0]
    d = coefficients[0] / 6.0
    return {'D_A2_ps': float(d), 'D_m2_s': float(d * A2_PS_TO_M2_S),
            'fit_range_ps': (float(t[window][0]), float(t[window][-1])), 'loglog_slope': float(loglog)}


def average_force_magnitude(forces) -> float:
    """AFM = (1/N) sum_i ``|F_i|`` (eV/Å) of one frame's forces, shape (N, 3)."""
    return float(np.mean(np.linalg.norm(np.asarray(forces, dtype=float), axis=1)))


def virial_pressure(virial, volume: float) -> float:
    """Virial part of the pressure, P_vir = tr(W) / (3 V) in bar (W the virial tensor in eV, ASE sign; V in Å^3).

    For pair forces tr(W) = sum_i r_i . F_i, the thesis's expression; the tensor form holds for
    periodic systems and many-body potentials.
    """
    return float(np.trace(np.asarray(virial, dtype=float).reshape(3, 3)) / (3.0 * volume) * EV_A3_TO_BAR)


def pressure(n_atoms: int, temperature: float, volume: float, virial) -> float:
    """P = N k_B T / V + tr(W) / (3 V), bar: the virial theorem (e.g. Allen & Tildesley, *Computer Simulation
    of Liquids*, Oxford University Press)."""
    return float(n_atoms * KB_EV * temperature / volume * EV_A3_TO_BAR) + virial_pressure(virial, volume)


def breaking_step(steps, volumes, reference_volume: float, factor: float = 1.5):
    """First step whose volume exceeds ``factor`` x ``reference_volume`` (docs: science/failures), or ``None``."""
    volumes = np.asarray(volumes, dtype=float)
    above = np.flatnonzero(volumes > factor * reference_volume)
    return int(np.asarray(steps)[above[0]]) if above.size else None


def mass_density(atoms) -> float:
    """Mass density of a periodic configuration, g/cm^3 (masses amu / Avogadro over the cell volume)."""
    return float(atoms.get_masses().sum() / 6.02214076e23 / (atoms.get_volume() * 1.0e-24))


def running_mean(values, window: int) -> np.ndarray:
    """Trailing running mean over ``window`` samples (shorter at the start), same length as ``values``."""
    values = np.asarray(values, dtype=float)
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


def mean_and_standard_error(values, blocks: int = 5) -> tuple[float, float]:
    """Mean and block-averaged standard error (``blocks`` contiguous blocks) of a correlated series.

    The error is ``None`` for fewer than two values.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (float(values.mean()) if len(values) else None), None
    blocks = max(2, min(blocks, len(values)))
    means = [b.mean() for b in np.array_split(values, blocks)]
    return float(values.mean()), float(np.std(means, ddof=1) / np.sqrt(blocks))


#: amu Å^2 / ps^2 -> eV.
AMU_A2_PS2_TO_EV = 1.0364269e-4


def kinetic_temperature(atoms, velocities=None) -> float:
    """Instantaneous temperature (K) from velocities in Å/ps (``arrays['velocities']`` by default).

    T = sum_i m_i v_i^2 / (3 N k_B) (no constraint correction; N >> 1).
    """
    v = np.asarray(atoms.arrays['velocities'] if velocities is None else velocities, dtype=float)
    kinetic = 0.5 * np.sum(atoms.get_masses()[:, None] * v**2) * AMU_A2_PS2_TO_EV
    return float(2.0 * kinetic / (3.0 * len(atoms) * KB_EV))
