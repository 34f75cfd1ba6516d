"""The finish phase, one executor task per shard: the global stages' decisions are applied
(duplicates dropped, boilerplate removed, contaminated documents dropped or marked) together
with the per-batch stages that run after deduplication (``stopwords``), and the shard is
written to ``out-i.arrow`` in the build's work folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from corpuskit.faults import checkpoint
from corpuskit.shards import ShardWriter, read_batches
from corpuskit.stages.base import StageStats, text_bytes

DROPPED_SAMPLES = "dropped-samples.jsonl"


@dataclass(frozen=True)
class FinishTask:
    index: int
    staged: str  # the shard's phase-1 documents (in the cache)
    work: str  # decisions in, out-*.arrow written here
    stages: tuple[Any, ...]  # the plan's finish stages, in order

    def path(self, kind: str, suffix: str) -> Path:
        return Path(self.work) / f"{kind}-{self.index:05d}.{suffix}"


def _apply(
    stage: Any, batch: pa.RecordBatch, rows: np.ndarray | None, task: FinishTask,
    stats: StageStats,
) -> tuple[pa.RecordBatch, np.ndarray | None]:
    """One stage on one batch, documents and bytes counted on both sides; ``rows`` (the phase-1
    rows of the batch) follow the batch while only global stages have dropped rows."""
    stats.documents_in += batch.num_rows
    stats.bytes_in += text_bytes(batch)
    if hasattr(stage, "grouping_tasks"):
        out, kept = stage.apply(batch, rows, Path(task.work), task.index, stats)
        if kept is not None and rows is not None:
            rows = rows[kept]
    else:
        out, kept = stage(batch, stats), None
    if kept is None and out.num_rows != batch.num_rows:
        rows = None  # which rows went is not known: no global stage may follow
    stats.documents_out += out.num_rows
    stats.bytes_out += text_bytes(out)
    return out, rows


def finish_phase(task: FinishTask) -> tuple[str | None, dict[str, StageStats]]:
    """The finish phase for one shard; the file it wrote (None: nothing left) and statistics."""
    stats = {s.name: StageStats() for s in task.stages}
    staged = Path(task.staged)
    if not staged.exists():
        return None, stats
    out = task.path("out", "arrow")
    writer: ShardWriter | None = None
    offset = 0
    for batch in read_batches(staged):
        rows: np.ndarray | None = np.arange(offset, offset + batch.num_rows)
        offset += batch.num_rows
        for stage in task.stages:
            batch, rows = _apply(stage, batch, rows, task, stats[stage.name])
        if batch.num_rows == 0:
            continue
        if writer is None:
            writer = ShardWriter(out.parent, batch.schema, shard_bytes=2**62, name_pattern=out.name)
        writer.write_batch(batch)
    if writer is not None:
        writer.close()
    checkpoint("build.finish_phase")
    return (str(out) if writer is not None and out.exists() else None), stats


def write_samples(path: Path, stats: dict[str, StageStats]) -> None:
    """``dropped-samples.jsonl``: a few dropped documents per stage and reason."""
    with path.open("w", encoding="utf-8") as f:
        for stage, st in stats.items():
            for reason in sorted(st.samples):
                for doc in st.samples[reason]:
                    record = {"stage": stage, "reason": reason, **doc}
                    f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
