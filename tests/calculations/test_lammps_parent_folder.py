"""``mlfail.lammps`` with ``parent_folder``: the checkpoint of a GAP MD run is copied for its continuation."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.common.folders import Folder
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager

from aiida_mlfail.calculations.functions import prepare_mlmd
from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.science import mlmd
from tests.helpers import FIXTURES, nacl_configurations


def _inputs(code, **extra) -> dict:
    potential = GapPotentialData.from_folder(FIXTURES / 'bridge')
    prepared = prepare_mlmd(orm.StructureData(ase=nacl_configurations(1)[0]), potential,
                            orm.Dict({'steps': 100, 'checkpoint_interval': 50}))
    return {'code': code, 'script': prepared['script'], 'settings': prepared['settings'],
            'files': {'structure': prepared['structure_file']}, 'potential': potential, **extra}


def test_prepare_copies_the_checkpoint_of_the_parent_folder(tmp_path, lammps_code):
    parent = orm.RemoteData(computer=lammps_code.computer, remote_path='/scratch/aa/bb/earlier_md')
    process = instantiate_process(get_manager().get_runner(), LammpsCalculation,
                                  **_inputs(lammps_code, parent_folder=parent))
    (tmp_path / 'with').mkdir()
    (tmp_path / 'without').mkdir()
    calcinfo = process.prepare_for_submission(Folder(str(tmp_path / 'with')))
    assert calcinfo.remote_copy_list == [(lammps_code.computer.uuid, '/scratch/aa/bb/earlier_md/checkpoint',
                                          mlmd.CHECKPOINT_DIR)]
    process = instantiate_process(get_manager().get_runner(), LammpsCalculation, **_inputs(lammps_code))
    assert not process.prepare_for_submission(Folder(str(tmp_path / 'without'))).remote_copy_list
    assert process.inputs.settings['checkpoint_interval'] == 50


def test_a_parent_folder_on_another_computer_is_refused_at_submit(lammps_code, aiida_computer):
    parent = orm.RemoteData(computer=aiida_computer(label='elsewhere'), remote_path='/scratch/x')
    with pytest.raises(ValueError, match="parent_folder is on the computer 'elsewhere'.*same computer"):
        instantiate_process(get_manager().get_runner(), LammpsCalculation, **_inputs(lammps_code, parent_folder=parent))
