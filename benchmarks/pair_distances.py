"""The shortest distance of every species pair over a training set (``science.structures.pair_min_distances``),
which resolves the distance guards of GAP-MD (``prepare_mlmd``, a calcfunction in the daemon) and the outlier
screen of the active learner (``screen_configurations``).

Named baseline "one search per configuration": each configuration searched on its own (the neighbour cutoff
starts at 3 Å and doubles until every species pair present is found) and the minima combined; this was the
algorithm before issue 16. The current one carries the shortest distances found so far into the next
configuration: a pair farther apart than its bound cannot lower it, so one neighbour list out to the largest
bound decides each later configuration. Both give identical numbers (checked here). Prints, for N rattled
216-ion NaCl configurations, the wall time of both and the ratio. Not a test::

    .venv/bin/python benchmarks/pair_distances.py [--sizes 50 500] [--ions 216]
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> None:
    from ase.build import bulk
    from tabulate import tabulate

    from aiida_mlfail.science.structures import pair_min_distances

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[50, 500])
    parser.add_argument('--repeat', type=int, default=3, help='rock-salt cubic cells per edge (3: 216 ions)')
    args = parser.parse_args(argv)
    crystal = bulk('NaCl', 'rocksalt', a=5.8, cubic=True).repeat(args.repeat)
    rows = []
    for size in args.sizes:
        configurations = []
        for seed in range(size):
            atoms = crystal.copy()
            atoms.rattle(0.2, seed=seed)
            configurations.append(atoms)
        start = time.perf_counter()
        combined = {}
        for atoms in configurations:
            for pair, distance in pair_min_distances([atoms]).items():
                combined[pair] = min(combined.get(pair, distance), distance)
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        current = pair_min_distances(configurations)
        now = time.perf_counter() - start
        if current != combined:
            raise SystemExit(f'results differ: {current} != {combined}')
        rows.append([size, len(crystal), f'{baseline:.2f}', f'{now:.2f}', f'{baseline / now:.1f}'])
    print(tabulate(rows, headers=['configurations', 'ions', 'baseline s', 'now s', 'speed-up'], tablefmt='simple'))


if __name__ == '__main__':
    main()
