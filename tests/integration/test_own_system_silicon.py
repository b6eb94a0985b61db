"""Silicon with the Stillinger-Weber file, user inputs only (issue 15): 64 atoms of diamond Si sampled hot with
``pair_style sw`` (``mlfail.sample``), a tiny 2-body + SOAP GAP (``mlfail.gap``, descriptors of
``default_descriptors(['Si'], ...)``), and a few GAP-MD steps rerun with the SW reference (``mlfail.mlmd``).
The inputs are those of docs/source/tutorials/own_system.md ("Your own system: silicon with a
Stillinger-Weber file")."""

import time

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlfail.science.gap_descriptors import default_descriptors
from aiida_mlfail.science.structures import pair_min_distances
from aiida_mlfail.workflows.gap import GapWorkChain
from aiida_mlfail.workflows.mlmd import MLMDWorkChain
from aiida_mlfail.workflows.sample import ClassicalSamplingWorkChain
from tests.helpers import FIXTURES, lammps_jobs

pytestmark = pytest.mark.integration

SW_FILE = FIXTURES / 'sw_si' / 'Si.sw'
#: The reference of the tutorial, verbatim: LAMMPS's pair_style sw with the original parameters.
SW = {'name': 'lammps', 'species': ['Si'], 'atom_style': 'atomic',
      'commands': ['pair_style sw', 'pair_coeff * * Si.sw Si'],
      'files': {'Si.sw': str(SW_FILE)}}
#: Cohesive energy of SW diamond silicon at 0 K, 2 x epsilon (Stillinger and Weber 1985), eV/atom.
SW_CRYSTAL = -4.3366


def test_silicon_stillinger_weber_sample_fit_and_gap_md(submit_and_await, lammps_code, gap_fit_code, quip_code):
    start = time.perf_counter()
    structure = bulk('Si', 'diamond', a=5.431, cubic=True).repeat(2)  # 64 atoms
    sampling = submit_and_await(ClassicalSamplingWorkChain.get_builder_from_protocol(
        lammps_code, structure, reference=SW,
        state_points=[{'temperature': 1200.0, 'volume': structure.get_volume(), 'label': 'hot'}],
        overrides={'md': {'timestep': 1.0, 'equilibration_steps': 100, 'production_steps': 200,
                          'sampling_interval': 25, 'thermo_interval': 25, 'seed': 3}}), timeout=600)
    assert sampling.is_finished_ok, sampling.exit_message
    pool = sampling.outputs.pool
    assert pool.n_configurations == 9  # steps 100, 125, ..., 300
    frames = pool.get_atoms()
    energies = np.array([a.info['energy'] for a in frames]) / len(structure)
    forces = np.concatenate([a.arrays['forces'] for a in frames])
    assert np.all(np.isfinite(energies)) and np.all(np.isfinite(forces))
    # a hot crystal: above the 0 K cohesive energy by about the potential part of the thermal energy
    # (3/2 kT = 0.16 eV/atom at 1200 K), far from the melt or a broken file
    assert SW_CRYSTAL < energies.min() and energies.max() < SW_CRYSTAL + 0.35
    assert 0.1 < np.abs(forces).mean() < 3.0  # eV/Å
    file_node = sampling.inputs.potential_files.Si_sw
    assert file_node.filename == 'Si.sw' and file_node.get_content() == SW_FILE.read_text()
    jobs = lammps_jobs(sampling)
    assert jobs and all(job.inputs.files.potential_Si_sw.uuid == file_node.uuid for job in jobs)
    assert 'pair_coeff * * Si.sw Si' in jobs[0].inputs.script.get_content()

    gap_builder = GapWorkChain.get_builder_from_protocol({'gap_fit': gap_fit_code, 'quip': quip_code}, pool,
                                                         overrides={'selection': None})
    descriptors = default_descriptors(['Si'], 4.0, n_sparse_2b=10, n_sparse_soap=30)
    gap_builder.fit.job.parameters = orm.Dict({'descriptors': descriptors, 'train_on': ['energy', 'forces'],
                                               'sigma': {'energy': 0.002, 'forces': 0.05, 'virial': 0.05}})
    gap = submit_and_await(gap_builder, timeout=600)
    assert gap.is_finished_ok, gap.exit_message
    metrics = gap.outputs.metrics.get_dict()
    assert gap.outputs.potential.species == ['Si']
    assert np.isfinite(metrics['energy']['rmse']) and np.isfinite(metrics['forces']['rmse'])
    assert metrics['energy']['rmse'] < 0.05  # eV/atom, on held-out frames of the same run
    assert metrics['forces']['rmse'] < 0.2 * np.sqrt(np.mean(forces**2))  # well below the force scale itself

    md_builder = MLMDWorkChain.get_builder_from_protocol(
        lammps_code, gap.outputs.potential, frames[-1], reference=SW,
        overrides={'parameters': {'ensemble': 'NVT', 'temperature': 1200.0, 'timestep': 1.0, 'steps': 20,
                                  'dump_interval': 5, 'thermo_interval': 5}})
    md = submit_and_await(md_builder, timeout=600)
    assert md.is_finished_ok, md.exit_message
    assert md.outputs.stop['stop_reason'] == 'completed'
    trajectory, rerun = md.outputs.trajectory.get_atoms(), md.outputs.rerun.get_atoms()
    assert [a.info['md_step'] for a in trajectory] == [0, 5, 10, 15, 20] == [a.info['md_step'] for a in rerun]
    gap_e = np.array([a.info['energy'] for a in trajectory]) / len(structure)
    sw_e = np.array([a.info['energy'] for a in rerun]) / len(structure)
    assert np.all(np.abs(sw_e - SW_CRYSTAL) < 0.35) and np.all(np.abs(gap_e - sw_e) < 0.05)
    summary = md.outputs.summary.get_dict()
    assert np.isfinite(summary['gap_vs_rerun']['forces']['rmse'])
    assert md.inputs.reference.potential_files.Si_sw.get_content() == SW_FILE.read_text()
    # the distance guard from the GAP's training set: 0.35 x its shortest Si-Si distance
    shortest = pair_min_distances(gap.outputs.training_set.get_atoms())[('Si', 'Si')]
    assert md.outputs.guard_distances['min_distance'] == {'Si-Si': pytest.approx(0.35 * shortest)}
    assert md.outputs.guard_distances['source'] == f'training set <{gap.outputs.training_set.uuid}>'
    print(f"Si SW: pool E/atom {energies.min():.3f}..{energies.max():.3f} eV; GAP validation E RMSE "
          f"{metrics['energy']['rmse']:.4f} eV/atom, F RMSE {metrics['forces']['rmse']:.3f} eV/Å; GAP-MD "
          f"E/atom {gap_e.mean():.3f}, SW rerun {sw_e.mean():.3f}, GAP vs rerun F RMSE "
          f"{summary['gap_vs_rerun']['forces']['rmse']:.3f} eV/Å; guard Si-Si {0.35 * shortest:.3f} Å; "
          f'{time.perf_counter() - start:.1f} s from the first submit to the end of the GAP-MD')
