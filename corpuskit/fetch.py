"""``fetch``: resolve a catalog entry into Arrow document shards plus a manifest.

The raw artifact lives in ``<root>/raw/<corpus>/``. Its manifest records a fingerprint of the
entry and of its inputs; when that fingerprint is unchanged a second fetch does nothing (and
touches no network). A file lock keeps two processes from fetching the same corpus at once.

Remote sources first ``prepare`` their files in ``<root>/downloads/<corpus>/`` (verified,
resumable, reused by later fetches); the manifest then records what was resolved (URLs without
credentials, the revision, commit or dataset version, per-file sha256 and bytes), and so does the
lock file (``corpuskit-lock.json``), so that a fetch elsewhere gets the same bytes or fails.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint
from corpuskit.paths import raw_dir
from corpuskit.shards import (
    MANIFEST,
    ShardWriter,
    document_schema,
    existing_manifest,
    new_manifest,
    staging_dir,
    write_json_atomic,
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


def fetch_entry(
    entry: CorpusEntry,
    root: Path,
    *,
    force: bool = False,
    progress: bool = True,
    shard_bytes: int = 16 * 2**20,
    mirror: str | None = None,
    splits: list[str] | None = None,
) -> FetchResult:
    """Fetch ``entry`` into ``<root>/raw/<name>/``.

    ``mirror`` (or ``CORPUSKIT_MIRROR``) is a base URL tried before the catalog's URLs;
    ``splits`` keeps only those splits (e.g. ``["validation"]`` for a quick evaluation set) and
    is part of the artifact's identity.
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
        if not force and current and current["fingerprint"] == identity["fingerprint"]:
            _repair_lock_file(root, entry.name, current)
            return FetchResult(entry.name, target, True, current)
        prepared = None
        if hasattr(module, "prepare"):
            ctx = FetchContext(
                root, progress=progress, mirror=mirror, splits=splits,
                locked=read_lock(root).get(entry.name, {}),
            )
            prepared = module.prepare(entry, ctx)
            documents = module.iter_documents(entry, prepared)
        else:
            documents = module.iter_documents(entry)
        with staging_dir(target) as tmp:
            writer = ShardWriter(tmp, document_schema(module.metadata_columns(entry)), shard_bytes)
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
            write_json_atomic(tmp / MANIFEST, manifest)
        checkpoint("fetch.before_lock_file")
        if prepared is not None:
            update_lock(root, entry.name, prepared.resolved)
        return FetchResult(entry.name, target, False, manifest)
    finally:
        lock.release()
