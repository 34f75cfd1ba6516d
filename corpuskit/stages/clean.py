"""Text cleaning: mojibake, HTML, WikiText tokens, Unicode normalization, controls, whitespace.

Most of it runs as vectorised Arrow compute kernels over a whole batch. The two steps that need a
real parser run per document, and only on the documents that a cheap vectorised regex says may
need them: mojibake repair with ftfy (a few documents in a thousand on web text) and HTML-to-text
with selectolax's lexbor parser (only documents containing tags).

The order is chosen so that cleaning is idempotent (``clean(clean(x)) == clean(x)``): mojibake is
repaired first (ftfy needs the original code points), controls are removed before normalization
(removing one between a letter and an accent would otherwise leave a non-normalized pair), and
whitespace is normalized last (NFKC turns some characters into spaces).

Code corpora keep their indentation and line structure: only line endings, controls, trailing
whitespace and leading blank lines are touched, and HTML and WikiText options are ignored.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from corpuskit.stages.base import StageStats, count_changed, drop_where, replace_text

# C0 controls except tab and newline, DEL, and C1 controls (U+0080-U+009F, which in real text
# are almost always mojibake or garbage); carriage returns are handled as line endings.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x{9f}]"

# A UTF-8 lead byte (U+00C2-U+00F4 when misread as Latin-1/cp1252) followed by what a
# continuation byte becomes in Latin-1 or cp1252: the signature of UTF-8 read as the wrong
# codec. Also C1 controls and the cp1252 "â€" prefix of curly quotes. Cheap, vectorised, and a
# superset of what ftfy will change in practice; ftfy then decides per document.
_MOJIBAKE = (
    r"[\x{c2}-\x{f4}][\x{80}-\x{bf}\x{152}\x{153}\x{160}\x{161}\x{178}\x{17d}\x{17e}"
    r"\x{192}\x{2c6}\x{2dc}\x{2013}\x{2014}\x{2018}-\x{201e}\x{2020}-\x{2022}\x{2026}"
    r"\x{2030}\x{2039}\x{203a}\x{20ac}\x{2122}]|[\x{80}-\x{9f}]"
)
_HTML = r"<(?:[a-zA-Z][a-zA-Z0-9]*[\s/>]|/[a-zA-Z]|!--|!doctype)"
_HTML_DROP = ["script", "style", "noscript", "template", "svg", "head", "iframe", "object"]
_HTML_BLOCKS = (
    "p,div,li,br,h1,h2,h3,h4,h5,h6,tr,ul,ol,dl,dt,dd,table,section,article,header,footer,"
    "nav,aside,main,blockquote,pre,hr,figure,figcaption,form,title"
)

# WikiText's tokenization: " @-@ " inside numbers and compounds, space before punctuation and
# clitics, space inside brackets. Undone with regexes, in this order.
_WIKITEXT = [
    (r" @([-,.])@ ", r"\1"),
    (r" ([.,;:!?%)\]}])", r"\1"),
    (r"([(\[{$]) ", r"\1"),
    (r" (n't|'s|'re|'ve|'m|'ll|'d)\b", r"\1"),
]


@functools.lru_cache(maxsize=1)
def _ftfy_config() -> Any:
    """Only the encoding repairs: no quote uncurling, width or ligature changes to good text."""
    import ftfy

    return ftfy.TextFixerConfig(
        unescape_html=False,
        remove_terminal_escapes=True,
        fix_encoding=True,
        restore_byte_a0=True,
        replace_lossy_sequences=True,
        decode_inconsistent_utf8=True,
        fix_c1_controls=True,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_line_breaks=False,
        fix_surrogates=True,
        remove_control_chars=False,
        normalization=None,
        explain=False,
    )


def fix_mojibake(text: str) -> str:
    import ftfy

    return str(ftfy.fix_text(text, _ftfy_config()))


def html_to_text(text: str) -> str:
    """Visible text of an HTML document, one line per block element (scripts, styles dropped)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(text)
    tree.strip_tags(_HTML_DROP)
    for node in tree.css(_HTML_BLOCKS):
        node.insert_after("\n")
    root = tree.body or tree.root
    return "" if root is None else str(root.text(separator="", deep=True))


def _apply_where(text: pa.Array, candidates: pa.Array, fn: Any) -> tuple[pa.Array, int]:
    """Run ``fn`` on the texts flagged by ``candidates`` only; returns the new column."""
    flags = pc.fill_null(candidates, False).to_pylist()
    if not any(flags):
        return text, 0
    values = text.to_pylist()
    for i, flag in enumerate(flags):
        if flag and values[i] is not None:
            values[i] = fn(values[i])
    return pa.array(values, pa.large_string()), sum(flags)


@dataclass(frozen=True)
class Clean:
    """The ``clean`` stage."""

    normalization: Literal["NFC", "NFKC", "none"] = "NFC"
    code: bool = False
    fix_mojibake: bool = True
    html: bool = False
    wikitext: bool = False
    # "keep": leave spaces and line structure exactly as they are (the classic WikiText setup,
    # where every line, blank ones included, is an end-of-line token).
    whitespace: Literal["normalize", "keep"] = "normalize"
    name: str = "clean"

    def config(self) -> dict[str, Any]:
        out = asdict(self)
        if self.fix_mojibake:
            import ftfy

            out["ftfy"] = ftfy.__version__
        return out

    def clean_text(self, text: pa.Array) -> pa.Array:
        text = pc.cast(text, pa.large_string())
        if self.html and not self.code:
            text, _ = _apply_where(
                text, pc.match_substring_regex(text, _HTML, ignore_case=True), html_to_text
            )
        text = pc.replace_substring_regex(text, r"\r\n?", "\n")
        # Repair, strip controls, normalize; normalization can expose new mojibake (NFKC
        # splits a cedilla off its neighbour), so repeat until nothing changes (rarely twice).
        for _ in range(4):
            before = text
            if self.fix_mojibake:
                candidates = pc.match_substring_regex(text, _MOJIBAKE)
                text, fixed = _apply_where(text, candidates, fix_mojibake)
            text = pc.replace_substring_regex(text, _CONTROL, "")
            if self.normalization != "none":
                text = pc.utf8_normalize(text, self.normalization)
            if before.equals(text):
                break
        if self.wikitext and not self.code:
            for pattern, replacement in _WIKITEXT:
                text = pc.replace_substring_regex(text, pattern, replacement)
        if self.whitespace == "keep":
            return text
        # Whitespace last: tabs and no-break spaces before a newline, then per mode.
        text = pc.replace_substring_regex(text, r"[ \t\x{00a0}]+\n", "\n")
        if not self.code:
            text = pc.replace_substring_regex(text, r"[ \t\x{00a0}]{2,}", " ")
            text = pc.replace_substring_regex(text, r"\n[ \t\x{00a0}]+\n", "\n\n")
            text = pc.replace_substring_regex(text, r"\n{3,}", "\n\n")
            text = pc.utf8_trim_whitespace(text)
        else:
            text = pc.utf8_rtrim_whitespace(text)
            text = pc.replace_substring_regex(text, r"^\n+", "")
        return text

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
        before = batch.column("text")
        after = self.clean_text(before)
        stats.changed += count_changed(pc.cast(before, pa.large_string()), after)
        return replace_text(batch, after)


@dataclass(frozen=True)
class LengthFilter:
    """Drop documents outside ``[min_chars, max_chars]`` (after cleaning; empty ones always)."""

    min_chars: int = 1
    max_chars: int | None = None
    name: str = "length"

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def __call__(self, batch: pa.RecordBatch, stats: StageStats) -> pa.RecordBatch:
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
