"""Tokenize and pack a cleaned artifact into ``data/tokens/<corpus>/<fp>/``.

The tokenizer is trained on the cleaned train split only (so nothing of val or test leaks into
it), then every split is encoded in batches with all cores and appended to its packed files.
``tokens/<corpus>/LATEST`` names the newest build, which ``train`` uses by default.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from tqdm.auto import tqdm

from corpuskit.catalog import CorpusEntry
from corpuskit.errors import CorpuskitError
from corpuskit.executors.local import resolve_workers
from corpuskit.fetch import artifact_lock
from corpuskit.pack import PackWriter, dtype_for, read_meta, write_meta
from corpuskit.paths import tokens_root
from corpuskit.shards import (
    MANIFEST,
    existing_manifest,
    new_manifest,
    read_batches,
    read_manifest,
    shard_paths,
    staging_dir,
    write_json_atomic,
)
from corpuskit.tokenizers import Tokenizer, parse_spec, train_tokenizer

SPLIT_ORDER = ("train", "val", "test")
# Sentencepiece's trainers sum floats across threads, so the model depends on the thread count.
# A fixed count keeps builds byte-identical whatever --workers is (encoding has no such issue).
SPM_TRAIN_THREADS = 8


def _train_lines(clean_dir: Path) -> Iterator[str]:
    for path in shard_paths(clean_dir):
        for batch in read_batches(path, ["text", "split"]):
            for text, split in zip(
                batch.column("text").to_pylist(), batch.column("split").to_pylist(), strict=True
            ):
                if split == "train":
                    yield from (line for line in text.split("\n") if line.strip())


def _split_batches(clean_dir: Path, split: str, docs: int = 512) -> Iterator[tuple[list[str], int]]:
    """Texts of one split in batches of ``docs``, with their UTF-8 size (measured by Arrow)."""
    pending: list[str] = []
    pending_bytes = 0
    for path in shard_paths(clean_dir):
        for batch in read_batches(path, ["text", "split"]):
            texts = batch.filter(pc.equal(batch.column("split"), split)).column("text")
            lengths = pc.binary_length(texts).to_pylist()
            for text, size in zip(texts.to_pylist(), lengths, strict=True):
                pending.append(text)
                pending_bytes += size
                if len(pending) >= docs:
                    yield pending, pending_bytes
                    pending, pending_bytes = [], 0
    if pending:
        yield pending, pending_bytes


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


def build_tokens(
    entry: CorpusEntry,
    root: Path,
    clean_dir: Path,
    clean_manifest: dict[str, Any],
    config: Any,
    *,
    progress: bool = True,
) -> tuple[Path, dict[str, Any], bool]:
    spec = parse_spec(config.tokenizer)
    tok_config: dict[str, Any] = {
        "tokenizer": spec.text,
        "seed": config.seed,
        "sentence_budget": config.sentence_budget,
        "bos": config.bos,
    }
    if spec.path is not None:
        tok_config["tokenizer_sha256"] = hashlib.sha256(spec.path.read_bytes()).hexdigest()
    identity = new_manifest(
        "tokens", entry.name, inputs={"clean": clean_manifest["fingerprint"]}, config=tok_config
    )
    target = tokens_root(root, entry.name) / identity["fingerprint"]
    current = existing_manifest(target)
    if current is not None:
        _point_latest(target)
        return target, read_meta(target), True
    splits = [s for s in SPLIT_ORDER if s in clean_manifest["splits"]]
    extra = sorted(set(clean_manifest["splits"]) - set(SPLIT_ORDER))
    if "train" not in splits or "val" not in splits:
        raise CorpuskitError(
            f"{entry.name!r} needs a train and a val split after cleaning (has {splits + extra}); "
            "raise --val-fraction or check the source's splits"
        )
    threads = resolve_workers(config.workers)
    with artifact_lock(target), staging_dir(target) as tmp:
        tokenizer = train_tokenizer(
            spec,
            _train_lines(clean_dir),
            sentence_budget=config.sentence_budget,
            seed=config.seed,
            num_threads=SPM_TRAIN_THREADS,
        )
        if config.bos and tokenizer.bos_id is None:
            raise CorpuskitError(
                f"--bos needs a tokenizer with a BOS token; {spec.text!r} has none "
                "(use spm-bpe:N, spm-unigram:N or an hf: tokenizer with one)"
            )
        dtype = dtype_for(tokenizer.vocab_size)
        tokenizer_info = tokenizer.save(tmp)
        split_meta = {
            split: pack_split(
                clean_dir,
                split,
                tokenizer,
                tmp,
                threads=threads,
                total_bytes=clean_manifest["splits"][split]["bytes"],
                progress=progress,
                bos=config.bos,
            )
            for split in splits + extra
        }
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
            "idx": "uint64 offsets of document starts plus the total; doc i = bin[idx[i]:idx[i+1]]"
            " = [BOS if bos] + ids + [EOS]",
        }
        write_meta(tmp, meta)
        write_json_atomic(tmp / MANIFEST, {**identity, "splits": split_meta})
    _point_latest(target)
    return target, meta, False


def _point_latest(target: Path) -> None:
    """``tokens/<corpus>/LATEST`` names the newest build, which `train` uses by default."""
    latest = target.parent / "LATEST"
    tmp = latest.with_name(f".LATEST.tmp-{os.getpid()}")
    tmp.write_text(target.name + "\n", encoding="utf-8")
    os.replace(tmp, latest)


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
