"""Shared pieces of the study scripts: codes, running and waiting for processes, builders from the protocols
with the studies' overrides, NaCl defaults, exporting figures and summaries."""

from __future__ import annotations

import json
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


class Runs:
    """WorkChains run concurrently in this process (no daemon needed), started and awaited by name
    (``aiida_mlfail.cli.launch.ForegroundRuns``: the runner polls children every second, where a plain
    ``aiida.engine.run`` waits up to ``runner.poll.interval``, 60 s, after every step; reports are echoed with the
    elapsed time). A study starts each step as soon as the steps it needs have ended."""

    def __init__(self):
        from aiida_mlfail.cli.launch import ForegroundRuns

        self._runs = ForegroundRuns()

    def start(self, name: str, builder):
        """Start ``builder`` under ``name`` (it runs while :meth:`wait` runs) and print a line."""
        print(f'running {builder.process_class.__name__} in this process: {name}')
        return self._runs.start(name, builder)

    def wait(self, *names: str, allowed=(0,)) -> dict:
        """Wait for the processes ``names`` (default: all started), print one line each, return ``{name: node}``;
        exit 1 when an exit status is not allowed.

        :param allowed: exit statuses that count as success, for all (a tuple) or per name (``{name: tuple}``,
            default ``(0,)``), e.g. 410 for a GAP-MD run whose guard stop is the result.
        """
        nodes = self._runs.wait(*names)
        failed = False
        for name, node in nodes.items():
            print(f'  {name} <{node.pk}> finished [{node.exit_status}] {node.exit_message or ""}'.rstrip())
            if node.exit_status not in (allowed.get(name, (0,)) if isinstance(allowed, dict) else allowed):
                print(f'  see: verdi process report {node.pk}', file=sys.stderr)
                failed = True
        if failed:
            sys.exit(1)
        return nodes


def run_together(builders: dict, allowed=(0,)) -> dict:
    """Run ``{name: builder}`` concurrently in this process (:class:`Runs`) and return ``{name: node}`` once all
    have ended; exit 1 when an exit status is not in ``allowed`` (see :meth:`Runs.wait`)."""
    runs = Runs()
    for name, builder in builders.items():
        runs.start(name, builder)
    return runs.wait(allowed=allowed)


def run_foreground(name: str, builder, allowed=(0,)):
    """Run ``builder`` in this process (no daemon needed) and return its node; exit 1 unless its exit status is in
    ``allowed`` (:func:`run_together` of one builder)."""
    return run_together({name: builder}, allowed)[name]


def launch(name: str, builder, foreground: bool, allowed=(0,)):
    """Run ``builder`` in this process (``foreground``, :func:`run_foreground`) or through the daemon
    (:func:`submit_all`); exit 1 unless its exit status is in ``allowed``."""
    if foreground:
        return run_foreground(name, builder, allowed)
    return next(iter(submit_all({name: builder}, allowed).values()))


#: The studies' classical reference: BMHTF + PPPM (long-range Coulomb to a relative force accuracy of 1e-5).
BMHTF_PPPM = {'name': 'bmhtf_coul_long', 'parameters': {'kspace_accuracy': 1.0e-5}}

#: Builder protocol of each study size: ``small`` runs on a 2-core workstation (``moderate``), ``large`` is
#: the 200-ion cluster run (``precise``: day-long walltimes); ``tiny`` (``fast``) is the setting of the studies'
#: integration tests where a study has one.
PROTOCOL_OF_SIZE = {'tiny': 'fast', 'small': 'moderate', 'large': 'precise'}


def structure_from_spec(spec: dict):
    """Start structure of a structure spec of ``science.structures.from_spec`` (e.g. ``{'system': 'argon',
    'n_cells': 2}``), built by the ``build_structure`` calcfunction so it has provenance."""
    from aiida import orm

    from aiida_mlfail.calculations.functions import build_structure

    return build_structure(orm.Dict(spec))


def nacl_structure(n_ions: int, **spec):
    """Start structure of ``n_ions`` of NaCl (the ``nacl`` preset of ``science.structures``, e.g. ``density``
    g/cm^3), built by the ``build_structure`` calcfunction so it has provenance."""
    return structure_from_spec({'system': 'nacl', 'n_ions': n_ions, **spec})


def sampling_builder(codes, state_points, *, size: str, n_ions: int | None = None, structure=None,
                     md: dict | None = None, reference=None):
    """``ClassicalSamplingWorkChain.get_builder_from_protocol``: the protocol of ``size`` (:data:`PROTOCOL_OF_SIZE`),
    the study's ``state_points`` and ``md`` overrides (e.g. ``production_steps``, ``timestep``), from
    ``structure`` (``StructureData`` or ``ase.Atoms``) or else the NaCl preset of ``n_ions`` (each state point
    sets its own volume or density), with ``reference`` (default :data:`BMHTF_PPPM`).

    :raises ValueError: when neither ``structure`` nor ``n_ions`` is given.
    """
    from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

    if structure is None:
        if n_ions is None:
            raise ValueError('sampling_builder: give structure or n_ions (of the NaCl preset)')
        structure = nacl_structure(n_ions)
    return ClassicalSamplingWorkChain.get_builder_from_protocol(
        codes, structure, protocol=PROTOCOL_OF_SIZE[size], overrides={'md': md or {}},
        reference=reference or BMHTF_PPPM, state_points=state_points)


#: Seed of the GAP MD runs of the studies (``science.mlmd.MLMD_DEFAULTS``, the seed of the runs the docs report).
MLMD_SEED = 4242


def mlmd_builder(codes, potential, structure, parameters: dict, *, size: str, reference=None, training_thermo=None,
                 equilibrium_thermo=None):
    """``MLMDWorkChain.get_builder_from_protocol``: the protocol of ``size`` with the study's MD ``parameters``
    (ensemble, temperature, steps, intervals, guards ...; seed :data:`MLMD_SEED` unless given), the optional
    classical ``reference`` of the rerun, the ``training_thermo`` of the pressure table and the
    ``equilibrium_thermo`` (a classical NPT run's thermo) whose production mean volume the breaking step refers to."""
    from aiida_mlfail.workflows.mlmd import MLMDWorkChain

    builder = MLMDWorkChain.get_builder_from_protocol(
        codes, potential, structure, protocol=PROTOCOL_OF_SIZE[size],
        overrides={'parameters': {'seed': MLMD_SEED, **parameters}}, reference=reference)
    if training_thermo is not None:
        builder.training_thermo = training_thermo
    if equilibrium_thermo is not None:
        builder.equilibrium_thermo = equilibrium_thermo
    return builder


def gap_overrides(*, cutoff: float, soap_sparse: int, n_sparse_2b: int | None = 40, soap: dict | None = None,
                  sigma: dict | None = None, train_on=('energy', 'forces', 'virial')) -> dict:
    """The studies' overrides of the ``fit`` section of the GapWorkChain protocol (also the ``gap`` section of the
    active learner's): 2-body (``n_sparse_2b`` sparse points; ``None``: no 2-body term, a SOAP-only GAP) + SOAP
    (``soap_sparse`` sparse points, the other SOAP keys of ``soap``, e.g. ``atom_sigma``) descriptors with the
    cutoff ``cutoff`` (Å), the expected errors ``sigma`` (``{energy: eV/atom, forces: eV/Å, virial: eV/atom}``;
    default: the protocol's) and ``train_on``."""
    two_body = None if n_sparse_2b is None else {'cutoff': cutoff, 'n_sparse': n_sparse_2b}
    parameters = {'descriptors': {'distance_2b': two_body,
                                  'soap': {**(soap or {}), 'cutoff': cutoff, 'n_sparse': soap_sparse}},
                  'train_on': list(train_on)}
    if sigma is not None:
        parameters['sigma'] = dict(sigma)
    return {'fit': {'job': {'parameters': parameters}}}


def gap_builder(codes, pool, *, size: str, n_select: int | None, cutoff: float, soap_sparse: int,
                train_on=('energy', 'forces', 'virial'), seed: int = 7, n_sparse_2b: int | None = 40,
                soap: dict | None = None, sigma: dict | None = None, validation_set=None):
    """``GapWorkChain`` builder of the studies: the protocol of ``size`` (:data:`PROTOCOL_OF_SIZE`) with the
    studies' overrides: ``n_select`` configurations uniform in force (None: all), a 50/50 split (or the fixed
    ``validation_set``, then ``pool`` is the training set), and the descriptors, ``sigma`` and ``train_on`` of
    :func:`gap_overrides` (defaults: the NaCl studies', 40 2-body sparse points; ``n_sparse_2b=None``: SOAP
    only), written out per species of
    ``pool`` (:func:`with_explicit_species`).
    """
    from aiida_mlfail.workflows.gap import GapWorkChain

    overrides = {
        'selection': {'method': 'uniform_force', 'n': n_select, 'seed': seed} if n_select else None,
        'split': {'train_fraction': 0.5, 'seed': seed},
        **gap_overrides(cutoff=cutoff, soap_sparse=soap_sparse, n_sparse_2b=n_sparse_2b, soap=soap, sigma=sigma,
                        train_on=train_on),
    }
    builder = GapWorkChain.get_builder_from_protocol(codes, pool, protocol=PROTOCOL_OF_SIZE[size], overrides=overrides,
                                                     validation_set=validation_set)
    return with_explicit_species(builder, pool)


def with_explicit_species(builder, pool):
    """A ``GapWorkChain`` builder whose descriptors name the species of ``pool``: the protocol's 2-body + SOAP
    (or 2-body-only, SOAP-only) descriptors written out per species by ``science.gap.default_descriptors`` (same
    settings; gap_fit fits the same GAP, see ``science.gap.explicit_descriptors``)."""
    builder.fit.job.parameters = explicit_species_parameters(builder.fit.job.parameters, pool.species)
    return builder


def explicit_species_parameters(parameters, species):
    """gap_fit ``parameters`` (``orm.Dict``) with the descriptors written out for ``species``
    (``science.gap.explicit_descriptors``), as a new ``orm.Dict``; e.g. of the active learner's
    ``gap.fit.job.parameters``."""
    from aiida import orm

    from aiida_mlfail.science.gap import explicit_descriptors

    parameters = parameters.get_dict()
    parameters['descriptors'] = explicit_descriptors(parameters['descriptors'], species)
    return orm.Dict(parameters)


def export(node, folder: pathlib.Path, name: str) -> pathlib.Path:
    """Write a ``SinglefileData`` (a figure) to ``folder/name`` and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(node.get_content(mode='rb'))
    return path


def write_json(folder: pathlib.Path, name: str, data: dict) -> pathlib.Path:
    """Write ``data`` (a study's summary: plain numbers, strings, lists, dicts) as indented JSON to ``folder/name``
    and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + '\n')
    return path


def finish_study(out: pathlib.Path, study: str, size: str, summary: dict) -> dict:
    """The end of a study: print its ``finding``, write ``summary`` as ``out/<study>_<size>.json``
    (:func:`write_json`), print where, and return ``summary``."""
    print()
    print(f"finding: {summary['finding']}")
    print(f"summary: {write_json(out, f'{study}_{size}.json', summary)} ({summary['seconds']} s)")
    return summary


def print_table(header, rows) -> None:
    """Print a plain table (``tabulate``, cells printed as given: format numbers before)."""
    from tabulate import tabulate

    print(tabulate([[str(c) for c in row] for row in rows], headers=[str(h) for h in header], tablefmt='simple',
                   disable_numparse=True))


def with_error(value, error, spec: str = '.3g') -> str:
    """``'value ± error'`` formatted with ``spec``; ``'value'`` without an error, ``'nan'`` without a value."""
    if value is None:
        return 'nan'
    return f'{value:{spec}}' if error is None else f'{value:{spec}} ± {error:{spec}}'


def study_main(study: str, description: str, run_study, argv=None, sizes=('tiny', 'small', 'large'),
               extra_codes: tuple = ()) -> int:
    """The command line of a study script ``workflows/<study>.py``: ``--size``, ``--out`` (default
    ``results/<study>``), ``--computer``, ``--profile``; loads the profile and the codes (``lammps``, ``gap_fit``,
    ``quip`` and ``extra_codes``) and calls ``run_study(codes, size, out, command)`` with the exact command line.

    :param description: the first line of the script's docstring (``--help``).
    :returns: 0 (``run_study`` exits 1 itself when a process fails).
    """
    import argparse
    import shlex

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--size', choices=sorted(sizes), default='small')
    parser.add_argument('--computer', default='localhost', help='computer of the codes (e.g. a SLURM cluster)')
    parser.add_argument('--profile', default=None, help='AiiDA profile (default: the default profile)')
    parser.add_argument('--out', default=f'results/{study}', help='folder for the JSON summary and the figures')
    args = parser.parse_args(argv)

    from aiida import load_profile

    load_profile(args.profile)
    command = shlex.join(['python', f'workflows/{study}.py', *(argv if argv is not None else sys.argv[1:])])
    run_study(load_codes(args.computer, extra=extra_codes), args.size, pathlib.Path(args.out).resolve(), command)
    return 0
