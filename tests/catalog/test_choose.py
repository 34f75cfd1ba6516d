"""Choosing a corpus: `list` filters, `suggest` ranking, and `info` as a person reads it.

Offline; the CLI is driven in-process through run_main. Ranking is checked on a planted
catalog (language code qaa, reserved for local use) so that built-in entries cannot interfere.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from corpuskit import api
from corpuskit.choose import license_family, parse_count
from corpuskit.errors import CorpuskitError
from tests.conftest import run_main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "catalog-and-fetch.md"
START, END = "<!-- catalog-table:start -->", "<!-- catalog-table:end -->"


@pytest.mark.parametrize(
    ("license_id", "family"),
    [
        ("ODC-By-1.0", "permissive"),
        ("CC-BY-4.0", "permissive"),
        ("Public-Domain (in the USA)", "permissive"),
        ("Public-Domain OR CC0-1.0", "permissive"),
        ("CC-BY-SA-3.0", "copyleft"),
        ("CC-BY-SA-3.0 AND GFDL-1.3-or-later (Wikipedia text)", "copyleft"),
        ("ODC-By-1.0 AND CC0-1.0 (the terms of mC4 and OSCAR)", "permissive"),
        ("MIT AND CC-BY-NC-4.0", "noncommercial"),
        ("CC-BY-NC-SA-4.0 OR GPL-3.0", "copyleft"),
        ("CDLA-Sharing-1.0", "copyleft"),
        ("LDC User Agreement (research use)", "noncommercial"),
        ("Various (per source)", "unknown"),
        ("Unknown (the dataset card gives no license)", "unknown"),
        ("Some-New-License", "unknown"),
    ],
)
def test_license_families(license_id: str, family: str) -> None:
    assert license_family(license_id) == family


def test_counts_parse_and_refuse() -> None:
    assert parse_count("2B") == 2_000_000_000 and parse_count("1.5T") == 1_500_000_000_000
    assert parse_count("500m") == 500_000_000 and parse_count("10k") == 10_000
    for bad in ("lots", "2 GB", "-1", "0"):
        with pytest.raises(CorpuskitError):
            parse_count(bad)


def _list(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    code, out, err = run_main(capsys, "list", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_list_filters(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _list(capsys, "--language", "de", "--language", "ja")
    names = {r["name"] for r in rows}
    assert {"fineweb-2", "wikipedia", "aozora-bunko", "culturax"} <= names  # subsets count
    assert "fineweb-edu" not in names
    assert all({"de", "ja"} & set(r["languages"].split(",")) for r in rows)
    permissive = {r["name"] for r in _list(capsys, "--license", "permissive")}
    assert "fineweb-edu" in permissive and "wikipedia" not in permissive
    assert "ptb" in {r["name"] for r in _list(capsys, "--license", "noncommercial")}
    assert {r["name"] for r in _list(capsys, "--license", "cc-by-sa")} >= {"wikipedia"}
    gated = _list(capsys, "--gated")
    assert gated and all(r["gated"] for r in gated)
    assert "culturax" not in {r["name"] for r in _list(capsys, "--no-gated")}
    big = _list(capsys, "--min-tokens", "1T", "--sort", "tokens")
    assert [r["name"] for r in big][:2] == ["fineweb-edu-score-2", "fineweb-edu"]
    assert all(r["tokens"] >= 10**12 for r in big)
    small = {r["name"] for r in _list(capsys, "--max-tokens", "5M", "--domain", "encyclopedic")}
    assert small == {"wikitext2"}  # entries of unknown token count are left out of a bound
    by_size = _list(capsys, "--sort", "size", "--domain", "web")
    sizes = [r["size_bytes"] for r in by_size if r["size_bytes"] is not None]
    assert sizes == sorted(sizes, reverse=True) and by_size[-1]["size_bytes"] is None


def test_list_refuses_bad_counts_in_one_line(data_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "list", "--min-tokens", "lots")
    assert code == 1 and "not a number" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_markdown_table_in_docs_is_current(data_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, table, err = run_main(capsys, "list", "--markdown")
    assert code == 0, err
    assert table.startswith("| name | languages |") and "| `fineweb-2` |" in table
    text = DOCS.read_text(encoding="utf-8")
    assert START in text and END in text, f"{DOCS} lacks the catalog-table markers"
    current = text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert current == table, (
        f"the catalog table in {DOCS.name} is stale: replace the text between the markers "
        "with the output of `corpuskit list --markdown`"
    )


PLANTED = """corpora:
{entries}
"""
_ENTRY = """  - name: {name}
    title: {name}
    description: planted
    license: {license}
    languages: [qaa]
    domains: [{domain}]
    size: {size}
    processing: {processing}
    sources: [{{url: "https://example.org/{name}", what: "everything"}}]
{extra}    source: {{type: hf, repo: o/{name}, revision: main, globs: ["*.parquet"]}}
    reader: parquet
"""


def _planted(tmp_path: Path) -> str:
    rows = [
        ("q-classifier", "ODC-By-1.0", "web", "{tokens: 10000000000, tokenizer: gpt2}",
         "quality classifier, then deduplicated", ""),
        ("q-plain", "MIT", "web", "{tokens: 10000000000, tokenizer: gpt2}", "none", ""),
        ("q-gated", "ODC-By-1.0", "web", "{tokens: 10000000000, tokenizer: gpt2}",
         "quality classifier, then deduplicated",
         "    gated: {terms: 'https://huggingface.co/datasets/o/q-gated'}\n"),
        ("q-unknown", "CC-BY-SA-4.0", "web", "{}", "none", ""),
        ("q-small", "CC0-1.0", "web", "{tokens: 1000000000, tokenizer: gpt2}", "none", ""),
        ("q-nc", "CC-BY-NC-4.0", "web", "{tokens: 10000000000, tokenizer: gpt2}", "none", ""),
        ("q-bench", "MIT", "benchmark", "{tokens: 10000000000, tokenizer: gpt2}", "none", ""),
        ("q-subsets", "CC0-1.0", "web", "{}", "none",
         "    subsets:\n"
         "      - {name: part-qaa, languages: [qaa], size: {tokens: 3000000000, tokenizer: gpt2},"
         " globs: ['qaa/*.parquet']}\n"
         "      - {name: part-qab, languages: [qab], globs: ['qab/*.parquet']}\n"),
    ]
    text = PLANTED.format(entries="".join(
        _ENTRY.format(name=n, license=lic, domain=d, size=s, processing=p, extra=x)
        for n, lic, d, s, p, x in rows))
    path = tmp_path / "planted.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_suggest_ranks_fit_then_quality_then_license(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cat = _planted(tmp_path)
    code, out, err = run_main(capsys, "--catalog", cat, "suggest", "--language", "qaa",
                              "--tokens", "2B", "--license", "permissive", "--json")
    assert code == 0, err
    found = json.loads(out)
    order = [(s["name"], s["subset"]) for s in found]
    assert order == [
        ("q-classifier", None),  # enough tokens, classifier, permissive, open
        ("q-gated", None),  # the same but gated
        ("q-plain", None),  # enough tokens, no quality processing stated
        ("q-subsets", "part-qaa"),  # the subset in the wanted language (3B): ties q-plain
        ("q-small", None),  # 1B < 2B: too small
        ("q-bench", None),  # a benchmark: for evaluation, last
    ], order
    assert "q-nc" not in {s["name"] for s in found}  # noncommercial, refused by the filter
    best = found[0]
    assert best["command"] == "corpuskit fetch q-classifier --max-bytes 8GB"
    assert any("≥ the 2B budget" in r for r in best["reasons"])
    assert any("quality classifier" in r for r in best["reasons"])
    assert found[3]["command"] == "corpuskit fetch q-subsets --subset part-qaa --max-bytes 8GB"
    assert found[4]["command"] == "corpuskit fetch q-small"  # whole corpus: no slice needed
    assert any("HF_TOKEN" in r for r in found[1]["reasons"])
    # One line per suggestion in the human form, numbered, with reasons and the command.
    code, out, _ = run_main(capsys, "--catalog", cat, "suggest", "--language", "qaa",
                            "--tokens", "2B", "--license", "permissive")
    lines = out.rstrip("\n").splitlines()
    assert len(lines) == len(found) and lines[0].startswith(" 1. q-classifier:")
    assert "→  corpuskit fetch q-classifier --max-bytes 8GB" in lines[0]
    # The Python API answers the same question the same way.
    again = api.suggest(language="qaa", tokens="2B", license="permissive", catalog=[cat])
    assert [(s.name, s.subset) for s in again] == order


def test_suggest_unknown_size_ranks_between_enough_and_too_small(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cat = _planted(tmp_path)
    found = api.suggest(language="qaa", tokens="2B", license="cc-by-sa", catalog=[cat])
    assert [s.name for s in found] == ["q-unknown"]
    assert "size unknown" in found[0].reasons[0]
    assert found[0].command == "corpuskit fetch q-unknown --max-bytes 8GB"


def test_suggest_for_german_web_proposes_a_subset_slice(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "suggest", "--language", "de", "--domain", "web",
                              "--tokens", "2B", "--license", "permissive")
    assert code == 0, err
    assert "corpuskit fetch fineweb-2 --subset deu_Latn --max-bytes 8GB" in out
    assert all(" --subset " in line for line in out.strip().splitlines())


def test_suggest_nothing_fits_is_one_line(data_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "suggest", "--language", "qzz")
    assert code == 1 and out == "" and "no catalog entry fits" in err
    assert len(err.strip().splitlines()) == 1


def test_info_is_readable_with_sources_and_subsets(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "info", "fineweb-2")
    assert code == 0, err
    assert "license:    ODC-By-1.0 (permissive)" in out and "gated:      no" in out
    assert "source:     Hugging Face dataset HuggingFaceFW/fineweb-2 at main" in out
    assert "{" not in out  # no JSON blob anywhere
    assert "subsets:    27" in out and "deu_Latn" in out and "data/deu_Latn/train/*.parquet" in out
    assert "sources:    6" in out
    first = "[1] https://huggingface.co/datasets/HuggingFaceFW/fineweb-2/tree/main/data/dan_Latn"
    assert f"{first} @ main" in out
    assert "fetched:    no (`corpuskit fetch fineweb-2`)" in out
    code, out, _ = run_main(capsys, "info", "culturax")
    assert "gated:      yes: accept the terms at https://huggingface.co/datasets/uonlp/" in out
    assert "HF_TOKEN" in out and "bytes unknown" in out and "tokens unknown" in out


def test_info_shows_what_is_on_disk(data_dir: Path, tiny_corpus: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    api.fetch(tiny_corpus, progress=False)
    raw = data_dir / "raw" / tiny_corpus
    shutil.copytree(raw, raw.parent / f"{tiny_corpus}@max-documents=10")
    code, out, err = run_main(capsys, "info", tiny_corpus)
    assert code == 0, err
    assert "fetched:    yes, 200 documents" in out
    assert f"slice:      {raw.parent / (tiny_corpus + '@max-documents=10')}" in out
    assert "sources:    none recorded (facts unverified)" in out
