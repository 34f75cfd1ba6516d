"""Parquet files: one document per row, text from ``reader_options.text_fields``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError
from corpuskit.readers.structured import columns, record_document


def metadata_columns(options: ReaderOptions) -> list[str]:
    return columns(options)


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    wanted = [*options.text_fields, *options.metadata_fields]
    if options.title_field:
        wanted.append(options.title_field)
    for path, name in files:
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise CorpuskitError(f"{name}: not a readable parquet file ({exc})") from None
        names = pf.schema_arrow.names
        missing = [c for c in options.text_fields if c not in names]
        if missing:
            raise CorpuskitError(
                f"{name}: no column(s) {', '.join(missing)} (columns: {', '.join(names)}); "
                "set reader_options.text_fields in the catalog"
            )
        cols = [c for c in dict.fromkeys(wanted) if c in names]
        n = 0
        for batch in pf.iter_batches(columns=cols, batch_size=8192):
            for record in batch.to_pylist():
                yield record_document(record, f"{name}/{n:09d}", name, options)
                n += 1
