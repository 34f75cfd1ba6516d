"""Text cleaning: mojibake, HTML, WikiText tokens, Unicode normalization, controls, whitespace.

Most of it runs as vectorised Arrow compute kernels over a whole batch. The two steps that need a
real parser run per document, and only on the documents that a cheap vectorised regex says may
need them: mojibake repair with ftfy and HTML-to-text with selectolax's lexbor parser (only
documents containing tags). ftfy's filter is exact, not a heuristic: it is ftfy's own badness
regex translated to RE2 (plus C1 controls and ESC), a superset of every line ftfy can change,
so skipping the other documents changes no output (about 1% of web documents are flagged).
Every other pass likewise skips documents a cheap check proves it would leave unchanged.

The order is chosen so that cleaning is idempotent (``clean(clean(x)) == clean(x)``): mojibake is
repaired first (ftfy needs the original code points), controls are removed before normalization
(removing one between a letter and an accent would otherwise leave a non-normalized pair), and
whitespace is normalized last (NFKC turns some characters into spaces), and a document whose
whitespace changed is repaired again, because ftfy judges a character by its neighbours.

Code corpora keep their indentation and line structure: only line endings, controls, trailing
whitespace and leading blank lines are touched, and HTML and WikiText options are ignored.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from corpuskit.stages.base import StageStats, count_changed, drop_where, replace_text
from corpuskit.stages.re2_translate import (
    MAX_CODE_POINT,
    Intervals,
    UntranslatableRegex,
    emit_class,
    every_code_point,
    merge,
    translate_to_re2,
)

# C0 controls except tab and newline, DEL, and C1 controls (U+0080-U+009F, which in real text
# are almost always mojibake or garbage); carriage returns are handled as line endings.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x{9f}]"

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


# Everything ftfy (with ``_ftfy_config()``) can change in a line: its encoding repair only runs
# where ``ftfy.badness.is_bad`` matches; fix_c1_controls needs a C1 control; remove_terminal_escapes
# needs an ESC; fix_surrogates needs a surrogate, which valid UTF-8 cannot hold.
_FTFY_EXTRA = r"[\x{80}-\x{9f}]|\x{1b}"
# The options of ftfy 6.3's TextFixerConfig that reading was done against: a version with another
# option may have a fix that the filter does not know, so the filter is not used with it.
_FTFY_OPTIONS = frozenset(
    [
        "unescape_html",
        "remove_terminal_escapes",
        "fix_encoding",
        "restore_byte_a0",
        "replace_lossy_sequences",
        "decode_inconsistent_utf8",
        "fix_c1_controls",
        "fix_latin_ligatures",
        "fix_character_width",
        "uncurl_quotes",
        "fix_line_breaks",
        "fix_surrogates",
        "remove_control_chars",
        "normalization",
        "max_decode_length",
        "explain",
    ]
)
_FIRST_UNKNOWN_PLANE = 0x40000


@functools.lru_cache(maxsize=1)
def _ftfy_filter() -> str | None:
    """RE2 pattern for "ftfy may change this document", or None when it cannot be built."""
    import ftfy.badness

    try:
        options = set(_ftfy_config()._fields)
        if options != _FTFY_OPTIONS:
            raise UntranslatableRegex(f"ftfy's options changed: {sorted(options ^ _FTFY_OPTIONS)}")
        return f"{translate_to_re2(ftfy.badness.BADNESS_RE)}|{_FTFY_EXTRA}"
    except UntranslatableRegex as exc:
        logging.getLogger(__name__).warning(
            "clean: running ftfy on every non-ASCII document (%s)", exc
        )
        return None


def ftfy_candidates(text: pa.Array) -> pa.Array:
    """Documents ftfy may change: a proven superset, so skipping the rest changes nothing."""
    pattern = _ftfy_filter()
    if pattern is None:  # ASCII text can only change by its terminal escapes
        return pc.or_(pc.invert(pc.string_is_ascii(text)), pc.match_substring(text, "\x1b"))
    return pc.match_substring_regex(text, pattern)


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


def _where(text: pa.Array, mask: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``fn`` (a per-document transform) applied to the flagged documents only.

    ``mask`` must flag every document ``fn`` would change. When most are flagged, ``fn`` runs on
    the whole column: the others come out unchanged, and it saves the filter and the scatter.
    """
    mask = pc.fill_null(mask, False)
    flagged = pc.sum(mask).as_py() or 0
    if flagged == 0:
        return text
    if flagged * 2 > len(text):
        return fn(text)
    return pc.replace_with_mask(text, mask, fn(pc.filter(text, mask)))


def _map_str(text: pa.Array, fn: Callable[[str], str]) -> pa.Array:
    """A Python function over every non-null document of a (small) column."""
    out = [None if value is None else fn(value) for value in text.to_pylist()]
    return pa.array(out, pa.large_string())


@functools.lru_cache(maxsize=1)
def _unassigned() -> str:
    """RE2 class of the code points this Python's Unicode database does not know.

    Python's ``is_normalized`` decides which documents Arrow normalizes; Unicode's stability
    policy makes that exact for characters both Unicode versions know, so documents with a
    character Python does not know (planes 4-16 wholesale: unassigned or private use) go to
    Arrow regardless.
    """
    known = every_code_point()[:_FIRST_UNKNOWN_PLANE]
    runs: Intervals = [(_FIRST_UNKNOWN_PLANE, MAX_CODE_POINT)]
    runs += [(i, i) for i, char in enumerate(known) if unicodedata.category(char) == "Cn"]
    return emit_class(merge(runs))


def _normalize(text: pa.Array, form: str) -> pa.Array:
    """``pc.utf8_normalize``, run only on documents that are not already normalized."""
    needs = [
        value is not None and not unicodedata.is_normalized(form, value)
        for value in text.to_pylist()
    ]
    mask = pc.or_(pa.array(needs, pa.bool_()), pc.match_substring_regex(text, _unassigned()))
    return _where(text, mask, lambda part: pc.utf8_normalize(part, form))


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
        """The cleaned column. Every pass skips the documents a cheap check proves it would
        leave as they are, so the output is the same as running every pass on every document.
        """
        text = pc.cast(text, pa.large_string())
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        if self.html and not self.code:
            text = _where(
                text,
                pc.match_substring_regex(text, _HTML, ignore_case=True),
                lambda part: _map_str(part, html_to_text),
            )
        text = _where(
            text,
            pc.match_substring(text, "\r"),
            lambda part: pc.replace_substring_regex(part, r"\r\n?", "\n"),
        )
        return self._settle(self._repair(text))

    def _settle(self, text: pa.Array) -> pa.Array:
        """WikiText markup and whitespace, then repair again where they changed something,
        until a round changes nothing (at most 4 rounds): cleaning is idempotent.

        Mojibake repair depends on a character's neighbours: in ``"\\u00a0Â\\x91"`` ftfy leaves
        the ``Â`` alone, but once whitespace trimming drops the no-break space, ``"Â‘"`` is
        mojibake, which a second cleaning of the output used to repair. Only ftfy can see a
        difference: shaping deletes whitespace and never leaves a character next to one it
        could compose with (a newline, a space, an ASCII punctuation mark or nothing stays in
        between), and adds no controls. So only documents that shaping changed and that ftfy
        may change are repaired again (tests compare with repairing every document).
        """
        out = self._shape(text)
        if not self.fix_mojibake:
            return out
        todo = pc.fill_null(pc.not_equal(text, out), False)
        for _ in range(4):
            if not pc.any(todo).as_py():
                break
            shaped = pc.filter(out, todo)
            maybe = pc.fill_null(ftfy_candidates(shaped), False)
            todo = pc.replace_with_mask(todo, todo, maybe)
            if not pc.any(maybe).as_py():
                break
            shaped = pc.filter(shaped, maybe)
            repaired = self._repair(shaped)
            if not pc.any(pc.fill_null(pc.not_equal(shaped, repaired), False)).as_py():
                break
            again = self._shape(repaired)
            out = pc.replace_with_mask(out, todo, again)
            todo = pc.replace_with_mask(
                todo, todo, pc.fill_null(pc.not_equal(repaired, again), False)
            )
        return out

    def _shape(self, text: pa.Array) -> pa.Array:
        if self.wikitext and not self.code:
            for pattern, replacement in _WIKITEXT:
                text = pc.replace_substring_regex(text, pattern, replacement)
        if self.whitespace == "keep":
            return text
        return self._whitespace(text)

    def _repair(self, text: pa.Array) -> pa.Array:
        """Repair, strip controls, normalize, until nothing changes (at most 4 rounds).

        Normalization can expose new mojibake (NFKC splits a cedilla off its neighbour), hence
        the rounds. A round works per document, so a document it left unchanged is a fixed
        point: later rounds only take the documents the previous round changed.
        """
        todo: pa.Array | None = None  # None: every document
        for _ in range(4):
            before = text if todo is None else pc.filter(text, todo)
            after = self._repair_round(before)
            changed = pc.fill_null(pc.not_equal(before, after), False)
            if not pc.any(changed).as_py():
                break
            text = after if todo is None else pc.replace_with_mask(text, todo, after)
            todo = changed if todo is None else pc.replace_with_mask(todo, todo, changed)
        return text

    def _repair_round(self, text: pa.Array) -> pa.Array:
        if self.fix_mojibake:
            text = _where(text, ftfy_candidates(text), lambda part: _map_str(part, fix_mojibake))
        text = pc.replace_substring_regex(text, _CONTROL, "")
        if self.normalization != "none":
            text = _normalize(text, self.normalization)
        return text

    def _whitespace(self, text: pa.Array) -> pa.Array:
        """Tabs and no-break spaces before a newline, then runs of spaces and blank lines."""
        text = pc.replace_substring_regex(text, r"[ \t\x{00a0}]+\n", "\n")
        if not self.code:
            text = pc.replace_substring_regex(text, r"[ \t\x{00a0}]{2,}", " ")
            text = pc.replace_substring_regex(text, r"\n[ \t\x{00a0}]+\n", "\n\n")
            text = pc.replace_substring_regex(text, r"\n{3,}", "\n\n")
            return pc.utf8_trim_whitespace(text)
        text = pc.utf8_rtrim_whitespace(text)
        return pc.replace_substring_regex(text, r"^\n+", "")

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
