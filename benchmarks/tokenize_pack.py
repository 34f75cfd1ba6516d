"""Tokenize-and-pack throughput: corpuskit vs raw sentencepiece vs nanoGPT-style preparation.

All three encode the same cleaned train split with the same sentencepiece model and the same
number of threads/processes:

- ``sentencepiece raw``: ``SentencePieceProcessor.encode(batch, num_threads=T)`` on texts already
  in memory, nothing written: the ceiling for this tokenizer;
- ``corpuskit pack_split``: reads the Arrow shards, encodes, writes ``train.bin``/``train.idx``;
- ``nanoGPT-style``: ``datasets.Dataset.map(num_proc=T)`` encoding each document and appending
  EOS, then the lengths summed and the ids written into an ``np.memmap`` in shards, as nanoGPT's
  ``data/openwebtext/prepare.py`` does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Result, best_of, default_build

_SP = None


def _encode_row(example: dict, model_path: str) -> dict:
    global _SP
    if _SP is None:
        import sentencepiece as spm

        _SP = spm.SentencePieceProcessor(model_file=model_path)
    ids = _SP.encode(example["text"])
    ids.append(_SP.eos_id())
    return {"ids": ids, "len": len(ids)}


def _nanogpt_style(texts: list[str], model_path: str, threads: int, out: Path) -> int:
    import datasets

    datasets.disable_progress_bars()
    ds = datasets.Dataset.from_dict({"text": texts})
    tokenized = ds.map(
        _encode_row,
        fn_kwargs={"model_path": model_path},
        remove_columns=["text"],
        num_proc=threads if threads > 1 else None,
    )
    total = int(np.sum(tokenized["len"], dtype=np.uint64))
    arr = np.memmap(out / "train.bin", dtype=np.uint16, mode="w+", shape=(total,))
    shards = min(64, len(tokenized))
    index = 0
    for i in range(shards):
        batch = tokenized.shard(num_shards=shards, index=i, contiguous=True).with_format("numpy")
        chunk = np.concatenate(batch["ids"])
        arr[index : index + len(chunk)] = chunk
        index += len(chunk)
    arr.flush()
    return total


def run(quick: bool = False) -> list[Result]:
    import sentencepiece as spm

    from corpuskit.encode import _split_batches, pack_split
    from corpuskit.tokenizers import load_tokenizer

    threads = os.cpu_count() or 1
    repeats = 2 if quick else 5
    work = Path(tempfile.mkdtemp(prefix="ck-bench-"))
    try:
        build = default_build(work / "data")
        clean_dir, tokens_dir = build.clean_dir, build.tokens_dir
        model_path = str(tokens_dir / "tokenizer.model")
        batches = [texts for texts, _ in _split_batches(clean_dir, "train")]
        texts = [t for batch in batches for t in batch]
        mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
        sp = spm.SentencePieceProcessor(model_file=model_path)
        tokenizer = load_tokenizer(tokens_dir)

        def raw() -> int:
            return sum(len(ids) for b in batches for ids in sp.encode(b, num_threads=threads))

        def ours() -> int:
            out = work / "ours"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            return pack_split(clean_dir, "train", tokenizer, out, threads=threads, progress=False)[
                "tokens"
            ]

        def nanogpt() -> int:
            out = work / "nanogpt"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            return _nanogpt_style(texts, model_path, threads, out)

        results = []
        for name, fn in [
            ("sentencepiece raw", raw),
            ("corpuskit pack_split", ours),
            ("nanoGPT-style datasets.map", nanogpt),
        ]:
            seconds, tokens = best_of(fn, repeats)
            results.append(
                Result(
                    "tokenize_pack", name, seconds, mb, "MB", {"tokens": tokens, "threads": threads}
                )
            )
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)
