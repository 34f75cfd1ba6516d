"""Paragraph-level (or line-level) deduplication: boilerplate repeated across the corpus goes.

A paragraph (text between blank lines) or, with ``mode="lines"``, a line that occurs in more than
``threshold`` places across the corpus is boilerplate (cookie banners, navigation, licence
headers, signatures): every copy after the first in the dedup order (test, val, train, other
splits; then shard, row, and place in the document) is removed, and a document left with fewer
than ``min_chars`` characters is dropped. This is C4's and dolma's paragraph/line dedup, and
datatrove's sentence dedup, with a deterministic choice of the copy kept.

The four phases of a global stage (``stages/base.py``):

1. signatures, per shard: an xxh3-64 hash of every unit (whitespace-normalised, at least
   ``min_unit_chars`` characters) with its document's split rank, row within the rank, shard
   row and place, in ``paragraph-i.parquet``;
2. grouping: units hash-partitioned; each partition task counts its hashes over the whole corpus
   (documents already dropped as duplicates left out) and writes the copies to remove,
   ``(shard, row, unit)``, to its own file in the work folder: the decisions never pass through
   the driver, whose memory stays bounded whatever the corpus size;
3. decisions: the number of repeated units and removed copies, summed;
4. apply, per batch: the shard's removals are read from every partition's file (filtered by
   shard), the units removed from the text, and documents left too short dropped.

Decontamination hashes val/test n-grams before this stage removes anything, so it can only be
stricter than needed, never miss an overlap.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import xxhash

from corpuskit.errors import CorpuskitError
from corpuskit.stages.base import (
    SAMPLE_CHARS,
    Decision,
    GroupingContext,
    ShardRows,
    StageStats,
    drop_rows,
    numbered,
    replace_text,
)

_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n\s*)")
_EMPTY = {"shard": pl.Int64, "row": pl.Int64, "unit": pl.Int32}


def split_units(text: str, mode: str) -> list[str]:
    """``[unit, separator, unit, separator, ..., unit]``: joined, they give ``text`` back."""
    if mode == "lines":
        parts = text.split("\n")
        out: list[str] = []
        for i, part in enumerate(parts):
            if i:
                out.append("\n")
            out.append(part)
        return out
    return _PARAGRAPH_BREAK.split(text)


def unit_hash(unit: str) -> int:
    """A unit's identity: its words joined by one space (spacing does not make it new)."""
    return xxhash.xxh3_64_intdigest(" ".join(unit.split()).encode("utf-8"))


def remove_units(text: str, mode: str, removed: set[int]) -> str:
    """``text`` without the units numbered in ``removed``, each with the separator after it (or,
    for the last unit, the one before), so no blank lines pile up where boilerplate was."""
    parts = split_units(text, mode)
    units = parts[0::2]
    seps = parts[1::2]
    keep = [i for i in range(len(units)) if i not in removed]
    if not keep:
        return ""
    out = [units[keep[0]]]
    for prev, i in zip(keep, keep[1:], strict=False):
        out.append(seps[prev])  # the separator after the previous kept unit
        out.append(units[i])
    return "".join(out)


@dataclass
class _UnitSink:
    """One shard's unit hashes with where each unit sits."""

    mode: str
    min_unit_chars: int
    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {k: [] for k in ("rank", "grow", "row", "unit", "hash")}
    )

    def add(self, batch: pa.RecordBatch, rows: ShardRows) -> None:
        cols = self.columns
        for j, text in enumerate(batch.column("text").to_pylist()):
            for k, unit in enumerate(split_units(text, self.mode)[0::2]):
                if len(unit.strip()) < self.min_unit_chars:
                    continue
                cols["rank"].append(int(rows.rank[j]))
                cols["grow"].append(int(rows.group_row[j]))
                cols["row"].append(rows.first + j)
                cols["unit"].append(k)
                cols["hash"].append(unit_hash(unit))

    def write(self, tmp: Path, index: int) -> list[str]:
        name = f"paragraph-{index:05d}.parquet"
        cols = self.columns
        pl.DataFrame(
            {
                "rank": np.array(cols["rank"], np.uint8),
                "grow": np.array(cols["grow"], np.int64),
                "row": np.array(cols["row"], np.int64),
                "unit": np.array(cols["unit"], np.int32),
                "hash": np.array(cols["hash"], np.uint64),
            }
        ).write_parquet(tmp / name)
        return [name]


@dataclass(frozen=True)
class UnitPartition:
    """One hash partition of the units: a pure, picklable task that writes its removals."""

    files: tuple[str, ...]
    starts: tuple[tuple[int, ...], ...]
    partition: int
    partitions: int
    excluded: str
    threshold: int
    out: str


def repeated_units(task: UnitPartition) -> tuple[int, int]:
    """Write ``(shard, row, unit)`` of every copy to remove in this partition; return how many
    distinct units repeat more than ``threshold`` times, and how many copies go."""
    units = pl.concat(
        [
            numbered(
                pl.scan_parquet(f).filter(pl.col("hash") % task.partitions == task.partition),
                start,
            ).with_columns(shard=pl.lit(i, pl.Int64))
            for i, (f, start) in enumerate(zip(task.files, task.starts, strict=True))
        ]
    )
    excluded = pl.DataFrame({"doc": np.load(task.excluded).astype(np.int64)}).lazy()
    copies = (
        units.join(excluded, on="doc", how="anti")
        .with_columns(count=pl.len().over("hash"))
        .filter(pl.col("count") > task.threshold)
        .sort("hash", "doc", "unit")
        .with_columns(first=pl.int_range(pl.len()).over("hash") == 0)
        .collect()
    )
    removed = copies.filter(~pl.col("first")).select("shard", "row", "unit").sort(
        "shard", "row", "unit"
    )
    removed.write_parquet(task.out)
    return int(copies["hash"].n_unique()) if copies.height else 0, removed.height


def _removals(work: Path, index: int) -> dict[int, set[int]]:
    """Shard ``index``'s removals from every partition's file: ``row -> units``."""
    frames = [
        pl.scan_parquet(path).filter(pl.col("shard") == index)
        for path in sorted(work.glob("paragraph-removed-*.parquet"))
    ]
    table = pl.concat(frames).collect() if frames else pl.DataFrame(schema=_EMPTY)
    out: dict[int, set[int]] = {}
    for row, unit in zip(table["row"].to_list(), table["unit"].to_list(), strict=True):
        out.setdefault(row, set()).add(unit)
    return out


@dataclass(frozen=True)
class ParagraphDedup:
    """The ``paragraph_dedup`` global stage (``--paragraph-dedup lines|paragraphs``)."""

    mode: Literal["paragraphs", "lines"] = "paragraphs"
    # A unit in more than this many places is boilerplate (1: any repeat, as C4).
    threshold: int = 1
    # A document shorter than this after removal is dropped.
    min_chars: int = 50
    # Shorter units (blank lines, "}", "Thanks!") are never counted nor removed.
    min_unit_chars: int = 10
    name: str = "paragraph_dedup"

    def config(self) -> dict[str, Any]:
        return {**asdict(self), "hash": "xxh3-64 of space-joined words"}

    def validate(self) -> None:
        if self.mode not in ("paragraphs", "lines"):
            raise CorpuskitError("--paragraph-dedup must be off, lines or paragraphs")
        if self.threshold < 1 or self.min_chars < 0 or self.min_unit_chars < 1:
            raise CorpuskitError(
                "paragraph_threshold and paragraph_min_unit_chars must be >= 1, "
                "paragraph_min_chars >= 0"
            )

    def signature_settings(self) -> dict[str, Any]:
        return {"mode": self.mode, "min_unit_chars": self.min_unit_chars, "version": 1}

    def sink(self) -> _UnitSink:
        return _UnitSink(self.mode, self.min_unit_chars)

    def grouping_tasks(self, context: GroupingContext) -> list[UnitPartition]:
        numbering, parts = context.numbering, context.partitions
        files = tuple(
            str(context.folder / f"paragraph-{i:05d}.parquet") for i in range(numbering.shards)
        )
        starts = tuple(numbering.rank_starts(i) for i in range(numbering.shards))
        return [
            UnitPartition(
                files, starts, p, parts, str(context.excluded), self.threshold,
                str(context.work / f"paragraph-removed-{p:05d}.parquet"),
            )
            for p in range(parts)
        ]

    group = staticmethod(repeated_units)

    def decide(self, answers: list[tuple[int, int]], context: GroupingContext) -> Decision:
        return Decision(
            stats={
                "repeated_units": sum(a[0] for a in answers),
                "units_removed": sum(a[1] for a in answers),
            }
        )

    def apply(
        self, batch: pa.RecordBatch, rows: np.ndarray | None, work: Path, index: int,
        stats: StageStats,
    ) -> tuple[pa.RecordBatch, np.ndarray | None]:
        if rows is None:
            raise AssertionError("paragraph_dedup must run before stages that drop rows")
        removals = _removals(Path(work), index)
        touched = np.isin(rows, np.fromiter(removals, np.int64, len(removals)))
        if not touched.any():
            return batch, None  # every row kept
        texts = batch.column("text").to_pylist()
        ids = batch.column("id").to_pylist()
        samples: list[dict[str, str]] = []
        for j in np.flatnonzero(touched).tolist():
            removed = removals[int(rows[j])]
            units = split_units(texts[j], self.mode)[0::2]
            samples += [
                {"id": str(ids[j]), "text": units[k][:SAMPLE_CHARS]} for k in sorted(removed)
            ]
            texts[j] = remove_units(texts[j], self.mode, removed)
        stats.changed += int(touched.sum())
        stats.add_samples("boilerplate_removed", samples)
        batch = replace_text(batch, pa.array(texts, pa.large_string()))
        short = touched & np.array([len(t.strip()) < self.min_chars for t in texts], bool)
        return drop_rows(batch, short, "too_short_after_paragraph_dedup", stats), ~short
