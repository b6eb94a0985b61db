"""Pieces shared by the WorkChains: default job options and port validators built from science checks."""

from __future__ import annotations

from aiida_mlfail.calculations.common import dict_validator  # noqa: F401 (re-exported for the WorkChains)

#: ``metadata.options`` of the jobs a WorkChain submits when the user gives none.
DEFAULT_OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 3600}


def restart_inputs(inputs) -> dict:
    """``{'restart': inputs.restart}`` when a WorkChain was given restart settings, else ``{}`` (for its jobs)."""
    return {'restart': inputs.restart} if 'restart' in inputs else {}
