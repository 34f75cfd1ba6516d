"""WikiText: the original ``wiki.*.tokens`` / ``wiki.*.raw`` files or the Hub's parquet rows.

One document per article. An article starts at a top-level heading line `` = Title = `` (not
`` = = Section = = ``) standing between blank lines, and runs to the line before the next one;
lines before the first heading belong to the first article. The blank lines matter: a line
inside an article can look like a heading (WikiText-2's test split has formula lines such as
`` = 1 <unk> / s and a nominal <unk> k = `` that continue the sentence above), and counting them
would give 62 test articles instead of the published 60. The start and the end of a split's
stream count as blank. Every line is kept, blank ones included, with its newline, so the
documents of a split concatenate back to the original file byte for byte, and counting
whitespace tokens plus one end-of-line token per line reproduces the published token counts.

The Hub's parquet has one row per line with blank lines stored as ``""`` (the original files
have `` \\n``); rows are mapped back to the file's lines, so both inputs give the same documents.
A split given as several files (WikiText-103 train on the Hub) is read as one stream, because an
article may continue from one file into the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError
from corpuskit.readers import one_line, skipped

HEADING = re.compile(r"^ = (?!=)(.*?) = \n?$")


def metadata_columns(options: ReaderOptions) -> list[str]:
    return ["file", "title"]


def _file_lines(path: Path) -> Iterator[str | None]:
    with path.open("rb") as f:
        for raw in f:  # splits on b"\n" only, like the original files' line structure
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                yield None


def _parquet_lines(path: Path, field: str) -> Iterator[str | None]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise CorpuskitError(
            f"{path.name}: not a readable parquet file ({one_line(exc)})"
        ) from None
    if field not in pf.schema_arrow.names:
        raise CorpuskitError(
            f"{path.name}: no column {field!r} (columns: {', '.join(pf.schema_arrow.names)})"
        )
    import pyarrow as pa

    batches = pf.iter_batches(columns=[field], batch_size=65536)
    while True:
        try:
            batch = next(batches, None)
            rows = batch.column(0).to_pylist() if batch is not None else []
        except (OSError, ValueError, pa.ArrowException) as exc:  # a damaged data page
            raise CorpuskitError(
                f"{path.name}: damaged parquet file ({one_line(exc)}); delete it and fetch again"
            ) from None
        if batch is None:
            break
        for row in rows:
            if row is None or row == "":
                yield " \n"
            else:
                yield row if row.endswith("\n") else row + "\n"


def lines(path: Path, options: ReaderOptions) -> Iterator[str | None]:
    """The lines of one WikiText file (either format), each ending with a newline."""
    if path.suffix == ".parquet":
        return _parquet_lines(path, options.text_fields[0])
    return _file_lines(path)


def heading_title(line: str) -> str | None:
    """The title if ``line`` has the form of a top-level heading (its neighbours not checked)."""
    m = HEADING.match(line)
    return m.group(1) if m else None


def _blank(line: str | None) -> bool:
    """A blank line (a space and a newline in the files); an undecodable line (None) is
    not blank."""
    return line is not None and not line.strip()


def _stream(
    files: list[tuple[Path, str]], options: ReaderOptions
) -> Iterator[tuple[str | None, str]]:
    """The lines of a split's files as one stream, each with the name of its file."""
    for path, name in files:
        for line in lines(path, options):
            yield line, name


def _with_titles(
    files: list[tuple[Path, str]], options: ReaderOptions
) -> Iterator[tuple[str | None, str, str | None]]:
    """Every line with its file name and, when it opens an article, the article's title.

    A heading-shaped line opens an article only when the lines before and after it are blank
    (or it is at the start or end of the stream), so one line of look-ahead is kept.
    """
    previous: str | None = ""  # the start of the stream counts as blank
    pending: tuple[str | None, str] | None = None
    for current in _stream(files, options):
        if pending is not None:
            yield (*pending, _title(previous, pending[0], current[0]))
            previous = pending[0]
        pending = current
    if pending is not None:
        yield (*pending, _title(previous, pending[0], ""))


def _title(previous: str | None, line: str | None, following: str | None) -> str | None:
    if line is None or not (_blank(previous) and _blank(following)):
        return None
    return heading_title(line)


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    buffer: list[str] = []
    title: str | None = None
    file_of_article = files[0][1] if files else ""
    index = 0
    bad = False

    def emit() -> dict[str, Any]:
        key = f"{index:06d}"
        if bad:
            return skipped(key, file_of_article, "not_utf8", title=title)
        return {"key": key, "text": "".join(buffer), "file": file_of_article, "title": title}

    for line, name, found in _with_titles(files, options):
        if found is not None and title is not None:
            yield emit()
            index += 1
            buffer, bad = [], False
        if found is not None:
            if title is None or not buffer:
                file_of_article = name
            title = found
        if line is None:
            bad = True
        else:
            buffer.append(line)
    if buffer:
        yield emit()
