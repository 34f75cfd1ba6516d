"""Executors decide where stage work runs; they never know what the stages do.

``base.Executor`` is the one interface the build calls (``map_ordered``); ``local`` (worker
processes) and ``ray`` (Ray tasks) are its two implementations, picked by ``make_executor``
here, so that the interface never imports its own implementations.
"""

from __future__ import annotations

from corpuskit.errors import CorpuskitError
from corpuskit.executors.base import EXECUTORS, Executor


def make_executor(
    name: str = "local", *, workers: int = 0, address: str | None = None
) -> Executor:
    """The executor called ``name``; Ray is imported only when asked for."""
    if name == "local":
        if address:
            raise CorpuskitError("--address is for --executor ray; the local executor has none")
        from corpuskit.executors.local import LocalExecutor

        return LocalExecutor(workers)
    if name == "ray":
        from corpuskit.executors.ray import RayExecutor

        return RayExecutor(address=address, workers=workers)
    raise CorpuskitError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "make_executor"]
