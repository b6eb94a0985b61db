"""science.outputs: the raw output parsers are AiiDA-free and the old import paths still give the same objects."""

import subprocess
import sys


def test_raw_output_parsers_import_no_aiida():
    code = ('import sys\n'
            'import aiida_mlfail.science.outputs.cp2k, aiida_mlfail.science.outputs.lammps\n'
            'import aiida_mlfail.science.outputs.gap_fit, aiida_mlfail.science.outputs.quip\n'
            'import aiida_mlfail.science.outputs.explore, aiida_mlfail.science.rematch\n'
            "print(sorted(m for m in sys.modules if m == 'aiida' or m.startswith('aiida.')))\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'


def test_old_import_paths_give_the_moved_objects():
    from aiida_mlfail.parsers import cp2k, gap_fit, lammps, quip
    from aiida_mlfail.science import outputs
    from aiida_mlfail.science.outputs import cp2k as raw_cp2k

    assert cp2k.parse_cp2k_output is raw_cp2k.parse_cp2k_output
    assert cp2k.parse_cp2k_md is raw_cp2k.parse_cp2k_md
    assert cp2k.abort_message is raw_cp2k.abort_message
    assert cp2k.Cp2kOutputError is raw_cp2k.Cp2kOutputError
    assert lammps.parse_lammps_error is outputs.lammps.parse_lammps_error
    assert gap_fit.parse_memory_file is outputs.gap_fit.parse_memory_file
    assert quip.parse_quip_output is outputs.quip.parse_quip_output


def test_parse_lammps_error_and_memory_file_on_plain_text():
    from aiida_mlfail.science.outputs.gap_fit import parse_memory_file
    from aiida_mlfail.science.outputs.lammps import parse_lammps_error

    error = 'ERROR: Lost atoms: original 64 current 63 (src/thermo.cpp:488)'
    screen = f'Step Temp\n0 300\n{error}\nLast input line: run 100\n'
    assert parse_lammps_error(screen) == f'{error} Last input line: run 100'
    assert parse_lammps_error('Total wall time: 0:00:01\n') is None
    assert parse_memory_file('peak_kb=594 limit_kb=1048576\nstatus=ok\n') == {
        'peak_kb': 594, 'limit_kb': 1048576, 'status': 'ok'}
