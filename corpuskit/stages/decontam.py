"""Decontamination: training documents that share a long n-gram with val or test go.

Phases, as for every global stage:

1. ``collect`` (per batch, in the workers): hashes of every ``ngram``-word n-gram of the
   validation and test documents (lowercased ``\\w+`` words, so punctuation and case do not
   hide an overlap), written to disk per shard;
2. global: the build joins them into one sorted, de-duplicated ``uint64`` array on disk
   (documents removed as duplicates are left out first);
3. ``Decontaminate`` (per batch): a training document any of whose n-grams is in that array is
   dropped (``mode="drop"``) or kept with ``contaminated = true`` (``mode="mark"``). The lookup
   is a vectorised binary search into the memory-mapped array.

13 words is the GPT-3 choice (Brown et al. 2020): long enough that shared idioms and quotes
rarely match, short enough to catch copied passages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpuskit.stages.base import StageStats, record_samples
from corpuskit.stages.words import HASH_VERSION, MATCH_WORDS, batch_words, ngram_hashes

EVAL_SPLITS = ("val", "test")


def eval_ngrams(batch: pa.RecordBatch, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row, hash)`` of the n-grams of the batch's val/test documents."""
    is_eval = pc.is_in(batch.column("split"), pa.array(EVAL_SPLITS)).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(is_eval)
    if not len(rows):
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    words = batch_words(batch.column("text").take(pa.array(rows)), pattern=MATCH_WORDS)
    doc, _, hashes = ngram_hashes(words, ngram)
    return rows[doc], hashes


def contaminated_rows(texts: pa.Array, ngram: int, table: np.ndarray) -> np.ndarray:
    """Boolean per document: does any of its n-grams occur in the sorted ``table``?"""
    words = batch_words(texts, pattern=MATCH_WORDS)
    hit = np.zeros(len(words.counts), bool)
    if not len(table):
        return hit
    doc, _, hashes = ngram_hashes(words, ngram)
    pos = np.searchsorted(table, hashes)
    found = table[np.minimum(pos, len(table) - 1)] == hashes
    hit[doc[found]] = True
    return hit


@dataclass(frozen=True)
class Decontaminate:
    """The per-batch filter of decontamination; ``table`` is the global n-gram file."""

    mode: Literal["drop", "mark"] = "drop"
    ngram: int = 13
    table: str = field(default="", compare=False)
    name: str = "decontaminate"

    def config(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("table")
        return {**out, "hash": HASH_VERSION}

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        table = np.load(Path(self.table), mmap_mode="r") if self.table else np.zeros(0, np.uint64)
        is_train = pc.equal(batch.column("split"), "train").to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(is_train)
        flags = np.zeros(batch.num_rows, bool)
        if len(rows) and len(table):
            texts = batch.column("text").take(pa.array(rows))
            flags[rows] = contaminated_rows(texts, self.ngram, np.asarray(table))
        hits = int(flags.sum())
        if self.mode == "mark":
            stats.changed += hits
            column = pa.array(flags, pa.bool_())
            if "contaminated" in batch.schema.names:
                index = batch.schema.get_field_index("contaminated")
                return batch.set_column(index, "contaminated", column)
            return batch.append_column("contaminated", column)
        if hits:
            stats.dropped["contaminated"] += hits
            record_samples(batch, pa.array(flags), "contaminated", stats)
        return batch.filter(pa.array(~flags))
