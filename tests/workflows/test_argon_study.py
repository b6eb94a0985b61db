"""The builders of the argon study (``workflows/argon.py``) at every size pass the WorkChains' submit-time checks
and carry the thesis's argon setup (no program runs; ``tests/integration/test_argon_study.py`` runs the tiny size)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from ase.calculators.lj import LennardJones

from aiida_mlfail.data.training_set import TrainingSetData
from aiida_mlfail.science.potentials import LJ_ARGON
from aiida_mlfail.science.references import lammps_reference
from aiida_mlfail.science.structures import from_spec
from aiida_mlfail.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlfail.workflows.config_space import ConfigSpaceWorkChain
from aiida_mlfail.workflows.cp2k_aimd import Cp2kAimdWorkChain
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.helpers import load_study


@pytest.fixture(scope='module')
def study():
    return load_study('argon')


@pytest.fixture
def codes(lammps_code, gap_fit_code, quip_code, explore_code, rematch_code, cp2k_code):
    return {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code,
            'rematch': rematch_code, 'cp2k': cp2k_code}


def lj_frames(study, n_cells: int, n: int) -> list:
    """``n`` random liquid argon cells of the study's density labelled with ASE's Lennard-Jones (the preset's epsilon
    and sigma, 13 Å cutoff): energy (eV), forces (eV/Å), virial (eV)."""
    frames = []
    for seed in range(n):
        spec = {**study.argon_spec(n_cells), 'seed': seed}
        atoms = from_spec(spec)
        atoms.calc = LennardJones(epsilon=LJ_ARGON['epsilon'], sigma=LJ_ARGON['sigma'], rc=13.0)
        atoms.info['energy'] = atoms.get_potential_energy()
        atoms.arrays['forces'] = atoms.get_forces()
        stress = atoms.get_stress(voigt=False)
        atoms.info['virial'] = -stress * atoms.get_volume()
        atoms.info['md_step'] = seed
        atoms.calc = None
        frames.append(atoms)
    return frames


def test_the_start_structures_are_the_thesis_density(study):
    for start in ('liquid', 'fcc'):
        atoms = from_spec(study.argon_spec(3, start))
        assert len(atoms) == 108 and set(atoms.get_chemical_symbols()) == {'Ar'}
        np.testing.assert_allclose(atoms.cell.lengths(), 17.042, rtol=1e-9)
    liquid = from_spec(study.argon_spec(2))
    assert len(liquid) == 32 and liquid.get_all_distances(mic=True)[np.triu_indices(32, 1)].min() >= study.MIN_DISTANCE
    with pytest.raises(ValueError, match="start must be 'liquid' or 'fcc', got 'bcc'"):
        study.argon_spec(3, 'bcc')


@pytest.mark.parametrize('size', ['tiny', 'small', 'large'])
def test_argon_study_builders_pass_the_submit_time_checks(size, study, codes):
    s = study.SIZES[size]
    reference = lammps_reference(study.REFERENCE)
    frames = lj_frames(study, s['n_cells'], 24)
    training_set = TrainingSetData.from_atoms(frames[:12], reference=reference)
    validation_set = TrainingSetData.from_atoms(frames[12:], reference=reference)
    start = frames[0]

    sampling = study.sampling_builder(codes, size, orm.StructureData(ase=start))
    assert ClassicalSamplingWorkChain.spec().inputs.validate(sampling._inputs(prune=True)) is None
    md = sampling.md.get_dict()
    assert (md['timestep'], md['thermostat_damping'], md['barostat_damping']) == (10.0, 1000.0, 10000.0)
    (point,) = sampling.state_points.get_list()
    assert point['temperature'] == 85.0 and point['volume'] == pytest.approx(start.get_volume())
    assert sampling.potential.get_dict() == {'name': 'lj_argon'}

    gap = study.gap_builder(codes, size, training_set, validation_set)
    if s['gap']['soap_sparse'] <= 12 * len(start):  # (large: 1000 sparse points need more environments than here)
        assert GapWorkChain.spec().inputs.validate(gap._inputs(prune=True)) is None
    descriptors = gap.fit.job.parameters['descriptors']
    assert [(d['type'], d['cutoff']) for d in descriptors] == [('distance_2b', s['gap']['cutoff']),
                                                               ('soap', s['gap']['cutoff'])]
    assert (descriptors[0]['Z1'], descriptors[0]['Z2'], descriptors[1]['species_Z']) == (18, 18, [18])
    assert gap.fit.job.parameters['sigma'] == study.SIGMA

    learner = study.active_learning_builder(codes, size, training_set, validation_set, start, 0.99)
    inputs = learner._inputs(prune=True)
    assert 'sampling' not in inputs
    if s['gap']['soap_sparse'] <= 12 * len(start):
        assert ActiveLearningWorkChain.spec().inputs.validate(inputs) is None
    explore = learner.explore.job.parameters.get_dict()
    assert (explore['ensemble'], explore['temperature'], explore['pressure'], explore['timestep']) == (
        'NPT', 85.0, 1.0, 10.0)
    assert explore['critical_similarity'] == 0.99 and explore['soap'] == s['active_learning']['soap']
    assert learner.label.lammps.potential.get_dict() == {'name': 'lj_argon'}
    assert learner.gap.fit.job.parameters['descriptors'] == descriptors

    aimd = study.aimd_builder(codes, size, from_spec(study.argon_spec(s['aimd']['n_cells'])))
    assert Cp2kAimdWorkChain.spec().inputs.validate(aimd._inputs(prune=True)) is None
    assert (aimd.protocol.value, aimd.steps.value, aimd.timestep.value) == (
        s['aimd']['protocol'], s['aimd']['steps'], 10.0)
    xc = aimd.overrides['FORCE_EVAL']['DFT']['XC']
    assert xc['VDW_POTENTIAL']['NON_LOCAL']['TYPE'] == 'RVV10'
    assert set(xc['XC_FUNCTIONAL']) >= {'GGA_X_RPW86', 'GGA_C_PBE'}

    for builder in (study.config_space_builder(codes, size, validation_set, training_set),
                    study.calibration_builder(codes, size, training_set, validation_set)):
        assert ConfigSpaceWorkChain.spec().inputs.validate(builder._inputs(prune=True)) is None


def test_critical_similarity_is_the_worst_nearest_neighbour(study):
    # D = sqrt(2 - 2K): the largest nearest-neighbour distance 0.01 is K = 0.99995; 0.0026 is 0.99999662 (1e-8 down)
    assert study.critical_similarity({'nearest_neighbour': {'max': 0.01}}) == pytest.approx(0.99995, abs=1e-12)
    assert study.critical_similarity({'nearest_neighbour': {'max': 0.1}}) == pytest.approx(0.995, abs=1e-12)
    assert study.critical_similarity({'nearest_neighbour': {'max': 0.0026}}) == pytest.approx(0.99999662, abs=1e-12)
