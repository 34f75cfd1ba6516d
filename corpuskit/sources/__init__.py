"""Source types: each turns a catalog entry into a stream of documents, behind one protocol.

Every source module (``local``, ``http``, ``hf``, ``kaggle``, ``github``) provides the functions
of :class:`Source`, so ``fetch`` calls them without asking which ones exist:

- ``input_fingerprint(entry)``: cheap; decides whether a fetch is needed (local files' sizes and
  times; ``{}`` for remote sources, whose catalog entry pins what they fetch);
- ``metadata_columns(entry)``: the extra shard columns;
- ``prepare(entry, ctx)``: downloads, verifies and unpacks into ``<data>/downloads/<corpus>/``
  and returns a :class:`corpuskit.sources.common.Prepared` (files to read, what was resolved);
  ``None`` for local sources, which have nothing to download;
- ``iter_documents(entry, prepared)``: documents in a stable order (a ``None`` text is a
  document that could not be used, counted as skipped under its ``skip`` reason, ``not_utf8``
  by default);
- ``read_units(entry, prepared)`` and ``read_part(entry, units)``: the same documents cut into
  units (files, with sizes) that executor tasks read in groups; ``read_units`` returns ``None``
  when the documents must be read as one stream (a reader whose documents cross files).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError

if TYPE_CHECKING:
    from corpuskit.sources.common import FetchContext, Prepared


@runtime_checkable
class Source(Protocol):
    """What ``fetch`` needs of a source type (each module in this package is one)."""

    def input_fingerprint(self, entry: CorpusEntry) -> dict[str, Any]: ...

    def metadata_columns(self, entry: CorpusEntry) -> list[str]: ...

    def prepare(self, entry: CorpusEntry, ctx: FetchContext) -> Prepared | None: ...

    def iter_documents(
        self, entry: CorpusEntry, prepared: Prepared | None
    ) -> Iterator[dict[str, Any]]: ...

    def read_units(
        self, entry: CorpusEntry, prepared: Prepared | None
    ) -> list[tuple[Any, int]] | None: ...

    def read_part(self, entry: CorpusEntry, units: Sequence[Any]) -> Iterator[dict[str, Any]]: ...


_MODULES = {
    "local": "corpuskit.sources.local",
    "http": "corpuskit.sources.http",
    "hf": "corpuskit.sources.hf",
    "kaggle": "corpuskit.sources.kaggle",
    "github": "corpuskit.sources.github",
}


def source_types() -> list[str]:
    return sorted(_MODULES)


def source_module(entry: CorpusEntry) -> Source:
    """The module that fetches ``entry``'s source type; a module missing a function of the
    protocol is a programming error caught here, not an AttributeError mid-fetch."""
    name = _MODULES.get(entry.source.type)
    if name is None:
        raise CorpuskitError(
            f"corpus {entry.name!r} comes from a {entry.source.type!r} source, which this "
            f"version cannot fetch yet; available source types: {', '.join(sorted(_MODULES))}"
        )
    module = importlib.import_module(name)
    if not isinstance(module, Source):
        raise TypeError(f"{name} does not provide every function of the Source protocol")
    return cast(Source, module)
