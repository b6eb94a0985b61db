"""REMatch of one candidate against a fixed reference set (the active learner's novelty query).

:class:`RematchIndex` caches everything that depends only on the references, forms environment
kernels on the leading principal axes of the reference environments when a Cauchy-Schwarz bound
shows the rest negligible, and prunes Sinkhorn solves that provably cannot change the maximum.
Pure numpy, no AiiDA.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np

from .blocks import _buckets, _self_values, _stack
from .sinkhorn import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_ITER, _Engine, _Unconverged
from .threads import _balanced, _run_tasks, _threaded_phase
from .validation import _as_matrix, _prepare
from .workspace import _workspace

#: Default bound on the environment-kernel error of :meth:`RematchIndex.max_similarity` from
#: dropped principal axes.
DEFAULT_KERNEL_TOLERANCE = 1e-10
# Pruning margin (absolute, on the normalised kernel) covering floating-point rounding of the bound.
_PRUNE_SLACK = 1e-12
# RematchIndex: references within this of the maximum found with dropped axes are solved again
# with all axes (the values move by less than the kernel error bound, <= 1e-10 by default).
_RECHECK_MARGIN = 1e-6
# Rows of the reference environments used to find their principal axes.
_AXES_SAMPLE_ROWS = 32768


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


class RematchIndex:
    """Normalised REMatch of one candidate configuration against a fixed set of references.

    The novelty query of an active learner: ``max_j K(x, ref_j)``. Everything that depends only on
    the references is computed once: their unnormalised self-similarities ``K(B, B)`` (for the
    normalisation), their features rotated onto principal axes and stacked per atom-count bucket
    (one GEMM per chunk of references gives all environment kernels), the norms of what lies
    beyond every leading-axes truncation, and mean feature vectors.

    :param reference_features: sequence of ``(n_atoms_j, n_features)`` L2-row-normalised arrays.
    :param alpha: as in :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel` (as are ``threshold``, ``max_iter``
        and ``chunk_bytes``);
        results equal ``rematch_kernel([x], reference_features, ...)[0]`` (to rounding).
    :param threshold: as ``alpha``.
    :param max_iter: as ``alpha``.
    :param chunk_bytes: as ``alpha``.
    :param n_seeds: number of references (highest average kernel) solved first in
        :meth:`max_similarity` to obtain a good initial maximum for pruning.
    :param kernel_tolerance: largest allowed bound on the error of an environment kernel when
        :meth:`max_similarity` drops trailing principal axes (see there); ``0`` keeps every axis
        and the references unrotated.
    :param threads: threads for the Sinkhorn chunks (default: as many as BLAS uses, see
        :func:`~aiida_mlfail.science.rematch.threads.n_threads`).
    :raises ValueError: as :func:`~aiida_mlfail.science.rematch.kernel.rematch_kernel` for invalid features or
        parameters, or for a
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
