"""URLs in the catalog: which schemes are fetched, and how credentials are kept out of output.

Split from :mod:`corpuskit.catalog` (which re-exports ``redact_url`` and ``check_url``).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlparse

# Query parameter names that carry credentials, compared lower-case without separators
# (``X-Amz-Signature`` → ``xamzsignature``): whole names, and endings (``access_token``).
_SECRET_NAMES = frozenset({"sig", "pass", "auth", "authorization", "jwt"})
_SECRET_ENDINGS = (
    "token", "key", "secret", "password", "passwd", "passphrase", "pwd", "signature",
    "credential", "credentials",
)
REDACTED = "REDACTED"


def _secret_param(name: str) -> bool:
    norm = re.sub(r"[^a-z0-9]", "", unquote_plus(name).lower())
    return norm in _SECRET_NAMES or norm.endswith(_SECRET_ENDINGS)


def _redact_query(query: str) -> str:
    """``a=1&token=x`` → ``a=1&token=REDACTED``; everything else is kept byte for byte."""
    pieces = []
    for piece in query.split("&"):
        name, eq, _ = piece.partition("=")
        pieces.append(f"{name}={REDACTED}" if eq and _secret_param(name) else piece)
    return "&".join(pieces)


def redact_url(url: str) -> str:
    """A URL fit for messages, manifests and ``info``: no ``user:password@``, no credential-like
    query (or fragment) values; a URL with nothing to hide comes back unchanged, so that
    fingerprints of ordinary catalog entries do not move.
    """
    try:
        parts = urlparse(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: show nothing after the scheme
        return url.split("://", 1)[0] + "://" + REDACTED if "://" in url else REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    redacted = parts._replace(
        netloc=netloc, query=_redact_query(parts.query), fragment=_redact_query(parts.fragment)
    )
    return url if redacted == parts else redacted.geturl()


_SCHEMES = ("https://", "http://", "file://", "hf://", "s3://", "gs://")


def check_url(value: str, *, allow_http: bool, what: str = "URL") -> str:
    """Refuse URLs we cannot fetch safely: unknown schemes, no host, or plain http.

    Plain http is refused unless the catalog says ``allow_http: true``: the bytes could be
    changed in transit, and a file without a published sha256 would not notice.
    """
    shown = redact_url(value)  # errors are printed and logged: never a credential
    if not value.startswith(_SCHEMES):
        raise ValueError(f"unsupported {what} {shown!r}: use https://, hf://, s3://, gs:// or file://")
    if value.startswith(("https://", "http://")) and not urlparse(value).netloc:
        raise ValueError(f"{what} {shown!r} has no host")
    if value.startswith("http://") and not allow_http:
        raise ValueError(
            f"plain-http {what} {shown!r} refused: use https://, or set 'allow_http: true' "
            "on the source if you trust the network path"
        )
    return value
