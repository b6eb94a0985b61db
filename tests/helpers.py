"""Helpers shared by the tests."""

from __future__ import annotations

import pathlib

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'


def nacl_configurations(n: int = 4):
    """``n`` labelled 64-ion NaCl frames from the committed LAMMPS fixture (3 real frames, cycled)."""
    from aiida_mlfail.science import lammps_md

    base = FIXTURES / 'lammps_sample'
    frames = lammps_md.parse_dump((base / 'frames.dump').read_text())
    labels = lammps_md.parse_labels((base / 'labels.dat').read_text())
    configurations = lammps_md.frames_to_atoms(frames, labels, ['Na', 'Cl'], {'config_type': 'fixture'})
    return [configurations[i % len(configurations)].copy() for i in range(n)]
