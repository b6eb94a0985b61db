"""Input checks of the REMatch engine: per-configuration feature matrices and solver parameters.

Every configuration is a ``(n_atoms, n_features)`` float64 matrix whose rows are L2-normalised
(the linear environment metric of De et al., PCCP 18, 13754 (2016) needs unit rows, so that
``C_ij = p_i . p_j`` lies in [-1, 1]). Errors name the input, the configuration and the atom.
Pure numpy, no AiiDA.
"""

from __future__ import annotations

import math

import numpy as np

#: Largest allowed deviation of a per-atom feature row's L2 norm from 1.
NORM_TOLERANCE = 1e-6


def _as_matrix(x, index: int, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) and hasattr(x, 'toarray'):
        x = x.toarray()
    elif not isinstance(x, np.ndarray) and hasattr(x, 'todense'):
        x = x.todense()
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(
            f'configuration {index} of {name} has shape {x.shape}; expected a 2-D (n_atoms, n_features) '
            'array (pass a list of per-configuration matrices, e.g. [features] for a single configuration)'
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f'configuration {index} of {name} has shape {x.shape}: no atoms or no features')
    return x


def _check_matrix(x: np.ndarray, index: int, name: str) -> None:
    finite = np.isfinite(x)
    if not finite.all():
        atom = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ValueError(f'configuration {index} of {name} contains NaN or inf (first at atom {atom})')
    norms = np.sqrt(np.einsum('ij,ij->i', x, x))
    bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
    if bad.size:
        atom = int(bad[0])
        raise ValueError(
            f'configuration {index} of {name}, atom {atom}: feature row has L2 norm {norms[atom]:.10g} '
            f'(expected 1 within {NORM_TOLERANCE:g}; {bad.size} row(s) affected). REMatch with the linear '
            'metric needs per-atom L2-normalised SOAP vectors: use x / np.linalg.norm(x, axis=1, keepdims=True)'
        )


class _Configurations(list):
    """List of validated ``(n_atoms, n_features)`` float64 matrices; ``block`` is the contiguous
    ``(n_configurations, n_atoms, n_features)`` array they are views of, when given as one."""

    block: np.ndarray | None = None


def _prepare(features, name: str, n_features: int | None = None, *, check: bool = True) -> _Configurations:
    """Float64 C-contiguous ``(n_atoms, n_features)`` matrices, shape-checked.

    With ``check=False`` NaN/inf and row norms are not checked here: :func:`_self_values` checks them
    from the diagonals of the self Gram matrices it computes anyway (``C_ii = |p_i|^2``).
    """
    if isinstance(features, np.ndarray) and features.ndim == 2:
        raise ValueError(
            f'{name} is a single 2-D array of shape {features.shape}; pass a list of per-configuration '
            '(n_atoms, n_features) matrices, e.g. [features]'
        )
    out = _Configurations()
    if isinstance(features, np.ndarray) and features.ndim == 3 and features.size:
        block = np.ascontiguousarray(features, dtype=np.float64)
        out.block = block
        items = list(block)
    else:
        try:
            items = list(features)
        except TypeError:
            raise ValueError(f'{name} must be a sequence of (n_atoms, n_features) arrays') from None
    if not items:
        raise ValueError(f'{name} is empty: at least one configuration is needed')
    for index, x in enumerate(items):
        x = _as_matrix(x, index, name)
        if n_features is None:
            n_features = x.shape[1]
        elif x.shape[1] != n_features:
            raise ValueError(
                f'configuration {index} of {name} has {x.shape[1]} features per atom, expected {n_features}'
            )
        if check:
            _check_matrix(x, index, name)
        out.append(x)
    return out


def _check_parameters(alpha, threshold, max_iter, chunk_bytes) -> tuple[float, float, int, int]:
    alpha = float(alpha)
    threshold = float(threshold)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f'alpha must be a positive finite number, got {alpha}')
    if not (0 < threshold < 1):
        raise ValueError(f'threshold must be in (0, 1), got {threshold}')
    if int(max_iter) < 2:
        raise ValueError(f'max_iter must be at least 2, got {max_iter}')
    if int(chunk_bytes) < 1:
        raise ValueError(f'chunk_bytes must be positive, got {chunk_bytes}')
    return alpha, threshold, int(max_iter), int(chunk_bytes)
