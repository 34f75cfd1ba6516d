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
import pyarrow.compute as pc

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


def mix64_inplace(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser into ``x`` itself (a uint64 array the caller owns), with one
    scratch array instead of six temporaries: each fresh temporary is page faults, which in a
    cold process cost as much as the arithmetic."""
    scratch = np.right_shift(x, np.uint64(30))
    with np.errstate(over="ignore"):
        x ^= scratch
        x *= _MIX_1
        np.right_shift(x, np.uint64(27), out=scratch)
        x ^= scratch
        x *= _MIX_2
        np.right_shift(x, np.uint64(31), out=scratch)
        x ^= scratch
    return x


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads combined hashes over all 64 bits (wrapping arithmetic),
    into a new array."""
    return mix64_inplace(np.array(x, dtype=np.uint64))


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


# --------------------------------------------------------------------------- words, from bytes

_WORD_TABLE: np.ndarray | None = None  # is-``\w`` for every code point of the BMP


def _bmp_word_table() -> np.ndarray:
    global _WORD_TABLE
    if _WORD_TABLE is None:
        code_points = np.r_[0:0xD800, 0xE000:0x10000]
        table = np.zeros(0x10000, bool)
        table[code_points] = _regex_word([chr(c) for c in code_points.tolist()])
        _WORD_TABLE = table
    return _WORD_TABLE


def _regex_word(chars: list[str]) -> np.ndarray:
    """Whether each character matches ``MATCH_WORDS`` (polars' regex engine decides)."""
    series = pl.Series(chars, dtype=pl.String)
    return series.str.contains(f"^(?:{MATCH_WORDS})$").to_numpy()


def _code_point_is_word(code_points: np.ndarray) -> np.ndarray:
    out = np.zeros(len(code_points), bool)
    bmp = code_points < 0x10000
    out[bmp] = _bmp_word_table()[code_points[bmp]]
    if not bmp.all():  # emoji, historic scripts: few distinct ones, asked one by one
        astral = np.flatnonzero(~bmp)
        unique, inverse = np.unique(code_points[astral], return_inverse=True)
        out[astral] = _regex_word([chr(c) for c in unique.tolist()])[inverse]
    return out


def _ascii_word(data: np.ndarray) -> np.ndarray:
    """Per byte: is it an ASCII word character (a-z, A-Z, 0-9, _)? In wrapping uint8
    arithmetic, a few passes that numpy vectorises (a 256-entry table lookup is 3x slower)."""
    scratch = np.bitwise_or(data, 0x20)  # A-Z to a-z; no other byte lands on a-z
    np.subtract(scratch, 0x61, out=scratch)
    word = np.less(scratch, 26)
    np.subtract(data, 0x30, out=scratch)
    word |= np.less(scratch, 10)
    word |= data == 0x5F
    return word


def _word_bytes(data: np.ndarray) -> np.ndarray:
    """Per UTF-8 byte: is it part of a word character (ASCII by range, others by code point)?

    Multi-byte code points are decoded only at their lead bytes: 2- and 3-byte ones (the BMP)
    with one formula and one table, 4-byte ones (few) on their own.
    """
    n = len(data)
    word = _ascii_word(data)
    lead = np.flatnonzero(data >= 0xC0)  # first bytes of multi-byte code points
    if not len(lead):
        return word
    # The bytes after a lead byte; clipped at the end, where only damaged text could reach.
    k1 = lead + 1
    k2 = lead + 2
    np.minimum(k1[-2:], n - 1, out=k1[-2:])
    np.minimum(k2[-3:], n - 1, out=k2[-3:])
    b0 = data[lead].astype(np.uint32)
    b1 = data[k1].astype(np.uint32) & 0x3F
    b2 = data[k2].astype(np.uint32) & 0x3F
    code_point = ((b0 & 0x0F) << 12) | (b1 << 6) | b2  # right for 3-byte code points
    two = b0 < 0xE0
    code_point[two] = ((b0[two] & 0x1F) << 6) | b1[two]
    four = np.flatnonzero(b0 >= 0xF0)
    is_word = _bmp_word_table()[code_point & 0xFFFF]
    if len(four):
        k3 = np.minimum(lead[four] + 3, n - 1)
        astral = (
            ((b0[four] & 0x07) << 18) | (b1[four] << 12) | (b2[four] << 6)
            | (data[k3].astype(np.uint32) & 0x3F)
        )
        is_word[four] = _code_point_is_word(astral)
        word[k3] = is_word[four]
    word[lead] = is_word
    word[k1] = is_word
    three_or_four = ~two
    word[k2[three_or_four]] = is_word[three_or_four]
    return word


def _word_runs(word: np.ndarray, doc_start: np.ndarray) -> np.ndarray:
    """Start and end byte of every run of word bytes, alternating (``[s0, e0, s1, e1, ...]``);
    a word never runs from one document (starting at the bytes ``doc_start``) into the next."""
    n = len(word)
    doc_start = doc_start[(doc_start > 0) & (doc_start < n)]
    # Every change between word and non-word bytes: starts and ends alternate.
    change = np.empty(n + 1, bool)
    change[0] = word[0]
    np.not_equal(word[1:], word[:-1], out=change[1:n])
    change[n] = word[-1]
    edges = np.flatnonzero(change)
    # A document that starts inside a run of word bytes ends one word there and starts the
    # next (once, however many empty documents start at the same byte).
    joined = doc_start[word[doc_start] & word[doc_start - 1]]
    if len(joined):
        joined = np.repeat(np.unique(joined), 2)
        edges = np.insert(edges, np.searchsorted(edges, joined), joined)
    return edges


def _polars_strings(spans: pa.LargeStringArray) -> pl.Series:
    """``spans`` as a polars Series. Polars stores strings as views; Arrow's cast to
    ``string_view`` builds them in C++ and polars then takes the buffers as they are, which is
    1.5x faster than letting polars convert the offsets itself. The hashes are the same either
    way (they are of the bytes); older pyarrow without the cast takes the plain path."""
    try:
        series = pl.from_arrow(spans.cast(pa.string_view()))
    except (AttributeError, pa.ArrowException):  # no string_view, or no cast to it
        series = pl.from_arrow(spans)
    assert isinstance(series, pl.Series)
    return series


def match_words(texts: pa.Array | pa.ChunkedArray | list[str], *, seed: int = 0) -> Words:
    """The lowercased ``\\w+`` words of a batch and their polars hashes, split in numpy.

    The same words as ``words.batch_words(texts, pattern=MATCH_WORDS)`` (a character is a word
    character when polars' regex says it matches ``\\w``), found without a regex: the batch is
    lowercased by Arrow (``utf8_lower``: simple case mapping, so ``İ`` becomes ``i`` and a final
    ``Σ`` becomes ``σ``), every UTF-8 byte is classified (ASCII by range, other code points by a
    table of the BMP built once per process), and words are the runs of word bytes inside one
    document. Each word is then hashed by polars as a slice of the Arrow buffer, without copying
    strings. About 1.6x faster than ``str.extract_all``, which allocates every match.
    ``chars`` is left empty: MinHash does not need word lengths.
    """
    if isinstance(texts, list):
        arr = pa.array(texts, pa.large_string())
    else:
        arr = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        arr = arr.cast(pa.large_string())
    arr = pc.utf8_lower(pc.fill_null(arr, ""))
    docs = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset : arr.offset + docs + 1]
    lo, hi = (int(offsets[0]), int(offsets[-1])) if docs else (0, 0)
    if hi == lo:
        empty = np.zeros(0, np.int64)
        return Words(empty, np.zeros(0, np.uint64), empty, np.zeros(docs, np.int64))
    data = np.frombuffer(arr.buffers()[2], np.uint8)[lo:hi]
    word = _word_bytes(data)
    edges = _word_runs(word, offsets[1:-1] - lo)
    del word
    count = len(edges) // 2
    # Words and the gaps between them as one Arrow array over the same buffer: even items are
    # the words.
    bounds = np.empty(2 * count + 1, np.int64)
    np.add(edges, lo, out=bounds[:-1])
    bounds[-1] = hi
    spans = pa.LargeStringArray.from_buffers(2 * count, pa.py_buffer(bounds), arr.buffers()[2])
    hashes = _polars_strings(spans).hash(seed=seed).to_numpy()[::2].astype(np.uint64, copy=False)
    # Words per document from the document bounds (few) instead of a document per word.
    counts = np.diff(np.searchsorted(edges[0::2], offsets - lo)).astype(np.int64)
    doc = np.repeat(np.arange(docs, dtype=np.int64), counts)
    return Words(doc, hashes, np.zeros(0, np.int64), counts)


def shingle_hashes(words: Words, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(doc, hash)`` of every word n-gram inside one document (a cheaper ``ngram_hashes``).

    The hash is ``mix64(sum_k w[k] * word_hash[i + k])`` wrapping modulo 2**64, with fixed odd
    weights ``w``: n-grams that differ in one word differ before mixing (an odd weight is
    invertible), and ones that differ in several collide only by chance. It costs ``2n + 8``
    passes over the words instead of ``ngram_hashes``' ``10n``.
    """
    total = len(words.hashes)
    if total < n:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    span = total - n + 1
    weights = mix64(np.arange(1, n + 1, dtype=np.uint64)) | np.uint64(1)
    combined = np.zeros(span, np.uint64)
    scratch = np.empty(span, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            np.multiply(words.hashes[k : k + span], weights[k], out=scratch)
            combined += scratch
    inside = np.flatnonzero(words.doc[:span] == words.doc[n - 1 :])
    return words.doc[inside], mix64_inplace(combined[inside])
