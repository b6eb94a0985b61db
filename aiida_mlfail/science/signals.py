"""Failure signals of an exploration and the GAP's true errors next to them (no AiiDA).

At every check of an exploration (:mod:`aiida_mlfail.engines.explore`) the engine records one row
of :data:`SIGNAL_COLUMNS`:

* the novelty signals: the largest normalised REMatch similarity to the training configurations
  (De et al., PCCP 18, 13754 (2016)) and the GAP's predictive variance of the local energy
  (quippy ``calc_args="local_gap_variance"``; the largest and the mean over the atoms, eV^2, see
  :class:`aiida_mlfail.engines.signals.GapVariance`);
* the physical observables the thesis looked at: temperature (K), average force magnitude ``afm``
  (mean over atoms of the norm of the GAP force on each atom, eV/Å), pressure (bar) and virial pressure
  ``p_virial = P - N k_B T / V`` (bar, LAMMPS ``compute pressure`` convention);
* the guards' quantities (:mod:`aiida_mlfail.science.mlmd`): ``volume_ratio`` V / V_ref, ``min_distance``
  (Å, the shortest interatomic distance), ``energy_change_per_atom`` (eV/atom, potential energy minus
  that of the start), ``temperature_ratio`` T / T_target;
* in oracle (calibration) mode, the GAP's errors against the classical reference evaluated on the
  same configuration (:func:`frame_errors`): ``energy_error_per_atom`` (eV/atom),
  ``force_rmse`` and ``force_max_error`` (eV/Å), ``virial_error_per_atom`` (eV/atom); NaN without an oracle.

Units: eV, Å, K, bar (LAMMPS ``metal``).
"""

from __future__ import annotations

import math

import numpy as np

from aiida_mlfail.science.lammps_md import NKTV2P_METAL

#: Boltzmann constant of LAMMPS ``units metal`` (eV/K, LAMMPS ``update.cpp``).
BOLTZMANN_EV = 8.617343e-5

#: Columns of :data:`SIGNALS_FILE` with their units.
SIGNAL_COLUMNS = (
    ('step', ''),
    ('similarity', ''),
    ('max_variance', 'eV^2'),
    ('mean_variance', 'eV^2'),
    ('temperature', 'K'),
    ('afm', 'eV/Å'),
    ('pressure', 'bar'),
    ('p_virial', 'bar'),
    ('volume_ratio', ''),
    ('min_distance', 'Å'),
    ('energy_change_per_atom', 'eV/atom'),
    ('temperature_ratio', ''),
    ('energy_error_per_atom', 'eV/atom'),
    ('force_rmse', 'eV/Å'),
    ('force_max_error', 'eV/Å'),
    ('virial_error_per_atom', 'eV/atom'),
)
#: The column names of :data:`SIGNAL_COLUMNS`.
SIGNAL_NAMES = tuple(name for name, _unit in SIGNAL_COLUMNS)
#: The error columns of an oracle run.
ERROR_NAMES = ('energy_error_per_atom', 'force_rmse', 'force_max_error', 'virial_error_per_atom')
#: The signals a calibration rates, and whether a *low* value announces a failure (REMatch similarity,
#: the shortest distance) or a high one (everything else).
DETECTORS = {
    'similarity': 'low', 'max_variance': 'high', 'mean_variance': 'high', 'temperature': 'high', 'afm': 'high',
    'pressure': 'high', 'p_virial': 'high', 'volume_ratio': 'high', 'min_distance': 'low',
    'energy_change_per_atom': 'high', 'temperature_ratio': 'high',
}
#: Output file of the explorer engine: one row of :data:`SIGNAL_COLUMNS` per check.
SIGNALS_FILE = 'signals.dat'

#: Novelty signals of the explorer (``novelty_signal``).
NOVELTY_SIGNALS = ('rematch', 'variance', 'both')


def frame_errors(gap: dict, reference: dict) -> dict:
    """The GAP's errors on one configuration against the reference evaluated on the same configuration.

    :param gap: ``energy`` (eV), ``forces`` (n, 3) eV/Å, ``virial`` (3, 3) eV of the GAP.
    :param reference: the same keys from the reference.
    :returns: ``energy_error_per_atom`` = abs(E_gap - E_ref) / n (eV/atom), ``force_rmse`` = sqrt(mean over
        the 3n components of (F_gap - F_ref)^2) (eV/Å), ``force_max_error`` = the largest norm over atoms of
        F_gap,i - F_ref,i (eV/Å), ``virial_error_per_atom`` = sqrt(mean over the
        9 components of (W_gap - W_ref)^2) / n (eV/atom).
    :raises ValueError: for force arrays of different shapes or no atom.
    """
    f_gap = np.asarray(gap['forces'], dtype=float)
    f_ref = np.asarray(reference['forces'], dtype=float)
    if f_gap.shape != f_ref.shape or f_gap.ndim != 2 or f_gap.shape[1] != 3 or not len(f_gap):
        raise ValueError(f'force arrays of shapes {f_gap.shape} (GAP) and {f_ref.shape} (reference): expected the '
                         'same (n, 3) with n > 0')
    n = len(f_gap)
    diff = f_gap - f_ref
    virial = np.asarray(gap['virial'], dtype=float).reshape(3, 3) - np.asarray(reference['virial'],
                                                                              dtype=float).reshape(3, 3)
    return {
        'energy_error_per_atom': abs(float(gap['energy']) - float(reference['energy'])) / n,
        'force_rmse': float(np.sqrt(np.mean(diff**2))),
        'force_max_error': float(np.max(np.linalg.norm(diff, axis=1))),
        'virial_error_per_atom': float(np.sqrt(np.mean(virial**2))) / n,
    }


def physical_signals(atoms, forces, *, temperature: float, pressure: float, potential_energy: float,
                     start_energy: float, reference_volume: float, target_temperature: float,
                     distance_cutoff: float = 6.0) -> dict:
    """The physical observables and guard quantities of one configuration.

    :param atoms: ``ase.Atoms`` (periodic), Å.
    :param forces: (n, 3) GAP forces, eV/Å.
    :param temperature: K; ``pressure``: bar (LAMMPS ``press``, kinetic + virial);
        ``potential_energy`` and ``start_energy``: eV; ``reference_volume``: Å^3 (the volume guard's);
        ``target_temperature``: K (the thermostat's).
    :param distance_cutoff: Å, the radius searched for the shortest distance (``inf`` when no pair is closer).
    :returns: ``temperature``, ``afm``, ``pressure``, ``p_virial`` (= P - N k_B T / V in bar),
        ``volume_ratio``, ``min_distance``, ``energy_change_per_atom``, ``temperature_ratio``.
    """
    from ase.neighborlist import neighbor_list  # noqa: PLC0415

    n = len(atoms)
    volume = float(atoms.get_volume())
    forces = np.asarray(forces, dtype=float).reshape(n, 3)
    distances = neighbor_list('d', atoms, distance_cutoff) if np.isfinite(atoms.positions).all() else np.array([])
    return {
        'temperature': float(temperature),
        'afm': float(np.mean(np.linalg.norm(forces, axis=1))),
        'pressure': float(pressure),
        'p_virial': float(pressure) - n * BOLTZMANN_EV * float(temperature) / volume * NKTV2P_METAL,
        'volume_ratio': volume / float(reference_volume),
        'min_distance': float(distances.min()) if distances.size else math.inf,
        'energy_change_per_atom': (float(potential_energy) - float(start_energy)) / n,
        'temperature_ratio': float(temperature) / float(target_temperature),
    }


def signals_table(rows) -> str:
    """Text of :data:`SIGNALS_FILE` from dicts keyed by :data:`SIGNAL_NAMES` (missing or ``None``: NaN)."""
    header = '# ' + ' '.join(f'{name}({unit})' if unit else name for name, unit in SIGNAL_COLUMNS)
    lines = [header]
    for row in rows:
        values = [row.get(name) for name in SIGNAL_NAMES]
        lines.append(' '.join(repr(float('nan') if v is None else float(v)) for v in values))
    return '\n'.join(lines) + '\n'


def numeric_table(text: str, n_columns: int, name: str) -> np.ndarray:
    """The numbers of a whitespace-separated text table (blank and ``#`` lines skipped) as an (n_rows, n_columns)
    float array (the explorer's similarity, thermo and signal files).

    :param name: the file's name, for the error message.
    :raises ValueError: naming the file and line, on a line without ``n_columns`` numbers.
    """
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        parts = line.split()
        try:
            if len(parts) != n_columns:
                raise ValueError
            rows.append([float(v) for v in parts])
        except ValueError:
            raise ValueError(f'{name} line {number}: expected {n_columns} numbers, got {line!r}') from None
    return np.array(rows, dtype=float).reshape(-1, n_columns)


def parse_signals(text: str) -> dict[str, np.ndarray]:
    """Parse :data:`SIGNALS_FILE`: one float array per :data:`SIGNAL_NAMES` (``step`` as int).

    :raises ValueError: on a line without one number per column.
    """
    table = numeric_table(text, len(SIGNAL_NAMES), SIGNALS_FILE)
    series = {name: table[:, k] for k, name in enumerate(SIGNAL_NAMES)}
    series['step'] = series['step'].astype(int)
    return series
