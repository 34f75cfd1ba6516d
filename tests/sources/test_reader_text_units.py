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


def _local_catalog(tmp_path: Path, folder: Path, glob: str, reader: str) -> Path:
    catalog = tmp_path / "cat.yaml"
    catalog.write_text(
        "corpora:\n  - name: mine\n    title: t\n    description: d\n    license: CC0-1.0\n"
        "    languages: [ja]\n    domains: [literature]\n"
        f"    source: {{type: local, kind: files, path: '{folder}', globs: ['{glob}']}}\n"
        f"{reader}",
        encoding="utf-8",
    )
    return catalog


def test_local_folder_uses_the_entrys_reader_and_units(tmp_path: Path) -> None:
    """A novel of 2,344 lines in one file (Aozora Bunko) becomes one document per line, so a
    validation share can be held out; a local folder of JSON Lines is read as JSON Lines."""
    import pyarrow as pa

    from corpuskit import api
    from tests.conftest import needs_shared

    folder = needs_shared("aozora-ja")
    catalog = _local_catalog(
        tmp_path, folder, "*.txt", "    reader: text\n    reader_options: {unit: line}\n"
    )
    result = api.fetch("mine", data_dir=tmp_path / "data", catalog=[catalog], progress=False)
    raw = tmp_path / "data" / "raw" / "mine"
    table = pa.concat_tables(
        pa.ipc.open_file(p).read_all() for p in sorted(raw.rglob("part-*.arrow"))
    )
    lines = [
        x for x in (folder / "wagahaiwa_nekodearu.txt").read_text("utf-8").split("\n") if x.strip()
    ]
    assert table["text"].to_pylist() == lines
    assert result.manifest["splits"]["train"]["documents"] == len(lines) == 2344

    jsonl = tmp_path / "jsonl"
    jsonl.mkdir()
    (jsonl / "a.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n', encoding="utf-8")
    catalog = _local_catalog(tmp_path, jsonl, "*.jsonl", "    reader: jsonl\n")
    api.fetch("mine", data_dir=tmp_path / "d2", catalog=[catalog], progress=False)
    shard = next((tmp_path / "d2" / "raw" / "mine").rglob("part-*.arrow"))
    assert pa.ipc.open_file(shard).read_all()["text"].to_pylist() == ["one", "two"]
