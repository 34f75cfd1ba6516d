"""Near-duplicate detection with MinHash-LSH, in the three phases of a global stage.

1. **Signatures, per batch** (in the workers): the word n-grams ("shingles") of every document are
   hashed once (``words.py``), then permuted with the standard universal-hash trick
   ``((a * x + b) mod p) & 0xffffffff`` for ``num_perm`` random ``(a, b)`` pairs in uint64 numpy
   arrays (the products wrap modulo 2**64 exactly as in datasketch and datatrove), and reduced
   to the minimum per document with ``np.minimum.reduceat``. The signature is cut into
   ``bands`` bands of ``rows`` values; each band is hashed to one 64-bit bucket key. Keys and
   signatures go to disk per shard (Parquet and ``.npy``), never into one big dictionary.
2. **Grouping, global** (``cluster``): polars reads every shard's bucket keys and groups by
   ``(band, key)``; every document in a bucket is a candidate duplicate of the bucket's first
   document. Candidates are optionally verified by the Jaccard similarity estimated from the
   full signatures, then joined with a union-find whose root is always the smallest global row,
   so the first occurrence in shard/row order is kept whatever the order of the work.
3. **Filter, per batch**: the build drops every non-root member (``build.py``).

With the defaults (128 permutations, 20 bands of 6 rows, threshold 0.8) a pair with Jaccard
0.8 becomes a candidate with probability ``1 - (1 - 0.8**6)**20 = 0.998``, one with 0.5 with
0.27 and one with 0.3 with 0.05; verification at 0.8 then removes the false candidates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from corpuskit.errors import CorpuskitError
from corpuskit.stages.words import (
    HASH_VERSION,
    MATCH_WORDS,
    batch_words,
    mix64,
    ngram_hashes,
    short_document_hashes,
)

_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_CHUNK = 1 << 15  # shingles permuted at once: bounds the (chunk, num_perm) scratch array


@dataclass(frozen=True)
class MinHashLSH:
    """Configuration and per-batch work of near-duplicate detection."""

    ngram: int = 5
    num_perm: int = 128
    bands: int = 20
    rows: int = 6
    threshold: float = 0.8
    verify: bool = True
    seed: int = 0
    name: str = "near_dedup"

    def config(self) -> dict[str, Any]:
        return {**asdict(self), "hash": HASH_VERSION}

    def validate(self) -> None:
        if self.ngram < 1 or self.num_perm < 1 or self.bands < 1 or self.rows < 1:
            raise CorpuskitError("minhash ngram, perm, bands and rows must be positive")
        if self.bands * self.rows > self.num_perm:
            raise CorpuskitError(
                f"minhash bands x rows ({self.bands} x {self.rows}) exceeds the number of "
                f"permutations ({self.num_perm})"
            )
        if not 0 < self.threshold <= 1:
            raise CorpuskitError("minhash threshold must be in (0, 1]")

    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        a = rng.integers(1, int(_PRIME), size=self.num_perm, dtype=np.uint64)
        b = rng.integers(0, int(_PRIME), size=self.num_perm, dtype=np.uint64)
        return a, b

    def signatures(self, texts: pa.Array | list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(signatures uint32 [docs, num_perm], has_shingles bool [docs])`` for a batch.

        A document shorter than ``ngram`` words has one shingle (all its words); one with no
        words at all has no signature and never takes part in LSH.
        """
        words = batch_words(texts, pattern=MATCH_WORDS, lowercase=True, seed=self.seed)
        docs = len(words.counts)
        doc, _, shingles = ngram_hashes(words, self.ngram)
        short_doc, short_hash = short_document_hashes(words, self.ngram)
        if len(short_doc):
            doc = np.concatenate([doc, short_doc])
            shingles = np.concatenate([shingles, short_hash])
            order = np.argsort(doc, kind="stable")
            doc, shingles = doc[order], shingles[order]
        sig = np.full((docs, self.num_perm), _MAX_HASH, dtype=np.uint64)
        x = (shingles & _MAX_HASH)[:, None]
        a, b = self.permutations()
        with np.errstate(over="ignore"):
            for lo in range(0, len(shingles), _CHUNK):
                hi = min(lo + _CHUNK, len(shingles))
                values = ((x[lo:hi] * a + b) % _PRIME) & _MAX_HASH
                chunk_doc = doc[lo:hi]
                starts = np.flatnonzero(np.r_[True, chunk_doc[1:] != chunk_doc[:-1]])
                reduced = np.minimum.reduceat(values, starts, axis=0)
                rows = chunk_doc[starts]
                sig[rows] = np.minimum(sig[rows], reduced)
        has = words.counts > 0
        return sig.astype(np.uint32), has

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """One uint64 bucket key per band: ``[docs, bands]``."""
        keys = np.zeros((len(sig), self.bands), np.uint64)
        with np.errstate(over="ignore"):
            for band in range(self.bands):
                acc = np.full(len(sig), np.uint64(band + 1))
                for col in sig[:, band * self.rows : (band + 1) * self.rows].T:
                    acc = mix64(acc * np.uint64(0x9E3779B97F4A7C15) + col.astype(np.uint64))
                keys[:, band] = acc
        return keys


@dataclass
class ShardSignatures:
    """Accumulates one shard's signatures and bucket keys, then writes them to disk."""

    lsh: MinHashLSH
    sigs: list[np.ndarray]
    keys: list[pl.DataFrame]
    rows: int = 0

    @classmethod
    def new(cls, lsh: MinHashLSH) -> ShardSignatures:
        return cls(lsh, [], [])

    def add(self, texts: pa.Array) -> None:
        sig, has = self.lsh.signatures(texts)
        keys = self.lsh.band_keys(sig)
        present = np.flatnonzero(has)
        self.keys.append(
            pl.DataFrame(
                {
                    "row": np.repeat(present + self.rows, self.lsh.bands).astype(np.int64),
                    "band": np.tile(np.arange(self.lsh.bands, dtype=np.int16), len(present)),
                    "key": keys[present].reshape(-1),
                }
            )
        )
        self.sigs.append(sig)
        self.rows += len(sig)

    def write(self, sig_path: Path, keys_path: Path) -> None:
        sig = (
            np.concatenate(self.sigs) if self.sigs else np.zeros((0, self.lsh.num_perm), np.uint32)
        )
        np.save(sig_path, sig)
        frame = (
            pl.concat(self.keys)
            if self.keys
            else pl.DataFrame(schema={"row": pl.Int64, "band": pl.Int16, "key": pl.UInt64})
        )
        frame.write_parquet(keys_path)


def _find(parent: dict[int, int], x: int) -> int:
    root = x
    while parent.get(root, root) != root:
        root = parent[root]
    while parent.get(x, x) != root:  # path compression
        parent[x], x = root, parent[x]
    return root


def union_find_roots(edges: np.ndarray) -> dict[int, int]:
    """Map every node of ``edges`` (pairs of ints) to its component's smallest node."""
    parent: dict[int, int] = {}
    for u, v in edges.tolist():
        ru, rv = _find(parent, u), _find(parent, v)
        if ru != rv:
            lo, hi = (ru, rv) if ru < rv else (rv, ru)
            parent[hi] = lo
            parent.setdefault(lo, lo)
    return {node: _find(parent, node) for node in list(parent)}


def _gather(sig_paths: list[Path], offsets: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Signatures of global rows ``docs``, read shard by shard from memory-mapped files."""
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


def cluster(
    lsh: MinHashLSH,
    keys_paths: list[Path],
    sig_paths: list[Path],
    offsets: np.ndarray,
    excluded: np.ndarray,
) -> pl.DataFrame:
    """Global phase: ``(doc, kept, similarity)`` for every near-duplicate to drop.

    ``offsets[i]`` is the global row of shard ``i``'s first document; ``excluded`` lists global
    rows already removed (exact duplicates), which take no part.
    """
    empty = pl.DataFrame(schema={"doc": pl.Int64, "kept": pl.Int64, "similarity": pl.Float64})
    if not keys_paths:
        return empty
    scans = [
        pl.scan_parquet(path).select((pl.col("row") + int(offsets[i])).alias("doc"), "band", "key")
        for i, path in enumerate(keys_paths)
    ]
    excluded_frame = pl.DataFrame({"doc": excluded.astype(np.int64)}).lazy()
    buckets = (
        pl.concat(scans)
        .join(excluded_frame, on="doc", how="anti")
        .group_by("band", "key")
        .agg(pl.col("doc").min().alias("first"), pl.col("doc"))
        .filter(pl.col("doc").list.len() > 1)
        .explode("doc")
        .filter(pl.col("doc") != pl.col("first"))
        .select("first", "doc")
        .unique()
        .sort("first", "doc")
    )
    edges = buckets.collect()
    if edges.height == 0:
        return empty
    u = edges["first"].to_numpy()
    v = edges["doc"].to_numpy()
    similarity = np.ones(len(u))
    if lsh.verify:
        similarity = np.zeros(len(u))
        for lo in range(0, len(u), 1 << 16):  # bounded batches of pairs
            hi = min(lo + (1 << 16), len(u))
            similarity[lo:hi] = np.mean(
                _gather(sig_paths, offsets, u[lo:hi]) == _gather(sig_paths, offsets, v[lo:hi]),
                axis=1,
            )
        passed = similarity >= lsh.threshold
        u, v, similarity = u[passed], v[passed], similarity[passed]
    if not len(u):
        return empty
    roots = union_find_roots(np.stack([u, v], axis=1))
    best: dict[int, float] = {}
    for doc, sim in zip(v.tolist(), similarity.tolist(), strict=True):
        best[doc] = max(best.get(doc, 0.0), sim)
    dropped = sorted(node for node, root in roots.items() if node != root)
    return pl.DataFrame(
        {
            "doc": np.array(dropped, np.int64),
            "kept": np.array([roots[d] for d in dropped], np.int64),
            "similarity": np.array([best.get(d, 1.0) for d in dropped], np.float64),
        }
    )
