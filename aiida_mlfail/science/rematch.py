"""Fast, exact REMatch kernel between configurations described by per-atom SOAP vectors.

REMatch (regularised-entropy match) is the global similarity of De, Bartók, Csányi and Ceriotti,
"Comparing molecules and solids across structural and alchemical space", Phys. Chem. Chem. Phys.
18, 13754 (2016), https://doi.org/10.1039/c6cp00415f. For configurations A (N atoms) and B
(M atoms) with per-atom, L2-normalised descriptor rows p_i^A, p_j^B:

* environment kernel (linear metric): ``C_ij = p_i^A . p_j^B`` (dimensionless, in [-1, 1]);
* REMatch (the paper's regularised-entropy match): ``K^alpha(A, B) = Tr(P^T C)`` with ``P`` the entropy-regularised optimal
  transport plan (rows sum to 1/N, columns to 1/M) maximising ``sum_ij P_ij (C_ij - alpha ln P_ij)``,
  found by Sinkhorn balancing of ``exp(-(1 - C_ij)/alpha)``;
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
  (with 2 threads; see ``chunk_bytes`` of :func:`rematch_kernel`);
* the chunks (GEMM plus Sinkhorn) run in as many threads as BLAS is configured for
  (:func:`n_threads`), with BLAS itself limited to one thread meanwhile (small GEMMs and batched
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
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import logsumexp

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

#: Largest allowed deviation of a per-atom feature row's L2 norm from 1.
NORM_TOLERANCE = 1e-6
#: Default size (bytes) of one ``(pairs, N, M)`` float64 work array; peak extra memory is a small
#: multiple of this (see :func:`rematch_kernel`).
DEFAULT_CHUNK_BYTES = 4 * 2**20
#: Default cap on Sinkhorn sweeps per pair (dscribe has none).
DEFAULT_MAX_ITER = 100_000
#: Default bound on the environment-kernel error of :meth:`RematchIndex.max_similarity` from
#: dropped principal axes.
DEFAULT_KERNEL_TOLERANCE = 1e-10

# With |C| <= 1 the exponent (C - 1)/alpha is >= -2/alpha; up to this magnitude exp() neither
# underflows nor produces denormals, so the plain dscribe kernel is used as is.
_PLAIN_EXPONENT_LIMIT = 600.0
# Stacked features of one slab of B configurations (shared by the threads), and of the A
# configurations of one chunk, are limited to this many chunk sizes.
_GEMM_CHUNKS = 8
# Stabilised kernels are used while all scalings stay within [1 / limit, limit].
_SCALING_LIMIT = 1e108
# Pruning margin (absolute, on the normalised kernel) covering floating-point rounding of the bound.
_PRUNE_SLACK = 1e-12
# RematchIndex: references within this of the maximum found with dropped axes are solved again
# with all axes (the values move by less than the kernel error bound, <= 1e-10 by default).
_RECHECK_MARGIN = 1e-6
# Rows of the reference environments used to find their principal axes.
_AXES_SAMPLE_ROWS = 32768
# Buckets of configurations padded to a common atom count waste at most this fraction per side.
_MAX_PAD_FRACTION = 0.25


# ------------------------------------------------------------------------------------------------
# input validation
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# Sinkhorn engine
# ------------------------------------------------------------------------------------------------


def _relative_change(x: np.ndarray, x_prev: np.ndarray, log_weight: np.ndarray | None) -> np.ndarray:
    """Row-wise ``sum((x - x_prev)^2) / sum(x^2)`` (dscribe's residual), safe against over/underflow.

    With ``log_weight`` the dscribe scaling vector is ``x * exp(log_weight)`` (up to a per-pair
    constant, which cancels); the residual is then evaluated as the ``x^2``-weighted mean of the
    squared relative change, with the weights formed in the log domain (they may span more than the
    float64 range when ``alpha`` is tiny).
    """
    if log_weight is not None:
        d = x - x_prev
        rel = np.divide(d, x, out=np.zeros_like(d), where=x != 0)
        lw = 2.0 * (np.log(x) + log_weight)  # x == 0 (padding) -> -inf -> weight 0
        lw -= lw.max(axis=1, keepdims=True)
        w = np.exp(lw)
        return np.einsum('bi,bi->b', w, rel * rel) / w.sum(axis=1)
    d = x - x_prev
    num = np.einsum('bi,bi->b', d, d)
    den = np.einsum('bi,bi->b', x, x)
    bad = ~((den > 1e-250) & (den < 1e250))
    if bad.any():
        scale = np.abs(x[bad]).max(axis=1, keepdims=True)
        xs = x[bad] / scale
        ds = d[bad] / scale
        num[bad] = np.einsum('bi,bi->b', ds, ds)
        den[bad] = np.einsum('bi,bi->b', xs, xs)
    return num / den


def _extreme(x: np.ndarray, marginal: np.ndarray) -> np.ndarray:
    """Pairs whose real scaling entries left [1e-108, 1e108] (about exp(+-250))."""
    real = marginal > 0
    return ((x > _SCALING_LIMIT) | ((x < 1.0 / _SCALING_LIMIT) & real)).any(axis=1)


def _sinkhorn_log(C: np.ndarray, alpha: float, threshold: float, max_iter: int) -> tuple[float, float, int, bool]:
    """dscribe's Sinkhorn iteration and stopping rule for one pair, carried out in the log domain.

    Slow (log-sum-exp per sweep) but immune to under/overflow for any ``alpha > 0``.
    Returns ``(Tr(P^T C), residual, sweeps, converged)``.
    """
    n, m = C.shape
    L = (C - 1.0) / alpha
    log_en, log_em = -math.log(n), -math.log(m)
    lu = np.full(n, log_en)
    lv = np.full(m, log_em)
    err = 1.0
    k = 0
    while err > threshold and k < max_iter:
        lu_prev, lv_prev = lu, lv
        lv = log_em - logsumexp(L + lu[:, None], axis=0)
        lu = log_en - logsumexp(L + lv[None, :], axis=1)
        if k % 5:
            err = 0.0
            for new, old in ((lu, lu_prev), (lv, lv_prev)):
                w = np.exp(2.0 * (new - new.max()))
                err += float(np.sum(w * np.expm1(old - new) ** 2) / np.sum(w))
        k += 1
    value = float(np.sum(np.exp(lu[:, None] + L + lv[None, :]) * C))
    return value, err, k, bool(err <= threshold)


class _Workspace:
    """Reusable flat float64 buffers (avoids page-faulting fresh multi-MB arrays for every chunk).

    One workspace per thread is kept between calls (:func:`_workspace`) when its buffers total at
    most ``_KEEP_WORKSPACE_BYTES``; larger ones are dropped after the call.
    """

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._buffers.values())

    def get(self, name: str, shape) -> np.ndarray:
        size = int(np.prod(shape))
        buf = self._buffers.get(name)
        if buf is None or buf.size < size:
            buf = np.empty(max(size, 1))
            self._buffers[name] = buf
        return buf[:size].reshape(shape)


_THREAD_LOCAL = threading.local()
_KEEP_WORKSPACE_BYTES = 64 * 2**20
_GENERATION = [0]  # bumped by release_workspaces(): cached workspaces of older generations are dropped


@contextlib.contextmanager
def _workspace():
    """This thread's cached workspace (a fresh one if it is in use, e.g. re-entrant calls)."""
    ws = getattr(_THREAD_LOCAL, 'workspace', None)
    if ws is None or getattr(_THREAD_LOCAL, 'generation', None) != _GENERATION[0]:
        ws = _Workspace()
    _THREAD_LOCAL.workspace = None
    try:
        yield ws
    finally:
        if ws.nbytes() <= _KEEP_WORKSPACE_BYTES:
            _THREAD_LOCAL.workspace = ws
            _THREAD_LOCAL.generation = _GENERATION[0]


def release_workspaces() -> None:
    """Drop the work buffers (up to 64 MiB per thread) that the engine keeps between calls."""
    _GENERATION[0] += 1
    _THREAD_LOCAL.workspace = None


# ------------------------------------------------------------------------------------------------
# threads: Sinkhorn chunks and small GEMMs run in parallel, one BLAS thread each
# ------------------------------------------------------------------------------------------------

_POOL_LOCK = threading.Lock()
_POOL: dict = {}  # 'executor', 'size', 'pid'
_BLAS: dict = {}  # 'controller' (threadpoolctl), created on first use


def _blas_controller():
    if 'controller' not in _BLAS:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - a few ms to scan libraries

        _BLAS['controller'] = ThreadpoolController()
    return _BLAS['controller']


def n_threads() -> int:
    """Threads the engine uses: as many as the BLAS library is configured for (``OMP_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS`` or ``threadpoolctl.threadpool_limits`` set it; 1 means serial), at most
    the CPUs this process may run on and, inside a SLURM job, at most the CPUs allocated to the job
    on this node (``SLURM_CPUS_ON_NODE``, see the sbatch manual, "OUTPUT ENVIRONMENT VARIABLES":
    without CPU binding the affinity mask is the whole node)."""
    blas = _blas_controller().select(user_api='blas')
    configured = max([1] + [int(info.get('num_threads') or 1) for info in blas.info()])
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    allocated = os.environ.get('SLURM_CPUS_ON_NODE', '')
    if allocated.isdigit() and int(allocated) > 0:
        cpus = min(cpus, int(allocated))
    return max(1, min(configured, cpus))


def _executor(size: int) -> ThreadPoolExecutor:
    """The module's thread pool (re-created after a fork or when the thread count changed)."""
    with _POOL_LOCK:
        if _POOL.get('size') != size or _POOL.get('pid') != os.getpid():
            old = _POOL.get('executor')
            if old is not None and _POOL.get('pid') == os.getpid():
                old.shutdown(wait=False)
            _POOL.update(executor=ThreadPoolExecutor(max_workers=size, thread_name_prefix='rematch'),
                         size=size, pid=os.getpid())
        return _POOL['executor']


@contextlib.contextmanager
def _threaded_phase(threads: int):
    """BLAS limited to one thread while our own ``threads`` threads work (also around the small
    GEMMs between parallel phases: OpenBLAS threads spin for a while after each threaded call and
    would compete with ours)."""
    if threads <= 1:
        yield
        return
    with _blas_controller().limit(limits=1, user_api='blas'):
        yield


def _run_tasks(tasks, ws: _Workspace, threads: int) -> list:
    """Run ``task(workspace)`` for every task; in ``threads`` threads (each with its own workspace,
    BLAS limited to one thread meanwhile: small GEMMs and batched mat-vecs run faster that way than
    with threaded BLAS) or, for ``threads == 1`` or a single task, here with ``ws``. Results are
    returned in task order; an exception of a task is re-raised."""
    if threads <= 1 or len(tasks) <= 1:
        return [task(ws) for task in tasks]

    def run(task):
        with _workspace() as own:
            return task(own)

    with _threaded_phase(threads):
        return list(_executor(threads).map(run, tasks))


def _balanced(total: int, per: int, threads: int) -> int:
    """Chunk size at most ``per`` that splits ``total`` items evenly over ``threads``."""
    if threads <= 1 or total <= 1:
        return per
    n_chunks = max(threads, -(-total // per))
    n_chunks = -(-n_chunks // threads) * threads  # a multiple of the thread count
    return max(1, min(per, -(-total // n_chunks)))


class _Engine:
    """Batched Sinkhorn solver with dscribe's iteration; collects non-converged pairs for a warning."""

    def __init__(self, alpha: float, threshold: float, max_iter: int, chunk_bytes: int, threads: int | None = None):
        self.alpha, self.threshold, self.max_iter, self.chunk_bytes = _check_parameters(
            alpha, threshold, max_iter, chunk_bytes)
        self.threads = n_threads() if threads is None else max(1, int(threads))
        self.plain = (2.0 + 4 * NORM_TOLERANCE) / self.alpha <= _PLAIN_EXPONENT_LIMIT
        self.n_fallback = 0
        self._lock = threading.Lock()

    def pairs_per_chunk(self, n: int, m: int) -> int:
        return max(1, self.chunk_bytes // (8 * n * m))

    # -- kernel construction ----------------------------------------------------------------------

    def _stabilised(self, C, K, rowmask, colmask, en, c_scale):
        """Fill ``K`` with exp((C - colmax - rowshift)/alpha) (all entries <= 1, a 1 in every row and
        column); return the matching initial ``u`` and the log-weights mapping scalings to dscribe's."""
        alpha = self.alpha
        np.multiply(C, c_scale, out=K)
        full_mask = None
        if rowmask is not None:
            full_mask = rowmask[:, :, None] & colmask[:, None, :]
            K[~full_mask] = -np.inf
        colmax = K.max(axis=1)
        if colmask is not None:
            colmax[~colmask] = 0.0
        K -= colmax[:, None, :]
        shift = K.max(axis=2)
        if rowmask is not None:
            shift[~rowmask] = 0.0
        K -= shift[:, :, None]
        K /= alpha
        np.maximum(K, -700.0, out=K)  # no denormals; relative effect < 1e-300 (each row has a 1)
        np.exp(K, out=K)
        if full_mask is not None:
            K[~full_mask] = 1.0
        u0 = en * np.exp(shift / alpha)
        # dscribe's u = u_here * exp(-shift/alpha), v = v_here * exp(-colmax/alpha) (up to constants)
        return u0, -shift / alpha, -colmax / alpha

    # -- solve ------------------------------------------------------------------------------------

    def solve(self, C4: np.ndarray, n_real=None, m_real=None, select=None, ws: _Workspace | None = None,
              c_scale: float = 1.0):
        """Unnormalised REMatch of a block of pairs.

        :param C4: environment kernels, shape ``(P1, P2, N, M)`` (may be a strided view); pair
            ``(p1, p2)`` uses ``C4[p1, p2, :n_real, :m_real]`` (zero-padded beyond).
        :param n_real, m_real: real atom counts, broadcastable to ``(P1, P2)`` (default N, M).
        :param select: optional flat indices (into ``P1 * P2``) of the pairs to solve.
        :param ws: optional workspace whose buffers ``'C'`` and ``'K'`` are reused.
        :param c_scale: ``C4`` holds ``C / c_scale`` (the GEMM may fold in ``1/alpha``).
        :returns: ``(values, residuals, converged, sweeps)`` for the flat (selected) pairs.
        """
        P1, P2, n, m = C4.shape
        nr = np.broadcast_to(np.asarray(n if n_real is None else n_real), (P1, P2)).ravel()
        mr = np.broadcast_to(np.asarray(m if m_real is None else m_real), (P1, P2)).ravel()
        if select is not None:
            select = np.asarray(select, dtype=np.intp)
            C4 = C4[select // P2, select % P2][:, None]
            nr, mr = nr[select], mr[select]
            P1, P2 = len(select), 1
        P = P1 * P2
        values = np.zeros(P)
        resid = np.zeros(P)
        conv = np.ones(P, dtype=bool)
        sweeps = np.zeros(P, dtype=np.int64)
        if P == 0:
            return values, resid, conv, sweeps
        padded = bool((nr != n).any() or (mr != m).any())
        if padded:
            rowmask = np.arange(n)[None, :] < nr[:, None]
            colmask = np.arange(m)[None, :] < mr[:, None]
            en = np.where(rowmask, 1.0 / nr[:, None], 0.0)
            em = np.where(colmask, 1.0 / mr[:, None], 0.0)
        else:
            rowmask = colmask = None
            en = np.full((P, n), 1.0 / n)
            em = np.full((P, m), 1.0 / m)

        ws = ws or _Workspace()
        # elementwise ufuncs on strided views are much slower: kernels stored pair by pair, as
        # (N, M) or as transposed (M, N) blocks (both GEMM layouts), are used in place, others copied
        Ct = C4.transpose(0, 1, 3, 2)
        if C4.flags.c_contiguous:
            C = C4.reshape(P, n, m)
            K = ws.get('K', (P, n, m))
        elif Ct.flags.c_contiguous:
            C = Ct.reshape(P, m, n).transpose(0, 2, 1)
            K = ws.get('K', (P, m, n)).transpose(0, 2, 1)
        else:
            C = ws.get('C', (P, n, m))
            np.copyto(C.reshape(P1, P2, n, m), C4)
            K = ws.get('K', (P, n, m))
        failed = np.zeros(P, dtype=bool)
        with np.errstate(all='ignore'):
            if self.plain:
                # dscribe's exp(-(1 - C)/alpha) up to the constant factor exp(-1/alpha), which only
                # rescales v (the plan, the value and the relative residuals are unchanged); with
                # |C| <= 1 and alpha >= 1/300 all entries lie in [1e-131, 1e131]
                factor = c_scale / self.alpha
                if factor == 1.0:
                    np.exp(C, out=K)
                else:
                    np.multiply(C, factor, out=K)
                    np.exp(K, out=K)
                u0, wu, wv = en, None, None
            else:
                u0, wu, wv = self._stabilised(C, K, rowmask, colmask, en, c_scale)
            U = np.zeros((P, n))
            V = np.zeros((P, m))
            self._iterate(K, en, em, u0, wu, wv, U, V, resid, conv, sweeps, failed)
            # Tr(P^T C) = sum_ij u_i K_ij v_j C_ij for every pair's own final iterate
            np.multiply(K, C, out=K)
            values = np.einsum('bi,bi->b', U, np.matmul(K, V[:, :, None])[:, :, 0])
            if c_scale != 1.0:
                values *= c_scale
            failed |= ~np.isfinite(values)

        for g in np.flatnonzero(failed):
            c = c_scale * C[g, : nr[g], : mr[g]]
            values[g], resid[g], sweeps[g], conv[g] = _sinkhorn_log(c, self.alpha, self.threshold, self.max_iter)
            with self._lock:
                self.n_fallback += 1
        return values, resid, conv, sweeps

    def _iterate(self, K, en, em, u0, wu, wv, U, V, resid, conv, sweeps, failed):
        """dscribe's sweeps on all pairs at once; each pair's final ``u``, ``v`` go to ``U``, ``V``."""
        threshold, max_iter = self.threshold, self.max_iter
        P = K.shape[0]
        act = np.arange(P)
        alive = np.ones(P, dtype=bool)
        Kw, en_w, em_w, wu_w, wv_w = K, en, em, wu, wv
        u = np.array(u0, dtype=np.float64)
        v = em.copy()
        k = 0
        while True:
            u_prev, v_prev = u, v
            v = em_w / np.matmul(u[:, None, :], Kw)[:, 0, :]
            u = en_w / np.matmul(Kw, v[:, :, None])[:, :, 0]
            k += 1
            last = k >= max_iter
            if not ((k - 1) % 5 or last):
                continue
            err = _relative_change(u, u_prev, wu_w) + _relative_change(v, v_prev, wv_w)
            checkable = (k - 1) % 5 != 0
            done = alive & (err <= threshold) & checkable
            bad = alive & np.isnan(err)
            if wu is not None:
                # stabilised kernel: entries below exp(-700) were clamped, which is exact only while
                # the scalings stay moderate; otherwise hand the pair to the log-domain solver
                bad |= alive & (_extreme(u, en_w) | _extreme(v, em_w))
                done &= ~bad
            finish = done | (alive & last & ~bad)
            if finish.any():
                local = np.flatnonzero(finish)
                g = act[local]
                U[g] = u[local]
                V[g] = v[local]
                resid[g] = err[local]
                sweeps[g] = k
                conv[g] = done[local]
            if bad.any():
                failed[act[bad]] = True
            alive &= ~(finish | bad)
            n_alive = int(alive.sum())
            if n_alive == 0:
                return
            if n_alive <= alive.size // 2:
                keep = np.flatnonzero(alive)
                act = act[keep]
                Kw = K[act]
                u, v = u[keep], v[keep]
                en_w, em_w = en[act], em[act]
                wu_w = None if wu is None else wu[act]
                wv_w = None if wv is None else wv[act]
                alive = np.ones(keep.size, dtype=bool)


# ------------------------------------------------------------------------------------------------
# blocks of configurations
# ------------------------------------------------------------------------------------------------


def _buckets(counts: np.ndarray) -> list[np.ndarray]:
    """Indices grouped by similar atom count (padding to the bucket maximum wastes <= 25 %)."""
    order = np.lexsort((np.arange(len(counts)), counts))
    buckets, start = [], 0
    for pos in range(1, len(order) + 1):
        if pos == len(order) or counts[order[pos]] > counts[order[start]] * (1 + _MAX_PAD_FRACTION):
            buckets.append(order[start:pos])
            start = pos
    return buckets


def _stack(arrays: list[np.ndarray], idx, n_pad: int) -> np.ndarray:
    """``(len(idx) * n_pad, n_features)`` stack of the configurations ``idx``, zero-padded to ``n_pad`` rows."""
    block = getattr(arrays, 'block', None)
    if block is not None and block.shape[1] == n_pad and len(idx) and np.all(np.diff(idx) == 1):
        return block[idx[0] : idx[-1] + 1].reshape(len(idx) * n_pad, -1)  # a view, no copy
    parts = [arrays[i] for i in idx]
    if all(p.shape[0] == n_pad for p in parts):
        return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    out = np.zeros((len(parts), n_pad, parts[0].shape[1]))
    for k, p in enumerate(parts):
        out[k, : p.shape[0]] = p
    return out.reshape(len(parts) * n_pad, -1)


def _principal_axes(stacks: list[np.ndarray]) -> np.ndarray:
    """Orthogonal ``(F, F)`` matrix whose columns are the eigenvectors of ``S^T S`` by decreasing
    eigenvalue, ``S`` the stacked environments (padding rows are zero), or a random subset of
    ``_AXES_SAMPLE_ROWS`` of them (fixed seed; not a stride, which would alias with the species
    order). Any orthogonal basis keeps the kernels exact; this one makes the trailing components
    small."""
    sample = np.concatenate(stacks, axis=0) if len(stacks) > 1 else stacks[0]
    if sample.shape[0] > _AXES_SAMPLE_ROWS:
        rows = np.random.default_rng(0).choice(sample.shape[0], _AXES_SAMPLE_ROWS, replace=False)
        sample = sample[np.sort(rows)]
    _w, vectors = np.linalg.eigh(sample.T @ sample)
    return np.ascontiguousarray(vectors[:, ::-1])


def _axis_grid(n_features: int) -> np.ndarray:
    """Axis counts at which truncation is considered: multiples of 8 (GEMM-friendly) and all."""
    return np.r_[np.arange(0, n_features, 8), n_features]


def _tail_norms(rows: np.ndarray, grid: np.ndarray, block: int = 8192) -> np.ndarray:
    """``out[k] = max_i |rows[i, grid[k]:]|`` (so ``out[-1] = 0``), in row blocks."""
    starts = grid[:-1]
    out = np.zeros(len(grid))
    for r0 in range(0, rows.shape[0], block):
        sq = rows[r0 : r0 + block] ** 2
        groups = np.add.reduceat(sq, starts, axis=1)  # squared norm of each group of axes
        tail = np.cumsum(groups[:, ::-1], axis=1)[:, ::-1]
        np.maximum(out[:-1], tail.max(axis=0), out=out[:-1])
    return np.sqrt(out)


class _Unconverged:
    def __init__(self):
        self.items: list[tuple[str, float, int]] = []

    def add(self, label_fn, resid, conv, sweeps):
        for k in np.flatnonzero(~conv):
            self.items.append((label_fn(k), float(resid[k]), int(sweeps[k])))

    def warn(self, engine: _Engine, stacklevel: int = 3):
        if not self.items:
            return
        worst = sorted(self.items, key=lambda item: -item[1] if np.isfinite(item[1]) else -np.inf)
        shown = '; '.join(f'{lab}: residual {r:.3g} after {s} sweeps' for lab, r, s in worst[:5])
        more = f' (and {len(self.items) - 5} more)' if len(self.items) > 5 else ''
        warnings.warn(
            f'REMatch Sinkhorn did not reach threshold={engine.threshold:g} within max_iter={engine.max_iter} '
            f'sweeps for {len(self.items)} pair(s) (alpha={engine.alpha:g}): {shown}{more}; '
            'the last iterate was used',
            RuntimeWarning,
            stacklevel=stacklevel,
        )


def _self_values(engine: _Engine, arrays: list[np.ndarray], labels, unconverged: _Unconverged,
                 ws: _Workspace | None = None) -> np.ndarray:
    """Unnormalised K(X, X) for every configuration; validates every row (finite, unit norm).

    Chunks of configurations run in ``engine.threads`` threads.

    :param labels: ``labels[k] = (name, index)`` of ``arrays[k]`` for error messages and warnings.
    """
    counts = np.array([a.shape[0] for a in arrays])
    out = np.empty(len(arrays))
    ws = ws or _Workspace()

    def chunk(idx, n, ws):
        C = ws.get('G', (len(idx), 1, n, n))
        for k, i in enumerate(idx):
            x = arrays[i]
            nx = x.shape[0]
            if nx < n:
                C[k, 0] = 0.0
            np.matmul(x, x.T, out=C[k, 0, :nx, :nx])
        # squared row norms are the Gram diagonals (NaN/inf propagate; padding rows are 0)
        diag = np.einsum('kii->ki', C[:, 0])
        nr = counts[idx][:, None]
        ok = (np.abs(diag - 1.0) <= NORM_TOLERANCE) | (np.arange(n)[None, :] >= nr)
        for k in np.flatnonzero(~ok.all(axis=1)):
            i = idx[k]
            _check_matrix(arrays[i], labels[i][1], labels[i][0])  # raises with the details
        return idx, engine.solve(C, nr, nr, None, ws)

    tasks = []
    for bucket in _buckets(counts):
        n = int(counts[bucket].max())
        step = _balanced(len(bucket), engine.pairs_per_chunk(n, n), engine.threads)
        for s0 in range(0, len(bucket), step):
            tasks.append(functools.partial(chunk, bucket[s0 : s0 + step], n))
    for idx, (vals, resid, conv, sweeps) in _run_tasks(tasks, ws, engine.threads):
        out[idx] = vals
        unconverged.add(lambda k, idx=idx: 'self pair ({1}, {1}) of {0}'.format(*labels[idx[k]]),
                        resid, conv, sweeps)
    return out


def _sub_blocks(ra: int, rb: int, per: int, threads: int = 1, max_rows: int | None = None):
    """Split an ``ra x rb`` block of pairs into chunks of at most ``per`` pairs (and at most
    ``max_rows`` rows), their number as far as possible a multiple of ``threads`` and their sizes
    equal to within one row or column (the chunks run in parallel); a list of ``(rows, columns)``
    slices."""
    max_rows = ra if max_rows is None else max(1, max_rows)
    if rb <= per:
        n_chunks = -(-ra // max(1, min(per // rb, max_rows)))
        if threads > 1:
            n_chunks = min(ra, -(-n_chunks // threads) * threads)
        bounds = [ra * k // n_chunks for k in range(n_chunks + 1)]  # sizes differ by at most one
        chunks = [(slice(a0, a1), slice(0, rb)) for a0, a1 in zip(bounds[:-1], bounds[1:])]
    else:
        n_chunks = -(-rb // per)
        if threads > 1 and ra % threads:
            n_chunks = min(rb, -(-n_chunks // threads) * threads)
        bounds = [rb * k // n_chunks for k in range(n_chunks + 1)]
        chunks = [(slice(a0, a0 + 1), slice(b0, b1)) for a0 in range(ra) for b0, b1 in zip(bounds[:-1], bounds[1:])]
    # largest first: the threads take chunks in order as they become free, which balances the load
    chunks.sort(key=lambda c: -(c[0].stop - c[0].start) * (c[1].stop - c[1].start))
    return chunks


def _cross_task(engine, A, ia, n, Bs, ib, m, ca, cb, select, c_scale, ws):
    """One chunk of pairs: environment kernels of A configurations ``ia`` against the stacked
    (``C / c_scale``) B configurations ``Bs`` (``ib``) with one GEMM, then Sinkhorn."""
    As = _stack(A, ia, n)
    if c_scale != 1.0:
        As = np.multiply(As, 1.0 / c_scale, out=ws.get('A', As.shape))
    if len(ia) == 1:  # (M, N) blocks, one after the other: solve() reads them in place
        G = ws.get('G', (len(ib) * m, n))
        np.matmul(Bs, As.T, out=G)
        C4 = G.reshape(1, len(ib), m, n).transpose(0, 1, 3, 2)
    else:  # strided (N, M) blocks: solve() copies them
        G = ws.get('G', (len(ia) * n, len(ib) * m))
        np.matmul(As, Bs.T, out=G)
        C4 = G.reshape(len(ia), n, len(ib), m).transpose(0, 2, 1, 3)
    return engine.solve(C4, ca[ia][:, None], cb[ib][None, :], select, ws, c_scale)


def _cross_values(engine, A, B, unconverged, symmetric: bool, ws: _Workspace | None = None) -> np.ndarray:
    """Unnormalised REMatch for all pairs (rows from A); if ``symmetric`` only pairs i <= j (B is A).

    Configurations are bucketed by atom count. For each pair of buckets the B configurations are
    stacked in slabs of at most ``_GEMM_CHUNKS * chunk_bytes``; the pairs of a slab are split into
    chunks of at most ``engine.pairs_per_chunk`` pairs, which run in ``engine.threads`` threads:
    each forms its environment kernels with one GEMM (its A features times ``1/alpha`` when the
    plain kernel is used, so that ``exp`` needs no scaling pass) and runs the batched Sinkhorn.
    """
    ca = np.array([a.shape[0] for a in A])
    cb = np.array([b.shape[0] for b in B])
    n_features = A[0].shape[1]
    out = np.full((len(A), len(B)), np.nan)
    ws = ws or _Workspace()
    scale = engine.alpha if engine.plain else 1.0
    bucket_a, bucket_b = _buckets(ca), _buckets(cb)
    for ia_all in bucket_a:
        n = int(ca[ia_all].max())
        max_rows = max(1, _GEMM_CHUNKS * engine.chunk_bytes // (8 * n * n_features))
        for ib_all in bucket_b:
            m = int(cb[ib_all].max())
            per = engine.pairs_per_chunk(n, m)
            slab = max(1, _GEMM_CHUNKS * engine.chunk_bytes // (8 * m * n_features))
            for b0 in range(0, len(ib_all), slab):
                ib = ib_all[b0 : b0 + slab]
                if symmetric and ia_all is ib_all and ia_all[0] > ib[-1]:
                    continue
                Bs = _stack(B, ib, m)
                tasks, pairs = [], []
                for sa, sb in _sub_blocks(len(ia_all), len(ib), per, engine.threads, max_rows):
                    ia, sib = ia_all[sa], ib[sb]
                    select = None
                    if symmetric:
                        need = ia[:, None] <= sib[None, :]
                        if not need.any():
                            continue
                        if not need.all():
                            select = np.flatnonzero(need.ravel())
                    tasks.append(functools.partial(_cross_task, engine, A, ia, n, Bs[sb.start * m : sb.stop * m],
                                                   sib, m, ca, cb, select, scale))
                    pairs.append((ia, sib, select))
                for (ia, sib, select), (vals, resid, conv, sweeps) in zip(
                        pairs, _run_tasks(tasks, ws, engine.threads)):
                    flat = np.arange(len(ia) * len(sib)) if select is None else select
                    rows, cols = ia[flat // len(sib)], sib[flat % len(sib)]
                    out[rows, cols] = vals
                    unconverged.add(lambda k, r=rows, c=cols: f'pair ({r[k]}, {c[k]})', resid, conv, sweeps)
    return out


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------


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
    :param threads: number of threads (default :func:`n_threads`: as many as BLAS uses); the
        results do not depend on it.
    :returns: array of shape ``(len(features_a), len(features_b))`` (symmetric with unit diagonal when
        ``features_b`` is ``None``).
    :raises ValueError: for a non-sequence / empty input, a configuration that is not 2-D, mismatched
        feature counts, NaN/inf entries (naming the configuration) or a row whose L2 norm differs from
        1 by more than :data:`NORM_TOLERANCE` (naming configuration, atom and norm); for
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


def average_kernel(features_a, features_b=None) -> np.ndarray:
    """Normalised average kernel, the ``alpha -> inf`` limit of REMatch (De et al. 2016).

    ``mean(C_AB) / sqrt(mean(C_AA) mean(C_BB))``; with the linear metric ``mean(C_AB)`` is the dot
    product of the mean feature vectors, so this is the cosine between them.

    :param features_a, features_b: as in :func:`rematch_kernel` (``None`` -> ``features_a``).
    :returns: array ``(len(features_a), len(features_b))``.
    :raises ValueError: as :func:`rematch_kernel` for invalid features.
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
    :raises ValueError: as :func:`rematch_kernel` for invalid features.
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


class RematchIndex:
    """Normalised REMatch of one candidate configuration against a fixed set of references.

    The novelty query of an active learner: ``max_j K(x, ref_j)``. Everything that depends only on
    the references is computed once: their unnormalised self-similarities ``K(B, B)`` (for the
    normalisation), their features rotated onto principal axes and stacked per atom-count bucket
    (one GEMM per chunk of references gives all environment kernels), the norms of what lies
    beyond every leading-axes truncation, and mean feature vectors.

    :param reference_features: sequence of ``(n_atoms_j, n_features)`` L2-row-normalised arrays.
    :param alpha, threshold, max_iter, chunk_bytes: as in :func:`rematch_kernel`; results equal
        ``rematch_kernel([x], reference_features, ...)[0]`` (to rounding).
    :param n_seeds: number of references (highest average kernel) solved first in
        :meth:`max_similarity` to obtain a good initial maximum for pruning.
    :param kernel_tolerance: largest allowed bound on the error of an environment kernel when
        :meth:`max_similarity` drops trailing principal axes (see there); ``0`` keeps every axis
        and the references unrotated.
    :param threads: threads for the Sinkhorn chunks (default: as many as BLAS uses, see
        :func:`n_threads`).
    :raises ValueError: as :func:`rematch_kernel` for invalid features or parameters, or for a
        negative ``kernel_tolerance``.

    Memory: the rotated references are one copy of the reference features (with
    ``kernel_tolerance=0`` no copy is made when they are given as one float64 C-contiguous
    ``(n_configurations, n_atoms, n_features)`` array, which is then used in place and must not be
    modified); each query needs ~``3 * chunk_bytes`` per thread on top. Construction costs one
    self-similarity solve per reference, a ``n_features x n_features`` eigen-decomposition and one
    GEMM rotating the references (~0.3 s per 1000 64-atom references with 390 features); a query
    costs one GEMM with all reference atoms (on the leading axes only) plus the Sinkhorn solves
    not pruned.

    After each query ``last_stats`` holds ``{'references', 'solved', 'pruned', 'fallback',
    'axes', 'kernel_error_bound', 'rechecked'}``.
    """

    def __init__(
        self,
        reference_features,
        *,
        alpha: float = 0.1,
        threshold: float = 1e-6,
        max_iter: int = DEFAULT_MAX_ITER,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        n_seeds: int = 8,
        kernel_tolerance: float = DEFAULT_KERNEL_TOLERANCE,
        threads: int | None = None,
    ):
        self._engine = _Engine(alpha, threshold, max_iter, chunk_bytes, threads)
        self.kernel_tolerance = float(kernel_tolerance)
        if not (self.kernel_tolerance >= 0 and math.isfinite(self.kernel_tolerance)):
            raise ValueError(f'kernel_tolerance must be a finite number >= 0, got {kernel_tolerance}')
        refs = _prepare(reference_features, 'reference_features', check=False)
        self.n_features = n_features = refs[0].shape[1]
        self.counts = np.array([r.shape[0] for r in refs])
        self.n_seeds = max(0, int(n_seeds))
        unconverged = _Unconverged()
        #: unnormalised self-similarities K(B_j, B_j) of the references
        self.self_similarities = _self_values(
            self._engine, refs, [('reference_features', j) for j in range(len(refs))], unconverged)
        unconverged.warn(self._engine)
        self._sqrt_self = np.sqrt(self.self_similarities)
        self._means = np.array([r.mean(axis=0) for r in refs])
        buckets = [(idx, int(self.counts[idx].max())) for idx in _buckets(self.counts)]
        stacks = [_stack(refs, idx, m) for idx, m in buckets]
        #: orthogonal ``(n_features, n_features)`` matrix, columns = principal axes of the reference
        #: environments by decreasing variance (``None`` with ``kernel_tolerance=0``)
        self.axes = None
        #: numbers of leading axes considered (multiples of 8 and ``n_features``)
        self.axis_grid = _axis_grid(n_features)
        #: ``tail_norms[k]``: largest norm of a reference environment beyond the first
        #: ``axis_grid[k]`` axes
        self.tail_norms = np.zeros(len(self.axis_grid))
        if self.kernel_tolerance > 0:
            self.axes = _principal_axes(stacks)
            stacks = [stack @ self.axes for stack in stacks]
            for stack in stacks:
                self.tail_norms = np.maximum(self.tail_norms, _tail_norms(stack, self.axis_grid))
        self._buckets = [(idx, m, np.ascontiguousarray(stack)) for (idx, m), stack in zip(buckets, stacks)]
        self._position = {}  # reference index -> (bucket number, position in bucket)
        for q, (idx, _m, _s) in enumerate(self._buckets):
            for p, j in enumerate(idx):
                self._position[int(j)] = (q, p)
        self.last_stats: dict = {}

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def alpha(self) -> float:
        return self._engine.alpha

    @property
    def threshold(self) -> float:
        return self._engine.threshold

    # -- helpers ----------------------------------------------------------------------------------

    def _candidate(self, features, ws):
        x = _as_matrix(features, 0, 'the candidate features')
        if x.shape[1] != self.n_features:
            raise ValueError(f'candidate has {x.shape[1]} features per atom, the references {self.n_features}')
        unconverged = _Unconverged()
        kxx = _self_values(self._engine, [x], [('the candidate features', 0)], unconverged, ws)[0]
        return x, kxx, unconverged

    def _axes_needed(self, xr: np.ndarray) -> tuple[int, float]:
        """Fewest leading axes ``r`` whose dropped part changes no environment kernel by more than
        ``kernel_tolerance``, and that bound: by Cauchy-Schwarz ``|C_ij - C_ij^(r)| = |x_i^perp .
        b_j^perp| <= max_i |x_i^perp| * max_j |b_j^perp|``, with ``perp`` the components beyond
        axis ``r`` (exact, the axes being orthonormal)."""
        bound = _tail_norms(xr, self.axis_grid) * self.tail_norms
        k = int(np.flatnonzero(bound <= self.kernel_tolerance)[0])  # bound[-1] == 0: all axes
        return int(self.axis_grid[k]), float(bound[k])

    def _gathered(self, xs, rank, refs, ws=None):
        """Environment kernels (``C / scale``) of the candidate against the references ``refs`` as
        transposed ``(count, m, n)`` blocks, bucket by bucket: yields ``(refs of the bucket, blocks)``."""
        by_bucket: dict[int, list[int]] = {}
        for j in refs:
            q, p = self._position[int(j)]
            by_bucket.setdefault(q, []).append(p)
        for q, positions in by_bucket.items():
            idx, m, stackq = self._buckets[q]
            rows = stackq.reshape(len(idx), m, -1)[positions, :, :rank].reshape(-1, rank)
            yield idx[positions], (rows @ xs.T).reshape(len(positions), m, xs.shape[0])

    def _bounds(self, Gt, refs, m, factor, extra):
        """Rigorous upper bounds ``factor * (1/N) sum_i max_j C_ij + extra`` of the normalised
        values of the references ``refs`` from their transposed kernels ``Gt`` (count, m, n) (the
        value is ``sum_ij P_ij C_ij`` for the final Sinkhorn iterate, whose rows sum to 1/N)."""
        mr = self.counts[refs]
        if (mr != m).any():
            Gt = np.where(np.arange(m)[None, :, None] < mr[:, None, None], Gt, -np.inf)
        return Gt.max(axis=1).mean(axis=1) * factor + extra

    def _query(self, features, prune: bool):
        """Normalised values (``-inf`` where pruned) of the candidate against all references."""
        engine = self._engine
        fallback0 = engine.n_fallback
        with _workspace() as ws, _threaded_phase(engine.threads):
            x, kxx, unconverged = self._candidate(features, ws)
            n = x.shape[0]
            scale = engine.alpha if engine.plain else 1.0
            xr = x if self.axes is None else x @ self.axes
            rank, eps = self.n_features, 0.0
            if prune and self.axes is not None:
                rank, eps = self._axes_needed(xr)
            xs = np.ascontiguousarray(xr[:, :rank] / scale)
            den = math.sqrt(kxx) * self._sqrt_self
            # with dropped axes every value is off by far less than the margin (see max_similarity)
            margin = _RECHECK_MARGIN if eps > 0 else 0.0
            values = np.full(len(self), -np.inf)
            solved = np.zeros(len(self), dtype=bool)
            state = {'best': -np.inf, 'active': prune}
            lock = threading.Lock()

            def solve(Gt, refs, select, ws):
                C4 = Gt.transpose(0, 2, 1)[:, None]  # (count, 1, n, m), transposed blocks: used in place
                result = engine.solve(C4, n, self.counts[refs][:, None], select, ws, scale)
                chosen = refs if select is None else refs[select]
                if len(chosen):
                    with lock:
                        state['best'] = max(state['best'], float((result[0] / den[chosen]).max()))
                return chosen, result

            def record(chosen, result):
                vals, resid, conv, sweeps = result
                unconverged.add(lambda k: f'candidate vs reference {chosen[k]}', resid, conv, sweeps)
                values[chosen] = vals / den[chosen]
                solved[chosen] = True

            if prune and 0 < self.n_seeds < len(self):
                # a good first maximum: the references with the largest average kernel
                lower = (self._means @ x.mean(axis=0)) / den  # heuristic ordering only
                seeds = np.argsort(-lower, kind='stable')[: self.n_seeds]
                for refs, Gt in self._gathered(xs, rank, seeds):
                    record(*solve(Gt, refs, None, ws))

            def chunk(q, p0, p1, ws):
                idx, m, stackq = self._buckets[q]
                refs = idx[p0:p1]
                Gt = ws.get('G', (p1 - p0, m, n))
                np.matmul(stackq[p0 * m : p1 * m, :rank], xs.T, out=Gt.reshape(-1, n))
                keep = ~solved[refs]  # the seeds are solved already
                if state['active']:
                    best = state['best']
                    upper = self._bounds(Gt, refs, m, scale / den[refs], eps / den[refs])
                    prunable = upper + _PRUNE_SLACK + margin < best
                    if not prunable.any() and best > -np.inf:
                        # pruning only saves time: on a homogeneous reference set (every bound above the
                        # best) the bounds are not worth computing for the remaining chunks
                        state['active'] = False
                    keep &= ~prunable
                select = np.flatnonzero(keep)
                if select.size == len(refs):
                    select = None
                return solve(Gt, refs, select, ws)

            tasks = []
            for q, (idx, m, _stackq) in enumerate(self._buckets):
                per = _balanced(len(idx), engine.pairs_per_chunk(n, m), engine.threads)
                for p0 in range(0, len(idx), per):
                    tasks.append(functools.partial(chunk, q, p0, min(p0 + per, len(idx))))
            for chosen, result in _run_tasks(tasks, ws, engine.threads):
                record(chosen, result)

            rechecked = 0
            if eps > 0:
                # the values near the maximum again with every axis: the maximum and its index are
                # those of the full computation
                near = np.flatnonzero(values >= values.max() - margin)
                xs_full = xr / scale
                for refs, Gt in self._gathered(xs_full, self.n_features, near):
                    record(*solve(Gt, refs, None, ws))
                rechecked = len(near)
            unconverged.warn(engine, stacklevel=4)
        self.last_stats = {'references': len(self), 'solved': int(solved.sum()),
                           'pruned': int(len(self) - solved.sum()),
                           'fallback': engine.n_fallback - fallback0,
                           'axes': rank, 'kernel_error_bound': eps, 'rechecked': rechecked}
        return values

    # -- queries ----------------------------------------------------------------------------------

    def similarities(self, features) -> np.ndarray:
        """Normalised REMatch of one candidate against every reference (no pruning, every axis).

        Equal (to rounding) to ``rematch_kernel([features], reference_features, ...)[0]``.

        :param features: ``(n_atoms, n_features)`` L2-row-normalised array of the candidate.
        :returns: array of shape ``(len(self),)``.
        :raises ValueError: for an invalid candidate (not 2-D, NaN/inf, unnormalised rows, wrong
            feature count).
        """
        return self._query(features, prune=False)

    def max_similarity(self, features, *, prune: bool = True) -> tuple[float, int]:
        """Largest normalised REMatch of the candidate against the references, and its index.

        Returns what ``max`` / ``argmax`` of :meth:`similarities` return (first index on ties).
        Two exact shortcuts, both off with ``prune=False``:

        * **Leading axes.** SOAP vectors of one system are strongly correlated: the principal axes
          of the reference environments carry almost all of their norm in a few of them (for
          molten NaCl, n_max=6, l_max=4, the environments beyond 160 of 390 axes have norm < 1e-4).
          The environment kernels are formed from the leading ``r`` axes only, ``r`` the smallest
          for which the Cauchy-Schwarz bound ``max_i |x_i^perp| max_j |b_j^perp|`` on the error of
          every kernel entry is at most ``kernel_tolerance`` (1e-10 by default); a candidate
          outside the references' span gets more axes, up to all of them. The REMatch value moves
          by less than the largest kernel error (its derivative with respect to ``C`` is a
          transport plan of total mass one, up to the Sinkhorn stopping rule; measured at most 0.07
          of the bound for alpha in [0.001, 10] on 16-ion molten-NaCl frames; the tests check
          that it stays within the bound), so every
          reference within ``1e-6`` (10^4 times the default bound) of the
          approximate maximum is solved again with all axes, and the answer is the full
          computation's value and index.
        * **Pruning.** Sinkhorn solves are skipped for references that provably cannot reach the
          maximum. The value returned for a pair is ``sum_ij P_ij C_ij`` for the final Sinkhorn
          iterate ``P >= 0``, whose rows sum to ``1/N`` (the last update is the row update, also
          when not converged), hence ``sum_ij P_ij C_ij <= (1/N) sum_i max_j C_ij`` (the
          row-relaxed best-match kernel, which also bounds the exact REMatch: ``mean(C) <= K^alpha
          <= best match <= this``). Dividing by the exactly known ``sqrt(K(x, x) K(B, B))`` (plus
          the kernel error bound) bounds the normalised value; a reference is skipped when this
          bound plus ``1e-12`` plus the recheck margin is below the best value already computed
          (first the ``n_seeds`` references with the largest average kernel). The column-relaxed
          bound is not used: Sinkhorn iterates satisfy the column sums only approximately. The
          bound needs the environment kernels, so the GEMM is never skipped, and on homogeneous
          data (e.g. frames of one liquid, where all similarities are ~0.999 and the bound is
          ~1.03) nothing is pruned; pruning pays off when the references are diverse.

        :param features: ``(n_atoms, n_features)`` L2-row-normalised array of the candidate.
        :param prune: ``False`` solves every pair with every axis.
        :returns: ``(similarity, index)``.
        :raises ValueError: as :meth:`similarities`.
        """
        values = self._query(features, prune)
        index = int(np.argmax(values))
        return float(values[index]), index
