"""JSON Lines (``.jsonl``, ``.json`` with one object per line, or a JSON array), optionally
compressed (``.gz``, ``.zst``, ``.xz``): one document per record, text from
``reader_options.text_fields``.

Lines are read as bytes and decoded one at a time, so a bad line is a counted skip
(``not_utf8`` or ``bad_json``) and never stops the corpus.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import zlib
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
    """The file's bytes, decompressed by suffix (``.gz``, ``.zst``, ``.xz``), streamed."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
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
        except UnicodeDecodeError:
            yield 0, ValueError("not_utf8")
            return
        except (ValueError, RecursionError):
            # ValueError: bad JSON, or an integer beyond Python's 4,300-digit limit;
            # RecursionError: nesting deeper than the parser's stack (``[[[[...]]]]``).
            yield 0, ValueError("bad_json")
            return
        yield from enumerate(items)
        return
    for n, raw in enumerate(stream):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            record = ValueError("not_utf8")
        except (ValueError, RecursionError):  # see above: huge integers, deep nesting
            record = ValueError("bad_json")
        yield n, record


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    for path, name in files:
        yield from guarded(name, _read_file(path, name, options))


def guarded(name: str, documents: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``documents`` of one file, a damaged compressed stream turned into a one-line error.

    Shared with the text reader: a truncated ``.gz``/``.xz``/``.zst`` file must stop the fetch
    with a message naming the file, never end its documents early as if it were complete.
    """
    try:
        yield from documents
    except (EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        # gzip raises EOFError or BadGzipFile on a truncated or mislabelled file, lzma EOFError
        # or LZMAError; an OSError with an errno is the machine's (disk, permissions) and
        # keeps its own message.
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise CorpuskitError(
            f"{name}: damaged or truncated compressed file ({exc}); delete it and fetch again"
        ) from None
    except Exception as exc:
        if type(exc).__name__ != "ZstdError":  # zstandard's own error type
            raise
        raise CorpuskitError(
            f"{name}: damaged or truncated zstd file ({exc}); delete it and fetch again"
        ) from None


def _read_file(path: Path, name: str, options: ReaderOptions) -> Iterator[dict[str, Any]]:
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
