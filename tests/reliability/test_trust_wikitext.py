"""WikiText article boundaries: the published article counts, and the heading look-alike trap.

A top-level heading `` = Title = `` stands between blank lines. WikiText-2's test split has
formula lines such as `` = 1 <unk> / s and a nominal <unk> k = `` that continue the sentence
above; read as headings they made 62 test articles instead of the published 60.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpuskit.catalog import ReaderOptions
from corpuskit.readers import wikitext
from tests.conftest import needs_shared
from tests.sources.test_fetch_helpers import wikitext_parquet

OPTS = ReaderOptions()

# Published statistics (Merity et al. 2016, "Pointer Sentinel Mixture Models"): articles per
# split, and tokens (whitespace words plus one end-of-line token per line).
PUBLISHED = {
    "wiki.train.tokens": (600, 2_088_628),
    "wiki.valid.tokens": (60, 217_646),
    "wiki.test.tokens": (60, 245_569),
    "wiki.train.raw": (600, None),
    "wiki.valid.raw": (60, 217_646),
    "wiki.test.raw": (60, 245_569),
}

# An article whose body holds formula lines shaped like headings (as in WikiText-2's test
# split, article "Constant k filter"), then a real second article.
TRAP = (
    " \n"
    " = Constant k filter = \n"
    " \n"
    " The prototype has a cut @-@ off frequency of <unk> \n"
    " = 1 <unk> / s and a nominal <unk> k = \n"
    " 1 <unk> . This is produced by a filter half @-@ section with <unk> L \n"
    " = 1 <unk> and <unk> C = \n"
    " \n"
    " = = Section = = \n"
    " \n"
    " more text \n"
    " \n"
    " = The <unk> = \n"
    " \n"
    " second article \n"
)


def _read(path: Path, name: str | None = None) -> list[dict]:
    return list(wikitext.read([(path, name or path.name)], OPTS))


def _tokens(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as f:
        return sum(len(line.split()) + 1 for line in f)


@pytest.mark.parametrize("name", ["wiki.valid.tokens", "wiki.valid.raw"])
def test_real_validation_split_has_the_published_60_articles(name: str) -> None:
    path = needs_shared("wikitext-2", name)
    docs = _read(path)
    assert len(docs) == 60
    assert docs[0]["title"] == "Homarus gammarus"
    assert all(d["text"].startswith(" = ") for d in docs[1:])
    # Nothing lost or doubled: the articles join back to the file, whose token count is the
    # published one.
    assert "".join(d["text"] for d in docs) == path.read_text(encoding="utf-8")
    assert _tokens(path) == PUBLISHED[name][1]


@pytest.mark.parametrize(
    "name", ["wiki.train.tokens", "wiki.test.tokens", "wiki.train.raw", "wiki.test.raw"]
)
def test_real_train_and_test_splits_have_the_published_article_counts(name: str) -> None:
    path = needs_shared("wikitext-2", name)  # only the validation split is in ../shared today
    articles, tokens = PUBLISHED[name]
    docs = _read(path)
    assert len(docs) == articles
    assert "".join(d["text"] for d in docs) == path.read_text(encoding="utf-8")
    if tokens is not None:
        assert _tokens(path) == tokens


def test_real_validation_split_from_hub_rows_has_60_articles(tmp_path: Path) -> None:
    """The Hub's parquet (blank lines stored as "") finds the same blank lines around headings."""
    path = needs_shared("wikitext-2", "wiki.valid.tokens")
    pq_path = tmp_path / "validation-00000-of-00001.parquet"
    pq_path.write_bytes(wikitext_parquet(path))
    docs = _read(pq_path)
    assert len(docs) == 60
    assert [d["text"] for d in docs] == [d["text"] for d in _read(path)]


def test_heading_shaped_lines_inside_an_article_do_not_start_one(tmp_path: Path) -> None:
    path = tmp_path / "wiki.test.tokens"
    path.write_text(TRAP, encoding="utf-8", newline="")
    docs = _read(path)
    assert [d["title"] for d in docs] == ["Constant k filter", "The <unk>"]
    assert " = 1 <unk> and <unk> C = \n" in docs[0]["text"]
    assert "".join(d["text"] for d in docs) == TRAP


def test_the_trap_in_hub_rows_too(tmp_path: Path) -> None:
    source = tmp_path / "wiki.test.tokens"
    source.write_text(TRAP, encoding="utf-8", newline="")
    pq_path = tmp_path / "test-00000-of-00001.parquet"
    pq_path.write_bytes(wikitext_parquet(source))
    assert [d["title"] for d in _read(pq_path)] == ["Constant k filter", "The <unk>"]


def test_neighbours_are_seen_across_the_files_of_a_split(tmp_path: Path) -> None:
    """A split given as several files is one stream: a heading-shaped first line of the second
    file that continues the first file's last sentence is not a heading; a real heading at the
    start of the next file is."""
    a, b, c = tmp_path / "a.tokens", tmp_path / "b.tokens", tmp_path / "c.tokens"
    a.write_text(" \n = One = \n \n the value is \n", encoding="utf-8")
    b.write_text(" = 3 = \n \n still one \n \n", encoding="utf-8")
    c.write_text(" = Two = \n \n two \n", encoding="utf-8")
    docs = list(wikitext.read([(a, "a"), (b, "b"), (c, "c")], OPTS))
    assert [d["title"] for d in docs] == ["One", "Two"]
    assert docs[0]["text"].endswith(" the value is \n = 3 = \n \n still one \n \n")
    assert docs[1]["file"] == "c"


def test_headings_at_the_very_start_and_end_of_a_stream(tmp_path: Path) -> None:
    """The start and the end of a split count as blank: no line is lost at either edge."""
    path = tmp_path / "wiki.valid.tokens"
    text = " = First = \n \n body \n \n = Last = \n"
    path.write_text(text, encoding="utf-8", newline="")
    docs = _read(path)
    assert [d["title"] for d in docs] == ["First", "Last"]
    assert "".join(d["text"] for d in docs) == text


def test_undecodable_neighbour_is_not_blank(tmp_path: Path) -> None:
    """A line that is not UTF-8 is not a blank line, so it cannot make its neighbour a heading;
    the article holding it is still counted as skipped (not_utf8), not dropped silently."""
    path = tmp_path / "wiki.valid.tokens"
    path.write_bytes(b" = A = \n \n caf\xe9 \n = B = \n \n b \n")
    docs = _read(path)
    assert len(docs) == 1
    assert docs[0]["text"] is None and docs[0]["skip"] == "not_utf8"
