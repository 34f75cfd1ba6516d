"""Readers: file formats → documents.

A reader module provides ``metadata_columns(options)`` (its extra shard columns, all strings)
and ``read(files, options)``, where ``files`` is a list of ``(path, name)`` pairs of one split in
order. It yields dicts with ``key`` (unique within the split, stable), ``text`` and its columns.
A document that cannot be used has ``text=None`` and a ``skip`` reason (``not_utf8``,
``bad_json``, ``binary``, ``no_text``...), which the fetch counts instead of dropping silently.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from corpuskit.errors import CorpuskitError

READERS = ("wikitext", "text", "parquet", "jsonl", "csv", "code")


def reader_for(name: str) -> ModuleType:
    if name not in READERS:
        raise CorpuskitError(f"unknown reader {name!r}; known: {', '.join(READERS)}")
    module = "csvfile" if name == "csv" else name
    return importlib.import_module(f"corpuskit.readers.{module}")


def decode(data: bytes) -> str | None:
    """Strict UTF-8 (a leading byte-order mark dropped); None when the bytes are not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text[1:] if text.startswith("\ufeff") else text


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (pyarrow's end with newlines and carry several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def skipped(key: str, name: str, reason: str, **columns: str | None) -> dict[str, str | None]:
    """The record of a document that was not usable, counted by reason in the manifest."""
    return {"key": key, "text": None, "file": name, "skip": reason, **columns}
