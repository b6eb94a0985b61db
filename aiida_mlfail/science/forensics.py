"""Failure forensics of a GAP MD run (thesis chapter 11, figures 11.3-11.5).

* the breaking step (thesis section 11): the first step whose volume exceeds ``breaking_factor`` (1.5)
  x the equilibrium volume, which comes from the classical NPT reference of the same state point (the
  mean volume of its production part, :func:`production_mean`) or is given; it is separate from the
  guard that halts the run (``guards.volume_factor`` of :mod:`~aiida_mlfail.science.mlmd`), so that a
  guard set later (e.g. 3 x) leaves frames after the break to look at;
* time series (:func:`frame_series`): temperature (with a running mean), average force magnitude
  ``AFM = (1/N) sum_i |F_i|`` (thesis eq. 11.3), pressure P (eq. 11.4) and virial pressure P_vir (eq. 11.5),
  volume and density;
* histograms of velocity components and force components in a window of frames before the break and one
  from the break (:func:`component_histograms`), with the Maxwell-Boltzmann distribution of a velocity
  component at the target temperature and a Gaussian fitted (``scipy.stats.norm.fit``) to the force
  components of the window before the break drawn on both.

Everything reads the frames once, in order, from any iterable (a generator over a dump or extxyz file
keeps one frame in memory: :meth:`~aiida_mlfail.data.training_set.TrainingSetData.iter_atoms`).
Velocities are in Å/ps (LAMMPS ``metal``), forces eV/Å, pressures bar, volumes Å^3.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from ase import units

from aiida_mlfail.science import observables as obs

#: Default breaking factor: V > 1.5 x V_eq (thesis section 11: "the first configuration that exceeds 1.5
#: times the equilibrium volume"; the natural fluctuations are about 10 %).
BREAKING_FACTOR = 1.5

#: Default number of frames in each histogram window (before the break, from the break).
WINDOW_FRAMES = 10

#: Velocity unit Å/ps in ASE's velocity unit (Å / (Å sqrt(amu/eV))): 1 ps = 1000 ``units.fs``.
_A_PS_IN_ASE = 1.0 / (1000.0 * units.fs)


def production_part(steps, values, start_step: int) -> np.ndarray:
    """The values of the rows with ``step >= start_step`` (the production part of a run whose first
    ``start_step`` steps equilibrate it).

    :param steps: MD steps of the rows, shape (n,); ``values``: shape (n, ...).
    :raises ValueError: when no row is at or after ``start_step`` (naming it and the last step).
    """
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=float)
    keep = steps >= int(start_step)
    if not keep.any():
        raise ValueError(f'no row at or after the production start step {int(start_step)} '
                         f'(the series ends at step {int(steps[-1]) if steps.size else None})')
    return values[keep]


def production_mean(steps, values, start_step: int, blocks: int = 5) -> tuple[float, float | None]:
    """Mean and block standard error (:func:`~aiida_mlfail.science.observables.mean_and_standard_error`)
    of the production part (:func:`production_part`) of a series, e.g. the equilibrium volume (Å^3) of a
    classical NPT run or the pressure (bar) of a training run.

    :raises ValueError: as :func:`production_part`.
    """
    return obs.mean_and_standard_error(production_part(steps, values, start_step), blocks=blocks)


def maxwell_boltzmann_component_pdf(v, masses_amu, temperature: float) -> np.ndarray:
    """Probability density (per Å/ps) of one Cartesian velocity component at ``temperature`` (K).

    For atoms of masses ``m_i`` the density of a component drawn from all atoms is the mixture
    (1/N) sum_i sqrt(m_i / (2 pi k_B T)) exp(-m_i v^2 / (2 k_B T)) (Maxwell-Boltzmann; each component
    is Gaussian with variance k_B T / m_i). Constants from ``ase.units`` (``kB`` eV/K, amu, ``fs``).

    :param v: velocity component values, Å/ps, any shape.
    :param masses_amu: masses of the atoms, amu, shape (N,).
    :returns: the density, shape of ``v``.
    """
    v = np.asarray(v, dtype=float)
    masses, counts = np.unique(np.asarray(masses_amu, dtype=float), return_counts=True)
    sigma = np.sqrt(units.kB * float(temperature) / masses) / _A_PS_IN_ASE  # Å/ps per species
    weights = counts / counts.sum()
    out = np.zeros_like(v)
    for w, s in zip(weights, sigma):
        out += w * np.exp(-0.5 * (v / s) ** 2) / (s * np.sqrt(2.0 * np.pi))
    return out


class ForensicsAccumulator:
    """Reads frames one at a time; collects the time series and the frames of the two histogram windows.

    :param timestep_fs: MD timestep, fs (frames carry ``info['md_step']``).
    :param break_step: the breaking step (MD step) or ``None``: the windows are then the first and the last
        ``window_frames`` frames (labelled ``start`` / ``end``) instead of ``before`` / ``after`` the break.
    :param window_frames: frames per window.
    """

    def __init__(self, timestep_fs: float, break_step: int | None = None, window_frames: int = WINDOW_FRAMES):
        if int(window_frames) < 1:
            raise ValueError(f'window_frames must be a positive integer, got {window_frames!r}')
        self.timestep_fs = float(timestep_fs)
        self.break_step = None if break_step is None else int(break_step)
        self.window_frames = int(window_frames)
        self.rows: dict[str, list] = {k: [] for k in ('step', 'temperature', 'afm', 'pressure', 'virial_pressure',
                                                       'volume', 'density')}
        self._before: deque = deque(maxlen=self.window_frames)
        self._after: list = []
        self.masses = None
        self.break_index = None

    def add(self, atoms) -> None:
        """Add the next frame (``ase.Atoms`` with ``info['md_step']``, ``info['virial']`` eV, ``arrays['forces']``
        eV/Å, ``arrays['velocities']`` Å/ps)."""
        step = int(atoms.info['md_step'])
        temperature = obs.kinetic_temperature(atoms)
        volume = atoms.get_volume()
        row = self.rows
        row['step'].append(step)
        row['temperature'].append(temperature)
        row['afm'].append(obs.average_force_magnitude(atoms.arrays['forces']))
        row['pressure'].append(obs.pressure(len(atoms), temperature, volume, atoms.info['virial']))
        row['virial_pressure'].append(obs.virial_pressure(atoms.info['virial'], volume))
        row['volume'].append(volume)
        row['density'].append(obs.mass_density(atoms))
        if self.masses is None:
            self.masses = atoms.get_masses()
        components = (np.asarray(atoms.arrays['velocities'], float).ravel(),
                      np.asarray(atoms.arrays['forces'], float).ravel())
        if self.break_step is None:  # no break: the first window is the start of the run, the other one its end
            if len(self._after) < self.window_frames:
                self._after.append(components)
            self._before.append(components)
        elif step >= self.break_step:
            if self.break_index is None:
                self.break_index = len(row['step']) - 1
            if len(self._after) < self.window_frames:
                self._after.append(components)
        else:
            self._before.append(components)

    def series(self) -> dict:
        """The time series: arrays ``step``, ``time_ps``, ``temperature`` (K), ``afm`` (eV/Å), ``pressure`` and
        ``virial_pressure`` (bar), ``volume`` (Å^3), ``density`` (g/cm^3)."""
        out = {k: np.asarray(v, dtype=float) for k, v in self.rows.items()}
        out['step'] = np.asarray(self.rows['step'], dtype=int)
        out['time_ps'] = out['step'] * self.timestep_fs / 1000.0
        return out

    def windows(self) -> dict:
        """``{label: {'velocity': components Å/ps, 'force': components eV/Å, 'steps': (first, last)}}`` of the two
        windows (``before``/``after`` the break, or ``start``/``end`` without one); a window without frames is
        left out."""
        if self.break_step is None:
            labelled = (('start', self._after), ('end', list(self._before)))
        else:
            labelled = (('before', list(self._before)), ('after', self._after))
        return {label: {'velocity': np.concatenate([c[0] for c in frames]),
                        'force': np.concatenate([c[1] for c in frames]), 'n_frames': len(frames)}
                for label, frames in labelled if frames}


def frame_series(frames, timestep_fs: float) -> dict:
    """Per-frame series of a trajectory (an iterable of frames, read once): see :meth:`ForensicsAccumulator.series`."""
    accumulator = ForensicsAccumulator(timestep_fs)
    for atoms in frames:
        accumulator.add(atoms)
    return accumulator.series()


def component_histograms(windows: dict, masses_amu, temperature: float, bins: int = 40) -> dict:
    """Histograms (densities) of velocity and force components of the windows of
    :meth:`ForensicsAccumulator.windows`, with the model curves.

    Velocities: the Maxwell-Boltzmann density of a component at ``temperature`` (K) for the masses of the
    atoms (:func:`maxwell_boltzmann_component_pdf`). Forces: a Gaussian fitted by maximum likelihood
    (``scipy.stats.norm.fit``) to the components of the first window (before the break, or the start),
    drawn on both windows as the thesis's figure 11.4 b does.

    :returns: ``{'velocity': {...}, 'force': {...}}``, each with ``edges`` (bins + 1), ``centres``,
        per window label the density (bins), ``model`` (the curve at the centres) and, for forces,
        ``gaussian_mean`` / ``gaussian_std`` (eV/Å); velocities also ``mb_std_by_mass`` ({amu: Å/ps}).
    :raises ValueError: for no windows.
    """
    from scipy import stats

    if not windows:
        raise ValueError('no frames in any window: nothing to histogram')
    out = {}
    labels = list(windows)
    for key in ('velocity', 'force'):
        values = np.concatenate([windows[label][key] for label in labels])
        finite = values[np.isfinite(values)]
        if not finite.size:
            finite = np.zeros(1)
        limit = float(np.max(np.abs(finite))) or 1.0
        edges = np.linspace(-limit, limit, int(bins) + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        entry = {'edges': edges, 'centres': centres}
        for label in labels:
            data = windows[label][key]
            data = data[np.isfinite(data)]
            entry[label] = np.histogram(data, edges, density=True)[0] if data.size else np.zeros(int(bins))
        if key == 'velocity':
            entry['model'] = maxwell_boltzmann_component_pdf(centres, masses_amu, temperature)
            masses = np.unique(np.asarray(masses_amu, dtype=float))
            entry['mb_std_by_mass'] = {float(m): float(np.sqrt(units.kB * temperature / m) / _A_PS_IN_ASE)
                                       for m in masses}
        else:
            first = windows[labels[0]][key]
            mean, std = stats.norm.fit(first[np.isfinite(first)])
            # a degenerate window (all components equal) has no Gaussian: the curve is left at zero
            entry['model'] = stats.norm.pdf(centres, mean, std) if std > 0 else np.zeros_like(centres)
            entry['gaussian_mean'], entry['gaussian_std'] = float(mean), float(std)
        out[key] = entry
    return out


def forensics_png(series: dict, histograms: dict | None = None, break_time_ps: float | None = None,
                  running_window: int = 10, title: str = '', temperature: float | None = None,
                  break_volume: float | None = None) -> bytes:
    """Figure of T (with running mean), AFM, P and P_vir, volume and density vs time, and the component
    histograms of :func:`component_histograms` with their model curves.

    The breaking time is marked by a vertical line where given, the breaking volume (Å^3, breaking factor x
    V_eq) by a horizontal one on the volume panel. Returns PNG bytes.
    """
    from aiida_mlfail.science.plots import figure_png, plt

    n_rows = 3 if histograms else 2
    fig, axes = plt.subplots(n_rows, 2, figsize=(10, 3.0 * n_rows))
    t = series['time_ps']
    panels = [
        (axes[0, 0], 'temperature (K)', [(series['temperature'], 'T'),
                                          (obs.running_mean(series['temperature'], running_window),
                                           f'running mean ({running_window} frames)')]),
        (axes[0, 1], 'AFM (eV/Å)', [(series['afm'], 'AFM')]),
        (axes[1, 0], 'pressure (bar)', [(series['pressure'], 'P'), (series['virial_pressure'], 'P_virial')]),
        (axes[1, 1], 'volume (Å^3)', [(series['volume'], 'V')]),
    ]
    if break_volume is not None:
        axes[1, 1].axhline(break_volume, color='red', ls='--', lw=1, label='breaking volume')
    density_axis = axes[1, 1].twinx()
    density_axis.plot(t, series['density'], color='0.5', lw=0.8, ls=':')
    density_axis.set_ylabel('density (g/cm$^3$), dotted')
    for ax, label, curves in panels:
        for values, name in curves:
            ax.plot(t, values, label=name, lw=1)
        ax.set_xlabel('time (ps)')
        ax.set_ylabel(label)
        if len(curves) > 1:
            ax.legend(fontsize=8)
        if break_time_ps is not None:
            ax.axvline(break_time_ps, color='black', lw=1)
    if histograms:
        model_names = {'velocity': f'Maxwell-Boltzmann{f", {temperature:.0f} K" if temperature else ""}',
                       'force': 'Gaussian fit (first window)'}
        for ax, (key, label) in zip(axes[2], (('velocity', 'velocity component (Å/ps)'),
                                              ('force', 'force component (eV/Å)'))):
            entry = histograms[key]
            for window in (k for k in entry if k in ('before', 'after', 'start', 'end')):
                ax.stairs(entry[window], entry['edges'], label=window)
            ax.plot(entry['centres'], entry['model'], color='black', lw=1, ls='--', label=model_names[key])
            ax.set_xlabel(label)
            ax.set_ylabel('density')
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return figure_png(fig, dpi=100)
