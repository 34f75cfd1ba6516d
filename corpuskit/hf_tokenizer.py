"""Every corpuskit tokenizer as Hugging Face files: ``tokenizer.json``, ``tokenizer_config.json``
and ``special_tokens_map.json``, so that ``AutoTokenizer.from_pretrained(folder)`` gives the ids
the packer wrote.

The contract, for every backend: ``tok(text, add_special_tokens=False).input_ids`` is the
document's ids as packed, without the end-of-document id the packer appends; with the default
``add_special_tokens=True`` a build made with ``--bos`` also gets its BOS in front, as packed.
A literal ``<s>``, ``</s>``, ``<unk>`` or ``<eos>`` in the text is text (``split_special_tokens``
is set), exactly as corpuskit's own tokenizers treat it, except for an ``hf:`` tokenizer, whose
own file decides (it is copied unchanged).

How each backend is mapped, and why it is exact:

* sentencepiece BPE: the vocabulary and merges (every split of a piece into two pieces, ranked by
  the piece's score, which is sentencepiece's merge priority), byte fallback, ``" " -> "▁"`` as
  the only normalization (the identity rule), no pre-tokenizer (sentencepiece merges across the
  whole text too), and the user-defined symbols (newline, tab) as added tokens: atomic in both.
* sentencepiece unigram: the pieces and scores; control and byte pieces get a score so low that
  the Viterbi search never picks them for literal text (sentencepiece never matches them at all),
  and text is cut at characters that no piece contains, where sentencepiece's lattice has a
  forced boundary anyway, so the unknown-character penalty never competes with a piece.
* word: ``" <eos> "`` for every line end, one final newline dropped, whitespace splitting with
  Python's ``str.split`` set of whitespace, a word-level model with ``<unk>``.
* char: one token per character, ``"\\n"`` as the name of the end-of-line id.
* byte: GPT-2's byte-to-character table, so ids 0..255 are the bytes; 256 is ``<|endoftext|>``.

Nothing here needs ``transformers``: the files are written with ``tokenizers`` and ``json``.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpuskit.errors import CorpuskitError
from corpuskit.tokenizers import (
    ByteTokenizer,
    HFTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    VocabTokenizer,
)

log = logging.getLogger(__name__)

HF_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
BYTE_EOS = "<|endoftext|>"
HF_EXTRA_HINT = "install the hf extra: pip install 'corpuskit[hf]'"
# Python's str.split() whitespace that Rust's char::is_whitespace (HF's WhitespaceSplit) lacks.
_PY_ONLY_WHITESPACE = "\x1c\x1d\x1e\x1f"
# Strings that exercise the places where a conversion could drift (checked on every write).
PROBES = (
    "",
    "hello world",
    "  two  spaces and\ttabs\t\n\nblank lines\n",
    "literal <s> and </s> and <unk> and <eos> and <|endoftext|> and <0x41>",
    "digits 1234567890 and unicode é ß 日本語 🙂 \u2028 \x1c end\n",
    "def f(x):\n    return x  # indented\n",
)


def require_transformers() -> Any:
    """``transformers``, or a one-line error naming the extra that brings it."""
    try:
        import transformers
    except ImportError:
        raise CorpuskitError(f"this needs the transformers library; {HF_EXTRA_HINT}") from None
    return transformers


# --------------------------------------------------------------------------- tokenizer.json


@dataclass(frozen=True)
class _SpPiece:
    piece: str
    score: float
    type: int


@dataclass
class _SpNormalizer:
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True  # sentencepiece's proto2 defaults, when a field is absent
    remove_extra_whitespaces: bool = True


@dataclass
class _SpModel:
    pieces: list[_SpPiece] = field(default_factory=list)
    model_type: int = 1  # 1 unigram, 2 BPE
    normalizer_spec: _SpNormalizer = field(default_factory=_SpNormalizer)


def _wire_fields(data: bytes) -> Iterator[tuple[int, Any]]:
    """``(field number, value)`` of a protobuf message: the few wire types a ModelProto uses,
    read here so that no protobuf package is needed."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire == 1:
            yield number, data[pos : pos + 8]
            pos += 8
        elif wire == 2:
            size = varint()
            yield number, data[pos : pos + size]
            pos += size
        elif wire == 5:
            yield number, data[pos : pos + 4]
            pos += 4
        else:
            raise CorpuskitError(f"sentencepiece model: unsupported protobuf wire type {wire}")


def _sp_proto(tok: SentencePieceTokenizer) -> _SpModel:
    """The pieces (with score and type), model type and normalizer of a sentencepiece model."""
    model = _SpModel()
    for number, value in _wire_fields(tok.model_proto):
        if number == 1:
            piece, score, kind = "", 0.0, 1
            for n, v in _wire_fields(value):
                if n == 1:
                    piece = v.decode("utf-8")
                elif n == 2:
                    score = struct.unpack("<f", v)[0]
                elif n == 3:
                    kind = v
            model.pieces.append(_SpPiece(piece, score, kind))
        elif number == 2:
            for n, v in _wire_fields(value):
                if n == 3:
                    model.model_type = v
        elif number == 3:
            spec = model.normalizer_spec
            for n, v in _wire_fields(value):
                if n == 2:
                    spec.precompiled_charsmap = bytes(v)
                elif n == 3:
                    spec.add_dummy_prefix = bool(v)
                elif n == 4:
                    spec.remove_extra_whitespaces = bool(v)
    return model


def _sp_normalizer(proto: Any) -> Any:
    """``" " -> "▁"`` after sentencepiece's own rules (none for the identity rule we train with)."""
    from tokenizers import Regex, normalizers

    spec = proto.normalizer_spec
    steps: list[Any] = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
    if spec.add_dummy_prefix:
        steps.append(normalizers.Prepend(" "))
    steps.append(normalizers.Replace(" ", "\u2581"))
    return normalizers.Sequence(steps)


def _sentencepiece_backend(tok: SentencePieceTokenizer) -> Any:
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTok

    proto = _sp_proto(tok)
    normal, user_defined, unused = 1, 4, 5  # sentencepiece piece types
    pieces = [(p.piece, float(p.score), int(p.type)) for p in proto.pieces]
    vocab = {piece: i for i, (piece, _, _) in enumerate(pieces)}
    unk = tok.unk_id if tok.unk_id is not None else 0
    if proto.model_type not in (1, 2):
        raise CorpuskitError(
            f"tokenizer {tok.spec!r}: sentencepiece model type {proto.model_type} (word/char) "
            "has no Hugging Face conversion here"
        )
    if proto.model_type == 1:  # unigram
        scores = [s for _, s, t in pieces if t == normal]
        longest = max(len(p) for p, _, _ in pieces)
        never = 10.0 * longest * min(min(scores, default=-1.0), -1.0) - 1000.0
        model = models.Unigram(
            [(p, s if t in (normal, user_defined, unused) else never) for p, s, t in pieces],
            unk_id=unk,
            byte_fallback=True,
        )
        known = {c for p, _, t in pieces if t in (normal, user_defined) for c in p}
        pattern = "[^" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(known)) + "]"
        pre = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    else:  # BPE: sentencepiece merges the highest-scored pair first, over the whole text
        mergeable = {p for p, _, t in pieces if t in (normal, unused)}
        ranked = []
        for i, (piece, score, kind) in enumerate(pieces):
            if kind != normal or len(piece) < 2:
                continue
            for cut in range(1, len(piece)):
                left, right = piece[:cut], piece[cut:]
                if left in mergeable and right in mergeable:
                    ranked.append((-score, i, cut, left, right))
        ranked.sort()
        model = models.BPE(
            vocab, [(a, b) for *_, a, b in ranked], unk_token=pieces[unk][0], byte_fallback=True
        )
        pre = None
    backend = HFTok(model)
    backend.normalizer = _sp_normalizer(proto)
    if pre is not None:
        backend.pre_tokenizer = pre
    backend.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    _add_atomic(backend, [p for p, _, t in pieces if t == user_defined])
    return backend


def _add_atomic(backend: Any, contents: list[str]) -> None:
    """User-defined pieces: matched in the raw text before anything else, as sentencepiece does."""
    from tokenizers import AddedToken

    if contents:
        backend.add_tokens([AddedToken(c, normalized=False, special=False) for c in contents])


def _vocab_backend(tok: VocabTokenizer) -> Any:
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as HFTok

    final_newline = normalizers.Replace(Regex("\\n\\z"), "")
    if tok.level == "word":
        vocab = {w: i for i, w in enumerate(tok.vocab)}
        backend = HFTok(models.WordLevel(vocab, unk_token=tok.vocab[tok.unk_id]))
        backend.normalizer = normalizers.Sequence(
            [
                final_newline,
                normalizers.Replace("\n", f" {tok.vocab[tok.eos_id]} "),
                normalizers.Replace(Regex(f"[{_PY_ONLY_WHITESPACE}]"), " "),
            ]
        )
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        backend.decoder = decoders.WordPiece(prefix="\x00", cleanup=False)  # joins with spaces
        return backend
    names = list(tok.vocab)
    names[tok.eos_id] = "\n"  # the end-of-line id is what a newline in the text becomes
    vocab = {c: i for i, c in enumerate(names)}
    backend = HFTok(models.WordLevel(vocab, unk_token=tok.vocab[tok.unk_id]))
    backend.normalizer = final_newline
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return backend


def _byte_backend() -> Any:
    from tokenizers import Tokenizer as HFTok
    from tokenizers import decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    table = _bytes_to_unicode()
    assert set(table.values()) == set(alphabet)
    vocab = {table[b]: b for b in range(256)}
    vocab[BYTE_EOS] = ByteTokenizer.eos_id
    backend = HFTok(models.BPE(vocab, [], byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return backend


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (the ByteLevel pre-tokenizer's)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def hf_backend(tok: Tokenizer) -> Any:
    """A ``tokenizers.Tokenizer`` that encodes text as ``tok`` does (without specials)."""
    if isinstance(tok, SentencePieceTokenizer):
        return _sentencepiece_backend(tok)
    if isinstance(tok, VocabTokenizer):
        return _vocab_backend(tok)
    if isinstance(tok, ByteTokenizer):
        return _byte_backend()
    if isinstance(tok, HFTokenizer):
        from tokenizers import Tokenizer as HFTok

        return HFTok.from_str(tok.blob.decode("utf-8"))
    raise CorpuskitError(f"no Hugging Face conversion for tokenizer {tok.spec!r}")


# --------------------------------------------------------------------------- special tokens


def special_tokens(tok: Tokenizer, backend: Any) -> dict[str, str]:
    """bos/eos/unk/pad names; pad is the end-of-document token (none of ours has a pad)."""
    out: dict[str, str] = {}
    for key, value in (("bos_token", tok.bos_id), ("eos_token", tok.eos_id),
                       ("unk_token", tok.unk_id)):
        if value is not None:
            name = backend.id_to_token(int(value))
            if name is None:
                raise CorpuskitError(f"tokenizer {tok.spec!r}: id {value} has no name")
            out[key] = name
    out["pad_token"] = out["eos_token"]
    return out


def _prefix(tok: Tokenizer, specials: dict[str, str], bos: bool) -> tuple[str, int] | None:
    """The token put before a text: the build's BOS when it led every document with one."""
    if bos and tok.bos_id is not None:
        return specials["bos_token"], int(tok.bos_id)
    return None


def _add_post_processor(backend: Any, prefix: tuple[str, int] | None) -> None:
    """Prepend ``prefix`` so that ``tok(text)`` starts as the packed documents do."""
    from tokenizers import processors

    if prefix is not None:
        name, ident = prefix
        backend.post_processor = processors.TemplateProcessing(
            single=[name, "$A"], pair=[name, "$A", "$B"], special_tokens=[(name, ident)]
        )


def _register_specials(backend: Any, specials: dict[str, str]) -> None:
    """Known to the file as special (skipped on decode), never matched in text for our kinds."""
    from tokenizers import AddedToken

    names = sorted(set(specials.values()) - {"\n"})
    backend.add_special_tokens([AddedToken(n, normalized=False, special=True) for n in names])


def tokenizer_config(
    tok: Tokenizer, specials: dict[str, str], *, prefix: bool, model_max_length: int | None
) -> dict[str, Any]:
    """``tokenizer_config.json``: the generic fast tokenizer and how our ids were made."""
    own = not isinstance(tok, HFTokenizer)
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **specials,
        "add_bos_token": prefix,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": own,
        "model_max_length": model_max_length if model_max_length else int(1e30),
        "corpuskit": {
            "spec": tok.spec,
            "documents": "packed ids = tok(text).input_ids + [eos_token_id]",
        },
    }
    return config


def write_hf_tokenizer(
    tok: Tokenizer,
    directory: str | os.PathLike[str],
    *,
    bos: bool = False,
    model_max_length: int | None = None,
    document_start: bool = False,
    strict: bool = False,
) -> list[str]:
    """Write the three Hugging Face tokenizer files into ``directory``; return their names.

    A few probe strings are encoded both ways first; when they disagree no file is written and
    a warning says so (``strict``: a one-line error instead), so a conversion that drifts never
    ships. An ``hf:`` tokenizer's ``tokenizer.json`` is the user's file, byte for byte.
    """
    directory = Path(directory)
    own = not isinstance(tok, HFTokenizer)
    try:
        backend = hf_backend(tok)
        specials = special_tokens(tok, backend)
        prefix = _prefix(tok, specials, bos) if own else None
        if prefix is None and document_start:
            # GPT-2's convention for a model: bos = eos, added by nobody; lm-eval and generation
            # start a text from it, as every training document followed one.
            specials["bos_token"] = specials["eos_token"]
        if own:
            _register_specials(backend, specials)
            _add_post_processor(backend, prefix)
        _check_probes(tok, backend, own)
    except CorpuskitError as exc:
        if strict:
            raise
        log.warning("%s; no tokenizer.json written", exc)
        return []
    if is_unigram(tok):
        log.warning(
            "tokenizer %r: its tokenizer.json can differ from sentencepiece where two "
            "segmentations score exactly the same (sentencepiece adds float32 scores, Hugging "
            "Face float64); use spm-bpe:N for an exact hand-off",
            tok.spec,
        )
    if own:
        (directory / "tokenizer.json").write_text(backend.to_str(pretty=False), encoding="utf-8")
    else:  # the user's file, byte for byte (what its save() writes into a build too)
        assert isinstance(tok, HFTokenizer)
        (directory / "tokenizer.json").write_bytes(tok.blob)
    config = tokenizer_config(
        tok, specials, prefix=prefix is not None, model_max_length=model_max_length
    )
    config["corpuskit"]["exact"] = not is_unigram(tok)
    _write_json(directory / "tokenizer_config.json", config)
    _write_json(directory / "special_tokens_map.json", specials)
    return list(HF_FILES)


def is_unigram(tok: Tokenizer) -> bool:
    """A sentencepiece unigram model (the one backend whose conversion can break ties apart)."""
    return isinstance(tok, SentencePieceTokenizer) and _sp_proto(tok).model_type == 1


def _check_probes(tok: Tokenizer, backend: Any, own: bool) -> None:
    previous = backend.encode_special_tokens
    backend.encode_special_tokens = own
    try:
        for text in PROBES:
            theirs = backend.encode(text, add_special_tokens=False).ids
            if theirs != tok.encode(text):
                raise CorpuskitError(
                    f"tokenizer {tok.spec!r}: its Hugging Face conversion encodes {text[:40]!r} "
                    "differently; report this (the build's own tokenizer is unaffected)"
                )
    finally:
        backend.encode_special_tokens = previous


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
