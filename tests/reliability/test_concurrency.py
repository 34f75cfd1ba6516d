"""Two ``corpuskit`` processes on the same corpus at once: the second waits for the first's
file lock and then finds the work done, or, with a short ``CORPUSKIT_LOCK_TIMEOUT``, fails with
one clear line. Never a corrupt or doubly-built output.

The first process is held inside its critical section by a ``pause`` fault point
(``CORPUSKIT_FAULT_POINT=name:1:pause=SECONDS``), so the overlap is certain, not a race.
These are real ``python -m corpuskit.cli`` processes, not forks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.reliability.test_crash_helpers import REPO, debris, tree_digest

BUILD = ["build", "tiny", "--tokenizer", "byte", "--workers", "1"]


def _start(args: list[str], **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO), **env}
    full.pop("CORPUSKIT_FAULT_POINT", None)
    full.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "corpuskit.cli", "-q", *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], limit: float = 90) -> None:
    """Until ``path`` exists (a process reached a ``touch`` fault point or made a folder)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() or (path.parent.exists() and list(path.parent.glob(path.name))):
            return
        if proc.poll() is not None:
            raise AssertionError(f"the process ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_concurrent_fetches_wait_or_fail_in_one_line(
    data_dir: Path, tiny_corpus: str, tmp_path: Path
) -> None:
    release, arrived = tmp_path / "release", tmp_path / "arrived"
    first = _start(["fetch", "tiny"], CORPUSKIT_FAULT_POINT=f"fetch.document:5:wait={release}")
    _wait_for(data_dir / "raw" / ".tiny.tmp-*", first)
    impatient = _start(["fetch", "tiny"], CORPUSKIT_LOCK_TIMEOUT="0.3")
    second = _start(["fetch", "tiny"], CORPUSKIT_FAULT_POINT=f"lock.acquire:1:touch={arrived}")
    rc_i, _, err_i = _finish(impatient)
    _wait_for(arrived, second)
    time.sleep(0.5)  # the second is now blocked on the lock the first holds
    assert second.poll() is None
    release.touch()
    rc1, out1, err1 = _finish(first)
    rc2, out2, err2 = _finish(second)
    assert rc_i == 1
    assert err_i.startswith("error: another corpuskit process is fetching 'tiny'")
    assert err_i.count("\n") == 1 and "Traceback" not in err_i
    assert (rc1, rc2) == (0, 0), (err1, err2)
    assert "tiny: fetched: 200 documents" in out1
    assert "up to date, nothing to do" in out2  # waited, then did not fetch again
    assert debris(data_dir) == []


def test_two_builds_at_once_give_one_correct_output(
    data_dir: Path, tiny_corpus: str, tmp_path: Path
) -> None:
    from corpuskit import api

    # Reference: the same build, alone, in another data folder (in this process: faster).
    api.build("tiny", data_dir=tmp_path / "alone", tokenizer="byte", workers=1, progress=False)
    api.fetch("tiny", progress=False)
    release, arrived = tmp_path / "release", tmp_path / "arrived"
    first = _start(BUILD, CORPUSKIT_FAULT_POINT=f"build.global_phase:1:wait={release}")
    _wait_for(data_dir / "clean" / "tiny" / ".*.tmp-*", first)
    impatient = _start(BUILD, CORPUSKIT_LOCK_TIMEOUT="0.3")
    second = _start(BUILD, CORPUSKIT_FAULT_POINT=f"lock.acquire:1:touch={arrived}")
    rc_i, _, err_i = _finish(impatient)
    _wait_for(arrived, second)
    time.sleep(0.5)
    release.touch()
    rc1, _, err1 = _finish(first)
    rc2, out2, err2 = _finish(second)
    # Before the fix, a lock timeout was filelock's Timeout traceback.
    assert rc_i == 1 and "another corpuskit process is writing" in err_i, err_i
    assert err_i.count("\n") == 1 and "Traceback" not in err_i
    assert (rc1, rc2) == (0, 0), (err1, err2)
    # Before the fix, the waiting build built the same artifact again once it got the lock.
    assert "up to date, nothing to do" in out2, out2
    got, want = tree_digest(data_dir), tree_digest(tmp_path / "alone")
    assert {k: v for k, v in got.items() if not k.startswith("raw/")} == {
        k: v for k, v in want.items() if not k.startswith("raw/")
    }
    assert debris(data_dir) == []
