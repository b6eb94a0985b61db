"""Questions to the provenance graph of an active-learning run, answered with ``QueryBuilder``.

The links the queries follow (made by ``ActiveLearningWorkChain``)::

    AL run --CALL(explore_iteration_<i>)--> ExploreCalculation --CREATE(configuration|previous_configuration)-->
        StructureData --INPUT(structures__trigger|structures__previous)--> LabelWorkChain
    AL run --CALL(label_iteration_<i>)--> LabelWorkChain --CALL--> labelling job(s)
    ExploreCalculation <--INPUT(potential)-- GapPotentialData
    AL run --CALL(merge_iteration_<i>)--> merge_training_sets <--INPUT(new)-- TrainingSetData (the added ones)

Each added configuration carries the UUID of its ``StructureData`` (``structure_uuid``, written by
``collect_structures`` into the configuration itself), which ties the added data to the graph.
"""

from __future__ import annotations

from aiida import orm
from aiida.orm import QueryBuilder


def _iteration(link_label: str) -> int:
    return int(link_label.rsplit('_', 1)[1])


def flagged_structures(workchain) -> dict[str, dict]:
    """Every configuration a run sent to its labeller, keyed by the ``StructureData`` UUID.

    :returns: ``{uuid: {'iteration', 'candidate', 'structure', 'md_step', 'similarity', 'stop_reason',
        'explorer', 'potential', 'labelling', 'labelling_jobs'}}`` (nodes where the value is a node).
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
        found[structure.uuid] = {
            'iteration': _iteration(run_label), 'candidate': structure_label.split('__', 1)[1],
            'structure': structure, 'md_step': structure.base.attributes.get('md_step', None),
            'similarity': structure.base.attributes.get('similarity', None),
            'stop_reason': structure.base.attributes.get('stop_reason', None),
            'explorer': explorer, 'potential': potential, 'labelling': label_node,
            'labelling_jobs': labelling_jobs(label_node),
        }
    return found


def labelling_jobs(label_workchain) -> list:
    """The CalcJobs a ``LabelWorkChain`` called, directly or through the workflows it called (e.g. ``cp2k.base``)."""
    jobs, workflows = [], [label_workchain]
    while workflows:
        qb = QueryBuilder()
        qb.append(orm.WorkflowNode, filters={'id': {'in': [w.pk for w in workflows]}}, tag='caller')
        qb.append(orm.ProcessNode, with_incoming='caller', edge_filters={'type': {'like': 'call%'}}, project='*')
        called = [node for (node,) in qb.all()]
        jobs += [node for node in called if isinstance(node, orm.CalcJobNode)]
        workflows = [node for node in called if isinstance(node, orm.WorkflowNode)]
    return sorted(jobs, key=lambda n: n.pk)


def added_configurations(workchain) -> list[dict]:
    """Per configuration an active-learning run added to its training set, where it came from.

    :param workchain: the ``ActiveLearningWorkChain`` node (finished or running).
    :returns: list ordered by iteration of dicts: ``iteration``, ``candidate`` ('trigger' or
        'previous'), ``md_step``, ``similarity``, ``stop_reason``, ``structure`` (StructureData),
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
    return sorted(out, key=lambda r: (r['iteration'], r['candidate'] != 'trigger'))
