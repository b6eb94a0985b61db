"""``mlfail.rematch``: SOAP + REMatch comparison of two sets of configurations on any computer.

Runs the ``mlfail-rematch`` engine (``aiida_mlfail.engines.rematch``) so that large comparisons
(thousands of configurations) run on a compute node, never in the daemon. Modes:
``distance_to_first`` (trajectory time series), ``nearest_neighbour`` (each X configuration's
nearest Y configuration), ``matrix`` (full X x Y kernel and distances). REMatch: De, Bartók,
Csányi, Ceriotti, PCCP 18, 13754 (2016).
"""

from __future__ import annotations

import io
import json

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_mlfail.calculations.common import define_job_defaults, dict_validator
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.engines import rematch as engine
from aiida_mlfail.science.soap import normalise_soap_parameters

X_FILE, Y_FILE = 'x.xyz', 'y.xyz'
STDOUT, STDERR = 'rematch.out', 'rematch.err'


def check_soap(soap: dict, sets: dict) -> dict:
    """Normalised SOAP parameters for comparing ``sets``; species default to the union of theirs.

    :param soap: SOAP parameters (``science.soap.normalise_soap_parameters``).
    :param sets: ``{name: TrainingSetData}`` (``None`` values are skipped).
    :raises ValueError: for a bad SOAP parameter, or species of a set that the SOAP species do not
        cover (naming the set and the species).
    """
    sets = {name: node for name, node in sets.items() if node is not None}
    union = sorted({s for node in sets.values() for s in node.species})
    soap = normalise_soap_parameters(soap, species=union)
    for name, node in sets.items():
        missing = sorted(set(node.species) - set(soap['species']))
        if missing:
            raise ValueError(f"species {missing} of {name} <{node.pk or 'unstored'}> are not in the SOAP species "
                             f"{soap['species']}")
    return soap


#: Port validator of ``parameters`` (normalise_parameters: the message names the bad value).
validate_parameters = dict_validator(engine.normalise_parameters, 'parameters')


def validate_rematch_inputs(value, ctx=None):
    """Namespace validator: SOAP parameters valid and covering the species of ``x`` and ``y``."""
    if 'x' not in value:
        return None
    try:
        check_soap(value['soap'].get_dict() if 'soap' in value else {}, {'x': value['x'], 'y': value.get('y')})
    except ValueError as exc:
        return f'soap: {exc}'
    return None


class RematchCalculation(CalcJob):
    """REMatch distances between the configurations of ``x`` and ``y`` (Y = X when ``y`` is not given).

    Outputs ``arrays`` (``ArrayData``: ``kernel``, ``distance`` and, per mode, ``nearest_index``,
    ``kernel_y``/``distance_y``, ``md_step``/``md_step_y``; see ``engines.rematch.compare``) and
    ``results`` (``Dict``: n_x, n_y, mode, alpha, threshold, SOAP parameters, min/mean/median/p95/max
    distance, SOAP and wall time in s). Distances are dimensionless, ``D = sqrt(2 - 2K)``.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('x', valid_type=TrainingSetData, help='Set X (e.g. a DFT trajectory); labels are ignored.')
        spec.input('y', valid_type=TrainingSetData, required=False,
                   help='Set Y (e.g. classical configurations); default Y = X.')
        spec.input('soap', valid_type=orm.Dict, default=lambda: orm.Dict({}),
                   help='SOAP parameters: species, r_cut (Å), n_max, l_max, sigma (Å), rbf; species default to '
                        'the union of the species of x and y.')
        spec.input('parameters', valid_type=orm.Dict, validator=validate_parameters,
                   help=f"{{'mode': one of {list(engine.MODES)}, 'alpha': > 0 (default 0.1), "
                        "'threshold': Sinkhorn stopping threshold in (0, 1) (default 1e-6)}")
        spec.inputs.validator = validate_rematch_inputs
        define_job_defaults(spec, 'mlfail.rematch', withmpi=False)  # parser, resources, exit code 350
        spec.output('arrays', valid_type=orm.ArrayData, help='Kernels, distances, nearest indices, MD steps.')
        spec.output('results', valid_type=orm.Dict, help='Summary numbers of the comparison.')
        spec.exit_code(301, 'ERROR_OUTPUT_MISSING', message='mlfail-rematch wrote no {filename}: {error}')
        spec.exit_code(302, 'ERROR_OUTPUT_INVALID', message='the output of mlfail-rematch is invalid: {error}')

    def prepare_for_submission(self, folder):
        x, y = self.inputs.x, self.inputs.get('y')
        parameters = engine.normalise_parameters(self.inputs.parameters.get_dict())
        parameters['soap'] = check_soap(self.inputs.soap.get_dict(), {'x': x, 'y': y})
        parameters['x'], parameters['y'] = X_FILE, (Y_FILE if y is not None else None)
        folder.create_file_from_filelike(io.BytesIO(x.get_text().encode()), X_FILE, mode='wb')
        if y is not None:
            folder.create_file_from_filelike(io.BytesIO(y.get_text().encode()), Y_FILE, mode='wb')
        folder.create_file_from_filelike(io.StringIO(json.dumps(parameters, indent=1)), engine.PARAMETERS_FILE,
                                         mode='w')
        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [engine.PARAMETERS_FILE]
        codeinfo.stdout_name = STDOUT
        codeinfo.stderr_name = STDERR
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [STDOUT, STDERR, engine.ARRAYS_FILE, engine.RESULTS_FILE]
        calcinfo.provenance_exclude_list = [X_FILE, Y_FILE] if y is not None else [X_FILE]
        return calcinfo
