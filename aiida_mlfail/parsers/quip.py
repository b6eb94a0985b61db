"""Parser of ``mlfail.quip`` jobs; the AiiDA-free parsing is ``science.outputs.quip``."""

from __future__ import annotations

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.parsers.base import MlfailParser
from aiida_mlfail.science import extxyz
from aiida_mlfail.science.outputs.quip import parse_quip_output  # re-exported from here as before


class QuipPredictParser(MlfailParser):
    """Store the predicted configurations as a ``TrainingSetData``."""

    def _parse(self):
        text = self.read('quip.out')
        if text is None:
            return self.exit_codes.ERROR_OUTPUT_MISSING
        configurations = parse_quip_output(text)
        expected = self.node.inputs.configurations.n_configurations
        if len(configurations) != expected:
            return self.exit_codes.ERROR_COUNT_MISMATCH.format(found=len(configurations), expected=expected)
        try:
            extxyz.check_finite(configurations)
        except ValueError as exc:  # a GAP that predicts NaN / inf: a named failure, not an exception
            return self.exit_codes.ERROR_NON_FINITE.format(error=str(exc))
        self.out('predictions', TrainingSetData.from_atoms(configurations))
        return None
