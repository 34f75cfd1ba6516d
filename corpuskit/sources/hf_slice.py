"""Reading only the row groups a slice needs from remote parquet files (HTTP range requests).

A slice of a corpus made of 2 GB parquet files must not download 2 GB: each file is opened
through fsspec's HTTP file with no read-ahead cache (every read is one ``Range`` request for
exactly the bytes pyarrow asks for: the footer, then the column chunks of one row group), and
row groups are read in order only until the budget is passed. The rows read are written to a
local parquet file that the ordinary parquet reader then reads; ``fetch`` cuts the documents at
the exact budget. Only the columns the reader uses are requested.

The budget is measured as the reader measures it: a row's document is its non-blank text
fields joined by the separator, so the row groups downloaded always cover the cut ``fetch``
makes (see corpuskit/slices.py), and the download is the slice plus at most one row group and
the footers.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError


@dataclass
class Budget:
    """What a slice still needs; ``passed`` once the rows read cover the cut ``fetch`` makes."""

    max_bytes: int | None
    max_documents: int | None
    bytes: int = 0
    documents: int = 0

    @property
    def passed(self) -> bool:
        # Strictly more bytes than the budget: the document that does not fit has been read,
        # so fetch knows where the slice ends without another row group.
        if self.max_bytes is not None and self.bytes > self.max_bytes:
            return True
        return self.max_documents is not None and self.documents >= self.max_documents


class CountingFile(io.RawIOBase):
    """A read-only file that counts the bytes read through it (what went over the network)."""

    def __init__(self, inner: Any):
        super().__init__()
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self.inner.seek(offset, whence))

    def tell(self) -> int:
        return int(self.inner.tell())

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def document_sizes(table: pa.Table, options: ReaderOptions) -> tuple[int, int]:
    """(documents, UTF-8 bytes of their text) of some rows, as the parquet reader makes them."""
    sep = len(options.separator.encode("utf-8"))
    total = pa.array([0] * table.num_rows, pa.int64())
    parts = pa.array([0] * table.num_rows, pa.int64())
    for name in options.text_fields:
        if name not in table.column_names:
            continue
        column = table.column(name)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.large_string())
        present = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0),
                               False)
        size = pc.if_else(present, pc.binary_length(column).cast(pa.int64()), 0)
        total = pc.add(total, size)
        parts = pc.add(parts, pc.cast(present, pa.int64()))
    joins = pc.multiply(pc.max_element_wise(pc.subtract(parts, 1), 0), sep)
    text_bytes = pc.sum(pc.add(total, joins)).as_py() or 0
    documents = pc.sum(pc.greater(parts, 0)).as_py() or 0
    return int(documents), int(text_bytes)


def reader_columns(options: ReaderOptions) -> list[str]:
    wanted = [*options.text_fields, *options.metadata_fields]
    if options.title_field:
        wanted.append(options.title_field)
    return list(dict.fromkeys(wanted))


def read_footer(handle: Any, name: str) -> Any:
    """A parquet file's metadata, read with two exact range requests (its length, then it):
    pyarrow alone reads the last 64 KiB, a third of the download of a small slice."""
    import pyarrow.parquet as pq

    size = handle.seek(0, 2)
    handle.seek(max(0, size - 8))
    tail = handle.read(8)
    length = int.from_bytes(tail[:4], "little") if len(tail) == 8 else 0
    if size < 12 or tail[4:] != b"PAR1" or not 0 < length <= size - 12:
        raise CorpuskitError(f"{name}: not a parquet file (no footer at its end)")
    handle.seek(size - 8 - length)
    footer = handle.read(length)
    try:
        return pq.read_metadata(pa.BufferReader(footer + tail))
    except (ValueError, pa.ArrowException) as exc:
        raise CorpuskitError(f"{name}: damaged parquet footer ({exc})") from None


@dataclass
class FileSlice:
    """What was read of one remote file."""

    row_groups: int
    rows: int
    transferred: int


def slice_parquet(
    handle: Any, dest: Path, options: ReaderOptions, budget: Budget, name: str
) -> FileSlice:
    """Read row groups of the open remote file ``handle`` in order until ``budget`` is passed
    and write them to ``dest`` (atomically). ``handle`` is any seekable binary file."""
    import pyarrow.parquet as pq

    counted = CountingFile(handle)
    metadata = read_footer(counted, name)  # HTTP failures propagate: the caller retries them
    try:
        pf = pq.ParquetFile(counted, metadata=metadata)
    except (ValueError, pa.ArrowException) as exc:
        raise CorpuskitError(f"{name}: not a readable parquet file ({exc})") from None
    names = pf.schema_arrow.names
    missing = [c for c in options.text_fields if c not in names]
    if missing:
        raise CorpuskitError(
            f"{name}: no column(s) {', '.join(missing)} (columns: {', '.join(names)}); "
            "set reader_options.text_fields in the catalog"
        )
    columns = [c for c in reader_columns(options) if c in names]
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    groups = rows = 0
    try:
        with pq.ParquetWriter(tmp, pf.schema_arrow.empty_table().select(columns).schema) as out:
            while groups < pf.num_row_groups and not budget.passed:
                table = pf.read_row_group(groups, columns=columns)
                out.write_table(table)
                documents, text_bytes = document_sizes(table, options)
                budget.documents += documents
                budget.bytes += text_bytes
                groups += 1
                rows += table.num_rows
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return FileSlice(groups, rows, counted.count)
