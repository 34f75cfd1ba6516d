"""Turning summed log-likelihoods into the numbers a run reports (no torch, so the n-gram
baseline shares it).

Bits per byte divides the total information by the split's UTF-8 size, which makes models with
different tokenizers comparable: ``loss_nats * tokens / (ln 2 * bytes)`` with the split's token
and byte counts from ``meta.json``.
"""

from __future__ import annotations

import math
from typing import Any

from corpuskit.train.tokens import TokenBuild


def summarize(nll: float, correct: int | None, count: int, build: TokenBuild,
              split: str) -> dict[str, Any]:
    """Per-token averages and bits per byte from summed negative log-likelihood (nats)."""
    loss = nll / max(count, 1)
    out: dict[str, Any] = {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}
    if correct is not None:
        out["accuracy"] = correct / max(count, 1)
    split_bytes = build.num_bytes(split)
    split_tokens = build.meta.get("splits", {}).get(split, {}).get("tokens")
    split_tokens = int(split_tokens) if split_tokens else build.num_tokens(split)
    if split_bytes:
        out["bits_per_byte"] = loss * split_tokens / (math.log(2) * split_bytes)
    out["tokens"] = count
    return out
