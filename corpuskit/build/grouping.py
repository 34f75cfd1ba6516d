"""The global phase: every global stage groups and decides, in the plan's order.

Documents are numbered in the dedup order (``Numbering``: test, val, train, other splits; then
shard, then row), so the smallest number, the copy kept, is an evaluation document whenever one
is in a group. Each stage's grouping tasks run on the executor; the stage never sees it. What a
stage drops is excluded from the stages after it, and is written per shard
(``drops-<stage>-i.npy``) for the finish phase; ``duplicates.parquet`` lists every dropped
duplicate with the document it duplicates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from corpuskit.build.plan import Plan
from corpuskit.build.shard_phase import Phase1Cache
from corpuskit.executors import Executor
from corpuskit.faults import checkpoint
from corpuskit.stages.base import (
    RANKS,
    GroupingContext,
    Numbering,
    drops_file,
    numbered,
    partition_count,
    run_tasks,
)

DUPLICATES = "duplicates.parquet"


def shard_rows(cache: Phase1Cache, numbering: Numbering, docs: np.ndarray) -> tuple[
    np.ndarray, np.ndarray
]:
    """``(shard, row)`` of documents given by their number in the dedup order."""
    starts, shards = numbering.starts, numbering.shards
    group = np.searchsorted(starts, docs, side="right") - 1
    rank, shard = np.divmod(group, shards)
    within = docs - starts[group]
    rows = np.zeros(len(docs), np.int64)
    for s in np.unique(shard).tolist():
        in_shard = shard == s
        ranks = pl.read_parquet(cache.file("keys", s, "parquet"), columns=["rank"])["rank"]
        ranks = ranks.to_numpy()
        for r in np.unique(rank[in_shard]).tolist():
            pick = in_shard & (rank == r)
            rows[pick] = np.flatnonzero(ranks == r)[within[pick]]
    return shard, rows


def _ids_of(cache: Phase1Cache, numbering: Numbering, docs: np.ndarray) -> pl.DataFrame:
    """``(doc, id)`` of the given dedup numbers, read shard by shard: the driver never holds
    more than one shard's ids besides the answer."""
    wanted = pl.DataFrame({"doc": np.unique(docs).astype(np.int64)}).lazy()
    pieces = [
        numbered(pl.scan_parquet(cache.file("keys", i, "parquet")), numbering.rank_starts(i))
        .select("doc", "id")
        .join(wanted, on="doc", how="semi")
        .collect()
        for i in range(numbering.shards)
    ]
    return pl.concat(pieces) if pieces else pl.DataFrame(schema={"doc": pl.Int64, "id": pl.String})


def _write_duplicates(
    found: list[pl.DataFrame], cache: Phase1Cache, numbering: Numbering, out_dir: Path
) -> None:
    """``duplicates.parquet``: ``id, duplicate_of, kind, similarity``, by dedup number."""
    drops = pl.concat(found).sort("doc")
    ids = _ids_of(cache, numbering, np.concatenate([drops["doc"], drops["kept"]]))
    (
        drops.join(ids, on="doc", how="left")
        .join(ids.rename({"doc": "kept", "id": "duplicate_of"}), on="kept", how="left")
        .sort("doc")
        .select("id", "duplicate_of", "kind", "similarity")
        .write_parquet(out_dir / DUPLICATES)
    )


class _Exclusions:
    """The documents dropped so far, in both numberings, as files the next stage's tasks read."""

    def __init__(self, cache: Phase1Cache, numbering: Numbering, work: Path):
        self.cache, self.numbering, self.work = cache, numbering, work
        self.docs = np.zeros(0, np.int64)
        self.rows = np.zeros(0, np.int64)
        self.version = 0

    def files(self) -> tuple[Path, Path]:
        docs = self.work / f"excluded-{self.version}.npy"
        rows = self.work / f"excluded-rows-{self.version}.npy"
        np.save(docs, np.sort(self.docs))
        np.save(rows, np.sort(self.rows))
        return docs, rows

    def add(self, stage: str, docs: np.ndarray) -> None:
        """Drop ``docs`` (dedup numbers) for ``stage``: per-shard drop files, and excluded."""
        shard, row = shard_rows(self.cache, self.numbering, docs)
        for s in np.unique(shard).tolist():
            np.save(drops_file(self.work, stage, s), np.sort(row[shard == s]))
        self.docs = np.concatenate([self.docs, docs]).astype(np.int64)
        offsets = self.numbering.offsets
        self.rows = np.concatenate([self.rows, offsets[shard] + row]).astype(np.int64)
        self.version += 1


# One grouping task holds about this many documents' keys (a MinHash partition: every band key
# of its share of the documents) in memory, so a larger corpus is cut into more partitions, not
# larger ones: memory stays flat from 1 GB to 10 GB (BENCHMARKS.md). The decisions are the same
# for any number of partitions (tests/build).
DOCS_PER_PARTITION = 100_000


def partitions_for(executor: Executor | None, documents: int) -> int:
    """One partition per slot of the executor, more when the corpus is large."""
    return max(partition_count(executor), -(-documents // DOCS_PER_PARTITION))


def global_phase(
    plan: Plan, cache: Phase1Cache, counts: np.ndarray, out_dir: Path, work: Path,
    executor: Executor | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every global stage's grouping and decision; their statistics by stage name."""
    numbering = Numbering(counts)
    assert counts.shape[1] == RANKS
    exclusions = _Exclusions(cache, numbering, work)
    extra: dict[str, dict[str, Any]] = {}
    found: list[pl.DataFrame] = []
    for stage in plan.global_stages:
        excluded, excluded_rows = exclusions.files()
        context = GroupingContext(
            cache.of(stage.name), numbering, excluded, excluded_rows, work,
            partitions_for(executor, int(counts.sum())),
        )
        tasks = stage.grouping_tasks(context)
        answers = run_tasks(executor, stage.group, tasks, desc=f"{stage.name} grouping")
        decision = stage.decide(answers, context)
        extra[stage.name] = decision.stats
        if decision.drops is not None:
            exclusions.add(stage.name, decision.drops["doc"].to_numpy())
            kind = stage.name.removesuffix("_dedup")
            found.append(decision.drops.with_columns(kind=pl.lit(kind)))
        if stage.name == "near_dedup":
            checkpoint("build.near_dedup")
    if found:
        _write_duplicates(found, cache, numbering, out_dir)
    return extra
