"""JSON Lines (``.jsonl``, ``.json`` with one object per line, or a JSON array), optionally
compressed (``.gz``, ``.zst``): one document per record, text from ``reader_options.text_fields``.

Lines are read as bytes and decoded one at a time, so a bad line is a counted skip
(``not_utf8`` or ``bad_json``) and never stops the corpus.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from corpuskit.catalog import ReaderOptions
from corpuskit.errors import CorpuskitError
from corpuskit.readers import skipped
from corpuskit.readers.structured import columns, record_document


def metadata_columns(options: ReaderOptions) -> list[str]:
    return columns(options)


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed by suffix (``.gz``, ``.zst``)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix in {".zst", ".zstd"}:
        try:
            import zstandard
        except ImportError:
            raise CorpuskitError(
                f"{path.name} is zstd-compressed: pip install zstandard"
            ) from None
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(path.open("rb")))
    return path.open("rb")


def _records(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    first = stream.peek(64)[:64].lstrip() if hasattr(stream, "peek") else b""
    if first.startswith(b"["):
        try:
            items = json.loads(stream.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            yield 0, ValueError("bad_json")
            return
        yield from enumerate(items)
        return
    for n, raw in enumerate(stream):
        if not raw.strip():
            continue
        try:
            yield n, json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            yield n, ValueError("not_utf8")
        except json.JSONDecodeError:
            yield n, ValueError("bad_json")


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    for path, name in files:
        with open_binary(path) as stream:
            buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
            for n, record in _records(buffered):
                key = f"{name}/{n:09d}"
                if isinstance(record, ValueError):
                    yield skipped(key, name, str(record))
                elif not isinstance(record, dict):
                    yield skipped(key, name, "not_an_object")
                else:
                    yield record_document(record, key, name, options)
