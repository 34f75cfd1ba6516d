"""CSV files: one document per row, text from the chosen columns (``reader_options``).

Fields may hold newlines and be of any length. Bytes that are not UTF-8 make the row a counted
``not_utf8`` skip instead of being replaced silently.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError
from corpuskit.readers import skipped
from corpuskit.readers.structured import columns, record_document

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def metadata_columns(options: ReaderOptions) -> list[str]:
    return columns(options)


def _has_surrogates(row: dict[str, Any]) -> bool:
    for v in row.values():
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    try:
        "".encode(options.encoding)
    except LookupError:
        raise CorpuskitError(
            f"reader_options.encoding {options.encoding!r} is not a known text encoding"
        ) from None
    for path, name in files:
        with path.open(encoding=options.encoding, errors="surrogateescape", newline="") as f:
            reader = csv.DictReader(f, delimiter=options.delimiter)
            header = [h.lstrip("\ufeff") for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in options.text_fields if c not in header]
            if missing:
                raise CorpuskitError(
                    f"{name}: no column(s) {', '.join(missing)} (columns: {', '.join(header)}); "
                    "set reader_options.text_fields in the catalog"
                )
            try:
                for n, row in enumerate(reader):
                    key = f"{name}/{n:09d}"
                    if _has_surrogates(row):
                        yield skipped(key, name, "not_utf8")
                    else:
                        yield record_document(row, key, name, options)
            except csv.Error as exc:
                raise CorpuskitError(
                    f"{name}: malformed CSV near line {reader.line_num}: {exc}"
                ) from None
