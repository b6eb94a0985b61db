"""``aiida-mlfail calibrate GAP_NODE``: which signal predicts the GAP's failures, and the thresholds to use.

Builds ``mlfail.calibrate`` (:class:`~aiida_mlfail.workflows.calibrate.CalibrateWorkChain`) from its
protocol for the GAP node, with the defaults taken from the database: the novelty references and the
start structure from the GAP's training set (``training_set_uuid``; the first configuration starts every
walker), the error threshold from the validation metrics of the ``mlfail.gap`` run that made the GAP
(twice its force RMSE). ``reference=`` (the classical oracle) is required; every other ``key=value`` is
an argument of the builder (``structure=FILE_OR_PK``, ``codes={explore: LABEL}``) or an override of the
protocol (``seeds=[1,2]``, ``calibration.error_threshold=0.3``, ``explore.job.parameters.temperature=1400``).
"""

from __future__ import annotations

import click
from aiida.cmdline.params import arguments
from aiida.cmdline.utils import decorators


def gap_metrics(potential):
    """The ``metrics`` Dict of the ``mlfail.gap`` run whose ``potential`` output is ``potential``, or ``None``."""
    from aiida import orm  # noqa: PLC0415

    from aiida_mlfail.workflows.gap import GapWorkChain  # noqa: PLC0415

    query = orm.QueryBuilder()
    query.append(orm.Node, filters={'id': potential.pk}, tag='gap')
    query.append(GapWorkChain, with_outgoing='gap', tag='fit')
    query.append(orm.Dict, with_incoming='fit', edge_filters={'label': 'metrics'})
    found = query.first(flat=True)
    return found


def calibration_tree(potential, tree: dict) -> dict:
    """The input tree of ``mlfail.calibrate`` for ``potential`` with the database defaults (see the module doc)
    filled in where ``tree`` gives none.

    :raises click.BadParameter: when a default is needed but the database does not have it.
    """
    from aiida import orm  # noqa: PLC0415

    from aiida_mlfail.workflows.mlmd import gap_training_set  # noqa: PLC0415

    tree = {**tree, 'potential': potential}
    training_set = gap_training_set(potential)
    if 'training_set' not in tree and training_set is not None:
        tree['training_set'] = training_set
    if 'structure' not in tree:
        source = tree.get('training_set', training_set)
        if source is None:
            raise click.BadParameter(f'the GAP <{potential.pk}> names no training set in this database: give '
                                     'structure=FILE_OR_PK and training_set=FILE_OR_PK', param_hint='GAP_NODE')
        if not isinstance(source, orm.Node):
            raise click.BadParameter('give structure=FILE_OR_PK with a training_set given as a file',
                                     param_hint='structure')
        tree['structure'] = orm.StructureData(ase=source.get_atoms()[0])
    threshold = (tree.get('calibration') or {}).get('error_threshold')
    if threshold is None and 'metrics' not in tree:
        metrics = gap_metrics(potential)
        if metrics is None:
            raise click.BadParameter(f'no mlfail.gap run with validation metrics made the GAP <{potential.pk}>: give '
                                     'calibration.error_threshold=X (eV/Å for the force RMSE)', param_hint='GAP_NODE')
        tree['metrics'] = metrics
    return tree


@click.command('calibrate', context_settings={'help_option_names': ['-h', '--help']})
@arguments.NODE('gap')
@click.argument('args', nargs=-1, metavar='[KEY=VALUE]...')
@click.option('-i', '--inputs', 'inputs_file', type=click.Path(exists=True, dir_okay=False),
              help='YAML file with builder arguments and protocol overrides (as key=value).')
@click.option('--protocol', type=click.Choice(['fast', 'moderate', 'precise']), default='fast', show_default=True,
              help='Protocol of mlfail.calibrate (walkers, steps, check interval).')
@click.option('-Y', '--computer', help='Computer of the codes (default localhost).')
@click.option('--submit', is_flag=True, help='Submit to the daemon instead of running here.')
@decorators.with_dbenv()
def calibrate(gap, args, inputs_file, protocol, computer, submit):
    """Calibrate the failure signals of the GAP node GAP_NODE against a classical reference (mlfail.calibrate).

    \b
    aiida-mlfail calibrate 1234 'reference={name: bmhtf_wolf}'
    aiida-mlfail calibrate 1234 'reference={name: bmhtf_wolf}' seeds=[1,2,3,4] --protocol moderate --submit
    aiida-mlfail calibrate 1234 reference=lj.yaml structure=start.xyz calibration.error_threshold=0.5

    Outputs: table (AUC of ROC and precision-recall per signal, thresholds, lead times), curves, figure and
    recommended (critical_similarity, critical_variance: explorer parameters the active learner takes as they are).
    """
    from aiida_mlfail.cli.inputs import apply_override, parse_override, read_inputs_file  # noqa: PLC0415
    from aiida_mlfail.cli.launch import launch_tree  # noqa: PLC0415
    from aiida_mlfail.data.gap_potential import GapPotentialData  # noqa: PLC0415
    from aiida_mlfail.workflows.calibrate import CalibrateWorkChain  # noqa: PLC0415

    if not isinstance(gap, GapPotentialData):
        raise click.BadParameter(f'node <{gap.pk}> is a {type(gap).__name__}, not a GAP (GapPotentialData)',
                                 param_hint='GAP_NODE')
    tree = read_inputs_file(inputs_file) if inputs_file else {}
    for text in args:
        keys, value = parse_override(text)
        apply_override(tree, keys, value)
    if 'reference' not in tree:
        raise click.BadParameter("give the classical reference of the oracle, e.g. 'reference={name: bmhtf_wolf}'",
                                 param_hint='reference')
    launch_tree('mlfail.calibrate', CalibrateWorkChain, calibration_tree(gap, tree), protocol, computer or 'localhost',
                submit)
