"""Tokenizers behind one small interface, chosen by a spec string.

Specs: ``spm-bpe:N`` and ``spm-unigram:N`` (sentencepiece trained on the cleaned train split),
``word`` / ``word:N`` (the classic word-level setup: whitespace tokens of the train split, at most
N of them, ``<unk>`` for the rest and ``<eos>`` at every line end), ``byte`` (UTF-8 bytes,
vocabulary 256 plus EOS), ``char`` (the train split's characters, ``<unk>`` for unseen ones), a
path to an existing sentencepiece ``.model``, or ``hf:path/to/tokenizer.json`` (Hugging Face
``tokenizers``).

Sentencepiece is set up for exact round trips: identity normalization, no dummy prefix, whitespace
kept as is (runs of indentation become pieces), newline and tab as their own pieces, and byte
fallback so that no character ever becomes unknown. Decoding the ids of a document gives back the
cleaned document byte for byte.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from corpuskit.errors import CorpuskitError

SPEC_HELP = (
    "use spm-bpe:N, spm-unigram:N, word, word:N, byte, char, a sentencepiece .model file, "
    "or hf:path/to/tokenizer.json"
)
_SPM_SPEC = re.compile(r"^spm-(bpe|unigram):(\d+)$")
_WORD_SPEC = re.compile(r"^word(?::(\d+))?$")
UNK, EOS = "<unk>", "<eos>"
EOS_CANDIDATES = ("<eos>", "</s>", "<|endoftext|>", "[SEP]", "<|end_of_text|>")


class Tokenizer(Protocol):
    """What the packer and the trainer need from any tokenizer."""

    spec: str
    vocab_size: int
    eos_id: int
    bos_id: int | None
    unk_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the files needed to reload it; return the ``tokenizer`` part of meta.json."""
        ...


@dataclass(frozen=True)
class TokenizerSpec:
    """A parsed ``--tokenizer`` value."""

    kind: str  # "spm", "spm-file", "word", "char", "byte" or "hf"
    model_type: str | None = None
    vocab_size: int | None = None
    path: Path | None = None
    text: str = ""

    @property
    def needs_training(self) -> bool:
        return self.kind in ("spm", "word", "char")


def parse_spec(spec: str) -> TokenizerSpec:
    """Parse a tokenizer spec, or raise a one-line error that lists the accepted forms."""
    spec = spec.strip()
    match = _SPM_SPEC.match(spec)
    if match:
        vocab = int(match.group(2))
        if not 260 <= vocab <= 1_000_000:
            raise CorpuskitError(f"tokenizer {spec!r}: vocabulary must be 260..1000000")
        return TokenizerSpec("spm", match.group(1), vocab, text=spec)
    if spec == "byte":
        return TokenizerSpec("byte", vocab_size=257, text=spec)
    if spec == "char":
        return TokenizerSpec("char", text=spec)
    match = _WORD_SPEC.match(spec)
    if match:
        limit = int(match.group(1)) if match.group(1) else None
        if limit is not None and limit < 3:
            raise CorpuskitError(f"tokenizer {spec!r}: a word vocabulary needs at least 3 entries")
        return TokenizerSpec("word", vocab_size=limit, text=spec)
    if spec.startswith("hf:"):
        path = Path(spec[3:]).expanduser()
        if not path.is_file():
            raise CorpuskitError(f"tokenizer file {path} does not exist; {SPEC_HELP}")
        return TokenizerSpec("hf", path=path.resolve(), text=spec)
    if spec.endswith(".model"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise CorpuskitError(f"tokenizer model {path} does not exist; {SPEC_HELP}")
        return TokenizerSpec("spm-file", path=path.resolve(), text=spec)
    raise CorpuskitError(f"unknown tokenizer {spec!r}; {SPEC_HELP}")


class SentencePieceTokenizer:
    """A sentencepiece model held in memory (its serialized bytes are the saved file)."""

    def __init__(self, model_proto: bytes, spec: str):
        import sentencepiece as spm

        self.spec = spec
        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self._sp.get_piece_size()
        eos = self._sp.eos_id()
        if eos < 0:
            raise CorpuskitError(f"sentencepiece model {spec!r} has no EOS piece; retrain with one")
        self.eos_id = eos
        self.bos_id = self._sp.bos_id() if self._sp.bos_id() >= 0 else None
        self.unk_id = self._sp.unk_id() if self._sp.unk_id() >= 0 else None

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text)

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        return self._sp.encode(texts, num_threads=num_threads)

    def decode(self, ids: Iterable[int]) -> str:
        return self._sp.decode([int(i) for i in ids])

    def id_to_piece(self, i: int) -> str:
        return self._sp.id_to_piece(i)

    def save(self, directory: Path) -> dict[str, Any]:
        (directory / "tokenizer.model").write_bytes(self.model_proto)
        return {"spec": self.spec, "kind": "sentencepiece", "file": "tokenizer.model"}


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255 and EOS as 256: no training, no unknowns."""

    spec = "byte"
    vocab_size = 257
    eos_id = 256
    bos_id = None
    unk_id = None

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        return [list(t.encode("utf-8")) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def save(self, directory: Path) -> dict[str, Any]:
        return {"spec": "byte", "kind": "byte", "file": None}


class VocabTokenizer:
    """Word- or character-level ids from a vocabulary list: ``<unk>`` is 0 and ``<eos>`` is 1.

    Words are whitespace-separated tokens (WikiText is already tokenized that way); every line
    end becomes ``<eos>``, so a document of L lines and W words is W + L tokens once the packer
    adds the document's final EOS. A ``<unk>`` already in the text maps to the unknown id.
    """

    unk_id = 0
    eos_id = 1
    bos_id = None

    def __init__(self, vocab: list[str], spec: str, level: str):
        if vocab[:2] != [UNK, EOS]:
            raise CorpuskitError(f"vocabulary for {spec!r} must start with {UNK} and {EOS}")
        self.spec = spec
        self.level = level
        self.vocab = vocab
        self.vocab_size = len(vocab)
        self._ids = {w: i for i, w in enumerate(vocab)}

    def _units(self, line: str) -> list[str]:
        return line.split() if self.level == "word" else list(line)

    def encode(self, text: str) -> list[int]:
        get = self._ids.get
        out: list[int] = []
        # The last line's end is the EOS the packer adds after the document, whether or not
        # the text ends with a newline: a document of L lines gets L end-of-line tokens.
        lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
        for n, line in enumerate(lines):
            out.extend(get(u, 0) for u in self._units(line))
            if n < len(lines) - 1:
                out.append(self.eos_id)
        return out

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        sep = " " if self.level == "word" else ""
        lines: list[list[str]] = [[]]
        for i in ids:
            if i == self.eos_id:
                lines.append([])
            else:
                lines[-1].append(self.vocab[int(i)])
        return "\n".join(sep.join(line) for line in lines).rstrip("\n")

    def save(self, directory: Path) -> dict[str, Any]:
        (directory / "vocab.txt").write_text("\n".join(self.vocab) + "\n", encoding="utf-8")
        return {"spec": self.spec, "kind": self.level, "file": "vocab.txt"}

    @classmethod
    def load(cls, path: Path, spec: str, level: str) -> VocabTokenizer:
        return cls(path.read_text(encoding="utf-8").split("\n")[:-1], spec, level)


def train_vocab(spec: TokenizerSpec, lines: Iterator[str]) -> VocabTokenizer:
    """Count units of the train split; most frequent first, ties in code-point order."""
    from collections import Counter

    counts: Counter[str] = Counter()
    if spec.kind == "word":
        for line in lines:
            counts.update(line.split())
    else:
        for line in lines:
            counts.update(line)
    counts.pop(UNK, None)
    counts.pop(EOS, None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if spec.vocab_size is not None:
        ranked = ranked[: spec.vocab_size - 2]
    return VocabTokenizer([UNK, EOS] + [w for w, _ in ranked], spec.text, spec.kind)


class HFTokenizer:
    """A Hugging Face ``tokenizers`` JSON file; its EOS is the first known end token it has."""

    unk_id: int | None

    def __init__(self, blob: bytes, spec: str):
        from tokenizers import Tokenizer as _HF

        self.spec = spec
        self.blob = blob
        try:
            self._tok = _HF.from_str(blob.decode("utf-8"))
        except Exception as exc:  # the library raises a bare Exception for bad files
            raise CorpuskitError(f"{spec!r} is not a valid tokenizer.json: {exc}") from None
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        eos = next(
            (
                self._tok.token_to_id(t)
                for t in EOS_CANDIDATES
                if self._tok.token_to_id(t) is not None
            ),
            None,
        )
        if eos is None:
            raise CorpuskitError(
                f"{spec!r} has no end-of-text token ({', '.join(EOS_CANDIDATES)}); add one"
            )
        self.eos_id = eos
        self.bos_id = None
        # Not ``a or b``: an unknown token at id 0 (the usual place) is falsy.
        self.unk_id = next(
            (i for i in map(self._tok.token_to_id, ("<unk>", "[UNK]")) if i is not None), None
        )

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        # The Rust side parallelises batches itself (RAYON_NUM_THREADS bounds it).
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def save(self, directory: Path) -> dict[str, Any]:
        (directory / "tokenizer.json").write_bytes(self.blob)
        return {"spec": self.spec, "kind": "hf", "file": "tokenizer.json"}


def train_sentencepiece(
    spec: TokenizerSpec,
    lines: Iterator[str],
    *,
    sentence_budget: int = 1_000_000,
    seed: int = 0,
    num_threads: int = 1,
) -> SentencePieceTokenizer:
    """Train sentencepiece on lines of the train split (a seeded sample of ``sentence_budget``)."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines,
            model_writer=model,
            model_type=spec.model_type,
            vocab_size=spec.vocab_size,
            byte_fallback=True,
            character_coverage=0.9995,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            allow_whitespace_only_pieces=True,
            split_digits=True,
            user_defined_symbols=["\n", "\t"],
            input_sentence_size=sentence_budget,
            shuffle_input_sentence=True,
            max_sentence_length=16384,
            num_threads=max(1, num_threads),
            unk_id=0,
            bos_id=2,  # <s>: reserved so that --bos can lead documents with it
            eos_id=1,
            pad_id=-1,
            hard_vocab_limit=False,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise CorpuskitError(f"sentencepiece training failed for {spec.text!r}: {exc}") from None
    return SentencePieceTokenizer(model.getvalue(), spec.text)


def train_tokenizer(
    spec: str | TokenizerSpec,
    lines: Iterator[str],
    *,
    sentence_budget: int = 1_000_000,
    seed: int = 0,
    num_threads: int = 1,
) -> Tokenizer:
    """A ready tokenizer for ``spec``; ``lines`` (train-split text) is only read when training."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "spm":
        return train_sentencepiece(
            parsed, lines, sentence_budget=sentence_budget, seed=seed, num_threads=num_threads
        )
    if parsed.kind == "spm-file":
        assert parsed.path is not None
        return SentencePieceTokenizer(parsed.path.read_bytes(), parsed.text)
    if parsed.kind in ("word", "char"):
        return train_vocab(parsed, lines)
    if parsed.kind == "hf":
        assert parsed.path is not None
        return HFTokenizer(parsed.path.read_bytes(), parsed.text)
    return ByteTokenizer()


def load_tokenizer(build_dir: str | Path) -> Tokenizer:
    """The tokenizer a token build was made with (from its ``meta.json``)."""
    import json

    build_dir = Path(build_dir)
    try:
        meta = json.loads((build_dir / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpuskitError(f"{build_dir} is not a token build (no meta.json)") from None
    info = meta["tokenizer"]
    if info["kind"] == "sentencepiece":
        return SentencePieceTokenizer((build_dir / info["file"]).read_bytes(), info["spec"])
    if info["kind"] == "byte":
        return ByteTokenizer()
    if info["kind"] in ("word", "char"):
        return VocabTokenizer.load(build_dir / info["file"], info["spec"], info["kind"])
    if info["kind"] == "hf":
        return HFTokenizer((build_dir / info["file"]).read_bytes(), info["spec"])
    raise CorpuskitError(f"{build_dir}: unknown tokenizer kind {info['kind']!r}")
