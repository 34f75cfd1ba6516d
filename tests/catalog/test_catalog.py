"""The catalog: built-in entries, schema errors with file and line, filters, user catalogs,
and `info` with local state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpuskit import api
from corpuskit.catalog import Catalog, GithubSource, HfSource, KaggleSource, load_file
from corpuskit.cli import cli
from corpuskit.errors import CatalogError

GOOD = """corpora:
  - name: demo
    title: Demo
    description: A demo corpus.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    size: {bytes: 1000}
    source:
      type: http
      files:
        - url: https://example.com/demo.txt
"""


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_catalog_has_verified_entries() -> None:
    cat = Catalog.load()
    wikitext = {e.name: e for e in cat if e.reader == "wikitext"}
    assert set(wikitext) == {"wikitext2", "wikitext2-raw", "wikitext103", "wikitext103-raw"}
    shas = {
        "wikitext2": "92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c",
        "wikitext103-raw": "91c00ae287f0d699e18605c84afc9e45c192bc6b7797ff8837e5474655a33794",
    }
    for name, sha in shas.items():
        source = wikitext[name].source
        assert isinstance(source, HfSource) and source.fallback is not None
        assert source.fallback.files[0].sha256 == sha
    w103 = wikitext["wikitext103"].source
    assert isinstance(w103, HfSource)
    assert [f.path.rsplit("/", 1)[1] for f in w103.files][:2] == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    kaggle = [e for e in cat if isinstance(e.source, KaggleSource)]
    github = [e for e in cat if isinstance(e.source, GithubSource)]
    assert len(kaggle) >= 5 and len(github) >= 5
    assert all(len(e.source.commit) == 40 for e in github if isinstance(e.source, GithubSource))
    assert all(e.license for e in cat)


@pytest.mark.parametrize(
    ("replace", "by", "line", "field", "message"),
    [
        ("    license: CC0-1.0\n", "    license: CC0-1.0\n    lisence: typo\n", 6, "lisence",
         "Extra inputs"),
        ("size: {bytes: 1000}", "size: {bytes: lots}", 8, "size.bytes", "integer"),
        ("https://example.com/demo.txt", "ftp://example.com/demo.txt", 12, "source.files.0.url",
         "unsupported URL"),
        ("https://example.com/demo.txt", "http://example.com/demo.txt", 12,
         "source.files.0.url", "allow_http"),
        ("    languages: [en]\n", "    languages: en\n", 6, "languages", "list"),
        ("      type: http\n", "      type: ftp\n", 9, "source", "tag"),
    ],
)
def test_schema_errors_name_file_line_and_field(
    tmp_path: Path, replace: str, by: str, line: int, field: str, message: str
) -> None:
    path = _write(tmp_path, GOOD.replace(replace, by))
    with pytest.raises(CatalogError) as err:
        load_file(path)
    text = str(err.value)
    assert text.startswith(f"{path}:{line}: corpus 'demo', field '{field}'"), text
    assert message in text


def test_allow_http_accepts_plain_http(tmp_path: Path) -> None:
    text = GOOD.replace("https://example.com", "http://example.com").replace(
        "      type: http\n", "      type: http\n      allow_http: true\n")
    [entry] = load_file(_write(tmp_path, text))
    assert entry.source.type == "http"


def test_yaml_problems(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"c\.yaml:\d+: invalid YAML"):
        load_file(_write(tmp_path, GOOD + "  - name: [unclosed\n"))
    with pytest.raises(CatalogError, match="duplicate key 'title'"):
        twice = GOOD.replace("    title: Demo\n", "    title: A\n    title: B\n")
        load_file(_write(tmp_path, twice))
    with pytest.raises(CatalogError, match="invalid YAML"):
        load_file(_write(tmp_path, "corpora: !!python/object/apply:os.system ['echo hi']\n"))
    a = _write(tmp_path, GOOD, "a.yaml")
    b = _write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(CatalogError, match="already defined in"):
        Catalog.load([a, b])


def test_user_catalogs_from_env_and_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    _write(folder, GOOD)
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(folder))
    assert Catalog.load().get("demo").title == "Demo"
    monkeypatch.delenv("CORPUSKIT_CATALOG")
    with pytest.raises(CatalogError, match="unknown corpus"):
        Catalog.load().get("demo")
    assert Catalog.load([folder / "c.yaml"]).get("demo").origin == str(folder / "c.yaml")


def test_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORPUSKIT_CATALOG", raising=False)
    names = lambda **kw: {e.name for e in api.list_corpora(**kw)}  # noqa: E731
    assert {"wikitext2", "wikitext103-raw"} <= names(source="hf")
    assert "tinyshakespeare" in names(source="github", domain="literature")
    assert names(language="python") >= {"python-stdlib", "nanogpt-code"}
    assert "news-category" in names(license="cc-by-4.0", source="kaggle")
    assert "wikitext103" not in names(max_size=10_000_000) and "wikitext2" in names(
        max_size=10_000_000)
    assert names(search="shakespeare") == {"tinyshakespeare"}
    result = CliRunner().invoke(cli, ["list", "--source", "kaggle", "--json"])
    assert result.exit_code == 0
    assert len(json.loads(result.output)) >= 5


def test_info_shows_local_state(data_dir: Path, tiny_corpus: str) -> None:
    before = api.info(tiny_corpus)
    assert before["local"]["fetched"] is False and before["local"]["downloads_bytes"] == 0
    api.fetch(tiny_corpus, progress=False)
    after = api.info(tiny_corpus)["local"]
    assert after["fetched"] is True and after["raw"]["splits"]["train"]["documents"] == 200
    result = CliRunner().invoke(cli, ["info", tiny_corpus])
    assert result.exit_code == 0 and "fetched:    yes, 200 documents" in result.output
    result = CliRunner().invoke(cli, ["info", "wikitext2"])
    assert "Salesforce/wikitext" in result.output and "fetched:    no" in result.output
