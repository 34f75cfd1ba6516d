"""Python ``re`` patterns translated to RE2, for Arrow's regex kernels: a superset, or an error.

The clean stage runs ftfy only on the documents that ftfy's own badness regex matches. Arrow
searches with RE2, which has no lookarounds and knows ``\\w`` only for ASCII, so the pattern is
parsed with Python's own parser and re-emitted piece by piece as RE2 that matches wherever the
original does (character categories come from ``re`` itself, over every code point). Anything
the translator does not know raises ``UntranslatableRegex``; it never guesses.
"""

from __future__ import annotations

import functools
import re
from typing import Any

MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
_RE2_MAX_REPEAT = 1000
# The only flags BADNESS_RE may carry: others (IGNORECASE, MULTILINE, DOTALL...) change what
# the translated pieces mean, so the translator refuses them.
_ALLOWED_FLAGS = re.VERBOSE | re.UNICODE

Intervals = list[tuple[int, int]]


class UntranslatableRegex(ValueError):
    """A construct of ftfy's badness regex that the RE2 translator does not know."""


def merge(intervals: Intervals) -> Intervals:
    """Sorted, non-overlapping, non-adjacent code point intervals."""
    out: Intervals = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _complement(intervals: Intervals) -> Intervals:
    out: Intervals = []
    start = 0
    for lo, hi in merge(intervals):
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return out


@functools.lru_cache(maxsize=1)
def every_code_point() -> str:
    return "".join(map(chr, range(MAX_CODE_POINT + 1)))


@functools.lru_cache(maxsize=8)
def _category(category: str, flags: int) -> tuple[tuple[int, int], ...]:
    """The exact code points Python's ``re`` puts in a category (``\\w``, ``\\s``...).

    Asked of ``re`` itself, over every code point, with the pattern's own flags: no hand-made
    table can drift from the running Python's Unicode database.
    """
    escape = {
        "CATEGORY_WORD": r"\w",
        "CATEGORY_NOT_WORD": r"\W",
        "CATEGORY_SPACE": r"\s",
        "CATEGORY_NOT_SPACE": r"\S",
        "CATEGORY_DIGIT": r"\d",
        "CATEGORY_NOT_DIGIT": r"\D",
    }.get(category)
    if escape is None:
        raise UntranslatableRegex(f"unknown character category {category}")
    runs = re.finditer(f"[{escape}]+", every_code_point(), flags & ~re.VERBOSE)
    return tuple((m.start(), m.end() - 1) for m in runs)


def _widen(members: tuple[tuple[int, int], ...]) -> Intervals:
    """A superset: the ASCII members, and all of non-ASCII if any member is non-ASCII."""
    ascii_part = [(lo, min(hi, 0x7F)) for lo, hi in members if lo <= 0x7F]
    beyond = [(0x80, MAX_CODE_POINT)] if members and members[-1][1] > 0x7F else []
    return ascii_part + beyond


def _class_intervals(items: list[tuple[Any, Any]], flags: int) -> Intervals:
    """The code points a parsed ``[...]`` matches (or more), negation included.

    Outside a negated class a category is widened to its ASCII members plus every non-ASCII
    code point: ``\\w`` alone has hundreds of ranges, which RE2 would recompile on every call.
    """
    negate = any(str(op) == "NEGATE" for op, _ in items)
    out: Intervals = []
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            continue
        elif name == "LITERAL":
            out.append((arg, arg))
        elif name == "RANGE":
            out.append((arg[0], arg[1]))
        elif name == "CATEGORY":
            members = _category(str(arg), flags)
            out.extend(members if negate else _widen(members))
        else:
            raise UntranslatableRegex(f"unknown class member {name} in ftfy's badness regex")
    return _complement(out) if negate else merge(out)


def emit_class(intervals: Intervals) -> str:
    """RE2 syntax for a set of code points, without surrogates (UTF-8 cannot hold them)."""
    parts = []
    for lo, hi in _complement(_complement(intervals) + [_SURROGATES]):
        parts.append(f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}")
    if not parts:
        raise UntranslatableRegex("a character class that matches nothing")
    return "[" + "".join(parts) + "]"


def _emit(items: Any, flags: int) -> str:
    """RE2 syntax matching a superset of what the parsed Python regex ``items`` matches."""
    out = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(f"\\x{{{arg:x}}}")
        elif name == "NOT_LITERAL":
            out.append(emit_class(_complement([(arg, arg)])))
        elif name == "ANY":  # Python's "." skips "\n"; matching it too only widens
            out.append(emit_class([(0, MAX_CODE_POINT)]))
        elif name == "IN":
            out.append(emit_class(_class_intervals(arg, flags)))
        elif name == "BRANCH":
            out.append("(?:" + "|".join(_emit(alt, flags) for alt in arg[1]) + ")")
        elif name == "SUBPATTERN":
            if arg[1] or arg[2]:
                raise UntranslatableRegex("a group with its own flags in ftfy's badness regex")
            out.append("(?:" + _emit(arg[3], flags) + ")")
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            out.append(_emit_repeat(arg, flags))
        elif name == "AT" and str(arg) in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
            # "^" ties a branch to the start of a line (ftfy's segment); dropping it lets the
            # branch match anywhere, which only widens the filter.
            continue
        else:
            raise UntranslatableRegex(
                f"{name} {arg} in ftfy's badness regex has no RE2 translation"
            )
    return "".join(out)


def _emit_repeat(arg: Any, flags: int) -> str:
    low, high, items = arg
    if low > _RE2_MAX_REPEAT or (high != _sre_parser().MAXREPEAT and high > _RE2_MAX_REPEAT):
        raise UntranslatableRegex("a repetition count RE2 does not allow")
    upper = "" if high == _sre_parser().MAXREPEAT else str(high)
    return f"(?:{_emit(items, flags)}){{{low},{upper}}}"


def _sre_parser() -> Any:
    """Python's own regex parser (``re._parser`` since 3.11, ``sre_parse`` before)."""
    try:
        import re._parser as parser
    except ImportError:  # Python 3.10
        import sre_parse as parser
    return parser


def translate_to_re2(pattern: re.Pattern[str]) -> str:
    """RE2 syntax that matches wherever ``pattern`` does (and maybe more); raises if unsure.

    Only literals, classes, alternation, groups and repetition are translated: a match then
    depends only on the characters it spans, so searching a whole document finds every match
    ftfy's per-line search finds. Anything else (lookarounds, anchors other than "^",
    backreferences, flags) raises ``UntranslatableRegex``, so a future ftfy cannot silently
    weaken the filter.
    """
    if pattern.flags & ~_ALLOWED_FLAGS:
        raise UntranslatableRegex(f"ftfy's badness regex has flags {pattern.flags:#x}")
    parsed = _sre_parser().parse(pattern.pattern, pattern.flags)
    return _emit(parsed, pattern.flags)
