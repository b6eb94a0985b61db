"""Bad text in CP2K overrides (``mlfail.cp2k_single_point``, and so the CP2K labeller): aiida-cp2k writes the
overrides into the CP2K input file, so a value must not start a line, a section, a preprocessor directive
(``@INCLUDE``, ``@SET``) or a variable, and the files CP2K writes must stay in the job folder
(:func:`aiida_mlfail.science.cp2k.check_overrides`). Each case is refused by the port validation, naming the
dotted key and the value, with nothing stored."""

import pytest

from tests.badinput.harness import validation_refused
from tests.badinput.test_numbers import entries, with_value  # noqa: F401 (the fixture)

CASES = [
    ('FORCE_EVAL.DFT.BASIS_SET_FILE_NAME', 'BASIS_MOLOPT\n@INCLUDE /etc/passwd',
     ['overrides.FORCE_EVAL.DFT.BASIS_SET_FILE_NAME', '@INCLUDE']),
    ('FORCE_EVAL.DFT.POTENTIAL_FILE_NAME', '@INCLUDE /etc/passwd', ['POTENTIAL_FILE_NAME', '@INCLUDE']),
    ('FORCE_EVAL.DFT.XC.XC_FUNCTIONAL._', 'PBE\n&END XC\n&XC', ['XC_FUNCTIONAL._', '&END']),
    ('FORCE_EVAL.DFT.SCF.SCF_GUESS', '${GUESS}', ['SCF_GUESS', '${GUESS}']),
    ('GLOBAL.PROJECT', '../../outside', ['overrides.GLOBAL.PROJECT', "'../../outside'", 'bare file name']),
    ('MOTION.PRINT.TRAJECTORY.FILENAME', '=/tmp/evil.xyz', ['TRAJECTORY.FILENAME', '/tmp/evil.xyz']),
    ('FORCE_EVAL.DFT.PRINT.E_DENSITY_CUBE.FILENAME', 'sub/dir', ['E_DENSITY_CUBE.FILENAME', "'sub/dir'"]),
    ('FORCE_EVAL.DFT.MGRID.CUTOFF', float('-inf'), ['overrides.FORCE_EVAL.DFT.MGRID.CUTOFF', '-inf']),
    ('FORCE_EVAL.DFT.SCF.EPS_SCF', {'1e-6 ! comment': 1}, ['EPS_SCF', 'not a CP2K section or keyword name']),
]


def test_good_overrides_with_file_names_pass(entries):  # noqa: F811
    process, make = entries['mlfail.cp2k_single_point']
    inputs = with_value(make(), 'overrides:MOTION.PRINT.TRAJECTORY.FILENAME', '=trajectory.xyz')
    inputs = with_value(inputs, 'overrides:FORCE_EVAL.DFT.BASIS_SET_FILE_NAME', '/usr/share/cp2k/BASIS_MOLOPT')
    assert process.spec().inputs.validate(inputs) is None


@pytest.mark.parametrize('path, value, words', CASES, ids=[c[0] for c in CASES])
def test_bad_cp2k_text_is_refused(entries, tmp_path, path, value, words):  # noqa: F811
    process, make = entries['mlfail.cp2k_single_point']
    inputs = with_value(make(), f'overrides:{path}', value)
    validation_refused(process, inputs, words, tmp_path, f'overrides.{path}={value!r}')
