"""Per-species least-squares e0 for GAPs trained without energies, and energy errors without the constant offset
(science.gap)."""

import numpy as np
import pytest
from ase import Atoms

from aiida_mlfail.science import gap


def _mixture(compositions, e0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for n_na, n_cl in compositions:
        atoms = Atoms('Na' * n_na + 'Cl' * n_cl, positions=np.zeros((n_na + n_cl, 3)), cell=[9, 9, 9], pbc=True)
        atoms.info['energy'] = n_na * e0['Na'] + n_cl * e0['Cl'] + rng.normal(0.0, noise)
        frames.append(atoms)
    return frames


def test_least_squares_e0_recovers_per_species_energies_from_varied_compositions():
    frames = _mixture([(32, 32), (30, 34), (36, 28), (20, 44)], {'Na': -1.25, 'Cl': -2.5}, noise=0.01)
    e0 = gap.least_squares_e0(iter(frames))  # any iterable, read once
    assert list(e0) == ['Cl', 'Na']
    assert e0['Na'] == pytest.approx(-1.25, abs=0.01) and e0['Cl'] == pytest.approx(-2.5, abs=0.01)


def test_one_stoichiometry_gives_the_mean_energy_per_atom_to_each_species():
    frames = _mixture([(32, 32)] * 3, {'Na': -1.0, 'Cl': -3.0})
    e0 = gap.least_squares_e0(frames)
    assert e0['Na'] == pytest.approx(-2.0) and e0['Cl'] == pytest.approx(-2.0)  # minimum-norm: gap_fit's average
    del frames[1].info['energy']
    with pytest.raises(ValueError, match='configuration 1 has none'):
        gap.least_squares_e0(frames)


def test_fits_without_energies_get_least_squares_e0_on_the_command_line():
    descriptors = [{'type': 'distance_2b', 'cutoff': 5.0, 'delta': 1.0, 'n_sparse': 20}]
    forces_only = gap.normalise_fit_parameters({'descriptors': descriptors, 'train_on': ['forces']})
    assert gap.effective_e0_method(forces_only, ['energy', 'forces']) == 'least_squares'
    assert gap.effective_e0_method(forces_only, ['forces']) == 'average'  # no energies: nothing to fit
    virials_only = gap.normalise_fit_parameters({'descriptors': descriptors, 'train_on': ['virial']})
    assert gap.effective_e0_method(virials_only, ['energy', 'virial']) == 'least_squares'
    with_energy = gap.normalise_fit_parameters({'descriptors': descriptors})
    assert gap.effective_e0_method(with_energy, ['energy', 'forces', 'virial']) == 'average'
    isolated = gap.normalise_fit_parameters({'descriptors': descriptors, 'train_on': ['forces'],
                                             'e0_method': 'isolated'})
    assert gap.effective_e0_method(isolated, ['energy', 'forces']) == 'isolated'  # the user's choice stands
    words = gap.gap_fit_arguments(forces_only, 'train.xyz', 'gap.xml', e0={'Cl': -2.5, 'Na': -1.25})
    assert 'e0={Cl:-2.5:Na:-1.25}' in words and not any(w.startswith('e0_method=') for w in words)
    least = gap.normalise_fit_parameters({'descriptors': descriptors, 'e0_method': 'least_squares'})
    with pytest.raises(ValueError, match='least_squares needs the per-species e0'):
        gap.gap_fit_arguments(least, 'train.xyz', 'gap.xml')
    with pytest.raises(ValueError, match='e0_method'):
        gap.normalise_fit_parameters({'descriptors': descriptors, 'e0_method': 'lstsq'})


def test_energy_errors_without_the_constant_offset():
    reference = np.linspace(-3.7, -3.5, 50)
    noise = np.random.default_rng(1).normal(0.0, 0.002, 50)
    predicted = reference - 1.16 + noise  # a forces-only GAP: right up to a constant
    m = gap.energy_offset_metrics(reference, predicted)
    assert m['offset'] == pytest.approx(-1.16, abs=1e-3)
    assert m['rmse_offset_removed'] == pytest.approx(np.std(noise), rel=1e-9)
    assert gap.error_metrics(reference, predicted)['rmse'] > 1.15 > 100 * m['rmse_offset_removed']
