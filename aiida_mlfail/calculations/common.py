"""Pieces shared by CalcJobs and WorkChains (WorkChains import them from here; CalcJobs must not import workflows)."""

from __future__ import annotations

from collections.abc import Callable


def dict_validator(check: Callable[[dict], object], port: str | None = None):
    """A port validator for a ``Dict`` input: runs ``check(value.get_dict())`` and turns its
    ``ValueError`` into the message ``'<port>: <error>'`` (just ``'<error>'`` without ``port``, for checks
    whose messages name the key already; ``None`` when the check passes)."""

    def validator(value, ctx=None):
        try:
            check(value.get_dict())
        except ValueError as exc:
            return f'{port}: {exc}' if port else str(exc)
        return None

    return validator


def port_excluded(ctx, port: str) -> bool:
    """Whether ``port`` is absent from the namespace ``ctx`` that a namespace validator is given, i.e. a
    wrapping process excluded it when exposing the inputs (``ctx`` ``None``: called directly, nothing excluded).

    Namespace validators skip the checks that need such a port and run the others (the pattern of
    aiida-quantumespresso's ``PwCalculation.validate_inputs``: ``if 'parent_folder' not in port_namespace:
    return``), so a wrapper keeps its child's validator instead of switching it off."""
    return ctx is not None and port not in ctx


def structure_message(structure, *, periodic: bool = True, where: str = 'structure') -> str | None:
    """Why a ``StructureData`` cannot start a job (``science.structures.check_structure`` on its
    ``get_ase()``), or ``None`` when it can. For port validators: the message names ``where``, and
    the offending atoms and distance (Å) or the pbc / volume / position."""
    from aiida_mlfail.science.structures import check_structure  # noqa: PLC0415

    try:
        check_structure(structure.get_ase(), periodic=periodic, where=where)
    except (ValueError, KeyError) as exc:  # KeyError: a kind symbol ASE does not know
        return str(exc) if isinstance(exc, ValueError) else f'{where}: unknown element {exc}'
    return None


def structure_validator(where: str = 'structure', *, periodic: bool = True):
    """A port validator of a ``StructureData`` input: :func:`structure_message` (``None`` when valid)."""

    def validator(value, ctx=None):
        return structure_message(value, periodic=periodic, where=where)

    return validator


def lammps_data_message(script: str, files: dict, settings: dict | None) -> str | None:
    """Why the start structure of a LAMMPS MD script cannot run, or ``None``.

    The structure is the file named by the script's ``read_data`` among ``files`` (written name ->
    text of a LAMMPS data file), read with ASE (species from ``settings['type_map']``: symbol of
    type 1, 2, ...; else from the masses) and checked by ``science.structures.check_structure``
    (periodic when the script's ``boundary`` is ``p p p`` or absent). A ``rerun`` script (single
    points of given frames, nothing moves) and a script without ``read_data`` are not checked, nor a
    file ASE cannot read (LAMMPS will report it).
    """
    import io  # noqa: PLC0415

    from ase.data import atomic_numbers  # noqa: PLC0415
    from ase.io import read  # noqa: PLC0415

    from aiida_mlfail.science.structures import check_structure  # noqa: PLC0415

    commands = [line.split('#', 1)[0].split() for line in script.splitlines()]
    commands = [words for words in commands if words]
    if any(words[0] == 'rerun' for words in commands):
        return None
    data = [words[1] for words in commands if words[0] == 'read_data' and len(words) > 1]
    if not data or data[0] not in files:
        return None
    boundary = [words[1:4] for words in commands if words[0] == 'boundary']
    periodic = not boundary or boundary[-1] == ['p', 'p', 'p']
    type_map = (settings or {}).get('type_map')
    z_of_type = None
    if type_map and all(symbol in atomic_numbers for symbol in type_map):
        z_of_type = {index + 1: atomic_numbers[symbol] for index, symbol in enumerate(type_map)}
    try:
        atoms = read(io.StringIO(files[data[0]]), format='lammps-data', units='metal', Z_of_type=z_of_type)
    except Exception:  # noqa: BLE001 (ASE raises many types on files it cannot read; LAMMPS will tell)
        return None
    try:
        check_structure(atoms, periodic=periodic, where=f'files: the read_data structure {data[0]!r}')
    except ValueError as exc:
        return str(exc)
    return None


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


#: Default ``metadata.options.resources`` of the package's jobs: one process on one machine.
SINGLE_PROCESS = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}

#: Message of exit code 350, which :class:`aiida_mlfail.parsers.base.MlfailParser` returns for any
#: exception of a parser (``{exception}`` is its ``repr``).
PARSER_EXCEPTION_MESSAGE = 'the parser raised an unexpected exception: {exception}'


def define_job_defaults(spec, parser_name: str, *, withmpi: bool | None = None) -> None:
    """What every CalcJob of the package sets in ``define``: the default parser (entry point name
    ``parser_name``), single-process resources (:data:`SINGLE_PROCESS`), ``withmpi`` when given (left
    to the parent class when ``None``) and exit code ``350 ERROR_PARSER_EXCEPTION``
    (350 is the unexpected parser exception, docs: reliability)."""
    options = spec.inputs['metadata']['options']
    options['parser_name'].default = parser_name
    options['resources'].default = dict(SINGLE_PROCESS)
    if withmpi is not None:
        options['withmpi'].default = withmpi
    spec.exit_code(350, 'ERROR_PARSER_EXCEPTION', message=PARSER_EXCEPTION_MESSAGE)
