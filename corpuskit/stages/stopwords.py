"""Stopwords: the Gopher "has enough function words" filter, or stopword removal.

Lists come from ``stopwordsiso`` (the stopwords-iso collection, 50+ languages by ISO 639-1
code), never hand-written. Two modes:

- ``filter`` drops documents with fewer than ``min_count`` stopword occurrences or a stopword
  share of words below ``min_fraction``. Real prose in any language is full of function words;
  tables, keyword lists, menus and boilerplate are not (Gopher's "at least two of the, be, to,
  of, and, that, have, with" rule, generalised to a full list).
- ``remove`` deletes stopwords from the text, for count-based and bag-of-words uses
  (n-gram statistics, topic models, TF-IDF).

Off by default: a neural language model must see function words to learn to produce them, and
removing them changes the very distribution whose perplexity is measured.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa

from corpuskit.errors import CorpuskitError
from corpuskit.stages.base import StageStats, count_changed, drop_where, replace_text


@functools.lru_cache(maxsize=8)
def stopword_list(language: str) -> tuple[str, ...]:
    """The sorted stopwords-iso list for an ISO 639-1 code (a user error if unknown)."""
    import stopwordsiso

    if not stopwordsiso.has_lang(language):
        known = ", ".join(sorted(stopwordsiso.langs()))
        raise CorpuskitError(f"no stopword list for language {language!r}; known: {known}")
    return tuple(sorted(w.lower() for w in stopwordsiso.stopwords(language)))


def has_stopwords(language: str) -> bool:
    import stopwordsiso

    return bool(stopwordsiso.has_lang(language))


@dataclass(frozen=True)
class Stopwords:
    """The ``stopwords`` stage (``mode`` ``filter`` or ``remove``)."""

    mode: Literal["filter", "remove"] = "filter"
    language: str = "en"
    min_count: int = 2
    min_fraction: float = 0.2
    name: str = "stopwords"

    def config(self) -> dict[str, Any]:
        import stopwordsiso

        version = getattr(stopwordsiso, "__version__", "?")
        return {**asdict(self), "list": f"stopwordsiso-{version}-{len(self.words())}"}

    def words(self) -> tuple[str, ...]:
        return stopword_list(self.language)

    @functools.cached_property
    def _pattern(self) -> str:
        # Longest first so that alternation prefers "don't" over "don"; words with
        # non-word characters at their ends cannot sit between \b anchors and are skipped.
        words = sorted(
            (w for w in self.words() if re.fullmatch(r"\w(.*\w)?", w)), key=lambda w: -len(w)
        )
        return r"(?i)\b(?:" + "|".join(re.escape(w) for w in words) + r")\b"

    def counts(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Stopword occurrences and word counts per document."""
        series = pl.from_arrow(texts)
        assert isinstance(series, pl.Series)
        words = series.cast(pl.String).fill_null("").str.to_lowercase().str.extract_all(r"\w+")
        exploded = (
            pl.DataFrame({"w": words})
            .with_row_index("doc")
            .explode("w")
            .drop_nulls("w")
            .with_columns(stop=pl.col("w").is_in(pl.Series(self.words()).implode()).cast(pl.Int64))
        )
        n = np.bincount(exploded["doc"].to_numpy(), minlength=len(series))
        stop = np.bincount(
            exploded["doc"].to_numpy(), weights=exploded["stop"].to_numpy(), minlength=len(series)
        )
        return stop.astype(np.int64), n.astype(np.int64)

    def remove(self, texts: pa.Array) -> pa.Array:
        series = pl.from_arrow(texts)
        assert isinstance(series, pl.Series)
        out = (
            series.cast(pl.String)
            .str.replace_all(self._pattern, "")
            .str.replace_all(r"[ \t]{2,}", " ")
            .str.replace_all(r"(?m)^[ \t]+|[ \t]+$", "")
        )
        return out.to_arrow().cast(pa.large_string())

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        texts = batch.column("text")
        if self.mode == "remove":
            after = self.remove(texts)
            stats.changed += count_changed(texts.cast(pa.large_string()), after)
            return replace_text(batch, after)
        stop, n = self.counts(texts)
        few = (stop < self.min_count) | (stop < self.min_fraction * np.maximum(n, 1))
        reasons = pa.array(np.where(few, "too_few_stopwords", None).tolist(), pa.string())
        return drop_where(batch, reasons, stats)
