"""The text reader's units: a whole file, its paragraphs, or its lines, streamed."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from corpuskit.catalog import ReaderOptions
from corpuskit.readers import text as text_reader


def _read(path: Path, unit: str) -> list[dict]:
    return list(text_reader.read([(path, "f.txt")], ReaderOptions(unit=unit)))


def test_paragraphs_lines_and_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("\ufeffFirst line\nstill first\n\n\n  \nSecond\r\nthird para?\n\nlast", "utf-8")
    whole = _read(path, "file")
    assert [d["text"] for d in whole] == [
        "First line\nstill first\n\n\n  \nSecond\r\nthird para?\n\nlast"
    ]
    paras = _read(path, "paragraph")
    assert [d["text"] for d in paras] == ["First line\nstill first", "Second\nthird para?", "last"]
    assert [d["key"] for d in paras] == ["f.txt#0", "f.txt#1", "f.txt#2"]
    lines = _read(path, "line")
    assert [d["text"] for d in lines] == [
        "First line",
        "still first",
        "Second",
        "third para?",
        "last",
    ]


def test_bad_bytes_part_way_keep_what_came_before_and_count_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"good one\n\ngood two\n\n" + b"x" * 70_000 + b"\xff\xfe broken\n\nlater\n")
    docs = _read(path, "paragraph")
    assert [d["text"] for d in docs[:2]] == ["good one", "good two"]
    assert docs[-1]["text"] is None and docs[-1]["skip"] == "not_utf8"
    assert len(docs) == 3


_LINE = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_LINE, max_size=30))
def test_no_text_is_lost_between_units(tmp_path_factory, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Every non-blank line comes back exactly once, in order, in either unit."""
    path = tmp_path_factory.mktemp("u") / "f.txt"
    path.write_bytes("\n".join(lines).encode("utf-8"))
    kept = [line for line in lines if line.strip()]
    by_line = [d["text"] for d in _read(path, "line")]
    assert by_line == kept
    by_para = [d["text"] for d in _read(path, "paragraph")]
    assert [x for p in by_para for x in p.split("\n")] == kept
    keys = [d["key"] for d in _read(path, "paragraph")]
    assert len(set(keys)) == len(keys)
