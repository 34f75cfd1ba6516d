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
within one file) are read in parallel as executor tasks, byte-identical whichever executor and
however many workers read them (``fetch_parts.py``); other sources, and slices cut at a byte or
document budget, are read as one stream in this process (``fetch_stream.py``). What a fetch
makes, and whether the artifact on disk is up to date, is planned in ``fetch_plan.py``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.executors import Executor, make_executor
from corpuskit.faults import checkpoint
from corpuskit.fetch_parts import (  # noqa: F401  (importable from here, as before the split)
    PART_BYTES_MAX,
    PART_BYTES_MIN,
    PARTS_PER_SLOT,
    ReadResult,
    ReadTask,
    Rechunker,
    group_units,
    read_in_parts,
    read_part_task,
)
from corpuskit.fetch_plan import FetchPlan, plan_fetch
from corpuskit.fetch_stream import read_in_one_process, slice_record, within_budget
from corpuskit.shards import (
    ShardWriter,
    document_schema,
    existing_manifest,
    reusable,
    staging_dir,
    write_manifest,
)
from corpuskit.slices import SEPARATOR, Slice
from corpuskit.sources import Source, source_module
from corpuskit.sources.common import FetchContext, Prepared, read_lock, update_lock


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
            manifest["slice"] = slice_record(plan.slice, writer, prepared)
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
        return read_in_one_process(entry, documents, writer, reading.progress)
    if isinstance(reading.executor, Executor):
        return read_in_parts(entry, units, writer, work, reading.executor, reading.progress)
    with make_executor(reading.executor, workers=reading.workers, address=reading.address) as own:
        return read_in_parts(entry, units, writer, work, own, reading.progress)
