"""The build's phases on their own, without a whole build: the finish phase (decisions applied
per shard, rows followed through the stages), the grouping's numbering and the split choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from corpuskit.build.finish import FinishTask, finish_phase
from corpuskit.build.splits import assign_splits, split_hash
from corpuskit.stages.base import Numbering, drop_rows, dropped_here, drops_file
from corpuskit.stages.paragraph_dedup import ParagraphDedup


def _staged(path: Path, texts: list[str], batch: int) -> None:
    table = pa.table(
        {
            "id": [f"d{i}" for i in range(len(texts))],
            "text": pa.array(texts, pa.large_string()),
            "split": ["train"] * len(texts),
        }
    )
    with ipc.new_file(str(path), table.schema) as writer:
        for b in table.to_batches(max_chunksize=batch):
            writer.write_batch(b)


@dataclass(frozen=True)
class _DropOdd:
    """A global stage whose decision is 'drop every odd phase-1 row' (read from its file)."""

    name: str = "drop_odd"
    seen: list[list[int]] = field(default_factory=list, compare=False)

    def grouping_tasks(self, context: object) -> list[object]:  # marks it as global
        return []

    def apply(self, batch, rows, work, index, stats):  # type: ignore[no-untyped-def]
        self.seen.append(rows.tolist())
        hit = dropped_here(work, self.name, index, rows)
        return drop_rows(batch, hit, "odd", stats), ~hit


def test_rows_follow_the_batch_through_every_global_stage(tmp_path: Path) -> None:
    """A stage after paragraph dedup sees the true phase-1 rows, even where paragraph dedup
    had nothing to remove (it used to hand on an all-false mask: every row lost)."""
    staged = tmp_path / "staged-00000.arrow"
    _staged(staged, [f"document number {i} with enough words" for i in range(10)], batch=4)
    pl.DataFrame(schema={"shard": pl.Int64, "row": pl.Int64, "unit": pl.Int32}).write_parquet(
        tmp_path / "paragraph-removed-00000.parquet"
    )
    first = _DropOdd("first_odd")
    np.save(drops_file(tmp_path, "first_odd", 0), np.array([1, 3, 5, 7, 9]))
    later = _DropOdd()
    np.save(drops_file(tmp_path, "drop_odd", 0), np.array([2, 8]))
    task = FinishTask(0, str(staged), str(tmp_path), (first, ParagraphDedup(), later))
    out, stats = finish_phase(task)
    assert later.seen == [[0, 2], [4, 6], [8]]  # phase-1 rows, odd ones gone
    ids = ipc.open_file(out).read_all().column("id").to_pylist()
    assert ids == ["d0", "d4", "d6"]
    assert stats["drop_odd"].dropped["odd"] == 2 and stats["first_odd"].dropped["odd"] == 5
    assert stats["paragraph_dedup"].documents_in == 5 == stats["paragraph_dedup"].documents_out


def test_numbering_is_split_rank_then_shard_then_row() -> None:
    counts = np.array([[2, 1, 5, 0], [1, 0, 3, 0]])  # shards x (test, val, train, other)
    numbering = Numbering(counts)
    # test rows of shard 0, of shard 1, val of shard 0, of shard 1, train of shard 0, ...
    assert numbering.starts.tolist() == [0, 2, 3, 4, 4, 9, 12, 12, 12]
    assert numbering.rank_starts(1) == (2, 4, 9, 12)
    assert numbering.offsets.tolist() == [0, 8, 12]


@pytest.mark.parametrize("resplit", [True, False])
def test_splits_come_from_ids_alone(resplit: bool) -> None:
    ids = [f"c/doc{i}" for i in range(400)]
    batch = pa.record_batch({"id": ids, "split": ["validation"] * 200 + ["train"] * 200})
    out = assign_splits(batch, resplit, not resplit, 0.2, 0.1, seed=3).column("split").to_pylist()
    if resplit:
        expected = [
            "val" if split_hash(i, 3) < 0.2 else "test" if split_hash(i, 3) < 0.3 else "train"
            for i in ids
        ]
    else:  # validation renamed; val carved out of train by the same hash
        expected = ["val"] * 200 + [
            "val" if split_hash(i, 3) < 0.2 else "train" for i in ids[200:]
        ]
    assert out == expected
    again = assign_splits(batch.slice(100), resplit, not resplit, 0.2, 0.1, seed=3)
    assert again.column("split").to_pylist() == expected[100:]  # any batching, same split
