"""Observables against analytic or hand-computed cases."""

import numpy as np
import pytest
from ase import Atoms

from aiida_mlfail.science import observables as obs


def _ideal_gas(n=400, box=20.0, seed=0, frames=20):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(frames):
        symbols = ['Na'] * (n // 2) + ['Cl'] * (n // 2)
        out.append(Atoms(symbols, positions=rng.uniform(0, box, (n, 3)), cell=[box] * 3, pbc=True))
    return out


def test_ideal_gas_rdf_is_one():
    r, g = obs.rdf(_ideal_gas(), ('Na', 'Cl'), r_max=8.0, n_bins=20)
    assert r.shape == g.shape == (20,)
    assert np.mean(g[5:]) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match='exceeds half the cell'):
        obs.rdf(_ideal_gas(frames=1), ('Na', 'Cl'), r_max=12.0)
    with pytest.raises(ValueError, match="'K' is not in the trajectory"):
        obs.rdf(_ideal_gas(frames=1), ('Na', 'K'), r_max=5.0)


def test_msd_of_ballistic_particle_across_the_boundary():
    v = np.array([3.0, 0.0, 4.0])  # Å/ps, |v| = 5
    times = np.arange(30) * 0.1
    frames = [Atoms('Ar', positions=[(v * t) % 4.0], cell=[4.0] * 3, pbc=True) for t in times]  # wraps often
    lags, m = obs.msd(frames, times)
    assert np.allclose(m, (5.0 * lags) ** 2)


def test_diffusion_coefficient_of_einstein_line():
    t = np.linspace(0, 10, 201)
    d = 0.5  # Å^2/ps
    result = obs.diffusion_coefficient(t, 6 * d * t + 0.3)
    assert result['D_A2_ps'] == pytest.approx(d)
    assert result['D_m2_s'] == pytest.approx(d * 1e-8)


def test_random_walk_diffusion():
    rng = np.random.default_rng(1)
    steps = rng.normal(scale=0.1, size=(400, 200, 3))  # 400 frames, 200 walkers, 0.01 Å^2 per axis per frame
    positions = np.cumsum(steps, axis=0)
    frames = [Atoms('Ar200', positions=p, cell=[1000.0] * 3, pbc=True) for p in positions]
    times = np.arange(400) * 0.01  # ps
    lags, m = obs.msd(frames, times)
    # <dx^2> = 0.01 per frame per axis -> MSD = 0.03 per frame = 3 Å^2/ps -> D = 0.5 Å^2/ps
    assert obs.diffusion_coefficient(lags, m)['D_A2_ps'] == pytest.approx(0.5, rel=0.1)


def _random_walk(seed: int, n_frames: int = 400, n_walkers: int = 100):
    steps = np.random.default_rng(seed).normal(scale=0.1, size=(n_frames, n_walkers, 3))
    return [Atoms(f'Ar{n_walkers}', positions=p, cell=[1000.0] * 3, pbc=True) for p in np.cumsum(steps, axis=0)]


def test_fft_msd_equals_the_direct_sum_over_time_origins():
    frames = _random_walk(3, n_frames=60, n_walkers=7)
    positions = np.array([a.positions for a in frames])
    direct = np.array([0.0] + [np.mean(np.sum((positions[lag:] - positions[:-lag]) ** 2, axis=-1))
                               for lag in range(1, 60)])
    lags, m = obs.msd(frames, np.arange(60) * 0.01)
    np.testing.assert_allclose(m, direct, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lags, np.arange(60) * 0.01)


def test_diffusion_standard_error_covers_the_true_value():
    """Random walks with D = 0.5 Å^2/ps: over 12 independent trajectories the block standard error is the
    size of the actual scatter of D (z = (D - 0.5) / stderr follows Student's t with 4 degrees of freedom,
    mean z^2 = 2; an error too small by 2x would give about 8)."""
    times = np.arange(400) * 0.01
    z = []
    for seed in range(12):
        result = obs.diffusion_with_error(_random_walk(seed), times, n_blocks=5)
        assert len(result['D_blocks_A2_ps']) == 5 and result['n_blocks'] == 5
        assert result['D_stderr_A2_ps'] > 0
        assert result['D_stderr_m2_s'] == pytest.approx(result['D_stderr_A2_ps'] * 1e-8)
        assert result['D_A2_ps'] == pytest.approx(np.mean(result['D_blocks_A2_ps']))
        z.append((result['D_A2_ps'] - 0.5) / result['D_stderr_A2_ps'])
    assert 0.5 < np.mean(np.square(z)) < 4.0, z
    with pytest.raises(ValueError, match='n_blocks must be an integer >= 2, got 1'):
        obs.diffusion_with_error(_random_walk(0, 20, 2), times[:20], n_blocks=1)
    with pytest.raises(ValueError, match=r'block 1 of 10 \(2 frames\)'):
        obs.diffusion_with_error(_random_walk(0, 20, 2), times[:20], n_blocks=10)


def test_afm_pressure_and_breaking_step():
    forces = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    assert obs.average_force_magnitude(forces) == pytest.approx(3.0)
    virial = np.diag([1.0, 2.0, 3.0])  # eV
    assert obs.virial_pressure(virial, 100.0) == pytest.approx(6.0 / 300.0 * 1.602176634e6)
    # ideal-gas part: 64 atoms at 1400 K in 2300 Å^3
    assert obs.pressure(64, 1400.0, 2300.0, np.zeros((3, 3))) == pytest.approx(
        64 * 8.617333262e-5 * 1400 / 2300 * 1.602176634e6)
    assert obs.breaking_step([0, 10, 20, 30], [100, 120, 151, 300], 100.0) == 20
    assert obs.breaking_step([0, 10], [100, 149], 100.0) is None


def test_running_mean_and_block_error():
    assert np.allclose(obs.running_mean([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    mean, error = obs.mean_and_standard_error(np.r_[np.zeros(50), np.ones(50)], blocks=2)
    assert mean == 0.5 and error == pytest.approx(0.5)


def test_mass_density_and_forensics_figure():
    from aiida_mlfail.science import forensics, structures

    atoms = structures.molten_nacl(64)
    # both take ASE's standard atomic weights (no species table of the package's own)
    assert obs.mass_density(atoms) == pytest.approx(structures.volume_to_density(atoms.get_chemical_symbols(),
                                                                                  atoms.get_volume()), rel=1e-12)
    frames = []
    for step in range(0, 50, 10):
        frame = atoms.copy()
        frame.info.update(md_step=step, virial=np.eye(3))
        frame.arrays['forces'] = np.ones((64, 3))
        frame.arrays['velocities'] = np.full((64, 3), 5.0)
        frames.append(frame)
    series = forensics.frame_series(frames, 2.0)
    assert np.allclose(series['time_ps'], [0, 0.02, 0.04, 0.06, 0.08])
    assert np.allclose(series['afm'], np.sqrt(3.0))
    accumulator = forensics.ForensicsAccumulator(2.0, break_step=20, window_frames=2)
    for frame in frames:
        accumulator.add(frame)
    histograms = forensics.component_histograms(accumulator.windows(), accumulator.masses, 1400.0)
    png = forensics.forensics_png(series, histograms, break_time_ps=0.04, temperature=1400.0)
    assert png[:4] == b'\x89PNG'
