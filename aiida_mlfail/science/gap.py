"""GAP fitting helpers: fit parameters, gap_fit command lines, checks, and AiiDA-free parsing of gap_fit
output and GAP XML files.

The descriptor grammar and the descriptor builders are in :mod:`aiida_mlfail.science.gap_descriptors`; their
names are importable from here too.

gap_fit reference: QUIP/GAP documentation, https://libatoms.github.io/GAP/gap_fit.html.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np

from aiida_mlfail.science import checks

# The descriptor grammar and builders live in science.gap_descriptors; imported here so that every name
# importable from science.gap stays importable from it.
from aiida_mlfail.science.gap_descriptors import (  # noqa: F401
    _ANY_NUMBER,
    _LOGICAL,
    _NON_NEGATIVE,
    _POSITIVE,
    _SOAP_MANAGED,
    _SPECIES_KEYS,
    _Z,
    DEFAULT_DELTA_2B,
    DEFAULT_SOAP,
    DESCRIPTOR_KEYS,
    DESCRIPTOR_REQUIRED,
    GAP_KEYS,
    _check_value,
    _format,
    _own_species,
    _symbol,
    check_descriptor,
    check_sparse_points,
    count_environments,
    default_descriptors,
    descriptor_string,
    explicit_descriptors,
    uncovered_species,
)

#: Keywords of a QUIP init string for a GAP (``IP GAP key=value ...``) that this package accepts, with
#: their value kind. From QUIP's sources: ``IPModel_GAP_Initialise_str`` (QUIP_Core/IPModel_GAP.f95:
#: ``label``, ``E_scale``, ``lammps``, ``fast_gap``, ``fast_gap_dgemv``) and ``Potential_initialise``
#: (Potentials/Potential.f95: ``do_rescale_r``, ``r_scale``, ``do_rescale_E``, ``E_scale``). The first
#: two words select the model (``IP`` = an interatomic potential, ``GAP`` = IPModel_GAP). Other
#: Potential keywords (``Sum``, ``ForceMixing``, ``minimise_bulk``, ``target_vol`` ...) are not GAPs and
#: are refused.
INIT_ARGS_KEYWORDS = {
    'label': 'name',
    'E_scale': 'number',
    'r_scale': 'number',
    'do_rescale_E': 'logical',
    'do_rescale_r': 'logical',
    'lammps': 'logical',
    'fast_gap': 'logical',
    'fast_gap_dgemv': 'logical',
}

_INIT_ARGS_CHARS = re.compile(r'[A-Za-z0-9_.+\-= ]*\Z')
_FORTRAN_REAL = re.compile(r'[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?\Z')
_FORTRAN_LOGICAL = ('T', 'F', 'true', 'false', 'True', 'False', 'TRUE', 'FALSE')

#: Labels gap_fit can be trained on and the extxyz key each is read from.
TRAINABLE = ('energy', 'forces', 'virial')

#: Default regularisation sigmas (energy eV/atom, forces eV/Å, virial eV/atom).
DEFAULT_SIGMA = {'energy': 0.002, 'forces': 0.05, 'virial': 0.05}

#: Default gap_fit settings used by :func:`normalise_fit_parameters`.
FIT_DEFAULTS = {
    'train_on': ['energy', 'forces', 'virial'],
    'e0_method': 'average',
    'sparse_jitter': 1.0e-8,
    'sparse_separate_file': True,
    'seed': 1,
}


#: ``e0_method`` values: gap_fit's own (``isolated``, ``average``, ``median``) and ``least_squares``
#: (:func:`least_squares_e0`, passed to gap_fit as ``e0={A:..:B:..}``).
E0_METHODS = ('isolated', 'average', 'median', 'least_squares')


def least_squares_e0(configurations) -> dict[str, float]:
    """Per-species atomic energies e0 (eV) that best explain the total energies by composition alone.

    Solves min_e sum_c (E_c - sum_s n_cs e_s)^2 over the configurations c (``numpy.linalg.lstsq``; n_cs the
    number of atoms of species s in c, E_c ``info['energy']`` eV), the usual linear baseline of
    machine-learned potentials. When the compositions do not determine every species (e.g. a pool of one
    stoichiometry such as NaCl 32:32 only), lstsq returns the minimum-norm solution (for 1:1: both species
    get the mean energy per atom, gap_fit's ``average``); any split gives the same baseline energy for those
    compositions.

    :param configurations: iterable of ``ase.Atoms`` with ``info['energy']`` (read once).
    :returns: ``{symbol: e0 in eV}``, sorted by symbol.
    :raises ValueError: when a configuration has no energy (naming it) or there are none.
    """
    counts, energies, species = [], [], {}
    for index, atoms in enumerate(configurations):
        if 'energy' not in atoms.info:
            raise ValueError(f'least-squares e0 needs the energy of every configuration; configuration {index} '
                             'has none')
        row: dict[int, int] = {}
        for symbol in atoms.get_chemical_symbols():
            column = species.setdefault(symbol, len(species))
            row[column] = row.get(column, 0) + 1
        counts.append(row)
        energies.append(float(atoms.info['energy']))
    if not energies:
        raise ValueError('least-squares e0 needs at least one configuration')
    matrix = np.zeros((len(counts), len(species)))
    for i, row in enumerate(counts):
        for column, n in row.items():
            matrix[i, column] = n
    solution = np.linalg.lstsq(matrix, np.asarray(energies), rcond=None)[0]
    return {symbol: float(solution[column]) for symbol, column in sorted(species.items())}


def effective_e0_method(parameters: dict, labels) -> str:
    """The e0 method a fit uses: ``least_squares`` when energies are not trained on (forces only, virials
    only) but the training set has them and ``e0_method`` is ``average`` (the default) or ``least_squares``;
    else ``parameters['e0_method']``.

    Why: gap_fit reads energies through ``energy_parameter_name``, which points at a missing key when they
    are not trained on, so its ``average`` sees no energy and the GAP predicts energies without any baseline
    (hundreds of eV per atom off for DFT labels); the least-squares e0 restores the baseline.

    :param parameters: normalised fit parameters (``train_on``, ``e0_method``).
    :param labels: the labels the training set carries.
    """
    method = parameters['e0_method']
    if 'energy' not in parameters['train_on'] and 'energy' in labels and method in ('average', 'least_squares'):
        return 'least_squares'
    return method


def e0_argument(e0: dict[str, float]) -> str:
    """gap_fit's per-species ``e0`` argument, ``e0={Na:-1.25:Cl:-2.5}`` (eV; gap_fit ``--help``: "by species:
    {Ti:-150.0:O:-320...}")."""
    return 'e0={' + ':'.join(f'{symbol}:{value:.12g}' for symbol, value in e0.items()) + '}'


def normalise_fit_parameters(parameters: dict) -> dict:
    """Merge GAP fit parameters with :data:`FIT_DEFAULTS` and check them.

    :param parameters: ``descriptors`` (list of dicts, required), ``sigma`` (dict energy/forces/virial,
        defaults :data:`DEFAULT_SIGMA`), ``train_on`` (labels), ``e0_method``, ``sparse_jitter``,
        ``sparse_separate_file``, ``seed``.
    :raises ValueError: naming the offending value (no descriptors, bad descriptor, negative sigma,
        unknown label, unknown key).
    """
    allowed = {'descriptors', 'sigma', *FIT_DEFAULTS}
    checks.known_keys(parameters, allowed, 'GAP fit parameter')
    merged = {**FIT_DEFAULTS, **parameters}
    descriptors = merged.get('descriptors') or []
    if not descriptors:
        raise ValueError('GAP fit parameters need at least one descriptor')
    if not isinstance(descriptors, list) or not all(isinstance(d, dict) for d in descriptors):
        raise ValueError(f'descriptors must be a list of descriptor dicts, got {descriptors!r}')
    for descriptor in descriptors:
        check_descriptor(descriptor)
    given = merged.get('sigma', {})
    checks.known_keys(given, TRAINABLE, 'sigma')
    sigma = {**DEFAULT_SIGMA, **given}
    for key, unit in (('energy', 'eV/atom'), ('forces', 'eV/Å'), ('virial', 'eV/atom')):
        sigma[key] = checks.number(sigma[key], f'sigma.{key}', gt=0, unit=unit)
    merged['sigma'] = sigma
    train_on = merged['train_on']
    if not isinstance(train_on, (list, tuple)) or not train_on or any(label not in TRAINABLE for label in train_on):
        raise ValueError(f'train_on must be a non-empty subset of {list(TRAINABLE)}, got {train_on!r}')
    merged['train_on'] = list(train_on)
    checks.choice(merged['e0_method'], 'e0_method', E0_METHODS)
    merged['sparse_jitter'] = checks.number(merged['sparse_jitter'], 'sparse_jitter', gt=0)
    merged['sparse_separate_file'] = checks.boolean(merged['sparse_separate_file'], 'sparse_separate_file')
    merged['seed'] = checks.integer(merged['seed'], 'seed', ge=0)
    return merged


def gap_fit_arguments(parameters: dict, at_file: str, gp_file: str, e0: dict[str, float] | None = None) -> list[str]:
    """Command-line arguments of gap_fit (``key=value`` words) for normalised ``parameters``.

    Labels not in ``train_on`` are switched off by pointing their ``*_parameter_name`` at a key no
    configuration has. Descriptors are checked by
    :func:`~aiida_mlfail.science.gap_descriptors.descriptor_string`. Inside ``gap={...}`` a list value takes
    double braces (``species_Z={{11 17}}``): gap_fit's command-line parser strips one level (with single
    braces gap_fit 0.10 stops with ``soap_initialise failed to parse ... species_Z=11 17``).

    :param at_file: training file name, a bare file name (:func:`~aiida_mlfail.science.checks.basename`).
    :param gp_file: output GAP XML name, a bare file name.
    :param e0: per-species atomic energies (eV), e.g. :func:`least_squares_e0`: passed as ``e0={...}``
        (:func:`e0_argument`) in place of ``e0_method``; required when ``e0_method`` is ``least_squares``.
    :raises ValueError: for a bad descriptor, a file name with a directory part, or ``least_squares``
        without ``e0``.
    """
    checks.basename(at_file, 'at_file')
    checks.basename(gp_file, 'gp_file')
    if e0 is None and parameters['e0_method'] == 'least_squares':
        raise ValueError('e0_method least_squares needs the per-species e0 (science.gap.least_squares_e0 of the '
                         'training set)')
    gap = ' : '.join(descriptor_string(d).replace('{', '{{').replace('}', '}}') for d in parameters['descriptors'])
    sigma = parameters['sigma']
    names = {label: (label if label in parameters['train_on'] else f'__not_trained_{label}') for label in TRAINABLE}
    return [
        f'at_file={at_file}',
        f'gap={{{gap}}}',
        f"default_sigma={{{sigma['energy']} {sigma['forces']} {sigma['virial']} 0.0}}",
        e0_argument(e0) if e0 is not None else f"e0_method={parameters['e0_method']}",
        f"sparse_jitter={parameters['sparse_jitter']}",
        f"sparse_separate_file={_format(bool(parameters['sparse_separate_file']))}",
        f"rnd_seed={int(parameters['seed'])}",
        f"energy_parameter_name={names['energy']}",
        f"force_parameter_name={names['forces']}",
        f"virial_parameter_name={names['virial']}",
        f'gp_file={gp_file}',
    ]


_UNITS = {'B': 1.0 / 1024**2, 'KB': 1.0 / 1024, 'MB': 1.0, 'GB': 1024.0, 'TB': 1024.0**2}


def parse_dryrun(text: str) -> dict:
    """Parse the memory report of ``gap_fit ... dryrun=T``.

    :returns: ``memory_peak_mb`` (the ``PEAK`` line, per process), ``free_system_memory_mb``,
        ``descriptors``: list of ``{'description', 'n_descriptors', 'n_partial_derivatives'}``.
    :raises ValueError: if the output has no ``PEAK`` line (dryrun did not get that far).
    """
    peak = re.search(r'^PEAK\s+([\d.]+)\s*([KMGT]?B)', text, re.M)
    if not peak:
        raise ValueError('gap_fit dryrun output has no PEAK memory estimate')
    result = {'memory_peak_mb': float(peak.group(1)) * _UNITS[peak.group(2)]}
    free = re.search(r'^Free system memory\s+([\d.]+)\s*([KMGT]?B)', text, re.M)
    if free:
        result['free_system_memory_mb'] = float(free.group(1)) * _UNITS[free.group(2)]
    descriptors = []
    for match in re.finditer(
        r'^Descriptor \d+:\s*(.+?)\s*\nNumber of descriptors:\s+(\d+)\s*\n'
        r'Number of partial derivatives of descriptors:\s+(\d+)',
        text, re.M,
    ):
        descriptors.append({
            'description': ' '.join(match.group(1).split()),
            'n_descriptors': int(match.group(2)),
            'n_partial_derivatives': int(match.group(3)),
        })
    result['descriptors'] = descriptors
    return result


def parse_gap_fit_output(text: str) -> dict:
    """Parse a gap_fit standard output.

    :returns: ``finished`` (reached ``libAtoms::Finalise``), ``error`` (the ``SYSTEM ABORT`` /
        error message or ``None``), ``ill_conditioned`` (the error comes from a failed Cholesky /
        ``LA_Matrix_Factorise``), ``wall_time_s`` (from the Hello World / Finalise stamps, 1 s resolution).
    """
    result = {'finished': 'libAtoms::Finalise' in text, 'error': None, 'ill_conditioned': False, 'wall_time_s': None}
    lines = text.splitlines()
    error_lines = []
    for i, line in enumerate(lines):
        if 'SYSTEM ABORT' in line or line.startswith('ERROR'):
            # the abort line is followed by the traceback and the message, up to STOP or a blank line
            block = [line.strip()]
            for follow in lines[i + 1:i + 8]:
                if not follow.strip() or follow.startswith('STOP'):
                    break
                block.append(follow.strip())
            error_lines.append(' '.join(block))
    if error_lines:
        result['error'] = ' | '.join(error_lines)[:1000]
        lowered = result['error'].lower()
        result['ill_conditioned'] = any(word in lowered for word in ('la_matrix_factorise', 'not positive definite',
                                                                     'dpotrf'))
    start = re.search(r'libAtoms::Hello World: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)', text)
    end = re.search(r'libAtoms::Finalise: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)', text)
    if start and end:
        fmt = '%Y-%m-%d %H:%M:%S'
        result['wall_time_s'] = (datetime.strptime(end.group(1), fmt) - datetime.strptime(start.group(1),
                                                                                          fmt)).total_seconds()
    return result


def check_init_args(text, *, label: str | None = None, require_label: bool = True) -> str:
    """Check a QUIP init string for a GAP and return it with single spaces.

    Grammar (what QUIP's ``Potential_initialise`` / ``IPModel_GAP_Initialise_str`` accept for a GAP,
    restricted to the keywords of :data:`INIT_ARGS_KEYWORDS`)::

        init_args := "IP GAP" (" " keyword "=" value)*
        label     := letters, digits, _ - . (checks.SAFE_NAME)
        number    := a Fortran real (1.0, -2e-3, 1.5d0), finite
        logical   := T | F | true | false (any case of these)

    Only letters, digits, ``_ . + - =`` and single spaces may occur, so no quote, newline, tab, ``$``,
    ``{``, ``}``, ``;``, ``&``, ``#``: the string cannot leave the quotes of a LAMMPS ``pair_coeff``
    or start another command. Every keyword at most once.

    :param label: when given, the ``label=`` of the string must be this (the GAP label of the XML).
    :param require_label: refuse a string without ``label=`` (a bare ``IP GAP`` loads the first GAP
        of the file; scripts may use it, the package always writes the label).
    :returns: the normalised string, e.g. ``'IP GAP label=GAP_2026_11_21_0_0_40_29_334'``.
    :raises ValueError: naming the string and the offending word, with the allowed keywords.
    """
    shown = repr(text) if not isinstance(text, str) or len(text) <= 200 else repr(text[:200] + '...')
    allowed = ', '.join(INIT_ARGS_KEYWORDS)
    if not isinstance(text, str) or not _INIT_ARGS_CHARS.match(text):
        raise ValueError(f'init_args {shown} is not a QUIP init string for a GAP: only "IP GAP" followed by '
                         f'key=value words of letters, digits, _ . + - are accepted (keywords: {allowed})')
    words = text.split()
    if words[:2] != ['IP', 'GAP']:
        raise ValueError(f'init_args {shown} must start with "IP GAP"')
    seen = {}
    for word in words[2:]:
        key, sep, value = word.partition('=')
        if not sep or not value or '=' in value:
            raise ValueError(f'init_args {shown}: {word!r} is not a key=value word')
        if key not in INIT_ARGS_KEYWORDS:
            raise ValueError(f'init_args {shown}: unknown keyword {key!r}; allowed: {allowed}')
        if key in seen:
            raise ValueError(f'init_args {shown}: keyword {key!r} given twice')
        kind = INIT_ARGS_KEYWORDS[key]
        if kind == 'name':
            checks.safe_name(value, f'init_args {key}')
        elif kind == 'number':
            if not _FORTRAN_REAL.match(value) or not np.isfinite(float(value.replace('d', 'e').replace('D', 'e'))):
                raise ValueError(f'init_args {shown}: {key} must be a finite number, got {value!r}')
        elif value not in _FORTRAN_LOGICAL:
            raise ValueError(f'init_args {shown}: {key} must be T or F, got {value!r}')
        seen[key] = value
    if require_label and 'label' not in seen:
        raise ValueError(f'init_args {shown} has no label=<GAP label>')
    if label is not None and seen.get('label', label) != label:
        raise ValueError(f'init_args {shown}: label {seen["label"]!r} is not the GAP label {label!r} of the XML')
    return ' '.join(words)


def check_gap_files(filename, files) -> list[str]:
    """Check the file names of a GAP: ``filename`` (the XML) and ``files`` (XML + sparseX files).

    Every name must be a bare file name (:func:`~aiida_mlfail.science.checks.basename`: no directory part, no ``..``, no
    space or quote), names unique, and ``filename`` one of ``files``.

    :returns: ``files`` as a list.
    :raises ValueError: naming the offending name.
    """
    checks.basename(filename, 'GAP filename')
    if not isinstance(files, (list, tuple)) or not files:
        raise ValueError(f'GAP files must be a non-empty list of file names, got {files!r}')
    for name in files:
        checks.basename(name, 'GAP file name')
    duplicates = sorted({name for name in files if list(files).count(name) > 1})
    if duplicates:
        raise ValueError(f'GAP file names {duplicates} are listed twice')
    if filename not in files:
        raise ValueError(f'GAP filename {filename!r} is not one of its files {list(files)}')
    return list(files)


def parse_gap_xml(text: str) -> dict:
    """Label, init args, sparse points and sparseX files of a GAP XML file, checked as untrusted input.

    The label must be a safe name (:func:`~aiida_mlfail.science.checks.safe_name`), ``init_args`` must pass
    :func:`.check_init_args` with that label, and every ``sparseX_filename`` must be a bare file name
    (:func:`~aiida_mlfail.science.checks.basename`), so that none of them can leave a LAMMPS ``pair_coeff`` line or
    point
    outside the folder of the GAP.

    :returns: ``label``, ``init_args`` (``IP GAP label=...``), ``n_sparse`` (list per gpCoordinates),
        ``sparse_files`` (list of sparseX file names, empty when stored inline), ``species_z``
        (atomic numbers with a non-zero e0 or a descriptor), ``cutoff`` (largest descriptor cutoff, Å),
        ``descriptors`` (the descriptor strings stored in the XML).
    :raises ValueError: if no ``Potential`` element with a label is found, or naming a bad label,
        init string or sparseX file name.
    """
    potential = re.search(r'<Potential\s+label="([^"]+)"\s+init_args="([^"]+)"', text)
    if not potential:
        raise ValueError('not a GAP XML file: no <Potential label=... init_args=...> element')
    label = checks.safe_name(potential.group(1), 'GAP XML: <Potential label>')
    try:
        init_args = check_init_args(potential.group(2), label=label)
    except ValueError as exc:
        raise ValueError(f'GAP XML: <Potential init_args>: {exc}') from None
    sparse_files = re.findall(r'<gpCoordinates[^>]*\bsparseX_filename="([^"]*)"', text)
    for name in sparse_files:
        checks.basename(name, 'GAP XML: sparseX_filename')
    descriptors = [' '.join(d.split()) for d in re.findall(r'<descriptor>\s*(.*?)\s*</descriptor>', text, re.S)]
    cutoffs = [float(c) for d in descriptors for c in re.findall(r'\bcutoff=([\d.eE+-]+)', d)]
    zs = set()
    for d in descriptors:
        zs.update(int(z) for z in re.findall(r'\bZ\d?=(\d+)', d))
        for group in re.findall(r'species_Z=\{([\d\s]+)\}', d):
            zs.update(int(z) for z in group.split())
    return {
        'label': label,
        'init_args': init_args,
        'n_sparse': [int(n) for n in re.findall(r'<gpCoordinates[^>]*\bn_sparseX="(\d+)"', text)],
        'sparse_files': sparse_files,
        'species_z': sorted(zs),
        'cutoff': max(cutoffs) if cutoffs else None,
        'descriptors': descriptors,
    }


def energy_offset_metrics(reference, predicted) -> dict:
    """The constant offset of predicted energies and the errors without it (eV/atom).

    ``offset`` = mean(predicted - reference); ``rmse_offset_removed`` / ``mae_offset_removed`` / ``max_offset_removed``
    of (predicted - reference - offset). A GAP trained without energies (forces or virials only) fixes
    energies only up to a constant, so these are its meaningful energy errors, and the offset says how far the
    baseline (e0) is off.
    """
    ref = np.asarray(reference, dtype=float).ravel()
    pred = np.asarray(predicted, dtype=float).ravel()
    if ref.shape != pred.shape:
        raise ValueError(f'shape mismatch: reference {ref.shape} vs predicted {pred.shape}')
    diff = pred - ref
    offset = float(np.mean(diff))
    centred = diff - offset
    return {'offset': offset, 'rmse_offset_removed': float(np.sqrt(np.mean(centred**2))),
            'mae_offset_removed': float(np.mean(np.abs(centred))), 'max_offset_removed': float(np.max(np.abs(centred)))}


def bootstrap_rmse(squared_errors, counts=None, *, n_resamples: int = 1000, seed: int = 0) -> dict:
    """RMSEs of ``k`` predictions of the same ``n`` configurations and their bootstrap standard errors, resampling
    the configurations (``scipy.stats.bootstrap``, percentile method; Efron & Tibshirani, *An Introduction to the
    Bootstrap*, 1993). Every resample picks the same configurations for all ``k`` predictions, so differences of
    the resampled RMSEs are paired: their standard deviation is the standard error of a difference.

    RMSE of prediction ``j`` = sqrt(sum_i squared_errors[j, i] / sum_i counts[i]).

    :param squared_errors: shape ``(n,)`` or ``(k, n)``: per configuration ``i`` the sum of the squared errors of
        prediction ``j`` (e.g. (energy/atom error)^2 in (eV/atom)^2, or the sum over force components in (eV/Å)^2).
    :param counts: shape ``(n,)``: values per configuration (e.g. 3 x atoms for forces); default 1 each.
    :returns: ``rmse`` and ``stderr`` (shape ``(k,)``, or floats for a 1-d input) and ``resamples`` (shape
        ``(k, n_resamples)``: the bootstrap distribution), in the square root of the units of ``squared_errors``.
    :raises ValueError: for fewer than 2 configurations or ``counts`` of another length.
    """
    from scipy.stats import bootstrap

    sq = np.asarray(squared_errors, dtype=float)
    flat = sq.ndim == 1
    sq = np.atleast_2d(sq)
    n = sq.shape[1]
    weights = np.ones(n) if counts is None else np.asarray(counts, dtype=float).ravel()
    if n < 2:
        raise ValueError(f'bootstrap_rmse needs at least 2 configurations, got {n}')
    if weights.shape != (n,):
        raise ValueError(f'counts has {weights.size} values for {n} configurations')

    def statistic(index, axis=-1):
        index = np.asarray(index)
        return np.sqrt(sq[:, index].sum(axis=-1) / weights[index].sum(axis=-1))

    result = bootstrap((np.arange(n),), statistic, vectorized=True, n_resamples=n_resamples, method='percentile',
                       random_state=seed)
    rmse, stderr = statistic(np.arange(n)), np.asarray(result.standard_error)
    if flat:
        return {'rmse': float(rmse[0]), 'stderr': float(stderr[0]), 'resamples': result.bootstrap_distribution}
    return {'rmse': rmse, 'stderr': stderr, 'resamples': result.bootstrap_distribution}


def error_metrics(reference, predicted) -> dict:
    """RMSE, MAE and maximum absolute error of ``predicted`` against ``reference`` (flattened, same units)."""
    ref = np.asarray(reference, dtype=float).ravel()
    pred = np.asarray(predicted, dtype=float).ravel()
    if ref.shape != pred.shape:
        raise ValueError(f'shape mismatch: reference {ref.shape} vs predicted {pred.shape}')
    diff = pred - ref
    return {
        'rmse': float(np.sqrt(np.mean(diff**2))),
        'mae': float(np.mean(np.abs(diff))),
        'max': float(np.max(np.abs(diff))),
        'n': int(ref.size),
    }

