"""The local executor: shards in worker processes on this machine, results in input order.

Results come back in the order of the inputs whatever the number of workers, which is what makes
a build byte-identical with 1 or 16 workers. Workers are spawned (not forked) so that threads of
the parent (polars, sentencepiece) never leak into a child in a half-locked state. One pool
serves every step of a build (spawning costs about a second per worker), and one worker means
no pool at all: the work runs in this process, which is also what debuggers and profilers like.

Signals. A terminal's Ctrl-C sends SIGINT to the whole foreground process group, workers
included; a worker that took it as ``KeyboardInterrupt`` would print a traceback and die, and
the driver would report a crash. So workers ignore SIGINT (it is blocked while they are spawned,
so not even their start-up imports see it): the driver alone decides. On an interrupt
(``KeyboardInterrupt``, or any other ``BaseException`` that is not an ``Exception``) the driver
sends each worker SIGTERM, which a worker turns into an exception that unwinds its task (every
task removes its temporary files on the way out) before it exits; a worker still there after
``STOP_GRACE`` seconds is killed. A worker that dies on its own (the OOM killer, a SIGKILL) is a
one-line error, as before.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TypeVar

from corpuskit.errors import CorpuskitError
from corpuskit.executors.base import Executor

T = TypeVar("T")
R = TypeVar("R")

STOP_GRACE = 5.0  # seconds a stopped worker has to unwind its task before it is killed
STOPPED = 128 + signal.SIGTERM  # a worker's exit status when the driver stopped it
WAIT_SLICE = 0.2  # seconds; how soon the driver notices Ctrl-C while it waits for a task


def resolve_workers(workers: int | None) -> int:
    """0 or None means every core."""
    return workers if workers and workers > 0 else (os.cpu_count() or 1)


class _Stop(SystemExit):
    """Raised in a worker by SIGTERM while it runs a task: unwinds the task (its ``finally``
    and cleanup blocks run), then ``_call`` ends the process."""


_in_task = False  # in a worker: whether a task is running (else SIGTERM ends it at once)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _in_task:
        raise _Stop(STOPPED)
    os._exit(STOPPED)  # idle, or already leaving: nothing to unwind


def _init_worker() -> None:
    """Every worker: Ctrl-C is the driver's business, SIGTERM stops the task cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _call(fn: Callable[[T], R], item: T) -> R:
    """One task in a worker; a stop request ends the process once the task has unwound (raised
    further, the pool would report it as the task's result and take the next task)."""
    global _in_task
    _in_task = True
    try:
        return fn(item)
    except _Stop:
        os._exit(STOPPED)
    finally:
        _in_task = False


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back in this thread (a Ctrl-C meanwhile is delivered at the end, not lost).

    A process spawned meanwhile inherits the blocked mask through ``exec``, so a worker never
    sees a Ctrl-C, not even while it imports its modules, before ``_init_worker`` runs.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _exit_codes(workers: Sequence[BaseProcess]) -> list[int]:
    """Exit statuses of the workers that are gone (the pool's thread may be reaping them at
    the same moment, when ``exitcode`` reads None for a short while)."""
    gone = wait([p.sentinel for p in workers], 1.0)
    deadline = time.monotonic() + 1.0
    while any(p.exitcode is None for p in workers if p.sentinel in gone):
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return [p.exitcode for p in workers if p.sentinel in gone and p.exitcode is not None]


def _death(workers: Sequence[BaseProcess]) -> str:
    """Why the pool broke, from the exit status of the workers that are gone."""
    codes = _exit_codes(workers)
    if codes and all(code in (STOPPED, -signal.SIGTERM) for code in codes):
        return (
            "a worker process was stopped (SIGTERM from outside corpuskit); "
            "run the command again to resume"
        )
    return (
        "a worker process died while working (killed, or out of memory?); "
        "run the command again to resume, with fewer --workers if memory is short"
    )


def _result(future: Future[R]) -> R:
    """The future's result, waited for in short slices: a signal that the kernel hands to
    another thread (polars and tokio start many) does not wake a wait without a timeout, so
    Ctrl-C would only be seen when the task ends, minutes later for a big shard."""
    while True:
        try:
            return future.result(timeout=WAIT_SLICE)
        except TimeoutError:
            continue


class LocalExecutor(Executor):
    """Worker processes on this machine (``workers``: 0 means one per core)."""

    name = "local"

    def __init__(self, workers: int = 0, *, isolated: bool = False):
        self.workers = resolve_workers(workers)
        # One worker normally runs the work in this process; isolated, in a spawned one.
        self.isolated = isolated
        self._pool: ProcessPoolExecutor | None = None
        self._pool_size = 0
        self._procs: list[BaseProcess] = []

    def slots(self) -> int:
        return self.workers

    def _pool_of(self, size: int) -> ProcessPoolExecutor:
        if self._pool is None or self._pool_size != size:
            self.close()
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=size, mp_context=ctx, initializer=_init_worker
            )
            self._pool_size = size
        return self._pool

    def _run(self, fn: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
        size = min(max(1, self.workers // threads), max(1, len(items)))
        if size == 1 and not self.isolated:
            for item in items:
                yield fn(item)
            return
        pool = self._pool_of(size)
        task = functools.partial(_call, fn)
        with _sigint_blocked():  # the pool spawns its workers on the first submissions
            pending = deque(pool.submit(task, item) for item in items)
        self._procs = list((getattr(pool, "_processes", None) or {}).values()) or self._procs
        try:
            while pending:
                yield _result(pending.popleft())
        except BrokenProcessPool:
            # A worker died (the OOM killer, a signal): the pool is unusable, and the traceback
            # says nothing a user can act on. Finished work stays on disk (a build resumes from
            # its finished shards), the unfinished work is only in staging folders.
            message = _death(self._procs)
            self.abort()
            raise CorpuskitError(message) from None
        except BaseException as exc:
            # Ctrl-C, SIGTERM, or results abandoned (GeneratorExit: the caller stopped reading,
            # on an interrupt or an error of its own): stop the workers now, not after the tasks.
            if not isinstance(exc, Exception):
                self.abort()
            raise
        finally:
            for future in pending:
                future.cancel()

    def abort(self) -> None:  # the executor's __exit__ calls it on an interrupt
        """Stop every worker now: each unwinds its task (removing its temporary files) and
        exits; one still running after ``STOP_GRACE`` seconds is killed, and so is every one
        at once on a second Ctrl-C meanwhile."""
        pool, procs = self._pool, self._procs
        self._pool, self._pool_size, self._procs = None, 0, []
        if pool is None:
            return
        pool.shutdown(wait=False, cancel_futures=True)
        # Exit is watched through each worker's sentinel, never by reaping it here: the pool's
        # own thread reaps the workers, and a pid reaped twice could be another process's.
        running = {p.sentinel: p for p in procs}
        for sentinel in wait(list(running), 0):
            del running[sentinel]
        try:
            for proc in running.values():
                proc.terminate()
            deadline = time.monotonic() + STOP_GRACE
            while running and (left := deadline - time.monotonic()) > 0:
                for sentinel in wait(list(running), left):
                    del running[sentinel]
        finally:
            for proc in running.values():
                proc.kill()
            pool.shutdown(wait=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._pool_size, self._procs = None, 0, []


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


def call_isolated(fn: Callable[[T], R], item: T, *, desc: str) -> R:
    """``fn(item)`` in a fresh spawned process that exits afterwards: for a step whose peak
    memory should neither stack on this process's nor stay with it (sentencepiece training).
    Signals and a dying process are handled as for any worker."""
    with LocalExecutor(1, isolated=True) as executor:
        (result,) = executor.map_ordered(fn, [item], desc=desc, progress=False, unit="step")
    return result
