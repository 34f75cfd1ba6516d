"""The HTTP downloader and the http source, against a loopback server: resume, retries,
checksums, dead servers, offline mode, mirrors, and WikiText from its original zip layout."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents, read_manifest
from corpuskit.sources.http import (
    USER_AGENT,
    ChecksumMismatch,
    NetworkError,
    NotCached,
    download,
)
from tests.conftest import needs_shared, quick_http
from tests.sources.test_fetch_helpers import LoopbackServer, Route, zip_bytes

BODY = os.urandom(3 * 2**20 + 123)
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_http(monkeypatch, retries=3, timeout=5)


def test_resumes_a_truncated_body_with_range(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/f.bin"] = Route(BODY, faults=["truncate"])
        got = download([srv.url + "/f.bin"], tmp_path / "f.bin", sha256=SHA, progress=False)
    assert got.sha256 == SHA and (tmp_path / "f.bin").read_bytes() == BODY
    assert not (tmp_path / "f.bin.part").exists()
    ranges = [s.headers.get("Range") for s in srv.seen]
    assert ranges[0] is None
    start = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert len(BODY) // 2 - 2**16 <= start <= len(BODY) // 2  # resumed where the body stopped


def test_retries_after_503s_and_sends_a_browser_user_agent(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/f.bin"] = Route(BODY, faults=["503", "500", "503"])
        download([srv.url + "/f.bin"], tmp_path / "f.bin", sha256=SHA, progress=False)
    assert len(srv.seen) == 4
    agent = srv.seen[0].headers["User-Agent"]
    assert agent == USER_AGENT and agent.startswith("Mozilla/5.0") and "python" not in agent


def test_gives_up_after_bounded_retries(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/f.bin"] = Route(BODY, faults=["503"] * 10)
        with pytest.raises(NetworkError, match=r"HTTP 503 after 4 attempts.*--mirror"):
            download([srv.url + "/f.bin"], tmp_path / "f.bin", progress=False)
    assert len(srv.seen) == 4
    assert not (tmp_path / "f.bin").exists()


def test_checksum_mismatch_leaves_nothing_cached_as_valid(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/f.bin"] = Route(BODY)
        with pytest.raises(ChecksumMismatch, match="sha256"):
            download([srv.url + "/f.bin"], tmp_path / "f.bin", sha256="0" * 64, progress=False)
        assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
        with pytest.raises(ChecksumMismatch, match="bytes, expected"):
            download([srv.url + "/f.bin"], tmp_path / "f.bin", size=5, progress=False)
        assert list(tmp_path.iterdir()) == []
        # A cached file that no longer matches is dropped and downloaded again.
        (tmp_path / "f.bin").write_bytes(b"stale")
        got = download([srv.url + "/f.bin"], tmp_path / "f.bin", sha256=SHA, progress=False)
        assert not got.cached and got.sha256 == SHA


def test_dead_server_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NetworkError) as err:
        download([f"http://127.0.0.1:{port}/x.zip"], tmp_path / "x.zip", progress=False)
    message = str(err.value)
    assert "connection refused" in message and "\n" not in message and "--mirror" in message
    assert not (tmp_path / "x.zip").exists()


def test_mirror_list_falls_through_404_and_redacts_secrets(tmp_path: Path) -> None:
    with LoopbackServer() as srv:
        srv.routes["/good/f.bin"] = Route(BODY)
        got = download(
            [srv.url + "/bad/f.bin?token=SECRET123", srv.url + "/good/f.bin"],
            tmp_path / "f.bin",
            sha256=SHA,
            progress=False,
        )
        assert got.url.endswith("/good/f.bin")
        with pytest.raises(CorpuskitError) as err:
            download([srv.url + "/nope?token=SECRET123"], tmp_path / "g.bin", progress=False)
    assert "SECRET123" not in str(err.value) and "not found" in str(err.value)


def test_offline_uses_the_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPUSKIT_OFFLINE", "1")
    with pytest.raises(NotCached, match="offline mode"):
        download(["https://example.invalid/f.bin"], tmp_path / "f.bin", progress=False)
    (tmp_path / "f.bin").write_bytes(BODY)
    got = download(["https://example.invalid/f.bin"], tmp_path / "f.bin", sha256=SHA)
    assert got.cached


def _wikitext_catalog(tmp_path: Path, url: str, sha: str, size: int, allow_http: bool) -> Path:
    cat = tmp_path / "wt.yaml"
    cat.write_text(
        f"""corpora:
  - name: wt-zip
    title: WikiText-2 validation from a zip
    description: The real validation split in the original zip layout.
    license: CC-BY-SA-3.0
    languages: [en]
    domains: [encyclopedia]
    splits: [train, validation, test]
    source:
      type: http
      allow_http: {str(allow_http).lower()}
      files:
        - url: {url}
          sha256: {sha}
          bytes: {size}
      globs: ["wikitext-2/wiki.*.tokens"]
    reader: wikitext
""",
        encoding="utf-8",
    )
    return cat


def test_wikitext_zip_layout_from_a_mirror_gives_60_articles(
    tmp_path: Path, data_dir: Path
) -> None:
    valid = needs_shared("wikitext-2", "wiki.valid.tokens")
    original = valid.read_bytes()
    archive = zip_bytes({"wikitext-2/wiki.valid.tokens": original, "wikitext-2/README": b"x"})
    sha = hashlib.sha256(archive).hexdigest()
    with LoopbackServer() as srv:
        srv.routes["/mirror/wikitext-2-v1.zip"] = Route(archive, faults=["truncate", "503"])
        # The catalog's own URL is dead; the mirror has the file.
        cat = _wikitext_catalog(
            tmp_path, "https://127.0.0.1:9/wikitext-2-v1.zip", sha, len(archive), False
        )
        result = api.fetch(
            "wt-zip", catalog=[cat], progress=False, mirror=srv.url + "/mirror/"
        )
    assert result.manifest["splits"]["validation"]["documents"] == 60
    docs = list(iter_documents(result.path))
    assert "".join(d["text"] for d in docs).encode("utf-8") == original
    assert docs[0]["title"] == "Homarus gammarus" and docs[0]["id"] == "wt-zip/validation/000000"
    tokens = sum(len(d["text"].split()) + d["text"].count("\n") for d in docs)
    assert tokens == 217_646
    manifest = read_manifest(result.path)
    assert manifest["resolved"]["files"]["wikitext-2-v1.zip"]["sha256"] == sha
    lock = json.loads((data_dir / "corpuskit-lock.json").read_text())
    assert lock["corpora"]["wt-zip"]["files"]["wikitext-2-v1.zip"]["bytes"] == len(archive)
    # Up to date: a second fetch does nothing and needs no network.
    again = api.fetch("wt-zip", catalog=[cat], progress=False)
    assert again.skipped


def test_plain_http_needs_allow_http(tmp_path: Path, data_dir: Path) -> None:
    cat = _wikitext_catalog(tmp_path, "http://example.com/w.zip", "0" * 64, 1, False)
    with pytest.raises(CorpuskitError, match=r"wt\.yaml:\d+: .*allow_http"):
        api.fetch("wt-zip", catalog=[cat], progress=False)
    with pytest.raises(CorpuskitError, match="plain http"):
        api.fetch("python-docs", progress=False, mirror="http://mirror.example.com/")


def test_disk_full_is_a_clear_error_and_leaves_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(url: str, part: Path, **kw: object) -> None:
        part.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("corpuskit.sources.download._stream_http", full)
    with pytest.raises(CorpuskitError, match="No space left on device"):
        download(["https://example.com/f.bin"], tmp_path / "f.bin", progress=False)
    assert list(tmp_path.iterdir()) == []
