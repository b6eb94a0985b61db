"""Pieces shared by the WorkChains: port validators built from science checks, restart wrappers exposed by role
(:func:`~aiida_mlfail.workflows.common.expose_job`,
:func:`~aiida_mlfail.workflows.common.wrapper_inputs`) and caching of failed jobs."""

from __future__ import annotations

from aiida import orm

from aiida_mlfail.calculations.common import (  # noqa: F401 (re-exported for the WorkChains)
    dict_validator,
    node_validator,
    port_excluded,
    structure_message,
    structure_validator,
)


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


def expose_job(spec, wrapper, namespace: str, *, keep: tuple[str, ...] = ('code',), required: bool = True,
               help: str | None = None) -> None:  # noqa: A002 (the port-namespace keyword of aiida-core)
    """Expose the restart wrapper ``wrapper`` (a :class:`~aiida_mlfail.workflows.restart.JobRestartWorkChain`
    or any ``BaseRestartWorkChain`` with a ``job`` namespace) under ``namespace`` of ``spec``: the wrapper's
    own inputs (``max_iterations``, ``clean_workdir``, ``handler_overrides``, ``restart`` ...) and, of its
    ``job``, only ``metadata`` (the CalcJob's ``metadata.options``, whose ports refuse an unknown option at
    submit time) and the ports named in ``keep`` (default the code). The outer WorkChain makes the other job
    inputs (script, structure, training set ...) and adds them with :func:`wrapper_inputs`.

    The namespace and its ``job`` are closed (``dynamic`` ``False``): plumpy's ``absorb`` copies the wrapper's
    ``valid_type`` (``Data``), which makes a namespace dynamic, so a misspelt key (``max_iteration``,
    ``job.metdata``) would be accepted silently; closed, it fails at submit time naming the key. The job's
    ``code`` (when kept) is required: a role without a code fails at submit time, not when its job starts.

    :param required: ``False`` for an optional role (then no defaults are populated when it is absent).
    :raises KeyError: when a name in ``keep`` is not a port of the job.
    """
    job = wrapper.spec().inputs['job']
    for name in keep:
        job[name]  # noqa: B018 (KeyError for a port the job does not have)
    exclude = tuple(f'job.{name}' for name in job if name not in (*keep, 'metadata'))
    options = {'valid_type': None, 'dynamic': False}
    if not required:
        options.update(required=False, populate_defaults=False)
    if help:
        options['help'] = help
    spec.expose_inputs(wrapper, namespace=namespace, exclude=exclude, namespace_options=options)
    exposed = spec.inputs[namespace]['job']
    exposed.dynamic = False
    if 'code' in exposed:  # aiida-core's CalcJob code is optional (a job may run from a remote folder): not here
        exposed['code'].required = True


def wrapper_inputs(process, wrapper, namespace: str, *, call_link_label: str | None = None, label: str | None = None,
                   **job) -> dict:
    """The inputs of ``wrapper`` exposed under ``namespace`` of ``process`` (see :func:`expose_job`), with the
    job inputs ``job`` the outer WorkChain made merged into its ``job`` namespace.

    :param call_link_label: the link label of the wrapper from ``process`` (its ``metadata.call_link_label``).
    :param label: the label of the wrapper and of its job (``metadata.label``, ``job.metadata.label``).
    :returns: a dict to pass to ``process.submit(wrapper, **inputs)``.
    """
    inputs = dict(process.exposed_inputs(wrapper, namespace=namespace))
    merged = {**dict(inputs.get('job', {})), **job}
    metadata = dict(inputs.get('metadata') or {})
    if label is not None:
        merged['metadata'] = {**dict(merged.get('metadata', {})), 'label': label}
        metadata['label'] = label
    if call_link_label is not None:
        metadata['call_link_label'] = call_link_label
    if metadata:
        inputs['metadata'] = metadata
    inputs['job'] = merged
    return inputs


#: Help of the ``potential_files`` namespaces next to a classical reference ``potential`` Dict.
POTENTIAL_FILES_HELP = ('The files the reference potential names (its `files`: EAM, Tersoff, SW tables, the '
                        '`data_file` of atom_style full ...), one '
                        'SinglefileData each whose `filename` is the name the commands use; written into every '
                        'LAMMPS job of the reference.')


def define_potential_files(spec, name: str) -> None:
    """A dynamic namespace ``name`` of ``SinglefileData`` (the files of a generic reference potential)."""
    spec.input_namespace(name, valid_type=orm.SinglefileData, dynamic=True, required=False,
                         populate_defaults=False, help=POTENTIAL_FILES_HELP)


def potential_files_message(potential, files, where: str) -> str | None:
    """Why the file nodes ``files`` (mapping key -> ``SinglefileData``) do not match the ``files`` of the
    reference ``potential`` (``Dict``): a named file without a node (by node ``filename``), a node the
    reference does not name, two nodes with one file name. None when they match, or when the potential is
    itself invalid (its own port validator names that).

    :param where: the port name put in front of the message (e.g. ``'potential_files'``).
    """
    from aiida_mlfail.science.potentials import ReferencePotential, files_message

    try:
        names = ReferencePotential.from_dict(potential.get_dict()).files
    except ValueError:
        return None
    message = files_message(names, [node.filename for node in dict(files or {}).values()])
    return f'{where}: {message}' if message else None


def data_file_message(potential, files, symbols, where: str) -> str | None:
    """Why the data file of an ``atom_style full`` reference ``potential`` (``Dict``), found among the file nodes
    ``files`` by its file name, does not fit the structure of chemical symbols ``symbols`` (in order), or has no
    topology (``science.topology.check_data_file``). None when it fits, for other atom styles, and when the
    potential or its files are themselves invalid (their own messages name that).

    :param where: the port name put in front of the message (e.g. ``'potential_files'``).
    """
    from aiida_mlfail.science.potentials import ReferencePotential
    from aiida_mlfail.science.topology import check_data_file

    try:
        reference = ReferencePotential.from_dict(potential.get_dict())
    except ValueError:
        return None
    if reference.atom_style != 'full':
        return None
    node = next((n for n in dict(files or {}).values() if n.filename == reference.data_file), None)
    if node is None:
        return None
    try:
        check_data_file(node_text(node), reference.data_file, reference.species, reference.lammps_commands(),
                        list(symbols))
    except ValueError as exc:
        return f'{where}: {exc}'
    return None


def node_text(node) -> str:
    """The content of a ``SinglefileData`` as text (undecodable bytes replaced, so a binary file is refused by
    the parser that reads the text, not by a ``UnicodeDecodeError``)."""
    with node.open(mode='rb') as handle:
        return handle.read().decode('utf-8', errors='replace')


def job_potential_files(files) -> dict:
    """The ``files`` entries of a LAMMPS job for the potential files ``files`` (key -> ``SinglefileData``):
    keys prefixed ``potential_`` so they cannot clash with the structure or dump file of the job."""
    return {f'potential_{key}': node for key, node in dict(files or {}).items()}
