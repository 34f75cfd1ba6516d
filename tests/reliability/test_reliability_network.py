"""Network faults the loopback server of ``test_fetch_helpers`` cannot play: a server that
stalls, lies about Content-Length, speaks garbage, resets, loops redirects or answers 429.

Covered elsewhere (``test_fetch_http.py``): truncated bodies resumed with Range, 5xx bursts,
bounded retries, checksum and size mismatches, a dead port, 404 fall-through to mirrors, disk
full. Credentials dropped on a redirect to another host: ``test_fetch_kaggle.py``. Each server
here is a raw socket on 127.0.0.1 that plays one scripted behaviour per connection.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from corpuskit.sources.http import ChecksumMismatch, NetworkError, download
from tests.conftest import quick_http

BODY = bytes(range(256)) * 1024  # 256 KiB
SHA = hashlib.sha256(BODY).hexdigest()

Behaviour = Callable[[socket.socket, bytes], None]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_http(monkeypatch, retries=2, timeout=0.5)


class RawServer:
    """Accepts connections on loopback; the n-th connection gets ``script[n]`` (the last one
    repeats). Each behaviour receives the socket and the request bytes."""

    def __init__(self, script: list[Behaviour]):
        self.script = script
        self.requests: list[bytes] = []
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/f.bin"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            behaviour = self.script[min(self.accepted, len(self.script) - 1)]
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn, behaviour), daemon=True).start()

    def _handle(self, conn: socket.socket, behaviour: Behaviour) -> None:
        """One connection per thread, so a stalled one does not hold up the retry."""
        with conn:
            conn.settimeout(5)
            try:
                request = conn.recv(65536)
                self.requests.append(request)
                behaviour(conn, request)
            except OSError:
                pass

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def _range_start(request: bytes) -> int:
    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"range: bytes="):
            return int(line.split(b"=")[1].split(b"-")[0])
    return 0


def ok(conn: socket.socket, request: bytes) -> None:
    start = _range_start(request)
    status = b"206 Partial Content" if start else b"200 OK"
    body = BODY[start:]
    head = f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    if start:
        head += f"Content-Range: bytes {start}-{len(BODY) - 1}/{len(BODY)}\r\n"
    conn.sendall(b"HTTP/1.1 " + status + b"\r\n" + head.encode() + b"\r\n" + body)


def stall(conn: socket.socket, request: bytes) -> None:
    time.sleep(2)  # longer than the 0.5 s timeout; says nothing


def stall_mid_body(conn: socket.socket, request: bytes) -> None:
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode())
    conn.sendall(BODY[:100_000])  # more than one 64 KiB chunk arrives, then silence
    time.sleep(2)


def long_content_length(conn: socket.socket, request: bytes) -> None:
    """Claims more bytes than it sends, then closes: a short body."""
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY) + 5000}\r\n\r\n".encode())
    conn.sendall(BODY[:50_000])


def short_content_length(conn: socket.socket, request: bytes) -> None:
    """Claims fewer bytes than the file has (a broken proxy): the client stops early."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
    conn.sendall(BODY)


def reset(conn: socket.socket, request: bytes) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def garbage(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"\x00\x01 this is not HTTP at all\r\n\r\n")


def too_many(conn: socket.socket, request: bytes) -> None:
    conn.sendall(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )


def redirect_loop(conn: socket.socket, request: bytes) -> None:
    conn.sendall(
        b"HTTP/1.1 302 Found\r\nLocation: /f.bin\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )


def _clean(tmp_path: Path) -> None:
    """Nothing wrong is cached under the final name."""
    assert not (tmp_path / "f.bin").exists()


def test_connect_or_read_timeouts_are_retried_then_succeed(tmp_path: Path) -> None:
    with RawServer([stall, stall_mid_body, ok]) as srv:
        got = download([srv.url], tmp_path / "f.bin", sha256=SHA, progress=False)
    assert got.sha256 == SHA and (tmp_path / "f.bin").read_bytes() == BODY
    assert _range_start(srv.requests[-1]) >= 65536  # resumed after what had arrived


def test_endless_timeouts_give_a_clear_bounded_error(tmp_path: Path) -> None:
    started = time.monotonic()
    with RawServer([stall]) as srv, pytest.raises(NetworkError) as err:
        download([srv.url], tmp_path / "f.bin", sha256=SHA, progress=False)
    assert "timed out after 3 attempts" in str(err.value) and "\n" not in str(err.value)
    assert len(srv.requests) == 3 and time.monotonic() - started < 15
    _clean(tmp_path)


def test_wrong_content_length(tmp_path: Path) -> None:
    # Too long: a short body, resumed with Range, and the result verified.
    with RawServer([long_content_length, ok]) as srv:
        got = download([srv.url], tmp_path / "f.bin", sha256=SHA, progress=False)
    assert got.sha256 == SHA
    (tmp_path / "f.bin").unlink()
    # Too short: the client believes it; the catalog's size and sha256 catch it, nothing cached.
    with RawServer([short_content_length]) as srv, pytest.raises(ChecksumMismatch):
        download([srv.url], tmp_path / "f.bin", sha256=SHA, size=len(BODY), progress=False)
    _clean(tmp_path)
    assert not (tmp_path / "f.bin.part").exists()


def test_resets_and_garbage_are_retried(tmp_path: Path) -> None:
    with RawServer([reset, garbage, ok]) as srv:
        got = download([srv.url], tmp_path / "f.bin", sha256=SHA, progress=False)
    assert got.sha256 == SHA
    (tmp_path / "f.bin").unlink()
    with RawServer([reset]) as srv, pytest.raises(NetworkError) as err:
        download([srv.url], tmp_path / "f.bin", progress=False)
    assert "after 3 attempts" in str(err.value) and "\n" not in str(err.value)
    _clean(tmp_path)


def test_429_is_retried_and_a_redirect_loop_is_one_error(tmp_path: Path) -> None:
    with RawServer([too_many, too_many, ok]) as srv:
        assert download([srv.url], tmp_path / "f.bin", sha256=SHA, progress=False).sha256 == SHA
    (tmp_path / "f.bin").unlink()
    with RawServer([redirect_loop]) as srv, pytest.raises(NetworkError) as err:
        download([srv.url], tmp_path / "f.bin", progress=False)
    assert "TooManyRedirects" in str(err.value) and "\n" not in str(err.value)
    _clean(tmp_path)


def test_redirect_to_another_host_drops_credentials(tmp_path: Path) -> None:
    """A host that redirects elsewhere never sees the token sent to the first host."""
    with RawServer([ok]) as storage:

        def bounce(conn: socket.socket, request: bytes) -> None:
            location = storage.url.replace("127.0.0.1", "localhost")
            conn.sendall(
                f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )

        with RawServer([bounce]) as api:
            download([api.url], tmp_path / "f.bin", sha256=SHA, progress=False,
                     headers={"Authorization": "Bearer PLANTED_redirect_secret"})
    assert b"PLANTED_redirect_secret" in api.requests[0]
    assert all(b"PLANTED_redirect_secret" not in r for r in storage.requests)
