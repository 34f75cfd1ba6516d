"""``fetch``: resolve a catalog entry into Arrow document shards plus a manifest.

The raw artifact lives in ``<root>/raw/<corpus>/``. Its manifest records a fingerprint of the
entry and of its inputs; when that fingerprint is unchanged a second fetch does nothing (and
touches no network). A file lock keeps two processes from fetching the same corpus at once.

Remote sources first ``prepare`` their files in ``<root>/downloads/<corpus>/`` (verified,
resumable, reused by later fetches); the manifest then records what was resolved (URLs without
credentials, the revision, commit or dataset version, per-file sha256 and bytes), and so does the
lock file (``corpuskit-lock.json``), so that a fetch elsewhere gets the same bytes or fails.

Sources made of many files (local folders and globs, python-stdlib, python-docs, http and hf
downloads, GitHub and Kaggle archives once extracted; any source whose reader keeps documents
within one file) are read in parallel: consecutive files are grouped into parts, each part is
read and converted to Arrow by an executor task (``Executor.map_ordered``: worker processes, or
Ray tasks on a cluster) into a file in the staging folder, and this process streams those
files, in part order, into the shards. The driver cuts batches and shards exactly where writing
the same documents one by one would, so the shards and the manifest are byte-identical
whichever executor and however many workers read them (and identical to a one-process fetch).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.executors import Executor, make_executor
from corpuskit.faults import checkpoint
from corpuskit.paths import raw_dir
from corpuskit.shards import (
    ShardWriter,
    document_schema,
    existing_manifest,
    new_manifest,
    reusable,
    staging_dir,
    write_manifest,
)
from corpuskit.sources import source_module
from corpuskit.sources.common import (
    ENV_MIRROR,
    FetchContext,
    check_user_url,
    read_lock,
    update_lock,
)


@dataclass
class FetchResult:
    corpus: str
    path: Path
    skipped: bool
    manifest: dict[str, Any] = field(repr=False)

    @property
    def documents(self) -> int:
        return sum(s["documents"] for s in self.manifest["splits"].values())

    @property
    def bytes(self) -> int:
        return sum(s["bytes"] for s in self.manifest["splits"].values())


def download_state(root: Path, corpus: str) -> dict[str, Any]:
    """What the download cache holds for a corpus (for ``corpuskit info``)."""
    base = root / "downloads" / corpus
    total = 0
    if base.is_dir():
        total = sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
    locked = read_lock(root).get(corpus)
    return {"downloads_dir": str(base), "downloads_bytes": total, "locked": locked}


ENV_LOCK_TIMEOUT = "CORPUSKIT_LOCK_TIMEOUT"


class ArtifactLock:
    """An exclusive file lock beside an artifact folder: a second process waits for the first
    (``CORPUSKIT_LOCK_TIMEOUT`` seconds, default 600), then fails with one clear line instead
    of filelock's ``Timeout`` traceback. The lock is advisory (``fcntl``), so a killed holder
    releases it with its last file descriptor: a crash never leaves a corpus locked.
    """

    def __init__(self, directory: Path, timeout: float | None = None):
        directory.parent.mkdir(parents=True, exist_ok=True)
        if timeout is None:
            try:
                timeout = float(os.environ.get(ENV_LOCK_TIMEOUT, 600))
            except ValueError:
                raise CorpuskitError(f"{ENV_LOCK_TIMEOUT} must be a number of seconds") from None
        self.directory = directory
        self._lock = FileLock(str(directory.with_name(f".{directory.name}.lock")), timeout=timeout)

    @property
    def lock_file(self) -> str:
        return str(self._lock.lock_file)

    def acquire(self) -> None:
        checkpoint("lock.acquire")
        try:
            self._lock.acquire()
        except Timeout:
            raise CorpuskitError(
                f"another corpuskit process is writing {self.directory} (lock {self.lock_file} "
                f"held for more than {self._lock.timeout:g}s); wait for it to finish, or raise "
                f"{ENV_LOCK_TIMEOUT}"
            ) from None

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> ArtifactLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def artifact_lock(directory: Path, timeout: float | None = None) -> ArtifactLock:
    """An exclusive lock beside an artifact folder (waits, then fails with a clear message)."""
    return ArtifactLock(directory, timeout)


def _repair_lock_file(root: Path, corpus: str, manifest: dict[str, Any]) -> None:
    """Record an up-to-date artifact's resolution in the lock file if it is missing there.

    The lock file is written after the artifact is in place; a fetch killed between the two
    leaves a complete artifact that a later fetch skips, and the pin would never be recorded.
    """
    resolved = manifest.get("resolved")
    if not resolved:
        return
    locked = read_lock(root).get(corpus)
    files = (locked or {}).get("files", {})
    if (
        locked is None
        or locked.get("pin") != resolved.get("pin")
        or any(files.get(k) != v for k, v in resolved.get("files", {}).items())
    ):
        update_lock(root, corpus, resolved)


# -- reading many files as executor tasks --------------------------------------------------------

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


def _read_in_parts(
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
    with pa.memory_map(path, "r") as source:
        reader = ipc.open_file(source)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def fetch_entry(
    entry: CorpusEntry,
    root: Path,
    *,
    force: bool = False,
    progress: bool = True,
    shard_bytes: int = 16 * 2**20,
    mirror: str | None = None,
    splits: list[str] | None = None,
    executor: str | Executor = "local",
    workers: int = 1,
    address: str | None = None,
) -> FetchResult:
    """Fetch ``entry`` into ``<root>/raw/<name>/``.

    ``mirror`` (or ``CORPUSKIT_MIRROR``) is a base URL tried before the catalog's URLs;
    ``splits`` keeps only those splits (e.g. ``["validation"]`` for a quick evaluation set) and
    is part of the artifact's identity.

    ``executor`` (``"local"`` or ``"ray"``, or an ``Executor`` to use and leave open),
    ``workers`` (0: every core, or every CPU of the Ray cluster) and ``address`` (a Ray
    cluster) say where sources of many files are read; downloads always run in this process.
    The artifact is the same whichever reads it, so they are not part of its fingerprint.
    """
    module = source_module(entry)
    target = raw_dir(root, entry.name)
    mirror = mirror or os.environ.get(ENV_MIRROR) or None
    if mirror:
        check_user_url(mirror, "mirror")
    if splits:
        unknown = sorted(set(splits) - set(entry.splits))
        if unknown:
            raise CorpuskitError(
                f"corpus {entry.name!r} has no split {', '.join(unknown)}; its splits are "
                f"{', '.join(entry.splits)}"
            )
        splits = [s for s in entry.splits if s in splits]
    config: dict[str, Any] = {"source": entry.source.model_dump(), "reader": entry.reader}
    if entry.reader_options.model_dump(exclude_defaults=True):
        config["reader_options"] = entry.reader_options.model_dump()
    if splits:
        config["splits"] = splits
    identity = new_manifest(
        "raw", entry.name, inputs=module.input_fingerprint(entry), config=config
    )
    lock = artifact_lock(target)
    try:
        lock.acquire()
    except CorpuskitError:
        raise CorpuskitError(
            f"another corpuskit process is fetching {entry.name!r} (lock {lock.lock_file}); "
            "wait for it to finish"
        ) from None
    try:
        current = existing_manifest(target)
        if (
            not force
            and current
            and current["fingerprint"] == identity["fingerprint"]
            # A damaged artifact (a shard deleted or truncated, or an older manifest without
            # file records) is fetched again, after one warning line naming the file.
            and reusable(target, current, f"fetching {entry.name} again")
        ):
            _repair_lock_file(root, entry.name, current)
            return FetchResult(entry.name, target, True, current)
        prepared = None
        if hasattr(module, "prepare"):
            ctx = FetchContext(
                root, progress=progress, mirror=mirror, splits=splits,
                locked=read_lock(root).get(entry.name, {}), force=force,
            )
            prepared = module.prepare(entry, ctx)
        units = module.read_units(entry, prepared) if hasattr(module, "read_units") else None
        with staging_dir(target) as tmp:
            writer = ShardWriter(tmp, document_schema(module.metadata_columns(entry)), shard_bytes)
            if not units:
                documents = (
                    module.iter_documents(entry, prepared)
                    if hasattr(module, "prepare")
                    else module.iter_documents(entry)
                )
                skipped = _read_in_one_process(entry, documents, writer, progress)
            elif isinstance(executor, Executor):
                skipped = _read_in_parts(entry, units, writer, tmp / "_work", executor, progress)
            else:
                with make_executor(executor, workers=workers, address=address) as own:
                    skipped = _read_in_parts(entry, units, writer, tmp / "_work", own, progress)
            shards = writer.close()
            if not shards:
                raise CorpuskitError(
                    f"corpus {entry.name!r} produced no documents; check its source"
                )
            manifest = {
                **identity,
                "entry": entry.model_dump(mode="json"),
                "splits": dict(sorted(writer.split_counts.items())),
                "skipped": dict(sorted(skipped.items())),
                "shards": [s.__dict__ for s in shards],
            }
            if prepared is not None:
                manifest["resolved"] = prepared.resolved
            manifest = write_manifest(tmp, manifest)
        checkpoint("fetch.before_lock_file")
        if prepared is not None:
            update_lock(root, entry.name, prepared.resolved)
        return FetchResult(entry.name, target, False, manifest)
    finally:
        lock.release()


def _read_in_one_process(
    entry: CorpusEntry, documents: Iterator[dict[str, Any]], writer: ShardWriter, progress: bool
) -> Counter[str]:
    """A source read as one stream, in this process (WikiText, read split by split, whose
    articles may continue in the next file; sources that offer no ``read_units``)."""
    skipped: Counter[str] = Counter()
    bar = tqdm(desc=f"read {entry.name}", unit="doc", disable=not progress, leave=False)
    for doc in documents:
        bar.update()
        reason = doc.pop("skip", None)
        if doc["text"] is None:
            skipped[reason or "not_utf8"] += 1
            continue
        writer.write(doc)
        checkpoint("fetch.document")
    bar.close()
    return skipped
