"""Bad structures refused at submit time by every process that starts from one (issue 13).

Each case builds valid inputs for one process with one bad structure and calls the process's
``spec().inputs.validate`` (what ``submit``/``run`` call before anything is stored): the message
names the port and the offence (the overlapping pair and its distance in Å, the pbc, the volume,
the non-finite position), nothing is stored and no file written. ``test_submit_refuses_before_any_node``
goes through ``aiida.engine.submit`` itself. The check is ``science.structures.check_structure``.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from aiida import orm
from ase import Atoms
from ase.io import write

from aiida_mlfail.calculations.explore import ExploreCalculation
from aiida_mlfail.calculations.lammps import LammpsCalculation
from aiida_mlfail.data.gap_potential import GapPotentialData
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science import lammps_md, mlmd
from aiida_mlfail.science.structures import molten_nacl
from aiida_mlfail.workflows.cp2k import Cp2kSinglePointWorkChain
from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.badinput.harness import assert_words, node_count, sandbox
from tests.helpers import FIXTURES


def _overlap(distance):
    atoms = molten_nacl(64)
    atoms.positions[1] = atoms.positions[0] + [distance, 0.0, 0.0]
    return atoms


def _nan_position():
    atoms = molten_nacl(64)
    atoms.positions[5, 1] = np.nan
    return atoms


def _zero_volume():
    atoms = molten_nacl(64)
    atoms.cell[2] = [0.0, 0.0, 0.0]
    return atoms


def _non_periodic():
    atoms = molten_nacl(64)
    atoms.pbc = [True, True, False]
    return atoms


#: name -> (builder of the bad ``Atoms``, words the message must hold)
BAD = {
    'overlap_0A': (lambda: _overlap(0.0), ['structure', 'atoms 0 (Na) and 1 (Cl)', '0.000 Å apart']),
    'overlap_0.2A': (lambda: _overlap(0.2), ['structure', 'atoms 0 (Na) and 1 (Cl)', '0.200 Å apart']),
    'empty': (lambda: Atoms(cell=[13.1] * 3, pbc=True), ['structure', 'has no atoms']),
    'non_periodic': (_non_periodic, ['structure', 'periodic cell is needed', 'pbc=[True, True, False]']),
    'nan_position': (_nan_position, ['structure', 'atom 5 (Cl) has a non-finite position']),
    'zero_volume': (_zero_volume, ['structure', 'zero volume']),
}

STATE_POINTS = [{'temperature': 1400.0, 'volume': 2248.0}]


def _sampling(codes, atoms):
    return ClassicalSamplingWorkChain, {
        'structure': orm.StructureData(ase=atoms), 'potential': orm.Dict({'name': 'bmhtf_coul_long'}),
        'state_points': orm.List(STATE_POINTS), 'lammps': {'job': {'code': codes['lammps']}}}


def _mlmd(codes, atoms):
    return MLMDWorkChain, {'potential': codes['gap'], 'structure': orm.StructureData(ase=atoms),
                           'parameters': orm.Dict({'steps': 10}), 'md': {'job': {'code': codes['lammps']}}}


def _explore(codes, atoms):
    return ExploreCalculation, {
        'potential': codes['gap'], 'structure': orm.StructureData(ase=atoms), 'training_set': codes['training_set'],
        'parameters': orm.Dict({'max_steps': 100, 'comparison_step': 20, 'critical_similarity': 0.9,
                                'soap': {'n_max': 3, 'l_max': 2, 'r_cut': 3.5}}),
        'code': codes['explore']}


def _lammps(codes, atoms):
    """An MD job (mlmd script) whose ``read_data`` file holds ``atoms``."""
    flat = len(atoms) and abs(np.linalg.det(atoms.cell[:])) < 1e-9
    buffer = io.StringIO()
    write(buffer, molten_nacl(64) if flat else atoms, format='lammps-data', atom_style='atomic', specorder=['Na', 'Cl'],
          masses=True, units='metal')
    text = buffer.getvalue()
    if flat:  # ASE cannot write a flat cell: the data file of a 64-ion box whose z extent is 0
        text = re.sub(r'^\s*\S+\s+\S+\s+zlo zhi$', '0.0 0.0 zlo zhi', text, flags=re.M)
    script = mlmd.mlmd_script(['pair_style zero 6.0', 'pair_coeff * *'], ['Na', 'Cl'], mlmd.normalise_mlmd({}),
                              max(len(atoms), 1), 2248.0)
    return LammpsCalculation, {
        'code': codes['lammps'], 'script': orm.SinglefileData(io.BytesIO(script.encode()), filename='input.in'),
        'files': {'structure': orm.SinglefileData(io.BytesIO(text.encode()),
                                                  filename=lammps_md.DATA_FILE)},
        'settings': orm.Dict({'type_map': ['Na', 'Cl']})}


def _cp2k_single_point(codes, atoms):
    return Cp2kSinglePointWorkChain, {'structure': orm.StructureData(ase=atoms), 'code': codes['lammps']}


def _aimd(codes, atoms):
    return Cp2kAimdWorkChain, {'structure': orm.StructureData(ase=atoms), 'code': codes['lammps'],
                               'temperature': orm.Float(1400.0), 'steps': orm.Int(5)}


ENTRIES = {'sampling': _sampling, 'mlmd': _mlmd, 'explore_calc': _explore, 'lammps_calc': _lammps,
           'cp2k_single_point': _cp2k_single_point, 'cp2k_aimd': _aimd}

#: (entry point, bad structure, words); LAMMPS reads no pbc from a data file (its `boundary` is in the script,
#: here p p p, so the data file's non-periodic flag cannot be expressed): that one combination is left out.
CASES = [(entry, bad, BAD[bad][1]) for entry in ENTRIES for bad in BAD
         if not (entry == 'lammps_calc' and bad == 'non_periodic')]
CASES += [('sampling_spec', 'spec_too_dense', ["structure_spec {'system': 'nacl', 'n_ions': 64, 'volume': 10.0}",
                                               'the built structure', 'Å apart', 'closer than'])]


@pytest.fixture
def codes(lammps_code, explore_code):
    base = molten_nacl(64)
    return {'lammps': lammps_code, 'explore': explore_code,
            'gap': GapPotentialData.from_folder(FIXTURES / 'bridge').store(),
            'training_set': TrainingSetData.from_atoms([base, _overlap(2.0)]).store()}


def _build(codes, entry, bad):
    if entry == 'sampling_spec':
        return ClassicalSamplingWorkChain, {
            'structure_spec': orm.Dict({'system': 'nacl', 'n_ions': 64, 'volume': 10.0}),
            'potential': orm.Dict({'name': 'bmhtf_coul_long'}), 'state_points': orm.List(STATE_POINTS),
            'lammps': {'job': {'code': codes['lammps']}}}
    return ENTRIES[entry](codes, BAD[bad][0]())


@pytest.mark.parametrize('entry, bad, words', CASES, ids=[f'{e}-{b}' for e, b, _ in CASES])
def test_bad_structure_refused_at_validation(tmp_path, codes, entry, bad, words):
    with sandbox(tmp_path):
        process, inputs = _build(codes, entry, bad)
        message = process.spec().inputs.validate(inputs)
        assert message is not None, f'{process.__name__} accepted the {bad} structure'
        assert_words(str(message), words)


@pytest.mark.parametrize('entry', list(ENTRIES))
def test_good_structure_passes(codes, entry):
    """The same inputs with the good structure validate (so each refusal above is the structure's)."""
    process, inputs = ENTRIES[entry](codes, molten_nacl(64))
    assert process.spec().inputs.validate(inputs) is None


def test_submit_refuses_before_any_node(tmp_path, codes, started_daemon_client):
    """``aiida.engine.submit`` to the running daemon of a GAP MD from overlapping atoms raises at once: no
    ProcessNode, no input stored, nothing sent to the daemon."""
    from aiida.engine import submit

    with sandbox(tmp_path):
        before = orm.QueryBuilder().append(orm.ProcessNode).count()
        n_nodes = node_count()
        process, inputs = _mlmd(codes, _overlap(0.2))
        with pytest.raises(ValueError) as info:
            submit(process, **inputs)
        assert_words(str(info.value), ["port 'inputs.structure'", 'atoms 0 (Na) and 1 (Cl) are 0.200 Å apart'])
        assert orm.QueryBuilder().append(orm.ProcessNode).count() == before and node_count() == n_nodes
