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

* all environment kernels of a block of pairs come from one GEMM of stacked feature matrices;
* Sinkhorn runs batched over many pairs at once (``(pairs, N, M)`` arrays and batched mat-vecs);
  pairs that have converged are frozen and removed from the batch;
* pairs are processed in chunks of bounded memory (``chunk_bytes``), so e.g. a 2000 x 2000
  comparison of 64-atom configurations needs ~130 MiB besides the inputs and the result;
* for ``alpha < 1/300`` (where ``exp(-(1 - C)/alpha)`` can underflow) the kernel is stabilised by
  exact row/column rescaling (every row and column keeps an entry equal to 1) with the dscribe
  iteration and stopping rule carried over exactly; any pair that still produces a non-finite
  number falls back to a log-domain (log-sum-exp) Sinkhorn of the same iteration;
* :class:`RematchIndex` caches everything that depends only on the references and skips Sinkhorn
  solves that provably cannot change the maximum (see :meth:`RematchIndex.max_similarity`).

This module is part of the pure science layer: numpy / scipy only, no AiiDA.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings

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
]

#: Largest allowed deviation of a per-atom feature row's L2 norm from 1.
NORM_TOLERANCE = 1e-6
#: Default size (bytes) of one ``(pairs, N, M)`` float64 work array; peak extra memory is a small
#: multiple of this (see :func:`rematch_kernel`).
DEFAULT_CHUNK_BYTES = 4 * 2**20
#: Default cap on Sinkhorn sweeps per pair (dscribe has none).
DEFAULT_MAX_ITER = 100_000

# With |C| <= 1 the exponent (C - 1)/alpha is >= -2/alpha; up to this magnitude exp() neither
# underflows nor produces denormals, so the plain dscribe kernel is used as is.
_PLAIN_EXPONENT_LIMIT = 600.0
# One GEMM block holds up to this many Sinkhorn chunks of environment kernels.
_GEMM_CHUNKS = 8
# Stabilised kernels are used while all scalings stay within [1 / limit, limit].
_SCALING_LIMIT = 1e108
# Pruning margin (absolute, on the normalised kernel) covering floating-point rounding of the bound.
_PRUNE_SLACK = 1e-12
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


def _max_last_axis(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=-1)`` by pairwise halving (numpy's reduction over a short contiguous last axis
    is several times slower); exact."""
    size = a.shape[-1]
    if size <= 8:  # column by column: long inner loops
        out = a[..., 0].copy()
        for j in range(1, size):
            np.maximum(out, a[..., j], out=out)
        return out
    while size > 1:
        h = size // 2
        out = np.maximum(a[..., :h], a[..., h : 2 * h])
        if size % 2:
            np.maximum(out[..., 0], a[..., 2 * h], out=out[..., 0])
        a, size = out, h
    return a[..., 0]


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


@contextlib.contextmanager
def _workspace():
    """This thread's cached workspace (a fresh one if it is in use, e.g. re-entrant calls)."""
    ws = getattr(_THREAD_LOCAL, 'workspace', None)
    if ws is None:
        ws = _Workspace()
    else:
        _THREAD_LOCAL.workspace = None
    try:
        yield ws
    finally:
        if ws.nbytes() <= _KEEP_WORKSPACE_BYTES:
            _THREAD_LOCAL.workspace = ws


class _Engine:
    """Batched Sinkhorn solver with dscribe's iteration; collects non-converged pairs for a warning."""

    def __init__(self, alpha: float, threshold: float, max_iter: int, chunk_bytes: int):
        self.alpha, self.threshold, self.max_iter, self.chunk_bytes = _check_parameters(
            alpha, threshold, max_iter, chunk_bytes)
        self.plain = (2.0 + 4 * NORM_TOLERANCE) / self.alpha <= _PLAIN_EXPONENT_LIMIT
        self.n_fallback = 0

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
        # contiguous copy of the kernels (elementwise ufuncs on strided views are much slower)
        if C4.flags.c_contiguous:
            C = C4.reshape(P, n, m)
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


def _block_kernels(As: np.ndarray, Bs: np.ndarray, ra: int, n: int, rb: int, m: int, ws: _Workspace) -> np.ndarray:
    """All environment kernels of a block with one GEMM, viewed as ``(ra, rb, n, m)``."""
    G = ws.get('G', (ra * n, rb * m))
    np.matmul(As, Bs.T, out=G)
    return G.reshape(ra, n, rb, m).transpose(0, 2, 1, 3)


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

    :param labels: ``labels[k] = (name, index)`` of ``arrays[k]`` for error messages and warnings.
    """
    counts = np.array([a.shape[0] for a in arrays])
    out = np.empty(len(arrays))
    ws = ws or _Workspace()
    for bucket in _buckets(counts):
        n = int(counts[bucket].max())
        step = engine.pairs_per_chunk(n, n)
        for s0 in range(0, len(bucket), step):
            idx = bucket[s0 : s0 + step]
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
            vals, resid, conv, sweeps = engine.solve(C, nr, nr, None, ws)
            out[idx] = vals
            unconverged.add(lambda k, idx=idx: 'self pair ({1}, {1}) of {0}'.format(*labels[idx[k]]),
                            resid, conv, sweeps)
    return out


def _sub_blocks(ra: int, rb: int, per: int):
    """Split an ``ra x rb`` block of pairs into Sinkhorn chunks of at most ``per`` pairs."""
    if rb <= per:
        step = max(1, per // rb)
        for a0 in range(0, ra, step):
            yield slice(a0, min(a0 + step, ra)), slice(0, rb)
    else:
        for a0 in range(ra):
            for b0 in range(0, rb, per):
                yield slice(a0, a0 + 1), slice(b0, min(b0 + per, rb))


def _cross_values(engine, A, B, unconverged, symmetric: bool, ws: _Workspace | None = None) -> np.ndarray:
    """Unnormalised REMatch for all pairs (rows from A); if ``symmetric`` only pairs i <= j (B is A).

    Configurations are bucketed by atom count; for each block of (A configurations x B
    configurations) one GEMM forms all environment kernels (up to ``_GEMM_CHUNKS`` Sinkhorn chunks
    at a time), then Sinkhorn runs on chunks of at most ``engine.pairs_per_chunk`` pairs, reading the
    kernels as strided views of the GEMM output.
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
        for ib_all in bucket_b:
            m = int(cb[ib_all].max())
            per = engine.pairs_per_chunk(n, m)
            gper = per * _GEMM_CHUNKS
            # stacked feature copies of one block stay within _GEMM_CHUNKS * chunk_bytes per side
            max_a = max(1, _GEMM_CHUNKS * engine.chunk_bytes // (8 * n * n_features))
            max_b = max(1, _GEMM_CHUNKS * engine.chunk_bytes // (8 * m * n_features))
            if symmetric and ia_all is ib_all:
                ra = rb = max(1, min(int(math.isqrt(gper)), max_a))
            else:
                rb = min(len(ib_all), gper, max_b)
                ra = max(1, min(len(ia_all), gper // rb, max_a))
            for b0 in range(0, len(ib_all), rb):
                ib = ib_all[b0 : b0 + rb]
                Bs = None
                for a0 in range(0, len(ia_all), ra):
                    ia = ia_all[a0 : a0 + ra]
                    need = (ia[:, None] <= ib[None, :]) if symmetric else None
                    if need is not None and not need.any():
                        continue
                    if Bs is None:
                        Bs = _stack(B, ib, m)
                    As = _stack(A, ia, n)
                    if engine.plain:  # fold 1/alpha into the GEMM: C4 = C / alpha, exp() needs no scaling pass
                        As = np.multiply(As, 1.0 / engine.alpha, out=ws.get('A', As.shape))
                    C4 = _block_kernels(As, Bs, len(ia), n, len(ib), m, ws)
                    for sa, sb in _sub_blocks(len(ia), len(ib), per):
                        sia, sib = ia[sa], ib[sb]
                        select = None
                        if need is not None:
                            sub_need = need[sa, sb]
                            if not sub_need.any():
                                continue
                            if not sub_need.all():
                                select = np.flatnonzero(sub_need.ravel())
                        vals, resid, conv, sweeps = engine.solve(
                            C4[sa, sb], ca[sia][:, None], cb[sib][None, :], select, ws, scale)
                        flat = np.arange(len(sia) * len(sib)) if select is None else select
                        rows, cols = sia[flat // len(sib)], sib[flat % len(sib)]
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
    :param chunk_bytes: size (bytes) of one ``(pairs, N, M)`` float64 Sinkhorn work array. One GEMM
        fills up to 8 such chunks at a time, and the stacked feature copies of a block are limited
        to 8 chunks per side, so the working memory is at most about ``26 * chunk_bytes`` (~100 MiB
        by default) plus the ``(len(features_a), len(features_b))`` result, whatever the number of
        pairs: a 2000 x 2000 comparison of 64-atom configurations needs ~130 MiB besides its inputs.
        Configurations given as one 3-D array ``(n_configurations, n_atoms, n_features)`` are
        stacked without copying.
    :returns: array of shape ``(len(features_a), len(features_b))`` (symmetric with unit diagonal when
        ``features_b`` is ``None``).
    :raises ValueError: for a non-sequence / empty input, a configuration that is not 2-D, mismatched
        feature counts, NaN/inf entries (naming the configuration) or a row whose L2 norm differs from
        1 by more than :data:`NORM_TOLERANCE` (naming configuration, atom and norm); for
        ``alpha <= 0`` or ``threshold`` outside (0, 1).
    """
    engine = _Engine(alpha, threshold, max_iter, chunk_bytes)
    A = _prepare(features_a, 'features_a', check=features_b is None)
    unconverged = _Unconverged()
    if features_b is None:
        with _workspace() as ws:
            raw = _cross_values(engine, A, A, unconverged, True, ws)
        upper = np.triu(np.ones(raw.shape, dtype=bool), 1)
        raw[upper.T] = raw.T[upper.T]
        diag = np.sqrt(np.diagonal(raw).copy())
        unconverged.warn(engine)
        return raw / np.outer(diag, diag)
    B = _prepare(features_b, 'features_b', A[0].shape[1], check=False)
    # self-similarities first: they also validate every row (from the Gram diagonals)
    labels = [('features_a', i) for i in range(len(A))] + [('features_b', j) for j in range(len(B))]
    with _workspace() as ws:
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
    normalisation), stacked feature matrices per atom-count bucket (one GEMM per chunk of
    references gives all environment kernels) and mean feature vectors.

    :param reference_features: sequence of ``(n_atoms_j, n_features)`` L2-row-normalised arrays.
    :param alpha, threshold, max_iter, chunk_bytes: as in :func:`rematch_kernel`; results equal
        ``rematch_kernel([x], reference_features, ...)[0]`` (to rounding).
    :param n_seeds: number of references (highest average kernel) solved first in
        :meth:`max_similarity` to obtain a good initial maximum for pruning.
    :raises ValueError: as :func:`rematch_kernel` for invalid features or parameters.

    Memory: the references are stacked once (a copy of their features, unless they are given as
    one float64 C-contiguous ``(n_configurations, n_atoms, n_features)`` array, which is used
    in place and must then not be modified); each query needs ~``26 * chunk_bytes`` on top.
    Construction costs one self-similarity solve per reference (~0.1 s per 1000 64-atom
    references); a query costs one GEMM with all reference atoms plus the Sinkhorn solves not pruned.

    After each query ``last_stats`` holds ``{'references', 'solved', 'pruned', 'fallback'}``.
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
    ):
        self._engine = _Engine(alpha, threshold, max_iter, chunk_bytes)
        refs = _prepare(reference_features, 'reference_features', check=False)
        self.n_features = refs[0].shape[1]
        self.counts = np.array([r.shape[0] for r in refs])
        self.n_seeds = max(0, int(n_seeds))
        unconverged = _Unconverged()
        #: unnormalised self-similarities K(B_j, B_j) of the references
        self.self_similarities = _self_values(
            self._engine, refs, [('reference_features', j) for j in range(len(refs))], unconverged)
        unconverged.warn(self._engine)
        self._sqrt_self = np.sqrt(self.self_similarities)
        self._means = np.array([r.mean(axis=0) for r in refs])
        self._buckets = []  # (indices, padded atom count, stacked (len * m, F) matrix)
        for idx in _buckets(self.counts):
            m = int(self.counts[idx].max())
            self._buckets.append((idx, m, np.ascontiguousarray(_stack(refs, idx, m))))
        self._position = {}  # reference index -> (bucket number, position in bucket)
        for q, (idx, _m, _s) in enumerate(self._buckets):
            for p, j in enumerate(idx):
                self._position[int(j)] = (q, p)
        self.last_stats: dict[str, int] = {}

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

    def _kernels(self, xs, q, positions, ws=None):
        """Environment kernels (times ``1/scale``) of the candidate against references ``positions``
        (a slice or index array) of bucket ``q``: the GEMM output ``(n, count * m)``, the reference
        indices and the padded atom count ``m``."""
        idx, m, stackq = self._buckets[q]
        if isinstance(positions, slice):
            rows = stackq[positions.start * m : positions.stop * m]
        else:
            rows = stackq.reshape(len(idx), m, -1)[positions].reshape(-1, stackq.shape[1])
        refs = idx[positions]
        shape = (xs.shape[0], rows.shape[0])
        G = np.empty(shape) if ws is None else ws.get('G', shape)
        np.matmul(xs, rows.T, out=G)  # one GEMM for all environment kernels of the block
        return G, refs, m

    @staticmethod
    def _screen(G3, m, factor):
        """Cheap *lower* bounds of the pruning bounds (see :meth:`_bounds`) from the first and last
        four columns (covering species listed alternately or in blocks): a reference whose screen
        value reaches the current best cannot be pruned, so its full bound is not needed yet."""
        w = min(4, m)
        screen = np.maximum(_max_last_axis(G3[:, :, :w]), _max_last_axis(G3[:, :, m - w :]))
        return screen.mean(axis=0) * factor  # padding columns can only raise it (no pruning then)

    def _bounds(self, G3, positions, refs, m, factor):
        """Rigorous upper bounds ``factor * (1/N) sum_i max_j C_ij`` of the normalised values of the
        references ``refs[positions]`` (the value is ``sum_ij P_ij C_ij`` for the final Sinkhorn
        iterate, whose rows sum to 1/N)."""
        sub = G3[:, positions, :]
        mr = self.counts[refs[positions]]
        if (mr != m).any():
            sub = np.where(np.arange(m)[None, None, :] < mr[None, :, None], sub, -np.inf)
        return _max_last_axis(sub).mean(axis=0) * factor[positions]

    def _query(self, features, prune: bool):
        """Normalised values (``-inf`` where pruned) of the candidate against all references."""
        engine = self._engine
        fallback0 = engine.n_fallback
        with _workspace() as ws:
            x, kxx, unconverged = self._candidate(features, ws)
            n = x.shape[0]
            scale = engine.alpha if engine.plain else 1.0
            xs = np.multiply(x, 1.0 / scale, out=ws.get('X', x.shape)) if scale != 1.0 else x
            den = math.sqrt(kxx) * self._sqrt_self
            values = np.full(len(self), -np.inf)
            solved = np.zeros(len(self), dtype=bool)
            best = -np.inf

            def solve(C3, refs, select):
                nonlocal best
                vals, resid, conv, sweeps = engine.solve(
                    C3[:, None], n, self.counts[refs][:, None], select, ws, scale)
                chosen = refs if select is None else refs[select]
                unconverged.add(lambda k: f'candidate vs reference {chosen[k]}', resid, conv, sweeps)
                values[chosen] = vals / den[chosen]
                solved[chosen] = True
                best = max(best, float(values[chosen].max()))

            if prune and 0 < self.n_seeds < len(self):
                # a good first maximum: the references with the largest average kernel
                lower = (self._means @ x.mean(axis=0)) / den  # heuristic ordering only
                seeds = np.argsort(-lower, kind='stable')[: self.n_seeds]
                by_bucket: dict[int, list[int]] = {}
                for j in seeds:
                    q, p = self._position[int(j)]
                    by_bucket.setdefault(q, []).append(p)
                for q, positions in by_bucket.items():
                    G, refs, m = self._kernels(xs, q, np.array(positions))
                    solve(G.reshape(n, len(refs), m).transpose(1, 0, 2), refs, None)

            # pruning only saves time: once a whole block prunes nothing (a homogeneous reference set,
            # every bound above the best), the bounds of the remaining blocks are not worth computing
            active = prune
            for q, (idx, m, _stackq) in enumerate(self._buckets):
                per = engine.pairs_per_chunk(n, m)
                block = per * _GEMM_CHUNKS
                for p0 in range(0, len(idx), block):
                    G, refs, m = self._kernels(xs, q, slice(p0, min(p0 + block, len(idx))), ws)
                    G3 = G.reshape(n, len(refs), m)
                    block_pruned = 0
                    if active:
                        factor = scale / den[refs]
                        screen = self._screen(G3, m, factor)
                        upper = np.full(len(refs), np.nan)  # computed only where the screen fails
                    C3 = G3.transpose(1, 0, 2)
                    for s0 in range(0, len(refs), per):
                        s1 = min(s0 + per, len(refs))
                        keep = np.ones(s1 - s0, dtype=bool)
                        if active:
                            local = np.arange(s0, s1)
                            needed = local[np.isnan(upper[s0:s1]) & (screen[s0:s1] + _PRUNE_SLACK < best)]
                            if needed.size:
                                upper[needed] = self._bounds(G3, needed, refs, m, factor)
                            keep = ~(upper[s0:s1] + _PRUNE_SLACK < best)  # NaN (screen passed): keep
                        block_pruned += (s1 - s0) - int(keep.sum())
                        keep &= ~solved[refs[s0:s1]]  # the seeds are solved already
                        select = np.flatnonzero(keep)
                        if select.size:
                            solve(C3[s0:s1], refs[s0:s1], None if select.size == s1 - s0 else select)
                    if active and block_pruned == 0:
                        active = False
            unconverged.warn(engine, stacklevel=4)
        self.last_stats = {'references': len(self), 'solved': int(solved.sum()),
                           'pruned': int(len(self) - solved.sum()),
                           'fallback': engine.n_fallback - fallback0}
        return values

    # -- queries ----------------------------------------------------------------------------------

    def similarities(self, features) -> np.ndarray:
        """Normalised REMatch of one candidate against every reference (no pruning).

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
        Sinkhorn solves are skipped only for references that provably cannot reach the current
        maximum. The bound: the value returned for a pair is ``sum_ij P_ij C_ij`` for the final
        Sinkhorn iterate ``P >= 0``, whose rows sum to ``1/N`` (the last update is the row update,
        also when not converged), hence ``sum_ij P_ij C_ij <= (1/N) sum_i max_j C_ij`` (the
        row-relaxed best-match kernel, which also bounds the exact REMatch: ``mean(C) <= K^alpha <=
        best match <= this``). Dividing by the exactly known ``sqrt(K(x, x) K(B, B))`` bounds the
        normalised value; a reference is skipped when this bound plus ``1e-12`` is below the best
        value already computed (first the ``n_seeds`` references with the largest average kernel).
        The column-relaxed bound is not used: Sinkhorn iterates satisfy the column sums only
        approximately. The bound needs the environment kernels, so the GEMM is never skipped, and
        on homogeneous data (e.g. frames of one liquid, where all similarities are ~0.999 and the
        bound is ~1.03) nothing is pruned; pruning pays off when the references are diverse.

        :param features: ``(n_atoms, n_features)`` L2-row-normalised array of the candidate.
        :param prune: ``False`` solves every pair.
        :returns: ``(similarity, index)``.
        :raises ValueError: as :meth:`similarities`.
        """
        values = self._query(features, prune)
        index = int(np.argmax(values))
        return float(values[index]), index
