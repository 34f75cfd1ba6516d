"""Downloads over HTTP(S) (and any fsspec URL): many URLs, one verified file.

``download`` is what every remote source uses. It streams into ``<name>.part`` beside the
destination (``transfer.py``: resume, retries, time limit) and renames it into place only once
complete and verified (size, sha256): a file under its final name in the download cache is
always whole. A checksum mismatch deletes the bytes, so nothing wrong is ever cached as valid.
A resumed file that fails its sha256 may hold two versions stitched together: it is downloaded
once more from zero. URLs are tried in order (the user's mirror, the catalog's URL, its
mirrors); a host that does not resolve is tried once, and the error names every URL tried and
what to do (``--mirror``, offline mode, a verified copy in the cache).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests
from tqdm.auto import tqdm

from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint
from corpuskit.sources.common import ENV_MIRROR, ENV_OFFLINE, offline, redact_url
from corpuskit.sources.transfer import (
    ChecksumMismatch,
    HostNotFound,
    HttpSettings,
    NetworkError,
    NotAvailable,
    NotCached,
    _describe,
    _drop_partial,
    _stream_http,
    _validator_file,
    http_settings,
)

_CHUNK = 1 << 20


@dataclass
class Downloaded:
    path: Path
    url: str
    sha256: str
    bytes: int
    cached: bool

# -- verification ------------------------------------------------------------------------------


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

# -- many URLs, one verified file --------------------------------------------------------------


def _fetch_verified(
    url: str,
    part: Path,
    name: str,
    *,
    sha256: str | None,
    size: int | None,
    headers: Mapping[str, str],
    progress: bool,
    settings: HttpSettings,
) -> str:
    """Download ``url`` into ``part`` and verify it; returns its sha256."""
    desc = name if len(name) < 40 else "…" + name[-39:]
    if urlparse(url).scheme not in ("http", "https"):
        _copy_fsspec(url, part, progress, desc)
        stitched = False
    else:
        stitched = _stream_http(
            url, part, headers=headers, size=size, progress=progress, desc=desc,
            checked=sha256 is not None, settings=settings,
        )
    try:
        return _verify(part, sha256, size, url, name)
    except ChecksumMismatch:
        _drop_partial(part)
        if not stitched:
            raise
    # A resumed file that fails its checksum may be two versions stitched: once more, whole,
    # resuming only where the server confirms the version.
    _stream_http(
        url, part, headers=headers, size=size, progress=progress, desc=desc, checked=False,
        settings=settings,
    )
    try:
        return _verify(part, sha256, size, url, name)
    except ChecksumMismatch:
        _drop_partial(part)
        raise


def download(
    urls: list[str],
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    headers: Mapping[str, str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Downloaded:
    """Make ``dest`` a verified copy of the file at the first URL that serves it.

    A complete, verified ``dest`` is reused without any request, unless ``force`` (``fetch
    --force``): then it is downloaded again and replaces ``dest`` only once verified. In
    offline mode nothing is requested at all (``force`` then re-verifies the cached file).
    ``headers`` (credentials) are sent only to these URLs; ``requests`` drops
    ``Authorization`` on a redirect to another host, and no header ever appears in a message.
    """
    part = dest.with_name(dest.name + ".part")
    if dest.is_file() and (not force or offline()):
        cached = _cached(dest, part, urls[0], sha256, size)
        if cached is not None:
            return cached
    if offline():
        raise NotCached(
            f"offline mode ({ENV_OFFLINE} or HF_HUB_OFFLINE) and {dest.name} is not cached "
            f"at {dest}; fetch it once online, copy it there, or unset offline mode"
        )
    settings = http_settings()  # a bad setting fails before anything on disk changes
    dest.parent.mkdir(parents=True, exist_ok=True)
    if force:
        _drop_partial(part)  # really from the server, not from an earlier partial download
    return _first_that_serves(
        urls, dest, part, sha256=sha256, size=size, headers=headers or {}, progress=progress,
        settings=settings,
    )


def _cached(
    dest: Path, part: Path, url: str, sha256: str | None, size: int | None
) -> Downloaded | None:
    """``dest`` when it passes verification; a cached file that fails it is deleted."""
    try:
        digest = _verify(dest, sha256, size, "the download cache")
    except ChecksumMismatch:
        dest.unlink()
        return None
    _drop_partial(part)  # debris of a run killed right after its rename
    return Downloaded(dest, url, digest, dest.stat().st_size, True)


def _first_that_serves(
    urls: list[str],
    dest: Path,
    part: Path,
    *,
    sha256: str | None,
    size: int | None,
    headers: Mapping[str, str],
    progress: bool,
    settings: HttpSettings,
) -> Downloaded:
    """Try each URL in turn until one gives the verified file, then rename it into place."""
    failures: list[CorpuskitError] = []
    unresolved: set[str] = set()
    for url in urls:
        host = urlparse(url).hostname
        if host and host in unresolved:
            continue  # one failed lookup per host is enough
        try:
            digest = _fetch_verified(
                url, part, dest.name, sha256=sha256, size=size, headers=headers,
                progress=progress, settings=settings,
            )
            checkpoint("download.verified")
            _validator_file(part).unlink(missing_ok=True)
            os.replace(part, dest)
            checkpoint("download.renamed")
            return Downloaded(dest, url, digest, dest.stat().st_size, False)
        except requests.RequestException as exc:  # redirects loops, bad URLs...
            failures.append(NetworkError(f"{redact_url(url)}: {_describe(exc)}"))
            _drop_partial(part)
        except OSError as exc:  # disk full, permissions: not the network's fault
            _drop_partial(part)
            raise CorpuskitError(
                f"cannot write {part}: {exc.strerror or exc}; free space or fix permissions"
            ) from None
        except (NotAvailable, NetworkError, ChecksumMismatch) as exc:
            failures.append(exc)
            if isinstance(exc, HostNotFound) and host:
                unresolved.add(host)
            if len(urls) > 1 or urlparse(url).scheme not in ("http", "https"):
                _drop_partial(part)  # the next URL may serve other bytes: no mixing
    raise _gave_up(failures, dest)


def _gave_up(failures: list[CorpuskitError], dest: Path) -> CorpuskitError:
    """One error for every URL tried, with what the user can do about it."""
    if any(isinstance(e, HostNotFound) for e in failures):
        hint = (
            f"; without network, use --mirror URL (or {ENV_MIRROR}) for a reachable mirror, or "
            f"{ENV_OFFLINE}=1 to work from the download cache (copy a verified file to {dest})"
        )
    else:
        hint = (
            f"; use --mirror URL or {ENV_MIRROR} to fetch from a mirror, or copy a verified "
            f"file to {dest}"
        )
    kind: type[CorpuskitError] = NotAvailable
    if any(isinstance(e, ChecksumMismatch) for e in failures):
        kind = ChecksumMismatch
    elif failures and all(isinstance(e, HostNotFound) for e in failures):
        kind = HostNotFound
    elif any(isinstance(e, NetworkError) for e in failures):
        kind = NetworkError
    return kind("; ".join(str(e) for e in failures) + hint)


def mirrored(url: str, name: str, mirror: str | None, mirrors: list[str]) -> list[str]:
    """The URLs to try, in order: the user's mirror, the primary URL, the catalog's mirrors."""
    out = []
    if mirror:
        out.append(mirror.rstrip("/") + "/" + name)
    out.append(url)
    out += [m.rstrip("/") + "/" + name for m in mirrors]
    return list(dict.fromkeys(out))
