"""Parser of ``mlfail.quip`` jobs."""

from __future__ import annotations

import io

import numpy as np
from aiida.parsers import Parser

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import extxyz


def parse_quip_output(text: str) -> list:
    """Configurations of a ``quip`` standard output (the ``AT``-prefixed extended XYZ lines).

    ``force`` is renamed ``forces``; energy (eV) and virial (eV) stay in ``info``.

    :returns: list of ``ase.Atoms``; empty if there is no ``AT`` line.
    """
    lines = [line[3:] for line in text.splitlines() if line.startswith('AT ')]
    if not lines:
        return []
    configurations = extxyz.read_configurations(io.StringIO('\n'.join(lines) + '\n'))
    for atoms in configurations:
        if 'force' in atoms.arrays:
            atoms.arrays['forces'] = np.array(atoms.arrays.pop('force'))
    return configurations


class QuipPredictParser(Parser):
    """Store the predicted configurations as a ``TrainingSetData``."""

    def parse(self, **kwargs):
        try:
            names = self.retrieved.base.repository.list_object_names()
            if 'quip.out' not in names:
                return self.exit_codes.ERROR_OUTPUT_MISSING
            configurations = parse_quip_output(self.retrieved.base.repository.get_object_content('quip.out', mode='r'))
            expected = self.node.inputs.configurations.n_configurations
            if len(configurations) != expected:
                return self.exit_codes.ERROR_COUNT_MISMATCH.format(found=len(configurations), expected=expected)
            try:
                extxyz.check_finite(configurations)
            except ValueError as exc:  # a GAP that predicts NaN / inf: a named failure, not an exception
                return self.exit_codes.ERROR_NON_FINITE.format(error=str(exc))
            self.out('predictions', TrainingSetData.from_atoms(configurations))
        except Exception as exc:  # noqa: BLE001
            self.logger.error(f'parser exception: {exc!r}')
            return self.exit_codes.ERROR_PARSER_EXCEPTION.format(exception=repr(exc))
        return None
