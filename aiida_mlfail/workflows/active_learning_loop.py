"""The iteration of ``ActiveLearningWorkChain`` (a mixin of its steps): explore with every walker at once, choose
the batch, label it, predict and screen it, merge; the fit and the results are the WorkChain's own steps.

Rules (module doc of :mod:`aiida_mlfail.workflows.active_learning`): each walker explores from its own start
(its accepted trigger of the previous iteration with ``restart_from='stop'``, else its start structure); the
candidates of all walkers are keyed ``w<walker>_<kind>`` (:func:`aiida_mlfail.science.walkers.candidate_key`),
at most ``max_batch`` of them are labelled (:func:`~aiida_mlfail.calculations.functions.choose_batch`), in one
``LabelWorkChain`` (its jobs run concurrently); the loop has converged when every walker ran ``max_steps``
without a flag.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext

from aiida_mlfail.calculations.functions import (
    choose_batch,
    first_configurations,
    merge_training_sets,
    screen_configurations,
)
from aiida_mlfail.science import active_learning as al
from aiida_mlfail.science import pair_distances, walkers
from aiida_mlfail.workflows.common import structure_message, wrapper_inputs
from aiida_mlfail.workflows.label import LabelWorkChain
from aiida_mlfail.workflows.restart import ExploreRestartWorkChain, QuipRestartWorkChain, is_outcome


def describe_walker(parameters: dict) -> str:
    """Short text of a walker's state point and seed, e.g. ``NPT 1400 K 1 bar seed 11``."""
    ensemble = str(parameters.get('ensemble', 'NVT')).upper()
    pressure = f" {parameters['pressure']} bar" if ensemble == 'NPT' and parameters.get('pressure') is not None else ''
    return f"{ensemble} {parameters.get('temperature', '?')} K{pressure} seed {parameters.get('seed')}"


class ExplorationLoop:
    """The loop steps of :class:`~aiida_mlfail.workflows.active_learning.ActiveLearningWorkChain` (module doc)."""

    def _setup_walkers(self):
        """``ctx.walkers`` (checked ``walkers`` input, default one walker: the explorer's own parameters) and
        ``ctx.starts`` (each walker's start ``StructureData``)."""
        given = self.inputs.walkers.get_list() if 'walkers' in self.inputs else [{}]
        named = dict(self.inputs.get('walker_structures', {}))
        self.ctx.walkers = walkers.normalise_walkers(given, named)
        self.ctx.walker_starts = [named[w['structure']] if 'structure' in w else self.inputs.explore.job.structure
                                  for w in self.ctx.walkers]
        self.ctx.starts = list(self.ctx.walker_starts)

    def _record_failure(self, candidate, md_step, structure_uuid, stage: str, reason: str) -> None:
        """Add a configuration to the ledger of failed labels (stage: 'label' or 'outlier'); ``candidate`` is a
        walker's key (``w0_trigger``) or a plain name ('initial data')."""
        try:
            walker, kind = walkers.parse_candidate(candidate)
        except ValueError:
            walker, kind = None, candidate
        self.ctx.ledger.append({'iteration': self.ctx.iteration, 'candidate': kind, 'walker': walker,
                                'md_step': md_step, 'structure_uuid': structure_uuid, 'stage': stage, 'reason': reason})
        self.report(f'iteration {self.ctx.iteration}: ledger of failed labels +1 ({len(self.ctx.ledger)} of at most '
                    f"{self.ctx.p['max_failed_labels']}): {candidate} ({stage}) {reason}")

    def _budget_exceeded(self) -> bool:
        return len(self.ctx.ledger) > self.ctx.p['max_failed_labels']

    def should_explore(self):
        p = self.ctx.p
        return (not self.ctx.converged and self.ctx.iteration < p['max_iterations']
                and self.ctx.added < p['max_new_configurations'] and not self._budget_exceeded())

    def run_explore(self):
        """Submit the exploration of every walker (all at once)."""
        self.ctx.iteration += 1
        it = self.ctx.iteration
        metrics = self.ctx.metrics.get_dict()
        self.ctx.row = {'iteration': it, 'training_set_size': self.ctx.training_set.n_configurations,
                        'validation_energy_rmse': metrics['energy']['rmse'],
                        'validation_forces_rmse': metrics['forces']['rmse'],
                        'potential_uuid': self.ctx.potential.uuid, 'added': 0, 'rejected': 0, 'label_failures': 0,
                        'walkers': []}
        for index, walker in enumerate(self.ctx.walkers):
            parameters = walkers.walker_parameters(self.ctx.explore_parameters, walker, it, self.ctx.p['reseed'],
                                                   index)
            parameters.setdefault('reference_volume', float(self.ctx.walker_starts[index].get_ase().get_volume()))
            start = self.ctx.starts[index]
            inputs = wrapper_inputs(self, ExploreRestartWorkChain, 'explore',
                                    call_link_label=f'explore_iteration_{it}_walker_{index}',
                                    potential=self.ctx.potential, training_set=self.ctx.training_set,
                                    structure=start, parameters=orm.Dict(parameters))
            node = self.submit(ExploreRestartWorkChain, **inputs)
            where = 'its start structure' if start.uuid == self.ctx.walker_starts[index].uuid else \
                f'configuration <{start.pk}>'
            self.report(f'iteration {it}: submitted exploration <{node.pk}> of walker {index} '
                        f'({describe_walker(parameters)}) with GAP {self.ctx.potential.label} from {where}')
            self.to_context(**{f'explore_{index}': node})

    def _labelled_before(self, structure) -> bool:
        """Whether ``structure`` is (within 1e-3 Å) a configuration already sent to the labeller."""
        atoms = structure.get_ase()
        return any(al.same_configuration(atoms, orm.load_node(uuid).get_ase()) for uuid in self.ctx.labelled_uuids)

    def inspect_explore(self):
        """Stop reasons and flagged configurations of every walker; converged when all ran ``max_steps``."""
        it = self.ctx.iteration
        self.ctx.candidates = {}
        self.ctx.stop_reasons = []
        self.ctx.accepted_triggers = set()
        for index in range(len(self.ctx.walkers)):
            node = self.ctx[f'explore_{index}']
            if not is_outcome(node) or 'results' not in node.outputs:  # a guard stop (by label) still has results
                return self.exit_codes.ERROR_EXPLORE_FAILED.format(iteration=it, status=node.exit_status,
                                                                   message=f'walker {index}: {node.exit_message}')
            results = node.outputs.results.get_dict()
            reason = results['stop_reason']
            self.ctx.stop_reasons.append(reason)
            self.ctx.row['walkers'].append({'walker': index, 'stop_reason': reason, 'steps': results.get('steps_run'),
                                            'similarity': results.get('similarity'), 'explore_uuid': node.uuid})
            flagged = []
            if reason != 'max_steps':
                for name, port in (('trigger', 'configuration'), ('previous', 'previous_configuration')):
                    if port not in node.outputs:
                        continue
                    if self._labelled_before(node.outputs[port]):
                        self.report(f'iteration {it}: walker {index}: the {name} configuration '
                                    f'<{node.outputs[port].pk}> was labelled before (flagged a second time): '
                                    'not labelled again')
                        continue
                    self.ctx.candidates[walkers.candidate_key(index, name)] = node.outputs[port]
                    flagged.append(name)
            guards = results.get('guard_distances')
            if guards is not None and 'guard_distances' not in self.ctx.row:
                self.ctx.row['guard_distances'] = guards
                self.report(f'iteration {it}: distance guard of exploration <{node.pk}>: '
                            f'{pair_distances.describe(guards)}')
            similarity = results.get('similarity')
            similarity = f'{similarity:.6f}' if similarity is not None else 'n/a'
            self.report(f"iteration {it}: walker {index}: exploration <{node.pk}> stopped: {reason} after "
                        f"{results.get('steps_run')} steps (similarity {similarity}); flagged: "
                        f"{', '.join(flagged) or 'none'}")
        rows = self.ctx.row['walkers']
        similarities = [r['similarity'] for r in rows if r['similarity'] is not None]
        self.ctx.row.update(stop_reason=' / '.join(self.ctx.stop_reasons),
                            steps=sum(r['steps'] or 0 for r in rows),
                            similarity=min(similarities) if similarities else None,
                            explore_uuid=rows[0]['explore_uuid'])
        if all(reason == 'max_steps' for reason in self.ctx.stop_reasons):
            self.ctx.converged = True
        return None

    def flagged(self):
        return bool(self.ctx.candidates)

    def choose(self):
        """At most ``max_batch`` of the candidates of all walkers: all when they fit, else
        :func:`~aiida_mlfail.calculations.functions.choose_batch` (a calcfunction: triggers first, then
        farthest-point in REMatch distance)."""
        it, limit = self.ctx.iteration, self.ctx.p['max_batch']
        keys = sorted(self.ctx.candidates)
        if len(keys) <= limit:
            self.ctx.batch = dict(self.ctx.candidates)
            self.report(f'iteration {it}: batch of {len(keys)} to label: {keys} (all flagged, max_batch={limit})')
            return None
        p = self.ctx.explore_parameters
        settings = {'max_batch': limit, 'soap': p.get('soap') or {}, 'alpha': p.get('alpha', 0.1),
                    'threshold': p.get('threshold', 1e-6)}
        result = choose_batch(orm.Dict(settings), **self.ctx.candidates,
                              metadata={'call_link_label': f'batch_iteration_{it}'}).get_dict()
        self.ctx.batch = {key: self.ctx.candidates[key] for key in result['chosen']}
        self.report(f"iteration {it}: batch of {len(result['chosen'])} of {len(keys)} flagged (max_batch={limit}, "
                    f"distances: {result['distances']}): {result['chosen']}; not labelled: {result['not_chosen']}")
        return None

    def run_label(self):
        inputs = self._label_inputs()
        inputs['structures'] = self.ctx.batch
        inputs.setdefault('metadata', {})['call_link_label'] = f'label_iteration_{self.ctx.iteration}'
        self.ctx.labelled_uuids += [node.uuid for node in self.ctx.batch.values()]
        node = self.submit(LabelWorkChain, **inputs)
        self.report(f'iteration {self.ctx.iteration}: submitted labelling <{node.pk}> of {sorted(self.ctx.batch)}')
        return ToContext(labelling=node)

    def inspect_label(self):
        node = self.ctx.labelling
        self.ctx.row['label_uuid'] = node.uuid
        candidates = sorted(self.ctx.batch)  # the LabelWorkChain's configuration order
        if node.exit_status == LabelWorkChain.exit_codes.ERROR_ALL_FAILED.status:
            for name in candidates:
                structure = self.ctx.batch[name]
                self._record_failure(name, structure.base.attributes.get('md_step', None), structure.uuid, 'label',
                                     node.exit_message)
            self.ctx.row['label_failures'] = len(candidates)
            return None
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LABEL_FAILED.format(iteration=self.ctx.iteration, status=node.exit_status,
                                                             message=node.exit_message)
        excluded = node.outputs.excluded['excluded']
        for item in excluded:
            name = candidates[item['index']]
            structure = self.ctx.batch[name]
            self._record_failure(name, structure.base.attributes.get('md_step', None), structure.uuid, 'label',
                                 item['reason'])
        self.ctx.row['label_failures'] = len(excluded)
        return None

    def labelled(self):
        node = self.ctx.labelling
        return node.is_finished_ok and 'training_set' in node.outputs

    def run_predict(self):
        inputs = wrapper_inputs(self, QuipRestartWorkChain, 'predict',
                                call_link_label=f'predict_iteration_{self.ctx.iteration}',
                                potential=self.ctx.potential, configurations=self.ctx.labelling.outputs.training_set)
        node = self.submit(QuipRestartWorkChain, **inputs)
        self.report(f'iteration {self.ctx.iteration}: submitted GAP prediction <{node.pk}> of the labelled '
                    'configuration(s)')
        return ToContext(predict=node)

    def inspect_predict(self):
        node = self.ctx.predict
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_PREDICT_FAILED.format(status=node.exit_status, message=node.exit_message)
        return None

    def screen(self):
        """Outlier check of the labelled configurations against the GAP prediction; merge the accepted ones."""
        node, it = self.ctx.predict, self.ctx.iteration
        result = screen_configurations(self.ctx.labelling.outputs.training_set, node.outputs.predictions,
                                       self.ctx.training_set, self.inputs.parameters,
                                       metadata={'call_link_label': f'screen_iteration_{it}'})
        verdicts = result['screening']['candidates']
        limits = result['screening']['outlier_distances']
        self.ctx.row['outlier_distances'] = limits
        self.report(f'iteration {it}: outlier distances {pair_distances.describe(limits)} '
                    f"({result['screening']['outlier_distances_source']})")
        triggers = [v for v in verdicts if al.candidate_rank(v['candidate']) == 0] or verdicts
        self.ctx.row.update(flagged_energy_error=max(v['energy_error'] for v in triggers),
                            flagged_forces_rmse=max(v['forces_rmse'] for v in triggers))
        for v in verdicts:
            verdict = 'accepted' if v['accepted'] else 'rejected: ' + '; '.join(v['reasons'])
            walker, kind = walkers.parse_candidate(v['candidate'])
            self.report(f"iteration {it}: walker {walker} {kind} (MD step {v['md_step']}): GAP error |ΔE| "
                        f"{v['energy_error']:.4f} eV/atom, force RMSE {v['forces_rmse']:.3f} eV/Å; {verdict}")
            if not v['accepted']:
                self._record_failure(v['candidate'], v['md_step'], v.get('structure_uuid'), 'outlier',
                                     '; '.join(v['reasons']))
        accepted = result.get('accepted')
        room = self.ctx.p['max_new_configurations'] - self.ctx.added
        n_accepted = accepted.n_configurations if accepted is not None else 0
        self.ctx.row['rejected'] = len(verdicts) - n_accepted
        if accepted is None:
            return None
        if n_accepted > room:
            self.report(f'iteration {it}: only {room} of {n_accepted} accepted configurations fit under '
                        'max_new_configurations; the triggers go first')
            accepted = first_configurations(accepted, orm.Int(room),
                                            metadata={'call_link_label': f'limit_iteration_{it}'})
        added = [a.info['candidate'] for a in accepted.get_atoms()]  # at most max_batch small configurations
        self.ctx.accepted_triggers = {walkers.parse_candidate(key)[0] for key in added
                                      if walkers.parse_candidate(key)[1] == 'trigger'}
        self.ctx.training_set = merge_training_sets(base=self.ctx.training_set, new=accepted,
                                                    metadata={'call_link_label': f'merge_iteration_{it}'})
        self.ctx.added += accepted.n_configurations
        self.ctx.row['added'] = accepted.n_configurations
        self.ctx.row['added_from'] = ' '.join(sorted(added))
        self.report(f"iteration {it}: added {', '.join(sorted(added))} (walker_kind)")
        self.ctx.training_set_changed = True
        return None

    def training_set_changed(self):
        return self.ctx.get('training_set_changed', False)

    def close_iteration(self):
        starts = []
        for index, reason in enumerate(self.ctx.stop_reasons):
            where = al.next_start(reason, self.ctx.p['restart_from'], index in self.ctx.accepted_triggers)
            node = self.ctx[f'explore_{index}']
            if where == 'stop':
                # an accepted trigger the explorer's structure validator would refuse (overlapping atoms, possible
                # when outliers.min_distance is set low) would except the next submit: start from the start then
                message = structure_message(node.outputs.configuration)
                if message:
                    self.report(f'walker {index}: the trigger cannot start an exploration ({message}): the next one '
                                'starts from its start structure')
                    where = 'start'
            self.ctx.starts[index] = node.outputs.configuration if where == 'stop' else self.ctx.walker_starts[index]
            starts.append(f'walker {index} from ' + ('its accepted trigger' if where == 'stop' else
                                                      'its start structure'))
        self.ctx.rows.append(self.ctx.row)
        self.node.base.extras.set('mlfail_iterations', self.ctx.rows)  # for `status` while it runs (not provenance)
        row = self.ctx.row
        self.report(f"iteration {row['iteration']} done: {row['stop_reason']} after {row['steps']} steps, "
                    f"added {row['added']}, rejected {row['rejected']}, not labelled {row['label_failures']}, "
                    f'training set now {self.ctx.training_set.n_configurations}; next: ' + '; '.join(starts))
