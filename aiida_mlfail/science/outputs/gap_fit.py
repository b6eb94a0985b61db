"""Raw ``gap_fit`` outputs (standard output, ``--dry_run`` report, memory preflight file, GAP XML),
read from plain text, AiiDA-free.

``parse_memory_file`` is defined here; the readers of gap_fit's own outputs live with the rest of
the GAP logic in :mod:`aiida_mlfail.science.gap` and are re-exported.
"""

from __future__ import annotations

import re

from aiida_mlfail.science.gap import parse_dryrun, parse_gap_fit_output, parse_gap_xml

__all__ = ['parse_dryrun', 'parse_gap_fit_output', 'parse_gap_xml', 'parse_memory_file']


def parse_memory_file(text: str) -> dict:
    """``peak_kb=... limit_kb=...`` / ``status=...`` lines of the preflight into a dict (ints where numeric)."""
    values = {}
    for key, value in re.findall(r'(\w+)=(\S+)', text):
        values[key] = int(value) if value.isdigit() else value
    return values
