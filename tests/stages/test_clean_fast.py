"""The fast clean stage: its ftfy pre-filter is a proven superset, and it skips no change.

``Clean`` runs ftfy only where a vectorised RE2 pattern, translated from ftfy's own badness
regex, matches; Unicode normalization only where Python says a document is not normalized;
and later repair rounds only on the documents the previous round changed. The reference below
is the definition (ftfy and every pass on every document, rounds on the whole column), kept
here so the fast path is compared against it byte for byte.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import random
import re
from collections.abc import Iterator
from itertools import product

import ftfy
import ftfy.badness
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpuskit.stages import clean as clean_module
from corpuskit.stages.clean import (
    Clean,
    UntranslatableRegex,
    _ftfy_config,
    _ftfy_filter,
    _normalize,
    ftfy_candidates,
    translate_to_re2,
)
from tests.conftest import needs_shared

# ---------------------------------------------------------------------------------------------
# The reference: the definition of the stage, every pass on every document.


@functools.cache
def _ftfy_reference(text: str) -> str:
    """ftfy on one document (memoised: a pure function, and the grid reuses the same inputs)."""
    return str(ftfy.fix_text(text, _ftfy_config()))


def _html_reference(text: str) -> str:
    return clean_module.html_to_text(text)


def reference_clean(column: pa.Array, options: Clean) -> pa.Array:
    """What ``Clean.clean_text`` must return: no pre-filters, rounds over the whole column."""
    text = pc.cast(column, pa.large_string())
    if options.html and not options.code:
        flagged = pc.match_substring_regex(
            text, r"<(?:[a-zA-Z][a-zA-Z0-9]*[\s/>]|/[a-zA-Z]|!--|!doctype)", ignore_case=True
        ).to_pylist()
        values = text.to_pylist()
        values = [
            _html_reference(v) if f and v is not None else v
            for v, f in zip(values, flagged, strict=True)
        ]
        text = pa.array(values, pa.large_string())
    text = pc.replace_substring_regex(text, r"\r\n?", "\n")
    # Repair, then WikiText and whitespace, then repair again where that changed something.
    shaped = _reference_shape(_reference_repair(text, options), options)
    for _ in range(4):
        again = _reference_repair(shaped, options)
        if again.equals(shaped):
            break
        shaped = _reference_shape(again, options)
    return shaped


def _reference_repair(text: pa.Array, options: Clean) -> pa.Array:
    for _ in range(4):
        before = text
        if options.fix_mojibake:
            values = [None if v is None else _ftfy_reference(v) for v in text.to_pylist()]
            text = pa.array(values, pa.large_string())
        text = pc.replace_substring_regex(text, r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x{9f}]", "")
        if options.normalization != "none":
            text = pc.utf8_normalize(text, options.normalization)
        if before.equals(text):
            break
    return text


def _reference_shape(text: pa.Array, options: Clean) -> pa.Array:
    if options.wikitext and not options.code:
        for pattern, replacement in [
            (r" @([-,.])@ ", r"\1"),
            (r" ([.,;:!?%)\]}])", r"\1"),
            (r"([(\[{$]) ", r"\1"),
            (r" (n't|'s|'re|'ve|'m|'ll|'d)\b", r"\1"),
        ]:
            text = pc.replace_substring_regex(text, pattern, replacement)
    if options.whitespace == "keep":
        return text
    text = pc.replace_substring_regex(text, r"[ \t\x{00a0}]+\n", "\n")
    if not options.code:
        text = pc.replace_substring_regex(text, r"[ \t\x{00a0}]{2,}", " ")
        text = pc.replace_substring_regex(text, r"\n[ \t\x{00a0}]+\n", "\n\n")
        text = pc.replace_substring_regex(text, r"\n{3,}", "\n\n")
        return pc.utf8_trim_whitespace(text)
    text = pc.utf8_rtrim_whitespace(text)
    return pc.replace_substring_regex(text, r"^\n+", "")


GRID = [
    Clean(code=code, normalization=form, whitespace=space)  # type: ignore[arg-type]
    for code, form, space in product((False, True), ("NFC", "NFKC", "none"), ("normalize", "keep"))
]


def assert_same_as_reference(texts: list[str | None], options: list[Clean]) -> None:
    column = pa.array(texts, pa.large_string())
    for option in options:
        fast = option.clean_text(column)
        slow = reference_clean(column, option)
        if not fast.equals(slow):
            diffs = [
                (i, a, b)
                for i, (a, b) in enumerate(zip(slow.to_pylist(), fast.to_pylist(), strict=True))
                if a != b
            ]
            i, want, got = diffs[0]
            raise AssertionError(
                f"{option}: {len(diffs)} documents differ; #{i}: {want[:200]!r} != {got[:200]!r}"
            )


# ---------------------------------------------------------------------------------------------
# Real samples (skipped, with the reason, where ../shared/data is absent).


def _jsonl(lines: Iterator[str], field: str) -> list[str]:
    return [json.loads(line)[field] for line in lines if line.strip()]


def _wikitext() -> list[str]:
    raw = needs_shared("wikitext-2", "wiki.valid.raw").read_text(encoding="utf-8")
    return re.split(r"\n(?= = [^=])", raw)  # one document per article


def _oscar() -> list[str]:
    path = needs_shared("oscar-2019-sample", "oscar2019_dedup_first_docs.jsonl")
    return _jsonl(iter(path.read_text(encoding="utf-8").split("\n")), "text")


def _dolma() -> list[str]:
    out: list[str] = []
    for name in ("cc_en_head-0091.jsonl", "cc_en_head-0174.jsonl"):
        path = needs_shared("dolma-cc-sample", name)
        out += _jsonl(iter(path.read_text(encoding="utf-8").split("\n")), "text")
    for name in (
        "provided-documents-000.json.gz",
        "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
    ):
        with gzip.open(needs_shared("dolma-cc-sample", name), "rt", encoding="utf-8") as f:
            out += _jsonl(f, "text")
    return out


def _aozora() -> list[str]:
    raw = needs_shared("aozora-ja", "wagahaiwa_nekodearu.txt").read_text(encoding="utf-8")
    lines = raw.splitlines(keepends=True)
    return ["".join(lines[i : i + 40]) for i in range(0, len(lines), 40)]


def _code() -> list[str]:
    path = needs_shared("code-sample", "pytorch_examples_source.jsonl")
    out = _jsonl(iter(path.read_text(encoding="utf-8").split("\n")), "content")
    with gzip.open(needs_shared("code-sample", "HumanEval.jsonl.gz"), "rt") as f:
        out += [
            doc["prompt"] + doc["canonical_solution"] + doc["test"] for doc in map(json.loads, f)
        ]
    return out


REAL_SAMPLES = {
    "wikitext-2": _wikitext,
    "oscar-2019-sample": _oscar,
    "dolma-cc-sample": _dolma,
    "aozora-ja": _aozora,
    "code-sample": _code,
}


@pytest.mark.parametrize("sample", sorted(REAL_SAMPLES))
def test_fast_clean_equals_reference_on_real_samples(sample: str) -> None:
    assert_same_as_reference(REAL_SAMPLES[sample](), GRID)


# ---------------------------------------------------------------------------------------------
# A generated corpus with planted mojibake, controls, line endings and normalization work.

_WORDS = [
    "the",
    "naïve",
    "café",
    "“quoted”",
    "it’s",
    "Straße",
    "Ελληνικά",
    "русский",
    "日本語",
    "हिन्दी",
    "العربية",
    "ñandú",
    "façade",
    "—",
    "…",
    "½",
    "ﬁne",
    "Ａｂｃ",
    "²",
    "¸",
    "´",
    "e\u0301",
    "n\u0303",
    "\u212b",
    "한국어",
    "\u1100\u1161",
    "😀",
    "\U000e0101",
    "\U00050000",
]


def _mojibake(word: str, rng: random.Random) -> str:
    codec = rng.choice(["latin-1", "cp1252", "cp1251", "mac_roman", "cp1253"])
    return word.encode("utf-8").decode(codec, errors="replace")


def _generated_corpus(seed: int = 18, size: int = 400) -> list[str | None]:
    rng = random.Random(seed)
    docs: list[str | None] = [None, "", " ", "\r\n\r\n"]
    for _ in range(size):
        parts = []
        for _ in range(rng.randint(1, 40)):
            word = rng.choice(_WORDS + ["word"] * 20)
            roll = rng.random()
            if roll < 0.05:
                word = _mojibake(word, rng)
            elif roll < 0.07:
                word = rng.choice(["\x85", "\x92", "\x1b[31m", "\x1b[0m", "\x00", "\x7f"]) + word
            parts.append(word)
            parts.append(rng.choice([" ", " ", " ", "  ", "\n", "\r\n", "\n\n\n", " \t\n", "\xa0"]))
        docs.append("".join(parts))
    return docs


def test_fast_clean_equals_reference_on_planted_corpus() -> None:
    docs = _generated_corpus()
    options = [*GRID, Clean(fix_mojibake=False), Clean(html=True), Clean(wikitext=True)]
    assert_same_as_reference(docs, options)


# ---------------------------------------------------------------------------------------------
# The pre-filter is a superset of everything ftfy can change.


def _alphabet() -> list[str]:
    """Characters ftfy's badness regex is about, plus the ASCII that its patterns mention."""
    chars = set(map(chr, range(0x80, 0x100)))  # C1 controls and Latin-1
    chars |= set(bytes(range(0x80, 0xA0)).decode("cp1252", errors="ignore"))
    chars |= set(map(chr, range(0x370, 0x400)))  # Greek
    chars |= set(map(chr, range(0x400, 0x460)))  # Cyrillic
    chars |= set(map(chr, range(0x2500, 0x2580)))  # box drawing
    for members in ftfy.badness.MOJIBAKE_CATEGORIES.values():
        chars |= {c for c in members if c != "-"}
    chars |= set("√±∂†≠®™≤≥¥µø≈‚Äìîïòôúùûπâóàäê°¢€ā×²³")
    chars |= set("aZz .,?!\n\x1b[31m;")
    return sorted(chars)


ALPHABET = _alphabet()


def _candidates(texts: list[str]) -> list[bool]:
    return ftfy_candidates(pa.array(texts, pa.large_string())).to_pylist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=st.sampled_from(ALPHABET), max_size=8), min_size=1, max_size=40))
def test_a_document_the_filter_passes_is_one_ftfy_leaves_alone(texts: list[str]) -> None:
    for text, flagged in zip(texts, _candidates(texts), strict=True):
        if not flagged:
            assert not ftfy.badness.is_bad(text), text
            assert ftfy.fix_text(text, _ftfy_config()) == text, text


def test_every_pair_of_badness_characters_the_filter_passes_is_left_alone() -> None:
    """Exhaustive over two characters, where most of ftfy's patterns live."""
    pairs = [a + b for a in ALPHABET for b in ALPHABET]
    passed = [text for text, flagged in zip(pairs, _candidates(pairs), strict=True) if not flagged]
    assert 1000 < len(passed) < len(pairs)  # the filter does pass most good text, not all
    assert [t for t in passed if ftfy.badness.is_bad(t)] == []
    assert [t for t in passed[::7] if ftfy.fix_text(t, _ftfy_config()) != t] == []


KNOWN_MOJIBAKE = {
    "sÃ³": "só",
    "Ã©tÃ©": "été",
    "вЂ”": "—",  # cp1251 reading of an em dash: the old candidate regex missed it
    "se√±or": "señor",  # MacRoman: missed too
    "a\x85b": "a…b",  # a C1 control, read as cp1252
    "red \x1b[31mtext": "red text",  # a terminal escape: the old code left "[31m" behind
    "ab\nÂ x": "ab\n\xa0x",  # "^" in ftfy's pattern: the start of a line, not of the document
}


def test_known_mojibake_is_flagged_and_fixed() -> None:
    texts = list(KNOWN_MOJIBAKE)
    assert all(_candidates(texts))
    assert [ftfy.fix_text(t, _ftfy_config()) for t in texts] == list(KNOWN_MOJIBAKE.values())
    cleaned = Clean(whitespace="keep").clean_text(pa.array(texts, pa.large_string()))
    assert cleaned.to_pylist() == list(KNOWN_MOJIBAKE.values())


# ---------------------------------------------------------------------------------------------
# The translator fails loudly, and clean then runs ftfy on every non-ASCII document.


@pytest.mark.parametrize(
    "pattern",
    [r"a(?=b)", r"a(?!b)", r"(?<=a)b", r"ab$", r"\bab", r"(a)\1", r"(?i:ab)"],
)
def test_translator_refuses_what_it_does_not_know(pattern: str) -> None:
    with pytest.raises(UntranslatableRegex):
        translate_to_re2(re.compile(pattern))


def test_translator_refuses_flags_that_change_meaning() -> None:
    with pytest.raises(UntranslatableRegex):
        translate_to_re2(re.compile("ab", re.IGNORECASE))


def test_translation_matches_what_python_matches() -> None:
    pattern = re.compile(r"[^A-Za-z]x|\s[Ã]|\w\d{2,3}|^Â |.y")
    texts = ["1x", "ax", " Ã", "\u3000Ã", "é12", "é1", "Â z", "zÂ z", "\ny", "y", "_99"]
    want = [bool(pattern.search(t)) for t in texts]
    got = pc.match_substring_regex(pa.array(texts), translate_to_re2(pattern)).to_pylist()
    assert [g for g, w in zip(got, want, strict=True) if w and not g] == []  # a superset ...
    assert got == [True, False, True, True, True, False, True, True, True, False, True]


@pytest.fixture
def untranslatable_ftfy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ftfy's badness regex as a future version might write it: with a lookahead.

    ftfy itself then uses it too, so the memoised reference forgets what real ftfy returned.
    """
    monkeypatch.setattr(ftfy.badness, "BADNESS_RE", re.compile(r"Ã(?=[\x80-\xbf])|[\x80-\x9f]"))
    _ftfy_filter.cache_clear()
    _ftfy_reference.cache_clear()
    yield
    _ftfy_filter.cache_clear()
    _ftfy_reference.cache_clear()


def test_clean_falls_back_to_every_non_ascii_document(
    untranslatable_ftfy: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="corpuskit.stages.clean"):
        assert _ftfy_filter() is None
    assert "running ftfy on every non-ASCII document" in caplog.text
    texts = ["plain ascii", "naïve", "esc \x1b[1m", "日本"]
    assert _candidates(texts) == [False, True, True, True]
    assert_same_as_reference(_generated_corpus(size=60), [Clean(), Clean(code=True)])


def test_an_ftfy_with_other_options_is_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clean_module, "_FTFY_OPTIONS", clean_module._FTFY_OPTIONS - {"explain"})
    _ftfy_filter.cache_clear()
    try:
        assert _ftfy_filter() is None
        assert _candidates(["plain ascii", "naïve"]) == [False, True]
    finally:
        _ftfy_filter.cache_clear()


# ---------------------------------------------------------------------------------------------
# Normalization runs only where needed, with Arrow's result.


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=12), max_size=20),
    st.sampled_from(["NFC", "NFKC"]),
)
def test_normalize_only_where_needed_is_arrow_normalize(texts: list[str], form: str) -> None:
    column = pa.array(texts, pa.large_string())
    assert _normalize(column, form).equals(pc.utf8_normalize(column, form))
