"""Signals the explorer records at a check besides REMatch: GAP variance and the classical oracle.

* :class:`GapVariance` evaluates the GAP of the exploration once more with quippy and
  ``calc_args="local_gap_variance"``: energy (eV), forces (eV/Å), virial (eV) and the per-atom predictive
  variance of the GAP's local energy (eV^2; QUIP ``gp_predict``: k(x,x) - k^T (K_MM + jitter)^-1 k
  style posterior variance of each descriptor term, summed over the descriptors of an atom). It needs
  nothing beyond the GAP XML and its sparse-point files: the sparse points and hyperparameters are
  what QUIP builds the sparse covariance from, and the fit's ``sparse_jitter``
  (``science.gap.FIT_DEFAULTS``: 1e-8) regularises it, as in the fit. Checked on the GAP fits of this
  package (``tests/engines/test_signals.py``).
* :class:`ReferenceOracle` evaluates the classical reference (``science.potentials.ReferencePotential``
  generic form, ``atom_style`` atomic or charge) on a configuration in a second LAMMPS instance of the
  same process (``clear`` + ``read_data`` + the force field + ``run 0``): energy, forces and virial
  (from the virial pressure, ``science.lammps_md.virial_from_pressure``).

No AiiDA imports.
"""

from __future__ import annotations

import numpy as np

from aiida_mlfail.science import lammps_md
from aiida_mlfail.science.potentials import ReferencePotential
from aiida_mlfail.science.signals import frame_errors, physical_signals

ORACLE_DATA_FILE = 'oracle.data'
ORACLE_LOG_FILE = 'oracle.log'


class SignalError(RuntimeError):
    """A signal evaluator cannot be set up (GAP file, reference)."""


def gap_arguments(pair_commands: list[str], n_types: int):
    """The :class:`~aiida_mlfail.engines.gap_bridge.QuipCoeff` (xml, init args, Z per type) of GAP
    ``pair_style quip`` / ``pair_coeff`` commands.

    :raises SignalError: when no quip ``pair_coeff`` is among the commands or it is malformed.
    """
    from aiida_mlfail.engines.gap_bridge import BridgeError, parse_quip_pair_coeff, split_words  # noqa: PLC0415

    for command in pair_commands:
        words = split_words(command)
        if words and words[0] == 'pair_coeff':
            try:
                return parse_quip_pair_coeff(words, n_types)
            except BridgeError as exc:
                raise SignalError(str(exc)) from None
    raise SignalError(f'no quip pair_coeff among the GAP commands {pair_commands}')


class GapVariance:
    """The GAP of the exploration evaluated with its predictive variance (quippy).

    :param xml: GAP XML file; ``init_args``: the QUIP init string (``IP GAP ...``).
    :raises SignalError: when quippy cannot load the GAP.
    """

    def __init__(self, xml: str, init_args: str):
        from quippy.potential import Potential  # noqa: PLC0415

        try:
            self.potential = Potential(init_args, param_filename=xml, calc_args='local_gap_variance',
                                       calculation_always_required=True)
        except RuntimeError as exc:
            raise SignalError(f'quippy cannot load {xml!r} for the GAP variance: {exc}') from None

    def evaluate(self, atoms) -> dict:
        """``energy`` (eV), ``forces`` (n, 3) eV/Å, ``virial`` (3, 3) eV (QUIP virial = -stress x volume, ASE
        sign), ``local_variance`` (n,) eV^2, ``max_variance`` and ``mean_variance`` (eV^2) of ``atoms``.

        :raises ValueError: when quippy returns no ``local_gap_variance`` (a potential that is not a GAP).
        """
        atoms = atoms.copy()
        potential = self.potential
        potential.calculate(atoms, properties=['energy', 'forces', 'stress'],
                            system_changes=['positions', 'numbers', 'cell', 'pbc'])
        local = potential.extra_results.get('atoms', {}).get('local_gap_variance')
        if local is None:
            raise ValueError('quippy returned no local_gap_variance: the potential is not a GAP')
        local = np.array(local, dtype=float).reshape(-1)
        return {
            'energy': float(potential.results['energy']),
            'forces': np.array(potential.results['forces'], dtype=float),
            'virial': np.array(potential.extra_results['config']['virial'], dtype=float).reshape(3, 3),
            'local_variance': local,
            'max_variance': float(local.max()),
            'mean_variance': float(local.mean()),
        }


class ReferenceOracle:
    """The classical reference on single configurations, in its own LAMMPS instance.

    :param reference: a reference potential dict (``ReferencePotential.to_dict`` / generic form);
        its ``files`` must be in the working directory.
    :param type_map: not used for the types (the reference's own species order is), kept to check that
        the reference describes every species of the exploration.
    :raises SignalError: for an ``atom_style full`` reference (a topology is not supported here), a
        reference not describing the species, or an unusable reference dict.
    """

    def __init__(self, reference: dict, type_map):
        try:
            self.potential = ReferencePotential.from_dict(reference)
            self.potential.check_species(type_map)
        except ValueError as exc:
            raise SignalError(f'oracle reference: {exc}') from None
        if self.potential.atom_style == 'full':
            raise SignalError('oracle reference: atom_style full (a topology) is not supported by the oracle')
        self.lmp = None

    def evaluate(self, atoms) -> dict:
        """``energy`` (eV), ``forces`` (n, 3) eV/Å and ``virial`` (3, 3) eV of ``atoms`` (in atom order).

        The cell must be LAMMPS's lower-triangular form (as the explorer's configurations are), so the
        forces are in the frame of ``atoms``.

        :raises ValueError: for a cell that is not lower-triangular.
        :raises Exception: LAMMPS's exception for a failed evaluation.
        """
        from ase import Atoms  # noqa: PLC0415
        from ase.io import write  # noqa: PLC0415

        from aiida_mlfail.engines.lammps_lib import new_lammps  # noqa: PLC0415

        cell = np.asarray(atoms.cell[:])
        if abs(cell[0, 1]) > 1e-9 or abs(cell[0, 2]) > 1e-9 or abs(cell[1, 2]) > 1e-9:
            raise ValueError(f'the oracle needs a lower-triangular (LAMMPS) cell, got {cell.tolist()}')
        potential = self.potential
        symbols = atoms.get_chemical_symbols()
        frame = Atoms(symbols, positions=atoms.positions, cell=atoms.cell, pbc=True)
        if potential.atom_style == 'charge':
            frame.set_initial_charges(potential.atom_charges(symbols))
        write(ORACLE_DATA_FILE, frame, format='lammps-data', atom_style=potential.atom_style,
              specorder=list(potential.species), masses=True, units='metal')
        if self.lmp is None:
            self.lmp = new_lammps(['-log', ORACLE_LOG_FILE, '-screen', 'none'])
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR  # noqa: PLC0415 (after new_lammps's MPI preload)

        lmp = self.lmp
        lmp.command('clear')
        for command in ('units metal', f'atom_style {potential.atom_style}', 'atom_modify map array',
                        'boundary p p p', f'read_data {ORACLE_DATA_FILE}', *potential.lammps_commands(),
                        'compute oracle_virial all pressure NULL virial',
                        'thermo_style custom step pe vol c_oracle_virial[*]', 'run 0 post no'):
            lmp.command(command)
        n = int(lmp.extract_global('nlocal'))
        ids = np.array(lmp.numpy.extract_atom('id', nelem=n)[:n])
        forces = np.array(lmp.numpy.extract_atom('f', nelem=n)[:n], dtype=float)[np.argsort(ids)]
        pressure = np.array(lmp.numpy.extract_compute('oracle_virial', LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR), dtype=float)
        return {'energy': float(lmp.get_thermo('pe')), 'forces': forces,
                'virial': lammps_md.virial_from_pressure(pressure, float(lmp.get_thermo('vol')))}

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None


class SignalRecorder:
    """The signals of every check of an exploration and the novelty decision on them.

    :param config: the checked explorer input (``science.explore.read_engine_input``): its
        ``parameters`` (``novelty_signal``, ``critical_similarity``, ``critical_variance``, ``oracle``,
        ``temperature``), ``pair_commands``, ``type_map``, ``reference_volume`` and ``oracle_reference``.
    :raises SignalError: when the GAP (variance) or the oracle reference cannot be set up.
    """

    def __init__(self, config: dict):
        p = config['parameters']
        self.signal = p.get('novelty_signal', 'rematch')
        self.critical_similarity = p['critical_similarity']
        self.critical_variance = p.get('critical_variance')
        self.oracle_mode = bool(p.get('oracle'))
        self.target_temperature = float(p['temperature'])
        self.reference_volume = float(config['reference_volume'])
        self.start_energy: float | None = None
        self.rows: list[dict] = []
        self.novel_by: list[str] = []
        self.notes: list[str] = []
        self.variance = None
        self.oracle = None
        if self.uses_variance:
            coeff = gap_arguments(config['pair_commands'], len(config['type_map']))
            self.variance = GapVariance(coeff.xml, coeff.init_args)
        if self.oracle_mode:
            self.oracle = ReferenceOracle(config['oracle_reference'], config['type_map'])

    @property
    def uses_rematch(self) -> bool:
        """Whether the REMatch similarity is computed (``rematch``/``both``, or oracle mode: every signal)."""
        return self.signal in ('rematch', 'both') or self.oracle_mode

    @property
    def uses_variance(self) -> bool:
        """Whether the GAP variance is computed (``variance``/``both``, or oracle mode)."""
        return self.signal in ('variance', 'both') or self.oracle_mode

    def record(self, step: int, atoms, similarity, forces, thermo: dict, timings: dict | None = None) -> dict:
        """Append and return the row of :data:`~aiida_mlfail.science.signals.SIGNAL_COLUMNS` for ``atoms``.

        A failed variance or oracle evaluation leaves NaN in its columns and a note (:meth:`summary`).

        :param forces: (n, 3) eV/Å, the MD forces of ``atoms``; ``thermo``: LAMMPS ``temp`` (K),
            ``press`` (bar), ``pe`` (eV) of ``atoms``; ``timings``: seconds added to ``variance``/``oracle``.
        """
        import time  # noqa: PLC0415

        timings = {} if timings is None else timings
        start = self.start_energy if self.start_energy is not None else thermo['pe']
        row = {'step': step, 'similarity': similarity}
        row.update(physical_signals(atoms, forces, temperature=thermo['temp'], pressure=thermo['press'],
                                    potential_energy=thermo['pe'], start_energy=start,
                                    reference_volume=self.reference_volume,
                                    target_temperature=self.target_temperature))
        gap = None
        if self.variance is not None:
            t0 = time.perf_counter()
            try:
                gap = self.variance.evaluate(atoms)
                row.update(max_variance=gap['max_variance'], mean_variance=gap['mean_variance'])
            except Exception as exc:  # noqa: BLE001 (quippy raises RuntimeError or worse on broken frames)
                self.notes.append(f'step {step}: GAP variance failed: {exc}')
            timings['variance'] = timings.get('variance', 0.0) + time.perf_counter() - t0
        if self.oracle is not None and gap is not None:
            t0 = time.perf_counter()
            try:
                row.update(frame_errors(gap, self.oracle.evaluate(atoms)))
            except Exception as exc:  # noqa: BLE001 (LAMMPS raises a plain Exception)
                self.notes.append(f'step {step}: oracle evaluation failed: {" ".join(str(exc).split())}')
            timings['oracle'] = timings.get('oracle', 0.0) + time.perf_counter() - t0
        self.rows.append(row)
        return row

    def novelty(self, similarity, note: str, index, row: dict) -> list[tuple[str, str]]:
        """The novelty signals that fire on a checked configuration: ``[(signal, message), ...]``.

        ``rematch`` fires when the similarity is below ``critical_similarity`` or could not be computed
        (``note`` says why); ``variance`` when the largest local variance exceeds ``critical_variance``
        or could not be computed. Only the signals of ``novelty_signal`` are asked.
        """
        fired = []
        if self.signal in ('rematch', 'both'):
            if similarity is None:
                fired.append(('rematch', note))
            elif similarity < self.critical_similarity:
                fired.append(('rematch', f'similarity {similarity:.6g} < {self.critical_similarity:g} '
                                         f'(nearest reference {index})'))
        if self.signal in ('variance', 'both'):
            variance = row.get('max_variance')
            if variance is None or not np.isfinite(variance):
                fired.append(('variance', 'the GAP variance could not be computed'))
            elif variance > self.critical_variance:
                fired.append(('variance', f'largest local GAP variance {variance:.6g} eV^2 > '
                                          f'{self.critical_variance:g} eV^2'))
        return fired

    def summary(self, stop_step) -> dict:
        """Keys added to the explorer's results: ``novelty_signal``, ``critical_variance``, ``novel_by``
        (the signals that fired at a ``novel`` stop), ``oracle``, ``max_variance`` (of the stop
        configuration, eV^2, or ``None``), ``signal_notes`` (failed evaluations)."""
        variance = None
        for row in reversed(self.rows):
            if row['step'] == stop_step:
                value = row.get('max_variance')
                variance = float(value) if value is not None and np.isfinite(value) else None
                break
        return {'novelty_signal': self.signal, 'critical_variance': self.critical_variance,
                'novel_by': list(self.novel_by), 'oracle': self.oracle_mode, 'max_variance': variance,
                'signal_notes': list(self.notes)}

    def close(self) -> None:
        if self.oracle is not None:
            self.oracle.close()
