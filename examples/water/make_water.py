"""Write ``water.data``: 16 flexible SPC/Fw water molecules (48 atoms) at 1.0 g/cm^3, a LAMMPS data file for
``atom_style full`` (Atoms with molecule id and charge, Bonds, Angles) in ``units metal``.

Molecules sit at the 16 sites of a 2 x 2 x 2 body-centred cubic arrangement (O-O distance 3.39 Å) in the SPC/Fw
equilibrium geometry (r_OH 1.012 Å, H-O-H 113.24°, Wu, Tepper & Voth, J. Chem. Phys. 124, 024503 (2006)) with
random orientations (seed 7), re-drawn until no two atoms of different molecules are closer than 1.8 Å.
Types: 1 = O (q = -0.82 e), 2 = H (q = +0.41 e); atom IDs 1..48 in the order O, H, H of molecule 1, 2, ...

Usage: ``python make_water.py [OUTPUT]`` (default ``water.data`` next to this script).
"""

import pathlib
import sys

import numpy as np
from ase.data import atomic_masses, atomic_numbers
from ase.units import _Nav

N_MOLECULES = 16
DENSITY = 1.0  # g/cm^3
R_OH = 1.012  # Å
THETA_HOH = np.radians(113.24)
CHARGES = {'O': -0.82, 'H': 0.41}
MIN_DISTANCE = 1.8  # Å, between atoms of different molecules
SEED = 7


def box_length() -> float:
    """Edge (Å) of the cube holding N_MOLECULES water molecules at DENSITY."""
    mass = N_MOLECULES * (atomic_masses[atomic_numbers['O']] + 2 * atomic_masses[atomic_numbers['H']])  # g/mol
    return (mass / _Nav / DENSITY * 1e24) ** (1 / 3)


def molecule(rng) -> np.ndarray:
    """O, H, H positions (Å, 3 x 3) of one molecule centred on its O, randomly rotated."""
    half = THETA_HOH / 2
    local = np.array([[0, 0, 0], [R_OH * np.sin(half), 0, R_OH * np.cos(half)],
                      [-R_OH * np.sin(half), 0, R_OH * np.cos(half)]])
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    return local @ rotation.T


def positions(length: float, rng) -> np.ndarray:
    """(48, 3) positions: O, H, H per molecule, all intermolecular distances >= MIN_DISTANCE."""
    half = length / 2
    sites = [np.array([i, j, k]) * half + offset for i in range(2) for j in range(2) for k in range(2)
             for offset in (np.zeros(3), np.full(3, half / 2))]
    for _ in range(1000):
        xyz = np.concatenate([site + molecule(rng) for site in sites])
        delta = xyz[:, None] - xyz[None]
        delta -= length * np.round(delta / length)
        distance = np.linalg.norm(delta, axis=-1)
        same = np.repeat(np.arange(N_MOLECULES), 3)
        if distance[same[:, None] != same[None]].min() >= MIN_DISTANCE:
            return xyz % length
    raise RuntimeError('no packing found')


def data_file(length: float, xyz: np.ndarray) -> str:
    """The LAMMPS data file text (atom_style full, units metal)."""
    n = len(xyz)
    lines = ['# 16 SPC/Fw water molecules at 1.0 g/cm^3 (examples/water/make_water.py)', '',
             f'{n} atoms', f'{N_MOLECULES * 2} bonds', f'{N_MOLECULES} angles', '',
             '2 atom types', '1 bond types', '1 angle types', '',
             f'0.0 {length:.10f} xlo xhi', f'0.0 {length:.10f} ylo yhi', f'0.0 {length:.10f} zlo zhi', '',
             'Masses', '', f"1 {atomic_masses[atomic_numbers['O']]:.6f}", f"2 {atomic_masses[atomic_numbers['H']]:.6f}",
             '', 'Atoms # full', '']
    for index, (x, y, z) in enumerate(xyz):
        mol, symbol = index // 3 + 1, 'OHH'[index % 3]
        lines.append(f"{index + 1} {mol} {1 if symbol == 'O' else 2} {CHARGES[symbol]:.2f} {x:.8f} {y:.8f} {z:.8f}")
    lines += ['', 'Bonds', '']
    for m in range(N_MOLECULES):
        o = 3 * m + 1
        lines += [f'{2 * m + 1} 1 {o} {o + 1}', f'{2 * m + 2} 1 {o} {o + 2}']
    lines += ['', 'Angles', '']
    for m in range(N_MOLECULES):
        o = 3 * m + 1
        lines.append(f'{m + 1} 1 {o + 1} {o} {o + 2}')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    output = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).with_name('water.data')
    length = box_length()
    output.write_text(data_file(length, positions(length, np.random.default_rng(SEED))))
    print(f'wrote {output}: {3 * N_MOLECULES} atoms, box {length:.4f} Å')
