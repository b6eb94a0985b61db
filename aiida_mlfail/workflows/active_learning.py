"""``ActiveLearningWorkChain`` (``mlfail.active_learning``): make a failing GAP robust (thesis chapter 13; docs:
science/active_learner).

Initial data, from exactly one source: (a) a labelled ``training_set`` + ``validation_set``; (b) a
classical ``sampling`` spec whose frames (optionally ``selection``-ed) are labelled by the learner's own
labeller (classical configurations, e.g. DFT labels) and split; (c) a labelled ``pool`` such as a CP2K
AIMD trajectory (``Cp2kAimdWorkChain.outputs.trajectory``), selected and split. Selection, labelling
and split are calcfunctions / WorkChains of the run (provenance).

Loop: fit (``mlfail.gap``) -> explore with every walker at once (``mlfail.explore``: GAP-MD until a
configuration is novel by REMatch or a failure guard trips; one exploration per entry of ``walkers``, each
with its own state point, seed and start) -> choose a batch of at most ``max_batch`` of all walkers' flagged
configurations (triggers first, then farthest-point in REMatch distance, ``science.walkers``) -> label the
batch (``mlfail.label``, its jobs concurrently) -> GAP prediction of them (``mlfail.quip``) -> outlier check
-> merge into the training set -> refit once -> explore again, until every walker runs ``max_steps`` without
a flag (converged) or a limit is hit. The steps of the iteration are
:class:`~aiida_mlfail.workflows.active_learning_loop.ExplorationLoop`.
Every flagged configuration is an output ``StructureData`` of its explorer job and an input of its
labelling WorkChain, so :func:`aiida_mlfail.provenance.added_configurations` can follow the links.

Rules of the loop: a configuration is labelled at most once (one flagged again is skipped); only an
accepted novelty trigger is the start of the next exploration of its walker (``restart_from='stop'``); when
``max_new_configurations`` leaves less room than was accepted, the triggers go first; every
configuration that could not be labelled or was rejected as an outlier goes to the ledger
(``failed_labels``), and more than ``max_failed_labels`` of them end the run (406).
"""

from __future__ import annotations

import functools

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from aiida_mlfail.calculations.functions import (  # noqa: F401 (calcfunctions, importable from here too)
    active_learning_summary,
    first_configurations,
    merge_training_sets,
    screen_configurations,
    select_configurations,
    split_training_set,
)
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import active_learning as al
from aiida_mlfail.science import walkers as walkers_module
from aiida_mlfail.science.selection import normalise_selection, normalise_split
from aiida_mlfail.workflows.active_learning_inputs import INITIAL_DATA, validate_inputs  # noqa: F401 (INITIAL_DATA importable from here too)
from aiida_mlfail.workflows.active_learning_loop import ExplorationLoop
from aiida_mlfail.workflows.common import dict_validator, expose_job
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.protocols import (
    ProtocolMixin,
    as_structure,
    classical_reference,
    recursive_merge,
    resolve_codes,
    split_reference,
    wrapper_inputs_from_protocol,
)
from aiida_mlfail.workflows.restart import ExploreRestartWorkChain, QuipRestartWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain


def calibrated_parameters(parameters: dict, calibration: orm.Dict | None) -> dict:
    """Explorer ``parameters`` with the critical values of a calibration (``mlfail.calibrate``'s ``recommended``):
    ``critical_similarity`` always (when the calibration has one), ``critical_variance`` when the parameters'
    ``novelty_signal`` is ``variance`` or ``both``."""
    parameters = dict(parameters)
    if calibration is None:
        return parameters
    values = calibration.get_dict()
    if values.get('critical_similarity') is not None:
        parameters['critical_similarity'] = values['critical_similarity']
    if parameters.get('novelty_signal') in ('variance', 'both') and values.get('critical_variance') is not None:
        parameters['critical_variance'] = values['critical_variance']
    return parameters


def _validate_calibration(value, _ctx=None):
    values = value.get_dict()
    if values.get('critical_similarity') is None and values.get('critical_variance') is None:
        return ('calibration: neither critical_similarity nor critical_variance is set (give the `recommended` output '
                'of an mlfail.calibrate run)')
    from aiida_mlfail.science import explore as sx  # noqa: PLC0415

    try:
        sx.normalise_explore({k: values[k] for k in ('critical_similarity', 'critical_variance')
                              if values.get(k) is not None})
    except ValueError as exc:
        return f'calibration: {exc}'
    return None


def validate_walkers(value, _=None):
    """Port validator of ``walkers``: :func:`~aiida_mlfail.science.walkers.normalise_walkers` without the structure
    names (the namespace validator checks those against ``walker_structures``)."""
    if value is None:
        return None
    items = value.get_list()
    try:
        walkers_module.normalise_walkers([{k: v for k, v in w.items() if k != 'structure'} if isinstance(w, dict)
                                          else w for w in items])
    except ValueError as exc:
        return f'walkers: {exc}'
    return None


class ActiveLearningWorkChain(ProtocolMixin, ExplorationLoop, WorkChain):
    """Active learning of a GAP: fit, explore with a REMatch novelty check, label, screen, merge, refit.

    Inputs: the initial data from one source (see the module doc): ``training_set`` + ``validation_set``,
    or ``sampling`` (the inputs of :class:`~aiida_mlfail.workflows.sample.ClassicalSamplingWorkChain`; its pool is
    labelled by
    ``label``), or ``pool`` (labelled, same reference as ``label``), with ``selection`` (optional:
    ``method``, ``n``, ``seed`` of ``science.selection``) and ``split``; ``gap`` (the ``fit`` and
    ``predict`` roles of :class:`~aiida_mlfail.workflows.gap.GapWorkChain`), ``explore`` (the
    :class:`~aiida_mlfail.workflows.restart.ExploreRestartWorkChain` exposed by
    role: ``max_iterations``, ``restart``, ... and of its job ``job.code``, the start ``job.structure``,
    ``job.parameters``, ``job.metadata.options``), ``label`` (the labeller: the inputs of
    :class:`~aiida_mlfail.workflows.label.LabelWorkChain` without the configurations), ``predict`` (the
    :class:`~aiida_mlfail.workflows.restart.QuipRestartWorkChain` of
    the GAP prediction of the flagged configurations: ``job.code``, ``job.metadata.options``, wrapper
    inputs) and ``parameters`` (see :data:`~aiida_mlfail.science.active_learning.ACTIVE_LEARNING_DEFAULTS`).

    Steps: ``setup`` -> ``run_sampling`` / ``inspect_sampling`` and ``run_label_initial`` /
    ``inspect_label_initial`` (with ``sampling``) -> ``run_fit`` / ``inspect_fit`` (a
    :class:`~aiida_mlfail.workflows.gap.GapWorkChain`)
    -> per iteration ``run_explore`` / ``inspect_explore``, ``run_label`` / ``inspect_label``,
    ``run_predict`` / ``inspect_predict``, ``screen``, ``run_fit`` / ``inspect_fit``, ``close_iteration``
    -> ``results``.

    Outputs: final ``potential`` and ``training_set``, ``metrics`` (validation of the final GAP),
    ``summary`` (iteration table), ``failed_labels`` (the ledger) and ``convergence_plot``. Exit 0 when
    an exploration ran ``max_steps`` without a flag; 701 / 702 when ``max_iterations`` /
    ``max_new_configurations`` was reached first (outputs attached, the last refit unverified by an
    exploration); 406 when the ledger holds more than ``max_failed_labels`` configurations (outputs
    attached).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('training_set', valid_type=TrainingSetData, required=False, help='Initial training set.')
        spec.input('validation_set', valid_type=TrainingSetData, required=False,
                   help='Fixed validation set of every refit (required with training_set).')
        spec.expose_inputs(ClassicalSamplingWorkChain, namespace='sampling',
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'Classical sampling whose frames, labelled by the learner\'s '
                                                      'labeller, become the initial data.'})
        spec.input('pool', valid_type=TrainingSetData, required=False,
                   help='Labelled pool (e.g. a CP2K AIMD trajectory, same reference as the labeller) that is '
                        'selected and split into the initial data.')
        spec.input('selection', valid_type=orm.Dict, required=False,
                   validator=dict_validator(functools.partial(normalise_selection, n_min=2)),
                   help="Selection from the sampled pool or `pool` before the split: {'method': 'random', 'n': 12, "
                        "'seed': 0} (methods of science.selection); default: every frame.")
        spec.input('split', valid_type=orm.Dict, default=lambda: orm.Dict({'train_fraction': 0.5, 'seed': 0}),
                   validator=dict_validator(normalise_split),
                   help='Train/validation split of the initial pool (with `sampling` or `pool`).')
        spec.expose_inputs(GapWorkChain, namespace='gap', exclude=('pool', 'validation_set', 'split', 'selection'))
        expose_job(spec, ExploreRestartWorkChain, 'explore', keep=('code', 'structure', 'parameters'),
                   help='The explorations (GAP-MD with a novelty check) and their restart wrapper: job.code, '
                        'job.structure (start of every exploration), job.parameters, job.metadata.options, '
                        'max_iterations, restart, handler_overrides.')
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('configurations', 'structures',
                                                                       'max_concurrent_jobs'))
        expose_job(spec, QuipRestartWorkChain, 'predict',
                   help='The GAP prediction (quip) of the flagged configurations and its restart wrapper: job.code, '
                        'job.metadata.options, max_iterations, restart, handler_overrides.')
        spec.input('parameters', valid_type=orm.Dict, default=lambda: orm.Dict({}),
                   validator=dict_validator(al.normalise_active_learning, 'parameters'),
                   help='max_iterations, max_new_configurations, restart_from (stop|start), reseed, '
                        'outliers {min_distance (none: 0.5 x the shortest distance of each species pair in the '
                        "current training set; a number in Å for every pair; or {'A-B': Å}), max_energy_deviation "
                        'eV/atom, max_force eV/Å}, '
                        'max_failed_labels, max_concurrent_labels, max_batch (flagged configurations of all '
                        'walkers labelled per iteration).')
        spec.input('calibration', valid_type=orm.Dict, required=False, validator=_validate_calibration,
                   help='The `recommended` output of an mlfail.calibrate run: its critical_similarity replaces the '
                        "one of explore.job.parameters, its critical_variance too when the parameters' novelty_signal "
                        'is variance or both.')
        spec.input('walkers', valid_type=orm.List, required=False, validator=validate_walkers,
                   help='The walkers that explore at once in every iteration: a list of dicts with temperature (K), '
                        'pressure (bar), ensemble (NVT|NPT), seed and structure (a name in walker_structures; '
                        'default explore.job.structure); missing keys take explore.job.parameters. Default: one '
                        'walker, the explorer\'s own parameters.')
        spec.input_namespace('walker_structures', valid_type=orm.StructureData, dynamic=True, required=False,
                             help='Start structures that walkers name by their `structure` key.')
        # the validators of gap, explore and label run: they skip the checks of the ports excluded above
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.should_sample)(cls.run_sampling, cls.inspect_sampling),
            if_(cls.needs_initial_labels)(cls.run_label_initial, cls.inspect_label_initial),
            cls.run_fit, cls.inspect_fit,
            while_(cls.should_explore)(
                cls.run_explore, cls.inspect_explore,
                if_(cls.flagged)(cls.choose, cls.run_label, cls.inspect_label,
                                 if_(cls.labelled)(cls.run_predict, cls.inspect_predict, cls.screen)),
                if_(cls.training_set_changed)(cls.run_fit, cls.inspect_fit),
                cls.close_iteration,
            ),
            cls.results,
        )
        spec.output('potential', valid_type=GapPotentialData, help='The GAP after the last refit.')
        spec.output('training_set', valid_type=TrainingSetData, help='The final training set.')
        spec.output('metrics', valid_type=orm.Dict, help='Validation metrics of the final GAP.')
        spec.output('summary', valid_type=orm.Dict,
                    help='Per iteration: stop, steps, similarity, errors, sizes, the distance guard and outlier '
                         "distances (Å, {'A-B': Å} per species pair), the walkers' stops (walkers) and the "
                         'walker_kind of every added configuration (added_from).')
        spec.output('failed_labels', valid_type=orm.Dict,
                    help='The ledger: configurations that could not be labelled or were rejected, with the reason.')
        spec.output('convergence_plot', valid_type=orm.SinglefileData)
        spec.exit_code(401, 'ERROR_SAMPLING_FAILED', message='the initial sampling failed: [{status}] {message}')
        spec.exit_code(402, 'ERROR_FIT_FAILED', message='GAP fit of iteration {iteration} failed: [{status}] {message}')
        spec.exit_code(403, 'ERROR_EXPLORE_FAILED',
                       message='exploration of iteration {iteration} failed: [{status}] {message}')
        spec.exit_code(404, 'ERROR_LABEL_FAILED',
                       message='labelling in iteration {iteration} failed: [{status}] {message}')
        spec.exit_code(405, 'ERROR_PREDICT_FAILED',
                       message='GAP prediction of the flagged configurations failed: [{status}] {message}')
        spec.exit_code(406, 'ERROR_TOO_MANY_FAILED_LABELS',
                       message='{count} configurations could not be labelled or were rejected, more than '
                               'max_failed_labels={limit} (outputs attached; see the failed_labels output)')
        spec.exit_code(701, 'WARNING_MAX_ITERATIONS',
                       message='stopped after max_iterations={limit} explorations without convergence '
                               '(outputs attached)')
        spec.exit_code(702, 'WARNING_MAX_NEW_CONFIGURATIONS',
                       message='stopped after adding max_new_configurations={limit} (outputs attached)')

    _protocol_file = 'active_learning.yaml'

    @classmethod
    def get_builder_from_protocol(cls, codes, structure, *, protocol=None, overrides=None, options=None,
                                  reference=None, sampling_reference=None):
        """A builder with every input set from ``protocols/active_learning.yaml`` and the inner protocols.

        The initial data come from a classical sampling of ``structure`` (NVT at its volume, at
        ``temperature``) labelled by the learner's labeller; the explorations start from ``structure`` (NPT at
        ``temperature`` and ``pressure``). The inner parts are built from the inner WorkChains' protocols of
        the same name with this protocol's sections as their overrides (as aiida-quantumespresso's
        ``PwRelaxWorkChain`` builds its ``PwBaseWorkChain``): ``sampling`` from
        :meth:`~aiida_mlfail.workflows.sample.ClassicalSamplingWorkChain.get_builder_from_protocol`, ``gap`` from
        ``GapWorkChain.get_protocol_inputs(protocol, inputs['gap'])``, ``label`` from
        ``LabelWorkChain.get_protocol_inputs(protocol, inputs['label'])``.

        :param codes: mapping by role: ``lammps`` (sampling; classical labels), ``gap_fit``, ``quip``,
            ``explore``, and ``cp2k`` with a CP2K reference.
        :param structure: start of the sampling and of every exploration (``StructureData`` or ``ase.Atoms``).
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``.
        :param overrides: nested mapping (or YAML path) merged over the protocol: ``temperature`` (K),
            ``pressure`` (bar), ``sampling`` / ``gap`` / ``label`` (overrides of the inner protocols),
            ``selection`` (``{lammps: ..., cp2k: ...}`` by labeller kind), ``split``, ``explore`` and
            ``predict`` (restart wrappers: ``max_iterations``, ``restart``, ``clean_workdir``,
            ``handler_overrides``, ``job.parameters`` (explore), ``job.metadata.options``), ``walkers`` (list of
            dicts: ``temperature``, ``pressure``, ``ensemble``, ``seed``; ``null``: one walker), ``parameters``
            (loop limits, ``max_batch``).
        :param options: scheduler options of every job (sampling, gap_fit, quip, explorer, labelling).
        :param reference: the labeller: classical preset ``{'name': ..., 'parameters': ...}`` or
            ``{'cp2k': {'protocol': ..., 'overrides': ...}}`` (required).
        :param sampling_reference: classical preset of the initial sampling; default: ``reference`` when it is
            classical (required with a CP2K reference).
        :raises ValueError: naming the unknown protocol, the missing code role or the bad reference.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        owner = cls.__name__
        if reference is None:
            raise ValueError(f"{owner}: give `reference`, the labeller: a classical preset {{'name': ..., "
                             "'parameters': ...}} or {'cp2k': {'protocol': ..., 'overrides': ...}}")
        kind, _ = split_reference(reference, owner)
        if sampling_reference is None:
            if kind == 'cp2k':
                raise ValueError(f'{owner}: with a CP2K reference give `sampling_reference`, the classical '
                                 'potential that samples the initial configurations')
            sampling_reference = reference
        sampling_reference = classical_reference(sampling_reference, owner, 'sampling_reference')
        found = resolve_codes(codes, ('lammps', 'gap_fit', 'quip', 'explore', *(('cp2k',) if kind == 'cp2k' else ())),
                              owner)
        structure = as_structure(structure, owner)

        sampling_overrides = recursive_merge(inputs.get('sampling') or {},
                                             {'temperatures': [inputs['temperature']], 'pressure': None})
        sampling = ClassicalSamplingWorkChain.get_builder_from_protocol(
            found, structure, protocol=protocol, overrides=sampling_overrides, options=options,
            reference=sampling_reference)
        gap_inputs = GapWorkChain.get_protocol_inputs(protocol, inputs.get('gap'))
        label_inputs = LabelWorkChain.get_protocol_inputs(protocol, inputs.get('label'))

        builder = cls.get_builder()
        builder.sampling = sampling._inputs(prune=True)
        selection = (inputs.get('selection') or {}).get(kind)
        if selection:
            builder.selection = orm.Dict(selection)
        builder.split = orm.Dict(inputs['split'])
        builder.gap = GapWorkChain.fit_inputs_from_protocol(gap_inputs, found, options)
        explore = inputs.get('explore') or {}
        parameters = {**((explore.get('job') or {}).get('parameters') or {}), 'temperature': inputs['temperature']}
        if parameters.get('ensemble', 'NVT').upper() == 'NPT':
            parameters['pressure'] = inputs['pressure']
        builder.explore = wrapper_inputs_from_protocol(
            explore, found['explore'], options, f'{owner} explore',
            job={'structure': structure, 'parameters': orm.Dict(parameters)})
        builder.label = LabelWorkChain.reference_inputs_from_protocol(label_inputs, found, reference,
                                                                      protocol=protocol, options=options)
        builder.predict = wrapper_inputs_from_protocol(inputs.get('predict'), found['quip'], options,
                                                       f'{owner} predict')
        builder.parameters = orm.Dict(inputs['parameters'])
        if inputs.get('walkers'):
            builder.walkers = orm.List(list(inputs['walkers']))
        return builder

    # -- set-up and initial data -------------------------------------------------------------

    def setup(self):
        self.ctx.p = al.normalise_active_learning(self.inputs.parameters.get_dict())
        self.ctx.iteration = 0
        self.ctx.added = 0
        self.ctx.rows = []
        self.ctx.ledger = []
        self.ctx.labelled_uuids = []  # StructureData sent to the labeller (each configuration is labelled once)
        self.ctx.converged = False
        self.ctx.initial_labels = None
        # the volume guard refers to each walker's start volume unless job.parameters gives reference_volume
        self.ctx.explore_parameters = calibrated_parameters(self.inputs.explore.job.parameters.get_dict(),
                                                            self.inputs.get('calibration'))
        if 'calibration' in self.inputs:
            used = {k: self.ctx.explore_parameters.get(k) for k in ('critical_similarity', 'critical_variance')}
            self.report(f'calibration <{self.inputs.calibration.pk}>: {used}')
        self._setup_walkers()
        if 'training_set' in self.inputs:
            self.ctx.training_set = self.inputs.training_set
            self.ctx.validation_set = self.inputs.validation_set
        elif 'pool' in self.inputs:
            self._split(self._select(self.inputs.pool), 'pool')

    def _select(self, pool: TrainingSetData) -> TrainingSetData:
        """The ``selection`` of ``pool`` (a calcfunction), or the pool itself without one."""
        if 'selection' not in self.inputs:
            return pool
        p = {'method': 'random', 'seed': 0, **self.inputs.selection.get_dict()}
        if p['n'] >= pool.n_configurations:
            self.report(f"selection: n={p['n']} >= the {pool.n_configurations} configurations of the pool: taking all")
            return pool
        return select_configurations(pool, orm.Dict(p), metadata={'call_link_label': 'select_initial'})

    def _split(self, data: TrainingSetData, source: str) -> None:
        parts = split_training_set(data, self.inputs.split, metadata={'call_link_label': 'split_initial'})
        self.ctx.training_set, self.ctx.validation_set = parts['train'], parts['validation']
        self.report(f"initial data from the {source}: {parts['train'].n_configurations} training, "
                    f"{parts['validation'].n_configurations} validation configurations")

    def should_sample(self):
        return 'sampling' in self.inputs and bool(self.inputs.sampling)

    def run_sampling(self):
        inputs = self.exposed_inputs(ClassicalSamplingWorkChain, namespace='sampling')
        inputs.setdefault('metadata', {})['call_link_label'] = 'sampling'
        node = self.submit(ClassicalSamplingWorkChain, **inputs)
        self.report(f'submitted the initial classical sampling <{node.pk}>')
        return ToContext(sampling=node)

    def inspect_sampling(self):
        node = self.ctx.sampling
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SAMPLING_FAILED.format(status=node.exit_status, message=node.exit_message)
        self.ctx.initial_pool = self._select(node.outputs.pool)
        return None

    def needs_initial_labels(self):
        return self.should_sample()

    def _label_inputs(self) -> dict:
        inputs = self.exposed_inputs(LabelWorkChain, namespace='label')
        inputs['max_concurrent_jobs'] = orm.Int(self.ctx.p['max_concurrent_labels'])
        return inputs

    def run_label_initial(self):
        """The sampled (selected) frames labelled by the learner's own labeller."""
        inputs = self._label_inputs()
        inputs['configurations'] = self.ctx.initial_pool
        inputs.setdefault('metadata', {})['call_link_label'] = 'label_initial'
        node = self.submit(LabelWorkChain, **inputs)
        self.report(f'submitted labelling <{node.pk}> of the {self.ctx.initial_pool.n_configurations} sampled '
                    'configuration(s) with the learner\'s reference')
        return ToContext(initial_labels=node)

    def inspect_label_initial(self):
        node = self.ctx.initial_labels
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LABEL_FAILED.format(iteration=0, status=node.exit_status,
                                                             message=node.exit_message)
        configurations = self.ctx.initial_pool.configurations
        for item in node.outputs.excluded['excluded']:
            info = configurations[item['index']] if item['index'] < len(configurations) else {}
            self._record_failure('initial data', info.get('md_step'), None, 'label', item['reason'])
        labelled = node.outputs.training_set
        if labelled.n_configurations < 2:
            return self.exit_codes.ERROR_LABEL_FAILED.format(
                iteration=0, status=node.exit_status,
                message=f'only {labelled.n_configurations} initial configuration(s) labelled: too few to split')
        self._split(labelled, f'sampling labelled by <{node.pk}>')
        return None

    # -- the loop ------------------------------------------------------------------------------

    def run_fit(self):
        inputs = self.exposed_inputs(GapWorkChain, namespace='gap')
        inputs.update(pool=self.ctx.training_set, validation_set=self.ctx.validation_set)
        inputs.setdefault('metadata', {})['call_link_label'] = f'fit_iteration_{self.ctx.iteration}'
        try:
            node = self.submit(GapWorkChain, **inputs)
        except ValueError as exc:  # the fit's own validator (e.g. more sparse points than environments)
            return self.exit_codes.ERROR_FIT_FAILED.format(iteration=self.ctx.iteration, status='not submitted',
                                                           message=str(exc))
        self.report(f'iteration {self.ctx.iteration}: submitted GAP fit <{node.pk}> on '
                    f'{self.ctx.training_set.n_configurations} configurations')
        self.ctx.training_set_changed = False
        return ToContext(gap=node)

    def inspect_fit(self):
        node = self.ctx.gap
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_FIT_FAILED.format(iteration=self.ctx.iteration, status=node.exit_status,
                                                           message=node.exit_message)
        self.ctx.potential = node.outputs.potential
        self.ctx.metrics = node.outputs.metrics
        metrics = node.outputs.metrics.get_dict()
        self.report(f"iteration {self.ctx.iteration}: GAP {self.ctx.potential.label} validation RMSE energy "
                    f"{metrics['energy']['rmse']:.4f} eV/atom, forces {metrics['forces']['rmse']:.3f} eV/Å")
        return None

    def results(self):
        p = self.ctx.p
        failed = len(self.ctx.ledger)
        outcome = al.loop_outcome(self.ctx.converged, self.ctx.iteration, self.ctx.added, p, failed)
        code = {al.CONVERGED: None,
                al.FAILED_LABELS: self.exit_codes.ERROR_TOO_MANY_FAILED_LABELS.format(
                    count=failed, limit=p['max_failed_labels']),
                al.MAX_NEW: self.exit_codes.WARNING_MAX_NEW_CONFIGURATIONS.format(limit=p['max_new_configurations']),
                al.MAX_ITERATIONS: self.exit_codes.WARNING_MAX_ITERATIONS.format(limit=p['max_iterations'])}[outcome]
        result = active_learning_summary(orm.List(self.ctx.rows), orm.Str(outcome), orm.List(self.ctx.ledger))
        self.out('potential', self.ctx.potential)
        self.out('training_set', self.ctx.training_set)
        self.out('metrics', self.ctx.metrics)
        self.out('summary', result['summary'])
        self.out('failed_labels', result['failed_labels'])
        self.out('convergence_plot', result['convergence_plot'])
        self.report(f'{outcome} after {self.ctx.iteration} exploration(s), {self.ctx.added} configuration(s) added, '
                    f'{failed} in the ledger of failed labels:\n' + result['summary']['table'])
        return code


_first_configurations = first_configurations  # (the name of earlier versions)
