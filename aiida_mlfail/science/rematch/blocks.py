"""Blocks of configurations for the REMatch engine: bucketing by atom count, stacking, and the
self / cross values of whole sets (one GEMM per chunk of pairs, then batched Sinkhorn in threads).

Pure numpy, no AiiDA.
"""

from __future__ import annotations

import functools

import numpy as np

from .sinkhorn import _Engine, _Unconverged
from .threads import _balanced, _run_tasks
from .validation import NORM_TOLERANCE, _check_matrix
from .workspace import _Workspace

# Stacked features of one slab of B configurations (shared by the threads), and of the A
# configurations of one chunk, are limited to this many chunk sizes.
_GEMM_CHUNKS = 8
# Buckets of configurations padded to a common atom count waste at most this fraction per side.
_MAX_PAD_FRACTION = 0.25


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
