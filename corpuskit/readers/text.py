"""Plain text files: one document per file, decoded as strict UTF-8."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpuskit.catalog import ReaderOptions
from corpuskit.readers import decode, skipped


def metadata_columns(options: ReaderOptions) -> list[str]:
    return ["file"]


def read(files: list[tuple[Path, str]], options: ReaderOptions) -> Iterator[dict[str, Any]]:
    for path, name in files:
        text = decode(path.read_bytes())
        if text is None:
            yield skipped(name, name, "not_utf8")
        else:
            yield {"key": name, "text": text, "file": name}
