"""Downloads that must never hand back the wrong bytes, and faults that must end cleanly.

Same-named files and changed URLs get their own cache entries, a changed archive its own
unpacked folder; a resume sends ``If-Range`` and never stitches two versions; a server that
keeps dropping, a trickle, a host that does not resolve and bad settings all end in one line;
``fetch --force`` really asks the server again. Servers are loopback only (the scripted
``RawServer`` of ``test_reliability_network`` and the routed ``LoopbackServer``).
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents
from corpuskit.sources.http import (
    ChecksumMismatch,
    HostNotFound,
    NetworkError,
    download,
    unpacked,
)
from tests.conftest import quick_http, run_main
from tests.reliability.test_reliability_network import RawServer, reset
from tests.sources.test_fetch_helpers import LoopbackServer, Route, zip_bytes

V1 = bytes(range(256)) * 1024  # 256 KiB
V2 = bytes(reversed(range(256))) * 1024  # same size, other bytes: a changed upstream file
CUT = 70_000  # what a dropping server sends before it closes


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_http(monkeypatch, retries=3, timeout=2)


# -- a scripted server that knows versions, validators and If-Range ----------------------------


@dataclass
class Version:
    body: bytes
    etag: str | None = None
    modified: str | None = None


def request_headers(request: bytes) -> dict[str, str]:
    lines = request.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines) if v}


def serve(
    version: Version,
    *,
    cut: int | None = None,
    honour_range: bool = True,
    honour_if_range: bool = True,
    length_lie: int = 0,
    tag: str | None = None,
) -> Callable[[socket.socket, bytes], None]:
    """One answer as an HTTP/1.1 server would give it, with faults: ``cut`` closes after that
    many body bytes, ``length_lie`` adds to Content-Length, ``tag`` overrides the ETag sent."""

    def behaviour(conn: socket.socket, request: bytes) -> None:
        headers = request_headers(request)
        start = 0
        if honour_range and headers.get("range", "").startswith("bytes="):
            start = int(headers["range"][6:].split("-")[0])
            if_range = headers.get("if-range")
            if honour_if_range and if_range and if_range not in (version.etag, version.modified):
                start = 0  # RFC 9110: a validator that does not match => the whole file
        body = version.body[start:]
        head = [
            f"HTTP/1.1 {'206 Partial Content' if start else '200 OK'}",
            f"Content-Length: {len(body) + length_lie}",
            "Connection: close",
        ]
        if start:
            head.append(f"Content-Range: bytes {start}-{len(version.body) - 1}/{len(version.body)}")
        if tag or version.etag:
            head.append(f"ETag: {tag or version.etag}")
        if version.modified:
            head.append(f"Last-Modified: {version.modified}")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        conn.sendall(body[:cut] if cut is not None else body)

    return behaviour


def header_of(request: bytes, name: str) -> str | None:
    return request_headers(request).get(name.lower())


def resumed_at(request: bytes) -> int:
    """Where a request's Range starts: after what arrived (whole 64 KiB chunks), else 0."""
    value = header_of(request, "Range") or "bytes=0-"
    return int(value.removeprefix("bytes=").split("-")[0])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- 1. same-named files, changed URLs ---------------------------------------------------------


def _http_catalog(tmp_path: Path, files: str, *, reader: str = "jsonl", extra: str = "") -> Path:
    cat = tmp_path / "trust.yaml"
    cat.write_text(
        f"""corpora:
  - name: trust
    title: Trust test corpus
    description: Files on a loopback server.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    splits: [train, validation, test]
    source:
      type: http
      allow_http: true
      files:
{files}{extra}
    reader: {reader}
""",
        encoding="utf-8",
    )
    return cat


def _jsonl(*texts: str) -> bytes:
    return b"".join(json.dumps({"text": t}).encode() + b"\n" for t in texts)


def _texts(result: api.FetchResult | object, split: str) -> list[str]:
    path = result.path  # type: ignore[attr-defined]
    return [d["text"] for d in iter_documents(path) if d["split"] == split]


def test_same_named_files_are_refused_in_one_line(tmp_path: Path, data_dir: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/a/data.jsonl"] = Route(_jsonl("train one"))
        srv.routes["/b/data.jsonl"] = Route(_jsonl("validation one"))
        cat = _http_catalog(
            tmp_path,
            f"        - {{url: {srv.url}/a/data.jsonl, split: train}}\n"
            f"        - {{url: {srv.url}/b/data.jsonl, split: validation}}\n",
        )
        with pytest.raises(CorpuskitError) as err:
            api.fetch("trust", catalog=[cat], progress=False)
    message = str(err.value)
    assert "both named 'data.jsonl'" in message and "path:" in message and "\n" not in message
    assert srv.seen == []  # refused before any download


def test_same_named_files_with_paths_get_their_own_cache_lock_and_mirror_path(
    tmp_path: Path, data_dir: Path
) -> None:
    train, valid = _jsonl("train one", "train two"), _jsonl("validation one")
    with LoopbackServer() as srv:
        # Only the mirror has them, under their full names: a mirror path made of the last URL
        # component would give both files the same address.
        srv.routes["/m/train/data.jsonl"] = Route(train)
        srv.routes["/m/validation/data.jsonl"] = Route(valid)
        cat = _http_catalog(
            tmp_path,
            f"        - {{url: {srv.url}/a/data.jsonl, path: train/data.jsonl, split: train}}\n"
            f"        - {{url: {srv.url}/b/data.jsonl, path: validation/data.jsonl, "
            "split: validation}\n",
        )
        result = api.fetch("trust", catalog=[cat], progress=False, mirror=srv.url + "/m/")
    assert _texts(result, "train") == ["train one", "train two"]
    assert _texts(result, "validation") == ["validation one"]
    files = json.loads((data_dir / "corpuskit-lock.json").read_text())["corpora"]["trust"]["files"]
    assert files["train/data.jsonl"]["sha256"] == sha(train)
    assert files["validation/data.jsonl"]["sha256"] == sha(valid)


def test_a_changed_url_is_downloaded_again_not_served_from_the_cache(
    tmp_path: Path, data_dir: Path
) -> None:
    with LoopbackServer() as srv:
        srv.routes["/v1/data.jsonl"] = Route(_jsonl("old text"))
        srv.routes["/v2/data.jsonl"] = Route(_jsonl("new text"))
        for version, want in (("v1", "old text"), ("v2", "new text")):
            cat = _http_catalog(
                tmp_path, f"        - {{url: {srv.url}/{version}/data.jsonl, split: train}}\n"
            )
            result = api.fetch("trust", catalog=[cat], progress=False)
            assert _texts(result, "train") == [want]
    assert [s.path for s in srv.seen] == ["/v1/data.jsonl", "/v2/data.jsonl"]
    files = json.loads((data_dir / "corpuskit-lock.json").read_text())["corpora"]["trust"]["files"]
    assert files["data.jsonl"]["sha256"] == sha(_jsonl("new text"))
    assert files["data.jsonl"]["url"].endswith("/v2/data.jsonl")


# -- 2. a changed archive ----------------------------------------------------------------------


def test_a_changed_archive_under_the_same_name_serves_its_new_contents(
    tmp_path: Path, data_dir: Path
) -> None:
    old = zip_bytes({"data/train.jsonl": _jsonl("old archive")})
    new = zip_bytes({"data/train.jsonl": _jsonl("new archive")})
    with LoopbackServer() as srv:
        for body, want in ((old, "old archive"), (new, "new archive")):
            srv.routes["/corpus.zip"] = Route(body)  # same URL, same name, new bytes
            cat = _http_catalog(
                tmp_path,
                f"        - {{url: {srv.url}/corpus.zip, sha256: {sha(body)}}}\n",
                extra='      globs: ["data/*.jsonl"]\n',
            )
            result = api.fetch("trust", catalog=[cat], progress=False)
            assert _texts(result, "train") == [want]
    folders = sorted(p.name for p in (data_dir / "downloads" / "trust" / "unpacked").iterdir())
    assert folders == sorted(f"corpus.zip-{sha(b)[:16]}" for b in (old, new))


def test_unpack_folders_are_keyed_by_archive_sha256_and_force_unpacks_again(
    tmp_path: Path,
) -> None:
    """The helper every unpack call site (http, kaggle, github) goes through."""
    a, b = tmp_path / "a" / "x.zip", tmp_path / "b" / "x.zip"
    for path, text in ((a, b"first"), (b, b"second")):
        path.parent.mkdir()
        path.write_bytes(zip_bytes({"m.txt": text}))
    where_a, _ = unpacked(a, sha(a.read_bytes()), tmp_path, "x.zip", False)
    where_b, _ = unpacked(b, sha(b.read_bytes()), tmp_path, "x.zip", False)
    assert where_a != where_b
    assert (where_a / "m.txt").read_bytes() == b"first"
    assert (where_b / "m.txt").read_bytes() == b"second"
    (where_a / "m.txt").write_bytes(b"FIRST")  # damaged in place, same size
    again, _ = unpacked(a, sha(a.read_bytes()), tmp_path, "x.zip", True)
    assert again == where_a and (where_a / "m.txt").read_bytes() == b"first"


# -- 3. resume without stitching ---------------------------------------------------------------


def test_a_resume_sends_if_range_and_a_changed_file_restarts_whole(tmp_path: Path) -> None:
    script = [serve(Version(V1, etag='"v1"'), cut=CUT), serve(Version(V2, etag='"v2"'))]
    with RawServer(script) as srv:
        got = download([srv.url], tmp_path / "f.bin", progress=False)  # no sha256 to lean on
    assert (tmp_path / "f.bin").read_bytes() == V2 and got.sha256 == sha(V2)
    assert 0 < resumed_at(srv.requests[1]) <= CUT
    assert header_of(srv.requests[1], "If-Range") == '"v1"'


def test_a_resume_across_processes_continues_the_same_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", "0")
    stamp = "Tue, 01 Oct 2024 10:00:00 GMT"
    version = Version(V1, modified=stamp)
    with RawServer([serve(version, cut=CUT), serve(version)]) as srv:
        with pytest.raises(NetworkError):
            download([srv.url], tmp_path / "f.bin", progress=False)
        assert 0 < (tmp_path / "f.bin.part").stat().st_size <= CUT
        assert stamp in (tmp_path / "f.bin.validator.part").read_text()
        download([srv.url], tmp_path / "f.bin", progress=False)  # the next run
    assert header_of(srv.requests[1], "If-Range") == stamp and resumed_at(srv.requests[1]) > 0
    assert (tmp_path / "f.bin").read_bytes() == V1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_without_validator_or_checksum_a_retry_starts_from_zero(tmp_path: Path) -> None:
    script = [serve(Version(V1), cut=CUT), serve(Version(V2))]
    with RawServer(script) as srv:
        download([srv.url], tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == V2  # one whole version, never V1[:CUT] + V2
    assert header_of(srv.requests[1], "Range") is None


def test_a_stitched_file_that_fails_its_checksum_is_downloaded_again_whole(
    tmp_path: Path,
) -> None:
    # No validators: resumed on the strength of the sha256, which then catches the stitch.
    script = [serve(Version(V1), cut=CUT), serve(Version(V2)), serve(Version(V2))]
    with RawServer(script) as srv:
        got = download([srv.url], tmp_path / "f.bin", sha256=sha(V2), progress=False)
    assert got.sha256 == sha(V2) and (tmp_path / "f.bin").read_bytes() == V2
    assert 0 < resumed_at(srv.requests[1]) <= CUT
    assert header_of(srv.requests[2], "Range") is None


def test_a_partial_answer_of_another_version_is_refused(tmp_path: Path) -> None:
    # A broken server ignores If-Range and sends the new version's tail: its ETag gives it away.
    script = [
        serve(Version(V1, etag='"v1"'), cut=CUT),
        serve(Version(V2, etag='"v2"'), honour_if_range=False),
        serve(Version(V2, etag='"v2"')),
    ]
    with RawServer(script) as srv:
        download([srv.url], tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == V2


# -- 4. faults that must end cleanly -----------------------------------------------------------


def test_a_server_that_drops_and_ignores_range_gives_up_after_bounded_attempts(
    tmp_path: Path,
) -> None:
    """Every attempt makes progress (70 KB), none finishes: progress must not reset the count.
    (Scripted to end in resets after 20 drops, so that a loop without bound still ends.)"""
    script = [serve(Version(V1), cut=CUT, honour_range=False)] * 20 + [reset]
    with RawServer(script) as srv, pytest.raises(NetworkError) as err:
        download([srv.url], tmp_path / "f.bin", sha256=sha(V1), progress=False)
    assert "truncated body after 4 attempts" in str(err.value) and "\n" not in str(err.value)
    assert len(srv.requests) == 4
    assert not (tmp_path / "f.bin").exists()


def trickle(conn: socket.socket, request: bytes) -> None:
    """Never silent long enough for a read timeout, never done: 1 KB every 50 ms."""
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(V1)}\r\n\r\n".encode())
    for i in range(0, len(V1), 1024):
        conn.sendall(V1[i : i + 1024])
        time.sleep(0.05)


def test_total_time_per_file_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORPUSKIT_HTTP_MAX_TIME", "1")
    started = time.monotonic()
    with RawServer([trickle]) as srv, pytest.raises(NetworkError) as err:
        download([srv.url], tmp_path / "f.bin", progress=False)
    assert time.monotonic() - started < 4
    assert "CORPUSKIT_HTTP_MAX_TIME=1 s are spent" in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "f.bin").exists()


def test_a_host_that_does_not_resolve_fails_fast_with_the_offline_hint(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``.invalid`` never resolves (RFC 6761): no traffic leaves the machine. With the backoff
    of a real run, retrying DNS failures on three URLs would take tens of seconds."""
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", "5")
    monkeypatch.setenv("CORPUSKIT_HTTP_BACKOFF", "0.2")
    urls = [
        "http://corpuskit-nonexistent.invalid/data.zip",
        "https://corpuskit-nonexistent.invalid/mirror/data.zip",
        "http://corpuskit-other-nonexistent.invalid/data.zip",
    ]
    started = time.monotonic()
    with pytest.raises(HostNotFound) as err:
        download(urls, tmp_path / "data.zip", progress=False)
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert "host corpuskit-nonexistent.invalid not found" in message and "\n" not in message
    assert "--mirror" in message and "CORPUSKIT_OFFLINE=1" in message
    assert not (tmp_path / "data.zip").exists()
    # The same through the command line: one line, no traceback, quickly.
    cat = _http_catalog(
        tmp_path, "        - {url: 'https://corpuskit-nonexistent.invalid/data.jsonl'}\n"
    )
    started = time.monotonic()
    code, _, err_text = run_main(capsys, "--catalog", str(cat), "fetch", "trust")
    assert code == 1 and time.monotonic() - started < 5
    assert err_text.count("\n") == 1 and "Traceback" not in err_text
    assert "CORPUSKIT_OFFLINE=1" in err_text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CORPUSKIT_HTTP_TIMEOUT", "0"),
        ("CORPUSKIT_HTTP_TIMEOUT", "-1"),
        ("CORPUSKIT_HTTP_TIMEOUT", "soon"),
        ("CORPUSKIT_HTTP_TIMEOUT", "nan"),
        ("CORPUSKIT_HTTP_RETRIES", "-1"),
        ("CORPUSKIT_HTTP_RETRIES", "2.5"),
        ("CORPUSKIT_HTTP_BACKOFF", "-0.5"),
        ("CORPUSKIT_HTTP_MAX_TIME", "0"),
    ],
)
def test_bad_http_settings_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with RawServer([serve(Version(V1))]) as srv, pytest.raises(CorpuskitError) as err:
        download([srv.url], tmp_path / "f.bin", progress=False)
    message = str(err.value)
    assert message.startswith(f"{name}={value!r} is not valid") and "\n" not in message
    assert srv.requests == [] and list(tmp_path.iterdir()) == []


def test_zero_timeout_on_the_command_line_is_one_line(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CORPUSKIT_HTTP_TIMEOUT", "0")
    with LoopbackServer() as srv:
        srv.routes["/data.jsonl"] = Route(_jsonl("text"))
        cat = _http_catalog(tmp_path, f"        - {{url: {srv.url}/data.jsonl}}\n")
        code, _, err_text = run_main(capsys, "--catalog", str(cat), "fetch", "trust")
    assert code == 1 and err_text.count("\n") == 1 and "Traceback" not in err_text
    assert "CORPUSKIT_HTTP_TIMEOUT='0' is not valid" in err_text


# -- 5. fetch --force --------------------------------------------------------------------------


def test_fetch_force_downloads_again_and_keeps_the_old_file_when_that_fails(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", "1")
    body = zip_bytes({"data/train.jsonl": _jsonl("one", "two")})
    with LoopbackServer() as srv:
        srv.routes["/corpus.zip"] = Route(body)
        cat = _http_catalog(
            tmp_path, f"        - {{url: {srv.url}/corpus.zip, sha256: {sha(body)}}}\n",
            extra='      globs: ["data/*.jsonl"]\n',
        )
        api.fetch("trust", catalog=[cat], progress=False)
        member = next((data_dir / "downloads" / "trust" / "unpacked").glob("*/data/train.jsonl"))
        member.write_bytes(member.read_bytes().replace(b"one", b"ONE"))  # damaged, same size
        code, _, err_text = run_main(capsys, "--catalog", str(cat), "fetch", "trust", "--force")
        assert code == 0, err_text
        assert [s.path for s in srv.seen] == ["/corpus.zip", "/corpus.zip"]
        result = api.fetch("trust", catalog=[cat], progress=False)
        assert result.skipped and _texts(result, "train") == ["one", "two"]
        # The server now fails: a forced fetch is one line and the cached file stays.
        srv.routes["/corpus.zip"] = Route(body, faults=["503"] * 10)
        cached = next((data_dir / "downloads" / "trust" / "files").glob("*/corpus.zip"))
        code, _, err_text = run_main(capsys, "--catalog", str(cat), "fetch", "trust", "--force")
    assert code == 1 and "HTTP 503 after 2 attempts" in err_text and err_text.count("\n") == 1
    assert cached.read_bytes() == body
    assert api.fetch("trust", catalog=[cat], progress=False).skipped


def test_force_discards_a_partial_download(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(V1)
    (tmp_path / "f.bin.part").write_bytes(V2[:CUT])  # would be resumed (sha256 known)
    with RawServer([serve(Version(V1))]) as srv:
        got = download([srv.url], tmp_path / "f.bin", sha256=sha(V1), progress=False, force=True)
    assert not got.cached and header_of(srv.requests[0], "Range") is None
    assert (tmp_path / "f.bin").read_bytes() == V1 and not (tmp_path / "f.bin.part").exists()


def test_a_checksum_mismatch_is_still_one_line(tmp_path: Path) -> None:
    with RawServer([serve(Version(V1))]) as srv, pytest.raises(ChecksumMismatch) as err:
        download([srv.url], tmp_path / "f.bin", sha256=sha(V2), progress=False)
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []
