"""Fuzz the downloader with a loopback server that misbehaves: a seeded table of scenarios.

Each scenario scripts the answers of successive connections: drops mid-body, stalls before or
during the body, a Content-Length that says more (or, when a size or sha256 will catch it,
less) than is sent, Range ignored, If-Range ignored, a 206 at the wrong offset, resets, 503s,
and the file changing from one version to another between requests. The validators the server
sends vary too (strong ETag, Last-Modified, weak ETag only, none), and so does what the catalog
knows (a sha256, only the size, nothing).

Whatever happens, a download ends within a few seconds, after a bounded number of requests,
either with the bytes of exactly one version (the catalog's, when it names a sha256) or with a
one-line ``CorpuskitError`` and nothing under the final name: never two versions stitched,
never a truncated file accepted. When the faults are few enough for the retry budget and the
catalog is right, it must succeed.

Not fuzzed, because no client can tell: a server that declares a shorter Content-Length than
its file, when the catalog gives neither size nor sha256 (the server's word is all there is).
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpuskit.errors import CorpuskitError
from corpuskit.sources.http import Downloaded, download
from tests.conftest import quick_http
from tests.reliability.test_reliability_network import RawServer
from tests.reliability.test_trust_http import Version, request_headers

_rng = random.Random(20241001)
SIZE = 200_000
BODIES = (_rng.randbytes(SIZE), _rng.randbytes(SIZE))
RETRIES = 6
TIMEOUT = 0.3  # a stall sleeps longer than this
STALL = 0.7
SEED = 14
SCENARIOS = 48
# Faults that each cost at most two attempts (a 416 after a full body is one more).
FAULTS = (
    "drop", "stall", "stall_mid", "long_length", "short_length", "ignore_range_drop",
    "ignore_if_range", "wrong_offset", "reset", "503",
)


@dataclass(frozen=True)
class Scenario:
    faults: tuple[str, ...]  # the answers of the first connections
    tail: str  # the answer of every later connection: "ok" or a fault for ever
    change_at: int  # connections from this one on serve the second version
    validators: str  # etag | modified | weak | none
    knows: str  # what the catalog gives: sha | size | none
    wrong_sha: bool  # the catalog's sha256 is of the version the server does not end on

    @property
    def final(self) -> int:
        return 1 if self.change_at <= len(self.faults) else 0

    def __str__(self) -> str:
        return (
            f"{'+'.join(self.faults) or 'clean'}>{self.tail} change@{self.change_at} "
            f"{self.validators} knows={self.knows}{' wrong-sha' if self.wrong_sha else ''}"
        )


def _scenarios() -> list[Scenario]:
    rng = random.Random(SEED)
    out = []
    for _ in range(SCENARIOS):
        knows = rng.choice(["sha", "size", "none"])
        pool = [f for f in FAULTS if knows != "none" or f != "short_length"]
        faults = tuple(rng.choice(pool) for _ in range(rng.randint(0, 3)))
        tail = "ok" if rng.random() < 0.85 else rng.choice(["drop", "ignore_range_drop"])
        out.append(
            Scenario(
                faults=faults,
                tail=tail,
                change_at=rng.randint(0, len(faults) + 2),
                validators=rng.choice(["etag", "modified", "weak", "none"]),
                knows=knows,
                wrong_sha=knows == "sha" and rng.random() < 0.15,
            )
        )
    return out


def _version(index: int, validators: str) -> Version:
    body = BODIES[index]
    tag = f'"v{index}-{hashlib.sha256(body).hexdigest()[:8]}"'
    if validators == "etag":
        return Version(body, etag=tag)
    if validators == "weak":
        return Version(body, etag="W/" + tag)
    if validators == "modified":
        return Version(body, modified=f"Tue, 0{index + 1} Oct 2024 10:00:00 GMT")
    return Version(body)


def _answer(conn: socket.socket, request: bytes, version: Version, fault: str) -> None:
    """One HTTP answer of ``version`` with ``fault`` (or none: ``ok``)."""
    if fault == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return
    if fault == "503":
        conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return
    if fault == "stall":
        time.sleep(STALL)
        return
    headers = request_headers(request)
    body = version.body
    start = 0
    ranged = headers.get("range", "").startswith("bytes=")
    if ranged and fault != "ignore_range_drop":
        start = int(headers["range"][6:].split("-")[0])
        if_range = headers.get("if-range")
        stale = if_range and if_range not in (version.etag, version.modified)
        if stale and fault != "ignore_if_range":
            start = 0
    if start >= len(body):
        conn.sendall(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n")
        return
    if fault == "ignore_if_range" and not ranged:
        fault = "drop"  # nothing to ignore: still a fault, so that every scripted step is one
    # A 206 whose Content-Range does not start where the client asked (0 when it did not ask).
    shown = abs(start - 1000) if fault == "wrong_offset" else start
    payload = body[start:]
    length = len(payload) + {"long_length": 5000, "short_length": -5000}.get(fault, 0)
    partial = start or fault == "wrong_offset"
    head = [f"HTTP/1.1 {'206 Partial Content' if partial else '200 OK'}",
            f"Content-Length: {length}", "Connection: close"]
    if partial:
        head.append(f"Content-Range: bytes {shown}-{len(body) - 1}/{len(body)}")
    if version.etag:
        head.append(f"ETag: {version.etag}")
    if version.modified:
        head.append(f"Last-Modified: {version.modified}")
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    if fault in ("drop", "ignore_range_drop"):
        conn.sendall(payload[: random.Random(len(request)).randint(1, len(payload) - 1)])
    elif fault == "stall_mid":
        conn.sendall(payload[: len(payload) // 3])
        time.sleep(STALL)
    else:
        conn.sendall(payload)


def _script(s: Scenario) -> list[Callable[[socket.socket, bytes], None]]:
    def one(i: int, fault: str) -> Callable[[socket.socket, bytes], None]:
        version = _version(1 if i >= s.change_at else 0, s.validators)
        return lambda conn, request: _answer(conn, request, version, fault)

    steps = [one(i, f) for i, f in enumerate(s.faults)]
    return [*steps, one(len(s.faults), s.tail)]


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    """One loopback server for the table; each scenario swaps in its own script."""
    with RawServer([lambda conn, request: None]) as srv:
        yield srv


@pytest.mark.parametrize("scenario", _scenarios(), ids=str)
def test_a_misbehaving_server_never_yields_wrong_bytes(
    scenario: Scenario, server: RawServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick_http(monkeypatch, retries=RETRIES, timeout=TIMEOUT)
    monkeypatch.setenv("CORPUSKIT_HTTP_BACKOFF", "0.001")
    server.script, server.accepted, server.requests = _script(scenario), 0, []
    expected = BODIES[1 - scenario.final if scenario.wrong_sha else scenario.final]
    sha = hashlib.sha256(expected).hexdigest() if scenario.knows == "sha" else None
    size = SIZE if scenario.knows in ("sha", "size") else None
    dest = tmp_path / "f.bin"
    outcome: list[Downloaded | BaseException] = []

    def run() -> None:
        try:
            outcome.append(download([server.url], dest, sha256=sha, size=size, progress=False))
        except BaseException as exc:  # noqa: BLE001 - judged below, in the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=15)
    assert not worker.is_alive(), f"{scenario}: the download hangs"
    result = outcome[0]
    assert len(server.requests) <= 2 * (RETRIES + 1), f"{scenario}: unbounded requests"
    if isinstance(result, Downloaded):
        data = dest.read_bytes()
        assert data in BODIES, f"{scenario}: accepted bytes of no single version"
        assert sha is None or data == expected, f"{scenario}: not the catalog's version"
        assert result.sha256 == hashlib.sha256(data).hexdigest()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"], "debris left"
    else:
        assert isinstance(result, CorpuskitError), f"{scenario}: {result!r}"
        assert "\n" not in str(result) and not dest.exists()
    if _must_succeed(scenario):
        assert isinstance(result, Downloaded), f"{scenario}: gave up: {result}"
        assert dest.read_bytes() == BODIES[scenario.final]


def _must_succeed(s: Scenario) -> bool:
    """Few enough faults for the retry budget, a server that ends well, a catalog that is right.

    A Content-Length shorter than the file ends in a checksum error, rightly; ``knows=size``
    with a change of version cannot tell two versions of one size apart, so it restarts and
    wins as well.
    """
    return (
        s.tail == "ok"
        and not s.wrong_sha
        and "short_length" not in s.faults
        and 2 * len(s.faults) <= RETRIES
    )
