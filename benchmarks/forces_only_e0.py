"""Energy offset of a forces-only GAP with the least-squares e0 vs gap_fit's ``e0_method=average``.

Fits a small GAP (one ``distance_2b`` descriptor, cutoff 5 Å, 20 sparse points) to the forces of the 3 frames
of ``tests/fixtures/gap_fit_ok/training_set.xyz`` (64-ion molten NaCl, BMHTF labels) twice: with the e0 the
``mlfail.gap_fit`` job now passes (``science.gap.least_squares_e0``) and with gap_fit's ``average`` (which sees
no energies when they are not trained on). Prints the mean offset (GAP - reference, eV/atom) and the RMSE with
the offset removed, predicting the same frames with quippy. Runs in a temporary folder in about 10 s::

    python benchmarks/forces_only_e0.py
"""

import pathlib
import shutil
import subprocess
import tempfile

import quippy

from aiida_mlfail.science import extxyz, gap

FIXTURE = pathlib.Path(__file__).parents[1] / 'tests' / 'fixtures' / 'gap_fit_ok' / 'training_set.xyz'
DESCRIPTOR = {'type': 'distance_2b', 'cutoff': 5.0, 'delta': 1.0, 'n_sparse': 20, 'theta_uniform': 1.0,
              'covariance_type': 'ard_se', 'sparse_method': 'uniform'}


def main():
    frames = extxyz.read_configurations(str(FIXTURE))
    parameters = gap.normalise_fit_parameters({'descriptors': [DESCRIPTOR], 'train_on': ['forces']})
    e0 = gap.least_squares_e0(frames)
    print(f'e0 method for a forces-only fit: {gap.effective_e0_method(parameters, ["energy", "forces"])}; '
          f'least-squares e0 (eV): {e0}')
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(FIXTURE, pathlib.Path(folder) / 'training_set.xyz')
        for name, given in (('least-squares e0', e0), ("gap_fit's average", None)):
            words = gap.gap_fit_arguments(parameters, 'training_set.xyz', 'gap.xml', e0=given)
            subprocess.run(['gap_fit', *words], cwd=folder, check=True, capture_output=True)
            potential = quippy.potential.Potential(param_filename=str(pathlib.Path(folder) / 'gap.xml'))
            predicted = []
            for atoms in frames:
                copy = atoms.copy()
                copy.calc = potential
                predicted.append(copy.get_potential_energy() / len(copy))
            m = gap.energy_offset_metrics([a.info['energy'] / len(a) for a in frames], predicted)
            print(f"{name}: offset {m['offset']:+.3f} eV/atom, RMSE without the offset "
                  f"{1000 * m['rmse_offset_removed']:.1f} meV/atom")


if __name__ == '__main__':
    main()
