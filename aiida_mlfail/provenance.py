"""Questions to the provenance graph of an active-learning run, answered with ``QueryBuilder``.

The links the queries follow (made by ``ActiveLearningWorkChain``)::

    AL run --CALL(explore_iteration_<i>_walker_<w>)--> ExploreRestartWorkChain --CALL--> ExploreCalculation
        --CREATE(configuration|previous_configuration)--> StructureData
        --INPUT(structures__w<w>_trigger|structures__w<w>_previous)--> LabelWorkChain
    AL run --CALL(label_iteration_<i>)--> LabelWorkChain --CALL--> labelling job(s)
    ExploreCalculation <--INPUT(potential)-- GapPotentialData
    AL run --CALL(merge_iteration_<i>)--> merge_training_sets <--INPUT(new)-- TrainingSetData (the added ones)

The walker of a flagged configuration is in its link label into the labelling (``w<w>_<kind>``,
:func:`aiida_mlfail.science.walkers.candidate_key`; runs before walkers used ``trigger`` / ``previous``: walker 0).
Each added configuration carries the UUID of its ``StructureData`` (``structure_uuid``, written by
``collect_structures`` into the configuration itself), which ties the added data to the graph.

The three questions of the README, one helper each:

* :func:`potentials_of_run`: every GAP fitted in a run, with its iteration and validation RMSE
  (``AL run --CALL(fit_iteration_<i>)--> GapWorkChain --RETURN(potential|metrics)-->``);
* :func:`added_configurations`: the configurations each iteration added and where they came from;
* :func:`failed_md_runs`: every GAP-MD run (``MLMDWorkChain``, ``ExploreCalculation``, ``mlfail.lammps``
  job with a ``potential`` input) that a failure guard or LAMMPS stopped, with the stop reason, the
  step and the ``GapPotentialData`` that drove it (its ``potential`` input), optionally only those
  belonging to one run.

Also :func:`configuration_origins` (per configuration of a training set: iteration, MD step, trigger,
labelling job; what ``aiida-mlfail export training-set`` writes), :func:`called_processes` and
:func:`active_learning_run_of`. Examples: README.md, "Provenance queries".
"""

from __future__ import annotations

from aiida import orm
from aiida.orm import QueryBuilder

from aiida_mlfail.science.walkers import parse_candidate


def _iteration(link_label: str) -> int:
    return int(link_label.rsplit('_', 1)[1])


def flagged_structures(workchain) -> dict[str, dict]:
    """Every configuration a run sent to its labeller, keyed by the ``StructureData`` UUID.

    :returns: ``{uuid: {'iteration', 'walker', 'candidate', 'structure', 'md_step', 'similarity', 'stop_reason',
        'explorer', 'potential', 'labelling', 'labelling_jobs'}}`` (nodes where the value is a node; ``walker`` the
        0-based index in the run's ``walkers``, ``candidate`` the kind: 'trigger' or 'previous').
    """
    qb = QueryBuilder()
    qb.append(orm.WorkChainNode, filters={'id': workchain.pk}, tag='run')
    qb.append(orm.WorkChainNode, with_incoming='run', tag='label',
              edge_filters={'label': {'like': 'label_iteration_%'}}, edge_project='label', edge_tag='label_link',
              project='*')
    qb.append(orm.StructureData, with_outgoing='label', tag='structure',
              edge_filters={'label': {'like': 'structures__%'}}, edge_project='label', edge_tag='structure_link',
              project='*')
    qb.append(orm.CalcJobNode, with_outgoing='structure', tag='explorer', project='*',
              filters={'attributes.process_label': 'ExploreCalculation'})
    qb.append(orm.Data, with_outgoing='explorer', edge_filters={'label': 'potential'}, project='*', tag='potential')
    found = {}
    for row in qb.iterdict():
        run_label, label_node = row['label_link']['label'], row['label']['*']
        structure_label, structure = row['structure_link']['label'], row['structure']['*']
        explorer, potential = row['explorer']['*'], row['potential']['*']
        walker, kind = parse_candidate(structure_label.split('__', 1)[1])
        found[structure.uuid] = {
            'iteration': _iteration(run_label), 'walker': walker, 'candidate': kind,
            'structure': structure, 'md_step': structure.base.attributes.get('md_step', None),
            'similarity': structure.base.attributes.get('similarity', None),
            'stop_reason': structure.base.attributes.get('stop_reason', None),
            'explorer': explorer, 'potential': potential, 'labelling': label_node,
            'labelling_jobs': labelling_jobs(label_node),
        }
    return found


def labelling_jobs(label_workchain) -> list:
    """The CalcJobs a ``LabelWorkChain`` called, directly or through the workflows it called (e.g. ``cp2k.base``)."""
    return [node for node in called_processes(label_workchain) if isinstance(node, orm.CalcJobNode)]


def added_configurations(workchain) -> list[dict]:
    """Per configuration an active-learning run added to its training set, where it came from.

    :param workchain: the ``ActiveLearningWorkChain`` node (finished or running).
    :returns: list ordered by iteration, walker and kind (trigger first) of dicts: ``iteration``, ``walker``
        (0-based index of the run's ``walkers``), ``candidate`` ('trigger' or 'previous'), ``md_step``,
        ``similarity``, ``stop_reason``, ``structure`` (StructureData),
        ``explorer`` (the ExploreCalculation node), ``potential`` (the GapPotentialData that drove
        the MD), ``labelling`` (LabelWorkChain node), ``labelling_jobs`` (its CalcJob nodes),
        ``energy`` (eV, reference), ``forces`` ((N, 3) eV/Å, reference), ``merge`` (the
        ``merge_training_sets`` node that added it).
    :raises ValueError: if an added configuration cannot be traced to a flagged structure.
    """
    flagged = flagged_structures(workchain)
    qb = QueryBuilder()
    qb.append(orm.WorkChainNode, filters={'id': workchain.pk}, tag='run')
    qb.append(orm.CalcFunctionNode, with_incoming='run', tag='merge', project='*',
              edge_filters={'label': {'like': 'merge_iteration_%'}}, edge_project='label', edge_tag='merge_link')
    qb.append(orm.Data, with_outgoing='merge', edge_filters={'label': 'new'}, project='*', tag='added')
    out = []
    for row in qb.iterdict():
        merge, run_label, added = row['merge']['*'], row['merge_link']['label'], row['added']['*']
        for atoms in added.get_atoms():
            uuid = atoms.info.get('structure_uuid')
            if uuid not in flagged:
                raise ValueError(f'added configuration {atoms.info.get("candidate")!r} of merge <{merge.pk}> does not '
                                 'trace back to a flagged structure of this run')
            record = dict(flagged[uuid])
            record.update(iteration=_iteration(run_label), energy=float(atoms.info['energy']),
                          forces=atoms.arrays['forces'], merge=merge)
            out.append(record)
    return sorted(out, key=lambda r: (r['iteration'], r['walker'], r['candidate'] != 'trigger'))


#: The processes that run GAP MD, by ``process_type`` (a ``mlfail.lammps`` job counts only with a ``potential`` input).
GAP_MD_PROCESS_TYPES = {
    'aiida.workflows:mlfail.mlmd': 'MLMDWorkChain',
    'aiida.calculations:mlfail.explore': 'ExploreCalculation',
    'aiida.calculations:mlfail.lammps': 'LammpsCalculation',
}
#: Exit statuses of a GAP-MD run stopped by a failure: 410 guard, 411 lost atoms, 412 other LAMMPS error.
FAILURE_EXIT_STATUSES = (410, 411, 412)
#: Stop reasons that are failures (the guards of ``science.mlmd`` and LAMMPS errors).
FAILURE_STOP_REASONS = ('volume_blowup', 'too_close_atoms', 'temperature_runaway', 'energy_runaway', 'lost_atoms',
                        'lammps_error')


def called_processes(run) -> list:
    """Every process ``run`` called, directly or through the workflows it called (CALL links, any depth), by pk."""
    found, callers = [], [run.pk]
    while callers:
        qb = QueryBuilder()
        qb.append(orm.ProcessNode, filters={'id': {'in': callers}}, tag='caller')
        qb.append(orm.ProcessNode, with_incoming='caller', edge_filters={'type': {'like': 'call%'}}, project='*')
        called = [node for (node,) in qb.all()]
        found += called
        callers = [node.pk for node in called if isinstance(node, orm.WorkflowNode)]
    return sorted(found, key=lambda n: n.pk)


def potentials_of_run(run) -> list[dict]:
    """Every GAP a run fitted (through the ``GapWorkChain`` s it called) with its validation RMSE.

    :param run: an ``ActiveLearningWorkChain`` node (finished or running), or any workflow that calls
        ``GapWorkChain`` s; the iteration is read from the call link label ``fit_iteration_<i>``
        (``None`` for other labels).
    :returns: list ordered by iteration of dicts: ``iteration``, ``potential`` (``GapPotentialData``),
        ``label`` (GAP label), ``fit`` (the ``GapWorkChain`` node), ``training_set_size``,
        ``energy_rmse`` (eV/atom), ``forces_rmse`` (eV/Å), ``virial_rmse`` (eV/atom) on the validation
        set (``None`` when the fit has no metrics yet or the label was not validated), ``metrics`` (the
        whole metrics dict) and ``final`` (whether it is the run's ``potential`` output). A fit that
        failed before its GAP existed has no entry.
    """
    qb = QueryBuilder()
    qb.append(orm.WorkflowNode, filters={'id': run.pk}, tag='run')
    qb.append(orm.WorkChainNode, with_incoming='run', tag='fit', project='*', edge_project='label', edge_tag='call',
              filters={'attributes.process_label': 'GapWorkChain'})
    qb.append(orm.Data, with_incoming='fit', edge_filters={'label': 'potential'}, project='*', tag='potential')
    rows = list(qb.iterdict())
    metrics_qb = QueryBuilder()
    metrics_qb.append(orm.WorkChainNode, filters={'id': {'in': [row['fit']['*'].pk for row in rows] or [-1]}},
                      tag='fit', project='id')
    metrics_qb.append(orm.Dict, with_incoming='fit', edge_filters={'label': 'metrics'}, project='attributes')
    metrics = dict(metrics_qb.all())
    final = run.outputs.potential.uuid if 'potential' in run.outputs else None
    out = []
    for row in rows:
        fit, potential, link = row['fit']['*'], row['potential']['*'], row['call']['label']
        m = metrics.get(fit.pk) or {}
        training_set = fit.outputs.training_set if 'training_set' in fit.outputs else None
        out.append({
            'iteration': _iteration(link) if link.startswith('fit_iteration_') else None,
            'potential': potential, 'label': potential.base.attributes.get('label', None), 'fit': fit,
            'training_set_size': training_set.n_configurations if training_set is not None else None,
            'energy_rmse': (m.get('energy') or {}).get('rmse'), 'forces_rmse': (m.get('forces') or {}).get('rmse'),
            'virial_rmse': (m.get('virial') or {}).get('rmse'), 'metrics': m, 'final': potential.uuid == final,
        })
    return sorted(out, key=lambda r: (r['iteration'] is None, r['iteration'] or 0, r['fit'].pk))


def _run_scope(run) -> set[int]:
    """pks of the processes a run called (any depth) and of the processes that took a GAP the run made as input."""
    called = called_processes(run)
    scope = {run.pk, *(node.pk for node in called)}
    jobs = [node.pk for node in called if isinstance(node, orm.CalcJobNode)]
    if jobs:
        qb = QueryBuilder()
        qb.append(orm.CalcJobNode, filters={'id': {'in': jobs}}, tag='job')
        qb.append(orm.Data, with_incoming='job', tag='potential',
                  filters={'node_type': {'like': 'data.mlfail.gap_potential%'}})
        qb.append(orm.ProcessNode, with_incoming='potential', edge_filters={'label': 'potential'}, project='id')
        scope.update(qb.all(flat=True))
    return scope


def failed_md_runs(run=None, nested: bool = False) -> list[dict]:
    """Every GAP-MD run that stopped with a failure, with the stop reason and the GAP responsible.

    A failure is an exit status in :data:`FAILURE_EXIT_STATUSES` (410 guard, 411 lost atoms, 412
    LAMMPS error) or a stop reason in :data:`FAILURE_STOP_REASONS` (e.g. an ``mlfail.lammps`` job
    that ended with a LAMMPS error). The processes looked at are ``MLMDWorkChain``,
    ``ExploreCalculation`` and ``mlfail.lammps`` jobs with a ``potential`` input (GAP MD).

    :param run: when given, only the failed runs that belong to it: the processes it called (at any
        depth, e.g. the explorations of an active-learning run) and the processes that took as
        ``potential`` a GAP made inside it (e.g. the verification ``MLMDWorkChain`` s of its GAPs).
    :param nested: also list the ``mlfail.lammps`` job inside a failed ``MLMDWorkChain`` (called through its
        ``LammpsRestartWorkChain``; by default only the workflow is listed, as it reports the same stop).
    :returns: list ordered by pk of dicts: ``process`` (node), ``process_label``, ``exit_status``,
        ``exit_message``, ``stop_reason``, ``stop_step``, ``value`` (the guard's value, e.g. the
        volume in Å^3), ``message``, ``potential`` (the ``GapPotentialData`` input) and ``caller``
        (the calling process node or ``None``).
    """
    qb = QueryBuilder()
    qb.append(orm.ProcessNode, tag='md', project='*',
              filters={'process_type': {'in': list(GAP_MD_PROCESS_TYPES)}, 'attributes.process_state': 'finished'})
    qb.append(orm.Data, with_outgoing='md', edge_filters={'label': 'potential'}, project='*', tag='potential',
              filters={'node_type': {'like': 'data.mlfail.gap_potential%'}})
    rows = [(row['md']['*'], row['potential']['*']) for row in qb.iterdict()]
    stops_qb = QueryBuilder()
    stops_qb.append(orm.ProcessNode, filters={'id': {'in': [md.pk for md, _ in rows] or [-1]}}, tag='md', project='id')
    stops_qb.append(orm.Dict, with_incoming='md', edge_filters={'label': {'in': ['stop', 'results']}},
                    project='attributes')
    stops = dict(stops_qb.all())
    scope = _run_scope(run) if run is not None else None
    failed = {}
    for md, potential in rows:
        stop = stops.get(md.pk) or {}
        reason = stop.get('stop_reason')
        if md.exit_status not in FAILURE_EXIT_STATUSES and reason not in FAILURE_STOP_REASONS:
            continue
        if scope is not None and md.pk not in scope:
            continue
        failed[md.pk] = {
            'process': md, 'process_label': GAP_MD_PROCESS_TYPES[md.process_type], 'exit_status': md.exit_status,
            'exit_message': md.exit_message, 'stop_reason': reason, 'stop_step': stop.get('stop_step'),
            'value': stop.get('value', stop.get('guard_value')), 'message': stop.get('message'),
            'potential': potential, 'caller': md.caller,
        }
    if not nested:
        failed = {pk: r for pk, r in failed.items() if not _inside_failed_mlmd(r['caller'], failed)}
    return [failed[pk] for pk in sorted(failed)]


def _inside_failed_mlmd(caller, failed: dict) -> bool:
    """Whether ``caller`` (the caller of a job) is, or is a restart wrapper called by, an ``MLMDWorkChain`` in
    ``failed`` (the MLMD WorkChain runs its LAMMPS job in a ``LammpsRestartWorkChain``)."""
    while caller is not None and caller.process_type == 'aiida.workflows:mlfail.lammps.base':
        caller = caller.caller
    return caller is not None and caller.process_type == 'aiida.workflows:mlfail.mlmd' and caller.pk in failed


def active_learning_run_of(training_set):
    """The ``ActiveLearningWorkChain`` that returned ``training_set`` or made it in one of its merges, or ``None``."""
    qb = QueryBuilder()
    qb.append(orm.Data, filters={'id': training_set.pk}, tag='set')
    qb.append(orm.WorkChainNode, with_outgoing='set', project='*',
              filters={'attributes.process_label': 'ActiveLearningWorkChain'})
    found = qb.first(flat=True)
    if found is not None:
        return found
    creator = training_set.creator
    caller = creator.caller if creator is not None else None
    if caller is not None and caller.process_label == 'ActiveLearningWorkChain':
        return caller
    return None


def sampling_jobs(training_set) -> dict[str, object]:
    """The ``mlfail.lammps`` jobs a set's configurations come from, by job label (the sampling state point).

    Walks back from ``training_set`` over CREATE links and the training-set inputs of the
    calcfunctions that made it (split, select, merge ...); a label held by more than one job maps to
    ``None`` (ambiguous). (A level-by-level walk: the recursive ``with_descendants`` join is slow on SQLite.)
    """
    jobs: dict[str, object] = {}
    level, seen = [training_set.pk], {training_set.pk}
    while level:
        qb = QueryBuilder()
        qb.append(orm.Data, filters={'id': {'in': level}}, tag='set')
        qb.append(orm.CalculationNode, with_outgoing='set', edge_filters={'type': 'create'}, project='*', tag='calc')
        calcs = {node.pk: node for (node,) in qb.all()}
        for job in calcs.values():
            if job.process_type == 'aiida.calculations:mlfail.lammps' and job.label:
                jobs[job.label] = None if job.label in jobs and jobs[job.label].pk != job.pk else job
        others = [pk for pk, node in calcs.items() if node.process_type != 'aiida.calculations:mlfail.lammps']
        level = []
        if others:
            qb = QueryBuilder()
            qb.append(orm.CalculationNode, filters={'id': {'in': others}}, tag='calc')
            qb.append(orm.Data, with_outgoing='calc', project='id',
                      filters={'node_type': {'like': 'data.mlfail.training_set%'}})
            level = [pk for pk in set(qb.all(flat=True)) if pk not in seen]
            seen.update(level)
    return jobs


def configuration_origins(training_set, run=None) -> list[dict]:
    """Where each configuration of a training set came from, in file order (for per-frame provenance fields).

    :param run: the active-learning run whose added configurations to trace; by default the run that
        returned or made ``training_set`` (:func:`active_learning_run_of`), if any.
    :returns: one dict per configuration: ``iteration`` (0 for the initial data), ``md_step`` (of the
        classical sampling or of the exploration; -1 when unknown), ``trigger`` ('initial', or the
        candidate 'trigger' / 'previous' of an added configuration), ``walker`` (the walker that flagged an added
        configuration; -1 for the initial data), ``labelling_job_uuid`` (the job
        that computed its labels: the ``mlfail.lammps`` sampling job of its state point, or the
        labelling job of an added configuration; 'unknown' when it cannot be traced), and for added
        configurations ``stop_reason``, ``explore_uuid`` and ``potential_uuid``.
    """
    run = run if run is not None else active_learning_run_of(training_set)
    added = {}
    if run is not None:
        for record in added_configurations(run):
            added[record['structure'].uuid] = record
    jobs = sampling_jobs(training_set)
    origins = []
    for info in training_set.configurations:
        record = added.get(info.get('structure_uuid'))
        if record is not None:
            labelling = record['labelling_jobs']
            origins.append({
                'iteration': record['iteration'],
                'md_step': int(record['md_step']) if record['md_step'] is not None else -1,
                'trigger': record['candidate'], 'walker': record['walker'],
                'labelling_job_uuid': labelling[0].uuid if len(labelling) == 1 else
                ','.join(job.uuid for job in labelling) or 'unknown',
                'stop_reason': record['explorer'].outputs.results.get('stop_reason', 'unknown'),
                'explore_uuid': record['explorer'].uuid, 'potential_uuid': record['potential'].uuid,
            })
            continue
        job = jobs.get(info.get('state_point')) if info.get('state_point') is not None else None
        md_step = info.get('md_step')
        origins.append({'iteration': 0, 'md_step': int(md_step) if md_step is not None else -1, 'trigger': 'initial',
                        'walker': -1,
                        'labelling_job_uuid': job.uuid if job is not None else 'unknown'})
    return origins
