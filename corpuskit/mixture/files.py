"""The packed files of a mixture build: ``train`` resampled to the targets, held-out splits
whole and per component, and the per-component counts that ``meta.json`` records."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from corpuskit.catalog_mix import MixSource
from corpuskit.errors import CorpuskitError
from corpuskit.mixture.components import CleanComponent
from corpuskit.mixture.sampling import (
    Selection,
    doc_bytes,
    select_documents,
    token_targets,
    weights,
)

log = logging.getLogger("corpuskit.mixture")

# A component's share of the train tokens may differ from its weight by this fraction of the
# weight; the assembly cuts the last document so the shares are exact, and this is checked.
SHARE_TOLERANCE = 0.01
HELD_OUT = ("val", "test")
# Documents copied per write while assembling train.bin (bounds the memory of one write).
WRITE_DOCS = 4096
Counts = dict[str, dict[str, int]]


def offsets(part: Path, split: str) -> np.ndarray:
    return np.fromfile(part / f"{split}.idx", dtype="<u8").astype(np.int64)


def write_train(
    out: Path, parts: list[Path], selections: list[Selection], dtype: np.dtype, eos: int,
    seed: int,
) -> np.ndarray:
    """``train.bin/.idx`` from every component's selected documents in one seeded order;
    returns the component number of each written document (in file order)."""
    comp = np.concatenate([np.full(len(s.docs), i, dtype=np.int64)
                           for i, s in enumerate(selections)])
    doc = np.concatenate([s.docs for s in selections])
    length = np.concatenate([s.lengths for s in selections])
    order = np.random.default_rng([seed, 0x6D6978]).permutation(len(doc))
    comp, doc, length = comp[order], doc[order], length[order]
    maps = [np.memmap(p / "train.bin", dtype=dtype, mode="r") for p in parts]
    starts = [offsets(p, "train") for p in parts]
    eos_arr = np.array([eos], dtype=dtype)
    with open(out / "train.bin", "wb") as fh:
        for lo in range(0, len(doc), WRITE_DOCS):
            pieces = []
            for c, d, n in zip(comp[lo : lo + WRITE_DOCS], doc[lo : lo + WRITE_DOCS],
                               length[lo : lo + WRITE_DOCS], strict=True):
                start, end = starts[c][d], starts[c][d + 1]
                if n == end - start:
                    pieces.append(maps[c][start:end])
                else:  # the cut document: its first n - 1 tokens, then EOS
                    pieces += [maps[c][start : start + n - 1], eos_arr]
            fh.write(np.concatenate(pieces).astype(dtype, copy=False).tobytes())
    np.concatenate([[0], np.cumsum(length)]).astype("<u8").tofile(out / "train.idx")
    del maps
    return comp


def concatenate(out: Path, name: str, parts: list[Path], split: str) -> None:
    """``<name>.bin/.idx`` = the parts' ``<split>`` files one after another, offsets shifted."""
    shifted = [np.zeros(1, dtype=np.int64)]
    shift = 0
    with open(out / f"{name}.bin", "wb") as fh:
        for part in parts:
            with open(part / f"{split}.bin", "rb") as src:
                shutil.copyfileobj(src, fh, 16 * 2**20)
            idx = offsets(part, split)
            shifted.append(idx[1:] + shift)
            shift += int(idx[-1])
    np.concatenate(shifted).astype("<u8").tofile(out / f"{name}.idx")


def write_train_split(
    name: str, source: MixSource, cleans: list[CleanComponent], parts: list[Path],
    counts: list[Counts], dtype: np.dtype, eos: int, seed: int, out: Path,
) -> tuple[dict[str, int], dict[str, Any]]:
    """Select, write and check the train split; returns its counts and, per component, what
    ``meta.json`` records (weight, tokens, documents, share, repeats, ...)."""
    keys = [c.key for c in cleans]
    shares = weights(source)
    available = {k: counts[i]["train"]["tokens"] for i, k in enumerate(keys)}
    targets = token_targets(source.components, available, source.train_tokens)
    lengths = [np.diff(offsets(p, "train")) for p in parts]
    selections = [select_documents(lengths[i], targets[k], seed, k) for i, k in enumerate(keys)]
    comp = write_train(out, parts, selections, dtype, eos, seed)
    written = np.diff(offsets(out, "train"))
    measured = np.bincount(comp, weights=written, minlength=len(keys)).astype(np.int64)
    total = int(measured.sum())
    components: dict[str, Any] = {}
    train_bytes = 0
    for i, c in enumerate(cleans):
        k = c.key
        _check_share(name, k, int(measured[i]) / total, shares[k], targets[k])
        record, nbytes = _component_record(c, selections[i], lengths[i], counts[i])
        repeats = targets[k] / available[k]
        components[k] = {**record, "weight": shares[k], "tokens": int(measured[i]),
                         "share": round(int(measured[i]) / total, 6),
                         "repeats": round(repeats, 4), "upsampled": repeats > 1}
        train_bytes += nbytes
        say_resampling(name, k, available[k], targets[k], repeats)
    return {"tokens": total, "documents": len(written), "bytes": train_bytes}, components


def _check_share(name: str, key: str, share: float, weight: float, target: int) -> None:
    """The measured share is the weight within SHARE_TOLERANCE (of the weight)."""
    if abs(share - weight) > SHARE_TOLERANCE * weight:
        # The cut makes shares exact up to rounding the target to whole tokens, which only
        # matters for a target under 50 tokens: a mixture too small for its weights.
        raise CorpuskitError(
            f"mix {name!r}: component {key!r} would get {share:.4f} of the train tokens, not "
            f"{weight:.4f} within {SHARE_TOLERANCE:.0%}: its target of {target} tokens is too "
            "small; raise the mixture's train_tokens"
        )


def _component_record(
    c: CleanComponent, sel: Selection, lengths: np.ndarray, counts: Counts
) -> tuple[dict[str, Any], int]:
    """A component's facts for ``meta.json``, and the UTF-8 bytes of what train took from it
    (a cut document counts its kept share of its bytes)."""
    sizes = doc_bytes(c.path, "train")
    if len(sizes) != len(lengths):
        raise CorpuskitError(
            f"{c.path} holds {len(sizes)} train documents but {len(lengths)} were packed; "
            "rebuild the mixture with --force"
        )
    nbytes = int(np.round((sizes[sel.docs] * (sel.lengths / lengths[sel.docs])).sum()))
    record = {
        "corpus": c.component.spec.corpus,
        "subset": c.component.spec.subset,
        "max_bytes": c.component.spec.max_bytes,
        "documents": len(sel.docs),
        "available_tokens": int(lengths.sum()),
        "available_documents": len(lengths),
        "clean_fingerprint": c.manifest["fingerprint"],
        "held_out": {s: f"{s}.{c.key}" for s in HELD_OUT if s in counts},
    }
    return record, nbytes


def write_held_out(
    cleans: list[CleanComponent], parts: list[Path], counts: list[Counts], out: Path
) -> dict[str, dict[str, int]]:
    """``val``/``test``: every component's documents (not resampled), and each one's alone as
    ``<split>.<component>``; returns their counts."""
    split_meta: dict[str, dict[str, int]] = {}
    for split in HELD_OUT:
        having = [i for i in range(len(cleans)) if split in counts[i]]
        if not having:
            continue
        concatenate(out, split, [parts[i] for i in having], split)
        split_meta[split] = {
            key: sum(counts[i][split][key] for i in having)
            for key in ("tokens", "documents", "bytes")
        }
        for i in having:
            name = f"{split}.{cleans[i].key}"
            for suffix in (".bin", ".idx"):
                shutil.copyfile(parts[i] / f"{split}{suffix}", out / f"{name}{suffix}")
            split_meta[name] = dict(counts[i][split])
    return split_meta


def say_resampling(mix: str, key: str, available: int, target: int, repeats: float) -> None:
    """One line when a component is repeated (a warning: the model sees text again), and one
    at ``--verbose`` when only part of it is used."""
    if repeats > 1:
        log.warning(
            "mix %s: component %s has %s train tokens for a target of %s: upsampled, its "
            "documents repeated %.2f times", mix, key, f"{available:,}", f"{target:,}", repeats,
        )
    elif repeats < 1:
        log.info("mix %s: component %s: %s of its %s train tokens used (%.1f%%)", mix, key,
                 f"{target:,}", f"{available:,}", 100 * repeats)
