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
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
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
from corpuskit.slices import SEPARATOR, Slice, artifact_name, combine
from corpuskit.sources import Source, source_module
from corpuskit.sources.common import (
    ENV_MIRROR,
    FetchContext,
    Prepared,
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


# The artifact lock lives in corpuskit.artifacts (shared by fetch, build, encode and sync); the
# names stay importable from here for callers of earlier versions.
from corpuskit.artifacts import ENV_LOCK_TIMEOUT, ArtifactLock, artifact_lock  # noqa: E402,F401


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


@dataclass(frozen=True)
class FetchPlan:
    """What one fetch makes: the entry its source reads, and the artifact it writes.

    For a slice (``NAME@max-bytes=2GB``, or ``slice=``) the source reads the catalog entry
    (downloads, lock pins and document ids are the corpus's), while the artifact is named by
    the slice, in its own folder, with the slice in its fingerprint.
    """

    entry: CorpusEntry
    name: str
    target: Path
    identity: dict[str, Any]
    splits: list[str] | None
    slice: Slice
    mirror: str | None


def _checked_splits(entry: CorpusEntry, splits: list[str] | None) -> list[str] | None:
    if not splits:
        return None
    unknown = sorted(set(splits) - set(entry.splits))
    if unknown:
        raise CorpuskitError(
            f"corpus {entry.name!r} has no split {', '.join(unknown)}; its splits are "
            f"{', '.join(entry.splits)}"
        )
    return [s for s in entry.splits if s in splits]


def _checked_slice(entry: CorpusEntry, sl: Slice) -> None:
    """Options a source type cannot honour are an error, never silently ignored."""
    if sl.subset is not None:
        entry.subset(sl.subset)  # an unknown subset is one line listing the known ones
        if entry.source.type != "hf":
            raise CorpuskitError(
                f"--subset is for hf sources; {entry.name!r} is a {entry.source.type} source"
            )


def plan_fetch(
    entry: CorpusEntry,
    root: Path,
    *,
    mirror: str | None = None,
    splits: list[str] | None = None,
    slice: Slice | None = None,
) -> FetchPlan:
    """The artifact a fetch of ``entry`` (a catalog entry, or one named ``NAME@<slice>``) with
    these options makes, and its identity (what decides whether it is up to date)."""
    base, sl = combine(entry.name, slice or Slice())
    if base != entry.name:
        entry = entry.model_copy(update={"name": base})
    _checked_slice(entry, sl)
    mirror = mirror or os.environ.get(ENV_MIRROR) or None
    if mirror:
        check_user_url(mirror, "mirror")
    splits = _checked_splits(entry, splits)
    module = source_module(entry)
    config: dict[str, Any] = {"source": entry.source.model_dump(), "reader": entry.reader}
    if entry.reader_options.model_dump(exclude_defaults=True):
        config["reader_options"] = entry.reader_options.model_dump()
    if splits:
        config["splits"] = splits
    if sl:
        config["slice"] = sl.config()
    name = artifact_name(base, sl)
    identity = new_manifest("raw", name, inputs=module.input_fingerprint(entry), config=config)
    return FetchPlan(entry, name, raw_dir(root, name), identity, splits, sl, mirror)


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
    slice: Slice | None = None,
) -> FetchResult:
    """Fetch ``entry`` into ``<root>/raw/<name>/`` (a slice into ``raw/<name>@<slice>/``).

    ``mirror`` (or ``CORPUSKIT_MIRROR``) is a base URL tried before the catalog's URLs;
    ``splits`` keeps only those splits (e.g. ``["validation"]`` for a quick evaluation set) and
    is part of the artifact's identity; ``slice`` (or a name ``NAME@max-bytes=2GB``) keeps a
    deterministic prefix of the corpus within a budget (corpuskit/slices.py).

    ``executor`` (``"local"`` or ``"ray"``, or an ``Executor`` to use and leave open),
    ``workers`` (0: every core, or every CPU of the Ray cluster) and ``address`` (a Ray
    cluster) say where sources of many files are read; downloads always run in this process.
    The artifact is the same whichever reads it, so they are not part of its fingerprint.
    """
    plan = plan_fetch(entry, root, mirror=mirror, splits=splits, slice=slice)
    lock = artifact_lock(plan.target)
    try:
        lock.acquire()
    except CorpuskitError:
        raise CorpuskitError(
            f"another corpuskit process is fetching {plan.name!r} (lock {lock.lock_file}); "
            "wait for it to finish"
        ) from None
    try:
        current = _up_to_date(plan, root, force)
        if current is not None:
            return FetchResult(plan.name, plan.target, True, current)
        module = source_module(plan.entry)
        prepared = module.prepare(plan.entry, _context(plan, root, progress, force))
        reading = _Reading(executor, workers, address, progress, shard_bytes)
        manifest = _write_artifact(plan, module, prepared, reading)
        checkpoint("fetch.before_lock_file")
        if prepared is not None:
            update_lock(root, plan.name, prepared.resolved)
        return FetchResult(plan.name, plan.target, False, manifest)
    finally:
        lock.release()


def _up_to_date(plan: FetchPlan, root: Path, force: bool) -> dict[str, Any] | None:
    """The artifact's manifest when it is complete and has the planned fingerprint.

    A damaged artifact (a shard deleted or truncated, or an older manifest without file
    records) is fetched again, after one warning line naming the file.
    """
    current = existing_manifest(plan.target)
    if (
        force
        or not current
        or current["fingerprint"] != plan.identity["fingerprint"]
        or not reusable(plan.target, current, f"fetching {plan.name} again")
    ):
        return None
    _repair_lock_file(root, plan.name, current)
    return current


def _context(plan: FetchPlan, root: Path, progress: bool, force: bool) -> FetchContext:
    """What the source needs; a slice not yet in the lock file starts from the pins of its
    corpus (or of another slice of it), so that every slice reads the same commit."""
    locks = read_lock(root)
    locked = locks.get(plan.name)
    if locked is None:
        siblings = [v for k, v in sorted(locks.items()) if k.split(SEPARATOR)[0] == plan.entry.name]
        locked = locks.get(plan.entry.name) or (siblings[0] if siblings else {})
    return FetchContext(
        root, progress=progress, mirror=plan.mirror, splits=plan.splits, locked=locked,
        force=force, slice=plan.slice or None,
    )


@dataclass(frozen=True)
class _Reading:
    """Where and how the documents are read (not part of the artifact's identity)."""

    executor: str | Executor
    workers: int
    address: str | None
    progress: bool
    shard_bytes: int


def _write_artifact(
    plan: FetchPlan, module: Source, prepared: Prepared | None, reading: _Reading
) -> dict[str, Any]:
    """Read the documents into shards in a staging folder and move it into place (the manifest,
    written last, marks it complete)."""
    entry = plan.entry
    with staging_dir(plan.target) as tmp:
        schema = document_schema(module.metadata_columns(entry))
        writer = ShardWriter(tmp, schema, reading.shard_bytes)
        skipped = _read_documents(plan, module, prepared, writer, tmp / "_work", reading)
        shards = writer.close()
        if not shards:
            raise CorpuskitError(f"corpus {plan.name!r} produced no documents; check its source")
        manifest = {
            **plan.identity,
            "entry": entry.model_dump(mode="json"),
            "splits": dict(sorted(writer.split_counts.items())),
            "skipped": dict(sorted(skipped.items())),
            "shards": [s.__dict__ for s in shards],
        }
        if prepared is not None:
            manifest["resolved"] = prepared.resolved
        if plan.slice:
            manifest["slice"] = _slice_record(plan.slice, writer, prepared)
        return write_manifest(tmp, manifest)


def _read_documents(
    plan: FetchPlan,
    module: Source,
    prepared: Prepared | None,
    writer: ShardWriter,
    work: Path,
    reading: _Reading,
) -> Counter[str]:
    """Read the source into ``writer``: in parts by an executor when it offers units, in one
    stream otherwise, and in one stream cut at the budget for a byte or document slice."""
    entry, sl = plan.entry, plan.slice
    units = module.read_units(entry, prepared)
    if sl.max_files is not None and entry.source.type != "hf":  # hf picks its files itself
        if units is None:
            raise CorpuskitError(
                f"--max-files needs a source read file by file; {entry.name!r} is read as one "
                "stream (use --max-bytes or --max-documents)"
            )
        units = units[: sl.max_files]
    if sl.limits_documents or not units:
        documents = (
            module.read_part(entry, [u for u, _ in units]) if units
            else module.iter_documents(entry, prepared)
        )
        if sl.limits_documents:
            documents = within_budget(documents, sl, entry.name, reading.progress)
        return _read_in_one_process(entry, documents, writer, reading.progress)
    if isinstance(reading.executor, Executor):
        return _read_in_parts(entry, units, writer, work, reading.executor, reading.progress)
    with make_executor(reading.executor, workers=reading.workers, address=reading.address) as own:
        return _read_in_parts(entry, units, writer, work, own, reading.progress)


def within_budget(
    documents: Iterator[dict[str, Any]], sl: Slice, name: str, progress: bool
) -> Iterator[dict[str, Any]]:
    """The documents of a slice: in order, until the next one would pass ``max_bytes`` (UTF-8
    bytes of text) or ``max_documents`` are kept. Skipped documents pass (they are counted,
    not kept). The bar shows the bytes (or documents) kept against the budget."""
    bar = tqdm(total=sl.max_bytes or sl.max_documents, desc=f"slice {name}",
               unit="B" if sl.max_bytes else "doc", unit_scale=True, disable=not progress,
               leave=False)
    kept = kept_bytes = 0
    try:
        for doc in documents:
            if doc["text"] is None:
                yield doc
                continue
            size = len(doc["text"].encode("utf-8"))
            if sl.max_bytes is not None and kept_bytes + size > sl.max_bytes:
                return
            kept += 1
            kept_bytes += size
            bar.update(size if sl.max_bytes else 1)
            yield doc
            if sl.max_documents is not None and kept >= sl.max_documents:
                return
    finally:
        bar.close()


def _slice_record(sl: Slice, writer: ShardWriter, prepared: Prepared | None) -> dict[str, Any]:
    """The slice in the manifest: its budget, what it kept, and what was transferred for it
    (whole files, or only the parquet row groups it needed) against the bytes it kept."""
    kept = sum(c["bytes"] for c in writer.split_counts.values())
    record: dict[str, Any] = {
        "label": sl.label(),
        **sl.config(),
        "documents": sum(c["documents"] for c in writer.split_counts.values()),
        "bytes": kept,
    }
    if prepared is not None and prepared.transferred is not None:
        record["transferred_bytes"] = prepared.transferred
        record["transferred_per_slice_byte"] = round(prepared.transferred / max(kept, 1), 4)
    return record


def _read_in_one_process(
    entry: CorpusEntry, documents: Iterator[dict[str, Any]], writer: ShardWriter, progress: bool
) -> Counter[str]:
    """A source read as one stream, in this process (WikiText, read split by split, whose
    articles may continue in the next file; sources that offer no ``read_units``; slices cut
    at a budget)."""
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
