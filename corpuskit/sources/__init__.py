"""Source types: each turns a catalog entry into a stream of documents.

A source module provides ``input_fingerprint(entry)`` (cheap: decides whether a fetch is needed),
``metadata_columns(entry)`` (the extra shard columns) and ``iter_documents(entry)`` (documents in a
stable order; a ``None`` text is a file that could not be decoded and is counted as skipped).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError

_MODULES = {"local": "corpuskit.sources.local"}


def source_module(entry: CorpusEntry) -> ModuleType:
    name = _MODULES.get(entry.source.type)
    if name is None:
        raise CorpuskitError(
            f"corpus {entry.name!r} comes from a {entry.source.type!r} source, which this "
            f"version cannot fetch yet; available source types: {', '.join(sorted(_MODULES))}"
        )
    return importlib.import_module(name)
