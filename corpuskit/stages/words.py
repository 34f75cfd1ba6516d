"""Words and word n-gram hashes for a whole batch at once (polars splits, numpy combines).

Near-duplicate detection, decontamination and the repetition filter all need the words of many
documents and hashes of their n-grams. Doing that one document at a time in Python costs about a
microsecond per word; here polars splits and hashes every word of a batch in Rust, and numpy
combines word hashes into n-gram hashes with shifted array arithmetic. The result is a flat
array of hashes plus, for each, the row of the document it came from.

Word hashes come from polars, whose hash values may change between polars releases; stages
that persist decisions based on them put ``HASH_VERSION`` into their configuration so that a
polars upgrade changes the fingerprint instead of silently changing results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

HASH_VERSION = f"polars-{pl.__version__}"
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0x9E3779B97F4A7C15)

# Word patterns: ``\w+`` (lowercased) for matching documents against each other, so that
# punctuation and case do not hide a duplicate; ``\S+`` for the Gopher heuristics, which
# were defined on whitespace-separated tokens.
MATCH_WORDS = r"\w+"
SPACE_WORDS = r"\S+"


@dataclass
class Words:
    """The words of a batch, flattened: ``doc[i]`` is the row of word ``i``."""

    doc: np.ndarray  # int64, non-decreasing
    hashes: np.ndarray  # uint64
    chars: np.ndarray  # int64, length of each word in characters
    counts: np.ndarray  # int64, words per document (length = number of documents)


def _texts(texts: pa.Array | pa.ChunkedArray | list[str]) -> pl.Series:
    if isinstance(texts, list):
        return pl.Series("text", texts, dtype=pl.String)
    series = pl.from_arrow(texts)
    assert isinstance(series, pl.Series)
    return series.cast(pl.String).rename("text")


def batch_words(
    texts: pa.Array | pa.ChunkedArray | list[str],
    *,
    pattern: str = MATCH_WORDS,
    lowercase: bool = True,
    seed: int = 0,
) -> Words:
    """Split every text into words and hash them (vectorised over the batch)."""
    series = _texts(texts).fill_null("")
    if lowercase:
        series = series.str.to_lowercase()
    frame = (
        pl.DataFrame({"w": series.str.extract_all(pattern)})
        .with_row_index("doc")
        .explode("w")
        .drop_nulls("w")
    )
    doc = frame["doc"].cast(pl.Int64).to_numpy()
    hashes = frame["w"].hash(seed=seed).to_numpy().astype(np.uint64, copy=False)
    chars = frame["w"].str.len_chars().cast(pl.Int64).to_numpy()
    counts = np.bincount(doc, minlength=len(series)).astype(np.int64)
    return Words(doc, hashes, chars, counts)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads combined hashes over all 64 bits (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _MIX_1
        x = x ^ (x >> np.uint64(27))
        x = x * _MIX_2
        return x ^ (x >> np.uint64(31))


def ngram_hashes(words: Words, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashes of every word n-gram that lies inside one document.

    Returns ``(doc, start, hash)``: the document row, the index of the n-gram's first word in
    the flat word arrays, and the n-gram's hash. Documents with fewer than ``n`` words have no
    n-grams here (callers decide what such documents mean to them).
    """
    total = len(words.hashes)
    if total < n:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.uint64)
    span = total - n + 1
    combined = np.zeros(span, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            combined = mix64(combined * _STEP + words.hashes[k : k + span])
    inside = words.doc[:span] == words.doc[n - 1 :]
    start = np.flatnonzero(inside)
    return words.doc[start], start, combined[start]


def short_document_hashes(words: Words, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One hash of all the words of each non-empty document shorter than ``n`` words."""
    short = np.flatnonzero((words.counts > 0) & (words.counts < n))
    if not len(short):
        return short.astype(np.int64), np.zeros(0, np.uint64)
    starts = np.concatenate([[0], np.cumsum(words.counts)])[short]
    out = np.zeros(len(short), np.uint64)
    with np.errstate(over="ignore"):
        for k in range(int(words.counts[short].max())):
            has = k < words.counts[short]
            out[has] = mix64(out[has] * _STEP + words.hashes[starts[has] + k])
    return short.astype(np.int64), out
