"""Hugging Face Hub dataset files, named one by one or by glob, at a commit or a branch.

The Hub API is reached through ``huggingface_hub`` (``HfApi(endpoint=...)``: ``dataset_info``
resolves a branch or tag such as ``main`` to a commit, ``list_repo_tree`` lists the files that
``globs`` select, ``hf_hub_url`` makes their resolve URLs). The endpoint is ``HF_ENDPOINT``,
read at each fetch and passed explicitly (``huggingface_hub`` reads it once, at import). A
branch is resolved on the first fetch only: the lock file records the commit and the files
listed at it, so a second fetch anywhere asks for that commit, gets the same bytes, and needs
no API call at all (offline mode then works from the download cache).

Whole files are downloaded with the shared downloader (resume, retries, sha256 checked against
the Hub's LFS listing or the lock file), sending ``Authorization: Bearer`` when ``HF_TOKEN`` (or
the token file under ``HF_HOME``) is set; the token is never printed, logged or stored. A slice
with a byte or document budget reads only the row groups it needs from parquet files
(``hf_slice.py``). A gated or private dataset (HTTP 401/403) is one line naming the page where
its terms are accepted and ``HF_TOKEN``. ``HF_HUB_OFFLINE=1`` / ``CORPUSKIT_OFFLINE=1`` use the
lock file and the cache only. When the Hub cannot serve the files and the entry has a
``fallback`` (WikiText's original zips), the fallback is fetched instead.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from corpuskit.catalog import CorpusEntry, HfSource
from corpuskit.errors import CorpuskitError
from corpuskit.slices import Slice
from corpuskit.sources.common import (
    SPLIT_ORDER,
    FetchContext,
    LocalFile,
    Prepared,
    check_user_url,
    documents_from_files,
    documents_of_units,
    file_units,
    infer_split,
    locked_sha256,
    match_any,
    offline,
    redact_url,
)
from corpuskit.sources.common import metadata_columns as _metadata_columns
from corpuskit.sources.hf_slice import Budget, FileSlice, slice_parquet
from corpuskit.sources.http import (
    NetworkError,
    NotAvailable,
    NotCached,
    cache_path,
    download,
    prepare_files,
)
from corpuskit.sources.transfer import http_settings

DEFAULT_ENDPOINT = "https://huggingface.co"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
T = TypeVar("T")


class GatedDataset(CorpuskitError):
    """The Hub refused access (HTTP 401/403): gated terms not accepted, private, or no token."""


def endpoint() -> str:
    value = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    return check_user_url(value, "HF_ENDPOINT").rstrip("/")


def token() -> str | None:
    """``HF_TOKEN`` (or the older name), else the token file ``huggingface-cli login`` wrote.

    Not ``huggingface_hub.get_token()``: it fixes the token file's path when it is imported,
    so a later ``HF_HOME`` (a test's, a job's) would read another account's token.
    """
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
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo, path, repo_type="dataset", revision=revision, endpoint=endpoint())


def gated_error(repo: str, status: int | None) -> GatedDataset:
    """One line: which page to visit, and that ``HF_TOKEN`` must be set (never its value)."""
    page = f"{endpoint()}/datasets/{repo}"
    if token() is None:
        why = "no Hugging Face token is set"
    elif status == 403:
        why = "the account of the token has not accepted its terms (HTTP 403)"
    else:
        why = f"the token was refused (HTTP {status or 401})"
    return GatedDataset(
        f"dataset {repo} is gated or private and {why}: visit {page}, log in and accept its "
        "terms, then set HF_TOKEN to a read token of that account"
    )


def _hub(repo: str, what: str, call: Callable[[], T]) -> T:
    """An ``HfApi`` call whose failures are one line each (gated, not found, unreachable)."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return call()
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise gated_error(repo, status) from None
        if status == 404:
            raise NotAvailable(
                f"{endpoint()}/datasets/{repo}: {what} not found (HTTP 404); check the repo, "
                "revision and globs in the catalog"
            ) from None
        raise NetworkError(f"{endpoint()}: {what} failed (HTTP {status})") from None
    except OSError as exc:  # httpx's transport errors are OSErrors too
        raise NetworkError(f"{endpoint()}: cannot reach the Hub for {what} ({exc})") from None
    except Exception as exc:
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise NetworkError(
                f"{endpoint()}: cannot reach the Hub for {what} ({type(exc).__name__})"
            ) from None
        raise


def _api() -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint(), token=token() or False)


def input_fingerprint(entry: CorpusEntry) -> dict[str, Any]:
    return {}


def metadata_columns(entry: CorpusEntry) -> list[str]:
    return _metadata_columns(entry)


# -- which commit, which files --------------------------------------------------------------


@dataclass(frozen=True)
class HubFile:
    """One file of the repo at the commit: its path, split, and what verifies it."""

    path: str
    split: str
    sha256: str | None
    bytes: int | None


def _same_source(locked: dict[str, Any], source: HfSource) -> bool:
    return locked.get("repo") == source.repo and locked.get("revision") == source.revision


def resolve_commit(entry: CorpusEntry, source: HfSource, ctx: FetchContext) -> str:
    """The commit to fetch: the catalog's, else the lock file's, else ``revision`` resolved now."""
    if _COMMIT.match(source.revision):
        return source.revision
    pin = ctx.locked.get("pin")
    if _same_source(ctx.locked, source) and isinstance(pin, str) and _COMMIT.match(pin):
        return pin
    if offline():
        raise NotCached(
            f"offline mode: {entry.name} names revision {source.revision!r} of {source.repo}, "
            "which the lock file does not pin yet; fetch it once online"
        )
    info = _hub(source.repo, f"revision {source.revision!r}",
                lambda: _api().dataset_info(source.repo, revision=source.revision))
    return str(info.sha)


def _glob_prefix(glob: str) -> str:
    """The folder a glob lists (``sample/10BT/*.parquet`` -> ``sample/10BT``)."""
    parts = []
    for part in glob.split("/")[:-1]:
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return "/".join(parts)


def _list_globs(source: HfSource, commit: str, globs: list[str]) -> list[HubFile]:
    """The files at ``commit`` that ``globs`` select, through the Hub's tree API."""
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_hub.hf_api import RepoFile

    def tree(prefix: str) -> list[Any]:
        try:
            return list(_api().list_repo_tree(source.repo, path_in_repo=prefix or None,
                                              recursive=True, revision=commit,
                                              repo_type="dataset"))
        except EntryNotFoundError:  # no such folder: the glob matches nothing there
            return []

    found: dict[str, HubFile] = {}
    for prefix in sorted({_glob_prefix(g) for g in globs}):
        listing = _hub(source.repo, f"the files under {prefix or '/'!r} at {commit[:12]}",
                       lambda p=prefix: tree(p))  # type: ignore[misc]
        for item in listing:
            if isinstance(item, RepoFile) and match_any(item.path, globs):
                sha = item.lfs.sha256 if item.lfs is not None else None
                found[item.path] = HubFile(item.path, infer_split(item.path), sha, item.size)
    if not found:
        raise CorpuskitError(
            f"{source.repo} at {commit[:12]} has no file matching {', '.join(globs)}; check "
            "the globs (paths in the repo, e.g. sample/10BT/*.parquet)"
        )
    return list(found.values())


def _locked_listing(ctx: FetchContext, commit: str, globs: list[str]) -> list[HubFile] | None:
    """The files an earlier fetch listed for these globs at this commit (no API call)."""
    locked = ctx.locked
    if locked.get("pin") != commit or locked.get("globs") != globs or not locked.get("listing"):
        return None
    return [HubFile(p, infer_split(p), v.get("sha256"), v.get("bytes"))
            for p, v in sorted(locked["listing"].items())]


def hub_files(
    entry: CorpusEntry, source: HfSource, commit: str, ctx: FetchContext
) -> tuple[list[HubFile], list[str] | None]:
    """Every file the entry (or the chosen subset, whose globs replace the source's) names at
    ``commit``, and the globs that chose them (None for the pinned-files form)."""
    sl = ctx.slice or Slice()
    globs = (entry.subset(sl.subset).globs if sl.subset else None) or source.globs
    if not globs:
        return [HubFile(f.path or "", f.split or infer_split(f.path or ""),
                        f.sha256 or locked_sha256(ctx.locked, f.path or "", commit), f.bytes)
                for f in source.files], None
    files = _locked_listing(ctx, commit, globs)
    if files is None:
        if offline():
            raise NotCached(
                f"offline mode: the files of {entry.name} ({', '.join(globs)}) at "
                f"{commit[:12]} are not in the lock file yet; fetch it once online"
            )
        files = _list_globs(source, commit, globs)
    return files, globs


def select_files(entry: CorpusEntry, files: list[HubFile], ctx: FetchContext) -> list[HubFile]:
    """The files to read, in reading order (split, then path); ``--max-files`` keeps the
    first ones, so the same listing and budget give the same files anywhere."""
    chosen = sorted((f for f in files if ctx.wants(f.split)),
                    key=lambda f: (SPLIT_ORDER.get(f.split, 9), f.split, f.path))
    if ctx.slice is not None and ctx.slice.max_files is not None:
        chosen = chosen[: ctx.slice.max_files]
    if not chosen:
        raise CorpuskitError(f"corpus {entry.name!r} has no files for the splits {ctx.splits}")
    return chosen


# -- downloading ----------------------------------------------------------------------------


def _headers() -> dict[str, str]:
    tok = token()
    return {"Authorization": f"Bearer {tok}"} if tok else {}


def _download_whole(
    entry: CorpusEntry, source: HfSource, commit: str, files: list[HubFile], ctx: FetchContext
) -> tuple[list[LocalFile], dict[str, Any], int]:
    base = ctx.downloads(entry.name) / "hf" / commit
    local: list[LocalFile] = []
    records: dict[str, Any] = {}
    moved = 0
    for f in files:
        candidates = [file_url(source.repo, commit, f.path)]
        if ctx.mirror:
            candidates.insert(0, ctx.mirror.rstrip("/") + "/" + f.path)
        try:
            got = download(candidates, base / f.path, sha256=f.sha256, size=f.bytes,
                           headers=_headers(), progress=ctx.progress, force=ctx.force)
        except NotAvailable as exc:
            status = re.search(r"access refused \(HTTP (40[13])\)", str(exc))
            if status:
                raise gated_error(source.repo, int(status.group(1))) from None
            raise
        records[f.path] = {"sha256": got.sha256, "bytes": got.bytes}
        moved += got.bytes
        local.append(LocalFile(got.path, f.path, f.split))
    return local, records, moved


def _open_remote(url: str, size: int | None, timeout: float) -> Any:
    """A seekable file over HTTP range requests (fsspec, no read-ahead: a read is one range)."""
    import aiohttp
    import fsspec

    limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    fs = fsspec.filesystem("http", headers=_headers(), skip_instance_cache=True,
                           client_kwargs={"timeout": limits})
    return fs.open(url, "rb", size=size, cache_type="none", block_size=2**20)


def _slice_one(
    source: HfSource, commit: str, f: HubFile, dest: Path, entry: CorpusEntry, budget: Budget
) -> FileSlice:
    """The row groups of one file the budget needs; a failed transfer (5xx, reset, timeout) is
    tried again from the file's start, ``CORPUSKIT_HTTP_RETRIES`` times with backoff."""
    settings = http_settings()
    start = (budget.bytes, budget.documents)
    for attempt in range(settings.retries + 1):
        try:
            with _open_remote(file_url(source.repo, commit, f.path), f.bytes,
                              settings.timeout) as handle:
                return slice_parquet(handle, dest, entry.reader_options, budget, f.path)
        except CorpuskitError:
            raise
        except Exception as exc:  # fsspec/aiohttp raise their own types for HTTP failures
            failure = _remote_failure(source.repo, f.path, exc)
            if not isinstance(failure, NetworkError) or attempt == settings.retries:
                raise failure from None
            budget.bytes, budget.documents = start
            time.sleep(min(settings.backoff * 2**attempt, 30.0))
    raise AssertionError("unreachable")


def _remote_failure(repo: str, path: str, exc: Exception) -> CorpuskitError:
    status = getattr(exc, "status", None)
    if status in (401, 403):
        return gated_error(repo, status)
    if isinstance(exc, FileNotFoundError) or status in (404, 410):
        return NotAvailable(f"{repo}: {path} not found on the Hub (HTTP {status or 404})")
    what = f"HTTP {status}" if status else type(exc).__name__
    return NetworkError(f"{repo}: reading {path} failed ({what})")


def _slice_parquet_files(
    entry: CorpusEntry, source: HfSource, commit: str, files: list[HubFile], ctx: FetchContext
) -> tuple[list[LocalFile], dict[str, Any], int]:
    """The row groups a byte or document budget needs, file by file in reading order."""
    sl = ctx.slice or Slice()
    base = ctx.downloads(entry.name) / "hf-slices" / commit / sl.label()
    budget = Budget(sl.max_bytes, sl.max_documents)
    bar = tqdm(total=sl.max_bytes or sl.max_documents, desc=f"slice {entry.name}",
               unit="B" if sl.max_bytes else "doc", unit_scale=True, disable=not ctx.progress,
               leave=False)
    local: list[LocalFile] = []
    records: dict[str, Any] = {}
    moved = 0
    try:
        for f in files:
            if budget.passed:
                break
            before = budget.bytes if sl.max_bytes else budget.documents
            got = _slice_one(source, commit, f, base / f.path, entry, budget)
            bar.update((budget.bytes if sl.max_bytes else budget.documents) - before)
            records[f.path] = {"sha256": f.sha256, "bytes": f.bytes,
                               "row_groups": got.row_groups, "rows": got.rows}
            moved += got.transferred
            local.append(LocalFile(base / f.path, f.path, f.split))
    finally:
        bar.close()
    return local, records, moved


def _sliceable(entry: CorpusEntry, files: list[HubFile], sl: Slice | None) -> bool:
    return bool(sl and sl.limits_documents and entry.reader == "parquet"
                and all(f.path.endswith(".parquet") for f in files))


def _hub_files(entry: CorpusEntry, source: HfSource, ctx: FetchContext) -> Prepared:
    commit = resolve_commit(entry, source, ctx)
    listed, globs = hub_files(entry, source, commit, ctx)
    files = select_files(entry, listed, ctx)
    if _sliceable(entry, files, ctx.slice):
        if offline():
            raise NotCached(f"offline mode: a slice of {entry.name} reads the Hub; fetch it online")
        local, records, moved = _slice_parquet_files(entry, source, commit, files, ctx)
    else:
        local, records, moved = _download_whole(entry, source, commit, files, ctx)
    resolved: dict[str, Any] = {
        "source": "hf", "repo": source.repo, "revision": source.revision, "pin": commit,
        "urls": [redact_url(file_url(source.repo, commit, f.path)) for f in files],
        "files": records,
    }
    if globs:
        resolved["globs"] = globs
        resolved["listing"] = {f.path: {"sha256": f.sha256, "bytes": f.bytes} for f in listed}
    return Prepared(local, resolved, transferred=moved)


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


def iter_documents(entry: CorpusEntry, prepared: Prepared | None) -> Iterator[dict[str, Any]]:
    assert prepared is not None
    return documents_from_files(entry, prepared)


# Many-file downloads are read in groups of files as executor tasks (``fetch --executor``);
# ``file_units`` keeps readers whose documents may cross files (wikitext) in one process.
read_units = file_units
read_part = documents_of_units
