"""What the jsonl, csv and parquet readers share: picking the text out of a record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corpuskit.catalog import ReaderOptions

RESERVED = {"id", "text", "split", "source", "file", "title", "key", "skip"}


def column_name(field: str) -> str:
    """A record field's shard column: its own name unless that is one of ours (``id``...)."""
    return f"meta_{field}" if field in RESERVED else field


def columns(options: ReaderOptions) -> list[str]:
    cols = ["file"]
    if options.title_field:
        cols.append("title")
    cols += [c for c in map(column_name, options.metadata_fields) if c not in cols]
    return cols


class NotUtf8(ValueError):
    """A binary field whose bytes are not UTF-8 (counted as a ``not_utf8`` skip)."""


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        # A binary column (parquet) holds bytes: decode them, never write their repr.
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise NotUtf8 from None
    if isinstance(value, list):
        parts = [_as_text(v) for v in value]
        return "\n".join(p for p in parts if p) or None
    return str(value)


def _meta_text(value: Any) -> str | None:
    """A title or metadata value; bytes that are not UTF-8 become None (the text decides)."""
    try:
        return _as_text(value)
    except NotUtf8:
        return None


def record_document(
    record: Mapping[str, Any], key: str, name: str, options: ReaderOptions
) -> dict[str, Any]:
    """A document from one record: the text fields joined with ``options.separator``."""
    try:
        parts = [_as_text(record.get(f)) for f in options.text_fields]
        text = options.separator.join(p for p in parts if p and p.strip())
        skip = None if text else "no_text"
    except NotUtf8:
        text, skip = "", "not_utf8"
    doc: dict[str, Any] = {"key": key, "text": text or None, "file": name}
    if skip:
        doc["skip"] = skip
    if options.title_field:
        doc["title"] = _meta_text(record.get(options.title_field))
    for field in options.metadata_fields:
        doc[column_name(field)] = _meta_text(record.get(field))
    return doc
