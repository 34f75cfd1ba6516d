"""Readers: WikiText against the real validation files, and the structured formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError
from corpuskit.readers import code, csvfile, jsonl, parquet, text, wikitext
from tests.conftest import needs_shared
from tests.sources.test_fetch_helpers import wikitext_parquet

OPTS = ReaderOptions()


@pytest.mark.parametrize("name", ["wiki.valid.tokens", "wiki.valid.raw"])
def test_wikitext_validation_articles_and_published_counts(name: str) -> None:
    path = needs_shared("wikitext-2", name)
    docs = list(wikitext.read([(path, name)], OPTS))
    assert len(docs) == 60
    joined = "".join(d["text"] for d in docs)
    assert joined == path.read_text(encoding="utf-8")
    assert joined.count("\n") == 3760
    assert sum(len(d["text"].split()) for d in docs) + 3760 == 217_646
    assert docs[0]["title"] == "Homarus gammarus"
    assert all(d["text"].count("\n = ") >= 1 for d in docs)  # each holds its own heading
    assert [d["key"] for d in docs[:2]] == ["000000", "000001"]


def test_wikitext_parquet_rows_give_the_same_documents(tmp_path: Path) -> None:
    path = needs_shared("wikitext-2", "wiki.valid.tokens")
    pq_path = tmp_path / "validation-00000-of-00001.parquet"
    pq_path.write_bytes(wikitext_parquet(path))
    from_file = list(wikitext.read([(path, path.name)], OPTS))
    from_rows = list(wikitext.read([(pq_path, pq_path.name)], OPTS))
    assert [d["text"] for d in from_rows] == [d["text"] for d in from_file]


def test_wikitext_article_continues_across_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tokens", tmp_path / "b.tokens"
    a.write_text(" \n = One = \n \n text one \n", encoding="utf-8")
    b.write_text(" more one \n \n = = Section = = \n \n = Two = \n \n two \n", encoding="utf-8")
    docs = list(wikitext.read([(a, "a"), (b, "b")], OPTS))
    assert [d["title"] for d in docs] == ["One", "Two"]
    assert docs[0]["text"].endswith(" more one \n \n = = Section = = \n \n")
    assert docs[1]["file"] == "b"


def test_jsonl_plain_gz_zst_and_bad_lines(tmp_path: Path) -> None:
    lines = [json.dumps({"text": "first", "t": "A"}), "{not json", json.dumps({"text": ""}),
             json.dumps([1, 2]), json.dumps({"text": "second", "t": "B"})]
    raw = ("\n".join(lines) + "\n").encode() + b'{"text": "caf\xe9"}\n'
    (tmp_path / "d.jsonl").write_bytes(raw)
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "d.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    opts = ReaderOptions(title_field="t")
    for name in ("d.jsonl", "d.jsonl.gz", "d.jsonl.zst"):
        docs = list(jsonl.read([(tmp_path / name, name)], opts))
        assert [d["text"] for d in docs if d["text"]] == ["first", "second"]
        assert sorted(d["skip"] for d in docs if "skip" in d) == [
            "bad_json", "no_text", "not_an_object", "not_utf8"]
        assert docs[0]["title"] == "A"
    (tmp_path / "arr.json").write_text(json.dumps([{"text": "x"}, {"text": "y"}]))
    assert [d["text"] for d in jsonl.read([(tmp_path / "arr.json", "arr.json")], OPTS)] == [
        "x", "y"]


def test_csv_chosen_columns_multiline_and_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b'\xef\xbb\xbfid,Summary,Text\n1,Good,"line one\nline two"\n2,,only text\n'
                     b"3,bad,\xff\xfe\n")
    opts = ReaderOptions(text_fields=["Summary", "Text"], metadata_fields=["id"])
    docs = list(csvfile.read([(path, "r.csv")], opts))
    assert docs[0]["text"] == "Good\n\nline one\nline two" and docs[0]["meta_id"] == "1"
    assert docs[1]["text"] == "only text"
    assert docs[2]["skip"] == "not_utf8"
    with pytest.raises(CorpuskitError, match="no column.*Body"):
        list(csvfile.read([(path, "r.csv")], ReaderOptions(text_fields=["Body"])))


def test_parquet_rows(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"content": ["a b", None, "c"], "lang": ["en", "en", "fr"]}), path)
    opts = ReaderOptions(text_fields=["content"], metadata_fields=["lang"])
    docs = list(parquet.read([(path, "p.parquet")], opts))
    assert [d["text"] for d in docs] == ["a b", None, "c"] and docs[2]["lang"] == "fr"
    assert docs[1]["skip"] == "no_text"
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(CorpuskitError, match="not a readable parquet"):
        list(parquet.read([(tmp_path / "broken.parquet", "broken.parquet")], opts))


def test_text_and_code(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfhello\n")
    (tmp_path / "b.txt").write_bytes(b"\xff")
    docs = list(text.read([(tmp_path / "a.txt", "a.txt"), (tmp_path / "b.txt", "b.txt")], OPTS))
    assert docs[0]["text"] == "hello\n" and docs[1]["skip"] == "not_utf8"
    (tmp_path / "m.rs").write_text("fn main() {}\n")
    (tmp_path / "Makefile").write_text("all:\n\techo hi\n")
    docs = list(code.read([(tmp_path / "m.rs", "src/m.rs"), (tmp_path / "Makefile", "Makefile")],
                          OPTS))
    assert [(d["path"], d["language"]) for d in docs] == [("src/m.rs", "rust"),
                                                          ("Makefile", "make")]
    assert docs[1]["text"] == "all:\n\techo hi\n"
