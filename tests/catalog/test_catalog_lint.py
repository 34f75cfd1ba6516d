"""Lint of the built-in catalog: every entry validates and is sourced, no two entries claim the
same files, and the catalog covers the landscape it promises (entries, domains, languages).

Offline: only the YAML files in catalog/ are read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from fnmatch import fnmatchcase
from itertools import combinations
from pathlib import Path

import pytest

from corpuskit.catalog import BUILTIN_CATALOG_DIR, Catalog, CorpusEntry, load_file
from corpuskit.catalog_schema import DOMAINS
from corpuskit.choose import PROGRAMMING_LANGUAGES
from corpuskit.errors import CatalogError

ISO_639 = re.compile(r"^[a-z]{2,3}$")


@pytest.fixture(scope="module")
def builtin() -> list[CorpusEntry]:
    files = sorted(BUILTIN_CATALOG_DIR.glob("*.yaml"))
    return list(Catalog(e for f in files for e in load_file(f)))


def _natural(codes: list[str]) -> set[str]:
    return {c for c in codes if ISO_639.match(c) and c not in PROGRAMMING_LANGUAGES | {"mul"}}


def test_every_entry_has_sources_license_languages_domains(builtin: list[CorpusEntry]) -> None:
    problems = []
    for e in builtin:
        if not e.sources:
            problems.append(f"{e.name}: no sources")
        if not e.license.strip():
            problems.append(f"{e.name}: no license")
        if not e.all_languages:
            problems.append(f"{e.name}: no languages")
        bad = [c for c in e.all_languages if not (ISO_639.match(c) or c in PROGRAMMING_LANGUAGES)]
        if bad:
            problems.append(f"{e.name}: languages {bad} are neither ISO 639 nor programming")
        if not e.domains or not set(e.domains) <= DOMAINS:
            problems.append(f"{e.name}: domains {e.domains} not in the vocabulary")
        if e.size.tokens is not None and not e.size.tokenizer:
            problems.append(f"{e.name}: tokens without tokenizer")
        unselective = [s.name for s in e.subsets if not s.globs]
        if unselective:  # `fetch --subset` would read the whole entry
            problems.append(f"{e.name}: subsets {unselective} name no files (globs)")
    assert not problems, "\n".join(problems)


def _patterns_overlap(a: str, b: str) -> bool:
    """Whether two globs (or paths) can match one file: equal, one matches the other, or one's
    literal prefix (up to its first wildcard) starts the other's. Conservative on purpose."""
    if a == b or fnmatchcase(a, b) or fnmatchcase(b, a):
        return True
    pa, pb = (re.split(r"[*?\[]", p, maxsplit=1)[0] for p in (a, b))
    return bool(pa) and bool(pb) and (pa.startswith(pb) or pb.startswith(pa)) and (
        pa != a or pb != b
    )


def _claims(entry: CorpusEntry) -> list[tuple[str, str]]:
    """(where, pattern) pairs naming the files an entry reads: a Hub repo at a revision, a
    GitHub commit, a Kaggle dataset, or a URL."""
    src = entry.source
    out: list[tuple[str, str]] = []
    if src.type == "hf":
        where = f"hf:{src.repo}@{src.revision}"
        out += [(where, g) for g in (src.globs or [])]
        out += [(where, f.path or "") for f in src.files]
        out += [(where, g) for s in entry.subsets for g in (s.globs or [])]
        if src.fallback is not None:
            out += [("url", f.url or "") for f in src.fallback.files]
    elif src.type == "http":
        out += [("url", f.url or "") for f in src.files]
    elif src.type == "github":
        out += [(f"github:{src.repo}@{src.commit}", g) for g in src.globs]
    elif src.type == "kaggle":
        out += [(f"kaggle:{src.dataset}", g) for g in src.files]
    return out


def overlapping(entries: list[CorpusEntry]) -> list[str]:
    """Pairs of entries that claim the same files (same place and overlapping patterns)."""
    by_place: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in entries:
        for where, pattern in set(_claims(e)):
            by_place[where].append((e.name, pattern))
    found = set()
    for where, claims in by_place.items():
        for (n1, p1), (n2, p2) in combinations(claims, 2):
            same_url = where == "url" and p1 == p2
            if n1 != n2 and (same_url or (where != "url" and _patterns_overlap(p1, p2))):
                found.add(f"{min(n1, n2)} and {max(n1, n2)} both read {where} {p1} / {p2}")
    return sorted(found)


def test_no_two_entries_claim_the_same_files(builtin: list[CorpusEntry]) -> None:
    assert overlapping(builtin) == []


def _entry(name: str, source: dict, subsets: list | None = None) -> CorpusEntry:
    return CorpusEntry.model_validate({
        "name": name, "title": name, "description": "d", "license": "MIT", "languages": ["en"],
        "domains": ["web"], "source": source, "subsets": subsets or [],
    })


def test_overlap_check_catches_planted_duplicates() -> None:
    hf = {"type": "hf", "repo": "org/data", "revision": "main"}
    a = _entry("a", {**hf, "globs": ["data/*/*.parquet"]})
    b = _entry("b", {**hf, "globs": ["data/deu_Latn/*.parquet"]})  # inside a's folders
    c = _entry("c", {**hf, "globs": ["sample/10BT/*.parquet"]})  # disjoint from a and b
    d = _entry("d", {**hf, "revision": "v2", "globs": ["data/*/*.parquet"]})  # other revision
    e = _entry("e", {"type": "http", "files": [{"url": "https://h.org/x.zip"}]})
    f = _entry("f", {"type": "http", "files": [{"url": "https://h.org/x.zip"}]})
    g = _entry("g", {**hf, "globs": ["other/*.parquet"]},
               subsets=[{"name": "s", "globs": ["sample/10BT/*.parquet"]}])  # subset = c's
    found = overlapping([a, b, c, d, e, f, g])
    assert len(found) == 3, found
    assert any(x.startswith("a and b") for x in found)
    assert any(x.startswith("e and f") for x in found)
    assert any(x.startswith("c and g") for x in found)


def test_catalog_covers_the_landscape(builtin: list[CorpusEntry]) -> None:
    languages = set().union(*(_natural(e.all_languages) for e in builtin))
    domains = set().union(*(set(e.domains) for e in builtin))
    names = {e.name for e in builtin}
    assert len(builtin) >= 60, len(builtin)
    assert len(domains) >= 8, sorted(domains)
    assert len(languages) >= 25, sorted(languages)
    landscape = {
        "fineweb", "fineweb-edu", "dclm-baseline", "c4-en", "refinedweb", "slimpajama",
        "openwebtext", "fineweb-2", "madlad-400", "culturax", "mc4", "cc100", "oscar-2301",
        "wikipedia", "pg19", "gutenberg-en", "aozora-bunko", "the-stack-smol", "the-stack-dedup",
        "github-code", "open-web-math", "finemath", "proof-pile-2", "pes2o", "tinystories",
        "cosmopedia", "nanochat-fineweb-edu", "ptb", "enwik8", "text8", "one-billion-word",
        "lambada",
    }
    assert landscape <= names, sorted(landscape - names)


def test_gated_datasets_are_marked(builtin: list[CorpusEntry]) -> None:
    gated = {e.name for e in builtin if e.gated is not None}
    assert {"culturax", "oscar-2301", "the-stack-smol", "the-stack-dedup"} <= gated
    for e in builtin:
        if e.gated is not None:
            assert e.gated.terms.startswith("https://huggingface.co/datasets/"), e.name


def _one_entry(tmp_path: Path, extra: str, source: str | None = None) -> Path:
    path = tmp_path / "cat.yaml"
    path.write_text(
        "corpora:\n  - name: x\n    title: X\n    description: d\n    license: MIT\n"
        "    languages: [en]\n    domains: [web]\n" + extra
        + (source or "    source: {type: hf, repo: o/r, revision: main, globs: ['*.parquet']}\n"),
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("extra", "source", "message"),
    [
        ("    size: {tokens: 1000}\n", None, "size.tokens needs size.tokenizer"),
        ("", "    source: {type: hf, repo: o/r, revision: main}\n", "needs 'files:'"),
        ("", "    source: {type: hf, repo: o/r, revision: '../x', globs: ['*']}\n", "revision"),
        ("", "    source: {type: hf, repo: o/r, revision: main, globs: ['../*']}\n", "'..'"),
        ("    subsets: [{name: a}, {name: a}]\n", None, "two subsets are named 'a'"),
        ("    gated: {terms: 'http://x.org'}\n", None, "gated.terms"),
        ("    sources: [{url: 'https://x.org'}]\n", None, "sources.0.what"),
    ],
)
def test_bad_facts_are_one_line_errors(tmp_path: Path, extra: str, source: str | None,
                                       message: str) -> None:
    path = _one_entry(tmp_path, extra, source)
    with pytest.raises(CatalogError) as err:
        load_file(path)
    text = str(err.value)
    assert message in text and "\n" not in text and str(path) in text, text


def test_revision_main_and_globs_are_accepted(tmp_path: Path) -> None:
    entry = load_file(_one_entry(tmp_path, "    size: {tokens: 5, tokenizer: gpt2}\n"))[0]
    assert entry.source.revision == "main" and entry.source.globs == ["*.parquet"]
    assert entry.size.tokenizer == "gpt2"
