"""Shared pieces of the study scripts: codes, waiting for processes, NaCl defaults, exporting figures."""

from __future__ import annotations

import pathlib
import sys
import time

#: 1400 K molten NaCl, 64 ions: the NVT volumes (Å^3) spanning densities above and below the liquid.
NACL_VOLUMES = [1950, 2150, 2350, 2550, 2750]


def load_codes(computer: str = 'localhost', extra: tuple = ()) -> dict:
    """The ``lammps``, ``gap_fit`` and ``quip`` codes of ``computer`` (set up by ``make demo``/``make test``),
    plus the codes named in ``extra`` (e.g. ``('explore',)``, ``('rematch',)``)."""
    from aiida import orm

    return {label: orm.load_code(f'{label}@{computer}') for label in ('lammps', 'gap_fit', 'quip', *extra)}


def wait(nodes: dict, allowed=(0,)) -> None:
    """Block until every process of ``{name: node}`` terminates; print one line each; exit 1 on a failure.

    :param allowed: exit statuses that count as success (e.g. 410 for a GAP MD run meant to break).
    """
    pending = dict(nodes)
    while pending:
        for name, node in list(pending.items()):
            if node.is_terminated:
                print(f'  {name} <{node.pk}> finished [{node.exit_status}] {node.exit_message or ""}'.rstrip())
                pending.pop(name)
                if node.exit_status not in allowed:
                    print(f'  see: verdi process report {node.pk}', file=sys.stderr)
                    sys.exit(1)
        time.sleep(2)


def submit_all(jobs: dict, allowed=(0,)) -> dict:
    """Submit ``{name: builder}`` (a ``ProcessBuilder``, e.g. of ``get_builder_from_protocol``) or
    ``{name: (ProcessClass, inputs)}`` together to the daemon and wait for all of them."""
    from aiida.engine import submit

    nodes = {}
    for name, job in jobs.items():
        nodes[name] = submit(job[0], **job[1]) if isinstance(job, tuple) else submit(job)
        print(f'submitted {nodes[name].process_label} <{nodes[name].pk}>: {name}')
    wait(nodes, allowed)
    return nodes


#: The studies' classical reference: BMHTF + PPPM (long-range Coulomb to a relative force accuracy of 1e-5).
BMHTF_PPPM = {'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1.0e-5}}

#: Builder protocol of each study size: ``small`` runs on a 2-core workstation (``moderate``), ``large`` is
#: the 200-ion cluster run (``precise``: day-long walltimes).
PROTOCOL_OF_SIZE = {'small': 'moderate', 'large': 'precise'}


def nacl_structure(n_ions: int, **spec):
    """Start structure of ``n_ions`` of NaCl (the ``nacl`` preset of ``science.structures``, e.g. ``density``
    g/cm^3), built by the ``build_structure`` calcfunction so it has provenance."""
    from aiida import orm

    from aiida_mlfail.calculations.functions import build_structure

    return build_structure(orm.Dict({'system': 'nacl', 'n_ions': n_ions, **spec}))


def sampling_builder(codes, state_points, *, size: str, n_ions: int, md: dict | None = None, reference=None):
    """``ClassicalSamplingWorkChain.get_builder_from_protocol`` of molten NaCl: the protocol of ``size``
    (:data:`PROTOCOL_OF_SIZE`), the study's ``state_points`` and ``md`` overrides (e.g. ``production_steps``),
    from the NaCl preset of ``n_ions`` (each state point sets its own volume or density), with ``reference``
    (default :data:`BMHTF_PPPM`)."""
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    return ClassicalSamplingWorkChain.get_builder_from_protocol(
        codes, nacl_structure(n_ions), protocol=PROTOCOL_OF_SIZE[size], overrides={'md': md or {}},
        reference=reference or BMHTF_PPPM, state_points=state_points)


#: Seed of the GAP MD runs of the studies (``science.mlmd.MLMD_DEFAULTS``, the seed of the runs the docs report).
MLMD_SEED = 4242


def mlmd_builder(codes, potential, structure, parameters: dict, *, size: str, reference=None, training_thermo=None):
    """``MLMDWorkChain.get_builder_from_protocol``: the protocol of ``size`` with the study's MD ``parameters``
    (ensemble, temperature, steps, intervals, guards ...; seed :data:`MLMD_SEED` unless given), the optional
    classical ``reference`` of the rerun and the ``training_thermo`` of the pressure table."""
    from aiida_mlfail.workflows.mlmd import MLMDWorkChain

    builder = MLMDWorkChain.get_builder_from_protocol(
        codes, potential, structure, protocol=PROTOCOL_OF_SIZE[size],
        overrides={'parameters': {'seed': MLMD_SEED, **parameters}}, reference=reference)
    if training_thermo is not None:
        builder.training_thermo = training_thermo
    return builder


def gap_builder(codes, pool, *, size: str, n_select: int, cutoff: float, soap_sparse: int,
                train_on=('energy', 'forces', 'virial'), seed: int = 7):
    """``GapWorkChain`` builder of the NaCl studies: the protocol of ``size`` (:data:`PROTOCOL_OF_SIZE`) with the
    studies' overrides: ``n_select`` configurations uniform in force, a 50/50 split, 2-body (40 sparse points)
    + SOAP (``soap_sparse`` sparse points) descriptors with the cutoff ``cutoff`` (Å), trained on ``train_on``.
    """
    from aiida_mlfail.workflows.gap import GapWorkChain

    overrides = {
        'selection': {'method': 'uniform_force', 'n': n_select, 'seed': seed},
        'split': {'train_fraction': 0.5, 'seed': seed},
        'fit': {'job': {'parameters': {
            'descriptors': {'distance_2b': {'cutoff': cutoff, 'n_sparse': 40},
                            'soap': {'cutoff': cutoff, 'n_sparse': soap_sparse}},
            'train_on': list(train_on)}}},
    }
    builder = GapWorkChain.get_builder_from_protocol(codes, pool, protocol=PROTOCOL_OF_SIZE[size], overrides=overrides)
    return with_explicit_species(builder, pool)


def with_explicit_species(builder, pool):
    """A ``GapWorkChain`` builder whose descriptors name the species of ``pool``: the protocol's 2-body + SOAP
    descriptors written out per species by ``science.gap.default_descriptors`` (same settings; gap_fit fits the
    same GAP, see ``science.gap.explicit_descriptors``)."""
    from aiida import orm

    from aiida_mlfail.science.gap import explicit_descriptors

    parameters = builder.fit.job.parameters.get_dict()
    parameters['descriptors'] = explicit_descriptors(parameters['descriptors'], pool.species)
    builder.fit.job.parameters = orm.Dict(parameters)
    return builder


def export(node, folder: pathlib.Path, name: str) -> pathlib.Path:
    """Write a ``SinglefileData`` (a figure) to ``folder/name`` and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(node.get_content(mode='rb'))
    return path


def print_table(header, rows) -> None:
    """Print a plain fixed-width table."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) + 2 for i, h in enumerate(header)]
    print(''.join(str(h).ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print(''.join(str(c).ljust(w) for c, w in zip(row, widths)))


def with_error(value, error, spec: str = '.3g') -> str:
    """``'value ± error'`` formatted with ``spec``; ``'value'`` without an error, ``'nan'`` without a value."""
    if value is None:
        return 'nan'
    return f'{value:{spec}}' if error is None else f'{value:{spec}} ± {error:{spec}}'
