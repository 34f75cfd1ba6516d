"""One training process per run folder, and no trace of a run that never started.

``run_session`` wraps a whole ``train`` call: it takes the run's lock (``train.lock``, an
advisory ``fcntl`` lock, so a killed holder releases it) without waiting, because a second
``train --resume`` of the same run would interleave checkpoints and metrics; and when a new run
fails before it saved any checkpoint, it removes the folder it was given, so a failed start
leaves no empty run behind.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from corpuskit.errors import CorpuskitError
from corpuskit.train.checkpoint import LOCK, checkpoint_dir


class TrainingTerminated(KeyboardInterrupt):
    """SIGTERM stopped the run after saving a checkpoint (the CLI exits 143, as a shell does)."""


def _is_fresh(run_dir: Path) -> bool:
    return not run_dir.exists() or not any(p.name != LOCK for p in run_dir.iterdir())


@contextlib.contextmanager
def run_session(run_dir: Path, *, main: bool = True) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block; remove the folder if it was empty on entry and no
    checkpoint exists when the block fails. Non-main processes of a distributed run do
    neither (rank 0 speaks for the run)."""
    if not main:
        yield
        return
    fresh = _is_fresh(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise CorpuskitError(
            f"another `corpuskit train` is running on {run_dir} (it holds {LOCK}); wait for it "
            "to finish or stop it first"
        ) from None
    try:
        yield
    except BaseException:
        if fresh and checkpoint_dir(run_dir) is None:
            lock.release()
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        lock.release()
