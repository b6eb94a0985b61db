"""Reusable per-thread work buffers of the REMatch engine (no page faults on fresh multi-MB arrays).

A workspace of at most ``_KEEP_WORKSPACE_BYTES`` (64 MiB) per thread is kept between calls;
:func:`release_workspaces` drops them. Pure numpy, no AiiDA.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np


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
