"""Decontamination: training documents that share a long n-gram with val or test go.

The four phases of a global stage (``stages/base.py``):

1. signatures, per shard: hashes of every ``ngram``-word n-gram of the validation and test
   documents (lowercased ``\\w+`` words, so punctuation and case do not hide an overlap), in
   ``evalng-i.parquet``; after stopword removal when the ``stopwords`` stage removes them from
   the training text too;
2. grouping: the hashes partitioned by value, each partition's distinct hashes sorted
   (documents removed as duplicates are left out first);
3. decisions: each partition task writes its sorted, de-duplicated ``uint64`` array to the
   work folder itself (the partitions are disjoint by hash), so the table never passes
   through the driver;
4. apply (per batch): a training document any of whose n-grams is in that array is dropped
   (``mode="drop"``) or kept with ``contaminated = true`` (``mode="mark"``). The lookup is a
   vectorised binary search into the memory-mapped array.

13 words is the GPT-3 choice (Brown et al. 2020): long enough that shared idioms and quotes
rarely match, short enough to catch copied passages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from corpuskit.stages.base import (
    Decision,
    GroupingContext,
    ShardRows,
    StageStats,
    record_samples,
)
from corpuskit.stages.stopwords import Stopwords
from corpuskit.stages.words import HASH_VERSION, MATCH_WORDS, batch_words, ngram_hashes

EVAL_SPLITS = ("val", "test")
TABLE_PREFIX = "eval-ngrams-p"


def eval_ngrams(batch: pa.RecordBatch, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row, hash)`` of the n-grams of the batch's val/test documents."""
    is_eval = pc.is_in(batch.column("split"), pa.array(EVAL_SPLITS)).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(is_eval)
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    words = batch_words(batch.column("text").take(pa.array(rows)), pattern=MATCH_WORDS)
    doc, _, hashes = ngram_hashes(words, ngram)
    return rows[doc], hashes


def _found(table: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    if not len(table):
        return np.zeros(len(hashes), bool)
    pos = np.searchsorted(table, hashes)
    return table[np.minimum(pos, len(table) - 1)] == hashes


def contaminated_rows(
    texts: pa.Array, ngram: int, table: np.ndarray | list[np.ndarray]
) -> np.ndarray:
    """Boolean per document: does any of its n-grams occur in the sorted ``table``? A list of
    tables is hash-partitioned: table ``p`` holds the hashes ``h`` with ``h % len(list) == p``."""
    tables = table if isinstance(table, list) else [table]
    words = batch_words(texts, pattern=MATCH_WORDS)
    hit = np.zeros(len(words.counts), bool)
    if not sum(len(t) for t in tables):
        return hit
    doc, _, hashes = ngram_hashes(words, ngram)
    part = hashes % np.uint64(len(tables))
    for p, t in enumerate(tables):
        pick = np.flatnonzero(part == p)
        hit[doc[pick[_found(np.asarray(t), hashes[pick])]]] = True
    return hit


def load_tables(path: str) -> list[np.ndarray]:
    """The n-gram table(s), memory-mapped: one ``.npy`` file, or a folder's
    ``eval-ngrams-p*.npy`` hash partitions (none: an empty table)."""
    if not path:
        return [np.zeros(0, np.uint64)]
    folder = Path(path)
    if not folder.is_dir():
        return [np.load(folder, mmap_mode="r")]
    files = sorted(folder.glob(f"{TABLE_PREFIX}*.npy"))
    return [np.load(f, mmap_mode="r") for f in files] or [np.zeros(0, np.uint64)]


@dataclass(frozen=True)
class Decontaminate:
    """The per-batch filter of decontamination; ``table`` is the global n-gram file."""

    mode: Literal["drop", "mark"] = "drop"
    ngram: int = 13
    table: str = field(default="", compare=False)
    name: str = "decontaminate"
    # The stopwords stage when it removes stopwords from the training text: val/test n-grams
    # are then hashed after the same removal (set by the build's plan, not a setting).
    removed: Stopwords | None = field(default=None, compare=False)

    def config(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("table")
        out.pop("removed")
        return {**out, "hash": HASH_VERSION}

    # ------------------------------------------------------------ the GlobalStage contract

    def signature_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"ngram": self.ngram, "hash": HASH_VERSION}
        if self.removed is not None:
            words = self.removed.config()
            settings["stopwords_removed"] = {k: words[k] for k in ("language", "list")}
        return settings

    def sink(self) -> _EvalSink:
        return _EvalSink(self.ngram, self.removed)

    def grouping_tasks(self, context: GroupingContext) -> list[NgramPartition]:
        numbering, parts = context.numbering, context.partitions
        files = tuple(
            str(context.folder / f"evalng-{i:05d}.parquet") for i in range(numbering.shards)
        )
        offsets = tuple(int(o) for o in numbering.offsets[:-1])
        return [
            NgramPartition(
                files, offsets, p, parts, str(context.excluded_rows),
                str(context.work / f"{TABLE_PREFIX}{p:05d}.npy"),
            )
            for p in range(parts)
        ]

    @staticmethod
    def group(task: NgramPartition) -> int:
        return write_partition(task)

    def decide(self, answers: list[int], context: GroupingContext) -> Decision:
        # Each partition wrote its own sorted table: nothing of them passes through the driver.
        return Decision(stats={"eval_ngrams": int(sum(answers))})

    def apply(
        self, batch: pa.RecordBatch, rows: np.ndarray | None, work: Path, index: int,
        stats: StageStats,
    ) -> tuple[pa.RecordBatch, np.ndarray | None]:
        return replace(self, table=str(work))(batch, stats), None

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        tables = load_tables(self.table)
        is_train = pc.equal(batch.column("split"), "train").to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(is_train)
        flags = np.zeros(batch.num_rows, bool)
        if len(rows) and sum(len(t) for t in tables):
            texts = batch.column("text").take(pa.array(rows))
            flags[rows] = contaminated_rows(texts, self.ngram, tables)
        hits = int(flags.sum())
        if self.mode == "mark":
            stats.changed += hits
            column = pa.array(flags, pa.bool_())
            if "contaminated" in batch.schema.names:
                index = batch.schema.get_field_index("contaminated")
                return batch.set_column(index, "contaminated", column)
            return batch.append_column("contaminated", column)
        if hits:
            stats.dropped["contaminated"] += hits
            record_samples(batch, pa.array(flags), "contaminated", stats)
        return batch.filter(pa.array(~flags))


@dataclass
class _EvalSink:
    """One shard's val/test n-gram hashes with their shard row."""

    ngram: int
    removed: Stopwords | None
    rows: list[np.ndarray] = field(default_factory=list)
    hashes: list[np.ndarray] = field(default_factory=list)

    def add(self, batch: pa.RecordBatch, rows: ShardRows) -> None:
        if self.removed is not None:
            # Train text will be compared after stopword removal: hash val/test alike.
            index = batch.schema.get_field_index("text")
            batch = batch.set_column(index, "text", self.removed.remove(batch.column("text")))
        doc, hashes = eval_ngrams(batch, self.ngram)
        self.rows.append(doc + rows.first)
        self.hashes.append(hashes)

    def write(self, tmp: Path, index: int) -> list[str]:
        name = f"evalng-{index:05d}.parquet"
        pl.DataFrame(
            {
                "row": np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64),
                "hash": np.concatenate(self.hashes) if self.hashes else np.zeros(0, np.uint64),
            }
        ).write_parquet(tmp / name)
        return [name]


@dataclass(frozen=True)
class NgramPartition:
    """One hash partition of the eval n-grams: a pure, picklable task. ``offsets[i]`` is shard
    ``i``'s first row in the shard-by-shard numbering; ``dropped`` a ``.npy`` of the rows in
    that numbering already dropped as duplicates (their n-grams do not count)."""

    files: tuple[str, ...]
    offsets: tuple[int, ...]
    partition: int
    partitions: int
    dropped: str
    out: str = ""


def write_partition(task: NgramPartition) -> int:
    """This partition's table, written to ``task.out``; its number of n-grams."""
    table = ngram_partition(task)
    np.save(task.out, table)
    return len(table)


def ngram_partition(task: NgramPartition) -> np.ndarray:
    """Sorted distinct eval n-gram hashes of this partition, from documents not dropped."""
    table = (
        pl.concat(
            [
                pl.scan_parquet(f)
                .filter(pl.col("hash") % task.partitions == task.partition)
                .with_columns(doc=pl.col("row") + int(start))
                for f, start in zip(task.files, task.offsets, strict=True)
            ]
        )
        .join(pl.DataFrame({"doc": np.load(task.dropped)}).lazy(), on="doc", how="anti")
        .select(pl.col("hash").unique().sort())
        .collect()["hash"]
        .to_numpy()
    )
    return table.astype(np.uint64)
