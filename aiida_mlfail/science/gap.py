"""GAP fitting helpers: gap_fit command lines, checks, and AiiDA-free parsing of gap_fit output.

gap_fit reference: QUIP/GAP documentation, https://libatoms.github.io/GAP/gap_fit.html.
"""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
from ase.data import atomic_numbers
from ase.neighborlist import neighbor_list

from aiida_mlfail.science import checks

#: Descriptor types accepted, with the keys each must have.
DESCRIPTOR_REQUIRED = {
    'soap': ('n_max', 'l_max', 'atom_sigma', 'cutoff', 'delta', 'n_sparse'),
    'distance_2b': ('cutoff', 'delta', 'n_sparse'),
    'angle_3b': ('cutoff', 'delta', 'n_sparse'),
}

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


def _format(value) -> str:
    if isinstance(value, bool):
        return 'T' if value else 'F'
    if isinstance(value, (list, tuple)):
        return '{' + ' '.join(_format(v) for v in value) + '}'
    return str(value)


def check_descriptor(descriptor: dict) -> None:
    """Raise ``ValueError`` naming the value if a descriptor dict is not usable.

    Checks the type, the required keys, positive ``cutoff``/``delta``/``atom_sigma``/``n_sparse``.
    """
    kind = descriptor.get('type')
    if kind not in DESCRIPTOR_REQUIRED:
        raise ValueError(f'descriptor type {kind!r} is not supported; use one of {sorted(DESCRIPTOR_REQUIRED)}')
    missing = [k for k in DESCRIPTOR_REQUIRED[kind] if k not in descriptor]
    if missing:
        raise ValueError(f'{kind} descriptor misses {missing}')
    for key in ('cutoff', 'delta', 'atom_sigma', 'cutoff_transition_width'):
        if key in descriptor and not float(descriptor[key]) > 0:
            raise ValueError(f'{kind} descriptor: {key} must be positive, got {descriptor[key]!r}')
    if int(descriptor['n_sparse']) <= 0:
        raise ValueError(f"{kind} descriptor: n_sparse must be a positive integer, got {descriptor['n_sparse']!r}")


def descriptor_string(descriptor: dict) -> str:
    """gap_fit descriptor string, e.g. ``{'type': 'soap', 'n_max': 5}`` -> ``soap n_max=5``.

    ``add_species`` defaults to ``T`` and ``sparse_method`` to ``cur_points`` when not given;
    ``distance_2b``/``angle_3b`` default to ``covariance_type=ard_se theta_uniform=1.0``, SOAP to
    ``covariance_type=dot_product zeta=4``.
    """
    check_descriptor(descriptor)
    kind = descriptor['type']
    values = {'add_species': True, 'sparse_method': 'cur_points'}
    if kind == 'soap':
        values.update(covariance_type='dot_product', zeta=4)
    else:
        values.update(covariance_type='ard_se', theta_uniform=1.0)
    values.update({k: v for k, v in descriptor.items() if k != 'type'})
    return kind + ' ' + ' '.join(f'{k}={_format(v)}' for k, v in values.items())


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
    checks.choice(merged['e0_method'], 'e0_method', ('isolated', 'average', 'median'))
    merged['sparse_jitter'] = checks.number(merged['sparse_jitter'], 'sparse_jitter', gt=0)
    merged['sparse_separate_file'] = checks.boolean(merged['sparse_separate_file'], 'sparse_separate_file')
    merged['seed'] = checks.integer(merged['seed'], 'seed', ge=0)
    return merged


def gap_fit_arguments(parameters: dict, at_file: str, gp_file: str) -> list[str]:
    """Command-line arguments of gap_fit (``key=value`` words) for normalised ``parameters``.

    Labels not in ``train_on`` are switched off by pointing their ``*_parameter_name`` at a key no
    configuration has.
    """
    gap = ' : '.join(descriptor_string(d) for d in parameters['descriptors'])
    sigma = parameters['sigma']
    names = {label: (label if label in parameters['train_on'] else f'__not_trained_{label}') for label in TRAINABLE}
    return [
        f'at_file={at_file}',
        f'gap={{{gap}}}',
        f"default_sigma={{{sigma['energy']} {sigma['forces']} {sigma['virial']} 0.0}}",
        f"e0_method={parameters['e0_method']}",
        f"sparse_jitter={parameters['sparse_jitter']}",
        f"sparse_separate_file={_format(bool(parameters['sparse_separate_file']))}",
        f"rnd_seed={int(parameters['seed'])}",
        f"energy_parameter_name={names['energy']}",
        f"force_parameter_name={names['forces']}",
        f"virial_parameter_name={names['virial']}",
        f'gp_file={gp_file}',
    ]


def count_environments(configurations, descriptor: dict) -> dict[str, int]:
    """Number of environments gap_fit will find for one descriptor, per species (combination).

    SOAP with ``add_species``: atoms per centre species; ``distance_2b``: pairs within the cutoff
    per species pair, every pair counted from both ends as in gap_fit's dryrun report; ``angle_3b``: atoms per centre species (an upper bound is not
    needed there: n_sparse is checked against centres).

    :returns: ``{'Na': 352, 'Cl': 352}`` or ``{'Na-Cl': 4562, ...}``.
    """
    kind = descriptor['type']
    counts: dict[str, int] = {}
    if kind in ('soap', 'angle_3b'):
        for atoms in configurations:
            for symbol in atoms.get_chemical_symbols():
                counts[symbol] = counts.get(symbol, 0) + 1
        return counts
    cutoff = float(descriptor['cutoff'])
    for atoms in configurations:
        i, j = neighbor_list('ij', atoms, cutoff)
        keep = i < j
        numbers = atoms.numbers
        for a, b in zip(numbers[i[keep]], numbers[j[keep]]):
            key = '-'.join(sorted((_symbol(a), _symbol(b)), key=lambda s: atomic_numbers[s]))
            counts[key] = counts.get(key, 0) + 2  # gap_fit counts every pair from both ends
    return counts


def _symbol(number: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(number)]


def check_sparse_points(configurations, descriptors) -> None:
    """Raise ``ValueError`` if a descriptor asks for more sparse points than there are environments."""
    for descriptor in descriptors:
        counts = count_environments(configurations, descriptor)
        if not counts:
            raise ValueError(f"{descriptor['type']} descriptor finds no environment in the training set")
        key, smallest = min(counts.items(), key=lambda kv: kv[1])
        if int(descriptor['n_sparse']) > smallest:
            raise ValueError(
                f"{descriptor['type']} descriptor: n_sparse={descriptor['n_sparse']} is larger than the "
                f'{smallest} environments available for {key} in the training set'
            )


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
        r'^Descriptor \d+:\s*(.+?)\s*\nNumber of descriptors:\s+(\d+)\s*\nNumber of partial derivatives of descriptors:\s+(\d+)',
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
        result['ill_conditioned'] = 'la_matrix_factorise' in lowered or 'not positive definite' in lowered or 'dpotrf' in lowered
    start = re.search(r'libAtoms::Hello World: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)', text)
    end = re.search(r'libAtoms::Finalise: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)', text)
    if start and end:
        fmt = '%Y-%m-%d %H:%M:%S'
        result['wall_time_s'] = (datetime.strptime(end.group(1), fmt) - datetime.strptime(start.group(1), fmt)).total_seconds()
    return result


def parse_gap_xml(text: str) -> dict:
    """Label, init args, sparse points and sparseX files of a GAP XML file.

    :returns: ``label``, ``init_args`` (``IP GAP label=...``), ``n_sparse`` (list per gpCoordinates),
        ``sparse_files`` (list of sparseX file names, empty when stored inline), ``species_z``
        (atomic numbers with a non-zero e0 or a descriptor), ``cutoff`` (largest descriptor cutoff, Å),
        ``descriptors`` (the descriptor strings stored in the XML).
    :raises ValueError: if no ``Potential`` element with a label is found.
    """
    potential = re.search(r'<Potential\s+label="([^"]+)"\s+init_args="([^"]+)"', text)
    if not potential:
        raise ValueError('not a GAP XML file: no <Potential label=... init_args=...> element')
    descriptors = [' '.join(d.split()) for d in re.findall(r'<descriptor>\s*(.*?)\s*</descriptor>', text, re.S)]
    cutoffs = [float(c) for d in descriptors for c in re.findall(r'\bcutoff=([\d.eE+-]+)', d)]
    zs = set()
    for d in descriptors:
        zs.update(int(z) for z in re.findall(r'\bZ\d?=(\d+)', d))
        for group in re.findall(r'species_Z=\{([\d\s]+)\}', d):
            zs.update(int(z) for z in group.split())
    return {
        'label': potential.group(1),
        'init_args': potential.group(2),
        'n_sparse': [int(n) for n in re.findall(r'<gpCoordinates[^>]*\bn_sparseX="(\d+)"', text)],
        'sparse_files': re.findall(r'<gpCoordinates[^>]*\bsparseX_filename="([^"]+)"', text),
        'species_z': sorted(zs),
        'cutoff': max(cutoffs) if cutoffs else None,
        'descriptors': descriptors,
    }


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
