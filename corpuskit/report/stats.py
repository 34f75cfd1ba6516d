"""The numbers behind ``corpuskit report``, gathered in one streaming pass over a build.

What a report needs is mostly already on disk: the raw, clean and token manifests (counts,
fingerprints, per-stage statistics), ``dropped-samples.jsonl``, ``duplicates.parquet``, the
packed ``.idx`` offsets (every document's token count) and, for runs, ``metrics.jsonl`` and
``eval.json``. The rest (character lengths, stopword and symbol ratios, n-grams) is measured
here: lengths over every document, the text statistics on an evenly spaced sample, so that the
cost of a report does not grow with the corpus beyond one read of the ``text`` column.

Token-level numbers live in ``tokens.py`` and run logs in ``runs.py``; both are re-exported
here, so the report reads every number through this one module.

Every source is optional: another version of the build may lack a file or a field, and a report
shows what exists rather than failing on what does not.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from corpuskit.errors import CorpuskitError
from corpuskit.report.runs import _read_json, read_run, run_summary
from corpuskit.report.tokens import (
    TOKEN_COUNT_CAP,
    TOKEN_WINDOW,
    bytes_per_token,
    token_lengths,
    top_tokens,
)
from corpuskit.shards import existing_manifest, read_batches

log = logging.getLogger(__name__)

# Stage order when a manifest's ``stats`` (a JSON object, its keys sorted on disk) does not say:
# the shard stages in the order of ``config.stages``, then these global ones.
GLOBAL_STAGES = ("exact_dedup", "near_dedup", "paragraph_dedup", "stopwords", "decontaminate")
SPLIT_ORDER = ("train", "val", "test")
_WORD = re.compile(r"\w+")
_SYMBOL = re.compile(r"[^\w\s]")
SAMPLE_TEXT_CHARS = 20_000  # per sampled document, for ratios and n-grams


@contextmanager
def timed(what: str) -> Iterator[None]:
    """Log how long a step of the report took (shown with ``corpuskit --verbose``)."""
    start = time.perf_counter()
    yield
    log.info("report: %s in %.2fs", what, time.perf_counter() - start)


@dataclass
class Artifacts:
    """The folders of one build, found from a token build or a clean artifact."""

    corpus: str
    root: Path
    tokens_dir: Path | None
    clean_dir: Path | None
    raw_dir: Path | None
    meta: dict[str, Any] | None
    clean_manifest: dict[str, Any] | None
    raw_manifest: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


def locate(build_dir: Path, root: Path) -> Artifacts:
    """The raw, clean and token artifacts behind ``build_dir`` (a token build or clean folder).

    A build folder given by path may live under another data root than the current one; its own
    location (``<root>/tokens/<corpus>/<fp>``) is tried first when looking for its clean input.
    """
    meta = _read_json(build_dir / "meta.json")
    manifest = existing_manifest(build_dir)
    if meta is None and (manifest is None or manifest.get("kind") != "clean"):
        raise CorpuskitError(
            f"{build_dir} is neither a token build (meta.json) nor a clean artifact; pass a corpus "
            "name or a folder under <data>/tokens or <data>/clean"
        )
    notes: list[str] = []
    roots = [build_dir.parent.parent.parent, root]
    if meta is not None:
        corpus = str(meta.get("corpus") or build_dir.parent.name)
        tokens_dir: Path | None = build_dir
        clean_dir = None
        clean_manifest = None
        fp = meta.get("clean_fingerprint")
        for base in roots:
            candidate = base / "clean" / corpus / str(fp)
            found = existing_manifest(candidate) if fp else None
            if found is not None:
                clean_dir, clean_manifest, root = candidate, found, base
                break
        if clean_dir is None:
            notes.append(f"clean artifact {fp} not found: no funnel, lengths or samples")
    else:
        assert manifest is not None
        corpus = str(manifest.get("corpus") or build_dir.parent.name)
        tokens_dir, clean_dir, clean_manifest = None, build_dir, manifest
        root = roots[0] if (roots[0] / "clean").is_dir() else root
    raw_path = root / "raw" / corpus
    raw_manifest = existing_manifest(raw_path)
    if raw_manifest is None:
        notes.append(f"no raw artifact in {raw_path}: source facts come from the catalog")
    elif clean_manifest is not None and clean_manifest.get("inputs", {}).get("raw") not in (
        None,
        raw_manifest.get("fingerprint"),
    ):
        notes.append("the raw artifact was fetched again since this build; its facts may differ")
    return Artifacts(
        corpus,
        root,
        tokens_dir,
        clean_dir,
        raw_path if raw_manifest is not None else None,
        meta,
        clean_manifest,
        raw_manifest,
        notes,
    )


# --------------------------------------------------------------------------- funnel


def ordered_stages(clean_manifest: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(stage, stats)`` in the order the stages ran."""
    stats = clean_manifest.get("stats") or {}
    config_stages = [
        s.get("name") for s in (clean_manifest.get("config") or {}).get("stages", [])
        if isinstance(s, dict)
    ]
    known = [s for s in config_stages if s] + list(GLOBAL_STAGES)
    rank = {name: i for i, name in enumerate(known)}

    def key(item: tuple[str, Any]) -> tuple[int, int, str]:
        name, st = item
        docs_in = st.get("documents_in", 0) if isinstance(st, dict) else 0
        return (-int(docs_in or 0), rank.get(name, len(rank)), name)

    return [(n, dict(s)) for n, s in sorted(stats.items(), key=key) if isinstance(s, dict)]


def funnel(art: Artifacts) -> dict[str, Any] | None:
    """Documents and bytes before the first stage and after each one, with drop reasons."""
    if art.clean_manifest is None:
        return None
    stages = ordered_stages(art.clean_manifest)
    if not stages:
        return None
    rows: list[dict[str, Any]] = []
    first = stages[0][1]
    rows.append(
        {
            "stage": "input",
            "documents": int(first.get("documents_in", 0)),
            "bytes": int(first.get("bytes_in", 0)),
        }
    )
    table = []
    for name, st in stages:
        rows.append(
            {
                "stage": name,
                "documents": int(st.get("documents_out", 0)),
                "bytes": int(st.get("bytes_out", 0)),
            }
        )
        table.append(
            {
                "stage": name,
                "documents_in": st.get("documents_in"),
                "documents_out": st.get("documents_out"),
                "bytes_in": st.get("bytes_in"),
                "bytes_out": st.get("bytes_out"),
                "changed": st.get("changed", 0),
                "dropped": dict(st.get("dropped") or {}),
                "seconds": st.get("seconds"),
                "clusters": st.get("clusters"),
            }
        )
    raw_docs = raw_bytes = None
    if art.raw_manifest is not None:
        splits = art.raw_manifest.get("splits") or {}
        raw_docs = sum(int(s.get("documents", 0)) for s in splits.values())
        raw_bytes = sum(int(s.get("bytes", 0)) for s in splits.values())
    return {"points": rows, "stages": table, "raw_documents": raw_docs, "raw_bytes": raw_bytes}


# --------------------------------------------------------------------------- duplicates


def duplicate_clusters(art: Artifacts) -> dict[str, Any] | None:
    """Cluster sizes (kept document plus its duplicates) per kind, from ``duplicates.parquet``.

    Falls back to the ``largest_clusters`` the manifest's dedup stats list when the file is
    missing (an older or partial build).
    """
    if art.clean_dir is None:
        return None
    path = art.clean_dir / "duplicates.parquet"
    sizes: dict[str, list[int]] = {}
    examples: list[dict[str, Any]] = []
    if path.is_file():
        import polars as pl

        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # a corrupt side file must not sink the whole report
            log.warning("report: cannot read %s: %s", path, exc)
            frame = None
        if frame is not None and {"duplicate_of", "kind"} <= set(frame.columns):
            grouped = frame.group_by("kind", "duplicate_of").len()
            for kind in sorted(grouped["kind"].unique().to_list()):
                sub = grouped.filter(pl.col("kind") == kind)
                sizes[kind] = sorted((sub["len"] + 1).to_list(), reverse=True)
            top = grouped.sort(["len", "duplicate_of"], descending=[True, False]).head(10)
            examples = [
                {"kind": r["kind"], "kept": r["duplicate_of"], "size": int(r["len"]) + 1}
                for r in top.to_dicts()
            ]
    elif art.clean_manifest is not None:
        for name, st in (art.clean_manifest.get("stats") or {}).items():
            if isinstance(st, dict) and st.get("largest_clusters"):
                sizes[name.replace("_dedup", "")] = [int(x) for x in st["largest_clusters"]]
    if not sizes:
        return {"clusters": {}, "examples": [], "histogram": {}}
    histogram = {
        kind: {str(k): v for k, v in sorted(Counter(values).items())}
        for kind, values in sizes.items()
    }
    clusters = {
        kind: {"clusters": len(v), "documents_removed": int(sum(v) - len(v)), "largest": v[0]}
        for kind, v in sizes.items()
    }
    return {"clusters": clusters, "examples": examples, "histogram": histogram}


# --------------------------------------------------------------------------- documents


@dataclass
class SplitLengths:
    """Per-split document lengths on every ``step``-th document (all of them unless huge)."""

    step: int = 1
    position: int = 0
    index: list[np.ndarray] = field(default_factory=list)
    chars: list[np.ndarray] = field(default_factory=list)
    bytes: list[np.ndarray] = field(default_factory=list)

    def add(self, char_lengths: np.ndarray, byte_lengths: np.ndarray) -> None:
        positions = self.position + np.arange(len(char_lengths), dtype=np.int64)
        self.position += len(char_lengths)
        keep = positions % self.step == 0
        self.index.append(positions[keep])
        self.chars.append(char_lengths[keep])
        self.bytes.append(byte_lengths[keep])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def cat(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, np.int64)

        return cat(self.index), cat(self.chars), cat(self.bytes)


@dataclass
class DocumentScan:
    """What one pass over the clean shards gathered."""

    lengths: dict[str, SplitLengths]
    sample: list[dict[str, Any]]
    languages: dict[str, Counter[str]] | None
    documents: int


def scan_documents(
    clean_dir: Path,
    manifest: Mapping[str, Any],
    *,
    sample_docs: int = 2000,
    max_length_docs: int = 2_000_000,
) -> DocumentScan:
    """Stream the clean shards once: lengths per split, an evenly spaced text sample, languages.

    Only the ``text``, ``split``, ``id`` (and ``language``) columns are read, batch by batch;
    memory holds the sampled texts and at most ``max_length_docs`` lengths per split.
    """
    splits = manifest.get("splits") or {}
    total = sum(int(s.get("documents", 0)) for s in splits.values()) or 1
    text_step = max(1, math.ceil(total / max(1, sample_docs)))
    lengths = {
        name: SplitLengths(step=max(1, math.ceil(int(s.get("documents", 0)) / max_length_docs)))
        for name, s in splits.items()
    }
    languages: dict[str, Counter[str]] | None = None
    sample: list[dict[str, Any]] = []
    seen = 0
    for shard in manifest.get("shards") or []:
        path = clean_dir / shard["file"]
        if not path.is_file():
            continue
        for batch in read_batches(path):
            names = batch.schema.names
            if "text" not in names or "split" not in names:
                continue
            text, split = batch.column("text"), batch.column("split")
            char_len = pc.utf8_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
            byte_len = pc.binary_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
            split_values = np.asarray(split.to_pylist(), dtype=object)
            for name in dict.fromkeys(split_values.tolist()):
                mask = split_values == name
                lengths.setdefault(name, SplitLengths()).add(char_len[mask], byte_len[mask])
            if "language" in names:
                languages = languages if languages is not None else {}
                for name, lang in zip(
                    split_values.tolist(), batch.column("language").to_pylist(), strict=True
                ):
                    languages.setdefault(name, Counter())[lang or "unknown"] += 1
            positions = seen + np.arange(batch.num_rows)
            picked = np.flatnonzero(positions % text_step == 0)
            if picked.size:
                rows = batch.select(["id", "text", "split"]).take(picked).to_pylist()
                for row in rows:
                    row["text"] = row["text"][:SAMPLE_TEXT_CHARS]
                sample.extend(rows)
            seen += batch.num_rows
    return DocumentScan(lengths, sample, languages, seen)


def stopword_set(languages: Sequence[str]) -> tuple[str, set[str]]:
    """The stopwords-iso list for the corpus's first language that has one (else English)."""
    try:
        import stopwordsiso
    except ImportError:  # a core dependency, but a report should still render without it
        return "none", set()
    for language in [*languages, "en"]:
        if len(language) == 2 and stopwordsiso.has_lang(language):
            return language, {w.lower() for w in stopwordsiso.stopwords(language)}
    return "none", set()


@dataclass
class TextStats:
    """Per-document ratios and n-gram counts of a text sample."""

    stopword_ratio: np.ndarray
    symbol_ratio: np.ndarray
    ngrams: dict[int, Counter[tuple[str, ...]]]

    def top(self, n: int, k: int = 20) -> list[tuple[str, int]]:
        return [(" ".join(g), c) for g, c in self.ngrams[n].most_common(k)]


def text_stats(
    texts: Sequence[str], stopwords: set[str], orders: Sequence[int] = (2, 3)
) -> TextStats:
    """Share of words that are stopwords and of non-space characters that are symbols, per
    document, and word n-gram counts; each text is split into words once (C-level regex work,
    the Python loop is per document, not per character)."""
    stop = np.zeros(len(texts))
    symbol = np.zeros(len(texts))
    ngrams: dict[int, Counter[tuple[str, ...]]] = {n: Counter() for n in orders}
    for i, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        if words and stopwords:
            stop[i] = sum(w in stopwords for w in words) / len(words)
        visible = len("".join(text.split()))
        symbol[i] = len(_SYMBOL.findall(text)) / visible if visible else 0.0
        for n, counts in ngrams.items():
            counts.update(zip(*(words[j:] for j in range(n)), strict=False))
    return TextStats(stop, symbol, ngrams)


# Re-exported: the report reads every number through this module.
__all__ = [
    "TOKEN_COUNT_CAP",
    "TOKEN_WINDOW",
    "Artifacts",
    "DocumentScan",
    "SplitLengths",
    "TextStats",
    "bytes_per_token",
    "duplicate_clusters",
    "funnel",
    "locate",
    "ordered_stages",
    "read_run",
    "run_summary",
    "scan_documents",
    "stopword_set",
    "text_stats",
    "timed",
    "token_lengths",
    "top_tokens",
]
