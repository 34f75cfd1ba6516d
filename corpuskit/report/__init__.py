"""``corpuskit report``: one self-contained HTML page (plus PNG charts) about a build.

``stats`` gathers the numbers (manifests, one streaming pass over the clean shards, the packed
offsets, run logs), ``charts`` draws them with matplotlib, ``html`` lays them out. This module
puts the three together and writes ``report.html``, one PNG per chart and ``report.json`` (the
numbers, for scripts) into the output folder.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit import __version__
from corpuskit.report import charts
from corpuskit.report import stats as st
from corpuskit.report.html import Page

log = logging.getLogger(__name__)

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
KEPT_SAMPLES_PER_SPLIT = 3
DROPPED_SAMPLES_PER_REASON = 3


@dataclass
class ReportResult:
    """Where the report went, and the numbers it shows (JSON-able)."""

    html: Path
    out_dir: Path
    charts: list[Path]
    summary: dict[str, Any] = field(repr=False)


def default_out_dir(art: st.Artifacts) -> Path:
    """``<data>/reports/<corpus>/<fingerprint>/`` (``clean-<fp>`` for a clean-only report)."""
    if art.tokens_dir is not None:
        name = art.tokens_dir.name
    else:
        assert art.clean_dir is not None
        name = f"clean-{art.clean_dir.name}"
    return art.root / "reports" / art.corpus / name


def _dropped_samples(clean_dir: Path | None) -> dict[str, list[dict[str, Any]]]:
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


def _entry(art: st.Artifacts, fallback: Mapping[str, Any] | None) -> dict[str, Any]:
    entry = (art.raw_manifest or {}).get("entry")
    return dict(entry) if isinstance(entry, dict) else dict(fallback or {})


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


def build_report(
    build_dir: Path,
    root: Path,
    *,
    out_dir: Path | None = None,
    runs: Sequence[Path] = (),
    sample_docs: int = 2000,
    catalog_entry: Mapping[str, Any] | None = None,
) -> ReportResult:
    """Write the report of ``build_dir`` (a token build or a clean artifact) and its runs."""
    with st.timed("locate artifacts"):
        art = st.locate(build_dir, root)
    out = out_dir if out_dir is not None else default_out_dir(art)
    out.mkdir(parents=True, exist_ok=True)
    entry = _entry(art, catalog_entry)
    meta = art.meta or {}
    summary: dict[str, Any] = {
        "corpus": art.corpus,
        "tokens_dir": str(art.tokens_dir) if art.tokens_dir else None,
        "clean_dir": str(art.clean_dir) if art.clean_dir else None,
        "raw_dir": str(art.raw_dir) if art.raw_dir else None,
        "notes": list(art.notes),
    }
    page = Page(
        title=f"corpuskit report: {entry.get('title') or art.corpus}",
        subtitle=f"{art.corpus} · build {art.tokens_dir or art.clean_dir} · "
        f"corpuskit {__version__}",
    )
    pngs: dict[str, bytes] = {}

    def chart(name: str, png: bytes | None, caption: str, missing: str) -> None:
        if png is None:
            page.paragraph(missing)
            return
        pngs[name] = png
        page.chart(name, png, caption)

    # ---- overview: the manifest facts
    page.section("overview", "Overview")
    for note in art.notes:
        page.note(note)
    resolved = (art.raw_manifest or {}).get("resolved") or {}
    page.facts(
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
            ("resolved", {k: v for k, v in resolved.items() if k != "files"} or None),
            ("raw fingerprint", (art.raw_manifest or {}).get("fingerprint")),
            ("clean fingerprint", (art.clean_manifest or {}).get("fingerprint")),
            ("tokens fingerprint", meta.get("fingerprint")),
            ("code version", (art.clean_manifest or art.raw_manifest or {}).get("code_version")),
            ("tokenizer", (meta.get("tokenizer") or {}).get("spec")),
            ("vocabulary", meta.get("vocab_size")),
            ("dtype", meta.get("dtype")),
        ]
    )
    splits_rows = []
    for split, s in (meta.get("splits") or (art.clean_manifest or {}).get("splits") or {}).items():
        splits_rows.append({"split": split, **{k: s.get(k) for k in ("documents", "bytes",
                                                                       "tokens")}})
    page.heading("Splits")
    page.table(splits_rows)
    summary["entry"] = {k: entry.get(k) for k in ("title", "license", "languages", "citation")}
    summary["splits"] = splits_rows

    # ---- funnel
    page.section("funnel", "Stages: documents and bytes")
    with st.timed("funnel"):
        fun = st.funnel(art)
    summary["funnel"] = fun
    if fun is None:
        page.paragraph("No per-stage statistics in the clean manifest.")
    else:
        if fun["raw_documents"] is not None:
            page.paragraph(
                f"Fetched: {fun['raw_documents']:,} documents, {fun['raw_bytes']:,} bytes; "
                f"after the build: {fun['points'][-1]['documents']:,} documents, "
                f"{fun['points'][-1]['bytes']:,} bytes."
            )
        chart("funnel", charts.funnel(fun["points"]),
              "Documents and bytes remaining after each stage (share of the input above bars)",
              "Only one stage ran: no funnel to draw.")
        chart("drop_reasons", charts.drop_reasons(fun["stages"]),
              "Documents dropped by each stage, by reason", "No document was dropped.")
        rows = [
            {**{k: v for k, v in s.items() if k != "dropped" and v is not None},
             "dropped": ", ".join(f"{r}={n:,}" for r, n in s["dropped"].items()) or "none"}
            for s in fun["stages"]
        ]
        page.table(rows)

    # ---- dropped documents
    dropped = _dropped_samples(art.clean_dir)
    page.section("dropped", "Dropped documents, by reason")
    if not dropped:
        page.paragraph("No dropped-document samples were recorded (dropped-samples.jsonl).")
    for key, docs in dropped.items():
        page.heading(key)
        page.documents(docs)
    summary["dropped_samples"] = {k: len(v) for k, v in dropped.items()}

    # ---- duplicates
    page.section("duplicates", "Duplicate clusters")
    with st.timed("duplicate clusters"):
        dup = st.duplicate_clusters(art)
    summary["duplicates"] = dup
    if dup is None or not dup["clusters"]:
        page.paragraph("No duplicate clusters (or deduplication was off).")
    else:
        page.table([{"kind": k, **v} for k, v in dup["clusters"].items()])
        chart("duplicate_clusters", charts.cluster_sizes(dup["histogram"]),
              "Clusters by size: the kept document plus the duplicates removed in its favour",
              "")
        if dup["examples"]:
            page.heading("Largest clusters")
            page.table(dup["examples"])

    # ---- documents: one streaming pass
    scan = None
    if art.clean_dir is not None and art.clean_manifest is not None:
        with st.timed("scan clean shards"):
            scan = st.scan_documents(art.clean_dir, art.clean_manifest, sample_docs=sample_docs)
    tok_lengths: dict[str, np.ndarray] = {}
    if art.tokens_dir is not None:
        with st.timed("token lengths"):
            tok_lengths = st.token_lengths(art.tokens_dir, meta)
    char_lengths: dict[str, np.ndarray] = {}
    doc_bpt: dict[str, np.ndarray] = {}
    if scan is not None:
        for split, lengths in scan.lengths.items():
            index, chars, nbytes = lengths.arrays()
            char_lengths[split] = chars
            toks = tok_lengths.get(split)
            if toks is not None and lengths.position == len(toks) and len(index):
                # Document i of a split in the shards is document i of its packed file.
                t = toks[index]
                ok = t > 0
                doc_bpt[split] = nbytes[ok] / t[ok]
    page.section("lengths", "Document lengths")
    chart("lengths", charts.length_histograms(char_lengths, tok_lengths),
          "Document length distributions per split (log-spaced bins when lengths span "
          "orders of magnitude)",
          "No document lengths available.")
    length_rows = []
    for split in dict.fromkeys([*char_lengths, *tok_lengths]):
        for unit, data in (("characters", char_lengths), ("tokens", tok_lengths)):
            if split in data:
                length_rows.append({"split": split, "unit": unit, **_describe(data[split])})
    page.table(length_rows)
    summary["lengths"] = length_rows

    # ---- bytes per token
    page.section("bytes-per-token", "Bytes per token")
    bpt = st.bytes_per_token(meta)
    summary["bytes_per_token"] = bpt
    chart("bytes_per_token", charts.bytes_per_token(bpt, doc_bpt),
          "UTF-8 bytes of text per token (higher: the tokenizer compresses more)",
          "No token build: bytes per token unknown.")

    # ---- language mix
    page.section("languages", "Language mix")
    if scan is not None and scan.languages:
        langs = {s: dict(c) for s, c in scan.languages.items()}
        summary["languages"] = langs
        chart("languages", charts.language_mix(langs), "Documents per language and split", "")
    else:
        page.paragraph("The documents have no 'language' column; languages listed in the "
                       f"catalog: {', '.join(entry.get('languages') or []) or 'none'}.")

    # ---- text statistics on the sample
    page.section("text", "Stopwords, symbols and n-grams")
    if scan is not None and scan.sample:
        texts = [d["text"] for d in scan.sample]
        with st.timed(f"text statistics on {len(texts):,} sampled documents"):
            language, stopwords = st.stopword_set(entry.get("languages") or [])
            measured = st.text_stats(texts, stopwords)
            ratios = {"stopword_ratio": measured.stopword_ratio,
                      "symbol_ratio": measured.symbol_ratio}
            bigrams, trigrams = measured.top(2), measured.top(3)
        page.paragraph(
            f"Measured on an evenly spaced sample of {len(texts):,} of {scan.documents:,} "
            f"documents (each read up to {st.SAMPLE_TEXT_CHARS:,} characters)."
        )
        if not stopwords:
            ratios.pop("stopword_ratio")
        chart("ratios", charts.ratios(ratios, language),
              "Per-document stopword share of words and symbol share of characters", "")
        chart("ngrams", charts.top_items([("Top word bigrams", bigrams),
                                          ("Top word trigrams", trigrams)]),
              "Most frequent word n-grams in the sample", "")
        summary["text"] = {
            "sample_documents": len(texts),
            "stopword_language": language,
            **{f"median_{k}": float(np.median(v)) for k, v in ratios.items() if len(v)},
            "top_bigrams": bigrams,
            "top_trigrams": trigrams,
        }
    else:
        page.paragraph("No clean documents to sample.")

    # ---- top tokens
    page.section("tokens", "Top tokens")
    top = None
    if art.tokens_dir is not None:
        with st.timed("top tokens"):
            top = st.top_tokens(art.tokens_dir, meta)
    summary["top_tokens"] = top
    if top is None:
        page.paragraph("No token build: no token counts.")
    else:
        page.paragraph(
            f"{top['tokens_counted']:,} train tokens counted"
            f"{' (evenly spaced windows)' if top['sampled'] else ''}; "
            f"{top['used_vocab']:,} of {meta.get('vocab_size', 0):,} vocabulary entries used; "
            f"unknown tokens {100 * top['unknown_share']:.3f}%."
        )
        chart("top_tokens", charts.top_items(
            [("Most frequent train tokens", [(r["piece"], r["count"]) for r in top["top"]])]),
            "Most frequent tokens of the train split (end-of-document excluded)", "")

    # ---- kept samples
    page.section("kept", "Sample documents kept")
    if scan is not None and scan.sample:
        by_split: dict[str, list[dict[str, Any]]] = {}
        for doc in scan.sample:
            docs = by_split.setdefault(doc["split"], [])
            if len(docs) < KEPT_SAMPLES_PER_SPLIT:
                docs.append(doc)
        for split, docs in by_split.items():
            page.heading(split)
            page.documents(docs)
    else:
        page.paragraph("No clean documents to show.")

    # ---- runs
    run_data = []
    if runs:
        page.section("runs", "Training runs")
        with st.timed("runs"):
            run_data = [st.read_run(Path(r)) for r in runs]
        chart("runs", charts.run_curves(run_data),
              "Training loss (lines) and evaluations (markers) against step",
              "The runs logged no metrics (metrics.jsonl).")
        rows = [st.run_summary(r) for r in run_data]
        page.table(rows)
        summary["runs"] = rows

    # ---- files: shards and checksums
    page.section("files", "Files and checksums")
    files = resolved.get("files") or {}
    if files:
        page.heading("Downloaded files")
        page.table([{"file": name, **(v if isinstance(v, dict) else {"value": v})}
                    for name, v in sorted(files.items())])
    for label, manifest in (("Raw shards", art.raw_manifest), ("Clean shards",
                                                                art.clean_manifest)):
        shards = (manifest or {}).get("shards") or []
        if shards:
            page.heading(f"{label} ({len(shards):,})")
            page.table(shards[:50], ["file", "documents", "bytes"])
            if len(shards) > 50:
                page.paragraph(f"… and {len(shards) - 50:,} more.")

    # ---- write
    with st.timed(f"write {len(pngs)} charts"):
        written = []
        for name, png in pngs.items():
            path = out / f"{name}.png"
            path.write_bytes(png)
            written.append(path)
        summary["charts"] = [p.name for p in written]
        _write_text(out / REPORT_JSON, json.dumps(summary, indent=2, default=_jsonable) + "\n")
        _write_text(out / REPORT_HTML, page.render())
    log.info("report: %s", out / REPORT_HTML)
    return ReportResult(out / REPORT_HTML, out, written, summary)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def _write_text(path: Path, text: str) -> None:
    """Replace ``path`` whole: a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


__all__ = ["REPORT_HTML", "REPORT_JSON", "ReportResult", "build_report", "default_out_dir"]
