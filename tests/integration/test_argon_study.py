"""The argon study (``workflows/argon.py``) end to end at its ``tiny`` size, with the real programs: Lennard-Jones
sampling of 32 argon atoms (LAMMPS), a GAP (gap_fit, quip), GAP-MD with the Lennard-Jones rerun, active learning
with Lennard-Jones labels (explorer), a 4-atom CP2K AIMD with rVV10 and the REMatch configuration space of the
AIMD against a classical trajectory. Runs in CI (CP2K included; a missing cp2k.psmp fails there)."""

import json
import math

import pytest

from tests.helpers import load_study

pytestmark = pytest.mark.integration


def test_argon_study_runs_end_to_end_at_tiny_size(tmp_path, lammps_code, gap_fit_code, quip_code, explore_code,
                                                  rematch_code, cp2k_code):
    study = load_study('argon')
    codes = {'lammps': lammps_code, 'gap_fit': gap_fit_code, 'quip': quip_code, 'explore': explore_code,
             'rematch': rematch_code, 'cp2k': cp2k_code}
    summary = study.run_study(codes, 'tiny', tmp_path)

    # 1. the thesis's density (0.02181 atoms/Å^3) in the 32-atom cell, 21 frames of the 85 K liquid with LJ labels
    sampling = summary['sampling']
    assert (sampling['n_atoms'], sampling['frames']) == (32, 21)
    assert 60 < sampling['thermo']['temperature']['mean'] < 120  # production run, 85 K thermostat
    # Lennard-Jones argon: a few hundredths of an eV per atom of cohesion (epsilon = 0.0103 eV, ~12 neighbours)
    assert -0.09 < sampling['energy_per_atom_eV'] < -0.04
    rms_force = sampling['forces_rms_eV_A']
    assert 0.01 < rms_force < 0.1

    # 2. the GAP against LJ labels it was not trained on: finite, and far better than the spread of the data
    gap = summary['gap']['metrics']
    for quantity in ('energy', 'forces', 'virial'):
        assert math.isfinite(gap[quantity]['rmse']), quantity
    assert gap['energy']['rmse'] < 0.002  # eV/atom
    assert gap['forces']['rmse'] < 0.3 * rms_force  # eV/Å
    assert all('Z1=18 Z2=18' in d or 'species_Z={18}' in d for d in summary['gap']['descriptors'])

    # 3. GAP-MD (NVT, 100 steps of 10 fs) stays stable; its frames, rerun with LJ, keep the validation accuracy
    mlmd = summary['mlmd']
    assert mlmd['stop_reason'] == 'completed' and mlmd['stable']
    assert len(mlmd['errors_along']) == 4
    for block in mlmd['errors_along']:
        assert 0 < block['energy_rmse_meV_atom'] < 5
        assert 0 < block['forces_rmse_meV_A'] < 300 * rms_force
    assert mlmd['gap_vs_rerun']['forces']['rmse'] < 0.3 * rms_force
    pressure = mlmd['pressure_bar']
    assert abs(pressure['ML run']['mean_bar'] - pressure['rerun']['mean_bar']) < 300

    # 4. the active learner converges in its first exploration (measured: no flag in the 40 steps of the deterministic
    #    explorer at 0.998, nothing added)
    learner = summary['active_learning']
    assert (learner['exit_status'], learner['outcome']) == (0, 'converged')
    added = sum(row['added'] for row in learner['iterations'])
    assert learner['training_set'] == [summary['gap']['training'], summary['gap']['training'] + added]

    # 5. configuration space: 3 AIMD frames (2 steps) of 4 atoms against the 21 classical frames of the same cell
    space = summary['config_space']
    assert space['n_atoms'] == 4 and space['frames'] == {'x': 3, 'y': 21}
    assert all(math.isfinite(e) for e in space['aimd_energy_eV'])
    nn = space['nearest_neighbour']
    assert 0 <= nn['min'] <= nn['median'] <= nn['max'] <= math.sqrt(2)
    for name in ('distance_to_first_plot_tiny.png', 'nearest_neighbour_plot_tiny.png', 'parity_tiny.png',
                 'forensics_tiny.png', 'active_learning_tiny.png'):
        assert (tmp_path / name).read_bytes()[:4] == b'\x89PNG', name

    written = json.loads((tmp_path / 'argon_tiny.json').read_text())
    assert written['seconds']['total'] > 0 and written['gap']['pk'] == summary['gap']['pk']
    print(f"argon study, tiny: {written['seconds']}")
