"""Tokenizer specs, sentencepiece round trips and packed token files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpuskit.errors import CorpuskitError
from corpuskit.pack import PackWriter, dtype_for, open_split, write_meta
from corpuskit.tokenizers import ByteTokenizer, parse_spec, train_tokenizer

from .conftest import make_documents

CODE = '''def greet(name):\n    """Say hello."""\n\tif name:\n        return f"hi {name}"\n\n\n'''


@pytest.fixture(scope="module")
def spm_tokenizer():
    docs = make_documents(300, seed=1) + [CODE] * 5
    lines = (line for d in docs for line in d.split("\n") if line.strip())
    return train_tokenizer("spm-bpe:400", lines, seed=0, num_threads=1)


@pytest.mark.parametrize(
    ("spec", "kind", "vocab"),
    [("spm-bpe:4096", "spm", 4096), ("spm-unigram:8000", "spm", 8000), ("byte", "byte", 257)],
)
def test_parse_spec(spec: str, kind: str, vocab: int) -> None:
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.vocab_size) == (kind, vocab)


@pytest.mark.parametrize("spec", ["bpe", "spm-bpe:x", "spm-bpe:10", "missing/file.model"])
def test_bad_spec_is_a_clear_error(spec: str) -> None:
    with pytest.raises(CorpuskitError, match="tokenizer"):
        parse_spec(spec)


def test_sentencepiece_training_is_deterministic(spm_tokenizer) -> None:
    docs = make_documents(300, seed=1) + [CODE] * 5
    lines = (line for d in docs for line in d.split("\n") if line.strip())
    again = train_tokenizer("spm-bpe:400", lines, seed=0, num_threads=1)
    assert again.model_proto == spm_tokenizer.model_proto


def test_code_keeps_indentation_and_newlines(spm_tokenizer) -> None:
    ids = spm_tokenizer.encode(CODE)
    assert spm_tokenizer.decode(ids) == CODE
    assert spm_tokenizer.unk_id not in ids


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_sentencepiece_round_trip_is_exact(spm_tokenizer, text: str) -> None:
    # Byte fallback and identity normalization: any (cleaned) text decodes back byte for byte.
    text = text.replace("\r", "")
    assert spm_tokenizer.decode(spm_tokenizer.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=100))
def test_byte_round_trip(text: str) -> None:
    tok = ByteTokenizer()
    assert tok.decode(tok.encode(text)) == text


def test_dtype_choice() -> None:
    assert dtype_for(65536) == np.dtype("<u2")
    assert dtype_for(65537) == np.dtype("<u4")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 70000), max_size=20), max_size=30), st.integers(1, 7))
def test_pack_round_trip(tmp_path_factory, docs: list[list[int]], batch: int) -> None:
    # Whatever the batching, doc i is bin[idx[i]:idx[i+1]] followed by EOS; dtype is automatic.
    out: Path = tmp_path_factory.mktemp("pack")
    vocab = 70001
    dtype = dtype_for(vocab)
    writer = PackWriter(out, "train", dtype, eos_id=vocab - 1)
    for i in range(0, len(docs), batch):
        writer.add(docs[i : i + batch], text_bytes=1)
    counts = writer.close()
    write_meta(out, {"format_version": 1, "vocab_size": vocab, "dtype": dtype.name})
    assert counts["documents"] == len(docs)
    assert counts["tokens"] == sum(len(d) + 1 for d in docs)
    if not docs:
        return
    ids, idx = open_split(out, "train")
    assert len(idx) == len(docs) + 1 and idx[-1] == len(ids)
    for i, doc in enumerate(docs):
        assert ids[idx[i] : idx[i + 1]].tolist() == [*doc, vocab - 1]
