"""Benchmark the ``mlfail-lmp`` GAP bridge (LAMMPS ``fix external`` + quippy) against ASE's MD driver and
against quippy's bare evaluation (the floor), at several sizes.

All integrate NVE (velocity Verlet, 1 fs) of the same rattled rocksalt NaCl cell at 300 K with the same
quippy ``Potential`` (the tiny test GAP in ``tests/fixtures/bridge``). Per size it prints steps per second
of the bridge, of ASE's ``VelocityVerlet`` and of bare quippy (``Potential.calculate`` of energy and forces
on moved positions, called as the bridge calls it, no MD: the most any driver could reach), the ratios bridge / ASE and
bridge / floor, and the share of the bridge's wall time spent outside quippy's ``calculate`` (LAMMPS
integration, neighbour lists, the callback's own work). The sizes are rocksalt cubes: 64 (2^3 cells),
216 (3^3, the nearest to 200) and 1000 (5^3) ions. Not a test; a few minutes on one core::

    .venv/bin/python benchmarks/gap_bridge.py [--steps 200] [--sizes 64 216 1000]

``--steps`` is the number at 64 ions; larger cells run ``steps x 64 / N`` (at least 10).
Note: the bridge asks quippy for the virial and per-atom quantities only on the steps LAMMPS needs them
(thermo output here, every 50 steps); otherwise, like ASE's driver, for energy and forces.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
GAP_XML = ROOT / 'tests' / 'fixtures' / 'bridge' / 'gap.xml'


def make_atoms(n_ions: int = 64):
    """A rattled rocksalt NaCl cube of ``n_ions`` = 8 k^3 ions."""
    from ase.build import bulk

    k = round((n_ions / 8) ** (1 / 3))
    if 8 * k**3 != n_ions:
        raise ValueError(f'{n_ions} ions is not a rocksalt cube (8 k^3: 64, 216, 512, 1000, ...)')
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True).repeat((k, k, k))
    atoms.rattle(0.05, seed=11)
    return atoms


def bench_bridge(atoms, steps: int) -> tuple[float, float, int]:
    """Steps/s of the bridge, fraction of the run's wall time outside quippy, quippy calls in the run."""
    from ase.io import write

    from aiida_mlfail.engines.gap_bridge import ScriptRunner
    from aiida_mlfail.engines.lammps_lib import new_lammps

    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            write('frame.data', atoms, format='lammps-data', specorder=['Na', 'Cl'], masses=True,
                  atom_style='atomic')
            pathlib.Path('in.setup').write_text(f"""units metal
atom_style atomic
read_data frame.data
pair_style quip
pair_coeff * * {GAP_XML} "IP GAP" 11 17
velocity all create 300 4711 mom yes rot yes
timestep 0.001
fix 1 all nve
thermo 50
run 0
""")
            lmp = new_lammps(['-log', 'none', '-screen', 'none'])
            try:
                runner = ScriptRunner(lmp)
                runner.run_file('in.setup')
                callback = runner.callback
                quip0, calls0 = callback.time_quip, callback.ncalls
                start = time.perf_counter()
                lmp.command(f'run {steps}')
                wall = time.perf_counter() - start
                quip, calls = callback.time_quip - quip0, callback.ncalls - calls0
            finally:
                lmp.close()
        finally:
            os.chdir(cwd)
    return steps / wall, 1.0 - quip / wall, calls


def bench_ase(atoms, steps: int) -> float:
    import numpy as np
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from quippy.potential import Potential

    atoms = atoms.copy()
    atoms.calc = Potential('IP GAP', param_filename=str(GAP_XML))
    masses = atoms.get_masses()[:, None]
    momenta = np.random.default_rng(4711).normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * 300)
    atoms.set_momenta(momenta - masses * momenta.sum(axis=0) / masses.sum())  # 300 K, no drift
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.run(1)  # first evaluation outside the timing, like the bridge's run 0
    start = time.perf_counter()
    dyn.run(steps)
    return steps / (time.perf_counter() - start)


def bench_quippy(atoms, calls: int) -> float:
    """Bare quippy evaluations per second (energy and forces) of ``atoms`` moved a little before each."""
    import numpy as np
    from quippy.potential import Potential

    atoms = atoms.copy()
    potential = Potential('IP GAP', param_filename=str(GAP_XML))
    rng = np.random.default_rng(5)
    changes = ['positions', 'numbers', 'cell', 'pbc']
    potential.calculate(atoms, properties=['energy', 'forces'], system_changes=changes)  # set-up, not timed
    start = time.perf_counter()
    for _ in range(calls):
        atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)
        potential.calculate(atoms, properties=['energy', 'forces'], system_changes=changes)
    return calls / (time.perf_counter() - start)


def main() -> None:
    from tabulate import tabulate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=200, help='NVE steps at 64 ions (fewer for larger cells)')
    parser.add_argument('--sizes', type=int, nargs='+', default=[64, 216, 1000])
    args = parser.parse_args()
    rows = []
    for n_ions in args.sizes:
        atoms = make_atoms(n_ions)
        steps = max(10, args.steps * 64 // n_ions)
        bridge, outside, calls = bench_bridge(atoms, steps)
        ase_rate = bench_ase(atoms, steps)
        floor = bench_quippy(atoms, steps)
        rows.append([n_ions, steps, f'{bridge:.2f}', f'{ase_rate:.2f}', f'{floor:.2f}', f'{bridge / ase_rate:.3f}',
                     f'{bridge / floor:.3f}', f'{100 * outside:.1f}'])
        print(f'{n_ions} ions: {steps} NVE steps, {calls} quippy calls in the bridge run', flush=True)
    print(tabulate(rows, headers=['ions', 'steps', 'bridge steps/s', 'ASE steps/s', 'bare quippy evals/s (floor)',
                                  'bridge / ASE', 'bridge / floor', '% bridge time outside quippy']))


if __name__ == '__main__':
    main()
