"""Forensics of a GAP MD run (science.forensics): breaking step, windows, Maxwell-Boltzmann and Gaussian curves,
production averages."""

import io

import numpy as np
import pytest
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from aiida_mlfail.science import extxyz, forensics, mlmd, structures
from aiida_mlfail.science import observables as obs


def _trajectory(n_frames=20, interval=10, seed=0, temperature=1400.0):
    """64-ion NaCl frames with ASE Maxwell-Boltzmann velocities (Å/ps), Gaussian forces (sigma 0.5 eV/Å)
    and a virial; frame k at MD step k * interval."""
    rng = np.random.default_rng(seed)
    base = structures.molten_nacl(64)
    frames = []
    for k in range(n_frames):
        atoms = base.copy()
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        atoms.arrays['velocities'] = atoms.get_velocities() * 1000.0 * units.fs  # ASE units -> Å/ps
        atoms.arrays['forces'] = rng.normal(0.0, 0.5, (len(atoms), 3))
        atoms.info.update(md_step=k * interval, virial=np.diag([1.0, 2.0, 3.0]))
        frames.append(atoms)
    return frames


def test_maxwell_boltzmann_component_density_matches_ase_velocities():
    """The mixture density is normalised, and its variance is the mean k_B T / m_i of ASE's own
    Maxwell-Boltzmann velocities (converted to Å/ps) within 3 %."""
    frames = _trajectory(30)
    v = np.concatenate([a.arrays['velocities'].ravel() for a in frames])
    grid = np.linspace(-60, 60, 4001)
    pdf = forensics.maxwell_boltzmann_component_pdf(grid, frames[0].get_masses(), 1400.0)
    assert np.trapezoid(pdf, grid) == pytest.approx(1.0, abs=1e-6)
    model_variance = np.trapezoid(grid**2 * pdf, grid)
    assert np.var(v) == pytest.approx(model_variance, rel=0.03)
    # Na (22.99 amu) at 1400 K: sqrt(k_B T / m) = 711 m/s = 7.11 Å/ps
    sodium = forensics.maxwell_boltzmann_component_pdf(np.array([0.0]), [22.98976928], 1400.0)[0]
    assert 1.0 / (sodium * np.sqrt(2 * np.pi)) == pytest.approx(7.11, rel=2e-3)


def test_windows_before_and_after_the_break_and_the_fitted_gaussian():
    frames = _trajectory(20)
    accumulator = forensics.ForensicsAccumulator(2.0, break_step=100, window_frames=3)
    for atoms in frames:
        accumulator.add(atoms)
    assert accumulator.break_index == 10
    windows = accumulator.windows()
    assert list(windows) == ['before', 'after'] and windows['before']['n_frames'] == 3
    # the window before is frames 7, 8, 9 (steps 70-90), the one after frames 10, 11, 12
    assert np.array_equal(windows['before']['force'],
                          np.concatenate([a.arrays['forces'].ravel() for a in frames[7:10]]))
    assert np.array_equal(windows['after']['velocity'],
                          np.concatenate([a.arrays['velocities'].ravel() for a in frames[10:13]]))
    histograms = forensics.component_histograms(windows, accumulator.masses, 1400.0)
    force = histograms['force']
    assert force['gaussian_mean'] == pytest.approx(0.0, abs=0.03)
    assert force['gaussian_std'] == pytest.approx(0.5, rel=0.05)
    width = np.diff(force['edges'])
    assert np.sum(force['before'] * width) == pytest.approx(1.0)
    assert np.sum(force['after'] * width) == pytest.approx(1.0)
    assert set(histograms['velocity']['mb_std_by_mass']) == set(np.unique(frames[0].get_masses()))
    series = accumulator.series()
    assert np.array_equal(series['step'], np.arange(0, 200, 10)) and series['time_ps'][-1] == pytest.approx(0.38)
    assert np.allclose(series['pressure'] - series['virial_pressure'],
                       [64 * obs.KB_EV * t / a.get_volume() * obs.EV_A3_TO_BAR for t, a in zip(series['temperature'],
                                                                                                frames)])


def test_without_a_break_the_windows_are_the_start_and_the_end():
    frames = _trajectory(8)
    accumulator = forensics.ForensicsAccumulator(2.0, None, window_frames=3)
    for atoms in frames:
        accumulator.add(atoms)
    windows = accumulator.windows()
    assert list(windows) == ['start', 'end'] and accumulator.break_index is None
    assert np.array_equal(windows['end']['force'], np.concatenate([a.arrays['forces'].ravel() for a in frames[5:]]))
    assert np.array_equal(windows['start']['force'], np.concatenate([a.arrays['forces'].ravel() for a in frames[:3]]))
    with pytest.raises(ValueError, match='window_frames must be a positive integer, got 0'):
        forensics.ForensicsAccumulator(2.0, None, window_frames=0)


def test_frames_are_read_one_at_a_time_from_extxyz():
    frames = _trajectory(5)
    text = extxyz.to_text(frames)
    stream = extxyz.iter_configurations(io.StringIO(text))
    first = next(stream)
    assert first.info['md_step'] == 0 and np.allclose(first.arrays['velocities'], frames[0].arrays['velocities'])
    assert forensics.frame_series(stream, 2.0)['step'].tolist() == [10, 20, 30, 40]


def test_production_part_drops_the_equilibration():
    steps = np.arange(0, 1100, 100)
    pressure = np.r_[np.full(5, 5000.0), np.full(6, 100.0)]  # equilibration from a lattice, then production
    assert forensics.production_part(steps, pressure, 500).tolist() == [100.0] * 6
    assert forensics.production_mean(steps, pressure, 500, blocks=2)[0] == 100.0
    assert np.mean(pressure) > 2000  # the whole series would mix in the equilibration
    with pytest.raises(ValueError, match='no row at or after the production start step 2000 .* ends at step 1000'):
        forensics.production_part(steps, pressure, 2000)


def test_breaking_factor_is_separate_from_the_volume_guard():
    assert mlmd.normalise_mlmd({})['breaking_factor'] == forensics.BREAKING_FACTOR == 1.5
    assert mlmd.normalise_mlmd({})['guards']['volume_factor'] == 1.5  # the demo halts at the break
    p = mlmd.normalise_mlmd({'ensemble': 'NPT', 'guards': {'volume_factor': 3.0}})
    assert p['breaking_factor'] == 1.5 and p['guards']['volume_factor'] == 3.0
    with pytest.raises(ValueError, match=r'breaking_factor 2 is above guards.volume_factor 1.5'):
        mlmd.normalise_mlmd({'breaking_factor': 2.0})
    with pytest.raises(ValueError, match='breaking_factor'):
        mlmd.normalise_mlmd({'breaking_factor': 1.0})
    # the breaking step: first thermo row above 1.5 x V_eq
    assert obs.breaking_step([0, 10, 20, 30], [100, 140, 151, 400], 100.0, 1.5) == 20


def test_a_guard_below_the_default_breaking_factor_is_still_accepted():
    """Runs guarded below 1.5 (e.g. an explorer at 1.3) stay valid: only a given breaking_factor is checked."""
    assert mlmd.normalise_mlmd({'guards': {'volume_factor': 1.3}})['breaking_factor'] == 1.5
