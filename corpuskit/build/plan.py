"""The stages a ``BuildConfig`` resolves to for one corpus, in the order they run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corpuskit.build.config import BuildConfig
from corpuskit.catalog import CorpusEntry
from corpuskit.stages.base import DEDUP_ORDER, GlobalStage
from corpuskit.stages.clean import Clean, LengthFilter
from corpuskit.stages.decontam import Decontaminate
from corpuskit.stages.exact_dedup import ExactDedup
from corpuskit.stages.filters import CodeFilter, GopherQuality, GopherRepetition, LanguageFilter
from corpuskit.stages.stopwords import Stopwords, has_stopwords


@dataclass(frozen=True)
class Plan:
    """``shard_stages`` run per batch in phase 1; ``finish_stages`` per batch in the finish
    phase, in order, the global stages among them (``global_stages``) after their grouping."""

    code: bool
    shard_stages: tuple[Any, ...]
    finish_stages: tuple[Any, ...]

    @property
    def global_stages(self) -> tuple[GlobalStage, ...]:
        """The stages that decide over the whole corpus, in the order they decide."""
        return tuple(s for s in self.finish_stages if hasattr(s, "grouping_tasks"))

    def stage(self, name: str) -> Any | None:
        return next((s for s in self.finish_stages if s.name == name), None)

    def describe(self) -> list[tuple[str, dict[str, Any]]]:
        """``(stage, settings)`` in execution order, for ``--dry-run`` and the manifest."""
        return [(s.name, s.config()) for s in (*self.shard_stages, *self.finish_stages)]

    def identity(self) -> dict[str, Any]:
        """The stage part of the clean artifact's fingerprint (splits are added by the build).

        Its shape is that of the builds before the global stages had one contract, so the same
        settings keep the same fingerprint; a stage added later appears only when it is on.
        """
        near = self.stage("near_dedup")
        dedup: dict[str, Any] = {
            "exact": self.stage("exact_dedup") is not None,
            "near": near.config() if near is not None else None,
            "order": DEDUP_ORDER,
        }
        known = {"exact_dedup", "near_dedup", "stopwords", "decontaminate"}
        for stage in self.global_stages:
            if stage.name not in known:
                dedup[stage.name] = stage.config()
        stopwords, decontaminate = self.stage("stopwords"), self.stage("decontaminate")
        return {
            "stages": [s.config() for s in self.shard_stages],
            "dedup": dedup,
            "stopwords": stopwords.config() if stopwords is not None else None,
            "decontaminate": decontaminate.config() if decontaminate is not None else None,
        }


def _stopwords_language(entry: CorpusEntry, config: BuildConfig) -> str:
    if config.stopwords_language:
        return config.stopwords_language
    for language in entry.languages:
        if len(language) == 2 and has_stopwords(language):
            return language
    return "en"


def _filters(config: BuildConfig, code: bool) -> list[Any]:
    """The per-batch filters after ``clean`` and ``length``: quality, repetition, language."""
    stages: list[Any] = []
    if config.quality and code:
        stages.append(config.stage(CodeFilter))
    elif config.quality:
        stages.append(config.stage(GopherQuality))
    if config.repetition and not code:
        stages.append(
            config.stage(
                GopherRepetition,
                top_ngram_char_fractions=tuple(sorted(config.top_ngram_char_fractions.items())),
                dup_ngram_char_fractions=tuple(sorted(config.dup_ngram_char_fractions.items())),
            )
        )
    if config.languages and not code:
        stages.append(
            LanguageFilter(languages=tuple(config.languages), min_score=config.min_language_score)
        )
    return stages


def _finish(entry: CorpusEntry, config: BuildConfig) -> list[Any]:
    """Dedup stages (dedup order), then stopwords, then decontamination."""
    stages: list[Any] = []
    if config.dedup:
        stages.append(ExactDedup())
    if config.near_dedup:
        stages.append(config.minhash())
    if config.paragraph_dedup != "off":
        stages.append(config.paragraph())
    stopwords = None
    if config.stopwords != "off":
        stopwords = Stopwords(
            mode=config.stopwords,  # type: ignore[arg-type]
            language=_stopwords_language(entry, config),
            min_count=config.min_stopwords,
            min_fraction=config.min_stopword_fraction,
        )
        stopwords.words()  # an unknown language is a user error now, not in a worker
        stages.append(stopwords)
    if config.decontaminate != "off":
        removed = stopwords if stopwords is not None and stopwords.mode == "remove" else None
        stages.append(
            Decontaminate(
                mode=config.decontaminate,  # type: ignore[arg-type]
                ngram=config.decontaminate_ngram,
                removed=removed,
            )
        )
    return stages


def make_plan(entry: CorpusEntry, config: BuildConfig) -> Plan:
    """Resolve a config against a catalog entry: code or prose, which stages, which settings."""
    code = config.code if config.code is not None else "code" in entry.domains
    clean = Clean(
        normalization=config.normalization,  # type: ignore[arg-type]
        code=code,
        fix_mojibake=config.fix_mojibake,
        html=config.html and not code,
        wikitext=config.wikitext and not code,
        whitespace=config.whitespace,  # type: ignore[arg-type]
    )
    length = config.stage(LengthFilter)
    return Plan(
        code=code,
        shard_stages=(clean, length, *_filters(config, code)),
        finish_stages=tuple(_finish(entry, config)),
    )
