"""One file from one URL into ``<name>.part``: resumed only when it is the same version, retried
when the fault is transient, within a time limit. ``download.py`` builds on this.

A resume never stitches two versions of a file. The validator of the answer that started the
``.part`` (a strong ``ETag``, else ``Last-Modified``) is kept beside it in
``<name>.validator.part``; a resume sends ``Range`` with ``If-Range``, a ``200`` answer restarts
from zero, and a ``206`` that does not continue the same file (its ``Content-Range`` start or
total, ``ETag`` or ``Last-Modified`` differ) is thrown away. Without a validator a partial file
is resumed only when a sha256 (the catalog's or the lock file's) will check the result.

Transient faults (5xx, 429, resets, timeouts, truncated bodies) are retried with exponential
backoff: at most ``CORPUSKIT_HTTP_RETRIES`` (5) retries per URL, counted whether or not an
attempt made progress, within ``CORPUSKIT_HTTP_MAX_TIME`` (21600 s) per file. The backoff starts
at ``CORPUSKIT_HTTP_BACKOFF`` (1.0 s, doubled each time, capped at 30 s); every connect and read
waits at most ``CORPUSKIT_HTTP_TIMEOUT`` (30 s). A host name that does not resolve is not
transient: it fails at once (:class:`HostNotFound`).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from tqdm.auto import tqdm
from urllib3 import exceptions as urllib3_errors

from corpuskit import __version__
from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint
from corpuskit.sources.common import redact_url

# Some hosts (the WikiText author's among them) refuse Python's default User-Agent.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/126.0 Safari/537.36 corpuskit/{__version__}"
)
_STREAM_CHUNK = 1 << 16  # small, so a broken connection loses little of what it had sent
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
ENV_RETRIES = "CORPUSKIT_HTTP_RETRIES"
ENV_TIMEOUT = "CORPUSKIT_HTTP_TIMEOUT"
ENV_BACKOFF = "CORPUSKIT_HTTP_BACKOFF"
ENV_MAX_TIME = "CORPUSKIT_HTTP_MAX_TIME"


class NotAvailable(CorpuskitError):
    """The file is not at this URL (404/410), or access was refused (401/403)."""


class ChecksumMismatch(CorpuskitError):
    """The downloaded bytes are not the ones the catalog or lock file names."""


class NotCached(CorpuskitError):
    """Offline mode, and the file is not in the download cache."""


class NetworkError(CorpuskitError):
    """The server could not be reached, or kept failing, after every retry."""


class HostNotFound(NetworkError):
    """The host name does not resolve: no network, or a wrong name. Never retried."""


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpSettings:
    """The download limits, from the environment (validated: a bad value is one clear line)."""

    retries: int = 5
    timeout: float = 30.0
    backoff: float = 1.0
    max_time: float = 21600.0


def _env_value(name: str, default: float, *, positive: bool, whole: bool = False) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if (
        not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
        or (whole and not value.is_integer())
    ):
        want = (
            "a whole number >= 0" if whole
            else "a number of seconds > 0" if positive
            else "a number of seconds >= 0"
        )
        raise CorpuskitError(f"{name}={raw!r} is not valid: set it to {want}, or unset it")
    return value


def http_settings() -> HttpSettings:
    """``CORPUSKIT_HTTP_RETRIES``, ``_TIMEOUT``, ``_BACKOFF`` and ``_MAX_TIME``, checked."""
    d = HttpSettings()
    return HttpSettings(
        retries=int(_env_value(ENV_RETRIES, d.retries, positive=False, whole=True)),
        timeout=_env_value(ENV_TIMEOUT, d.timeout, positive=True),
        backoff=_env_value(ENV_BACKOFF, d.backoff, positive=False),
        max_time=_env_value(ENV_MAX_TIME, d.max_time, positive=True),
    )


def _delay(settings: HttpSettings, attempt: int, retry_after: str | None) -> float:
    delay = min(settings.backoff * 2**attempt, 30.0)
    if retry_after and retry_after.isdigit():
        delay = min(max(delay, float(retry_after)), 60.0)
    return delay


# -- the partial file and its validator --------------------------------------------------------


@dataclass
class _Validator:
    """What identifies the version of the file a ``.part`` holds the start of."""

    url: str  # redacted: files on disk never hold credentials
    etag: str | None = None  # strong ETags only: If-Range does not accept weak ones
    last_modified: str | None = None
    total: int | None = None

    @classmethod
    def of(cls, resp: requests.Response, url: str, total: int | None) -> _Validator:
        etag = resp.headers.get("ETag")
        strong = etag if etag and not etag.startswith("W/") else None
        return cls(redact_url(url), strong, resp.headers.get("Last-Modified"), total)

    def if_range(self) -> str | None:
        return self.etag or self.last_modified

    def continues(self, resp: requests.Response, total: int | None) -> bool:
        """False when a partial answer says it belongs to another version of the file."""
        etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
        return not (
            (self.etag and etag and etag != self.etag)
            or (self.last_modified and modified and modified != self.last_modified)
            or (self.total is not None and total is not None and total != self.total)
        )


def _validator_file(part: Path) -> Path:
    """``<name>.validator.part``: ends in ``.part`` so that it counts as debris, as the part."""
    return part.with_name(part.name.removesuffix(".part") + ".validator.part")


def _read_validator(part: Path) -> _Validator | None:
    try:
        data = json.loads(_validator_file(part).read_text(encoding="utf-8"))
        return _Validator(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write_validator(part: Path, validator: _Validator) -> None:
    _validator_file(part).write_text(json.dumps(asdict(validator)), encoding="utf-8")


def _drop_partial(part: Path) -> None:
    part.unlink(missing_ok=True)
    _validator_file(part).unlink(missing_ok=True)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` → (100, 1000); (None, None) when absent or malformed."""
    try:
        unit, _, rest = (value or "").partition(" ")
        span, _, total = rest.partition("/")
        if unit != "bytes":
            return None, None
        return int(span.split("-")[0]), (None if total == "*" else int(total))
    except ValueError:
        return None, None


def _total_size(resp: requests.Response, offset: int) -> int | None:
    length = resp.headers.get("Content-Length")
    if resp.headers.get("Content-Encoding") or length is None or not length.isdigit():
        return None
    return offset + int(length)


# -- one URL, with retries ---------------------------------------------------------------------


class _Retry(Exception):
    """One attempt failed in a way worth another (a 5xx, a 416, a partial answer refused)."""

    def __init__(self, reason: str, retry_after: str | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


@dataclass
class _Transfer:
    """The download of one file from one URL into ``part``: what may be resumed, and how."""

    url: str
    part: Path
    headers: Mapping[str, str]
    size: int | None
    checked: bool  # a sha256 will check the result: a part without validator may be resumed
    settings: HttpSettings
    deadline: float
    bar: Any
    stitched: bool = False  # the file holds bytes of more than one answer

    def resume_point(self) -> tuple[int, _Validator | None]:
        """How many bytes of ``part`` may be kept, and the validator to send with the rest."""
        have = self.part.stat().st_size if self.part.exists() else 0
        validator = _read_validator(self.part) if have else None
        if validator is not None and validator.url != redact_url(self.url):
            validator = None  # another URL's part: its bytes may be of another file
            have = 0
        elif have and not (validator and validator.if_range()) and not self.checked:
            have = 0  # nothing could confirm that the rest belongs to the same version
        if have == 0 and self.part.exists():
            _drop_partial(self.part)
            self.bar.reset(total=self.size)
        return have, validator

    def complete(self) -> bool:
        """A part of the expected size whose version is known (killed before its rename)."""
        if self.size is None or not self.part.is_file() or self.part.stat().st_size != self.size:
            return False
        validator = _read_validator(self.part)
        return self.checked or (validator is not None and validator.url == redact_url(self.url))

    def attempt(self, session: requests.Session) -> None:
        have, validator = self.resume_point()
        request_headers = dict(self.headers)
        if have:
            request_headers["Range"] = f"bytes={have}-"
            if validator is not None and validator.if_range():
                request_headers["If-Range"] = str(validator.if_range())
        timeout = self.settings.timeout
        with session.get(
            self.url, headers=request_headers, stream=True, timeout=(timeout, timeout)
        ) as resp:
            self._check_status(resp, have)
            offset = self._accept_partial(resp, have, validator) if resp.status_code == 206 else 0
            self._receive(resp, offset)

    def _check_status(self, resp: requests.Response, have: int) -> None:
        status, url = resp.status_code, redact_url(self.url)
        if status in (404, 410):
            raise NotAvailable(f"{url}: not found (HTTP {status})")
        if status in (401, 403):
            raise NotAvailable(
                f"{url}: access refused (HTTP {status}); check the credentials or whether the "
                "file is public"
            )
        if status == 416 and have:
            _drop_partial(self.part)  # our part is at least as long as the file: start over
            raise _Retry("HTTP 416 (range not satisfiable)")
        if status in _RETRY_STATUS:
            raise _Retry(f"HTTP {status}", resp.headers.get("Retry-After"))
        if status >= 400:
            raise NetworkError(f"{url}: HTTP {status}")

    def _accept_partial(
        self, resp: requests.Response, have: int, validator: _Validator | None
    ) -> int:
        """The offset a 206 continues at; refuses one that does not continue our part."""
        start, total = _content_range(resp.headers.get("Content-Range"))
        if start != have or (have and validator is not None and not validator.continues(
            resp, total
        )):
            _drop_partial(self.part)
            self.bar.reset(total=self.size)
            raise _Retry("a partial answer that did not continue the same file")
        return have

    def _receive(self, resp: requests.Response, offset: int) -> None:
        total = _total_size(resp, offset)
        if offset == 0:
            self.bar.reset(total=total if total is not None else self.size)
        elif total is not None:
            self.bar.total = total
        got = offset
        # Truncate first, then record the new version: a kill between the two leaves an empty
        # part (restarted), never old bytes under a new validator.
        self.stitched = offset > 0  # a part restarted from zero holds one answer only
        with self.part.open("ab" if offset else "wb") as out:
            if not offset:
                _write_validator(self.part, _Validator.of(resp, self.url, total))
            for chunk in _body(resp):
                out.write(chunk)
                got += len(chunk)
                self.bar.update(len(chunk))
                checkpoint("download.chunk")
                if self.size is not None and got > self.size:
                    _drop_partial(self.part)
                    raise ChecksumMismatch(
                        f"{self.part.name.removesuffix('.part')} from {redact_url(self.url)} "
                        f"has over {got - 1:,} bytes, expected {self.size:,}; the file was deleted"
                    )
                if time.monotonic() > self.deadline:
                    raise self.out_of_time("still receiving")
        if total is not None and got < total:
            raise requests.exceptions.ChunkedEncodingError(
                f"body ended at {got:,} of {total:,} bytes"
            )

    def out_of_time(self, last_error: str) -> NetworkError:
        return NetworkError(
            f"cannot download {redact_url(self.url)}: {last_error}, and "
            f"{ENV_MAX_TIME}={self.settings.max_time:g} s are spent; fetch again to resume, "
            "or raise the limit"
        )


def _body(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives, at most 64 KiB at a time (``iter_content`` waits for full
    chunks, so a trickle would escape the time limit), urllib3's errors as requests' own."""
    raw = resp.raw
    try:
        while chunk := raw.read1(_STREAM_CHUNK, decode_content=True):
            yield chunk
    except urllib3_errors.ReadTimeoutError as exc:
        raise requests.exceptions.ConnectionError(exc) from None
    except urllib3_errors.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from None
    except urllib3_errors.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    except urllib3_errors.HTTPError as exc:  # ProtocolError: IncompleteRead, reset, ...
        raise requests.exceptions.ChunkedEncodingError(exc) from None


def _is_dns_failure(exc: BaseException) -> bool:
    """True when a connection error comes from a host name that does not resolve."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, (urllib3_errors.NameResolutionError, socket.gaierror)):
            return True
        linked = (getattr(err, "reason", None), err.__cause__, err.__context__, *err.args)
        todo += [e for e in linked if isinstance(e, BaseException)]
    return False


_TRANSIENT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _stream_http(
    url: str,
    part: Path,
    *,
    headers: Mapping[str, str],
    size: int | None,
    progress: bool,
    desc: str,
    checked: bool = False,
    settings: HttpSettings | None = None,
) -> bool:
    """Fill ``part`` with the body of ``url``, resuming and retrying; raises when it gives up.

    Returns True when the result was stitched from more than one answer (then a failed
    checksum may mean two versions, and the caller downloads once more from zero).
    """
    settings = settings or http_settings()
    started = time.monotonic()
    bar = tqdm(
        total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
        disable=not progress, leave=False, initial=part.stat().st_size if part.exists() else 0,
    )
    job = _Transfer(url, part, headers, size, checked, settings, started + settings.max_time, bar)
    try:
        if job.complete():
            return False
        with requests.Session() as session:
            session.headers["User-Agent"] = USER_AGENT
            # Byte offsets for Range must be those of the stored file, not of a decoded body.
            session.headers["Accept-Encoding"] = "identity"
            return _attempts(job, session)
    finally:
        bar.close()


def _attempts(job: _Transfer, session: requests.Session) -> bool:
    """Attempt ``job`` until it succeeds, retrying transient faults with backoff; raises when
    the retries or the time limit are spent, or at once for a host that does not resolve."""
    settings = job.settings
    attempts, last_error = 0, "no attempt made"
    while True:
        attempts += 1
        retry_after = None
        try:
            job.attempt(session)
            return job.stitched
        except _Retry as exc:
            last_error, retry_after = exc.reason, exc.retry_after
        except _TRANSIENT as exc:
            if _is_dns_failure(exc):
                raise _host_not_found(job.url) from None
            last_error = _describe(exc)
        if attempts > settings.retries:
            break
        delay = _delay(settings, attempts - 1, retry_after)
        if time.monotonic() + delay > job.deadline:
            raise job.out_of_time(last_error)
        time.sleep(delay)
    raise NetworkError(
        f"cannot download {redact_url(job.url)}: {last_error} after {attempts} attempts"
    )


def _host_not_found(url: str) -> HostNotFound:
    host = urlparse(url).hostname
    return HostNotFound(
        f"{redact_url(url)}: host {host} not found (no network, or a wrong host name)"
    )


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
