"""LAMMPS sampling job: aiida-lammps' ``lammps.raw`` CalcJob with the outputs of our parser.

``lammps.raw`` (aiida-lammps 1.x) declares a closed output namespace (``results`` only), so a parser
chosen with ``metadata.options.parser_name`` cannot attach a training set. This subclass keeps its
inputs and behaviour (``script``, ``files``, ``filenames``, ``settings``, ``-in input.in``) and adds
the sampled frames as ``TrainingSetData`` and the thermo series as ``ArrayData``.
"""

from __future__ import annotations

from aiida import orm
from aiida_lammps.calculations.raw import LammpsRawCalculation

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.lammps_md import DUMP_FILE, LABELS_FILE


class LammpsSampleCalculation(LammpsRawCalculation):
    """``lammps.raw`` + sampled frames (``mlfail.lammps``).

    ``settings`` keys read by the parser: ``type_map`` (symbol of LAMMPS type 1, 2, ..., required
    to build configurations) and ``frame_info`` (metadata copied into every configuration, e.g.
    ``state_point``, ``config_type``, ``temperature``).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs['metadata']['options']['parser_name'].default = 'mlfail.lammps'
        spec.inputs['metadata']['options']['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        spec.output('training_set', valid_type=TrainingSetData, required=False,
                    help='Sampled frames with energy (eV), forces (eV/Å), virial (eV) and per-atom energies (eV).')
        spec.output('thermo', valid_type=orm.ArrayData, required=False,
                    help='Thermo series: step, time (ps), temperature (K), potential_energy (eV), pressure (bar), volume (Å^3).')
        spec.exit_code(302, 'ERROR_FRAMES_MISSING', message='the frame dump or the label file was not retrieved')
        spec.exit_code(303, 'ERROR_NO_FRAMES', message='the run finished but sampled no frame')
        spec.exit_code(304, 'ERROR_SETTINGS', message='settings lack the type_map needed to build configurations')
        spec.exit_code(350, 'ERROR_PARSER_EXCEPTION', message='the parser raised an unexpected exception: {exception}')

    def prepare_for_submission(self, folder):
        calcinfo = super().prepare_for_submission(folder)
        calcinfo.retrieve_list += [DUMP_FILE, LABELS_FILE]
        return calcinfo
