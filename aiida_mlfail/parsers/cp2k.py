"""CP2K output parsing, kept importable here: the AiiDA-free functions live in
:mod:`aiida_mlfail.science.outputs.cp2k` (CP2K itself runs through aiida-cp2k's ``cp2k`` CalcJob and
parser; :mod:`aiida_mlfail.calculations.cp2k` calls these functions from calcfunctions)."""

from aiida_mlfail.science.outputs.cp2k import (  # re-exported: the old import path keeps working
    Cp2kOutputError,
    abort_message,
    parse_cp2k_md,
    parse_cp2k_output,
    stress_tensors,
)

__all__ = ['Cp2kOutputError', 'abort_message', 'parse_cp2k_md', 'parse_cp2k_output', 'stress_tensors']
