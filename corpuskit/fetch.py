"""``fetch``: resolve a catalog entry into Arrow document shards plus a manifest.

The raw artifact lives in ``<root>/raw/<corpus>/``. Its manifest records a fingerprint of the
entry and of its inputs; when that fingerprint is unchanged a second fetch does nothing. A lock
file keeps two processes from fetching the same corpus at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
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


def artifact_lock(directory: Path, timeout: float = 600) -> FileLock:
    """An exclusive lock beside an artifact folder (waits, then fails with a clear message)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(directory.with_name(f".{directory.name}.lock")), timeout=timeout)


def fetch_entry(
    entry: CorpusEntry,
    root: Path,
    *,
    force: bool = False,
    progress: bool = True,
    shard_bytes: int = 16 * 2**20,
) -> FetchResult:
    module = source_module(entry)
    target = raw_dir(root, entry.name)
    identity = new_manifest(
        "raw",
        entry.name,
        inputs=module.input_fingerprint(entry),
        config={"source": entry.source.model_dump(), "reader": entry.reader},
    )
    lock = artifact_lock(target)
    try:
        lock.acquire()
    except Timeout:
        raise CorpuskitError(
            f"another corpuskit process is fetching {entry.name!r} (lock {lock.lock_file}); "
            "wait for it to finish"
        ) from None
    try:
        current = existing_manifest(target)
        if not force and current and current["fingerprint"] == identity["fingerprint"]:
            return FetchResult(entry.name, target, True, current)
        with staging_dir(target) as tmp:
            writer = ShardWriter(tmp, document_schema(module.metadata_columns(entry)), shard_bytes)
            skipped: Counter[str] = Counter()
            bar = tqdm(desc=f"fetch {entry.name}", unit="doc", disable=not progress, leave=False)
            for doc in module.iter_documents(entry):
                bar.update()
                if doc["text"] is None:
                    skipped["not_utf8"] += 1
                    continue
                writer.write(doc)
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
                "skipped": dict(skipped),
                "shards": [s.__dict__ for s in shards],
            }
            write_json_atomic(tmp / MANIFEST, manifest)
        return FetchResult(entry.name, target, False, manifest)
    finally:
        lock.release()
