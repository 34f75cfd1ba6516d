"""The sections of ``corpuskit report``, one function each, in the order the page shows them.

Every section takes the shared :class:`Report` (the located artifacts, the page being laid out,
the charts drawn so far and the JSON summary) and adds its part to all three. A section whose
source is missing says so on the page instead of failing: a report shows what exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit.report import charts
from corpuskit.report import stats as st
from corpuskit.report.html import Page

KEPT_SAMPLES_PER_SPLIT = 3
DROPPED_SAMPLES_PER_REASON = 3
SHARDS_LISTED = 50


@dataclass
class Report:
    """What every section reads (artifacts, catalog entry) and writes (page, charts, summary)."""

    art: st.Artifacts
    entry: dict[str, Any]
    page: Page
    summary: dict[str, Any]
    pngs: dict[str, bytes] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        return self.art.meta or {}

    @property
    def resolved(self) -> dict[str, Any]:
        return (self.art.raw_manifest or {}).get("resolved") or {}

    def chart(self, name: str, png: bytes | None, caption: str, missing: str) -> None:
        """Show a chart, or the sentence ``missing`` when there was nothing to draw."""
        if png is None:
            self.page.paragraph(missing)
            return
        self.pngs[name] = png
        self.page.chart(name, png, caption)


@dataclass
class Documents:
    """What one streaming pass over the clean shards and the packed offsets measured."""

    scan: st.DocumentScan | None
    token_lengths: dict[str, np.ndarray]
    char_lengths: dict[str, np.ndarray]
    doc_bytes_per_token: dict[str, np.ndarray]

    @property
    def sample(self) -> list[dict[str, Any]]:
        return self.scan.sample if self.scan is not None else []


def _describe(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    return {
        "documents": int(len(values)),
        "mean": float(values.mean()),
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "max": int(values.max()),
    }


def dropped_samples(clean_dir: Path | None) -> dict[str, list[dict[str, Any]]]:
    """``dropped-samples.jsonl`` grouped as ``"stage: reason"`` → documents (tolerant)."""
    if clean_dir is None:
        return {}
    path = clean_dir / "dropped-samples.jsonl"
    if not path.is_file():
        return {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        key = f"{record.get('stage', '?')}: {record.get('reason', '?')}"
        docs = groups.setdefault(key, [])
        if len(docs) < DROPPED_SAMPLES_PER_REASON:
            docs.append(record)
    return groups


def overview(r: Report) -> None:
    """The manifest facts (catalog entry, fingerprints, tokenizer) and the split counts."""
    art, meta, entry = r.art, r.meta, r.entry
    r.page.section("overview", "Overview")
    for note in art.notes:
        r.page.note(note)
    r.page.facts(
        [
            ("corpus", art.corpus),
            ("title", entry.get("title")),
            ("description", (entry.get("description") or "").strip()),
            ("license", entry.get("license")),
            ("languages", ", ".join(entry.get("languages") or [])),
            ("domains", ", ".join(entry.get("domains") or [])),
            ("homepage", entry.get("homepage")),
            ("citation", (entry.get("citation") or "").strip()),
            ("source", entry.get("source")),
            ("resolved", {k: v for k, v in r.resolved.items() if k != "files"} or None),
            ("raw fingerprint", (art.raw_manifest or {}).get("fingerprint")),
            ("clean fingerprint", (art.clean_manifest or {}).get("fingerprint")),
            ("tokens fingerprint", meta.get("fingerprint")),
            ("code version", (art.clean_manifest or art.raw_manifest or {}).get("code_version")),
            ("tokenizer", (meta.get("tokenizer") or {}).get("spec")),
            ("vocabulary", meta.get("vocab_size")),
            ("dtype", meta.get("dtype")),
        ]
    )
    splits = meta.get("splits") or (art.clean_manifest or {}).get("splits") or {}
    rows = [
        {"split": split, **{k: s.get(k) for k in ("documents", "bytes", "tokens")}}
        for split, s in splits.items()
    ]
    r.page.heading("Splits")
    r.page.table(rows)
    r.summary["entry"] = {k: entry.get(k) for k in ("title", "license", "languages", "citation")}
    r.summary["splits"] = rows


def funnel(r: Report) -> None:
    """Documents and bytes left after each stage, and what each stage dropped and why."""
    r.page.section("funnel", "Stages: documents and bytes")
    with st.timed("funnel"):
        fun = st.funnel(r.art)
    r.summary["funnel"] = fun
    if fun is None:
        r.page.paragraph("No per-stage statistics in the clean manifest.")
        return
    if fun["raw_documents"] is not None:
        r.page.paragraph(
            f"Fetched: {fun['raw_documents']:,} documents, {fun['raw_bytes']:,} bytes; "
            f"after the build: {fun['points'][-1]['documents']:,} documents, "
            f"{fun['points'][-1]['bytes']:,} bytes."
        )
    r.chart(
        "funnel",
        charts.funnel(fun["points"]),
        "Documents and bytes remaining after each stage (share of the input above bars)",
        "Only one stage ran: no funnel to draw.",
    )
    r.chart(
        "drop_reasons",
        charts.drop_reasons(fun["stages"]),
        "Documents dropped by each stage, by reason",
        "No document was dropped.",
    )
    rows = [
        {
            **{k: v for k, v in s.items() if k != "dropped" and v is not None},
            "dropped": ", ".join(f"{why}={n:,}" for why, n in s["dropped"].items()) or "none",
        }
        for s in fun["stages"]
    ]
    r.page.table(rows)


def dropped(r: Report) -> None:
    """A few dropped documents per ``stage: reason``, from ``dropped-samples.jsonl``."""
    groups = dropped_samples(r.art.clean_dir)
    r.page.section("dropped", "Dropped documents, by reason")
    if not groups:
        r.page.paragraph("No dropped-document samples were recorded (dropped-samples.jsonl).")
    for key, docs in groups.items():
        r.page.heading(key)
        r.page.documents(docs)
    r.summary["dropped_samples"] = {k: len(v) for k, v in groups.items()}


def duplicates(r: Report) -> None:
    """Duplicate clusters by kind, their size histogram and the largest ones."""
    r.page.section("duplicates", "Duplicate clusters")
    with st.timed("duplicate clusters"):
        dup = st.duplicate_clusters(r.art)
    r.summary["duplicates"] = dup
    if dup is None or not dup["clusters"]:
        r.page.paragraph("No duplicate clusters (or deduplication was off).")
        return
    r.page.table([{"kind": k, **v} for k, v in dup["clusters"].items()])
    r.chart(
        "duplicate_clusters",
        charts.cluster_sizes(dup["histogram"]),
        "Clusters by size: the kept document plus the duplicates removed in its favour",
        "",
    )
    if dup["examples"]:
        r.page.heading("Largest clusters")
        r.page.table(dup["examples"])


def measure_documents(r: Report, sample_docs: int) -> Documents:
    """One streaming pass over the clean shards, plus token lengths from the packed offsets."""
    art = r.art
    scan = None
    if art.clean_dir is not None and art.clean_manifest is not None:
        with st.timed("scan clean shards"):
            scan = st.scan_documents(art.clean_dir, art.clean_manifest, sample_docs=sample_docs)
    tok_lengths: dict[str, np.ndarray] = {}
    if art.tokens_dir is not None:
        with st.timed("token lengths"):
            tok_lengths = st.token_lengths(art.tokens_dir, r.meta)
    char_lengths: dict[str, np.ndarray] = {}
    doc_bpt: dict[str, np.ndarray] = {}
    for split, lengths in (scan.lengths if scan is not None else {}).items():
        index, chars, nbytes = lengths.arrays()
        char_lengths[split] = chars
        toks = tok_lengths.get(split)
        if toks is not None and lengths.position == len(toks) and len(index):
            # Document i of a split in the shards is document i of its packed file.
            t = toks[index]
            ok = t > 0
            doc_bpt[split] = nbytes[ok] / t[ok]
    return Documents(scan, tok_lengths, char_lengths, doc_bpt)


def lengths(r: Report, docs: Documents) -> None:
    """Length distributions per split, in characters and in tokens."""
    r.page.section("lengths", "Document lengths")
    r.chart(
        "lengths",
        charts.length_histograms(docs.char_lengths, docs.token_lengths),
        "Document length distributions per split (log-spaced bins when lengths span "
        "orders of magnitude)",
        "No document lengths available.",
    )
    rows = []
    for split in dict.fromkeys([*docs.char_lengths, *docs.token_lengths]):
        for unit, data in (("characters", docs.char_lengths), ("tokens", docs.token_lengths)):
            if split in data:
                rows.append({"split": split, "unit": unit, **_describe(data[split])})
    r.page.table(rows)
    r.summary["lengths"] = rows


def bytes_per_token(r: Report, docs: Documents) -> None:
    """Bytes of text per token per split, and per document where shards and offsets align."""
    r.page.section("bytes-per-token", "Bytes per token")
    bpt = st.bytes_per_token(r.meta)
    r.summary["bytes_per_token"] = bpt
    r.chart(
        "bytes_per_token",
        charts.bytes_per_token(bpt, docs.doc_bytes_per_token),
        "UTF-8 bytes of text per token (higher: the tokenizer compresses more)",
        "No token build: bytes per token unknown.",
    )


def languages(r: Report, docs: Documents) -> None:
    """Documents per language and split, when the shards carry a ``language`` column."""
    r.page.section("languages", "Language mix")
    if docs.scan is not None and docs.scan.languages:
        langs = {s: dict(c) for s, c in docs.scan.languages.items()}
        r.summary["languages"] = langs
        r.chart("languages", charts.language_mix(langs), "Documents per language and split", "")
        return
    listed = ", ".join(r.entry.get("languages") or []) or "none"
    r.page.paragraph(
        f"The documents have no 'language' column; languages listed in the catalog: {listed}."
    )


def text(r: Report, docs: Documents) -> None:
    """Stopword and symbol ratios and the top word n-grams, measured on the sample."""
    r.page.section("text", "Stopwords, symbols and n-grams")
    if not docs.sample:
        r.page.paragraph("No clean documents to sample.")
        return
    assert docs.scan is not None
    texts = [d["text"] for d in docs.sample]
    with st.timed(f"text statistics on {len(texts):,} sampled documents"):
        language, stopwords = st.stopword_set(r.entry.get("languages") or [])
        measured = st.text_stats(texts, stopwords)
        ratios = {"stopword_ratio": measured.stopword_ratio, "symbol_ratio": measured.symbol_ratio}
        bigrams, trigrams = measured.top(2), measured.top(3)
    r.page.paragraph(
        f"Measured on an evenly spaced sample of {len(texts):,} of {docs.scan.documents:,} "
        f"documents (each read up to {st.SAMPLE_TEXT_CHARS:,} characters)."
    )
    if not stopwords:
        ratios.pop("stopword_ratio")
    r.chart(
        "ratios",
        charts.ratios(ratios, language),
        "Per-document stopword share of words and symbol share of characters",
        "",
    )
    top = [("Top word bigrams", bigrams), ("Top word trigrams", trigrams)]
    r.chart("ngrams", charts.top_items(top), "Most frequent word n-grams in the sample", "")
    r.summary["text"] = {
        "sample_documents": len(texts),
        "stopword_language": language,
        **{f"median_{k}": float(np.median(v)) for k, v in ratios.items() if len(v)},
        "top_bigrams": bigrams,
        "top_trigrams": trigrams,
    }


def top_tokens(r: Report) -> None:
    """The most frequent train tokens, vocabulary use and the unknown-token share."""
    r.page.section("tokens", "Top tokens")
    top = None
    if r.art.tokens_dir is not None:
        with st.timed("top tokens"):
            top = st.top_tokens(r.art.tokens_dir, r.meta)
    r.summary["top_tokens"] = top
    if top is None:
        r.page.paragraph("No token build: no token counts.")
        return
    r.page.paragraph(
        f"{top['tokens_counted']:,} train tokens counted"
        f"{' (evenly spaced windows)' if top['sampled'] else ''}; "
        f"{top['used_vocab']:,} of {r.meta.get('vocab_size', 0):,} vocabulary entries used; "
        f"unknown tokens {100 * top['unknown_share']:.3f}%."
    )
    pieces = [(row["piece"], row["count"]) for row in top["top"]]
    r.chart(
        "top_tokens",
        charts.top_items([("Most frequent train tokens", pieces)]),
        "Most frequent tokens of the train split (end-of-document excluded)",
        "",
    )


def kept(r: Report, docs: Documents) -> None:
    """A few kept documents of each split, from the sample."""
    r.page.section("kept", "Sample documents kept")
    if not docs.sample:
        r.page.paragraph("No clean documents to show.")
        return
    by_split: dict[str, list[dict[str, Any]]] = {}
    for doc in docs.sample:
        shown = by_split.setdefault(doc["split"], [])
        if len(shown) < KEPT_SAMPLES_PER_SPLIT:
            shown.append(doc)
    for split, shown in by_split.items():
        r.page.heading(split)
        r.page.documents(shown)


def runs(r: Report, run_dirs: Sequence[Path]) -> None:
    """Loss curves and final numbers of the training runs asked for (none: no section)."""
    if not run_dirs:
        return
    r.page.section("runs", "Training runs")
    with st.timed("runs"):
        run_data = [st.read_run(Path(run)) for run in run_dirs]
    r.chart(
        "runs",
        charts.run_curves(run_data),
        "Training loss (lines) and evaluations (markers) against step",
        "The runs logged no metrics (metrics.jsonl).",
    )
    rows = [st.run_summary(run) for run in run_data]
    r.page.table(rows)
    r.summary["runs"] = rows


def files(r: Report) -> None:
    """The downloaded files and the first shards of the raw and clean artifacts, with hashes."""
    r.page.section("files", "Files and checksums")
    downloaded = r.resolved.get("files") or {}
    if downloaded:
        r.page.heading("Downloaded files")
        r.page.table(
            [
                {"file": name, **(v if isinstance(v, dict) else {"value": v})}
                for name, v in sorted(downloaded.items())
            ]
        )
    manifests: list[tuple[str, Mapping[str, Any] | None]] = [
        ("Raw shards", r.art.raw_manifest),
        ("Clean shards", r.art.clean_manifest),
    ]
    for label, manifest in manifests:
        shards = (manifest or {}).get("shards") or []
        if shards:
            r.page.heading(f"{label} ({len(shards):,})")
            r.page.table(shards[:SHARDS_LISTED], ["file", "documents", "bytes"])
            if len(shards) > SHARDS_LISTED:
                r.page.paragraph(f"… and {len(shards) - SHARDS_LISTED:,} more.")
