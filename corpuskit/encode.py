"""Tokenize and pack a cleaned artifact into ``data/tokens/<corpus>/<fp>/``.

The tokenizer is trained on the cleaned train split only (so nothing of val or test leaks into
it), in this process or, for a large sample, a short-lived one (``tokenizer_training``).
Encoding and packing then run per clean shard through the build's executor (worker processes
or Ray tasks): each task packs its shard's documents of every split into its
own small ``.bin``/``.idx`` pair, and this process concatenates them in shard order, shifting the
offsets, so the files are byte-identical to packing everything in one pass.
``tokens/<corpus>/LATEST`` names the newest build, which ``train`` uses by default.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
from tqdm.auto import tqdm

from corpuskit.artifacts import artifact_lock, write_latest
from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.executors import Executor, make_executor
from corpuskit.fast_encode import choose_encoder, with_encoder
from corpuskit.faults import checkpoint
from corpuskit.hf_tokenizer import write_hf_tokenizer
from corpuskit.pack import PackWriter, dtype_for, read_meta, write_meta
from corpuskit.paths import tokens_root
from corpuskit.shards import (
    existing_manifest,
    new_manifest,
    read_batches,
    read_manifest,
    require_intact,
    reusable,
    shard_paths,
    staging_dir,
    write_manifest,
)
from corpuskit.tokenizer_training import TrainingSample, train_on_sample
from corpuskit.tokenizers import Tokenizer, load_tokenizer, parse_spec

SPLIT_ORDER = ("train", "val", "test")


def spm_sample_fraction(spec: Any, clean_manifest: dict[str, Any], budget_bytes: int) -> float:
    """The share of train lines sentencepiece sees: 1 unless the train split is larger than
    ``budget_bytes`` (other tokenizers always see every line: a word vocabulary is exact)."""
    if spec.kind != "spm":
        return 1.0
    train_bytes = int(clean_manifest.get("splits", {}).get("train", {}).get("bytes", 0))
    if budget_bytes <= 0 or train_bytes <= budget_bytes:
        return 1.0
    return round(budget_bytes / train_bytes, 6)


# A batch ends at this many documents or this many bytes of text, whichever comes first. The
# byte bound is what keeps memory flat: the encoded ids of a batch are Python lists (~40 bytes a
# token), so a batch that happened to gather several large documents used to set the peak RSS,
# and a larger corpus has more chances of such a batch. Batch boundaries do not change the
# packed output: documents are appended in the same order either way.
BATCH_DOCS = 512
BATCH_BYTES = 2 * 2**20


def _split_batches(
    clean_dir: Path, split: str, docs: int = BATCH_DOCS, max_bytes: int = BATCH_BYTES
) -> Iterator[tuple[list[str], int]]:
    """Texts of one split in batches of at most ``docs`` documents and about ``max_bytes``
    bytes (a single larger document is a batch of its own), with their UTF-8 size."""
    pending: list[str] = []
    pending_bytes = 0
    for path in shard_paths(clean_dir):
        for batch in read_batches(path, ["text", "split"]):
            texts = batch.filter(pc.equal(batch.column("split"), split)).column("text")
            lengths = pc.binary_length(texts).to_pylist()
            for text, size in zip(texts.to_pylist(), lengths, strict=True):
                if pending and pending_bytes + size > max_bytes:
                    yield pending, pending_bytes
                    pending, pending_bytes = [], 0
                pending.append(text)
                pending_bytes += size
                if len(pending) >= docs:
                    yield pending, pending_bytes
                    pending, pending_bytes = [], 0
    if pending:
        yield pending, pending_bytes


def _sample_texts(clean_dir: Path, max_bytes: int = 2**20) -> Iterator[str]:
    """The first documents of the train split, about ``max_bytes`` of them: what a faster
    encoder must agree on, id for id, before a build uses it."""
    seen = 0
    for texts, nbytes in _split_batches(clean_dir, "train", max_bytes=max_bytes):
        yield from texts
        seen += nbytes
        if seen >= max_bytes:
            return


def pack_split(
    clean_dir: Path,
    split: str,
    tokenizer: Tokenizer,
    out_dir: Path,
    *,
    threads: int,
    total_bytes: int | None = None,
    progress: bool = True,
    bos: bool = False,
) -> dict[str, int]:
    """Encode one split of a cleaned artifact and append it to ``out_dir/<split>.bin/.idx``."""
    writer = PackWriter(
        out_dir,
        split,
        dtype_for(tokenizer.vocab_size),
        tokenizer.eos_id,
        bos_id=tokenizer.bos_id if bos else None,
    )
    with tqdm(
        total=total_bytes,
        desc=f"tokenize {split}",
        unit="B",
        unit_scale=True,
        disable=not progress,
        leave=False,
    ) as bar:
        for texts, nbytes in _split_batches(clean_dir, split):
            writer.add(tokenizer.encode_batch(texts, num_threads=threads), nbytes)
            bar.update(nbytes)
    return writer.close()


@dataclass(frozen=True)
class _PackTask:
    """Pack one clean shard's documents of every split into ``out/<split>.bin/.idx``."""

    shard: str
    out: str
    tokenizer_dir: str
    splits: tuple[str, ...]
    bos: bool
    threads: int
    encoder: str = "sentencepiece"


@lru_cache(maxsize=2)
def _worker_tokenizer(directory: str, stamp: int, encoder: str) -> Tokenizer:
    """Loaded once per worker process, not once per shard, with the encoder the build chose.

    ``stamp`` (the file's modification time) tells a later build's tokenizer from an earlier
    one saved at the same staging path, since Ray keeps its worker processes between builds.
    """
    return with_encoder(load_tokenizer(directory), encoder)


def _bounded(values: list[str], lengths: list[int]) -> Iterator[tuple[list[str], int]]:
    """``values`` in batches bounded like ``_split_batches``'s (documents and bytes)."""
    start = 0
    while start < len(values):
        end, nbytes = start, 0
        while end < len(values) and end - start < BATCH_DOCS:
            if end > start and nbytes + lengths[end] > BATCH_BYTES:
                break
            nbytes += lengths[end]
            end += 1
        yield values[start:end], nbytes
        start = end


def _pack_shard(task: _PackTask) -> dict[str, dict[str, int]]:
    """Encode one shard, split by split; returns each split's token/document/byte counts."""
    if task.threads < (os.cpu_count() or 1):
        # Hugging Face tokenizers size their thread pool from this, once per process.
        os.environ.setdefault("RAYON_NUM_THREADS", str(task.threads))
    stamp = os.stat(Path(task.tokenizer_dir) / "meta.json").st_mtime_ns
    tokenizer = _worker_tokenizer(task.tokenizer_dir, stamp, task.encoder)
    out = Path(task.out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = dtype_for(tokenizer.vocab_size)
    bos_id = tokenizer.bos_id if task.bos else None
    writers = {s: PackWriter(out, s, dtype, tokenizer.eos_id, bos_id=bos_id) for s in task.splits}
    for batch in read_batches(Path(task.shard), ["text", "split"]):
        for split, writer in writers.items():
            texts = batch.filter(pc.equal(batch.column("split"), split)).column("text")
            lengths = pc.binary_length(texts).to_pylist()
            for chunk, nbytes in _bounded(texts.to_pylist(), lengths):
                writer.add(tokenizer.encode_batch(chunk, num_threads=task.threads), nbytes)
                checkpoint("encode.pack_batch")
    return {split: writer.close() for split, writer in writers.items()}


def _concatenate(out_dir: Path, split: str, parts: list[Path]) -> None:
    """Append the parts' ``<split>.bin`` in order; shift each part's offsets by what precedes."""
    with open(out_dir / f"{split}.bin", "wb") as bin_out, open(
        out_dir / f"{split}.idx", "wb"
    ) as idx_out:
        idx_out.write(np.zeros(1, dtype="<u8").tobytes())
        offset = 0
        for part in parts:
            with open(part / f"{split}.bin", "rb") as fh:
                shutil.copyfileobj(fh, bin_out, 16 * 2**20)
            idx = np.fromfile(part / f"{split}.idx", dtype="<u8")
            idx_out.write((idx[1:] + np.uint64(offset)).astype("<u8").tobytes())
            offset += int(idx[-1])
            checkpoint("encode.concatenate")


def pack_splits(
    clean_dir: Path,
    splits: list[str],
    tokenizer: Tokenizer,
    tokenizer_info: dict[str, Any],
    out_dir: Path,
    executor: Executor,
    *,
    bos: bool = False,
    progress: bool = True,
    encoder: str = "sentencepiece",
) -> dict[str, dict[str, int]]:
    """Encode every split of a cleaned artifact, one executor task per clean shard, with
    ``encoder`` (``fast_encode.choose_encoder``'s choice) where it is not the tokenizer's own."""
    work = (out_dir / "_pack").absolute()
    work.mkdir()
    # The tasks load the tokenizer from disk: it is not picklable, and on a cluster a file on
    # the shared storage is the one way every worker sees it.
    tokenizer.save(work)
    (work / "meta.json").write_text(json.dumps({"tokenizer": tokenizer_info}), encoding="utf-8")
    shards = shard_paths(clean_dir)
    # Few shards: each task encodes with several threads; many: one thread each, many tasks.
    threads = max(1, min(executor.max_threads(), executor.slots() // max(1, len(shards))))
    tasks = [
        _PackTask(
            str(path.absolute()), str(work / f"{i:05d}"), str(work), tuple(splits), bos,
            threads, encoder,
        )
        for i, path in enumerate(shards)
    ]
    totals = {split: {"tokens": 0, "documents": 0, "bytes": 0} for split in splits}
    for counts in executor.map_ordered(
        _pack_shard, tasks, desc="tokenize+pack", threads=threads, progress=progress
    ):
        for split, numbers in counts.items():
            for key, value in numbers.items():
                totals[split][key] += value
    parts = [Path(t.out) for t in tasks]
    for split in splits:
        _concatenate(out_dir, split, parts)
    shutil.rmtree(work)
    return totals


def build_tokens(
    entry: CorpusEntry,
    root: Path,
    clean_dir: Path,
    clean_manifest: dict[str, Any],
    config: Any,
    *,
    progress: bool = True,
    executor: Executor | None = None,
    force: bool = False,
) -> tuple[Path, dict[str, Any], bool]:
    """Train the tokenizer, then encode and pack every split (tasks run on ``executor``).

    An existing build with the same fingerprint is reused when every file its manifest records
    is there, of its size; a damaged one is built again (a warning names the file), and so is
    any with ``force``. The old build stays in place until the new one is complete.
    """
    if executor is None:
        with make_executor(
            getattr(config, "executor", "local"),
            workers=config.workers,
            address=getattr(config, "address", None),
        ) as own:
            return build_tokens(
                entry, root, clean_dir, clean_manifest, config, progress=progress,
                executor=own, force=force,
            )
    spec = parse_spec(config.tokenizer)
    identity = _identity(entry.name, clean_manifest, config, spec)
    target = tokens_root(root, entry.name) / identity["fingerprint"]
    if not force and _reusable(target, entry.name):
        _point_latest(target)
        return target, read_meta(target), True
    require_intact(clean_dir, clean_manifest)
    splits, extra = _splits(entry.name, clean_manifest)
    with artifact_lock(target):
        # Another process may have built it while this one waited for the lock.
        if not force and _reusable(target, entry.name, warn=False):
            _point_latest(target)
            return target, read_meta(target), True
        return _build_tokens_locked(
            entry, clean_dir, clean_manifest, config, spec, identity, splits, extra, target,
            executor, progress,
        )


def _identity(corpus: str, clean_manifest: dict[str, Any], config: Any, spec: Any) -> dict:
    """The token build's identity: the clean artifact and the tokenizer settings."""
    tok_config: dict[str, Any] = {
        "tokenizer": spec.text,
        "seed": config.seed,
        "sentence_budget": config.sentence_budget,
        "bos": config.bos,
    }
    keep = spm_sample_fraction(
        spec, clean_manifest, int(getattr(config, "sentence_budget_bytes", 0) or 0)
    )
    if keep < 1:  # only then does the byte budget change the tokenizer
        tok_config["sentence_sample"] = keep
    if spec.path is not None:
        tok_config["tokenizer_sha256"] = hashlib.sha256(spec.path.read_bytes()).hexdigest()
    return new_manifest(
        "tokens", corpus, inputs={"clean": clean_manifest["fingerprint"]}, config=tok_config
    )


def _splits(corpus: str, clean_manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The splits to pack, train/val/test first, then any others (sorted); train and val are
    required."""
    splits = [s for s in SPLIT_ORDER if s in clean_manifest["splits"]]
    extra = sorted(set(clean_manifest["splits"]) - set(SPLIT_ORDER))
    if "train" not in splits or "val" not in splits:
        raise CorpuskitError(
            f"{corpus!r} needs a train and a val split after cleaning (has {splits + extra}); "
            "raise --val-fraction (validation is cut from train when the source has none) "
            "or check the source's splits"
        )
    return splits, extra


def _train(
    spec: Any, clean_dir: Path, clean_manifest: dict[str, Any], identity: dict[str, Any],
    config: Any,
) -> Tokenizer:
    """The tokenizer, trained on the cleaned train split (its sample is in the identity)."""
    # The sample is part of the identity (only when it samples): one source of truth.
    keep = identity["config"].get("sentence_sample", 1.0)
    train_bytes = int(clean_manifest["splits"].get("train", {}).get("bytes", 0))
    sample = TrainingSample(((str(clean_dir), keep),), config.seed, int(train_bytes * keep))
    tokenizer = train_on_sample(spec, sample, sentence_budget=config.sentence_budget)
    if config.bos and tokenizer.bos_id is None:
        raise CorpuskitError(
            f"--bos needs a tokenizer with a BOS token; {spec.text!r} has none "
            "(use spm-bpe:N, spm-unigram:N or an hf: tokenizer with one)"
        )
    return tokenizer


def _build_tokens_locked(
    entry: CorpusEntry,
    clean_dir: Path,
    clean_manifest: dict[str, Any],
    config: Any,
    spec: Any,
    identity: dict[str, Any],
    splits: list[str],
    extra: list[str],
    target: Path,
    executor: Executor,
    progress: bool,
) -> tuple[Path, dict[str, Any], bool]:
    """Tokenizer training, encoding and packing into a staging folder, under the lock."""
    with staging_dir(target) as tmp:
        tokenizer = _train(spec, clean_dir, clean_manifest, identity, config)
        dtype = dtype_for(tokenizer.vocab_size)
        tokenizer_info = tokenizer.save(tmp)
        # tokenizer.json & co. for AutoTokenizer, before the manifest records the folder.
        write_hf_tokenizer(tokenizer, tmp, bos=config.bos)
        checkpoint("encode.tokenizer_saved")
        encoder = choose_encoder(
            tokenizer, _sample_texts(clean_dir), getattr(config, "encoder", "auto")
        )
        split_meta = pack_splits(
            clean_dir,
            splits + extra,
            tokenizer,
            tokenizer_info,
            tmp,
            executor,
            bos=config.bos,
            progress=progress,
            encoder=encoder.name,
        )
        meta = {
            "format_version": 1,
            "corpus": entry.name,
            "fingerprint": identity["fingerprint"],
            "clean_fingerprint": clean_manifest["fingerprint"],
            "tokenizer": tokenizer_info,
            "vocab_size": tokenizer.vocab_size,
            "dtype": dtype.name,
            "eos_id": tokenizer.eos_id,
            "bos_id": tokenizer.bos_id,
            "bos": config.bos,
            "unk_id": tokenizer.unk_id,
            "splits": split_meta,
            # Who encoded (the ids are sentencepiece's either way; see fast_encode.py).
            "encoder": encoder.record(),
            "idx": "uint64 offsets of document starts plus the total; doc i = bin[idx[i]:idx[i+1]]"
            " = [BOS if bos] + ids + [EOS]",
        }
        write_meta(tmp, meta)
        checkpoint("encode.meta_written")
        write_manifest(tmp, {**identity, "splits": split_meta})
    _point_latest(target)
    return target, meta, False


def _reusable(target: Path, corpus: str, warn: bool = True) -> bool:
    """A complete token build at ``target`` whose recorded files are all there, of their size
    (else a warning naming the damaged file: it is built again)."""
    current = existing_manifest(target)
    return current is not None and reusable(
        target, current, f"building {corpus} again", warn=warn
    )


def _point_latest(target: Path) -> None:
    """``tokens/<corpus>/LATEST`` names the newest build, which `train` uses by default."""
    write_latest(target.parent / "LATEST", target.name)


def latest_build(root: Path, corpus: str) -> Path:
    base = tokens_root(root, corpus)
    try:
        name = (base / "LATEST").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CorpuskitError(
            f"corpus {corpus!r} has no token build; run `corpuskit build {corpus}` first"
        ) from None
    path = base / name
    read_manifest(path)
    return path
