"""Uniform checks of user input values: numbers, integers, choices and names that reach a program's input.

Every ``normalise_*`` function of the package checks its numbers with :func:`number` and
:func:`integer`, so the same rules hold everywhere:

* the type is a number (``bool``, ``None`` and strings are refused: ``True`` is not a timestep and
  ``'300'`` is a typo in a YAML file, not a temperature);
* numbers are finite (``.inf``/``.nan`` are refused up front: they pass a ``not x > 0`` test, and
  AiiDA cannot store them in a ``Dict``, so they used to fail only when the inputs were stored);
* integers are integers (``2.5`` is refused, ``2.0`` is accepted as ``2``);
* the range is checked, and the message names the key, the value and the unit.

The type and range rules are those of pydantic's strict mode (https://docs.pydantic.dev/latest/concepts/strict_mode/,
``allow_inf_nan=False``); only the wording of the message is ours. AiiDA-free.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

#: Largest integer accepted where a program reads a C ``int`` (LAMMPS seeds, step counts, gap_fit's n_sparse).
INT32_MAX = 2**31 - 1

#: What a name may be when it goes into a program's input (a LAMMPS script, a gap_fit command line, a
#: file name inside a job folder): letters, digits, ``_``, ``-``, ``.``; no leading ``.`` or ``-``.
SAFE_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z')


def _bounds(gt, ge, lt, le) -> str:
    parts = []
    if gt is not None:
        parts.append(f'> {gt}')
    if ge is not None:
        parts.append(f'>= {ge}')
    if lt is not None:
        parts.append(f'< {lt}')
    if le is not None and le != INT32_MAX:
        parts.append(f'<= {le}')
    return ' and '.join(parts)


@functools.cache
def _adapter(kind: type, gt, ge, lt, le) -> TypeAdapter:
    return TypeAdapter(Annotated[kind, Field(strict=True, allow_inf_nan=False, gt=gt, ge=ge, lt=lt, le=le)])


def _check(kind: type, value: Any, key: str, gt, ge, lt, le, unit: str):
    what = 'a finite number' if kind is float else 'an integer'
    bounds = _bounds(gt, ge, lt, le)
    unit = f' {unit}' if unit else ''
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise ValueError(f'{key} must be {what}{" " + bounds if bounds else ""}{unit}, got {value!r}')
    given = value  # named in the message as the user wrote it (1e+30, not its integer conversion)
    if isinstance(value, numbers.Integral):  # numpy integers
        value = int(value)
    elif isinstance(value, numbers.Real):  # numpy floats
        value = float(value)
        if kind is int and math.isfinite(value) and value.is_integer():
            value = int(value)
    try:
        return _adapter(kind, gt, ge, lt, le).validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0]['msg'][0].lower() + exc.errors()[0]['msg'][1:]
        raise ValueError(f'{key} must be {what}{" " + bounds if bounds else ""}{unit}, got {given!r} ({reason})') \
            from None


def number(value: Any, key: str, *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
           le: float | None = None, unit: str = '') -> float:
    """``value`` as a finite ``float`` within the bounds.

    :param key: the name used in the message (e.g. ``'md.timestep'``).
    :param unit: appended to the bounds in the message (e.g. ``'fs'``).
    :returns: ``float(value)``.
    :raises ValueError: naming ``key`` and ``value``, for a bool/None/str, a non-finite number or one
        outside the bounds.
    """
    return float(_check(float, value, key, gt, ge, lt, le, unit))


def integer(value: Any, key: str, *, gt: int | None = None, ge: int | None = None, lt: int | None = None,
            le: int | None = INT32_MAX, unit: str = '') -> int:
    """``value`` as an ``int`` within the bounds (default upper bound :data:`INT32_MAX`).

    An integral float (``2.0``) is accepted; ``2.5``, ``inf``, ``nan``, bools, ``None`` and strings are not.

    :raises ValueError: naming ``key`` and ``value``.
    """
    return int(_check(int, value, key, gt, ge, lt, le, unit))


def boolean(value: Any, key: str) -> bool:
    """``value`` if it is a ``bool``.

    :raises ValueError: naming ``key`` and ``value`` for anything else (``'false'`` and ``0`` included).
    """
    if not isinstance(value, bool):
        raise ValueError(f'{key} must be true or false, got {value!r}')
    return value


def choice(value: Any, key: str, choices) -> Any:
    """``value`` if it is one of ``choices``.

    :raises ValueError: naming ``key``, ``value`` and the choices.
    """
    if not any(value == c and type(value) is type(c) for c in choices):
        raise ValueError(f'{key} must be one of {list(choices)}, got {value!r}')
    return value


def safe_name(value: Any, key: str) -> str:
    """``value`` if it is a string matching :data:`SAFE_NAME` (no spaces, quotes, slashes, braces, newlines).

    Used for every string that ends up in a LAMMPS script, a gap_fit command line or a file name.

    :raises ValueError: naming ``key`` and ``value``.
    """
    if not isinstance(value, str) or not SAFE_NAME.match(value):
        raise ValueError(f'{key} must be a name of letters, digits, _, - and . (not starting with . or -), '
                         f'got {value!r}')
    return value


def basename(value: Any, key: str) -> str:
    """``value`` if it is a bare file name (:func:`safe_name`: no directory part, no ``..``).

    :raises ValueError: naming ``key`` and ``value`` (e.g. ``'../x'``, ``'/etc/passwd'``, ``'a b'``).
    """
    if not isinstance(value, str) or not SAFE_NAME.match(value) or value in ('.', '..'):
        raise ValueError(f'{key} must be a bare file name (letters, digits, _, - and ., no directory part), '
                         f'got {value!r}')
    return value


def known_keys(mapping: dict, allowed, what: str) -> None:
    """Refuse keys of ``mapping`` not in ``allowed``.

    :raises ValueError: ``unknown <what> key(s) [...]; allowed: [...]``.
    """
    if not isinstance(mapping, dict):
        raise ValueError(f'{what} must be a mapping, got {mapping!r}')
    unknown = sorted(set(mapping) - set(allowed), key=str)
    if unknown:
        raise ValueError(f'unknown {what} key(s) {unknown}; allowed: {sorted(allowed)}')
