"""Fast, exact REMatch kernel between configurations described by per-atom SOAP vectors.

REMatch (regularised-entropy match) is the global similarity of De, Bartók, Csányi and Ceriotti,
"Comparing molecules and solids across structural and alchemical space", Phys. Chem. Chem. Phys.
18, 13754 (2016), https://doi.org/10.1039/c6cp00415f. For configurations A (N atoms) and B
(M atoms) with per-atom, L2-normalised descriptor rows p_i^A, p_j^B:

* environment kernel (linear metric): ``C_ij = p_i^A . p_j^B`` (dimensionless, in [-1, 1]);
* REMatch (the paper's regularised-entropy match): ``K^alpha(A, B) = Tr(P^T C)`` with ``P`` the
  entropy-regularised optimal transport plan (rows sum to 1/N, columns to 1/M) maximising
  ``sum_ij P_ij (C_ij - alpha ln P_ij)``, found by Sinkhorn balancing of ``exp(-(1 - C_ij)/alpha)``;
* normalised kernel: ``K(A, B) / sqrt(K(A, A) K(B, B))``; kernel-induced distance
  ``D = sqrt(2 - 2 K)``;
* limits: ``alpha -> inf`` gives the average kernel ``mean(C)``, ``alpha -> 0`` the
  best-match kernel ``max_P Tr(P^T C)`` over the same transport polytope.

(Formulas as in the paper's REMatch section and in dscribe's implementation; equation numbers are
not quoted because they could not be checked against the published version here.)

The definition reproduced here is exactly that of ``dscribe.kernels.REMatchKernel(metric="linear",
alpha=alpha, threshold=threshold, normalize_kernel=True)`` (dscribe 2.1), *including its stopping
rule*: Sinkhorn sweeps ``v = (1/M) / (K^T u)``, ``u = (1/N) / (K v)`` from ``u = 1/N``; after sweep
``k`` (0-based) with ``k % 5 != 0`` the residual
``sum((u - u_prev)^2) / sum(u^2) + sum((v - v_prev)^2) / sum(v^2)`` is compared with ``threshold``.
The result therefore agrees with dscribe at any threshold (to rounding), not only when both are
tightly converged.

What is different from dscribe is how it is computed:

* all environment kernels of a chunk of pairs come from one GEMM of stacked feature matrices;
* Sinkhorn runs batched over many pairs at once (``(pairs, N, M)`` arrays and batched mat-vecs);
  pairs that have converged are frozen and removed from the batch;
* pairs are processed in chunks of bounded memory (``chunk_bytes``), so e.g. a 2000 x 2000
  comparison of 64-atom configurations needs at most ~130 MiB besides the inputs and the result
  (with 2 threads; see ``chunk_bytes`` of :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel`);
* the chunks (GEMM plus Sinkhorn) run in as many threads as BLAS is configured for
  (:func:`~aiida_mlfail.science.rematch.threads.n_threads`), with BLAS itself limited to one thread meanwhile (small
  GEMMs and batched
  mat-vecs scale better that way); results do not depend on the thread count;
* for ``alpha < 1/300`` (where ``exp(-(1 - C)/alpha)`` can underflow) the kernel is stabilised by
  exact row/column rescaling (every row and column keeps an entry equal to 1) with the dscribe
  iteration and stopping rule carried over exactly; any pair that still produces a non-finite
  number falls back to a log-domain (log-sum-exp) Sinkhorn of the same iteration;
* :class:`RematchIndex` caches everything that depends only on the references, forms the
  environment kernels of a query on the leading principal axes of the reference environments
  when a rigorous bound shows the rest negligible (then re-solves the near-maximal pairs with all
  axes), and skips Sinkhorn solves that provably cannot change the maximum (see
  :meth:`RematchIndex.max_similarity`).

This module is part of the pure science layer: numpy / scipy only, no AiiDA.

The package is cut along the engine's seams, one concern per module:

* :mod:`.validation` -- feature matrices and solver parameters (:data:`.NORM_TOLERANCE`);
* :mod:`.workspace` -- reusable per-thread work buffers (:func:`release_workspaces`);
* :mod:`.threads` -- the thread pool and BLAS control (:func:`~aiida_mlfail.science.rematch.threads.n_threads`);
* :mod:`.sinkhorn` -- the batched Sinkhorn solver and its log-domain fallback;
* :mod:`.blocks` -- bucketing, stacking and the self / cross values of whole sets;
* :mod:`.kernel` -- :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel` and :func:`rematch_distance`;
* :mod:`.limits` -- :func:`average_kernel` and :func:`best_match_kernel` (``alpha -> inf`` / ``0``);
* :mod:`.index` -- :class:`RematchIndex`, the novelty query against a fixed reference set.

Everything public is imported here: ``from aiida_mlfail.science.rematch import X`` is the
supported way in.
"""

from __future__ import annotations

from .index import DEFAULT_KERNEL_TOLERANCE, RematchIndex
from .kernel import rematch_distance, rematch_kernel
from .limits import _best_match_value as _best_match_value  # internal, reached by the unit tests
from .limits import average_kernel, best_match_kernel
from .sinkhorn import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_ITER
from .sinkhorn import _Engine as _Engine  # internal, reached by the unit tests
from .sinkhorn import _sinkhorn_log as _sinkhorn_log  # internal, reached by the unit tests
from .threads import n_threads
from .validation import NORM_TOLERANCE
from .workspace import release_workspaces

__all__ = [
    'rematch_kernel',
    'rematch_distance',
    'average_kernel',
    'best_match_kernel',
    'RematchIndex',
    'NORM_TOLERANCE',
    'DEFAULT_CHUNK_BYTES',
    'DEFAULT_MAX_ITER',
    'DEFAULT_KERNEL_TOLERANCE',
    'n_threads',
    'release_workspaces',
]

