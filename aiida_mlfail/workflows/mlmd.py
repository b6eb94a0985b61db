"""``MLMDWorkChain`` (``mlfail.mlmd``): GAP MD with failure guards, reference rerun and forensics."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from aiida_mlfail.calculations.functions import analyse_mlmd, prepare_mlmd, prepare_rerun
from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData, validate_potential
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import forensics, mlmd, pair_distances
from aiida_mlfail.science.gap_descriptors import uncovered_species
from aiida_mlfail.science.potentials import ReferencePotential
from aiida_mlfail.workflows.common import (
    data_file_message,
    define_potential_files,
    dict_validator,
    expose_job,
    job_potential_files,
    potential_files_message,
    structure_validator,
    wrapper_inputs,
)
from aiida_mlfail.workflows.protocols import (
    ProtocolMixin,
    as_structure,
    classical_reference_inputs,
    resolve_codes,
    wrapper_inputs_from_protocol,
)
from aiida_mlfail.workflows.restart import LammpsRestartWorkChain

#: Exit statuses of the MD job (and of its ``LammpsRestartWorkChain``, which ends with the job's status for
#: these) after which its outputs are still meaningful: finished OK, or stopped by a guard / lost atoms
#: (``LammpsRestartWorkChain.STOP_LABELS`` of ``LammpsCalculation``).
MD_STOPPED = (0, *(LammpsCalculation.exit_codes[label].status for label in LammpsRestartWorkChain.STOP_LABELS))


def gap_training_set(potential: GapPotentialData) -> TrainingSetData | None:
    """The training set a GAP was fitted to (its ``training_set_uuid`` attribute, set by the ``mlfail.gap_fit``
    parser), or ``None`` when the attribute is empty or the node is not in this database (e.g. a GAP
    imported without its data)."""
    uuid = potential.base.attributes.get('training_set_uuid', '') or ''
    if not uuid:
        return None
    found = orm.QueryBuilder().append(TrainingSetData, filters={'uuid': uuid}).first(flat=True)
    return found if isinstance(found, TrainingSetData) else None


def production_start_step(thermo: orm.ArrayData) -> tuple[int | None, str]:
    """The first production step of the LAMMPS run whose thermo this is, from its provenance, and how it was found.

    Walks from the job that made ``thermo`` up its callers to the first process with an ``md`` Dict input
    (``ClassicalSamplingWorkChain``): its ``equilibration_steps`` (with the defaults of
    ``science.lammps_md.normalise_md``) is the first production step (the steps of the equilibration and the
    production run continue). ``(None, reason)`` when there is no such process (thermo made elsewhere).
    """
    from aiida_mlfail.science import lammps_md

    node = thermo.creator
    while node is not None:
        try:
            md = node.inputs['md']
        except (KeyError, AttributeError, ValueError):
            md = None
        if isinstance(md, orm.Dict):
            start = int(lammps_md.normalise_md(md.get_dict())['equilibration_steps'])
            return start, f'equilibration_steps of <{node.pk}> {node.process_label}'
        node = node.caller
    return None, 'no sampling run with an md input in the provenance of the thermo'


def _validate_inputs(value, ctx=None):
    """The structure's species must be species of the GAP (and of the reference, when one is given); an
    equilibrium thermo must carry ``step`` and ``volume``."""
    if 'equilibrium_thermo' in value and not {'step', 'volume'} <= set(value['equilibrium_thermo'].get_arraynames()):
        return (f"equilibrium_thermo <{value['equilibrium_thermo'].pk or 'unstored'}> needs the arrays 'step' and "
                f"'volume' (a classical NPT run's thermo), it has {value['equilibrium_thermo'].get_arraynames()}")
    if 'training_thermo' in value and not {'step', 'pressure'} <= set(value['training_thermo'].get_arraynames()):
        return (f"training_thermo <{value['training_thermo'].pk or 'unstored'}> needs the arrays 'step' and "
                f"'pressure', it has {value['training_thermo'].get_arraynames()}")
    for key, thermo in (('equilibrium_production_start_step', 'equilibrium_thermo'),
                        ('training_production_start_step', 'training_thermo')):
        if key in value:
            if thermo not in value:
                return f'{key} is given without {thermo}'
            if value[key].value < 0:
                return f'{key} must be >= 0, got {value[key].value}'
    if 'structure' not in value or 'potential' not in value:
        return None
    sequence = value['structure'].get_ase().get_chemical_symbols()
    symbols = set(sequence)
    missing = sorted(symbols - set(value['potential'].species))
    if missing:
        return f'species {missing} of the structure are not described by the GAP (species {value["potential"].species})'
    uncovered = uncovered_species(value['potential'].base.attributes.get('descriptors', []), symbols)
    if uncovered:
        return (f'species {uncovered} of the structure have no descriptor of their own in the GAP <'
                f'{value["potential"].pk or "unstored"}> (they are only neighbours in its descriptors: '
                f'{value["potential"].base.attributes.get("descriptors")})')
    reference = value.get('reference', {}).get('potential')
    if reference is not None:
        try:
            ReferencePotential.from_dict(reference.get_dict()).check_species(symbols)
        except ValueError as exc:
            return f'reference.potential: {exc}'
        message = potential_files_message(reference, value['reference'].get('potential_files'),
                                          'reference.potential_files') \
            or data_file_message(reference, value['reference'].get('potential_files'), sequence,
                                 'reference.potential_files')
        if message:
            return message
    return None


class MLMDWorkChain(ProtocolMixin, WorkChain):
    """Run a GAP in LAMMPS (NVT or NPT) until it completes or a failure guard stops it, then explain.

    Outputs: the trajectory (``TrainingSetData`` with GAP energy, forces, virial and velocities),
    the thermo series, the stop (reason and step), the breaking step (first step with
    V > volume_factor x V_ref) when there is one, the reference rerun of the frames (optional), a
    summary (pressure table, GAP-vs-reference errors) and the forensics figure. Exit code 410 when
    the run was stopped by a guard or lost atoms (all outputs are still attached).

    The MD job runs in a :class:`~aiida_mlfail.workflows.restart.LammpsRestartWorkChain` exposed as ``md``
    (``md.job.code``: LAMMPS with ML-QUIP, ``md.job.metadata.options``, ``md.max_iterations`` ...); the
    optional rerun of the frames with a classical reference in another one, ``reference`` (its
    ``reference.potential`` says what to rerun with; ``reference.job.code`` is any LAMMPS).

    Steps: ``setup``, ``run_md`` / ``inspect_md``, ``run_reference`` / ``inspect_reference`` (when a
    reference is given), ``results`` (the analysis).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('potential', valid_type=GapPotentialData, validator=validate_potential)
        spec.input('structure', valid_type=orm.StructureData, validator=structure_validator('structure'),
                   help='Start configuration (periodic, no overlapping atoms: science.structures.check_structure).')
        spec.input('parameters', valid_type=orm.Dict, validator=dict_validator(mlmd.normalise_mlmd, 'parameters'),
                   help='ensemble, temperature (K), pressure (bar), timestep (fs), steps, dump_interval, '
                        'thermo_interval, seed, dampings (fs), reference_volume (Å^3), guards (volume_factor, '
                        'min_distance Å, temperature_factor, max_energy_change_per_atom eV/atom: largest change of '
                        'the potential energy per atom from the start of the run), checkpoint_interval (steps '
                        'between LAMMPS restart files a walltime or cancellation restart continues from; 0: none).')
        expose_job(spec, LammpsRestartWorkChain, 'md',
                   help='The GAP MD job with restarts: `job.code` (LAMMPS with ML-QUIP, or mlfail-lmp), '
                        '`job.metadata.options`, `max_iterations`, `restart` ...')
        expose_job(spec, LammpsRestartWorkChain, 'reference', required=False,
                   help='Optional rerun of the MD frames with a classical reference: `potential`, `job.code` '
                        '(any LAMMPS), `job.metadata.options`, `max_iterations` ...')
        spec.input('reference.potential', valid_type=orm.Dict, required=False,
                   validator=dict_validator(ReferencePotential.from_dict, 'reference.potential'),
                   help="Classical reference of the rerun, e.g. {'name': 'bmhtf_coul_long'} or a generic "
                        "{'name': 'lammps', ...}.")
        define_potential_files(spec, 'reference.potential_files')
        spec.input('training_thermo', valid_type=orm.ArrayData, required=False,
                   help='Thermo of the run that made the training data (step, pressure bar), for the pressure '
                        'table: averaged over its production part only (from training_production_start_step, '
                        'else the equilibration_steps of the sampling run that made it, found in the provenance).')
        spec.input('training_production_start_step', valid_type=orm.Int, required=False,
                   help='First production step of the training run (default: from the provenance of training_thermo).')
        spec.input('equilibrium_thermo', valid_type=orm.ArrayData, required=False,
                   help='Thermo (step, volume Å^3) of the classical NPT run at the same state point: the mean volume '
                        'of its production part is the equilibrium volume of the breaking step (V > breaking_factor '
                        'x V_eq); without it, parameters.reference_volume or the start volume (the guard\'s '
                        'reference). The source is recorded in the summary.')
        spec.input('equilibrium_production_start_step', valid_type=orm.Int, required=False,
                   help='First production step of the equilibrium run (default: from the provenance of '
                        'equilibrium_thermo, else 0).')
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            cls.run_md,
            cls.inspect_md,
            if_(cls.should_run_reference)(cls.run_reference, cls.inspect_reference),
            cls.results,
        )
        spec.output('trajectory', valid_type=TrainingSetData)
        spec.output('thermo', valid_type=orm.ArrayData)
        spec.output('stop', valid_type=orm.Dict, help='The MD job results: stop_reason, stop_step, value, message ...')
        spec.output('breaking_step', valid_type=orm.Int, required=False)
        spec.output('rerun', valid_type=TrainingSetData, required=False)
        spec.output('summary', valid_type=orm.Dict)
        spec.output('guard_distances', valid_type=orm.Dict,
                    help="The distance guard used: {'min_distance': Å (every pair) or {'A-B': Å}, 'source': 'given', "
                         "'training set <uuid>' or 'covalent radii', 'given': the pairs the user set}.")
        spec.output('forensics_plot', valid_type=orm.SinglefileData)
        spec.output('forensics_data', valid_type=orm.ArrayData, required=False,
                    help='The data of the forensics figure: time series (T, AFM, P, P_virial, V, density) and the '
                         'velocity / force component histograms of the windows before and after the break with the '
                         'Maxwell-Boltzmann and fitted Gaussian curves (science.forensics).')
        spec.exit_code(402, 'ERROR_MD_FAILED', message='the MD job failed: [{status}] {message}')
        spec.exit_code(403, 'ERROR_RERUN_FAILED', message='the reference rerun failed: [{status}] {message}')
        spec.exit_code(410, 'ERROR_MD_EXPLODED', message='the GAP MD run stopped: {reason} at step {step}')

    _protocol_file = 'mlmd.yaml'

    @classmethod
    def get_builder_from_protocol(cls, codes, potential, structure, *, protocol=None, overrides=None, options=None,
                                  reference=None):
        """A builder with every input set from ``protocols/mlmd.yaml``.

        :param codes: the LAMMPS code (with ML-QUIP, or mlfail-lmp), or a mapping with the role ``lammps``;
            it also runs the reference rerun (``reference.job.code``).
        :param potential: the GAP (``GapPotentialData``).
        :param structure: start structure (``StructureData`` or ``ase.Atoms``).
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``.
        :param overrides: nested mapping (or YAML path) merged over the protocol: ``parameters`` (ensemble,
            temperature K, pressure bar, timestep fs, steps, intervals, seed, guards ...), ``md`` and
            ``reference`` (the restart wrappers: ``max_iterations``, ``restart``, ``job.metadata.options`` ...).
        :param options: scheduler options of the MD (and rerun) job, merged over ``md.job.metadata.options``
            (and ``reference.job.metadata.options``).
        :param reference: classical reference ``{'name': ..., 'parameters': ...}`` for the rerun of the frames
            (optional: no rerun without it).
        :raises ValueError: naming the unknown protocol, the missing code role or the bad reference.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        code = resolve_codes(codes, ('lammps',), cls.__name__)['lammps']
        if not isinstance(potential, GapPotentialData):
            raise ValueError(f'{cls.__name__}: potential must be a GapPotentialData, got {type(potential).__name__}')
        builder = cls.get_builder()
        builder.potential = potential
        builder.structure = as_structure(structure, cls.__name__)
        builder.parameters = orm.Dict(inputs['parameters'])
        builder.md = wrapper_inputs_from_protocol(inputs['md'], code, options, cls.__name__)
        if reference is not None:
            reference_dict, files = classical_reference_inputs(reference, cls.__name__)
            builder.reference = {
                **wrapper_inputs_from_protocol(inputs['reference'], code, options, cls.__name__),
                'potential': orm.Dict(reference_dict), **({'potential_files': files} if files else {})}
        return builder

    def setup(self):
        """The MD script, structure file and settings (``prepare_mlmd``, a calcfunction); the distance guard
        from the GAP's training set when it is in the database (:func:`gap_training_set`), reported and
        output as ``guard_distances``."""
        guard = mlmd.normalise_mlmd(self.inputs.parameters.get_dict())['guards']['min_distance']
        training_set = None if isinstance(guard, float) else gap_training_set(self.inputs.potential)
        self.ctx.prepared = prepare_mlmd(self.inputs.structure, self.inputs.potential, self.inputs.parameters,
                                         **({'training_set': training_set} if training_set is not None else {}))
        self.ctx.settings = self.ctx.prepared['settings']
        guards = self.ctx.prepared['guard_distances']
        self.out('guard_distances', guards)
        self.report(f"distance guard: {pair_distances.describe(guards['min_distance'])} ({guards['source']}"
                    + (f"; given: {', '.join(guards['given'])}" if guards['given'] else '') + ')')

    def run_md(self):
        prepared = self.ctx.prepared
        inputs = wrapper_inputs(self, LammpsRestartWorkChain, 'md', call_link_label='gap_md', script=prepared['script'],
                                files={'structure': prepared['structure_file']}, settings=prepared['settings'],
                                potential=self.inputs.potential)
        node = self.submit(LammpsRestartWorkChain, **inputs)
        self.report(f'submitted GAP MD <{node.pk}> with {self.inputs.potential.label}')
        return ToContext(md=node)

    def inspect_md(self):
        node = self.ctx.md
        if node.exit_status not in MD_STOPPED or 'training_set' not in node.outputs:
            return self.exit_codes.ERROR_MD_FAILED.format(status=node.exit_status, message=node.exit_message)
        results = node.outputs.results.get_dict()
        stop = {k: results.get(k) for k in ('stop_reason', 'stop_step', 'value', 'message')}
        self.ctx.stop = stop
        self.out('trajectory', node.outputs.training_set)
        self.out('thermo', node.outputs.thermo)
        self.out('stop', node.outputs.results)
        self.report(f"GAP MD <{node.pk}>: {stop['stop_reason']} at step {stop['stop_step']} "
                    f"({node.outputs.training_set.n_configurations} frames)")
        return None

    def should_run_reference(self):
        return 'reference' in self.inputs and 'potential' in self.inputs.reference

    def run_reference(self):
        potential_files = dict(self.inputs.reference.get('potential_files', {}))
        prepared = prepare_rerun(self.ctx.md.outputs.training_set, self.inputs.reference.potential, **potential_files)
        inputs = wrapper_inputs(self, LammpsRestartWorkChain, 'reference', call_link_label='reference_rerun',
                                script=prepared['script'], settings=prepared['settings'],
                                files={'structure': prepared['structure_file'], 'ml_frames': prepared['dump_file'],
                                       **job_potential_files(potential_files)})
        node = self.submit(LammpsRestartWorkChain, **inputs)
        self.report(f'submitted reference rerun <{node.pk}>')
        return ToContext(rerun=node)

    def inspect_reference(self):
        node = self.ctx.rerun
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_RERUN_FAILED.format(status=node.exit_status, message=node.exit_message)
        self.out('rerun', node.outputs.training_set)
        return None

    def results(self):
        """The forensics (``analyse_mlmd``: summary, breaking step, figure); exit 410 when a guard stopped the MD."""
        p = mlmd.normalise_mlmd(self.inputs.parameters.get_dict())
        settings = self.ctx.settings.get_dict()
        analysis = {'timestep': p['timestep'], 'temperature': p['temperature'],
                    'reference_volume': settings['reference_volume'], 'volume_factor': p['guards']['volume_factor'],
                    'breaking_factor': p['breaking_factor']}
        if 'equilibrium_thermo' in self.inputs:
            thermo = self.inputs.equilibrium_thermo
            if 'equilibrium_production_start_step' in self.inputs:
                start, how = self.inputs.equilibrium_production_start_step.value, 'given'
            else:
                start, how = production_start_step(thermo)
                start = 0 if start is None else start
            volume, error = forensics.production_mean(thermo.get_array('step'), thermo.get_array('volume'), start)
            analysis['equilibrium_volume'] = volume
            analysis['equilibrium_volume_source'] = (f'classical NPT thermo <{thermo.pk}>: mean volume from step '
                                                     f'{start} ({how}), block standard error {error} Å^3')
        elif 'reference_volume' in p:
            analysis['equilibrium_volume_source'] = 'parameters.reference_volume (given)'
        else:
            analysis['equilibrium_volume_source'] = 'volume of the start structure (no equilibrium volume given)'
        if 'training_thermo' in self.inputs:
            if 'training_production_start_step' in self.inputs:
                start, how = self.inputs.training_production_start_step.value, 'given'
            else:
                start, how = production_start_step(self.inputs.training_thermo)
            analysis['training_production_start_step'] = start
            self.report(f'training-run pressure averaged from step {start} ({how})')
        parameters = orm.Dict(analysis)
        optional = {}
        if 'rerun' in self.ctx:
            optional['rerun'] = self.ctx.rerun.outputs.training_set
        if 'training_thermo' in self.inputs:
            optional['training_thermo'] = self.inputs.training_thermo
        result = analyse_mlmd(self.ctx.md.outputs.training_set, self.ctx.md.outputs.thermo, parameters, **optional)
        self.out('summary', result['summary'])
        self.out('forensics_plot', result['forensics_plot'])
        self.out('forensics_data', result['forensics_data'])
        summary = result['summary'].get_dict()
        if 'breaking_step' in result:
            self.out('breaking_step', result['breaking_step'])
        table = ', '.join(f"{k} {v['mean_bar']:.0f} ± {v['standard_error_bar'] or 0:.0f} bar"
                          for k, v in summary['pressure'].items())
        self.report(f"breaking step {summary.get('breaking_step')}; pressure: {table}")
        if self.ctx.stop['stop_reason'] not in ('completed',):
            return self.exit_codes.ERROR_MD_EXPLODED.format(reason=self.ctx.stop['stop_reason'],
                                                            step=self.ctx.stop['stop_step'])
        return None
