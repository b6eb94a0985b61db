"""Raw LAMMPS outputs (screen / log, dump, labels, thermo table), read from plain text, AiiDA-free.

``parse_lammps_error`` is defined here; the dump, labels and thermo readers live next to the
writers of those files in :mod:`aiida_mlfail.science.lammps_md` and the stop line of the failure
guards in :mod:`aiida_mlfail.science.mlmd`, and are re-exported so that every LAMMPS output
reader is importable from this module.
"""

from __future__ import annotations

from aiida_mlfail.science.lammps_md import parse_dump, parse_labels, parse_thermo
from aiida_mlfail.science.mlmd import parse_stop

__all__ = ['parse_dump', 'parse_labels', 'parse_lammps_error', 'parse_stop', 'parse_thermo']


def parse_lammps_error(text: str) -> str | None:
    """The first ``ERROR`` line of a LAMMPS screen/log output (with the ``Last input line``), or ``None``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('ERROR'):
            follow = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith('Last input line') else ''
            return (line + ' ' + follow).strip()
    return None
