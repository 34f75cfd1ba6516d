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


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [_as_text(v) for v in value]
        return "\n".join(p for p in parts if p) or None
    return str(value)


def record_document(
    record: Mapping[str, Any], key: str, name: str, options: ReaderOptions
) -> dict[str, Any]:
    """A document from one record: the text fields joined with ``options.separator``."""
    parts = [_as_text(record.get(f)) for f in options.text_fields]
    text = options.separator.join(p for p in parts if p and p.strip())
    doc: dict[str, Any] = {"key": key, "text": text or None, "file": name}
    if not text:
        doc["skip"] = "no_text"
    if options.title_field:
        doc["title"] = _as_text(record.get(options.title_field))
    for field in options.metadata_fields:
        doc[column_name(field)] = _as_text(record.get(field))
    return doc
