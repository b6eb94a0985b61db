"""File names a LAMMPS job writes its ``files`` under (``filenames``, else the ``SinglefileData`` filename, which an
imported archive may carry as anything) must be bare names: refused at submit, naming the file, nothing stored."""

import io

import pytest
from aiida import orm

from aiida_mlfail.calculations.lammps import LammpsCalculation
from tests.badinput.harness import validation_refused

CASES = [
    ('filenames-dotdot', {'filenames': '../outside.data'}, ['files.structure', "'../outside.data'"]),
    ('filenames-absolute', {'filenames': '/tmp/outside.data'}, ['files.structure', "'/tmp/outside.data'"]),
    ('filenames-newline', {'filenames': 'a\nb'}, ['files.structure', "'a\\nb'"]),
    ('node-filename-subfolder', {'node_filename': 'sub/structure.data'}, ['files.structure', 'sub/structure.data']),
]


@pytest.mark.parametrize('case, change, words', CASES, ids=[c[0] for c in CASES])
def test_lammps_job_file_names_are_bare(case, change, words, lammps_code, tmp_path):
    node = orm.SinglefileData(io.BytesIO(b'# not read\n'), filename='structure.data')
    if 'node_filename' in change:
        node.base.attributes.set('filename', change['node_filename'])  # as an archive could carry it
    inputs = {'code': lammps_code, 'script': orm.SinglefileData(io.BytesIO(b'run 0\n'), filename='input.in'),
              'files': {'structure': node}}
    if 'filenames' in change:
        inputs['filenames'] = orm.Dict({'structure': change['filenames']})
    validation_refused(LammpsCalculation, inputs, words, tmp_path, str(change))


def test_bare_file_names_pass(lammps_code):
    inputs = {'code': lammps_code, 'script': orm.SinglefileData(io.BytesIO(b'run 0\n'), filename='input.in'),
              'files': {'structure': orm.SinglefileData(io.BytesIO(b'# x\n'), filename='structure.data')},
              'filenames': orm.Dict({'structure': 'start.data'})}
    assert LammpsCalculation.spec().inputs.validate(inputs) is None
