"""Parquet files: one document per row, text from ``reader_options.text_fields``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError
from corpuskit.readers import one_line
from corpuskit.readers.structured import columns, record_document


def metadata_columns(options: ReaderOptions) -> list[str]:
    return columns(options)


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = [*options.text_fields, *options.metadata_fields]
    if options.title_field:
        wanted.append(options.title_field)
    for path, name in files:
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise CorpuskitError(f"{name}: not a readable parquet file ({one_line(exc)})") from None
        names = pf.schema_arrow.names
        missing = [c for c in options.text_fields if c not in names]
        if missing:
            raise CorpuskitError(
                f"{name}: no column(s) {', '.join(missing)} (columns: {', '.join(names)}); "
                "set reader_options.text_fields in the catalog"
            )
        cols = [c for c in dict.fromkeys(wanted) if c in names]
        n = 0
        batches = pf.iter_batches(columns=cols, batch_size=8192)
        while True:
            try:
                batch = next(batches, None)
                records = batch.to_pylist() if batch is not None else []
            except (OSError, ValueError, pa.ArrowException) as exc:
                # A damaged data page (bad compression, a cut-off stream, bytes that are not
                # UTF-8 in a string column) surfaces only here, after the footer opened fine.
                raise CorpuskitError(
                    f"{name}: damaged parquet file ({one_line(exc)}); delete it and fetch again"
                ) from None
            if batch is None:
                break
            for record in records:
                yield record_document(record, f"{name}/{n:09d}", name, options)
                n += 1
