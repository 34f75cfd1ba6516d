"""Machinery every command shares around artifacts: locks, liveness of the processes that own
leftovers, the sweep of what killed runs left behind, ``LATEST`` pointers and bytes per token.

A lock lives beside the artifact folder it guards (``.<name>.lock``). Leftovers are named
``.<name>.tmp-<pid>``: only those of processes that are dead on this machine are removed, so a
concurrent writer's work in progress is never touched. Staging folders (built under a temporary
name, renamed into place) and manifests (written last, with every file's size and xxh3-128 hash:
a step that would reuse an artifact checks the sizes, ``corpuskit verify`` the hashes) live here
too; ``shards.py`` keeps the Arrow shard format and re-exports these names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import xxhash
from filelock import FileLock, Timeout

from corpuskit import __version__
from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint

_log = logging.getLogger(__name__)

ENV_LOCK_TIMEOUT = "CORPUSKIT_LOCK_TIMEOUT"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class ArtifactLock:
    """An exclusive file lock beside an artifact folder: a second process waits for the first
    (``CORPUSKIT_LOCK_TIMEOUT`` seconds, default 600), then fails with one clear line instead
    of filelock's ``Timeout`` traceback. The lock is advisory (``fcntl``), so a killed holder
    releases it with its last file descriptor: a crash never leaves a corpus locked.
    """

    def __init__(self, directory: Path, timeout: float | None = None):
        directory.parent.mkdir(parents=True, exist_ok=True)
        if timeout is None:
            try:
                timeout = float(os.environ.get(ENV_LOCK_TIMEOUT, 600))
            except ValueError:
                raise CorpuskitError(f"{ENV_LOCK_TIMEOUT} must be a number of seconds") from None
        self.directory = directory
        self._lock = FileLock(str(directory.with_name(f".{directory.name}.lock")), timeout=timeout)

    @property
    def lock_file(self) -> str:
        return str(self._lock.lock_file)

    def acquire(self) -> None:
        checkpoint("lock.acquire")
        try:
            self._lock.acquire()
        except Timeout:
            raise CorpuskitError(
                f"another corpuskit process is writing {self.directory} (lock {self.lock_file} "
                f"held for more than {self._lock.timeout:g}s); wait for it to finish, or raise "
                f"{ENV_LOCK_TIMEOUT}"
            ) from None

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> ArtifactLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def artifact_lock(directory: Path, timeout: float | None = None) -> ArtifactLock:
    """An exclusive lock beside an artifact folder (waits, then fails with a clear message)."""
    return ArtifactLock(directory, timeout)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (someone else's live process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_leftovers(folder: Path) -> None:
    """Remove what killed runs left in ``folder`` (``.<name>.tmp-<pid>`` of dead pids)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        _, sep, pid = path.name.rpartition(".tmp-")
        if not sep or not path.name.startswith(".") or not pid.isdigit():
            continue
        if int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def existing_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def bytes_per_token(split: dict[str, Any], bos: bool) -> float:
    """UTF-8 bytes of text per content token of one packed split (``meta.json``'s
    ``splits[name]``): the EOS after every document, and the BOS before it with ``bos``, are
    not content. The one definition for the command line, reports and inspection."""
    specials = 2 if bos else 1
    content = int(split["tokens"]) - specials * int(split["documents"])
    return int(split["bytes"]) / max(1, content)


def write_latest(pointer: Path, name: str) -> None:
    """Point ``pointer`` (a ``LATEST`` file) at the artifact folder ``name`` beside it, at once:
    written to a private temporary name, then renamed over the old pointer (leftovers of killed
    writers are swept first). The one writer of ``LATEST`` files (build and sync)."""
    remove_stale_siblings(pointer)
    tmp = pointer.with_name(f".{pointer.name}.tmp-{os.getpid()}")
    tmp.write_text(name.strip() + "\n", encoding="utf-8")
    checkpoint("encode.latest")
    os.replace(tmp, pointer)


def fingerprint(payload: Mapping[str, Any]) -> str:
    """A short, stable hash of a JSON-able mapping (key order does not matter)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpuskitError(f"{directory} is not a complete artifact (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise CorpuskitError(
            f"{path} is corrupt ({exc.msg}); delete the folder and rerun"
        ) from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CorpuskitError(
            f"{path} has format_version {manifest.get('format_version')!r}, this corpuskit reads "
            f"{FORMAT_VERSION}; rebuild it with this version"
        )
    return manifest


def existing_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a complete artifact, or None when there is none (or it is unreadable)."""
    try:
        return read_manifest(directory)
    except CorpuskitError:
        return None


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    remove_stale_siblings(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    checkpoint("json.before_replace")
    os.replace(tmp, path)


def remove_stale_siblings(final: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` beside ``final`` whose process is dead.

    A process killed mid-write (SIGKILL, OOM, power cut) runs no cleanup, so its staging folder
    or temporary file stays behind under a name no reader ever opens; without this sweep such
    debris would pile up for ever. Only names of *dead* processes on this machine are touched,
    so a concurrent writer's work in progress is safe. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        candidates = list(final.parent.glob(f".{glob_escape(final.name)}.*-*"))
    except OSError:
        return removed
    for path in candidates:
        stem, _, pid_text = path.name.rpartition("-")
        if stem not in (f".{final.name}.tmp", f".{final.name}.old") or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or pid_alive(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped (artifact names may hold ``[``)."""
    import glob

    return glob.escape(name)


def new_manifest(
    kind: str,
    corpus: str,
    *,
    inputs: Mapping[str, Any],
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The identity part of a manifest; its fingerprint names the artifact."""
    identity = {
        "kind": kind,
        "corpus": corpus,
        "inputs": dict(inputs),
        "config": dict(config),
        "code_version": __version__,
    }
    return {"format_version": FORMAT_VERSION, **identity, "fingerprint": fingerprint(identity)}


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temporary sibling of ``final`` that replaces it only if the block succeeds.

    The old artifact (if any) stays intact until the new one is complete; on any error the
    temporary folder is removed and nothing half-written is left under the final name.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    checkpoint("staging.before_swap")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
        checkpoint("staging.old_moved")
    os.replace(tmp, final)
    checkpoint("staging.swapped")
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- file records

HASH = "xxh3_128"
_HASH_CHUNK = 8 * 2**20


class DamagedArtifactError(CorpuskitError):
    """A file of an artifact is missing, of the wrong size, unreadable or not what was written."""


def hash_file(path: Path, on_bytes: Callable[[int], Any] | None = None) -> str:
    """The xxh3-128 hex digest of a file, streamed in chunks (memory stays flat)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def _artifact_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """``(relative posix name, path)`` of every file of an artifact but its manifest; hidden
    names (staging debris, ``.lock``) are not part of it, as ``sync`` also leaves them out."""
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if rel == MANIFEST or any(p.startswith(".") for p in rel.split("/")):
            continue
        if path.is_file():
            yield rel, path


def file_records(directory: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"bytes": size, "xxh3_128": hex}}`` for every file of ``directory`` (its
    manifest and hidden names left out): what a manifest records so that damage shows."""
    return {
        rel: {"bytes": path.stat().st_size, HASH: hash_file(path)}
        for rel, path in _artifact_files(directory)
    }


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``directory/manifest.json`` last, with the records of every file already there.

    The one place manifests get their ``files``: call it once the artifact's other files are
    complete. Returns the manifest as written.
    """
    complete = {**manifest, "files": file_records(directory)}
    write_json_atomic(directory / MANIFEST, complete)
    return complete


_FETCHED_KINDS = ("raw",)


def rebuild_command(kind: str | None, corpus: str | None) -> str:
    """The command that makes an artifact of ``kind`` for ``corpus`` again, from scratch."""
    name = corpus or "NAME"
    if kind in _FETCHED_KINDS:
        return f"corpuskit fetch {name} --force"
    return f"corpuskit build {name} --force"


def rebuild_command_for(path: Path) -> str:
    """The rebuild command for a file of an artifact or of the build cache.

    The nearest folder above with a readable ``manifest.json`` (or a cache's ``identity.json``)
    says the kind and the corpus; failing that, the layout of the data root does
    (``raw/<corpus>/``, ``clean|tokens|cache/<corpus>/...``).
    """
    for folder in [path, *path.parents]:
        for name in (MANIFEST, "identity.json"):
            try:
                data = json.loads((folder / name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("corpus"):
                return rebuild_command(data.get("kind"), str(data["corpus"]))
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in ("raw", "clean", "tokens", "cache"):
            return rebuild_command(parts[i], parts[i + 1])
    return "corpuskit build NAME --force"


@dataclass(frozen=True)
class FileProblem:
    """One damaged file of an artifact: ``problem`` is ``missing``, ``size``, ``hash``,
    ``unrecorded`` (an older manifest without file records) or ``manifest`` (unreadable)."""

    artifact: str
    file: str
    problem: str
    detail: str
    command: str

    @property
    def path(self) -> str:
        return f"{self.artifact}/{self.file}" if self.file else self.artifact

    def line(self) -> str:
        return f"{self.path}: {self.detail}; rebuild it with `{self.command}`"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, **self.__dict__}


def _records(manifest: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """The manifest's file records (None for an older manifest) and its rebuild command."""
    command = rebuild_command(manifest.get("kind"), manifest.get("corpus"))
    files = manifest.get("files")
    return (files if isinstance(files, dict) else None), command


def _unrecorded(directory: Path, command: str) -> FileProblem:
    return FileProblem(
        str(directory), MANIFEST, "unrecorded",
        "the manifest records no file sizes or hashes (an older corpuskit wrote it)", command,
    )


def size_problems(directory: Path, manifest: Mapping[str, Any]) -> list[FileProblem]:
    """Recorded files that are missing or of another size: a stat per file, cheap enough
    for every "up to date" check. A manifest without records is one ``unrecorded`` problem."""
    records, command = _records(manifest)
    if records is None:
        return [_unrecorded(directory, command)]
    problems = []
    for name, record in records.items():
        try:
            size = (directory / name).stat().st_size
        except FileNotFoundError:
            problems.append(FileProblem(str(directory), name, "missing", "missing", command))
            continue
        if size != record.get("bytes"):
            problems.append(
                FileProblem(
                    str(directory), name, "size",
                    f"{size} bytes, the manifest records {record.get('bytes')}", command,
                )
            )
    return problems


def hash_problems(
    directory: Path,
    manifest: Mapping[str, Any],
    on_bytes: Callable[[int], Any] | None = None,
) -> list[FileProblem]:
    """:func:`size_problems` plus, for files of the right size, a hash check (reads all)."""
    problems = size_problems(directory, manifest)
    records, command = _records(manifest)
    if records is None:
        return problems
    bad = {p.file for p in problems}
    for name, record in records.items():
        if name in bad:
            if on_bytes is not None:
                on_bytes(int(record.get("bytes") or 0))
            continue
        got = hash_file(directory / name, on_bytes)
        if got != record.get(HASH):
            problems.append(
                FileProblem(
                    str(directory), name, "hash",
                    f"content differs from what was written ({HASH} {got}, "
                    f"the manifest records {record.get(HASH)})",
                    command,
                )
            )
    return problems


def require_intact(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Raise a one-line :class:`DamagedArtifactError` when a recorded file is missing or of
    another size (or the manifest records none): for inputs, which a step must not rebuild."""
    problems = size_problems(directory, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more damaged file(s))" if len(problems) > 1 else ""
        first = problems[0]
        raise DamagedArtifactError(
            f"{first.path}: {first.detail}{more}; rebuild it with `{first.command}`"
        )


def reusable(
    directory: Path, manifest: Mapping[str, Any], redo: str, *, warn: bool = True
) -> bool:
    """Whether an up-to-date artifact may be reused: every recorded file there, of its size.

    When not, one warning line names the (first) damaged file and says what happens instead
    (``redo``, e.g. "building it again"); the caller then makes the artifact again, as it
    would a folder without a manifest. Never reuse what is damaged, never fail silently
    (``warn=False``: a second look, under the lock, after a first that already said so).
    """
    problems = size_problems(directory, manifest)
    if problems and warn:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        _log.warning("%s: %s%s; %s", first.path, first.detail, more, redo)
    return not problems
