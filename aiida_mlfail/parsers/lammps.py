"""Parser of ``mlfail.lammps`` sampling jobs; the parsing itself lives in ``science.lammps_md``."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import lammps_md


def parse_lammps_error(text: str) -> str | None:
    """The first ``ERROR`` line of a LAMMPS screen/log output (with the ``Last input line``), or ``None``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('ERROR'):
            follow = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith('Last input line') else ''
            return (line + ' ' + follow).strip()
    return None


class LammpsSampleParser(Parser):
    """Build the training set and thermo series of a sampling job."""

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
        results = {'lammps_error': error, 'finished': 'Total wall time' in screen}
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
            results['final_temperature'] = float(thermo['temperature'][-1])
            half = len(thermo['temperature']) // 2  # the last half: past equilibration in a sampling run
            results['mean_temperature_last_half'] = float(np.mean(thermo['temperature'][half:]))
            results['mean_volume'] = float(np.mean(thermo['volume']))
        if error:
            self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_PARSER_DETECTED_LAMMPS_RUN_ERROR.format(error=error)
        if lammps_md.DUMP_FILE not in names or lammps_md.LABELS_FILE not in names:
            self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_FRAMES_MISSING
        settings = self.node.inputs.settings.get_dict() if 'settings' in self.node.inputs else {}
        if 'type_map' not in settings:
            self.out('results', orm.Dict(results))
            return self.exit_codes.ERROR_SETTINGS
        frames = lammps_md.parse_dump(retrieved.base.repository.get_object_content(lammps_md.DUMP_FILE, mode='r'))
        labels = lammps_md.parse_labels(retrieved.base.repository.get_object_content(lammps_md.LABELS_FILE, mode='r'))
        configurations = lammps_md.frames_to_atoms(frames, labels, settings['type_map'], settings.get('frame_info', {}))
        results['n_frames'] = len(configurations)
        self.out('results', orm.Dict(results))
        if not configurations:
            return self.exit_codes.ERROR_NO_FRAMES
        self.out('training_set', TrainingSetData.from_atoms(configurations))
        return None
