"""``mlfail-explore [explore.json]``: GAP MD that runs until a novel configuration or a failure.

The explorer of the active learner (``science.explore`` has the parameters and file formats).
It reads, in the working directory,

* ``explore.json`` (``science.explore.engine_input``): normalised parameters, the LAMMPS type map,
  the GAP ``pair_style quip`` / ``pair_coeff`` commands and the reference volume (Å^3);
* ``structure.data``: the start structure (LAMMPS data file, ``atom_style atomic``);
* the GAP files named by the ``pair_coeff``;
* ``references.xyz``: the training configurations, whose per-atom SOAP spectra it computes first
  (``science.explore.read_references``; the time is ``timings['reference_soap']`` of the results), and
  from which it resolves the distance guard per species pair (``science.mlmd.guard_distances``).

It sets up GAP MD in LAMMPS with the script of ``science.explore.explore_script`` (through the
``fix external`` + quippy bridge of :mod:`~aiida_mlfail.engines.gap_bridge` when the LAMMPS library
has no ML-QUIP), evaluates the start configuration (``run 0``; its potential energy is the
reference of the energy guard, ``science.mlmd.energy_start_commands``), then runs ``comparison_step`` steps at a time
(``run N pre no post no``). After each chunk it looks for a tripped ``fix halt`` guard in the
LAMMPS log (https://docs.lammps.org/fix_halt.html), takes the current configuration, computes its
SOAP spectra and its largest REMatch similarity to the references
(:class:`~aiida_mlfail.science.rematch.RematchIndex`; De et al., PCCP 18, 13754 (2016)), prints a
progress line and stops when the similarity is below ``critical_similarity``. LAMMPS errors
(lost atoms, a failed GAP evaluation ...) end the exploration too.

Checkpoints: after a passed novelty check at least ``checkpoint_interval`` steps after the last
checkpoint (``science.explore.checkpoint_due``) it writes a LAMMPS restart file (``write_restart``,
``checkpoint/lammps.<step>.restart``) and then its own state (``checkpoint/state.json``,
``science.explore.checkpoint_state``: step, similarity and thermo rows so far, the start energy of the
energy guard, the input fingerprint), replacing the state file atomically and only then deleting the older
restart file, so a job killed at any moment leaves a consistent checkpoint. When the working directory holds
``checkpoint/state.json`` at the start (the CalcJob copies the folder from the previous job's remote folder,
its ``parent_folder`` input), the engine continues from it: ``read_restart`` of the file it names
(``science.explore.explore_script`` says what LAMMPS keeps in a restart file and what the script issues
again; the explorer draws no random numbers, its Nose-Hoover thermostat has none, and ``velocity create``
is not repeated), the checks and thermo rows up to the checkpoint are taken from the state (neither run nor
counted twice) and the outputs cover the whole exploration. A checkpoint of another exploration (other
parameters except ``max_steps`` / ``checkpoint_interval``, structure or references) is a set-up failure.

It writes ``explore_results.json``, ``similarity.dat``, ``thermo.dat``, ``trigger.xyz`` (the
configuration at the stop, ``md_step``, ``similarity``, ``reference_index``, ``stop_reason`` in its
info) and, when the stop is not a novelty or the end (a guard, a LAMMPS error),
``previous.xyz`` (the last configuration that passed the novelty check). The exit status is 0
whenever these were written, whatever the stop reason; 1 for a set-up failure (missing or bad
input files, a GAP that cannot be loaded, a LAMMPS error in the set-up script) with the reason on
stderr; 2 for a bad command line. No AiiDA imports.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from aiida_mlfail.engines.signals import SignalError, SignalRecorder
from aiida_mlfail.science import explore as sx
from aiida_mlfail.science import mlmd
from aiida_mlfail.science.pair_distances import close_pairs
from aiida_mlfail.science.signals import SIGNALS_FILE, signals_table

USAGE = 'usage: mlfail-explore [explore.json]'


class SetupError(RuntimeError):
    """The exploration cannot start (input files missing or inconsistent, LAMMPS set-up failed)."""


def _finite(value):
    """JSON-safe number: ``None`` for ``None``, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class Explorer:
    """One exploration: LAMMPS instance, SOAP descriptor, REMatch index and the series collected.

    :param config: the checked content of ``explore.json`` (``science.explore.read_engine_input``).
    :param references: per-configuration ``(n_atoms_j, n_features)`` reference SOAP matrices.
    :raises SetupError: if the references have another feature count than the SOAP descriptor.
    """

    def __init__(self, config: dict, references):
        from aiida_mlfail.science.rematch import RematchIndex  # noqa: PLC0415
        from aiida_mlfail.science.soap import soap_descriptor  # noqa: PLC0415

        self.config = config
        self.p = p = config['parameters']
        self.type_map = config['type_map']
        self.descriptor = soap_descriptor(p['soap'])
        n_features = int(self.descriptor.get_number_of_features())
        if references[0].shape[1] != n_features:
            raise SetupError(f'{sx.REFERENCE_FILE} has {references[0].shape[1]} features per atom, the SOAP '
                             f'descriptor {n_features}')
        try:
            self.index = RematchIndex(references, alpha=p['alpha'], threshold=p['threshold'])
        except ValueError as exc:
            raise SetupError(f'{sx.REFERENCE_FILE}: {exc}') from None
        self.lmp = None
        self.callbacks = []
        self.n_atoms = 0
        try:
            self.signals = SignalRecorder(config)
        except SignalError as exc:
            raise SetupError(str(exc)) from None
        self.similarity_rows: list[tuple] = []
        self.thermo_rows: list[list[float]] = []
        self.previous = None  # last configuration that passed the novelty check
        self.close_pairs = None  # after a per-pair too_close_atoms stop: [{pair, distance, limit}]
        self.timings = {'setup': 0.0, 'md': 0.0, 'soap': 0.0, 'rematch': 0.0, 'variance': 0.0, 'oracle': 0.0}
        self._log_offset = 0
        self.step = 0  # the MD step reached
        self.fingerprint = None  # science.explore.input_fingerprint of the exploration (from_files)
        self.resume = None  # the checkpoint state continued from (science.explore.read_checkpoint_state)
        self.start_energy = None  # eV, the energy guard's reference
        self.checkpoint_step = None  # the newest checkpoint in the working directory
        self.resumed_from: list[int] = []
        self._fixes_changed = False  # a fix was (re)defined: the next run needs 'pre yes'

    @classmethod
    def from_files(cls, input_file: str = sx.INPUT_FILE) -> Explorer:
        """Read the input files of the working directory (see the module doc).

        :raises SetupError: naming the missing or bad file.
        """
        try:
            with open(input_file, encoding='utf-8') as handle:
                config = sx.read_engine_input(handle.read())
        except OSError as exc:
            raise SetupError(f'cannot read the explorer input {input_file!r}: {exc.strerror}') from None
        except ValueError as exc:
            raise SetupError(f'{input_file}: {exc}') from None
        for key in ('data_file', 'reference_file'):
            if not os.path.isfile(config[key]):
                raise SetupError(f'{key.replace("_", " ")} {config[key]!r} not found in {os.getcwd()}')
        started = time.perf_counter()
        try:
            configurations, references = sx.read_references(config['reference_file'], config['parameters']['soap'])
            guards = config['parameters']['guards']  # the distance guard per pair from the training configurations
            guards['min_distance'] = mlmd.guard_distances(guards['min_distance'], config['type_map'], configurations)
        except ValueError as exc:
            raise SetupError(str(exc)) from None
        explorer = cls(config, references)
        explorer.timings['reference_soap'] = time.perf_counter() - started
        files = {}
        for key in ('data_file', 'reference_file'):
            with open(config[key], 'rb') as handle:
                files[config[key]] = handle.read()
        explorer.fingerprint = sx.input_fingerprint(config, files)
        if os.path.isfile(sx.CHECKPOINT_STATE_FILE):
            try:
                with open(sx.CHECKPOINT_STATE_FILE, encoding='utf-8') as handle:
                    state = sx.read_checkpoint_state(handle.read(), explorer.fingerprint)
            except ValueError as exc:
                raise SetupError(str(exc)) from None
            if not os.path.isfile(state['restart_file']):
                raise SetupError(f"{sx.CHECKPOINT_STATE_FILE} names the restart file {state['restart_file']!r}, "
                                 'which is not there')
            if state['step'] > config['parameters']['max_steps']:
                raise SetupError(f"the checkpoint is at step {state['step']}, after max_steps "
                                 f"{config['parameters']['max_steps']}")
            explorer.resume = state
        return explorer

    # -- LAMMPS ----------------------------------------------------------------------------------

    def setup_lammps(self) -> None:
        """Write and execute the set-up script (GAP MD with guards, no run), then ``run 0``.

        After the ``run 0`` the potential energy of the start configuration is stored in the LAMMPS
        variable ``science.mlmd.ENERGY_START_VARIABLE`` (``science.mlmd.energy_start_commands``):
        the energy guard (``energy_runaway``) compares ``pe`` with it at every step.

        :raises SetupError: for a script the GAP bridge cannot serve, a LAMMPS error, or a
            non-finite potential energy of the start configuration.
        """
        from ase.io import read  # noqa: PLC0415

        from aiida_mlfail.engines.gap_bridge import BridgeError, run_input  # noqa: PLC0415
        from aiida_mlfail.engines.lammps_lib import new_lammps  # noqa: PLC0415

        start = time.perf_counter()
        config, p = self.config, self.p
        try:
            atoms = read(config['data_file'], format='lammps-data', atom_style='atomic', units='metal')
        except Exception as exc:  # noqa: BLE001 (any reader failure is a bad input file)
            raise SetupError(f"cannot read the LAMMPS data file {config['data_file']!r}: {exc}") from None
        self.n_atoms = len(atoms)
        resume = self.resume
        script = sx.explore_script(config['pair_commands'], self.type_map, p, self.n_atoms,
                                   config['reference_volume'], config['data_file'],
                                   restart_file=None if resume is None else resume['restart_file'])
        with open(sx.SCRIPT_FILE, 'w', encoding='utf-8') as handle:
            handle.write(script)
        self.lmp = new_lammps(['-log', sx.LOG_FILE, '-screen', 'none'])
        try:
            runner = run_input(self.lmp, sx.SCRIPT_FILE)
            self.callbacks = runner.callbacks if runner is not None else []
            self.lmp.command('run 0 post no')
            self._check_callbacks()
            start_energy = float(self.lmp.get_thermo('pe'))
            if not math.isfinite(start_energy):
                raise SetupError(f'the potential energy of the start configuration is {start_energy} eV: the GAP '
                                 'cannot evaluate it, so there is nothing to explore')
            if resume is None:
                for command in mlmd.energy_start_commands():  # the energy guard's reference: pe after this run 0
                    self.lmp.command(command)
                self.start_energy = start_energy
            else:  # the start energy of the exploration, not of the checkpoint configuration
                self.start_energy = float(resume['start_energy'])
                self.lmp.command(f'variable {mlmd.ENERGY_START_VARIABLE} equal {self.start_energy!r}')
            self.signals.start_energy = self.start_energy
        except SetupError:
            raise
        except BridgeError as exc:
            raise SetupError(f'GAP set-up failed: {exc}') from None
        except Exception as exc:  # noqa: BLE001 (LAMMPS raises a plain Exception with its message)
            raise SetupError(f'LAMMPS set-up failed: {str(exc).strip()}') from None
        if resume is None:
            self.thermo_rows.append([float(self.lmp.get_thermo(k)) for k in sx.THERMO_KEYWORDS])
        else:
            step = int(self.lmp.extract_global('ntimestep'))
            if step != resume['step']:
                raise SetupError(f"the restart file {resume['restart_file']!r} is at step {step}, its state at step "
                                 f"{resume['step']}")
            self.thermo_rows = [list(row) for row in resume['thermo']]
            self.similarity_rows = list(resume['similarity'])
            self.signals.rows = [dict(row) for row in resume.get('signals', [])]
            self.step = self.checkpoint_step = step
            self.resumed_from = [*resume['resumed_from'], step]
            print(sx.CONTINUE_LINE.format(step=step, restart_file=resume['restart_file']), flush=True)
        self.timings['setup'] += time.perf_counter() - start

    def _check_callbacks(self) -> None:
        from aiida_mlfail.engines.gap_bridge import BridgeError  # noqa: PLC0415

        for callback in self.callbacks:
            if callback.error is not None:
                error, callback.error = callback.error, None
                raise BridgeError(f'GAP evaluation failed: {type(error).__name__}: {error}')

    def _new_log(self) -> str:
        """The LAMMPS log written since the last call."""
        self.lmp.flush_buffers()
        try:
            with open(sx.LOG_FILE, 'rb') as handle:
                handle.seek(self._log_offset)
                data = handle.read()
        except OSError:
            return ''
        self._log_offset += len(data)
        return data.decode(errors='replace')

    def configuration(self):
        """The current configuration as ``ase.Atoms`` (sorted by atom id, positions relative to boxlo)."""
        lmp = self.lmp
        nlocal = int(lmp.extract_global('nlocal'))
        boxlo, boxhi, xy, yz, xz, _periodicity, _ = lmp.extract_box()
        extract = lmp.numpy.extract_atom
        return sx.lammps_atoms(boxlo, boxhi, (xy, xz, yz), np.array(extract('x', nelem=nlocal)[:nlocal]),
                               np.array(extract('type', nelem=nlocal)[:nlocal]),
                               np.array(extract('id', nelem=nlocal)[:nlocal]), self.type_map)

    # -- novelty ---------------------------------------------------------------------------------

    def similarity(self, atoms) -> tuple[float | None, int | None, str]:
        """Largest normalised REMatch similarity of ``atoms`` to the references, its index, and a note.

        When the spectra cannot be computed or compared (``ValueError`` of ``science.soap`` or
        ``science.rematch``, e.g. non-finite positions, an empty spectrum), ``(None, None, reason)``
        is returned; a regular check then counts the configuration as novel (it resembles no
        training configuration), a guard or error stop records no similarity.
        """
        from aiida_mlfail.science.soap import normalised_features  # noqa: PLC0415

        t0 = time.perf_counter()
        try:
            (features,) = normalised_features(self.descriptor, atoms)
        except ValueError as exc:
            return None, None, str(exc)
        finally:
            self.timings['soap'] += time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            value, index = self.index.max_similarity(features)
        except ValueError as exc:  # non-finite positions give non-finite spectra
            return None, None, str(exc)
        finally:
            self.timings['rematch'] += time.perf_counter() - t1
        return float(value), int(index), ''

    def _check(self, step: int, atoms) -> dict | None:
        """Novelty check of ``atoms`` at ``step``; a stop dict when it is novel (never in oracle mode).

        The signals of ``novelty_signal`` decide (:meth:`SignalRecorder.novelty`); every signal
        computed is recorded (:meth:`SignalRecorder.record`).
        """
        if self.signals.uses_rematch:
            value, index, note = self.similarity(atoms)
        else:
            value, index, note = None, None, 'REMatch not computed (novelty_signal variance)'
        self.similarity_rows.append((step, value, index))
        row = self.record_signals(step, atoms, value)
        critical = self.p['critical_similarity']
        shown = 'n/a' if value is None else f'{value:.6f}'
        variance = row.get('max_variance')
        extra = '' if variance is None or not math.isfinite(variance) else f'  max GAP variance {variance:.3g} eV^2'
        print(f'step {step:>9d}  similarity {shown}  nearest reference {index}  (critical {critical:g}){extra}',
              flush=True)
        fired = self.signals.novelty(value, note, index, row)
        if fired and not self.p['oracle']:
            self.signals.novel_by = [name for name, _message in fired]
            message = '; '.join(message for _name, message in fired)
            return self._stop('novel', step, atoms, value, index, f'novel configuration at step {step}: {message}')
        self.previous = (atoms, step, value, index)
        return None

    def record_signals(self, step: int, atoms, similarity) -> dict:
        """Record the signals (and in oracle mode the GAP's errors) of the current configuration."""
        lmp = self.lmp
        n = int(lmp.extract_global('nlocal'))
        ids = np.array(lmp.numpy.extract_atom('id', nelem=n)[:n])
        forces = np.array(lmp.numpy.extract_atom('f', nelem=n)[:n], dtype=float)[np.argsort(ids)]
        thermo = {k: float(lmp.get_thermo(k)) for k in ('temp', 'press', 'pe')}
        return self.signals.record(step, atoms, similarity, forces, thermo, self.timings)

    def _stop(self, reason, step, atoms, value=None, index=None, message='', guard_value=None) -> dict:
        return {'stop_reason': reason, 'stop_step': step, 'atoms': atoms, 'similarity': value,
                'reference_index': index, 'message': message, 'guard_value': guard_value}

    def _error_stop(self, message: str, reason: str | None = None) -> dict:
        """Stop after a LAMMPS/GAP error: the current configuration only if no atom was lost."""
        reason = reason or sx.classify_lammps_error(message)
        step, atoms = None, None
        try:
            step = self.step = int(self.lmp.extract_global('ntimestep'))
            atoms = self.configuration()
            if len(atoms) != self.n_atoms or not np.isfinite(atoms.positions).all():
                atoms = None
        except Exception:  # noqa: BLE001 (best effort after an error)
            atoms = None
        value = index = None
        if atoms is not None:
            value, index, _ = self.similarity(atoms)
            self.similarity_rows.append((step, value, index))
        return self._stop(reason, step, atoms, value, index, message)

    def run(self) -> dict:
        """Explore: the start configuration, then chunks of ``comparison_step`` steps up to ``max_steps``.

        :returns: the stop dict (``stop_reason``, ``stop_step``, ``atoms``, ``similarity``,
            ``reference_index``, ``message``, ``guard_value``).
        """
        from aiida_mlfail.engines.gap_bridge import BridgeError  # noqa: PLC0415

        lmp, p = self.lmp, self.p
        self._new_log()
        if self.resume is None:
            stop = self._check(0, self.configuration())
            if stop is not None:
                return stop
            step = 0
        else:  # the checks up to the checkpoint are in the state; its configuration passed the last one
            step = self.step
            _step, value, index = self.similarity_rows[-1]
            self.previous = (self.configuration(), step, value, index)
        last_checkpoint = step
        for target in sx.check_steps(p['max_steps'], p['comparison_step']):
            if target <= step:
                continue
            t0 = time.perf_counter()
            try:
                # a fix defined since the last run (the thermo fix print after a checkpoint) needs the set-up
                lmp.command(f"run {target - step} pre {'yes' if self._fixes_changed else 'no'} post no")
                self._fixes_changed = False
                self._check_callbacks()
            except BridgeError as exc:
                return self._error_stop(str(exc), 'lammps_error')
            except Exception as exc:  # noqa: BLE001 (LAMMPS raises a plain Exception with its message)
                return self._error_stop(lammps_message(str(exc)))
            finally:
                self.timings['md'] += time.perf_counter() - t0
            step = self.step = int(lmp.extract_global('ntimestep'))
            halt = mlmd.parse_stop(self._new_log())
            if halt['stop_reason'] in sx.GUARD_REASONS:
                atoms = self.configuration()
                value, index, _ = self.similarity(atoms)
                self.similarity_rows.append((step, value, index))
                self.record_signals(step, atoms, value)
                message = halt['message']
                limits = p['guards']['min_distance']
                if halt['stop_reason'] == 'too_close_atoms' and isinstance(limits, dict):
                    # the per-pair guard's halt value is a count of close contacts: name the pairs
                    self.close_pairs = close_pairs(atoms, limits)
                    message += ' (close contacts); ' + ', '.join(
                        f"{c['pair']} {c['distance']:.3f} Å < {c['limit']:.3f} Å" for c in self.close_pairs)
                print(f"step {step:>9d}  guard {halt['stop_reason']}: {message}", flush=True)
                return self._stop(halt['stop_reason'], step, atoms, value, index, message, halt['value'])
            if step != target:
                return self._error_stop(f'the run stopped at step {step} instead of {target} without a guard '
                                        'message', 'lammps_error')
            stop = self._check(step, self.configuration())
            if stop is not None:
                return stop
            if sx.checkpoint_due(step, last_checkpoint, p['checkpoint_interval']):
                self.write_checkpoint(step)
                last_checkpoint = step
        atoms, step, value, index = self.previous
        return self._stop('max_steps', step, atoms, value, index,
                          f"no novel configuration and no failure in {p['max_steps']} steps")

    def write_checkpoint(self, step: int) -> None:
        """LAMMPS restart file, then the state naming it (replaced atomically), then the older restart file removed.

        :param step: the current MD step, whose novelty check just passed.
        """
        t0 = time.perf_counter()
        os.makedirs(sx.CHECKPOINT_DIR, exist_ok=True)
        restart_file = f'{sx.CHECKPOINT_DIR}/lammps.{step}.restart'
        self.lmp.command(f'write_restart {restart_file}')
        self.lmp.command(f'unfix {sx.THERMO_FIX_ID}')  # closes (flushes) the thermo file: its rows up to this step
        self.lmp.command(sx.thermo_print_command(int(self.p['thermo_interval']), append=True))
        self._fixes_changed = True
        thermo = [row for row in self.thermo() if row[0] <= step]
        state = sx.checkpoint_state(step, restart_file, self.fingerprint, self.start_energy, self.similarity_rows,
                                    thermo, self.resumed_from, self.signals.rows)
        temporary = sx.CHECKPOINT_STATE_FILE + '.tmp'
        with open(temporary, 'w', encoding='utf-8') as handle:
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, sx.CHECKPOINT_STATE_FILE)
        for name in os.listdir(sx.CHECKPOINT_DIR):
            if name.endswith('.restart') and f'{sx.CHECKPOINT_DIR}/{name}' != restart_file:
                os.remove(os.path.join(sx.CHECKPOINT_DIR, name))
        self.checkpoint_step = step
        self.timings['checkpoint'] = self.timings.get('checkpoint', 0.0) + time.perf_counter() - t0
        print(sx.CHECKPOINT_LINE.format(step=step, restart_file=restart_file), flush=True)

    # -- outputs ---------------------------------------------------------------------------------

    def thermo(self) -> list[list[float]]:
        """Step-0 thermo row (or the rows of the checkpoint continued from) plus the ``fix print`` rows, the first
        of each step (read after LAMMPS closed its file)."""
        rows = list(self.thermo_rows)
        if os.path.isfile(sx.RAW_THERMO_FILE):
            with open(sx.RAW_THERMO_FILE, encoding='utf-8', errors='replace') as handle:
                text = handle.read()
            try:
                table = sx.parse_thermo_table(text)
            except ValueError:  # a line cut by a crash: keep the complete ones
                table = sx.parse_thermo_table('\n'.join(text.splitlines()[:-1]))
            seen = {row[0] for row in rows}
            for row in np.column_stack(list(table.values())):
                if row[0] not in seen:  # the first row of a step (a redefined fix print repeats its step)
                    seen.add(row[0])
                    rows.append([float(v) for v in row])
        return rows

    def write_outputs(self, stop: dict, started: float) -> dict:
        """Write every output file; returns the results dict written to ``explore_results.json``."""
        from ase.io import write  # noqa: PLC0415

        for name in (sx.TRIGGER_FILE, sx.PREVIOUS_FILE):
            if os.path.exists(name):
                os.remove(name)
        if stop['atoms'] is not None:
            write(sx.TRIGGER_FILE, _annotated(stop['atoms'], stop['stop_step'], stop['similarity'],
                                              stop['reference_index'], stop['stop_reason']), format='extxyz')
        previous = None
        if stop['stop_reason'] not in ('novel', 'max_steps') and self.previous is not None:
            atoms, step, value, index = self.previous
            write(sx.PREVIOUS_FILE, _annotated(atoms, step, value, index, 'previous'), format='extxyz')
            previous = {'step': step, 'similarity': value, 'reference_index': index}
        with open(sx.SIMILARITY_FILE, 'w', encoding='utf-8') as handle:
            handle.write(sx.similarity_table(self.similarity_rows))
        with open(SIGNALS_FILE, 'w', encoding='utf-8') as handle:
            handle.write(signals_table(self.signals.rows))
        with open(sx.THERMO_FILE, 'w', encoding='utf-8') as handle:
            handle.write(sx.thermo_table(self.thermo()))
        if os.path.exists(sx.RAW_THERMO_FILE):
            os.remove(sx.RAW_THERMO_FILE)
        values = [v for _s, v, _i in self.similarity_rows if v is not None]
        results = {
            'stop_reason': stop['stop_reason'],
            'stop_step': stop['stop_step'],
            'steps_run': int(self.step),
            'similarity': _finite(stop['similarity']),
            'reference_index': stop['reference_index'],
            'min_similarity': _finite(min(values)) if values else None,
            'n_checks': len(self.similarity_rows),
            'message': stop['message'],
            'guard_value': _finite(stop['guard_value']),
            'critical_similarity': self.p['critical_similarity'],
            'n_atoms': self.n_atoms,
            'n_references': len(self.index),
            'previous': previous,
            'guard_distances': self.p['guards']['min_distance'],
            'close_pairs': self.close_pairs,
            'checkpoint_step': self.checkpoint_step,
            'resumed_from': self.resumed_from,
            **self.signals.summary(stop['stop_step']),
            'timings': {k: round(v, 4) for k, v in {**self.timings, 'total': time.perf_counter() - started}.items()},
        }
        with open(sx.RESULTS_FILE, 'w', encoding='utf-8') as handle:
            json.dump(results, handle, indent=1, allow_nan=False)
        return results

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None
        self.signals.close()


def lammps_message(message: str) -> str:
    """A LAMMPS exception message on one line, without the ``ERROR:`` prefix."""
    message = ' '.join(message.split())
    return message[6:].strip() if message.startswith('ERROR:') else message


def _annotated(atoms, step, similarity, index, reason):
    atoms = atoms.copy()
    atoms.info['md_step'] = int(step)
    if similarity is not None:
        atoms.info['similarity'] = float(similarity)
    if index is not None:
        atoms.info['reference_index'] = int(index)
    atoms.info['stop_reason'] = reason
    return atoms


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mlfail-explore``; returns the process exit status (see the module doc)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or (argv and argv[0].startswith('-')):
        print(USAGE, file=sys.stderr)
        return 2
    started = time.perf_counter()
    explorer = None
    try:
        explorer = Explorer.from_files(argv[0] if argv else sx.INPUT_FILE)
        explorer.setup_lammps()
    except SetupError as exc:
        print(f'mlfail-explore: ERROR: {exc}', file=sys.stderr)
        if explorer is not None:
            explorer.close()
        return 1
    try:
        stop = explorer.run()
    finally:
        explorer.close()  # also flushes LAMMPS's files
    results = explorer.write_outputs(stop, started)
    print(f"mlfail-explore: stop {results['stop_reason']} at step {results['stop_step']}: {results['message']}",
          flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
