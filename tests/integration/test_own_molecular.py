"""A molecular force field through the daemon (issue 15): flexible SPC/Fw water (``atom_style full``, topology from
``examples/water/water.data``, 16 molecules) sampled by ``mlfail.sample``, a tiny O/H GAP fitted by ``mlfail.gap``
and run by ``mlfail.mlmd`` with the water reference rerunning its frames (the code path of ``mlfail.label``'s
single points too: ``calculations.functions.lammps_inputs._rerun_inputs``). User inputs only: the reference of
``examples/water/water.yaml``."""

import time

import numpy as np
import pytest

from aiida_mlfail.science.gap_descriptors import default_descriptors
from aiida_mlfail.science.structures import structure_from_data_file
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.helpers import lammps_jobs
from tests.science.test_topology import WATER_DATA, water_reference

pytestmark = pytest.mark.integration


def water() -> dict:
    """The water reference as a user gives it to a builder (``files``: name -> path)."""
    return {**water_reference(), 'files': {'water.data': str(WATER_DATA)}}


def bonds_and_angles(atoms):
    """O-H distances (Å) and H-O-H angles (degrees) of the 16 molecules (atoms O, H, H per molecule)."""
    distances = [atoms.get_distance(3 * m, 3 * m + k, mic=True) for m in range(16) for k in (1, 2)]
    angles = [atoms.get_angle(3 * m + 1, 3 * m, 3 * m + 2, mic=True) for m in range(16)]
    return np.array(distances), np.array(angles)


def test_water_sampled_fitted_and_run_with_its_topology(submit_and_await, lammps_code, gap_fit_code,
                                                                 quip_code):
    structure = structure_from_data_file(WATER_DATA, ['O', 'H'])
    builder = ClassicalSamplingWorkChain.get_builder_from_protocol(
        lammps_code, structure, reference=water(),
        state_points=[{'temperature': 300.0, 'volume': structure.get_volume(), 'label': 'water'}],
        overrides={'md': {'timestep': 0.5, 'equilibration_steps': 200, 'production_steps': 300,
                          'sampling_interval': 50, 'thermo_interval': 50, 'seed': 3}})
    start = time.perf_counter()
    sampling = submit_and_await(builder, timeout=600)
    print(f'sampling {time.perf_counter() - start:.1f} s')
    assert sampling.is_finished_ok, sampling.exit_message
    pool = sampling.outputs.pool
    frames = pool.get_atoms()
    assert len(frames) == 7  # steps 200, 250, ..., 500
    assert pool.reference['label'] == 'lammps O-H (pair_style lj/cut/coul/long 7.0; files water.data)'
    # the topology is kept: every molecule stays a bent O-H-H at the SPC/Fw geometry (1.012 Å, 113.24°)
    for atoms in frames:
        distances, angles = bonds_and_angles(atoms)
        assert 0.9 < distances.min() and distances.max() < 1.15, distances
        assert 80.0 < angles.min() and angles.max() < 145.0, angles  # ~10° thermal spread at 300 K
    energies = np.array([a.info['energy'] for a in frames])
    assert np.all(np.isfinite(energies)) and np.all(energies < 0)  # bound: Coulomb + bonds, not flying apart
    job = lammps_jobs(sampling)[0]
    assert job.inputs.files.potential_water_data.get_content() == WATER_DATA.read_text()
    assert job.inputs.files.structure.filename == 'start.dump'
    assert 'read_data water.data\nread_dump start.dump 0 x y z ix iy iz box yes\n' in job.inputs.script.get_content()
    assert 'Inconsistent image flags' not in job.outputs.retrieved.base.repository.get_object_content('lammps.out')

    gap_builder = GapWorkChain.get_builder_from_protocol(
        {'gap_fit': gap_fit_code, 'quip': quip_code}, pool,
        overrides={'selection': {'n': 7}, 'split': {'train_fraction': 0.7}})
    parameters = gap_builder.fit.job.parameters.get_dict()
    parameters['descriptors'] = default_descriptors(['O', 'H'], 3.5, n_sparse_2b=10, n_sparse_soap=20)
    gap_builder.fit.job.parameters = type(gap_builder.fit.job.parameters)(parameters)
    start = time.perf_counter()
    gap = submit_and_await(gap_builder, timeout=600)
    print(f'gap {time.perf_counter() - start:.1f} s')
    assert gap.is_finished_ok, gap.exit_message
    assert set(gap.outputs.potential.species) == {'O', 'H'}

    md_builder = MLMDWorkChain.get_builder_from_protocol(
        lammps_code, gap.outputs.potential, frames[-1], reference=water(),
        overrides={'parameters': {'ensemble': 'NVT', 'temperature': 300.0, 'timestep': 0.5, 'steps': 20,
                                  'dump_interval': 5, 'thermo_interval': 5}})
    start = time.perf_counter()
    md = submit_and_await(md_builder, timeout=600)
    print(f'mlmd {time.perf_counter() - start:.1f} s')
    assert md.exit_status == 0, f'[{md.exit_status}] {md.exit_message}'
    trajectory = md.outputs.trajectory.get_atoms()
    rerun = md.outputs.rerun.get_atoms()
    assert len(rerun) == len(trajectory) >= 2
    rerun_energies = np.array([a.info['energy'] for a in rerun])
    gap_energies = np.array([a.info['energy'] for a in trajectory])
    assert np.all(np.isfinite(rerun_energies)) and np.all(np.isfinite(np.concatenate([a.arrays['forces']
                                                                                       for a in rerun])))
    # the rerun uses the topology: its first frame (step 0, the start structure = the last sampled frame) has the
    # energy and forces the sampling gave that frame (bonds, angles, excluded intramolecular Coulomb included)
    assert rerun[0].info['md_step'] == 0
    assert rerun_energies[0] == pytest.approx(frames[-1].info['energy'], abs=1e-4)
    np.testing.assert_allclose(rerun[0].arrays['forces'], frames[-1].arrays['forces'], atol=1e-3)
    # a GAP of 5 frames is not the reference: it differs from it by a sane amount (measured: 0.001 eV/atom at the
    # start frame, up to 0.26 eV/atom after 10 fs of its own dynamics)
    difference = np.abs(rerun_energies - gap_energies) / 48
    assert 0 < difference.max() < 1.0, difference
    rerun_job = [j for j in lammps_jobs(md) if 'rerun' in j.inputs.script.get_content()][0]
    assert 'read_data water.data' in rerun_job.inputs.script.get_content()
    screen = rerun_job.outputs.retrieved.base.repository.get_object_content('lammps.out')
    assert 'Inconsistent image flags' not in screen
