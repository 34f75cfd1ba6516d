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

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import xxhash

from corpuskit import __version__
from corpuskit.artifacts import pid_alive
from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REQUIRED_COLUMNS = ("id", "text", "split", "source")
_IPC_OPTIONS = ipc.IpcWriteOptions(compression="zstd")
_log = logging.getLogger(__name__)


def fingerprint(payload: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-able mapping (key order does not matter)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


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


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpuskitError(f"{directory} is not a complete artifact (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise CorpuskitError(
            f"{path} is corrupt ({exc.msg}); delete the folder and rerun"
        ) from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CorpuskitError(
            f"{path} has format_version {manifest.get('format_version')!r}, this corpuskit reads "
            f"{FORMAT_VERSION}; rebuild it with this version"
        )
    return manifest


def existing_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a complete artifact, or None when there is none (or it is unreadable)."""
    try:
        return read_manifest(directory)
    except CorpuskitError:
        return None


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    remove_stale_siblings(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    checkpoint("json.before_replace")
    os.replace(tmp, path)


def remove_stale_siblings(final: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` beside ``final`` whose process is dead.

    A process killed mid-write (SIGKILL, OOM, power cut) runs no cleanup, so its staging folder
    or temporary file stays behind under a name no reader ever opens; without this sweep such
    debris would pile up for ever. Only names of *dead* processes on this machine are touched,
    so a concurrent writer's work in progress is safe. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        candidates = list(final.parent.glob(f".{glob_escape(final.name)}.*-*"))
    except OSError:
        return removed
    for path in candidates:
        stem, _, pid_text = path.name.rpartition("-")
        if stem not in (f".{final.name}.tmp", f".{final.name}.old") or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or pid_alive(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped (artifact names may hold ``[``)."""
    import glob

    return glob.escape(name)


def new_manifest(
    kind: str,
    corpus: str,
    *,
    inputs: Mapping[str, Any],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The identity part of a manifest; its fingerprint names the artifact."""
    identity = {
        "kind": kind,
        "corpus": corpus,
        "inputs": dict(inputs),
        "config": dict(config),
        "code_version": __version__,
    }
    return {"format_version": FORMAT_VERSION, **identity, "fingerprint": fingerprint(identity)}


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temporary sibling of ``final`` that replaces it only if the block succeeds.

    The old artifact (if any) stays intact until the new one is complete; on any error the
    temporary folder is removed and nothing half-written is left under the final name.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    checkpoint("staging.before_swap")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
        checkpoint("staging.old_moved")
    os.replace(tmp, final)
    checkpoint("staging.swapped")
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- file records

HASH = "xxh3_128"
_HASH_CHUNK = 8 * 2**20


class DamagedArtifactError(CorpuskitError):
    """A file of an artifact is missing, of the wrong size, unreadable or not what was written."""


def hash_file(path: Path, on_bytes: Callable[[int], Any] | None = None) -> str:
    """The xxh3-128 hex digest of a file, streamed in chunks (memory stays flat)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def _artifact_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """``(relative posix name, path)`` of every file of an artifact but its manifest; hidden
    names (staging debris, ``.lock``) are not part of it, as ``sync`` also leaves them out."""
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if rel == MANIFEST or any(p.startswith(".") for p in rel.split("/")):
            continue
        if path.is_file():
            yield rel, path


def file_records(directory: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"bytes": size, "xxh3_128": hex}}`` for every file of ``directory`` (its
    manifest and hidden names left out): what a manifest records so that damage shows."""
    return {
        rel: {"bytes": path.stat().st_size, HASH: hash_file(path)}
        for rel, path in _artifact_files(directory)
    }


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``directory/manifest.json`` last, with the records of every file already there.

    The one place manifests get their ``files``: call it once the artifact's other files are
    complete. Returns the manifest as written.
    """
    complete = {**manifest, "files": file_records(directory)}
    write_json_atomic(directory / MANIFEST, complete)
    return complete


_FETCHED_KINDS = ("raw",)


def rebuild_command(kind: str | None, corpus: str | None) -> str:
    """The command that makes an artifact of ``kind`` for ``corpus`` again, from scratch."""
    name = corpus or "NAME"
    if kind in _FETCHED_KINDS:
        return f"corpuskit fetch {name} --force"
    return f"corpuskit build {name} --force"


def rebuild_command_for(path: Path) -> str:
    """The rebuild command for a file of an artifact or of the build cache.

    The nearest folder above with a readable ``manifest.json`` (or a cache's ``identity.json``)
    says the kind and the corpus; failing that, the layout of the data root does
    (``raw/<corpus>/``, ``clean|tokens|cache/<corpus>/...``).
    """
    for folder in [path, *path.parents]:
        for name in (MANIFEST, "identity.json"):
            try:
                data = json.loads((folder / name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("corpus"):
                return rebuild_command(data.get("kind"), str(data["corpus"]))
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in ("raw", "clean", "tokens", "cache"):
            return rebuild_command(parts[i], parts[i + 1])
    return "corpuskit build NAME --force"


@dataclass(frozen=True)
class FileProblem:
    """One damaged file of an artifact: ``problem`` is ``missing``, ``size``, ``hash``,
    ``unrecorded`` (an older manifest without file records) or ``manifest`` (unreadable)."""

    artifact: str
    file: str
    problem: str
    detail: str
    command: str

    @property
    def path(self) -> str:
        return f"{self.artifact}/{self.file}" if self.file else self.artifact

    def line(self) -> str:
        return f"{self.path}: {self.detail}; rebuild it with `{self.command}`"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, **self.__dict__}


def _records(manifest: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """The manifest's file records (None for an older manifest) and its rebuild command."""
    command = rebuild_command(manifest.get("kind"), manifest.get("corpus"))
    files = manifest.get("files")
    return (files if isinstance(files, dict) else None), command


def _unrecorded(directory: Path, command: str) -> FileProblem:
    return FileProblem(
        str(directory), MANIFEST, "unrecorded",
        "the manifest records no file sizes or hashes (an older corpuskit wrote it)", command,
    )


def size_problems(directory: Path, manifest: Mapping[str, Any]) -> list[FileProblem]:
    """Recorded files that are missing or of another size: a stat per file, cheap enough
    for every "up to date" check. A manifest without records is one ``unrecorded`` problem."""
    records, command = _records(manifest)
    if records is None:
        return [_unrecorded(directory, command)]
    problems = []
    for name, record in records.items():
        try:
            size = (directory / name).stat().st_size
        except FileNotFoundError:
            problems.append(FileProblem(str(directory), name, "missing", "missing", command))
            continue
        if size != record.get("bytes"):
            problems.append(
                FileProblem(
                    str(directory), name, "size",
                    f"{size} bytes, the manifest records {record.get('bytes')}", command,
                )
            )
    return problems


def hash_problems(
    directory: Path,
    manifest: Mapping[str, Any],
    on_bytes: Callable[[int], Any] | None = None,
) -> list[FileProblem]:
    """:func:`size_problems` plus, for files of the right size, a hash check (reads all)."""
    problems = size_problems(directory, manifest)
    records, command = _records(manifest)
    if records is None:
        return problems
    bad = {p.file for p in problems}
    for name, record in records.items():
        if name in bad:
            if on_bytes is not None:
                on_bytes(int(record.get("bytes") or 0))
            continue
        got = hash_file(directory / name, on_bytes)
        if got != record.get(HASH):
            problems.append(
                FileProblem(
                    str(directory), name, "hash",
                    f"content differs from what was written ({HASH} {got}, "
                    f"the manifest records {record.get(HASH)})",
                    command,
                )
            )
    return problems


def require_intact(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Raise a one-line :class:`DamagedArtifactError` when a recorded file is missing or of
    another size (or the manifest records none): for inputs, which a step must not rebuild."""
    problems = size_problems(directory, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more damaged file(s))" if len(problems) > 1 else ""
        first = problems[0]
        raise DamagedArtifactError(
            f"{first.path}: {first.detail}{more}; rebuild it with `{first.command}`"
        )


def reusable(
    directory: Path, manifest: Mapping[str, Any], redo: str, *, warn: bool = True
) -> bool:
    """Whether an up-to-date artifact may be reused: every recorded file there, of its size.

    When not, one warning line names the (first) damaged file and says what happens instead
    (``redo``, e.g. "building it again"); the caller then makes the artifact again, as it
    would a folder without a manifest. Never reuse what is damaged, never fail silently
    (``warn=False``: a second look, under the lock, after a first that already said so).
    """
    problems = size_problems(directory, manifest)
    if problems and warn:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        _log.warning("%s: %s%s; %s", first.path, first.detail, more, redo)
    return not problems
