"""Sentencepiece sees at most ``sentence_budget_bytes`` of train text, sampled by line hash."""

from __future__ import annotations

from pathlib import Path

from corpuskit import api
from corpuskit.encode import _train_lines, spm_sample_fraction
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
    lines = list(_train_lines(full.clean_dir))
    half = list(_train_lines(full.clean_dir, 0.5, seed=0))
    assert half == list(_train_lines(full.clean_dir, 0.5, seed=0))
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
