"""What the remote source types share: fetch options, the download cache, the lock file,
split inference, and turning downloaded files into documents with a reader.

A remote source module has two steps. ``prepare(entry, ctx)`` makes sure the needed files are in
``<data>/downloads/`` (downloading, verifying, unpacking) and returns a :class:`Prepared` that
says which local files to read and what was resolved (URLs, revisions, checksums);
``iter_documents(entry, prepared)`` then reads those files. Only ``prepare`` touches the network,
so a fetch can be retried or resumed without reading anything twice.

Sources made of many files also offer ``read_units(entry, prepared)`` (the files, with sizes, in
document order) and ``read_part(entry, units)`` (the documents of some consecutive units), so
that ``fetch`` can read groups of files as executor tasks (``corpuskit/fetch.py``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from filelock import FileLock

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint

ENV_OFFLINE = "CORPUSKIT_OFFLINE"
ENV_MIRROR = "CORPUSKIT_MIRROR"
ENV_LOCK = "CORPUSKIT_LOCK"
ENV_ALLOW_HTTP = "CORPUSKIT_ALLOW_HTTP"
LOCK_NAME = "corpuskit-lock.json"
SPLIT_ORDER = {"train": 0, "validation": 1, "test": 2}
_TRUE = {"1", "true", "yes", "on"}
_SECRET_PARAMS = re.compile(r"(token|key|sig|signature|secret|password|auth|credential)", re.I)


def env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def offline() -> bool:
    """``CORPUSKIT_OFFLINE=1`` or the Hub's own ``HF_HUB_OFFLINE=1``: use the cache only."""
    return env_true(ENV_OFFLINE) or env_true("HF_HUB_OFFLINE")


def redact_url(url: str) -> str:
    """A URL fit for messages and manifests: no user:password, no token-like query values."""
    parts = urlparse(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode(
        [(k, "REDACTED" if _SECRET_PARAMS.search(k) else v) for k, v in parse_qsl(parts.query)]
    )
    return urlunparse(parts._replace(netloc=netloc, query=query))


def check_user_url(url: str, what: str) -> str:
    """An endpoint or mirror the user gave on the command line or in the environment.

    Plain http is accepted only for loopback hosts (tests, local mirrors) or with
    ``CORPUSKIT_ALLOW_HTTP=1``; anything else must be https (or file://, s3://, gs://).
    """
    parts = urlparse(url)
    if parts.scheme == "http":
        if parts.hostname in {"127.0.0.1", "localhost", "::1"} or env_true(ENV_ALLOW_HTTP):
            return url
        raise CorpuskitError(
            f"{what} {redact_url(url)} is plain http; use https, or set "
            f"{ENV_ALLOW_HTTP}=1 if you trust the network path"
        )
    if parts.scheme in {"https", "file", "s3", "gs"}:
        return url
    raise CorpuskitError(f"{what} {url!r} is not an https://, file://, s3:// or gs:// URL")


@dataclass
class FetchContext:
    """Everything a source needs besides the catalog entry."""

    root: Path
    progress: bool = True
    mirror: str | None = None
    splits: list[str] | None = None
    locked: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        mirror = self.mirror or os.environ.get(ENV_MIRROR) or None
        self.mirror = check_user_url(mirror, "mirror") if mirror else None

    def downloads(self, corpus: str) -> Path:
        return self.root / "downloads" / corpus

    def wants(self, split: str) -> bool:
        return self.splits is None or split in self.splits


@dataclass
class LocalFile:
    """One downloaded (or extracted) file to read, with its split and its name for ids."""

    path: Path
    name: str
    split: str


@dataclass
class Prepared:
    """What ``prepare`` produced: the files to read and what was resolved to get them."""

    files: list[LocalFile]
    resolved: dict[str, Any]
    extra_columns: dict[str, str] = field(default_factory=dict)


def infer_split(name: str, default: str = "train") -> str:
    """The split a file holds, from its name: ``wiki.valid.tokens`` → validation, etc."""
    stem = PurePosixPath(name).name.lower()
    for word in re.split(r"[^a-z]+", stem):
        if word in {"valid", "validation", "dev", "val"}:
            return "validation"
        if word == "test":
            return "test"
        if word == "train":
            return "train"
    return default


def sort_files(files: list[LocalFile]) -> list[LocalFile]:
    return sorted(files, key=lambda f: (SPLIT_ORDER.get(f.split, 9), f.split, f.name))


def match_any(path: str, patterns: list[str]) -> bool:
    """Glob match where ``**/`` may also match nothing (``src/**/*.py`` matches ``src/a.py``).

    As in ``fnmatch``, ``*`` also crosses ``/``; globs here select files, they do not walk.
    """
    for pattern in patterns:
        variants = {pattern, pattern.replace("/**/", "/")}
        variants |= {v[3:] for v in variants if v.startswith("**/")}
        if any(fnmatch.fnmatchcase(path, v) for v in variants):
            return True
    return False


# -- the lock file -----------------------------------------------------------------------------


def lock_path(root: Path) -> Path:
    """``CORPUSKIT_LOCK`` or ``<data>/corpuskit-lock.json``: copy it to pin the same bytes."""
    env = os.environ.get(ENV_LOCK)
    return Path(env).expanduser() if env else root / LOCK_NAME


def read_lock(root: Path) -> dict[str, Any]:
    path = lock_path(root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise CorpuskitError(f"lock file {path} is unreadable ({exc}); fix or delete it") from None
    return data.get("corpora", {}) if isinstance(data, dict) else {}


def update_lock(root: Path, corpus: str, resolved: dict[str, Any]) -> None:
    """Record what a fetch resolved (revisions, versions, checksums); never credentials."""
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(f".{path.name}.lock")), timeout=60):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            data = {}
        corpora = data.setdefault("corpora", {})
        old = corpora.get(corpus)
        if isinstance(old, dict) and old.get("pin") == resolved.get("pin"):
            # A fetch of some splits only keeps what earlier fetches recorded for the others.
            resolved = {**resolved, "files": {**old.get("files", {}), **resolved.get("files", {})}}
        corpora[corpus] = resolved
        data["lock_version"] = 1
        from corpuskit.shards import remove_stale_siblings

        remove_stale_siblings(path)  # a killed writer's temporary file
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        checkpoint("lockfile.before_replace")
        os.replace(tmp, path)


def locked_sha256(locked: dict[str, Any], key: str, pin: Any) -> str | None:
    """The sha256 an earlier fetch recorded for ``key``, if it was for the same pin."""
    if locked.get("pin") != pin:
        return None
    entry = locked.get("files", {}).get(key)
    return entry.get("sha256") if isinstance(entry, dict) else None


# -- documents from files ----------------------------------------------------------------------


def metadata_columns(entry: CorpusEntry) -> list[str]:
    """``file`` (the file a document came from) plus the reader's own columns."""
    from corpuskit.readers import reader_for

    own = reader_for(entry.reader).metadata_columns(entry.reader_options)
    return ["file", *[c for c in own if c != "file"]]


# Readers whose documents never cross a file boundary: their files can be read in any grouping
# (WikiText's articles may continue in the next file of a split, so it is read split by split).
PER_FILE_READERS = frozenset({"text", "code", "jsonl", "csv", "parquet"})


@dataclass(frozen=True)
class FileUnit:
    """One prepared file as a unit of parallel reading (picklable, absolute path)."""

    path: str
    name: str
    split: str
    extra_columns: tuple[tuple[str, str], ...] = ()


def file_units(entry: CorpusEntry, prepared: Prepared) -> list[tuple[FileUnit, int]] | None:
    """The prepared files with their sizes, in the order ``documents_from_files`` reads them;
    None when the reader may continue a document across files (then one process reads)."""
    if entry.reader not in PER_FILE_READERS:
        return None
    extra = tuple(sorted(prepared.extra_columns.items()))
    units = []
    for f in sort_files(prepared.files):
        path = Path(f.path).resolve()  # tasks may run elsewhere, in another working directory
        units.append((FileUnit(str(path), f.name, f.split, extra), path.stat().st_size))
    return units


def documents_of_units(entry: CorpusEntry, units: list[FileUnit]) -> Iterator[dict[str, Any]]:
    """The documents of some consecutive units: exactly their part of ``documents_from_files``."""
    from corpuskit.readers import reader_for

    reader = reader_for(entry.reader)
    for unit in units:
        extra = dict(unit.extra_columns)
        for doc in reader.read([(Path(unit.path), unit.name)], entry.reader_options):
            yield _document(entry, unit.split, extra, doc)


def _document(
    entry: CorpusEntry, split: str, extra: dict[str, str], doc: dict[str, Any]
) -> dict[str, Any]:
    key = doc.pop("key")
    return {
        "id": f"{entry.name}/{split}/{key}",
        "split": split,
        "source": f"{entry.source.type}:{doc.get('file', '')}",
        **extra,
        **doc,
    }


def documents_from_files(entry: CorpusEntry, prepared: Prepared) -> Iterator[dict[str, Any]]:
    """Read the prepared files split by split (train, validation, test, then others).

    A reader sees all files of one split together, in name order, because a document may
    cross a file boundary (WikiText-103's train split is two parquet files).
    """
    from corpuskit.readers import reader_for

    reader = reader_for(entry.reader)
    by_split: dict[str, list[LocalFile]] = {}
    for f in sort_files(prepared.files):
        by_split.setdefault(f.split, []).append(f)
    for split, files in by_split.items():
        pairs = [(f.path, f.name) for f in files]
        for doc in reader.read(pairs, entry.reader_options):
            yield _document(entry, split, prepared.extra_columns, doc)
