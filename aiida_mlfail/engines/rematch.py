"""``mlfail-rematch``: SOAP + REMatch comparison of sets of configurations, run inside ``mlfail.rematch`` jobs.

    mlfail-rematch [parameters.json]

``parameters.json`` (written by ``RematchCalculation``): ``mode`` (see :data:`MODES`), ``alpha``,
``threshold`` (REMatch, see :func:`normalise_parameters`), ``soap`` (SOAP parameters, see
``science.soap.normalise_soap_parameters``; species default: union of the sets' species), ``x`` and
optionally ``y`` (extxyz file names; without ``y``, Y = X). Writes ``rematch.npz`` (named arrays,
see :func:`compare`) and ``results.json`` (summary numbers), and progress lines
``[mlfail-rematch] ...`` on standard output. Exit status 1 with ``mlfail-rematch: <message>`` on
standard error for bad input.

REMatch: De, Bartók, Csányi, Ceriotti, PCCP 18, 13754 (2016), computed by ``science.rematch``;
distance ``D = sqrt(2 - 2 K)`` (dimensionless). No AiiDA here: the job's parser reads the outputs
with :func:`parse_rematch_output`.
"""

from __future__ import annotations

import io
import json
import math
import sys
import time

import numpy as np

from aiida_mlfail.science import checks

#: Analyses: REMatch distance of every configuration to the first one of its set (time series along
#: a trajectory, X and, if given, Y); of every X configuration to its nearest Y configuration; the
#: full X x Y kernel and distance matrices.
MODES = ('distance_to_first', 'nearest_neighbour', 'matrix')
#: REMatch defaults (``alpha`` entropic regularisation, ``threshold`` Sinkhorn stopping threshold).
PARAMETER_DEFAULTS = {'alpha': 0.1, 'threshold': 1e-6}
PARAMETERS_FILE = 'parameters.json'
ARRAYS_FILE = 'rematch.npz'
RESULTS_FILE = 'results.json'
#: Arrays every output of a mode holds (``_y`` arrays are added for Y where they apply).
REQUIRED_ARRAYS = {'distance_to_first': ('distance', 'kernel'),
                   'nearest_neighbour': ('distance', 'kernel', 'nearest_index'),
                   'matrix': ('distance', 'kernel')}
PREFIX = '[mlfail-rematch]'


def normalise_parameters(parameters: dict) -> dict:
    """Merge with :data:`PARAMETER_DEFAULTS` and check ``mode``, ``alpha``, ``threshold``.

    :param parameters: ``mode`` (one of :data:`MODES`, required), ``alpha`` (> 0, finite; small ->
        best match, large -> average kernel), ``threshold`` (in (0, 1)).
    :raises ValueError: naming the offending key or value.
    """
    checks.known_keys(parameters, {'mode', *PARAMETER_DEFAULTS}, 'REMatch parameter')
    merged = {**PARAMETER_DEFAULTS, **parameters}
    if merged.get('mode') not in MODES:
        raise ValueError(f"unknown mode {merged.get('mode')!r}; use one of {list(MODES)}")
    return {'mode': merged['mode'], 'alpha': checks.number(merged['alpha'], 'alpha', gt=0),
            'threshold': checks.number(merged['threshold'], 'threshold', gt=0, lt=1)}


def _progress(message: str) -> None:
    print(f'{PREFIX} {message}', flush=True)


def _steps(n: int, parts: int = 10) -> int:
    return max(1, math.ceil(n / parts))


def soap_features(configurations, soap: dict, name: str, progress=_progress) -> list[np.ndarray]:
    """Row-normalised SOAP spectra (``science.soap.normalised_features``) in chunks, reporting progress.

    :returns: list of ``(n_atoms_i, n_features)`` arrays.
    :raises ValueError: as ``normalised_features`` (species not described, empty spectra), with the
        configuration index counted over the whole set.
    """
    from aiida_mlfail.science.soap import normalised_features, soap_descriptor  # noqa: PLC0415

    descriptor = soap_descriptor(soap)
    features, n, step = [], len(configurations), _steps(len(configurations))
    for start in range(0, n, step):
        try:
            features.extend(normalised_features(descriptor, configurations[start:start + step]))
        except ValueError as exc:
            raise ValueError(f'{name}, configurations {start}-{min(start + step, n) - 1}: {exc}') from None
        progress(f'SOAP {min(start + step, n)}/{n} configurations of {name}')
    return features


def _distance_to_first(features, p, name, progress):
    from aiida_mlfail.science.rematch import rematch_kernel  # noqa: PLC0415

    kernel, n, step = [], len(features), _steps(len(features))
    for start in range(0, n, step):
        kernel.append(rematch_kernel(features[start:start + step], [features[0]], alpha=p['alpha'],
                                     threshold=p['threshold'])[:, 0])
        progress(f'distance to first {min(start + step, n)}/{n} configurations of {name}')
    return np.concatenate(kernel)


def compare(x, y, parameters: dict, soap: dict, progress=_progress) -> tuple[dict, dict]:
    """Compute the REMatch analysis of ``parameters['mode']``.

    :param x: list of ``ase.Atoms`` (set X); ``y``: list or ``None`` (then Y = X).
    :param parameters: as :func:`normalise_parameters` returns.
    :param soap: SOAP parameters (``science.soap.normalise_soap_parameters``; species default: union
        of the species of X and Y).
    :param progress: callable receiving progress messages.
    :returns: ``(arrays, results)``. Arrays (REMatch kernel ``K`` and distance ``D = sqrt(2 - 2K)``,
        dimensionless):

        * ``distance_to_first``: ``kernel``, ``distance`` ``(n_x,)`` of X to its first configuration;
          with ``y`` also ``kernel_y``, ``distance_y`` ``(n_y,)`` of Y to its first configuration;
        * ``nearest_neighbour``: ``kernel``, ``distance``, ``nearest_index`` ``(n_x,)``: the largest
          kernel of each X configuration over Y, and the index in Y where it occurs (first on ties);
        * ``matrix``: ``kernel``, ``distance`` ``(n_x, n_y)``;

        and ``md_step`` ``(n_x,)`` / ``md_step_y`` ``(n_y,)`` (int) when every configuration of the
        set has ``info['md_step']``. Results: ``mode``, ``n_x``, ``n_y``, ``y_is_x``, ``alpha``,
        ``threshold``, ``soap``, ``n_features``, ``{min,mean,median,p95,max}_distance`` of
        ``distance`` (for the matrix of X against itself, of the entries above the diagonal), the
        same with suffix ``_y`` for ``distance_y``, ``threads`` (of the REMatch engine,
        :func:`~aiida_mlfail.science.rematch.n_threads`), ``soap_time_s`` and ``wall_time_s``.
    :raises ValueError: for bad parameters, SOAP parameters or configurations (message names them).
    """
    from aiida_mlfail.science.config_space import distance_statistics  # noqa: PLC0415
    from aiida_mlfail.science.rematch import RematchIndex, n_threads, rematch_distance, rematch_kernel  # noqa: PLC0415
    from aiida_mlfail.science.soap import normalise_soap_parameters  # noqa: PLC0415

    start = time.perf_counter()
    p = normalise_parameters(parameters)
    if not x:
        raise ValueError('set X has no configurations')
    if y is not None and not y:
        raise ValueError('set Y has no configurations')
    species = {s for atoms in [*x, *(y or [])] for s in atoms.get_chemical_symbols()}
    soap = normalise_soap_parameters(soap, species=sorted(species))
    missing = sorted(species - set(soap['species']))
    if missing:
        raise ValueError(f"species {missing} of the configurations are not in the SOAP species {soap['species']}")
    mode = p['mode']
    progress(f"{mode}: {len(x)} configurations in X, {len(y) if y is not None else 'Y = X'}"
             f"{' in Y' if y is not None else ''}; alpha {p['alpha']:g}, SOAP n_max {soap['n_max']} "
             f"l_max {soap['l_max']} r_cut {soap['r_cut']:g} Å, species {soap['species']}")
    fx = soap_features(x, soap, 'X', progress)
    fy = soap_features(y, soap, 'Y', progress) if y is not None else None
    soap_time = time.perf_counter() - start
    arrays = {}
    if mode == 'distance_to_first':
        arrays['kernel'] = _distance_to_first(fx, p, 'X', progress)
        if fy is not None:
            arrays['kernel_y'] = _distance_to_first(fy, p, 'Y', progress)
    elif mode == 'nearest_neighbour':
        index = RematchIndex(fy if fy is not None else fx, alpha=p['alpha'], threshold=p['threshold'])
        kernel, nearest, step = np.empty(len(fx)), np.empty(len(fx), dtype=np.int64), _steps(len(fx), 20)
        for i, features in enumerate(fx):
            kernel[i], nearest[i] = index.max_similarity(features)
            if (i + 1) % step == 0 or i + 1 == len(fx):
                progress(f'nearest neighbour {i + 1}/{len(fx)}')
        arrays.update(kernel=kernel, nearest_index=nearest)
    else:
        if fy is None:
            progress(f'matrix {len(fx)} x {len(fx)} (symmetric)')
            arrays['kernel'] = rematch_kernel(fx, alpha=p['alpha'], threshold=p['threshold'])
        else:
            rows, step = [], _steps(len(fx))
            for s in range(0, len(fx), step):
                rows.append(rematch_kernel(fx[s:s + step], fy, alpha=p['alpha'], threshold=p['threshold']))
                progress(f'matrix rows {min(s + step, len(fx))}/{len(fx)}')
            arrays['kernel'] = np.vstack(rows)
        progress('matrix done')
    arrays['distance'] = rematch_distance(arrays['kernel'])
    if 'kernel_y' in arrays:
        arrays['distance_y'] = rematch_distance(arrays['kernel_y'])
    for suffix, configurations in (('', x), ('_y', y)):
        if configurations is not None and all('md_step' in a.info for a in configurations):
            arrays[f'md_step{suffix}'] = np.array([int(a.info['md_step']) for a in configurations], dtype=np.int64)
    results = {'mode': mode, 'n_x': len(x), 'n_y': len(y) if y is not None else len(x), 'y_is_x': y is None,
               'alpha': p['alpha'], 'threshold': p['threshold'], 'soap': soap, 'n_features': int(fx[0].shape[1]),
               'threads': n_threads()}
    for suffix in ('', '_y'):
        if f'distance{suffix}' in arrays:
            d = arrays[f'distance{suffix}']
            if mode == 'matrix' and y is None and len(x) > 1:
                d = d[np.triu_indices(len(x), 1)]
            results.update({f'{k}_distance{suffix}': v for k, v in distance_statistics(d).items() if k != 'n'})
    results['soap_time_s'] = round(soap_time, 3)
    results['wall_time_s'] = round(time.perf_counter() - start, 3)
    progress(f"done in {results['wall_time_s']:.1f} s: distance min {results['min_distance']:.4f} "
             f"mean {results['mean_distance']:.4f} max {results['max_distance']:.4f}")
    return arrays, results


def parse_rematch_output(npz: bytes, results_text: str) -> tuple[dict, dict]:
    """Read and check the outputs of ``mlfail-rematch`` (AiiDA-free; the job's parser calls it).

    :param npz: content of ``rematch.npz``; ``results_text``: content of ``results.json``.
    :returns: ``(arrays, results)`` as :func:`compare` returns them.
    :raises ValueError: for unreadable files, a mode without its arrays, arrays whose shapes do not
        match ``n_x``/``n_y``, non-finite values or nearest indices outside Y (the message names the array).
    """
    try:
        results = json.loads(results_text)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{RESULTS_FILE} is not valid JSON: {exc}') from None
    for key in ('mode', 'n_x', 'n_y'):
        if key not in results:
            raise ValueError(f'{RESULTS_FILE} has no {key!r}')
    mode, n_x, n_y = results['mode'], results['n_x'], results['n_y']
    if mode not in MODES:
        raise ValueError(f'{RESULTS_FILE}: unknown mode {mode!r}')
    try:
        with np.load(io.BytesIO(npz), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f'{ARRAYS_FILE} is unreadable: {exc}') from None
    missing = [name for name in REQUIRED_ARRAYS[mode] if name not in arrays]
    if missing:
        raise ValueError(f'{ARRAYS_FILE} of mode {mode!r} lacks the array(s) {missing}')
    for name, array in arrays.items():
        expected = (n_x, n_y) if mode == 'matrix' and name in ('kernel', 'distance') else (
            (n_y,) if name.endswith('_y') else (n_x,))
        if array.shape != expected:
            raise ValueError(f'array {name!r} has shape {array.shape}, expected {expected}')
        if not np.all(np.isfinite(array)):
            raise ValueError(f'array {name!r} holds NaN or infinite values')
    if 'nearest_index' in arrays and arrays['nearest_index'].size and not (
            0 <= arrays['nearest_index'].min() and arrays['nearest_index'].max() < n_y):
        raise ValueError(f'nearest_index holds indices outside [0, {n_y})')
    return arrays, results


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mlfail-rematch``; returns the exit status (0, or 1 with a message on stderr)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or (argv and argv[0] in ('-h', '--help')):
        print(__doc__)
        return 0 if argv and argv[0] in ('-h', '--help') else 1
    try:
        with open(argv[0] if argv else PARAMETERS_FILE) as handle:
            parameters = json.load(handle)
        from aiida_mlfail.science.extxyz import read_configurations  # noqa: PLC0415

        if not parameters.get('x'):
            raise ValueError(f'{PARAMETERS_FILE} names no file of configurations for x')
        x = read_configurations(parameters['x'])
        y = read_configurations(parameters['y']) if parameters.get('y') else None
        arrays, results = compare(x, y, {k: parameters[k] for k in ('mode', 'alpha', 'threshold') if k in parameters},
                                  parameters.get('soap') or {}, _progress)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        print(f'mlfail-rematch: {type(exc).__name__}: {exc}', file=sys.stderr)
        return 1
    np.savez(ARRAYS_FILE, **arrays)
    with open(RESULTS_FILE, 'w') as handle:
        json.dump(results, handle, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
