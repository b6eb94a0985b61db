"""``LabelWorkChain`` (``mlfail.label``): reference energy, forces and virial for a set of configurations.

The labeller of the active learner (docs: science/active_learner). References:

* ``lammps``: classical single points of all configurations in one LAMMPS job (``rerun`` of a dump
  with one frame per configuration, ``science.mlmd.rerun_script``) in a ``LammpsRestartWorkChain``
  exposed as ``lammps`` (``lammps.potential``, ``lammps.job.code``, ``lammps.job.metadata.options``,
  ``lammps.max_iterations`` ...);
* ``cp2k``: DFT single points, one ``Cp2kSinglePointWorkChain`` (aiida-cp2k ``Cp2kCalculation`` with
  SCF and walltime restarts) per configuration, at most ``max_concurrent_jobs`` of them running at
  once (submitted in batches of that size); a configuration that still fails is excluded with its
  reason, the others are returned.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from aiida_mlfail.calculations.cp2k import attach_cp2k_labels, structures_of
from aiida_mlfail.calculations.functions import attach_labels, collect_structures, prepare_single_points
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import checks
from aiida_mlfail.science.potentials import ReferencePotential
from aiida_mlfail.workflows.common import (
    data_file_message,
    define_potential_files,
    expose_job,
    job_potential_files,
    node_validator,
    port_excluded,
    potential_files_message,
    structure_message,
    wrapper_inputs,
)
from aiida_mlfail.workflows.cp2k import DEFAULT_PROTOCOL, Cp2kSinglePointWorkChain, check_protocol, check_symbols
from aiida_mlfail.workflows.protocols import (
    ProtocolMixin,
    classical_reference_inputs,
    resolve_codes,
    split_reference,
    wrapper_inputs_from_protocol,
)
from aiida_mlfail.workflows.restart import LammpsRestartWorkChain


def _validate_inputs(value, ctx=None):
    """Configurations xor structures; exactly one reference; the reference must describe every species.

    A check that needs a port absent from the namespace ``ctx`` (excluded by a wrapping process, as the
    active learner excludes ``configurations`` and ``structures``) is skipped, the others run
    (:func:`~aiida_mlfail.calculations.common.port_excluded`): without the configurations the reference is
    checked on its own (exactly one; a known CP2K protocol; a valid classical potential)."""
    exposed = not (port_excluded(ctx, 'configurations') or port_excluded(ctx, 'structures'))
    has_set = exposed and 'configurations' in value
    structures = dict(value.get('structures', {})) if exposed else {}
    if exposed and has_set == bool(structures):
        return ('give either `configurations` (TrainingSetData) or `structures` (StructureData namespace), '
                'not both or none')
    is_lammps = 'lammps' in value and 'potential' in value['lammps']
    is_cp2k = 'cp2k' in value and 'code' in value['cp2k']
    if is_lammps and is_cp2k:
        return 'give exactly one reference: `lammps` (classical single points) or `cp2k` (DFT), not both'
    if not is_lammps and not is_cp2k:
        return ('no reference given: set `lammps.potential` and `lammps.job.code` (classical single points) or '
                '`cp2k.code` (DFT single points)')
    if has_set:
        atoms_list = value['configurations'].get_atoms()
    else:
        atoms_list = [structures[key].get_ase() for key in sorted(structures)]
    symbols = {tuple(a.get_chemical_symbols()) for a in atoms_list}
    species = set().union(*(set(s) for s in symbols))
    if is_cp2k:
        protocol = value['cp2k'].get('protocol', orm.Str(DEFAULT_PROTOCOL))
        message = check_protocol(protocol)
        if message:
            return f'cp2k.{message}'
        message = check_symbols(species, protocol.value) if atoms_list else None
        return f'cp2k: {message}' if message else None
    try:
        ReferencePotential.from_dict(value['lammps']['potential'].get_dict()).check_species(species)
    except ValueError as exc:
        return f'lammps.potential: {exc}'
    message = potential_files_message(value['lammps']['potential'], value['lammps'].get('potential_files'),
                                      'lammps.potential_files')
    if message:
        return message
    if atoms_list and len(symbols) != 1:
        return (f'the lammps reference labels configurations with one atom sequence per job; got {len(symbols)} '
                'different compositions / atom orders')
    if atoms_list:
        return data_file_message(value['lammps']['potential'], value['lammps'].get('potential_files'),
                                 next(iter(symbols)), 'lammps.potential_files')
    return None


#: Port validator of ``max_concurrent_jobs``: a positive integer.
_check_max_concurrent = node_validator(checks.integer, 'max_concurrent_jobs', ge=1)


class LabelWorkChain(ProtocolMixin, WorkChain):
    """Label configurations with a reference: ``training_set`` (energy eV, forces eV/Å, virial eV).

    Inputs: ``configurations`` (TrainingSetData) or ``structures`` (namespace of StructureData; their
    attributes ``md_step``, ``similarity``, ``stop_reason`` and their keys travel with the labelled
    configurations as ``md_step``, ``similarity``, ``stop_reason``, ``candidate``, ``structure_uuid``),
    and exactly one reference namespace: ``lammps`` (``potential`` Dict as for ``ReferencePotential``, and
    the inputs of a ``LammpsRestartWorkChain``: ``job.code``, ``job.metadata.options``, ``max_iterations``,
    ``restart`` ...: all configurations in one LAMMPS job) or ``cp2k`` (the inputs of
    :class:`~aiida_mlfail.workflows.cp2k.Cp2kSinglePointWorkChain` without ``structure``: ``code``,
    ``protocol`` (default ``fast``), ``options``, ``overrides``, ``max_iterations`` ...: one DFT single
    point per configuration, at most ``max_concurrent_jobs`` (default 4) at once). Outputs: ``training_set`` and
    ``excluded`` (Dict:
    ``{'excluded': [{'index', 'candidate', 'reason'}]}``, the configurations that could not be labelled).
    Exit 402 if none could be labelled.

    Steps: ``setup`` (the configurations), then ``run_lammps`` / ``inspect_lammps`` or ``run_cp2k`` (in
    batches) / ``inspect_cp2k``, ``results``.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('configurations', valid_type=TrainingSetData, required=False)
        spec.input_namespace('structures', valid_type=orm.StructureData, dynamic=True, required=False)
        expose_job(spec, LammpsRestartWorkChain, 'lammps', required=False,
                   help='Classical reference: LAMMPS single points of all configurations in one job, with '
                        'restarts (`potential`, `job.code`, `job.metadata.options`, `max_iterations` ...).')
        spec.input('lammps.potential', valid_type=orm.Dict, required=False,
                   help="ReferencePotential dict, e.g. {'name': 'bmhtf_coul_long'} or a generic "
                        "{'name': 'lammps', 'species': [...], 'atom_style': ..., 'commands': [...], 'files': [...]}.")
        define_potential_files(spec, 'lammps.potential_files')
        # the single point's own validator is kept: it skips the checks of the excluded `structure`
        spec.expose_inputs(Cp2kSinglePointWorkChain, namespace='cp2k', exclude=('structure',),
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'DFT reference: one CP2K single point per configuration.'})
        spec.input('max_concurrent_jobs', valid_type=orm.Int, default=lambda: orm.Int(4),
                   validator=_check_max_concurrent,
                   help='At most this many CP2K single points run at once (batches of this size).')
        spec.inputs.validator = _validate_inputs
        spec.outline(cls.setup, if_(cls.is_lammps)(cls.run_lammps, cls.inspect_lammps).else_(
            while_(cls.cp2k_pending)(cls.run_cp2k), cls.inspect_cp2k), cls.results)
        spec.output('training_set', valid_type=TrainingSetData)
        spec.output('excluded', valid_type=orm.Dict)
        spec.exit_code(402, 'ERROR_ALL_FAILED', message='no configuration could be labelled: {message}')

    _protocol_file = 'label.yaml'

    @classmethod
    def reference_inputs_from_protocol(cls, inputs: dict, codes, reference, *, protocol=None, options=None) -> dict:
        """The reference namespace of protocol inputs ``inputs``
        (:meth:`~aiida_mlfail.workflows.protocols.ProtocolMixin.get_protocol_inputs`):
        ``{'lammps': {potential, job: {code, metadata: {options}}, max_iterations, ...}}`` (the restart
        wrapper's inputs from the ``lammps`` section) or ``{'cp2k': {...}}``, the latter built from the
        :class:`~aiida_mlfail.workflows.cp2k.Cp2kSinglePointWorkChain` protocol named ``protocol`` with
        ``inputs['cp2k']`` as its overrides
        and the reference's ``protocol`` / ``overrides`` on top. Shared with the active learner's builder.

        :param reference: classical preset ``{'name': ..., 'parameters': ...}`` or
            ``{'cp2k': {'protocol': ..., 'overrides': ...}}``.
        :raises ValueError: naming the bad reference, the missing code role, an unknown option.
        """
        kind, content = split_reference(reference, cls.__name__)
        if kind == 'lammps':
            code = resolve_codes(codes, ('lammps',), cls.__name__)['lammps']
            potential, files = classical_reference_inputs(reference, cls.__name__)
            return {'lammps': {**wrapper_inputs_from_protocol(inputs.get('lammps'), code, options, cls.__name__),
                               'potential': orm.Dict(potential), **({'potential_files': files} if files else {})}}
        cp2k_overrides = dict(inputs.get('cp2k') or {})
        if content.get('protocol') is not None:
            cp2k_overrides['protocol'] = content['protocol']
        if content.get('overrides') is not None:
            cp2k_overrides['overrides'] = content['overrides']
        cp2k_inputs = Cp2kSinglePointWorkChain.get_protocol_inputs(protocol, cp2k_overrides)
        return {'cp2k': Cp2kSinglePointWorkChain.ports_from_protocol(cp2k_inputs, codes, options)}

    @classmethod
    def get_builder_from_protocol(cls, codes, configurations, *, protocol=None, overrides=None, options=None,
                                  reference=None):
        """A builder with every input set from ``protocols/label.yaml``.

        :param codes: the code of the reference (``lammps`` or ``cp2k``), or a mapping by role.
        :param configurations: ``TrainingSetData``, or a mapping of ``StructureData`` (the ``structures`` port).
        :param protocol: ``fast`` (default), ``moderate`` or ``precise`` (for CP2K also the
            ``cp2k_single_point.yaml`` protocol, hence the CP2K physics, unless the reference names one).
        :param overrides: nested mapping (or YAML path) merged over the protocol: ``max_concurrent_jobs``,
            ``lammps`` (the restart wrapper: ``max_iterations``, ``job.metadata.options`` ...), ``cp2k``
            (overrides of the CP2K single point protocol).
        :param options: scheduler options of the labelling jobs (merged over the protocol's).
        :param reference: classical preset ``{'name': ..., 'parameters': ...}`` or
            ``{'cp2k': {'protocol': ..., 'overrides': ...}}`` (required).
        :raises ValueError: naming the unknown protocol, the missing code role or the bad reference.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if reference is None:
            raise ValueError(f"{cls.__name__}: give `reference`: a classical preset {{'name': ..., 'parameters': "
                             "...}} or {'cp2k': {'protocol': ..., 'overrides': ...}}")
        builder = cls.get_builder()
        if isinstance(configurations, TrainingSetData):
            builder.configurations = configurations
        elif isinstance(configurations, dict) and configurations and all(
                isinstance(value, orm.StructureData) for value in configurations.values()):
            builder.structures = dict(configurations)
        else:
            raise ValueError(f'{cls.__name__}: configurations must be a TrainingSetData or a non-empty mapping of '
                             f'StructureData, got {type(configurations).__name__}')
        builder.max_concurrent_jobs = orm.Int(inputs['max_concurrent_jobs'])
        for key, value in cls.reference_inputs_from_protocol(inputs, codes, reference, protocol=protocol,
                                                             options=options).items():
            setattr(builder, key, value)
        return builder

    def setup(self):
        """The configurations as one ``TrainingSetData`` (``collect_structures`` of a ``structures`` namespace)
        and, for CP2K, one structure per configuration and the batch counters."""
        if 'configurations' in self.inputs:
            self.ctx.configurations = self.inputs.configurations
        else:
            self.ctx.configurations = collect_structures(**self.inputs.structures)
        if not self.is_lammps():
            self.prepare_cp2k()

    def is_lammps(self):
        return 'lammps' in self.inputs and 'potential' in self.inputs.lammps

    def run_lammps(self):
        potential_files = dict(self.inputs.lammps.get('potential_files', {}))
        prepared = prepare_single_points(self.ctx.configurations, self.inputs.lammps.potential, **potential_files)
        inputs = wrapper_inputs(self, LammpsRestartWorkChain, 'lammps', call_link_label='single_points',
                                script=prepared['script'], settings=prepared['settings'],
                                files={'structure': prepared['structure_file'], 'ml_frames': prepared['dump_file'],
                                       **job_potential_files(potential_files)})
        node = self.submit(LammpsRestartWorkChain, **inputs)
        self.report(f'submitted LAMMPS single points <{node.pk}> of {self.ctx.configurations.n_configurations} '
                    f"configuration(s) with {self.inputs.lammps.potential['name']}")
        return ToContext(single_points=node)

    def inspect_lammps(self):
        node = self.ctx.single_points
        if not node.is_finished_ok or 'training_set' not in node.outputs:
            return self.exit_codes.ERROR_ALL_FAILED.format(
                message=f'LAMMPS single points <{node.pk}> failed: [{node.exit_status}] {node.exit_message}')
        result = attach_labels(self.ctx.configurations, node.outputs.training_set)
        self.ctx.labelled, self.ctx.excluded = result['training_set'], result['excluded']
        return None

    def prepare_cp2k(self):
        """One structure per configuration, in order; nothing submitted yet."""
        if 'structures' in self.inputs:
            self.ctx.structures = [self.inputs.structures[key] for key in sorted(self.inputs.structures)]
        else:
            split = structures_of(self.ctx.configurations)
            self.ctx.structures = [split[key] for key in sorted(split)]
        self.ctx.n_cp2k = len(self.ctx.structures)
        self.ctx.n_submitted = 0
        self.ctx.refused = {}

    def cp2k_pending(self):
        return self.ctx.n_submitted < self.ctx.n_cp2k

    def run_cp2k(self):
        """Submit the next batch of at most ``max_concurrent_jobs`` single points and wait for all of it."""
        inputs = self.exposed_inputs(Cp2kSinglePointWorkChain, namespace='cp2k')
        metadata = dict(inputs.pop('metadata', {}))
        first = self.ctx.n_submitted
        last = min(self.ctx.n_cp2k, first + self.inputs.max_concurrent_jobs.value)
        jobs = {}
        for index in range(first, last):
            # the single point's own port validator would refuse it at submit (and except this WorkChain):
            # a configuration with overlapping atoms (a poor GAP's) is excluded with the reason instead
            message = structure_message(self.ctx.structures[index])
            if message:
                self.ctx.refused[str(index)] = f'not sent to CP2K: {message}'
                self.report(f'configuration {index} excluded: {message}')
                continue
            jobs[f'cp2k_{index}'] = self.submit(Cp2kSinglePointWorkChain, **inputs,
                                                structure=self.ctx.structures[index],
                                                metadata={**metadata, 'call_link_label': f'cp2k_{index}'})
        self.ctx.n_submitted = last
        self.report(f"submitted CP2K single point(s) {first + 1}-{last} of {self.ctx.n_cp2k} (protocol "
                    f"{inputs['protocol'].value}, at most {self.inputs.max_concurrent_jobs.value} at once): "
                    f"{', '.join(f'<{node.pk}>' for node in jobs.values())}")
        return ToContext(**jobs)

    def inspect_cp2k(self):
        labelled, failures = {}, {}
        for index in range(self.ctx.n_cp2k):
            if str(index) in self.ctx.refused:
                failures[str(index)] = self.ctx.refused[str(index)]
                continue
            node = self.ctx[f'cp2k_{index}']
            if node.is_finished_ok:
                labelled[f'c{index}'] = node.outputs.training_set
            else:
                failures[str(index)] = f'{node.process_label}<{node.pk}> [{node.exit_status}] {node.exit_message}'
        if not labelled:
            return self.exit_codes.ERROR_ALL_FAILED.format(message='; '.join(failures.values()))
        result = attach_cp2k_labels(self.ctx.configurations, failures=orm.Dict(failures), **labelled)
        self.ctx.labelled, self.ctx.excluded = result['training_set'], result['excluded']
        return None

    def results(self):
        labelled = self.ctx.labelled
        self.out('training_set', labelled)
        self.out('excluded', self.ctx.excluded)
        for item in self.ctx.excluded['excluded']:
            self.report(f"excluded configuration {item['index']} ({item['candidate']}): {item['reason']}")
        energies = ', '.join(f"{a.info['energy'] / len(a):.4f}" for a in labelled.get_atoms()[:8])
        self.report(f'labelled {labelled.n_configurations} configuration(s); energy per atom (eV): {energies}')
