"""The stage contract: one record batch in, one record batch out, drops counted with reasons.

Stages never know which executor runs them, and executors never know what a stage does. A
stage's statistics are plain counters so that results from many workers add up in any order.

A ``GlobalStage`` (exact, near and paragraph dedup, decontamination) needs the whole corpus to
decide, so it comes in four explicit phases that the build runs where the executor likes:

1. **signatures**, per shard, in the workers: ``sink()`` returns a ``SignatureSink`` that sees
   every batch after the shard stages and writes the stage's own per-shard files (exact keys,
   MinHash bands, n-gram hashes) into the stage's cache folder, named by
   ``signature_settings()``;
2. **grouping**: ``grouping_tasks(context)`` cuts the work into hash partitions, pure and
   picklable tasks for ``group`` (a module-level function), each reading only the shards' files;
3. **decisions**: ``decide(answers, context)`` joins the partitions' answers, in partition
   order, into a ``Decision``: documents to drop (numbered in the dedup order), files in the
   build's work folder, statistics for the manifest;
4. **apply**, per batch, in the workers: ``apply(batch, rows, work, index, stats)`` with the
   shard's rows numbered as in phase 1; it returns the batch and the mask of rows it kept.

Every decision keeps the first occurrence in the dedup order (``DEDUP_ORDER``), so nothing
depends on which worker finished first or on the number of partitions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

T = TypeVar("T")
R = TypeVar("R")

# Dedup keeps the first copy in this order of splits (then shard, then row): duplicates between
# train and an evaluation split leave train, and the evaluation sets stay whole.
SPLIT_RANK = {"test": 0, "val": 1, "train": 2}
RANKS = 4  # test, val, train, any other split
DEDUP_ORDER = "split (test, val, train, other), then shard, then row"


@dataclass
class StageStats:
    """What one stage saw, changed and dropped (summable across batches and workers)."""

    documents_in: int = 0
    documents_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    changed: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    # A few dropped documents per reason, for reports; kept out of ``to_dict`` (the manifest).
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def merge(self, other: StageStats) -> StageStats:
        """Add ``other`` in; merging in shard order keeps the samples deterministic."""
        self.documents_in += other.documents_in
        self.documents_out += other.documents_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.changed += other.changed
        self.dropped.update(other.dropped)
        for reason, docs in other.samples.items():
            self.add_samples(reason, docs)
        return self

    def add_samples(self, reason: str, docs: list[dict[str, str]]) -> None:
        kept = self.samples.setdefault(reason, [])
        kept.extend(docs[: max(0, SAMPLES_PER_REASON - len(kept))])

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents_in": self.documents_in,
            "documents_out": self.documents_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "changed": self.changed,
            "dropped": dict(sorted(self.dropped.items())),
        }


class Stage(Protocol):
    """A per-batch step. ``name`` keys its statistics; ``config`` goes into fingerprints."""

    name: str

    def config(self) -> dict[str, Any]: ...

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch: ...


SAMPLES_PER_REASON = 3
SAMPLE_CHARS = 2000


def text_bytes(batch: pa.RecordBatch) -> int:
    return int(pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0)


def run_stage(stage: Stage, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
    """Apply a stage and account for documents and bytes on both sides."""
    stats.documents_in += batch.num_rows
    stats.bytes_in += text_bytes(batch)
    out = stage(batch, stats)
    stats.documents_out += out.num_rows
    stats.bytes_out += text_bytes(out)
    return out


def drop_where(batch: pa.RecordBatch, reasons: pa.Array, stats: StageStats) -> pa.RecordBatch:
    """Drop rows whose reason is non-null, counting each reason."""
    mask = pc.is_null(reasons)
    counts = pc.value_counts(pc.drop_null(reasons))
    for item in counts.to_pylist():
        stats.dropped[item["values"]] += item["counts"]
        record_samples(batch, pc.equal(reasons, item["values"]), item["values"], stats)
    return batch.filter(mask)


def record_samples(
    batch: pa.RecordBatch, selected: pa.Array, reason: str, stats: StageStats
) -> None:
    """Remember the first few documents dropped for ``reason`` (truncated), if still wanted."""
    wanted = SAMPLES_PER_REASON - len(stats.samples.get(reason, []))
    if wanted <= 0:
        return
    picked = batch.filter(pc.fill_null(selected, False)).slice(0, wanted)
    docs = [
        {"id": str(i), "text": t[:SAMPLE_CHARS]}
        for i, t in zip(
            picked.column("id").to_pylist(), picked.column("text").to_pylist(), strict=True
        )
    ]
    stats.add_samples(reason, docs)


def replace_text(batch: pa.RecordBatch, text: pa.Array) -> pa.RecordBatch:
    index = batch.schema.get_field_index("text")
    return batch.set_column(index, batch.schema.field("text"), text.cast(pa.large_string()))


def count_changed(before: pa.Array, after: pa.Array) -> int:
    return int(pc.sum(pc.not_equal(before, after)).as_py() or 0)


# --------------------------------------------------------------------------- global stages


def split_ranks(batch: pa.RecordBatch) -> np.ndarray:
    """The dedup priority of every row's split: 0 test, 1 val, 2 train, 3 anything else."""
    splits = batch.column("split").to_pylist()
    return np.array([SPLIT_RANK.get(s, RANKS - 1) for s in splits], np.uint8)


@dataclass(frozen=True)
class ShardRows:
    """Where one batch's rows sit: ``rank`` (split rank per row), ``group_row`` (row within
    its split rank in this shard) and ``first`` (the shard row of the batch's first row)."""

    rank: np.ndarray
    group_row: np.ndarray
    first: int


class SignatureSink(Protocol):
    """Collects one shard's signatures for one global stage, batch by batch."""

    def add(self, batch: pa.RecordBatch, rows: ShardRows) -> None: ...

    def write(self, tmp: Path, index: int) -> list[str]:
        """Write the shard's files into ``tmp``; their names (moved into the stage's folder)."""
        ...


@dataclass(frozen=True)
class Numbering:
    """The dedup order of a whole build, from the phase-1 counts (shards x split ranks).

    ``starts[g]`` is the first number of group ``g = rank * shards + shard`` (that shard's rows
    of that split rank, in row order), plus the total at the end; ``offsets[i]`` is shard
    ``i``'s first row when rows are numbered shard by shard instead.
    """

    counts: np.ndarray

    @property
    def shards(self) -> int:
        return len(self.counts)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts.T.reshape(-1))]).astype(np.int64)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts.sum(axis=1))]).astype(np.int64)

    def rank_starts(self, shard: int) -> tuple[int, ...]:
        """``starts`` of one shard, by split rank."""
        starts = self.starts
        return tuple(int(starts[r * self.shards + shard]) for r in range(RANKS))


def numbered(frame: pl.LazyFrame, rank_starts: Sequence[int]) -> pl.LazyFrame:
    """Rows with ``rank`` and ``grow`` (row within the rank) get ``doc``, their number in the
    dedup order: the first number of their rank's group in this shard plus ``grow``."""
    return frame.with_columns(
        doc=pl.col("grow")
        + pl.col("rank").replace_strict(
            list(range(RANKS)), list(rank_starts), return_dtype=pl.Int64
        )
    )


@dataclass(frozen=True)
class GroupingContext:
    """What a global stage's grouping and decisions may use (paths absolute: a task may run on
    another machine that mounts the same storage at the same path).

    ``folder`` holds the stage's per-shard files; ``excluded`` is a ``.npy`` of the documents
    (dedup numbering) that earlier global stages already dropped, ``excluded_rows`` the same
    documents numbered shard by shard (``Numbering.offsets``); ``work`` is the build's private
    folder, where decisions that the apply phase reads are written.
    """

    folder: Path
    numbering: Numbering
    excluded: Path
    excluded_rows: Path
    work: Path
    partitions: int


@dataclass
class Decision:
    """What a global stage decided: ``drops`` (``doc, kept, similarity``: documents to drop in
    the dedup numbering, each with the document it duplicates), and ``stats`` for the
    manifest (cluster sizes, table sizes)."""

    drops: pl.DataFrame | None = None
    stats: dict[str, Any] = field(default_factory=dict)


DROPS_SCHEMA = {"doc": pl.Int64, "kept": pl.Int64, "similarity": pl.Float64}


class GlobalStage(Protocol):
    """A stage that decides over the whole corpus, in four phases (see the module's doc).

    ``name`` keys its statistics, ``config`` goes into the clean artifact's fingerprint, and
    ``group`` is a module-level function (picklable by name) run on each grouping task.
    """

    name: str
    group: Callable[[Any], Any]

    def config(self) -> dict[str, Any]: ...

    def signature_settings(self) -> dict[str, Any]:
        """What the per-shard signature files depend on: their cache folder's name."""
        ...

    def sink(self) -> SignatureSink: ...

    def grouping_tasks(self, context: GroupingContext) -> list[Any]: ...

    def decide(self, answers: list[Any], context: GroupingContext) -> Decision: ...

    def apply(
        self, batch: pa.RecordBatch, rows: np.ndarray | None, work: Path, index: int,
        stats: StageStats,
    ) -> tuple[pa.RecordBatch, np.ndarray | None]:
        """The shard's batch after the decision, and which input rows it kept (None: not
        known, or all); ``rows`` are the batch's phase-1 shard rows (None once a per-batch
        stage has dropped rows: a stage that needs them must come before)."""
        ...


def cluster_stats(drops: pl.DataFrame) -> dict[str, Any]:
    """How many duplicate clusters, and the ten largest (kept copy included), for the manifest."""
    if drops.height == 0:
        return {"clusters": 0, "largest_clusters": []}
    sizes = drops.group_by("kept").len().sort(["len", "kept"], descending=[True, False])["len"] + 1
    return {"clusters": len(sizes), "largest_clusters": sizes.head(10).to_list()}


def drops_file(work: Path, stage: str, index: int) -> Path:
    """The shard rows (phase-1 numbering, sorted) that ``stage`` drops from shard ``index``."""
    return Path(work) / f"drops-{stage}-{index:05d}.npy"


def dropped_here(work: Path, stage: str, index: int, rows: np.ndarray | None) -> np.ndarray:
    """Which of ``rows`` (a batch's phase-1 shard rows) ``stage`` decided to drop."""
    if rows is None:
        raise AssertionError(f"{stage} must run before any per-batch stage that drops rows")
    path = drops_file(work, stage, index)
    if not path.exists():
        return np.zeros(len(rows), bool)
    return np.isin(rows, np.load(path))


def drop_rows(
    batch: pa.RecordBatch, hit: np.ndarray, reason: str, stats: StageStats
) -> pa.RecordBatch:
    """Drop the rows where ``hit`` is true, counted under ``reason`` with samples."""
    if not hit.any():
        return batch
    stats.dropped[reason] += int(hit.sum())
    record_samples(batch, pa.array(hit), reason, stats)
    return batch.filter(pa.array(~hit))


class TaskRunner(Protocol):
    """Anything that maps a function over tasks in order (an executor): stages take one for
    their tasks without knowing, or importing, what runs them."""

    def slots(self) -> int: ...

    def map_ordered(
        self, fn: Callable[[T], R], items: Sequence[T], *, desc: str, unit: str = ...,
        progress: bool = ...,
    ) -> Any: ...


def run_tasks(
    runner: TaskRunner | None, fn: Callable[[T], R], tasks: Sequence[T], *, desc: str
) -> list[R]:
    """The results of ``fn`` over ``tasks``, in order: on ``runner`` when there is one (and
    more than one task), else here. No progress bar: grouping tasks are short."""
    if runner is None or len(tasks) == 1:
        return [fn(t) for t in tasks]
    return list(runner.map_ordered(fn, tasks, desc=desc, unit="partition", progress=False))


def partition_count(runner: TaskRunner | None) -> int:
    """How many hash partitions a global step is cut into: one per slot of the runner."""
    return max(1, runner.slots()) if runner is not None else 1
