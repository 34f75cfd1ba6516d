"""Sentencepiece sees at most ``sentence_budget_bytes`` of train text, sampled by line hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpuskit import api, tokenizer_training
from corpuskit.encode import spm_sample_fraction
from corpuskit.tokenizer_training import TrainingSample, train_lines, train_on_sample
from corpuskit.tokenizers import parse_spec


def test_sample_fraction_only_for_sentencepiece_and_only_when_over_budget() -> None:
    manifest = {"splits": {"train": {"bytes": 1_000}, "val": {"bytes": 50}}}
    spm = parse_spec("spm-bpe:300")
    assert spm_sample_fraction(spm, manifest, 4_000) == 1.0
    assert spm_sample_fraction(spm, manifest, 250) == 0.25
    assert spm_sample_fraction(spm, manifest, 0) == 1.0  # 0 turns the byte budget off
    # A word vocabulary must see every line (its size is part of the published setup).
    assert spm_sample_fraction(parse_spec("word"), manifest, 250) == 1.0
    assert spm_sample_fraction(parse_spec("byte"), manifest, 250) == 1.0


def test_small_budget_samples_lines_deterministically(
    data_dir: Path, tiny_corpus: str
) -> None:
    full = api.build(tiny_corpus, progress=False, tokenizer="spm-bpe:300", workers=1)
    lines = list(train_lines(full.clean_dir))
    half = list(train_lines(full.clean_dir, 0.5, seed=0))
    assert half == list(train_lines(full.clean_dir, 0.5, seed=0))
    assert set(half) <= set(lines) and 0.35 * len(lines) < len(half) < 0.65 * len(lines)

    # The default budget is far above this corpus: the tokenizer and its fingerprint do not
    # change; a budget below the train bytes samples, and names the sample in the fingerprint.
    train_bytes = full.clean_manifest["splits"]["train"]["bytes"]
    same = api.build(tiny_corpus, progress=False, tokenizer="spm-bpe:300", workers=1,
                     sentence_budget_bytes=train_bytes)
    assert same.tokens_dir == full.tokens_dir and same.tokens_skipped
    sampled = api.build(tiny_corpus, progress=False, tokenizer="spm-bpe:300", workers=1,
                        sentence_budget_bytes=train_bytes // 2)
    assert sampled.tokens_dir != full.tokens_dir
    meta = sampled.meta
    assert meta["splits"]["train"]["documents"] == full.meta["splits"]["train"]["documents"]


def test_a_large_sample_trains_in_its_own_process_to_the_same_model(
    data_dir: Path, tiny_corpus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over ``ISOLATE_BYTES`` sentencepiece trains in a spawned process (its memory peak is
    not the driver's): the model bytes are the ones this process trains, and so is the build."""
    import os

    from corpuskit.executors import local

    full = api.build(tiny_corpus, progress=False, tokenizer="spm-bpe:300", workers=1)
    sample = TrainingSample(((str(full.clean_dir), 1.0),), 0, 10**9)
    calls: list[int] = []
    real = local.call_isolated

    def watched(fn, item, *, desc):  # noqa: ANN001, ANN202 - a spy on the real call
        calls.append(os.getpid())
        return real(fn, item, desc=desc)

    monkeypatch.setattr(local, "call_isolated", watched)
    isolated = train_on_sample("spm-bpe:300", sample, sentence_budget=1_000_000)
    assert calls, "a sample over ISOLATE_BYTES must train in its own process"
    monkeypatch.setattr(tokenizer_training, "ISOLATE_BYTES", 2**62)
    here = train_on_sample("spm-bpe:300", sample, sentence_budget=1_000_000)
    assert len(calls) == 1
    assert isolated.model_proto == here.model_proto

    monkeypatch.setattr(tokenizer_training, "ISOLATE_BYTES", 0)
    rebuilt = api.build(tiny_corpus, progress=False, tokenizer="spm-bpe:300", workers=1,
                        force=True)
    assert len(calls) == 2
    for name in ("train.bin", "val.bin", "tokenizer.model"):
        assert (rebuilt.tokens_dir / name).read_bytes() == (full.tokens_dir / name).read_bytes()
