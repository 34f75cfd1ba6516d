"""Every token build ships tokenizer.json & co.: AutoTokenizer gives the packed ids, document by
document, over whole builds (generated prose with literal special-token strings, Python sources,
a word-level and a char-level build, a byte build, an ``hf:`` build)."""

from __future__ import annotations

import json
import logging
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from corpuskit import api
from corpuskit.errors import CorpuskitError
from corpuskit.hf_tokenizer import HF_FILES, write_hf_tokenizer
from corpuskit.pack import open_split, read_meta
from corpuskit.paths import clean_root
from corpuskit.shards import read_batches, shard_paths
from corpuskit.tokenizers import train_tokenizer
from tests.conftest import make_documents


def tf():  # noqa: ANN201 - transformers, or skip (the meta.pkl test needs none)
    return pytest.importorskip("transformers", reason="needs the hf extra (transformers)")


TRAPS = [
    "A literal <s> starts here and </s> ends there, <unk> is unknown and <eos> ends a line.",
    "<s></s><unk><eos><|endoftext|><0x41> glued together\n\n\nthree blank lines",
    "Tabs\tand   runs of   spaces\n    indented\n\tand a tab\n",
    "Unicode: caf\u00e9 \u00df \u65e5\u672c\u8a9e \U0001f642 and a form feed \x0c and \x1c sep\r\n",
    "digits 0123456789 3.14159 and 1e-5\n",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def files_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                 docs: list[str], suffix: str = ".txt") -> str:
    """A local 'files' corpus of ``docs`` with its own catalog (as tests/conftest's tiny)."""
    folder = tmp_path / f"{name}-files"
    folder.mkdir()
    for i, text in enumerate(docs):
        (folder / f"doc{i:04d}{suffix}").write_text(text, encoding="utf-8", newline="")
    catalog = tmp_path / f"{name}.yaml"
    catalog.write_text(
        f"""corpora:
  - name: {name}
    title: Generated
    description: Generated test documents.
    license: CC0-1.0
    languages: [en]
    domains: [prose]
    source: {{type: local, kind: files, path: "{folder}", globs: ["*{suffix}"]}}
    recipe: {{tokenizer: "byte", val_fraction: 0.2}}
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("CORPUSKIT_CATALOG", str(catalog))
    return name


def split_texts(build_dir: Path, root: Path, split: str) -> list[str]:
    """The cleaned documents of ``split`` in packing order."""
    meta = read_meta(build_dir)
    clean = clean_root(root, meta["corpus"]) / meta["clean_fingerprint"]
    texts: list[str] = []
    for path in shard_paths(clean):
        for batch in read_batches(path, ["text", "split"]):
            rows = zip(batch.column("text").to_pylist(), batch.column("split").to_pylist(),
                       strict=True)
            texts += [t for t, s in rows if s == split]
    return texts


def assert_build_matches(build_dir: Path, root: Path) -> int:
    """AutoTokenizer and PreTrainedTokenizerFast on every document of every split equal the
    packed ids; returns how many documents were compared."""
    for name in HF_FILES:
        assert (build_dir / name).is_file(), name
    auto = tf().AutoTokenizer.from_pretrained(str(build_dir))
    fast = tf().PreTrainedTokenizerFast.from_pretrained(str(build_dir))
    meta = read_meta(build_dir)
    eos, bos = meta["eos_id"], meta["bos_id"] if meta["bos"] else None
    assert auto.eos_token_id == eos and auto.pad_token_id == eos
    assert auto.unk_token_id == meta["unk_id"]
    if meta["bos_id"] is not None:
        assert auto.bos_token_id == meta["bos_id"]
    compared = 0
    for split in meta["splits"]:
        texts = split_texts(build_dir, root, split)
        ids, idx = open_split(build_dir, split)
        assert len(texts) == len(idx) - 1
        for tok in (auto, fast):
            got = tok(texts)["input_ids"]
            plain = tok(texts, add_special_tokens=False)["input_ids"]
            for i, (row, raw) in enumerate(zip(got, plain, strict=True)):
                packed = ids[int(idx[i]) : int(idx[i + 1])].tolist()
                assert row + [eos] == packed, (split, i, texts[i][:80])
                assert raw == packed[(1 if bos is not None else 0) : -1]
                compared += 1
    return compared


@pytest.mark.parametrize(
    ("spec", "bos"),
    [("spm-bpe:400", True), ("spm-bpe:500", False), ("word", False), ("char", False),
     ("byte", False)],
)
def test_build_tokenizer_files_give_the_packed_ids(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, spec: str, bos: bool
) -> None:
    docs = make_documents(120, seed=3)
    docs[: len(TRAPS)] = [t + "\n" + d for t, d in zip(TRAPS, docs, strict=False)]
    docs += [f"{t} {i}" for i, t in enumerate(TRAPS)]  # some land in val and test
    name = files_corpus(tmp_path, monkeypatch, "hfgen", docs)
    result = api.build(name, tokenizer=spec, bos=bos, dedup=False, progress=False)
    assert assert_build_matches(result.tokens_dir, data_dir) >= 2 * len(docs)


def test_python_sources_build(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real Python (a slice of this interpreter's standard library): indentation runs, tabs,
    string literals with ``<s>``-like text; spm-bpe as the python-stdlib recipe uses."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))[:80]
    if len(files) < 20:
        pytest.skip(f"no standard-library sources under {stdlib}")
    docs = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    name = files_corpus(tmp_path, monkeypatch, "hfpy", docs + TRAPS, suffix=".py")
    result = api.build(name, tokenizer="spm-bpe:1200", dedup=False, progress=False)
    assert assert_build_matches(result.tokens_dir, data_dir) >= 2 * len(docs)


def test_hf_tokenizer_build_keeps_its_file(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``hf:`` build's tokenizer.json is the user's file, byte for byte; the config names
    its end token, and AutoTokenizer gives the packed ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.train_from_iterator(
        make_documents(50), trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    )
    path = tmp_path / "own-tokenizer.json"
    backend.save(str(path))
    name = files_corpus(tmp_path, monkeypatch, "hfown", make_documents(60, seed=5) + TRAPS)
    result = api.build(name, tokenizer=f"hf:{path}", dedup=False, progress=False)
    assert (result.tokens_dir / "tokenizer.json").read_bytes() == path.read_bytes()
    config = json.loads((result.tokens_dir / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|endoftext|>" and config["split_special_tokens"] is False
    assert assert_build_matches(result.tokens_dir, data_dir) > 0


def test_unigram_conversion_is_marked_inexact(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A unigram model's ties can break apart (float32 vs float64 sums): said, and recorded."""
    lines = [line for d in make_documents(200) for line in d.split("\n")]
    tok = train_tokenizer("spm-unigram:300", iter(lines))
    with caplog.at_level(logging.WARNING, logger="corpuskit.hf_tokenizer"):
        assert write_hf_tokenizer(tok, tmp_path) == list(HF_FILES)
    assert "use spm-bpe:N for an exact hand-off" in caplog.text
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["corpuskit"]["exact"] is False
    hf = tf().AutoTokenizer.from_pretrained(str(tmp_path))
    for text in make_documents(40, seed=9) + TRAPS:
        assert hf(text, add_special_tokens=False)["input_ids"] == tok.encode(text)


def test_a_drifting_conversion_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The probe check: a conversion that encodes differently ships no file (warning), or is a
    one-line error when strict."""
    import corpuskit.hf_tokenizer as hft

    tok = load_tokenizer_for("word", make_documents(30))
    real = hft._vocab_backend

    def broken(t):  # noqa: ANN001, ANN202 - a stand-in that forgets line ends
        from tokenizers import normalizers

        backend = real(t)
        backend.normalizer = normalizers.Replace("\n", " ")
        return backend

    monkeypatch.setattr(hft, "_vocab_backend", broken)
    with caplog.at_level(logging.WARNING, logger="corpuskit.hf_tokenizer"):
        assert write_hf_tokenizer(tok, tmp_path) == []
    assert "encodes" in caplog.text and not any(tmp_path.iterdir())
    with pytest.raises(CorpuskitError, match="Hugging Face conversion encodes"):
        write_hf_tokenizer(tok, tmp_path, strict=True)


def load_tokenizer_for(spec: str, docs: list[str]):  # noqa: ANN201
    return train_tokenizer(spec, iter(line for d in docs for line in d.split("\n")))


def test_word_level_wikitext_validation(tmp_path: Path) -> None:
    """The real WikiText-2 validation text, word level: every article's ids as packed would be."""
    from tests.conftest import needs_shared

    valid = needs_shared("wikitext-2", "wiki.valid.tokens").read_text(encoding="utf-8")
    tok = load_tokenizer_for("word", [valid])
    write_hf_tokenizer(tok, tmp_path, strict=True)
    hf = tf().AutoTokenizer.from_pretrained(str(tmp_path))
    articles = valid.split("\n = ")
    assert len(articles) > 50
    for text in articles:
        assert hf(text)["input_ids"] == tok.encode(text)
    assert np.array_equal(hf(valid)["input_ids"], tok.encode(valid))


@pytest.mark.parametrize(("dtype", "written"), [("uint16", True), ("uint32", False)])
def test_nanogpt_meta_pkl_only_for_uint16(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, dtype: str, written: bool
) -> None:
    """nanoGPT's train.py memory-maps uint16 whatever meta.pkl says: a uint32 build gets no
    meta.pkl (and a warning saying why) rather than one that leads to training on garbage."""
    import pickle

    from corpuskit.pack import write_meta

    vocab = 1000 if dtype == "uint16" else 70_000
    with caplog.at_level(logging.WARNING, logger="corpuskit.pack"):
        write_meta(tmp_path, {"format_version": 1, "vocab_size": vocab, "dtype": dtype})
    assert (tmp_path / "meta.json").is_file()
    assert (tmp_path / "meta.pkl").is_file() is written
    if written:
        assert pickle.loads((tmp_path / "meta.pkl").read_bytes()) == {"vocab_size": vocab}
        assert "meta.pkl" not in caplog.text
    else:
        assert "no meta.pkl for nanoGPT" in caplog.text and "uint32" in caplog.text


def test_hf_tokenizer_unknown_token_at_id_zero(tmp_path: Path) -> None:
    """``<unk>`` at id 0 is the unknown id (it used to read as none: 0 is falsy), so
    tokenizer_config.json and meta.json name it."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from corpuskit.tokenizers import HFTokenizer

    backend = Tokenizer(models.WordLevel({"<unk>": 0, "</s>": 1, "a": 2}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = HFTokenizer(backend.to_str().encode(), "hf:test")
    assert (tok.unk_id, tok.eos_id) == (0, 1)
    tok.save(tmp_path)
    write_hf_tokenizer(tok, tmp_path, strict=True)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["unk_token"] == "<unk>" and config["eos_token"] == "</s>"
    hf = tf().AutoTokenizer.from_pretrained(str(tmp_path))
    assert hf("a b", add_special_tokens=False)["input_ids"] == tok.encode("a b") == [2, 0]
