"""``ActiveLearningWorkChain`` (``mlfail.active_learning``): make a failing GAP robust (DOMAIN.md section 7).

Loop: fit (``mlfail.gap``) -> explore (``mlfail.explore``: GAP-MD until a configuration is novel by
REMatch or a failure guard trips) -> label the flagged configuration(s) (``mlfail.label``) -> GAP
prediction of them (``mlfail.quip``) -> outlier check -> merge into the training set -> refit ->
explore again, until an exploration runs ``max_steps`` without a flag (converged) or a limit is hit.
Every flagged configuration is an output ``StructureData`` of its explorer job and an input of its
labelling WorkChain, so :func:`aiida_mlfail.provenance.added_configurations` can follow the links.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction, if_, while_

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.calculations.functions import compare_labels, merge_training_sets, split_training_set
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import active_learning as al
from aiida_mlfail.workflows.common import DEFAULT_OPTIONS, dict_validator, restart_inputs
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.references import active_learning_reference_error
from aiida_mlfail.workflows.restart import ExploreRestartWorkChain, QuipRestartWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain

#: Exit statuses of the explorer job that still carry a stop configuration to label.
EXPLORE_STOPPED = (0, 410, 411)


@calcfunction
def screen_configurations(labelled: TrainingSetData, predictions: TrainingSetData, training_set: TrainingSetData,
                          parameters: orm.Dict):
    """Outlier check of labelled configurations and the GAP-vs-reference error on them.

    :returns: ``screening`` (Dict: per candidate the verdict of
        :func:`~aiida_mlfail.science.active_learning.outlier_check` plus ``energy_error`` (eV/atom)
        and ``forces_rmse`` (eV/Å) of the GAP) and, when any is accepted, ``accepted``
        (TrainingSetData of the accepted configurations).
    """
    p = al.normalise_active_learning(parameters.get_dict())
    configurations, predicted = labelled.get_atoms(), predictions.get_atoms()
    reference = float(np.mean([a.info['energy'] / len(a) for a in training_set.get_atoms()]))
    verdicts = al.outlier_check(configurations, p['outliers'], reference)
    for verdict, atoms, gap in zip(verdicts, configurations, predicted):
        metrics, _ = compare_labels([atoms], [gap])
        verdict.update(candidate=atoms.info.get('candidate'), md_step=atoms.info.get('md_step'),
                       similarity=atoms.info.get('similarity'),
                       energy_error=abs(gap.info['energy'] - atoms.info['energy']) / len(atoms),
                       forces_rmse=metrics['forces']['rmse'])
    outputs = {'screening': orm.Dict({'candidates': verdicts, 'training_energy_per_atom': reference})}
    accepted = [a for a, v in zip(configurations, verdicts) if v['accepted']]
    if accepted:
        outputs['accepted'] = TrainingSetData.from_atoms(accepted, reference=labelled.reference)
    return outputs


@calcfunction
def active_learning_summary(rows: orm.List, outcome: orm.Str):
    """The iteration table (``summary`` Dict: ``iterations``, ``outcome``, ``table`` text) and the convergence plot."""
    import io

    data = rows.get_list()
    png = al.convergence_png(data, title=f'active learning: {outcome.value}')
    return {'summary': orm.Dict({'iterations': data, 'outcome': outcome.value, 'table': al.format_table(data)}),
            'convergence_plot': orm.SinglefileData(io.BytesIO(png), filename='active_learning.png')}


def _validate_inputs(value, ctx=None):
    """Initial data from exactly one source; species consistent across structure, data and reference."""
    has_set, has_sampling = 'training_set' in value, 'sampling' in value and bool(value['sampling'])
    if has_set == has_sampling:
        return 'give either `training_set` (+ `validation_set`) or a `sampling` spec, exactly one of them'
    if has_set and 'validation_set' not in value:
        return '`validation_set` is required with `training_set` (each refit is validated on it)'
    if message := active_learning_reference_error(value):  # one reference for all data and the labeller
        return message
    structure = value.get('explore', {}).get('structure')
    if structure is None:
        return None
    symbols = set(structure.get_ase().get_chemical_symbols())
    if has_set:
        missing = sorted(symbols - set(value['training_set'].species))
        if missing:
            return f'explore.structure has species {missing} that the training set lacks'
    label = value.get('label', {})
    has_lammps = 'potential' in label.get('lammps', {})
    has_cp2k = 'code' in label.get('cp2k', {})
    if has_lammps == has_cp2k:
        return 'label: give exactly one reference, `label.lammps` (classical) or `label.cp2k` (DFT)'
    if has_cp2k:
        from aiida_mlfail.workflows.cp2k import DEFAULT_PROTOCOL, check_protocol, check_symbols

        protocol = label['cp2k'].get('protocol', orm.Str(DEFAULT_PROTOCOL))
        message = check_protocol(protocol) or check_symbols(symbols, protocol.value)
        return f'label.cp2k: {message}' if message else None
    reference = label['lammps']['potential']
    if reference is not None:
        from aiida_mlfail.science.potentials import ReferencePotential

        try:
            ReferencePotential.from_dict(reference.get_dict()).check_species(symbols)
        except ValueError as exc:
            return f'label.lammps.potential: {exc}'
    return None


class ActiveLearningWorkChain(WorkChain):
    """Active learning of a GAP: fit, explore with a REMatch novelty check, label, screen, merge, refit.

    Inputs: the initial ``training_set`` and ``validation_set`` (or a ``sampling`` spec of
    :class:`ClassicalSamplingWorkChain` whose pool is split by ``split``), ``gap`` (the GAP fit and
    validation inputs of :class:`GapWorkChain`), ``explore`` (the :class:`ExploreCalculation` inputs:
    start ``structure``, ``parameters``, ``code``, ``metadata``), ``label`` (the labeller: the inputs of
    :class:`LabelWorkChain` without the configurations), ``quip`` (code for the GAP prediction of the
    flagged configurations) and ``parameters`` (see
    :data:`~aiida_mlfail.science.active_learning.ACTIVE_LEARNING_DEFAULTS`).

    Outputs: final ``potential`` and ``training_set``, ``metrics`` (validation of the final GAP),
    ``summary`` (iteration table) and ``convergence_plot``. Exit 0 when an exploration ran
    ``max_steps`` without a flag; 701 / 702 when ``max_iterations`` / ``max_new_configurations`` was
    reached first (outputs attached, the last refit unverified by an exploration).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('training_set', valid_type=TrainingSetData, required=False, help='Initial training set.')
        spec.input('validation_set', valid_type=TrainingSetData, required=False,
                   help='Fixed validation set of every refit (required with training_set).')
        spec.expose_inputs(ClassicalSamplingWorkChain, namespace='sampling',
                           namespace_options={'required': False, 'populate_defaults': False,
                                              'help': 'Classical sampling whose pool becomes the initial data.'})
        spec.input('split', valid_type=orm.Dict, default=lambda: orm.Dict({'train_fraction': 0.5, 'seed': 0}),
                   help='Train/validation split of the sampled pool (only with `sampling`).')
        spec.expose_inputs(GapWorkChain, namespace='gap', exclude=('pool', 'validation_set', 'split', 'selection'))
        spec.expose_inputs(ExploreCalculation, namespace='explore', exclude=('potential', 'training_set'))
        spec.expose_inputs(LabelWorkChain, namespace='label', exclude=('configurations', 'structures'))
        spec.input_namespace('quip', help='The GAP prediction job on the flagged configurations.')
        spec.input('quip.code', valid_type=orm.AbstractCode, help='quip / mlfail-quip for the GAP on flagged configurations.')
        spec.input('quip.options', valid_type=orm.Dict, default=lambda: orm.Dict(DEFAULT_OPTIONS))
        spec.input('restart', valid_type=orm.Dict, required=False,
                   help='Restart settings of the explorer and prediction jobs (workflows.restart.RESTART_DEFAULTS); '
                        'the GAP fits take theirs from gap.restart.')
        spec.input('parameters', valid_type=orm.Dict, default=lambda: orm.Dict({}),
                   validator=dict_validator(al.normalise_active_learning, 'parameters'),
                   help='max_iterations, max_new_configurations, restart_from (stop|start), reseed, '
                        'outliers {min_distance Å, max_energy_deviation eV/atom, max_force eV/Å}.')
        for namespace in ('gap', 'explore', 'label'):
            spec.inputs[namespace].validator = None  # their checks need the excluded inputs: ours run instead
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.should_sample)(cls.sample, cls.inspect_sample),
            cls.fit, cls.inspect_fit,
            while_(cls.should_explore)(
                cls.explore, cls.inspect_explore,
                if_(cls.flagged)(cls.label, cls.inspect_label, cls.predict, cls.screen),
                if_(cls.training_set_changed)(cls.fit, cls.inspect_fit),
                cls.close_iteration,
            ),
            cls.finalize,
        )
        spec.output('potential', valid_type=GapPotentialData, help='The GAP after the last refit.')
        spec.output('training_set', valid_type=TrainingSetData, help='The final training set.')
        spec.output('metrics', valid_type=orm.Dict, help='Validation metrics of the final GAP.')
        spec.output('summary', valid_type=orm.Dict, help='Per iteration: stop, steps, similarity, errors, sizes.')
        spec.output('convergence_plot', valid_type=orm.SinglefileData)
        spec.exit_code(401, 'ERROR_SAMPLING_FAILED', message='the initial sampling failed: [{status}] {message}')
        spec.exit_code(402, 'ERROR_FIT_FAILED', message='GAP fit of iteration {iteration} failed: [{status}] {message}')
        spec.exit_code(403, 'ERROR_EXPLORE_FAILED',
                       message='exploration of iteration {iteration} failed: [{status}] {message}')
        spec.exit_code(404, 'ERROR_LABEL_FAILED', message='labelling in iteration {iteration} failed: [{status}] {message}')
        spec.exit_code(405, 'ERROR_PREDICT_FAILED',
                       message='GAP prediction of the flagged configurations failed: [{status}] {message}')
        spec.exit_code(701, 'WARNING_MAX_ITERATIONS',
                       message='stopped after max_iterations={limit} explorations without convergence (outputs attached)')
        spec.exit_code(702, 'WARNING_MAX_NEW_CONFIGURATIONS',
                       message='stopped after adding max_new_configurations={limit} (outputs attached)')

    # -- set-up --------------------------------------------------------------------------------

    def setup(self):
        self.ctx.p = al.normalise_active_learning(self.inputs.parameters.get_dict())
        self.ctx.iteration = 0
        self.ctx.added = 0
        self.ctx.rows = []
        self.ctx.converged = False
        self.ctx.structure = self.inputs.explore.structure
        self.ctx.explore_parameters = self.inputs.explore.parameters.get_dict()
        self.ctx.explore_parameters.setdefault('reference_volume', float(self.ctx.structure.get_ase().get_volume()))
        if 'training_set' in self.inputs:
            self.ctx.training_set = self.inputs.training_set
            self.ctx.validation_set = self.inputs.validation_set

    def should_sample(self):
        return 'training_set' not in self.inputs

    def sample(self):
        inputs = self.exposed_inputs(ClassicalSamplingWorkChain, namespace='sampling')
        inputs.setdefault('metadata', {})['call_link_label'] = 'sampling'
        node = self.submit(ClassicalSamplingWorkChain, **inputs)
        self.report(f'submitted the initial classical sampling <{node.pk}>')
        return ToContext(sampling=node)

    def inspect_sample(self):
        node = self.ctx.sampling
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SAMPLING_FAILED.format(status=node.exit_status, message=node.exit_message)
        parts = split_training_set(node.outputs.pool, self.inputs.split)
        self.ctx.training_set, self.ctx.validation_set = parts['train'], parts['validation']
        self.report(f"initial data: {parts['train'].n_configurations} training, "
                    f"{parts['validation'].n_configurations} validation configurations")
        return None

    # -- the loop ------------------------------------------------------------------------------

    def fit(self):
        inputs = self.exposed_inputs(GapWorkChain, namespace='gap')
        inputs.update(pool=self.ctx.training_set, validation_set=self.ctx.validation_set)
        inputs.setdefault('metadata', {})['call_link_label'] = f'fit_iteration_{self.ctx.iteration}'
        node = self.submit(GapWorkChain, **inputs)
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

    def should_explore(self):
        p = self.ctx.p
        return (not self.ctx.converged and self.ctx.iteration < p['max_iterations']
                and self.ctx.added < p['max_new_configurations'])

    def explore(self):
        self.ctx.iteration += 1
        it = self.ctx.iteration
        metrics = self.ctx.metrics.get_dict()
        self.ctx.row = {'iteration': it, 'training_set_size': self.ctx.training_set.n_configurations,
                        'validation_energy_rmse': metrics['energy']['rmse'],
                        'validation_forces_rmse': metrics['forces']['rmse'],
                        'potential_uuid': self.ctx.potential.uuid, 'added': 0, 'rejected': 0}
        parameters = dict(self.ctx.explore_parameters)
        if self.ctx.p['reseed']:
            parameters['seed'] = int(parameters.get('seed', 4242)) + it - 1
        inputs = self.exposed_inputs(ExploreCalculation, namespace='explore')
        inputs.update(potential=self.ctx.potential, training_set=self.ctx.training_set, structure=self.ctx.structure,
                      parameters=orm.Dict(parameters))
        restart = restart_inputs(self.inputs)
        node = self.submit(ExploreRestartWorkChain, job=inputs, **restart,
                           metadata={'call_link_label': f'explore_iteration_{it}'})
        self.report(f'iteration {it}: submitted exploration <{node.pk}> with GAP {self.ctx.potential.label}')
        return ToContext(explore=node)

    def inspect_explore(self):
        node, it = self.ctx.explore, self.ctx.iteration
        if node.exit_status not in EXPLORE_STOPPED or 'results' not in node.outputs:
            return self.exit_codes.ERROR_EXPLORE_FAILED.format(iteration=it, status=node.exit_status,
                                                               message=node.exit_message)
        results = node.outputs.results.get_dict()
        reason = results['stop_reason']
        self.ctx.row.update(stop_reason=reason, steps=results.get('steps_run'),
                            similarity=results.get('similarity'), explore_uuid=node.uuid)
        self.ctx.candidates = {}
        if reason != 'max_steps':
            if 'configuration' in node.outputs:
                self.ctx.candidates['trigger'] = node.outputs.configuration
            if 'previous_configuration' in node.outputs:
                self.ctx.candidates['previous'] = node.outputs.previous_configuration
        similarity = results.get('similarity')
        similarity = f'{similarity:.6f}' if similarity is not None else 'n/a'
        self.report(f"iteration {it}: exploration <{node.pk}> stopped: {reason} after {results.get('steps_run')} "
                    f'steps (similarity {similarity}); {len(self.ctx.candidates)} configuration(s) to label')
        if reason == 'max_steps':
            self.ctx.converged = True
        elif reason == 'novel' and self.ctx.p['restart_from'] == 'stop' and 'configuration' in node.outputs:
            self.ctx.structure = node.outputs.configuration
        else:
            self.ctx.structure = self.inputs.explore.structure
        return None

    def flagged(self):
        return bool(self.ctx.candidates)

    def label(self):
        inputs = self.exposed_inputs(LabelWorkChain, namespace='label')
        inputs['structures'] = self.ctx.candidates
        inputs.setdefault('metadata', {})['call_link_label'] = f'label_iteration_{self.ctx.iteration}'
        node = self.submit(LabelWorkChain, **inputs)
        self.report(f'iteration {self.ctx.iteration}: submitted labelling <{node.pk}> of {sorted(self.ctx.candidates)}')
        return ToContext(labelling=node)

    def inspect_label(self):
        node = self.ctx.labelling
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LABEL_FAILED.format(iteration=self.ctx.iteration, status=node.exit_status,
                                                             message=node.exit_message)
        self.ctx.row['label_uuid'] = node.uuid
        return None

    def predict(self):
        restart = restart_inputs(self.inputs)
        node = self.submit(QuipRestartWorkChain, job={
            'code': self.inputs.quip.code, 'potential': self.ctx.potential,
            'configurations': self.ctx.labelling.outputs.training_set,
            'metadata': {'options': self.inputs.quip.options.get_dict()}},
            **restart, metadata={'call_link_label': f'predict_iteration_{self.ctx.iteration}'})
        return ToContext(predict=node)

    def screen(self):
        node, it = self.ctx.predict, self.ctx.iteration
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_PREDICT_FAILED.format(status=node.exit_status, message=node.exit_message)
        result = screen_configurations(self.ctx.labelling.outputs.training_set, node.outputs.predictions,
                                       self.ctx.training_set, self.inputs.parameters,
                                       metadata={'call_link_label': f'screen_iteration_{it}'})
        verdicts = result['screening']['candidates']
        trigger = next((v for v in verdicts if v['candidate'] == 'trigger'), verdicts[0])
        self.ctx.row.update(flagged_energy_error=trigger['energy_error'], flagged_forces_rmse=trigger['forces_rmse'])
        for v in verdicts:
            verdict = 'accepted' if v['accepted'] else 'rejected: ' + '; '.join(v['reasons'])
            self.report(f"iteration {it}: {v['candidate']} (MD step {v['md_step']}): GAP error |ΔE| "
                        f"{v['energy_error']:.4f} eV/atom, force RMSE {v['forces_rmse']:.3f} eV/Å; {verdict}")
        accepted = result.get('accepted')
        room = self.ctx.p['max_new_configurations'] - self.ctx.added
        n_accepted = accepted.n_configurations if accepted is not None else 0
        self.ctx.row['rejected'] = len(verdicts) - n_accepted
        if accepted is None:
            return None
        if n_accepted > room:
            self.report(f'iteration {it}: only {room} of {n_accepted} accepted configurations fit under '
                        'max_new_configurations; the first are added')
            accepted = _first_configurations(accepted, orm.Int(room), metadata={'call_link_label': f'limit_iteration_{it}'})
        self.ctx.training_set = merge_training_sets(base=self.ctx.training_set, new=accepted,
                                                    metadata={'call_link_label': f'merge_iteration_{it}'})
        self.ctx.added += accepted.n_configurations
        self.ctx.row['added'] = accepted.n_configurations
        self.ctx.training_set_changed = True
        return None

    def training_set_changed(self):
        return self.ctx.get('training_set_changed', False)

    def close_iteration(self):
        self.ctx.rows.append(self.ctx.row)
        self.node.base.extras.set('mlfail_iterations', self.ctx.rows)  # for `status` while it runs (not provenance)
        row = self.ctx.row
        self.report(f"iteration {row['iteration']} done: {row['stop_reason']} after {row['steps']} steps, "
                    f"added {row['added']}, rejected {row['rejected']}, training set now "
                    f'{self.ctx.training_set.n_configurations}')

    def finalize(self):
        p = self.ctx.p
        outcome = al.loop_outcome(self.ctx.converged, self.ctx.iteration, self.ctx.added, p)
        code = {al.CONVERGED: None,
                al.MAX_NEW: self.exit_codes.WARNING_MAX_NEW_CONFIGURATIONS.format(limit=p['max_new_configurations']),
                al.MAX_ITERATIONS: self.exit_codes.WARNING_MAX_ITERATIONS.format(limit=p['max_iterations'])}[outcome]
        result = active_learning_summary(orm.List(self.ctx.rows), orm.Str(outcome))
        self.out('potential', self.ctx.potential)
        self.out('training_set', self.ctx.training_set)
        self.out('metrics', self.ctx.metrics)
        self.out('summary', result['summary'])
        self.out('convergence_plot', result['convergence_plot'])
        self.report(f'{outcome} after {self.ctx.iteration} exploration(s), {self.ctx.added} configuration(s) added:\n'
                    + result['summary']['table'])
        return code


@calcfunction
def _first_configurations(training_set: TrainingSetData, n: orm.Int) -> TrainingSetData:
    """The first ``n`` configurations of a set (to respect ``max_new_configurations``)."""
    return TrainingSetData.from_atoms(training_set.get_atoms()[: n.value], reference=training_set.reference)
