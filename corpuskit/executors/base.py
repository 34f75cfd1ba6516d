"""The one interface the build calls: ``map_ordered(fn, items)``, results in input order.

A build is a few "for every shard, run this function" steps with global steps in between
(``corpuskit/build/``). An executor only decides *where* each call runs (this process, worker
processes, Ray tasks on a cluster); it never sees what the function does, and the build never
sees how it is scheduled. Results always come back in the order of ``items``, and the build
merges them in that order, which is what makes the output byte-identical whichever executor
and however many workers ran it.

Functions and items must be picklable and importable by name (module-level functions and
dataclasses), because an executor may run them in another process or on another machine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")


class Executor(ABC):
    """Runs a function over shards somewhere, yielding results in input order.

    Use it as a context manager: ``close`` releases what it started (a process pool, a Ray
    cluster it started itself) and nothing else.
    """

    name: str = "?"

    @abstractmethod
    def slots(self) -> int:
        """How many calls can run at once (worker processes, or CPUs of the Ray cluster)."""

    def max_threads(self) -> int:
        """The most threads one call may use (the cores of the largest machine)."""
        return self.slots()

    @abstractmethod
    def _run(self, fn: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
        """Yield ``fn(item)`` for every item, in order; ``threads`` is what each call uses."""

    def map_ordered(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        desc: str,
        threads: int = 1,
        progress: bool = True,
        unit: str = "shard",
    ) -> Iterator[R]:
        """``map(fn, items)`` somewhere, results in input order, one progress bar either way.

        ``threads`` is how many threads each call uses (tokenizers encode with several), so an
        executor runs fewer calls at once: the machine is not oversubscribed.
        """
        threads = max(1, min(threads, self.max_threads()))
        bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress, leave=False)
        try:
            for result in self._run(fn, items, threads):
                yield result
                bar.update()
        finally:
            bar.close()

    def close(self) -> None:  # noqa: B027 - optional hook, most executors hold nothing
        """Release what this executor started."""

    def abort(self) -> None:
        """Release what this executor started without waiting for the calls still running
        (an interrupt); by default the same as ``close``."""
        self.close()

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Ctrl-C or SIGTERM (a BaseException that is not an Exception): stop, do not wait.
        if exc is not None and not isinstance(exc, Exception):
            self.abort()
        else:
            self.close()
