"""``ConfigSpaceWorkChain`` (``mlfail.config_space``): does the configuration space of Y cover that of X?

Three concurrent ``mlfail.rematch`` jobs (distance to first of X, of Y, nearest neighbour of X in Y), each
in a ``RematchRestartWorkChain`` exposed as ``rematch``, then a calcfunction with the summary and the two
figures (thesis chapter 12; REMatch: De, Bartók, Csányi, Ceriotti, PCCP 18, 13754 (2016)).
"""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction

from aiida_mlfail.calculations.rematch import check_soap
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.engines import rematch as engine
from aiida_mlfail.science import checks, config_space
from aiida_mlfail.workflows.common import dict_validator, expose_job, wrapper_inputs
from aiida_mlfail.workflows.protocols import ProtocolMixin, resolve_codes, wrapper_inputs_from_protocol
from aiida_mlfail.workflows.restart import RematchRestartWorkChain

#: Defaults of ``parameters``: REMatch alpha and threshold, histogram bins, names of the sets in figures.
PARAMETER_DEFAULTS = {**engine.PARAMETER_DEFAULTS, 'bins': 30, 'x_label': 'X', 'y_label': 'Y'}
#: The jobs: call link label -> (mode, set compared, whether Y is given).
JOBS = {'distance_to_first_x': ('distance_to_first', 'x', False),
        'distance_to_first_y': ('distance_to_first', 'y', False),
        'nearest_neighbour': ('nearest_neighbour', 'x', True)}


def normalise_config_space_parameters(parameters: dict) -> dict:
    """Merge with :data:`PARAMETER_DEFAULTS` and check.

    :param parameters: ``alpha`` (> 0), ``threshold`` (in (0, 1)), ``bins`` (int >= 1, nearest-neighbour
        histogram), ``x_label``, ``y_label`` (non-empty strings naming the sets in the figures).
    :raises ValueError: naming the offending key or value.
    """
    checks.known_keys(parameters, PARAMETER_DEFAULTS, 'parameter')
    merged = {**PARAMETER_DEFAULTS, **parameters}
    merged.update(engine.normalise_parameters({'mode': 'nearest_neighbour', 'alpha': merged['alpha'],
                                               'threshold': merged['threshold']}))
    del merged['mode']
    merged['bins'] = checks.integer(merged['bins'], 'bins', ge=1, le=10000)
    for key in ('x_label', 'y_label'):
        if not isinstance(merged[key], str) or not merged[key].strip():
            raise ValueError(f'{key} must be a non-empty string, got {merged[key]!r}')
    return merged


def _validate_inputs(value, ctx=None):
    """SOAP parameters valid and covering the species of both sets (message names set and species)."""
    if 'x' not in value or 'y' not in value:
        return None
    try:
        check_soap(value['soap'].get_dict() if 'soap' in value else {}, {'x': value['x'], 'y': value['y']})
    except ValueError as exc:
        return f'soap: {exc}'
    return None


@calcfunction
def analyse_config_space(first_x: orm.ArrayData, first_y: orm.ArrayData, nearest: orm.ArrayData,
                         parameters: orm.Dict):
    """Summary and figures of a configuration-space comparison (``science.config_space``).

    :param first_x: ``arrays`` of the distance-to-first job of X.
    :param first_y: the same of Y.
    :param nearest: ``arrays`` of the nearest-neighbour job of X in Y.
    :param parameters: normalised WorkChain parameters (``bins``, ``x_label``, ``y_label``, ``alpha``).
    :returns: ``summary`` (Dict: nearest-neighbour distance statistics, distance-to-first max/plateau/final
        per set, n_x, n_y, alpha), ``distance_to_first_plot`` and ``nearest_neighbour_plot``
        (SinglefileData PNG). Distances are dimensionless REMatch distances.
    """
    p = parameters.get_dict()
    dx, dy = first_x.get_array('distance'), first_y.get_array('distance')
    summary = config_space.config_space_summary(dx, dy, nearest.get_array('distance'),
                                                nearest.get_array('nearest_index'))
    summary.update(n_x=int(dx.size), n_y=int(dy.size), alpha=p['alpha'], x_label=p['x_label'], y_label=p['y_label'])
    with_steps = all('md_step' in node.get_arraynames() for node in (first_x, first_y))
    steps = [node.get_array('md_step') if with_steps else np.arange(d.size)
             for node, d in ((first_x, dx), (first_y, dy))]
    first_png = config_space.distance_to_first_png(
        [(p['x_label'], steps[0], dx), (p['y_label'], steps[1], dy)], step_label='MD step' if with_steps else 'frame')
    plateaus = {f"{p[key + '_label']} distance-to-first plateau": summary['distance_to_first'][key]['plateau']
                for key in ('x', 'y')}
    nn_png = config_space.nearest_neighbour_png(nearest.get_array('distance'), bins=p['bins'], x_label=p['x_label'],
                                                y_label=p['y_label'], reference=plateaus)
    return {'summary': orm.Dict(summary),
            'distance_to_first_plot': orm.SinglefileData(io.BytesIO(first_png), filename='distance_to_first.png'),
            'nearest_neighbour_plot': orm.SinglefileData(io.BytesIO(nn_png), filename='nearest_neighbour.png')}


class ConfigSpaceWorkChain(ProtocolMixin, WorkChain):
    """Compare the configuration spaces of two sets with SOAP + REMatch.

    Runs concurrently, as ``mlfail.rematch`` jobs: distance to first of X, distance to first of Y,
    nearest neighbour of every X configuration in Y. Outputs their ``arrays``, a ``summary`` and
    two PNG figures (distance to first vs MD step or frame; histogram of the nearest-neighbour
    distances of X in Y).

    The jobs run in :class:`~aiida_mlfail.workflows.restart.RematchRestartWorkChain` s exposed as ``rematch``
    (``rematch.job.code``: mlfail-rematch, ``rematch.job.metadata.options``, ``rematch.max_iterations`` ...).
    Steps: ``setup`` (parameters), ``run_rematch`` / ``inspect_rematch``, ``results`` (the analysis).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('x', valid_type=TrainingSetData, help='Set X, whose coverage is asked (e.g. an AIMD trajectory).')
        spec.input('y', valid_type=TrainingSetData, help='Set Y, the candidate cover (e.g. a classical trajectory).')
        spec.input('soap', valid_type=orm.Dict, default=lambda: orm.Dict({}),
                   help='SOAP parameters (species default: union of the species of x and y).')
        spec.input('parameters', valid_type=orm.Dict, default=lambda: orm.Dict({}),
                   validator=dict_validator(normalise_config_space_parameters, 'parameters'),
                   help="{'alpha': 0.1, 'threshold': 1e-6, 'bins': 30, 'x_label': 'X', 'y_label': 'Y'}")
        expose_job(spec, RematchRestartWorkChain, 'rematch',
                   help='The three REMatch jobs with restarts: `job.code` (mlfail-rematch), '
                        '`job.metadata.options`, `max_iterations`, `restart` ...')
        spec.inputs.validator = _validate_inputs
        spec.outline(cls.setup, cls.run_rematch, cls.inspect_rematch, cls.results)
        for label in JOBS:
            spec.output(label, valid_type=orm.ArrayData, help=f'arrays of the {label} job')
        spec.output('summary', valid_type=orm.Dict)
        spec.output('distance_to_first_plot', valid_type=orm.SinglefileData)
        spec.output('nearest_neighbour_plot', valid_type=orm.SinglefileData)
        spec.exit_code(402, 'ERROR_REMATCH_FAILED', message='the REMatch job(s) failed: {failures}')

    _protocol_file = 'config_space.yaml'

    @classmethod
    def get_builder_from_protocol(cls, codes, x, y, *, protocol=None, overrides=None, options=None):
        """A builder with every input set from ``protocols/config_space.yaml``.

        :param codes: the mlfail-rematch code, or a mapping with the role ``rematch``.
        :param x: set X (``TrainingSetData``), whose coverage is asked.
        :param y: set Y (``TrainingSetData``), the candidate cover.
        :param protocol: ``fast`` (default), ``moderate`` or ``precise``.
        :param overrides: nested mapping (or YAML path) merged over the protocol: ``soap`` (r_cut Å, n_max,
            l_max, sigma ...; species default: those of x and y), ``parameters`` (alpha, threshold, bins,
            x_label, y_label), ``rematch`` (the restart wrapper: ``max_iterations``, ``job.metadata.options`` ...).
        :param options: scheduler options of the REMatch jobs (merged over ``rematch.job.metadata.options``).
        :raises ValueError: naming the unknown protocol, the missing code role or the bad set.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        code = resolve_codes(codes, ('rematch',), cls.__name__)['rematch']
        for name, value in (('x', x), ('y', y)):
            if not isinstance(value, TrainingSetData):
                raise ValueError(f'{cls.__name__}: {name} must be a TrainingSetData, got {type(value).__name__}')
        builder = cls.get_builder()
        builder.x, builder.y = x, y
        builder.soap = orm.Dict(inputs['soap'])
        builder.parameters = orm.Dict(inputs['parameters'])
        builder.rematch = wrapper_inputs_from_protocol(inputs['rematch'], code, options, cls.__name__)
        return builder

    def setup(self):
        """The normalised parameters (:func:`normalise_config_space_parameters`)."""
        self.ctx.parameters = normalise_config_space_parameters(self.inputs.parameters.get_dict())

    def run_rematch(self):
        p = self.ctx.parameters
        jobs = {}
        for label, (mode, first, with_y) in JOBS.items():
            job = {'x': self.inputs[first], 'soap': self.inputs.soap,
                   'parameters': orm.Dict({'mode': mode, 'alpha': p['alpha'], 'threshold': p['threshold']})}
            if with_y:
                job['y'] = self.inputs.y
            inputs = wrapper_inputs(self, RematchRestartWorkChain, 'rematch', call_link_label=label, label=label, **job)
            jobs[label] = self.submit(RematchRestartWorkChain, **inputs)
            n_y = f" against {self.inputs.y.n_configurations} of {p['y_label']}" if with_y else ''
            self.report(f"submitted REMatch {mode} <{jobs[label].pk}>: {self.inputs[first].n_configurations} "
                        f"configurations of {p[first + '_label']}{n_y}")
        return ToContext(**jobs)

    def inspect_rematch(self):
        failures = [f'{label} <{self.ctx[label].pk}> [{self.ctx[label].exit_status}] {self.ctx[label].exit_message}'
                    for label in JOBS if not self.ctx[label].is_finished_ok]
        if failures:
            return self.exit_codes.ERROR_REMATCH_FAILED.format(failures='; '.join(failures))
        for label in JOBS:
            results = self.ctx[label].outputs.results.get_dict()
            self.out(label, self.ctx[label].outputs.arrays)
            self.report(f"{label} <{self.ctx[label].pk}>: distance min {results['min_distance']:.4f} median "
                        f"{results['median_distance']:.4f} max {results['max_distance']:.4f} "
                        f"(SOAP {results['soap_time_s']:.1f} s, total {results['wall_time_s']:.1f} s)")
        return None

    def results(self):
        result = analyse_config_space(*(self.ctx[label].outputs.arrays for label in JOBS),
                                      orm.Dict(self.ctx.parameters))
        for key in ('summary', 'distance_to_first_plot', 'nearest_neighbour_plot'):
            self.out(key, result[key])
        s = result['summary'].get_dict()
        nn, first = s['nearest_neighbour'], s['distance_to_first']
        self.report(f"nearest neighbour of {s['x_label']} in {s['y_label']}: median {nn['median']:.4f}, "
                    f"95th percentile {nn['p95']:.4f}, max {nn['max']:.4f}; distance-to-first plateau "
                    f"{s['x_label']} {first['x']['plateau']:.4f}, {s['y_label']} {first['y']['plateau']:.4f}")
