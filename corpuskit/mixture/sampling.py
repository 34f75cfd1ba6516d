"""How much of each component, and which documents: targets, tokenizer sample, selection.

Everything here is a pure function of its arguments (seeded generators, hashes of text), so a
mixture build is the same on every machine and with any worker count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import xxhash

from corpuskit.catalog_mix import MixComponent, MixSource
from corpuskit.errors import CorpuskitError
from corpuskit.shards import read_batches, shard_paths


def weights(source: MixSource) -> dict[str, float]:
    """Each component's intended share of the train tokens (budgets turned into shares)."""
    if all(c.weight is not None for c in source.components):
        return {c.key: float(c.weight or 0.0) for c in source.components}
    total = sum(c.tokens or 0 for c in source.components)
    return {c.key: (c.tokens or 0) / total for c in source.components}


def token_targets(
    components: Sequence[MixComponent], available: dict[str, int], train_tokens: int | None
) -> dict[str, int]:
    """Train tokens per component: ``weight * total`` (total: ``train_tokens``, else what the
    components hold together), or each component's ``tokens`` budget."""
    total = train_tokens or sum(available.values())
    out = {}
    for c in components:
        if c.tokens is not None:
            out[c.key] = c.tokens
        else:
            out[c.key] = max(1, round((c.weight or 0.0) * total))
    return out


def sample_fractions(
    spec_kind: str, shares: dict[str, float], train_bytes: dict[str, int], budget: int
) -> dict[str, float]:
    """The share of each component's train lines the tokenizer trainer sees, so that the
    sample's bytes follow the weights (and stay under ``budget`` bytes for sentencepiece).

    Only sentencepiece samples: word and char vocabularies are exact counts, and a sample would
    turn the rest of a component into unknowns.
    """
    if spec_kind != "spm":
        return {k: 1.0 for k in shares}
    scale = min(train_bytes[k] / w for k, w in shares.items() if w > 0)
    if budget > 0:
        scale = min(scale, float(budget))
    return {
        k: 1.0 if train_bytes[k] == 0 else round(min(1.0, w * scale / train_bytes[k]), 6)
        for k, w in shares.items()
    }


def doc_bytes(clean_dir: Path, split: str) -> np.ndarray:
    """UTF-8 size of every document of a split, in the order ``pack_splits`` packs them."""
    sizes: list[np.ndarray] = []
    for path in shard_paths(clean_dir):
        for batch in read_batches(path, ["text", "split"]):
            texts = batch.filter(pc.equal(batch.column("split"), split)).column("text")
            sizes.append(pc.binary_length(texts).to_numpy(zero_copy_only=False))
    return np.concatenate(sizes).astype(np.int64) if sizes else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Selection:
    """The train documents one component contributes: which, how long each (the last may be
    cut), and how many passes over the component that took."""

    docs: np.ndarray  # document numbers in the component's train.idx
    lengths: np.ndarray  # tokens taken from each (EOS included)
    passes: int


def select_documents(lengths: np.ndarray, target: int, seed: int, key: str) -> Selection:
    """Whole documents in a seeded order, pass after pass, until ``target`` tokens; the last
    document is cut to end exactly on the target (its last kept token replaced by EOS)."""
    total = int(lengths.sum())
    if total <= 0:
        raise CorpuskitError(f"mix component {key!r} has no train tokens after cleaning")
    key_seed = xxhash.xxh64_intdigest(key.encode("utf-8"))
    full, rest = divmod(target, total)
    orders = [np.random.default_rng([seed, key_seed, p]).permutation(len(lengths))
              for p in range(full + (1 if rest else 0))]
    docs = list(orders[:full])
    taken = [lengths[o] for o in docs]
    if rest:
        last = orders[full]
        cum = np.cumsum(lengths[last])
        m = int(np.searchsorted(cum, rest, side="left"))  # cum[m] >= rest
        part = lengths[last[: m + 1]].copy()
        part[-1] -= int(cum[m]) - rest
        docs.append(last[: m + 1])
        taken.append(part)
    return Selection(np.concatenate(docs), np.concatenate(taken), len(orders))
