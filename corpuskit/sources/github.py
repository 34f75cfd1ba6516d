"""A GitHub repository at a pinned commit: the commit's archive, one document per file.

The archive comes from ``{CORPUSKIT_GITHUB_ENDPOINT}/{owner}/{repo}/archive/{commit}.tar.gz``
(default ``https://github.com``), with ``Authorization: Bearer $GITHUB_TOKEN`` (or ``GH_TOKEN``)
when set. GitHub regenerates archives, so their compressed bytes may change while the files do
not: the archive is not checked against a fixed sha256; instead every extracted file's sha256 is
compared with the listing the lock file recorded on the first fetch of that commit.

Documents carry ``path`` (relative to the repository root), ``language`` (by extension) and
``license`` (the source's ``license:``, else the entry's).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

from corpuskit.catalog import CorpusEntry, GithubSource
from corpuskit.errors import CorpuskitError
from corpuskit.readers.code import language_of
from corpuskit.sources.common import (
    FetchContext,
    FileUnit,
    LocalFile,
    Prepared,
    check_user_url,
    documents_from_files,
    documents_of_units,
    file_units,
    match_any,
    redact_url,
)
from corpuskit.sources.download import download
from corpuskit.sources.http import unpacked

ENV_ENDPOINT = "CORPUSKIT_GITHUB_ENDPOINT"
DEFAULT_ENDPOINT = "https://github.com"


def archive_url(repo: str, commit: str) -> str:
    base = check_user_url(os.environ.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT, ENV_ENDPOINT)
    return f"{base.rstrip('/')}/{repo}/archive/{commit}.tar.gz"


def _headers() -> dict[str, str]:
    for name in ("GITHUB_TOKEN", "GH_TOKEN"):
        value = os.environ.get(name, "").strip()
        if value:
            return {"Authorization": f"Bearer {value}"}
    return {}


def input_fingerprint(entry: CorpusEntry) -> dict[str, Any]:
    return {}


def metadata_columns(entry: CorpusEntry) -> list[str]:
    return ["file", "path", "language", "license"]


def _strip_top(rel: str) -> str | None:
    """Archive paths start with ``{repo}-{commit}/``; files outside it are not the repo's."""
    top, _, rest = rel.partition("/")
    return rest or None


def listing_digest(files: dict[str, str]) -> str:
    blob = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def prepare(entry: CorpusEntry, ctx: FetchContext) -> Prepared:
    source = entry.source
    assert isinstance(source, GithubSource)
    owner_repo = source.repo
    name = f"{owner_repo.replace('/', '-')}-{source.commit}.tar.gz"
    base = ctx.downloads(entry.name)
    url = archive_url(owner_repo, source.commit)
    candidates = [url]
    if ctx.mirror:
        candidates.insert(0, f"{ctx.mirror.rstrip('/')}/{name}")
    got = download(
        candidates, base / "github" / name, headers=_headers(), progress=ctx.progress,
        force=ctx.force,
    )
    target, members = unpacked(got.path, got.sha256, base, name, ctx.force)
    selected: dict[str, str] = {}
    local: list[LocalFile] = []
    too_big = 0
    for rel in sorted(members):
        path = _strip_top(rel)
        if path is None or not match_any(path, source.globs) or match_any(path, source.exclude):
            continue
        if int(members[rel]["bytes"]) > source.max_file_bytes:
            too_big += 1
            continue
        selected[path] = str(members[rel]["sha256"])
        local.append(LocalFile(target / rel, path, "train"))
    if not local:
        raise CorpuskitError(
            f"{owner_repo}@{source.commit[:12]}: no file matches {', '.join(source.globs)}"
        )
    _verify_against_lock(entry, source, ctx, selected)
    return Prepared(
        local,
        {
            "source": "github",
            "repo": owner_repo,
            "pin": source.commit,
            "urls": [redact_url(got.url)],
            "archive": {"sha256": got.sha256, "bytes": got.bytes},
            "files": {p: {"sha256": h} for p, h in selected.items()},
            "files_digest": listing_digest(selected),
            "too_large_skipped": too_big,
        },
        extra_columns={"license": source.license or entry.license},
    )


def _verify_against_lock(
    entry: CorpusEntry, source: GithubSource, ctx: FetchContext, selected: dict[str, str]
) -> None:
    """Files differ from those recorded for this commit: refuse rather than build on them."""
    locked = ctx.locked
    if locked.get("pin") != source.commit or not isinstance(locked.get("files"), dict):
        return
    recorded = {p: v.get("sha256") for p, v in locked["files"].items() if isinstance(v, dict)}
    changed = sorted(p for p in selected.keys() & recorded.keys() if selected[p] != recorded[p])
    missing = sorted(recorded.keys() - selected.keys())
    if changed or missing:
        what = changed[:3] or missing[:3]
        raise CorpuskitError(
            f"{source.repo}@{source.commit[:12]}: extracted files differ from the lock file "
            f"({len(changed)} changed, {len(missing)} missing, e.g. {', '.join(what)}); "
            f"delete {ctx.downloads(entry.name)} and the entry in the lock file to accept them"
        )


def _finish(entry: CorpusEntry, doc: dict[str, Any]) -> dict[str, Any]:
    path = doc.get("path") or doc["file"]
    doc["path"] = path
    doc.setdefault("language", language_of(path))
    doc["id"] = f"{entry.name}/{path}" if entry.reader in ("code", "text") else doc["id"]
    return doc


def iter_documents(entry: CorpusEntry, prepared: Prepared) -> Iterator[dict[str, Any]]:
    for doc in documents_from_files(entry, prepared):
        yield _finish(entry, doc)


def read_part(entry: CorpusEntry, units: list[FileUnit]) -> Iterator[dict[str, Any]]:
    """The documents of some consecutive units, exactly as ``iter_documents`` yields them."""
    for doc in documents_of_units(entry, units):
        yield _finish(entry, doc)


# The extracted files are read in groups as executor tasks (``fetch --executor``).
read_units = file_units
