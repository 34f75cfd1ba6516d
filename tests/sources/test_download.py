"""``sources/download.py`` (many URLs, one verified file) and ``sources/transfer.py`` (one URL,
resumed and retried), split out of ``sources/http.py``: the steps of ``download`` on their own."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from corpuskit.errors import CorpuskitError
from corpuskit.sources import download as dl
from corpuskit.sources import http, transfer
from tests.conftest import quick_http
from tests.sources.test_fetch_helpers import LoopbackServer, Route

BODY = b"corpuskit " * 5000
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_http(monkeypatch, retries=2, timeout=2)


def test_a_verified_cached_file_is_served_without_a_request(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(BODY)
    (tmp_path / "f.bin.part").write_bytes(b"debris of a killed run")
    with LoopbackServer() as srv:
        got = dl.download([f"{srv.url}/f.bin"], dest, sha256=SHA, progress=False)
        assert srv.seen == []
    assert got.cached and got.sha256 == SHA and got.bytes == len(BODY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_a_cached_file_that_fails_its_checksum_is_replaced_from_the_server(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"not the bytes the catalog names")
    with LoopbackServer() as srv:
        srv.routes["/f.bin"] = Route(BODY)
        got = dl.download([f"{srv.url}/f.bin"], dest, sha256=SHA, progress=False)
        assert [s.path for s in srv.seen] == ["/f.bin"]
    assert not got.cached and dest.read_bytes() == BODY


def test_a_bad_setting_fails_before_anything_on_disk_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--force`` drops an old partial download, but not when the run cannot start at all."""
    dest = tmp_path / "sub" / "f.bin"
    dest.parent.mkdir()
    part = dest.with_name("f.bin.part")
    part.write_bytes(b"resumable bytes")
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", "soon")
    with pytest.raises(CorpuskitError, match="CORPUSKIT_HTTP_RETRIES='soon' is not valid"):
        dl.download(["http://127.0.0.1:9/f.bin"], dest, force=True, progress=False)
    assert part.read_bytes() == b"resumable bytes"


def test_second_url_serves_when_the_first_is_missing_and_the_error_names_each_url(
    tmp_path: Path,
) -> None:
    with LoopbackServer() as srv:
        srv.routes["/mirror/f.bin"] = Route(BODY)
        urls = [f"{srv.url}/gone/f.bin", f"{srv.url}/mirror/f.bin"]
        got = dl.download(urls, tmp_path / "f.bin", sha256=SHA, progress=False)
        assert got.url == urls[1] and (tmp_path / "f.bin").read_bytes() == BODY
        with pytest.raises(transfer.NotAvailable) as caught:
            dl.download([urls[0], f"{srv.url}/also-gone"], tmp_path / "g.bin", progress=False)
    message = str(caught.value)
    assert f"{srv.url}/gone/f.bin: not found (HTTP 404)" in message
    assert f"{srv.url}/also-gone: not found (HTTP 404)" in message
    assert "use --mirror URL" in message and "\n" not in message
    assert not (tmp_path / "g.bin").exists() and not (tmp_path / "g.bin.part").exists()


def test_the_http_source_module_still_offers_the_download_api() -> None:
    """Other sources and scripts import these from ``corpuskit.sources.http``."""
    assert http.download is dl.download and http.Downloaded is dl.Downloaded
    for name in ("ChecksumMismatch", "HostNotFound", "NetworkError", "NotAvailable", "NotCached"):
        assert getattr(http, name) is getattr(transfer, name)
    assert http.USER_AGENT == transfer.USER_AGENT
