"""A fake Hugging Face Hub on loopback, for tests: the parts of the API corpuskit uses.

- ``GET /api/datasets/{repo}/revision/{rev}``: ``{"id", "sha"}`` (a branch resolves to its
  current commit; ``move(repo, branch, files)`` makes a new commit and moves the branch);
- ``GET /api/datasets/{repo}/tree/{rev}[/{path}]?recursive=...``: the files (with LFS sha256
  and size) and folders under a path, as the Hub lists them;
- ``GET``/``HEAD /datasets/{repo}/resolve/{rev}/{path}``: the bytes, honouring ``Range:
  bytes=a-b`` (206) so that range reads can be measured (``served`` counts body bytes per
  path);
- gated repos answer 401 without a token and 403 for a token that has not accepted the terms;
- ``faults[path]``: statuses (e.g. 503) answered to the next requests for that file.

Every request is recorded in ``requests`` (method, path, range header), so tests can assert
which commit was asked for, or that no request was made at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from tests.sources.test_fetch_helpers import ThreadedServer

WORDS = ["corpus", "token", "model", "train", "slice", "budget", "parquet", "river", "stone",
         "cloud", "green", "window", "seven", "paper", "light", "music", "tree"]


def make_texts(n: int, seed: int, words: int = 60) -> list[str]:
    """``n`` deterministic documents of about ``words`` words (lengths vary)."""
    rng = random.Random(seed)
    return [
        f"doc {seed}-{i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(words // 2,
                                                                                    words * 2)))
        for i in range(n)
    ]


def make_parquet(texts: list[str], row_group_rows: int) -> bytes:
    """Uncompressed parquet with several row groups (so downloaded bytes track text bytes)."""
    table = pa.table({"text": texts, "n": list(range(len(texts)))})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_rows, compression="none",
                   use_dictionary=False, write_statistics=False)
    return sink.getvalue()


def footer_bytes(data: bytes) -> int:
    """The size of a parquet file's footer (metadata + length + magic)."""
    return int.from_bytes(data[-8:-4], "little") + 8


@dataclass
class Repo:
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    gated: bool = False
    accepted: set[str] = field(default_factory=set)  # tokens whose account accepted the terms


@dataclass
class Request:
    method: str
    path: str
    range: str | None


class FakeHub(ThreadedServer):
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self.served: Counter[str] = Counter()
        self.faults: dict[str, list[int]] = {}  # path in the repo -> statuses to answer first
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                hub._handle(self, body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                hub._handle(self, body=False)

        self._serve(Handler)

    # -- building repos ------------------------------------------------------------------

    def add(self, repo: str, files: dict[str, bytes], *, branch: str = "main",
            gated: bool = False) -> str:
        """A repo with one commit holding ``files`` on ``branch``; returns the commit."""
        self.repos[repo] = Repo(gated=gated)
        return self.move(repo, branch, files)

    def move(self, repo: str, branch: str, files: dict[str, bytes]) -> str:
        """A new commit with ``files``; ``branch`` now points to it."""
        state = self.repos[repo]
        digest = hashlib.sha1(repr(sorted((p, hashlib.sha256(b).hexdigest())
                                          for p, b in files.items())).encode())
        commit = digest.hexdigest()
        state.commits[commit] = dict(files)
        state.branches[branch] = commit
        return commit


    def asked(self, fragment: str) -> list[Request]:
        return [r for r in self.requests if fragment in r.path]

    # -- serving -------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        with self._lock:
            self.requests.append(Request(h.command, h.path, h.headers.get("Range")))
        path = unquote(urlparse(h.path).path)
        for prefix, route in (("/api/datasets/", self._api), ("/datasets/", self._resolve)):
            if path.startswith(prefix):
                return route(h, path[len(prefix):], body)
        return _reply(h, 404, b"not found", body)

    def _repo(self, h: BaseHTTPRequestHandler, rest: str, body: bool) -> tuple[Repo, str, str]:
        """(repo, its name, the rest of the path) or a reply already sent (raises)."""
        parts = rest.split("/")
        name = "/".join(parts[:2])
        repo = self.repos.get(name)
        if repo is None:
            _reply(h, 401, b'{"error": "Repository not found"}', body, code="RepoNotFound")
            raise _Answered
        if repo.gated:
            auth = h.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                _reply(h, 401, b'{"error": "Access to this dataset is restricted"}', body,
                       code="GatedRepo")
                raise _Answered
            if auth[7:] not in repo.accepted:
                _reply(h, 403, b'{"error": "You must accept the terms"}', body, code="GatedRepo")
                raise _Answered
        return repo, name, "/".join(parts[2:])

    def _commit(self, repo: Repo, rev: str) -> str | None:
        rev = repo.branches.get(rev, rev)
        return rev if rev in repo.commits else None

    def _api(self, h: BaseHTTPRequestHandler, rest: str, body: bool) -> None:
        try:
            repo, name, tail = self._repo(h, rest, body)
        except _Answered:
            return None
        kind, _, rest = tail.partition("/")
        rev, _, sub = rest.partition("/")
        commit = self._commit(repo, rev)
        if commit is None:
            return _reply(h, 404, b'{"error": "Revision not found"}', body,
                          code="RevisionNotFound")
        if kind == "revision":
            return _json(h, {"id": name, "sha": commit, "private": False}, body)
        if kind != "tree":
            return _reply(h, 404, b"{}", body)
        files = repo.commits[commit]
        under = [p for p in sorted(files) if not sub or p.startswith(sub.rstrip("/") + "/")]
        if sub and not under:
            return _reply(h, 404, b'{"error": "Entry not found"}', body, code="EntryNotFound")
        listing: list[dict[str, object]] = []
        folders = sorted({p.rsplit("/", 1)[0] for p in under if "/" in p} - {sub})
        listing += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in folders]
        for p in under:
            data = files[p]
            listing.append({
                "type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data),
                "path": p,
                "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                        "pointerSize": 134},
            })
        return _json(h, listing, body)

    def _resolve(self, h: BaseHTTPRequestHandler, rest: str, body: bool) -> None:
        try:
            repo, _, tail = self._repo(h, rest, body)
        except _Answered:
            return None
        kind, _, rest = tail.partition("/")
        rev, _, path = rest.partition("/")
        commit = self._commit(repo, rev)
        data = repo.commits.get(commit or "", {}).get(path)
        if kind != "resolve" or data is None:
            return _reply(h, 404, b"Entry not found", body, code="EntryNotFound")
        with self._lock:
            fault = self.faults[path].pop(0) if self.faults.get(path) else None
        if fault:
            return _reply(h, fault, b"busy", body)
        start, end, status = 0, len(data) - 1, 200
        wanted = h.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            start = int(first)
            end = min(int(last), len(data) - 1) if last else len(data) - 1
            if start >= len(data):
                return _reply(h, 416, b"", body)
            status = 206
        chunk = data[start : end + 1]
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(chunk)))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        h.end_headers()
        if body:
            with self._lock:
                self.served[path] += len(chunk)
            h.wfile.write(chunk)
        return None


class _Answered(Exception):
    """The request was answered (refused) while finding its repo."""


def _reply(h: BaseHTTPRequestHandler, status: int, data: bytes, body: bool,
           code: str | None = None) -> None:
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    if code:
        h.send_header("X-Error-Code", code)
    h.end_headers()
    if body:
        h.wfile.write(data)


def _json(h: BaseHTTPRequestHandler, value: object, body: bool) -> None:
    _reply(h, 200, json.dumps(value).encode(), body)
