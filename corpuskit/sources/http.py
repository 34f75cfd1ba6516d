"""The ``http`` source type: files named by URL in the catalog, downloaded (``download.py``)
into a cache keyed by URL, archives unpacked once per sha256, then read like local files.

The http source caches each file under a hash of its URL and unpacks each archive into a folder
named after its sha256, so a changed URL or archive is never served from an older copy.
``download`` and its errors are re-exported here for the other sources and for scripts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlunparse

from corpuskit.catalog import CorpusEntry, HttpSource, RemoteFile
from corpuskit.errors import CorpuskitError
from corpuskit.readers.archive import MARKER, Listing, is_archive, unpack
from corpuskit.sources.common import (
    FetchContext,
    LocalFile,
    Prepared,
    documents_from_files,
    documents_of_units,
    file_units,
    infer_split,
    locked_sha256,
    match_any,
    redact_url,
)
from corpuskit.sources.common import metadata_columns as _metadata_columns
from corpuskit.sources.download import Downloaded, download, mirrored
from corpuskit.sources.transfer import (
    USER_AGENT,
    ChecksumMismatch,
    HostNotFound,
    NetworkError,
    NotAvailable,
    NotCached,
)

__all__ = [
    "USER_AGENT",
    "ChecksumMismatch",
    "Downloaded",
    "HostNotFound",
    "NetworkError",
    "NotAvailable",
    "NotCached",
    "cache_path",
    "download",
    "input_fingerprint",
    "iter_documents",
    "metadata_columns",
    "mirrored",
    "prepare",
    "prepare_files",
    "read_part",
    "read_units",
    "subset_files",
    "unpacked",
]


# -- the download cache and unpacked archives ---------------------------------------------------


def cache_path(base: Path, spec: RemoteFile) -> Path:
    """``<base>/files/<hash of the URL>/<name>``: two URLs never share a cached file (files of
    the same name, or a catalog whose URL changed, would otherwise be served the old bytes).
    Credentials (``user:pass@``) are left out of the hash; the query is not."""
    assert spec.url is not None
    parts = urlparse(spec.url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    key = hashlib.sha256(urlunparse(parts._replace(netloc=netloc)).encode()).hexdigest()[:16]
    return base / "files" / key / spec.name


def unpacked(
    archive: Path, sha256: str, base: Path, name: str, force: bool
) -> tuple[Path, Listing]:
    """Unpack ``archive`` into ``<base>/unpacked/<name>-<sha256[:16]>`` (once) and list it.

    Named after the archive's bytes, so a changed archive of the same name is unpacked afresh
    instead of serving the old folder; ``force`` unpacks again (the folder is replaced only
    once the new unpack is complete)."""
    target = base / "unpacked" / f"{name}-{sha256[:16]}"
    if force:
        (target / MARKER).unlink(missing_ok=True)
    return target, unpack(archive, target)


# -- the http source type ----------------------------------------------------------------------


def input_fingerprint(entry: CorpusEntry) -> dict[str, Any]:
    """The catalog's URLs and checksums are the inputs; they are already in the config."""
    return {}


def metadata_columns(entry: CorpusEntry) -> list[str]:
    return _metadata_columns(entry)


def _locked_sha256(locked: dict[str, Any], spec: RemoteFile, pin: Any) -> str | None:
    """The lock file's sha256 for this file, unless it was recorded for another URL."""
    assert spec.url is not None
    recorded = locked.get("files", {}).get(spec.name) if isinstance(locked, dict) else None
    if isinstance(recorded, dict) and recorded.get("url") not in (None, redact_url(spec.url)):
        return None  # the catalog now names another URL: the old pin says nothing about it
    return locked_sha256(locked, spec.name, pin)


def _url_path(spec: RemoteFile) -> str:
    """The URL's path without its leading slash (``cc-100/de.txt.xz``)."""
    assert spec.url is not None
    return unquote(urlparse(spec.url).path).lstrip("/")


def subset_files(entry: CorpusEntry, source: HttpSource, ctx: FetchContext) -> list[RemoteFile]:
    """The files a fetch downloads: all of them, or with ``--subset`` only those whose name or
    URL path one of the subset's globs matches, so that a subset (one language of CC-100)
    downloads its own file and not every language's."""
    name = ctx.slice.subset if ctx.slice is not None else None
    if name is None:
        return list(source.files)
    globs = entry.subset(name).globs  # an unknown subset is one line listing the known ones
    if not globs:
        raise CorpuskitError(
            f"subset {name!r} of {entry.name!r} names no globs, so it cannot pick files of an "
            "http source; give the subset globs matching its file names in the catalog"
        )
    chosen = [f for f in source.files if match_any(f.name, globs) or match_any(_url_path(f), globs)]
    if not chosen:
        raise CorpuskitError(
            f"subset {name!r} of {entry.name!r}: its globs {', '.join(globs)} match none of the "
            f"source's {len(source.files)} file names or URL paths; fix the subset's globs"
        )
    return chosen


def prepare_files(
    entry: CorpusEntry,
    source: HttpSource,
    ctx: FetchContext,
    pin: Any = None,
    files: list[RemoteFile] | None = None,
) -> Prepared:
    """Download (and unpack) an http source's files (``files``: only these of them); also the
    hf source's fallback."""
    base = ctx.downloads(entry.name)
    resolved_files: dict[str, Any] = {}
    urls_used: list[str] = []
    local: list[LocalFile] = []
    for spec in source.files if files is None else files:
        assert spec.url is not None
        name = spec.name
        got = download(
            mirrored(spec.url, name, ctx.mirror, source.mirrors),
            cache_path(base, spec),
            sha256=spec.sha256 or _locked_sha256(ctx.locked, spec, pin),
            size=spec.bytes,
            progress=ctx.progress,
            force=ctx.force,
        )
        resolved_files[name] = {
            "sha256": got.sha256, "bytes": got.bytes, "url": redact_url(spec.url)
        }
        urls_used.append(redact_url(got.url))
        if is_archive(got.path):
            target, members = unpacked(got.path, got.sha256, base, name, ctx.force)
            for rel in sorted(members):
                if source.globs is not None and not match_any(rel, source.globs):
                    continue
                split = spec.split or infer_split(rel)
                if ctx.wants(split):
                    local.append(LocalFile(target / rel, rel, split))
        else:
            split = spec.split or infer_split(name)
            if ctx.wants(split):
                local.append(LocalFile(got.path, name, split))
    if not local:
        raise CorpuskitError(
            f"corpus {entry.name!r}: no file matched"
            + (f" the splits {', '.join(ctx.splits)}" if ctx.splits else " the source's globs")
        )
    return Prepared(local, {"urls": urls_used, "pin": pin, "files": resolved_files})


def prepare(entry: CorpusEntry, ctx: FetchContext) -> Prepared:
    source = entry.source
    assert isinstance(source, HttpSource)
    files = subset_files(entry, source, ctx)
    prepared = prepare_files(entry, source, ctx, files=files)
    prepared.resolved["source"] = "http"
    if ctx.slice is not None and ctx.slice.subset is not None:
        prepared.resolved["subset"] = {  # in the manifest and the lock file, as hf's globs are
            "name": ctx.slice.subset,
            "globs": entry.subset(ctx.slice.subset).globs,
            "files": [f.name for f in files],
        }
    return prepared


def iter_documents(entry: CorpusEntry, prepared: Prepared) -> Iterator[dict[str, Any]]:
    return documents_from_files(entry, prepared)


# Many-file downloads are read in groups of files as executor tasks (``fetch --executor``);
# ``file_units`` keeps readers whose documents may cross files (wikitext) in one process.
read_units = file_units
read_part = documents_of_units
