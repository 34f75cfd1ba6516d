"""Source types: each turns a catalog entry into a stream of documents.

A source module provides ``input_fingerprint(entry)`` (cheap: decides whether a fetch is needed),
``metadata_columns(entry)`` (the extra shard columns) and ``iter_documents(...)`` (documents in a
stable order; a ``None`` text is a document that could not be used, counted as skipped under its
``skip`` reason, ``not_utf8`` by default).

Remote sources add a ``prepare(entry, ctx)`` step that downloads, verifies and unpacks into
``<data>/downloads/<corpus>/`` and returns a :class:`corpuskit.sources.common.Prepared`; their
``iter_documents(entry, prepared)`` then only reads local files. Local sources have no
``prepare`` and take ``iter_documents(entry)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError

_MODULES = {
    "local": "corpuskit.sources.local",
    "http": "corpuskit.sources.http",
    "hf": "corpuskit.sources.hf",
    "kaggle": "corpuskit.sources.kaggle",
    "github": "corpuskit.sources.github",
}


def source_module(entry: CorpusEntry) -> ModuleType:
    name = _MODULES.get(entry.source.type)
    if name is None:
        raise CorpuskitError(
            f"corpus {entry.name!r} comes from a {entry.source.type!r} source, which this "
            f"version cannot fetch yet; available source types: {', '.join(sorted(_MODULES))}"
        )
    return importlib.import_module(name)
