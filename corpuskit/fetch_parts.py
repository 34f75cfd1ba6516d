"""Sources of many files read as executor tasks, byte-identical to a one-process read.

Consecutive files (units) are grouped into parts of about equal input bytes; each part is read
and converted to Arrow by one executor task (``Executor.map_ordered``: worker processes, or Ray
tasks on a cluster) into a file in the staging folder, and the driver streams those files, in
part order, into the shards through a ``Rechunker``, which cuts batches and shards exactly where
writing the same documents one by one would. So the executor and the number of workers cannot
change a byte of the raw artifact (see corpuskit/fetch.py for the whole fetch).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from tqdm.auto import tqdm

from corpuskit.catalog import CorpusEntry
from corpuskit.executors import Executor
from corpuskit.faults import checkpoint
from corpuskit.shards import ShardWriter, document_schema
from corpuskit.sources import source_module

# A part (one task) holds about this many input bytes at most and at least; between the two,
# parts are sized so that every slot of the executor gets about PARTS_PER_SLOT of them.
PART_BYTES_MAX = 64 * 2**20
PART_BYTES_MIN = 256 * 2**10
PARTS_PER_SLOT = 4
_TASK_BATCH_ROWS = 4096
_TASK_BATCH_BYTES = 32 * 2**20


@dataclass(frozen=True)
class ReadTask:
    """One executor task: read ``units`` of a source into an Arrow IPC file at ``out``."""

    entry: CorpusEntry
    units: tuple[Any, ...]
    columns: tuple[str, ...]
    out: str


@dataclass(frozen=True)
class ReadResult:
    out: str
    documents: int
    skipped: dict[str, int]


def read_part_task(task: ReadTask) -> ReadResult:
    """Read some consecutive files of a source into an uncompressed Arrow file (a task).

    Documents without text are only counted, under their skip reason. The file is written
    under a temporary name and renamed, so a task that is run again (Ray retries a task whose
    worker died) leaves one whole file.
    """
    module = source_module(task.entry)
    schema = document_schema(task.columns)
    skipped: Counter[str] = Counter()
    documents = 0
    rows: list[dict[str, Any]] = []
    pending = 0
    tmp = f"{task.out}.tmp-{os.getpid()}"
    with ipc.new_file(tmp, schema) as writer:

        def flush() -> None:
            columns = {name: [r.get(name) for r in rows] for name in schema.names}
            writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=schema))
            rows.clear()

        for doc in module.read_part(task.entry, list(task.units)):
            reason = doc.pop("skip", None)
            if doc["text"] is None:
                skipped[reason or "not_utf8"] += 1
                continue
            rows.append(doc)
            documents += 1
            pending += len(doc["text"])
            if len(rows) >= _TASK_BATCH_ROWS or pending >= _TASK_BATCH_BYTES:
                flush()
                pending = 0
        if rows:
            flush()
    os.replace(tmp, task.out)
    return ReadResult(task.out, documents, dict(skipped))


def group_units(sizes: Sequence[int], slots: int) -> list[range]:
    """Consecutive units grouped into parts of about equal input bytes (see PART_BYTES_*)."""
    total = sum(sizes)
    target = min(PART_BYTES_MAX, max(PART_BYTES_MIN, total // max(1, slots * PARTS_PER_SLOT)))
    parts: list[range] = []
    start, filled = 0, 0
    for i, size in enumerate(sizes):
        filled += size
        if filled >= target:
            parts.append(range(start, i + 1))
            start, filled = i + 1, 0
    if start < len(sizes):
        parts.append(range(start, len(sizes)))
    return parts


class Rechunker:
    """Feeds Arrow batches to a ``ShardWriter`` with the batch and part boundaries that
    ``ShardWriter.write`` gives the same documents one by one.

    ``write`` flushes its buffered rows once there are ``batch_rows`` of them, or once their
    text (in characters) reaches what is left of the current part (in UTF-8 bytes) or 64 MiB;
    a part is closed once it holds ``shard_bytes``. Doing the same arithmetic on the columns
    here means that how the documents were cut into tasks (and so the executor and the
    number of workers) cannot change a byte of the shards, and the rows never become Python
    objects in this process.
    """

    def __init__(self, writer: ShardWriter):
        self.writer = writer
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self._chars = 0
        self._part_bytes = 0

    def feed(self, batch: pa.RecordBatch) -> None:
        text = batch.column("text")
        chars = pc.utf8_length(text).to_pylist()
        shard_bytes, batch_rows = self.writer.shard_bytes, self.writer.batch_rows
        start = 0
        for i, n in enumerate(chars):
            self._rows += 1
            self._chars += n
            checkpoint("fetch.document")
            room = shard_bytes - self._part_bytes
            if self._rows >= batch_rows or self._chars >= min(room, 64 * 2**20):
                self._pending.append(batch.slice(start, i + 1 - start))
                start = i + 1
                self._flush()
        if start < batch.num_rows:
            self._pending.append(batch.slice(start))

    def _flush(self) -> None:
        batches, self._pending = self._pending, []
        self._rows = self._chars = 0
        # Concatenating copies the rows into fresh buffers, laid out as ``from_pydict`` lays
        # them out; a zero-copy slice of a task's batch would be written with other bytes.
        batch = pa.concat_batches([*batches, batches[0].slice(0, 0)])
        self.writer.write_batch(batch)
        self._part_bytes += int(pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0)
        if self._part_bytes >= self.writer.shard_bytes:
            self._part_bytes = 0  # the writer closed the part

    def close(self) -> None:
        if self._rows:
            self._flush()


def read_in_parts(
    entry: CorpusEntry,
    units: list[tuple[Any, int]],
    writer: ShardWriter,
    work: Path,
    executor: Executor,
    progress: bool,
) -> Counter[str]:
    """Read the units as executor tasks, in groups, and stream their output into ``writer``."""
    work.mkdir()
    parts = group_units([size for _, size in units], executor.slots())
    columns = tuple(writer.schema.names[4:])
    tasks = [
        ReadTask(
            entry,
            tuple(units[i][0] for i in part),
            columns,
            str((work / f"read-{n:06d}.arrow").resolve()),
        )
        for n, part in enumerate(parts)
    ]
    skipped: Counter[str] = Counter()
    rechunker = Rechunker(writer)
    # Windows of tasks bound the finished-but-unread files in the staging folder (the local
    # pool submits every item of a call at once).
    window = max(8, PARTS_PER_SLOT * 2 * executor.slots())
    bar = tqdm(
        total=len(tasks), desc=f"read {entry.name}", unit="part", disable=not progress,
        leave=False,
    )
    try:
        for start in range(0, len(tasks), window):
            chunk = tasks[start : start + window]
            for result in executor.map_ordered(read_part_task, chunk, desc="", progress=False):
                for batch in _ipc_batches(result.out):
                    rechunker.feed(batch)
                os.unlink(result.out)
                skipped.update(result.skipped)
                bar.update()
        rechunker.close()
    finally:
        bar.close()
    shutil.rmtree(work)
    return skipped


def _ipc_batches(path: str) -> Iterator[pa.RecordBatch]:
    """The part's batches, read one by one: a memory map would keep every page it touched in
    this process's RSS until the file is closed (a part is a whole input file: 625 MB of one
    16-file 10 GB corpus took the fetch's peak from 375 MB at 1 GB to 884 MB)."""
    with pa.OSFile(path, "r") as source:
        reader = ipc.open_file(source)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
