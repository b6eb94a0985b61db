"""Parser of ``mlfail.lammps`` jobs; the parsing itself lives in ``science.lammps_md`` and ``science.mlmd``."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import lammps_md, mlmd


def parse_lammps_error(text: str) -> str | None:
    """The first ``ERROR`` line of a LAMMPS screen/log output (with the ``Last input line``), or ``None``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('ERROR'):
            follow = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith('Last input line') else ''
            return (line + ' ' + follow).strip()
    return None


class LammpsParser(Parser):
    """Frames, thermo series and stop classification of a LAMMPS MD job.

    A run stopped by a failure guard (``fix halt`` of ``science.mlmd``) or by lost atoms still
    stores its frames and thermo, then returns exit code 410 / 411.
    The ``training_set``'s reference is ``settings['reference']`` (set by the calcfunctions that
    prepare classical runs, ``science.references.lammps_reference``), else unknown (e.g. GAP MD).
    """

    def parse(self, **kwargs):
        try:
            return self._parse()
        except Exception as exc:  # noqa: BLE001 (any failure becomes exit code 350, never an uncaught raise)
            self.logger.error(f'parser exception: {exc!r}')
            return self.exit_codes.ERROR_PARSER_EXCEPTION.format(exception=repr(exc))

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
        if thermo is not None:
            array = orm.ArrayData()
            for key, values in thermo.items():
                array.set_array(key, np.asarray(values))
            array.base.attributes.set('units', dict(lammps_md.THERMO_COLUMNS))
            self.out('thermo', array)
            if 'temperature' in thermo:
                results['final_temperature'] = float(thermo['temperature'][-1])
                half = len(thermo['temperature']) // 2  # the last half: past equilibration in a sampling run
                results['mean_temperature_last_half'] = float(np.mean(thermo['temperature'][half:]))
            if 'volume' in thermo:
                results['mean_volume'] = float(np.mean(thermo['volume']))
        if error and stop['stop_reason'] != 'lost_atoms':
            self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_PARSER_DETECTED_LAMMPS_RUN_ERROR.format(error=error)
        if not results['finished'] and stop['stop_reason'] not in ('lost_atoms', *mlmd.GUARD_FIX_IDS):
            self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_OUTPUT_INCOMPLETE
        if lammps_md.DUMP_FILE not in names or lammps_md.LABELS_FILE not in names:
            self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_FRAMES_MISSING
        settings = self.node.inputs.settings.get_dict() if 'settings' in self.node.inputs else {}
        if 'type_map' not in settings:
            self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_SETTINGS
        frames = lammps_md.parse_dump(retrieved.base.repository.get_object_content(lammps_md.DUMP_FILE, mode='r'),
                                      allow_truncated=stop['stop_reason'] != 'completed')
        labels = lammps_md.parse_labels(retrieved.base.repository.get_object_content(lammps_md.LABELS_FILE, mode='r'))
        configurations = lammps_md.frames_to_atoms(frames, labels, settings['type_map'], settings.get('frame_info', {}))
        results['n_frames'] = len(configurations)
        self.out('results', orm.Dict(results))
        if not configurations:
            return self.exit_codes.ERROR_NO_FRAMES
        self.out('training_set', TrainingSetData.from_atoms(configurations, reference=settings.get('reference')))
        if stop['stop_reason'] in mlmd.GUARD_FIX_IDS:
            return self.exit_codes.ERROR_MD_EXPLODED.format(reason=stop['stop_reason'], step=stop['stop_step'],
                                                           message=stop['message'])
        if stop['stop_reason'] == 'lost_atoms':
            return self.exit_codes.ERROR_LOST_ATOMS.format(step=stop['stop_step'], message=stop['message'])
        return None
