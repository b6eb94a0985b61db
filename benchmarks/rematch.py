"""Benchmark of the REMatch engine (``aiida_mlfail.science.rematch``) against dscribe.

Run from the repository root::

    .venv/bin/python benchmarks/rematch.py            # ~1-2 minutes
    .venv/bin/python benchmarks/rematch.py --quick    # dscribe novelty query on 200 references only
    .venv/bin/python benchmarks/rematch.py --big      # plus a 2000 x 2000 comparison and its peak RSS

Everything runs on one machine in one process on the same features: molten-NaCl-like frames
(rocksalt NaCl, 2x2x2 conventional cells = 64 ions, a = 5.64 Å scaled to a 13.1 Å box, Gaussian
displacements of 0.4 Å, one seed per frame set), SOAP n_max=6, l_max=4, r_cut=5 Å, species Na, Cl
(390 features per atom, rows L2-normalised), REMatch alpha=0.1, threshold=1e-6 (dscribe default).

Timings are the minimum over repetitions (the machine is shared; the median is shown too). The
reference GEMM alternates with our runs in blocks of 10 so that both see the same load; the first
run of each of our blocks is reported separately ("right after a threaded GEMM"): OpenBLAS keeps
its worker threads spinning for ~0.1 s after a threaded call (unless OPENBLAS_THREAD_TIMEOUT is
set low), and they compete with our threads. Our engine uses as many threads as BLAS does
(``aiida_mlfail.science.rematch.n_threads()``: 2 here); the one-thread times are shown too.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np
from ase.build import bulk
from dscribe.descriptors import SOAP
from dscribe.kernels import REMatchKernel

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiida_mlfail.science import rematch as rematch_module  # noqa: E402
from aiida_mlfail.science.rematch import RematchIndex, rematch_kernel  # noqa: E402

ALPHA = 0.1
THRESHOLD = 1e-6


def molten_frames(n: int, seed: int, *, sigma: float = 0.4, box: float = 13.1):
    base = bulk('NaCl', 'rocksalt', a=5.64, cubic=True).repeat((2, 2, 2))  # 64 ions
    base.set_cell(np.eye(3) * box, scale_atoms=True)
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = base.copy()
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        atoms.wrap()
        frames.append(atoms)
    return frames


def soap_features(frames) -> np.ndarray:
    """``(n_frames, 64, 390)`` float64, rows L2-normalised (dscribe's native output shape)."""
    soap = SOAP(species=['Na', 'Cl'], r_cut=5.0, n_max=6, l_max=4, periodic=True, sparse=False)
    x = soap.create(frames, n_jobs=1)
    if x.ndim == 2:
        x = x[None]
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def timed(f, repeat: int):
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), result


def line(label: str, value: str):
    print(f'  {label:<58s} {value}')


def big_child() -> int:
    """Section [4] in its own process, so that its peak RSS is its own: SOAP of 2000 frames, then
    the symmetric REMatch kernel of all of them."""
    t = time.perf_counter()
    frames = soap_features(molten_frames(2000, seed=5))
    t_features = time.perf_counter() - t
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    with open('/proc/self/status') as status:  # resident now (the peak above includes SOAP temporaries)
        rss_now = next(int(row.split()[1]) for row in status if row.startswith('VmRSS:')) / 2**10
    t = time.perf_counter()
    kernel = rematch_kernel(frames, alpha=ALPHA, threshold=THRESHOLD)
    t_kernel = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    ok = bool(np.isfinite(kernel).all() and np.allclose(kernel, kernel.T) and np.allclose(np.diagonal(kernel), 1.0))
    line('SOAP features of 2000 frames (the input array)', f'{frames.nbytes / 2**20:9.0f} MiB  ({t_features:.0f} s)')
    line('rematch_kernel(frames)', f'{t_kernel:9.1f} s  ({t_kernel / 2001000 * 1e6:.1f} us per pair)')
    line('RSS before the kernel (python, dscribe, inputs); peak so far', f'{rss_now:9.0f} MiB; {rss_before:.0f} MiB')
    line('peak RSS of the process overall', f'{rss:9.0f} MiB')
    line('kernel finite, symmetric, unit diagonal', str(ok))
    print(f'  -> {t_kernel:.0f} s, process peak RSS {rss:.0f} MiB, at most {rss - rss_now:.0f} MiB above the '
          'inputs (goal: within 2 GB)')
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='time dscribe on 200 references and extrapolate')
    parser.add_argument('--repeat', type=int, default=20)
    parser.add_argument('--big', action='store_true',
                        help='also run a 2000 x 2000 comparison of 64-atom frames and report the peak RSS (~2 min)')
    parser.add_argument('--big-child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big_child:
        return big_child()

    print(f'python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, '
          f'load average {os.getloadavg()[0]:.2f} (shared machine: timings are minima over repeats); '
          f'engine threads {rematch_module.n_threads()}')
    t0 = time.perf_counter()
    feats_a = soap_features(molten_frames(10, seed=1))
    feats_b = soap_features(molten_frames(40, seed=2))
    refs = soap_features(molten_frames(1000, seed=3))
    candidate = soap_features(molten_frames(1, seed=4))[0]
    print(f'SOAP features: A {feats_a.shape}, B {feats_b.shape}, references {refs.shape}, candidate '
          f'{candidate.shape} ({time.perf_counter() - t0:.1f} s)')
    dscribe_kernel = REMatchKernel(metric='linear', alpha=ALPHA, threshold=THRESHOLD, normalize_kernel=True)

    # ---------------------------------------------------------------- full matrix 10 x 40
    print('\n[1] full matrix, 10 x 40 frames of 64 atoms (+ 50 self-similarities)')
    d_min, d_med, k_dscribe = timed(lambda: dscribe_kernel.create(feats_a, feats_b), 3)
    rematch_kernel(feats_a, feats_b, alpha=ALPHA, threshold=THRESHOLD)  # warm-up
    stacked_a = feats_a.reshape(-1, feats_a.shape[-1])
    stacked_b = feats_b.reshape(-1, feats_b.shape[-1])
    gemm_out = np.empty((stacked_a.shape[0], stacked_b.shape[0]))
    ours, floor, floor_fresh, after_gemm = [], [], [], []
    k_ours = None
    block = 10
    for _ in range(max(1, args.repeat // block)):  # alternating blocks: both see the same machine load
        for rep in range(block):
            t = time.perf_counter()
            k_ours = rematch_kernel(feats_a, feats_b, alpha=ALPHA, threshold=THRESHOLD)
            (after_gemm if rep == 0 and floor else ours).append(time.perf_counter() - t)
        for _rep in range(block):
            t = time.perf_counter()
            np.matmul(stacked_a, stacked_b.T, out=gemm_out)
            floor.append(time.perf_counter() - t)
            t = time.perf_counter()
            _fresh = stacked_a @ stacked_b.T
            floor_fresh.append(time.perf_counter() - t)
            del _fresh
    t_serial, _t_serial_med, _ = timed(
        lambda: rematch_kernel(feats_a, feats_b, alpha=ALPHA, threshold=THRESHOLD, threads=1), 5)
    o_min, o_med = min(ours), float(np.median(ours))
    f_min, f_med = min(floor), float(np.median(floor))
    diff = float(np.abs(k_ours - k_dscribe).max())
    line('dscribe REMatchKernel.create(A, B)', f'{d_min * 1e3:9.1f} ms  (median {d_med * 1e3:.1f})')
    line('ours rematch_kernel(A, B)', f'{o_min * 1e3:9.1f} ms  (median {o_med * 1e3:.1f})')
    line('max |ours - dscribe|', f'{diff:9.2e}')
    line('floor: one float64 GEMM (640 x 390) @ (390 x 2560), preallocated',
         f'{f_min * 1e3:9.1f} ms  (median {f_med * 1e3:.1f})')
    line('  same GEMM with a freshly allocated result (info)', f'{min(floor_fresh) * 1e3:9.1f} ms')
    line(f'  ours with {rematch_module.n_threads()} threads (default) vs threads=1 (info)',
         f'{t_serial * 1e3:9.1f} ms with one thread')
    if after_gemm:
        line('  ours right after a threaded GEMM (info: OpenBLAS spin)', f'{min(after_gemm) * 1e3:9.1f} ms  '
             f'(median {np.median(after_gemm) * 1e3:.1f})')
    assert diff < 1e-6, diff

    # ---------------------------------------------------------------- novelty query 1 x 1000
    print('\n[2] novelty query: one candidate against 1000 references')
    t = time.perf_counter()
    index = RematchIndex(refs, alpha=ALPHA, threshold=THRESHOLD)
    build = time.perf_counter() - t
    index.max_similarity(candidate)  # warm-up
    q_min, q_med, (value, position) = timed(lambda: index.max_similarity(candidate), args.repeat)
    stats = dict(index.last_stats)
    all_axes = RematchIndex(refs, alpha=ALPHA, threshold=THRESHOLD, kernel_tolerance=0)
    all_axes.max_similarity(candidate)
    qa_min, _qa_med, all_axes_result = timed(lambda: all_axes.max_similarity(candidate), max(3, args.repeat // 4))
    all_axes = None  # free its rotated copy of the references
    serial = RematchIndex(refs, alpha=ALPHA, threshold=THRESHOLD, threads=1)
    serial.max_similarity(candidate)
    qs_min, _qs_med, serial_result = timed(lambda: serial.max_similarity(candidate), max(3, args.repeat // 4))
    serial = None
    s_min, s_med, sims = timed(lambda: index.similarities(candidate), max(3, args.repeat // 4))
    n_dscribe = 200 if args.quick else len(refs)
    dq, _dq_med, row = timed(lambda: dscribe_kernel.create(candidate[None], refs[:n_dscribe])[0], 2)
    extrapolated = n_dscribe < len(refs)
    if extrapolated:
        dq_full = dq * len(refs) / n_dscribe
        ours_sub = RematchIndex(refs[:n_dscribe], alpha=ALPHA, threshold=THRESHOLD).max_similarity(candidate)
        same = ours_sub[1] == int(np.argmax(row)) and abs(ours_sub[0] - row.max()) < 1e-6
    else:
        dq_full = dq
        same = position == int(np.argmax(row)) and abs(value - row.max()) < 1e-6
        line('max |similarities - dscribe row|', f'{float(np.abs(sims - row).max()):9.2e}')
    note = f'  (EXTRAPOLATED x{len(refs) / n_dscribe:.0f} from {n_dscribe} refs: {dq:.2f} s)' if extrapolated else ''
    line(f'dscribe create([x], refs) ({len(refs)} refs, best of 2)', f'{dq_full * 1e3:9.1f} ms{note}')
    line('ours RematchIndex(...) construction (once)', f'{build * 1e3:9.1f} ms')
    line('ours index.max_similarity(x)', f'{q_min * 1e3:9.1f} ms  (median {q_med * 1e3:.1f}; '
         f'solved {stats["solved"]}, pruned {stats["pruned"]})')
    line('  leading axes used, kernel error bound, rechecked with all axes',
         f'{stats["axes"]:9d} of {refs.shape[-1]}, {stats["kernel_error_bound"]:.1e}, {stats["rechecked"]}')
    line('  same with every axis (kernel_tolerance=0) (info)', f'{qa_min * 1e3:9.1f} ms')
    line('  same with threads=1 (info)', f'{qs_min * 1e3:9.1f} ms')
    line('  all three give the same maximum and index', str(
        all_axes_result[1] == serial_result[1] == position
        and abs(all_axes_result[0] - value) < 1e-12 and abs(serial_result[0] - value) < 1e-12))
    line('ours index.similarities(x) (all 1000 values, no pruning)',
         f'{s_min * 1e3:9.1f} ms  (median {s_med * 1e3:.1f})')
    line('same maximum and index as dscribe', f'{same}  (max {value:.10f} at {position}; dscribe '
         f'{row.max():.10f} at {int(np.argmax(row))}{" on the subset" if extrapolated else ""})')
    assert same

    # ---------------------------------------------------------------- memory does not grow with pairs
    print('\n[3] bounded memory: 100 x 1000 comparison (100000 pairs of 64 x 64 kernels = 3.3 GB if held at once)')
    t = time.perf_counter()
    big = rematch_kernel(refs[:100], refs, alpha=ALPHA, threshold=THRESHOLD)
    t_big = time.perf_counter() - t
    rematch_module.release_workspaces()  # drop the cached work buffers (all threads) so that they are traced
    tracemalloc.start()
    small = rematch_kernel(refs[:20], refs[:100], alpha=ALPHA, threshold=THRESHOLD)
    peak_small = tracemalloc.get_traced_memory()[1]
    rematch_module.release_workspaces()
    tracemalloc.reset_peak()
    big2 = rematch_kernel(refs[:100], refs[:500], alpha=ALPHA, threshold=THRESHOLD)
    peak_big = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    line('time 100 x 1000', f'{t_big:9.2f} s  ({t_big / big.size * 1e6:.1f} us per pair)')
    line('peak traced numpy memory, 20 x 100 (2000 pairs)', f'{peak_small / 2**20:9.1f} MiB')
    line('peak traced numpy memory, 100 x 500 (50000 pairs)', f'{peak_big / 2**20:9.1f} MiB')
    del small, big2

    big_line = None
    if args.big:
        print('\n[4] 2000 x 2000 comparison of 64-atom frames (symmetric: 2001000 pairs), in a fresh process')
        child = subprocess.run([sys.executable, os.path.abspath(__file__), '--big-child'], capture_output=True,
                               text=True, check=True)
        print(child.stdout, end='')
        big_line = child.stdout.strip().splitlines()[-1].replace('  ->', '  2000 x 2000:   ')

    # ---------------------------------------------------------------- summary
    print('\nsummary')
    print(f'  full matrix:    dscribe {d_min:.3f} s, ours {o_min:.4f} s, speed-up {d_min / o_min:.1f} x (goal >= 5)')
    print(f'  novelty query:  dscribe {dq_full:.3f} s{" (extrapolated)" if extrapolated else ""}, '
          f'ours {q_min:.4f} s, speed-up {dq_full / q_min:.1f} x (goal >= 10); '
          f'index construction {build:.3f} s, incl. construction {dq_full / (q_min + build):.1f} x')
    print(f'  floor:          GEMM {f_min * 1e3:.1f} ms, ours total {o_min * 1e3:.1f} ms, '
          f'total / floor {o_min / f_min:.2f} (goal < 2); medians {o_med / f_med:.2f}')
    if big_line:
        print(big_line)
    print(f'  load average at the end: {os.getloadavg()[0]:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
