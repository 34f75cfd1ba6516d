"""The local executor: shards in worker processes on this machine, results in input order.

Results come back in the order of the inputs whatever the number of workers, which is what makes
a build byte-identical with 1 or 16 workers. Workers are spawned (not forked) so that threads of
the parent (polars, sentencepiece) never leak into a child in a half-locked state. One pool
serves every step of a build (spawning costs about a second per worker), and one worker means
no pool at all: the work runs in this process, which is also what debuggers and profilers like.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from corpuskit.errors import CorpuskitError
from corpuskit.executors.base import Executor

T = TypeVar("T")
R = TypeVar("R")


def resolve_workers(workers: int | None) -> int:
    """0 or None means every core."""
    return workers if workers and workers > 0 else (os.cpu_count() or 1)


class LocalExecutor(Executor):
    """Worker processes on this machine (``workers``: 0 means one per core)."""

    name = "local"

    def __init__(self, workers: int = 0):
        self.workers = resolve_workers(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_size = 0

    def slots(self) -> int:
        return self.workers

    def _pool_of(self, size: int) -> ProcessPoolExecutor:
        if self._pool is None or self._pool_size != size:
            self.close()
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=size, mp_context=ctx)
            self._pool_size = size
        return self._pool

    def _run(self, fn: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
        size = min(max(1, self.workers // threads), max(1, len(items)))
        if size == 1:
            for item in items:
                yield fn(item)
            return
        try:
            yield from self._pool_of(size).map(fn, items)
        except BrokenProcessPool:
            # A worker was killed (the OOM killer, a signal): the pool is unusable, and the
            # traceback says nothing a user can act on. Finished work stays on disk (a build
            # resumes from its finished shards), the unfinished work is only in staging folders.
            self._pool, self._pool_size = None, 0
            raise CorpuskitError(
                "a worker process died while working (killed, or out of memory?); "
                "run the command again to resume, with fewer --workers if memory is short"
            ) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._pool_size = None, 0


def map_ordered(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int,
    desc: str,
    progress: bool = True,
) -> Iterator[R]:
    """``map(fn, items)`` across local processes, in order, with a progress bar (one-off pool)."""
    with LocalExecutor(workers) as executor:
        yield from executor.map_ordered(fn, items, desc=desc, progress=progress)
