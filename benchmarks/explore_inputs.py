"""What the daemon does to submit one exploration: ``science.explore.job_files`` (called by
``ExploreCalculation.prepare_for_submission``, inside a daemon worker) against the named baseline
"physics in the daemon": there, the SOAP spectra of the whole training set were computed and shipped as an
``.npz``, and the distance guard of every species pair was resolved from the training set's neighbour lists
(the explorer's inputs before issue 16; ``science.soap.normalised_features``, ``science.mlmd.guard_distances``).

The job now gets the training configurations as a bare extxyz and does both itself
(``science.explore.read_references``, ``engines.explore``). Prints, for training sets of N configurations
of 64 NaCl ions (the committed 1400 K frames, repeated), the daemon's wall time and the size of the file
shipped, for both, and their ratios. Not a test::

    .venv/bin/python benchmarks/explore_inputs.py [--sizes 50 200 500]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np


def baseline_npz(features) -> bytes:
    """The baseline's shipped file: every reference's SOAP matrix, stacked, as the old ``reference_soap.npz``."""
    buffer = io.BytesIO()
    np.savez(buffer, features=np.concatenate(features), counts=np.array([len(f) for f in features]))
    return buffer.getvalue()


def main(argv=None) -> None:
    from tabulate import tabulate

    from aiida_mlfail.science import explore as sx
    from aiida_mlfail.science import mlmd
    from aiida_mlfail.science.soap import normalised_features, soap_descriptor
    from tests.helpers import nacl_configurations

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[50, 200, 500])
    args = parser.parse_args(argv)
    frames = nacl_configurations(40)
    pair = ['pair_style zero 5.0', 'pair_coeff * *']
    rows = []
    for n in args.sizes:
        references = (frames * (n // len(frames) + 1))[:n]
        start = time.perf_counter()
        files = sx.job_files(references[0], ['Na', 'Cl'], pair, {}, references)
        now = time.perf_counter() - start
        soap = sx.read_engine_input(files[sx.INPUT_FILE].decode())['parameters']['soap']
        start = time.perf_counter()
        shipped = baseline_npz(normalised_features(soap_descriptor(soap), references))
        mlmd.guard_distances(None, ['Na', 'Cl'], references)
        baseline = time.perf_counter() - start + now  # the baseline did the rest of job_files too
        size, old_size = len(files[sx.REFERENCE_FILE]), len(shipped)
        rows.append([n, f'{baseline:.2f}', f'{now:.2f}', f'{baseline / now:.1f}', f'{old_size / 1e6:.1f}',
                     f'{size / 1e6:.2f}', f'{old_size / size:.0f}'])
    print(tabulate(rows, headers=['configurations (x64 ions)', 'daemon s: physics in the daemon (baseline)',
                                  'daemon s: now', 'ratio', 'MB shipped: baseline', 'MB shipped: now', 'ratio']))


if __name__ == '__main__':
    main()
