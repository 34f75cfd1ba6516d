"""Downloads over HTTP(S) (and any fsspec URL), and the ``http`` source type.

``download`` is what every remote source uses. It streams into ``<name>.part`` beside the
destination, resumes an interrupted transfer with a ``Range`` request, retries 5xx answers,
connection resets, truncated bodies and timeouts with exponential backoff, checks the size and
sha256, and only then renames the file into place: a file under its final name in the download
cache is always complete and verified. A checksum mismatch deletes the bytes, so nothing wrong is
ever cached as valid.

Retries, backoff and timeouts come from ``CORPUSKIT_HTTP_RETRIES`` (5), ``CORPUSKIT_HTTP_BACKOFF``
(1.0 s, doubled each time, capped at 30 s) and ``CORPUSKIT_HTTP_TIMEOUT`` (30 s).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from tqdm.auto import tqdm

from corpuskit import __version__
from corpuskit.catalog import CorpusEntry, HttpSource
from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint
from corpuskit.readers.archive import is_archive, unpack
from corpuskit.sources.common import (
    ENV_MIRROR,
    FetchContext,
    LocalFile,
    Prepared,
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

# Some hosts (the WikiText author's among them) refuse Python's default User-Agent.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/126.0 Safari/537.36 corpuskit/{__version__}"
)
_CHUNK = 1 << 20
_STREAM_CHUNK = 1 << 16  # small, so a broken connection loses little of what it had sent
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}


class NotAvailable(CorpuskitError):
    """The file is not at this URL (404/410), or access was refused (401/403)."""


class ChecksumMismatch(CorpuskitError):
    """The downloaded bytes are not the ones the catalog or lock file names."""


class NotCached(CorpuskitError):
    """Offline mode, and the file is not in the download cache."""


class NetworkError(CorpuskitError):
    """The server could not be reached, or kept failing, after every retry."""


@dataclass
class Downloaded:
    path: Path
    url: str
    sha256: str
    bytes: int
    cached: bool


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise CorpuskitError(f"{name} must be a number") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verify(
    path: Path, sha256: str | None, size: int | None, url: str, name: str | None = None
) -> str:
    name = name or path.name
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumMismatch(
            f"{name} from {redact_url(url)} has {actual_size:,} bytes, expected {size:,}; "
            "the file was deleted"
        )
    digest = sha256_file(path)
    if sha256 is not None and digest != sha256:
        raise ChecksumMismatch(
            f"{name} from {redact_url(url)} has sha256 {digest[:16]}…, expected "
            f"{sha256[:16]}…; the file was deleted (a changed upstream or a bad mirror?)"
        )
    return digest


def _sleep(attempt: int, retry_after: str | None = None) -> None:
    base = _env_number("CORPUSKIT_HTTP_BACKOFF", 1.0)
    delay = min(base * 2**attempt, 30.0)
    if retry_after and retry_after.isdigit():
        delay = min(max(delay, float(retry_after)), 60.0)
    time.sleep(delay)


def _stream_http(
    url: str,
    part: Path,
    *,
    headers: Mapping[str, str],
    size: int | None,
    progress: bool,
    desc: str,
) -> None:
    """Fill ``part`` with the body of ``url``, resuming and retrying; raises when it gives up."""
    retries = int(_env_number("CORPUSKIT_HTTP_RETRIES", 5))
    timeout = _env_number("CORPUSKIT_HTTP_TIMEOUT", 30.0)
    failures = 0
    last_error = "no attempt made"
    bar = tqdm(
        total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
        disable=not progress, leave=False, initial=part.stat().st_size if part.exists() else 0,
    )
    try:
        with requests.Session() as session:
            session.headers["User-Agent"] = USER_AGENT
            # Byte offsets for Range must be those of the stored file, not of a decoded body.
            session.headers["Accept-Encoding"] = "identity"
            while True:
                have = part.stat().st_size if part.exists() else 0
                if size is not None and have == size:
                    return
                request_headers = dict(headers)
                if have:
                    request_headers["Range"] = f"bytes={have}-"
                made_progress = False
                try:
                    with session.get(
                        url, headers=request_headers, stream=True, timeout=(timeout, timeout)
                    ) as resp:
                        status = resp.status_code
                        if status in (404, 410):
                            raise NotAvailable(f"{redact_url(url)}: not found (HTTP {status})")
                        if status in (401, 403):
                            raise NotAvailable(
                                f"{redact_url(url)}: access refused (HTTP {status}); check the "
                                "credentials or whether the file is public"
                            )
                        if status == 416 and have:
                            # Our part is at least as long as the file: start over once.
                            part.unlink()
                            bar.reset(total=size)
                            failures += 1
                            last_error = "HTTP 416 (range not satisfiable)"
                        elif status in _RETRY_STATUS:
                            last_error = f"HTTP {status}"
                            failures += 1
                            if failures > retries:
                                break
                            _sleep(failures - 1, resp.headers.get("Retry-After"))
                            continue
                        elif status >= 400:
                            raise NetworkError(f"{redact_url(url)}: HTTP {status}")
                        else:
                            mode = "ab" if (status == 206 and have) else "wb"
                            if mode == "wb" and have:
                                bar.reset(total=size)
                            total = _total_size(resp, have if mode == "ab" else 0)
                            if total is not None and bar.total != total:
                                bar.total = total
                            with part.open(mode) as out:
                                for chunk in resp.iter_content(_STREAM_CHUNK):
                                    out.write(chunk)
                                    bar.update(len(chunk))
                                    made_progress = True
                                    checkpoint("download.chunk")
                            got = part.stat().st_size
                            if total is not None and got < total:
                                raise requests.exceptions.ChunkedEncodingError(
                                    f"body ended at {got:,} of {total:,} bytes"
                                )
                            return
                except (
                    requests.exceptions.ConnectionError,
                    requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError,
                ) as exc:
                    last_error = _describe(exc)
                    failures = 0 if made_progress else failures + 1
                    if failures > retries:
                        break
                    _sleep(max(failures - 1, 0))
                    continue
                if failures > retries:
                    break
    finally:
        bar.close()
    raise NetworkError(
        f"cannot download {redact_url(url)}: {last_error} after {retries + 1} attempts"
    )


def _total_size(resp: requests.Response, offset: int) -> int | None:
    length = resp.headers.get("Content-Length")
    if resp.headers.get("Content-Encoding") or length is None or not length.isdigit():
        return None
    return offset + int(length)


def _describe(exc: Exception) -> str:
    text = str(exc)
    for needle, said in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host not found"),
        ("Temporary failure in name resolution", "host not found"),
        ("timed out", "timed out"),
        ("Connection reset", "connection reset"),
        ("Connection aborted", "connection reset"),
        ("body ended", "truncated body"),
        ("IncompleteRead", "truncated body"),
    ):
        if needle in text:
            return said
    return type(exc).__name__


def _copy_fsspec(url: str, part: Path, progress: bool, desc: str) -> None:
    import fsspec

    try:
        with fsspec.open(url, "rb") as src, part.open("wb") as out:
            bar = tqdm(unit="B", unit_scale=True, desc=desc, disable=not progress, leave=False)
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
            bar.close()
    except FileNotFoundError:
        raise NotAvailable(f"{redact_url(url)}: not found") from None
    except ImportError as exc:
        raise CorpuskitError(
            f"{redact_url(url)}: its filesystem is not installed ({exc})"
        ) from None


def download(
    urls: list[str],
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    headers: Mapping[str, str] | None = None,
    progress: bool = True,
) -> Downloaded:
    """Make ``dest`` a verified copy of the file at the first URL that serves it.

    A complete, verified ``dest`` is reused without any request. In offline mode nothing is
    requested at all. ``headers`` (credentials) are sent only to these URLs; ``requests`` drops
    ``Authorization`` on a redirect to another host, and no header ever appears in a message.
    """
    if dest.is_file():
        try:
            digest = _verify(dest, sha256, size, "the download cache")
            return Downloaded(dest, urls[0], digest, dest.stat().st_size, True)
        except ChecksumMismatch:
            dest.unlink()
    if offline():
        raise NotCached(
            f"offline mode (CORPUSKIT_OFFLINE or HF_HUB_OFFLINE) and {dest.name} is not cached "
            f"at {dest}; fetch it once online, copy it there, or unset offline mode"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[CorpuskitError] = []
    for url in urls:
        desc = dest.name if len(dest.name) < 40 else "…" + dest.name[-39:]
        try:
            if urlparse(url).scheme in ("http", "https"):
                _stream_http(
                    url, part, headers=headers or {}, size=size, progress=progress, desc=desc
                )
            else:
                _copy_fsspec(url, part, progress, desc)
            try:
                digest = _verify(part, sha256, size, url, dest.name)
            except ChecksumMismatch:
                part.unlink(missing_ok=True)
                raise
            checkpoint("download.verified")
            os.replace(part, dest)
            checkpoint("download.renamed")
            return Downloaded(dest, url, digest, dest.stat().st_size, False)
        except requests.RequestException as exc:  # redirects loops, bad URLs...
            failures.append(NetworkError(f"{redact_url(url)}: {_describe(exc)}"))
            part.unlink(missing_ok=True)
        except OSError as exc:  # disk full, permissions: not the network's fault
            part.unlink(missing_ok=True)
            raise CorpuskitError(
                f"cannot write {part}: {exc.strerror or exc}; free space or fix permissions"
            ) from None
        except (NotAvailable, NetworkError, ChecksumMismatch) as exc:
            failures.append(exc)
            if len(urls) > 1 or urlparse(url).scheme not in ("http", "https"):
                part.unlink(missing_ok=True)  # the next URL may serve other bytes: no mixing
    hint = (
        f"; use --mirror URL or {ENV_MIRROR} to fetch from a mirror, or copy a verified file to "
        f"{dest}"
    )
    kinds = {type(e) for e in failures}
    kind = next((k for k in (ChecksumMismatch, NetworkError) if k in kinds), NotAvailable)
    raise kind("; ".join(str(e) for e in failures) + hint)


def mirrored(url: str, name: str, mirror: str | None, mirrors: list[str]) -> list[str]:
    """The URLs to try, in order: the user's mirror, the primary URL, the catalog's mirrors."""
    out = []
    if mirror:
        out.append(mirror.rstrip("/") + "/" + name)
    out.append(url)
    out += [m.rstrip("/") + "/" + name for m in mirrors]
    return list(dict.fromkeys(out))


# -- the http source type ----------------------------------------------------------------------


def input_fingerprint(entry: CorpusEntry) -> dict[str, Any]:
    """The catalog's URLs and checksums are the inputs; they are already in the config."""
    return {}


def metadata_columns(entry: CorpusEntry) -> list[str]:
    return _metadata_columns(entry)


def prepare_files(
    entry: CorpusEntry, source: HttpSource, ctx: FetchContext, pin: Any = None
) -> Prepared:
    """Download (and unpack) an http source's files; also the hf source's fallback."""
    base = ctx.downloads(entry.name)
    resolved_files: dict[str, Any] = {}
    urls_used: list[str] = []
    local: list[LocalFile] = []
    locked = ctx.locked
    for spec in source.files:
        assert spec.url is not None
        name = spec.name
        expected = spec.sha256 or locked_sha256(locked, name, pin)
        got = download(
            mirrored(spec.url, name.rsplit("/", 1)[-1], ctx.mirror, source.mirrors),
            base / "files" / name,
            sha256=expected,
            size=spec.bytes,
            progress=ctx.progress,
        )
        resolved_files[name] = {"sha256": got.sha256, "bytes": got.bytes}
        urls_used.append(redact_url(got.url))
        if is_archive(got.path):
            members = unpack(got.path, base / "unpacked" / name)
            for rel in sorted(members):
                if source.globs is not None and not match_any(rel, source.globs):
                    continue
                split = spec.split or infer_split(rel)
                if ctx.wants(split):
                    local.append(LocalFile(base / "unpacked" / name / rel, rel, split))
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
    prepared = prepare_files(entry, source, ctx)
    prepared.resolved["source"] = "http"
    return prepared


def iter_documents(entry: CorpusEntry, prepared: Prepared) -> Iterator[dict[str, Any]]:
    return documents_from_files(entry, prepared)


# Many-file downloads are read in groups of files as executor tasks (``fetch --executor``);
# ``file_units`` keeps readers whose documents may cross files (wikitext) in one process.
read_units = file_units
read_part = documents_of_units
