"""The two limits of REMatch (De et al., PCCP 18, 13754 (2016)): the average kernel
(``alpha -> inf``) and the best-match kernel (``alpha -> 0``), computed exactly; reference utilities
for checking the engine, not optimised for large sets. Pure numpy / scipy, no AiiDA.
"""

from __future__ import annotations

import numpy as np

from .validation import _prepare


def average_kernel(features_a, features_b=None) -> np.ndarray:
    """Normalised average kernel, the ``alpha -> inf`` limit of REMatch (De et al. 2016).

    ``mean(C_AB) / sqrt(mean(C_AA) mean(C_BB))``; with the linear metric ``mean(C_AB)`` is the dot
    product of the mean feature vectors, so this is the cosine between them.

    :param features_a: as in :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel`.
    :param features_b: as in :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel` (``None`` -> ``features_a``).
    :returns: array ``(len(features_a), len(features_b))``.
    :raises ValueError: as :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel` for invalid features.
    """
    A = _prepare(features_a, 'features_a')
    B = A if features_b is None else _prepare(features_b, 'features_b', A[0].shape[1])
    ma = np.array([a.mean(axis=0) for a in A])
    mb = ma if features_b is None else np.array([b.mean(axis=0) for b in B])
    raw = ma @ mb.T
    na = np.einsum('ij,ij->i', ma, ma)
    nb = na if features_b is None else np.einsum('ij,ij->i', mb, mb)
    return raw / np.sqrt(np.outer(na, nb))


def _best_match_value(C: np.ndarray) -> float:
    """``max_P sum_ij P_ij C_ij`` over plans with rows 1/N and columns 1/M (a linear programme)."""
    n, m = C.shape
    if n == m:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(C, maximize=True)
        return float(C[rows, cols].sum() / n)
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, vstack

    idx = np.arange(n * m)
    row_eq = coo_matrix((np.ones(n * m), (idx // m, idx)), shape=(n, n * m))
    col_eq = coo_matrix((np.ones(n * m), (idx % m, idx)), shape=(m, n * m))
    res = linprog(
        -C.ravel(),
        A_eq=vstack([row_eq, col_eq]).tocsr(),
        b_eq=np.concatenate([np.full(n, 1.0 / n), np.full(m, 1.0 / m)]),
        bounds=(0, None),
        method='highs',
    )
    if res.status != 0:  # pragma: no cover - the transport polytope is never empty
        raise RuntimeError(f'best-match linear programme failed: {res.message}')
    return float(-res.fun)


def best_match_kernel(features_a, features_b=None) -> np.ndarray:
    """Normalised best-match kernel, the ``alpha -> 0`` limit of REMatch (De et al. 2016).

    ``BM(A, B) = max_P Tr(P^T C)`` over transport plans with rows summing to 1/N and columns to 1/M
    (for N == M the optimal assignment, ``mean_i C[i, sigma(i)]``), normalised by
    ``sqrt(BM(A, A) BM(B, B))`` (which is 1 for L2-normalised rows). Solved exactly per pair with
    ``scipy.optimize.linear_sum_assignment`` (N == M) or the HiGHS LP (N != M); a reference utility,
    not optimised for large sets.

    :returns: array ``(len(features_a), len(features_b))``.
    :raises ValueError: as :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel` for invalid features.
    """
    A = _prepare(features_a, 'features_a')
    symmetric = features_b is None
    B = A if symmetric else _prepare(features_b, 'features_b', A[0].shape[1])
    sa = np.array([_best_match_value(a @ a.T) for a in A])
    sb = sa if symmetric else np.array([_best_match_value(b @ b.T) for b in B])
    out = np.empty((len(A), len(B)))
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            if symmetric and j < i:
                out[i, j] = out[j, i]
            elif symmetric and j == i:
                out[i, j] = sa[i]
            else:
                out[i, j] = _best_match_value(a @ b.T)
    return out / np.sqrt(np.outer(sa, sb))
