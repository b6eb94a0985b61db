"""Threads and BLAS control of the REMatch engine.

Sinkhorn chunks and their small GEMMs run in the module's own thread pool, one BLAS thread each
(``threadpoolctl`` limits BLAS meanwhile); :func:`~aiida_mlfail.science.rematch.threads.n_threads` is the thread count
(the BLAS
configuration, capped by the CPU affinity and ``SLURM_CPUS_ON_NODE``). Results never depend on the
thread count. No AiiDA.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .workspace import _Workspace, _workspace

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
