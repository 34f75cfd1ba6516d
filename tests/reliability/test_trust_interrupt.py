"""Ctrl-C and SIGTERM on commands that run worker processes (``--workers 2``).

A terminal's Ctrl-C sends SIGINT to the whole foreground process group, the pool's workers
included; ``docker stop`` and schedulers send SIGTERM to the driver. Either way the command must
end with one line on stderr (no worker traceback, no "a worker process died"), exit 130 or 143,
leave no staging folder or temporary file and no worker process behind, and keep the shards that
finished, so that the next build reuses them and ends byte-identical to an uninterrupted build.

The commands run as real processes in their own session (``start_new_session``), so that
``os.killpg`` reaches exactly their process group, as a terminal does. ``CORPUSKIT_FAULT_POINT``
holds every worker at a known place (``name:1:wait=PATH`` blocks there until ``PATH`` exists,
which it never does) and the test signals once the cache shows that they got there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.build import cache_root
from corpuskit.catalog import Catalog
from corpuskit.executors.local import LocalExecutor
from corpuskit.fetch import fetch_entry
from tests.conftest import make_documents, run_main
from tests.reliability.test_crash_helpers import REPO, debris, tree_digest

BUILT, READ = "interrupty", "readmany"
BUILD = ["build", BUILT, "--tokenizer", "byte", "--workers", "2"]


def _catalog(work: Path) -> Path:
    """Two local corpora: many small raw shards to build, and enough input bytes for a fetch
    to be read as several executor tasks (parts are at least 256 KiB)."""
    small, big = work / "small", work / "big"
    small.mkdir()
    big.mkdir()
    for i, text in enumerate(make_documents(300, seed=5)):
        (small / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
    docs = make_documents(1200, seed=6)
    for i in range(0, len(docs), 4):
        (big / f"doc{i:04d}.txt").write_text("\n\n".join(docs[i : i + 4]) * 3, encoding="utf-8")
    catalog = work / "interrupt.yaml"
    entries = []
    for name, folder in ((BUILT, small), (READ, big)):
        entries.append(
            f"""  - name: {name}
    title: Interrupt test corpus
    description: Generated documents.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*.txt"]}}
"""
        )
    catalog.write_text("corpora:\n" + "".join(entries), encoding="utf-8")
    return catalog


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The catalog, a fetched data root (several raw shards) and a reference build of it."""
    work = tmp_path_factory.mktemp("interrupt")
    catalog = _catalog(work)
    fetched = work / "fetched"
    entry = Catalog.load([catalog]).get(BUILT)
    fetch_entry(entry, fetched, progress=False, shard_bytes=8000)
    shards = len(list((fetched / "raw" / BUILT).rglob("*.arrow")))
    assert shards >= 6, shards
    reference = work / "reference"
    shutil.copytree(fetched, reference)
    api.build(BUILT, data_dir=reference, catalog=[catalog], tokenizer="byte", workers=1,
              progress=False)
    yield {"catalog": catalog, "fetched": fetched, "reference": tree_digest(reference),
           "shards": shards, "work": work}


def _start(world: dict, root: Path, argv: list[str], fault: str) -> subprocess.Popen[str]:
    """``corpuskit --data-dir ROOT ARGV`` in a new session, with a fault point armed."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CORPUSKIT_FAULT_POINT": fault,
        "CORPUSKIT_CATALOG": str(world["catalog"]),
    }
    for name in ("CORPUSKIT_HOME", "CORPUSKIT_OFFLINE", "CORPUSKIT_MIRROR", "CORPUSKIT_LOCK"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "corpuskit.cli", "-q", "--data-dir", str(root), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(proc: subprocess.Popen[str], ready: object, what: str) -> None:
    """Poll ``ready()`` until true; fail with the command's output if it ended first."""
    deadline = time.monotonic() + 90
    while not ready():  # type: ignore[operator]
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (rc {proc.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """The exit status and stderr, once the command and every process of its group are gone."""
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"the interrupted command did not end: {err[-2000:]}")
    deadline = time.monotonic() + 10
    while True:  # workers left behind would keep the process group alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("a worker process outlived the interrupted command")
        time.sleep(0.05)
    return proc.returncode, err


def _assert_one_line(err: str, line: str) -> None:
    """Exactly one line of message. Click writes an empty line first, when it catches the
    interrupt, so that the message does not stand after a terminal's ``^C``."""
    assert "Traceback" not in err and "worker process" not in err, err
    assert [x for x in err.splitlines() if x.strip()] == [line], err


def _done_markers(root: Path) -> int:
    return sum(1 for _ in cache_root(root, BUILT).glob("*/done-*.json"))


def _build_stopped(world: dict, tmp_path: Path, sig: signal.Signals, group: bool) -> Path:
    """A ``build --workers 2`` whose two workers each finished one shard and then wait; the
    signal goes to the whole group (a terminal) or only to the driver (``kill PID``)."""
    root = tmp_path / "data"
    shutil.copytree(world["fetched"], root)
    proc = _start(world, root, BUILD, f"build.shard_phase:1:wait={tmp_path / 'never'}")
    _wait_for(proc, lambda: _done_markers(root) >= 2, "both workers finished a shard")
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    rc, err = _finish(proc)
    assert rc == 128 + sig, err[-2000:]
    _assert_one_line(err, "interrupted" if sig == signal.SIGINT else "terminated")
    assert debris(root) == [], "staging folders or temporary files were left"
    clean = root / "clean" / BUILT
    assert not (root / "tokens").exists()
    assert not clean.exists() or not any(p.is_dir() for p in clean.iterdir())  # locks only
    # Each worker stopped waiting after its first shard: exactly those two are finished.
    assert _done_markers(root) == 2
    return root


def test_ctrl_c_on_a_build_with_workers_is_one_line_and_keeps_finished_shards(
    world: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _build_stopped(world, tmp_path, signal.SIGINT, group=True)
    code, out, err = run_main(
        capsys, "-q", "--data-dir", str(root), "--catalog", str(world["catalog"]),
        *BUILD[:-1], "1",
    )
    assert code == 0, err
    n = world["shards"]
    assert f"{n:>8,} shards: 2 reused, 0 partly reused, {n - 2:,} computed" in out
    assert tree_digest(root) == world["reference"]


def test_sigterm_to_a_build_is_like_ctrl_c_with_exit_143(world: dict, tmp_path: Path) -> None:
    """``docker stop``: SIGTERM to the driver only; it stops its workers itself."""
    _build_stopped(world, tmp_path, signal.SIGTERM, group=False)


def test_sigterm_to_the_whole_group_is_exit_143(world: dict, tmp_path: Path) -> None:
    """A service manager stopping the whole group: the workers are stopped by the signal
    itself, which is still an interruption (143), not "a worker process died" (1)."""
    _build_stopped(world, tmp_path, signal.SIGTERM, group=True)


def test_ctrl_c_on_a_fetch_read_by_workers_is_one_line(
    world: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``fetch --workers 2`` of a many-file source, interrupted while the driver writes the
    first part that the workers read: nothing is left, and the next fetch works."""
    root = tmp_path / "data"
    proc = _start(world, root, ["fetch", READ, "--workers", "2"],
                  f"fetch.document:1:wait={tmp_path / 'never'}")
    raw = root / "raw"
    _wait_for(proc, lambda: any(raw.glob(f".{READ}.tmp-*/_work/read-*.arrow")), "a part was read")
    time.sleep(0.3)  # the driver opens the part and waits at its first document
    os.killpg(proc.pid, signal.SIGINT)
    rc, err = _finish(proc)
    assert rc == 130, err[-2000:]
    _assert_one_line(err, "interrupted")
    assert debris(root) == [] and not (raw / READ).exists()
    code, _, err = run_main(
        capsys, "-q", "--data-dir", str(root), "--catalog", str(world["catalog"]),
        "fetch", READ, "--workers", "1",
    )
    assert code == 0, err
    assert (raw / READ).is_dir()


class _Interrupt(BaseException):
    """What this test's SIGINT handler raises: an interrupt that pytest leaves alone."""


def _ignores_sigint(_: int) -> bool:
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _held(folder: str) -> None:
    """A long task that says when it started and, when it is stopped, that it unwound."""
    me = Path(folder) / str(os.getpid())
    me.with_suffix(".started").touch()
    try:
        time.sleep(120)
    finally:
        me.with_suffix(".unwound").touch()


def _interrupt_when_started(folder: Path, sent: list[float]) -> None:
    """SIGINT to both workers and to this process, as a terminal's Ctrl-C does."""
    deadline = time.monotonic() + 90
    while len(list(folder.glob("*.started"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    sent.append(time.monotonic())
    for pid in [int(p.stem) for p in folder.glob("*.started")] + [os.getpid()]:
        os.kill(pid, signal.SIGINT)


def test_an_interrupted_executor_stops_its_workers_at_once(tmp_path: Path) -> None:
    """The workers ignore SIGINT; the driver notices it while it waits for long tasks (not when
    they end) and stops them, and each task unwinds (its cleanup runs) before its worker exits."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")

    def handler(signum: int, frame: object) -> None:
        raise _Interrupt

    sent: list[float] = []
    previous = signal.signal(signal.SIGINT, handler)
    try:
        with pytest.raises(_Interrupt), LocalExecutor(2) as executor:
            assert all(executor.map_ordered(_ignores_sigint, [0, 1], desc="t", progress=False))
            results = executor.map_ordered(_held, [str(tmp_path)] * 2, desc="t", progress=False)
            threading.Thread(
                target=_interrupt_when_started, args=(tmp_path, sent), daemon=True
            ).start()
            try:
                next(iter(results))
            finally:
                seen = time.monotonic()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sent and seen - sent[0] < 10, "the interrupt was only seen when a task ended"
    assert len(list(tmp_path.glob("*.unwound"))) == 2, "a task did not unwind"
