"""``mlfail.lammps`` with ``parent_folder``: the checkpoint of a GAP MD run is copied for its continuation (only the
restart file continued from and the start energy, not the whole ``checkpoint/`` folder)."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.common.folders import Folder
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager

from aiida_mlfail.calculations.functions import continue_mlmd, prepare_mlmd
from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.science import checkpoints
from tests.helpers import FIXTURES, nacl_configurations


def _inputs(code, step=None, **extra) -> dict:
    """Inputs of a GAP MD job (200 steps, a checkpoint every 50); with ``step``, those of its continuation from the
    checkpoint at ``step`` (``continue_mlmd``: script and settings with ``restart_step``)."""
    potential = GapPotentialData.from_folder(FIXTURES / 'bridge')
    prepared = prepare_mlmd(orm.StructureData(ase=nacl_configurations(1)[0]), potential,
                            orm.Dict({'steps': 200, 'checkpoint_interval': 50}))
    if step is not None:
        prepared = {**prepared, **continue_mlmd(prepared['script'], prepared['settings'], orm.Int(step))}
    return {'code': code, 'script': prepared['script'], 'settings': prepared['settings'],
            'files': {'structure': prepared['structure_file']}, 'potential': potential, **extra}


def test_prepare_copies_only_the_files_of_the_checkpoint(tmp_path, lammps_code):
    """The continuation from step 100 (the 'even' restart file: checkpoints at 50, 150 in 'odd') copies that file
    and the start energy into an empty checkpoint/ folder; parent_folder without the checkpoint step is refused."""
    parent = orm.RemoteData(computer=lammps_code.computer, remote_path='/scratch/aa/bb/earlier_md')
    inputs = _inputs(lammps_code, 100, parent_folder=parent)
    process = instantiate_process(get_manager().get_runner(), LammpsCalculation, **inputs)
    (tmp_path / 'with').mkdir()
    (tmp_path / 'without').mkdir()
    calcinfo = process.prepare_for_submission(Folder(str(tmp_path / 'with')))
    uuid = lammps_code.computer.uuid
    assert calcinfo.remote_copy_list == [
        (uuid, '/scratch/aa/bb/earlier_md/checkpoint/lammps.even.restart', 'checkpoint/lammps.even.restart'),
        (uuid, '/scratch/aa/bb/earlier_md/checkpoint/energy_start.txt', 'checkpoint/energy_start.txt')]
    # the folder the files are copied into exists before the copy (an empty folder of the sandbox)
    assert (tmp_path / 'with' / checkpoints.CHECKPOINT_DIR).is_dir()
    assert not any((tmp_path / 'with' / checkpoints.CHECKPOINT_DIR).iterdir())
    assert 'read_restart checkpoint/lammps.even.restart' in process.inputs.script.get_content()

    first = {**inputs, 'script': inputs['script'].creator.inputs.script,
             'settings': inputs['settings'].creator.inputs.settings}  # the first job's (no restart_step)
    process = instantiate_process(get_manager().get_runner(), LammpsCalculation,
                                  **{k: v for k, v in first.items() if k != 'parent_folder'})
    assert not process.prepare_for_submission(Folder(str(tmp_path / 'without'))).remote_copy_list
    assert not (tmp_path / 'without' / checkpoints.CHECKPOINT_DIR).exists()
    assert process.inputs.settings['checkpoint_interval'] == 50
    with pytest.raises(ValueError, match=r'parent_folder needs settings restart_step and checkpoint_interval.*'
                                         r'got restart_step=None, checkpoint_interval=50'):
        instantiate_process(get_manager().get_runner(), LammpsCalculation, **first)
    inputs['settings'] = orm.Dict({**inputs['settings'].get_dict(), 'restart_step': 75})
    with pytest.raises(ValueError, match='checkpoint step 75 is not a multiple of checkpoint_interval 50'):
        instantiate_process(get_manager().get_runner(), LammpsCalculation, **inputs)


def test_a_parent_folder_on_another_computer_is_refused_at_submit(lammps_code, aiida_computer):
    parent = orm.RemoteData(computer=aiida_computer(label='elsewhere'), remote_path='/scratch/x')
    with pytest.raises(ValueError, match="parent_folder is on the computer 'elsewhere'.*same computer"):
        instantiate_process(get_manager().get_runner(), LammpsCalculation, **_inputs(lammps_code, parent_folder=parent))
