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


def _msd_of_positions(positions) -> np.ndarray:
    """MSD (Å^2) per lag of unwrapped ``positions`` (n_frames, n_atoms, 3), averaged over atoms and all time
    origins, with tidynamics' FFT algorithm (O(n log n) per atom)."""
    import tidynamics  # noqa: PLC0415

    return np.mean([tidynamics.msd(positions[:, atom]) for atom in range(positions.shape[1])], axis=0)


def _species_positions(frames, species):
    positions = unwrap(frames)
    if species is not None:
        mask = np.array(frames[0].get_chemical_symbols()) == species
        if not mask.any():
            raise ValueError(f'species {species!r} is not in the trajectory')
        positions = positions[:, mask]
    return positions


def msd(frames, times, species: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean squared displacement averaged over atoms (of ``species``) and all time origins.

    The fast correlation algorithm (FFT) of ``tidynamics.msd`` (de Buyl, J. Open Source Softw. 3, 877
    (2018); Kneller et al., Comput. Phys. Commun. 91, 191 (1995)): the same values as the direct
    double sum over origins and lags, in O(n log n).

    :param times: time of each frame, ps, equally spaced.
    :returns: ``(lag_times, msd)`` in ps and Å^2, shape ``(n_frames,)``.
    :raises ValueError: if ``species`` is not in the trajectory.
    """
    frames = list(frames)
    values = _msd_of_positions(_species_positions(frames, species))
    times = np.asarray(times, dtype=float)
    return times[:len(values)] - times[0], values


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


def diffusion_with_error(frames, times, species: str | None = None, n_blocks: int = 5, **fit) -> dict:
    """Self-diffusion coefficient with its standard error from independent blocks of the trajectory.

    The trajectory is cut into ``n_blocks`` consecutive blocks of equal length, D is fitted in each
    (:func:`diffusion_coefficient` of the block's MSD), and D is their mean with the standard error
    ``std(D_block, ddof=1) / sqrt(n_blocks)`` (block averaging: Flyvbjerg and Petersen, J. Chem. Phys.
    91, 461 (1989); the blocks must be longer than the velocity correlation time, which the diffusive
    fit window already requires; with 5 blocks the error itself is uncertain by about 35 %). The fit of
    the whole trajectory's MSD, which uses longer lags and has a larger error than the blocks show, is
    returned beside it as ``D_whole_A2_ps``.

    :param times: time of each frame, ps, equally spaced.
    :param n_blocks: number of blocks (>= 2).
    :param fit: keyword arguments of :func:`diffusion_coefficient`.
    :returns: ``D_A2_ps``, ``D_m2_s`` (block mean), ``D_stderr_A2_ps``, ``D_stderr_m2_s``,
        ``D_blocks_A2_ps`` (list), ``n_blocks``, and of the whole trajectory ``D_whole_A2_ps``,
        ``fit_range_ps`` and ``loglog_slope``.
    :raises ValueError: for ``n_blocks`` < 2, a species not in the trajectory, or a block too short for the
        fit (fewer than three points in its diffusive range: run longer or use fewer blocks).
    """
    if int(n_blocks) != n_blocks or n_blocks < 2:
        raise ValueError(f'n_blocks must be an integer >= 2, got {n_blocks!r}')
    frames = list(frames)
    times = np.asarray(times, dtype=float)
    positions = _species_positions(frames, species)
    result = diffusion_coefficient(times - times[0], _msd_of_positions(positions), **fit)
    length = len(frames) // n_blocks
    blocks = []
    for block in range(n_blocks):
        cut = slice(block * length, (block + 1) * length)
        try:
            blocks.append(diffusion_coefficient(times[cut] - times[cut][0], _msd_of_positions(positions[cut]),
                                                **fit)['D_A2_ps'])
        except ValueError as exc:
            raise ValueError(f'block {block + 1} of {n_blocks} ({length} frames): {exc}') from None
    mean, stderr = float(np.mean(blocks)), float(np.std(blocks, ddof=1) / np.sqrt(n_blocks))
    return {'D_A2_ps': mean, 'D_m2_s': mean * A2_PS_TO_M2_S, 'D_stderr_A2_ps': stderr,
            'D_stderr_m2_s': stderr * A2_PS_TO_M2_S, 'D_blocks_A2_ps': [float(d) for d in blocks],
            'n_blocks': int(n_blocks), 'D_whole_A2_ps': result['D_A2_ps'], 'fit_range_ps': result['fit_range_ps'],
            'loglog_slope': result['loglog_slope']}


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
