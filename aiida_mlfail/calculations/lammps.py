"""LAMMPS MD job: aiida-lammps' ``lammps.raw`` CalcJob with the outputs of our parser.

``lammps.raw`` (aiida-lammps 1.x) declares a closed output namespace (``results`` only), so a parser
chosen with ``metadata.options.parser_name`` cannot attach a training set. This subclass keeps its
inputs and behaviour (``script``, ``files``, ``filenames``, ``settings``, ``-in input.in``) and adds
the dumped frames as ``TrainingSetData``, the thermo series as ``ArrayData``, an optional GAP
input (``potential``, written next to the script so that ``pair_style quip`` finds it) and the
exit codes of an MD run stopped by a failure guard.
"""

from __future__ import annotations

from aiida import orm
from aiida_lammps.calculations.raw import LammpsRawCalculation

from aiida_mlfail.calculations.common import define_job_defaults, lammps_data_message
from aiida_mlfail.data.gap_potential import GapPotentialData, validate_potential
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import checks
from aiida_mlfail.science.checkpoints import CHECKPOINT_DIR, checkpoint_files
from aiida_mlfail.science.lammps_md import DUMP_FILE, LABELS_FILE


def validate_lammps_inputs(value, ctx=None):
    """Namespace validator: ``lammps.raw``'s own checks, then the start structure of an MD script (the
    ``read_data`` file among ``files``, see ``calculations.common.lammps_data_message``): no overlapping
    atoms, a 3-D periodic cell of positive volume, finite positions. Every name a file of ``files`` is
    written under (``filenames``, else the node's ``filename``, which an archive may carry as anything)
    must be a bare file name, so nothing is written outside the job folder. ``parent_folder`` must be on the
    computer of the code (its checkpoint is copied there) and needs ``settings`` naming the checkpoint
    (``restart_step`` and ``checkpoint_interval``, as ``continue_mlmd`` sets them: the files to copy)."""
    message = LammpsRawCalculation.validate_inputs(value, ctx)
    if message or 'script' not in value:
        return message
    parent, code = value.get('parent_folder'), value.get('code')
    if parent is not None and code is not None and getattr(code, 'computer', None) is not None \
            and parent.computer is not None and parent.computer.uuid != code.computer.uuid:
        return (f'parent_folder is on the computer {parent.computer.label!r}, the code {code.label!r} runs on '
                f'{code.computer.label!r}: the checkpoint can only be copied on the same computer')
    if parent is not None:
        settings = value['settings'].get_dict() if 'settings' in value else {}
        try:
            checkpoint_files(settings.get('restart_step'), settings.get('checkpoint_interval'))
        except ValueError as exc:
            return (f'parent_folder needs settings restart_step and checkpoint_interval naming the checkpoint to '
                    f"continue from (continue_mlmd sets them), got restart_step={settings.get('restart_step')!r}, "
                    f"checkpoint_interval={settings.get('checkpoint_interval')!r}: {exc}")
    overrides = value['filenames'].get_dict() if 'filenames' in value else {}
    files = {overrides.get(key, node.filename): node for key, node in value.get('files', {}).items()}
    for key, node in value.get('files', {}).items():
        try:
            checks.basename(overrides.get(key, node.filename), f'files.{key} (file name)')
        except ValueError as exc:
            return str(exc)
    script = value['script'].get_content()
    if 'read_data' not in script:
        return None
    texts = {}
    for name, node in files.items():
        try:
            texts[name] = node.get_content()
        except UnicodeDecodeError:
            continue
    return lammps_data_message(script, texts, value['settings'].get_dict() if 'settings' in value else None)


class LammpsCalculation(LammpsRawCalculation):
    """``lammps.raw`` + dumped frames, thermo and stop classification (``mlfail.lammps``).

    ``settings`` keys read by the parser: ``type_map`` (symbol of LAMMPS type 1, 2, ..., required
    to build configurations) and ``frame_info`` (metadata copied into every configuration, e.g.
    ``state_point``, ``config_type``, ``temperature``) and ``reference`` (the reference dict of
    ``science.references`` recorded on the ``training_set``; unknown without it).
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('potential', valid_type=GapPotentialData, required=False, validator=validate_potential,
                   help='A GAP whose files are written into the working directory (for pair_style quip).')
        spec.input('parent_folder', valid_type=orm.RemoteData, required=False,
                   help='The remote folder of an earlier job of the same GAP MD run: the files of its checkpoint '
                        'at settings["restart_step"] (science.checkpoints.checkpoint_files: one LAMMPS restart file '
                        'and the start energy, not the whole checkpoint/ folder) are copied into the job folder, for a '
                        'continuation script (science.checkpoints.continuation_script; LammpsRestartWorkChain sets '
                        'script, settings and parent_folder after a walltime or cancellation).')
        spec.inputs.validator = validate_lammps_inputs
        define_job_defaults(spec, 'mlfail.lammps')  # parser, resources, exit code 350
        spec.output('training_set', valid_type=TrainingSetData, required=False,
                    help='Sampled frames with energy (eV), forces (eV/Å), virial (eV) and per-atom energies (eV).')
        spec.output('thermo', valid_type=orm.ArrayData, required=False,
                    help='Thermo series: step, time (ps), temperature (K), potential_energy (eV), pressure (bar), '
                         'volume (Å^3).')
        spec.exit_code(302, 'ERROR_FRAMES_MISSING', message='the frame dump or the label file was not retrieved')
        spec.exit_code(303, 'ERROR_NO_FRAMES', message='the run finished but sampled no frame')
        spec.exit_code(305, 'ERROR_OUTPUT_INCOMPLETE',
                       message='the LAMMPS output ends before the run ended (no "Total wall time" and no error: '
                               'killed or cancelled?)')
        spec.exit_code(304, 'ERROR_SETTINGS', message='settings lack the type_map needed to build configurations')
        spec.exit_code(410, 'ERROR_MD_EXPLODED',
                       message='the MD run was stopped by the {reason} guard at step {step}: {message} '
                               '(outputs stored)')
        spec.exit_code(411, 'ERROR_LOST_ATOMS', message='LAMMPS lost atoms at step {step}: {message} (outputs stored)')
        spec.exit_code(413, 'ERROR_NON_FINITE',
                       message='the run produced a NaN or infinite {quantity} at step {step} (overlapping atoms or an '
                               'exploding potential?); {message}')
        spec.exit_code(414, 'ERROR_PPPM_OUT_OF_RANGE',
                       message='PPPM found atoms out of range at step {step}, i.e. atoms moved too far in one step '
                               '(overlapping atoms, too large a timestep or an exploding potential): {message} '
                               '(outputs that exist stored)')

    @classmethod
    def is_valid_cache(cls, node) -> bool:
        """Only a job that finished OK is reused by AiiDA caching (``caching.enabled_for``).

        aiida-core's default also reuses a failed job whose exit code is not ``invalidates_cache``:
        here e.g. 305 (output incomplete: killed or cancelled) or 410 (guard stop), so a restart of a
        cancelled job would get the cancelled job back. A guard stop is therefore recomputed, not reused.
        """
        return super().is_valid_cache(node) and node.is_finished_ok

    def prepare_for_submission(self, folder):
        """``lammps.raw``'s job, plus the dump and label files retrieved, the GAP files written, and with
        ``parent_folder`` a ``remote_copy_list`` of the files a continuation reads
        (:func:`~aiida_mlfail.science.checkpoints.checkpoint_files` of ``settings`` ``restart_step`` /
        ``checkpoint_interval``) into an empty ``checkpoint/`` folder of the job (aiida-core copies remote files
        after the sandbox, and does not create their folders)."""
        calcinfo = super().prepare_for_submission(folder)
        calcinfo.retrieve_list += [DUMP_FILE, LABELS_FILE]
        if 'potential' in self.inputs:
            calcinfo.provenance_exclude_list.extend(self.inputs.potential.upload(folder))
        if 'parent_folder' in self.inputs:
            parent, settings = self.inputs.parent_folder, self.inputs.settings.get_dict()
            folder.get_subfolder(CHECKPOINT_DIR, create=True)
            calcinfo.remote_copy_list = [(parent.computer.uuid, f'{parent.get_remote_path()}/{name}', name)
                                         for name in checkpoint_files(settings['restart_step'],
                                                                      settings['checkpoint_interval'])]
        return calcinfo
