"""Sources read as one stream in this process, and slices cut at a byte or document budget.

WikiText (read split by split, whose articles may continue in the next file), sources that offer
no ``read_units``, and slices by ``max_bytes``/``max_documents`` are read here; the manifest's
slice record (what a slice kept, and what was transferred for it) is made here too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from tqdm.auto import tqdm

from corpuskit.catalog import CorpusEntry
from corpuskit.faults import checkpoint
from corpuskit.shards import ShardWriter
from corpuskit.slices import Slice
from corpuskit.sources.common import Prepared


def within_budget(
    documents: Iterator[dict[str, Any]], sl: Slice, name: str, progress: bool
) -> Iterator[dict[str, Any]]:
    """The documents of a slice: in order, until the next one would pass ``max_bytes`` (UTF-8
    bytes of text) or ``max_documents`` are kept. Skipped documents pass (they are counted,
    not kept). The bar shows the bytes (or documents) kept against the budget."""
    bar = tqdm(total=sl.max_bytes or sl.max_documents, desc=f"slice {name}",
               unit="B" if sl.max_bytes else "doc", unit_scale=True, disable=not progress,
               leave=False)
    kept = kept_bytes = 0
    try:
        for doc in documents:
            if doc["text"] is None:
                yield doc
                continue
            size = len(doc["text"].encode("utf-8"))
            if sl.max_bytes is not None and kept_bytes + size > sl.max_bytes:
                return
            kept += 1
            kept_bytes += size
            bar.update(size if sl.max_bytes else 1)
            yield doc
            if sl.max_documents is not None and kept >= sl.max_documents:
                return
    finally:
        bar.close()


def slice_record(sl: Slice, writer: ShardWriter, prepared: Prepared | None) -> dict[str, Any]:
    """The slice in the manifest: its budget, what it kept, and what was transferred for it
    (whole files, or only the parquet row groups it needed) against the bytes it kept."""
    kept = sum(c["bytes"] for c in writer.split_counts.values())
    record: dict[str, Any] = {
        "label": sl.label(),
        **sl.config(),
        "documents": sum(c["documents"] for c in writer.split_counts.values()),
        "bytes": kept,
    }
    if prepared is not None and prepared.transferred is not None:
        record["transferred_bytes"] = prepared.transferred
        record["transferred_per_slice_byte"] = round(prepared.transferred / max(kept, 1), 4)
    return record


def read_in_one_process(
    entry: CorpusEntry, documents: Iterator[dict[str, Any]], writer: ShardWriter, progress: bool
) -> Counter[str]:
    """A source read as one stream, in this process (WikiText, read split by split, whose
    articles may continue in the next file; sources that offer no ``read_units``; slices cut
    at a budget)."""
    skipped: Counter[str] = Counter()
    bar = tqdm(desc=f"read {entry.name}", unit="doc", disable=not progress, leave=False)
    for doc in documents:
        bar.update()
        reason = doc.pop("skip", None)
        if doc["text"] is None:
            skipped[reason or "not_utf8"] += 1
            continue
        writer.write(doc)
        checkpoint("fetch.document")
    bar.close()
    return skipped
