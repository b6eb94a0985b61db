"""REMatch kernel matrix between two sets of configurations and the kernel-induced distance.

Definition, iteration and stopping rule of ``dscribe.kernels.REMatchKernel(metric="linear",
normalize_kernel=True)``; De et al., PCCP 18, 13754 (2016). Pure numpy, no AiiDA.
"""

from __future__ import annotations

import numpy as np

from .blocks import _cross_values, _self_values
from .sinkhorn import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_ITER, _Engine, _Unconverged
from .threads import _threaded_phase
from .validation import _prepare
from .workspace import _workspace


def rematch_kernel(
    features_a,
    features_b=None,
    *,
    alpha: float = 0.1,
    threshold: float = 1e-6,
    max_iter: int = DEFAULT_MAX_ITER,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    threads: int | None = None,
) -> np.ndarray:
    """Normalised REMatch kernel matrix (linear environment metric) between two sets of configurations.

    ``K[i, j] = k(A_i, B_j) / sqrt(k(A_i, A_i) k(B_j, B_j))`` with ``k(A, B) = Tr(P^T C)``,
    ``C = A B^T`` and ``P`` the Sinkhorn plan of ``exp(-(1 - C)/alpha)`` with marginals 1/N, 1/M
    (De et al., PCCP 18, 13754 (2016), REMatch with normalisation). Identical in definition, iteration and
    stopping rule to ``dscribe.kernels.REMatchKernel(metric="linear", alpha=alpha,
    threshold=threshold, normalize_kernel=True).create(features_a, features_b)``.

    :param features_a: sequence of ``(n_atoms_i, n_features)`` arrays, one per configuration (atom
        counts may differ); every row must be L2-normalised (e.g. ``dscribe`` SOAP divided by its row
        norm). Dimensionless.
    :param features_b: second sequence, same ``n_features``; ``None`` means ``features_a`` (the upper
        triangle is computed and mirrored, the diagonal gives the self-similarities, as in dscribe).
    :param alpha: entropic regularisation (> 0); small -> best match, large -> average kernel.
    :param threshold: dscribe's Sinkhorn stopping threshold on the relative squared change of the
        scaling vectors, in (0, 1).
    :param max_iter: cap on Sinkhorn sweeps per pair; pairs reaching it keep their last iterate and a
        single ``RuntimeWarning`` names them with their residuals.
    :param chunk_bytes: size (bytes) of one ``(pairs, N, M)`` float64 Sinkhorn work array. Each
        thread holds the environment kernels of one chunk (one GEMM), a copy, the Sinkhorn kernel
        and its stacked A features (at most 8 chunks); the stacked B features of a slab are at
        most 8 chunks. The working memory is therefore at most about ``(8 + 12 * threads) *
        chunk_bytes`` (~130 MiB with 2 threads by default) plus the ``(len(features_a),
        len(features_b))`` result, whatever the number of pairs (measured: 17 MiB peak for both
        20 x 100 and 100 x 500 pairs of 64-atom configurations, ``benchmarks/rematch.py``).
        Configurations given as one 3-D array ``(n_configurations, n_atoms, n_features)`` are
        stacked without copying.
    :param threads: number of threads (default :func:`~aiida_mlfail.science.rematch.threads.n_threads`: as many as BLAS
        uses); the
        results do not depend on it.
    :returns: array of shape ``(len(features_a), len(features_b))`` (symmetric with unit diagonal when
        ``features_b`` is ``None``).
    :raises ValueError: for a non-sequence / empty input, a configuration that is not 2-D, mismatched
        feature counts, NaN/inf entries (naming the configuration) or a row whose L2 norm differs from
        1 by more than :data:`.NORM_TOLERANCE` (naming configuration, atom and norm); for
        ``alpha <= 0`` or ``threshold`` outside (0, 1).
    """
    engine = _Engine(alpha, threshold, max_iter, chunk_bytes, threads)
    A = _prepare(features_a, 'features_a', check=features_b is None)
    unconverged = _Unconverged()
    if features_b is None:
        with _workspace() as ws, _threaded_phase(engine.threads):
            raw = _cross_values(engine, A, A, unconverged, True, ws)
        upper = np.triu(np.ones(raw.shape, dtype=bool), 1)
        raw[upper.T] = raw.T[upper.T]
        diag = np.sqrt(np.diagonal(raw).copy())
        unconverged.warn(engine)
        return raw / np.outer(diag, diag)
    B = _prepare(features_b, 'features_b', A[0].shape[1], check=False)
    # self-similarities first: they also validate every row (from the Gram diagonals)
    labels = [('features_a', i) for i in range(len(A))] + [('features_b', j) for j in range(len(B))]
    with _workspace() as ws, _threaded_phase(engine.threads):
        selfs = np.sqrt(_self_values(engine, list(A) + list(B), labels, unconverged, ws))
        sa, sb = selfs[: len(A)], selfs[len(A) :]
        raw = _cross_values(engine, A, B, unconverged, False, ws)
    unconverged.warn(engine)
    return raw / np.outer(sa, sb)


def rematch_distance(k):
    """REMatch distance ``D = sqrt(max(2 - 2 k, 0))`` (De et al. 2016) of a normalised kernel.

    :param k: scalar or array of normalised kernel values (<= 1 up to rounding).
    :returns: same shape as ``k`` (a float for a scalar); dimensionless, in [0, 2].
    """
    d = np.sqrt(np.maximum(2.0 - 2.0 * np.asarray(k, dtype=np.float64), 0.0))
    return float(d) if d.ndim == 0 else d
