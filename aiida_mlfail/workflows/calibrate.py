"""``CalibrateWorkChain`` (``mlfail.calibrate``): which signal predicts a GAP's failures, and at which threshold.

For one GAP, it runs oracle explorations (``mlfail.explore`` with ``oracle: true``: GAP-MD whose every
check also evaluates the classical reference on the configuration and records the GAP's true errors next to
every signal; a novelty does not stop it) from one start structure with several seeds, in parallel. Then
a calcfunction (:func:`~aiida_mlfail.calculations.functions.calibration.calibration_analysis`) rates every
signal (REMatch similarity, GAP variance, T, AFM, P, P_virial, the guards' quantities) as a detector of
"``error`` above ``error_threshold``" (default: force RMSE above twice the GAP's validation force RMSE):
ROC and precision-recall curves and areas, the threshold at a target false-positive rate, the lead time
(``science.calibration``). The ``recommended`` output holds ``critical_similarity`` and
``critical_variance``, the explorer parameters the active learner takes as they are (its
``explore.job.parameters``, or its ``calibration`` input).
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import WorkChain

from aiida_mlfail.calculations.functions.calibration import calibration_analysis, normalise_calibration
from aiida_mlfail.data.gap_potential import GapPotentialData, validate_potential
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import explore as sx
from aiida_mlfail.science.potentials import ReferencePotential
from aiida_mlfail.workflows.common import (
    define_potential_files,
    dict_validator,
    expose_job,
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
from aiida_mlfail.workflows.restart import ExploreRestartWorkChain, is_outcome


def _validate_seeds(value, _ctx=None):
    seeds = value.get_list() if value is not None else []
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        return f'seeds must be a non-empty list of integers >= 0, got {seeds!r}'
    if len(set(seeds)) != len(seeds):
        return f'seeds {seeds} repeat a seed: the explorations would be identical'
    return None


def _validate_inputs(value, _ctx=None):
    """Reference and GAP describe the structure; the reference's files are given; an error threshold or the
    validation metrics to derive it from."""
    structure, reference = value.get('structure'), value.get('reference')
    if structure is None or reference is None:
        return None
    symbols = sorted(structure.get_symbols_set())
    try:
        potential = ReferencePotential.from_dict(reference.get_dict())
        potential.check_species(symbols)
    except ValueError as exc:
        return f'reference: {exc}'
    if potential.atom_style == 'full':
        return 'reference: the oracle cannot evaluate an atom_style full reference (topology); use atomic or charge'
    message = potential_files_message(reference, value.get('reference_files'), 'reference_files')
    if message:
        return message
    gap = value.get('potential')
    if gap is not None:
        missing = sorted(set(symbols) - set(gap.species))
        if missing:
            return f'species {missing} of the structure are not described by the GAP (species {gap.species})'
    settings = value.get('calibration')
    threshold = normalise_calibration(settings.get_dict()).get('error_threshold') if settings is not None else None
    if threshold is None and value.get('metrics') is None:
        return ('give calibration.error_threshold (the error above which a check is a failure) or the GAP\'s '
                'validation metrics (threshold: twice the validation force RMSE)')
    return None


class CalibrateWorkChain(ProtocolMixin, WorkChain):
    """Oracle explorations of a GAP with several seeds, then ROC / precision-recall of every failure signal.

    Inputs: ``potential`` (the GAP), ``training_set`` (the REMatch references; default: the GAP's own
    training set, ``training_set_uuid``), ``structure`` (start of every exploration), ``reference`` (the
    classical reference of the oracle, ``atom_style`` atomic or charge) and ``reference_files``,
    ``seeds`` (one exploration per seed), ``explore`` (the
    :class:`~aiida_mlfail.workflows.restart.ExploreRestartWorkChain` by role: ``job.code``,
    ``job.parameters`` (explorer parameters; ``oracle`` and ``seed`` are set here), ``job.metadata.options``),
    ``calibration`` (``error``, ``error_threshold``, ``target_fpr``:
    :func:`~aiida_mlfail.calculations.functions.calibration.normalise_calibration`) and ``metrics`` (the GAP's
    validation metrics, ``forces.rmse`` in eV/Å: default threshold 2 x that).

    Outputs: ``table`` (per signal AUC of ROC and PR, threshold, FPR/TPR, mean lead time in steps, counts),
    ``curves`` (``ArrayData``), ``figure`` (PNG), ``recommended`` (``critical_similarity``,
    ``critical_variance``, and the error definition), ``signals`` (each exploration's signal series,
    ``seed_<n>``). Exit 403 when an exploration failed without signals; 404 when the explorations contain no
    failure (or only failures) at that threshold (nothing to calibrate: the message gives the counts).
    """

    _protocol_file = 'calibrate.yaml'

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('potential', valid_type=GapPotentialData, validator=validate_potential, help='The GAP to calibrate.')
        spec.input('training_set', valid_type=TrainingSetData, required=False,
                   help="The novelty references (default: the GAP's training set, found by its training_set_uuid).")
        spec.input('structure', valid_type=orm.StructureData, validator=structure_validator('structure'),
                   help='Start configuration of every exploration.')
        spec.input('reference', valid_type=orm.Dict,
                   validator=dict_validator(ReferencePotential.from_dict, 'reference'),
                   help="The classical reference of the oracle, e.g. {'name': 'bmhtf_wolf'} or "
                        "{'name': 'lammps', ...}.")
        define_potential_files(spec, 'reference_files')
        spec.input('seeds', valid_type=orm.List, validator=_validate_seeds, help='One oracle exploration per seed.')
        expose_job(spec, ExploreRestartWorkChain, 'explore', keep=('code', 'parameters'),
                   help='The oracle explorations: job.code, job.parameters (explorer parameters), '
                        'job.metadata.options, max_iterations ...')
        spec.input('calibration', valid_type=orm.Dict, default=lambda: orm.Dict({}),
                   validator=dict_validator(normalise_calibration, 'calibration'),
                   help='error (force_rmse, force_max_error, energy_error_per_atom, virial_error_per_atom), '
                        'error_threshold (units of error; default 2 x the validation force RMSE), target_fpr.')
        spec.input('metrics', valid_type=orm.Dict, required=False,
                   help="The GAP's validation metrics (GapWorkChain metrics: forces.rmse eV/Å).")
        spec.inputs.validator = _validate_inputs
        spec.outline(cls.setup, cls.run_explorations, cls.inspect_explorations, cls.results)
        spec.output('table', valid_type=orm.Dict)
        spec.output('curves', valid_type=orm.ArrayData)
        spec.output('figure', valid_type=orm.SinglefileData)
        spec.output('recommended', valid_type=orm.Dict,
                    help='critical_similarity and critical_variance for the explorer parameters.')
        spec.output_namespace('signals', valid_type=orm.ArrayData, dynamic=True)
        spec.exit_code(402, 'ERROR_NO_TRAINING_SET',
                       message='no training_set given and the GAP names none in this database')
        spec.exit_code(403, 'ERROR_EXPLORE_FAILED',
                       message='the oracle exploration of seed {seed} failed: [{status}] {message}')
        spec.exit_code(404, 'ERROR_NOTHING_TO_CALIBRATE', message='{message}')

    @classmethod
    def get_builder_from_protocol(cls, codes, potential, structure, reference, *, protocol=None, overrides=None,
                                  options=None, metrics=None, training_set=None):
        """A builder from ``protocols/calibrate.yaml``.

        :param codes: the explorer code, or a mapping with the role ``explore``.
        :param potential: the GAP (``GapPotentialData``); ``structure``: start (``StructureData`` / ``ase.Atoms``).
        :param reference: the classical reference of the oracle (preset or generic dict; generic ``files`` as
            ``{name: path}``).
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``.
        :param overrides: nested mapping (or YAML path) over the protocol: ``seeds``, ``calibration``,
            ``explore`` (``job.parameters`` ...).
        :param options: scheduler options of the exploration jobs.
        :param metrics: the GAP's validation metrics (``Dict`` or dict), for the default error threshold.
        :param training_set: the novelty references (default: the GAP's training set, found when it runs).
        :raises ValueError: naming the unknown protocol, a missing code role or a bad reference.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        code = resolve_codes(codes, ('explore',), cls.__name__)['explore']
        if not isinstance(potential, GapPotentialData):
            raise ValueError(f'{cls.__name__}: potential must be a GapPotentialData, got {type(potential).__name__}')
        reference_dict, files = classical_reference_inputs(reference, cls.__name__)
        builder = cls.get_builder()
        builder.potential = potential
        builder.structure = as_structure(structure, cls.__name__)
        builder.reference = orm.Dict(reference_dict)
        if files:
            builder.reference_files = files
        builder.seeds = orm.List(list(inputs['seeds']))
        builder.calibration = orm.Dict(inputs.get('calibration') or {})
        explore = dict(inputs['explore'])
        parameters = dict((explore.get('job') or {}).pop('parameters', {}) or {})
        builder.explore = wrapper_inputs_from_protocol(explore, code, options, cls.__name__,
                                                       job={'parameters': orm.Dict(parameters)})
        if metrics is not None:
            builder.metrics = metrics if isinstance(metrics, orm.Dict) else orm.Dict(metrics)
        if training_set is not None:
            builder.training_set = training_set
        return builder

    def setup(self):
        """The references of the novelty check and the error threshold."""
        training_set = self.inputs.get('training_set')
        if training_set is None:
            from aiida_mlfail.workflows.mlmd import gap_training_set  # noqa: PLC0415

            training_set = gap_training_set(self.inputs.potential)
            if training_set is None:
                return self.exit_codes.ERROR_NO_TRAINING_SET
        self.ctx.training_set = training_set
        settings = normalise_calibration(self.inputs.calibration.get_dict())
        if settings['error_threshold'] is None:
            rmse = float(self.inputs.metrics.get_dict()['forces']['rmse'])
            settings['error_threshold'] = 2.0 * rmse
            settings['error'] = 'force_rmse'
            self.report(f'error threshold: force RMSE > {settings["error_threshold"]:.4g} eV/Å (2 x the validation '
                        f'force RMSE {rmse:.4g} eV/Å)')
        self.ctx.settings = settings
        return None

    def run_explorations(self):
        base = self.inputs.explore.job.parameters.get_dict()
        for seed in self.inputs.seeds.get_list():
            parameters = {**base, 'seed': seed, 'oracle': True}
            sx.normalise_explore(parameters)  # the port validator checked the rest
            inputs = wrapper_inputs(self, ExploreRestartWorkChain, 'explore', call_link_label=f'explore_seed_{seed}',
                                    potential=self.inputs.potential, training_set=self.ctx.training_set,
                                    structure=self.inputs.structure, parameters=orm.Dict(parameters),
                                    oracle_reference=self.inputs.reference,
                                    oracle_files=dict(self.inputs.get('reference_files', {})))
            node = self.submit(ExploreRestartWorkChain, **inputs)
            self.report(f'seed {seed}: submitted oracle exploration <{node.pk}>')
            self.to_context(**{f'seed_{seed}': node})

    def inspect_explorations(self):
        for seed in self.inputs.seeds.get_list():
            node = self.ctx[f'seed_{seed}']
            if not is_outcome(node) or 'signals' not in node.outputs:
                return self.exit_codes.ERROR_EXPLORE_FAILED.format(seed=seed, status=node.exit_status,
                                                                   message=node.exit_message)
            results = node.outputs.results.get_dict()
            self.report(f"seed {seed}: {results['stop_reason']} at step {results['stop_step']}, "
                        f"{results['n_checks']} checks")
            self.out(f'signals.seed_{seed}', node.outputs.signals)
        return None

    def results(self):
        signals = {f'seed_{seed}': self.ctx[f'seed_{seed}'].outputs.signals for seed in self.inputs.seeds.get_list()}
        settings = self.ctx.settings
        errors = np.concatenate([node.get_array(settings['error']) for node in signals.values()])
        errors = errors[np.isfinite(errors)]
        n_fail = int((errors > settings['error_threshold']).sum())
        if not 0 < n_fail < len(errors):  # checked here so that no calcfunction node excepts
            return self.exit_codes.ERROR_NOTHING_TO_CALIBRATE.format(
                message=f"{n_fail} of {len(errors)} checks have {settings['error']} > "
                        f"{settings['error_threshold']:g}: a calibration needs failures and non-failures (change "
                        'calibration.error_threshold, or run longer or hotter explorations)')
        results = calibration_analysis(orm.Dict(settings), **signals,
                                       metadata={'call_link_label': 'calibration_analysis'})
        for name, node in results.items():
            self.out(name, node)
        recommended = results['recommended'].get_dict()
        self.report(f"recommended critical_similarity {recommended['critical_similarity']}, critical_variance "
                    f"{recommended['critical_variance']} (false-positive rate {recommended['target_fpr']:g})")
        return None
