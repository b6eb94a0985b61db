"""``GapWorkChain`` (``mlfail.gap``): select -> split -> fit (gap_fit) -> predict the validation set (quip) ->
metrics + parity plot.

The two jobs run through their restart wrappers, exposed by role (:func:`~aiida_mlfail.workflows.common.expose_job`):
``fit`` (:class:`~aiida_mlfail.workflows.restart.GapFitRestartWorkChain`: ``fit.max_iterations``,
``fit.restart``, ``fit.handler_overrides``, ``fit.clean_workdir``, and of the job ``fit.job.code``,
``fit.job.parameters``, ``fit.job.metadata.options``) and ``predict``
(:class:`~aiida_mlfail.workflows.restart.QuipRestartWorkChain`: the same wrapper inputs, ``predict.job.code``
and ``predict.job.metadata.options``). The training set, the potential and the configurations are made here.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from aiida_mlfail.calculations.functions import select_configurations, split_training_set, validation_metrics
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData, check_same_reference
from aiida_mlfail.science import gap as gap_science
from aiida_mlfail.science import selection as selection_science
from aiida_mlfail.workflows.common import expose_job, port_excluded, wrapper_inputs
from aiida_mlfail.workflows.protocols import (
    ProtocolMixin,
    descriptor_list,
    resolve_codes,
    wrapper_inputs_from_protocol,
)
from aiida_mlfail.workflows.restart import GapFitRestartWorkChain, QuipRestartWorkChain


def _validate_inputs(value, ctx=None):
    """Selection, split and fit parameters must fit the pool (message names the value); a ``validation_set``
    must have the pool's reference.

    A check that needs a port absent from the namespace ``ctx`` (excluded by a wrapping process, as the
    active learner excludes ``pool``, ``validation_set``, ``split`` and ``selection``) is skipped, the others
    run (:func:`~aiida_mlfail.calculations.common.port_excluded`): without ``pool`` only ``fit.job.parameters``
    is checked. The jobs' own validators (``GapFitCalculation``'s under ``fit.job``, ``QuipPredictCalculation``'s
    under ``predict.job``) run too, skipping the ports this WorkChain makes (training set, potential ...)."""
    pool = None if port_excluded(ctx, 'pool') else value.get('pool')
    if pool is None:
        return _fit_parameters_error(value, ctx)
    n_pool = pool.n_configurations
    n_selected = n_pool
    if 'selection' in value and not port_excluded(ctx, 'selection'):
        try:
            sel = selection_science.normalise_selection(value['selection'].get_dict(), n_pool=n_pool)
        except ValueError as exc:
            return str(exc)
        method, n = sel['method'], sel['n']
        needed = selection_science.REQUIRED_LABEL.get(method)
        if needed and needed not in pool.labels:
            return f'selection: method {method!r} needs the label {needed!r}, the pool has {pool.labels}'
        n_selected = n
    validation_set = None if port_excluded(ctx, 'validation_set') else value.get('validation_set')
    if validation_set is not None:
        missing = sorted(set(validation_set.species) - set(pool.species))
        if missing:
            return f'validation_set: species {missing} do not occur in the training configurations (pool)'
        try:
            check_same_reference(pool=pool, validation_set=validation_set)
        except ValueError as exc:
            return f'validation_set: {exc}'
    n_train = n_selected
    if validation_set is None:  # with a validation set, the split is ignored
        if port_excluded(ctx, 'split'):
            n_train = None  # the wrapper splits: the training set size is not known here
        else:
            try:
                fraction = selection_science.normalise_split(value['split'].get_dict() if 'split' in value else {})[
                    'train_fraction']
            except ValueError as exc:
                return str(exc)
            n_train = round(fraction * n_selected)
            if n_train < 1 or n_train == n_selected:
                return (f'split: train_fraction {fraction} of {n_selected} configurations leaves an empty training '
                        'or validation set')
    if message := _fit_parameters_error(value, ctx):
        return message
    given = _fit_parameters(value, ctx)
    if given is None:
        return None
    parameters = gap_science.normalise_fit_parameters(given.get_dict())
    uncovered = gap_science.uncovered_species(parameters['descriptors'], pool.species)
    if uncovered:
        return (f'fit.job.parameters: the descriptors give no energy term to the species {uncovered} of the pool '
                f'<{pool.pk or "unstored"}> (species {pool.species}); add descriptors for them '
                '(e.g. science.gap_descriptors.default_descriptors) or use add_species')
    missing = [label for label in parameters['train_on'] if label not in pool.labels]
    if missing:
        return (f'the pool <{pool.pk or "unstored"}> lacks the label(s) {missing} the fit is asked to train on '
                f'(it has {pool.labels})')
    if n_train is None:
        return None
    for descriptor in parameters['descriptors']:
        # Reads the pool only until every species (pair) has enough environments: no O(pool) work at submit
        # time for a valid n_sparse.
        counts = gap_science.count_environments(pool.iter_atoms(), descriptor, species=pool.species,
                                                enough=int(descriptor['n_sparse']) * n_pool / n_train)
        key, smallest = min(counts.items(), key=lambda kv: kv[1])
        expected = smallest * n_train / n_pool
        if int(descriptor['n_sparse']) > expected:
            return (f"{descriptor['type']} descriptor: n_sparse={descriptor['n_sparse']} is larger than the about "
                    f'{expected:.0f} environments of {key} that {n_train} training configurations provide')
    return None


def _fit_parameters(value, ctx):
    """The ``fit.job.parameters`` Dict of the namespace ``value``, or ``None`` (not given, or ``fit`` excluded
    by a wrapping process)."""
    if port_excluded(ctx, 'fit'):
        return None
    return (value.get('fit') or {}).get('job', {}).get('parameters')


def _fit_parameters_error(value, ctx) -> str | None:
    """``'fit.job.parameters: <error>'`` when ``fit.job.parameters`` is given and ``normalise_fit_parameters``
    refuses it, else ``None`` (also when a wrapper excluded ``fit``)."""
    parameters = _fit_parameters(value, ctx)
    if parameters is None:
        return None
    try:
        gap_science.normalise_fit_parameters(parameters.get_dict())
    except ValueError as exc:
        return f'fit.job.parameters: {exc}'
    return None


class GapWorkChain(ProtocolMixin, WorkChain):
    """Fit a GAP to a pool of labelled configurations and validate it on held-out configurations.

    Steps: ``setup`` -> ``select`` (optional, ``select_configurations``) -> ``split``
    (``split_training_set``) -> ``run_fit`` / ``inspect_fit`` (``mlfail.gap_fit`` through
    :class:`~aiida_mlfail.workflows.restart.GapFitRestartWorkChain`, inputs ``fit``) -> ``run_predict`` /
    ``inspect_predict`` (``mlfail.quip`` on
    the validation set through :class:`~aiida_mlfail.workflows.restart.QuipRestartWorkChain`, inputs ``predict``) ->
    ``results``
    (``validation_metrics``: RMSE/MAE/max of energy per atom, force components, virial per atom; parity plot
    PNG). With a ``validation_set`` input there is no split: the (selected) pool is the training set and the
    given set is the validation set (the active learner validates every refit on one fixed set this way); it
    must have the pool's reference (refused at submit time otherwise, naming both). Every output set keeps the
    pool's reference.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('pool', valid_type=TrainingSetData, help='Labelled configurations to choose from.')
        spec.input('selection', valid_type=orm.Dict, required=False,
                   help="{'method': one of uniform_energy, uniform_force, uniform_atomic_energy, random, temporal; "
                        "'n': int; 'seed': int}. Without it the whole pool is used.")
        spec.input('split', valid_type=orm.Dict, default=lambda: orm.Dict({'train_fraction': 0.5, 'seed': 0}),
                   help="{'train_fraction': float in (0, 1), 'seed': int}; ignored with a validation_set.")
        spec.input('validation_set', valid_type=TrainingSetData, required=False,
                   help='Fixed validation set: no split, the (selected) pool is trained on.')
        expose_job(spec, GapFitRestartWorkChain, 'fit', keep=('code', 'parameters'),
                   help='The gap_fit job and its restart wrapper: job.code, job.parameters (descriptors, sigma, '
                        'train_on ...), job.metadata.options, max_iterations, restart, handler_overrides.')
        expose_job(spec, QuipRestartWorkChain, 'predict',
                   help='The GAP prediction (quip) of the validation set and its restart wrapper: job.code, '
                        'job.metadata.options, max_iterations, restart, handler_overrides.')
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.should_select)(cls.select),
            cls.split,
            cls.run_fit,
            cls.inspect_fit,
            cls.run_predict,
            cls.inspect_predict,
            cls.results,
        )
        spec.output('training_set', valid_type=TrainingSetData)
        spec.output('validation_set', valid_type=TrainingSetData)
        spec.output('potential', valid_type=GapPotentialData)
        spec.output('fit_parameters', valid_type=orm.Dict)
        spec.output('predictions', valid_type=TrainingSetData, help='The validation set as predicted by the GAP.')
        spec.output('metrics', valid_type=orm.Dict, help='RMSE/MAE/max: energy eV/atom, forces eV/Å, virial eV/atom.')
        spec.output('parity_plot', valid_type=orm.SinglefileData)
        spec.exit_code(402, 'ERROR_FIT_FAILED', message='gap_fit failed: [{status}] {message}')
        spec.exit_code(403, 'ERROR_VALIDATION_FAILED',
                       message='predicting the validation set failed: [{status}] {message}')

    _protocol_file = 'gap.yaml'

    @classmethod
    def fit_inputs_from_protocol(cls, inputs: dict, codes, options=None) -> dict:
        """The ``fit`` and ``predict`` inputs of the protocol inputs ``inputs``
        (:meth:`~aiida_mlfail.workflows.protocols.ProtocolMixin.get_protocol_inputs`);
        shared with the builder of the active learner.

        :param inputs: protocol inputs with the sections ``fit`` (``job.parameters`` with ``descriptors`` as a
            ``{type: keys}`` mapping, ``job.metadata.options``, wrapper keys) and ``predict`` (``job.metadata``,
            wrapper keys).
        :param codes: a mapping with the roles ``gap_fit`` and ``quip``.
        :param options: scheduler options merged over the protocol's ``job.metadata.options``, for both jobs.
        :returns: ``{'fit': {'job': {'code', 'parameters', 'metadata'}, ...}, 'predict': {'job': {...}, ...}}``.
        :raises ValueError: naming a missing code role, a bad descriptor mapping, an unknown key of a section or
            an unknown scheduler option.
        """
        owner = cls.__name__
        found = resolve_codes(codes, ('gap_fit', 'quip'), owner)
        fit = inputs.get('fit') or {}
        parameters = dict((fit.get('job') or {}).get('parameters') or {})
        parameters['descriptors'] = descriptor_list(parameters.get('descriptors'))
        return {
            'fit': wrapper_inputs_from_protocol(fit, found['gap_fit'], options, f'{owner} fit',
                                                job={'parameters': orm.Dict(parameters)}),
            'predict': wrapper_inputs_from_protocol(inputs.get('predict'), found['quip'], options,
                                                    f'{owner} predict'),
        }

    @classmethod
    def get_builder_from_protocol(cls, codes, pool, *, protocol=None, overrides=None, options=None,
                                  validation_set=None):
        """A builder with every input set from ``protocols/gap.yaml``.

        :param codes: a mapping with the roles ``gap_fit`` and ``quip``.
        :param pool: the labelled configurations (``TrainingSetData``); the selection's ``n`` is capped at
            its size (no selection when the protocol's ``selection`` is null).
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``.
        :param overrides: nested mapping (or YAML path) merged over the protocol: ``selection``, ``split``,
            ``fit.job.parameters`` (``descriptors`` as ``{type: keys}``, ``sigma``, ``train_on`` ...),
            ``fit.job.metadata.options``, ``predict.job.metadata.options``, and the wrappers' ``max_iterations``,
            ``restart``, ``clean_workdir``, ``handler_overrides`` under ``fit`` / ``predict``.
        :param options: scheduler options of the gap_fit and quip jobs (merged over the protocol's).
        :param validation_set: a fixed validation set (then no split; optional).
        :raises ValueError: naming the unknown protocol, the missing code role or the bad value.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if not isinstance(pool, TrainingSetData):
            raise ValueError(f'{cls.__name__}: pool must be a TrainingSetData, got {type(pool).__name__}')
        builder = cls.get_builder()
        builder.pool = pool
        selection = inputs.get('selection')
        if selection:
            builder.selection = orm.Dict({**selection, 'n': min(int(selection['n']), pool.n_configurations)})
        builder.split = orm.Dict(inputs['split'])
        if validation_set is not None:
            builder.validation_set = validation_set
        for key, value in cls.fit_inputs_from_protocol(inputs, codes, options).items():
            setattr(builder, key, value)
        return builder

    def setup(self):
        """Report what will run: the pool, the selection and the split or fixed validation set."""
        pool = self.inputs.pool
        selection = self.inputs.selection.get_dict() if 'selection' in self.inputs else None
        validation = ('the fixed validation set of '
                      f'{self.inputs.validation_set.n_configurations}' if 'validation_set' in self.inputs else
                      f"a split with train_fraction {self.inputs.split.get_dict().get('train_fraction', 0.5)}")
        self.report(f'fit on the pool <{pool.pk}> of {pool.n_configurations} configurations '
                    + (f"(selection {selection['method']}, n={selection['n']})" if selection else '(all)')
                    + f', validated on {validation}')

    def should_select(self):
        return 'selection' in self.inputs

    def select(self):
        self.ctx.selected = select_configurations(self.inputs.pool, self.inputs.selection)
        sel = self.inputs.selection.get_dict()
        self.report(f"selected {self.ctx.selected.n_configurations} of {self.inputs.pool.n_configurations} "
                    f"configurations ({sel['method']})")

    def split(self):
        selected = self.ctx.get('selected') or self.inputs.pool
        if 'validation_set' in self.inputs:
            self.ctx.train, self.ctx.validation = selected, self.inputs.validation_set
        else:
            parts = split_training_set(selected, self.inputs.split)
            self.ctx.train, self.ctx.validation = parts['train'], parts['validation']
        self.out('training_set', self.ctx.train)
        self.out('validation_set', self.ctx.validation)
        self.report(f'training set {self.ctx.train.n_configurations}, '
                    f'validation set {self.ctx.validation.n_configurations}')

    def _submit(self, wrapper, role: str, link: str, **job):
        return self.submit(wrapper, **wrapper_inputs(self, wrapper, role, call_link_label=link, **job))

    def run_fit(self):
        node = self._submit(GapFitRestartWorkChain, 'fit', 'gap_fit', training_set=self.ctx.train)
        self.report(f'submitted gap_fit <{node.pk}> (restartable)')
        return ToContext(fit=node)

    def inspect_fit(self):
        node = self.ctx.fit
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_FIT_FAILED.format(status=node.exit_status, message=node.exit_message)
        report = node.outputs.output_parameters.get_dict()
        self.report(f"gap_fit <{node.pk}> done: memory estimate {report.get('memory_peak_mb')} MB, "
                    f"wall time {report.get('fit_wall_time_s')} s, sparse points {report.get('n_sparse')}")
        self.out('potential', node.outputs.potential)
        self.out('fit_parameters', node.outputs.output_parameters)
        return None

    def run_predict(self):
        node = self._submit(QuipRestartWorkChain, 'predict', 'predict_validation',
                            potential=self.ctx.fit.outputs.potential, configurations=self.ctx.validation)
        self.report(f'submitted GAP prediction of the validation set <{node.pk}>')
        return ToContext(predict=node)

    def inspect_predict(self):
        node = self.ctx.predict
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(status=node.exit_status, message=node.exit_message)
        return None

    def results(self):
        predictions = self.ctx.predict.outputs.predictions
        result = validation_metrics(self.ctx.validation, predictions)
        self.out('predictions', predictions)
        self.out('metrics', result['metrics'])
        self.out('parity_plot', result['parity_plot'])
        metrics = result['metrics'].get_dict()
        summary = ', '.join(f"{k} RMSE {v['rmse']:.4g}" for k, v in metrics.items())
        self.report(f'validation: {summary} (energy, virial per atom in eV/atom; forces eV/Å)')
