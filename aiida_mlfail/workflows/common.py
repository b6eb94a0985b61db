"""Pieces shared by the WorkChains: default job options and port validators built from science checks."""

from __future__ import annotations

from typing import Callable

#: ``metadata.options`` of the jobs a WorkChain submits when the user gives none.
DEFAULT_OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 3600}


def dict_validator(check: Callable[[dict], object], port: str):
    """A port validator for a ``Dict`` input: runs ``check(value.get_dict())`` and turns its
    ``ValueError`` into the message ``'<port>: <error>'`` (``None`` when the check passes)."""

    def validator(value, ctx=None):
        try:
            check(value.get_dict())
        except ValueError as exc:
            return f'{port}: {exc}'
        return None

    return validator
