"""Protocols: complete, sensible inputs of a WorkChain from one call (``get_builder_from_protocol``).

The mechanism follows aiida-quantumespresso's ``ProtocolMixin``
(``aiida_quantumespresso/workflows/protocols/utils.py``), written here without depending on it. Each public
WorkChain has one YAML file in this folder, named by :attr:`ProtocolMixin._protocol_file`::

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
"""

from __future__ import annotations

import copy
import pathlib

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
    """Protocol access for a WorkChain; set :attr:`_protocol_file` (a YAML name in :data:`PROTOCOLS_FOLDER`)."""

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
