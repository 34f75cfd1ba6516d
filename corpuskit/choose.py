"""Choosing a corpus: catalog filters (`corpuskit list`) and ranked suggestions (`suggest`).

The catalog holds facts; this module turns a person's constraints (languages, domains, a token
budget, a license family) into the entries that fit and a reason for each. Everything here is
deterministic and offline: the same catalog and question give the same answer, and a fact the
catalog does not know (a token count, a license) is said to be unknown rather than estimated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corpuskit.catalog import CorpusEntry, Subset
from corpuskit.catalog_schema import Size
from corpuskit.errors import CorpuskitError

FAMILIES = ("permissive", "copyleft", "noncommercial", "unknown")
# License id prefixes (compared lower-case) and their family. Checked in order: the first
# prefix that starts the id wins, so the more specific ones (cc-by-nc, cc-by-sa) come first.
_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("cc-by-nc", "noncommercial"),
    ("ldc", "noncommercial"),
    ("cc-by-sa", "copyleft"),
    ("gfdl", "copyleft"),
    ("gpl", "copyleft"),
    ("agpl", "copyleft"),
    ("lgpl", "copyleft"),
    ("odbl", "copyleft"),
    ("cdla-sharing", "copyleft"),
    ("cc0", "permissive"),
    ("public-domain", "permissive"),
    ("mit", "permissive"),
    ("apache", "permissive"),
    ("bsd", "permissive"),
    ("isc", "permissive"),
    ("psf", "permissive"),
    ("odc-by", "permissive"),
    ("pddl", "permissive"),
    ("cc-by", "permissive"),
    ("cdla-permissive", "permissive"),
)
_RESTRICTIVENESS = {"permissive": 0, "copyleft": 1, "noncommercial": 2, "unknown": 3}
# Programming languages accepted in `languages:` besides ISO 639 codes (code corpora).
PROGRAMMING_LANGUAGES = frozenset({
    "python", "javascript", "typescript", "java", "c", "cpp", "go", "rust", "php", "ruby",
    "shell", "sql", "code",
})
# A rough rule for turning a token budget into a byte budget for `fetch --max-bytes`: English
# text is about 4 bytes per GPT-2 token (other scripts take more). Said wherever it is used.
BYTES_PER_TOKEN = 4
_COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def license_family(license_id: str) -> str:
    """``permissive``, ``copyleft``, ``noncommercial`` or ``unknown`` for a license string.

    ``A AND B`` takes the more restrictive part (both apply), ``A OR B`` the less restrictive
    (either may be chosen); a parenthesised note is ignored. A license not in the table is
    ``unknown``, never assumed permissive.
    """
    text = re.sub(r"\([^)]*\)", " ", license_id).strip().lower()
    if " or " in text:
        return min((license_family(p) for p in text.split(" or ")), key=_RESTRICTIVENESS.get)
    if " and " in text:
        return max((license_family(p) for p in text.split(" and ")), key=_RESTRICTIVENESS.get)
    for prefix, family in _FAMILY_PREFIXES:
        if text.startswith(prefix):
            return family
    return "unknown"


def parse_count(text: str | int | None) -> int | None:
    """``2B``, ``500M``, ``1.5T``, ``10k`` or a plain number as a count (tokens, documents)."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMbBgGtT]?)\s*", text)
    if not match:
        raise CorpuskitError(
            f"count {text!r} is not a number; write e.g. 2B, 500M, 10k or 2000000000 "
            "(k, M, B, T are powers of 1000)"
        )
    value = round(float(match.group(1)) * _COUNT_UNITS[match.group(2).lower()])
    if value < 1:
        raise CorpuskitError(f"count {text!r} is less than one; give a positive number")
    return value


def _matches_license(entry: CorpusEntry, wanted: str) -> bool:
    if wanted.lower() in FAMILIES:
        return license_family(entry.license) == wanted.lower()
    return wanted.lower() in entry.license.lower()


def _any_in(wanted: Sequence[str], offered: Iterable[str]) -> bool:
    have = {x.lower() for x in offered}
    return any(w.lower() in have for w in wanted)


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if v]


def filter_entries(
    entries: Iterable[CorpusEntry],
    *,
    language: str | Sequence[str] | None = None,
    domain: str | Sequence[str] | None = None,
    source: str | None = None,
    license: str | None = None,
    max_size: int | None = None,
    min_tokens: int | str | None = None,
    max_tokens: int | str | None = None,
    gated: bool | None = None,
    search: str | None = None,
    sort: str = "name",
) -> list[CorpusEntry]:
    """Entries matching every criterion (case-insensitive).

    Several languages or domains match an entry offering any of them (a subset's languages
    count). Token and byte bounds leave out entries whose size is unknown: a bound cannot be
    checked against a fact nobody knows. ``sort``: ``name``, or ``size``/``tokens`` (largest
    first, unknown last).
    """
    languages, domains = _as_list(language), _as_list(domain)
    low, high = parse_count(min_tokens), parse_count(max_tokens)
    out = []
    for e in entries:
        tokens = e.size.tokens
        if languages and not _any_in(languages, e.all_languages):
            continue
        if domains and not _any_in(domains, e.domains):
            continue
        if source and source.lower() != e.source.type:
            continue
        if license and not _matches_license(e, license):
            continue
        if max_size is not None and (e.size.bytes is None or e.size.bytes > max_size):
            continue
        if low is not None and (tokens is None or tokens < low):
            continue
        if high is not None and (tokens is None or tokens > high):
            continue
        if gated is not None and (e.gated is not None) != gated:
            continue
        if search and search.lower() not in " ".join(
            [e.name, e.title, e.description, *e.domains]
        ).lower():
            continue
        out.append(e)
    return sort_entries(out, sort)


def sort_entries(entries: list[CorpusEntry], by: str) -> list[CorpusEntry]:
    """By ``name``, or by ``size``/``tokens`` largest first with unknown sizes last."""
    if by == "name":
        return sorted(entries, key=lambda e: e.name)
    if by not in ("size", "tokens"):
        raise CorpuskitError(f"cannot sort by {by!r}; use size, tokens or name")
    attr = "bytes" if by == "size" else "tokens"

    def key(e: CorpusEntry) -> tuple[bool, int, str]:
        value = getattr(e.size, attr)
        return (value is None, -(value or 0), e.name)

    return sorted(entries, key=key)


def _count(n: int | None) -> str:
    """12_300_000_000 → ``12.3B``; ``?`` when unknown."""
    if n is None:
        return "?"
    for unit, factor in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= factor:
            return f"{n / factor:.3g}{unit}"
    return str(n)


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} B"


def languages_cell(entry: CorpusEntry, limit: int = 6) -> str:
    """The languages an entry offers, shortened (``de, fr, es, … (30)``) for tables."""
    langs = [x for x in entry.all_languages if x != "mul"]
    if len(langs) <= limit:
        return ", ".join(langs)
    return ", ".join(langs[:limit]) + f", … ({len(langs)})"


def markdown_table(entries: Iterable[CorpusEntry]) -> str:
    """The catalog as a Markdown table (docs/catalog-and-fetch.md holds it between markers)."""
    lines = [
        "| name | languages | domains | size | tokens | license | gated | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        tokens = f"{_count(e.size.tokens)} ({e.size.tokenizer})" if e.size.tokens else "?"
        cells = [
            f"`{e.name}`", languages_cell(e), ", ".join(e.domains), _bytes(e.size.bytes), tokens,
            e.license, "yes" if e.gated else "", e.source.type,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class Suggestion:
    """One ranked answer: the entry (and subset) to fetch, why, and the command to run."""

    name: str
    subset: str | None
    score: tuple[int, ...]
    reasons: list[str]
    command: str
    entry: CorpusEntry = field(repr=False)

    def line(self) -> str:
        """The one line `corpuskit suggest` prints for it."""
        target = f"{self.name} --subset {self.subset}" if self.subset else self.name
        return f"{target}: {'; '.join(self.reasons)}  →  {self.command}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "subset": self.subset, "reasons": self.reasons,
                "command": self.command, "license": self.entry.license}


def _quality(entry: CorpusEntry) -> tuple[int, str]:
    """A coarse quality grade from what the publisher did (its `processing:` note)."""
    note = (entry.processing or "").lower()
    points, said = 0, []
    if "classifier" in note:  # a learned quality judgement outweighs dedup plus heuristics
        points, said = points + 3, said + ["quality classifier"]
    if "dedup" in note or "deduplicat" in note:
        points, said = points + 1, said + ["deduplicated"]
    if "filter" in note and "classifier" not in note:
        points, said = points + 1, said + ["filtered"]
    return points, (", ".join(said) if said else "no quality processing stated")


def _pick_subset(entry: CorpusEntry, languages: list[str], budget: int | None) -> Subset | None:
    """The subset to fetch: one in a wanted language, else the smallest sample that covers
    the budget; ``None`` fetches (a slice of) the whole entry."""
    if languages:
        for s in entry.subsets:
            if _any_in(languages, s.languages):
                return s
        return None
    if budget is None:
        return None
    covering = [s for s in entry.subsets if s.size.tokens is not None and s.size.tokens >= budget]
    return min(covering, key=lambda s: s.size.tokens or 0) if covering else None


def _fit(size: Size, budget: int | None) -> tuple[int, str]:
    """How the size compares with the budget: 4 enough, 3 probably enough (estimated from
    bytes), 2 unknown, 1 probably too small, 0 too small. An estimate says it is one."""
    if budget is None:
        return 2, f"{_count(size.tokens)} {size.tokenizer} tokens" if size.tokens else (
            f"size {_bytes(size.bytes)}" if size.bytes else "size unknown")
    if size.tokens is not None:
        counted = f"{_count(size.tokens)} {size.tokenizer} tokens"
        if size.tokens >= budget:
            return 4, f"{counted} ≥ the {_count(budget)} budget: a slice is enough"
        times = budget / size.tokens
        return 0, f"only {counted} < the {_count(budget)} budget: ×{times:.1f} repetition"
    if size.bytes is None:
        return 2, "size unknown"
    guess = size.bytes // BYTES_PER_TOKEN
    said = f"≈{_count(guess)} tokens (estimated: {_bytes(size.bytes)} at {BYTES_PER_TOKEN} B/token)"
    if guess >= budget:
        return 3, f"{said} ≥ the {_count(budget)} budget"
    return 1, f"{said} < the {_count(budget)} budget: probably too small"


def _command(entry: CorpusEntry, subset: Subset | None, size: Size, budget: int | None) -> str:
    """The fetch command: a byte slice when the corpus is (or may be) larger than the budget."""
    from corpuskit.slices import format_size  # the fetch CLI's own spelling of sizes

    parts = ["corpuskit fetch", entry.name]
    if subset is not None:
        parts += ["--subset", subset.name]
    if budget is None:
        return " ".join(parts)
    wanted = budget * BYTES_PER_TOKEN
    if size.tokens is not None:
        larger = size.tokens > budget
    else:
        larger = size.bytes is None or size.bytes > wanted
    if larger:
        parts += ["--max-bytes", format_size(wanted)]
    return " ".join(parts)


def suggest(
    entries: Iterable[CorpusEntry],
    *,
    language: str | Sequence[str] | None = None,
    domain: str | Sequence[str] | None = None,
    tokens: int | str | None = None,
    license: str | None = None,
    gated: bool | None = None,
    limit: int = 10,
) -> list[Suggestion]:
    """Entries that fit, best first, each with its reasons and fetch command.

    Ranking, in order: size against the budget (enough > unknown > too small), quality
    processing stated by the publisher, license family (permissive first), not gated, and
    benchmarks last unless asked for (they are for evaluation); ties by name. Mixtures are
    recipes, not corpora, and are not suggested.
    """
    languages, domains = _as_list(language), _as_list(domain)
    budget = parse_count(tokens)
    pool = [e for e in filter_entries(entries, language=languages, domain=domains,
                                      license=license, gated=gated) if e.source.type != "mix"]
    found = [_suggestion(e, languages, domains, budget) for e in pool]
    return sorted(found, key=lambda s: (tuple(-x for x in s.score), s.name))[:limit]


def _suggestion(
    entry: CorpusEntry, languages: list[str], domains: list[str], budget: int | None
) -> Suggestion:
    subset = _pick_subset(entry, languages, budget)
    size = subset.size if subset is not None else entry.size  # a part has its own size
    fit, fit_reason = _fit(size, budget)
    quality, quality_reason = _quality(entry)
    family = license_family(entry.license)
    license_points = {"permissive": 2, "copyleft": 1}.get(family, 0)
    not_benchmark = 0 if "benchmark" in entry.domains and "benchmark" not in domains else 1
    reasons = [fit_reason, quality_reason, f"{entry.license} ({family})"]
    if entry.gated is not None:
        reasons.append(f"gated: accept the terms at {entry.gated.terms} and set HF_TOKEN")
    if not not_benchmark:
        reasons.append("an evaluation benchmark")
    score = (not_benchmark, fit, quality, license_points, int(entry.gated is None))
    return Suggestion(entry.name, subset.name if subset else None, score, reasons,
                      _command(entry, subset, size, budget), entry)
