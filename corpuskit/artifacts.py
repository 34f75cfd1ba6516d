"""Machinery every command shares around artifacts: locks, liveness of the processes that own
leftovers, the sweep of what killed runs left behind, ``LATEST`` pointers and bytes per token.

A lock lives beside the artifact folder it guards (``.<name>.lock``). Leftovers are named
``.<name>.tmp-<pid>``: only those of processes that are dead on this machine are removed, so a
concurrent writer's work in progress is never touched. (Staging folders and manifests are still
in ``shards.py``, next to the shard format they record.)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

from filelock import FileLock, Timeout

from corpuskit.errors import CorpuskitError
from corpuskit.faults import checkpoint

ENV_LOCK_TIMEOUT = "CORPUSKIT_LOCK_TIMEOUT"


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
    from corpuskit.shards import remove_stale_siblings  # shards imports this module

    remove_stale_siblings(pointer)
    tmp = pointer.with_name(f".{pointer.name}.tmp-{os.getpid()}")
    tmp.write_text(name.strip() + "\n", encoding="utf-8")
    checkpoint("encode.latest")
    os.replace(tmp, pointer)
