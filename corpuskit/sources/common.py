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
from urllib.parse import urlparse

from filelock import FileLock

# redact_url lives beside the catalog models (which redact what they dump); sources import it here.
from corpuskit.catalog import CorpusEntry, redact_url
from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint
from corpuskit.slices import Slice

ENV_OFFLINE = "CORPUSKIT_OFFLINE"
ENV_MIRROR = "CORPUSKIT_MIRROR"
ENV_LOCK = "CORPUSKIT_LOCK"
ENV_ALLOW_HTTP = "CORPUSKIT_ALLOW_HTTP"
LOCK_NAME = "corpuskit-lock.json"
SPLIT_ORDER = {"train": 0, "validation": 1, "test": 2}
_TRUE = {"1", "true", "yes", "on"}


def env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def offline() -> bool:
    """``CORPUSKIT_OFFLINE=1`` or the Hub's own ``HF_HUB_OFFLINE=1``: use the cache only."""
    return env_true(ENV_OFFLINE) or env_true("HF_HUB_OFFLINE")


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
    raise CorpuskitError(
        f"{what} {redact_url(url)!r} is not an https://, file://, s3:// or gs:// URL"
    )


@dataclass
class FetchContext:
    """Everything a source needs besides the catalog entry."""

    root: Path
    progress: bool = True
    mirror: str | None = None
    splits: list[str] | None = None
    locked: dict[str, Any] = field(default_factory=dict)
    force: bool = False  # ``fetch --force``: download again even what the cache holds
    # ``fetch --max-bytes/--max-documents/--max-files/--subset`` (corpuskit/slices.py); a
    # source that can read less than its files (hf parquet row groups) uses it, others ignore it
    slice: Slice | None = None

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
    # Bytes the source read from the network or the cache for these files (a slice's ranges
    # or whole files); recorded in a slice's manifest, never in the lock file.
    transferred: int | None = None


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


LOCK_VERSION = 1


def _damaged_lock(path: Path, what: str) -> CorpuskitError:
    return CorpuskitError(
        f"lock file {path} is damaged ({what}); restore it from version control, or delete it "
        "and fetch again (a new one is written, pinning what is downloaded then)"
    )


def _check_lock_shape(data: Any, path: Path) -> dict[str, Any]:
    """The parsed lock file if it has the shape ``update_lock`` writes; else a clear error."""
    if not isinstance(data, dict):
        raise _damaged_lock(path, f"a JSON {type(data).__name__}, not an object")
    version = data.get("lock_version", LOCK_VERSION)
    if version != LOCK_VERSION:
        raise CorpuskitError(
            f"lock file {path} has lock_version {version!r}, which this corpuskit does not "
            f"understand (it writes {LOCK_VERSION}); upgrade corpuskit or use another lock file"
        )
    corpora = data.get("corpora", {})
    if not isinstance(corpora, dict):
        raise _damaged_lock(path, "'corpora' is not an object")
    for name, pins in corpora.items():
        if not isinstance(pins, dict):
            raise _damaged_lock(path, f"the entry of {name!r} is not an object")
        files = pins.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
            raise _damaged_lock(path, f"'files' of {name!r} is not an object of objects")
    return data


def _load_lock(path: Path) -> dict[str, Any]:
    """The whole lock file, checked; ``{}`` when there is none yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CorpuskitError(
            f"cannot read lock file {path} ({exc.strerror or exc}); it must be a readable file"
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _damaged_lock(path, "not JSON" if raw.strip() else "empty") from None
    return _check_lock_shape(data, path)


def read_lock(root: Path) -> dict[str, Any]:
    """What earlier fetches pinned, by corpus; a damaged lock file is an error, never ``{}``
    (that would silently unpin every corpus)."""
    return _load_lock(lock_path(root)).get("corpora", {})


def update_lock(root: Path, corpus: str, resolved: dict[str, Any]) -> None:
    """Record what a fetch resolved (revisions, versions, checksums); never credentials.

    Atomic: the new file is written beside the old one, flushed to disk and renamed over it, so
    a crash leaves the old or the new lock file, never a mix; a damaged lock file is an error
    and is left as it is (the pins of other corpora in it are not thrown away).
    """
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(f".{path.name}.lock")), timeout=60):
        data = _load_lock(path)
        corpora = data.setdefault("corpora", {})
        old = corpora.get(corpus)
        if isinstance(old, dict) and old.get("pin") == resolved.get("pin"):
            # A fetch of some splits only keeps what earlier fetches recorded for the others.
            resolved = {**resolved, "files": {**old.get("files", {}), **resolved.get("files", {})}}
        corpora[corpus] = resolved
        data["lock_version"] = LOCK_VERSION
        from corpuskit.shards import remove_stale_siblings

        remove_stale_siblings(path)  # a killed writer's temporary file
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
            checkpoint("lockfile.before_replace")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


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
