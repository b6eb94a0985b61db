"""Pieces shared by the WorkChains: default job options and port validators built from science checks."""

from __future__ import annotations

from aiida_mlfail.calculations.common import (  # noqa: F401 (re-exported for the WorkChains)
    dict_validator,
    node_validator,
    port_excluded,
    structure_message,
    structure_validator,
)

#: ``metadata.options`` of the jobs a WorkChain submits when the user gives none.
DEFAULT_OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 3600}


def restart_inputs(inputs) -> dict:
    """``{'restart': inputs.restart}`` when a WorkChain was given restart settings, else ``{}`` (for its jobs)."""
    return {'restart': inputs.restart} if 'restart' in inputs else {}


def forbid_cache_source(node) -> bool:
    """Mark a finished job whose result is not usable as never to be reused by AiiDA caching.

    aiida-core's ``Process.is_valid_cache`` accepts every finished job whose exit code is not declared
    ``invalidates_cache=True`` (only the scheduler's 100-160 and a few plugin codes are), so with caching
    on, a job that failed (e.g. CP2K killed, 303, or stopped at its walltime, 400) would be the cache
    source of the next job with the same inputs, and a restart with only a longer walltime (not part of
    the hash) would never run. This sets the node's ``is_valid_cache`` to ``False`` (the
    ``_aiida_valid_cache`` extra).

    :param node: a finished ``CalcJobNode``.
    :returns: whether the node was marked (``True`` when it failed, else ``False`` and nothing changed).
    """
    if node.is_failed:
        node.base.caching.is_valid_cache = False
        return True
    return False
