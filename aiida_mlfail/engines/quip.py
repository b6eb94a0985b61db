"""``mlfail-quip``: a drop-in for QUIP's ``quip`` program, for GAP predictions on a set of configurations.

Supports ``quip atoms_filename=FILE param_filename=XML [init_args="IP GAP ..."] [E=T] [F=T] [V=T] [local=T]``
and writes, like ``quip``, every evaluated configuration as extended XYZ with each line prefixed
by ``AT `` on standard output (properties ``energy`` eV, ``force`` eV/Å, ``virial`` eV, ``local_e``
eV). It evaluates with the quippy ``Potential`` (ASE calculator) of the ``quippy-ase`` wheel,
whose own ``quip`` executable crashes on start in version 0.10.3. Exit status 1 with a message on
stderr for a missing file or an unknown argument.
"""

from __future__ import annotations

import io
import sys

from aiida_mlfail.science.gap import check_init_args

KNOWN = {'atoms_filename', 'param_filename', 'init_args', 'e', 'f', 'v', 'local'}


def parse_arguments(argv: list[str]) -> dict:
    """``key=value`` words (quip/Fortran style, case-insensitive keys, T/F booleans) to a dict.

    :raises ValueError: for a word without ``=``, an unsupported key, or an ``init_args`` outside the GAP
        grammar of :func:`aiida_mlfail.science.gap.check_init_args`.
    """
    options = {'e': False, 'f': False, 'v': False, 'local': False, 'init_args': None}
    for word in argv:
        if '=' not in word:
            raise ValueError(f'argument {word!r} is not of the form key=value')
        key, value = word.split('=', 1)
        key = key.lower()
        if key not in KNOWN:
            raise ValueError(f'unsupported argument {key!r}; mlfail-quip knows {sorted(KNOWN)}')
        if key in ('e', 'f', 'v', 'local'):
            options[key] = value.strip().upper() in ('T', 'TRUE', '1')
        else:
            options[key] = value.strip().strip('"')
    for key in ('atoms_filename', 'param_filename'):
        if not options.get(key):
            raise ValueError(f'{key}= is required')
    if options['init_args'] is not None:
        options['init_args'] = check_init_args(options['init_args'], require_label=False)
    return options


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mlfail-quip``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        options = parse_arguments(argv)
    except ValueError as exc:
        print(f'mlfail-quip: {exc}', file=sys.stderr)
        return 1
    import numpy as np
    from ase.io import read, write
    from quippy.potential import Potential

    try:
        configurations = read(options['atoms_filename'], index=':', format='extxyz')
        kwargs = {'param_filename': options['param_filename']}
        potential = Potential(options['init_args'], **kwargs) if options['init_args'] else Potential(**kwargs)
    except Exception as exc:  # noqa: BLE001 (quippy raises RuntimeError, ASE OSError/ValueError: report and stop)
        print(f'mlfail-quip: {type(exc).__name__}: {exc}', file=sys.stderr)
        return 1
    for atoms in configurations:
        atoms.calc = None
        keep = {'numbers', 'positions'}
        for key in list(atoms.arrays):
            if key not in keep:
                del atoms.arrays[key]
        atoms.info = {k: v for k, v in atoms.info.items() if k not in ('energy', 'virial', 'stress')}
        atoms.calc = potential
        if options['e'] or options['local']:
            atoms.info['energy'] = float(atoms.get_potential_energy())
        if options['f']:
            atoms.arrays['force'] = np.array(atoms.get_forces())
        if options['v']:
            atoms.info['virial'] = -np.array(atoms.get_stress(voigt=False)) * atoms.get_volume()
        if options['local']:
            atoms.arrays['local_e'] = np.array(atoms.get_potential_energies())
        atoms.calc = None
        buffer = io.StringIO()
        write(buffer, atoms, format='extxyz')
        sys.stdout.write(''.join(f'AT {line}\n' for line in buffer.getvalue().splitlines()))
    sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
