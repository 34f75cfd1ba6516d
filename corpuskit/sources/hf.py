"""Hugging Face Hub dataset files at a pinned revision.

Files are fetched from ``{HF_ENDPOINT}/datasets/{repo}/resolve/{revision}/{path}`` with the
shared downloader (resume, retries, sha256), sending ``Authorization: Bearer`` when ``HF_TOKEN``
(or the token file under ``HF_HOME``) is set. ``HF_HUB_OFFLINE=1`` / ``CORPUSKIT_OFFLINE=1``
use the download cache only. When the Hub cannot serve the files and the entry has a
``fallback`` (WikiText's original zips), the fallback is fetched instead, and the manifest says
which one was used. Neither ``huggingface_hub`` nor ``datasets`` is imported, so their
import-time environment handling plays no part.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from corpuskit.catalog import CorpusEntry, HfSource
from corpuskit.errors import CorpuskitError
from corpuskit.sources.common import (
    FetchContext,
    LocalFile,
    Prepared,
    check_user_url,
    documents_from_files,
    documents_of_units,
    file_units,
    infer_split,
    locked_sha256,
    offline,
    redact_url,
)
from corpuskit.sources.common import metadata_columns as _metadata_columns
from corpuskit.sources.http import (
    NetworkError,
    NotAvailable,
    NotCached,
    cache_path,
    download,
    prepare_files,
)

DEFAULT_ENDPOINT = "https://huggingface.co"


def endpoint() -> str:
    value = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    return check_user_url(value, "HF_ENDPOINT").rstrip("/")


def token() -> str | None:
    """``HF_TOKEN`` (or the older name), else the token file ``huggingface-cli login`` wrote."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    path = Path(os.environ.get("HF_TOKEN_PATH", home / "token")).expanduser()
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def file_url(repo: str, revision: str, path: str) -> str:
    return f"{endpoint()}/datasets/{repo}/resolve/{revision}/{quote(path)}"


def input_fingerprint(entry: CorpusEntry) -> dict[str, Any]:
    return {}


def metadata_columns(entry: CorpusEntry) -> list[str]:
    return _metadata_columns(entry)


def _hub_files(entry: CorpusEntry, source: HfSource, ctx: FetchContext) -> Prepared:
    base = ctx.downloads(entry.name) / "hf" / source.revision
    tok = token()
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    local: list[LocalFile] = []
    resolved: dict[str, Any] = {}
    urls: list[str] = []
    for spec in source.files:
        assert spec.path is not None
        split = spec.split or infer_split(spec.path)
        if not ctx.wants(split):
            continue
        candidates = [file_url(source.repo, source.revision, spec.path)]
        if ctx.mirror:
            candidates.insert(0, ctx.mirror.rstrip("/") + "/" + spec.path)
        got = download(
            candidates,
            base / spec.path,
            sha256=spec.sha256 or locked_sha256(ctx.locked, spec.path, source.revision),
            size=spec.bytes,
            headers=headers,
            progress=ctx.progress,
            force=ctx.force,
        )
        resolved[spec.path] = {"sha256": got.sha256, "bytes": got.bytes}
        urls.append(redact_url(got.url))
        local.append(LocalFile(got.path, spec.path, split))
    if not local:
        raise CorpuskitError(f"corpus {entry.name!r} has no files for the splits {ctx.splits}")
    return Prepared(
        local,
        {"source": "hf", "repo": source.repo, "pin": source.revision, "urls": urls,
         "files": resolved},
    )


def prepare(entry: CorpusEntry, ctx: FetchContext) -> Prepared:
    source = entry.source
    assert isinstance(source, HfSource)
    try:
        return _hub_files(entry, source, ctx)
    except (NetworkError, NotAvailable, NotCached) as exc:
        if source.fallback is None or (offline() and not _fallback_cached(entry, ctx)):
            raise
        print(
            f"{entry.name}: the Hub did not serve the files ({str(exc).split(';')[0]}); "
            "using the fallback source",
            file=sys.stderr,
        )
        fallback_lock = ctx.locked.get("fallback", {})
        sub = FetchContext(
            ctx.root, ctx.progress, ctx.mirror, ctx.splits, fallback_lock, force=ctx.force
        )
        prepared = prepare_files(entry, source.fallback, sub, pin="fallback")
        prepared.resolved = {"source": "hf-fallback", "pin": source.revision,
                             "fallback": {**prepared.resolved, "source": "http"}}
        return prepared


def _fallback_cached(entry: CorpusEntry, ctx: FetchContext) -> bool:
    source = entry.source
    assert isinstance(source, HfSource) and source.fallback is not None
    base = ctx.downloads(entry.name)
    return all(cache_path(base, f).is_file() for f in source.fallback.files)


def iter_documents(entry: CorpusEntry, prepared: Prepared) -> Iterator[dict[str, Any]]:
    return documents_from_files(entry, prepared)


# Many-file downloads are read in groups of files as executor tasks (``fetch --executor``);
# ``file_units`` keeps readers whose documents may cross files (wikitext) in one process.
read_units = file_units
read_part = documents_of_units
