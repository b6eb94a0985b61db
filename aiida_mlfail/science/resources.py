"""What a job needs, as scheduler options: ``metadata.options`` of an AiiDA CalcJob (no AiiDA here).

One function, :func:`scheduler_options`, turns the needs of one job into the options every AiiDA
scheduler plugin understands; with ``core.slurm`` they become the ``#SBATCH`` header:

- memory (MB, an estimate) -> ``max_memory_kb`` per machine, times a safety factor -> ``--mem=<MB>``
- MPI ranks -> ``resources`` (machines x ranks per machine) and ``withmpi`` -> ``--nodes``,
  ``--ntasks-per-node`` (and the computer's ``mpirun_command`` in front of the program)
- walltime (s, a budget) -> ``max_wallclock_seconds`` -> ``--time``

Where the numbers come from: the memory of ``gap_fit`` from its ``dryrun=T`` estimate (the
``PEAK`` line, :func:`aiida_mlfail.science.gap.parse_dryrun` ``memory_peak_mb``, per process),
the ranks of LAMMPS and CP2K from the size of the system, the walltime from the protocol (e.g.
``walltime_seconds`` of :mod:`aiida_mlfail.workflows.protocols` ``cp2k.yaml``).

The memory estimate gets a safety factor (dryrun counts the big matrices, not the program, the
libraries and the buffers around them) and a floor of :data:`MIN_MEMORY_MB`; the walltime is a
budget and is passed as given (rounded up to whole minutes). On a SLURM cluster without memory
enforcement (no cgroups, like the local test cluster) ``--mem`` still decides where a job fits: a
request larger than a node is refused at submission.
"""

from __future__ import annotations

import math

#: Programs that run as MPI programs when given more than one rank; the others are serial here
#: (the quippy-ase ``gap_fit`` wheel is built without MPI, the Python engines are serial).
MPI_KINDS = frozenset({'lammps', 'cp2k'})
#: Serial programs of the package (``kind`` values accepted with ``mpi_ranks=1`` only).
SERIAL_KINDS = frozenset({'gap_fit', 'quip', 'explore', 'rematch'})
#: Smallest memory request (MB) per machine: a process and its libraries, whatever the estimate says.
MIN_MEMORY_MB = 256
#: Shortest walltime (s) a job is given: SLURM counts in minutes, and start-up alone takes seconds.
MIN_WALLTIME_S = 60


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive integer, got {value!r}')
    return value


def _positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f'{name} must be a positive finite number, got {value!r}')
    return float(value)


def scheduler_options(kind: str, *, memory_mb: float | None = None, mpi_ranks: int = 1,
                      walltime_s: float | None = None, safety: float = 1.3,
                      mpiprocs_per_machine: int | None = None) -> dict:
    """``metadata.options`` for one job of program ``kind`` from what it needs.

    :param kind: the program: ``'lammps'`` or ``'cp2k'`` (MPI programs), ``'gap_fit'``, ``'quip'``,
        ``'explore'``, ``'rematch'`` (serial).
    :param memory_mb: the memory the job needs in total (MB), e.g. gap_fit's dryrun ``PEAK``
        estimate; ``None``: no request (the computer's ``default_memory_per_machine`` or the
        cluster's default applies). Split evenly over the machines.
    :param mpi_ranks: number of MPI ranks (only > 1 for the MPI programs).
    :param walltime_s: walltime budget in seconds (from the protocol); ``None``: no limit set
        here (the scheduler's or the workflow's default applies). Rounded up to whole minutes,
        at least :data:`MIN_WALLTIME_S`.
    :param safety: factor (>= 1) on ``memory_mb`` for what an estimate does not count.
    :param mpiprocs_per_machine: ranks per machine (cores of a node); ``None``: all ranks on one
        machine. With more ranks than this, the job spans ``ceil(mpi_ranks / mpiprocs_per_machine)``
        machines with ``mpiprocs_per_machine`` ranks each (rounded up to fill whole machines).
    :returns: ``{'resources': {'num_machines', 'num_mpiprocs_per_machine'}, 'withmpi': bool}`` plus
        ``max_memory_kb`` (per machine, what ``core.slurm`` writes as ``--mem``) and
        ``max_wallclock_seconds`` when given.
    :raises ValueError: unknown ``kind``, MPI ranks for a serial program, non-positive numbers,
        ``safety`` < 1.
    """
    if kind not in MPI_KINDS | SERIAL_KINDS:
        raise ValueError(f'unknown kind {kind!r}: expected one of {sorted(MPI_KINDS | SERIAL_KINDS)}')
    mpi_ranks = _positive_int('mpi_ranks', mpi_ranks)
    if kind in SERIAL_KINDS and mpi_ranks > 1:
        raise ValueError(f'{kind} runs serially here: mpi_ranks must be 1, got {mpi_ranks}')
    safety = _positive_number('safety', safety)
    if safety < 1.0:
        raise ValueError(f'safety must be >= 1 (a margin on an estimate), got {safety}')

    if mpiprocs_per_machine is None:
        machines, per_machine = 1, mpi_ranks
    else:
        per_machine_max = _positive_int('mpiprocs_per_machine', mpiprocs_per_machine)
        machines = math.ceil(mpi_ranks / per_machine_max)
        per_machine = math.ceil(mpi_ranks / machines)
    options = {
        'resources': {'num_machines': machines, 'num_mpiprocs_per_machine': per_machine},
        'withmpi': kind in MPI_KINDS and mpi_ranks > 1,
    }
    if memory_mb is not None:
        per_machine_mb = max(_positive_number('memory_mb', memory_mb) * safety / machines, MIN_MEMORY_MB)
        options['max_memory_kb'] = int(math.ceil(per_machine_mb)) * 1024
    if walltime_s is not None:
        seconds = max(_positive_number('walltime_s', walltime_s), MIN_WALLTIME_S)
        options['max_wallclock_seconds'] = int(math.ceil(seconds / 60.0)) * 60
    return options
