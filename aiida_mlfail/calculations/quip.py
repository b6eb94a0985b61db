"""``mlfail.quip``: GAP predictions (energy, forces, virial) for a set of configurations with ``quip``.

Runs on the compute node (big validation sets never run in the daemon). The code is QUIP's
``quip`` or the ``mlfail-quip`` drop-in (``aiida_mlfail.engines.quip``), both writing ``AT``-prefixed
extended XYZ.
"""

from __future__ import annotations

import io

from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.engine import CalcJob

from aiida_mlfail.calculations.common import define_job_defaults
from aiida_mlfail.data.gap_potential import GapPotentialData, validate_potential
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import extxyz

CONFIG_FILE = 'configurations.xyz'
STDOUT = 'quip.out'


def validate_quip_inputs(value, ctx=None):
    """The configurations' species must all be species of the GAP (message names the missing ones)."""
    potential, configurations = value.get('potential'), value.get('configurations')
    if potential is None or configurations is None:
        return None
    missing = sorted(set(configurations.species) - set(potential.species))
    if missing:
        return f'species {missing} of the configurations are not described by the GAP (species {potential.species})'
    return None


class QuipPredictCalculation(CalcJob):
    """Predict energy (eV), forces (eV/Å) and virial (eV) of every configuration with a GAP."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('potential', valid_type=GapPotentialData, validator=validate_potential,
                   help='The GAP to evaluate (its files and init string are checked).')
        spec.input('configurations', valid_type=TrainingSetData,
                   help='Configurations to evaluate (labels are ignored).')
        spec.inputs.validator = validate_quip_inputs
        define_job_defaults(spec, 'mlfail.quip', withmpi=False)  # parser, resources, exit code 350
        spec.output('predictions', valid_type=TrainingSetData,
                    help='The configurations labelled with the GAP energy, forces and virial.')
        spec.exit_code(301, 'ERROR_OUTPUT_MISSING', message='quip wrote no output')
        spec.exit_code(302, 'ERROR_COUNT_MISMATCH', message='quip evaluated {found} of {expected} configurations')
        spec.exit_code(413, 'ERROR_NON_FINITE', message='the GAP predicted a NaN / infinite value: {error}')

    def prepare_for_submission(self, folder):
        configurations = self.inputs.configurations.get_atoms()
        for atoms in configurations:
            atoms.info = {k: v for k, v in atoms.info.items() if k not in ('energy', 'virial')}
            for key in ('forces', 'atomic_energies'):
                atoms.arrays.pop(key, None)
        folder.create_file_from_filelike(io.BytesIO(extxyz.to_text(configurations).encode()), CONFIG_FILE, mode='wb')
        potential = self.inputs.potential
        gap_files = potential.upload(folder)
        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = ['E=T', 'F=T', 'V=T', f'atoms_filename={CONFIG_FILE}',
                                   f'param_filename={potential.filename}']
        codeinfo.stdout_name = STDOUT
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [STDOUT]
        calcinfo.provenance_exclude_list = gap_files
        return calcinfo
