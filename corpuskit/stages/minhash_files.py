"""Reading the near-duplicate grouping's inputs back: one partition's band keys, and the
signatures of given documents, from the files every shard wrote (``minhash.ShardSignatures``).

Both read file by file and keep only what they were asked for, so a grouping task's memory is
its partition's share of the keys, whatever the number of shards: a 10 GB corpus has about
2,000 key files, and one lazy polars scan over all of them opened every file at once (polars
warned of 512 blocking threads) and held their pages together, 760 MB for one partition whose
keys take 40 MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

# Rows of a band-key file read at once: bounds what a large shard's file takes while filtered.
KEY_BATCH_ROWS = 1 << 18


def partition_keys(
    keys_paths: Sequence[str],
    offsets: np.ndarray,
    excluded: np.ndarray,
    part: int,
    parts: int,
) -> pl.DataFrame:
    """``(doc, band, key)`` of the buckets whose key is ``part`` modulo ``parts``.

    File ``i`` holds ``(row, band, key)`` with rows numbered from 0; its documents are numbered
    from ``offsets[i]`` here. Documents in ``excluded`` (global numbers) are left out.
    """
    import pyarrow.parquet as pq

    modulus, remainder = np.uint64(parts), np.uint64(part)
    excluded = np.sort(np.asarray(excluded, np.int64))
    docs: list[np.ndarray] = [np.zeros(0, np.int64)]
    bands: list[np.ndarray] = [np.zeros(0, np.int16)]
    keys: list[np.ndarray] = [np.zeros(0, np.uint64)]
    files = len(keys_paths)
    for offset, path in zip(np.asarray(offsets)[:files].tolist(), keys_paths, strict=True):
        with pq.ParquetFile(path) as source:
            for batch in source.iter_batches(KEY_BATCH_ROWS, columns=["row", "band", "key"]):
                key = batch.column("key").to_numpy()
                mine = np.flatnonzero(key % modulus == remainder)
                doc = batch.column("row").to_numpy()[mine] + offset
                if len(excluded):
                    at = np.minimum(np.searchsorted(excluded, doc), len(excluded) - 1)
                    kept = excluded[at] != doc
                    mine, doc = mine[kept], doc[kept]
                docs.append(doc.astype(np.int64, copy=False))
                bands.append(batch.column("band").to_numpy()[mine].astype(np.int16, copy=False))
                keys.append(key[mine])
    return pl.DataFrame(
        {"doc": np.concatenate(docs), "band": np.concatenate(bands), "key": np.concatenate(keys)},
        schema={"doc": pl.Int64, "band": pl.Int16, "key": pl.UInt64},
    )


def gather_signatures(
    sig_paths: Sequence[Path], offsets: np.ndarray, docs: np.ndarray
) -> np.ndarray:
    """Signatures of global rows ``docs``, read shard by shard from memory-mapped files (one
    file mapped at a time)."""
    shard = np.searchsorted(offsets, docs, side="right") - 1
    out: np.ndarray | None = None
    for s in np.unique(shard):
        sig = np.load(sig_paths[s], mmap_mode="r")
        pick = np.flatnonzero(shard == s)
        rows = sig[docs[pick] - offsets[s]]
        if out is None:
            out = np.empty((len(docs), sig.shape[1]), np.uint32)
        out[pick] = rows
    assert out is not None
    return out
