"""The hf source against a fake Hub on loopback serving the real WikiText-2 validation split as
parquet, with token checks, offline mode and the zip fallback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from corpuskit import api
from corpuskit.catalog import Catalog, HfSource
from corpuskit.cli import main
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents
from tests.conftest import needs_shared
from tests.sources.test_fetch_helpers import LoopbackServer, Route, wikitext_parquet, zip_bytes

REV = "b08601e04326c79dfdd32d625aee71d232d685c3"
VALID = "wikitext-2-v1/validation-00000-of-00001.parquet"
TOKEN = "hf_PLANTEDsecret0123456789"


@pytest.fixture(autouse=True)
def hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPUSKIT_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", "1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    for name in ("CORPUSKIT_OFFLINE", "HF_HUB_OFFLINE", "CORPUSKIT_MIRROR", "CORPUSKIT_LOCK"):
        monkeypatch.delenv(name, raising=False)


def unpinned_wikitext2(tmp_path: Path) -> Path:
    """The real ``wikitext2`` entry (repo, revision, file paths), its checksums removed: the
    fake Hub serves parquet rebuilt from the original file, whose bytes differ from the Hub's."""
    entry = Catalog.load().get("wikitext2").model_dump(mode="json", exclude_none=True)
    entry["name"] = "wikitext2-unpinned"
    for f in entry["source"]["files"]:
        f.pop("sha256", None)
        f.pop("bytes", None)
    path = tmp_path / "unpinned.yaml"
    path.write_text(yaml.safe_dump({"corpora": [entry]}), encoding="utf-8")
    return path


def test_real_entry_pins_the_hub_files() -> None:
    source = Catalog.load().get("wikitext2-raw").source
    assert isinstance(source, HfSource) and source.revision == REV
    by_path = {f.path: f for f in source.files}
    train = by_path["wikitext-2-raw-v1/train-00000-of-00001.parquet"]
    assert train.bytes == 6_357_543 and train.sha256 is not None
    assert train.sha256.startswith("e83889ba")
    assert source.fallback is not None and source.fallback.files[0].bytes == 4_721_645


def _needs_token(headers: dict[str, str]) -> int | None:
    return None if headers.get("Authorization") == f"Bearer {TOKEN}" else 401


def test_fetch_wikitext2_validation_from_a_fake_hub(
    tmp_path: Path,
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    valid = needs_shared("wikitext-2", "wiki.valid.tokens")
    parquet = wikitext_parquet(valid)
    with LoopbackServer() as hub:
        hub.routes[f"/datasets/Salesforce/wikitext/resolve/{REV}/{VALID}"] = Route(
            parquet, check=_needs_token, faults=["503"]
        )
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        main(
            ["-q", "--catalog", str(unpinned_wikitext2(tmp_path)), "fetch",
             "wikitext2-unpinned", "--split", "validation"]
        )
    out = capsys.readouterr()
    assert "60 documents" in out.out
    raw = data_dir / "raw" / "wikitext2-unpinned"
    docs = list(iter_documents(raw))
    assert len(docs) == 60 and {d["split"] for d in docs} == {"validation"}
    assert "".join(d["text"] for d in docs) == valid.read_text(encoding="utf-8")
    assert sum(d["text"].count("\n") for d in docs) == 3760
    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest["resolved"]["pin"] == REV
    assert manifest["resolved"]["files"][VALID]["sha256"] == hashlib.sha256(parquet).hexdigest()
    lock_text = (data_dir / "corpuskit-lock.json").read_text()
    for text in (out.out, out.err, json.dumps(manifest), lock_text):
        assert TOKEN not in text

    # Offline, with the parquet cached: a forced re-fetch works without the Hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    again = api.fetch(
        "wikitext2-unpinned", splits=["validation"], force=True, progress=False,
        catalog=[unpinned_wikitext2(tmp_path)],
    )
    assert again.documents == 60


def test_offline_without_cache_is_one_clear_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORPUSKIT_OFFLINE", "1")
    monkeypatch.setattr("sys.stderr", __import__("io").StringIO())
    with pytest.raises(CorpuskitError, match="offline mode") as err:
        api.fetch("wikitext103", splits=["test"], progress=False)
    assert "\n" not in str(err.value)
    assert not (data_dir / "raw" / "wikitext103").exists()


def test_falls_back_to_the_zip_when_the_hub_lacks_the_file(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    valid = needs_shared("wikitext-2", "wiki.valid.raw")
    archive = zip_bytes({"wikitext-2-raw/wiki.valid.raw": valid.read_bytes()})
    cat = tmp_path / "c.yaml"
    cat.write_text(
        f"""corpora:
  - name: wt-raw
    title: t
    description: d
    license: CC-BY-SA-3.0
    languages: [en]
    domains: [encyclopedia]
    splits: [train, validation, test]
    source:
      type: hf
      repo: Salesforce/wikitext
      revision: {REV}
      files:
        - path: wikitext-2-raw-v1/validation-00000-of-00001.parquet
      fallback:
        type: http
        files:
          - url: https://wikitext.example.invalid/wikitext-2-raw-v1.zip
            sha256: {hashlib.sha256(archive).hexdigest()}
        globs: ["wikitext-2-raw/wiki.*.raw"]
    reader: wikitext
""",
        encoding="utf-8",
    )
    monkeypatch.setattr("sys.stderr", __import__("io").StringIO())
    with LoopbackServer() as srv:
        srv.routes["/m/wikitext-2-raw-v1.zip"] = Route(archive)
        monkeypatch.setenv("HF_ENDPOINT", srv.url)  # serves no parquet: 404
        result = api.fetch("wt-raw", catalog=[cat], progress=False, mirror=srv.url + "/m")
    assert result.documents == 60
    assert result.manifest["resolved"]["source"] == "hf-fallback"
