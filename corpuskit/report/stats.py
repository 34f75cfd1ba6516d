"""The numbers behind ``corpuskit report``, gathered in one streaming pass over a build.

What a report needs is mostly already on disk: the raw, clean and token manifests (counts,
fingerprints, per-stage statistics), ``dropped-samples.jsonl``, ``duplicates.parquet``, the
packed ``.idx`` offsets (every document's token count) and, for runs, ``metrics.jsonl`` and
``eval.json``. The rest (character lengths, stopword and symbol ratios, n-grams) is measured
here: lengths over every document, the text statistics on an evenly spaced sample, so that the
cost of a report does not grow with the corpus beyond one read of the ``text`` column.

Every source is optional: another version of the build may lack a file or a field, and a report
shows what exists rather than failing on what does not.
"""

from __future__ import annotations

import json
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
from corpuskit.shards import existing_manifest, read_batches

log = logging.getLogger(__name__)

# Stage order when a manifest's ``stats`` (a JSON object, its keys sorted on disk) does not say:
# the shard stages in the order of ``config.stages``, then these global ones.
GLOBAL_STAGES = ("exact_dedup", "near_dedup", "stopwords", "decontaminate")
SPLIT_ORDER = ("train", "val", "test")
_WORD = re.compile(r"\w+")
_SYMBOL = re.compile(r"[^\w\s]")
SAMPLE_TEXT_CHARS = 20_000  # per sampled document, for ratios and n-grams
TOKEN_COUNT_CAP = 32 * 2**20  # tokens read to rank the most frequent ones
TOKEN_WINDOW = 2**20


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


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


# --------------------------------------------------------------------------- tokens


def _specials(meta: Mapping[str, Any]) -> int:
    return 2 if meta.get("bos") else 1


def token_lengths(tokens_dir: Path, meta: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Content tokens per document for every split, from the ``.idx`` offsets (cheap)."""
    out: dict[str, np.ndarray] = {}
    for split in meta.get("splits") or {}:
        path = tokens_dir / f"{split}.idx"
        if not path.is_file():
            continue
        idx = np.fromfile(path, dtype="<u8").astype(np.int64)
        out[split] = np.maximum(np.diff(idx) - _specials(meta), 0)
    return out


def _piece(tokenizer: Any, token_id: int) -> str:
    """A token as a readable label: spaces as ``␣`` (runs of them as ``␣×8``), newlines and
    tabs escaped, so that whitespace pieces (common in code) do not show as blank labels."""
    to_piece = getattr(tokenizer, "id_to_piece", None)
    try:
        text = to_piece(token_id) if to_piece is not None else tokenizer.decode([token_id])
    except Exception:  # an id the tokenizer cannot show on its own (e.g. a partial byte)
        return f"<{token_id}>"
    text = text.replace("\u2581", " ")  # sentencepiece's word-boundary marker is a space
    if len(text) > 3 and not text.strip(" "):
        return f"␣×{len(text)}"
    text = text.replace(" ", "␣").replace("\n", "\\n").replace("\t", "\\t")
    return text or f"<{token_id}>"


def top_tokens(tokens_dir: Path, meta: Mapping[str, Any], k: int = 25) -> dict[str, Any] | None:
    """The most frequent token ids of the train split, with their pieces.

    Counts every token up to ``TOKEN_COUNT_CAP``; beyond that, evenly spaced windows of the file
    (a fixed, deterministic sample).
    """
    path = tokens_dir / "train.bin"
    vocab = int(meta.get("vocab_size") or 0)
    if not path.is_file() or not vocab:
        return None
    ids = np.memmap(path, dtype=np.dtype(meta.get("dtype", "uint16")), mode="r")
    counts = np.zeros(vocab, dtype=np.int64)
    if len(ids) <= TOKEN_COUNT_CAP:
        starts = range(0, len(ids), TOKEN_WINDOW)
    else:
        windows = TOKEN_COUNT_CAP // TOKEN_WINDOW
        starts = np.linspace(0, len(ids) - TOKEN_WINDOW, windows).astype(np.int64).tolist()
    counted = 0
    for start in starts:
        chunk = np.asarray(ids[start : start + TOKEN_WINDOW])
        counts += np.bincount(chunk[chunk < vocab], minlength=vocab)[:vocab]
        counted += len(chunk)
    for special in (meta.get("eos_id"), meta.get("bos_id") if meta.get("bos") else None):
        if special is not None and 0 <= int(special) < vocab:
            counts[int(special)] = 0
    order = np.argsort(-counts, kind="stable")[:k]
    try:
        from corpuskit.tokenizers import load_tokenizer

        tokenizer: Any = load_tokenizer(tokens_dir)
    except Exception as exc:  # the chart still helps with ids alone
        log.warning("report: cannot load the tokenizer of %s: %s", tokens_dir, exc)
        tokenizer = None
    content = int(counts.sum()) or 1
    rows = [
        {
            "id": int(i),
            "piece": _piece(tokenizer, int(i)) if tokenizer is not None else f"<{int(i)}>",
            "count": int(counts[i]),
            "share": float(counts[i]) / content,
        }
        for i in order
        if counts[i] > 0
    ]
    unk = meta.get("unk_id")
    unknown = int(counts[int(unk)]) if unk is not None and 0 <= int(unk) < vocab else 0
    return {
        "tokens_counted": counted,
        "sampled": len(ids) > TOKEN_COUNT_CAP,
        "top": rows,
        "unknown_share": unknown / content,
        "used_vocab": int((counts > 0).sum()),
    }


def bytes_per_token(meta: Mapping[str, Any]) -> dict[str, float]:
    """UTF-8 bytes of text per content token (specials excluded), per split."""
    out = {}
    for split, s in (meta.get("splits") or {}).items():
        content = int(s.get("tokens", 0)) - _specials(meta) * int(s.get("documents", 0))
        if content > 0 and s.get("bytes") is not None:
            out[split] = int(s["bytes"]) / content
    return out


# --------------------------------------------------------------------------- runs


def read_run(run_dir: Path) -> dict[str, Any]:
    """A run's logged curves (``metrics.jsonl``) and final evaluation (``eval.json``).

    Lines that are not JSON objects (a run killed mid-write) are skipped, not fatal.
    """
    train: list[tuple[int, float]] = []
    evals: dict[str, list[tuple[int, float, float | None]]] = {}
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or "step" not in record or "loss" not in record:
                continue
            try:
                step, loss = int(record["step"]), float(record["loss"])
            except (TypeError, ValueError):
                continue
            kind = record.get("kind", "train")
            if kind == "eval":
                ppl = record.get("perplexity")
                evals.setdefault(str(record.get("split", "val")), []).append(
                    (step, loss, float(ppl) if ppl is not None else None)
                )
            else:
                train.append((step, loss))
    eval_json = _read_json(run_dir / "eval.json") or {}
    return {"name": run_dir.name, "path": str(run_dir), "train": train, "eval": evals,
            "final": eval_json}


def run_summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """One table row per run: model, size, steps and the final held-out numbers."""
    final = run.get("final") or {}
    info = final.get("train") or {}
    row: dict[str, Any] = {
        "run": run["name"],
        "model": info.get("model"),
        "preset": info.get("preset"),
        "params": info.get("params"),
        "steps": info.get("steps") or (run["train"][-1][0] if run["train"] else None),
        "initial_val_loss": final.get("initial_val_loss"),
    }
    for split in ("val", "test"):
        m = final.get(split) or {}
        row[f"{split}_loss"] = m.get("loss")
        row[f"{split}_perplexity"] = m.get("perplexity")
        row[f"{split}_bits_per_byte"] = m.get("bits_per_byte")
    return row
