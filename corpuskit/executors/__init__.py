"""Executors decide where stage work runs; they never know what the stages do.

``base.Executor`` is the one interface the build calls (``map_ordered``); ``local`` (worker
processes) and ``ray`` (Ray tasks) are its two implementations, picked by ``make_executor``.
"""

from corpuskit.executors.base import (
    EXECUTORS,
    Executor,
    make_executor,
    map_partitions,
    partition_count,
)

__all__ = ["EXECUTORS", "Executor", "make_executor", "map_partitions", "partition_count"]
