"""Benchmark the ``mlfail-lmp`` GAP bridge (LAMMPS ``fix external`` + quippy) against ASE's MD driver.

Both integrate NVE (velocity Verlet, 1 fs) of the same 64-ion rattled NaCl cell at 300 K with the
same quippy ``Potential`` (the tiny test GAP in ``tests/fixtures/bridge``). Prints steps per
second of each, their ratio, and the share of the bridge's wall time spent outside quippy's
``calculate`` (LAMMPS integration, neighbour lists, the callback's own work). Not a test; about a
minute on one core::

    .venv/bin/python benchmarks/gap_bridge.py [--steps 200]

Note: the bridge asks quippy for energy, forces, virial and per-atom energies/virials on every
step (what ``pair_style quip`` provides); ASE's driver only needs energy and forces.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
GAP_XML = ROOT / 'tests' / 'fixtures' / 'bridge' / 'gap.xml'


def make_atoms():
    from ase.build import bulk

    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True).repeat((2, 2, 2))  # 64 ions
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=200)
    args = parser.parse_args()
    atoms = make_atoms()
    bridge, outside, calls = bench_bridge(atoms, args.steps)
    ase_rate = bench_ase(atoms, args.steps)
    print(f'{len(atoms)} atoms, {args.steps} NVE steps, {calls} quippy calls in the bridge run')
    print(f'bridge: {bridge:.2f} steps/s, ASE VelocityVerlet: {ase_rate:.2f} steps/s, ratio {bridge / ase_rate:.3f}; '
          f'time outside quippy: {100 * outside:.1f} %')


if __name__ == '__main__':
    main()
