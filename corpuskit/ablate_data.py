"""The data side of an ablation: the shared evaluation set, and per candidate a token build whose
train split is the candidate's own, decontaminated against the evaluation set, and whose val split
is the evaluation set's text encoded with the candidate's tokenizer.

Why a token build of its own rather than a new evaluation path: the trainer's periodic and final
evaluations already report bits per byte on ``val`` (``train/scores.py``: the split's summed loss
over its UTF-8 bytes), so putting the shared text in ``val`` makes every loss curve and every
final number an evaluation on the same documents, with no second code path that could disagree.

Decontamination reuses the build's stage (``stages/decontam.py``): the same lowercased ``\\w+``
words and n-gram hashes, a training document with any n-gram of the evaluation set is dropped.
The train documents are the candidate's packed ones, copied id for id (no re-encoding); their
text comes from the clean artifact (aligned with ``train.idx`` in shard order), or, for a
mixture (which has no single clean artifact), from decoding the ids.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from corpuskit.ablate_spec import AblationSpec, Candidate, EvalPart
from corpuskit.errors import CorpuskitError
from corpuskit.pack import PackWriter, dtype_for, read_meta, write_meta
from corpuskit.shards import (
    existing_manifest,
    fingerprint,
    iter_documents,
    new_manifest,
    staging_dir,
    write_manifest,
)
from corpuskit.stages.decontam import contaminated_rows
from corpuskit.stages.words import MATCH_WORDS, batch_words, ngram_hashes
from corpuskit.tokenizers import load_tokenizer

CHUNK_DOCS = 512
# Files of a token build that describe its ids and are copied as they are (tokenizer files).
_DATA_SUFFIXES = (".bin", ".idx")
_SKIP = {"manifest.json", "meta.json", "meta.pkl"}


@dataclass
class EvalSet:
    """The shared held-out documents, their n-gram table, and per component (when the spec
    names components) the documents of each."""

    texts: list[str]
    fingerprint: str
    ngram: int
    table: np.ndarray = field(repr=False)
    provenance: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, list[str]] = field(default_factory=dict, repr=False)


def ngram_table(texts: list[str], ngram: int) -> np.ndarray:
    """Sorted distinct n-gram hashes of ``texts``, as the decontamination stage computes them."""
    if not texts:
        return np.zeros(0, np.uint64)
    words = batch_words(pa.array(texts, pa.large_string()), pattern=MATCH_WORDS)
    _, _, hashes = ngram_hashes(words, ngram)
    return np.unique(np.asarray(hashes, np.uint64))


def _part_texts(part: EvalPart, clean_dir: Path) -> tuple[list[str], dict[str, Any]]:
    """One part's documents from its clean artifact, and where they came from."""
    manifest = existing_manifest(clean_dir)
    if manifest is None or manifest.get("kind") != "clean":
        raise CorpuskitError(f"{clean_dir} is not a clean artifact; build {part.corpus} again")
    splits = sorted(manifest.get("splits") or {})
    if part.split not in splits:
        raise CorpuskitError(
            f"eval split {part.split!r} is not a split of {part.corpus!r} after cleaning "
            f"(has {', '.join(splits)}); set the eval split to one of those"
        )
    texts: list[str] = []
    for doc in iter_documents(clean_dir, ["text", "split"], split=part.split):
        texts.append(doc["text"])
        if part.max_documents is not None and len(texts) >= part.max_documents:
            break
    if not texts:
        raise CorpuskitError(f"eval set {part.corpus!r} split {part.split!r} has no documents")
    return texts, {
        "name": part.name, "corpus": part.corpus, "split": part.split, "documents": len(texts),
        "bytes": sum(len(t.encode("utf-8")) for t in texts), "clean_dir": str(clean_dir),
        "clean_fingerprint": manifest["fingerprint"], "max_documents": part.max_documents,
    }


def load_eval_set(spec: AblationSpec, cleans: list[tuple[EvalPart, Path]]) -> EvalSet:
    """The eval documents: every part's, in spec order (per part too, with components)."""
    texts: list[str] = []
    parts: dict[str, list[str]] = {}
    described = []
    for part, clean_dir in cleans:
        mine, info = _part_texts(part, clean_dir)
        texts += mine
        parts[part.name] = mine
        described.append(info)
    provenance = {
        "corpus": " + ".join(d["corpus"] for d in described),
        "split": " + ".join(sorted({d["split"] for d in described})),
        "documents": len(texts), "bytes": sum(d["bytes"] for d in described),
        "ngram": spec.eval.ngram, "parts": described,
    }
    fp = fingerprint({"parts": [{k: d[k] for k in ("name", "clean_fingerprint", "split",
                                                    "max_documents")} for d in described]})
    components = parts if spec.eval.components is not None else {}
    return EvalSet(texts, fp, spec.eval.ngram, ngram_table(texts, spec.eval.ngram), provenance,
                   components)


def _train_texts(result: Any, tokens_dir: Path, count: int) -> Iterator[str]:
    """The text of each packed train document, in ``train.idx`` order."""
    clean_dir = Path(result.clean_dir)
    manifest = existing_manifest(clean_dir)
    if manifest is not None and manifest.get("kind") == "clean":
        yield from (d["text"] for d in iter_documents(clean_dir, ["text", "split"], "train"))
        return
    tokenizer = load_tokenizer(tokens_dir)
    ids, offsets = _train_arrays(tokens_dir)
    special = {tokenizer.eos_id, tokenizer.bos_id}
    for i in range(count):
        doc = ids[int(offsets[i]) : int(offsets[i + 1])]
        yield tokenizer.decode(int(t) for t in doc if int(t) not in special)


def _train_arrays(tokens_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    meta = read_meta(tokens_dir)
    ids = np.memmap(tokens_dir / "train.bin", dtype=np.dtype(meta["dtype"]), mode="r")
    offsets = np.fromfile(tokens_dir / "train.idx", dtype="<u8")
    return ids, offsets


def _chunks(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _copy_train(result: Any, tokens_dir: Path, evalset: EvalSet, out: Path) -> dict[str, int]:
    """Copy the candidate's train documents not sharing an n-gram with the eval set."""
    ids, offsets = _train_arrays(tokens_dir)
    count = len(offsets) - 1
    kept_ends: list[np.ndarray] = []
    written, first, dropped, text_bytes = 0, 0, 0, 0
    with open(out / "train.bin", "wb") as fh:
        for chunk in _chunks(_train_texts(result, tokens_dir, count), CHUNK_DOCS):
            hit = contaminated_rows(pa.array(chunk, pa.large_string()), evalset.ngram,
                                    evalset.table)
            for j in np.flatnonzero(~hit):
                doc = ids[int(offsets[first + j]) : int(offsets[first + j + 1])]
                fh.write(np.ascontiguousarray(doc).tobytes())
                written += len(doc)
                kept_ends.append(np.array([written], "<u8"))
                text_bytes += len(chunk[j].encode("utf-8"))
            dropped += int(hit.sum())
            first += len(chunk)
    if first != count:
        raise CorpuskitError(
            f"{tokens_dir}: train.idx has {count} documents but its source has {first}; "
            "rebuild the candidate with --force"
        )
    ends = np.concatenate([np.zeros(1, "<u8"), *kept_ends]).astype("<u8")
    ends.tofile(out / "train.idx")
    return {"tokens": written, "documents": len(ends) - 1, "bytes": text_bytes,
            "decontaminated": dropped}


def _pack_eval(tokens_dir: Path, meta: dict[str, Any], evalset: EvalSet, out: Path
               ) -> dict[str, dict[str, int]]:
    """The eval text, encoded with the candidate's tokenizer, as the ``val`` split; with
    components, each also as ``val.<component>`` (the layout ``train/components.py`` reads)."""
    tokenizer = load_tokenizer(tokens_dir)
    bos = tokenizer.bos_id if meta.get("bos") else None
    splits = {"val": evalset.texts, **{f"val.{k}": v for k, v in evalset.parts.items()}}
    out_meta = {}
    for split, texts in splits.items():
        writer = PackWriter(out, split, dtype_for(tokenizer.vocab_size), tokenizer.eos_id, bos)
        for chunk in _chunks(iter(texts), CHUNK_DOCS):
            size = sum(len(t.encode("utf-8")) for t in chunk)
            writer.add(tokenizer.encode_batch(chunk), size)
        out_meta[split] = writer.close()
    return out_meta


def ablation_build(spec: AblationSpec, candidate: Candidate, result: Any, evalset: EvalSet,
                   root: Path) -> tuple[Path, dict[str, Any], bool]:
    """The candidate's token build for the ablation (reused when its fingerprint exists):
    returns its folder, its ``meta.json`` and whether it was reused."""
    tokens_dir = Path(result.tokens_dir)
    source = read_meta(tokens_dir)
    identity = new_manifest(
        "ablation-tokens", source.get("corpus") or candidate.corpus,
        inputs={"tokens": source["fingerprint"], "eval": evalset.fingerprint},
        config={"decontaminate": "drop", "ngram": evalset.ngram},
    )
    target = root / "ablations" / spec.name / "builds" / candidate.name / identity["fingerprint"]
    if existing_manifest(target) is not None:
        return target, read_meta(target), True
    with staging_dir(target) as tmp:
        for path in sorted(tokens_dir.iterdir()):
            if path.is_file() and path.suffix not in _DATA_SUFFIXES and path.name not in _SKIP:
                shutil.copy2(path, tmp / path.name)
        train = _copy_train(result, tokens_dir, evalset, tmp)
        if train["documents"] == 0:
            raise CorpuskitError(
                f"candidate {candidate.name!r}: every train document shares a "
                f"{evalset.ngram}-gram with the eval set; pick another eval set"
            )
        decontaminated = train.pop("decontaminated")
        held = _pack_eval(tokens_dir, source, evalset, tmp)
        # A mixture candidate's own per-component validation is not the shared eval set's.
        components = {k: {"held_out": {"val": f"val.{k}"}} for k in evalset.parts}
        meta = {**source, "fingerprint": identity["fingerprint"],
                "splits": {"train": train, **held}, "components": components,
                "ablation": {"source_tokens": str(tokens_dir), "eval": evalset.provenance,
                             "decontaminated": decontaminated}}
        write_meta(tmp, meta)
        write_manifest(tmp, {**identity, "splits": meta["splits"]})
    return target, meta, False
