"""Phase 1, one executor task per raw shard: splits, the shard stages (clean and the filters),
and the per-shard signatures of every global stage, written to the phase-1 cache.

The cache folder holds, per shard ``i``, ``staged-i.arrow`` (the documents after clean and the
filters), ``keys-i.parquet`` (row, id, split rank and row within the rank: the dedup numbering)
and ``done-i.json`` (rows per split rank and the stage statistics), written last. Each global
stage has a subfolder named by its ``signature_settings()`` with its own files and its own
``done-i.json``, so a change of a signature setting recomputes only those files.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from corpuskit.build.plan import Plan
from corpuskit.build.splits import assign_splits
from corpuskit.faults import checkpoint
from corpuskit.shards import ShardWriter, read_batches, write_json_atomic
from corpuskit.stages.base import RANKS, ShardRows, StageStats, run_stage, split_ranks


@dataclass(frozen=True)
class Phase1Cache:
    """Where the phase-1 outputs of a build live: ``folder``, and per global stage with
    signatures, ``(name, subfolder)`` in ``derived``."""

    folder: Path
    derived: tuple[tuple[str, Path], ...] = ()

    def of(self, name: str) -> Path:
        return dict(self.derived)[name]

    def file(self, kind: str, index: int, suffix: str) -> Path:
        return self.folder / f"{kind}-{index:05d}.{suffix}"

    def done(self, index: int) -> list[Path]:
        """The completion markers shard ``index`` needs, phase 1's own last."""
        name = f"done-{index:05d}.json"
        return [folder / name for _, folder in self.derived] + [self.folder / name]


@dataclass(frozen=True)
class ShardTask:
    index: int
    source: str
    cache: Phase1Cache
    run_phase1: bool  # False: clean+filter output is cached, only some signatures are not
    signing: tuple[str, ...]  # the global stages whose signatures this task computes
    plan: Plan
    resplit: bool
    val_fraction: float
    test_fraction: float
    seed: int
    # The raw artifact has its own splits but no validation one (e.g. a folder of train and
    # test files): validation is carved out of train by hash, test is kept as it is.
    carve_val: bool = False


def stats_json(stats: dict[str, StageStats]) -> dict[str, Any]:
    return {name: {**st.to_dict(), "samples": st.samples} for name, st in stats.items()}


def stats_from_json(data: dict[str, Any]) -> dict[str, StageStats]:
    out = {}
    for name, st in data.items():
        out[name] = StageStats(
            documents_in=st["documents_in"],
            documents_out=st["documents_out"],
            bytes_in=st["bytes_in"],
            bytes_out=st["bytes_out"],
            changed=st["changed"],
            dropped=Counter(st["dropped"]),
            samples={k: list(v) for k, v in st["samples"].items()},
        )
    return out


def _phase1_batches(
    task: ShardTask, stats: dict[str, StageStats], tmp: Path
) -> Iterator[pa.RecordBatch]:
    """The shard's documents after clean and the filters: computed from the raw shard (and
    written to ``tmp/staged-i.arrow``), or read back from the cache."""
    staged = task.cache.file("staged", task.index, "arrow")
    if not task.run_phase1:
        if staged.exists():
            yield from read_batches(staged)
        return
    writer: ShardWriter | None = None
    for batch in read_batches(Path(task.source)):
        batch = assign_splits(
            batch, task.resplit, task.carve_val, task.val_fraction, task.test_fraction, task.seed
        )
        for stage in task.plan.shard_stages:
            batch = run_stage(stage, batch, stats[stage.name])
        if batch.num_rows == 0:
            continue
        if writer is None:
            # One file per task: an unbounded shard size and the task's own file name.
            writer = ShardWriter(tmp, batch.schema, shard_bytes=2**62, name_pattern=staged.name)
        writer.write_batch(batch)
        yield batch
    if writer is not None:
        writer.close()


@dataclass
class _Numbering:
    """The shard's rows per split rank and the ``keys`` table (id, rank, row within rank)."""

    counts: np.ndarray
    ids: list[str]
    ranks: list[np.ndarray]
    groups: list[np.ndarray]
    rows: int = 0

    def add(self, batch: pa.RecordBatch, keep_ids: bool) -> ShardRows:
        rank = split_ranks(batch)
        group = np.zeros(len(rank), np.int64)
        for r in range(RANKS):
            mask = rank == r
            n = int(mask.sum())
            if n:
                group[mask] = self.counts[r] + np.arange(n)
                self.counts[r] += n
        if keep_ids:
            self.ids.extend(batch.column("id").to_pylist())
            self.ranks.append(rank)
            self.groups.append(group)
        out = ShardRows(rank, group, self.rows)
        self.rows += batch.num_rows
        return out

    def write(self, path: Path) -> None:
        pl.DataFrame(
            {
                "row": np.arange(len(self.ids), dtype=np.int64),
                "id": pl.Series(self.ids, dtype=pl.String),
                "rank": np.concatenate(self.ranks) if self.ranks else np.zeros(0, np.uint8),
                "grow": np.concatenate(self.groups) if self.groups else np.zeros(0, np.int64),
            }
        ).write_parquet(path)


def _compute(task: ShardTask, tmp: Path) -> tuple[_Numbering, dict[str, StageStats], list]:
    """Run the shard through phase 1 into ``tmp``; the ``(tmp file, final path)`` moves."""
    plan, cache, index = task.plan, task.cache, task.index
    stats = {stage.name: StageStats() for stage in plan.shard_stages}
    numbering = _Numbering(np.zeros(RANKS, np.int64), [], [], [])
    sinks = {name: plan.stage(name).sink() for name in task.signing}
    for batch in _phase1_batches(task, stats, tmp):
        rows = numbering.add(batch, task.run_phase1)
        for sink in sinks.values():
            sink.add(batch, rows)
    moves: list[tuple[Path, Path]] = []
    if task.run_phase1:
        staged = cache.file("staged", index, "arrow")
        if (tmp / staged.name).exists():
            moves.append((tmp / staged.name, staged))
        else:  # no document survived: no file, not even one from an earlier run
            staged.unlink(missing_ok=True)
        keys = cache.file("keys", index, "parquet")
        numbering.write(tmp / keys.name)
        moves.append((tmp / keys.name, keys))
    for name, sink in sinks.items():
        moves += [(tmp / f, cache.of(name) / f) for f in sink.write(tmp, index)]
    return numbering, stats, moves


def _markers(task: ShardTask, numbering: _Numbering, stats: dict, moves: list) -> None:
    """The ``done-i.json`` markers, each with the sizes of the files it vouches for: a
    truncated or deleted cache file then discards its shard's entry (recomputed) instead of
    failing in a later phase. Phase 1's own marker comes last."""
    marker = f"done-{task.index:05d}.json"
    files: dict[Path, dict[str, int]] = {}
    for _, dst in moves:
        files.setdefault(dst.parent, {})[dst.name] = dst.stat().st_size
    for name in task.signing:
        folder = task.cache.of(name)
        write_json_atomic(
            folder / marker, {"rows": numbering.rows, "files": files.get(folder, {})}
        )
    if task.run_phase1:
        write_json_atomic(
            task.cache.folder / marker,
            {
                "rows": numbering.rows,
                "ranks": numbering.counts.tolist(),
                "stats": stats_json(stats),
                "files": files.get(task.cache.folder, {}),
            },
        )


def shard_phase(task: ShardTask) -> int:
    """Phase 1 for one shard, whatever of it is not cached yet; returns its surviving rows.

    Every file is written in a private ``.part-i.tmp-<pid>`` folder, then moved to its final
    name; the ``done-i.json`` markers come last, so a kill at any point leaves either a complete
    shard or one that the next run computes again.
    """
    tmp = task.cache.folder / f".part-{task.index:05d}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        numbering, stats, moves = _compute(task, tmp)
        for src, dst in moves:
            os.replace(src, dst)
        tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    checkpoint("build.shard_files")
    _markers(task, numbering, stats, moves)
    checkpoint("build.shard_phase")
    return numbering.rows
