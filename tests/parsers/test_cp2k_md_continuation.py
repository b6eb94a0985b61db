"""Parsing an AIMD that CP2K stopped at its wall time and the job that continued it from its checkpoint
(committed CP2K 2023.1 files, tests/fixtures/cp2k/aimd_continued/README.md)."""

import numpy as np
import pytest

from aiida_mlfail.parsers.cp2k import Cp2kOutputError, parse_cp2k_md
from aiida_mlfail.science import cp2k
from aiida_mlfail.science.outputs.cp2k import join_md_segments, stress_tensors, unconverged_scf_count
from aiida_mlfail.science.structures import molten_nacl
from tests.helpers import FIXTURES

HERE = FIXTURES / 'cp2k' / 'aimd_continued'
CELL = molten_nacl(8, density=1.5, seed=1).cell.array


def _files(name):
    return {f: (HERE / name / f).read_text() for f in ('aiida.out', 'aiida-pos-1.xyz', 'aiida-frc-1.xyz',
                                                        'aiida-1.ener', 'aiida-1.restart')}


def _segment(name, **kwargs):
    f = _files(name)
    return parse_cp2k_md(f['aiida-pos-1.xyz'], f['aiida-frc-1.xyz'], f['aiida.out'], CELL, f['aiida-1.ener'], **kwargs)


def test_the_checkpoint_step_and_the_continuation_parameters():
    assert cp2k.restart_step(_files('stopped')['aiida-1.restart']) == 3
    assert cp2k.restart_step(_files('continued')['aiida-1.restart']) == 13
    with pytest.raises(ValueError, match='no MOTION/MD/STEP_START_VAL'):
        cp2k.restart_step('&GLOBAL\n&END GLOBAL\n')
    parameters = cp2k.aimd_parameters('fast', ['Na', 'Cl'], 1400.0, 10, 2.0)
    continued = cp2k.md_continuation(parameters, 3, 10)
    assert continued['EXT_RESTART'] == {'RESTART_FILE_NAME': 'parent_calc/aiida-1.restart'}
    assert continued['MOTION']['MD']['STEPS'] == 7 and parameters['MOTION']['MD']['STEPS'] == 10
    with pytest.raises(ValueError, match='checkpoint_step must be below total_steps 10, got 10'):
        cp2k.md_continuation(parameters, 10, 10)


def test_a_stopped_job_and_its_continuation_join_into_one_trajectory():
    stopped_text, continued_text = _files('stopped')['aiida.out'], _files('continued')['aiida.out']
    # the stopped job: 4 frames, 5 stress tensors (the evaluation of step 4 cut by the wall time)
    assert len(stress_tensors(stopped_text)) == 5
    with pytest.raises(Cp2kOutputError, match='MD files disagree'):
        _segment('stopped')  # read as a finished run it is refused
    stopped = _segment('stopped', until_step=3)
    assert [a.info['md_step'] for a in stopped] == [0, 1, 2, 3]
    # the continuation: its first stress tensor is step 3 again (no frame), then steps 4 .. 13
    with pytest.raises(Cp2kOutputError, match='MD files disagree'):
        _segment('continued')
    continued = _segment('continued', continuation=True)
    assert [a.info['md_step'] for a in continued] == list(range(4, 14))
    np.testing.assert_allclose(stress_tensors(continued_text)[0], stress_tensors(stopped_text)[3], atol=1e-6)
    # step 4's virial is the continuation's own evaluation, not the cut one or the repeated step 3
    assert not np.allclose(continued[0].info['virial'], stopped[-1].info['virial'], atol=1e-2)
    frames = join_md_segments([stopped, continued])
    assert [a.info['md_step'] for a in frames] == list(range(14))
    assert [a.info['time_fs'] for a in frames] == pytest.approx([2.0 * i for i in range(14)])
    with pytest.raises(Cp2kOutputError, match="segment 1 starts at step 4, not after the previous segment's last "
                                              'step 2'):
        join_md_segments([stopped[:3], continued])
    with pytest.raises(Cp2kOutputError, match='MD segment 0 has no frame'):
        join_md_segments([[], continued])


def test_frames_after_the_checkpoint_are_left_to_the_continuation():
    """With checkpoints every few steps, the frames a stopped job wrote after its last one are run again by
    the continuation, so the segment ends at the checkpoint; a cut last xyz frame is ignored."""
    f = _files('stopped')
    cut = f['aiida-pos-1.xyz'][:-60]  # the last frame cut mid-row, as by a kill while writing
    frames = parse_cp2k_md(cut, f['aiida-frc-1.xyz'], f['aiida.out'], CELL, f['aiida-1.ener'], until_step=2)
    assert [a.info['md_step'] for a in frames] == [0, 1, 2]
    # checkpoint at step 3 but the kill cut frame 3 of the positions: the frames both files hold
    assert len(parse_cp2k_md(cut, f['aiida-frc-1.xyz'], f['aiida.out'], CELL, f['aiida-1.ener'], until_step=3)) == 3
    with pytest.raises(Cp2kOutputError, match='is cut'):
        parse_cp2k_md(cut, f['aiida-frc-1.xyz'], f['aiida.out'], CELL, f['aiida-1.ener'])
    truncated = f['aiida.out'][:f['aiida.out'].index('PROGRAM ENDED')]
    assert len(parse_cp2k_md(f['aiida-pos-1.xyz'], f['aiida-frc-1.xyz'], truncated, CELL, until_step=3)) == 4


def test_the_scf_cut_by_the_wall_time_is_not_an_unconverged_scf():
    stopped = _files('stopped')['aiida.out']
    assert stopped.count('SCF run NOT converged') == 1  # the warning of the cut SCF
    assert unconverged_scf_count(stopped) == 0
    assert unconverged_scf_count(_files('continued')['aiida.out']) == 0
    # CP2K does not always warn about the cut SCF: that is no negative count
    cut = stopped.index('SCF run terminated - exceeded requested execution time')
    assert unconverged_scf_count(stopped[:cut + 60]) == 0
    # a real unconverged SCF before the cut one still counts
    assert unconverged_scf_count(' *** WARNING in qs_scf.F:601 :: SCF run NOT converged ***\n' + stopped) == 1
