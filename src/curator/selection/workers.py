"""Deterministic parallelism for the selection: fixed blocks of work spread over ``select.threads`` threads.

The work is cut into blocks whose shapes depend only on the data (never on the thread count), each block is
computed by single-threaded code (BLAS pinned to one thread, compiled kernels that release the GIL), and the
results are combined in block order. A block's float32 products therefore have the same bits whatever the
thread count, and so do the selection and every reported figure. (Letting OpenBLAS thread a product itself
changes its last bits: its blocking follows the thread count; numba's ``prange`` would tie the work split to
the thread count too.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None


def resolve_threads(threads: int) -> int:
    """``threads``, or every core this process may run on when 0."""
    if threads > 0:
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def threads(count: int) -> Iterator[int]:
    """Run :func:`blocks` on ``count`` threads (0: every core) inside the ``with`` block."""
    global _pool
    count = resolve_threads(count)
    previous = _pool
    _pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="select") if count > 1 else None
    try:
        yield count
    finally:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = previous


@contextmanager
def small_pages() -> Iterator[None]:
    """numpy's huge-page advice off inside the ``with`` block (as it was, after).

    numpy asks the kernel for transparent huge pages on every large array (``madvise(MADV_HUGEPAGE)``). Where
    the kernel then compacts memory at fault time (``/sys/kernel/mm/transparent_hugepage/defrag`` at its default,
    ``madvise``), first touches stall: reading the 1M-row benchmark's 1 GB of embeddings cost 3.2-3.9 s of
    system time with the advice and 0.8 s without (wall 3.6 s -> 2.35 s on 2 cores). The selection's arrays are
    touched once or streamed in blocks, so huge pages buy it nothing back. Bytes are unaffected.
    """
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None) or getattr(np.core, "multiarray", None)
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is None:
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


def blocks(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]``, on the threads of the enclosing :func:`threads` (in item order)."""
    if _pool is None:
        return [fn(item) for item in items]
    return list(_pool.map(fn, items))


def spans(n: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges of at most ``size`` covering ``range(n)``: the fixed blocks of a row loop."""
    return [(lo, min(lo + size, n)) for lo in range(0, n, max(1, size))]


def balanced(weights: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split ``range(len(weights))`` into at most ``parts`` contiguous ranges of about equal total weight.

    Depends only on the weights, so the split (and any work counted per part) is the same for every thread
    count.
    """
    n = len(weights)
    if n == 0:
        return []
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    targets = cum[-1] * np.arange(1, max(parts, 1)) / max(parts, 1)
    cuts = np.unique(np.concatenate(([0], np.searchsorted(cum, targets, side="left") + 1, [n])).clip(0, n))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
