"""Parser of ``mlfail.gap_fit`` jobs; the AiiDA-free parsing is ``science.outputs.gap_fit`` (and ``science.gap``)."""

from __future__ import annotations

import shlex

from aiida import orm

from aiida_mlfail.calculations import gap_fit as calc
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.parsers.base import MlfailParser
from aiida_mlfail.science import gap
from aiida_mlfail.science.outputs.gap_fit import parse_memory_file  # re-exported from here as before


class GapFitParser(MlfailParser):
    """Store the fitted GAP and the fit report; classify gap_fit failures."""

    def _parse(self):
        report = {}
        dryrun = self.read(calc.DRYRUN_OUT)
        if dryrun is not None:
            try:
                report.update(gap.parse_dryrun(dryrun))
            except ValueError:
                pass
        memory_text = self.read(calc.MEMORY_FILE)
        memory = parse_memory_file(memory_text) if memory_text else {}
        if isinstance(memory.get('limit_kb'), int):
            report['memory_limit_mb'] = memory['limit_kb'] / 1024
        if memory.get('status') == 'exceeded':
            self.out('output_parameters', orm.Dict(report))
            return self.exit_codes.ERROR_OUT_OF_MEMORY.format(
                peak_mb=memory['peak_kb'] / 1024, limit_mb=memory['limit_kb'] / 1024)
        stdout = self.read(calc.STDOUT)
        if stdout is None:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=calc.STDOUT)
        run = gap.parse_gap_fit_output(stdout)
        report['fit_wall_time_s'] = run['wall_time_s']
        if run['error']:
            self.out('output_parameters', orm.Dict(report))
            if run['ill_conditioned']:
                return self.exit_codes.ERROR_ILL_CONDITIONED.format(error=run['error'])
            return self.exit_codes.ERROR_GAP_FIT_FAILED.format(error=run['error'])
        if self.read(calc.GP_FILE) is None:
            self.out('output_parameters', orm.Dict(report))
            if not run['finished']:
                return self.exit_codes.ERROR_GAP_FIT_FAILED.format(error='gap_fit ended before Finalise (killed?)')
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=calc.GP_FILE)
        parameters = gap.normalise_fit_parameters(self.node.inputs.parameters.get_dict())
        e0 = calc.resolved_e0(parameters, self.node.inputs.training_set)
        arguments = gap.gap_fit_arguments(parameters, calc.TRAINING_FILE, calc.GP_FILE, e0=e0)  # the words it ran
        if e0 is not None:
            report['e0_least_squares_eV'] = e0
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
