"""Failure forensics of a GAP MD run (thesis chapter 11): time series around the break and before/after histograms."""

from __future__ import annotations

import numpy as np

from aiida_mlfail.science import observables as obs


def frame_series(frames, timestep_fs: float) -> dict:
    """Per-frame series of a trajectory with velocities, forces and virials.

    :param timestep_fs: MD timestep, fs (frames carry ``info['md_step']``).
    :returns: arrays ``step``, ``time_ps``, ``temperature`` (K), ``afm`` (eV/Å), ``pressure`` and
        ``virial_pressure`` (bar), ``volume`` (Å^3), ``density`` (g/cm^3).
    """
    steps = np.array([a.info['md_step'] for a in frames])
    temperature = np.array([obs.kinetic_temperature(a) for a in frames])
    volume = np.array([a.get_volume() for a in frames])
    p_vir = np.array([obs.virial_pressure(a.info['virial'], a.get_volume()) for a in frames])
    return {
        'step': steps,
        'time_ps': steps * timestep_fs / 1000.0,
        'temperature': temperature,
        'afm': np.array([obs.average_force_magnitude(a.arrays['forces']) for a in frames]),
        'virial_pressure': p_vir,
        'pressure': np.array([obs.pressure(len(a), t, a.get_volume(), a.info['virial'])
                              for a, t in zip(frames, temperature)]),
        'volume': volume,
        'density': np.array([obs.mass_density(a) for a in frames]),
    }


def before_after_histograms(frames, break_index: int, bins: int = 40) -> dict:
    """Histograms of speeds (Å/ps) and force magnitudes (eV/Å) over the frames before vs from ``break_index``.

    :returns: ``{'speed': (edges, before, after), 'force': (edges, before, after)}`` with densities.
    """
    out = {}
    for key, getter in (('speed', lambda a: np.linalg.norm(a.arrays['velocities'], axis=1)),
                        ('force', lambda a: np.linalg.norm(a.arrays['forces'], axis=1))):
        before = np.concatenate([getter(a) for a in frames[:break_index]]) if break_index > 0 else np.array([])
        after = np.concatenate([getter(a) for a in frames[break_index:]]) if break_index < len(frames) else np.array([])
        everything = np.concatenate([before, after])
        edges = np.linspace(0.0, float(everything.max()) if everything.size else 1.0, bins + 1)
        hb = np.histogram(before, edges, density=True)[0] if before.size else np.zeros(bins)
        ha = np.histogram(after, edges, density=True)[0] if after.size else np.zeros(bins)
        out[key] = (edges, hb, ha)
    return out


def forensics_png(series: dict, histograms: dict | None = None, break_time_ps: float | None = None,
                  running_window: int = 10, title: str = '') -> bytes:
    """Figure of T (with running mean), AFM, P and P_vir, volume and density vs time, and before/after histograms.

    The breaking time is marked by a vertical line where given. Returns PNG bytes.
    """
    from aiida_mlfail.science.plots import figure_png, plt

    n_rows = 3 if histograms else 2
    fig, axes = plt.subplots(n_rows, 2, figsize=(10, 3.0 * n_rows))
    t = series['time_ps']
    panels = [
        (axes[0, 0], 'temperature (K)', [(series['temperature'], 'T'),
                                          (obs.running_mean(series['temperature'], running_window), 'running mean')]),
        (axes[0, 1], 'AFM (eV/Å)', [(series['afm'], 'AFM')]),
        (axes[1, 0], 'pressure (bar)', [(series['pressure'], 'P'), (series['virial_pressure'], 'P_vir')]),
        (axes[1, 1], 'volume (Å^3)', [(series['volume'], 'V')]),
    ]
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
            ax.axvline(break_time_ps, color='red', ls='--', lw=1)
    if histograms:
        for ax, (key, label) in zip(axes[2], (('speed', 'speed (Å/ps)'), ('force', '|F| (eV/Å)'))):
            edges, before, after = histograms[key]
            centres = 0.5 * (edges[1:] + edges[:-1])
            ax.plot(centres, before, label='before break')
            ax.plot(centres, after, label='after break')
            ax.set_xlabel(label)
            ax.set_ylabel('density')
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return figure_png(fig, dpi=100)
