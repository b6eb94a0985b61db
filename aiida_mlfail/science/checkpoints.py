"""Checkpoints of a GAP MD job and the continuation of a stopped run from them (no AiiDA).

A GAP MD script of :func:`~.mlmd.mlmd_script` with ``checkpoint_interval`` > 0 writes LAMMPS
restart files (https://docs.lammps.org/restart.html) toggled between two files, plus the energy guard's start
energy; a job stopped by its walltime or a cancellation is continued from the newest complete checkpoint
(:func:`checkpoint_step`) by :func:`continuation_script`, and the jobs' series are joined by :func:`join_segments`
(``LammpsRestartWorkChain.continue_from`` / ``get_outputs``).
"""

from __future__ import annotations

import re

import numpy as np

from aiida_mlfail.science import checks

#: The LAMMPS variable holding the potential energy (eV) at the start of the run; the energy guard
#: compares ``pe`` with it. :func:`~.mlmd.energy_start_commands` defines it (after a ``run 0``);
#: a continuation reads it back from :data:`ENERGY_START_FILE`.
ENERGY_START_VARIABLE = 'energy_start'

#: Checkpoints of a GAP MD job (:func:`checkpoint_commands`): this folder of the job's working directory holds the
#: LAMMPS restart files (the two of :data:`RESTART_FILES`) and the energy guard's start energy
#: (:data:`ENERGY_START_FILE`). A continuation job gets the files it reads (:func:`checkpoint_files`) copied from the
#: previous job's remote folder.
CHECKPOINT_DIR = 'checkpoint'
#: The start energy of the run (eV, one number), for the energy guard of a continuation.
ENERGY_START_FILE = f'{CHECKPOINT_DIR}/energy_start.txt'
#: The two LAMMPS restart files a GAP MD run toggles between (``restart N file1 file2``): the checkpoint at step
#: ``m x checkpoint_interval`` is in the first (``odd``) for odd m, in the second (``even``) for even m
#: (:func:`restart_file`), so a job's folder never holds more than two restart files, however long the run.
RESTART_FILES = (f'{CHECKPOINT_DIR}/lammps.odd.restart', f'{CHECKPOINT_DIR}/lammps.even.restart')


def restart_file(step: int, interval: int) -> str:
    """The LAMMPS restart file holding the checkpoint at ``step`` of a run checkpointing every ``interval`` steps.

    :param step: MD step of the checkpoint, a multiple of ``interval`` (>= 0).
    :param interval: ``checkpoint_interval`` (> 0).
    :raises ValueError: for ``interval`` not positive or ``step`` not a non-negative multiple of it.
    """
    interval = checks.integer(interval, 'checkpoint_interval', gt=0)
    step = checks.integer(step, 'checkpoint step', ge=0)
    if step % interval:
        raise ValueError(f'checkpoint step {step} is not a multiple of checkpoint_interval {interval}')
    return RESTART_FILES[0] if (step // interval) % 2 else RESTART_FILES[1]


def restart_command(interval: int, start_step: int = 0) -> str:
    """The ``restart`` command (https://docs.lammps.org/restart.html) of a job starting at ``start_step``: every
    ``interval`` steps a restart file, toggling between the two :data:`RESTART_FILES` (LAMMPS writes the first
    named file first; no file at the first step of a run). The file holding ``start_step`` (the checkpoint a
    continuation was read from) is named second, so the job's first write goes to the other file and the
    checkpoint continued from is overwritten only after a newer one is complete (LAMMPS closes a restart file
    before the MD goes on). Which file holds a step therefore does not depend on the job: :func:`restart_file`.

    :param interval: ``checkpoint_interval`` (> 0).
    :param start_step: 0, or the checkpoint step the job continues from (a multiple of ``interval``).
    """
    return (f'restart {int(interval)} {restart_file(start_step + interval, interval)} '
            f'{restart_file(start_step, interval)}')


def checkpoint_files(step: int, interval: int) -> tuple[str, str]:
    """The files a job continuing from the checkpoint at ``step`` reads (paths relative to the job folder): the
    restart file (:func:`restart_file`) and :data:`ENERGY_START_FILE`. A continuation gets only these copied
    (``LammpsCalculation`` with ``parent_folder``), not the whole :data:`CHECKPOINT_DIR`.

    :raises ValueError: as :func:`restart_file`, and for ``step`` 0 (nothing to continue from).
    """
    checks.integer(step, 'checkpoint step', gt=0)
    return restart_file(step, interval), ENERGY_START_FILE


def checkpoint_commands(interval: int) -> list[str]:
    """Checkpoint commands of a GAP MD script (after :func:`~.mlmd.energy_start_commands`): a LAMMPS restart file every
    ``interval`` steps (:func:`restart_command`: two files toggled, at steps that are multiples of ``interval``,
    not at step 0) and the start energy of the energy guard in :data:`ENERGY_START_FILE` (``print ... file``
    closes the file at once). ``interval`` 0: none (no command)."""
    if interval <= 0:
        return []
    return [f'shell mkdir {CHECKPOINT_DIR}',
            f'print "${{{ENERGY_START_VARIABLE}}}" file {ENERGY_START_FILE} screen no',
            restart_command(interval)]


def continuation_script(script: str, step: int) -> str:
    """The script of a GAP MD job continuing a run of :func:`~.mlmd.mlmd_script` from its checkpoint at ``step``.

    The same script with: ``read_restart`` of :func:`restart_file` (``step``) instead of ``read_data`` (box,
    atoms, velocities, image flags, the step number and the Nose-Hoover variables of ``fix ensemble`` come from
    the restart file, https://docs.lammps.org/read_restart.html, as for the explorer,
    :func:`aiida_mlfail.science.explore.explore_script`); no ``velocity ... create``; the energy guard's start
    energy read back from :data:`ENERGY_START_FILE` (the start energy of the whole run, not of the checkpoint
    configuration); ``run N upto`` (https://docs.lammps.org/run.html: up to step N, so the remaining steps);
    the guards and frame output as before, and the ``restart`` of the next checkpoints with the two files in the
    order of :func:`restart_command` for ``step`` (the first write goes to the file not continued from). The
    frames and thermo rows of the continuation start at ``step`` (a frame and a thermo row the stopped job has
    too: :func:`join_segments` keeps the stopped job's).

    :param script: a :func:`~.mlmd.mlmd_script` with checkpoints on (or a continuation script: continued again).
    :param step: MD step of the checkpoint (> 0, a multiple of the script's checkpoint interval).
    :raises ValueError: for a script without checkpoints, or ``step`` not a positive multiple of its interval.
    """
    step = checks.integer(step, 'checkpoint step', gt=0)
    lines = script.splitlines()
    restarts = [line for line in lines if re.fullmatch(r'restart \d+ .+', line)]
    if not restarts:
        raise ValueError('the GAP MD script writes no checkpoint (checkpoint_interval 0): it cannot be continued')
    interval = int(restarts[0].split()[1])
    restart_file(step, interval)  # a step that is not a checkpoint of the script: ValueError
    out = []
    for line in lines:
        if line.startswith(('read_data ', 'read_restart ')):
            out.append(f'read_restart {restart_file(step, interval)}')
        elif line in restarts:
            out.append(restart_command(interval, step))
        elif line.startswith(('velocity all create ', f'shell mkdir {CHECKPOINT_DIR}')) or (
                line.startswith('print ') and f'file {ENERGY_START_FILE}' in line):
            continue
        elif line == f'variable {ENERGY_START_VARIABLE} equal $(pe)':  # (a continuation already reads the file)
            out += [f'variable energy_start_text file {ENERGY_START_FILE}',
                    f'variable {ENERGY_START_VARIABLE} equal ${{energy_start_text}}']
        elif re.fullmatch(r'run \d+( upto)?', line) and line != 'run 0':
            out.append(f"run {line.split()[1]} upto")
        elif line.startswith('# aiida-mlfail GAP molecular dynamics'):
            out.append(f'# aiida-mlfail GAP molecular dynamics (continued from the checkpoint at step {step})')
        else:
            out.append(line)
    return '\n'.join(out) + '\n'


def checkpoint_step(interval: int, start_step: int, thermo_steps, frame_steps) -> int | None:
    """The newest complete checkpoint of a stopped GAP MD job, from the steps its outputs reached.

    LAMMPS writes, at a step, the dump, then the restart file, then the thermo row (``Output::write``); the thermo
    output is flushed (``thermo_modify flush yes``) and so is the dump. So a thermo row at step s, or a dumped
    frame after s, proves that every restart file up to s is complete. The newest checkpoint is the largest
    multiple of ``interval`` that is proven so, if it is after ``start_step`` (the checkpoint this job continued
    from, which is still in its folder); else ``start_step`` (``None`` for 0: no checkpoint, start again).

    The job toggles between two restart files (:func:`restart_command`), so the file of a checkpoint c is
    overwritten at c + 2 x ``interval``. That never hits the checkpoint chosen here when ``thermo_interval`` <=
    ``interval`` (:func:`~.mlmd.normalise_mlmd` requires it): a job that began the write at c + 2 x ``interval`` has
    printed a thermo row in [c + ``interval``, c + 2 x ``interval``), which proves c + ``interval``.

    :param interval: ``checkpoint_interval`` (0: ``None``).
    :param start_step: the step the job started from (0, or the checkpoint it continued from).
    :param thermo_steps: steps of the job's thermo rows; ``frame_steps``: steps of its frames (may be empty).
    """
    if interval <= 0:
        return None
    reached = [int(s) for s in thermo_steps] + [int(s) - 1 for s in frame_steps]
    proven = max(reached, default=0)
    step = (proven // interval) * interval
    if step > start_step:
        return step
    return start_step or None


def join_segments(segments, boundaries) -> list:
    """Join per-segment series of a run continued from checkpoints, without repeats.

    :param segments: one list of ``(step, item)`` per job, in order (e.g. frames or thermo rows).
    :param boundaries: the checkpoint step each continuation started from (``len(segments) - 1`` steps);
        segment i keeps the items with ``boundaries[i-1] < step <= boundaries[i]`` (no bound before the first
        and after the last).
    :returns: the kept items, in order.
    :raises ValueError: for a wrong number of boundaries, boundaries that decrease, or kept steps that do not
        increase strictly (a repeat).
    """
    if len(boundaries) != len(segments) - 1:
        raise ValueError(f'{len(segments)} segments need {len(segments) - 1} checkpoint steps, got {list(boundaries)}')
    if any(b > a for a, b in zip(boundaries[1:], boundaries)):
        raise ValueError(f'checkpoint steps {list(boundaries)} decrease')
    bounds = [-np.inf, *boundaries, np.inf]
    kept = []
    for i, segment in enumerate(segments):
        kept += [(step, item) for step, item in segment if bounds[i] < step <= bounds[i + 1]]
    steps = [step for step, _ in kept]
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f'joined steps do not increase strictly: {steps}')
    return [item for _, item in kept]
