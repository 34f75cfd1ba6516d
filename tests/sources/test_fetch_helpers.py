"""A loopback HTTP server for the fetch tests (no test functions here).

Routes map a path to bytes; each route may carry a queue of faults that the next requests
suffer (``"503"``, ``"500"``, ``"truncate"`` — send the full Content-Length but half the body,
then close — or ``"reset"``). Range requests are honoured. Every request's path and headers are
recorded, so tests can check authentication and resumption. The server listens on 127.0.0.1
only and stops when its context ends.
"""

from __future__ import annotations

import io
import tarfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-response are what these tests are about


@dataclass
class Route:
    body: bytes = b""
    faults: list[str] = field(default_factory=list)
    status: int = 200
    content_type: str = "application/octet-stream"
    check: Callable[[dict[str, str]], int | None] | None = None  # headers -> error status
    redirect: str | None = None


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


_S = TypeVar("_S", bound="ThreadedServer")


class ThreadedServer:
    """A loopback HTTP server on a free port, served from a daemon thread while the ``with``
    block runs: the lifecycle shared by the test servers (``LoopbackServer``, the fake Hub)."""

    httpd: ThreadingHTTPServer
    thread: threading.Thread

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self: _S) -> _S:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class LoopbackServer(ThreadedServer):
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server.seen.append(Seen(self.path, dict(self.headers.items())))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    return self._plain(404, b"not found")
                if route.check is not None:
                    refused = route.check(dict(self.headers.items()))
                    if refused:
                        return self._plain(refused, b"refused")
                if route.redirect:
                    self.send_response(302)
                    self.send_header("Location", route.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                fault = route.faults.pop(0) if route.faults else None
                if fault in ("500", "503"):
                    return self._plain(int(fault), b"busy")
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                body, status, start = route.body, route.status, 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and status == 200:
                    start = int(rng[6:].split("-")[0])
                    if start >= len(body):
                        return self._plain(416, b"")
                    status = 206
                chunk = body[start:]
                self.send_response(status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(chunk)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if fault == "truncate":
                    self.wfile.write(chunk[: len(chunk) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                self.wfile.write(chunk)
                return None

            def _plain(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def wikitext_parquet(path: Path) -> bytes:
    """The Hub's layout from an original file: one row per line, blank lines as ""."""
    rows = []
    with path.open("rb") as f:
        for raw in f:
            line = raw.decode("utf-8")
            rows.append("" if not line.strip() else line)
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": rows}), buf)
    return buf.getvalue()
