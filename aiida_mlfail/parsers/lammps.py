"""Parser of ``mlfail.lammps`` jobs; the parsing itself lives in ``science.lammps_md`` and ``science.mlmd``."""

from __future__ import annotations

import numpy as np
from aiida import orm

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.parsers.base import MlfailParser
from aiida_mlfail.science import lammps_md, mlmd
from aiida_mlfail.science.outputs.lammps import parse_lammps_error  # re-exported from here as before


class LammpsParser(MlfailParser):
    """Frames, thermo series and stop classification of a LAMMPS MD job.

    Never raises on physically bad output: every output that can be built is stored, then the exit code
    names the cause (highest first): 410 a failure guard stopped the run (``fix halt`` of
    ``science.mlmd``), 411 lost atoms, 414 PPPM out of range atoms, 413 a NaN or infinite energy, force,
    virial or position (the configurations before the first bad frame are kept, NaN values in
    ``results`` become ``None``), 309 another LAMMPS error, 305 output cut off, 302 frames not retrieved,
    303 no frame. A run that died (410, 411, 414) without writing its frames still gets that exit code. A run
    cut off (305: walltime, ``scancel``) keeps the thermo and the frames written so far, so that a continuation
    from its checkpoint can join them (``LammpsRestartWorkChain``).
    The ``training_set``'s reference is ``settings['reference']`` (set by the calcfunctions that prepare
    classical runs, ``science.references.lammps_reference``), else unknown (e.g. GAP MD).
    """

    def _parse(self):
        retrieved = self.retrieved
        names = retrieved.base.repository.list_object_names()
        output_filename = self.node.get_option('output_filename')
        if output_filename not in names:
            return self.exit_codes.ERROR_OUTFILE_MISSING
        screen = retrieved.base.repository.get_object_content(output_filename, mode='r')
        error = parse_lammps_error(screen)
        stop = mlmd.parse_stop(screen)
        results = {'lammps_error': error, 'finished': 'Total wall time' in screen, **stop}
        try:
            thermo = lammps_md.parse_thermo(screen)
        except ValueError:
            thermo = None
        non_finite = None
        if thermo is not None:
            array = orm.ArrayData()
            for key, values in thermo.items():
                array.set_array(key, np.asarray(values))
            array.base.attributes.set('units', dict(lammps_md.THERMO_COLUMNS))
            self.out('thermo', array)
            non_finite = lammps_md.first_non_finite_thermo(thermo)
            if 'temperature' in thermo:
                results['final_temperature'] = float(thermo['temperature'][-1])
                half = len(thermo['temperature']) // 2  # the last half: past equilibration in a sampling run
                results['mean_temperature_last_half'] = float(np.mean(thermo['temperature'][half:]))
            if 'volume' in thermo:
                results['mean_volume'] = float(np.mean(thermo['volume']))
        pppm = bool(error) and lammps_md.PPPM_OUT_OF_RANGE in error
        stopped = stop['stop_reason'] in ('lost_atoms', *mlmd.GUARD_FIX_IDS)  # a run that died of its physics
        if error and not (stopped or pppm):
            return self._finish(results, self.exit_codes.ERROR_PARSER_DETECTED_LAMMPS_RUN_ERROR.format(error=error))
        incomplete = not results['finished'] and not (stopped or pppm)
        settings = self.node.inputs.settings.get_dict() if 'settings' in self.node.inputs else {}
        have_frames = lammps_md.DUMP_FILE in names and lammps_md.LABELS_FILE in names
        if incomplete:  # killed (walltime, scancel): the frames written so far, for a continuation to join
            if have_frames and 'type_map' in settings:
                try:
                    self._store_frames(retrieved, settings, results, truncated=True)
                except ValueError:
                    pass
            return self._finish(results, self.exit_codes.ERROR_OUTPUT_INCOMPLETE)
        configurations = None
        if have_frames and 'type_map' in settings:
            configurations, bad_frame = self._store_frames(retrieved, settings, results,
                                                           truncated=stop['stop_reason'] != 'completed')
            non_finite = bad_frame or non_finite
        results['non_finite'] = non_finite
        frames_note = '' if configurations else '; no frame was stored'
        step = stop['stop_step']
        if stop['stop_reason'] in mlmd.GUARD_FIX_IDS:
            return self._finish(results, self.exit_codes.ERROR_MD_EXPLODED.format(
                reason=stop['stop_reason'], step=step, message=stop['message'] + frames_note))
        if stop['stop_reason'] == 'lost_atoms':
            return self._finish(results, self.exit_codes.ERROR_LOST_ATOMS.format(
                step=step, message=stop['message'] + frames_note))
        if pppm:
            return self._finish(results, self.exit_codes.ERROR_PPPM_OUT_OF_RANGE.format(
                step=step, message=error + self._non_finite_note(non_finite) + frames_note))
        if non_finite:
            kept = len(configurations or [])
            return self._finish(results, self.exit_codes.ERROR_NON_FINITE.format(
                quantity=non_finite['quantity'], step=non_finite['step'],
                message=f'the {kept} frame(s) before it stored' if kept else 'no frame stored'))
        if not have_frames:
            return self._finish(results, self.exit_codes.ERROR_FRAMES_MISSING)
        if 'type_map' not in settings:
            return self._finish(results, self.exit_codes.ERROR_SETTINGS)
        self._finish(results, None)
        if not configurations:
            return self.exit_codes.ERROR_NO_FRAMES
        return None

    def _store_frames(self, retrieved, settings: dict, results: dict, truncated: bool):
        """Parse the dumped frames with their labels, store the finite ones as ``training_set`` (if any) and
        count them in ``results``. A killed run's last frame may be cut off (``truncated``: dropped).

        :returns: the stored configurations and the first non-finite frame (``lammps_md.split_finite``).
        :raises ValueError: for a malformed dump or labels that do not match it.
        """
        text = retrieved.base.repository.get_object_content(lammps_md.LABELS_FILE, mode='r')
        if truncated and text and not text.endswith('\n'):  # a label line cut off by the kill
            text = text[:text.rfind('\n') + 1]
        labels = lammps_md.parse_labels(text)
        with retrieved.base.repository.open(lammps_md.DUMP_FILE, mode='r') as handle:  # read frame by frame
            frames = lammps_md.iter_dump(handle, allow_truncated=truncated)
            parsed = lammps_md.frames_to_atoms(frames, labels, settings['type_map'], settings.get('frame_info', {}))
        configurations, bad_frame = lammps_md.split_finite(parsed)
        results['n_frames'] = len(configurations)
        if bad_frame:
            results['n_frames_dropped'] = len(parsed) - len(configurations)
        if configurations:
            self.out('training_set', TrainingSetData.from_atoms(configurations, reference=settings.get('reference')))
        return configurations, bad_frame

    @staticmethod
    def _non_finite_note(non_finite: dict | None) -> str:
        return '' if not non_finite else f" (first non-finite {non_finite['quantity']} at step {non_finite['step']})"

    def _finish(self, results: dict, exit_code):
        """Store ``results`` (NaN / inf as ``None``: JSON has none) and return ``exit_code``."""
        self.out('results', orm.Dict(lammps_md.json_safe(results)))
        return exit_code
