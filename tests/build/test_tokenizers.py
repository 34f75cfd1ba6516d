"""Tokenizer specs, sentencepiece round trips and packed token files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpuskit.errors import CorpuskitError
from corpuskit.pack import PackWriter, dtype_for, open_split, write_meta
from corpuskit.tokenizers import ByteTokenizer, parse_spec, train_tokenizer
from tests.conftest import make_documents

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


def test_word_tokenizer_counts_one_eos_per_line() -> None:
    from corpuskit.tokenizers import train_vocab

    tok = train_vocab(parse_spec("word"), iter(["a b a", "c <unk> a"]))
    assert tok.vocab[:3] == ["<unk>", "<eos>", "a"]
    ids = tok.encode("a b\nzzz a")
    assert ids == [2, tok.vocab.index("b"), 1, 0, 2]
    assert tok.decode(ids) == "a b\n<unk> a"
    capped = train_vocab(parse_spec("word:3"), iter(["a b a"]))
    assert capped.vocab == ["<unk>", "<eos>", "a"] and capped.encode("b") == [0]


def test_wikitext2_valid_word_level_token_count(tmp_path: Path) -> None:
    from corpuskit.tokenizers import train_vocab
    from tests.conftest import needs_shared

    path = needs_shared("wikitext-2", "wiki.valid.tokens")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1]
    assert len(lines) == 3760
    tok = train_vocab(parse_spec("word"), iter(lines))
    writer = PackWriter(tmp_path, "val", dtype_for(tok.vocab_size), tok.eos_id)
    writer.add([tok.encode("\n".join(lines))], text_bytes=len(text.encode()))
    counts = writer.close()
    # The published WikiText-2 validation size: whitespace words plus one <eos> per line.
    assert counts["tokens"] == 217_646
    ids, _ = open_split_after_meta(tmp_path, tok.vocab_size)
    assert int((ids == tok.unk_id).sum()) == text.split().count("<unk>")


def open_split_after_meta(directory: Path, vocab: int):
    write_meta(directory, {"format_version": 1, "vocab_size": vocab,
                           "dtype": dtype_for(vocab).name})
    return open_split(directory, "val")


def test_char_tokenizer_round_trip() -> None:
    from corpuskit.tokenizers import train_vocab

    tok = train_vocab(parse_spec("char"), iter(["hello world", "abc"]))
    assert tok.decode(tok.encode("hello\nworld")) == "hello\nworld"
    assert tok.encode("q") == [tok.unk_id]


def test_hf_tokenizer_json(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from corpuskit.tokenizers import load_tokenizer

    hf = Tokenizer(models.BPE(unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    hf.train_from_iterator(make_documents(50), trainer=trainer)
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    tok = train_tokenizer(f"hf:{path}", iter([]))
    assert tok.eos_id == hf.token_to_id("</s>")
    batch = tok.encode_batch(["the river", "a stone"])
    assert batch[0] == tok.encode("the river")
    out = tmp_path / "build"
    out.mkdir()
    info = tok.save(out)
    (out / "meta.json").write_text(json.dumps({"tokenizer": info}))
    assert load_tokenizer(out).encode("the river") == batch[0]
    with pytest.raises(CorpuskitError, match="does not exist"):
        parse_spec("hf:/no/such/tokenizer.json")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(3, 500), max_size=10), min_size=1, max_size=10))
def test_pack_with_bos(tmp_path_factory, docs: list[list[int]]) -> None:
    out: Path = tmp_path_factory.mktemp("bos")
    writer = PackWriter(out, "train", dtype_for(501), eos_id=1, bos_id=2)
    writer.add(docs, text_bytes=0)
    writer.close()
    write_meta(out, {"format_version": 1, "vocab_size": 501, "dtype": "uint16"})
    ids, idx = open_split(out, "train")
    for i, doc in enumerate(docs):
        assert ids[idx[i] : idx[i + 1]].tolist() == [2, *doc, 1]


def test_build_with_bos(data_dir: Path, tiny_corpus: str) -> None:
    from corpuskit import api

    result = api.build(tiny_corpus, bos=True, progress=False)
    meta = result.meta
    assert meta["bos"] is True and meta["bos_id"] is not None
    ids, idx = open_split(result.tokens_dir, "val")
    assert (ids[idx[:-1]] == meta["bos_id"]).all()
    assert (ids[idx[1:] - 1] == meta["eos_id"]).all()
    with pytest.raises(CorpuskitError, match="BOS"):
        api.build(tiny_corpus, bos=True, tokenizer="byte", progress=False)
