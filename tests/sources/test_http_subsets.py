"""``fetch NAME --subset xx`` of an http source (CC-100's one file per language): only the
subset's own file is downloaded, into its own artifact, recorded in the manifest and lock file."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.shards import iter_documents
from tests.conftest import quick_http, run_main
from tests.sources.test_fetch_helpers import LoopbackServer, Route

TEXTS = {
    "de": ["Der Fluss fließt.\nDer Stein liegt.", "Ein Garten im Winter."],
    "fr": ["La rivière coule.", "Un jardin en hiver.\nLe pont est vieux."],
}


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_http(monkeypatch, retries=1, timeout=5)


def _catalog(tmp_path: Path, url: str, extra_subset: str = "") -> Path:
    """Two language files (``de.txt.xz``, ``fr.txt.xz``) with a subset each, as cc100 has."""
    cat = tmp_path / "cc.yaml"
    cat.write_text(
        f"""corpora:
  - name: cc
    title: Two-language CC-100 look-alike
    description: One xz text file per language, documents separated by blank lines.
    license: CC0-1.0
    languages: [mul]
    domains: [web]
    subsets:
      - {{name: de, languages: [de], globs: ["de.txt.xz"]}}
      - {{name: fr, languages: [fr], globs: ["fr.txt.xz"]}}{extra_subset}
    source:
      type: http
      allow_http: true
      files:
        - {{url: "{url}/cc-100/de.txt.xz"}}
        - {{url: "{url}/cc-100/fr.txt.xz"}}
    reader: text
    reader_options: {{unit: paragraph}}
""",
        encoding="utf-8",
    )
    return cat


def _serve(srv: LoopbackServer) -> None:
    for lang, docs in TEXTS.items():
        srv.routes[f"/cc-100/{lang}.txt.xz"] = Route(lzma.compress("\n\n".join(docs).encode()))


def _texts(path: Path) -> list[str]:
    return [d["text"] for d in iter_documents(path)]


def test_subset_downloads_only_its_own_file(tmp_path: Path, data_dir: Path) -> None:
    with LoopbackServer() as srv:
        _serve(srv)
        cat = _catalog(tmp_path, srv.url)
        de = api.fetch("cc", catalog=[cat], progress=False, subset="de")
        requested = [s.path for s in srv.seen]
    assert requested == ["/cc-100/de.txt.xz"]  # fr.txt.xz is never asked for
    assert de.path == data_dir / "raw" / "cc@subset=de"
    assert _texts(de.path) == TEXTS["de"]
    resolved = json.loads((de.path / "manifest.json").read_text())["resolved"]
    assert list(resolved["files"]) == ["de.txt.xz"]
    assert resolved["subset"] == {"name": "de", "globs": ["de.txt.xz"], "files": ["de.txt.xz"]}
    locked = json.loads((data_dir / "corpuskit-lock.json").read_text())["corpora"]
    assert list(locked["cc@subset=de"]["files"]) == ["de.txt.xz"]
    assert "cc" not in locked  # the whole corpus was not fetched, nor recorded


def test_subset_by_name_and_whole_corpus_are_separate_artifacts(
    tmp_path: Path, data_dir: Path
) -> None:
    with LoopbackServer() as srv:
        _serve(srv)
        cat = _catalog(tmp_path, srv.url)
        fr = api.fetch("cc@subset=fr", catalog=[cat], progress=False)
        whole = api.fetch("cc", catalog=[cat], progress=False)
    assert _texts(fr.path) == TEXTS["fr"]
    assert sorted(_texts(whole.path)) == sorted(TEXTS["de"] + TEXTS["fr"])
    assert fr.path.name == "cc@subset=fr" and whole.path.name == "cc"


def test_subset_matching_no_file_is_a_one_line_error(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = '\n      - {name: es, languages: [es], globs: ["es.txt.xz"]}'
    with LoopbackServer() as srv:
        _serve(srv)
        cat = _catalog(tmp_path, srv.url, extra)
        with pytest.raises(CorpuskitError, match=r"subset 'es' of 'cc.*match none"):
            api.fetch("cc", catalog=[cat], progress=False, subset="es")
        code, _, err = run_main(capsys, "--catalog", str(cat), "fetch", "cc", "--subset", "es")
        requested = list(srv.seen)
    assert code != 0 and "match none" in err and "\n" not in err.strip()
    assert requested == []  # nothing downloaded
    assert not (data_dir / "raw" / "cc@subset=es").exists()
