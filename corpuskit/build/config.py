"""What decides a build's output: ``BuildConfig`` (the recipe keys and ``--set`` names) and
``BuildResult`` (what a build made).

The stage settings here are the stages' own: every default is read from the stage's frozen
dataclass (``tests/build/test_settings.py`` checks that each stage field has one config field
of the same default), so a default is written once, in the stage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from corpuskit.errors import CorpuskitError
from corpuskit.executors import EXECUTORS
from corpuskit.fast_encode import check_setting as check_encoder
from corpuskit.stages.clean import Clean, LengthFilter
from corpuskit.stages.decontam import Decontaminate
from corpuskit.stages.filters import CodeFilter, GopherQuality, GopherRepetition, LanguageFilter
from corpuskit.stages.minhash import MinHashLSH
from corpuskit.stages.paragraph_dedup import ParagraphDedup
from corpuskit.stages.stopwords import Stopwords
from corpuskit.tokenizers import parse_spec

# BuildConfig fields that choose where a build runs, never what it writes.
EXECUTION_FIELDS = ("workers", "executor", "address", "cache", "encoder")

_QUALITY = GopherQuality()
_CODE = CodeFilter()
_REPETITION = GopherRepetition()
_MINHASH = MinHashLSH()
_STOPWORDS = Stopwords()
_DECONTAMINATE = Decontaminate()
_CLEAN = Clean()
_LENGTH = LengthFilter()
_LANGUAGE = LanguageFilter()
_PARAGRAPH = ParagraphDedup()


T = TypeVar("T")

@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides a build's output (``workers``, ``executor`` and ``address`` only
    decide where it runs and how fast).

    Flat on purpose: every field is a recipe key and a ``--set KEY=VALUE`` on the command line;
    the recipe file may group them in sections (``recipe.py``). Stage thresholds only enter
    the fingerprint when their stage is on.
    """

    # tokenize + splits
    tokenizer: str = "spm-bpe:4096"
    val_fraction: float = 0.05
    test_fraction: float = 0.0
    seed: int = 0
    sentence_budget: int = 1_000_000
    # Bytes of train text sentencepiece may see: lines are kept with probability
    # budget / train bytes, by a hash of the line (deterministic, order-free), so its memory
    # stays bounded when lines are long (a paragraph per line) and the corpus is large.
    sentence_budget_bytes: int = 100_000_000
    bos: bool = False
    # clean
    normalization: str = _CLEAN.normalization
    code: bool | None = None
    fix_mojibake: bool = _CLEAN.fix_mojibake
    html: bool = _CLEAN.html
    wikitext: bool = _CLEAN.wikitext
    whitespace: str = _CLEAN.whitespace
    # filter
    min_chars: int = _LENGTH.min_chars
    max_chars: int | None = _LENGTH.max_chars
    quality: bool = False
    min_words: int = _QUALITY.min_words
    max_words: int = _QUALITY.max_words
    min_mean_word_length: float = _QUALITY.min_mean_word_length
    max_mean_word_length: float = _QUALITY.max_mean_word_length
    max_symbol_word_ratio: float = _QUALITY.max_symbol_word_ratio
    max_bullet_lines_ratio: float = _QUALITY.max_bullet_lines_ratio
    max_ellipsis_lines_ratio: float = _QUALITY.max_ellipsis_lines_ratio
    min_alpha_words_ratio: float = _QUALITY.min_alpha_words_ratio
    max_line_length: int = _CODE.max_line_length
    max_mean_line_length: float = _CODE.max_mean_line_length
    min_alnum_fraction: float = _CODE.min_alnum_fraction
    repetition: bool = False
    max_dup_line_fraction: float = _REPETITION.max_dup_line_fraction
    max_dup_para_fraction: float = _REPETITION.max_dup_para_fraction
    max_dup_line_char_fraction: float = _REPETITION.max_dup_line_char_fraction
    max_dup_para_char_fraction: float = _REPETITION.max_dup_para_char_fraction
    top_ngram_char_fractions: dict[int, float] = field(
        default_factory=lambda: dict(_REPETITION.top_ngram_char_fractions)
    )
    dup_ngram_char_fractions: dict[int, float] = field(
        default_factory=lambda: dict(_REPETITION.dup_ngram_char_fractions)
    )
    languages: tuple[str, ...] | None = None
    min_language_score: float = _LANGUAGE.min_score
    # dedup
    dedup: bool = True
    near_dedup: bool = False
    minhash_ngram: int = _MINHASH.ngram
    minhash_perm: int = _MINHASH.num_perm
    minhash_bands: int = _MINHASH.bands
    minhash_rows: int = _MINHASH.rows
    minhash_threshold: float = _MINHASH.threshold
    minhash_verify: bool = _MINHASH.verify
    minhash_verify_sigmas: float = _MINHASH.verify_sigmas
    paragraph_dedup: str = "off"  # or "paragraphs" / "lines" (ParagraphDedup.mode)
    paragraph_threshold: int = _PARAGRAPH.threshold
    paragraph_min_chars: int = _PARAGRAPH.min_chars
    paragraph_min_unit_chars: int = _PARAGRAPH.min_unit_chars
    # stopwords
    stopwords: str = "off"
    stopwords_language: str | None = None
    min_stopwords: int = _STOPWORDS.min_count
    min_stopword_fraction: float = _STOPWORDS.min_fraction
    # decontaminate
    decontaminate: str = "off"
    decontaminate_ngram: int = _DECONTAMINATE.ngram
    # execution (not part of the output's identity)
    workers: int = 0
    executor: str = "local"
    address: str | None = None
    cache: bool = True  # reuse (and keep) phase-1 outputs in <root>/cache; never changes output
    # "auto": kitoken where it gives sentencepiece's ids (fast_encode.py), else sentencepiece;
    # "sentencepiece": always the reference. The ids are the same either way.
    encoder: str = "auto"

    def validate(self) -> None:
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise CorpuskitError("--val-fraction and --test-fraction must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 1:
            raise CorpuskitError(
                "--val-fraction plus --test-fraction must leave some training data"
            )
        if self.whitespace not in ("normalize", "keep"):
            raise CorpuskitError("whitespace must be 'normalize' or 'keep'")
        if self.normalization not in ("NFC", "NFKC", "none"):
            raise CorpuskitError("--normalization must be NFC, NFKC or none")
        if self.stopwords not in ("off", "filter", "remove"):
            raise CorpuskitError("--stopwords must be off, filter or remove")
        if self.decontaminate not in ("off", "drop", "mark"):
            raise CorpuskitError("--decontaminate must be off, drop or mark")
        if self.decontaminate_ngram < 1:
            raise CorpuskitError("--decontaminate-ngram must be positive")
        if self.min_chars < 0 or (self.max_chars is not None and self.max_chars < self.min_chars):
            raise CorpuskitError("--min-chars must be >= 0 and <= --max-chars")
        if self.near_dedup:
            self.minhash().validate()
        if self.paragraph_dedup != "off":
            self.paragraph().validate()
        if self.executor not in EXECUTORS:
            raise CorpuskitError(f"--executor must be one of {', '.join(EXECUTORS)}")
        if self.address and self.executor != "ray":
            raise CorpuskitError("--address is for --executor ray")
        check_encoder(self.encoder)
        parse_spec(self.tokenizer)

    def stage(self, cls: type[T], prefix: str = "", **given: Any) -> T:
        """A ``cls`` stage whose settings are this config's fields of the same name (after
        ``prefix``), so that a stage's setting is passed on without being spelled out here;
        ``given`` sets the rest (settings named or shaped differently in the config)."""
        values = {
            f.name: getattr(self, prefix + f.name)
            for f in fields(cls)  # type: ignore[arg-type]
            if f.init and f.name not in given and hasattr(self, prefix + f.name)
        }
        return cls(**values, **given)

    def minhash(self) -> MinHashLSH:
        return self.stage(MinHashLSH, "minhash_", num_perm=self.minhash_perm, seed=self.seed)

    def paragraph(self) -> ParagraphDedup:
        return self.stage(ParagraphDedup, "paragraph_", mode=self.paragraph_dedup)

    def output_config(self) -> dict[str, Any]:
        out = asdict(self)
        for name in EXECUTION_FIELDS:
            out.pop(name)
        return out


@dataclass
class BuildResult:
    corpus: str
    clean_dir: Path
    tokens_dir: Path
    clean_skipped: bool
    tokens_skipped: bool
    clean_manifest: dict[str, Any] = field(repr=False)
    meta: dict[str, Any] = field(repr=False)
    # Phase 1 of this run: shards, how many came from the cache, the cache folder (None when
    # the clean artifact itself was reused and phase 1 was not consulted).
    phase1: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def skipped(self) -> bool:
        return self.clean_skipped and self.tokens_skipped
