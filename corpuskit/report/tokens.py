"""Token-level numbers of a report: lengths from the ``.idx`` offsets, the most frequent ids of
``train.bin`` and bytes per token, all read from the packed files without decoding the corpus."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit import artifacts

log = logging.getLogger("corpuskit.report.stats")

TOKEN_COUNT_CAP = 32 * 2**20  # tokens read to rank the most frequent ones
TOKEN_WINDOW = 2**20


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
            out[split] = artifacts.bytes_per_token(s, bool(meta.get("bos")))
    return out
