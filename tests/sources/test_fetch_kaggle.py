"""The kaggle source against a fake Kaggle API on loopback: credentials, version resolution and
recording, and no secret in any output."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents
from tests.sources.test_fetch_helpers import LoopbackServer, Route, zip_bytes

USER, KEY = "alice", "kgl_PLANTEDsecretKEY42"
CSV = (
    "Id,Title,Body,Score\n"
    '1,How do I sort?,"<p>I have a list.</p>\nHow to sort it?",5\n'
    "2,Empty body,,0\n"
    '3,Unicode,"naïve café ✓",2\n'
).encode()


@pytest.fixture
def kaggle_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "CORPUSKIT_OFFLINE",
                 "CORPUSKIT_LOCK", "CORPUSKIT_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))
    monkeypatch.setenv("CORPUSKIT_HTTP_BACKOFF", "0.01")
    cat = tmp_path / "k.yaml"
    cat.write_text(
        """corpora:
  - name: qa-sample
    title: A fake Kaggle dataset
    description: Questions.
    license: CC-BY-SA-3.0
    languages: [en]
    domains: [qa]
    source: {type: kaggle, dataset: someone/qa-sample, files: ["Questions.csv"]}
    reader: csv
    reader_options: {text_fields: [Title, Body], title_field: Title, metadata_fields: [Id]}
""",
        encoding="utf-8",
    )
    return cat


def _basic(headers: dict[str, str]) -> int | None:
    expected = "Basic " + base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    return None if headers.get("Authorization") == expected else 401


def _fake_api(srv: LoopbackServer) -> None:
    srv.routes["/api/v1/datasets/view/someone/qa-sample"] = Route(
        json.dumps({"ref": "someone/qa-sample", "currentVersionNumber": 3}).encode(),
        check=_basic,
    )
    # The download redirects to another host (a storage bucket), as Kaggle does.
    srv.routes["/api/v1/datasets/download/someone/qa-sample"] = Route(
        check=_basic,
        redirect=srv.url.replace("127.0.0.1", "localhost") + "/storage/qa-sample-v3.zip",
    )
    srv.routes["/storage/qa-sample-v3.zip"] = Route(
        zip_bytes({"Questions.csv": CSV, "Tags.csv": b"Id,Tag\n1,python\n"})
    )


def test_fetch_resolves_and_records_the_version(
    kaggle_catalog: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    with LoopbackServer() as srv:
        _fake_api(srv)
        monkeypatch.setenv("CORPUSKIT_KAGGLE_ENDPOINT", srv.url + "/api/v1")
        result = api.fetch("qa-sample", catalog=[kaggle_catalog], progress=False)
    assert "dataset_version_number=3" in srv.seen[1].path
    assert "Authorization" not in srv.seen[2].headers  # not forwarded to the storage host
    docs = list(iter_documents(result.path))
    assert [d["title"] for d in docs] == ["How do I sort?", "Empty body", "Unicode"]
    assert docs[0]["text"] == "How do I sort?\n\n<p>I have a list.</p>\nHow to sort it?"
    assert docs[0]["Id"] == "1" and docs[2]["text"].endswith("naïve café ✓")
    assert result.manifest["resolved"]["pin"] == 3
    lock = json.loads((data_dir / "corpuskit-lock.json").read_text())
    assert lock["corpora"]["qa-sample"]["pin"] == 3
    out = capsys.readouterr()
    blobs = [out.out, out.err, json.dumps(result.manifest), json.dumps(lock)]
    assert not any(KEY in b or base64.b64encode(f"{USER}:{KEY}".encode()).decode() in b
                   for b in blobs)

    # The locked version is reused: a forced re-fetch downloads the archive again but asks
    # the API for no version.
    archive = srv.routes["/storage/qa-sample-v3.zip"].body  # the bytes the lock file pinned
    with LoopbackServer() as srv:
        _fake_api(srv)
        srv.routes["/storage/qa-sample-v3.zip"].body = archive
        monkeypatch.setenv("CORPUSKIT_KAGGLE_ENDPOINT", srv.url + "/api/v1")
        again = api.fetch("qa-sample", catalog=[kaggle_catalog], progress=False, force=True)
    assert again.documents == 3
    assert not any("/datasets/view/" in s.path for s in srv.seen)
    assert any("dataset_version_number=3" in s.path for s in srv.seen)


def test_bearer_token_and_missing_credentials(
    kaggle_catalog: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackServer() as srv:
        _fake_api(srv)
        monkeypatch.setenv("CORPUSKIT_KAGGLE_ENDPOINT", srv.url + "/api/v1")
        with pytest.raises(CorpuskitError, match="Kaggle needs credentials"):
            api.fetch("qa-sample", catalog=[kaggle_catalog], progress=False)
        monkeypatch.setenv("KAGGLE_API_TOKEN", "WRONG_PLANTED_TOKEN")
        with pytest.raises(CorpuskitError) as err:
            api.fetch("qa-sample", catalog=[kaggle_catalog], progress=False)
    assert "refused the credentials" in str(err.value)
    assert "WRONG_PLANTED_TOKEN" not in str(err.value)
    assert srv.seen[-1].headers["Authorization"] == "Bearer WRONG_PLANTED_TOKEN"
    assert not (data_dir / "raw" / "qa-sample").exists()


def test_kaggle_json_credentials(
    kaggle_catalog: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "kcfg"
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": USER, "key": KEY}))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    with LoopbackServer() as srv:
        _fake_api(srv)
        monkeypatch.setenv("CORPUSKIT_KAGGLE_ENDPOINT", srv.url + "/api/v1")
        result = api.fetch("qa-sample", catalog=[kaggle_catalog], progress=False)
    assert result.documents == 3
