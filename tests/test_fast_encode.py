"""kitoken in place of sentencepiece's encoder: the same ids on every document, or not used.

The reference is ``SentencePieceProcessor.encode``. Whole builds are made twice, with
``encoder="auto"`` (kitoken) and ``encoder="sentencepiece"``, and every packed file must be the
same bytes; a property test draws texts from the characters where a word-by-word encoder could
drift; the models kitoken must not be trusted with (unigram, normalizing, pieces across a space),
a missing kitoken and a kitoken that disagrees all fall back to sentencepiece.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpuskit import api, fast_encode
from corpuskit.errors import CorpuskitError
from corpuskit.fast_encode import choose_encoder, ineligible, with_encoder
from corpuskit.tokenizers import SentencePieceTokenizer, train_tokenizer
from tests.conftest import SHARED_DATA, make_documents, run_main

kitoken = pytest.importorskip("kitoken", reason="kitoken (the fast extra) is not installed")

ALPHABET = (
    "abcdefghij ABC  \t\n0123456789.,;:!?-'\"()"
    "\u2581éèßüñçøÅ日本語中文한국어йцукенΩπ🙂🚀\u00a0\u2028\u200b\x1c<>/|_"
)


def _lines() -> list[str]:
    docs = make_documents(200, seed=3)
    extra = ["  indented  code\tline  ", "numbers 12345 67.89", "日本語のテキスト です", "ümlaut ß"]
    return [line for doc in docs for line in doc.split("\n") if line.strip()] + extra * 20


@pytest.fixture(scope="module")
def bpe() -> SentencePieceTokenizer:
    tok = train_tokenizer("spm-bpe:600", iter(_lines()))
    assert isinstance(tok, SentencePieceTokenizer)
    return tok


def _raw_spm(tmp_path: Path, **options: Any) -> SentencePieceTokenizer:
    """A sentencepiece model trained with other options than corpuskit's (a user's model)."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_lines()), model_writer=model, vocab_size=400,
        hard_vocab_limit=False, minloglevel=2, **options,
    )
    return SentencePieceTokenizer(model.getvalue(), "user.model")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=ALPHABET, max_size=200))
def test_same_ids_as_sentencepiece(bpe: SentencePieceTokenizer, text: str) -> None:
    fast = with_encoder(bpe, "kitoken")
    assert fast.encode_batch([text])[0] == bpe.encode(text)
    assert fast.encode_batch([text, text], num_threads=2) == [bpe.encode(text)] * 2


def test_corpuskit_bpe_is_eligible_and_chosen(bpe: SentencePieceTokenizer) -> None:
    assert ineligible(bpe) is None
    choice = choose_encoder(bpe, ["some sample text", "more  text\n"])
    assert choice.name == "kitoken"
    assert choice.record()["version"]


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"model_type": "unigram"}, "unigram"),
        ({"model_type": "bpe"}, "normalizes"),  # sentencepiece's default nmt_nfkc rules
        (
            {"model_type": "bpe", "normalization_rule_name": "identity",
             "add_dummy_prefix": False, "remove_extra_whitespaces": False,
             "split_by_whitespace": False},
            "following space",
        ),
    ],
)
def test_models_kitoken_is_not_trusted_with(tmp_path: Path, options: dict, why: str) -> None:
    tok = _raw_spm(tmp_path, **options)
    reason = ineligible(tok)
    assert reason is not None and why in reason
    choice = choose_encoder(tok, ["text"])
    assert choice.name == "sentencepiece" and why in choice.reason


def test_unigram_build_falls_back(bpe: SentencePieceTokenizer) -> None:
    tok = train_tokenizer("spm-unigram:600", iter(_lines()))
    assert choose_encoder(tok, []).name == "sentencepiece"
    assert choose_encoder(train_tokenizer("byte", iter([])), []).name == "byte"


def test_missing_kitoken_falls_back(bpe: SentencePieceTokenizer, monkeypatch) -> None:
    def missing(tok: Any) -> Any:
        raise ImportError("no kitoken")

    monkeypatch.setattr(fast_encode, "_kitoken", missing)
    choice = choose_encoder(bpe, ["text"])
    assert choice.name == "sentencepiece" and "corpuskit[fast]" in choice.reason
    assert with_encoder(bpe, "kitoken") is bpe  # a worker without kitoken: the reference


def test_disagreeing_kitoken_falls_back_loudly(
    bpe: SentencePieceTokenizer, monkeypatch, caplog
) -> None:
    class Wrong:
        def encode(self, text: str, specials: bool) -> list[int]:
            ids = bpe.encode(text)
            return ids[:-1] + [ids[-1] + 1] if "needle" in text else ids

    monkeypatch.setattr(fast_encode, "_kitoken", lambda tok: Wrong())
    with caplog.at_level(logging.WARNING):
        choice = choose_encoder(bpe, ["fine text", "a needle in the sample"])
    assert choice.name == "sentencepiece" and "needle" in choice.reason
    assert "differently from sentencepiece" in caplog.text


def test_sentencepiece_setting_and_bad_setting(bpe: SentencePieceTokenizer) -> None:
    assert choose_encoder(bpe, [], "sentencepiece").name == "sentencepiece"
    with pytest.raises(CorpuskitError, match="unknown encoder 'fast'"):
        choose_encoder(bpe, [], "fast")


# --------------------------------------------------------------------------- whole builds


def _catalog(tmp_path: Path, name: str, texts: list[str], domains: str = "[prose]") -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    for i, text in enumerate(texts):
        (folder / f"{i:05d}.txt").write_text(text, encoding="utf-8")
    catalog = tmp_path / "c.yaml"
    catalog.write_text(
        f"corpora:\n  - name: {name}\n    title: t\n    description: d\n    license: MIT\n"
        f"    languages: [en]\n    domains: {domains}\n"
        f"    source: {{type: local, kind: files, path: '{folder}', globs: ['*.txt']}}\n",
        encoding="utf-8",
    )
    return catalog


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.suffix in (".bin", ".idx")
    }


def _both_ways(tmp_path: Path, texts: list[str], **config: Any) -> dict[str, Any]:
    catalog = _catalog(tmp_path, "fastenc", texts)
    common = dict(data_dir=tmp_path / "data", catalog=[catalog], progress=False, force=True,
                  val_fraction=0.1, **config)
    fast = api.build("fastenc", encoder="auto", **common)
    fast_files = _digests(fast.tokens_dir)
    ref = api.build("fastenc", encoder="sentencepiece", **common)
    assert fast.tokens_dir == ref.tokens_dir  # the encoder is not part of the identity
    assert fast.meta["encoder"]["name"] == "kitoken", fast.meta["encoder"]
    assert ref.meta["encoder"]["name"] == "sentencepiece"
    assert fast_files == _digests(ref.tokens_dir)
    assert fast.meta["splits"] == ref.meta["splits"]
    return fast.meta


@pytest.mark.parametrize("workers", [1, 2])
def test_generated_build_identical(tmp_path: Path, workers: int) -> None:
    docs = make_documents(400, seed=11)
    docs += ["  lead and trail  ", "tabs\tand\t\tmore", "\u2581literal\u2581 marks", "1 2 3 4 5"]
    meta = _both_ways(tmp_path, docs, tokenizer="spm-bpe:800", workers=workers, bos=True)
    assert meta["splits"]["train"]["tokens"] > 10_000


def _shared_texts(*parts: str, limit: int = 400) -> list[str]:
    import json

    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared/data holds the real samples)")
    texts = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if len(texts) >= limit:
                break
    return texts


def test_real_multilingual_web_text_identical(tmp_path: Path) -> None:
    """OSCAR 2019: the first documents of 166 languages (every script, byte fallback)."""
    texts = _shared_texts("oscar-2019-sample", "oscar2019_dedup_first_docs.jsonl", limit=1000)
    _both_ways(tmp_path, texts, tokenizer="spm-bpe:4000", workers=2)


def test_cli_encoder_option(tmp_path: Path, capsys) -> None:
    catalog = _catalog(tmp_path, "fastenc", make_documents(60, seed=2))
    code, out, err = run_main(
        capsys, "--data-dir", str(tmp_path / "data"), "--catalog", str(catalog), "-q", "build",
        "fastenc", "--tokenizer", "spm-bpe:300", "--encoder", "sentencepiece",
    )
    assert code == 0, err
    code, out, err = run_main(
        capsys, "--data-dir", str(tmp_path / "data"), "--catalog", str(catalog), "-q", "build",
        "fastenc", "--set", "encoder=rust",
    )
    assert code != 0 and "unknown encoder 'rust'" in err and "Traceback" not in err
