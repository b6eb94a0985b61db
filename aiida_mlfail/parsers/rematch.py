"""Parser of ``mlfail.rematch`` jobs; the reading and checking is ``engines.rematch.parse_rematch_output``."""

from __future__ import annotations

from aiida import orm

from aiida_mlfail.calculations.rematch import STDERR
from aiida_mlfail.engines.rematch import ARRAYS_FILE, RESULTS_FILE, parse_rematch_output
from aiida_mlfail.parsers.base import MlfailParser


class RematchParser(MlfailParser):
    """Store the arrays (``ArrayData``) and the summary (``Dict``) of ``mlfail-rematch``."""

    def _parse(self):
        repository = self.retrieved.base.repository
        names = repository.list_object_names()
        for filename in (ARRAYS_FILE, RESULTS_FILE):
            if filename not in names:
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(
                    filename=filename, error=self.last_line(STDERR) or 'no error message')
        try:
            arrays, results = parse_rematch_output(repository.get_object_content(ARRAYS_FILE, mode='rb'),
                                                   repository.get_object_content(RESULTS_FILE, mode='r'))
        except ValueError as exc:
            return self.exit_codes.ERROR_OUTPUT_INVALID.format(error=str(exc))
        inputs = self.node.inputs
        n_y = inputs.y.n_configurations if 'y' in inputs else inputs.x.n_configurations
        if (results['n_x'], results['n_y']) != (inputs.x.n_configurations, n_y):
            return self.exit_codes.ERROR_OUTPUT_INVALID.format(
                error=f"compared {results['n_x']} x {results['n_y']} configurations, the inputs have "
                      f'{inputs.x.n_configurations} x {n_y}')
        node = orm.ArrayData()
        for name, array in arrays.items():
            node.set_array(name, array)
        self.out('arrays', node)
        self.out('results', orm.Dict(results))
        return None
