"""Arrow document shards, manifests and fingerprints: the on-disk contract between steps.

A shard is an Arrow IPC *file* (``part-00000.arrow``) of zstd-compressed record batches with at
least ``id``, ``text`` (large_string), ``split`` and ``source`` columns; the IPC file format is the
one that pyarrow, ``polars.scan_ipc`` and ``datasets.load_dataset("arrow", ...)`` all open.

An artifact is a folder of shards plus ``manifest.json``. It is built in a temporary sibling
folder and renamed into place, and the manifest is written last, so a folder with a manifest is
complete and anything else is debris from an interrupted run.

The manifest also records every other file of the artifact with its size and xxh3-128 hash
(``files``, written by :func:`write_manifest`): a step that would reuse an artifact checks the
sizes first (a stat per file, :func:`size_problems`), so a deleted or truncated file is never
taken for a whole one, and ``corpuskit verify`` checks the hashes (:func:`hash_problems`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from corpuskit.artifacts import (  # the manifest and staging machinery, re-exported
    FORMAT_VERSION,
    HASH,
    MANIFEST,
    DamagedArtifactError,
    FileProblem,
    existing_manifest,
    file_records,
    fingerprint,
    glob_escape,
    hash_file,
    hash_problems,
    new_manifest,
    read_manifest,
    rebuild_command,
    rebuild_command_for,
    remove_stale_siblings,
    require_intact,
    reusable,
    size_problems,
    staging_dir,
    write_json_atomic,
    write_manifest,
)
from corpuskit.faults import checkpoint

REQUIRED_COLUMNS = ("id", "text", "split", "source")
_IPC_OPTIONS = ipc.IpcWriteOptions(compression="zstd")
_log = logging.getLogger(__name__)


def document_schema(metadata_columns: Iterable[str] = ()) -> pa.Schema:
    fields = [
        pa.field("id", pa.string()),
        pa.field("text", pa.large_string()),
        pa.field("split", pa.string()),
        pa.field("source", pa.string()),
    ]
    fields += [pa.field(name, pa.string()) for name in metadata_columns]
    return pa.schema(fields)


@dataclass
class ShardInfo:
    file: str
    documents: int
    bytes: int


@dataclass
class ShardWriter:
    """Streams documents into numbered shard files of bounded size.

    Memory stays bounded by ``batch_rows`` documents; a new part file starts once the current one
    holds ``shard_bytes`` of text.
    """

    directory: Path
    schema: pa.Schema
    shard_bytes: int = 16 * 2**20
    batch_rows: int = 1024
    name_pattern: str = "part-{:05d}.arrow"
    shards: list[ShardInfo] = field(default_factory=list)
    split_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    _rows: list[dict[str, Any]] = field(default_factory=list)
    _pending_bytes: int = 0
    _writer: ipc.RecordBatchFileWriter | None = None
    _current: ShardInfo | None = None

    def write(self, doc: Mapping[str, Any]) -> None:
        self._rows.append(dict(doc))
        self._pending_bytes += len(doc["text"])
        # A batch ends at batch_rows documents or when it would fill the current part file, so
        # memory is bounded by bytes as well as rows and small shard sizes are honoured.
        room = self.shard_bytes - (self._current.bytes if self._current else 0)
        if len(self._rows) >= self.batch_rows or self._pending_bytes >= min(room, 64 * 2**20):
            self._flush_rows()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Append an already-built batch (columns must match the schema)."""
        if self._rows:
            self._flush_rows()
        if batch.num_rows:
            self._append(batch.select(self.schema.names).cast(self.schema))

    def _flush_rows(self) -> None:
        rows, self._rows = self._rows, []
        self._pending_bytes = 0
        columns = {name: [r.get(name) for r in rows] for name in self.schema.names}
        self._append(pa.RecordBatch.from_pydict(columns, schema=self.schema))

    def _append(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            name = self.name_pattern.format(len(self.shards))
            self._current = ShardInfo(name, 0, 0)
            self._writer = ipc.new_file(self.directory / name, self.schema, options=_IPC_OPTIONS)
        assert self._current is not None
        self._writer.write_batch(batch)
        checkpoint("shards.batch")
        text_bytes = _utf8_bytes(batch.column("text"))
        self._current.documents += batch.num_rows
        self._current.bytes += text_bytes
        for split, docs, nbytes in _split_counts(batch):
            counts = self.split_counts.setdefault(split, {"documents": 0, "bytes": 0})
            counts["documents"] += docs
            counts["bytes"] += nbytes
        if self._current.bytes >= self.shard_bytes:
            self._close_part()

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            checkpoint("shards.part_closed")
            assert self._current is not None
            self.shards.append(self._current)
            self._writer, self._current = None, None

    def close(self) -> list[ShardInfo]:
        if self._rows:
            self._flush_rows()
        self._close_part()
        return self.shards


def _utf8_bytes(column: pa.Array | pa.ChunkedArray) -> int:
    import pyarrow.compute as pc

    total = pc.sum(pc.binary_length(column)).as_py()
    return int(total or 0)


def _split_counts(batch: pa.RecordBatch) -> Iterator[tuple[str, int, int]]:
    import pyarrow.compute as pc

    table = pa.Table.from_batches([batch]).select(["split", "text"])
    table = table.append_column("n", pc.binary_length(table.column("text")))
    grouped = table.group_by("split").aggregate([("n", "count"), ("n", "sum")])
    for row in grouped.to_pylist():
        yield row["split"], int(row["n_count"]), int(row["n_sum"] or 0)


def read_batches(path: Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """Stream the record batches of one shard (memory-mapped, nothing read twice).

    A missing or unreadable shard (truncated, overwritten) is a one-line
    :class:`DamagedArtifactError` naming the file and the command that rebuilds it, not
    pyarrow's ``ArrowInvalid`` traceback.
    """
    try:
        with pa.memory_map(str(path), "r") as source:
            reader = ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                yield batch.select(columns) if columns else batch
    except (pa.ArrowException, FileNotFoundError) as exc:
        what = "is missing" if isinstance(exc, FileNotFoundError) else "is damaged"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DamagedArtifactError(
            f"{path} {what} ({detail}); rebuild it with `{rebuild_command_for(Path(path))}`"
        ) from None


def shard_paths(directory: Path, manifest: Mapping[str, Any] | None = None) -> list[Path]:
    manifest = manifest or read_manifest(directory)
    return [directory / s["file"] for s in manifest["shards"]]


def iter_documents(
    directory: Path, columns: list[str] | None = None, split: str | None = None
) -> Iterator[dict[str, Any]]:
    """Documents of a complete artifact, in shard order."""
    for path in shard_paths(directory):
        for batch in read_batches(path, columns):
            for row in batch.to_pylist():
                if split is None or row.get("split") == split:
                    yield row

__all__ = [
    "DamagedArtifactError",
    "FORMAT_VERSION",
    "FileProblem",
    "HASH",
    "MANIFEST",
    "existing_manifest",
    "file_records",
    "fingerprint",
    "glob_escape",
    "hash_file",
    "hash_problems",
    "new_manifest",
    "read_manifest",
    "rebuild_command",
    "rebuild_command_for",
    "remove_stale_siblings",
    "require_intact",
    "reusable",
    "size_problems",
    "staging_dir",
    "write_json_atomic",
    "write_manifest",
]
