"""The stage contract: one record batch in, one record batch out, drops counted with reasons.

Stages never know which executor runs them, and executors never know what a stage does. A
stage's statistics are plain counters so that results from many workers add up in any order.
Global stages (deduplication, decontamination) are split into explicit phases by the build so
that each phase can run where the executor likes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc


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
