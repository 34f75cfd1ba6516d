"""A faster encoder with sentencepiece's ids: kitoken (Rust) where it is exact, sentencepiece
itself everywhere else.

sentencepiece stays the reference: a build's ids are, by contract, what
``SentencePieceProcessor.encode`` gives. kitoken reads the same model file and encodes about
2-2.5 times faster on one core (BENCHMARKS.md), because it merges word by word, with a cache,
where sentencepiece merges over the whole text. The two give the same ids exactly when:

* the model is **BPE**. For unigram models kitoken's Viterbi search, like Hugging Face's, may
  break an exact tie between two segmentations differently (sentencepiece adds float32 scores),
  so unigram models keep sentencepiece;
* the model has **no normalization** of its own (the identity rule, no dummy prefix, no
  whitespace squeezing): what corpuskit trains. A user's ``.model`` with ``nmt_nfkc`` rules keeps
  sentencepiece, whose normalizer is the reference;
* **no piece joins a character to a following "▁"** (other than inside a run of "▁"): kitoken
  cuts the text before each run of spaces and merges each part alone, which gives
  sentencepiece's whole-text merges only when no piece could cross such a cut. corpuskit trains
  with sentencepiece's default word splitting, so none does; a model trained with
  ``split_by_whitespace=false`` keeps sentencepiece.

An eligible model is then checked, once per build, on probe strings and on the first megabyte
of the train split: any differing id and the build uses sentencepiece, with a warning. What was
used is recorded in the build's ``meta.json`` (``encoder``). ``encoder: sentencepiece`` (``build
--encoder sentencepiece``) always uses the reference. kitoken is optional (the ``fast`` extra);
without it every build uses sentencepiece, with the same ids.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from corpuskit.errors import CorpuskitError
from corpuskit.tokenizers import SentencePieceTokenizer, Tokenizer

log = logging.getLogger(__name__)

ENCODERS = ("auto", "sentencepiece")
FAST_EXTRA_HINT = "pip install 'corpuskit[fast]'"
# Strings where a word-by-word encoder could drift from whole-text merging: runs of spaces,
# a literal "▁" (the same symbol as a space after normalization), tabs and newlines (atomic
# pieces), digits (split one by one), characters outside the vocabulary (byte fallback).
PROBES = (
    "",
    " ",
    "   ",
    "a",
    "hello world",
    "  two  spaces,   three   and\ttabs\t\tand\n\nnewlines \n x",
    "a\u2581b \u2581\u2581c\u2581 \u2581",
    "numbers 3.14159 and 2026-12-03 and 1,000,000",
    "literal <s> </s> <unk> <pad> <|endoftext|> <0x41>",
    "unicode é ß 日本語 🙂 \u2028 \x1c \u00a0 end",
    "def f(x):\n    return x  # indented\n\t\tdone",
)


@dataclass(frozen=True)
class EncoderChoice:
    """Which encoder a build's packer uses, and why (recorded in ``meta.json``)."""

    name: str  # "kitoken", or the tokenizer's own ("sentencepiece", "hf", ...)
    reason: str

    def record(self) -> dict[str, Any]:
        out = {"name": self.name, "reason": self.reason}
        if self.name == "kitoken":
            from importlib.metadata import version

            out["version"] = version("kitoken")
        return out


def check_setting(value: str) -> str:
    if value not in ENCODERS:
        raise CorpuskitError(
            f"unknown encoder {value!r}; use one of {', '.join(ENCODERS)} "
            "(auto: kitoken where it gives sentencepiece's ids, else sentencepiece)"
        )
    return value


def ineligible(tok: Tokenizer) -> str | None:
    """Why kitoken cannot be trusted to give ``tok``'s ids (None: it can, subject to checks)."""
    if not isinstance(tok, SentencePieceTokenizer):
        return "not a sentencepiece model"
    from corpuskit.hf_tokenizer import _sp_proto

    proto = _sp_proto(tok)
    if proto.model_type != 2:
        return "a unigram model: exact score ties may be broken differently"
    spec = proto.normalizer_spec
    if spec.precompiled_charsmap or spec.add_dummy_prefix or spec.remove_extra_whitespaces:
        return "the model normalizes text itself (sentencepiece's normalizer is the reference)"
    crossing = next((p.piece for p in proto.pieces if _crosses_space(p.piece)), None)
    if crossing is not None:
        return f"piece {crossing!r} joins a character to a following space"
    return None


def _crosses_space(piece: str) -> bool:
    """True when ``piece`` has a non-"▁" character followed by "▁" (a word boundary)."""
    return any(a != "\u2581" and b == "\u2581" for a, b in zip(piece, piece[1:], strict=False))


def _kitoken(tok: SentencePieceTokenizer) -> Any:
    import kitoken

    return kitoken.Kitoken.from_sentencepiece(tok.model_proto)


def choose_encoder(tok: Tokenizer, sample: Iterable[str], setting: str = "auto") -> EncoderChoice:
    """kitoken when ``setting`` allows it, the model is eligible, kitoken is installed and it
    agrees with ``tok`` on every id of the probes and of ``sample``; otherwise ``tok`` itself."""
    own = _own_name(tok)
    if check_setting(setting) == "sentencepiece":
        return EncoderChoice(own, "encoder: sentencepiece was asked for")
    why = ineligible(tok)
    if why is not None:
        return EncoderChoice(own, why)
    try:
        fast = _kitoken(tok)  # type: ignore[arg-type]
    except ImportError:
        return EncoderChoice(own, f"kitoken is not installed ({FAST_EXTRA_HINT})")
    checked = 0
    for text in (*PROBES, *sample):
        if fast.encode(text, False) != tok.encode(text):
            log.warning(
                "tokenizer %r: kitoken encodes %r differently from sentencepiece; encoding "
                "with sentencepiece (same ids, slower)",
                getattr(tok, "spec", own),
                text[:60],
            )
            return EncoderChoice(own, f"kitoken disagreed on {text[:60]!r}")
        checked += 1
    return EncoderChoice("kitoken", f"BPE without normalization; same ids on {checked} texts")


def _own_name(tok: Tokenizer) -> str:
    """The tokenizer's own encoder: "sentencepiece", "hf", "byte", "vocab"."""
    if isinstance(tok, SentencePieceTokenizer):
        return "sentencepiece"
    return tok.__class__.__name__.removesuffix("Tokenizer").lower()


class KitokenEncoder:
    """``tok`` with its ``encode_batch`` done by kitoken (everything else is ``tok``'s)."""

    def __init__(self, tok: SentencePieceTokenizer):
        self._tok = tok
        self._fast = _kitoken(tok)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tok, name)

    def encode(self, text: str) -> list[int]:
        return list(self._fast.encode(text, False))

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        fast = self._fast
        if num_threads > 1:
            return list(fast.encode_all(texts, False))
        return [fast.encode(text, False) for text in texts]


def with_encoder(tok: Tokenizer, name: str) -> Tokenizer:
    """``tok`` encoding with the encoder a build chose (kitoken missing here: ``tok`` itself,
    whose ids are the reference anyway)."""
    if name != "kitoken" or not isinstance(tok, SentencePieceTokenizer):
        return tok
    try:
        return KitokenEncoder(tok)  # type: ignore[return-value]
    except ImportError:
        return tok
