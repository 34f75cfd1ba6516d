"""Tokenize-and-pack throughput: corpuskit vs raw sentencepiece vs nanoGPT-style preparation.

All three encode the same cleaned train split with the same sentencepiece model and the same
number of threads/processes:

- ``sentencepiece raw``: ``SentencePieceProcessor.encode(batch, num_threads=T)`` on texts already
  in memory, nothing written: the ceiling for this tokenizer;
- ``corpuskit pack_split``: reads the Arrow shards, encodes, writes ``train.bin``/``train.idx``;
- ``nanoGPT-style``: ``datasets.Dataset.map(num_proc=T)`` encoding each document and appending
  EOS, then the lengths summed and the ids written into an ``np.memmap`` in shards, as nanoGPT's
  ``data/openwebtext/prepare.py`` does.

``per_core`` (``python -m benchmarks.tokenize_pack --scaled-mb 40``) is the single-thread
contest of issue #18, on the scaled web corpus with ``spm-bpe:8000`` as the build trains it:
raw ``SentencePieceProcessor.encode`` on texts in memory (the reference), corpuskit's
``pack_split`` with kitoken and with sentencepiece (Arrow shards in, ``.bin``/``.idx`` out), and
the Hugging Face ``tokenizers`` conversion of the same model (``tokenizer.json``). Contenders
alternate, ``repeats`` rounds, medians reported; the packed files of both corpuskit paths must be
the same bytes, and the raw ids must equal the packed ones.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _scaled_build(work: Path, megabytes: float) -> Any:
    from benchmarks.throughput import make_corpus, write_catalog
    from corpuskit import api

    make_corpus(work / "texts", megabytes)
    catalog = write_catalog(work / "scaled.yaml", work / "texts")
    return api.build("scaled", data_dir=work / "data", catalog=[catalog], progress=False,
                     tokenizer="spm-bpe:8000", dedup=False, val_fraction=0.01)


def per_core(megabytes: float = 40, repeats: int = 5) -> list[Result]:
    """Single-thread tokenize+pack against single-thread raw sentencepiece, same text."""
    import statistics
    import time

    from tokenizers import Tokenizer as HFTok

    from corpuskit.encode import _split_batches, pack_split
    from corpuskit.fast_encode import with_encoder
    from corpuskit.tokenizers import load_tokenizer

    # One thread for Hugging Face tokenizers too (read when its pool starts).
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    work = Path(tempfile.mkdtemp(prefix="ck-bench-"))
    try:
        build = _scaled_build(work, megabytes)
        clean_dir, tokens_dir = build.clean_dir, build.tokens_dir
        # The raw contender gets the texts in memory, in the packer's own batches (<= 2 MiB).
        batches = [batch for batch, _ in _split_batches(clean_dir, "train")]
        texts = [t for batch in batches for t in batch]
        mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
        reference = load_tokenizer(tokens_dir)
        fast = with_encoder(reference, "kitoken")
        hf = HFTok.from_file(str(tokens_dir / "tokenizer.json"))
        hf.encode_special_tokens = True

        def packer(tok: Any, name: str) -> Callable[[], int]:
            def run_it() -> int:
                out = work / name
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                return pack_split(clean_dir, "train", tok, out, threads=1, progress=False)[
                    "tokens"
                ]
            return run_it

        contenders: dict[str, Callable[[], Any]] = {
            "sentencepiece raw encode, 1 thread": lambda: [
                ids for batch in batches for ids in reference.encode_batch(batch)
            ],
            "corpuskit pack_split, kitoken, 1 thread": packer(fast, "kitoken"),
            "corpuskit pack_split, sentencepiece, 1 thread": packer(reference, "spm"),
            "tokenizers (HF) encode_batch_fast, 1 thread": lambda: [
                e.ids for e in hf.encode_batch_fast(texts, add_special_tokens=False)
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        outputs: dict[str, Any] = {}
        for _ in range(repeats):
            for name, fn in contenders.items():
                start = time.perf_counter()
                outputs[name] = fn()
                times[name].append(time.perf_counter() - start)
        same = (work / "kitoken" / "train.bin").read_bytes() == (
            work / "spm" / "train.bin"
        ).read_bytes()
        raw_ids = outputs["sentencepiece raw encode, 1 thread"]
        packed = np.fromfile(work / "kitoken" / "train.bin", dtype=np.uint16)
        flat = np.concatenate([np.asarray(ids + [reference.eos_id], np.uint16) for ids in raw_ids])
        hf_same = outputs["tokenizers (HF) encode_batch_fast, 1 thread"] == raw_ids
        return [
            Result(
                "tokenize_pack_per_core", name, statistics.median(ts), mb, "MB",
                {"runs": [round(t, 3) for t in ts], "documents": len(texts),
                 "packed_identical": same, "raw_equals_packed": bool(np.array_equal(flat, packed)),
                 "hf_ids_equal": hf_same, "threads": 1},
            )
            for name, ts in times.items()
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
        return results + per_core(20 if quick else 40, 3 if quick else 5)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="single-thread tokenize+pack contest")
    parser.add_argument("--scaled-mb", type=float, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for r in per_core(args.scaled_mb, args.repeats):
        print(json.dumps({"contender": r.contender, "median_s": round(r.seconds, 3),
                          "mb_per_s": round(r.rate, 2), **r.extra}))


if __name__ == "__main__":
    main()
