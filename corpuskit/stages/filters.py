"""Quality filters: Gopher heuristics, Gopher repetition, language identification, code sanity.

The heuristics and their default thresholds are those of Rae et al. 2021 ("Scaling Language
Models: Methods, Analysis & Insights from Training Gopher", appendix A1.1), the same as in
datatrove's ``GopherQualityFilter``/``GopherRepetitionFilter``. Each document gets the *first*
reason that applies, so the counts per reason add up to the documents dropped.

Everything that can be is computed for the whole batch at once: line and word statistics with
polars list expressions, n-gram repetition with numpy over the batch's flattened word hashes.
Language identification runs per document (py3langid's model ships inside its wheel, so it
works offline), on the first ``lang_chars`` characters only.

Code corpora (``code=True``) skip the prose heuristics entirely; ``CodeFilter`` applies the
usual source-code sanity checks instead (StarCoder/The Stack style: very long lines, a
low share of alphanumeric characters, mostly-encoded data).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from corpuskit.stages.base import StageStats, drop_where
from corpuskit.stages.words import (
    HASH_VERSION,
    SPACE_WORDS,
    batch_words,
    mix64,
    ngram_hashes,
)

_BULLET = r"^\s*[\-*•‣⁃◦▪▫●○■□–—>]"
_ELLIPSIS_END = r"(\.\.\.|…)\s*$"


def _frame(batch: pa.RecordBatch) -> pl.DataFrame:
    series = pl.from_arrow(batch.column("text"))
    assert isinstance(series, pl.Series)
    return pl.DataFrame({"text": series.cast(pl.String).fill_null("")})


def _per_doc(doc: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Hashes made distinct per document, so one ``np.unique`` serves the whole batch."""
    return mix64(hashes ^ mix64(doc.astype(np.uint64) + np.uint64(1)))


def _first_reason(conditions: list[tuple[str, np.ndarray]], rows: int) -> pa.Array:
    """The first failing condition's name per row, null where none fails."""
    reasons = np.full(rows, None, dtype=object)
    for name, failed in conditions:
        reasons[(reasons == None) & failed] = name  # noqa: E711 (elementwise on objects)
    return pa.array(reasons.tolist(), pa.string())


@dataclass(frozen=True)
class GopherQuality:
    """Gopher's quality heuristics (prose only)."""

    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    name: str = "quality"

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        words = pl.col("text").str.extract_all(SPACE_WORDS)
        lines = (
            pl.col("text")
            .str.split("\n")
            .list.eval(pl.element().filter(pl.element().str.strip_chars() != ""))
        )
        stats = _frame(batch).select(
            n_words=words.list.len(),
            mean_len=words.list.eval(pl.element().str.len_chars()).list.mean(),
            alpha=words.list.eval(pl.element().str.contains(r"\p{Alphabetic}")).list.mean(),
            symbols=pl.col("text").str.count_matches(r"#|\.\.\.|…"),
            bullet=lines.list.eval(pl.element().str.contains(_BULLET)).list.mean(),
            ellipsis=lines.list.eval(pl.element().str.contains(_ELLIPSIS_END)).list.mean(),
        )
        n = stats["n_words"].to_numpy().astype(np.float64)
        mean_len = stats["mean_len"].fill_null(0).to_numpy()
        safe_n = np.maximum(n, 1)
        return _first_reason(
            [
                ("too_few_words", n < self.min_words),
                ("too_many_words", n > self.max_words),
                (
                    "mean_word_length",
                    (mean_len < self.min_mean_word_length) | (mean_len > self.max_mean_word_length),
                ),
                (
                    "symbol_word_ratio",
                    stats["symbols"].to_numpy() / safe_n > self.max_symbol_word_ratio,
                ),
                (
                    "bullet_lines",
                    stats["bullet"].fill_null(0).to_numpy() > self.max_bullet_lines_ratio,
                ),
                (
                    "ellipsis_lines",
                    stats["ellipsis"].fill_null(0).to_numpy() > self.max_ellipsis_lines_ratio,
                ),
                (
                    "alpha_words_ratio",
                    stats["alpha"].fill_null(0).to_numpy() < self.min_alpha_words_ratio,
                ),
            ],
            batch.num_rows,
        )

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        return drop_where(batch, self.reasons(batch), stats)


def _duplicate_fractions(parts: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Share of parts that repeat an earlier part, and the characters in those repeats."""
    repeat = ~pl.element().is_first_distinct()
    count = parts.list.eval(repeat.cast(pl.Int64)).list.sum()
    chars = parts.list.eval(
        pl.when(repeat).then(pl.element().str.len_chars()).otherwise(0)
    ).list.sum()
    return count, chars


def _top_ngram_chars(words: Any, n: int, rows: int) -> np.ndarray:
    """Per document, the characters of its most repeated word n-gram times its count (an
    n-gram seen once is not repetition: a two-word document is not spam)."""
    # Characters of an n-gram as Gopher counts them: its words joined by single spaces.
    cum = np.concatenate([[0], np.cumsum(words.chars)])
    doc, start, hashes = ngram_hashes(words, n)
    top = np.zeros(rows)
    if len(hashes):
        _, first, inverse = np.unique(
            _per_doc(doc, hashes), return_index=True, return_inverse=True
        )
        counts = np.bincount(inverse)
        span = cum[start[first] + n] - cum[start[first]] + (n - 1)
        np.maximum.at(top, doc[first], np.where(counts > 1, counts * span, 0))
    return top


def _dup_ngram_chars(words: Any, n: int, rows: int) -> np.ndarray:
    """Per document, the characters of the words covered by any repeated occurrence of a word
    n-gram, each word counted once."""
    doc, start, hashes = ngram_hashes(words, n)
    if not len(hashes):
        return np.zeros(rows)
    _, first = np.unique(_per_doc(doc, hashes), return_index=True)
    repeat = np.ones(len(hashes), bool)
    repeat[first] = False
    size = len(words.hashes) + 1
    delta = np.bincount(start[repeat], minlength=size) - np.bincount(
        start[repeat] + n, minlength=size
    )
    covered = np.cumsum(delta[:-1]) > 0
    return np.bincount(words.doc[covered], weights=words.chars[covered], minlength=rows)


@dataclass(frozen=True)
class GopherRepetition:
    """Gopher's repetition filter: repeated lines, paragraphs and n-grams."""

    max_dup_line_fraction: float = 0.30
    max_dup_para_fraction: float = 0.30
    max_dup_line_char_fraction: float = 0.20
    max_dup_para_char_fraction: float = 0.20
    top_ngram_char_fractions: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    dup_ngram_char_fractions: tuple[tuple[int, float], ...] = (
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    )
    name: str = "repetition"

    def config(self) -> dict[str, Any]:
        return {**asdict(self), "hash": HASH_VERSION}

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        text = pl.col("text").str.strip_chars()
        paras = text.str.split("\n\n").list.eval(
            pl.element().filter(pl.element().str.strip_chars() != "")
        )
        lines = text.str.split("\n").list.eval(
            pl.element().filter(pl.element().str.strip_chars() != "")
        )
        para_dups, para_chars = _duplicate_fractions(paras)
        line_dups, line_chars = _duplicate_fractions(lines)
        frame = _frame(batch).select(
            chars=pl.col("text").str.len_chars(),
            n_paras=paras.list.len(),
            para_dups=para_dups,
            para_chars=para_chars,
            n_lines=lines.list.len(),
            line_dups=line_dups,
            line_chars=line_chars,
        )
        chars = np.maximum(frame["chars"].to_numpy().astype(np.float64), 1)

        def ratio(a: str, b: str | np.ndarray) -> np.ndarray:
            den = np.maximum(frame[b].to_numpy(), 1) if isinstance(b, str) else b
            return frame[a].fill_null(0).to_numpy() / den

        conditions = [
            ("dup_para_fraction", ratio("para_dups", "n_paras") > self.max_dup_para_fraction),
            ("dup_para_chars", ratio("para_chars", chars) > self.max_dup_para_char_fraction),
            ("dup_line_fraction", ratio("line_dups", "n_lines") > self.max_dup_line_fraction),
            ("dup_line_chars", ratio("line_chars", chars) > self.max_dup_line_char_fraction),
        ]
        words = batch_words(batch.column("text"), pattern=SPACE_WORDS, lowercase=False)
        rows = batch.num_rows
        for n, limit in self.top_ngram_char_fractions:
            conditions.append((f"top_{n}gram", _top_ngram_chars(words, n, rows) / chars > limit))
        for n, limit in self.dup_ngram_char_fractions:
            covered = _dup_ngram_chars(words, n, rows)
            conditions.append((f"dup_{n}gram_chars", covered / chars > limit))
        return _first_reason(conditions, rows)

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        return drop_where(batch, self.reasons(batch), stats)


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str) -> tuple[str, float]:
    """ISO 639-1 code and probability of the language of ``text`` (py3langid, offline)."""
    lang, prob = _identifier().classify(text)
    return str(lang), float(prob)


@dataclass(frozen=True)
class LanguageFilter:
    """Keep documents identified as one of ``languages`` with probability ``>= min_score``."""

    languages: tuple[str, ...] = ("en",)
    min_score: float = 0.5
    lang_chars: int = 2000
    name: str = "language"

    def config(self) -> dict[str, Any]:
        import py3langid

        return {**asdict(self), "py3langid": getattr(py3langid, "__version__", "?")}

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        wanted = set(self.languages)
        heads = pc.utf8_slice_codeunits(batch.column("text"), 0, self.lang_chars).to_pylist()
        out: list[str | None] = []
        for head in heads:
            if not head or not head.strip():
                out.append("language_unknown")
                continue
            lang, prob = identify(head.replace("\n", " "))
            if lang not in wanted:
                out.append("wrong_language")
            elif prob < self.min_score:
                out.append("low_language_score")
            else:
                out.append(None)
        return pa.array(out, pa.string())

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        return drop_where(batch, self.reasons(batch), stats)


@dataclass(frozen=True)
class CodeFilter:
    """Source-code sanity checks: minified, generated or binary-ish files go."""

    max_line_length: int = 1000
    max_mean_line_length: float = 100.0
    min_alnum_fraction: float = 0.25
    name: str = "code_quality"

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def reasons(self, batch: pa.RecordBatch) -> pa.Array:
        lines = pl.col("text").str.split("\n")
        stats = _frame(batch).select(
            longest=lines.list.eval(pl.element().str.len_chars()).list.max(),
            mean=lines.list.eval(pl.element().str.len_chars()).list.mean(),
            alnum=pl.col("text").str.count_matches(r"[\p{Alphabetic}\p{Nd}]"),
            chars=pl.col("text").str.len_chars(),
        )
        chars = np.maximum(stats["chars"].to_numpy(), 1)
        return _first_reason(
            [
                ("long_lines", stats["longest"].fill_null(0).to_numpy() > self.max_line_length),
                (
                    "mean_line_length",
                    stats["mean"].fill_null(0).to_numpy() > self.max_mean_line_length,
                ),
                ("low_alnum", stats["alnum"].to_numpy() / chars < self.min_alnum_fraction),
            ],
            batch.num_rows,
        )

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        return drop_where(batch, self.reasons(batch), stats)
