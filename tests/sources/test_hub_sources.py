"""hf sources at scale against a fake Hub on loopback (tests/fake_hub.py): files named by glob
at a branch, the branch locked to a commit, gated datasets, tokens kept secret, offline mode,
and the Source protocol every source module follows."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import yaml

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents
from corpuskit.sources import Source, source_types
from tests.conftest import run_main
from tests.fake_hub import FakeHub, make_parquet, make_texts

REPO = "org/web-multi"
GATED = "org/gated-web"
TOKEN = "hf_PLANTEDhubtoken_8d1f2c"


@pytest.fixture(autouse=True)
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CORPUSKIT_HTTP_BACKOFF", "0.01")
    monkeypatch.setenv("CORPUSKIT_HTTP_RETRIES", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no real token file is read
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "CORPUSKIT_OFFLINE",
                 "HF_HUB_OFFLINE", "CORPUSKIT_MIRROR", "CORPUSKIT_LOCK"):
        monkeypatch.delenv(name, raising=False)


def hub_entry(name: str, repo: str, **source: object) -> dict[str, object]:
    return {
        "name": name, "title": name, "description": "fake Hub dataset", "license": "ODC-By-1.0",
        "languages": ["de", "fr"], "domains": ["web"],
        "sources": [{"url": f"https://huggingface.co/datasets/{repo}", "what": "test"}],
        "source": {"type": "hf", "repo": repo, "revision": "main", **source},
        "reader": "parquet",
    }


def write_catalog(tmp_path: Path, *entries: dict[str, object]) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"corpora": list(entries)}), encoding="utf-8")
    return path


def multi_files(seed: int = 0) -> dict[str, bytes]:
    return {
        "README.md": b"# card\n",
        "data/deu_Latn/train-00001.parquet": make_parquet(make_texts(20, seed + 2), 10),
        "data/deu_Latn/train-00000.parquet": make_parquet(make_texts(30, seed + 1), 10),
        "data/fra_Latn/train-00000.parquet": make_parquet(make_texts(25, seed + 3), 10),
    }


def texts_of(raw: Path) -> list[str]:
    return [d["text"] for d in iter_documents(raw)]


def test_globs_are_listed_through_the_hub_api_at_the_resolved_commit(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = write_catalog(tmp_path, hub_entry("multi", REPO, globs=["data/deu_Latn/*.parquet"]))
    with FakeHub() as hub:
        commit = hub.add(REPO, multi_files())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        result = api.fetch("multi", catalog=[cat], progress=False)
        assert hub.asked("/api/datasets/org/web-multi/revision/main")
        assert hub.asked(f"/api/datasets/org/web-multi/tree/{commit}/data%2Fdeu_Latn")
    # Files in sorted path order, documents in file order; fra_Latn and the card are not read.
    assert texts_of(result.path) == make_texts(30, 1) + make_texts(20, 2)
    resolved = result.manifest["resolved"]
    assert resolved["pin"] == commit and resolved["revision"] == "main"
    assert sorted(resolved["files"]) == [
        "data/deu_Latn/train-00000.parquet", "data/deu_Latn/train-00001.parquet"]
    locked = json.loads((data_dir / "corpuskit-lock.json").read_text())["corpora"]["multi"]
    assert locked["pin"] == commit and locked["globs"] == ["data/deu_Latn/*.parquet"]


def test_a_second_fetch_anywhere_uses_the_locked_commit_after_main_moved(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = write_catalog(tmp_path, hub_entry("multi", REPO, globs=["data/*/*.parquet"]))
    with FakeHub() as hub:
        first = hub.add(REPO, multi_files())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        one = api.fetch("multi", catalog=[cat], progress=False)
        moved = hub.move(REPO, "main", multi_files(seed=100))  # new bytes on main
        assert moved != first
        hub.requests.clear()
        # Another machine: another data folder, the same lock file (CORPUSKIT_LOCK).
        monkeypatch.setenv("CORPUSKIT_LOCK", str(data_dir / "corpuskit-lock.json"))
        two = api.fetch("multi", catalog=[cat], progress=False, data_dir=tmp_path / "elsewhere")
        # A slice not yet in the lock file reads the commit locked for its corpus too.
        part = api.fetch("multi", catalog=[cat], progress=False, max_documents=5)
        asked = [r.path for r in hub.requests]
    assert not any("/revision/" in p or "/tree/" in p for p in asked)  # no API call at all
    assert asked and all(f"/resolve/{first}/" in p for p in asked)
    assert texts_of(two.path) == texts_of(one.path)
    assert two.manifest["resolved"]["pin"] == first == part.manifest["resolved"]["pin"]
    assert texts_of(part.path) == texts_of(one.path)[:5]


def test_the_pinned_files_form_still_works_with_a_commit(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub() as hub:
        commit = hub.add(REPO, multi_files())
        path = "data/fra_Latn/train-00000.parquet"
        entry = hub_entry("pinned", REPO, files=[{"path": path}])
        entry["source"]["revision"] = commit  # type: ignore[index]
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        result = api.fetch("pinned", catalog=[write_catalog(tmp_path, entry)], progress=False)
        assert not hub.asked("/api/")  # a commit and named files need no API call
    assert texts_of(result.path) == make_texts(25, 3)


@pytest.mark.parametrize(
    ("token", "status", "why"),
    [(None, 401, "no Hugging Face token is set"),
     ("hf_notaccepted_0000", 403, "has not accepted its terms")],
)
def test_gated_dataset_is_one_line_naming_the_page_and_hf_token(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], token: str | None, status: int, why: str,
) -> None:
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    cat = write_catalog(tmp_path, hub_entry("gated", GATED, globs=["data/*.parquet"]))
    with FakeHub() as hub:
        hub.add(GATED, {"data/a.parquet": make_parquet(make_texts(5, 0), 5)}, gated=True)
        hub.repos[GATED].accepted.add(TOKEN)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code, out, err = run_main(capsys, "--catalog", str(cat), "fetch", "gated")
    assert code != 0
    line = err.strip()
    assert "\n" not in line and "Traceback" not in err
    assert f"{hub.url}/datasets/{GATED}" in line and "HF_TOKEN" in line and why in line
    assert token is None or token not in out + err
    assert not (data_dir / "raw" / "gated").exists()


def test_gated_pinned_files_refused_on_download_is_the_same_one_line(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub() as hub:
        commit = hub.add(GATED, {"data/a.parquet": make_parquet(make_texts(5, 0), 5)},
                         gated=True)
        entry = hub_entry("gated-pinned", GATED, files=[{"path": "data/a.parquet"}])
        entry["source"]["revision"] = commit  # type: ignore[index]
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(CorpuskitError, match="HF_TOKEN") as err:
            api.fetch("gated-pinned", catalog=[write_catalog(tmp_path, entry)], progress=False)
    assert f"/datasets/{GATED}," in str(err.value) and "\n" not in str(err.value)


def test_the_token_reaches_the_hub_and_is_never_printed_or_stored(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    cat = write_catalog(tmp_path, hub_entry("gated", GATED, globs=["data/*.parquet"]))
    with FakeHub() as hub:
        hub.add(GATED, {"data/a.parquet": make_parquet(make_texts(50, 0), 10)}, gated=True)
        hub.repos[GATED].accepted.add(TOKEN)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        code, out, err = run_main(capsys, "--catalog", str(cat), "fetch", "gated")
        assert code == 0, err
        # A slice reads row groups with range requests: the token goes there too.
        code2, out2, err2 = run_main(capsys, "--catalog", str(cat), "fetch", "gated",
                                     "--max-documents", "12", "--json")
        assert code2 == 0, err2
    assert json.loads(out2)["documents"] == 12
    for text in (out, err, out2, err2):
        assert TOKEN not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_offline_uses_the_lock_file_and_cache_without_any_request(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = write_catalog(tmp_path, hub_entry("multi", REPO, globs=["data/deu_Latn/*.parquet"]))
    with FakeHub() as hub:
        hub.add(REPO, multi_files())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        online = api.fetch("multi", catalog=[cat], progress=False)
        hub.requests.clear()
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        again = api.fetch("multi", catalog=[cat], progress=False, force=True)
        assert hub.requests == []
    assert texts_of(again.path) == texts_of(online.path)


def test_offline_without_a_lock_is_one_clear_line(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    cat = write_catalog(tmp_path, hub_entry("multi", REPO, globs=["data/*.parquet"]))
    with pytest.raises(CorpuskitError, match="offline mode.*fetch it once online") as err:
        api.fetch("multi", catalog=[cat], progress=False)
    assert "\n" not in str(err.value)


def test_globs_that_match_nothing_and_unknown_revisions_are_one_line(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_glob = hub_entry("none", REPO, globs=["data/xx_Latn/*.parquet"])
    bad_rev = hub_entry("norev", REPO, globs=["data/*/*.parquet"])
    bad_rev["source"]["revision"] = "v9"  # type: ignore[index]
    cat = write_catalog(tmp_path, bad_glob, bad_rev)
    with FakeHub() as hub:
        hub.add(REPO, multi_files())
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(CorpuskitError, match="no file matching data/xx_Latn"):
            api.fetch("none", catalog=[cat], progress=False)
        with pytest.raises(CorpuskitError, match="revision 'v9' not found") as err:
            api.fetch("norev", catalog=[cat], progress=False)
    assert "\n" not in str(err.value)


def test_every_source_module_follows_the_source_protocol() -> None:
    for kind in source_types():
        module = importlib.import_module(f"corpuskit.sources.{kind}")
        assert isinstance(module, Source), kind
