"""``inspect``: what is in a token build, at a glance.

Counts come from ``meta.json``; the unknown-token rate and document lengths are measured on the
packed files themselves (memory-mapped, one pass per split, in chunks) so that they describe
what the trainer will actually read. The build is checked first (``integrity``): a truncated
``.bin`` or an id outside the vocabulary is a one-line error, not a plausible-looking report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from corpuskit.artifacts import bytes_per_token
from corpuskit.integrity import check_token_build
from corpuskit.pack import open_split, read_meta
from corpuskit.tokenizers import load_tokenizer

_CHUNK = 1 << 24


def _unknown_count(ids: np.memmap, unk_id: int | None) -> int:
    if unk_id is None:
        return 0
    return int(sum(int((ids[i : i + _CHUNK] == unk_id).sum()) for i in range(0, len(ids), _CHUNK)))


def _histogram(lengths: np.ndarray, bins: int = 10) -> list[dict[str, int]]:
    """Document lengths in tokens on log-spaced bins (lengths span orders of magnitude)."""
    if lengths.size == 0:
        return []
    top = max(2, int(lengths.max()) + 1)
    edges = np.unique(np.geomspace(1, top, bins + 1).astype(np.int64))
    counts, edges = np.histogram(lengths, bins=edges)
    return [
        {"from": int(lo), "to": int(hi), "documents": int(c)}
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def inspect_build(build_dir: Path, samples: int = 3, sample_chars: int = 300) -> dict[str, Any]:
    """Per-split token counts, bytes per token, unknown rate, length histogram and samples."""
    check_token_build(build_dir)
    meta = read_meta(build_dir)
    tokenizer = load_tokenizer(build_dir)
    report: dict[str, Any] = {
        "build": str(build_dir),
        "corpus": meta["corpus"],
        "tokenizer": meta["tokenizer"]["spec"],
        "vocab_size": meta["vocab_size"],
        "dtype": meta["dtype"],
        "splits": {},
    }
    for split, counts in meta["splits"].items():
        ids, idx = open_split(build_dir, split)
        lengths = np.diff(idx.astype(np.int64))
        specials = 2 if meta.get("bos") else 1  # EOS after each document, BOS before if any
        content = counts["tokens"] - specials * counts["documents"]
        unknown = _unknown_count(ids, meta.get("unk_id"))
        decoded = []
        for i in np.linspace(0, len(lengths) - 1, num=min(samples, len(lengths)), dtype=int):
            start, end = int(idx[i]) + specials - 1, int(idx[i + 1]) - 1
            text = tokenizer.decode(ids[start:end].tolist())
            decoded.append({"document": int(i), "tokens": end - start, "text": text[:sample_chars]})
        report["splits"][split] = {
            "documents": counts["documents"],
            "tokens": counts["tokens"],
            "bytes": counts["bytes"],
            "bytes_per_token": bytes_per_token(counts, bool(meta.get("bos"))) if content else None,
            "unknown_rate": unknown / content if content else 0.0,
            "mean_document_tokens": float(lengths.mean()) if lengths.size else 0.0,
            "length_histogram": _histogram(lengths),
            "samples": decoded,
        }
    return report
