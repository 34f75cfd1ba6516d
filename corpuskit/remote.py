"""A data root on object storage (``s3://``, ``gs://``, any fsspec URL) for fetch and build.

Fetch and build need POSIX semantics (atomic renames, file locks, memory maps) that object
stores lack, so they never work *in* a remote root. Instead they work in a local mirror of it:
the artifacts the step reads are pulled first (``sync``: only complete artifacts, skipped when
already up to date), the step runs on the mirror exactly as on a local root, and the artifacts
it wrote are pushed back, each with its manifest last, so another machine that reads the
remote root never sees a half-written artifact. The mirror lives in ``CORPUSKIT_MIRROR_DIR``
(else ``~/.cache/corpuskit/mirror/<hash of the URL>``) and persists, so an unchanged build
downloads nothing and, finding its artifacts in the mirror, computes nothing either.

This serves one machine (or a Ray cluster on one node) writing to shared object storage; Ray
workers on other nodes still need the working root on a file system they all mount
(``docs/scale-out.md``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corpuskit.paths import ENV_HOME

ENV_MIRROR = "CORPUSKIT_MIRROR_DIR"


def remote_url(data_dir: str | os.PathLike[str] | None) -> str | None:
    """``data_dir`` (else ``$CORPUSKIT_HOME``) when it is a non-local fsspec URL, else None."""
    raw = os.fspath(data_dir) if data_dir is not None else os.environ.get(ENV_HOME)
    if not raw or "://" not in raw:
        return None
    protocol = raw.split("://", 1)[0].lower()
    return None if protocol in ("file", "local") else raw.rstrip("/")


def mirror_dir(url: str) -> Path:
    """The local working copy of the remote root ``url``."""
    env = os.environ.get(ENV_MIRROR)
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "corpuskit" / "mirror"
    return base / hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


@contextmanager
def mirrored(
    url: str, corpus: str, pull: tuple[str, ...], push: tuple[str, ...]
) -> Iterator[Path]:
    """Pull ``corpus``'s artifacts of the kinds ``pull`` from ``url`` into the local mirror,
    yield the mirror's path, and, when the block succeeds, push the kinds ``push`` back."""
    from corpuskit.sync import root_exists, sync

    local = mirror_dir(url)
    local.mkdir(parents=True, exist_ok=True)
    if root_exists(url):  # a new bucket prefix has nothing to pull yet
        sync(url, local, corpora=[corpus], kinds=pull)
    yield local
    sync(local, url, corpora=[corpus], kinds=push)
