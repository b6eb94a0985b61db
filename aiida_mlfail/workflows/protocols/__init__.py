"""Protocols: complete, sensible inputs of a WorkChain from one call (``get_builder_from_protocol``).

The mechanism follows aiida-quantumespresso's ``ProtocolMixin``
(``aiida_quantumespresso/workflows/protocols/utils.py``), written here without depending on it. Each public
WorkChain has one YAML file in this folder, named by ``_protocol_file``::

    default_inputs:        # every input the builder fills, at the default protocol's values
      ...
    default_protocol: fast
    protocols:
      fast:     {description: ..., <only what differs from default_inputs>}
      moderate: {description: ..., ...}
      precise:  {description: ..., ...}

The physics reasons for the numbers are comments next to them in the YAML. ``get_protocol_inputs``
merges ``default_inputs``, the protocol's differences and the caller's ``overrides`` (a nested mapping,
or the path of a YAML file holding one), in that order; a mapping is merged key by key, anything else
(numbers, lists) replaces. CP2K's own physics protocols stay in ``cp2k.yaml`` (read by
:mod:`aiida_mlfail.science.cp2k`).

The WorkChains' ``get_builder_from_protocol(codes, <primary data>, *, protocol=None, overrides=None,
options=None, ...)`` use the helpers below: :func:`resolve_codes` (one code, or a mapping by role
``lammps``, ``gap_fit``, ``quip``, ``explore``, ``rematch``, ``cp2k``), :func:`job_options` (the caller's
scheduler options merged over the protocol's), :func:`classical_reference` / :func:`split_reference`
(the reference: a classical preset or ``{'cp2k': {...}}``), :func:`descriptor_list` (gap_fit descriptors
written as a ``{type: keys}`` mapping in the YAML, so a protocol can change one key of one descriptor).
Outer builders build their inner parts from the inner classes' protocols of the same name, with their own
sections as overrides (``ActiveLearningWorkChain``: ``sampling``, ``gap``, ``label``).
"""

from __future__ import annotations

import copy
import pathlib
import re

import yaml

#: Folder of the protocol YAML files.
PROTOCOLS_FOLDER = pathlib.Path(__file__).resolve().parent


def recursive_merge(left: dict, right: dict) -> dict:
    """A copy of ``left`` updated by ``right``: mappings merged key by key, other values replaced.

    :raises TypeError: if ``left`` or ``right`` is not a mapping.
    """
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise TypeError(f'protocol inputs and overrides must be mappings, got {type(left).__name__} and '
                        f'{type(right).__name__}')
    merged = copy.deepcopy(left)
    for key, value in right.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = recursive_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_overrides(overrides) -> dict:
    """``overrides`` as a mapping: ``None`` -> ``{}``, a mapping as is, a path -> the YAML mapping in that file.

    :raises ValueError: naming the file, for a file whose YAML is not a mapping or cannot be parsed.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return copy.deepcopy(overrides)
    path = pathlib.Path(overrides)
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f'overrides file {str(path)!r} cannot be read: {exc}') from None
    if not isinstance(content, dict):
        raise ValueError(f'overrides file {str(path)!r} must hold a mapping, got {type(content).__name__}')
    return content


class ProtocolMixin:
    """Protocol access for a WorkChain; set ``_protocol_file`` (a YAML name in :data:`PROTOCOLS_FOLDER`)."""

    #: Name of the protocol YAML of the class, e.g. ``'sample.yaml'``.
    _protocol_file: str = ''

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        """The protocol YAML of this class."""
        if not cls._protocol_file:
            raise NotImplementedError(f'{cls.__name__} defines no _protocol_file')
        return PROTOCOLS_FOLDER / cls._protocol_file

    @classmethod
    def _load_protocol_file(cls) -> dict:
        with cls.get_protocol_filepath().open() as handle:
            return yaml.safe_load(handle)

    @classmethod
    def get_default_protocol(cls) -> str:
        """The name of the default protocol (``default_protocol`` of the YAML)."""
        return cls._load_protocol_file()['default_protocol']

    @classmethod
    def get_available_protocols(cls) -> dict:
        """``{name: {'description': ...}}`` of every protocol of the YAML."""
        return {name: {'description': values.get('description', '')}
                for name, values in cls._load_protocol_file()['protocols'].items()}

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None, overrides=None) -> dict:
        """The plain input tree of ``protocol`` (default: the default protocol) with ``overrides`` merged in.

        :param overrides: a nested mapping, or the path of a YAML file holding one (:func:`load_overrides`).
        :raises ValueError: naming the protocol and the available ones, for an unknown protocol.
        """
        data = cls._load_protocol_file()
        protocol = protocol or data['default_protocol']
        if protocol not in data['protocols']:
            raise ValueError(f'{cls.__name__}: unknown protocol {protocol!r}; available: {sorted(data["protocols"])}')
        differences = copy.deepcopy(data['protocols'][protocol])
        differences.pop('description', None)
        inputs = recursive_merge(data['default_inputs'], differences)
        return recursive_merge(inputs, load_overrides(overrides))


# -- helpers of the builders (``get_builder_from_protocol`` of the WorkChains) ----------------------------------

#: Role of a code, by the calculation plugin it defaults to (``default_calc_job_plugin``).
CODE_ROLES = {'mlfail.lammps': 'lammps', 'lammps.raw': 'lammps', 'mlfail.gap_fit': 'gap_fit', 'mlfail.quip': 'quip',
              'mlfail.explore': 'explore', 'mlfail.rematch': 'rematch', 'cp2k': 'cp2k'}


def _load_code(value, role: str, owner: str):
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    if isinstance(value, orm.AbstractCode):
        return value
    if isinstance(value, (str, int)):
        try:
            return orm.load_code(value)
        except (NotExistent, MultipleObjectsError, ValueError) as exc:
            raise ValueError(f'{owner}: codes[{role!r}] = {value!r} is not a code: {exc}') from None
    raise ValueError(f'{owner}: codes[{role!r}] must be an AbstractCode, a code label or a pk, got {value!r}')


def resolve_codes(codes, roles, owner: str) -> dict:
    """``{role: AbstractCode}`` for each of ``roles`` (e.g. ``('gap_fit', 'quip')``).

    :param codes: one code (``AbstractCode``, label such as ``'lammps@localhost'``, or pk) when ``roles`` has one
        role, else a mapping by role (``lammps``, ``gap_fit``, ``quip``, ``explore``, ``rematch``, ``cp2k``; roles
        not needed are ignored, so one mapping serves every builder).
    :param owner: the class name, for the messages.
    :raises ValueError: naming the missing role(s), or the value that is not a code.
    """
    roles = tuple(roles)
    if not isinstance(codes, dict):
        if len(roles) != 1:
            raise ValueError(f'{owner}: give the codes as a mapping by role {list(roles)}, got the single value '
                             f'{codes!r}')
        return {roles[0]: _load_code(codes, roles[0], owner)}
    missing = [role for role in roles if codes.get(role) is None]
    if missing:
        raise ValueError(f'{owner}: codes lack the role(s) {missing} (given: {sorted(codes)}; needed: {list(roles)})')
    return {role: _load_code(codes[role], role, owner) for role in roles}


def job_options(defaults: dict | None, options: dict | None, owner: str = '') -> dict:
    """``metadata.options`` of a job: the protocol's ``defaults`` with the caller's ``options`` merged in.

    :param options: e.g. ``{'max_wallclock_seconds': 600, 'resources': {'num_mpiprocs_per_machine': 2}}``
        (merged key by key, so a partial ``resources`` keeps the other counts).
    :raises ValueError: naming the key, for a key that is not a ``metadata.options`` of a CalcJob.
    """
    from aiida.engine import CalcJob

    options = load_overrides(options)
    allowed = set(CalcJob.spec_options)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f'{owner}: unknown scheduler option(s) {unknown}; allowed: {sorted(allowed)}')
    return recursive_merge(defaults or {}, options)


def _reference_files(reference, owner: str, what: str) -> tuple[dict, dict]:
    """``reference`` with ``files`` as the list of names, and the ``SinglefileData`` per port key.

    ``files`` may be a mapping ``{name: path or SinglefileData}`` (a node's ``filename`` must be ``name``);
    a list of names is refused here (the builder needs the contents).
    """
    import pathlib

    from aiida import orm

    from aiida_mlfail.science import checks

    if not isinstance(reference, dict) or not reference.get('files'):
        return reference, {}
    files = reference['files']
    if not isinstance(files, dict):
        raise ValueError(f"{owner}: {what}.files must be a mapping {{file name: path}} in a builder (the contents "
                         f'are stored as SinglefileData nodes), got {files!r}')
    nodes, keys = {}, {}
    for name, source in files.items():
        try:
            checks.basename(name, f'{what}.files')
        except ValueError as exc:
            raise ValueError(f'{owner}: {exc}') from None
        if isinstance(source, orm.SinglefileData):
            if source.filename != name:
                raise ValueError(f'{owner}: {what}.files.{name}: the SinglefileData is named {source.filename!r}, '
                                 f'not {name!r}')
            node = source
        elif isinstance(source, (str, pathlib.Path)) and pathlib.Path(source).expanduser().is_file():
            node = orm.SinglefileData(pathlib.Path(source).expanduser().resolve(), filename=name)
        else:
            raise ValueError(f'{owner}: {what}.files.{name}: {source!r} is not a readable file (give a path or a '
                             'SinglefileData)')
        key = re.sub(r'[^A-Za-z0-9_]', '_', name)
        key = key if key[0].isalpha() else f'f_{key}'
        if key in keys:
            raise ValueError(f'{owner}: {what}.files: {keys[key]!r} and {name!r} map to the same port key {key!r}')
        keys[key] = name
        nodes[key] = node
    return {**reference, 'files': list(files)}, nodes


def classical_reference_inputs(reference, owner: str, what: str = 'reference') -> tuple[dict, dict]:
    """A classical reference (preset or generic) as the inputs of a WorkChain: the ``potential`` dict (with
    ``files`` as the list of names) and the ``potential_files`` namespace (port key -> ``SinglefileData``).

    :param reference: a preset ``{'name': ..., 'parameters': {...}}`` or a generic reference ``{'name': 'lammps',
        'species', 'atom_style', 'commands', 'files': {file name: path or SinglefileData}, 'charges'}``.
    :raises ValueError: naming ``what`` and the value (as :func:`classical_reference`, or a file that is not
        readable, a node named otherwise).
    """
    if reference is None:
        raise ValueError(f"{owner}: give `{what}`, a classical reference potential such as "
                         "{'name': 'bmhtf_coul_long', 'parameters': {...}} or {'name': 'lammps', 'species': [...], "
                         "'atom_style': 'atomic', 'commands': [...]}")
    potential, nodes = _reference_files(reference, owner, what)
    from aiida_mlfail.science.potentials import ReferencePotential

    try:
        ReferencePotential.from_dict(potential)
    except ValueError as exc:
        raise ValueError(f'{owner}: {what} {reference!r}: {exc}') from None
    return copy.deepcopy(dict(potential)), nodes


def classical_reference(reference, owner: str, what: str = 'reference') -> dict:
    """A classical reference checked by ``ReferencePotential``: a preset ``{'name': ..., 'parameters': {...}}``
    or a generic ``{'name': 'lammps', ...}`` whose ``files`` may map names to paths (see
    :func:`classical_reference_inputs`, which makes the nodes).

    :returns: the dict as given (a copy; a ``files`` mapping kept as given).
    :raises ValueError: naming ``what`` and the value (missing, not a mapping, unknown name or parameter, a
        refused command, a file that is not readable).
    """
    classical_reference_inputs(reference, owner, what)
    result = copy.deepcopy({key: value for key, value in reference.items() if key != 'files'})
    if 'files' in reference:
        files = reference['files']
        result['files'] = dict(files) if isinstance(files, dict) else copy.deepcopy(files)
    return result


#: Keys of a CP2K reference ``{'cp2k': {...}}``.
CP2K_REFERENCE_KEYS = ('protocol', 'overrides')


def split_reference(reference, owner: str) -> tuple[str, dict]:
    """The kind and content of a labeller reference.

    :param reference: a classical preset ``{'name': ..., 'parameters': ...}`` -> ``('lammps', preset)``, or
        ``{'cp2k': {'protocol': name of protocols/cp2k.yaml (optional), 'overrides': CP2K sections (optional)}}``
        -> ``('cp2k', {...})``.
    :raises ValueError: naming the value (neither form, unknown key, unknown CP2K protocol, bad preset).
    """
    if isinstance(reference, dict) and 'cp2k' in reference:
        from aiida_mlfail.science import cp2k as cp2k_science

        cp2k = reference['cp2k'] if reference['cp2k'] is not None else {}
        if len(reference) != 1 or not isinstance(cp2k, dict):
            raise ValueError(f"{owner}: a CP2K reference is {{'cp2k': {{'protocol': ..., 'overrides': ...}}}}, "
                             f'got {reference!r}')
        unknown = sorted(set(cp2k) - set(CP2K_REFERENCE_KEYS))
        if unknown:
            raise ValueError(f'{owner}: reference.cp2k has unknown key(s) {unknown}; allowed: '
                             f'{list(CP2K_REFERENCE_KEYS)}')
        if cp2k.get('protocol') is not None:
            try:
                cp2k_science.load_protocol(cp2k['protocol'])
            except ValueError as exc:
                raise ValueError(f'{owner}: reference.cp2k.protocol: {exc}') from None
        if cp2k.get('overrides') is not None and not isinstance(cp2k['overrides'], dict):
            raise ValueError(f"{owner}: reference.cp2k.overrides must be a mapping of CP2K sections, got "
                             f"{cp2k['overrides']!r}")
        return 'cp2k', copy.deepcopy(cp2k)
    return 'lammps', classical_reference(reference, owner)


def as_structure(structure, owner: str, what: str = 'structure'):
    """``structure`` as a ``StructureData`` (an ``ase.Atoms`` is converted).

    :raises ValueError: naming ``what``, for anything else.
    """
    import ase
    from aiida import orm

    if isinstance(structure, orm.StructureData):
        return structure
    if isinstance(structure, ase.Atoms):
        return orm.StructureData(ase=structure)
    raise ValueError(f'{owner}: {what} must be a StructureData or ase.Atoms, got {type(structure).__name__}')


def descriptor_list(descriptors: dict) -> list[dict]:
    """gap_fit descriptors of a protocol, ``{type: {key: value}}`` (``None`` drops a type), as the list of
    dicts with ``type`` that ``science.gap.normalise_fit_parameters`` takes (in the mapping's order).

    :raises ValueError: when no descriptor is left or a value is not a mapping.
    """
    result = []
    for kind, values in (descriptors or {}).items():
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ValueError(f'descriptor {kind!r} must be a mapping of gap_fit keys (or null to drop it), '
                             f'got {values!r}')
        result.append({'type': kind, **values})
    if not result:
        raise ValueError('the protocol leaves no descriptor: give at least one of fit.parameters.descriptors')
    return result


#: Inputs of a ``BaseRestartWorkChain`` a protocol may set for a restart wrapper (besides ``job``).
WRAPPER_KEYS = ('max_iterations', 'clean_workdir', 'handler_overrides', 'restart')


def wrapper_inputs_from_protocol(section: dict | None, code, options: dict | None, owner: str, *,
                                 job: dict | None = None) -> dict:
    """Builder inputs of a restart wrapper exposed by role (``fit``, ``predict``, ``explore``, ``lammps`` ...,
    see :func:`aiida_mlfail.workflows.common.expose_job`) from its protocol section.

    The section mirrors the ports: ``{max_iterations, clean_workdir, handler_overrides, restart, job:
    {metadata: {options: {...}}, <job ports>}}``.

    :param section: the protocol's mapping for the role (``None``: nothing but the code and ``options``).
    :param code: the job's code (``job.code``).
    :param options: the caller's scheduler options, merged over ``job.metadata.options`` of the section.
    :param job: job inputs the builder made (nodes), set next to the code (e.g. ``{'parameters': Dict}``).
    :returns: ``{'job': {'code': ..., 'metadata': {'options': ...}, ...}, 'max_iterations': Int, ...}``
        (plain values are turned into AiiDA nodes: ``Int``, ``Bool``, ``Dict``).
    :raises ValueError: naming an unknown key of the section or an unknown scheduler option.
    """
    from aiida import orm

    section = copy.deepcopy(dict(section or {}))
    unknown = sorted(set(section) - {*WRAPPER_KEYS, 'job'})
    if unknown:
        raise ValueError(f'{owner}: unknown key(s) {unknown} of a restart wrapper; allowed: '
                         f"{[*WRAPPER_KEYS, 'job']}")
    job_section = dict(section.pop('job', None) or {})
    metadata = dict(job_section.pop('metadata', None) or {})
    metadata['options'] = job_options(metadata.get('options'), options, owner)
    result = {'job': {**job_section, **(job or {}), 'code': code, 'metadata': metadata}}
    for key, value in section.items():
        if value is None:
            continue
        result[key] = orm.to_aiida_type(value)
    return result
