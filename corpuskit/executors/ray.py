"""The Ray executor: the same per-shard functions as Ray tasks, on one machine or a cluster.

We write no cluster code: Ray schedules the tasks, restarts them when a worker dies (every task
writes only files named after its shard, so a rerun is harmless) and moves the small results
(row counts, statistics, packed token arrays) back through its object store. This executor only
keeps a bounded window of tasks in flight and hands results back in input order, which is all
the build needs for byte-identical output.

``address``: ``None`` starts a private local Ray instance (stopped again by ``close``);
``"auto"`` or ``"HOST:PORT"`` joins a running cluster (``ray start --head``), which ``close``
leaves running. A Ray session already started in this process (``ray.init`` by a notebook or a
test) is used as it is. Every node must be able to import corpuskit and see the data root at the
same path (a shared file system): see ``docs/scale-out.md``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from corpuskit.errors import CorpuskitError
from corpuskit.executors.base import Executor

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


def _call(fn: Callable[[T], R], item: T) -> R:
    """The one remote function: any picklable callable runs, builtins and partials included."""
    return fn(item)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise CorpuskitError(
            "--executor ray needs Ray, which is not installed: pip install 'corpuskit[ray]'"
        ) from None
    return ray


class RayExecutor(Executor):
    """Ray tasks, one per shard (``workers`` > 0 caps how many run at once)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int = 0):
        self._ray = _import_ray()  # a missing Ray is a user error now, not half-way through
        self.address = address
        self.workers = workers if workers and workers > 0 else 0
        self._owned = False

    def _session(self) -> Any:
        """Ray, connected on first use: a build whose artifacts exist starts no cluster."""
        ray = self._ray
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.WARNING,
                # Our tasks print nothing; keep Ray's worker chatter off the build's output.
                "log_to_driver": False,
            }
            if self.address:
                options["address"] = self.address
            elif self.workers:
                options["num_cpus"] = self.workers
            try:
                ray.init(**options)
            except ConnectionError as exc:
                raise CorpuskitError(
                    f"cannot reach the Ray cluster at {self.address!r}: {exc}"
                ) from None
            self._owned = True
        return ray

    def _cpus(self) -> list[int]:
        """CPUs of every live node."""
        nodes = [n for n in self._session().nodes() if n.get("Alive")]
        return [int(n.get("Resources", {}).get("CPU", 0)) for n in nodes] or [1]

    def slots(self) -> int:
        cpus = max(1, sum(self._cpus()))
        return min(cpus, self.workers) if self.workers else cpus

    def max_threads(self) -> int:
        # A task asking for more CPUs than any one node has would never be scheduled.
        return max(1, min(max(self._cpus()), self.slots()))

    def _run(self, fn: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
        if not items:
            return
        ray = self._session()
        remote = ray.remote(_call).options(num_cpus=threads)
        # Twice the parallelism keeps every CPU busy while the head of the queue is awaited,
        # unless --workers asked for a cap; results are small, so the window bounds memory too.
        parallel = max(1, self.slots() // threads)
        window = parallel if self.workers else 2 * parallel
        pending: deque[Any] = deque()
        queued = iter(items)
        try:
            for item in queued:
                pending.append(remote.remote(fn, item))
                if len(pending) >= window:
                    break
            while pending:
                yield self._get(pending.popleft())
                item = next(queued, _DONE)
                if item is not _DONE:
                    pending.append(remote.remote(fn, item))
        finally:
            for ref in pending:
                ray.cancel(ref)

    def _get(self, ref: Any) -> Any:
        """A task's result; a task's own error comes back as itself, not wrapped by Ray."""
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, CorpuskitError):
                raise cause from None
            raise

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False
