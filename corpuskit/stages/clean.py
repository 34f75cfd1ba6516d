"""Text cleaning: Unicode normalization, control characters, line endings and whitespace.

All of it runs as vectorised Arrow compute kernels over a whole batch. Code corpora keep their
indentation and line structure (only trailing whitespace and line endings are touched); prose also
has runs of spaces collapsed and long runs of blank lines shortened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from corpuskit.stages.base import StageStats

# C0 controls except tab and newline, plus DEL; carriage returns are handled as line endings.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


@dataclass(frozen=True)
class Clean:
    """The ``clean`` stage."""

    normalization: Literal["NFC", "NFKC", "none"] = "NFC"
    code: bool = False
    name: str = "clean"

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def clean_text(self, text: pa.Array) -> pa.Array:
        if self.normalization != "none":
            text = pc.utf8_normalize(text, self.normalization)
        text = pc.replace_substring_regex(text, r"\r\n?", "\n")
        text = pc.replace_substring_regex(text, _CONTROL, "")
        text = pc.replace_substring_regex(text, r"[ \t\x{00a0}]+\n", "\n")
        if not self.code:
            text = pc.replace_substring_regex(text, r"[ \t]{2,}", " ")
            text = pc.replace_substring_regex(text, r"\n{3,}", "\n\n")
            text = pc.utf8_trim_whitespace(text)
        else:
            text = pc.utf8_rtrim_whitespace(text)
            text = pc.replace_substring_regex(text, r"^\n+", "")
        return text

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        before = batch.column("text")
        after = self.clean_text(before)
        stats.changed += int(pc.sum(pc.not_equal(before, after)).as_py() or 0)
        index = batch.schema.get_field_index("text")
        return batch.set_column(index, batch.schema.field("text"), after)


@dataclass(frozen=True)
class LengthFilter:
    """Drop documents outside ``[min_chars, max_chars]`` (after cleaning; empty ones always)."""

    min_chars: int = 1
    max_chars: int | None = None
    name: str = "length"

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        from corpuskit.stages.base import drop_where

        length = pc.utf8_length(batch.column("text"))
        reasons = pc.if_else(pc.equal(length, 0), "empty", None)
        reasons = pc.if_else(
            pc.and_(pc.is_null(reasons), pc.less(length, self.min_chars)), "too_short", reasons
        )
        if self.max_chars is not None:
            reasons = pc.if_else(
                pc.and_(pc.is_null(reasons), pc.greater(length, self.max_chars)),
                "too_long",
                reasons,
            )
        return drop_where(batch, reasons.cast(pa.string()), stats)
