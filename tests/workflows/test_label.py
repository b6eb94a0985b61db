"""LabelWorkChain: validation at submit time, and real LAMMPS single points through the daemon."""

import shutil

import numpy as np
import pytest
from aiida import orm

from aiida_mlfail.calculations.cp2k import attach_cp2k_labels
from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.references import cp2k_reference, lammps_reference
from aiida_mlfail.workflows.label import LabelWorkChain
from tests.helpers import nacl_configurations

BMHTF = {'name': 'bmhtf_coul_long'}


def _validate(inputs):
    return LabelWorkChain.spec().inputs.validate(inputs)


def test_needs_exactly_one_source_and_a_reference(lammps_code):
    structures = {'a': orm.StructureData(ase=nacl_configurations(1)[0])}
    training_set = TrainingSetData.from_atoms(nacl_configurations(2))
    lammps = {'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}}
    assert 'not both or none' in str(_validate({'lammps': lammps}))
    assert 'not both or none' in str(_validate({'lammps': lammps, 'structures': structures,
                                                'configurations': training_set}))
    assert 'no reference given' in str(_validate({'structures': structures}))
    assert _validate({'lammps': lammps, 'structures': structures}) is None
    # the code of the single points is the restart wrapper's job.code; the old `lammps.code` is refused
    old = _validate({'lammps': {'potential': orm.Dict(BMHTF), 'code': lammps_code}, 'structures': structures})
    assert old is not None and 'code' in str(old), old
    options = {'resources': {'num_machines': 1}, 'max_wallclock_secs': 60}
    typo = _validate({'lammps': {**lammps, 'job': {'code': lammps_code, 'metadata': {'options': options}}},
                      'structures': structures})
    assert 'max_wallclock_secs' in str(typo), typo  # a typo in the scheduler options fails at submit time


@pytest.fixture
def cp2k_code(aiida_code_installed):
    return aiida_code_installed(label='cp2k', default_calc_job_plugin='cp2k',
                                filepath_executable=shutil.which('cp2k.psmp') or '/usr/bin/cp2k.psmp')


def test_exactly_one_reference(lammps_code, cp2k_code):
    structures = {'a': orm.StructureData(ase=nacl_configurations(1)[0])}
    lammps = {'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}}
    assert 'not both' in str(_validate({'structures': structures, 'lammps': lammps, 'cp2k': {'code': cp2k_code}}))
    assert _validate({'structures': structures, 'cp2k': {'code': cp2k_code}}) is None
    error = _validate({'structures': structures, 'cp2k': {'code': cp2k_code, 'protocol': orm.Str('ultra')}})
    assert "unknown CP2K protocol 'ultra'" in str(error)


def test_cp2k_reference_needs_basis_sets_for_every_species(cp2k_code, monkeypatch, tmp_path):
    (tmp_path / 'BASIS_MOLOPT').write_text(' Na SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q9\n')
    (tmp_path / 'GTH_POTENTIALS').write_text('Na GTH-PBE-q9 GTH-PBE\nCl GTH-PBE-q7 GTH-PBE\n')
    monkeypatch.setenv('CP2K_DATA_DIR', str(tmp_path))
    error = _validate({'configurations': TrainingSetData.from_atoms(nacl_configurations(2)),
                       'cp2k': {'code': cp2k_code}})
    assert 'cp2k: no basis set for Cl (SZV-MOLOPT-SR-GTH, SZV-MOLOPT-GTH)' in str(error)


def test_attach_cp2k_labels_keeps_metadata_and_names_failures():
    """Labels replace the old ones, metadata stays, failed configurations are excluded with their reason."""
    originals = nacl_configurations(3)
    for i, atoms in enumerate(originals):
        atoms.info.update({'candidate': f'c{i}', 'md_step': 10 * i})
    labelled = {}
    for i in (0, 2):
        atoms = originals[i].copy()
        atoms.translate(atoms.cell[0])  # a lattice vector away: the same configuration
        atoms.info = {'energy': -1.5 * (i + 1), 'virial': np.eye(3) * i, 'label_reference': 'cp2k_fast'}
        atoms.arrays['forces'] = np.full((len(atoms), 3), 0.1 * i)
        labelled[f'c{i}'] = TrainingSetData.from_atoms([atoms], reference=cp2k_reference('fast'))
    result = attach_cp2k_labels(TrainingSetData.from_atoms(originals), failures=orm.Dict({'1': 'SCF never converged'}),
                                **labelled)
    out = result['training_set'].get_atoms()
    assert [a.info['candidate'] for a in out] == ['c0', 'c2'] and [a.info['md_step'] for a in out] == [0, 20]
    assert [a.info['energy'] for a in out] == [-1.5, -4.5]
    np.testing.assert_allclose(out[1].arrays['forces'], 0.2)
    np.testing.assert_allclose(out[1].positions, originals[2].positions, atol=1e-6)  # the original positions
    assert all(a.info['label_reference'] == 'cp2k_fast' for a in out)
    assert result['excluded']['excluded'] == [{'index': 1, 'candidate': 'c1', 'reason': 'SCF never converged'}]
    assert result['training_set'].reference == cp2k_reference('fast')  # the single points' reference
    moved = originals[0].copy()
    moved.positions[0] += 0.1
    moved.info = {'energy': -1.0, 'virial': np.zeros((3, 3))}
    moved.arrays['forces'] = np.zeros((len(moved), 3))
    with pytest.raises(ValueError, match='does not match configuration 0'):
        attach_cp2k_labels(TrainingSetData.from_atoms(originals[:1]), failures=orm.Dict({}),
                           c0=TrainingSetData.from_atoms([moved]))


def test_reference_must_describe_the_species(lammps_code):
    structures = {'a': orm.StructureData(ase=nacl_configurations(1)[0])}
    error = _validate({'structures': structures, 'lammps': {'potential': orm.Dict({'name': 'lj_argon'}),
                                                            'job': {'code': lammps_code}}})
    assert 'lammps.potential' in str(error) and 'Na' in str(error)


def test_one_atom_sequence_per_lammps_job(lammps_code):
    a, b = nacl_configurations(2)
    del b[0]
    error = _validate({'structures': {'a': orm.StructureData(ase=a), 'b': orm.StructureData(ase=b)},
                       'lammps': {'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}}})
    assert 'one atom sequence per job' in str(error)


@pytest.mark.integration
def test_lammps_single_points_reproduce_the_sampling_labels(submit_and_await, lammps_code):
    """Relabelling frames of a real BMHTF run with the same potential gives back their labels."""
    frames = nacl_configurations(3)
    structures = {}
    for i, atoms in enumerate(frames):
        node = orm.StructureData(ase=atoms)
        node.base.attributes.set('md_step', 100 * i)
        structures[f'c{i}'] = node
    node = submit_and_await(LabelWorkChain, timeout=300, structures=structures,
                            lammps={'potential': orm.Dict(BMHTF), 'job': {'code': lammps_code}})
    assert node.is_finished_ok, node.exit_message
    labelled = node.outputs.training_set.get_atoms()
    assert node.outputs.excluded['excluded'] == []
    assert node.outputs.training_set.reference == lammps_reference(BMHTF)  # recorded by the single-point parser
    assert [a.info['candidate'] for a in labelled] == ['c0', 'c1', 'c2']
    assert [a.info['md_step'] for a in labelled] == [0, 100, 200]
    assert [a.info['structure_uuid'] for a in labelled] == [structures[k].uuid for k in ('c0', 'c1', 'c2')]
    for original, new in zip(frames, labelled):
        assert new.info['energy'] == pytest.approx(original.info['energy'], abs=2e-3)
        np.testing.assert_allclose(new.arrays['forces'], original.arrays['forces'], atol=2e-3)
        np.testing.assert_allclose(new.info['virial'], original.info['virial'], atol=2e-2)
        assert new.info['label_reference'] == 'bmhtf_coul_long'


def test_reference_differences_remove_the_energy_offset():
    """Two references with different zeros of energy: the mean per-atom offset is removed before the RMSD."""
    from aiida_mlfail.calculations.cp2k import reference_differences

    first = nacl_configurations(3)
    second = [a.copy() for a in first]
    shifts = np.array([0.01, -0.02, 0.01])  # eV/atom, mean zero
    for atoms, original, shift in zip(second, first, shifts):
        atoms.info['energy'] = original.info['energy'] - 800.0 * len(atoms) + shift * len(atoms)
        atoms.arrays['forces'] = original.arrays['forces'] + 0.1
    d = reference_differences(first, second)
    assert d['offset'] == pytest.approx(-800.0)
    assert d['rmsd_energy'] == pytest.approx(np.sqrt(np.mean(shifts ** 2)))
    assert d['rmsd_forces'] == pytest.approx(0.1)
    with pytest.raises(ValueError, match='same configurations'):
        reference_differences(first, second[:2])


def test_attach_cp2k_labels_refuses_single_points_of_different_references():
    """Two single points labelled with different CP2K settings cannot make one set."""
    originals = nacl_configurations(2)
    labelled = {}
    for i, reference in enumerate((cp2k_reference('fast'), cp2k_reference('fast', {'FORCE_EVAL': {'DFT': {
            'MGRID': {'CUTOFF': 600}}}}))):
        atoms = originals[i].copy()
        atoms.info = {'energy': -1.0, 'virial': np.zeros((3, 3))}
        atoms.arrays['forces'] = np.zeros((len(atoms), 3))
        labelled[f'c{i}'] = TrainingSetData.from_atoms([atoms], reference=reference)
    with pytest.raises(ValueError, match=r'mixed references: c0: cp2k fast: .*300 Ry .*; c1: cp2k fast: .*600 Ry'):
        attach_cp2k_labels(TrainingSetData.from_atoms(originals), failures=orm.Dict({}), **labelled)


def test_label_reference_of_the_labeller_inputs(lammps_code, cp2k_code):
    """``label_reference``: the potential's reference for lammps; protocol (default fast) and overrides for cp2k."""
    from aiida_mlfail.workflows.references import label_reference

    wolf = {'name': 'bmhtf_wolf', 'parameters': {'alpha': 0.2}}
    wolf_inputs = {'lammps': {'potential': orm.Dict(wolf), 'job': {'code': lammps_code}}}
    assert label_reference(wolf_inputs) == lammps_reference(wolf)
    assert label_reference({'cp2k': {'code': cp2k_code}}) == cp2k_reference('fast')
    overrides = {'FORCE_EVAL': {'DFT': {'MGRID': {'CUTOFF': 600}}}}
    assert label_reference({'cp2k': {'code': cp2k_code, 'protocol': orm.Str('moderate'),
                                     'overrides': orm.Dict(overrides)}}) == cp2k_reference('moderate', overrides)
    with pytest.raises(ValueError, match='exactly one reference'):
        label_reference({})


def test_cp2k_namespace_keeps_the_single_point_validator(monkeypatch, tmp_path):
    """The exposed single point keeps its own namespace validator; it skips the species check of the excluded
    ``structure`` (``port_excluded``) instead of being switched off."""
    from aiida_mlfail.workflows.cp2k import Cp2kSinglePointWorkChain

    (tmp_path / 'BASIS_MOLOPT').write_text(' Na SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q9\n')
    (tmp_path / 'GTH_POTENTIALS').write_text('Na GTH-PBE-q9 GTH-PBE\nCl GTH-PBE-q7 GTH-PBE\n')
    monkeypatch.setenv('CP2K_DATA_DIR', str(tmp_path))
    namespace = LabelWorkChain.spec().inputs['cp2k']
    validator = Cp2kSinglePointWorkChain.spec().inputs.validator
    assert namespace.validator is validator and 'structure' not in namespace
    value = {'structure': orm.StructureData(ase=nacl_configurations(1)[0]), 'protocol': orm.Str('fast')}
    # on the single point itself the species check runs (no Cl basis in this data directory) ...
    assert 'no basis set for Cl' in str(validator(value, Cp2kSinglePointWorkChain.spec().inputs))
    # ... inside the labeller, where `structure` is excluded, it is skipped (the labeller checks the species)
    assert validator(value, namespace) is None
