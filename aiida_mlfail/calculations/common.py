"""Pieces shared by CalcJobs and WorkChains (WorkChains import them from here; CalcJobs must not import workflows)."""

from __future__ import annotations

from typing import Callable


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


def node_validator(check: Callable[..., object], port: str, **bounds):
    """A port validator for a base-type input (``Int``, ``Float``, ``Bool``, ``Str``): runs
    ``check(value.value, port, **bounds)`` (e.g. ``science.checks.integer`` with ``ge=1``) and returns its
    ``ValueError`` message, which names the port and the value (``None`` when the check passes)."""

    def validator(value, ctx=None):
        try:
            check(value.value, port, **bounds)
        except ValueError as exc:
            return str(exc)
        return None

    return validator
