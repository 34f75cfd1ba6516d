"""Plain text files, decoded as strict UTF-8: one document per file, paragraph or line.

``unit: file`` (the default) keeps a file whole. ``unit: paragraph`` cuts at blank lines and
``unit: line`` makes every non-blank line a document; both read the file line by line, so a
file larger than memory streams through, and a single large file becomes many documents that
can be split into train/val and sharded. Blank lines are separators in those units, not lost
text. A file whose bytes stop being UTF-8 part way keeps the documents read before the bad
bytes, and the rest of it is counted as skipped (``not_utf8``), never dropped silently.

A file named ``.gz``, ``.zst`` or ``.xz`` (CC-100 ships one ``xx.txt.xz`` per language) is
decompressed as a stream while it is read; a damaged or truncated one stops with a one-line
error naming the file rather than ending its text early as if it were complete.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.catalog import ReaderOptions
from corpuskit.readers import decode, skipped
from corpuskit.readers.jsonl import guarded, open_binary


def metadata_columns(options: ReaderOptions) -> list[str]:
    return ["file"]


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    for path, name in files:
        if options.unit == "file":
            yield from guarded(name, _whole(path, name))
        else:
            yield from guarded(name, _units(path, name, options.unit))


def _whole(path: Path, name: str) -> Iterator[dict[str, Any]]:
    """The whole file as one document (decompressed when its suffix says so)."""
    with open_binary(path) as stream:
        text = decode(stream.read())
    if text is None:
        yield skipped(name, name, "not_utf8")
    else:
        yield {"key": name, "text": text, "file": name}


def _units(path: Path, name: str, unit: str) -> Iterator[dict[str, Any]]:
    """Paragraphs or lines of one file, keyed ``<file>#<n>`` (n counts from 0 in file order)."""
    count = 0
    pending: list[str] = []

    def emit(text: str) -> dict[str, Any]:
        nonlocal count
        record = {"key": f"{name}#{count}", "text": text, "file": name}
        count += 1
        return record

    # utf-8-sig drops a leading byte-order mark; newline="" keeps "\r\n" as the file has it.
    with io.TextIOWrapper(
        open_binary(path), encoding="utf-8-sig", errors="strict", newline=""
    ) as f:
        try:
            for raw in f:
                line = raw.rstrip("\r\n")
                if not line.strip():
                    if pending:
                        yield emit("\n".join(pending))
                        pending = []
                    continue
                if unit == "line":
                    yield emit(line)
                else:
                    pending.append(line)
        except UnicodeDecodeError:
            yield skipped(f"{name}#{count}", name, "not_utf8")
            return
    if pending:
        yield emit("\n".join(pending))
