"""Parser of ``mlfail.gap_fit`` jobs; parsing functions live in ``science.gap``."""

from __future__ import annotations

import re
import shlex

from aiida import orm
from aiida.parsers import Parser

from aiida_mlfail.calculations import gap_fit as calc
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.science import gap


def parse_memory_file(text: str) -> dict:
    """``peak_kb=... limit_kb=...`` / ``status=...`` lines of the preflight into a dict (ints where numeric)."""
    values = {}
    for key, value in re.findall(r'(\w+)=(\S+)', text):
        values[key] = int(value) if value.isdigit() else value
    return values


class GapFitParser(Parser):
    """Store the fitted GAP and the fit report; classify gap_fit failures."""

    def parse(self, **kwargs):
        try:
            return self._parse()
        except Exception as exc:  # noqa: BLE001
            self.logger.error(f'parser exception: {exc!r}')
            return self.exit_codes.ERROR_PARSER_EXCEPTION.format(exception=repr(exc))

    def _read(self, name):
        if name not in self.retrieved.base.repository.list_object_names():
            return None
        return self.retrieved.base.repository.get_object_content(name, mode='r')

    def _parse(self):
        report = {}
        dryrun = self._read(calc.DRYRUN_OUT)
        if dryrun is not None:
            try:
                report.update(gap.parse_dryrun(dryrun))
            except ValueError:
                pass
        memory_text = self._read(calc.MEMORY_FILE)
        memory = parse_memory_file(memory_text) if memory_text else {}
        if isinstance(memory.get('limit_kb'), int):
            report['memory_limit_mb'] = memory['limit_kb'] / 1024
        if memory.get('status') == 'exceeded':
            self.out('output_parameters', orm.Dict(report))
            return self.exit_codes.ERROR_OUT_OF_MEMORY.format(
                peak_mb=memory['peak_kb'] / 1024, limit_mb=memory['limit_kb'] / 1024)
        stdout = self._read(calc.STDOUT)
        if stdout is None:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=calc.STDOUT)
        run = gap.parse_gap_fit_output(stdout)
        report['fit_wall_time_s'] = run['wall_time_s']
        if run['error']:
            self.out('output_parameters', orm.Dict(report))
            if run['ill_conditioned']:
                return self.exit_codes.ERROR_ILL_CONDITIONED.format(error=run['error'])
            return self.exit_codes.ERROR_GAP_FIT_FAILED.format(error=run['error'])
        if self._read(calc.GP_FILE) is None:
            self.out('output_parameters', orm.Dict(report))
            if not run['finished']:
                return self.exit_codes.ERROR_GAP_FIT_FAILED.format(error='gap_fit ended before Finalise (killed?)')
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=calc.GP_FILE)
        arguments = calc.command_arguments(self.node.inputs.parameters.get_dict())  # the words the job ran
        potential = GapPotentialData.from_folder(
            self.retrieved.base.repository, calc.GP_FILE,
            command_line='gap_fit ' + ' '.join(shlex.quote(a) for a in arguments),
            training_set_uuid=self.node.inputs.training_set.uuid,
        )
        report['n_sparse'] = potential.base.attributes.get('n_sparse')
        report['label'] = potential.label
        self.out('potential', potential)
        self.out('output_parameters', orm.Dict(report))
        return None
