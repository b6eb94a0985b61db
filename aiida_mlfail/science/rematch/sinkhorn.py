"""Batched Sinkhorn solver of REMatch with dscribe's iteration and stopping rule.

``_Engine`` solves blocks of pairs ``(P1, P2, N, M)`` of environment kernels at once: the
plain kernel ``exp(-(1 - C)/alpha)`` for ``alpha >= 1/300``, an exactly rescaled (stabilised) kernel
below, and the log-domain iteration ``_sinkhorn_log`` for any pair that still over/underflows.
Iteration and residual as ``dscribe.kernels.REMatchKernel`` (dscribe 2.1); formulas of De et al.,
PCCP 18, 13754 (2016). ``_Unconverged`` collects pairs that hit ``max_iter`` for one warning.
Pure numpy / scipy, no AiiDA.
"""

from __future__ import annotations

import math
import threading
import warnings

import numpy as np
from scipy.special import logsumexp

from .threads import n_threads
from .validation import NORM_TOLERANCE, _check_parameters
from .workspace import _Workspace

#: Default size (bytes) of one ``(pairs, N, M)`` float64 work array; peak extra memory is a small
#: multiple of this (see :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel`).
DEFAULT_CHUNK_BYTES = 4 * 2**20
#: Default cap on Sinkhorn sweeps per pair (dscribe has none).
DEFAULT_MAX_ITER = 100_000
# With |C| <= 1 the exponent (C - 1)/alpha is >= -2/alpha; up to this magnitude exp() neither
# underflows nor produces denormals, so the plain dscribe kernel is used as is.
_PLAIN_EXPONENT_LIMIT = 600.0
# Stabilised kernels are used while all scalings stay within [1 / limit, limit].
_SCALING_LIMIT = 1e108


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
        :param n_real: real atom counts of the first configurations, broadcastable to ``(P1, P2)`` (default N).
        :param m_real: the same of the second configurations (default M).
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
