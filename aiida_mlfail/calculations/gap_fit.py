"""``mlfail.gap_fit``: fit a GAP with QUIP's ``gap_fit``, after a dryrun memory preflight in the same job."""

from __future__ import annotations

import io
import shlex

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_mlfail.calculations.common import define_job_defaults
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import gap

TRAINING_FILE = 'training_set.xyz'
GP_FILE = 'gap.xml'
STDOUT = 'gap_fit.out'
DRYRUN_OUT = 'gap_fit_dryrun.out'
MEMORY_FILE = 'gap_fit_memory.txt'

#: Shell run before gap_fit: the dryrun, then a comparison of its PEAK estimate (per process) with
#: the job's memory (``max_memory_kb`` if set, else MemAvailable of the node). When the estimate
#: does not fit, the job stops before the fit and the parser returns exit code 430.
PREFLIGHT = """\
# aiida-mlfail: gap_fit memory preflight (dryrun)
{exe} {args} dryrun=T > {dryrun} 2>&1
mlfail_peak_kb=$(awk '/^PEAK/ {{u=$3; f=(u=="TB")?1073741824:(u=="GB")?1048576:(u=="MB")?1024:(u=="KB")?1:0.001; printf "%d", $2*f}}' {dryrun})
mlfail_limit_kb={limit}
if [ -z "$mlfail_limit_kb" ]; then mlfail_limit_kb=$(awk '/^MemAvailable/ {{print $2}}' /proc/meminfo); fi
echo "peak_kb=${{mlfail_peak_kb:-unknown}} limit_kb=${{mlfail_limit_kb:-unknown}}" > {memory}
if [ -n "$mlfail_peak_kb" ] && [ -n "$mlfail_limit_kb" ] && [ "$mlfail_peak_kb" -gt "$mlfail_limit_kb" ]; then
  echo "status=exceeded" >> {memory}
  exit 0
fi
echo "status=ok" >> {memory}
"""


def command_arguments(parameters: dict, training_set: TrainingSetData | None = None) -> list[str]:
    """The gap_fit arguments (``key=value`` words) of a job with these ``parameters``.

    With the training set, the e0 method is resolved (``science.gap.effective_e0_method``): a fit without
    energies (forces or virials only) on a set that has them gets the per-species least-squares e0 of its
    energies (``science.gap.least_squares_e0``, read one configuration at a time), passed as ``e0={...}``.
    """
    normalised = gap.normalise_fit_parameters(parameters)
    return gap.gap_fit_arguments(normalised, TRAINING_FILE, GP_FILE, e0=resolved_e0(normalised, training_set))


def resolved_e0(parameters: dict, training_set: TrainingSetData | None) -> dict[str, float] | None:
    """The per-species least-squares e0 (eV) the fit passes to gap_fit, or ``None`` when gap_fit's own
    ``e0_method`` applies (normalised ``parameters``; see :func:`command_arguments`)."""
    if training_set is not None and gap.effective_e0_method(parameters, training_set.labels) == 'least_squares':
        return gap.least_squares_e0(training_set.iter_atoms())
    return None


def validate_fit_inputs(value, ctx=None):
    """Port validator of the top-level namespace: parameters and training set fit together.

    Returns an error message naming the offending value (unknown/invalid parameter, a label to
    train on that the training set lacks, species with no descriptor data, n_sparse larger than
    the environments available) or ``None``.
    """
    if 'parameters' not in value:
        return None
    try:
        parameters = gap.normalise_fit_parameters(value['parameters'].get_dict())
    except ValueError as exc:
        return f'parameters: {exc}'
    training_set = value.get('training_set')
    if training_set is None:
        return None
    missing = [label for label in parameters['train_on'] if label not in training_set.labels]
    if parameters['e0_method'] == 'least_squares' and 'energy' not in training_set.labels:
        missing.append('energy (for e0_method least_squares)')
    if missing:
        return (f'the training set <{training_set.pk or "unstored"}> lacks the label(s) {missing} the fit is asked to '
                f'train on (train_on={parameters["train_on"]}, it has {training_set.labels})')
    uncovered = gap.uncovered_species(parameters['descriptors'], training_set.species)
    if uncovered:
        return (f'parameters: the descriptors give no energy term to the species {uncovered} of the training set '
                f'<{training_set.pk or "unstored"}> (species {training_set.species}); add descriptors for them '
                '(e.g. science.gap_descriptors.default_descriptors) or use add_species')
    try:
        gap.check_sparse_points(training_set.get_atoms(), parameters['descriptors'])
    except ValueError as exc:
        return str(exc)
    return None


class GapFitCalculation(CalcJob):
    """Fit a GAP to a ``TrainingSetData`` with ``gap_fit``.

    Inputs: ``training_set``; ``parameters`` (Dict) with ``descriptors`` (list of dicts, e.g.
    ``{'type': 'soap', 'n_max': 5, 'l_max': 4, 'atom_sigma': 1.0, 'zeta': 4, 'cutoff': 9.0, 'delta': 1.0,
    'n_sparse': 500}``), ``sigma`` (energy eV/atom, forces eV/Å, virial eV/atom), ``train_on``,
    ``e0_method``, ``sparse_jitter``, ``sparse_separate_file``, ``seed`` (see
    ``science.gap.normalise_fit_parameters``). The job first runs ``gap_fit ... dryrun=T`` and
    stops with exit code 430 if the estimate exceeds the memory of the job.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('training_set', valid_type=TrainingSetData, help='Labelled configurations to fit to.')
        spec.input('parameters', valid_type=orm.Dict, help='Descriptors, sigmas, labels to train on, e0 method ...')
        spec.inputs.validator = validate_fit_inputs
        define_job_defaults(spec, 'mlfail.gap_fit', withmpi=False)  # parser, resources, exit code 350
        spec.output('potential', valid_type=GapPotentialData, help='The fitted GAP.')
        spec.output('output_parameters', valid_type=orm.Dict,
                    help='Memory estimate (MB), fit wall time (s), sparse points and descriptor counts.')
        spec.default_output_node = 'output_parameters'
        spec.exit_code(301, 'ERROR_OUTPUT_MISSING', message='gap_fit produced no {filename}')
        spec.exit_code(302, 'ERROR_GAP_FIT_FAILED', message='gap_fit stopped with an error: {error}')
        spec.exit_code(430, 'ERROR_OUT_OF_MEMORY',
                       message='gap_fit dryrun estimates {peak_mb:.0f} MB, more than the {limit_mb:.0f} MB '
                               'available to the job')
        spec.exit_code(431, 'ERROR_ILL_CONDITIONED',
                       message='the fit is ill-conditioned (Cholesky factorisation failed): {error}')

    def prepare_for_submission(self, folder):
        folder.create_file_from_filelike(io.BytesIO(self.inputs.training_set.get_text().encode()), TRAINING_FILE,
                                         mode='wb')
        arguments = command_arguments(self.inputs.parameters.get_dict(), self.inputs.training_set)
        code = self.inputs.code
        executable = str(code.get_executable()) if hasattr(code, 'get_executable') else 'gap_fit'
        limit = self.inputs.metadata.options.get('max_memory_kb') or ''
        codeinfo = CodeInfo()
        codeinfo.code_uuid = code.uuid
        codeinfo.cmdline_params = arguments
        codeinfo.stdout_name = STDOUT
        codeinfo.join_files = True
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.prepend_text = PREFLIGHT.format(
            exe=shlex.quote(executable), args=' '.join(shlex.quote(a) for a in arguments),
            dryrun=DRYRUN_OUT, memory=MEMORY_FILE, limit=int(limit) if limit else '')
        calcinfo.retrieve_list = [STDOUT, DRYRUN_OUT, MEMORY_FILE, GP_FILE, f'{GP_FILE}.sparseX.*']
        return calcinfo
