"""The input tree of ``aiida-mlfail launch ENTRY_POINT``: YAML and ``key=value`` read, plain values turned into
nodes against the process's ports (or into ``get_builder_from_protocol`` arguments), default codes filled in, and
everything validated before anything is stored."""

from __future__ import annotations

import pathlib
import re

import click

#: Default code label of a missing ``code`` port, by the namespace that holds it (for the ``job.code`` of a
#: restart wrapper exposed by role, the role: ``fit.job.code`` -> ``fit``) ...
NAMESPACE_CODES = {'fit': 'gap_fit', 'predict': 'quip', 'explore': 'explore', 'lammps': 'lammps',
                   'sampling': 'lammps', 'reference': 'lammps', 'cp2k': 'cp2k', 'md': 'lammps', 'rematch': 'rematch'}
#: ... or, for a top-level ``code`` port, by the entry point being launched.
ENTRY_POINT_CODES = {'mlfail.sample': 'lammps', 'mlfail.mlmd': 'lammps', 'mlfail.lammps': 'lammps',
                     'mlfail.gap_fit': 'gap_fit', 'mlfail.quip': 'quip', 'mlfail.explore': 'explore',
                     'mlfail.rematch': 'rematch', 'mlfail.config_space': 'rematch'}

def parse_override(text: str) -> tuple[list[str], object]:
    """``'gap.fit.parameters.sigma.energy=0.003'`` -> ``(['gap', 'fit', 'parameters', 'sigma', 'energy'], 0.003)``.

    The value is parsed as YAML (numbers, booleans, lists ``[1, 2]`` and mappings ``{a: 1}`` work).

    :raises click.BadParameter: without ``=``, with an empty key or key part, or a value that is not YAML
        (naming the key).
    """
    import yaml

    key, sep, value = text.partition('=')
    keys = key.strip().split('.')
    if not sep or not key.strip() or not all(k.strip() for k in keys):
        raise click.BadParameter(f'{text!r} is not of the form key=value (dotted keys for nested inputs)')
    try:
        parsed = yaml.safe_load(value) if value.strip() else ''
    except yaml.YAMLError as exc:
        raise click.BadParameter(f'{key.strip()}: the value {value!r} is not valid YAML ({_one_line(exc)})') from exc
    return [k.strip() for k in keys], parsed


def _one_line(exc) -> str:
    return ' '.join(str(exc).split())


def read_inputs_file(path) -> dict:
    """The input tree of a ``--inputs`` YAML file.

    :raises click.BadParameter: naming the file for a file that is not UTF-8 text, not YAML (with the line
        and column) or whose top level is not a mapping.
    """
    import yaml

    path = pathlib.Path(path)
    try:
        tree = yaml.safe_load(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise click.BadParameter(f'{path}: not a readable YAML file ({_one_line(exc)})', param_hint='--inputs') from exc
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise click.BadParameter(f'{path}: the YAML must be a mapping of input names, got a {type(tree).__name__}',
                                 param_hint='--inputs')
    return tree


def check_plain_value(value, where: str) -> None:
    """Refuse a plain YAML value that AiiDA could not store: a non-finite number (``.inf``, ``.nan``), a
    non-string key or a value JSON cannot hold (a YAML date, ...), naming the dotted key.

    :raises click.BadParameter: naming ``where`` (extended by the keys / indices inside the value).
    """
    import datetime
    import math

    if isinstance(value, float) and not math.isfinite(value):
        raise click.BadParameter(f'{where}: {value!r} is not a finite number')
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise click.BadParameter(f'{where}: the key {key!r} is not a string')
            check_plain_value(item, f'{where}.{key}')
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_plain_value(item, f'{where}[{index}]')
    elif isinstance(value, (datetime.date, datetime.datetime, bytes, set)):
        raise click.BadParameter(f'{where}: {value!r} ({type(value).__name__}) cannot be stored; quote it to give '
                                 'a string')


def apply_override(tree: dict, keys: list[str], value) -> None:
    """Set ``tree[k1][k2]... = value``, creating the intermediate mappings."""
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def _load_node_reference(value, valid_types, where: str):
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    reference = int(value) if isinstance(value, int) or str(value).isdigit() else str(value)
    if isinstance(reference, int) and not 0 < reference < 2**63:  # (the storage backend overflows on the query)
        raise click.BadParameter(f'{where}: {value!r} is neither a file nor a node pk/uuid (no such pk)')
    try:
        node = orm.load_node(reference)
    except (NotExistent, MultipleObjectsError, ValueError) as exc:
        raise click.BadParameter(f'{where}: {value!r} is neither a file nor a node pk/uuid ({exc})') from exc
    except Exception as exc:  # noqa: BLE001 (e.g. OverflowError of a huge pk in the storage backend)
        raise click.BadParameter(f'{where}: {value!r} is neither a file nor a node pk/uuid '
                                 f'({type(exc).__name__}: {exc})') from exc
    if valid_types and not isinstance(node, valid_types):
        names = ', '.join(t.__name__ for t in valid_types)
        raise click.BadParameter(f'{where}: node <{node.pk}> is a {type(node).__name__}, expected {names}')
    return node


def _existing_path(value) -> pathlib.Path | None:
    """``value`` as an existing path, or ``None`` (also for strings that cannot be paths: NUL, too long)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        path = pathlib.Path(value).expanduser()
        return path if path.exists() else None
    except (OSError, ValueError, RuntimeError):
        return None


def _read_file(where: str, path: pathlib.Path, what: str, reader):
    """``reader()`` (which reads ``path``), any failure refused as ``click.BadParameter`` naming ``where``,
    the file and the reason (an untrusted file: ASE and the XML parser raise many exception types)."""
    try:
        return reader()
    except Exception as exc:  # noqa: BLE001
        raise click.BadParameter(f'{where}: {path} is not {what}: {type(exc).__name__}: {_one_line(exc)}') from exc


def convert_value(value, valid_type, where: str, computer: str | None):
    """A plain YAML value turned into what a port of ``valid_type`` takes (never stored: new nodes are
    unstored, nodes given by pk/uuid are loaded).

    Codes: ``label@computer`` or ``label`` (then ``@computer``); ``Dict``/``List``: mappings/lists;
    base types: scalars; ``StructureData``: a structure file (any ASE format) or a node pk/uuid;
    ``TrainingSetData``: an extxyz file (unknown reference), a mapping ``{file: PATH, reference: LABEL}``
    (LABEL as ``verdi data mlfail trainingset import --reference``) or a node; ``GapPotentialData``: a
    folder with ``gap.xml`` or a node; any other node type: a pk/uuid.

    :raises click.BadParameter: naming ``where`` (the dotted port) for a value that cannot be converted: a
        file that cannot be read as what the port takes (the file and the reason named), a missing node or
        code, a non-finite number or a value that cannot be stored (:func:`check_plain_value`).
    """
    from aiida import orm

    from aiida_mlfail.data.gap_potential import GapPotentialData
    from aiida_mlfail.data.training_set import TrainingSetData

    if isinstance(value, orm.Node):
        return value
    check_plain_value(value, where)
    if valid_type is None:
        return value
    types = tuple(t for t in (valid_type if isinstance(valid_type, tuple) else (valid_type,)) if t is not type(None))
    if not types:
        return value

    def accepts(cls):
        return any(issubclass(cls, t) or issubclass(t, cls) for t in types)

    if any(issubclass(t, orm.AbstractCode) for t in types):
        label = str(value)
        if '@' not in label and computer:
            label = f'{label}@{computer}'
        try:
            return orm.load_code(label)
        except Exception as exc:  # noqa: BLE001 (NotExistent, MultipleObjectsError, ...: one clear message)
            raise click.BadParameter(f'{where}: no code {label!r} ({exc})') from exc
    if isinstance(value, dict) and any(issubclass(t, TrainingSetData) for t in types):
        return _training_set_from_mapping(value, where)
    if isinstance(value, dict) and accepts(orm.Dict):
        return orm.Dict(value)
    if isinstance(value, list) and accepts(orm.List):
        return orm.List(value)
    path = _existing_path(value)
    if path is not None:
        if any(issubclass(t, TrainingSetData) for t in types):
            return _read_file(where, path, 'an extxyz training set', lambda: TrainingSetData.from_file(path))
        if any(issubclass(t, GapPotentialData) for t in types):
            return _read_file(where, path, 'a GAP (a folder with gap.xml and its sparseX files, or a GAP XML file)',
                              lambda: GapPotentialData.from_folder(path if path.is_dir() else path.parent,
                                                                   'gap.xml' if path.is_dir() else path.name))
        if any(issubclass(t, orm.StructureData) for t in types):
            import ase.io

            return _read_file(where, path, 'a structure ASE can read',
                              lambda: orm.StructureData(ase=ase.io.read(path)))
        if any(issubclass(t, orm.SinglefileData) for t in types):
            return _read_file(where, path, 'a readable file', lambda: orm.SinglefileData(path.resolve()))
    if isinstance(value, (bool, int, float, str)) and not any(
            issubclass(t, (orm.StructureData, TrainingSetData, GapPotentialData, orm.Dict, orm.List)) for t in types):
        for base in (orm.Bool, orm.Int, orm.Float, orm.Str):
            if accepts(base):
                return orm.to_aiida_type(value)
    if isinstance(value, (int, str)):
        return _load_node_reference(value, tuple(t for t in types if issubclass(t, orm.Node)), where)
    raise click.BadParameter(f'{where}: cannot turn {value!r} into {", ".join(t.__name__ for t in types)}')


def _training_set_from_mapping(value: dict, where: str):
    """``{file: PATH, reference: LABEL}`` -> an unstored TrainingSetData of that reference (``click.BadParameter``
    naming ``where`` for a missing file, unknown keys or a bad reference)."""
    from aiida_mlfail.data.training_set import TrainingSetData
    from aiida_mlfail.science.references import reference_from_text

    unknown = sorted(set(value) - {'file', 'reference'})
    if unknown or 'file' not in value:
        raise click.BadParameter(f'{where}: a training set mapping takes `file` and `reference`, got {sorted(value)}')
    path = _existing_path(str(value['file']))
    if path is None or not path.is_file():
        raise click.BadParameter(f'{where}.file: no file {str(value["file"])!r}')
    try:
        reference = reference_from_text(value['reference']) if value.get('reference') is not None else None
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(f'{where}.reference: {exc}') from exc
    return _read_file(f'{where}.file', path, 'an extxyz training set',
                      lambda: TrainingSetData.from_file(path, reference=reference))


def check_port_key(key, where: str) -> None:
    """A key of a dynamic namespace (e.g. ``potential_files``) becomes a link label: letters, digits and
    underscores, not starting with a digit or an underscore, not ending with one (aiida-core's
    ``validate_link_label``). A file name such as ``Si.sw`` is not one: the node keeps the file name, the key is
    only the port's name.

    :raises click.BadParameter: naming the key and a usable key (``Si.sw`` -> ``Si_sw``).
    """
    from aiida.common.links import validate_link_label

    try:
        validate_link_label(key)
    except (ValueError, TypeError) as exc:
        suggestion = re.sub(r'[^A-Za-z0-9_]', '_', str(key)).strip('_')
        suggestion = suggestion if suggestion[:1].isalpha() else f'f_{suggestion}'
        raise click.BadParameter(f'{where}: {key!r} is not a port name ({exc}); a key is letters, digits and '
                                 f'underscores, e.g. {suggestion!r} (a file keeps its own file name)') from None


def convert_inputs(tree: dict, namespace, computer: str | None, path: str = '') -> dict:
    """Convert a plain input tree against a port namespace (recursively); ``metadata`` stays plain."""
    from aiida.engine.processes.ports import PortNamespace

    out = {}
    for key, value in tree.items():
        where = f'{path}{key}'
        if key == 'metadata':
            check_plain_value(value, where)
            out[key] = value
            continue
        port = namespace.get(key) if hasattr(namespace, 'get') else None
        if port is None:
            if not getattr(namespace, 'dynamic', False):
                raise click.BadParameter(f'{where}: no such input; known: {sorted(namespace)}')
            check_port_key(key, where)
            out[key] = convert_value(value, namespace.valid_type, where, computer)
        elif isinstance(port, PortNamespace):
            if not isinstance(value, dict):
                raise click.BadParameter(f'{where} is a namespace: give a mapping, got {value!r}')
            out[key] = convert_inputs(value, port, computer, where + '.')
        else:
            out[key] = convert_value(value, port.valid_type, where, computer)
    return out


def _port_path(breadcrumbs: str) -> str:
    """A ``PortValidationError`` port (``'inputs.md'``/``'md'``) as the dotted key the user gave."""
    text = str(breadcrumbs)
    return text[len('inputs.'):] if text.startswith('inputs.') else ('' if text == 'inputs' else text)


def assign_inputs(builder_namespace, inputs: dict, path: str = '') -> None:
    """Set converted ``inputs`` on a builder (namespace) key by key, as ``builder._update`` does.

    The builder validates every value as it is set (type and port validator).

    :raises click.ClickException: (exit code 1) ``invalid inputs: <dotted port>: <message>``, for a refused
        value or a validator that raised ``ValueError``/``TypeError`` instead of returning a message.
    """
    from aiida.engine.processes.ports import PortNamespace

    namespace = builder_namespace._port_namespace
    for key, value in inputs.items():
        where = f'{path}{key}'
        port = namespace.get(key) if key in namespace else None
        try:
            if isinstance(value, dict) and isinstance(port, PortNamespace):
                assign_inputs(builder_namespace[key], value, where + '.')
            else:
                setattr(builder_namespace, key, value)
        except click.ClickException:
            raise
        except (ValueError, TypeError, AttributeError) as exc:
            message = re.sub(r"^(invalid attribute value )?(Error occurred validating port '[^']*': )?", '',
                             _one_line(exc))
            if not message.startswith(f'{key}:'):
                message = f'{where}: {message}'
            elif path:
                message = f'{path}{message}'
            raise click.ClickException(f'invalid inputs: {message}') from exc


def validate_inputs(process_class, builder) -> None:
    """Validate the builder's inputs against the whole input namespace, as the process will, before anything
    is stored (defaults filled, namespace validators run).

    :raises click.ClickException: (exit code 1) ``invalid inputs: <port>: <message>``, naming the dotted port
        (the process class for a validator of the whole namespace),
        also when a validator raised ``ValueError``/``TypeError`` instead of returning a message.
    """
    spec = process_class.spec().inputs
    try:
        parsed = spec.pre_process(dict(builder._inputs(prune=True)))
        error = spec.validate(parsed)
    except (ValueError, TypeError) as exc:
        where = _raising_port(spec, builder._inputs(prune=True)) or process_class.__name__
        raise click.ClickException(f'invalid inputs: {where}: {_one_line(exc)}') from exc
    if error:
        where = _port_path(error.port) or process_class.__name__
        raise click.ClickException(f'invalid inputs: {where}: {_one_line(error.message)}')


def _raising_port(namespace, values, path: str = '') -> str:
    """The deepest port (dotted) whose validation raises for ``values``, '' if none does on its own."""
    from aiida.engine.processes.ports import PortNamespace

    if not isinstance(values, dict):
        return ''
    for key, value in values.items():
        port = namespace.get(key) if key in namespace else None
        if port is None:
            continue
        try:
            if isinstance(port, PortNamespace):
                port.validate(port.pre_process(dict(value)) if isinstance(value, dict) else value)
            else:
                port.validate(value)
        except (ValueError, TypeError):
            inner = _raising_port(port, value, f'{path}{key}.') if isinstance(port, PortNamespace) else ''
            return inner or f'{path}{key}'
    return ''


def fill_default_codes(inputs: dict, namespace, entry_point: str, computer: str, path: str = '') -> list[str]:
    """Fill missing ``code`` ports with ``<label>@<computer>`` by :data:`NAMESPACE_CODES` / :data:`ENTRY_POINT_CODES`.

    Only namespaces that are required or present in ``inputs`` are filled, and only with codes that
    exist. :returns: the ``port: code`` lines that were filled.
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.engine.processes.ports import PortNamespace

    filled = []
    for key, port in namespace.items():
        if key == 'metadata':
            continue
        where = f'{path}{key}'
        if isinstance(port, PortNamespace):
            if key in inputs or port.required:
                sub = inputs.get(key, {})
                filled += fill_default_codes(sub, port, entry_point, computer, where + '.')
                if sub:
                    inputs[key] = sub
            continue
        valid = port.valid_type if isinstance(port.valid_type, tuple) else (port.valid_type,)
        if key != 'code' or key in inputs or not any(t is not None and issubclass(t, orm.AbstractCode)
                                                     for t in valid if t is not type(None)):
            continue
        parts = path.rstrip('.').split('.') if path else []
        if parts and parts[-1] == 'job':  # a restart wrapper's job: the role names the code
            parts = parts[:-1]
        owner = parts[-1] if parts else None
        label = NAMESPACE_CODES.get(owner) if owner else ENTRY_POINT_CODES.get(entry_point)
        if label is None:
            continue
        try:
            inputs[key] = orm.load_code(f'{label}@{computer}')
        except NotExistent:
            continue
        filled.append(f'{where}: {label}@{computer}')
    return filled

#: Code labels set up by ``make demo``/``make test`` (``scripts/setup-aiida.sh``), one per role of
#: ``get_builder_from_protocol``'s ``codes`` mapping.
CODE_ROLES = ('lammps', 'gap_fit', 'quip', 'explore', 'rematch', 'cp2k')

#: Builder arguments and the node type their plain value (a file, a pk/uuid, a mapping) is turned into.
BUILDER_ARGUMENT_TYPES = {'structure': 'structure', 'pool': 'training_set', 'validation_set': 'training_set',
                          'configurations': 'training_set', 'x': 'training_set', 'y': 'training_set',
                          'potential': 'potential', 'training_set': 'training_set'}


def _full_reference_species(reference):
    """The species of ``reference`` if it is a generic ``atom_style: full`` reference (a mapping), else None."""
    if isinstance(reference, dict) and reference.get('name') == 'lammps' and reference.get('atom_style') == 'full':
        species = reference.get('species')
        return list(species) if isinstance(species, (list, tuple)) else None
    return None


def _builder_argument(name: str, value, computer: str, reference=None):
    """The value of builder argument ``name``: nodes for :data:`BUILDER_ARGUMENT_TYPES`, plain mappings else.
    A ``structure`` may also be a mapping ``{system: ..., ...}`` of a named preset (``science.structures``,
    as ``structure_spec`` of ``mlfail.sample``). With a generic ``atom_style: full`` ``reference``, a
    ``structure`` file is a LAMMPS data file of that style (the reference's ``data_file``, typically), read
    with ``science.structures.structure_from_data_file`` and the reference's species, so that structure and
    topology agree by construction."""
    from aiida import orm

    from aiida_mlfail.data.gap_potential import GapPotentialData
    from aiida_mlfail.data.training_set import TrainingSetData

    kind = BUILDER_ARGUMENT_TYPES.get(name)
    if kind is None:
        return value
    if kind == 'structure' and isinstance(value, dict):
        from aiida_mlfail.calculations.functions import check_structure_spec
        from aiida_mlfail.science import structures

        message = check_structure_spec(value)
        if message:
            raise click.BadParameter(f'{name}: {message}')
        return orm.StructureData(ase=structures.from_spec(value))
    species = _full_reference_species(reference) if kind == 'structure' else None
    path = _existing_path(value) if species else None
    if path is not None:
        from aiida_mlfail.science.structures import structure_from_data_file

        return _read_file(name, path, 'a LAMMPS data file of atom_style full (the reference is atom_style full)',
                          lambda: orm.StructureData(ase=structure_from_data_file(path, species)))
    valid_type = {'structure': orm.StructureData, 'training_set': TrainingSetData, 'potential': GapPotentialData}[kind]
    return convert_value(value, valid_type, name, computer)


def builder_from_protocol(process_class, protocol: str, tree: dict, computer: str):
    """``process_class.get_builder_from_protocol(codes, <primary data>, protocol=, overrides=, ...)`` from a plain tree.

    Keys of ``tree`` that name an argument of the builder (``structure``, ``pool``, ``reference``,
    ``options``, ...) are that argument (files, pks/uuids and preset mappings turned into nodes); ``codes``
    maps roles to code labels (default: the codes of :data:`CODE_ROLES` that exist on ``computer``); every
    other key is an override of the protocol's inputs.

    :raises click.BadParameter: naming the argument, for a missing primary input, or a value the builder refuses.
    """
    import inspect

    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    tree = dict(tree)
    signature = inspect.signature(process_class.get_builder_from_protocol)
    names = [n for n in signature.parameters if n not in ('codes', 'protocol', 'overrides')]
    codes = {}
    for role in CODE_ROLES:
        try:
            codes[role] = orm.load_code(f'{role}@{computer}')
        except (NotExistent, MultipleObjectsError):
            continue
    given = tree.pop('codes', {}) or {}
    if not isinstance(given, dict):
        raise click.BadParameter(f'codes: give a mapping of role to code label, got {given!r}')
    for role, label in given.items():
        codes[role] = convert_value(label, orm.AbstractCode, f'codes.{role}', computer)
    reference = tree.get('reference')
    arguments = {n: _builder_argument(n, tree.pop(n), computer, reference) for n in names if n in tree}
    required = [n for n, p in signature.parameters.items() if n in names and p.default is inspect.Parameter.empty]
    missing = [n for n in required if n not in arguments]
    if missing:
        raise click.BadParameter(f'{process_class.__name__}.get_builder_from_protocol needs {missing}: give them as '
                                 f'key=value or in --inputs (e.g. {missing[0]}=FILE_OR_PK)')
    try:
        return process_class.get_builder_from_protocol(codes, protocol=protocol, overrides=tree, **arguments)
    except (ValueError, TypeError, KeyError) as exc:
        raise click.ClickException(f'invalid inputs: {_one_line(exc)}') from None
