"""AiiDA-free parsing of CP2K (2023.x and newer) outputs: single points and NVT MD trajectories.

No AiiDA here (parsing logic callable on a plain file); an AiiDA ``Parser`` calls
these functions. Units on return: eV, Å, eV/Å, eV/Å^3 and, for the virial, eV.

What is read (CP2K manual, https://manual.cp2k.org/trunk/CP2K_INPUT/FORCE_EVAL/PRINT.html and
``FORCE_EVAL/STRESS_TENSOR``):

- ``ENERGY| Total FORCE_EVAL ( QS ) energy [a.u.]:`` (2023, 2024) or ``[hartree]`` (2025+), Hartree.
- ``ATOMIC FORCES in [a.u.]`` table (2023, 2024) or ``FORCES| Atomic forces [hartree/bohr]``
  (2025+), Hartree/Bohr. These are forces (minus the energy gradient).
- ``STRESS| Analytical stress tensor [GPa]`` (or ``Numerical``). CP2K prints the *pressure*
  tensor here (positive under compression: its 1/3 trace is the pressure), so the ASE stress is
  ``stress = -P`` and the ASE/extxyz virial ``virial = -stress V = P V``. The sign is checked
  against a compressed cell and against finite differences of the energy in the tests.
- ``CELL| Volume [angstrom^3]`` and ``CELL| Vector a/b/c [angstrom]`` (``SUBSYS/PRINT/CELL``).
- SCF: ``*** SCF run converged in N steps ***``, or ``Leaving inner SCF loop after reaching N
  steps.`` and the warning ``SCF run NOT converged``; with an outer loop ``outer SCF loop converged
  in / FAILED to converge after K iterations or M steps`` (M counts all inner steps).

Conversions use ``ase.units`` (``Hartree``, ``Bohr``, ``GPa``).
"""

from __future__ import annotations

import re

import numpy as np
from ase import Atoms
from ase.units import Bohr, GPa, Hartree

#: A Fortran real as CP2K prints it, including gfortran's ``NaN`` and ``Infinity`` (so a non-finite value is
#: read as one and reported as such, not as a missing line).
_FLOAT = r'(?:[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[EeDd][-+]?\d+)?|NaN|[-+]?Infinity)'
_ENERGY = re.compile(
    rf'^ ENERGY\| Total FORCE_EVAL \( \w+ \) energy (?:\[a\.u\.\]|\[hartree\]|\(a\.u\.\)):?\s+({_FLOAT})\s*$', re.M)
_VERSION = re.compile(r'^ CP2K\| version string:\s+CP2K version (\S+)', re.M)
_N_ATOMS = re.compile(r'^\s+- Atoms:\s+(\d+)\s*$', re.M)
_VOLUME = re.compile(rf'^ CELL\| Volume \[angstrom\^3\]:\s+({_FLOAT})', re.M)
_VECTOR = re.compile(rf'^ CELL\| Vector ([abc]) \[angstrom\]:\s+({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})', re.M)
_STRESS = re.compile(r'^ STRESS\| (?:Analytical|Numerical) stress tensor \[GPa\]\s*$', re.M)
_SCF_DONE = re.compile(r'\*\*\* SCF run converged in\s+(\d+) steps \*\*\*')
_NOT_CONVERGED = re.compile(r'SCF run NOT converged')
_INNER_LEFT = re.compile(r'Leaving inner SCF loop after reaching\s+(\d+) steps')
#: The line CP2K prints when ``GLOBAL/WALLTIME`` cuts an SCF short (often followed by its "SCF run NOT converged").
WALLTIME_CUT_SCF = 'SCF run terminated - exceeded requested execution time'
_WALLTIME_CUT = re.compile(re.escape(WALLTIME_CUT_SCF))
_OUTER = re.compile(r'outer SCF loop (converged in|FAILED to converge after)\s+(\d+) iterations or\s+(\d+) steps')
_ART = re.compile(r'^\s*(?:\\___/|O/\||/\| \||/ \\|\|)')
_WARNING = re.compile(r'^ \*\*\* WARNING in (\S+) :: (.*?)\s*(?:\*\*\*)?\s*$', re.M)


class Cp2kOutputError(ValueError):
    """A CP2K output that cannot give energy and forces: truncated, aborted, or without the blocks.

    ``reason`` is ``'aborted'``, ``'scf_not_converged'`` (CP2K >= 2024.1 aborting on an
    unconverged SCF), ``'truncated'`` or ``'missing'``; ``cp2k_message`` holds the text of CP2K's
    ABORT box (``None`` otherwise).
    """

    def __init__(self, message: str, reason: str, cp2k_message: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.cp2k_message = cp2k_message


def abort_message(text: str) -> str | None:
    """The message of CP2K's ``[ABORT]`` box (with the source location in brackets), or ``None``."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(' * [ABORT]')), None)
    if start is None:
        return None
    body = []
    for line in lines[start + 1:]:
        if not line.startswith(' *') or line.startswith(' ****'):
            break
        body.append(_ART.sub('', line.rstrip()[2:-1]).strip())  # drop ' *', the closing '*' and the art
    location = body.pop() if body else ''
    message = ' '.join(part for part in body if part)
    return f'{message} [{location}]' if location else message


def _float(token: str) -> float:
    return float(token.replace('D', 'E').replace('d', 'e'))


def _forces_blocks(text: str) -> list[tuple[np.ndarray, bool]]:
    """Every force table as (rows in Hartree/Bohr, complete), in output order."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(' ATOMIC FORCES in [a.u.]'):  # 2023 / 2024
            rows, complete = [], False
            for row in lines[i + 1:]:
                if row.startswith(' SUM OF ATOMIC FORCES'):
                    complete = True
                    break
                parts = row.split()
                if len(parts) == 6 and parts[0].isdigit():
                    rows.append([_float(x) for x in parts[3:6]])
                elif parts and not row.lstrip().startswith('#'):
                    break
            blocks.append((np.array(rows, dtype=float).reshape(-1, 3), complete))
        elif line.startswith(' FORCES| Atomic forces [hartree/bohr]'):  # 2025+
            rows, complete = [], False
            for row in lines[i + 1:]:
                if not row.startswith(' FORCES|'):
                    break
                parts = row[8:].split()
                if parts and parts[0] == 'Sum':
                    complete = True
                    break
                if len(parts) >= 4 and parts[0].isdigit():
                    rows.append([_float(x) for x in parts[1:4]])
            blocks.append((np.array(rows, dtype=float).reshape(-1, 3), complete))
        i += 1
    return blocks


def stress_tensors(text: str) -> list[np.ndarray]:
    """Every complete ``STRESS|`` tensor block of an output, as CP2K prints it (pressure tensor, GPa)."""
    tensors = []
    lines = text.splitlines()
    for match in _STRESS.finditer(text):
        index = text.count('\n', 0, match.start())
        rows = []
        for row in lines[index + 2:index + 5]:
            parts = row.split()
            if len(parts) == 5 and parts[0] == 'STRESS|' and parts[1] in 'xyz':
                rows.append([_float(x) for x in parts[2:5]])
        if len(rows) == 3:
            tensors.append(np.array(rows))
    return tensors


def _scf_status(text: str) -> tuple[bool | None, int | None]:
    """(converged, steps) of the last SCF in ``text``: the last convergence event decides, the
    steps come from the last event that counts them; ``(None, None)`` if no SCF ended."""
    events = []  # (position, converged, steps or None)
    for match in _SCF_DONE.finditer(text):
        events.append((match.start(), True, int(match.group(1))))
    for match in _INNER_LEFT.finditer(text):
        events.append((match.start(), False, int(match.group(1))))
    for match in _OUTER.finditer(text):
        events.append((match.start(), match.group(1) == 'converged in', int(match.group(3))))
    for match in _NOT_CONVERGED.finditer(text):
        events.append((match.start(), False, None))
    if not events:
        return None, None
    events.sort()
    steps = next((n for _, _, n in reversed(events) if n is not None), None)
    return events[-1][1], steps


def parse_cp2k_output(text: str) -> dict:
    """Energy, forces, stress and SCF status of the last force evaluation of a CP2K output.

    :param text: the standard output of an ``ENERGY_FORCE`` run (for MD runs: the last step).
    :returns: dict with

        - ``energy``: total FORCE_EVAL energy (float, eV),
        - ``forces``: ``np.ndarray`` (N, 3), eV/Å,
        - ``stress``: ``np.ndarray`` (3, 3), eV/Å^3, ASE sign (minus CP2K's pressure tensor), or
          ``None`` if not printed,
        - ``virial``: ``-stress * volume`` (3, 3), eV, if the stress and ``CELL| Volume`` are
          printed, else ``None``,
        - ``volume`` (Å^3, printed to 1e-6) and ``cell`` ((3, 3), Å, rows a, b, c, printed to only
          1e-3 Å: take the cell from the input structure), or ``None`` without ``SUBSYS/PRINT/CELL``,
        - ``scf_converged`` (bool), ``scf_steps`` (int: inner steps, or total steps of an outer loop),
        - ``n_atoms`` (int), ``cp2k_version`` (str or ``None``), ``warnings`` (list of str).
    :raises Cp2kOutputError: (a ``ValueError``) with ``reason`` ``'aborted'`` (the text of CP2K's ABORT
        box in the message), ``'scf_not_converged'`` (an abort because the SCF did not converge,
        CP2K >= 2024.1 without IGNORE_CONVERGENCE_FAILURE), ``'truncated'`` (no ``PROGRAM ENDED``
        line, e.g. a killed job) or ``'missing'`` (ended without energy or forces).
        An SCF that did not converge in a run that ended is *not* an error: ``scf_converged`` is False.
    """
    message = abort_message(text)
    if message is not None:
        if 'SCF run NOT converged' in message:
            raise Cp2kOutputError(f'CP2K aborted because the SCF did not converge: {message}', 'scf_not_converged',
                                  message)
        raise Cp2kOutputError(f'CP2K aborted: {message}', 'aborted', message)
    energies = _ENERGY.findall(text)
    blocks = _forces_blocks(text)
    atoms_match = _N_ATOMS.search(text)
    expected = int(atoms_match.group(1)) if atoms_match else None
    if 'PROGRAM ENDED AT' not in text:
        found = []
        if energies:
            found.append('an energy')
        if blocks:
            rows, complete = blocks[-1]
            found.append(f'a {"complete" if complete else "cut"} force table of {len(rows)} rows')
        lines = [line for line in text.splitlines() if line.strip()]
        tail = lines[-1].strip()[:80] if lines else ''
        raise Cp2kOutputError(
            'truncated CP2K output: no "PROGRAM ENDED" line (job killed, out of time or disk?); '
            f'found {", ".join(found) if found else "no energy and no forces"}; last line: {tail!r}', 'truncated')
    if not energies:
        raise Cp2kOutputError('CP2K output has no "ENERGY| Total FORCE_EVAL" line (RUN_TYPE not ENERGY_FORCE?)',
                              'missing')
    if not blocks:
        raise Cp2kOutputError('CP2K output has no atomic forces (FORCE_EVAL/PRINT/FORCES off?)', 'missing')
    rows, complete = blocks[-1]
    if not complete or (expected is not None and len(rows) != expected):
        raise Cp2kOutputError(f'CP2K force table is incomplete: {len(rows)} rows for {expected} atoms', 'missing')

    converged, steps = _scf_status(text)
    if converged is None:
        raise Cp2kOutputError('CP2K output has no SCF convergence line', 'missing')
    volume_match = _VOLUME.findall(text)
    volume = float(volume_match[-1]) if volume_match else None
    vectors = {}
    for letter, *values in _VECTOR.findall(text):
        vectors[letter] = [float(v) for v in values]
    cell = np.array([vectors[k] for k in 'abc']) if len(vectors) == 3 else None
    tensors = stress_tensors(text)
    stress = -tensors[-1] * GPa if tensors else None
    virial = -stress * volume if stress is not None and volume is not None else None
    warnings = [f'{where}: {what}' for where, what in _WARNING.findall(text)]
    if not converged and not any('NOT converged' in w for w in warnings):
        warnings.append(f'SCF not converged after {steps} steps')
    version = _VERSION.search(text)
    return {
        'energy': float(energies[-1]) * Hartree,
        'forces': rows * (Hartree / Bohr),
        'stress': stress,
        'virial': virial,
        'volume': volume,
        'cell': cell,
        'scf_converged': converged,
        'scf_steps': steps,
        'n_atoms': len(rows),
        'cp2k_version': version.group(1) if version else None,
        'warnings': warnings,
    }


def _xyz_frames(text: str, what: str, cut_tail: bool = False) -> list[tuple[dict, list[str], np.ndarray]]:
    """Frames of a CP2K XYZ trajectory: (title fields i/time/E, symbols, (N, 3) values); with
    ``cut_tail`` a cut last frame (a job killed while writing it) is left out instead of refused."""
    lines = text.splitlines()
    frames = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        n = int(lines[i])
        block = lines[i + 2:i + 2 + n]
        if len(block) < n or any(len(row.split()) < 4 for row in block):
            if cut_tail and i + 2 + n >= len(lines):
                break
            raise Cp2kOutputError(f'{what}: frame {len(frames)} is cut ({len(block)} of {n} rows)', 'truncated')
        title = dict(re.findall(rf'(\w+)\s*=\s*({_FLOAT})', lines[i + 1]))
        symbols = [row.split()[0] for row in block]
        values = np.array([[_float(x) for x in row.split()[1:4]] for row in block])
        frames.append((title, symbols, values))
        i += 2 + n
    return frames


def _cells(cell, steps: list[int]) -> list[np.ndarray]:
    """One (3, 3) cell (Å) per MD step, from a ``<project>-1.cell`` text or a fixed cell."""
    if not isinstance(cell, str):
        fixed = np.asarray(cell, dtype=float).reshape(3, 3)
        return [fixed] * len(steps)
    rows = {}
    for row in cell.splitlines():
        parts = row.split()
        if parts and not row.lstrip().startswith('#'):
            if len(parts) < 11:
                raise Cp2kOutputError(f'cell file row is cut: {row.strip()!r}', 'truncated')
            rows[int(parts[0])] = np.array([_float(x) for x in parts[2:11]]).reshape(3, 3)
    missing = [step for step in steps if step not in rows]
    if missing:
        raise Cp2kOutputError(f'cell file has no row for MD steps {missing}', 'missing')
    return [rows[step] for step in steps]


def parse_cp2k_md(positions: str, forces: str, output: str, cell, energies: str | None = None, *,
                  continuation: bool = False, until_step: int | None = None) -> list[Atoms]:
    """Frames of a CP2K MD run as labelled ``ase.Atoms`` (the extxyz conventions of
    :mod:`aiida_mlfail.science.extxyz`, ready for ``TrainingSetData.from_atoms``).

    :param positions: text of ``<project>-pos-1.xyz`` (Å; each title line holds ``i`` (step),
        ``time`` (fs) and ``E``, the potential energy in Hartree).
    :param forces: text of ``<project>-frc-1.xyz`` (Hartree/Bohr, CP2K's default unit).
    :param output: the main output. Its ``STRESS|`` blocks, one per force evaluation, give the
        virial: they hold the potential (virial) part of the pressure tensor only, as for a single
        point, whereas ``MOTION/PRINT/STRESS`` (``<project>-1.stress``) adds the kinetic part, which
        training labels must not contain. The output must have ended (``PROGRAM ENDED``).
    :param cell: text of ``<project>-1.cell`` (per-step cells, Å, full precision) or a fixed (3, 3)
        cell in Å (rows a, b, c).
    :param energies: optional text of ``<project>-1.ener``: its steps and potential energies
        (Hartree) must agree with the trajectory titles (to 1e-6 Hartree).
    :param continuation: the job continued a previous one from its checkpoint (``EXT_RESTART``): its
        first ``STRESS|`` block is the force evaluation of the checkpoint's step, whose frame the
        previous job wrote, and is skipped.
    :param until_step: the job was stopped (by ``GLOBAL/WALLTIME`` or the scheduler) and continues from
        its checkpoint of this step: the frames after it are left out (the continuation runs them
        again), the output need not have ended, and the force evaluation cut by the stop (a stress
        block with no frame) and a cut last xyz frame are ignored.
    :returns: one ``Atoms`` per MD step written (step 0 included), pbc, with ``info['energy']``
        (eV), ``arrays['forces']`` ((N, 3), eV/Å), ``info['virial']`` ((3, 3), eV, ASE/extxyz sign:
        ``virial = -stress V = P V``), ``info['md_step']`` (int) and ``info['time_fs']`` (float).
    :raises Cp2kOutputError: for an aborted or truncated output, a cut trajectory frame, or files
        that disagree (frame counts, step numbers, symbols, energies).
    """
    message = abort_message(output)
    if message is not None:
        raise Cp2kOutputError(f'CP2K aborted: {message}', 'aborted', message)
    stopped = until_step is not None
    if 'PROGRAM ENDED AT' not in output and not stopped:
        raise Cp2kOutputError('truncated CP2K MD output: no "PROGRAM ENDED" line', 'truncated')
    position_frames = _xyz_frames(positions, 'positions', cut_tail=stopped)
    force_frames = _xyz_frames(forces, 'forces', cut_tail=stopped)
    tensors = stress_tensors(output)[1 if continuation else 0:]
    if stopped:
        position_frames = [f for f in position_frames if int(float(f[0]['i'])) <= until_step]
        force_frames = force_frames[:len(position_frames)]
        tensors = tensors[:len(position_frames)]
    if not (len(position_frames) == len(force_frames) == len(tensors)):
        raise Cp2kOutputError(f'MD files disagree: {len(position_frames)} position frames, {len(force_frames)} force '
                              f'frames, {len(tensors)} stress tensors in the output', 'missing')
    steps = [int(float(title['i'])) for title, _, _ in position_frames]
    cells = _cells(cell, steps)
    ener_rows = None
    if energies is not None:
        ener_rows = [row.split() for row in energies.splitlines() if row.strip() and not row.lstrip().startswith('#')]
        if stopped:  # the rows of the frames kept (a kill may cut the files at different steps)
            kept = {int(float(title['i'])) for title, _, _ in position_frames}
            ener_rows = [row for row in ener_rows if len(row) >= 5 and int(row[0]) in kept]
        if len(ener_rows) != len(position_frames):
            raise Cp2kOutputError(f'energy file has {len(ener_rows)} rows for {len(position_frames)} frames', 'missing')
    frames = []
    for index, ((title, symbols, xyz), (ftitle, fsymbols, frc), pressure, box) in enumerate(
            zip(position_frames, force_frames, tensors, cells)):
        step = steps[index]
        if int(float(ftitle['i'])) != step or fsymbols != symbols:
            raise Cp2kOutputError(f'frame {index}: positions (step {step}) and forces (step {ftitle["i"]}) disagree',
                                  'missing')
        energy = _float(title['E'])
        if ener_rows is not None:
            row = ener_rows[index]
            if int(row[0]) != step or abs(_float(row[4]) - energy) > 1e-6:
                raise Cp2kOutputError(f'frame {index}: energy file row {row[:5]} disagrees with the trajectory '
                                      f'(step {step}, E = {energy})', 'missing')
        atoms = Atoms(symbols, positions=xyz, cell=box, pbc=True)
        atoms.info['energy'] = energy * Hartree
        atoms.arrays['forces'] = frc * (Hartree / Bohr)
        atoms.info['virial'] = pressure * GPa * atoms.get_volume()
        atoms.info['md_step'] = step
        atoms.info['time_fs'] = _float(title['time'])
        frames.append(atoms)
    return frames


def join_md_segments(segments: list[list[Atoms]]) -> list[Atoms]:
    """One trajectory from the frames of an MD run's jobs, each continuing the previous from its checkpoint
    (:func:`parse_cp2k_md` with ``until_step`` / ``continuation``).

    :param segments: the frames of each job, in order.
    :returns: the frames of all segments; their ``md_step`` run on without gap or repeat.
    :raises Cp2kOutputError: (reason ``missing``) if a segment is empty, or does not start at the step after
        the previous segment's last one, naming both.
    """
    frames: list[Atoms] = []
    for index, segment in enumerate(segments):
        if not segment:
            raise Cp2kOutputError(f'MD segment {index} has no frame', 'missing')
        first = segment[0].info['md_step']
        if frames and first != frames[-1].info['md_step'] + 1:
            raise Cp2kOutputError(f'MD segment {index} starts at step {first}, not after the previous segment\'s '
                                  f'last step {frames[-1].info["md_step"]}', 'missing')
        frames.extend(segment)
    return frames


def unconverged_scf_count(output: str) -> int:
    """How many force evaluations of an output ended with ``SCF run NOT converged``, not counting the SCF that
    ``GLOBAL/WALLTIME`` cut short (:data:`WALLTIME_CUT_SCF`; CP2K may or may not warn about that one, and its
    frame is not written).

    :param output: CP2K's main output.
    """
    events = sorted([(m.start(), 'cut') for m in _WALLTIME_CUT.finditer(output)]
                    + [(m.start(), 'not') for m in _NOT_CONVERGED.finditer(output)]
                    + [(m.start(), 'done') for m in _SCF_DONE.finditer(output)])
    count, cut = 0, False
    for _, kind in events:
        if kind == 'not' and not cut:
            count += 1
        cut = kind == 'cut'
    return count
