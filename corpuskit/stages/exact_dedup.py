"""Exact deduplication: documents equal after lowercasing and joining words with one space.

The four phases of a global stage (``stages/base.py``):

1. signatures, per shard: the xxh3-128 key of every document, with its split rank and row
   within the rank, in ``exact-i.parquet``;
2. grouping: keys hash-partitioned by their low 64 bits; each partition task groups its keys
   with polars and names, per key, the first document in the dedup order;
3. decisions: the union of the partitions (disjoint by construction), sorted by document;
4. apply: the duplicates of each shard are dropped (reason ``exact_duplicate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import xxhash

from corpuskit.stages.base import (
    DROPS_SCHEMA,
    Decision,
    GroupingContext,
    ShardRows,
    StageStats,
    cluster_stats,
    drop_rows,
    dropped_here,
    numbered,
)


def dedup_key(text: str) -> int:
    """Exact-duplicate key: case and whitespace differences do not make a document new."""
    return xxhash.xxh3_128_intdigest(" ".join(text.lower().split()).encode("utf-8"))


@dataclass
class _KeySink:
    """One shard's keys, split rank and row within the rank, as the batches come."""

    keys: list[int] = field(default_factory=list)
    ranks: list[np.ndarray] = field(default_factory=list)
    groups: list[np.ndarray] = field(default_factory=list)

    def add(self, batch: pa.RecordBatch, rows: ShardRows) -> None:
        self.keys.extend(dedup_key(t) for t in batch.column("text").to_pylist())
        self.ranks.append(rows.rank)
        self.groups.append(rows.group_row)

    def write(self, tmp: Path, index: int) -> list[str]:
        name = f"exact-{index:05d}.parquet"
        keys = np.array(self.keys, dtype=object) if self.keys else np.zeros(0, object)
        pl.DataFrame(
            {
                "hi": np.array([k >> 64 for k in keys], np.uint64),
                "lo": np.array([k & (2**64 - 1) for k in keys], np.uint64),
                "rank": np.concatenate(self.ranks) if self.ranks else np.zeros(0, np.uint8),
                "grow": np.concatenate(self.groups) if self.groups else np.zeros(0, np.int64),
            }
        ).write_parquet(tmp / name)
        return [name]


@dataclass(frozen=True)
class KeyPartition:
    """One hash partition of the exact grouping: a pure, picklable task.

    ``files`` are the per-shard key files; ``starts[i][r]`` is the dedup number of shard ``i``'s
    first row of split rank ``r``. Every key falls in exactly one partition, so the union of
    the partitions' answers is the unpartitioned answer, whatever their number.
    """

    files: tuple[str, ...]
    starts: tuple[tuple[int, ...], ...]
    partition: int
    partitions: int


def exact_duplicates(keys: pl.LazyFrame) -> pl.DataFrame:
    """``(doc, kept, similarity)``: every document whose key an earlier document has."""
    first = keys.group_by("hi", "lo").agg(pl.col("doc").min().alias("kept"))
    return (
        keys.join(first, on=["hi", "lo"])
        .filter(pl.col("doc") != pl.col("kept"))
        .select("doc", "kept", pl.lit(1.0).alias("similarity"))
        .sort("doc")
        .collect()
    )


def exact_partition(task: KeyPartition) -> pl.DataFrame:
    """The exact duplicates among the documents whose key falls in this partition."""
    keys = pl.concat(
        [
            numbered(
                pl.scan_parquet(f).filter(pl.col("lo") % task.partitions == task.partition),
                start,
            )
            for f, start in zip(task.files, task.starts, strict=True)
        ]
    )
    return exact_duplicates(keys)


@dataclass(frozen=True)
class ExactDedup:
    """The ``exact_dedup`` global stage (``--dedup``, on by default); no settings of its own."""

    name: str = "exact_dedup"
    group = staticmethod(exact_partition)

    def config(self) -> dict[str, Any]:
        return {"key": "xxh3-128 of lowercased, space-joined words"}

    def signature_settings(self) -> dict[str, Any]:
        return {"stage": self.name, "version": 1}

    def sink(self) -> _KeySink:
        return _KeySink()

    def grouping_tasks(self, context: GroupingContext) -> list[KeyPartition]:
        numbering, parts = context.numbering, context.partitions
        files = tuple(
            str(context.folder / f"exact-{i:05d}.parquet") for i in range(numbering.shards)
        )
        starts = tuple(numbering.rank_starts(i) for i in range(numbering.shards))
        return [KeyPartition(files, starts, p, parts) for p in range(parts)]

    def decide(self, answers: list[pl.DataFrame], context: GroupingContext) -> Decision:
        drops = pl.concat(answers).sort("doc") if answers else pl.DataFrame(schema=DROPS_SCHEMA)
        return Decision(drops=drops, stats=cluster_stats(drops))

    def apply(
        self, batch: pa.RecordBatch, rows: np.ndarray | None, work: Path, index: int,
        stats: StageStats,
    ) -> tuple[pa.RecordBatch, np.ndarray]:
        hit = dropped_here(work, self.name, index, rows)
        return drop_rows(batch, hit, "exact_duplicate", stats), ~hit
